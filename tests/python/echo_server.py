#!/usr/bin/env python3
"""A third-party WebSocket echo server (Python `websockets`) for interop tests.

usage: echo_server.py PORT [HOST]      (PORT 0 = any free port; HOST default 127.0.0.1)

Prints the port it listens on alone on the first line of stdout, then one line per event:
    open PEER
    text JSON-STRING          (a text message, JSON-quoted)
    binary LENGTH
    not echoed: ...           (the peer's close frame came first: websockets sends nothing after it)
    close CODE JSON-REASON    (the close frame the peer sent: CODE 1006 when none arrived)
Every message is echoed back with its type (unless the peer's close frame arrived already). SIGINT or SIGTERM stops the server; it exits 0.
"""
import asyncio
import json
import signal
import sys

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


def emit(line):
    print(line, flush=True)


async def handler(ws):
    emit("open %s:%s" % ws.remote_address[:2])
    try:
        async for message in ws:
            if isinstance(message, str):
                emit("text " + json.dumps(message))
            else:
                emit("binary %d" % len(message))
            try:
                await ws.send(message)
            except ConnectionClosed:
                # websockets answers a close frame at once and sends nothing after it: a message
                # that arrived just before the peer's close is not echoed.
                emit("not echoed: the peer's close frame had already arrived")
                raise
    except ConnectionClosed:
        pass
    await ws.wait_closed()
    rcvd = ws.protocol.close_rcvd
    if rcvd is None:
        emit("close 1006 \"\"")
    else:
        emit("close %d %s" % (rcvd.code, json.dumps(rcvd.reason)))


async def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(handler, host, port, max_size=64 << 20, ping_interval=None) as server:
        emit(str(server.sockets[0].getsockname()[1]))
        await stop


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
