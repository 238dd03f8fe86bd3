#!/usr/bin/env bash
# The browser step of tests/run-tests.sh: the demo's page, loaded in headless Chromium, talks to
# the demo over its WebSocket, and both sides check what they saw.
#
#   sourced:  . tests/scripts/browser-step.sh; browser_step DEMO SCHEME PORT [ARG...]
#   by hand:  bash tests/scripts/browser-step.sh DEMO SCHEME [ARG...]   (a port the kernel picks)
#
# DEMO is the demo program (build/http_demo), SCHEME http or https, PORT a free port. The step
#   1. starts `DEMO [ARG...] --port PORT --root c-examples/www --expect "hello from the browser
#      NONCE"` (https: also `--tls build/certs`, made by tests/scripts/make-certs.sh when
#      missing), with its output in target/test-logs/browser-SCHEME-demo.log, and waits for the
#      port;
#   2. runs tests/browser/cdp_check.py on SCHEME://127.0.0.1:PORT/?selftest=NONCE (https:
#      --insecure), which saves target/test-logs/browser-SCHEME.png;
#   3. sends the demo SIGINT: the demo exits 0 only if it received the expected text on /ws from
#      the browser (Origin and User-Agent checked) and saw that connection close.
# It passes when the CDP verdict is PASS, the demo exited 0 and the screenshot is a non-empty PNG.
# Needs: chromium and .venv/ (tests/scripts/setup.sh test).
# The harness itself, against a stand-in for the demo (tests/browser/fake_device.py):
#   bash tests/scripts/browser-step.sh .venv/bin/python https tests/browser/fake_device.py

_browser_step_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/scripts/lib.sh
declare -F start_bg >/dev/null || . "$_browser_step_here/lib.sh"

browser_step() {
  local demo="$1" scheme="${2:-}" port="${3:-}"
  shift 3 2>/dev/null || shift $#
  local pre=("$@")  # the demo's own leading arguments (e.g. a script for an interpreter)
  local root; root="$(cd "$_browser_step_here/../.." && pwd)"
  case "$scheme" in
    http|https) ;;
    *) echo "usage: browser_step DEMO {http|https} PORT [ARG...]"; return 2 ;;
  esac
  [ -n "$port" ] || { echo "browser-step: no port given"; return 2; }
  [ -x "$demo" ] || { echo "browser-step: FAIL: $demo is not built"; return 1; }
  local py="$root/.venv/bin/python"
  [ -x "$py" ] || { echo "browser-step: FAIL: no $py (tests/scripts/venv.sh makes it)"; return 1; }

  local logdir="$root/target/test-logs"
  mkdir -p "$logdir"
  local png="$logdir/browser-$scheme.png" demo_log="$logdir/browser-$scheme-demo.log"
  rm -f "$png"
  # A fresh nonce each run: a message left over from an earlier run cannot satisfy --expect.
  local nonce; nonce="$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
  local args=(--port "$port" --root "$root/c-examples/www" --expect "hello from the browser $nonce")
  local cdp_args=(--screenshot "$png" --timeout 20)
  if [ "$scheme" = https ]; then
    local certs="$root/build/certs"
    bash "$root/tests/scripts/make-certs.sh" "$certs" >/dev/null \
      || { echo "browser-step: FAIL: could not make $certs"; return 1; }
    args+=(--tls "$certs")
    # The test root CA is not in Chromium's trust store (a fresh profile, no NSS database).
    cdp_args+=(--insecure)
  fi

  echo "browser-step: $demo ${pre[*]} ${args[*]}"
  start_bg "$demo_log" "$demo" "${pre[@]}" "${args[@]}"
  local pid="$BG_PID" cdp_rc demo_rc
  if ! wait_port "$port" "$pid" 20; then
    echo "browser-step: FAIL: the demo did not listen on $port; its output:"
    sed 's/^/  demo: /' "$demo_log"
    stop_proc "$pid" 5 >/dev/null
    return 1
  fi
  "$py" "$root/tests/browser/cdp_check.py" "$scheme://127.0.0.1:$port/?selftest=$nonce" "${cdp_args[@]}"
  cdp_rc=$?
  stop_proc "$pid" 10 INT
  demo_rc=$?
  echo "browser-step: the demo's output:"
  sed 's/^/  demo: /' "$demo_log"

  local ok=1
  if [ $cdp_rc -ne 0 ]; then echo "browser-step: FAIL: the browser's verdict was not PASS"; ok=0; fi
  if [ $demo_rc -ne 0 ]; then
    echo "browser-step: FAIL: the demo exited with status $demo_rc after SIGINT" \
         "(0 = it saw the browser's message and its close)"
    ok=0
  fi
  if [ -s "$png" ] && [ "$(od -An -N8 -tx1 "$png" | tr -d ' \n')" = 89504e470d0a1a0a ]; then
    echo "browser-step: screenshot $png ($(wc -c < "$png") bytes)"
  else
    echo "browser-step: FAIL: no PNG screenshot at $png"; ok=0
  fi
  [ $ok = 1 ] && echo "browser-step: $scheme PASS"
  [ $ok = 1 ]
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  [ $# -ge 2 ] || { echo "usage: $0 DEMO {http|https} [ARG...]" >&2; exit 2; }
  browser_step "$1" "$2" "$(free_port)" "${@:3}"
fi
