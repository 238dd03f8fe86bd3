#!/usr/bin/env python3
"""Checks a WebSocket echo service on a path of the HTTP server (createHttpWsService) with Python
`websockets`, and the HTTP answers around it.

usage: check_http_ws.py [--cafile PEM] URL
       e.g. ws://127.0.0.1:PORT/ws or wss://127.0.0.1:PORT/ws

Checks, each printed as `ok - ...` or `not ok - ...`:
  short texts (ASCII and multi-byte UTF-8) and a binary come back exactly; the client's close
  with 1000 is answered with 1000; a 100 KB text comes back exactly; 10 concurrent clients each
  get their own messages back in order; an upgrade to a path without a service is refused with
  404; a plain GET of the service path gets 426 with `Upgrade: websocket`. Every wait is bounded.
  Exit 0 iff all passed.

wss:// URLs: the server's certificate chain is verified against --cafile (default: the system
trust store), with host name checking on (an IP address is matched against the certificate's IP
subjectAltNames); the plain GET goes over the same TLS settings.
"""
import argparse
import asyncio
import http.client
import random
import ssl
import string
import sys
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

TIMEOUT = 15  # seconds for any single receive
failures = 0
SSL = None  # the client TLS context for wss:// URLs (verifying, with host name checks)


def report(ok, what, detail=""):
    global failures
    if not ok:
        failures += 1
    print("%s - %s%s" % ("ok" if ok else "not ok", what, (": " + detail) if detail else ""), flush=True)


def connect_args(url):
    return {"ssl": SSL} if urlsplit(url).scheme == "wss" else {}


def opened(url):
    return connect(url, **connect_args(url), open_timeout=10, close_timeout=10, max_size=8 << 20)


async def echo(ws, message):
    await ws.send(message)
    return await asyncio.wait_for(ws.recv(), TIMEOUT)


def close_codes(ws):
    p = ws.protocol
    sent = p.close_sent.code if p.close_sent else None
    rcvd = p.close_rcvd.code if p.close_rcvd else None
    return sent == 1000 and rcvd == 1000, "sent %s, received %s" % (sent, rcvd)


async def check_echo(url):
    async with opened(url) as ws:
        for msg in ("hello, service!", "h\u00e9llo \u2713 \U0001F600 \u4e16\u754c", b"\x00\x01\xfe\xff binary"):
            got = await echo(ws, msg)
            report(got == msg, "%s echoed exactly (%d bytes)" % (type(msg).__name__, len(msg)),
                   "" if got == msg else "got %r" % (got,))
        await ws.close(1000)
    ok, detail = close_codes(ws)
    report(ok, "clean close 1000 (client-initiated)", detail)


async def check_big(url):
    rnd = random.Random(8)
    msg = "".join(rnd.choice(string.ascii_letters + string.digits) for _ in range(100 * 1024))
    async with opened(url) as ws:
        got = await echo(ws, msg)
        report(got == msg, "100 KB text echoed exactly",
               "" if got == msg else "got %s chars" % (len(got) if isinstance(got, str) else got,))
        await ws.close(1000)


async def one_client(url, i):
    async with opened(url) as ws:
        for j in range(5):
            msg = "client %d message %d" % (i, j)
            got = await echo(ws, msg)
            if got != msg:
                return "client %d: sent %r, got %r" % (i, msg, got)
        await ws.close(1000)
    ok, detail = close_codes(ws)
    return None if ok else "client %d: %s" % (i, detail)


async def check_concurrent(url, n=10):
    results = await asyncio.gather(*(one_client(url, i) for i in range(n)), return_exceptions=True)
    errors = [str(r) if isinstance(r, str) else repr(r) for r in results if r is not None]
    report(not errors, "%d concurrent clients echoed and closed cleanly" % n, "; ".join(errors[:5]))


async def check_missing_path(url):
    parts = urlsplit(url)
    missing = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + "-no-such-service", "", ""))
    try:
        async with opened(missing):
            report(False, "an upgrade to a path without a service is refused", "it was accepted")
    except InvalidStatus as e:
        status = e.response.status_code
        report(status == 404, "an upgrade to a path without a service is refused with 404",
               "" if status == 404 else "got %d" % status)


def plain_get(url):
    """A plain GET of the service path, in a thread: http.client blocks."""
    parts = urlsplit(url)
    if parts.scheme == "wss":
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=TIMEOUT, context=SSL)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT)
    try:
        conn.request("GET", parts.path or "/")
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("Upgrade")
    finally:
        conn.close()


async def check_plain_get(url):
    status, upgrade = await asyncio.to_thread(plain_get, url)
    ok = status == 426 and (upgrade or "").lower() == "websocket"
    report(ok, "a plain GET of the service path gets 426 with Upgrade: websocket",
           "" if ok else "got %s, Upgrade: %r" % (status, upgrade))


async def main(url):
    for check in (check_echo, check_big, check_concurrent, check_missing_path, check_plain_get):
        try:
            await asyncio.wait_for(check(url), 60)
        except Exception as e:  # noqa: BLE001 - every failure is reported, none is fatal
            report(False, check.__name__, repr(e))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(usage=__doc__)
    parser.add_argument("--cafile", help="PEM file of the CA(s) the wss server's certificate must chain to")
    parser.add_argument("url")
    args = parser.parse_args()
    scheme = urlsplit(args.url).scheme
    if scheme == "wss":
        SSL = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=args.cafile)
    elif scheme != "ws":
        sys.exit("the URL must be ws:// or wss://")
    elif args.cafile:
        sys.exit("--cafile is for wss:// URLs")
    asyncio.run(main(args.url))
    print("python client: %d failure(s)" % failures)
    sys.exit(1 if failures else 0)
