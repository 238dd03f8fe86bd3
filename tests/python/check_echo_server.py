#!/usr/bin/env python3
"""Checks a text echo server (the documented sample ws_server_sample) with Python `websockets`.

usage: check_echo_server.py [--ca PEM] [--expect-cert PEM] URL
       e.g. ws://127.0.0.1:PORT/ or wss://127.0.0.1:PORT/

Checks, each printed as `ok - ...` or `not ok - ...`:
  short texts (ASCII and multi-byte UTF-8) come back exactly; the client's close with 1000 is
  answered with 1000; a 100 KB text comes back exactly; 20 concurrent clients each get their own
  messages back in order and close cleanly. Every wait is bounded. Exit 0 iff all passed.

wss:// URLs: the server's certificate chain is verified against the CA file given with --ca
(default: the system trust store), with host name checking on: for the URL's host (an IP address
is matched against the certificate's IP subjectAltNames), and once more for the name "localhost"
on the same address. The negotiated TLS version and cipher are printed. --expect-cert: the server
must present the first certificate of that PEM file as its own.
"""
import argparse
import asyncio
import random
import ssl
import string
import sys
from urllib.parse import urlsplit

from websockets.asyncio.client import connect

TIMEOUT = 15  # seconds for any single receive
failures = 0
SSL = None  # the client TLS context for wss:// URLs (verifying, with host name checks)
EXPECT_CERT = None  # DER of the certificate the server must present (--expect-cert)


def report(ok, what, detail=""):
    global failures
    if not ok:
        failures += 1
    print("%s - %s%s" % ("ok" if ok else "not ok", what, (": " + detail) if detail else ""), flush=True)


def connect_args(url):
    return {"ssl": SSL} if urlsplit(url).scheme == "wss" else {}


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
    async with connect(url, **connect_args(url), open_timeout=10, close_timeout=10, max_size=8 << 20) as ws:
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
    async with connect(url, **connect_args(url), open_timeout=10, close_timeout=10, max_size=8 << 20) as ws:
        got = await echo(ws, msg)
        report(got == msg, "100 KB text echoed exactly",
               "" if got == msg else "got %s chars" % (len(got) if isinstance(got, str) else got,))
        await ws.close(1000)
    ok, detail = close_ok(ws)
    report(ok, "clean close 1000 after 100 KB", detail)


async def one_client(url, i):
    async with connect(url, **connect_args(url), open_timeout=10, close_timeout=10) as ws:
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


async def check_tls(url):
    """The certificate was verified for the URL's host; it is also valid for "localhost"."""
    async with connect(url, ssl=SSL, open_timeout=10, close_timeout=10) as ws:
        tls = ws.transport.get_extra_info("ssl_object")
        cert = tls.getpeercert()
        subject = dict(x[0] for x in cert.get("subject", ()))
        print("# TLS %s, cipher %s, server certificate CN=%s issued by CN=%s, subjectAltName %s"
              % (tls.version(), tls.cipher()[0], subject.get("commonName"),
                 dict(x[0] for x in cert.get("issuer", ())).get("commonName"),
                 ", ".join("%s:%s" % san for san in cert.get("subjectAltName", ()))), flush=True)
        if EXPECT_CERT is not None:
            presented = tls.getpeercert(binary_form=True)
            report(presented == EXPECT_CERT, "the server presented the expected certificate",
                   "" if presented == EXPECT_CERT else "it presented another one")
        got = await echo(ws, "over TLS")
        report(got == "over TLS", "server certificate verified for %s (--ca), echo over TLS"
               % urlsplit(url).hostname, "" if got == "over TLS" else "got %r" % (got,))
        await ws.close(1000)
    async with connect(url, ssl=SSL, server_hostname="localhost", open_timeout=10,
                       close_timeout=10) as ws:
        got = await echo(ws, "localhost")
        report(got == "localhost", "server certificate verified for the name localhost",
               "" if got == "localhost" else "got %r" % (got,))
        await ws.close(1000)


async def main(url):
    checks = (check_short, check_big, check_concurrent)
    if urlsplit(url).scheme == "wss":
        checks = (check_tls,) + checks
    for check in checks:
        try:
            await asyncio.wait_for(check(url), 60)
        except Exception as e:  # noqa: BLE001 - every failure is reported, none is fatal
            report(False, check.__name__, repr(e))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(usage=__doc__)
    parser.add_argument("--ca", help="PEM file of the CA(s) the wss server's certificate must chain to")
    parser.add_argument("--expect-cert", help="PEM file whose first certificate the server must present")
    parser.add_argument("url")
    args = parser.parse_args()
    if urlsplit(args.url).scheme == "wss":
        SSL = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=args.ca)
        if args.expect_cert:
            with open(args.expect_cert) as f:
                first = f.read().split(ssl.PEM_FOOTER)[0]
            EXPECT_CERT = ssl.PEM_cert_to_DER_cert(first[first.index(ssl.PEM_HEADER):] + ssl.PEM_FOOTER)
    elif args.ca or args.expect_cert:
        sys.exit("--ca and --expect-cert are for wss:// URLs")
    asyncio.run(main(args.url))
    print("python client: %d failure(s)" % failures)
    sys.exit(1 if failures else 0)
