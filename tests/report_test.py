#!/usr/bin/env python3
"""Checks scripts/report.py on canned inputs (tests/data/bench_*sample.json,
written by tests/data/make_bench_sample.py): every section, each target's
verdict, and that missing, failed or skipped parts are reported as such (NOT
MEASURED, FAILED, SKIPPED), never as PASS, and never crash the report."""
import json
import os
import subprocess
import sys
import tempfile

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
data = os.path.join(root, "tests", "data")


def report(out, *extra, inputs=None):
    inputs = inputs or [os.path.join(data, "bench_sample.json")]
    result = subprocess.run([sys.executable, os.path.join(root, "scripts", "report.py"),
                             *[a for i in inputs for a in ("--input", i)], "--out", out,
                             "--kernel", "6.0-test", "--compiler", "g++ test", *extra],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return open(os.path.join(out, "report.md")).read()


failures = 0


def verdict(text, tid):
    return text.split(f"| {tid} |")[1].split("\n")[0].rstrip().rsplit("|", 2)[1].strip()



def expect(text, checks, label):
    global failures
    missing = [c for c in checks if c not in text]
    if missing:
        failures += 1
        if label != "svg":
            print(text)
        print(f"{label}: missing:", *missing, sep="\n  ")


def expect_order(text, first, second, label):
    global failures
    if not (first in text and second in text and text.index(first) < text.index(second)):
        failures += 1
        print(f"{label}: '{first}' should come before '{second}'")


with tempfile.TemporaryDirectory() as out:
    full = report(out, "--syscalls", os.path.join(data, "bench_syscalls_sample.json"),
                  "--peers", os.path.join(data, "bench_peers_sample.json"),
                  "--capacity", os.path.join(data, "bench_capacity_sample.json"))
    expect(full, [
        "kernel 6.0-test", "g++ test",
        # P1: sequential and lru pass, random misses at 0 % (1.6x) and 99.9 %; bind(0) is compared with
        # each policy's associate+bind (170 / 1.8), not with the explicit bind; the tail: p99 at 99.9 %
        # against the explicit bind's p99 (3.6 / 2.0), the mean at 99 % and 99.9 % against bind(0)'s.
        "| P1 | associate+bind p50 <= 1.5x the hand-written explicit bind at 0 % own fullness and <= 2x at 99.9 %, "
        "while bind(0) at the same fullness is >= 10x slower; the tail: p99 at 99.9 % <= 10x the explicit bind's "
        "p99, mean at 99 % and 99.9 % below bind(0)'s | portres p50 vs explicit at 0 % / 99.9 %: sequential 1.40x / "
        "1.80x (bind(0) p50 94.44x slower; 99.9 %: p99 3.600 us = 1.80x explicit's, mean 2.160 us = 0.01x "
        "bind(0)'s; 99 %: mean 1.920 us = 0.08x bind(0)'s); lru 1.40x / 1.90x",
        "random 1.60x / 500.00x (bind(0) p50 0.34x slower; 99.9 %: p99 1.00 ms = 500.00x explicit's, mean 600.0 us "
        "= 2.94x bind(0)'s; 99 %: mean 60.0 us = 2.50x bind(0)'s) | FAIL |",
        "| P2 | pool get: sync p50 <= 0.25 us; async p50 <= 1 us, p99.9 <= 5 us, max <= 100 us | sync p50 0.080 us; "
        "async p50 0.700 us, p99.9 4.000 us, max 90.0 us | PASS |",
        # P3 without the autobind clause: shown, not judged.
        "| P3 | churn (client closes first, 1,000 ports, default sysctls, 10 s): pool >= 0.95x the explicit-bind "
        "floor, zero connect failures | sequential 0.98x floor, 0 failures (44.0x autobind, not judged)",
        "random 0.89x floor, 0 failures (40.0x autobind, not judged) | FAIL |",
        # P4: judged through the broker (passes), the per-user registry shown beside it.
        "| P4 | acquire p50 <= 25 us, 1,000 live vs none <= 1.5x; async_acquire initiating call <= 5 us (judged "
        "through the broker; the initiating call on its p99: a bound on every call) | broker: p50 20.0 us; 1,000 "
        "live 1.40x; initiating call p99 3.000 us (p50 1.000 us). Per-user registry, for comparison: p50 70.0 us; "
        "1,000 live 428.57x; initiating call p99 2.70 ms (p50 2.000 us) | PASS |",
        "| broker (portresd) | live/reservations:1000 (held: 1000) | 28.0 us |",
        "| per-user registry | live/reservations:1000 (held: 1000) | 30.00 ms |",
        "- registry broker: broker: canned portresd",
        "| P5 | acquire cost for 16,384 ports <= 2x for 1 port | 2.50x (per-user registry) | FAIL |",
        "| P6 | pool: system calls per connection <= the explicit-bind floor's; CPU per connection <= autobind's | "
        "syscalls pool 6.50 vs explicit 7.00; CPU (whole process) pool/autobind worst over occupancy 0.75x | PASS |",
        # over repetitions: max is the worst repetition's (not the median aggregate's 35 us), p50 the median
        "| pool/get_async (call until handler) | 0.700 us | 1.400 us | 4.000 us | 90.0 us |",
        # a failed case is FAILED, not skipped
        "- FAILED: lifecycle/acquire_associate_release/async (FAILED: a completion did not arrive within 5 s)",
        "| lifecycle/acquire_associate_release/async | n/a | n/a | n/a | n/a | n/a | n/a | - | FAILED |",
        # P7: every peer comparison; loadgen < ab, CPU and nginx at 1,000 ports miss.
        "| P7 | peers: loadgen >= ab and >= httperf req/s single-threaded; loadgen --threads 2 >= wrk -t2 with "
        "Connection: close; gateway (pool) >= nginx proxy_pass and >= HAProxy at both ranges and with 4 upstreams, "
        "CPU per request <= gateway in ephemeral mode | loadgen 0.96x ab, 1.06x httperf; --threads 2 1.07x wrk -t2 "
        "(Connection: close); default, 1 upstream(s): gateway(pool) 1.02x nginx, 1.11x HAProxy, CPU/req 1.09x "
        "gateway(ephemeral); default, 4 upstream(s): gateway(pool) 1.03x nginx, 1.07x HAProxy",
        "narrow_1000, 4 upstream(s): gateway(pool) 1.01x nginx, 1.02x HAProxy, CPU/req 0.97x gateway(ephemeral); "
        "failed requests (no PASS with failures): loadgen 3, wrk -t2 close 4, narrow_1000/1: gateway (pool) 4 | FAIL |",
        # P8 passes on the canned capacity figures.
        "| P8 | capacity: from a 1,000-port block, 4 destinations x 4 source addresses: >= 15,840 of 16,000 held "
        "(99 %), zero failures; at every point held >= autobind's and >= HAProxy's | 4 x 4: pool held 16,000 of "
        "16,000 in 4.80 s, 0 failures; 1 x 1: pool/autobind/HAProxy 1,000 / 1,000 / 1,000 (1.00x, 1.00x)",
        "4 x 4: pool/autobind/HAProxy 16,000 / 15,990 / 15,200 (1.00x, 1.05x) | PASS |",
        "4 of 8 targets FAIL (P1, P3, P5, P7)",
        # own fullness: tails and ratio to the explicit floor
        "| portres_random | 99.9 % | 500.0 us | 1.00 ms | 2.50 ms | 25.00 ms | 600.0 us | 1000 | 500.00x | 0 |",
        "| ephemeral | 99.9 % | 170.0 us |",
        # foreign occupancy: the sentence, associate+bind row and the bind-only sub-row
        "portres' block lies outside the ephemeral range by design",
        "| bind/portres/random/occupancy:0 | 1.500 us | 3.000 us | 7.500 us | 75.0 us | 1.800 us | 1000 | 2.73x | 0 |",
        "└ bind/portres_bind_only/random/occupancy:0 | 0.600 us |",
        # connect: CPU and syscalls per connection
        "| pool | 0 % | 35.0 us | 70.0 us | 175.0 us | 1.75 ms | 42.0 us | 1000 | 25.0 us | 30.0 us | 6.50 | 0 |",
        "- explicit: socket 1.00, bind 1.00",
        # churn: rates, ratios, errno-counted failures, sysctls, mechanism
        "| autobind | 1,000/s | 0.02x | 1.0x | 20.0 us | 40.0 us | 100.0 us | 1.00 ms | 24.0 us | 1000 |",
        "8900 (EADDRNOTAVAIL 8900)", "tw_reuse 2, timestamps 1",
        "| pool_sequential | 44,000/s | 0.98x | 44.0x |",
        "Mechanism: the win over autobind is the kernel's, not the pool's.",
        "Where the pool loses to the floor (random): the rate counts the whole loop;",
        # pool and acquire
        "└ cycle: get + return + refill (io.poll) | 2.700 us |",
        "| broker (portresd) | async_acquire: the initiating call | 1.000 us |",
        "└ until the handler ran | 30.0 us |",
        # peers: clients (single-threaded and two threads) and proxies (ranges x upstreams)
        "| 1 | loadgen (pool) | 20,370/s | 0.96x ab, 1.06x httperf | 3 | 26.3 us (client) | 3.10 ms | 6.20 ms | "
        "9.40 ms |",
        # tails where the client gives them: ab and wrk have no p99.9, httperf nothing
        "| 1 | ab | 21,000/s | - | 0 | 25.0 us (client) | 5.00 ms | n/a | 14.00 ms |",
        '| 2 | wrk -t2 -H "Connection: close" | 28,500/s | - | 4 | 17.9 us (client) | 2.50 ms | n/a | 7.00 ms |',
        "| 1 | httperf (open loop: best offered rate with <= 1 % errors) | 19,000/s | - | 0 | 27.8 us (client) | n/a | "
        "n/a | n/a |",
        "| default (32768-60999) | 1 | nginx proxy_pass | 12,000/s | - | 0 | 66.0 us (proxy) | 9.00 ms | n/a | "
        "21.00 ms |",
        "| 1 | httperf (open loop: best offered rate with <= 1 % errors) | 19,000/s | - | 0 |",
        '| 2 | wrk -t2 -H "Connection: close" | 28,500/s | - | 4 |',
        "| 2 | loadgen --threads 2 (pool) | 30,500/s | 1.07x wrk -t2 close | 0 |",
        "| 1 | wrk keep-alive (reference, not one request per connection) | 80,000/s | 3.80x ab |",
        "| narrow_1000 (40000-40999) | 1 | gateway (pool, 1000-port block) | 11,600/s | 0.93x nginx, 1.05x HAProxy | 4 "
        "| 73.0 us (proxy) |",
        "| default (32768-60999) | 4 | HAProxy (source 127.0.0.1:20000-24095 per server) | 11,500/s | - | 0 | 79.0 us",
        # each P7 miss with what the CPU figures say
        "- loadgen 0.96x ab: CPU per request 26.3 us against 25.0 us (+5.3 %): it spends more CPU per request",
        "- narrow_1000/1: gateway (pool) 0.93x nginx: CPU per request 73.0 us against 67.0 us (+9.0 %): it spends "
        "more CPU",
        "- default/1: gateway (pool) CPU per request 1.09x gateway (ephemeral)'s: 72.0 us against 66.0 us",
        # capacity: every point and method, failures by errno
        "| 4 x 4 | 16,000 | loadgen --hold through the pool (1,000-port block) | 16,000 | 0 | 0 | 4.80 s |",
        "| 4 x 4 | 16,000 | HAProxy (1,000-port source range per server) | 15,200 | 800 (ECONNRESET 800) | 0 | 8.00 s |",
        "| 1 x 4 | 4,000 | kernel autobind, IP_BIND_ADDRESS_NO_PORT (1,000-port ephemeral range) | 3,998 | 2 "
        "(EADDRNOTAVAIL 2) |",
        # what each case measures, and a case that did not run
        "## What each case measures", "| connect/pool | try_get (waiting if empty) + connect()",
        "- SKIPPED: bind/portres/clustered/occupancy:99 (canned: did not run)",
    ], "full report")
    expect_order(full, "## Targets", "## Peers", "full report")
    expect_order(full, "## Peers", "## Capacity", "full report")
    expect_order(full, "## Capacity", "## What each case measures", "full report")
    if "no per-destination ports" in full:
        failures += 1
        print("full report: a capacity note on a pool that held everything")
    if "plot skipped" not in full and not os.path.exists(os.path.join(out, "bind_latency.svg")):
        failures += 1
        print("report names a plot that was not written")
    svg = os.path.join(out, "bind_latency.svg")
    if os.path.exists(svg):
        expect(open(svg).read(), ["own-block fullness", "portres_random p50", "explicit (random) p50"], "svg")
    else:
        print("SKIPPED: svg checks (gnuplot not installed)")

with tempfile.TemporaryDirectory() as out:
    # Without strace and peers data: said, and their targets are NOT MEASURED, never PASS.
    partial = report(out, "--skipped", "peers: test skip", "--no-plot")
    expect(partial, ["- SKIPPED: peers: test skip", "| P7 | peers:", "the peers did not run | NOT MEASURED |",
                     "the capacity runs did not run | NOT MEASURED |",
                     "syscalls pool n/a vs explicit n/a", "system calls of pool (not counted)",
                     "3 NOT MEASURED (P6, P7, P8): see 'Not run'."], "partial report")
    for tid in ["P6", "P7", "P8"]:
        line = partial.split(f"| {tid} |")[1].split("\n")[0]
        if "| PASS |" in line or "| FAIL |" in line:
            failures += 1
            print(f"{tid} has a verdict without its data: {line}")

with tempfile.TemporaryDirectory() as out:
    # Broker missing (the cases skipped with the reason), a failed operation in P5's rows and P2's,
    # an strace that counted nothing, a results file that is cut off, a step that failed.
    canned = json.load(open(os.path.join(data, "bench_sample.json")))
    rows = []
    for b in canned["benchmarks"]:
        if b["run_name"].startswith("acquire/broker/"):
            if b.get("aggregate_name") in (None, "median"):
                rows.append({"name": b["name"], "run_name": b["run_name"], "run_type": "iteration",
                             "error_occurred": True, "error_message": "broker mode not available: portresd not found"})
            continue
        if b["run_name"].startswith(("lifecycle/acquire/ports:16384", "pool/get_sync")) and "p50_us" in b:
            b = dict(b, errors=3, misses=2)
        rows.append(b)
    edited = os.path.join(out, "edited.json")
    json.dump(dict(canned, benchmarks=rows), open(edited, "w"))
    cut = os.path.join(out, "cut.json")
    # A run cut off mid-way (its writer died): the complete runs before the cut still count.
    whole = json.dumps({"context": {}, "benchmarks": [
        {"name": "churn/explicit/manual_time", "run_name": "churn/explicit/manual_time", "run_type": "iteration",
         "connects_per_s": 777.0, "failures": 0}, {"name": "x"}]}, indent=1)
    open(cut, "w").write(whole[:whole.index('"x"') + 2])
    sc = os.path.join(out, "sc.json")
    json.dump({"method": "canned", "explicit": {"calls_per_conn": 7.0},
               "pool": {"error": "strace counted 0 connect calls for 1000 connections (not attached?)"}}, open(sc, "w"))
    broken = report(out, "--no-plot", "--syscalls", sc, "--failed", "benchmark group 'bind' died of signal 11",
                    inputs=[edited, cut])
    expect(broken, [
        "acquire/broker/live/reservations:0 (SKIPPED: broker mode not available: portresd not found)",
        "| NOT MEASURED |", "- SKIPPED: acquire/broker/live/reservations:0 (broker mode not available",
        "lifecycle/acquire/ports:16384: 5 failed operations | FAIL |",
        "pool/get_sync: 5 failed operations", "system calls of pool (strace counted 0 connect calls",
        "- FAILED: results file cut.json cut off (", "1 complete runs kept, the cases after them are missing",
        "| explicit | 777/s | 1.00x |", "- FAILED: benchmark group 'bind' died of signal 11",
        "| per-user registry | live/reservations:1000 (held: 1000) | 30.00 ms |",
    ], "broken inputs")
    for tid, want in [("P4", "NOT MEASURED"), ("P5", "FAIL"), ("P2", "FAIL"), ("P6", "NOT MEASURED")]:
        line = broken.split(f"| {tid} |")[1].split("\n")[0]
        if not line.rstrip().endswith(f"| {want} |"):
            failures += 1
            print(f"{tid} should be {want}: {line}")

with tempfile.TemporaryDirectory() as out:
    # A case absent from every input (its group stopped) is listed, and its target is NOT MEASURED.
    canned = json.load(open(os.path.join(data, "bench_sample.json")))
    kept = [b for b in canned["benchmarks"] if not b["run_name"].startswith("churn/")]
    short = os.path.join(out, "short.json")
    json.dump(dict(canned, benchmarks=kept), open(short, "w"))
    gone = report(out, "--no-plot", inputs=[short])
    expect(gone, ["churn/explicit (no result)", "- MISSING (no result; its run stopped or was filtered out): "
                  "churn/autobind, churn/explicit"], "absent cases")
    if not gone.split("| P3 |")[1].split("\n")[0].rstrip().endswith("| NOT MEASURED |"):
        failures += 1
        print("P3 should be NOT MEASURED without churn results")

    # A run filtered to part of a target's inputs (scripts/bench --benchmark_filter=own/explicit): the
    # report is written, and P1, whose own/portres_* and own/ephemeral cases are missing, is NOT MEASURED.
    own_only = [b for b in canned["benchmarks"] if b["run_name"].startswith("own/explicit/")]
    json.dump(dict(canned, benchmarks=own_only), open(short, "w"))
    filtered = report(out, "--no-plot", inputs=[short])
    if "| P1 |" not in filtered or verdict(filtered, "P1") != "NOT MEASURED":
        failures += 1
        print("P1 should be NOT MEASURED when only own/explicit ran")



def edited_bench(out, changes):
    """bench_sample.json with counters changed: {case: {counter: value}} (its median rows)."""
    canned = json.load(open(os.path.join(data, "bench_sample.json")))
    for b in canned["benchmarks"]:
        name = b["run_name"].replace("/manual_time", "")
        if name in changes and b.get("aggregate_name") in (None, "median"):
            b.update(changes[name])
    path = os.path.join(out, "edited_bench.json")
    json.dump(canned, open(path, "w"))
    return path


def check(cond, what, text=""):
    global failures
    if not cond:
        failures += 1
        print(f"{what}: failed", text[-2000:] if text else "")


with tempfile.TemporaryDirectory() as out:
    # P1's tail: every policy meets the p50 clauses (random given sequential's figures); lru's mean at 99 %
    # (30 us) is above bind(0)'s (24 us): FAIL on the tail alone; below it, PASS.
    random_ok = {f"own/portres_random/fullness:{lvl}": {"p50_us": v, "p99_us": v * 2, "mean_us": v * 1.2}
                 for lvl, v in zip([0, 500, 900, 990, 999], [1.4, 1.4, 1.5, 1.6, 1.8])}
    slow_mean = dict(random_ok, **{"own/portres_lru/fullness:990": {"mean_us": 30.0}})
    text = report(out, "--no-plot", inputs=[edited_bench(out, slow_mean)])
    check(verdict(text, "P1") == "FAIL" and "lru 1.40x / 1.90x" in text and "99 %: mean 30.0 us = 1.25x bind(0)'s"
          in text, "P1 fails on the mean at 99 % above bind(0)'s", text)
    slow_p99 = dict(random_ok, **{"own/portres_sequential/fullness:999": {"p99_us": 25.0}})
    text = report(out, "--no-plot", inputs=[edited_bench(out, slow_p99)])
    check(verdict(text, "P1") == "FAIL" and "p99 25.0 us = 12.50x explicit's" in text,
          "P1 fails on the p99 at 99.9 % above 10x the explicit bind's", text)
    text = report(out, "--no-plot", inputs=[edited_bench(out, random_ok)])
    check(verdict(text, "P1") == "PASS", "P1 passes with p50 and tail within bounds", text)

with tempfile.TemporaryDirectory() as out:
    # Capacity before per-destination ports: the pool holds its 1,000 ports at every point, the rest wait.
    canned = json.load(open(os.path.join(data, "bench_capacity_sample.json")))
    for pt in canned["points"]:
        pt["pool"] = {"held": 1000, "seconds": 0.4, "failures": 0, "not_opened": pt["requested"] - 1000}
    path = os.path.join(out, "capacity.json")
    json.dump(canned, open(path, "w"))
    text = report(out, "--no-plot", "--capacity", path)
    check(verdict(text, "P8") == "FAIL" and "4 x 4: pool held 1,000 of 16,000 in 0.40 s, 0 failures" in text and
          "4 x 4: pool/autobind/HAProxy 1,000 / 15,990 / 15,200" in text and
          "| 4 x 4 | 16,000 | loadgen --hold through the pool (1,000-port block) | 1,000 | 0 | 15,000 | 0.40 s |" in text
          and "The pool held no more than its 1,000 ports at 1 x 4, 4 x 1, 4 x 4: each port served one connection"
          in text, "P8 fails with its cause when the pool holds only its ports", text)
    # Failures at 4 x 4 fail P8 even with everything held.
    canned = json.load(open(os.path.join(data, "bench_capacity_sample.json")))
    canned["points"][-1]["pool"]["failures"] = 3
    json.dump(canned, open(path, "w"))
    text = report(out, "--no-plot", "--capacity", path)
    check(verdict(text, "P8") == "FAIL" and "16,000 of 16,000 in 4.80 s, 3 failures" in text,
          "P8 fails on failures at 4 x 4", text)
    # Stopped after two points: NOT MEASURED, naming what is missing and why.
    canned = json.load(open(os.path.join(data, "bench_capacity_sample.json")))
    canned["points"] = canned["points"][:2]
    canned["error"] = "haproxy: nothing listens on 19101"
    canned["points"][0]["runs"][0]["autobind"] = {"requested": 1000, "held": None, "error": "loadgen: bad source"}
    canned["points"][0]["autobind"]["held"] = None
    json.dump(canned, open(path, "w"))
    text = report(out, "--no-plot", "--capacity", path)
    check(verdict(text, "P8") == "NOT MEASURED" and "4 x 4: the pool's held count" in text and
          "1 x 4: pool, autobind, haproxy" in text and "capacity stopped: haproxy: nothing listens on 19101" in text
          and "Capacity stopped early: haproxy: nothing listens on 19101" in text and
          "1 x 1: autobind (see 'Runs without figures')" in text and
          "- autobind at 1 x 1, round 1: loadgen: bad source" in text,
          "P8 is NOT MEASURED when points are missing", text)

with tempfile.TemporaryDirectory() as out:
    # Peers stopped after the clients (no proxies): P7 NOT MEASURED, naming each missing comparison;
    # an httperf that kept up at the top offered rate is flagged.
    canned = json.load(open(os.path.join(data, "bench_peers_sample.json")))
    canned["proxies"] = {"default/1": canned["proxies"]["default/1"]}
    canned["error"] = "nothing listens on 18083"
    canned["clients"]["runs"][0]["httperf"]["at_top_step"] = True
    path = os.path.join(out, "peers.json")
    json.dump(canned, open(path, "w"))
    text = report(out, "--no-plot", "--peers", path)
    check(verdict(text, "P7") == "NOT MEASURED" and "default/4: gateway(pool) vs nginx" in text and
          "narrow_1000/4: CPU per request" in text and "peers stopped: nothing listens on 18083" in text and
          "(at the top offered rate in 1 round(s): it may do more)" in text,
          "P7 is NOT MEASURED without the proxies, and says so", text)

with tempfile.TemporaryDirectory() as out:
    # Capacity figures that are all zero (requested included) prove nothing: the count asked for comes from the
    # run's configuration (1,000 ports x destinations x sources), and a pool that held none fails.
    canned = json.load(open(os.path.join(data, "bench_capacity_sample.json")))
    for pt in canned["points"]:
        pt["requested"] = 0
        for m in ["pool", "autobind", "haproxy"]:
            pt[m] = {"held": 0, "seconds": 0.0, "failures": 0, "not_opened": 0}
            for run in pt["runs"]:
                run[m] = {"requested": 0, "held": 0, "seconds": 0.0, "failures": 0, "not_opened": 0}
    path = os.path.join(out, "capacity.json")
    json.dump(canned, open(path, "w"))
    text = report(out, "--no-plot", "--capacity", path)
    check(verdict(text, "P8") == "FAIL" and "4 x 4: pool held 0 of 16,000" in text and
          "1 x 1: the pool held none of 1,000" in text and "4 x 4: the run asked for 0 connections, not 16,000" in text
          and "| 4 x 4 | 16,000 | loadgen --hold through the pool (1,000-port block) | 0 |" in text,
          "P8 fails on all-zero capacity figures, wanting the configured counts", text)
    # A run that names no error but lacks a point has a wrong result: FAIL, saying which figures are missing.
    canned = json.load(open(os.path.join(data, "bench_capacity_sample.json")))
    canned["points"] = canned["points"][:3]
    json.dump(canned, open(path, "w"))
    text = report(out, "--no-plot", "--capacity", path)
    check(verdict(text, "P8") == "FAIL" and "no figures: 4 x 4: the pool's held count" in text,
          "P8 fails when a run without an error lacks the 4 x 4 point", text)
    # Figures that are not counts (NaN, Infinity, text, more than was asked for) are no figures: FAIL, never PASS
    # and never a crash (json.load takes NaN and Infinity).
    for label, bad in [("NaN", float("nan")), ("Infinity", float("inf")), ("text", "16000"), ("over the ask", 16001),
                       ("past a float's range", 10 ** 400)]:
        canned = json.load(open(os.path.join(data, "bench_capacity_sample.json")))
        for pt in canned["points"]:
            pt["pool"]["held"] = bad if pt["destinations"] * pt["sources"] == 16 or label != "over the ask" else \
                pt["pool"]["held"]
        json.dump(canned, open(path, "w"))
        text = report(out, "--no-plot", "--capacity", path)
        check(verdict(text, "P8") == "FAIL" and ("no figures: 4 x 4: pool" in text or "more than the 16,000 asked for"
                                                 in text), f"P8 fails on a held count that is {label}", text)

with tempfile.TemporaryDirectory() as out:
    # JSON of the wrong shape (null or text where a list or object belongs) never crashes the report: the
    # section and its target say NOT MEASURED, naming the field, and the other sections are still written.
    for name, flag, tid, edit, says in [
            ("capacity", "--capacity", "P8", lambda e: e.update(points=None), "capacity.json: points is null, not a list"),
            ("capacity", "--capacity", "P8", lambda e: e["points"].insert(1, "4x4"),
             "capacity.json: points[1] is the text '4x4', not an object"),
            ("capacity", "--capacity", "P8", lambda e: e["points"].append(7), "capacity.json: points[4] is a number, not an object"),
            ("capacity", "--capacity", "P8", lambda e: e["points"][0]["runs"][0].update(pool=None),
             "capacity.json: points[0].runs[0].pool is null, not an object"),
            ("peers", "--peers", "P7", lambda e: e["clients"].update(runs=None), "peers.json: clients.runs is null, not a list"),
            ("peers", "--peers", "P7", lambda e: e.update(proxies="none"), "peers.json: proxies is the text 'none', not an object"),
            ("peers", "--peers", "P7", lambda e: e["proxies"]["default/4"].update(runs=[None]),
             "peers.json: proxies.default/4.runs[0] is null, not an object"),
            ("peers", "--peers", "P7", lambda e: e["clients"]["runs"][1].update(ab="x"),
             "peers.json: clients.runs[1].ab is the text 'x', not an object"),
            # Figures the sections sort, sum, key by or print as numbers: wrong types, NaN, integers past a float.
            ("capacity", "--capacity", "P8", lambda e: e["points"][0].pop("destinations"),
             "capacity.json: points[0].destinations is missing"),
            ("capacity", "--capacity", "P8", lambda e: e["points"][2].update(sources=[4]),
             "capacity.json: points[2].sources is a list, not a finite number"),
            ("capacity", "--capacity", "P8", lambda e: e["points"][1].update(destinations=10 ** 400),
             "capacity.json: points[1].destinations is an infinite or out-of-range number, not a finite number"),
            ("capacity", "--capacity", "P8",
             lambda e: e["points"][1]["runs"][0]["haproxy"]["failures_by_kind"].update(ECONNRESET="10"),
             "capacity.json: points[1].runs[0].haproxy.failures_by_kind.ECONNRESET is the text '10', not a finite number"),
            ("capacity", "--capacity", "P8", lambda e: e["points"][3].update(pool_vs_autobind="1.0"),
             "capacity.json: points[3].pool_vs_autobind is the text '1.0', not a finite number"),
            ("peers", "--peers", "P7", lambda e: e["clients"]["runs"][0]["ab"].update(rps="fast"),
             "peers.json: clients.runs[0].ab.rps is the text 'fast', not a finite number"),
            ("peers", "--peers", "P7", lambda e: e["clients"].update(loadgen_vs_ab=float("nan")),
             "peers.json: clients.loadgen_vs_ab is NaN, not a finite number"),
            ("peers", "--peers", "P7", lambda e: e["proxies"]["default/1"]["runs"][0]["haproxy"].update(rps=10 ** 400),
             "peers.json: proxies.default/1.runs[0].haproxy.rps is an infinite or out-of-range number, not a finite number"),
            ("peers", "--peers", "P7", lambda e: e["proxies"]["default/1"].pop("runs"),
             "peers.json: proxies.default/1.runs is missing"),
            ("peers", "--peers", "P7", lambda e: e.update(httperf_steps=[1.0, 10 ** 400]),
             "peers.json: httperf_steps[1] is an infinite or out-of-range number, not a finite number")]:
        edited = json.load(open(os.path.join(data, f"bench_{name}_sample.json")))
        edit(edited)
        path = os.path.join(out, f"{name}.json")
        json.dump(edited, open(path, "w"))
        text = report(out, "--no-plot", flag, path)
        check(verdict(text, tid) == "NOT MEASURED" and says in text.split(f"| {tid} |")[1].split("\n")[0] and
              text.count(says) == 2 and verdict(text, "P2") == "PASS", f"{tid} on {says}", text)
    path = os.path.join(out, "capacity.json")
    json.dump([1, 2], open(path, "w"))
    text = report(out, "--no-plot", "--capacity", path)
    check(verdict(text, "P8") == "NOT MEASURED" and "capacity.json is a list, not an object" in text,
          "P8 on a capacity.json that is a list", text)
    # Nesting deeper than the JSON decoder recurses: the file is unreadable, said so, and P8 did not run.
    open(path, "w").write("[" * 100000 + "]" * 100000)
    text = report(out, "--no-plot", "--capacity", path)
    check(verdict(text, "P8") == "NOT MEASURED" and "capacity: maximum recursion depth" in text,
          "P8 on a capacity.json nested 100,000 deep", text)
    # A figure that may be absent is read as absent: a client round without its CPU time shows no CPU per request.
    edited = json.load(open(os.path.join(data, "bench_peers_sample.json")))
    for r in edited["clients"]["runs"]:
        r["ab"].pop("client_cpu_s")
    path = os.path.join(out, "peers.json")
    json.dump(edited, open(path, "w"))
    text = report(out, "--no-plot", "--peers", path)
    check("| 1 | ab | 21,000/s | - | 0 | n/a (client) |" in text, "P7 on client rounds without their CPU time", text)

with tempfile.TemporaryDirectory() as out:
    # P7 with every ratio met: PASS without failures; a failure in any judged row (ours or a peer's) fails it.
    canned = json.load(open(os.path.join(data, "bench_peers_sample.json")))
    canned["clients"].update(loadgen_vs_ab=1.02, loadgen_vs_httperf=1.06, loadgen_t2_vs_wrk_t2_close=1.07)
    for d in canned["proxies"].values():
        d.update(pool_vs_nginx=1.02, pool_vs_haproxy=1.05, pool_cpu_vs_ephemeral_cpu=0.98)
    for r in canned["clients"]["runs"] + [r for d in canned["proxies"].values() for r in d["runs"]]:
        for row in r.values():
            row["failures"] = 0
    path = os.path.join(out, "peers.json")
    json.dump(canned, open(path, "w"))
    text = report(out, "--no-plot", "--peers", path)
    check(verdict(text, "P7") == "PASS" and "failed requests" not in text, "P7 passes: ratios met, no failures", text)
    for where, who, named in [("clients", "loadgen", "loadgen 2"), ("clients", "ab", "ab 2"),
                              ("default/4", "gateway_pool", "default/4: gateway (pool) 2")]:
        edited = json.loads(json.dumps(canned))
        runs = edited["clients"]["runs"] if where == "clients" else edited["proxies"][where]["runs"]
        runs[0][who]["failures"] = 2
        json.dump(edited, open(path, "w"))
        text = report(out, "--no-plot", "--peers", path)
        check(verdict(text, "P7") == "FAIL" and f"failed requests (no PASS with failures): {named}" in text,
              f"P7 fails with failures in the {who} row", text)
    # Figures that are not counts never PASS and never crash the report: failures as NaN or text, a ratio of
    # NaN, latency tails as text.
    for label, edit in [("failures NaN", lambda e: e["clients"]["runs"][0]["loadgen"].update(failures=float("nan"))),
                        ("failures text", lambda e: e["clients"]["runs"][0]["loadgen"].update(failures="2")),
                        ("ratio NaN", lambda e: e["clients"].update(loadgen_vs_ab=float("nan"))),
                        ("tails text", lambda e: e["clients"]["runs"][0]["loadgen"].update(latency_us={"p99": "x"}))]:
        edited = json.loads(json.dumps(canned))
        edit(edited)
        json.dump(edited, open(path, "w"))
        text = report(out, "--no-plot", "--peers", path)
        wanted = {"tails text": "PASS", "ratio NaN": "NOT MEASURED"}.get(label, "FAIL")  # NaN: no ratio, named
        check(verdict(text, "P7") == wanted, f"P7 on {label}", text)

with tempfile.TemporaryDirectory() as out:
    # A P7 miss is blamed on the client's own CPU only when it spends clearly more per request.
    canned = json.load(open(os.path.join(data, "bench_peers_sample.json")))
    for r in canned["clients"]["runs"]:
        r["loadgen"]["client_cpu_s"] = 95.1 * r["loadgen"]["requests"] / 1e6
        r["ab"]["client_cpu_s"] = 92.8 * r["ab"]["requests"] / 1e6
    path = os.path.join(out, "peers.json")
    json.dump(canned, open(path, "w"))
    text = report(out, "--no-plot", "--peers", path)
    line = next((ln for ln in text.splitlines() if ln.startswith("- loadgen 0.96x ab:")), "")
    check("95.1 us against 92.8 us (+2.5 %): CPU per request within 5 % of the other's, so the CPU figures do "
          "not explain the miss" in line and "its own work is the limit" not in line and "no more CPU" not in line,
          "P7's cause line claims no CPU limit for 95.1 against 92.8 us", text)

# The tails the peers table shows come from the clients' own output (bench/peers.py): ab's percentile rows
# (whole ms), wrk --latency's 99 % row and its threads' max, in microseconds; none without those lines.
sys.path.insert(0, os.path.join(root, "bench"))
import peers  # noqa: E402

ab_out = "Percentage of the requests served within a certain time (ms)\n  50%     16\n  98%     49\n  99%     54\n" \
         " 100%     55 (longest request)\n"
wrk_out = "  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     5.54ms    4.75ms  34.64ms   87.33%\n" \
          "  Latency Distribution\n     50%    3.59ms\n     99%   24.79ms\n  1656 requests in 1.01s, 108.35KB read\n"
check(peers.ab_tails(ab_out) == {"p99": 54000.0, "max": 55000.0}, "ab's p99 and longest request, in us")
check(peers.wrk_tails(wrk_out) == {"p99": 24790.0, "max": 34640.0}, "wrk's 99 % and max latency, in us")
check(peers.ab_tails("Complete requests: 10\n") is None and peers.wrk_tails("10 requests in 1.00s\n") is None,
      "no tails without the latency lines")

if failures:
    sys.exit(1)
print("report generator: all checks passed")
