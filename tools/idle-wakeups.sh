#!/usr/bin/env bash
# Counts the wake-ups of an idle server: build/echo_server holding N open, silent WebSocket
# connections (Python websockets clients from .venv) for S seconds; prints the context switches
# of every server thread over that window. An event loop with nothing due should show 0.
#
#   tools/idle-wakeups.sh [N=100] [S=5]
set -euo pipefail
top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
n="${1:-100}"; secs="${2:-5}"
make -C "$top" -s lib examples venv >/dev/null
out="$(mktemp)"; trap 'kill "$srv" 2>/dev/null; rm -f "$out"' EXIT
"$top/build/echo_server" 0 127.0.0.1 >"$out" 2>&1 & srv=$!
for _ in $(seq 50); do grep -q listening "$out" && break; sleep 0.1; done
port="$(grep -o '[0-9]*$' "$out" | head -1)"
"$top/.venv/bin/python" - "$port" "$n" "$secs" "$srv" <<'PY'
import asyncio, sys, websockets
port, n, secs, pid = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
def switches():
    import glob
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/status"):
        for line in open(path):
            if "ctxt_switches" in line:
                total += int(line.split()[1])
    return total
async def main():
    conns = [await websockets.connect(f"ws://127.0.0.1:{port}/", ping_interval=None) for _ in range(n)]
    await asyncio.sleep(0.5)
    before = switches()
    await asyncio.sleep(secs)
    after = switches()
    print(f"idle-wakeups: {n} idle connections, {secs:g} s: {after - before} context switches in the server "
          f"({(after - before) / secs:.1f} per second)")
    for c in conns:
        await c.close()
asyncio.run(main())
PY
