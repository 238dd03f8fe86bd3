#!/usr/bin/env bash
# Runs every test of oasisnet as counted steps (this is `make test`).
#
#   usage: tests/run-tests.sh [PATTERN]     only the steps whose name contains PATTERN
#
# Each step prints `ok - NAME` or `not ok - NAME` (then the tail of its log), and keeps its whole
# log in target/test-logs/NN-NAME.log. The last line is `N passed, M failed`; the exit status is
# non-zero when any step failed.
#
# Steps: header check (cargo build --release + cbindgen output vs include/oasis_net.h), rustfmt,
# clippy, Rust tests, the smaller builds of the Cargo features (each linted, its header and
# parameter docs compared, tests/features.rs run against it), the fuzz targets (fuzz/: cargo-fuzz
# installed when missing, every target built, then each run for FUZZ_TEST_SECS seconds; a finding
# fails its step, with the input in the log), building c-examples/ and tests/c/ (also one C test
# linked statically, and every self-checking one with ASan/UBSan), the library as installed (its
# exported symbols and soname; make install, the tree moved, programs built against it with
# pkg-config and CMake and run: tests/scripts/install-check.sh), each tests/c program plain, under
# valgrind and under
# ASan/UBSan, the documented samples against each other and against Python `websockets`,
# Python `websockets` against a WebSocket service of the HTTP server (ws:// and wss://),
# and the Autobahn|Testsuite (cases 1-10) with the library as server and as client; then the same
# over TLS: test certificates (tests/scripts/make-certs.sh -> build/certs), the documented secure
# samples (RSA and ECDSA server, client) against Python `websockets`, and Autobahn over wss://;
# and on ARM (tests/scripts/arm-check.sh): the library cross-built for aarch64, armv7 and
# thumbv7neon (ARMv7 with NEON)
# (make cross), the samples, the HTTP demo and tests/c programs built against it and run under
# QEMU against native peers.
#
# env: FUZZ_TEST_SECS (seconds per fuzz target, default 20),
#      AUTOBAHN_CASES (default "1.* 2.* 3.* 4.* 5.* 6.* 7.* 9.* 10.*"), AUTOBAHN_EXCLUDE,
#      CTEST_TIMEOUT (seconds per tests/c program, default 120),
#      OASIS_TEST_NO_IPV6=1 (a machine without ::1: api_roundtrip skips its IPv6 checks, saying so;
#      without it such a machine fails them).
# Everything listens on and connects to 127.0.0.1 (api_roundtrip also to ::1), on ports the kernel
# picked.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
# shellcheck source=tests/scripts/lib.sh
. tests/scripts/lib.sh

ONLY="${1:-}"
LOGDIR="$ROOT/target/test-logs"
rm -rf "$LOGDIR"; mkdir -p "$LOGDIR"
export LD_LIBRARY_PATH="$ROOT/target/release${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export CARGO_TERM_COLOR=never
export AUTOBAHN_CASES="${AUTOBAHN_CASES:-1.* 2.* 3.* 4.* 5.* 6.* 7.* 9.* 10.*}"
export AUTOBAHN_EXCLUDE="${AUTOBAHN_EXCLUDE-12.* 13.*}"
CTEST_TIMEOUT="${CTEST_TIMEOUT:-120}"
FUZZ_TEST_SECS="${FUZZ_TEST_SECS:-20}"
MAKE_J="-j$(nproc 2>/dev/null || echo 2)"

passed=0; failed=0; n=0; failed_names=(); timings=()
run_started=$(date +%s)

# step NAME TIMEOUT_SECONDS COMMAND [ARGS...]: runs COMMAND (a function or a program) in a
# subshell with stdin from /dev/null and all output into the step's log, bounded in time.
step() {
  local name="$1" limit="$2"; shift 2
  if [ -n "$ONLY" ] && [[ "$name" != *"$ONLY"* ]]; then return 0; fi
  n=$((n + 1))
  local slug log t0 rc secs
  slug="$(printf '%02d-%s' "$n" "$name" | tr -c 'A-Za-z0-9._-' '-' | sed 's/-\{2,\}/-/g; s/-$//')"
  log="$LOGDIR/$slug.log"
  t0=$(date +%s)
  ( "$@" ) >"$log" 2>&1 </dev/null &
  local pid=$!
  # Bound the whole step: after `limit` seconds, end its process group members we started.
  ( sleep "$limit" && { echo "run-tests: step timed out after ${limit}s" >>"$log"; pkill_tree "$pid"; } ) \
    </dev/null >/dev/null 2>&1 &
  local watchdog=$!
  wait "$pid"; rc=$?
  pkill_tree "$watchdog"; wait "$watchdog" 2>/dev/null
  secs=$(( $(date +%s) - t0 ))
  timings+=("$(printf '%5ds  %s' "$secs" "$name")")
  if [ $rc -eq 0 ]; then
    passed=$((passed + 1)); echo "ok - $name"
  else
    failed=$((failed + 1)); failed_names+=("$name"); echo "not ok - $name"
    echo "#   exit status $rc after ${secs}s; last lines of $log:"
    tail -n 40 "$log" | sed 's/^/#   /'
  fi
}

# The process ids whose parent is $1 (from /proc: no procps needed).
children_of() {
  local f line st ppid rest
  for f in /proc/[0-9]*/stat; do
    { read -r line < "$f"; } 2>/dev/null || continue
    read -r st ppid rest <<< "${line##*) }"
    if [ "$ppid" = "$1" ]; then f="${f#/proc/}"; echo "${f%/stat}"; fi
  done
}

# Ends a process and everything it started, by process id (stopped first, so that it starts
# nothing new, then its children, then itself).
pkill_tree() {
  local p c
  for p in "$@"; do
    kill -STOP "$p" 2>/dev/null || continue
    for c in $(children_of "$p"); do pkill_tree "$c"; done
    kill -KILL "$p" 2>/dev/null
  done
}

# ---------------------------------------------------------------------------------------------
# Rust side

rust_tests() {
  if command -v cargo-nextest >/dev/null 2>&1 || cargo nextest --version >/dev/null 2>&1; then
    # nextest runs every test in its own process: the library's global state stays per test.
    cargo nextest run --no-tests=warn || return 1
  else
    cargo test -- --test-threads=1 || return 1
  fi
  # nextest does not run doctests.
  cargo test --doc
}

# The fuzz targets, through the one script that runs them (also `make fuzz`). The build step
# installs cargo-fuzz when missing and checks the fuzz crate's formatting (fuzz/ is a workspace
# of its own, outside `cargo fmt --all`); the run steps do not retry the install.
fuzz_build() {
  local ok=0
  cargo fmt --manifest-path fuzz/Cargo.toml -- --check --color never \
    || { echo "FAIL: fuzz/ is not formatted (cargo fmt --manifest-path fuzz/Cargo.toml)"; ok=1; }
  bash tests/scripts/fuzz.sh build || ok=1
  return $ok
}
fuzz_run() { FUZZ_SECS="$FUZZ_TEST_SECS" FUZZ_INSTALL=0 bash tests/scripts/fuzz.sh run "$1"; }

# The smaller builds a firmware may choose with Cargo features (README, "Cargo features"), each
# once, debug, in the shared target directory: clippy without warnings, the generated header equal
# to include/oasis_net.h, the library exporting exactly its functions and linking with the C++
# headers' inline layer (the C surface is the same in every build), docs/PARAMETERS.md equal to the key table (tests/docs.rs: the parameters
# are the same too), and tests/features.rs, which checks that what the build holds works and what
# it left out fails naming its feature. (The other steps test the default build, which has every
# feature.)
FEATURE_VARIANTS=("client,server,http" "server,http" "client" "")

feature_variants() {
  local features args ok=0 t0
  for features in "${FEATURE_VARIANTS[@]}"; do
    t0=$(date +%s)
    args=(--no-default-features --features "$features")
    echo "=== cargo ... ${args[*]}"
    cargo clippy "${args[@]}" --lib --test features --test docs -- -D warnings \
      || { echo "FAIL: clippy, features [$features]"; ok=1; continue; }
    bash tests/scripts/check-header.sh "${args[@]}" --lib \
      || { echo "FAIL: the header differs, features [$features]"; ok=1; }
    # check-header.sh built this variant's target/debug/liboasisnet.so: it exports exactly the
    # functions of the header, and the C++ headers' inline layer links against it.
    OASIS_LIB=target/debug/liboasisnet.so bash tests/scripts/install-check.sh exports \
      || { echo "FAIL: the exported functions, features [$features]"; ok=1; }
    cargo test "${args[@]}" --test features --test docs \
      || { echo "FAIL: tests/features.rs or tests/docs.rs, features [$features]"; ok=1; }
    echo "=== features [$features]: $(( $(date +%s) - t0 ))s"
  done
  return $ok
}

# ---------------------------------------------------------------------------------------------
# C and C++ programs

build_examples() { make --no-print-directory "$MAKE_J" examples; }
build_ctests() { make --no-print-directory "$MAKE_J" c-tests-shared; }
build_ctests_asan() { make --no-print-directory "$MAKE_J" c-tests-asan; }

# The library as shipped: what it exports and its soname, then make install and programs built
# against the installed (and moved) tree (tests/scripts/install-check.sh).
install_check() { make --no-print-directory lib && bash tests/scripts/install-check.sh "$1"; }

static_link() {
  local bin
  bin="$(make -s --no-print-directory print-static-test)" || return 1
  [ -n "$bin" ] || { echo "no C test in tests/c/ to link statically"; return 1; }
  make --no-print-directory "$bin" || return 1
  echo "--- ldd $bin"; ldd "$bin"
  if ldd "$bin" | grep -q oasisnet; then echo "FAIL: $bin still needs liboasisnet.so"; return 1; fi
  echo "--- run $bin"
  timeout "$CTEST_TIMEOUT" "$bin"
}

run_ctest() {
  echo "--- $1"
  timeout "$CTEST_TIMEOUT" "$1"
  local rc=$?
  [ $rc -eq 124 ] && echo "FAIL: $1 did not finish within ${CTEST_TIMEOUT}s"
  return $rc
}

# The same program under valgrind: no invalid access, no definite leak (the library's process-wide
# tables and thread-locals show as "possibly lost" and are not counted).
run_ctest_valgrind() {
  command -v valgrind >/dev/null || { echo "valgrind is not installed (tests/scripts/setup.sh test installs it)"; return 1; }
  echo "--- valgrind $1"
  timeout $((CTEST_TIMEOUT * 3)) valgrind -q --leak-check=full --errors-for-leak-kinds=definite \
    --error-exitcode=99 "$1"
}

# The program built with -fsanitize=address,undefined -fno-sanitize-recover=all (build/tests-asan):
# any ASan report (invalid access, use after free, double free, a leak found by LeakSanitizer at
# exit) or UBSan report ends the program with a distinct non-zero status (ASan/LSan 86, UBSan 87)
# and a stack trace in the log. The Rust library is not instrumented, but its heap goes through
# ASan's malloc, so C code misusing the library's memory and leaks of it are still caught. No
# leak suppressions: the library's process-wide state is reachable at exit and is not reported.
run_ctest_sanitized() {
  [ -x "$1" ] || { echo "missing $1 (make c-tests-asan)"; return 1; }
  echo "--- ASan/UBSan $1"
  ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:exitcode=86:detect_stack_use_after_return=1:strict_string_checks=1" \
    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=87" \
    timeout $((CTEST_TIMEOUT * 2)) "$1"
  local rc=$?
  [ $rc -eq 124 ] && echo "FAIL: $1 did not finish within $((CTEST_TIMEOUT * 2))s"
  [ $rc -eq 86 ] && echo "FAIL: AddressSanitizer/LeakSanitizer report above"
  [ $rc -eq 87 ] && echo "FAIL: UndefinedBehaviorSanitizer report above"
  return $rc
}

# ---------------------------------------------------------------------------------------------
# The documented samples, each other and Python `websockets`

need() { local f; for f in "$@"; do [ -x "$f" ] || { echo "missing $f (not built?)"; return 1; }; done; }

VENV_PY="$ROOT/.venv/bin/python"
python_venv() { bash tests/scripts/venv.sh && "$VENV_PY" -c 'import websockets; print("websockets", websockets.__version__)'; }

# start_sample_server LOG [PROGRAM]: starts PROGRAM (default build/ws_server_sample) on a free
# port (retrying when another process took the port in between); sets SRV_PID and SRV_PORT.
start_sample_server() {
  local log="$1" bin="${2:-build/ws_server_sample}" try name
  name="$(basename "$bin")"
  for try in 1 2 3; do
    SRV_PORT="$(free_port)"
    start_bg "$log" "$bin" "$SRV_PORT"; SRV_PID=$BG_PID
    if wait_port "$SRV_PORT" "$SRV_PID" 10; then echo "$name listening on port $SRV_PORT"; return 0; fi
    stop_proc "$SRV_PID" 2 KILL >/dev/null 2>&1
    echo "--- $name did not start (try $try):"; cat "$log"
  done
  return 1
}

# The sample checks take the programs as arguments (default: the native build/ ones; the ARM
# steps pass wrappers that run a cross-built program under QEMU) and prefix the names of their
# extra logs with LOG_TAG.
# sample_client_vs_sample_server [SERVER CLIENT]
sample_client_vs_sample_server() {
  local server="${1:-build/ws_server_sample}" client="${2:-build/ws_client_sample}"
  need "$server" "$client" || return 1
  local slog="$LOGDIR/${LOG_TAG:-}sample-server-1.log" out="$LOGDIR/${LOG_TAG:-}sample-client-1.log" rc ok=0
  start_sample_server "$slog" "$server" || return 1
  timeout 30 "$client" "ws://127.0.0.1:$SRV_PORT/" >"$out" 2>&1 </dev/null; rc=$?
  echo "--- ws_client_sample (exit $rc):"; cat "$out"
  [ $rc -eq 0 ] || { echo "FAIL: ws_client_sample exited $rc"; ok=1; }
  grep -q "connected" "$out" || { echo "FAIL: the client did not say it connected"; ok=1; }
  grep -qF "==> hello, world!" "$out" || { echo "FAIL: the echo '==> hello, world!' did not arrive"; ok=1; }
  check_stop ws_server_sample "$SRV_PID" 15 || ok=1
  echo "--- ws_server_sample output:"; cat "$slog"
  return $ok
}

# tests/python/check_http_ws.py against a service path of an HTTP server started by a Rust test
# (plain, then TLS verified with RootCA.pem); the test is ignored by a bare `cargo test` since it
# needs the venv.
python_client_vs_http_service() {
  need "$VENV_PY" || return 1
  cargo test --test http_ws -- --ignored --exact python_websockets_on_the_service_path --nocapture
}

python_client_vs_sample_server() {  # [SERVER]
  local server="${1:-build/ws_server_sample}"
  need "$server" "$VENV_PY" || return 1
  local slog="$LOGDIR/${LOG_TAG:-}sample-server-2.log" ok=0
  start_sample_server "$slog" "$server" || return 1
  timeout 120 "$VENV_PY" tests/python/check_echo_server.py "ws://127.0.0.1:$SRV_PORT/" || ok=1
  check_stop ws_server_sample "$SRV_PID" 15 || ok=1
  echo "--- ws_server_sample output (last lines):"; tail -n 20 "$slog"
  return $ok
}

# The documented client sample (SCHEME ws: without its TLS lines; wss: as written, with
# tls-disable-certificate-validation=1, a client certificate and tls-use-sni=1) against a Python
# websockets echo server. The Python side must see "hello, world!" and a clean close 1000; over
# wss also a TLS 1.2/1.3 session, the client certificate "Oasis Test Client" and no SNI (the host
# is an IP address). The echo usually does not come back: the sample closes right after sending,
# and websockets answers the close frame at once and sends nothing after it (its log then says
# "not echoed").
sample_client_vs_python_server() {  # SCHEME [CLIENT]
  local scheme="$1" client="${2:-build/${1}_client_sample}" tls_args=()
  need "$client" "$VENV_PY" || return 1
  if [ "$scheme" = wss ]; then
    need_certs fullchain.pem privkey.pem RootCA.pem client_fullchain.pem client_privkey.pem || return 1
    tls_args=(--cert "$CERTS/fullchain.pem" --key "$CERTS/privkey.pem" --ca "$CERTS/RootCA.pem")
  fi
  local plog="$LOGDIR/${LOG_TAG:-}python-$scheme-echo-server.log" out="$LOGDIR/${LOG_TAG:-}$scheme-sample-client.log"
  local port rc ok=0 pid
  start_bg "$plog" "$VENV_PY" tests/python/echo_server.py "${tls_args[@]}" 0; pid=$BG_PID
  port="$(wait_line "$plog" 20)" || { echo "python $scheme echo server did not start:"; cat "$plog"; stop_proc "$pid" 2 KILL; return 1; }
  case "$port" in ''|*[!0-9]*) echo "python $scheme echo server said '$port', not a port"; stop_proc "$pid" 2 KILL; return 1;; esac
  echo "python $scheme echo server on port $port"
  timeout 30 "$client" "$scheme://127.0.0.1:$port/" >"$out" 2>&1 </dev/null; rc=$?
  echo "--- $client (exit $rc):"; cat "$out"
  [ $rc -eq 0 ] || { echo "FAIL: $client exited $rc"; ok=1; }
  grep -q "connected" "$out" || { echo "FAIL: the client did not say it connected"; ok=1; }
  # The close record comes once the Python side closed the TCP connection: wait for it (bounded).
  local end=$(( $(date +%s) + 10 ))
  while ! grep -q '^close ' "$plog" && [ "$(date +%s)" -lt "$end" ]; do sleep 0.1; done
  check_stop "python $scheme echo server" "$pid" 15 || ok=1
  echo "--- python $scheme echo server saw:"; cat "$plog"
  if [ "$scheme" = wss ]; then
    grep -q '^tls TLSv1\.[23] ' "$plog" || { echo "FAIL: no TLS 1.2/1.3 session recorded by the Python server"; ok=1; }
    grep -qxF 'tls-client-certificate CN=Oasis Test Client issuer CN=Oasis Test Root CA' "$plog" \
      || { echo "FAIL: the client did not present client_fullchain.pem (CN Oasis Test Client)"; ok=1; }
    grep -qxF 'tls-sni none' "$plog" || { echo "FAIL: the client sent an SNI for an IP address"; ok=1; }
  fi
  grep -qxF 'text "hello, world!"' "$plog" || { echo "FAIL: the Python server did not receive \"hello, world!\""; ok=1; }
  grep -qE '^close 1000 ' "$plog" || { echo "FAIL: the Python server did not receive a clean close 1000 from the client"; ok=1; }
  if grep -qF "==> hello, world!" "$out"; then echo "(the echo came back too)"
  elif grep -q '^not echoed' "$plog"; then echo "(no echo: websockets sends nothing after the client's close frame)"
  else echo "FAIL: the Python server echoed, but '==> hello, world!' did not arrive at the client"; ok=1; fi
  return $ok
}

# ---------------------------------------------------------------------------------------------
# Autobahn|Testsuite

autobahn_passed() {  # LOG: the run's last line says 0 failed of T > 0
  tail -n 1 "$1" | grep -qE '^autobahn: [0-9]+ ok, [0-9]+ non-strict, 0 failed of [1-9][0-9]*$'
}

autobahn_server() {
  need build/echo_server || return 1
  local out="$ROOT/target/autobahn/server" slog="$LOGDIR/autobahn-echo-server.log" port pid rc try started=0
  mkdir -p "$out"
  for try in 1 2 3; do
    port="$(free_port)"
    start_bg "$slog" build/echo_server "$port" 127.0.0.1; pid=$BG_PID
    if wait_port "$port" "$pid" 10; then started=1; break; fi
    stop_proc "$pid" 2 KILL >/dev/null 2>&1; echo "--- echo_server did not start (try $try):"; cat "$slog"
  done
  [ $started = 1 ] || return 1
  echo "build/echo_server on port $port"
  AUTOBAHN_AGENT=oasisnet-server AUTOBAHN_TIMEOUT=1200 \
    bash tools/autobahn/run-server-tests.sh "$port" "$out" | tee "$out/summary.txt"
  rc=${PIPESTATUS[0]}
  alive "$pid" || echo "FAIL: echo_server died during the run (see $slog)"
  stop_proc "$pid" 15; echo "echo_server exit status after SIGINT: $?"
  echo "--- echo_server output (last lines):"; tail -n 20 "$slog"
  [ $rc -eq 0 ] && autobahn_passed "$out/summary.txt"
}

autobahn_client() {
  need build/tests/autobahn_client || return 1
  local out="$ROOT/target/autobahn/client" rc
  mkdir -p "$out"
  AUTOBAHN_AGENT=oasisnet-client AUTOBAHN_TIMEOUT=1200 \
    bash tools/autobahn/run-client-tests.sh "$(free_port)" "$out" -- "$ROOT/build/tests/autobahn_client" \
    | tee "$out/summary.txt"
  rc=${PIPESTATUS[0]}
  echo "--- autobahn_client output (last lines):"; tail -n 20 "$out/client.log"
  [ $rc -eq 0 ] && autobahn_passed "$out/summary.txt"
}

# ---------------------------------------------------------------------------------------------
# TLS: certificates, the documented secure samples, Autobahn over wss://

# The samples have this directory compiled in (Makefile: CERT_DIR).
CERTS="$ROOT/build/certs"

# make-certs.sh from scratch (into a temporary directory: it must work and take < 10 s), then for
# build/certs (reused when up to date), whose certificates are listed.
certificates() {
  local t0 ms f tmp rc
  tmp="$(mktemp -d)"
  t0=$(date +%s%N)
  bash tests/scripts/make-certs.sh "$tmp/certs"; rc=$?
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  rm -rf "$tmp"
  [ $rc -eq 0 ] || { echo "FAIL: make-certs.sh from scratch exited $rc"; return 1; }
  echo "make-certs.sh from scratch took $ms ms"
  [ $ms -lt 10000 ] || { echo "FAIL: make-certs.sh took 10 s or more"; return 1; }
  bash tests/scripts/make-certs.sh "$CERTS" || return 1
  for f in "$CERTS"/*.pem; do
    case "$f" in *key*.pem) continue;; esac
    echo "--- $(basename "$f")"
    openssl x509 -in "$f" -noout -subject -issuer -enddate -ext subjectAltName 2>&1 \
      | grep -v -e '^$' -e '^No extensions in certificate$'
  done
}

need_certs() {
  local f
  for f in "$@"; do [ -s "$CERTS/$f" ] || { echo "missing $CERTS/$f (see the certificates step)"; return 1; }; done
}

# python_client_vs_wss_sample_server PROGRAM SERVER-CERT: the Python client verifies PROGRAM's
# certificate against RootCA.pem (for 127.0.0.1 and for localhost), checks that it is SERVER-CERT,
# then runs the same echo checks as over ws://.
python_client_vs_wss_sample_server() {
  local bin="$1" cert="$2" name slog ok=0
  name="$(basename "$bin")"; slog="$LOGDIR/${LOG_TAG:-}$name-server.log"
  need "$bin" "$VENV_PY" || return 1
  need_certs RootCA.pem "$cert" || return 1
  start_sample_server "$slog" "$bin" || return 1
  timeout 120 "$VENV_PY" tests/python/check_echo_server.py --ca "$CERTS/RootCA.pem" \
    --expect-cert "$CERTS/$cert" "wss://127.0.0.1:$SRV_PORT/" || ok=1
  check_stop "$name" "$SRV_PID" 15 || ok=1
  echo "--- $name output (last lines):"; tail -n 20 "$slog"
  return $ok
}

autobahn_server_wss() {
  need build/echo_server || return 1
  need_certs fullchain.pem privkey.pem || return 1
  local out="$ROOT/target/autobahn/server-wss" slog="$LOGDIR/autobahn-wss-echo-server.log" port pid rc try started=0
  mkdir -p "$out"
  for try in 1 2 3; do
    port="$(free_port)"
    start_bg "$slog" build/echo_server "$port" 127.0.0.1 "$CERTS/fullchain.pem" "$CERTS/privkey.pem"; pid=$BG_PID
    if wait_port "$port" "$pid" 10; then started=1; break; fi
    stop_proc "$pid" 2 KILL >/dev/null 2>&1; echo "--- echo_server did not start (try $try):"; cat "$slog"
  done
  [ $started = 1 ] || return 1
  echo "build/echo_server (RSA certificate) on wss://127.0.0.1:$port"
  AUTOBAHN_AGENT=oasisnet-server-wss AUTOBAHN_TIMEOUT=1200 \
    bash tools/autobahn/run-server-tests.sh "wss://127.0.0.1:$port" "$out" | tee "$out/summary.txt"
  rc=${PIPESTATUS[0]}
  alive "$pid" || echo "FAIL: echo_server died during the run (see $slog)"
  stop_proc "$pid" 15; echo "echo_server exit status after SIGINT: $?"
  echo "--- echo_server output (last lines):"; tail -n 20 "$slog"
  [ $rc -eq 0 ] && autobahn_passed "$out/summary.txt"
}

# The suite serves wss:// with the RSA server certificate; the client verifies it against
# RootCA.pem (AUTOBAHN_CA: the IP address 127.0.0.1 is in the certificate's subjectAltName).
autobahn_client_wss() {
  need build/tests/autobahn_client || return 1
  need_certs fullchain.pem privkey.pem RootCA.pem || return 1
  local out="$ROOT/target/autobahn/client-wss" rc
  mkdir -p "$out"
  AUTOBAHN_AGENT=oasisnet-client-wss AUTOBAHN_TIMEOUT=1200 AUTOBAHN_CA="$CERTS/RootCA.pem" \
    AUTOBAHN_TLS_CERT="$CERTS/fullchain.pem" AUTOBAHN_TLS_KEY="$CERTS/privkey.pem" \
    bash tools/autobahn/run-client-tests.sh "$(free_port)" "$out" -- "$ROOT/build/tests/autobahn_client" \
    | tee "$out/summary.txt"
  rc=${PIPESTATUS[0]}
  echo "--- autobahn_client output (last lines):"; tail -n 20 "$out/client.log"
  [ $rc -eq 0 ] && autobahn_passed "$out/summary.txt"
}

# ---------------------------------------------------------------------------------------------
# The HTTP demo in a real browser (headless Chromium over the DevTools protocol): the page loads,
# opens its WebSocket, sees the pushed status lines, sends a message and sees the echo; the demo
# checks what it received (tests/scripts/browser-step.sh). A screenshot is kept with the logs.

# shellcheck source=tests/scripts/browser-step.sh
. tests/scripts/browser-step.sh
browser() { need build/http_demo || return 1; browser_step build/http_demo "$1" "$(free_port)"; }

# ---------------------------------------------------------------------------------------------
# ARM: the library cross-built (make cross), its programs run under QEMU against native peers.

# shellcheck source=tests/scripts/arm-check.sh
. tests/scripts/arm-check.sh

# ---------------------------------------------------------------------------------------------

echo "# oasisnet tests: logs in target/test-logs/"
step "header check (cargo build --release, cbindgen vs include/oasis_net.h)" 1500 bash tests/scripts/check-header.sh
# The oldest compiler Cargo.toml names (rust-version) still builds the library, with every
# feature and without TLS (tests/scripts/setup.sh installs that toolchain, minimal profile).
msrv_check() {
  local v; v="$(sed -n 's/^rust-version *= *"\([^"]*\)".*/\1/p' Cargo.toml)"
  [ -n "$v" ] || { echo "FAIL: no rust-version in Cargo.toml"; return 1; }
  rustup run "$v" rustc --version || { echo "FAIL: no Rust $v toolchain (setup.sh installs it)"; return 1; }
  cargo "+$v" check --lib --target-dir target/msrv || return 1
  cargo "+$v" check --lib --target-dir target/msrv --no-default-features --features client,server,http
}

step "cargo fmt --check" 300 cargo fmt --all -- --check --color never
step "cargo clippy -D warnings" 1500 cargo clippy --all-targets -- -D warnings
# Code that only one architecture compiles (the x86_64 run-time AVX2 path, NEON or words on
# ARM) is linted for each target the library ships for.
clippy_cross() {
  local target
  for target in aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf thumbv7neon-unknown-linux-gnueabihf; do
    cargo clippy --all-targets --target "$target" -- -D warnings || { echo "FAIL: clippy, $target"; return 1; }
  done
}
step "cargo clippy -D warnings, aarch64, armv7 and thumbv7neon" 1500 clippy_cross
step "rust tests" 1500 rust_tests
step "msrv: the library builds with the rust-version of Cargo.toml" 900 msrv_check
step "cargo features: smaller builds (clippy, header, tests/features.rs and docs.rs)" 900 feature_variants
step "fuzz build (cargo-fuzz, libFuzzer + ASan; rustfmt of fuzz/)" 1800 fuzz_build
for target in $(bash tests/scripts/fuzz.sh list); do
  step "fuzz $target" $((FUZZ_TEST_SECS + 900)) fuzz_run "$target"
done
step "build c-examples" 600 build_examples
step "build tests/c" 600 build_ctests
step "static link (liboasisnet.a)" 600 static_link
step "install: liboasisnet.so exports exactly the functions of include/oasis_net.h; soname" 300 \
  install_check exports
step "install: make install, tree moved, programs built with pkg-config and CMake run" 600 \
  install_check install
step "build tests/c with ASan/UBSan" 600 build_ctests_asan

for src in tests/c/*.c tests/c/*.cpp; do
  [ -e "$src" ] || continue
  name="$(basename "${src%.*}")"
  [ "$name" = autobahn_client ] && continue   # not self-checking: the Autobahn step runs it
  step "c test $name" $((CTEST_TIMEOUT + 30)) run_ctest "build/tests/$name"
  step "c test $name under valgrind" $((CTEST_TIMEOUT * 3 + 30)) run_ctest_valgrind "build/tests/$name"
  step "c test $name under ASan/UBSan" $((CTEST_TIMEOUT * 2 + 30)) run_ctest_sanitized "build/tests-asan/$name"
done

step "python venv (tests/python/requirements.txt)" 600 python_venv
step "samples: ws_client_sample vs ws_server_sample" 120 sample_client_vs_sample_server
step "samples: python websockets client vs ws_server_sample" 240 python_client_vs_sample_server
step "samples: ws_client_sample vs python websockets server" 120 sample_client_vs_python_server ws
step "http: python websockets client vs an HTTP server's service path (ws, wss)" 600 python_client_vs_http_service
step "autobahn: library as server (build/echo_server)" 1300 autobahn_server
step "autobahn: library as client (tests/c/autobahn_client.c)" 1300 autobahn_client
step "certificates (make-certs.sh)" 60 certificates
step "wss samples: python websockets client vs wss_server_sample (RSA)" 240 \
  python_client_vs_wss_sample_server build/wss_server_sample fullchain.pem
step "wss samples: python websockets client vs wss_server_sample (ECDSA)" 240 \
  python_client_vs_wss_sample_server build/wss_server_sample_ecdsa ec_fullchain.pem
step "wss samples: wss_client_sample vs python websockets wss server" 120 sample_client_vs_python_server wss
step "browser: the HTTP demo's page and WebSocket over http (headless Chromium)" 120 browser http
step "browser: the HTTP demo's page and WebSocket over https (headless Chromium)" 120 browser https
step "arm: make cross (liboasisnet for ${ARM_TARGETS[*]}, $ARM_PROFILE)" 2400 arm_cross_lib
step "arm: flash size of liboasisnet.so, with and without TLS, against the budgets" 2400 arm_sizes
for t in "${ARM_TARGETS[@]}"; do
  step "arm $t: build samples, HTTP demo, tests/c (shared and static)" 600 arm_build "$t"
  step "arm $t: tests/c under qemu" $((CTEST_TIMEOUT * 6 + 30)) arm_ctests "$t"
  step "arm $t: samples under qemu vs native peers (ws, wss)" 600 arm_samples "$t"
  step "arm $t: HTTP demo under qemu vs check_http_demo.py (http, https)" 600 arm_demo "$t"
done
step "autobahn over wss: library as server (build/echo_server)" 1300 autobahn_server_wss
step "autobahn over wss: library as client (tests/c/autobahn_client.c)" 1300 autobahn_client_wss

echo "# step timings (seconds):"
for t in "${timings[@]}"; do echo "# $t"; done
echo "# total $(( $(date +%s) - run_started ))s"
if [ ${#failed_names[@]} -gt 0 ]; then
  echo "# failed:"; for f in "${failed_names[@]}"; do echo "#   $f"; done
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
