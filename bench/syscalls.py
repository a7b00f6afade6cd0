#!/usr/bin/env python3
"""Counts system calls per connection for each client of bench/clients.hpp.

Runs `portres_bench --syscalls=CLIENT --count=N`, which sets up (namespace,
sink server in a child process, pool warm-up) and waits; attaches
`strace -c -f -p PID` to it, lets it run N connections, detaches, and writes
calls per connection (total and by system call) as JSON.
Usage: syscalls.py --bench BINARY --count N --out FILE
"""
import argparse
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time


def parse_summary(text):
    calls = {}
    for line in text.splitlines():
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$", line)
        if m and m.group(2) != "total":
            calls[m.group(2)] = calls.get(m.group(2), 0) + int(m.group(1))
    return calls


def readline(stream, seconds, what):
    """One line, or an error after `seconds` (no step waits unbounded)."""
    ready, _, _ = select.select([stream], [], [], seconds)
    if not ready:
        raise RuntimeError(f"no {what} within {seconds} s")
    return stream.readline()


def count(bench, client, n, tmp):
    if not shutil.which("strace"):
        return {"error": "strace is not installed"}
    proc = subprocess.Popen([bench, f"--syscalls={client}", f"--count={n}"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    strace = None
    try:
        line = readline(proc.stdout, 60, "ready line")
        m = re.match(r"ready (\d+)", line)
        if not m:
            return {"error": f"no ready line: {line!r}"}
        out = os.path.join(tmp, f"strace-{client}.txt")
        strace = subprocess.Popen(["strace", "-c", "-f", "-p", m.group(1), "-o", out],
                                  stderr=subprocess.PIPE, text=True)
        # strace reports each attached thread on stderr; wait for the first.
        readline(strace.stderr, 30, "word from strace")
        time.sleep(0.5)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        done = readline(proc.stdout, 120, "end of the counted run")
        strace.send_signal(signal.SIGINT)  # detach: the summary is written now
        strace.wait(timeout=30)
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(timeout=30)
        calls = parse_summary(open(out).read())
        total = sum(calls.values())
        m = re.match(r"done (\d+) connections, (\d+) failures", done)
        # A count that missed the run (strace attached to nothing) must not pass as "few calls".
        if calls.get("connect", 0) < n:
            return {"error": f"strace counted {calls.get('connect', 0)} connect calls for {n} connections "
                             f"(not attached?): {done.strip()!r}"}
        if not m or int(m.group(2)):
            return {"error": f"the counted run had failures: {done.strip()!r}"}
        return {"connections": n, "failures": int(m.group(2)),
                "calls_per_conn": total / n,
                "by_call": {k: v / n for k, v in sorted(calls.items(), key=lambda kv: -kv[1])}}
    finally:
        for p in (strace, proc):
            if p and p.poll() is None:
                p.kill()
                p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    result = {"method": f"strace -c -f -p attached to a fixed-count run of {a.count} connections "
                        "(RST close; the sink server runs in another process and is not counted)"}
    tmp = os.path.dirname(os.path.abspath(a.out))
    for client in ["autobind", "explicit", "pool"]:
        try:
            result[client] = count(a.bench, client, a.count, tmp)
        except Exception as e:  # reported, not fatal: the rest of the report still stands
            result[client] = {"error": str(e)}
        print(f"syscalls/{client}: " + (f"{result[client]['calls_per_conn']:.2f} calls per connection"
                                        if "calls_per_conn" in result[client] else result[client]["error"]))
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
