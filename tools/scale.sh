#!/usr/bin/env bash
# How the echo server scales with the number of connections and of event-loop threads.
#
#   tools/scale.sh                     CONNS="1 10 100 1000 10000" THREADS="1 2" SIZE=32 WINDOW=1
#   SECS=3 WARMUP=1 tools/scale.sh     measured and warm-up seconds per cell
#
# For every (event-loop threads, connections) cell a fresh build/echo_server (C API;
# ECHO_EVENT_LOOP_THREADS sets the library's event-loop-threads) is driven by the shared
# benchmark's load generator (wsload, text messages, every connection echoing with WINDOW in
# flight). With one loop thread the server is pinned to CPU 0 and wsload to CPU 1; with two the
# server may use both CPUs and shares CPU 1 with wsload, so on a 2-core machine that row is
# bounded by wsload rather than by the server. Printed per cell: messages per second, server and
# client CPU per message (µs, /proc of each process over the measured window), p99 latency,
# and memory: VmRSS before the load and the peak (VmHWM) while serving, and the peak growth per
# connection. One JSON line per cell is kept in target/bench/scale-*.jsonl.
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$top/tools/wsload-common.sh"
wsload_prepare
make -C "$top" -s lib examples >/dev/null
conns_list="${CONNS:-1 10 100 1000 10000}"
threads_list="${THREADS:-1 2}"
size="${SIZE:-32}"; window="${WINDOW:-1}"; secs="${SECS:-3}"; warmup="${WARMUP:-1}"
mkdir -p "$top/target/bench"
results="$top/target/bench/scale-$(date +%Y%m%d-%H%M%S).jsonl"
log="$(mktemp)"; srv=""
trap '[ -n "$srv" ] && kill "$srv" 2>/dev/null; rm -f "$log"' EXIT

kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$2/status"; }

for threads in $threads_list; do
    server_cpus=0; [ "$threads" -gt 1 ] && server_cpus=0-1
    for conns in $conns_list; do
        ECHO_EVENT_LOOP_THREADS=$threads taskset -c "$server_cpus" \
            "$top/build/echo_server" 0 127.0.0.1 >"$log" 2>&1 & srv=$!
        port="$(wait_listening "$log")"
        rss_before=$(kib VmRSS "$srv")
        line=$(taskset -c 1 "$wsload" --url "ws://127.0.0.1:$port/" --conns "$conns" --size "$size" \
            --window "$window" --text --secs "$secs" --warmup "$warmup" --connect-timeout 60 \
            --close-timeout 20 --pid "$srv" | tail -1)
        hwm=$(kib VmHWM "$srv")
        kill "$srv"; wait "$srv" 2>/dev/null || true; srv=""
        python3 - "$threads" "$conns" "$rss_before" "$hwm" "$line" >>"$results" <<'EOF'
import json, sys
threads, conns, before, hwm, line = sys.argv[1:]
r = json.loads(line)
r.update(loop_threads=int(threads), rss_before_kib=int(before), rss_peak_kib=int(hwm))
print(json.dumps(r))
EOF
        echo "threads $threads conns $conns: $(tail -1 "$results" | cut -c1-160)" >&2
    done
done

python3 - "$results" "$size" "$window" <<'EOF'
import json, sys
path, size, window = sys.argv[1:]
rows = [json.loads(l) for l in open(path)]
def fmt(v, unit=""):
    return "–" if v is None else (f"{v/1000:.1f}k" if v >= 10000 else f"{v:.2f}" if v < 10 else f"{v:.0f}") + unit
print(f"\necho of {size}-byte text, window {window}, {path}\n")
print("| loop threads | conns | msgs/s | server µs/msg | wsload µs/msg | p99 µs | RSS before KiB | RSS peak KiB | peak growth per conn | errors |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    growth = (r["rss_peak_kib"] - r["rss_before_kib"]) * 1024 / r["conns"]
    print(f"| {r['loop_threads']} | {r['conns']} | {fmt(r['msgs_per_s'])} | {fmt(r['server_us_per_op'])} | "
          f"{fmt(r['client_us_per_op'])} | {fmt(r['p99_us'])} | {r['rss_before_kib']} | {r['rss_peak_kib']} | "
          f"{growth:.0f} B | {r['errors']} |")
EOF
