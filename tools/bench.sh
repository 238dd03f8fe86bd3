#!/usr/bin/env bash
# The side-by-side echo benchmark with this library's C echo server added as a peer.
#
#   tools/bench.sh                      quick matrix + connection rate + 5000 idle connections
#   BENCH_SRC=DIR tools/bench.sh        where the shared benchmark lives (default ../shared/bench)
#   PEERS="..." QUICK=0 HOLD=10000 ...  passed through to the benchmark's run.sh
#
# The benchmark is copied to a writable temporary folder (its source is read-only) and the
# echo server under test is build/echo_server (c-examples/echo_server.c over the C ABI). The
# report (markdown, ratios to tungstenite-mio) is printed at the end and kept under target/bench/.
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="${BENCH_SRC:-$top/../shared/bench}"
[ -x "$src/run.sh" ] || { echo "bench: no benchmark at $src (set BENCH_SRC)" >&2; exit 2; }
make -C "$top" -s lib examples >/dev/null
work="${BENCH_WORK:-/tmp/oasisnet-bench}"
mkdir -p "$work"
# Keep built peers between runs; refresh the scripts.
cp -r "$src"/. "$work"/
mkdir -p "$top/target/bench"
cd "$work"
PEERS="${PEERS:-tungstenite-mio oasisnet}" \
EXTRA_PEERS="oasisnet|9310|$top/build/echo_server {port} 127.0.0.1" \
QUICK="${QUICK:-1}" HOLD="${HOLD:-5000}" RESULTS="$top/target/bench" \
  ./run.sh
