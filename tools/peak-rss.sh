#!/usr/bin/env bash
# A server's memory through one cell of the echo benchmark: its resident set (VmRSS) once it
# listens, then its peak (VmHWM) and its resident set after SECS seconds of load, for servers
# one after the other. Each server runs pinned to CPU 0, wsload on CPU 1. What a read size or a
# buffer policy costs in memory, beside what it buys in time (tools/cell-rounds.sh). A command
# that is a wrapper script must `exec` the server, so that the PID read is the server's.
#
#   tools/peak-rss.sh SECS CONNS SIZE WINDOW NAME="cmd {port}" ...
#   e.g. tools/peak-rss.sh 2 1 65536 16 uws="/tmp/bench-peers/uws_echo {port}" \
#          echo="build/echo_server {port} 127.0.0.1"
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ $# -ge 5 ] || { sed -n '2,10p' "$0"; exit 2; }
secs="$1" conns="$2" size="$3" window="$4"; shift 4
. "$top/tools/wsload-common.sh"
wsload_prepare
work="$(mktemp -d)"
server=""
trap '[ -n "$server" ] && { kill "$server" 2>/dev/null || true; }; rm -rf "$work"' EXIT
kib() { awk -v key="$1:" '$1 == key { print $2 }' "/proc/$2/status"; }
for spec in "$@"; do
    name="${spec%%=*}"; cmd="${spec#*=}"
    start_pinned "$cmd" "$work/$name.log"
    start=$(kib VmRSS "$server")
    taskset -c 1 "$wsload" --url "ws://127.0.0.1:$port/" --text --conns "$conns" --size "$size" \
        --window "$window" --secs "$secs" --warmup 0 2>/dev/null | tail -1 >"$work/$name.json"
    kill -0 "$server" 2>/dev/null || { echo "$name: gone under load" >&2; cat "$work/$name.log" >&2; exit 1; }
    messages=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["msgs"])' "$work/$name.json")
    printf '%-12s %9s messages   VmRSS listening %6s KiB, peak %6s KiB, after %6s KiB\n' \
        "$name" "$messages" "$start" "$(kib VmHWM "$server")" "$(kib VmRSS "$server")"
    kill "$server"; wait "$server" 2>/dev/null || true; server=""
done
