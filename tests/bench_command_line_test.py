#!/usr/bin/env python3
"""Checks portres_bench's own flags (bench/main.cpp): a value that is not wholly
a number in range, or an unknown flag, is refused with a message naming the flag
and exit status 2 before anything runs; --bind_iterations=N runs a bind/own case
exactly N times per repetition (no calibration).
Usage: bench_command_line_test.py PATH/TO/portres_bench"""
import json
import os
import subprocess
import sys
import tempfile

bench = sys.argv[1]
failures = 0


def run(*args, timeout=60):
    return subprocess.run([bench, *args], capture_output=True, text=True, timeout=timeout)


def check(ok, label, detail=""):
    global failures
    if not ok:
        failures += 1
        print(f"FAIL: {label}: {detail}")


refused = {
    "--bind_iterations": ["-1", "10000001", "99999999999999999999", "abc", "", "1e3", " 5", "5x", "+5", "0x10"],
    "--count": ["0", "-1", "abc", "", "4294967296", "1e3"],
    "--churn_seconds": ["0", "-3", "abc", "", "nan", "inf", "3601", "1s"],
    "--hold-reservations": ["-1", "abc", "", "2000000"],
    "--syscalls": [""],
}
for flag, values in refused.items():
    for value in values:
        r = run(f"{flag}={value}", "--benchmark_list_tests=true")
        check(r.returncode == 2, f"{flag}={value!r} exit status", f"{r.returncode}, stderr {r.stderr!r}")
        check(flag in r.stderr and f"'{value}'" in r.stderr, f"{flag}={value!r} message", repr(r.stderr))
        check(r.stdout == "", f"{flag}={value!r} ran something", repr(r.stdout[:200]))
for args in (["--registry=nobody"], ["--bind_iterations", "5"], ["--no_such_flag=1"]):
    r = run(*args, "--benchmark_list_tests=true")
    check(r.returncode == 2, f"{args} exit status", f"{r.returncode}, stderr {r.stderr!r}")

# Accepted values: listing works, and a fixed count is exactly the count run.
for args in (["--bind_iterations=0"], ["--bind_iterations=10000000"], ["--churn_seconds=0.5"], ["--count=1"]):
    r = run(*args, "--benchmark_list_tests=true")
    check(r.returncode == 0 and "own/explicit/fullness:0" in r.stdout, f"{args} accepted", r.stderr)
with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "out.json")
    r = run("--bind_iterations=37", "--benchmark_filter=^(own/explicit/fullness:0|bind/explicit/random/occupancy:0)/",
            "--benchmark_repetitions=2", f"--benchmark_out={out}", "--benchmark_out_format=json", timeout=120)
    check(r.returncode == 0, "fixed-count run", r.stderr)
    if r.returncode == 0:
        # (a fixed count shows in the name: .../iterations:37/manual_time)
        runs = [b for b in json.load(open(out))["benchmarks"] if b.get("run_type") == "iteration"]
        check(len(runs) == 4, "fixed-count run: two cases x two repetitions", [b["name"] for b in runs])
        for b in runs:
            check(b.get("error_occurred") is not True, f"{b['name']} ran", b.get("error_message"))
            check(b["iterations"] == 37 and b.get("samples") == 37, f"{b['name']} ran 37 binds",
                  (b["iterations"], b.get("samples")))

print("bench command line: " + ("OK" if failures == 0 else f"{failures} failures"))
sys.exit(1 if failures else 0)
