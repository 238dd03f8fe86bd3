#!/usr/bin/env python3
"""A third-party WebSocket echo server (Python `websockets`) for interop tests.

usage: echo_server.py [--cert PEM --key PEM [--ca PEM]] PORT [HOST]
       (PORT 0 = any free port; HOST default 127.0.0.1)

With --cert (certificate chain, leaf first) and --key (its private key) it serves wss:// only;
--ca also asks each client for a certificate chaining to that CA file (optional for the client:
the connection goes on without one, but one that does not verify fails the TLS handshake).

Prints the port it listens on alone on the first line of stdout, then one line per event:
    open PEER
    tls VERSION CIPHER        (wss only, after open)
    tls-sni NAME   or   tls-sni none       (wss only: the server name the client sent, if any)
    tls-client-certificate CN=NAME issuer CN=NAME   or   tls-client-certificate none  (with --ca)
    text JSON-STRING          (a text message, JSON-quoted)
    binary LENGTH
    not echoed: ...           (the peer's close frame came first: websockets sends nothing after it)
    close CODE JSON-REASON    (the close frame the peer sent: CODE 1006 when none arrived)
Every message is echoed back with its type (unless the peer's close frame arrived already). SIGINT or SIGTERM stops the server; it exits 0.
"""
import argparse
import asyncio
import json
import signal
import ssl
import sys

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


def emit(line):
    print(line, flush=True)


async def handler(ws):
    emit("open %s:%s" % ws.remote_address[:2])
    tls = ws.transport.get_extra_info("ssl_object")
    if tls is not None:
        emit("tls %s %s" % (tls.version(), tls.cipher()[0]))
        emit("tls-sni %s" % (getattr(tls, "sni", None) or "none"))
        if tls.context.verify_mode != ssl.CERT_NONE:
            cert = tls.getpeercert()
            if cert:
                cn = lambda name: dict(x[0] for x in cert.get(name, ())).get("commonName")  # noqa: E731
                emit("tls-client-certificate CN=%s issuer CN=%s" % (cn("subject"), cn("issuer")))
            else:
                emit("tls-client-certificate none")
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


async def main(args):
    context = None
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)

        def remember_sni(ssl_object, server_name, _context):
            ssl_object.sni = server_name

        context.sni_callback = remember_sni
        if args.ca:
            context.load_verify_locations(cafile=args.ca)
            context.verify_mode = ssl.CERT_OPTIONAL
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(handler, args.host, args.port, ssl=context, max_size=64 << 20,
                     ping_interval=None) as server:
        emit(str(server.sockets[0].getsockname()[1]))
        await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser(usage=__doc__)
    parser.add_argument("--cert", help="certificate chain (PEM): serve wss://")
    parser.add_argument("--key", help="private key of --cert (PEM)")
    parser.add_argument("--ca", help="ask clients for a certificate issued by this CA file (PEM)")
    parser.add_argument("port", type=int, nargs="?", default=0)
    parser.add_argument("host", nargs="?", default="127.0.0.1")
    cmdline = parser.parse_args()
    if bool(cmdline.cert) != bool(cmdline.key) or (cmdline.ca and not cmdline.cert):
        parser.error("--cert and --key go together; --ca needs them")
    asyncio.run(main(cmdline))
    sys.exit(0)
