#!/usr/bin/env bash
# System calls per echoed message, by name, for servers driven through one cell of the echo
# benchmark, and the same for wsload (the load generator) on the other end: each server runs
# pinned to CPU 0 under `perf stat` with the kernel's system-call tracepoints (no hardware
# counters needed), wsload on CPU 1 under its own `perf stat`, which also gives wsload's CPU
# time per message; each count is divided by the messages wsload saw echoed. (strace would
# slow the server enough to change how much each read finds waiting.) How a server writes sets
# how often wsload wakes and reads, so the client's line tells what a server costs its peer.
# perf attaches to the server as wsload starts, so the first milliseconds' calls may go
# uncounted: well under 1 % of a run of a few seconds. A command that is a wrapper script must
# `exec` the server, so that the PID counted and stopped is the server's.
#
#   tools/syscalls-per-message.sh SECS CONNS SIZE WINDOW NAME="cmd {port}" ...
#   e.g. tools/syscalls-per-message.sh 3 1 65536 16 uws="/tmp/bench-peers/uws_echo {port}" \
#          echo="build/echo_server {port} 127.0.0.1"
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ $# -ge 5 ] || { sed -n '2,15p' "$0"; exit 2; }
secs="$1" conns="$2" size="$3" window="$4"; shift 4
. "$top/tools/wsload-common.sh"
wsload_prepare
work="$(mktemp -d)"
server="" perf=""
trap 'for p in $perf $server; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
calls="recvfrom recvmsg read sendto sendmsg write writev epoll_wait epoll_pwait"
events=$(for c in $calls; do printf 'syscalls:sys_enter_%s,' "$c"; done)
for spec in "$@"; do
    name="${spec%%=*}"; cmd="${spec#*=}"
    start_pinned "$cmd" "$work/$name.log"
    perf stat -x, -e "${events%,}" -p "$server" -o "$work/$name.perf" & perf=$!
    perf stat -x, -e "${events%,},task-clock" -o "$work/$name.client" \
        taskset -c 1 "$wsload" --url "ws://127.0.0.1:$port/" --text --conns "$conns" \
        --size "$size" --window "$window" --secs "$secs" --warmup 0 2>/dev/null |
        tail -1 >"$work/$name.json"
    kill -INT "$perf" 2>/dev/null || true; wait "$perf" || true; perf=""
    kill "$server"; wait "$server" 2>/dev/null || true; server=""
    python3 - "$name" "$work/$name.json" "$work/$name.perf" "$work/$name.client" <<'PY'
import json, sys
name, report, server, client = sys.argv[1:5]
messages = json.load(open(report))["msgs"]
if not messages:
    sys.exit(f"{name}: no message was echoed")


def counts(path):
    """Each counted event of a `perf stat -x,` file: its name and its count per message."""
    found = {}
    for line in open(path):
        fields = line.strip().split(",")
        if len(fields) < 3 or not fields[0].replace(".", "").isdigit():
            continue
        found[fields[2].removeprefix("syscalls:sys_enter_")] = float(fields[0]) / messages
    return found


def calls(found):
    return ", ".join(f"{k} {v:.3f}" for k, v in found.items() if k != "task-clock" and v > 0)


wsload = counts(client)
if "task-clock" not in wsload:
    sys.exit(f"{name}: perf counted no task-clock for wsload ({client})")
print(f"{name:12s} {messages:8d} messages   per message: " + calls(counts(server)))
# (task-clock is in milliseconds.)
print(f"{'':12s} {'':8s} wsload, per message: {calls(wsload)}; "
      f"CPU {wsload['task-clock'] * 1000:.2f} us")
PY
done
