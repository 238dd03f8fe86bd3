#!/usr/bin/env bash
# One cell of the echo benchmark, servers side by side in interleaved rounds: each round runs
# every server once (one second, after 0.3 s of warm-up), so that what the machine does at a
# given moment falls on all of them alike. Each server is started once, pinned to CPU 0;
# wsload is pinned to CPU 1. Prints each server's median msgs/s and server µs per message over
# the rounds, and every round's msgs/s.
#
#   tools/cell-rounds.sh ROUNDS CONNS SIZE WINDOW NAME="cmd {port}" ...
#   e.g. tools/cell-rounds.sh 12 1 65536 16 uws="/tmp/bench-peers/uws_echo {port}" \
#          echo="build/echo_server {port} 127.0.0.1"
# (A server built against another copy of the library: a wrapper script that sets
# LD_LIBRARY_PATH and execs the program, so that the process keeps its PID.)
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ $# -ge 5 ] || { sed -n '2,12p' "$0"; exit 2; }
rounds="$1" conns="$2" size="$3" window="$4"; shift 4
. "$top/tools/wsload-common.sh"
wsload_prepare
work="$(mktemp -d)"
declare -A pids ports
names=()
server=""
trap 'for p in "${pids[@]}" $server; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
for spec in "$@"; do
    name="${spec%%=*}"; cmd="${spec#*=}"; names+=("$name")
    start_pinned "$cmd" "$work/$name.log"
    pids[$name]=$server ports[$name]=$port
done
for _ in $(seq "$rounds"); do
    for name in "${names[@]}"; do
        taskset -c 1 "$wsload" --url "ws://127.0.0.1:${ports[$name]}/" --text --conns "$conns" \
            --size "$size" --window "$window" --secs 1 --warmup 0.3 --pid "${pids[$name]}" \
            2>/dev/null | tail -1 | python3 -c \
            "import json,sys; j=json.load(sys.stdin); print('$name', j['msgs_per_s'], j['server_us_per_op'])" \
            >>"$work/rounds"
    done
done
python3 - "$work/rounds" <<'PY'
import collections, statistics, sys
rate, cost = collections.defaultdict(list), collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, r, us = line.split()
    rate[name].append(float(r)); cost[name].append(float(us))
for name in rate:
    rounds = " ".join(f"{r:.0f}" for r in rate[name])
    print(f"{name:12s} median {statistics.median(rate[name]):9.0f} msg/s  "
          f"{statistics.median(cost[name]):7.3f} us/msg   rounds: {rounds}")
PY
