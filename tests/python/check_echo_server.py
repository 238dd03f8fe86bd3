#!/usr/bin/env python3
"""Checks a text echo server (the documented sample ws_server_sample) with Python `websockets`.

usage: check_echo_server.py URL        e.g. ws://127.0.0.1:PORT/

Checks, each printed as `ok - ...` or `not ok - ...`:
  short texts (ASCII and multi-byte UTF-8) come back exactly; the client's close with 1000 is
  answered with 1000; a 100 KB text comes back exactly; 20 concurrent clients each get their own
  messages back in order and close cleanly. Every wait is bounded. Exit 0 iff all passed.
"""
import asyncio
import random
import string
import sys

from websockets.asyncio.client import connect

TIMEOUT = 15  # seconds for any single receive
failures = 0


def report(ok, what, detail=""):
    global failures
    if not ok:
        failures += 1
    print("%s - %s%s" % ("ok" if ok else "not ok", what, (": " + detail) if detail else ""), flush=True)


async def echo(ws, message):
    await ws.send(message)
    return await asyncio.wait_for(ws.recv(), TIMEOUT)


def close_ok(ws):
    """The close frames both ways were 1000 (ours sent, the server's received)."""
    p = ws.protocol
    sent = p.close_sent.code if p.close_sent else None
    rcvd = p.close_rcvd.code if p.close_rcvd else None
    return sent == 1000 and rcvd == 1000, "sent %s, received %s" % (sent, rcvd)


async def check_short(url):
    async with connect(url, open_timeout=10, close_timeout=10, max_size=8 << 20) as ws:
        for msg in ("hello, world!", "h\u00e9llo \u2713 \U0001F600 \u4e16\u754c", "x"):
            got = await echo(ws, msg)
            report(got == msg, "short text echoed exactly (%d bytes)" % len(msg.encode()),
                   "" if got == msg else "got %r" % (got,))
        await ws.close(1000)
    ok, detail = close_ok(ws)
    report(ok, "clean close 1000 (client-initiated)", detail)


async def check_big(url):
    rnd = random.Random(6455)
    msg = "".join(rnd.choice(string.ascii_letters + string.digits + " ") for _ in range(100 * 1024))
    async with connect(url, open_timeout=10, close_timeout=10, max_size=8 << 20) as ws:
        got = await echo(ws, msg)
        report(got == msg, "100 KB text echoed exactly",
               "" if got == msg else "got %s chars" % (len(got) if isinstance(got, str) else got,))
        await ws.close(1000)
    ok, detail = close_ok(ws)
    report(ok, "clean close 1000 after 100 KB", detail)


async def one_client(url, i):
    async with connect(url, open_timeout=10, close_timeout=10) as ws:
        for j in range(5):
            msg = "client %d message %d" % (i, j)
            got = await echo(ws, msg)
            if got != msg:
                return "client %d: sent %r, got %r" % (i, msg, got)
        await ws.close(1000)
    ok, detail = close_ok(ws)
    return None if ok else "client %d: %s" % (i, detail)


async def check_concurrent(url, n=20):
    results = await asyncio.gather(*(one_client(url, i) for i in range(n)), return_exceptions=True)
    errors = [str(r) if isinstance(r, str) else repr(r) for r in results if r is not None]
    report(not errors, "%d concurrent clients echoed and closed cleanly" % n, "; ".join(errors[:5]))


async def main(url):
    for check in (check_short, check_big, check_concurrent):
        try:
            await asyncio.wait_for(check(url), 60)
        except Exception as e:  # noqa: BLE001 - every failure is reported, none is fatal
            report(False, check.__name__, repr(e))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    asyncio.run(main(sys.argv[1]))
    print("python client: %d failure(s)" % failures)
    sys.exit(1 if failures else 0)
