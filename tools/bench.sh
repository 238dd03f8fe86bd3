#!/usr/bin/env bash
# The side-by-side echo benchmark with this library's servers added as peers.
#
#   tools/bench.sh                      quick matrix + connection rate + 5000 idle connections
#   RUNS=3 TYPE=text REPS=3 tools/bench.sh   three whole runs, then tools/bench_targets.py judges
#                                       them against uWebSockets (the median of the runs)
#   CONTROL=1 RUNS=3 ... tools/bench.sh adds a second copy of uWebSockets (uwebsockets-again),
#                                       judged against the first by the same targets: how often
#                                       a server misses them against itself on this machine
#   BENCH_SRC=DIR tools/bench.sh        where the shared benchmark lives (default ../shared/bench)
#   PEERS="..." QUICK=0 HOLD=10000 ...  passed through to the benchmark's run.sh
#
# The benchmark is copied to a writable temporary folder (its source is read-only). The servers
# under test: oasisnet = build/echo_server (c-examples/echo_server.c over the C ABI) and
# oasisnet-sample = build/ws_server_sample_nolog (the documented C++ sample with its
# per-message DLOG lines compiled out, make sample-nolog). uWebSockets takes part when its
# binary is at UWS_BIN (default /tmp/bench-peers/uws_echo; build it with the benchmark's
# peers/uws/build.sh from snapshots of uNetworking/uWebSockets and uNetworking/uSockets). The
# reports (markdown) are printed and kept under target/bench/.
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="${BENCH_SRC:-$top/../shared/bench}"
[ -x "$src/run.sh" ] || { echo "bench: no benchmark at $src (set BENCH_SRC)" >&2; exit 2; }
make -C "$top" -s lib examples build/ws_server_sample_nolog >/dev/null
work="${BENCH_WORK:-/tmp/oasisnet-bench}"
mkdir -p "$work"
# Keep built peers between runs; refresh the scripts.
cp -r "$src"/. "$work"/
mkdir -p "$top/target/bench"
uws_bin="${UWS_BIN:-/tmp/bench-peers/uws_echo}"
peers="tungstenite-mio oasisnet oasisnet-sample"
if [ -x "$uws_bin" ]; then
    peers="tungstenite-mio uwebsockets oasisnet oasisnet-sample"
else
    echo "bench: no uWebSockets at $uws_bin; build it with $src/peers/uws/build.sh to compare" >&2
fi
extra="oasisnet|9310|$top/build/echo_server {port} 127.0.0.1;oasisnet-sample|9311|$top/build/ws_server_sample_nolog {port}"
if [ "${CONTROL:-0}" = 1 ] && [ -x "$uws_bin" ]; then
    peers="$peers uwebsockets-again"
    extra="$extra;uwebsockets-again|9312|$uws_bin {port}"
fi
cd "$work"
results=()
for run in $(seq "${RUNS:-1}"); do
    stamp="$(date +%Y%m%d-%H%M%S)"
    PEERS="${PEERS:-$peers}" UWS_BIN="$uws_bin" \
    EXTRA_PEERS="$extra" \
    QUICK="${QUICK:-1}" HOLD="${HOLD:-5000}" RESULTS="$top/target/bench" OUT="$top/target/bench/$stamp.jsonl" \
      ./run.sh
    results+=("$top/target/bench/$stamp.jsonl")
    echo "bench: run $run of ${RUNS:-1}: ${results[-1]}" >&2
done
if [ -x "$uws_bin" ]; then
    python3 "$top/tools/bench_targets.py" "${results[@]}"
fi
