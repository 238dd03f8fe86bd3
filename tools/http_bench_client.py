#!/usr/bin/env python3
"""The load side of the HTTP measurements (tools/http-bench.sh, tools/http-idle-rss.sh).

  http_bench_client.py seq  PORT N [PATH]
      one keep-alive connection, N sequential GETs of PATH (default /t.txt), each answer read
      whole and checked (status 200, Content-Length bytes of body): a deterministic workload for
      counting the server's instructions per request.

  http_bench_client.py hold PORT N PID [--tls CAFILE] [PATH]
      N connections, each after one complete GET and its answer, so each sits idle in keep-alive;
      prints the server's VmRSS (from /proc/PID/status) before and while holding them, and the
      growth per connection. A few connections are opened and closed first, so one-off costs of
      the first connection (the loop's receive buffer, lazily made tables) are not counted.
"""

import socket
import ssl
import sys
import time


def vmrss_kb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def read_response(sock, pending):
    """Reads one whole response from sock; returns (status, body length, bytes left over)."""
    while b"\r\n\r\n" not in pending:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed before a response head")
        pending += chunk
    head, _, rest = pending.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed inside a response body")
        rest += chunk
    return status, length, rest[length:]


def request(path):
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\n\r\n".encode()


def connect(port, context):
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if context is not None:
        sock = context.wrap_socket(sock, server_hostname="localhost")
    return sock


def one_exchange(sock, path):
    sock.sendall(request(path))
    status, length, rest = read_response(sock, b"")
    if status != 200 or rest:
        raise RuntimeError(f"unexpected answer: status {status}, {len(rest)} extra bytes")
    return length


def seq(port, count, path):
    sock = connect(port, None)
    total = 0
    for _ in range(count):
        total += one_exchange(sock, path)
    sock.close()
    print(f"seq: {count} requests, {total} body bytes")


def still_open(sock):
    """True when the server has neither closed the connection nor sent anything more."""
    sock.setblocking(False)
    try:
        sock.recv(1)  # EOF or unexpected bytes: either way not an idle keep-alive connection
        return False
    except (BlockingIOError, ssl.SSLWantReadError):
        return True
    finally:
        sock.setblocking(True)


def hold(port, count, pid, cafile, path):
    context = None
    if cafile:
        context = ssl.create_default_context(cafile=cafile)
    for _ in range(16):
        sock = connect(port, context)
        one_exchange(sock, path)
        sock.close()
    time.sleep(0.5)
    before = vmrss_kb(pid)
    held = []
    for _ in range(count):
        sock = connect(port, context)
        one_exchange(sock, path)
        held.append(sock)
    time.sleep(1.0)
    after = vmrss_kb(pid)
    alive = sum(1 for sock in held if still_open(sock))
    scheme = "https" if cafile else "http"
    per_conn = (after - before) * 1024 / count
    print(f"http-idle-rss: {scheme}, {count} idle keep-alive connections ({alive} still open): "
          f"VmRSS {before} KiB before, {after} KiB holding them, {per_conn:.0f} bytes per connection")
    for sock in held:
        sock.close()
    if alive != count:
        sys.exit(1)


def main(argv):
    if len(argv) >= 3 and argv[0] == "seq":
        seq(int(argv[1]), int(argv[2]), argv[3] if len(argv) > 3 else "/t.txt")
        return
    if len(argv) >= 4 and argv[0] == "hold":
        rest = argv[4:]
        cafile = None
        if rest[:1] == ["--tls"] and len(rest) >= 2:
            cafile, rest = rest[1], rest[2:]
        hold(int(argv[1]), int(argv[2]), int(argv[3]), cafile, rest[0] if rest else "/t.txt")
        return
    print(__doc__, file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
