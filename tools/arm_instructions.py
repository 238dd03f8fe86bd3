#!/usr/bin/env python3
"""Instructions per echoed WebSocket message on ARM, counted under user-mode QEMU.

    tools/arm_instructions.py [--sizes 32:1000,4096:500,65536:100] [--top T] [--work DIR]
                              TRIPLE NAME=COMMAND ...

The ARM counterpart of callgrind_echo.py (valgrind does not run ARM programs on this machine):
each server (COMMAND: an ARM program and its arguments, {port} standing for the port; built
with `make examples TARGET=TRIPLE`, or with PROFILE=release-small as `make test` builds them)
runs under qemu-aarch64 or qemu-arm with one instruction per translation block and every
block's execution logged (`-one-insn-per-tb`, called `-singlestep` before QEMU 8.1;
`-d exec,nochain`), so that each log line is one executed instruction of any of its threads. The workload is callgrind_echo.py's: one connection, window
1, SIZE-byte ASCII text messages, each echo compared byte for byte, then a close 1000. Each
server runs twice, for N messages and for 2N, and (I(2N) - I(N)) / N is printed: start-up, the
handshake, the close and the exit cancel out. The figure repeats within about 2 % (how often
the loop thread waits and wakes varies a little).

--top T also names the T functions of liboasisnet.so that take the most of one message (`nm` of
the cross tool chain; the library is the file the guest's loader reports it loaded); what runs
outside the library is one line. Needs qemu-user and the target's C library
(tests/scripts/setup.sh test installs both).
"""

import argparse
import bisect
import collections
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import callgrind_echo as ce  # noqa: E402

TOOLS = {
    # triple prefix: (emulator, C library root, nm)
    "aarch64": ("qemu-aarch64", "/usr/aarch64-linux-gnu", "aarch64-linux-gnu-nm"),
    "armv7": ("qemu-arm", "/usr/arm-linux-gnueabihf", "arm-linux-gnueabihf-nm"),
    "thumbv7": ("qemu-arm", "/usr/arm-linux-gnueabihf", "arm-linux-gnueabihf-nm"),
}


def tools_for(triple):
    for prefix, tools in TOOLS.items():
        if triple.startswith(prefix):
            return tools
    sys.exit(f"arm_instructions: no QEMU known for {triple}")


def single_step_flag(emulator):
    """`-one-insn-per-tb` since QEMU 8.1, `-singlestep` before."""
    help_text = subprocess.run([emulator, "-h"], capture_output=True, text=True).stdout
    return "-one-insn-per-tb" if "-one-insn-per-tb" in help_text else "-singlestep"


def run_once(triple, command, size, count, work, histogram):
    """Runs the server under QEMU for one client run; returns the instructions it executed and
    fills histogram (program counter -> executions). The log goes through a FIFO, read as QEMU
    writes it: a log file would take gigabytes."""
    emulator, sysroot, _ = tools_for(triple)
    fifo = os.path.join(work, "exec.fifo")
    if os.path.exists(fifo):
        os.unlink(fifo)
    os.mkfifo(fifo)
    port = ce.free_port()
    argv = [arg.replace("{port}", str(port)) for arg in command]
    env = dict(os.environ, LD_DEBUG="files")  # the guest's loader prints where each library goes
    env.pop("LD_LIBRARY_PATH", None)  # names the host's libraries
    log = os.path.join(work, "server.log")
    qemu = [emulator, "-L", sysroot, single_step_flag(emulator), "-d", "exec,nochain", "-D", fifo]
    server = subprocess.Popen(qemu + argv, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)
    total = [0]

    def read():
        executed = 0
        with open(fifo, "rb", buffering=1 << 20) as lines:
            for line in lines:
                if line.startswith(b"Trace"):
                    executed += 1
                    # "Trace 0: 0x7f... [00000000/0000000000400a30/...]": the guest PC is second.
                    histogram[line.split(b"[", 1)[1].split(b"/", 2)[1]] += 1
        total[0] = executed

    reader = threading.Thread(target=read)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not ce.listening(port):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not listen on {port} (see {log})")
            time.sleep(0.1)
        ce.client(port, size, count)
    finally:
        if server.poll() is None:
            os.kill(server.pid, signal.SIGINT)
        server.wait(timeout=300)
        reader.join()
    return total[0], open(log, errors="replace").read()


def symbols(triple, loader_log):
    """(start, end, name) of the functions of liboasisnet.so, where the guest's loader put it
    (LD_DEBUG=files); sorted."""
    # "file=liboasisnet.so.0 [0];  generating link map ... base: 0x...", then, once it is
    # loaded, "calling init: /path/to/liboasisnet.so.0": the file the program found.
    base = re.search(r"file=\S*oasisnet\S* \[0\];\s+generating link map\n.*?base: 0x(\w+)", loader_log, re.S)
    path = re.search(r"calling init: (\S*liboasisnet\S*)", loader_log)
    if not (base and path and os.path.exists(path.group(1))):
        print("arm-instructions: liboasisnet.so not found in the loader's log; no names",
              file=sys.stderr)
        return []
    _, _, nm = tools_for(triple)
    out = subprocess.run([nm, "--defined-only", "-C", "-S", path.group(1)], capture_output=True, text=True)
    found = []
    for line in out.stdout.splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4 and parts[2] in "tTwW":
            start = int(base.group(1), 16) + (int(parts[0], 16) & ~1)  # (bit 0 marks Thumb code)
            found.append((start, start + int(parts[1], 16), parts[3]))
    return sorted(found)


def measure(triple, servers, sizes, top, work):
    table = {}
    for name, command in servers:
        for size, count in sizes:
            runs = []
            for n in (count, 2 * count):
                histogram = collections.Counter()
                executed, loader_log = run_once(triple, command, size, n, work, histogram)
                runs.append((executed, histogram))
            per_message = (runs[1][0] - runs[0][0]) / count
            table[name, size] = per_message
            print(f"arm-instructions: {name}, {size}-byte text: {runs[0][0]} instructions for "
                  f"{count} messages, {runs[1][0]} for {2 * count}: {per_message:.0f} per message",
                  file=sys.stderr)
            if top:
                print_top(triple, loader_log, runs, count, top)
    return table


def print_top(triple, loader_log, runs, count, top):
    functions = symbols(triple, loader_log)
    starts = [f[0] for f in functions]
    per_function = collections.Counter()
    for sign, (_, histogram) in ((-1, runs[0]), (1, runs[1])):
        for pc, executed in histogram.items():
            pc = int(pc, 16)
            i = bisect.bisect_right(starts, pc) - 1
            inside = i >= 0 and pc < functions[i][1]
            per_function[functions[i][2] if inside else "(outside liboasisnet: the program, the C library)"] += sign * executed
    for name, executed in per_function.most_common(top):
        print(f"    {executed / count:10.0f}  {ce.short(name)}", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="32:1000,4096:500,65536:100")
    parser.add_argument("--top", type=int, default=0)
    parser.add_argument("--work", default=None)
    parser.add_argument("triple")
    parser.add_argument("servers", nargs="+")
    args = parser.parse_args()
    sizes = [tuple(int(x) for x in s.split(":")) for s in args.sizes.split(",")]
    servers = [(s.split("=", 1)[0], s.split("=", 1)[1].split()) for s in args.servers]
    if args.work:
        os.makedirs(args.work, exist_ok=True)
    work = args.work or tempfile.mkdtemp(prefix="arm-instructions.")
    table = measure(args.triple, servers, sizes, args.top, work)
    print(f"\ninstructions per echoed message ({args.triple}, QEMU, one connection, window 1, ascii text)")
    print("| server | " + " | ".join(f"{size} B" for size, _ in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    for name, _ in servers:
        print(f"| {name} | " + " | ".join(f"{table[name, size]:.0f}" for size, _ in sizes) + " |")


if __name__ == "__main__":
    main()
