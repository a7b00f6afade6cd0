#!/usr/bin/env python3
"""Runs each sample briefly on loopback and checks what it printed.

As root, commands that may touch kernel settings run in a private network
namespace (unshare -n); every process gets private portres folders.
"""
import argparse
import atexit
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

failures = []


def check(cond, what, output=""):
    if cond:
        print("ok:", what)
    else:
        print("FAIL:", what)
        if output:
            print("  output:", output.strip().replace("\n", "\n  "))
        failures.append(what)


def run(cmd, env, timeout=60, isolate=False):
    if isolate and os.geteuid() == 0:
        cmd = ["unshare", "-n"] + cmd
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def main():
    ap = argparse.ArgumentParser()
    for name in ["acquire-release", "cli", "loadgen", "gateway"]:
        ap.add_argument("--" + name, required=True)
    a = ap.parse_args()
    scratch = tempfile.mkdtemp(prefix="portres-samples-")
    atexit.register(shutil.rmtree, scratch, True)  # nothing left in /tmp
    env = dict(os.environ, PORTRES_RUNTIME_DIR=os.path.join(scratch, "run"), PORTRES_STATE_DIR=os.path.join(scratch, "state"))

    # acquire_release: every completion style, and bad input.
    for style in ["callback", "future", "coroutine"]:
        rc, out = run([a.acquire_release, "--protocol", "udp", "--start", "0", "--count", "20", "--style", style], env)
        check(rc == 0 and re.search(r"acquired udp block \d+-\d+ token 0x[0-9a-f]{16}\nreleased", out) is not None,
              f"acquire_release --style {style}", out)
    rc, out = run([a.acquire_release, "--protocol", "tcp", "--start", "65530", "--count", "10"], env)
    check(rc == 2 and "65535" in out, "acquire_release rejects a block past 65535", out)
    rc, out = run([a.acquire_release, "--protocol", "sctp", "--count", "1"], env)
    check(rc == 2 and "tcp or udp" in out, "acquire_release rejects an unknown protocol", out)

    # portres CLI.
    rc, out = run([a.cli, "--help"], env)
    check(rc == 0 and "exit codes" in out, "portres --help", out)
    rc, out = run([a.cli, "frobnicate"], env)
    check(rc == 2 and "unknown command" in out, "portres rejects an unknown command", out)
    odd = 'fr"ob\\\tn'
    rc, out = run([a.cli, odd, "--json"], env)
    try:
        reply = json.loads(out)
    except ValueError:
        reply = {}
    check(rc == 2 and odd in reply.get("error", ""), "portres --json escapes what the user typed", out)
    rc, out = run([a.cli, "lookup", "--protocol", "tcp", "--start", "61000", "--count", "4"], env, isolate=True)
    check(rc == 6, "portres lookup of a missing reservation exits 6", out)
    rc, out = run([a.cli, "add", "--protocol", "tcp", "--count", "4"], env)
    check(rc == 2 and "--start is required" in out, "portres add without --start is a usage error", out)
    if os.geteuid() == 0:
        rc, out = run([a.cli, "add", "--protocol", "tcp", "--start", "61000", "--count", "4", "--json"], env, isolate=True)
        ok = rc == 0
        token = json.loads(out).get("token") if ok else None
        check(ok and token, "portres add (root) prints a token", out)
        rc, out = run([a.cli, "lookup", "--protocol", "tcp", "--start", "61000", "--count", "4", "--json"], env, isolate=True)
        check(rc == 0 and json.loads(out).get("token") == token, "portres lookup finds the same token", out)
        rc, out = run([a.cli, "add", "--protocol", "tcp", "--start", "61002", "--count", "4"], env, isolate=True)
        check(rc == 5, "portres add of an overlapping block exits 5", out)
        rc, out = run([a.cli, "show"], env, isolate=True)
        check(rc == 0 and "persistent tcp 61000-61003" in out, "portres show lists it", out)
        rc, out = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", a.cli, "delete", "--protocol",
                       "tcp", "--start", "61000", "--count", "4"], env, isolate=True)
        check(rc == 3 and "root" in out, "portres delete without root exits 3 and says it needs root", out)
        rc, out = run([a.cli, "delete", "--protocol", "tcp", "--start", "61000", "--count", "4"], env, isolate=True)
        check(rc == 0, "portres delete (root)", out)
    else:
        print("SKIPPED: portres add/delete need root")

    # usage: a socket of ours on a port of the block is listed with our pid.
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    port = s.getsockname()[1]
    rc, out = run([a.cli, "usage", "--protocol", "tcp", "--start", str(port), "--count", "1", "--json"], env)
    users = json.loads(out).get("in_use", []) if rc == 0 else []
    check(any(u["port"] == port and u["state"] == "LISTEN" and u["pid"] == os.getpid() for u in users),
          "portres usage names the listening socket and its pid", out)
    s.close()

    # gateway + loadgen on loopback, pool and ephemeral.
    gw = subprocess.Popen([a.gateway, "--listen", "127.0.0.1:0", "--builtin-upstream", "--duration", "8", "--block", "256"],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first = gw.stdout.readline()
    m = re.search(r"listening on 127\.0\.0\.1:(\d+)", first)
    check(m is not None, "gateway says where it listens", first)
    if m:
        target = "127.0.0.1:" + m.group(1)
        for ports in ["pool", "ephemeral"]:
            rc, out = run([a.loadgen, "--target", target, "--http", "--concurrency", "4", "--duration", "2",
                           "--ports", ports, "--close", "server", "--json"], env)
            summary = json.loads(out.strip().splitlines()[-1]) if rc == 0 else {}
            check(summary.get("connections", 0) > 50 and summary.get("errors") == 0 and summary.get("bytes", 0) > 0,
                  f"loadgen --ports {ports} against the gateway: connections, no errors", out)
        rc, out = run([a.loadgen, "--target", target, "--duration", "1", "--concurrency", "2"], env)
        check(rc == 0 and re.search(r"\[  1s\] +\d+ conn/s", out) and "summary:" in out and "p99" in out,
              "loadgen prints per-second progress and a summary", out)
    rest = gw.communicate(timeout=30)[0]
    check(re.search(r"gateway summary: (\d+) requests, \1 relayed, 0 upstream errors", rest) is not None and
          "all inside" in rest and ": yes" in rest, "gateway relayed every request from pooled ports in its block", rest)
    rc, out = run([a.loadgen, "--target", "nowhere"], env)
    check(rc == 2 and "HOST:PORT" in out, "loadgen rejects a bad target", out)

    # Failures are counted by errno name, in the text and in --json.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    dead = f"127.0.0.1:{probe.getsockname()[1]}"  # bound, never listening: connects are refused
    rc, out = run([a.loadgen, "--target", dead, "--duration", "1", "--concurrency", "1", "--ports", "ephemeral",
                   "--json"], env)
    summary = json.loads(out.strip().splitlines()[-1]) if rc == 0 else {}
    check(summary.get("errors_by_kind", {}).get("ECONNREFUSED", 0) > 0 and summary.get("connections") == 0,
          "loadgen --json counts refused connects as ECONNREFUSED", out)
    rc, out = run([a.loadgen, "--target", dead, "--duration", "1", "--concurrency", "1", "--ports", "ephemeral"], env)
    check(rc == 0 and "ECONNREFUSED=" in out and "ports_exhausted" not in out,
          "loadgen's text summary names the errno", out)
    gw = subprocess.Popen([a.gateway, "--listen", "127.0.0.1:0", "--upstream", dead, "--duration", "3", "--json",
                           "--block", "64"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    m = re.search(r"listening on 127\.0\.0\.1:(\d+)", gw.stdout.readline())
    reply = b""
    if m:
        with socket.create_connection(("127.0.0.1", int(m.group(1))), timeout=5) as c:
            c.sendall(b"GET / HTTP/1.0\r\n\r\n")
            while chunk := c.recv(4096):
                reply += chunk
    rest = gw.communicate(timeout=30)[0]
    summary = json.loads(rest.strip().splitlines()[-1]) if rest.strip() else {}
    check(b" 502 " in reply and summary.get("upstream_errors_by_kind", {}).get("ECONNREFUSED") == 1,
          "gateway answers 502 and counts the refused upstream connect as ECONNREFUSED", rest)
    probe.close()

    print(f"{len(failures)} failed" if failures else "all sample checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
