#!/usr/bin/env python3
"""Atomic read-modify-writes per echoed WebSocket message, counted with callgrind.

    python3 tools/callgrind_atomics.py [--window 16] [--count 800] [--size 32] SERVER...

SERVER is NAME=COMMAND as for callgrind_echo.py ({port} is replaced). One connection sends
WINDOW text messages at once (one write), reads their WINDOW echoes, and repeats: COUNT
messages, then 2*COUNT, each under `valgrind --tool=callgrind --dump-instr=yes`. The figure is
(L(2N) - L(N)) / N, where L counts the executed instructions that are atomic read-modify-writes
on x86-64 (a `lock` prefix, or `xchg` with memory), found by disassembling every object with
objdump; per function as well. Also the instructions per message (Ir). Callgrind counts an
atomic as one instruction however long it takes, hence this count beside callgrind_echo.py's.
"""

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import callgrind_echo as ce  # noqa: E402


def windowed(port, size, count, window):
    text = ce.make_text(size, "ascii")
    request, expected = ce.frame(0x1, text, True), ce.frame(0x1, text, False)
    sock = ce.socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(ce.socket.IPPROTO_TCP, ce.socket.TCP_NODELAY, 1)
    ce.handshake(sock)
    for _ in range(count // window):
        sock.sendall(request * window)
        if ce.read_exactly(sock, len(expected) * window) != expected * window:
            raise RuntimeError("an echo differs from what was sent")
    sock.sendall(ce.CLOSE_1000)
    ce.read_exactly(sock, 4)
    sock.close()


def profile(command, args, count, work, tag):
    out = os.path.join(work, f"callgrind.{tag}.{count}")
    tool = ["valgrind", "--tool=callgrind", "--dump-instr=yes", "--compress-pos=no",
            "--compress-strings=no", f"--callgrind-out-file={out}"]
    ce.serve(tool, command, out, tag, lambda port: windowed(port, args.size, count, args.window))
    return out


def executed(out):
    """{(object, function, address): times executed}, and the total Ir."""
    counts, total = collections.Counter(), 0
    ob = fn = None
    skip = False
    for line in open(out):
        if line.startswith("ob="):
            ob = line[3:].strip()
        elif line.startswith("fn="):
            fn = line[3:].strip()
        elif line.startswith("calls="):
            skip = True  # the next cost line is the call's inclusive cost
        elif line.startswith("0x"):
            if skip:
                skip = False
                continue
            fields = line.split()
            counts[(ob, fn, int(fields[0], 16))] += int(fields[-1])
        elif line.startswith("totals:"):
            total = int(line.split()[1])
    return counts, total


def atomic_addresses(obj, cache={}):
    if obj not in cache:
        text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", obj],
                              capture_output=True, text=True).stdout
        found = set()
        for line in text.splitlines():
            match = re.match(r"\s*([0-9a-f]+):\s+(\S.*)", line)
            if match:
                instruction = match.group(2)
                if instruction.startswith("lock ") or (
                        instruction.startswith("xchg") and "(" in instruction):
                    found.add(int(match.group(1), 16))
        cache[obj] = found
    return cache[obj]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--count", type=int, default=800)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--work", default=None)
    parser.add_argument("servers", nargs="+")
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="callgrind-atomics.")
    os.makedirs(work, exist_ok=True)
    for server in args.servers:
        tag, command = server.split("=", 1)
        command = command.split()
        one, ir_one = executed(profile(command, args, args.count, work, tag))
        two, ir_two = executed(profile(command, args, 2 * args.count, work, tag))
        per_function, total = collections.Counter(), 0
        for (ob, fn, address), times in two.items():
            if ob and address in atomic_addresses(ob):
                more = times - one.get((ob, fn, address), 0)
                per_function[fn] += more
                total += more
        n = args.count
        print(f"{tag}: {args.size} B, window {args.window}: {(ir_two - ir_one) / n:.1f} "
              f"instructions, {total / n:.2f} atomic read-modify-writes per message")
        for fn, more in per_function.most_common():
            if more / n >= 0.01:
                print(f"  {more / n:6.2f}  {fn[:110]}")


if __name__ == "__main__":
    main()
