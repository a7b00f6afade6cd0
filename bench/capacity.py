#!/usr/bin/env python3
"""Capacity: how many concurrent connections 1,000 ports carry, to 1 and 4
destinations (127.0.0.1:19001-19004) over 1 and 4 source addresses
(127.0.0.1-127.0.0.4), three ways, alternating at each point (A B C, A B C):

  pool      loadgen --hold N --ports pool --block 1000 --source ... (portres: a
            port is free towards a destination while no live connection uses it
            towards that destination, over every source address);
  autobind  loadgen --hold N --ports ephemeral --source ... (IP_BIND_ADDRESS_NO_PORT:
            the kernel picks the port at connect for the whole 4-tuple) with
            ip_local_port_range narrowed to 1,000 ports (40000-40999);
  haproxy   HAProxy 2.6 in mode tcp, one process per source address, a server
            per destination with `source ADDR:20000-20999`; loadgen --hold N
            --ports ephemeral (default range) opens the client side.

N = 1,000 x destinations x sources, the 4-tuple limit. held: connections open
at the destinations (sink processes, one per destination, that accept and
hold) once the count stops growing; failures: loadgen's failed connects and
drops (HAProxy closes a client it cannot connect upstream); seconds: from the
start until the sinks accepted the last of them. The connections are split
over processes for the 20,000-descriptor limit: loadgen holds the client side
(up to 16,000), each sink up to 4,000, each HAProxy up to 8,000.

Must run inside a private network namespace (scripts/bench starts it with
`unshare -n`). Every run is bounded: loadgen --duration, polls with a deadline.
Usage: capacity.py --loadgen BIN --out FILE [--rounds R] [--limit S]
       capacity.py --sink PORT   (internal: one destination)
"""
import argparse
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from peerlib import (bring_up_loopback, haproxy_version, loadgen_json, median, ratio, read_range, set_range, spawn,
                     start_haproxy, stop)

PORTS = 1000
DESTINATIONS = [19001, 19002, 19003, 19004]
SOURCES = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
POINTS = [(1, 1), (4, 1), (1, 4), (4, 4)]  # (destinations, sources)
METHODS = ["pool", "autobind", "haproxy"]
AUTOBIND_RANGE = ("40000", "40999")
HAPROXY_SOURCE_PORTS = "20000-20999"  # below the default ephemeral range the client side uses
HAPROXY_FRONTENDS = 19101


def sink(port):
    """Accepts on 127.0.0.1:PORT and holds every connection until it closes.
    Commands on stdin, one a line: 'report' (JSON: open, accepted, last_accept
    on the monotonic clock) and 'reset' (closes everything held)."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(4096)
    listener.setblocking(False)
    poll = select.epoll()
    poll.register(listener.fileno(), select.EPOLLIN)
    poll.register(0, select.EPOLLIN)
    held, accepted, last = {}, 0, None
    print("ready", flush=True)
    while True:
        for fd, _ in poll.poll(1.0):
            if fd == listener.fileno():
                while True:
                    try:
                        c, _ = listener.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:  # out of descriptors: the peer sees it, the count says it
                        break
                    held[c.fileno()] = c
                    poll.register(c.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
                    accepted, last = accepted + 1, time.monotonic()
            elif fd == 0:
                data = os.read(0, 4096)
                if not data:
                    return 0
                for command in data.decode().split():
                    if command == "reset":
                        for c in held.values():
                            poll.unregister(c.fileno())
                            c.close()
                        held, accepted, last = {}, 0, None
                    print(json.dumps({"open": len(held), "accepted": accepted, "last_accept": last}), flush=True)
            else:
                c = held[fd]
                try:
                    data = c.recv(4096)
                except OSError:
                    data = b""
                if not data:  # closed by the peer
                    del held[fd]
                    poll.unregister(fd)
                    c.close()


class sink_process:
    def __init__(self, port):
        self.p = spawn([sys.executable, os.path.abspath(__file__), "--sink", str(port)], stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, text=True)
        if self.p.stdout.readline().strip() != "ready":
            raise RuntimeError(f"sink on {port} did not start")

    def ask(self, command):
        self.p.stdin.write(command + "\n")
        self.p.stdin.flush()
        ready, _, _ = select.select([self.p.stdout], [], [], 10)
        if not ready:
            raise RuntimeError("a sink did not answer within 10 s")
        return json.loads(self.p.stdout.readline())


def watch(sinks, wanted, start, limit):
    """Polls the sinks until `wanted` are open, or the count has not grown for
    1 s, or `limit` seconds passed; returns (open, seconds until the last accept)."""
    best, since = -1, time.monotonic()
    while True:
        time.sleep(0.25)
        reports = [s.ask("report") for s in sinks]
        now, total = time.monotonic(), sum(r["open"] for r in reports)
        if total > best:
            best, since = total, now
        if total >= wanted or now - since >= 1.0 or now - start >= limit:
            lasts = [r["last_accept"] for r in reports if r["last_accept"]]
            return total, (max(lasts) - start if lasts else None)


def hold(a, tmp, method, dests, sources, sinks):
    wanted = PORTS * len(dests) * len(sources)
    for s in sinks:
        s.ask("reset")
    procs, targets, args = [], [f"127.0.0.1:{d}" for d in dests], []
    default_range = read_range()
    if method == "pool":
        args = ["--ports", "pool", "--block", str(PORTS)] + [x for s in sources for x in ("--source", s)]
    elif method == "autobind":
        set_range(*AUTOBIND_RANGE)
        args = ["--ports", "ephemeral"] + [x for s in sources for x in ("--source", s)]
    else:  # one HAProxy per source address: each holds 2 x 4,000 descriptors at most
        for i, src in enumerate(sources):
            front = HAPROXY_FRONTENDS + i
            procs.append(start_haproxy(tmp, f"cap{i}", "tcp", PORTS * len(dests) + 100,
                                       [(front, [(d, f"{src}:{HAPROXY_SOURCE_PORTS}") for d in dests])]))
        targets = [f"127.0.0.1:{HAPROXY_FRONTENDS + i}" for i in range(len(sources))]
        args = ["--ports", "ephemeral"]
    cmd = [a.loadgen, "--hold", str(wanted), "--concurrency", "64", "--duration", str(a.limit + 10), "--json"]
    cmd += [x for t in targets for x in ("--target", t)] + args
    try:
        start = time.monotonic()
        lg = spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        held, seconds = watch(sinks[:len(dests)], wanted, start, a.limit)
        lg.send_signal(signal.SIGINT)  # loadgen stops and prints its summary
        try:
            out, _ = lg.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            lg.kill()
            out, _ = lg.communicate()
    finally:
        stop(procs)
        set_range(*default_range)
    j = loadgen_json(out)
    if not j:  # no figures of its own: the run is missing, not a zero
        return {"requested": wanted, "held": None, "seconds": None, "error": "loadgen: " + out[-300:].strip()}
    kinds = dict(j.get("errors_by_kind", {}))
    for k, v in j.get("dropped_by_kind", {}).items():
        kinds[k] = kinds.get(k, 0) + v
    return {"requested": wanted, "held": held, "seconds": seconds, "failures": j["errors"] + j["dropped"],
            "failures_by_kind": kinds, "not_opened": j["not_opened"], "loadgen_held": j["held"],
            "loadgen_open_seconds": j["open_seconds"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sink", type=int)
    ap.add_argument("--loadgen")
    ap.add_argument("--out")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--limit", type=int, default=20, help="seconds one run may take to open its connections")
    a = ap.parse_args()
    if a.sink:
        return sink(a.sink)
    if not a.loadgen or not a.out:
        ap.error("--loadgen and --out are required")
    result = {"ports": PORTS, "rounds": a.rounds, "points": []}
    sinks = []
    with tempfile.TemporaryDirectory(prefix="portres-capacity-") as tmp:
        os.environ["PORTRES_RUNTIME_DIR"] = os.path.join(tmp, "run")
        os.environ["PORTRES_STATE_DIR"] = os.path.join(tmp, "state")
        try:
            missing = [t for t in ["haproxy", "ip"] if not shutil.which(t)] + \
                      ([] if os.access(a.loadgen, os.X_OK) else [a.loadgen])
            if missing:
                raise RuntimeError("not installed or not built: " + ", ".join(missing))
            bring_up_loopback()
            result["haproxy"] = haproxy_version()
            sinks = [sink_process(d) for d in DESTINATIONS]
            for dests, srcs in POINTS:
                point = {"destinations": dests, "sources": srcs, "requested": PORTS * dests * srcs, "runs": []}
                result["points"].append(point)
                for r in range(a.rounds):
                    run = {m: hold(a, tmp, m, DESTINATIONS[:dests], SOURCES[:srcs], sinks) for m in METHODS}
                    point["runs"].append(run)
                    print(f"capacity {dests} destination(s) x {srcs} source(s), round {r + 1}: " + ", ".join(
                        f"{m} held {v.get('held')} in {v.get('seconds') or 0:.2f} s" for m, v in run.items()),
                        flush=True)
                for m in METHODS:
                    point[m] = {"held": median([x[m].get("held") for x in point["runs"]]),
                                "seconds": median([x[m].get("seconds") for x in point["runs"]]),
                                "failures": sum(x[m].get("failures", 0) for x in point["runs"]),
                                "not_opened": sum(x[m].get("not_opened", 0) for x in point["runs"])}
                point["pool_vs_autobind"] = median([ratio(x["pool"], x["autobind"], "held") for x in point["runs"]])
                point["pool_vs_haproxy"] = median([ratio(x["pool"], x["haproxy"], "held") for x in point["runs"]])
        except Exception as e:  # reported in the JSON and the report, not hidden
            result["error"] = str(e)
            print("capacity:", e, file=sys.stderr)
        finally:
            stop([s.p for s in sinks])
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
