#!/usr/bin/env python3
"""Instructions per echoed WebSocket message, counted with callgrind (tools/callgrind-echo.sh).

  callgrind_echo.py run [--runs R] [--top T] [--sizes 32:2000,...] [--text ascii|utf8] NAME=COMMAND ...
      For each server (COMMAND: its program and arguments, {port} standing for the port) and
      each SIZE:N, runs the server under `valgrind --tool=callgrind` twice, once echoing N
      messages and once 2N (the client below), and prints (I(2N) - I(N)) / N: the instructions
      of one echoed message, with start-up, the handshake, the close and shut-down cancelled
      out. The same difference per function (callgrind_annotate of both runs) names where they
      go. With --runs 2 the whole set is measured twice and the spread of each figure printed.

  callgrind_echo.py client PORT SIZE COUNT [ascii|utf8]
      The workload: one connection to ws://127.0.0.1:PORT/, then COUNT text messages of SIZE bytes, window 1: each
is sent, then its echo read whole and compared byte for byte, before the next is sent. The
text is ASCII letters and digits, or with utf8 mostly two- and three-byte characters. Then a
normal close (1000) and the server's answer. The frames are made once before the loop with a
fixed mask and fixed ASCII text, so every run asks the server for exactly the same work; only
raw sockets are used (no WebSocket library: nothing of its own varies between runs).

  callgrind_echo.py cycles [--count N] [--runs R] [--top T] [--syscalls] NAME=COMMAND ...
      Connection cycles instead of messages: each server runs once for N cycles (default 1000)
      and once for 2N, and (I(2N) - I(N)) / N is printed: the user-space instructions of one
      cycle (TCP accept, upgrade handshake, closing handshake, TCP close). Valgrind has no
      SHA instructions: a server that uses them where the processor has them (oasisnet, for the
      Sec-WebSocket-Accept hash) runs its portable SHA-1 under callgrind, about 2700 of the
      figure that such a processor skips. With --syscalls the servers run under `strace -f -c`
      instead and the system calls of one cycle are printed, by name (the same difference, so
      start-up and shut-down cancel out).

  callgrind_echo.py cycles-client PORT COUNT
      The cycle workload: COUNT times, one after the other: connect to 127.0.0.1:PORT, send the
      upgrade request, read the 101 response, send a masked close frame (1000), read the
      server's close frame, then wait for the server to close TCP (RFC 6455 section 7.1.1: the
      server closes first) before closing the socket. A server that waits for the client to
      close instead is still served: after a grace of one second the client closes first, and
      the run says how many cycles it had to.
"""

import argparse
import base64
import os
import re
import shlex
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

MASK = b"\x37\xfa\x21\x3d"


def frame(opcode, payload, masked):
    """One final frame; masked (client to server) with MASK."""
    head = bytes([0x80 | opcode])
    bit = 0x80 if masked else 0
    if len(payload) < 126:
        head += bytes([bit | len(payload)])
    elif len(payload) < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", len(payload))
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", len(payload))
    if not masked:
        return head + payload
    body = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return head + MASK + body


def read_exactly(sock, count):
    chunks = []
    while count > 0:
        chunk = sock.recv(min(count, 1 << 20))
        if not chunk:
            raise RuntimeError("connection closed by the server")
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


def handshake(sock):
    key = base64.b64encode(b"callgrind-echo!!").decode()
    sock.sendall(
        (
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        # One byte at a time: nothing of the first frame may be read with the head.
        byte = sock.recv(1)
        if not byte:
            raise RuntimeError("connection closed during the handshake")
        head += byte
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"handshake refused: {head.splitlines()[0]!r}")


def make_text(size, kind):
    """SIZE bytes of UTF-8: ASCII letters and digits, or ("utf8") mostly multi-byte characters."""
    if kind == "ascii":
        return (b"abcdefghijklmnopqrstuvwxyz0123456789" * (size // 36 + 1))[:size]
    unit = "Grüße, 日本語 — ünïcödé ✓ ".encode()
    text = (unit * (size // len(unit) + 1))[:size]
    # Cut at a character boundary, then pad with ASCII to the exact size.
    return text.decode("utf-8", errors="ignore").encode().ljust(size, b" ")


def client(port, size, count, kind="ascii"):
    text = make_text(size, kind)
    request = frame(0x1, text, True)
    expected = frame(0x1, text, False)

    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    handshake(sock)
    for i in range(count):
        sock.sendall(request)
        echo = read_exactly(sock, len(expected))
        if echo != expected:
            raise RuntimeError(f"message {i}: the echo differs from what was sent")
    sock.sendall(frame(0x8, struct.pack("!H", 1000), True))
    answer = read_exactly(sock, 4)
    if answer[0] != 0x88:
        raise RuntimeError(f"expected a close frame, got {answer!r}")
    sock.close()


CLOSE_1000 = frame(0x8, struct.pack("!H", 1000), True)


def cycles_client(port, count):
    """COUNT connection cycles; returns how many the server left for the client to close."""
    client_closed = 0
    for i in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        try:
            handshake(sock)
            sock.sendall(CLOSE_1000)
            answer = read_exactly(sock, 4)
            if answer != b"\x88\x02\x03\xe8":
                raise RuntimeError(f"cycle {i}: expected the close frame 1000, got {answer!r}")
            sock.settimeout(1.0)
            try:
                if sock.recv(1) != b"":
                    raise RuntimeError(f"cycle {i}: bytes after the close frame")
            except socket.timeout:
                client_closed += 1
        finally:
            sock.close()
    return client_closed


# ---- the measurement ----------------------------------------------------------------------------


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port):
    """True once something listens on port: read from /proc, so that waiting for the server
    opens no connection it would have to count."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as lines:
                next(lines)
                for line in lines:
                    fields = line.split()
                    if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                        return True
        except FileNotFoundError:
            pass
    return False


def callgrind(command, size, count, work, tag, kind):
    """Runs command under callgrind for one client run; returns the callgrind output file."""
    out = os.path.join(work, f"callgrind.{tag}.{size}.{count}")
    tool = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    serve(tool, command, out, tag, lambda port: client(port, size, count, kind))
    return out


def serve(tool, command, out, tag, workload):
    """Runs command under tool (valgrind or strace, writing to out) while workload(port) runs,
    then stops it with SIGINT."""
    port = free_port()
    log = open(out + ".log", "w")
    argv = [arg.replace("{port}", str(port)) for arg in command]
    server = subprocess.Popen(tool + argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not listening(port):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{tag}: the server did not listen on {port} (see {out}.log)")
            time.sleep(0.1)
        workload(port)
    finally:
        # SIGINT: both the C echo server and the documented sample stop cleanly on it, and
        # callgrind writes its counts when the program exits. Under strace the signal goes to
        # the traced program, strace's child; strace writes its table when that exits.
        target = server.pid
        if tool[0] == "strace":
            with open(f"/proc/{server.pid}/task/{server.pid}/children") as children:
                target = int(children.read().split()[0])
        os.kill(target, signal.SIGINT)
        server.wait(timeout=120)
        log.close()


def functions(out):
    """Self instructions per function of one callgrind output: {name: Ir}, and the total."""
    text = subprocess.run(
        ["callgrind_annotate", "--inclusive=no", "--threshold=100", "--show-percs=no", "--auto=no", out],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    costs, total, body = {}, None, False
    for line in text.splitlines():
        match = re.match(r"^\s*([\d,]+)\s+(.*)$", line)
        if "file:function" in line:
            body = True
        elif match and "PROGRAM TOTALS" in match.group(2):
            total = int(match.group(1).replace(",", ""))
        elif match and body:
            name = re.sub(r"^[^:]*:", "", match.group(2), count=1)
            name = re.sub(r" \[[^\]]*\]$", "", name)
            costs[name] = costs.get(name, 0) + int(match.group(1).replace(",", ""))
    if total is None:
        raise RuntimeError(f"no totals in {out}")
    return costs, total


def largest_differences(one, two, count, top):
    """The `top` functions whose cost grew most from run `one` to run `two`, per unit of `count`."""
    diff = {name: (two[0].get(name, 0) - one[0].get(name, 0)) / count for name in two[0]}
    return sorted(diff.items(), key=lambda item: -item[1])[:top]


def short(name, width=78):
    # Rust symbols: drop the hash suffix; keep the tail of long C++/Rust paths.
    name = re.sub(r"::h[0-9a-f]{16}$", "", name)
    return name if len(name) <= width else "..." + name[-(width - 3):]


def measure(servers, sizes, runs, top, work, kind):
    results = {}
    for run in range(runs):
        for tag, command in servers:
            for size, count in sizes:
                one = functions(callgrind(command, size, count, work, f"{tag}.r{run}", kind))
                two = functions(callgrind(command, size, 2 * count, work, f"{tag}.r{run}", kind))
                per = (two[1] - one[1]) / count
                results.setdefault((tag, size), []).append(per)
                print(
                    f"callgrind-echo: {tag}, {size}-byte text, run {run + 1}: {one[1]} instructions for "
                    f"{count} messages, {two[1]} for {2 * count}: {per:.0f} per message",
                    flush=True,
                )
                if run == 0 and top > 0:
                    for name, cost in largest_differences(one, two, count, top):
                        print(f"    {cost:10.0f} {100 * cost / per:5.1f}%  {short(name)}")
    print()
    print(f"instructions per echoed message (callgrind, one connection, window 1, {kind} text)")
    header = "| server | " + " | ".join(f"{size} B" for size, _ in sizes) + " |"
    print(header)
    print("|---|" + "---:|" * len(sizes))
    for tag, _ in servers:
        cells = []
        for size, _ in sizes:
            values = results[(tag, size)]
            cell = f"{values[0]:.0f}"
            if len(values) > 1:
                spread = (max(values) - min(values)) / min(values)
                cell = " / ".join(f"{v:.0f}" for v in values) + f" ({100 * spread:.1f} %)"
            cells.append(cell)
        print(f"| {tag} | " + " | ".join(cells) + " |")


def syscalls(out):
    """System calls by name in one `strace -c` table: {name: calls}, and the total."""
    counts, total = {}, None
    with open(out) as table:
        for line in table:
            fields = line.split()
            if len(fields) < 5 or not fields[3].isdigit():
                continue
            if fields[-1] == "total":
                total = int(fields[3])
            else:
                counts[fields[-1]] = int(fields[3])
    if total is None:
        raise RuntimeError(f"no totals in {out}")
    return counts, total


def measure_cycles(servers, count, runs, top, work, strace):
    """Instructions (or, with strace, system calls) per connection cycle."""
    what = "system calls" if strace else "instructions"
    results = {}
    for run in range(runs):
        for tag, command in servers:
            costs = []
            for n in (count, 2 * count):
                out = os.path.join(work, f"{'strace' if strace else 'callgrind'}.{tag}.r{run}.cycles.{n}")
                tool = ["strace", "-f", "-c", "-o", out] if strace else [
                    "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
                left = []
                serve(tool, command, out, tag, lambda port: left.append(cycles_client(port, n)))
                if left[0]:
                    print(f"callgrind-echo: {tag}: the client closed first in {left[0]} of {n} cycles")
                costs.append(syscalls(out) if strace else functions(out))
            one, two = costs
            per = (two[1] - one[1]) / count
            results.setdefault(tag, []).append(per)
            print(
                f"callgrind-echo: {tag}, cycles, run {run + 1}: {one[1]} {what} for {count} "
                f"cycles, {two[1]} for {2 * count}: {per:.{1 if strace else 0}f} per cycle",
                flush=True,
            )
            if run == 0 and top > 0:
                for name, cost in largest_differences(one, two, count, top):
                    if strace:
                        print(f"    {cost:10.2f}  {name}")
                    else:
                        print(f"    {cost:10.0f} {100 * cost / per:5.1f}%  {short(name)}")
    print()
    print(f"{what} per connection cycle (accept, upgrade, closing handshake, TCP close)")
    print("| server | per cycle |")
    print("|---|---:|")
    for tag, _ in servers:
        values = results[tag]
        cell = " / ".join(f"{v:.{1 if strace else 0}f}" for v in values)
        print(f"| {tag} | {cell} |")


def main():
    if len(sys.argv) in (5, 6) and sys.argv[1] == "client":
        port, size, count = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
        client(port, size, count, sys.argv[5] if len(sys.argv) == 6 else "ascii")
        print(f"callgrind-echo client: {count} text messages of {size} bytes echoed")
        return
    if len(sys.argv) == 4 and sys.argv[1] == "cycles-client":
        count = int(sys.argv[3])
        left = cycles_client(int(sys.argv[2]), count)
        print(f"callgrind-echo client: {count} connection cycles, {left} closed by the client first")
        return
    if len(sys.argv) < 2 or sys.argv[1] not in ("run", "cycles"):
        sys.exit(__doc__)
    parser = argparse.ArgumentParser(prog=f"callgrind_echo.py {sys.argv[1]}")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--top", type=int, default=8)
    parser.add_argument("--work", default=None)
    if sys.argv[1] == "run":
        parser.add_argument("--sizes", default="32:2000,4096:1000,65536:200")
        parser.add_argument("--text", choices=("ascii", "utf8"), default="ascii")
    else:
        parser.add_argument("--count", type=int, default=1000)
        parser.add_argument("--syscalls", action="store_true")
    parser.add_argument("servers", nargs="+", metavar="NAME=COMMAND")
    args = parser.parse_args(sys.argv[2:])
    servers = [(item.split("=", 1)[0], shlex.split(item.split("=", 1)[1])) for item in args.servers]
    work = args.work or tempfile.mkdtemp(prefix="callgrind-echo.")
    os.makedirs(work, exist_ok=True)
    if sys.argv[1] == "cycles":
        measure_cycles(servers, args.count, args.runs, args.top, work, args.syscalls)
        return
    sizes = [tuple(int(x) for x in item.split(":")) for item in args.sizes.split(",")]
    measure(servers, sizes, args.runs, args.top, work, args.text)


if __name__ == "__main__":
    main()
