#!/usr/bin/env bash
# Server CPU, context switches and system calls per connection cycle (connect, upgrade, close),
# side by side: each server is started pinned to CPU 0 and driven by the shared benchmark's
# wsload --connect-rate (concurrency 32, pinned to CPU 1) for SECS seconds, under
# `perf stat -e task-clock,context-switches,raw_syscalls:sys_enter`. Prints one line per server
# and run: wsload's server µs per cycle, and perf's counts per cycle. Needs perf (linux-perf).
#
#   tools/cycle-perf.sh [RUNS=2] [SECS=3] NAME="cmd {port}" ...
#   e.g. tools/cycle-perf.sh 2 3 echo="build/echo_server {port} 127.0.0.1" uws="/tmp/bench-peers/uws_echo {port}"
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-2}"; secs="${2:-3}"; shift 2 || true
[ $# -gt 0 ] || { sed -n '2,9p' "$0"; exit 2; }
. "$top/tools/wsload-common.sh"
wsload_prepare
work="$(mktemp -d)"; server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq "$runs"); do
    for spec in "$@"; do
        name="${spec%%=*}"; cmd="${spec#*=}"
        start_pinned "$cmd" "$work/server.log"
        perf stat -x, -e task-clock,context-switches,raw_syscalls:sys_enter -p "$server" -o "$work/perf" & perf=$!
        taskset -c 1 "$wsload" --url "ws://127.0.0.1:$port/" --connect-rate --secs "$secs" --warmup 0.2 \
            --pid "$server" | tail -1 >"$work/load.json"
        kill -INT "$perf"; wait "$perf" || true
        kill "$server"; wait "$server" 2>/dev/null || true; server=""
        python3 - "$name" "$work/load.json" "$work/perf" <<'PY'
import json, sys
name, load, perf = sys.argv[1:]
j = json.load(open(load))
counts = {}
for line in open(perf):
    fields = line.strip().split(",")
    if len(fields) > 3 and fields[0][:1].isdigit():
        counts[fields[2]] = float(fields[0])
# perf counted the warm-up too; wsload's cycle rate covers the measured seconds only.
cycles = j["handshakes_per_s"] * (j["secs"] + 0.2)
print(f"{name:12s} {j['server_us_per_op']:7.1f} us/cycle (wsload)  "
      f"{counts.get('context-switches', 0) / cycles:.2f} context switches, "
      f"{counts.get('raw_syscalls:sys_enter', 0) / cycles:.1f} system calls per cycle")
PY
    done
done
