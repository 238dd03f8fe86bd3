# The ARM steps of tests/run-tests.sh (sourced; uses its helpers and sample checks). For each
# target of `make cross` (ARM_TARGETS):
#   lib      the libraries: make cross (make lib TARGET=... for each).
#   build    the samples, the HTTP demo and the tests/c programs with the cross compilers,
#            linked against liboasisnet.so, and the samples, the demo and one C test once more
#            against liboasisnet.a; every file must be an ELF of the target's machine, the static
#            ones without liboasisnet.so. Wrappers that run each program under user-mode QEMU go
#            to build/TARGET/qemu/ (same names).
#   tests/c  the self-checking tests/c programs (shared) and the static one, under QEMU.
#   samples  the documented samples under QEMU against native peers on 127.0.0.1: the ARM server
#            with the native client sample and Python `websockets`, the ARM client with the
#            native server sample and a Python echo server (which must see the close 1000), over
#            ws:// and wss:// (the certificates in build/certs); the statically linked ones too.
#   demo     the HTTP demo under QEMU, over http and https, checked by
#            tests/python/check_http_demo.py; after SIGINT it must exit 0.
# Run only these: bash tests/run-tests.sh arm   (or: ONLY=arm make test)
#
# ARM_PROFILE (default release-small, the build for flash; README "Size") is the Cargo profile
# of the libraries under test: make cross PROFILE=..., programs in build/TARGET-PROFILE/ (the
# release profile: build/TARGET/, as `make cross` alone makes them).

ARM_TARGETS=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf thumbv7neon-unknown-linux-gnueabihf)
ARM_PROFILE="${ARM_PROFILE:-release-small}"

# arm_bdir TARGET: where make puts the target's programs for ARM_PROFILE.
arm_bdir() { if [ "$ARM_PROFILE" = release ]; then echo "build/$1"; else echo "build/$1-$ARM_PROFILE"; fi; }

# arm_qemu TARGET: the QEMU user-mode emulator, the target's C library root (QEMU's -L) and the
# ELF machine name readelf gives its programs.
arm_qemu() {
  case "$1" in
    aarch64-*) echo "qemu-aarch64 /usr/aarch64-linux-gnu AArch64" ;;
    armv7-*|thumbv7*|arm-*) echo "qemu-arm /usr/arm-linux-gnueabihf ARM" ;;
    *) echo "arm-check: no QEMU known for $1" >&2; return 1 ;;
  esac
}

# arm_wrap TARGET PROGRAM...: build/TARGET/qemu/<path below build/TARGET> runs PROGRAM under
# QEMU. LD_LIBRARY_PATH is dropped: it names the host's libraries, and the programs find
# liboasisnet.so through their run path. exec keeps the process id, so that signals reach QEMU,
# which hands them to the program.
arm_wrap() {
  local t="$1" qemu sysroot machine p w b; shift
  b="$(arm_bdir "$t")"
  read -r qemu sysroot machine < <(arm_qemu "$t") || return 1
  for p in "$@"; do
    w="$b/qemu/${p#"$b"/}"
    mkdir -p "$(dirname "$w")"
    printf '#!/bin/sh\nexec env -u LD_LIBRARY_PATH %s -L %s '"'%s'"' "$@"\n' "$qemu" "$sysroot" "$ROOT/$p" >"$w"
    chmod +x "$w"
  done
}

# arm_sizes: the flash each ARM library takes, stripped, against the budgets (README "Size"):
# with TLS and the HTTP server (all features) at most 1.25 MiB on aarch64 and 1.0 MiB on 32-bit
# ARM (armv7, thumbv7neon), without TLS at most 400 KiB on each. The no-TLS variant is built
# first; the default one last, so that the libraries the next steps test are the default ones.
arm_sizes() {
  local t strip size limit ok=0 variant features
  [ "$ARM_PROFILE" = release-small ] || { echo "ARM_PROFILE=$ARM_PROFILE: the budgets are for release-small; skipped"; return 0; }
  printf '| target | features | stripped bytes | budget |\n|---|---|---:|---:|\n' >"$LOGDIR/arm-sizes.md"
  for variant in no-tls default; do
    for t in "${ARM_TARGETS[@]}"; do
      case "$variant" in
        no-tls) features="client server http"; limit=409600 ;;
        default) features=""
          case "$t" in aarch64-*) limit=1310720 ;; *) limit=1048576 ;; esac ;;
      esac
      make --no-print-directory lib TARGET="$t" PROFILE="$ARM_PROFILE" FEATURES="$features" || return 1
      case "$t" in aarch64-*) strip=aarch64-linux-gnu-strip ;; *) strip=arm-linux-gnueabihf-strip ;; esac
      "$strip" -o "$LOGDIR/liboasisnet-$t-$variant.so" "target/$t/$ARM_PROFILE/liboasisnet.so" || return 1
      size="$(stat -c %s "$LOGDIR/liboasisnet-$t-$variant.so")"
      printf '| %s | %s | %d | %d |\n' "$t" "${features:-all (default)}" "$size" "$limit" >>"$LOGDIR/arm-sizes.md"
      if [ "$size" -gt "$limit" ]; then
        echo "FAIL: $t ($variant) liboasisnet.so is $size bytes stripped, over its budget of $limit"; ok=1
      fi
    done
  done
  cat "$LOGDIR/arm-sizes.md"
  return $ok
}

# The libraries, as a user builds them (make cross; side by side with make -j).
arm_cross_lib() { make --no-print-directory "$MAKE_J" cross PROFILE="$ARM_PROFILE"; }

arm_build() {
  local t="$1" qemu sysroot machine f ok=0 static_test b
  b="$(arm_bdir "$t")"
  read -r qemu sysroot machine < <(arm_qemu "$t") || return 1
  command -v "$qemu" >/dev/null || { echo "FAIL: no $qemu (tests/scripts/setup.sh test installs qemu-user)"; return 1; }
  make --no-print-directory "$MAKE_J" examples examples-static c-tests TARGET="$t" PROFILE="$ARM_PROFILE" || return 1
  static_test="$(make -s --no-print-directory print-static-test TARGET="$t" PROFILE="$ARM_PROFILE")" || return 1
  local lib="target/$t/$ARM_PROFILE/liboasisnet.so" progs=()
  for f in "$b"/* "$b"/static/* "$b"/tests/*; do [ -f "$f" ] && progs+=("$f"); done
  for f in "$lib" "${progs[@]}"; do
    readelf -h "$f" | grep -qE "Machine: +$machine\$" \
      || { echo "FAIL: $f is not an $machine ELF: $(readelf -h "$f" | grep Machine:)"; ok=1; }
  done
  for f in "$b"/static/* "$static_test"; do
    if readelf -d "$f" | grep NEEDED | grep -q oasisnet; then echo "FAIL: $f needs liboasisnet.so"; ok=1; fi
  done
  readelf -d "$b/ws_server_sample" | grep NEEDED | grep -q liboasisnet \
    || { echo "FAIL: $b/ws_server_sample does not use liboasisnet.so"; ok=1; }
  echo "--- ${#progs[@]} programs for $machine; liboasisnet.so $(stat -c %s "$lib") bytes, newest glibc symbol" \
    "version it needs: $(objdump -T "$lib" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1)"
  arm_wrap "$t" "${progs[@]}" || ok=1
  return $ok
}

# The C test that re-executes itself (dlog_output) is left out: the kernel cannot start an ARM
# program for it without binfmt_misc, which a container rarely has.
arm_ctests() {
  local t="$1" src name ok=0 n=0 b
  b="$(arm_bdir "$t")"
  for src in tests/c/*.c tests/c/*.cpp; do
    name="$(basename "${src%.*}")"
    case "$name" in autobahn_client|dlog_output) continue ;; esac
    run_ctest "$b/qemu/tests/$name" || ok=1
    n=$((n + 1))
  done
  local static_test
  static_test="$(make -s --no-print-directory print-static-test TARGET="$t" PROFILE="$ARM_PROFILE")" || return 1
  run_ctest "$b/qemu/${static_test#"$b"/}" || ok=1
  echo "--- $((n + 1)) programs under QEMU"
  [ $n -gt 0 ] && return $ok
}

# Native peers: the native samples (built here when the native build has not made them yet) and
# the Python ones.
arm_samples() {
  local t="$1" q ok=0
  q="$(arm_bdir "$t")/qemu"
  need "$VENV_PY" || return 1
  make --no-print-directory build/ws_server_sample build/ws_client_sample || return 1
  echo "=== ARM ws_server_sample, native ws_client_sample"
  LOG_TAG="$t-1-" sample_client_vs_sample_server "$q/ws_server_sample" build/ws_client_sample || ok=1
  echo "=== native ws_server_sample, ARM ws_client_sample"
  LOG_TAG="$t-2-" sample_client_vs_sample_server build/ws_server_sample "$q/ws_client_sample" || ok=1
  echo "=== Python websockets client, ARM ws_server_sample"
  LOG_TAG="$t-" python_client_vs_sample_server "$q/ws_server_sample" || ok=1
  echo "=== ARM ws_client_sample, Python websockets server"
  LOG_TAG="$t-" sample_client_vs_python_server ws "$q/ws_client_sample" || ok=1
  echo "=== Python websockets client, ARM wss_server_sample (RSA)"
  LOG_TAG="$t-" python_client_vs_wss_sample_server "$q/wss_server_sample" fullchain.pem || ok=1
  echo "=== Python websockets client, ARM wss_server_sample (ECDSA)"
  LOG_TAG="$t-" python_client_vs_wss_sample_server "$q/wss_server_sample_ecdsa" ec_fullchain.pem || ok=1
  echo "=== ARM wss_client_sample, Python websockets wss server"
  LOG_TAG="$t-" sample_client_vs_python_server wss "$q/wss_client_sample" || ok=1
  echo "=== statically linked: Python websockets client, ARM wss_server_sample"
  LOG_TAG="$t-static-" python_client_vs_wss_sample_server "$q/static/wss_server_sample" fullchain.pem || ok=1
  echo "=== statically linked: ARM wss_client_sample, Python websockets wss server"
  LOG_TAG="$t-static-" sample_client_vs_python_server wss "$q/static/wss_client_sample" || ok=1
  return $ok
}

# arm_demo_check DEMO SCHEME: DEMO on a free port (http, or https with build/certs), checked by
# check_http_demo.py (https: verified against RootCA.pem), then stopped with SIGINT: exit 0,
# and its log shows the check's WebSocket opened on /ws and closed with 1000.
arm_demo_check() {
  local demo="$1" scheme="$2" log port pid try started=0 ok=0 args=()
  log="$LOGDIR/${LOG_TAG:-}http-demo-$scheme.log"
  need "$demo" "$VENV_PY" || return 1
  local check=("$VENV_PY" tests/python/check_http_demo.py --root c-examples/www)
  if [ "$scheme" = https ]; then
    need_certs fullchain.pem privkey.pem RootCA.pem || return 1
    args=(--tls "$CERTS"); check+=(--cafile "$CERTS/RootCA.pem")
  fi
  for try in 1 2 3; do
    port="$(free_port)"
    start_bg "$log" "$demo" --port "$port" --root c-examples/www "${args[@]}"; pid=$BG_PID
    if wait_port "$port" "$pid" 30; then started=1; break; fi
    stop_proc "$pid" 2 KILL >/dev/null 2>&1; echo "--- the demo did not start (try $try):"; cat "$log"
  done
  [ $started = 1 ] || return 1
  echo "$demo on $scheme://127.0.0.1:$port/"
  timeout 300 "${check[@]}" "$scheme://127.0.0.1:$port/" || ok=1
  check_stop "$(basename "$demo")" "$pid" 30 || ok=1
  echo "--- the demo's output:"; cat "$log"
  grep -q '^ws open: /ws ' "$log" || { echo "FAIL: the demo did not report the WebSocket on /ws"; ok=1; }
  grep -qx 'ws close: 1000' "$log" || { echo "FAIL: the demo did not report the close 1000"; ok=1; }
  return $ok
}

arm_demo() {
  local t="$1" q ok=0
  q="$(arm_bdir "$t")/qemu"
  LOG_TAG="$t-" arm_demo_check "$q/http_demo" http || ok=1
  LOG_TAG="$t-" arm_demo_check "$q/http_demo" https || ok=1
  echo "=== statically linked"
  LOG_TAG="$t-static-" arm_demo_check "$q/static/http_demo" https || ok=1
  return $ok
}
