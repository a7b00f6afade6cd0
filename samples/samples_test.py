#!/usr/bin/env python3
"""Runs each sample briefly on loopback and checks what it printed.

As root the whole run moves into a private network namespace (unshare -n, its
loopback brought up), and commands that may touch kernel settings get one more
of their own; every process gets private portres folders.
"""
import argparse
import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
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


class sink:
    """Listeners on 127.0.0.1 that accept and hold every connection (hold
    tests), or answer one HTTP/1.0 request each and close (reply=...), or
    answer and wait up to 5 s for the client to close first (keep_open)."""

    def __init__(self, count, reply=None, keep_open=False):
        self.listeners, self.held, self.served, self.reply, self.keep_open = [], [], 0, reply, keep_open
        self.resets = 0  # keep_open: connections the client reset rather than closed
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen(4096)
            self.listeners.append(s)
            threading.Thread(target=self.accept, args=(s,), daemon=True).start()
        self.targets = [f"127.0.0.1:{s.getsockname()[1]}" for s in self.listeners]

    def accept(self, listener):
        while True:
            try:
                c, _ = listener.accept()
            except OSError:
                return
            if self.reply is None:
                self.held.append(c)
                continue
            try:
                c.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                c.sendall(self.reply)
                self.served += 1
                while self.keep_open and c.recv(4096):
                    pass
            except ConnectionResetError:
                self.resets += 1
            except OSError:
                pass
            c.close()

    def close(self):
        for s in self.listeners + self.held:
            s.close()


def last_json(out):
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {}


def ordered(latency):
    keys = ["p50", "p90", "p99", "p999", "max"]
    return all(k in latency for k in keys) and all(latency[x] <= latency[y] for x, y in zip(keys, keys[1:]))


def fan_out(a, env):
    """Several targets, upstreams and source addresses; --hold, --rate, --threads."""
    held = sink(2)
    base = [a.loadgen, "--target", held.targets[0], "--target", held.targets[1], "--source", "127.0.0.1",
            "--source", "127.0.0.2", "--duration", "2", "--json"]
    # Per-destination ports: a 200-port block holds 800 connections to 2 targets from 2 sources.
    rc, out = run(base + ["--hold", "800", "--block", "200", "--concurrency", "32"], env)
    j = last_json(out)
    check(rc == 0 and j.get("held") == 800 and j.get("errors") == 0 and
          [t.get("held") for t in j.get("targets", [])] == [400, 400],
          "loadgen --hold 800 holds all 800 from a 200-port block (2 targets x 2 sources)", out)
    rc, out = run(base + ["--hold", "400", "--ports", "ephemeral"], env)
    j = last_json(out)
    check(rc == 0 and j.get("mode") == "hold" and j.get("held") == 400 and j.get("not_opened") == 0 and
          [t.get("held") for t in j.get("targets", [])] == [200, 200] and j.get("sources") == ["127.0.0.1", "127.0.0.2"]
          and j.get("connect_us", {}).get("samples") == 400 and ordered(j.get("connect_us", {})) and
          0 < j.get("open_seconds", 0) < 2,
          "loadgen --hold --ports ephemeral: held, per target, percentiles, time to open", out)
    rc, out = run(base + ["--hold", "30", "--rate", "20", "--ports", "ephemeral"], env)
    j = last_json(out)
    check(rc == 0 and j.get("held") == 30 and 1.3 <= j.get("open_seconds", 0) < 2,
          "loadgen --rate paces --hold: 30 connections at 20/s take about 1.5 s to open", out)
    rc, out = run([a.loadgen, "--target", held.targets[0], "--hold", "50", "--duration", "2", "--ports", "ephemeral"], env)
    check(rc == 0 and re.search(r"\[  1s\] held 50/50", out) and "summary: held 50 of 50" in out,
          "loadgen --hold prints the held count each second and in the summary", out)
    held.close()

    web = sink(2, reply=b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
    rc, out = run([a.loadgen, "--target", web.targets[0], "--target", web.targets[1], "--http", "--close", "server",
                   "--threads", "2", "--concurrency", "4", "--duration", "2", "--ports", "ephemeral", "--json"], env)
    j = last_json(out)
    per = [t.get("connections", 0) for t in j.get("targets", [])]
    check(rc == 0 and j.get("threads") == 2 and j.get("errors") == 0 and len(per) == 2 and min(per) > 20 and
          sum(per) == j.get("connections") and ordered(j.get("connect_us", {})) and ordered(j.get("request_us", {})),
          "loadgen --threads 2 over two targets: both served, percentiles of connect and request", out)

    # gateway: round robin over two upstreams from one pool, stats per upstream.
    gw = subprocess.Popen([a.gateway, "--listen", "127.0.0.1:0", "--upstream", web.targets[0], "--upstream",
                           web.targets[1], "--source", "127.0.0.1", "--block", "64", "--duration", "4", "--stats",
                           "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    m = re.search(r"listening on 127\.0\.0\.1:(\d+)", gw.stdout.readline())
    if m:
        run([a.loadgen, "--target", "127.0.0.1:" + m.group(1), "--http", "--close", "server", "--concurrency", "4",
             "--duration", "2", "--ports", "ephemeral"], env)
    rest = gw.communicate(timeout=30)[0]
    j = last_json(rest)
    ups = j.get("upstreams", [])
    sent = [u.get("requests", 0) for u in ups]
    check(len(ups) == 2 and min(sent) > 20 and max(sent) - min(sent) <= 1 and j.get("upstream_errors") == 0 and
          sum(u.get("relayed", 0) for u in ups) == j.get("relayed"),
          "gateway sends requests round robin over two upstreams", rest)
    check(len(ups) == 2 and all(u.get("free_ports") == 64 and u.get("live") == 0 for u in ups),
          "gateway reports each upstream's free ports (all 64 once idle) and live connections", rest)
    check(re.search(r"req/s .*127\.0\.0\.1:\d+ live \d+ free \d+ \| 127\.0\.0\.1:\d+ live \d+ free \d+", rest)
          is not None, "gateway --stats prints a line a second with live and free per upstream", rest)
    # On demand: SIGUSR1 prints the same line without --stats.
    gw = subprocess.Popen([a.gateway, "--listen", "127.0.0.1:0", "--upstream", web.targets[0], "--duration", "3",
                           "--block", "16"],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first = gw.stdout.readline()
    time.sleep(0.5)
    gw.send_signal(signal.SIGUSR1)
    rest = gw.communicate(timeout=30)[0]
    check(re.search(r"req/s .* live 0 free", rest) is not None, "gateway prints its stats line on SIGUSR1",
          f"{first}{rest}(exit {gw.returncode})")
    web.close()


def http_failures(a, env, dead):
    """loadgen --http judges each reply by its status line: a 502 or 404, a connection closed without a
    reply, and a reply that is not HTTP are errors by kind, never served requests."""
    gw = subprocess.Popen([a.gateway, "--listen", "127.0.0.1:0", "--upstream", dead, "--duration", "20", "--block", "64"],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    m = re.search(r"listening on 127\.0\.0\.1:(\d+)", gw.stdout.readline())
    for close in ["server", "client"]:
        rc, out = run([a.loadgen, "--target", "127.0.0.1:" + (m.group(1) if m else "9"), "--http", "--close", close,
                       "--concurrency", "2", "--duration", "1", "--ports", "ephemeral", "--json"], env)
        j = last_json(out)
        check(rc == 0 and j.get("connections") == 0 and j.get("errors", 0) > 0 and
              j.get("errors_by_kind") == {"http_5xx": j.get("errors")},
              f"loadgen --http --close {close} counts the gateway's 502s (dead upstream) as http_5xx errors", out)
    rc, out = run([a.loadgen, "--target", "127.0.0.1:" + (m.group(1) if m else "9"), "--http", "--close", "server",
                   "--concurrency", "2", "--duration", "1", "--ports", "ephemeral"], env)
    check(re.search(r"\[  1s\] +0 conn/s  errors [1-9]\d* http_5xx=", out) and
          re.search(r"summary: 0 connections .* errors [1-9]\d* http_5xx=", out),
          "loadgen's progress line and text summary show the http_5xx errors", out)
    gw.terminate()  # it ends early on SIGTERM
    gw.communicate(timeout=30)
    for reply, kind in [(b"", "http_no_reply"), (b"HTTP/1.0 404 Not Found\r\n\r\n", "http_4xx"),
                        (b"SSH-2.0-OpenSSH\r\n", "http_bad_status"), (b"HTTP/1.0 20", "http_no_reply"),
                        (b"HTTP/1.1 100 Continue\r\n\r\n", "http_no_reply"),
                        (b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 404 Not Found\r\n\r\n",
                         "http_4xx")]:
        web = sink(1, reply=reply)
        rc, out = run([a.loadgen, "--target", web.targets[0], "--http", "--close", "server", "--concurrency", "2",
                       "--duration", "1", "--ports", "ephemeral", "--json"], env)
        j = last_json(out)
        check(rc == 0 and j.get("connections") == 0 and j.get("errors", 0) > 0 and
              j.get("errors_by_kind") == {kind: j.get("errors")},
              f"loadgen --http counts a reply of {reply!r} as {kind}", out)
        web.close()


def http_long_status_line(a, env):
    """A status line's reason phrase may be long (RFC 9112 sets no limit): a 200 with 300 bytes of reason is a
    served request; 5,000 bytes that never end a line are not HTTP."""
    for reply, served in [(b"HTTP/1.0 200 " + b"x" * 300 + b"\r\n\r\nbody", True), (b"y" * 5000, False)]:
        web = sink(1, reply=reply)
        for close in ["client", "server"]:
            rc, out = run([a.loadgen, "--target", web.targets[0], "--http", "--close", close, "--concurrency", "2",
                           "--duration", "1", "--ports", "ephemeral", "--json"], env)
            j = last_json(out)
            if served:
                check(rc == 0 and j.get("connections", 0) > 0 and j.get("errors") == 0,
                      f"loadgen --http --close {close} counts a 200 with a 300-byte reason phrase as served", out)
            else:
                check(rc == 0 and j.get("connections") == 0 and j.get("errors_by_kind") == {"http_bad_status": j.get("errors")}
                      and j.get("errors", 0) > 0,
                      f"loadgen --http --close {close} counts 5,000 bytes without a line end as http_bad_status", out)
        web.close()


def http_interim_and_keep_open(a, env):
    """Interim 1xx replies (RFC 9110 15.2) are skipped and the final status judged, in every close mode; with
    --close client or rst loadgen closes once it has judged the status line, so a server that keeps the
    connection open (waiting for the client to close) does not stall the run."""
    web = sink(1, reply=b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.0 200 OK\r\n\r\nok")
    for close in ["client", "server", "rst"]:
        rc, out = run([a.loadgen, "--target", web.targets[0], "--http", "--close", close, "--concurrency", "2",
                       "--duration", "1", "--ports", "ephemeral", "--json"], env)
        j = last_json(out)
        check(rc == 0 and j.get("connections", 0) > 0 and j.get("errors") == 0,
              f"loadgen --http --close {close} skips 100 and 102 and counts the 200 after them as served", out)
    web.close()
    for close, ports in [("client", ["ephemeral"]), ("rst", ["ephemeral"]), ("rst", ["pool", "--block", "256"])]:
        web = sink(1, reply=b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", keep_open=True)
        rc, out = run([a.loadgen, "--target", web.targets[0], "--http", "--close", close, "--concurrency", "2",
                       "--duration", "1", "--ports", *ports, "--json"], env)
        j = last_json(out)
        time.sleep(0.2)  # the sink sees the last resets after loadgen has ended
        reset = web.resets >= 0.9 * j.get("connections", 0) if close == "rst" else True
        check(rc == 0 and j.get("connections", 0) > 20 and j.get("errors") == 0 and reset,
              f"loadgen --http --close {close} --ports {ports[0]} closes after the status line: a server keeping the "
              f"connection open does not stall it ({web.resets} of the server's connections reset)", out)
        web.close()
    # What request latency measures, in each close mode, is said where it is printed.
    web = sink(1, reply=b"HTTP/1.0 200 OK\r\n\r\nok")
    for close, ends in [("client", "connection start to the status line"), ("server", "connection start to the server's close")]:
        rc, out = run([a.loadgen, "--target", web.targets[0], "--http", "--close", close, "--concurrency", "2",
                       "--duration", "1", "--ports", "ephemeral"], env)
        check(rc == 0 and f"request latency ({ends}): p50" in out, f"loadgen --close {close} says its request latency "
              f"runs from {ends}", out)
    web.close()


def bounded_end(a, env):
    """A pooled connect cannot be cancelled: against a listener whose backlog is full (SYNs dropped, connects
    pending), loadgen still ends a quarter second after --duration and counts what it cut off. The bound is
    against the same run towards a port that refuses at once (nothing to wait for at the end), so a slow start
    (sanitizers, a loaded machine) is not taken for a slow end."""
    def timed(port):
        start = time.monotonic()
        rc, out = run([a.loadgen, "--target", f"127.0.0.1:{port}", "--duration", "1", "--concurrency", "4", "--block",
                       "64", "--json"], env)
        return rc, out, time.monotonic() - start
    refusing = socket.socket()
    refusing.bind(("127.0.0.1", 0))  # bound, not listening: every connect is refused at once
    _, _, base = timed(refusing.getsockname()[1])
    refusing.close()
    stuck = socket.socket()
    stuck.bind(("127.0.0.1", 0))
    stuck.listen(0)  # never accepts: past the first connection or two, connects hang
    rc, out, took = timed(stuck.getsockname()[1])
    j = last_json(out)
    check(rc == 0 and j.get("in_flight_at_end") == 4 and j.get("errors") == 0 and took < base + 0.75,
          f"loadgen ends soon after --duration with connects pending (took {took:.2f} s, {took - base:+.2f} s on a "
          "run with nothing pending) and reports them in_flight_at_end", out)
    stuck.close()


def bad_input(a, env):
    """Each mistake exits 2 with a message naming it."""
    t = ["--target", "127.0.0.1:9"]
    for args, says, what in [
        (t + ["--frobnicate"], "unknown option --frobnicate", "an unknown flag"),
        (["--target", "127.0.0.1:http"], "must be an IP address and port", "a bad endpoint"),
        (t + ["--target", "[::1]:80"], "mixes IPv4 and IPv6", "targets of two families"),
        (t + ["--threads", "0"], "--threads must be a whole number from 1 to 64, not '0'", "--threads 0"),
        (t + ["--threads", "4", "--concurrency", "2"], "--threads 4 needs --concurrency", "more threads than connections"),
        (t + ["--source", "192.0.2.1"], "--source 192.0.2.1 is not an address of this machine", "a foreign --source"),
        (t + ["--source", "0.0.0.0"], "--source must be a specific address", "an unspecified --source"),
        (t + ["--source", "127.0.0.1", "--source", "127.0.0.1"], "--source 127.0.0.1 is given twice", "a repeated --source"),
        (t + ["--hold", "10", "--http"], "--hold keeps its connections open", "--hold with --http"),
        (t + ["--hold", "0"], "--hold must be a whole number from 1", "--hold 0"),
        (t + ["--hold", "1000000"], "open descriptors", "--hold beyond the descriptor limit"),
        (t + ["--ports", "ephemeral", "--block", "10"], "--block and --policy apply to --ports pool", "--block without a pool"),
        (["--target", "127.0.0.1:0"], "needs a port other than 0", "a target on port 0"),
    ]:
        rc, out = run([a.loadgen] + args, env)
        check(rc == 2 and says in out, f"loadgen rejects {what} (exit 2)", out)
    for args, says, what in [
        (["--upstream", "127.0.0.1:9", "--source", "192.0.2.1"], "is not an address of this machine", "a foreign --source"),
        (["--upstream", "nowhere"], "HOST:PORT", "a bad upstream"),
        (["--builtin-upstream", "--stats", "extra"], "unexpected argument 'extra'", "a stray argument"),
    ]:
        rc, out = run([a.gateway, "--listen", "127.0.0.1:0"] + args, env)
        check(rc == 2 and says in out, f"gateway rejects {what} (exit 2)", out)


def main():
    if os.geteuid() == 0 and not os.environ.get("PORTRES_SAMPLES_NAMESPACE"):
        # Root: everything in a private network namespace (the samples' ports,
        # 127.0.0.2, and any kernel setting stay in it).
        env = dict(os.environ, PORTRES_SAMPLES_NAMESPACE="1")
        return subprocess.run(["unshare", "-n", sys.executable, os.path.abspath(__file__)] + sys.argv[1:],
                              env=env).returncode
    if os.environ.get("PORTRES_SAMPLES_NAMESPACE"):
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
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
    # Every request is relayed, unless its client went away first (loadgen resets what is in flight at its end).
    m = re.search(r"gateway summary: (\d+) requests, (\d+) relayed, 0 upstream errors, (\d+) abandoned", rest)
    check(m is not None and int(m.group(1)) == int(m.group(2)) + int(m.group(3)) and int(m.group(3)) <= 8 and
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
    http_failures(a, env, dead)
    probe.close()

    fan_out(a, env)
    bounded_end(a, env)
    http_long_status_line(a, env)
    http_interim_and_keep_open(a, env)
    bad_input(a, env)

    print(f"{len(failures)} failed" if failures else "all sample checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
