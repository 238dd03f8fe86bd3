#!/usr/bin/env python3
"""Checks the HTTP demo (c-examples/http_demo.cpp) as its page would use it, without a browser.

usage: check_http_demo.py [--cafile PEM] [--root DIR] URL
       e.g. http://127.0.0.1:PORT/ or https://127.0.0.1:PORT/

Checks, each printed as `ok - ...` or `not ok - ...`:
  GET / and GET /app.js return the files of --root (default c-examples/www) byte for byte, with
  a text/html and a JavaScript content type; a missing file gets 404; GET /api/status (the
  firmware's own route) returns JSON with integer uptime and clients; on the WebSocket at /ws a
  text comes back as "echo: <text>", a pushed "status uptime=..." line arrives, /api/status counts
  the open page among its clients, and the client's close with 1000 is answered with 1000; a plain
  GET of /ws gets 426 with `Upgrade: websocket`; an upgrade to a path without a service gets 404.
  Every wait is bounded. Exit 0 iff all passed.

https:// URLs: the server's certificate chain is verified against --cafile (default: the system
trust store) with host name checking on, for HTTP and the wss:// WebSocket alike.
"""
import argparse
import asyncio
import http.client
import json
import os
import ssl
import sys
import time
from urllib.parse import urlsplit

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

TIMEOUT = 20  # seconds for any single answer (generous: the demo may run under an emulator)
failures = 0
SSL = None  # the client TLS context for https:// URLs (verifying, with host name checks)
BASE = None  # (scheme, host, port)


def report(ok, what, detail=""):
    global failures
    if not ok:
        failures += 1
    print("%s - %s%s" % ("ok" if ok else "not ok", what, (": " + detail) if detail else ""), flush=True)


def get(path):
    """GET path; returns (status, headers as a lower-case dict, body bytes)."""
    scheme, host, port = BASE
    if scheme == "https":
        conn = http.client.HTTPSConnection(host, port, timeout=TIMEOUT, context=SSL)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


def ws_url(path):
    scheme, host, port = BASE
    return "%s://%s:%d%s" % ("wss" if scheme == "https" else "ws", host, port, path)


def opened(path):
    extra = {"ssl": SSL} if BASE[0] == "https" else {}
    return connect(ws_url(path), open_timeout=TIMEOUT, close_timeout=TIMEOUT, **extra)


def check_file(root, path, name, content_type):
    with open(os.path.join(root, name), "rb") as f:
        expected = f.read()
    status, headers, body = get(path)
    ctype = headers.get("content-type", "")
    report(status == 200 and body == expected, "GET %s returns %s byte for byte" % (path, name),
           "" if status == 200 and body == expected else "status %d, %d bytes (expected %d)" % (status, len(body), len(expected)))
    report(content_type in ctype, "GET %s has a Content-Type with %s" % (path, content_type), "got %r" % ctype)


def status_json():
    status, headers, body = get("/api/status")
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    ok = (status == 200 and headers.get("content-type", "").startswith("application/json") and isinstance(doc, dict)
          and isinstance(doc.get("uptime"), int) and isinstance(doc.get("clients"), int))
    return ok, doc, "status %d, %r" % (status, body[:200])


def check_http(root):
    check_file(root, "/", "index.html", "text/html")
    check_file(root, "/app.js", "app.js", "javascript")
    status = get("/no-such-file.html")[0]
    report(status == 404, "GET of a missing file gets 404", "got %d" % status)
    ok, _, detail = status_json()
    report(ok, "GET /api/status returns JSON with integer uptime and clients", detail)
    status, headers, _ = get("/ws")
    ok = status == 426 and headers.get("upgrade", "").lower() == "websocket"
    report(ok, "a plain GET of /ws gets 426 with Upgrade: websocket",
           "" if ok else "got %d, Upgrade: %r" % (status, headers.get("upgrade")))


async def next_text(ws, wanted, deadline):
    """The first text message for which wanted(text) holds (others, e.g. status lines, skipped)."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            text = await asyncio.wait_for(ws.recv(), left)
        except asyncio.TimeoutError:
            return None
        if isinstance(text, str) and wanted(text):
            return text


async def check_ws():
    message = "hello from python %d" % os.getpid()
    async with opened("/ws") as ws:
        await ws.send(message)
        got = await next_text(ws, lambda t: t.startswith("echo: "), time.monotonic() + TIMEOUT)
        report(got == "echo: " + message, "a text on /ws comes back as \"echo: <text>\"", "got %r" % got)
        # The demo pushes a status line every second to each open page.
        got = await next_text(ws, lambda t: t.startswith("status "), time.monotonic() + TIMEOUT)
        report(got is not None and "uptime=" in got and "clients=" in got,
               "a pushed status line arrives on /ws", "got %r" % got)
        ok, doc, detail = await asyncio.to_thread(status_json)
        report(ok and doc["clients"] >= 1, "/api/status counts the open page among its clients", detail)
        await ws.close(1000)
    p = ws.protocol
    sent = p.close_sent.code if p.close_sent else None
    rcvd = p.close_rcvd.code if p.close_rcvd else None
    report(sent == 1000 and rcvd == 1000, "clean close 1000 (client-initiated)", "sent %s, received %s" % (sent, rcvd))


async def check_missing_service():
    try:
        async with opened("/no-such-service"):
            report(False, "an upgrade to a path without a service is refused", "it was accepted")
    except InvalidStatus as e:
        status = e.response.status_code
        report(status == 404, "an upgrade to a path without a service is refused with 404", "got %d" % status)


async def main(root):
    try:
        await asyncio.wait_for(asyncio.to_thread(check_http, root), 4 * TIMEOUT)
    except Exception as e:  # noqa: BLE001 - every failure is reported, none is fatal
        report(False, "HTTP checks", repr(e))
    for check in (check_ws, check_missing_service):
        try:
            await asyncio.wait_for(check(), 4 * TIMEOUT)
        except Exception as e:  # noqa: BLE001
            report(False, check.__name__, repr(e))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(usage=__doc__)
    parser.add_argument("--cafile", help="PEM file of the CA(s) the https server's certificate must chain to")
    parser.add_argument("--root", default=os.path.join(os.path.dirname(__file__), "..", "..", "c-examples", "www"),
                        help="the demo's --root folder, to compare the served files with")
    parser.add_argument("url")
    args = parser.parse_args()
    parts = urlsplit(args.url)
    if parts.scheme == "https":
        SSL = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=args.cafile)
    elif parts.scheme != "http":
        sys.exit("the URL must be http:// or https://")
    elif args.cafile:
        sys.exit("--cafile is for https:// URLs")
    if not parts.hostname or not parts.port:
        sys.exit("the URL needs a host and a port")
    BASE = (parts.scheme, parts.hostname, parts.port)
    asyncio.run(main(args.root))
    print("python client: %d failure(s)" % failures)
    sys.exit(1 if failures else 0)
