#!/usr/bin/env python3
"""Writes the seed corpus under fuzz/corpus/TARGET/ (small real inputs, in each target's input
layout; see the comment at the top of each fuzz_targets/TARGET.rs). Run it again after changing
an input layout: python3 fuzz/make-seeds.py. Files it does not write are left alone."""

import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def chunked(payload, cuts=(), protocols=0):
    """The handshake targets' layout: control byte, u16 LE cut points, payload."""
    if isinstance(payload, str):
        payload = payload.encode()
    control = len(cuts) | (protocols << 3)
    return bytes([control]) + b"".join(struct.pack("<H", c) for c in cuts) + payload


# --- server_handshake: upgrade requests as real clients send them -------------------------------
requests = {
    "rfc6455": "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n",
    "chrome": "GET /ws?room=1 HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nConnection: Upgrade\r\n"
    "Pragma: no-cache\r\nCache-Control: no-cache\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\nUpgrade: websocket\r\n"
    "Origin: http://localhost:8080\r\nSec-WebSocket-Version: 13\r\nAccept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
    "firefox": "GET / HTTP/1.1\r\nHost: localhost:9000\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; "
    "rv:121.0) Gecko/20100101 Firefox/121.0\r\nAccept: */*\r\nAccept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\nSec-WebSocket-Version: 13\r\nOrigin: null\r\n"
    "Sec-WebSocket-Protocol: mqtt\r\nSec-WebSocket-Extensions: permessage-deflate\r\n"
    "Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\nConnection: keep-alive, Upgrade\r\n"
    "Sec-Fetch-Dest: empty\r\nSec-Fetch-Mode: websocket\r\nSec-Fetch-Site: cross-site\r\n"
    "Pragma: no-cache\r\nCache-Control: no-cache\r\nUpgrade: websocket\r\n\r\n",
    "curl": "GET /echo HTTP/1.1\r\nHost: [::1]:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n"
    "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: Zm9vYmFyYmF6cXV4MTIzNA==\r\n"
    "Connection: Upgrade\r\n\r\n",
    "python-websockets": "GET / HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: 2ZzHnLJ8Q7Tq4lXp0J3k1g==\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "Sec-WebSocket-Protocol: superchat, chat\r\nUser-Agent: Python/3.12 websockets/12.0\r\n\r\n",
}
for name, req in requests.items():
    write("server_handshake", name, chunked(req, protocols=2))
write("server_handshake", "rfc6455-in-pieces", chunked(requests["rfc6455"], cuts=(1, 20, 20, 150), protocols=1))
write("server_handshake", "with-first-frame",
      chunked(requests["curl"].encode() + bytes.fromhex("818537fa213d7f9f4d5158"), cuts=(100,), protocols=0))
write("server_handshake", "post", chunked("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"))
write("server_handshake", "plain-get", chunked("GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"))
write("server_handshake", "http10", chunked(requests["curl"].replace("HTTP/1.1", "HTTP/1.0", 1)))
write("server_handshake", "version8", chunked(requests["rfc6455"].replace("Version: 13", "Version: 8")))
# Just under the 8192-byte head limit (a long cookie), so that mutations cross it both ways.
big = requests["curl"].replace("\r\n\r\n", "\r\nCookie: " + "a" * (8100 - len(requests["curl"])) + "\r\n\r\n")
write("server_handshake", "near-head-limit", chunked(big, cuts=(4000,), protocols=0))
write("server_handshake", "tls-hello", chunked(bytes.fromhex("16030100a5010000a10303") + b"\x00" * 16))

# --- client_handshake: server answers (the accept value is the RFC sample, which the target
# replaces with the one for its own key) --------------------------------------------------------
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
responses = {
    "rfc6455": f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Accept: {ACCEPT}\r\nSec-WebSocket-Protocol: chat\r\n\r\n",
    "nginx": f"HTTP/1.1 101 Switching Protocols\r\nServer: nginx/1.24.0\r\nDate: Tue, 01 Dec 2026 "
    f"10:00:00 GMT\r\nConnection: upgrade\r\nUpgrade: WebSocket\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n",
    "python-websockets": f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Accept: {ACCEPT}\r\nDate: Tue, 01 Dec 2026 10:00:00 GMT\r\n"
    f"Server: Python/3.12 websockets/12.0\r\n\r\n",
    "oasisnet": f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Accept: {ACCEPT}\r\nSec-WebSocket-Protocol: superchat\r\n\r\n",
}
write("client_handshake", "rfc6455", chunked(responses["rfc6455"], protocols=1))
write("client_handshake", "nginx", chunked(responses["nginx"], protocols=0))
write("client_handshake", "python-websockets", chunked(responses["python-websockets"], cuts=(12, 13, 90)))
write("client_handshake", "oasisnet-with-frames",
      chunked(responses["oasisnet"].encode() + bytes.fromhex("810568656c6c6f8900"), cuts=(5, 140), protocols=2))
big = responses["nginx"].replace("\r\n\r\n", "\r\nSet-Cookie: " + "b" * (8100 - len(responses["nginx"])) + "\r\n\r\n")
write("client_handshake", "near-head-limit", chunked(big, cuts=(4000,)))
write("client_handshake", "not-found",
      chunked("HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nNot Found\n"))
write("client_handshake", "wrong-protocol", chunked(responses["rfc6455"].replace(": chat", ": other"), protocols=1))
write("client_handshake", "extension",
      chunked(responses["nginx"].replace("\r\n\r\n", "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n")))

# --- url: every documented form ----------------------------------------------------------------
urls = [
    "ws://example.com", "wss://echo.websocket.org/", "ws://127.0.0.1:9000/chat?room=1",
    "ws://[::1]:8080?x=1", "wss://[2001:db8::1]/path/to?q=a&b=c#frag", "WS://Host-Name_1.local:65535/",
    "wss://10.0.0.1:443", "ws://[::ffff:192.0.2.1]", "ws://h:0", "ws://u@h/", "http://x/", "ws://[zz]:1",
]
for i, u in enumerate(urls):
    write("url", f"url-{i:02d}", u)

# --- config: selector byte (0 server, 1 client, 2 runtime, 3 all), NUL-separated key/value ----
def params(selector, *pairs):
    return bytes([selector]) + b"\0".join(k.encode() + b"\0" + v.encode() for k, v in pairs)

write("config", "server-plain", params(0, ("port", "9000"), ("bind-address", "127.0.0.1"),
                                        ("websocket-protocols", "chat, superchat")))
write("config", "server-tls", params(0, ("port", "0"), ("bind-address", "[::]"), ("cert-file-path", "/c/fullchain.pem"),
                                      ("pkey-file-path", "/c/privkey.pem"), ("ca-certs-file-path", "/c/a.pem\n/c/b.pem"),
                                      ("tls-certificate-request-authority-names", "Oasis Test Root CA")))
write("config", "server-limits", params(0, ("port", "65535"), ("websocket-message-size-max", "2147483647"),
                                         ("send-buffer-size-max", "1"), ("websocket-fragment-size-max", "0"),
                                         ("handshake-timeout-ms", "3600000"), ("close-timeout-ms", "1")))
write("config", "client-wss", params(1, ("tls-disable-certificate-validation", "yes"), ("tls-use-sni", "off"),
                                      ("ca-certs-file-path", "/etc/ssl/certs/ca-certificates.crt"),
                                      ("cert-file-path", "client.pem"), ("pkey-file-path", "client.key"),
                                      ("websocket-protocols", "v1.oasis"), ("websocket-ping-interval-ms", "30000"),
                                      ("websocket-pong-timeout-ms", "5000")))
write("config", "server-keepalive-off", params(0, ("port", "1"), ("websocket-ping-interval-ms", "0")))
write("config", "client-bad-size", params(1, ("websocket-message-size-max", "0")))
write("config", "runtime", params(2, ("event-loop-threads", "4"), ("log-level", "debug"), ("offs-disable", "1")))
write("config", "all-unknown", params(3, ("no-such-key", "x"), ("port", " 80 "), ("log-level", "9")))
write("config", "indexed-keys", bytes([3, 3, 0]) + b"8080" + bytes([0, 7, 0]) + b"1048576")

# --- frame: flags (bit 0 masked, bit 1 8-byte payload_max), payload_max, the buffer ----------
def frame(opcode, payload, fin=True, mask=None, rsv=0):
    first = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head = bytes([first, m | n])
    elif n < 65536:
        head = bytes([first, m | 126]) + struct.pack(">H", n)
    else:
        head = bytes([first, m | 127]) + struct.pack(">Q", n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += bytes(mask)
    return head + payload


def frames(masked, payload_max, *fs):
    return bytes([1 if masked else 0]) + bytes([payload_max]) + b"".join(fs)


def frames_max(masked, payload_max, *fs):
    return bytes([(1 if masked else 0) | 2]) + struct.pack("<Q", payload_max) + b"".join(fs)


M = [0x37, 0xFA, 0x21, 0x3D]
close_1000 = struct.pack(">H", 1000) + b"bye"
for masked in (False, True):
    mk = M if masked else None
    tag = "masked" if masked else "unmasked"
    write("frame", f"{tag}-text", frames(masked, 200, frame(1, b"Hello", mask=mk)))
    write("frame", f"{tag}-binary-16bit", frames_max(masked, 1 << 20, frame(2, bytes(range(256)) * 2, mask=mk)))
    write("frame", f"{tag}-ping-pong", frames(masked, 10, frame(9, b"ping!", mask=mk), frame(10, b"ping!", mask=mk)))
    write("frame", f"{tag}-close", frames(masked, 0, frame(8, close_1000, mask=mk)))
    write("frame", f"{tag}-fragmented", frames(masked, 64, frame(1, b"Hel", fin=False, mask=mk),
                                                frame(9, b"", mask=mk), frame(0, b"lo", fin=False, mask=mk),
                                                frame(0, b"!", mask=mk)))
write("frame", "binary-64bit-header", frames_max(False, 1 << 40, frame(2, b"\0" * 70000)[:14]))
write("frame", "too-big", frames(True, 3, frame(1, b"toolong", mask=M)))
write("frame", "reserved-bits", frames(False, 100, frame(1, b"x", rsv=0x40)))
write("frame", "fragmented-ping", frames(False, 100, frame(9, b"x", fin=False)))

# --- close_payload: payloads of close frames ----------------------------------------------------
for code, reason in [(1000, b""), (1001, b"going away"), (1011, "ünïcode".encode()), (3000, b"app"),
                     (4999, b""), (1005, b""), (999, b"low"), (1000, b"\xff\xfe")]:
    write("close_payload", f"close-{code}-{len(reason)}", struct.pack(">H", code) + reason)
write("close_payload", "empty", b"")
write("close_payload", "one-byte", b"\x03")

# --- protocol_server / protocol_client: chunk byte, message_max/64, fragment_max, the stream ----
# A server's peer masks its frames; a client's peer does not.
for target, mk in (("protocol_server", M), ("protocol_client", None)):
    def stream(chunk, max64, fragment, *fs):
        return bytes([chunk, max64, fragment]) + b"".join(fs)
    write(target, "echo-and-close", stream(0, 255, 0, frame(1, b"hello", mask=mk),
                                           frame(2, bytes(range(200)), mask=mk), frame(8, close_1000, mask=mk)))
    write(target, "fragmented-utf8", stream(3, 16, 0, frame(1, "h\u00e9".encode()[:2], fin=False, mask=mk),
                                            frame(9, b"p", mask=mk), frame(0, "h\u00e9".encode()[2:], mask=mk)))
    write(target, "fragmented-send", stream(7, 255, 3, frame(1, b"fragment me", mask=mk)))
    write(target, "large", stream(200, 255, 0, frame(2, b"\x55" * 17000, mask=mk)))
    write(target, "bad-utf8", stream(1, 4, 0, frame(1, b"\xff", mask=mk), frame(8, close_1000, mask=mk)))
    write(target, "too-big", stream(2, 0, 0, frame(2, b"x" * 100, mask=mk)))
    write(target, "ping-pong-close-1005", stream(5, 1, 0, frame(9, b"", mask=mk), frame(10, b"pong", mask=mk),
                                                 frame(8, b"", mask=mk)))

# --- http_request: control byte (cuts | limits << 3), u16 LE cut points, the stream -------------
# Limits (bits 3-4): 0 the defaults, 1 (64, 1024, 0), 2 (100, 300, 1000), 3 (8192, 1024, 16).
browser_get = ("GET /index.html HTTP/1.1\r\nHost: 192.168.1.10\r\nConnection: keep-alive\r\n"
               "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/120.0.0.0 Safari/537.36\r\nAccept: text/html,application/xhtml+xml,*/*;q=0.8\r\n"
               "Accept-Encoding: gzip, deflate\r\nAccept-Language: en-US,en;q=0.9\r\n"
               "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n")
http_requests = {
    "browser-get": (browser_get, (), 0),
    "curl-head": ("HEAD /a.css HTTP/1.1\r\nHost: cam\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n", (3, 40), 0),
    "range": ("GET /big.bin HTTP/1.1\r\nHost: cam\r\nRange: bytes=0-99\r\n"
              "If-Range: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n", (), 2),
    "post-body": ("POST /api/settings HTTP/1.1\r\nHost: cam\r\nContent-Type: application/json\r\n"
                  "Content-Length: 16\r\n\r\n{\"exposure\": 12}", (60,), 0),
    "expect-continue": ("PUT /upload HTTP/1.1\r\nHost: cam\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
                        "hello", (), 2),
    "pipelined": ("GET / HTTP/1.1\r\nHost: h\r\n\r\nHEAD /t.txt HTTP/1.1\r\nHost: h\r\n\r\n"
                  "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /x HTTP/1.1\r\nHost: h\r\n"
                  "Connection: close\r\n\r\n", (10, 30, 71, 90), 0),
    "pipelined-cut-in-headers": ("GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHo", (25,), 0),
    "http10": ("GET / HTTP/1.0\r\n\r\n", (), 0),
    "http10-keep-alive": ("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n", (), 0),
    "upgrade": (requests["chrome"], (50,), 0),
    "upgrade-with-frame": (requests["curl"] + "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", (), 0),
    "absolute-form": ("GET http://cam:8080/sub/?q=1 HTTP/1.1\r\nHost: cam:8080\r\n\r\n", (), 0),
    "leading-crlf": ("\r\n\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", (1,), 0),
    "bare-lf": ("GET / HTTP/1.1\nHost: h\n\n", (), 0),
    "no-host": ("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", (), 0),
    "two-hosts": ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", (), 0),
    "chunked": ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", (), 0),
    "cl-and-te": ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", (), 0),
    "two-lengths": ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", (), 0),
    "length-list": ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc", (), 2),
    "bad-length": ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", (), 0),
    "body-too-large": ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 17\r\n\r\n", (), 3),
    "http11-version": ("GET / HTTP/1.2\r\nHost: h\r\n\r\n", (), 0),
    "http2-preface": ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", (), 0),
    "tls-hello": (bytes.fromhex("16030100a5010000a10303") + b"\x00" * 16, (), 0),
    "nul-in-target": ("GET /a\x00b HTTP/1.1\r\nHost: h\r\n\r\n", (), 0),
    "folded-header": ("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n  2\r\n\r\n", (), 0),
}
for name, (stream, cuts, limits) in http_requests.items():
    write("http_request", name, chunked(stream if isinstance(stream, bytes) else stream.encode("latin-1"),
                                        cuts=cuts, protocols=limits))
# The limits: a request line at and over 4096, a head near 8192, 64 and 65 headers, and the
# same shapes against the small limits.
line = "GET /" + "a" * (4096 - len("GET / HTTP/1.1")) + " HTTP/1.1"
write("http_request", "line-at-limit", chunked(line + "\r\nHost: h\r\n\r\n", cuts=(2000, 4097)))
write("http_request", "line-over-limit", chunked(line.replace("/a", "/aa", 1) + "\r\nHost: h\r\n\r\n", cuts=(4097,)))
cookie = "GET / HTTP/1.1\r\nHost: h\r\nCookie: " + "c" * (8150 - 40) + "\r\n\r\n"
write("http_request", "near-head-limit", chunked(cookie, cuts=(4000, 8000)))
headers = lambda n: "GET / HTTP/1.1\r\nHost: h\r\n" + "".join(f"X-{i}: v\r\n" for i in range(n)) + "\r\n"
write("http_request", "64-headers", chunked(headers(63)))
write("http_request", "65-headers", chunked(headers(64), cuts=(300,)))
write("http_request", "small-limits-line", chunked("GET /" + "b" * 70 + " HTTP/1.1\r\nHost: h\r\n\r\n", protocols=1))
write("http_request", "small-limits-head", chunked("GET / HTTP/1.1\r\nHost: h\r\nX: " + "d" * 290 + "\r\n\r\n",
                                                   cuts=(100,), protocols=2))

# --- http_path: request targets ----------------------------------------------------------------
paths = [
    "/", "/index.html", "/a%20b.txt", "/a%20b/./c/", "//etc/passwd", "/sub/", "/sub", "/sub/.",
    "/%e2%82%ac/x?y=1", "/100%25", "/a%3fb%23c", "/a?x=1&y=%2f#frag", "http://cam:8080/p/q?x",
    "HTTPS://x", "*", "cam:443",
    # The traversal tricks of the plan's section 6, item 8.
    "/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E/secret.txt",
    "/.%2e/secret.txt", "/%2e./secret.txt", "/..%2fsecret.txt", "/sub%2f..%2f..%2fsecret.txt",
    "/%2fetc/passwd", "/..\\secret.txt", "/%5c..%5csecret.txt", "/%00", "/index.html%00.txt",
    "/a\x00b", "/%zz", "/%2", "/%c0%ae%c0%ae/", "http://x/../secret.txt", "/a%0d%0aSet-Cookie:x",
    "/%252e%252e/", "/...", "/a#b",
]
for i, p in enumerate(paths):
    write("http_path", f"path-{i:02d}", p)
