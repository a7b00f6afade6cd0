#!/usr/bin/env python3
"""Checks scripts/report.py on a small canned Google Benchmark JSON file."""
import os
import subprocess
import sys
import tempfile

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with tempfile.TemporaryDirectory() as out:
    result = subprocess.run([sys.executable, os.path.join(root, "scripts", "report.py"),
                             "--input", os.path.join(root, "tests", "data", "bench_sample.json"),
                             "--out", out, "--kernel", "6.0-test", "--compiler", "g++ test"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    report = open(os.path.join(out, "report.md")).read()
    checks = [
        "kernel: 6.0-test",
        "compiler: g++ test",
        "| P1a | portres::bind p50 <= 1.5x raw explicit bind (every occupancy and layout) | worst 1.40x | PASS |",
        "| P1b |",
        "random 1.00x",
        "| P2 | pool get with stock p50 <= 0.25 us sync, <= 1 us through the io_context | sync 0.080 us, async 0.700 us | PASS |",
        "| P4 | acquire + associate + release <= 10 us; async adds <= 1 us | sync 8.000 us, async 8.500 us | PASS |",
        "| P5 | acquire cost for 16,384 ports <= 2x the cost for 1 port | 2.40x | FAIL |",
        "| bind/ephemeral/clustered/occupancy:99 | 397.0 us | 9.000 us | explicit | 397.00x |  |  |",
        "| churn/autobind/paced (rate 900/s, failures 0) |",
        "| P3 |",  # missing portres churn data: reported, not crashed
    ]
    missing = [c for c in checks if c not in report]
    if missing:
        print(report)
        print("missing:", *missing, sep="\n  ")
        sys.exit(1)
    if "plot skipped" not in report and not os.path.exists(os.path.join(out, "bind_latency.svg")):
        print("report names a plot that was not written")
        sys.exit(1)
    print("report generator: all", len(checks), "checks passed")
