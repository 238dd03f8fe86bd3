#!/usr/bin/env bash
# Server memory per idle ws connection, as the shared benchmark's hold test measures it:
# build/echo_server (C API, one event loop) holds N connections opened by the benchmark's load
# generator (wsload --hold), each after one echoed 32-byte text message; wsload reads the
# server's VmRSS before and while holding them (bytes_per_conn). Repeats R times, each on a
# fresh server, and prints one JSON line per run.
#
#   tools/idle-rss.sh [N=5000] [R=3]     BENCH_SRC=DIR: the shared benchmark (default ../shared/bench)
#                                        SERVER="cmd {port}": another server (default build/echo_server)
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
n="${1:-5000}"
reps="${2:-3}"
. "$top/tools/wsload-common.sh"
wsload_prepare
[ -n "${SERVER:-}" ] || make -C "$top" -s lib examples >/dev/null
server="$top/build/echo_server {port} 127.0.0.1"
[ -z "${SERVER:-}" ] || server="$SERVER"
out="$(mktemp)"; srv=""
trap '[ -n "$srv" ] && kill "$srv" 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq "$reps"); do
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    ${server//\{port\}/$port} >"$out" 2>&1 & srv=$!
    wait_listening "$out" >/dev/null
    sleep 0.5
    "$wsload" --url "ws://127.0.0.1:$port/" --hold "$n" --secs 2 \
        --size 32 --close-timeout 10 --text --pid "$srv" | tail -1
    kill "$srv"; wait "$srv" 2>/dev/null || true; srv=""
done
