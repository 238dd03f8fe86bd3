#!/usr/bin/env bash
# The one way to run oasisnet's fuzz targets (fuzz/: cargo-fuzz and libFuzzer, on the stable
# toolchain with RUSTC_BOOTSTRAP=1). `make fuzz` and the "fuzz TARGET" steps of
# tests/run-tests.sh both call it.
#
#   usage: tests/scripts/fuzz.sh build              install cargo-fuzz when missing, build every target
#          tests/scripts/fuzz.sh run [TARGET...]    run each TARGET (default: all) for FUZZ_SECS seconds
#          tests/scripts/fuzz.sh list               the target names
#
# For each target `run` prints the command, then one line: executions, coverage (libFuzzer's
# cov = edges, ft = features), corpus size, and "no crash" or "FOUND ..." with the artifact
# (its path, base64 and a hex dump, so a log keeps it) and the command that reproduces it. The
# exit status is non-zero when a target crashed, failed an assertion, timed out on an input or
# did not build.
#
# Inputs: the committed seeds fuzz/corpus/TARGET/ (read only) and the growing working corpus
# fuzz/work/corpus/TARGET/ (gitignored; new inputs go there). Artifacts: fuzz/artifacts/TARGET/.
#
# env: FUZZ_SECS (default 60), FUZZ_SANITIZER (address, the default, or none),
#      FUZZ_ARGS (more libFuzzer options, e.g. "-max_len=20000"),
#      CARGO_FUZZ_VERSION (the cargo-fuzz to install when missing, default 0.13.2),
#      FUZZ_INSTALL=0 (`run` fails instead of installing a missing cargo-fuzz).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT="$PWD"
FUZZ_SECS="${FUZZ_SECS:-60}"
FUZZ_SANITIZER="${FUZZ_SANITIZER:-address}"
FUZZ_ARGS="${FUZZ_ARGS:-}"
CARGO_FUZZ_VERSION="${CARGO_FUZZ_VERSION:-0.13.2}"
# cargo-fuzz passes nightly-only flags (-Zsanitizer, -Cpasses=sancov-module, ...) to rustc; the
# stable toolchain accepts them with RUSTC_BOOTSTRAP=1. No nightly toolchain is needed.
export RUSTC_BOOTSTRAP=1
export RUST_BACKTRACE=1
export PATH="$HOME/.cargo/bin:$PATH"

targets() { sed -n 's/^name = "\([a-z_]*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^oasisnet-fuzz$'; }

# The largest input libFuzzer makes for a target. The handshake targets and http_request go
# beyond the 8192-byte head limit so that the limit itself is exercised.
max_len() {
  case "$1" in
    server_handshake|client_handshake|http_request) echo 12000 ;;
    frame) echo 8192 ;;
    # Past 16 KiB, so that large frames take the direct-read path.
    protocol_server|protocol_client) echo 40000 ;;
    *) echo 4096 ;;
  esac
}

ensure_cargo_fuzz() {
  if cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz: $(cargo fuzz --version 2>&1 | head -n 1)"
    return 0
  fi
  if [ "${FUZZ_INSTALL:-1}" = 0 ]; then
    echo "cargo-fuzz is missing (the build step installs it: tests/scripts/fuzz.sh build)"
    return 1
  fi
  echo "cargo-fuzz is missing: cargo install cargo-fuzz --version $CARGO_FUZZ_VERSION --locked (into ~/.cargo/bin)"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked || return 1
  cargo fuzz --version
}

build() {
  ensure_cargo_fuzz || return 1
  echo "+ RUSTC_BOOTSTRAP=1 cargo fuzz build -s $FUZZ_SANITIZER"
  cargo fuzz build -s "$FUZZ_SANITIZER"
}

# run_one TARGET: runs it, prints the summary; non-zero when something was found.
run_one() {
  local target="$1" work="$ROOT/fuzz/work" log rc execs covline cov ft corp artifact
  [ -d "fuzz/corpus/$target" ] || { echo "fuzz $target: no such target (fuzz/corpus/$target missing)"; return 1; }
  mkdir -p "$work/corpus/$target" "fuzz/artifacts/$target"
  log="$work/$target.log"
  # shellcheck disable=SC2206
  local cmd=(cargo fuzz run -s "$FUZZ_SANITIZER" "$target" "fuzz/work/corpus/$target" "fuzz/corpus/$target"
             -- -max_total_time="$FUZZ_SECS" -max_len="$(max_len "$target")" -timeout=10
             -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$target/" $FUZZ_ARGS)
  echo "+ RUSTC_BOOTSTRAP=1 ${cmd[*]}"
  # Bounded: the run itself, plus time for a build when the target is not built yet.
  timeout $((FUZZ_SECS + 900)) "${cmd[@]}" >"$log" 2>&1 </dev/null
  rc=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)"
  covline="$(grep -E '^#[0-9]+.* cov: ' "$log" | tail -n 1)"
  cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$covline")"
  ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$covline")"
  corp="$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$covline")"
  if [ $rc -eq 0 ]; then
    echo "fuzz $target: ${execs:-?} executions in ${FUZZ_SECS}s, cov: ${cov:-?} ft: ${ft:-?}, corpus ${corp:-?}: no crash"
    return 0
  fi
  echo "--- what failed (panic message or sanitizer report) in $log:"
  grep -m 3 -A 3 -E "panicked at|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)" "$log"
  echo "--- last lines of the libFuzzer output:"
  tail -n 40 "$log" | cut -c 1-300
  artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
  echo "fuzz $target: ${execs:-?} executions, cov: ${cov:-?} ft: ${ft:-?}: FOUND something (exit status $rc)"
  if [ -n "$artifact" ] && [ -f "$artifact" ]; then
    echo "  artifact: $artifact ($(wc -c <"$artifact") bytes)"
    echo "  base64: $(base64 -w 0 "$artifact")"
    echo "  hex:"; od -A d -t x1z -v "$artifact" | head -n 64 | sed 's/^/    /'
    echo "  reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run -s $FUZZ_SANITIZER $target $artifact"
  else
    echo "  no artifact written (a build failure or the run's own time limit; see the output above)"
  fi
  return 1
}

case "${1:-run}" in
  list) targets ;;
  build) build ;;
  run)
    shift || true
    [ $# -gt 0 ] || set -- $(targets)
    ensure_cargo_fuzz || exit 1
    failed=0
    for target in "$@"; do run_one "$target" || failed=$((failed + 1)); done
    [ "$failed" -eq 0 ] || { echo "fuzz: $failed target(s) found something"; exit 1; }
    ;;
  *) echo "usage: $0 build | run [TARGET...] | list" >&2; exit 2 ;;
esac
