#!/usr/bin/env python3
"""Judges runs of the side-by-side benchmark (tools/bench.sh) against uWebSockets.

    tools/bench_targets.py RUN.jsonl [RUN.jsonl ...]

For each run (one results file of the shared benchmark's run.sh, REPS repetitions inside it)
every figure is first the median over the run's repetitions, then a ratio to uWebSockets in the
same run: echo throughput per cell (higher is better), server CPU per echoed message and p99
latency per cell (lower is better), each summarised as the geometric mean over the cells; the
server CPU per connection cycle (connect + handshake + close); bytes of RSS per idle connection.
The verdict takes the median over the runs of each summary, and per cell the median of its
ratios over the runs, against these targets:

    oasisnet (build/echo_server)         throughput geomean >= 1.10, every cell >= 1.0,
                                         server CPU/msg geomean <= 0.90, p99 geomean <= 1.0
    oasisnet-sample (the sample, no DLOG) throughput geomean >= 1.0, every cell >= 0.9,
                                         server CPU/msg geomean <= 1.0
    connection cycles (echo_server)      server CPU per cycle <= 0.90
    idle connections (echo_server)       <= 256 bytes each

With a second copy of uWebSockets in the runs (uwebsockets-again: tools/bench.sh CONTROL=1),
a control follows: the same binary's ratios to the first copy, per run and per cell. A target
of "every cell >= 1.0" between equals is met or missed by the machine's noise; the control shows
how far below 1.0 a server's lowest cell falls against itself.
"""
import json
import statistics
import sys
from collections import defaultdict

BASE = "uwebsockets"
CONTROL = "uwebsockets-again"


def load(path):
    echo = defaultdict(list)
    single = defaultdict(list)
    for line in open(path):
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        mode, server = r.get("mode"), r.get("server")
        if mode == "echo" and not r.get("errors"):
            echo[(r["conns"], r["size"], r["window"], server)].append(r)
        elif mode in ("connect_rate", "hold") and not r.get("errors"):
            single[(mode, server)].append(r)
    return echo, single


def med(rows, key):
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def geomean(values):
    values = [v for v in values if v]
    if not values:
        return None
    product = 1.0
    for v in values:
        product *= v
    return product ** (1 / len(values))


def ratios(echo, peer, key):
    """Per cell: the peer's median over the base's median."""
    out = {}
    for cell in sorted({k[:3] for k in echo}):
        mine, base = med(echo.get(cell + (peer,), []), key), med(echo.get(cell + (BASE,), []), key)
        if mine and base:
            out[cell] = mine / base
    return out


def summarise(path):
    echo, single = load(path)
    run = {}
    for peer in ("oasisnet", "oasisnet-sample", CONTROL):
        run[peer] = {
            "throughput": ratios(echo, peer, "msgs_per_s"),
            "cpu": ratios(echo, peer, "server_us_per_op"),
            "p99": ratios(echo, peer, "p99_us"),
        }
    cycle = [med(single.get(("connect_rate", p), []), "server_us_per_op") for p in ("oasisnet", BASE)]
    run["cycle"] = cycle[0] / cycle[1] if all(cycle) else None
    run["cycle_us"] = cycle
    run["idle_bytes"] = med(single.get(("hold", "oasisnet"), []), "bytes_per_conn")
    run["idle_bytes_base"] = med(single.get(("hold", BASE), []), "bytes_per_conn")
    run["name"] = path.rsplit("/", 1)[-1]
    return run


def fmt(v, digits=2):
    return "–" if v is None else f"{v:.{digits}f}"


def main(paths):
    runs = [summarise(p) for p in paths]
    print(f"\n## Against uWebSockets: {len(runs)} run(s), ratios ours / uWebSockets\n")
    print("| run | echo_server throughput (min cell) | CPU/msg | p99 | sample throughput (min cell) "
          "| sample CPU/msg | CPU per cycle | idle B/conn (uWS) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    summary = defaultdict(list)
    for path, run in zip(paths, runs):
        row = {}
        for peer in ("oasisnet", "oasisnet-sample"):
            for key in ("throughput", "cpu", "p99"):
                row[peer, key] = geomean(run[peer][key].values())
                summary[peer, key].append(row[peer, key])
            cells = run[peer]["throughput"].values()
            row[peer, "min"] = min(cells) if cells else None
        summary["cycle"].append(run["cycle"])
        summary["idle"].append(run["idle_bytes"])
        print(f"| {path.rsplit('/', 1)[-1]} | {fmt(row['oasisnet', 'throughput'])} "
              f"({fmt(row['oasisnet', 'min'])}) | {fmt(row['oasisnet', 'cpu'])} | "
              f"{fmt(row['oasisnet', 'p99'])} | {fmt(row['oasisnet-sample', 'throughput'])} "
              f"({fmt(row['oasisnet-sample', 'min'])}) | {fmt(row['oasisnet-sample', 'cpu'])} | "
              f"{fmt(run['cycle'])} | {fmt(run['idle_bytes'], 0)} ({fmt(run['idle_bytes_base'], 0)}) |")

    def median_of(key):
        values = [v for v in summary[key] if v is not None]
        return statistics.median(values) if values else None

    def cell_medians(peer, key):
        per_cell = defaultdict(list)
        for run in runs:
            for cell, ratio in run[peer][key].items():
                per_cell[cell].append(ratio)
        return {cell: statistics.median(v) for cell, v in per_cell.items()}

    print("\nPer cell, median ratio over the runs (conns:size:window):\n")
    print("| cell | echo_server throughput | echo_server CPU/msg | sample throughput | sample CPU/msg |")
    print("|---|---:|---:|---:|---:|")
    cells = {peer: {k: cell_medians(peer, k) for k in ("throughput", "cpu")}
             for peer in ("oasisnet", "oasisnet-sample")}
    for cell in sorted(cells["oasisnet"]["throughput"]):
        print(f"| {cell[0]}:{cell[1]}:{cell[2]} | {fmt(cells['oasisnet']['throughput'].get(cell))} | "
              f"{fmt(cells['oasisnet']['cpu'].get(cell))} | "
              f"{fmt(cells['oasisnet-sample']['throughput'].get(cell))} | "
              f"{fmt(cells['oasisnet-sample']['cpu'].get(cell))} |")

    def min_cell(peer):
        values = cells[peer]["throughput"].values()
        return min(values) if values else None

    checks = [
        ("echo_server throughput geomean >= 1.10", median_of(("oasisnet", "throughput")), ">=", 1.10),
        ("echo_server every cell >= 1.0", min_cell("oasisnet"), ">=", 1.0),
        ("echo_server server CPU/msg geomean <= 0.90", median_of(("oasisnet", "cpu")), "<=", 0.90),
        ("echo_server p99 geomean <= 1.0", median_of(("oasisnet", "p99")), "<=", 1.0),
        ("sample throughput geomean >= 1.0", median_of(("oasisnet-sample", "throughput")), ">=", 1.0),
        ("sample every cell >= 0.9", min_cell("oasisnet-sample"), ">=", 0.9),
        ("sample server CPU/msg geomean <= 1.0", median_of(("oasisnet-sample", "cpu")), "<=", 1.0),
        ("server CPU per connection cycle <= 0.90", median_of("cycle"), "<=", 0.90),
        ("RSS per idle connection <= 256 B", median_of("idle"), "<=", 256),
    ]
    print("\nTargets, judged on the median over the runs:\n")
    print("| target | median | met |")
    print("|---|---:|---|")
    met = 0
    for name, value, op, limit in checks:
        ok = value is not None and (value >= limit if op == ">=" else value <= limit)
        met += ok
        print(f"| {name} | {fmt(value, 0 if limit > 10 else 2)} | {'yes' if ok else 'no'} |")
    print(f"\n{met} of {len(checks)} targets met")
    if any(run[CONTROL]["throughput"] for run in runs):
        control(runs, summary, cell_medians)


def control(runs, summary, cell_medians):
    """uWebSockets against itself, summarised as echo_server is above."""
    print("\n## Control: uWebSockets against itself (uwebsockets-again / uwebsockets)\n")
    print("| run | throughput (min cell) | CPU/msg | p99 |")
    print("|---|---:|---:|---:|")
    for run in runs:
        values = run[CONTROL]
        cells = values["throughput"].values()
        print(f"| {run['name']} | {fmt(geomean(values['throughput'].values()))} "
              f"({fmt(min(cells) if cells else None)}) | {fmt(geomean(values['cpu'].values()))} | "
              f"{fmt(geomean(values['p99'].values()))} |")
    throughput = cell_medians(CONTROL, "throughput")
    cpu = cell_medians(CONTROL, "cpu")
    print("\n| cell | throughput, median over the runs | CPU/msg |")
    print("|---|---:|---:|")
    for cell in sorted(throughput):
        print(f"| {cell[0]}:{cell[1]}:{cell[2]} | {fmt(throughput[cell])} | {fmt(cpu.get(cell))} |")
    lowest = min(throughput.values()) if throughput else None
    print(f"\nThe control's lowest cell (median over the runs): {fmt(lowest)}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
