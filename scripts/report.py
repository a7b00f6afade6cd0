#!/usr/bin/env python3
"""Turns the benchmark results into report.md and an SVG plot.

Usage: report.py --input results.json [--input more.json]... --out DIR [--syscalls syscalls.json]
                 [--peers peers.json] [--capacity capacity.json] [--kernel K] [--compiler C]
                 [--build-type T] [--wall-seconds S] [--skipped TEXT]... [--failed TEXT]... [--no-plot]
Each input is Google Benchmark JSON (per-repetition runs and/or aggregates);
a case's figures over its repetitions: max_us the worst repetition's, failure
counts summed, everything else the median. A target whose figures are missing
or come from a failed case shows NOT MEASURED with the reason, never PASS.
Prints the report to stdout as well. The sections and targets live in
bench/report/ (one module per group).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))

from report import binds, document  # noqa: E402
from report.common import Report  # noqa: E402
from report.results import load_json, load_results  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", action="append", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--syscalls")
    ap.add_argument("--peers")
    ap.add_argument("--capacity")
    ap.add_argument("--kernel", default=os.uname().release)
    ap.add_argument("--compiler", default="unknown")
    ap.add_argument("--build-type", default="Release")
    ap.add_argument("--wall-seconds", type=int)
    ap.add_argument("--skipped", action="append", default=[])
    ap.add_argument("--failed", action="append", default=[])
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    failed = list(args.failed)
    contexts, rows = load_results(args.input, failed)
    rep = Report(rows, load_json(args.syscalls, failed, "syscalls"), load_json(args.peers, failed, "peers"),
                 load_json(args.capacity, failed, "capacity"))
    for section in document.SECTIONS:
        section(rep)
    plot = "plot skipped" if args.no_plot else binds.write_plot(rows, args.out)
    info = {"kernel": args.kernel, "compiler": args.compiler, "build_type": args.build_type,
            "wall_seconds": args.wall_seconds}
    text = document.render(rep, contexts, info, failed, list(args.skipped), plot)
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
