#!/usr/bin/env python3
"""A stand-in for build/http_demo, written with Python `websockets`, to test the browser harness.

    usage: fake_device.py [--port N] [--bind ADDR] [--root DIR] [--tls CERTDIR] [--expect TEXT]

It takes http_demo's command line and plays the same part: serves the files under --root
(default c-examples/www) over http, or https with CERTDIR/fullchain.pem + privkey.pem, and a
WebSocket at /ws on the same port that pushes `status uptime=Ns clients=N time=...` to every
client each second and answers each text message with `echo: <text>`. With --expect it prints
`check: ...` lines and, on SIGINT, exits 0 only if a connection to /ws whose Origin was this
server's and whose User-Agent named Chrome sent exactly TEXT and then closed; else 1.

So tests/browser/cdp_check.py, tests/scripts/browser-step.sh and the page in c-examples/www can
be checked against a known-good server, apart from the library's HTTP server:
    bash tests/scripts/browser-step.sh .venv/bin/python https tests/browser/fake_device.py
It is a test tool, not a web server: files are read whole, GET only, no caching headers.
"""

import argparse
import asyncio
import datetime
import http
import os
import signal
import ssl
import sys
import time

try:
    import websockets  # noqa: F401  (the repository's .venv has it)
except ImportError:
    # Started by another python3: run again under the repository's .venv, if it is there.
    _venv = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".venv")
    _py = os.path.join(_venv, "bin", "python")
    if os.path.exists(_py) and os.path.realpath(sys.prefix) != os.path.realpath(_venv):
        os.execv(_py, [_py] + sys.argv)
    sys.exit("%s: needs the websockets package (tests/scripts/venv.sh makes .venv/)" % sys.argv[0])

from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Response

TYPES = {
    "html": "text/html; charset=utf-8", "htm": "text/html; charset=utf-8",
    "css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8",
    "mjs": "text/javascript; charset=utf-8", "json": "application/json",
    "svg": "image/svg+xml", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg",
    "ico": "image/x-icon", "wasm": "application/wasm", "txt": "text/plain; charset=utf-8",
}
STARTED = time.monotonic()
clients = set()


class Checks:
    def __init__(self, expect, origin):
        self.expect, self.origin = expect, origin
        self.message = self.closed = False

    def ok(self):
        return self.message and self.closed


def answer(status, ctype, body):
    h = Headers()
    h["Content-Type"] = ctype
    h["Content-Length"] = str(len(body))
    h["X-Content-Type-Options"] = "nosniff"
    h["Connection"] = "close"
    return Response(status.value, status.phrase, h, body)


def serve_file(root, request):
    path = request.path.split("?", 1)[0]
    if path.endswith("/"):
        path += "index.html"
    full = os.path.realpath(os.path.join(root, path.lstrip("/")))
    if not full.startswith(root + os.sep) or not os.path.isfile(full):
        return answer(http.HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n")
    with open(full, "rb") as f:
        body = f.read()
    ext = full.rsplit(".", 1)[-1].lower() if "." in os.path.basename(full) else ""
    return answer(http.HTTPStatus.OK, TYPES.get(ext, "application/octet-stream"), body)


def status_line():
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return "status uptime=%ds clients=%d time=%s" % (time.monotonic() - STARTED, len(clients), now)


async def pusher():
    while True:
        await asyncio.sleep(1)
        line = status_line()
        for ws in list(clients):
            try:
                await ws.send(line)
            except Exception:
                pass  # closing; its handler removes it


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--root", default="c-examples/www")
    ap.add_argument("--tls", metavar="CERTDIR")
    ap.add_argument("--expect", metavar="TEXT")
    args = ap.parse_args()
    root = os.path.realpath(args.root)
    tls = None
    if args.tls:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(os.path.join(args.tls, "fullchain.pem"),
                            os.path.join(args.tls, "privkey.pem"))
    scheme = "https" if tls else "http"
    checks = Checks(args.expect, "%s://127.0.0.1:%d" % (scheme, args.port))

    def process_request(connection, request):
        if request.path.split("?", 1)[0] == "/ws":
            return None  # the WebSocket handshake goes on
        return serve_file(root, request)

    async def handler(ws):
        req = ws.request
        origin, agent = req.headers.get("Origin", ""), req.headers.get("User-Agent", "")
        print("open: %s Origin=%s User-Agent=%s" % (req.path, origin, agent), flush=True)
        good_peer = origin == checks.origin and "Chrome" in agent
        clients.add(ws)
        sent_expected = False
        try:
            await ws.send(status_line())
            async for msg in ws:
                if isinstance(msg, str):
                    await ws.send("echo: " + msg)
                    if checks.expect is not None and msg == checks.expect:
                        sent_expected = True
                        print("check: got the expected message %r (Origin %s, %s)"
                              % (msg, "ok" if good_peer else "WRONG", agent), flush=True)
                        checks.message = checks.message or good_peer
        except ConnectionClosed:
            pass  # the peer went away without a close frame: close_code is None below
        finally:
            clients.discard(ws)
            print("close: code %s" % ws.close_code, flush=True)
            if sent_expected:
                checks.closed = True
                print("check: that connection closed with code %s" % ws.close_code, flush=True)

    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, sig)
    async with serve(handler, args.bind, args.port, ssl=tls, process_request=process_request,
                     compression=None, ping_interval=None):
        task = asyncio.create_task(pusher())
        print("open %s://%s:%d/ in a browser (Ctrl-C stops)" % (scheme, args.bind, args.port),
              flush=True)
        await stop
        task.cancel()
    if checks.expect is None:
        return 0
    print("check: expected message from the browser: %s; its close: %s"
          % ("seen" if checks.message else "NOT SEEN", "seen" if checks.closed else "NOT SEEN"),
          flush=True)
    return 0 if checks.ok() else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
