#!/usr/bin/env python3
"""Turns the benchmark results into report.md and an SVG plot.

Usage: report.py --input results.json [--input more.json]... --out DIR [--syscalls syscalls.json]
                 [--peers peers.json] [--kernel K] [--compiler C] [--build-type T] [--wall-seconds S]
                 [--skipped TEXT]... [--failed TEXT]... [--no-plot]
Each input is Google Benchmark JSON (per-repetition runs and/or aggregates);
a case's figures over its repetitions: max_us the worst repetition's, failure
counts summed, everything else the median. A target whose figures are missing
or come from a failed case shows NOT MEASURED with the reason, never PASS.
Prints the report to stdout as well.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys

FOREIGN_LEVELS = [0, 50, 90, 99]
OWN_LEVELS = [0, 500, 900, 990, 999]
OWN_SIZE = 16384
POLICIES = ["sequential", "lru", "random"]
CLIENTS = ["autobind", "explicit", "pool"]
CHURN = ["autobind", "explicit"] + [f"pool_{p}" for p in POLICIES]
MODES = [("broker", "broker (portresd)"), ("per_user", "per-user registry")]
SUMMED = ("failures", "misses", "errors")


def summed(key):
    return key in SUMMED or key.startswith("fail_")


def combine(runs):
    """One row from the repetitions of a case."""
    keys = {k for r in runs for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    row = {}
    for k in keys:
        vals = [r[k] for r in runs if isinstance(r.get(k), (int, float))]
        row[k] = max(vals) if k.endswith("max_us") else sum(vals) if summed(k) else statistics.median(vals)
    row["repetitions"] = len(runs)
    return row


def salvage(text):
    """The context and every complete run of a JSON file whose writer died mid-way."""
    decoder, data = json.JSONDecoder(), {"context": {}, "benchmarks": []}
    m = re.search(r'"context":\s*', text)
    if m:
        try:
            data["context"] = decoder.raw_decode(text, m.end())[0]
        except ValueError:
            pass
    m = re.search(r'"benchmarks":\s*\[', text)
    at = m.end() if m else len(text)
    while True:
        at = len(text) - len(text[at:].lstrip(" \t\r\n,"))
        try:
            run, at = decoder.raw_decode(text, at)
        except ValueError:
            return data
        data["benchmarks"].append(run)


def load_results(paths, problems):
    """name (without /manual_time etc.) -> figures, or {"error": text, "failed": bool}; plus the contexts."""
    contexts, iterations, medians, errors = [], {}, {}, {}
    for path in paths:
        try:
            with open(path) as f:
                text = f.read()
            data = json.loads(text)
        except OSError as e:
            problems.append(f"results file {os.path.basename(path)} unreadable ({e}): its cases are missing")
            continue
        except ValueError as e:
            data = salvage(text)
            problems.append(f"results file {os.path.basename(path)} cut off ({e}; its run stopped): "
                            f"{len(data['benchmarks'])} complete runs kept, the cases after them are missing")
        contexts.append(data.get("context", {}))
        for b in data.get("benchmarks", []):
            name = re.sub(r"/(manual_time|iterations:\d+|repeats:\d+|real_time)", "", b.get("run_name", b["name"]))
            if b.get("error_occurred") or b.get("skipped"):
                message = b.get("error_message", b.get("skip_message", "error"))
                errors[name] = {"error": message, "failed": message.startswith("FAILED") or "did not arrive" in message}
            elif b.get("run_type") == "aggregate":
                if b.get("aggregate_name") == "median":
                    medians[name] = {k: v for k, v in b.items() if isinstance(v, (int, float))}
            else:
                iterations.setdefault(name, []).append(b)
    rows = {n: combine(runs) for n, runs in iterations.items()}
    for n, r in medians.items():
        rows.setdefault(n, r)
    rows.update(errors)  # a repetition that failed makes the case failed
    return contexts, rows


def us(v):
    if v is None:
        return "n/a"
    if v >= 1000:
        return f"{v / 1000:.2f} ms"
    return f"{v:.3f} us" if v < 10 else f"{v:.1f} us"


def x(v, digits=2):
    return "n/a" if v is None else f"{v:.{digits}f}x"


def rate(v):
    return "n/a" if v is None else f"{v:,.0f}/s"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


class Report:
    def __init__(self, rows, syscalls, peers):
        self.rows, self.syscalls, self.peers = rows, syscalls or {}, peers or {}
        self.targets = []
        self.sections = []
        self.looked_up = set()

    def get(self, name, key):
        self.looked_up.add(name)
        r = self.rows.get(name)
        if not r or "error" in r:
            return None
        return r.get(key)

    def unusable(self, names):
        """Why each of `names` gives no figures: 'name (reason)'."""
        out = []
        for n in names:
            r = self.rows.get(n)
            if r is None:
                out.append(f"{n} (no result)")
            elif "error" in r:
                out.append(f"{n} ({'FAILED' if r.get('failed') else 'SKIPPED'}: {r['error']})")
        return out

    def bad_runs(self, names, expect=None):
        """Failed operations in rows that did run, and rows that held less than they should."""
        out = []
        for n in names:
            r = self.rows.get(n) or {}
            if "error" in r:
                continue
            bad = sum(v for k, v in r.items() if k in SUMMED)
            if bad:
                out.append(f"{n}: {bad:.0f} failed operations")
            for key, wanted in (expect or {}).get(n, {}).items():
                if r.get(key) is None or r[key] < wanted:
                    out.append(f"{n}: {key} {r.get(key)} (wanted {wanted})")
        return out

    def target(self, tid, text, measured, ok, needs=(), extra_missing=()):
        missing = self.unusable(needs) + list(extra_missing)
        if missing:
            self.targets.append((tid, text, measured + "; not measured: " + "; ".join(missing), "NOT MEASURED"))
        else:
            self.targets.append((tid, text, measured, "PASS" if ok else "FAIL"))

    def section(self, title, lines):
        self.sections.append((title, lines))

    def tails(self, name, prefix=""):
        n = self.get(name, f"{prefix}samples")
        return [us(self.get(name, f"{prefix}{k}_us")) for k in ["p50", "p99", "p999", "max", "mean"]] + [
            "n/a" if n is None else f"{n:.0f}"]

    def failures(self, name):
        r = self.rows.get(name) or {}
        if "error" in r:
            return "FAILED" if r.get("failed") else "SKIPPED"
        kinds = {k[5:]: v for k, v in r.items() if k.startswith("fail_") and v}
        total = next((r[k] for k in SUMMED if k in r), None)
        if total is None:
            return "n/a"
        return f"{total:.0f}" + (" (" + ", ".join(f"{k} {v:.0f}" for k, v in sorted(kinds.items())) + ")" if kinds else "")


TAIL_HEAD = "p50 | p99 | p99.9 | max | mean | samples"


def own_section(rep):
    lines = ["A 16,384-port block, P per mille of it held by the caller's own live sockets. portres: associate + "
             "bind from a 16,384-port reservation (each policy); explicit: SO_REUSEADDR + bind to the next port of "
             "the caller's own free list; ephemeral: bind(port 0) with ip_local_port_range narrowed to 16,384 ports "
             "and the same share held.", "",
             f"| method | fullness | {TAIL_HEAD} | p50 vs explicit | failures |", "|---|---|---|---|---|---|---|---|---|---|"]
    for lvl in OWN_LEVELS:
        base = rep.get(f"own/explicit/fullness:{lvl}", "p50_us")
        for m in ["explicit", "ephemeral"] + [f"portres_{p}" for p in POLICIES]:
            name = f"own/{m}/fullness:{lvl}"
            r = ratio(rep.get(name, "p50_us"), base)
            lines.append(f"| {m} | {lvl / 10:g} % | " + " | ".join(rep.tails(name)) +
                         f" | {'-' if m == 'explicit' else x(r)} | {rep.failures(name)} |")
    rep.section("Own-block fullness", lines)

    parts, ok = [], True
    names = [f"own/{m}/fullness:{lvl}" for m in ["explicit", "ephemeral"] + [f"portres_{p}" for p in POLICIES]
             for lvl in (0, 999)]
    for p in POLICIES:
        name0, name9 = f"own/portres_{p}/fullness:0", f"own/portres_{p}/fullness:999"
        r0 = ratio(rep.get(name0, "p50_us"), rep.get("own/explicit/fullness:0", "p50_us"))
        r9 = ratio(rep.get(name9, "p50_us"), rep.get("own/explicit/fullness:999", "p50_us"))
        # bind(0) must be >= 10x slower than this associate+bind at the same (99.9 %) fullness.
        e9 = ratio(rep.get("own/ephemeral/fullness:999", "p50_us"), rep.get(name9, "p50_us"))
        ok &= None not in (r0, r9, e9) and r0 <= 1.5 and r9 <= 2.0 and e9 >= 10
        parts.append(f"{p} {x(r0)} / {x(r9)} (99.9 %: mean {us(rep.get(name9, 'mean_us'))}, p99 "
                     f"{us(rep.get(name9, 'p99_us'))}; bind(0) {x(e9)} slower)")
    bad = rep.bad_runs(names, {n: {"held_sockets": OWN_SIZE * int(n.rsplit(":", 1)[1]) // 1000} for n in names})
    ok &= not bad
    rep.target("P1", "associate+bind p50 <= 1.5x the hand-written explicit bind at 0 % own fullness and <= 2x at "
               "99.9 %, while bind(0) at the same fullness is >= 10x slower",
               "portres p50 vs explicit at 0 % / 99.9 %: " + ", ".join(parts) + "".join(f"; {b}" for b in bad),
               ok, needs=names)


def foreign_section(rep):
    lines = ["Other processes hold N % of the (narrowed) ephemeral range. portres' block lies outside the "
             "ephemeral range by design, so these cases cannot stress it; the own-fullness cases above do. "
             "portres = associate + bind timed together; portres_bind_only = bind alone (associate before the "
             "timer), shown as a sub-row.", "",
             f"| case | {TAIL_HEAD} | p50 vs explicit | failures |", "|---|---|---|---|---|---|---|---|---|"]
    for layout in ["random", "clustered"]:
        for lvl in FOREIGN_LEVELS:
            base = rep.get(f"bind/explicit/{layout}/occupancy:{lvl}", "p50_us")
            for m in ["explicit", "ephemeral", "portres", "portres_bind_only"]:
                name = f"bind/{m}/{layout}/occupancy:{lvl}"
                if m == "portres_bind_only" and layout == "clustered":
                    continue  # the sub-row runs on the random layout only
                label = ("&nbsp;&nbsp;└ " if m == "portres_bind_only" else "") + name
                lines.append(f"| {label} | " + " | ".join(rep.tails(name)) +
                             f" | {'-' if m == 'explicit' else x(ratio(rep.get(name, 'p50_us'), base))} | "
                             f"{rep.failures(name)} |")
    rep.section("Whole per-socket cost against foreign occupancy of the ephemeral range", lines)


def connect_section(rep):
    sc = rep.syscalls
    lines = ["One connection as its user pays for it, same loop and same server for the three clients "
             "(see 'What each case measures'). Latency columns: the whole timed region; 'until connected': p50 from "
             "the start until connect() returned. CPU: the client process's CPU time (all its threads, the library's blocking pool included; "
             "the server is another process) per connection. "
             "System calls: strace on a fixed-count run at 0 % occupancy. Occupancy: other processes hold N % of "
             "the ephemeral range, which only autobind draws from; the explicit client's ports and the pool's "
             "block lie outside it by design.", "",
             f"| client | occupancy | {TAIL_HEAD} | until connected p50 | CPU per conn | syscalls per conn | failures |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for lvl in FOREIGN_LEVELS:
        for c in CLIENTS:
            name = f"connect/{c}/occupancy:{lvl}"
            calls = sc.get(c, {}).get("calls_per_conn") if lvl == 0 else None
            lines.append(f"| {c} | {lvl} % | " + " | ".join(rep.tails(name)) + f" | {us(rep.get(name, 'use_p50_us'))} | "
                         f"{us(rep.get(name, 'cpu_us_per_conn'))} | {'-' if lvl else ('n/a' if calls is None else f'{calls:.2f}')} | "
                         f"{rep.failures(name)} |")
    if sc:
        lines += ["", f"System calls by name, per connection ({sc.get('method', '')}):", ""]
        for c in CLIENTS:
            d = sc.get(c, {})
            if "by_call" in d:
                lines.append(f"- {c}: " + ", ".join(f"{k} {v:.2f}" for k, v in d["by_call"].items() if v >= 0.01))
            else:
                lines.append(f"- {c}: not counted ({d.get('error', 'no data')})")
    rep.section("Full cost per connection", lines)

    s_pool, s_exp = sc.get("pool", {}).get("calls_per_conn"), sc.get("explicit", {}).get("calls_per_conn")
    names = [f"connect/{c}/occupancy:{l}" for c in ["pool", "autobind"] for l in FOREIGN_LEVELS]
    cpu_ratios = [ratio(rep.get(f"connect/pool/occupancy:{l}", "cpu_us_per_conn"),
                        rep.get(f"connect/autobind/occupancy:{l}", "cpu_us_per_conn")) for l in FOREIGN_LEVELS]
    known = [r for r in cpu_ratios if r is not None]
    worst_cpu = max(known) if known else None
    bad = rep.bad_runs(names)
    ok = s_pool is not None and s_exp is not None and s_pool <= s_exp and worst_cpu is not None and worst_cpu <= 1.0
    ok &= not bad
    not_counted = [f"system calls of {c} ({sc.get(c, {}).get('error') or 'not counted'})"
                   for c in ["pool", "explicit"] if sc.get(c, {}).get("calls_per_conn") is None]
    rep.target("P6", "pool: system calls per connection <= the explicit-bind floor's; CPU per connection <= autobind's",
               f"syscalls pool {'n/a' if s_pool is None else f'{s_pool:.2f}'} vs explicit "
               f"{'n/a' if s_exp is None else f'{s_exp:.2f}'}; CPU (whole process) pool/autobind worst over occupancy "
               f"{x(worst_cpu)}" + "".join(f"; {b}" for b in bad), ok, needs=names, extra_missing=not_counted)


def churn_section(rep):
    floor = rep.get("churn/explicit", "connects_per_s")
    auto = rep.get("churn/autobind", "connects_per_s")
    secs = rep.get("churn/explicit", "real_time")
    lines = ["Client closes first (each connection leaves TIME_WAIT on the client's port), 1,000 ports per method, "
             "flat out, default sysctls (tcp_tw_reuse 2, tcp_timestamps 1, as read back in the namespace). "
             "Failures are connect() errors by errno. Latency: start until connected.", "",
             f"| method | rate | vs explicit floor | vs autobind | {TAIL_HEAD} | failures | sysctls |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in CHURN:
        name = f"churn/{m}"
        r = rep.get(name, "connects_per_s")
        tw, ts = rep.get(name, "tcp_tw_reuse"), rep.get(name, "tcp_timestamps")
        lines.append(f"| {m} | {rate(r)} | {x(ratio(r, floor))} | {x(ratio(r, auto), 1)} | " + " | ".join(rep.tails(name)) +
                     f" | {rep.failures(name)} | {'n/a' if tw is None else f'tw_reuse {tw:.0f}, timestamps {ts:.0f}'} |")
    lines += ["", "Mechanism: the win over autobind is the kernel's, not the pool's. When a socket bound explicitly "
              "(SO_REUSEADDR lets it take a port whose previous connection sits in TIME_WAIT) connects, the kernel "
              "lets the new connection take over a TIME_WAIT 4-tuple at once provided that connection carried TCP "
              "timestamps; tcp_tw_reuse is not consulted for it. Autobind's port search takes over a TIME_WAIT "
              "port only under tcp_tw_reuse (2, the default: loopback only) and only once the TIME_WAIT is about "
              "1 s old, so with 1,000 ports it tops out near 1,000 connections per second and fails the rest "
              "with EADDRNOTAVAIL. Any client that binds explicitly with SO_REUSEADDR gets the same rate as the "
              "pool: the hand-written explicit-bind client is the floor a pool has to match. With timestamps "
              "off, neither takes over a TIME_WAIT 4-tuple before it expires (not measured here)."]
    slow = [p for p in POLICIES if (ratio(rep.get(f"churn/pool_{p}", "connects_per_s"), floor) or 1) < 0.95]
    if slow:
        lines += ["", f"Where the pool loses to the floor ({', '.join(slow)}): the rate counts the whole loop; the "
                  "p99.9 and max of 'start until connected' hold the waits for stock, when try_get finds the "
                  "pool empty and the caller runs the pool's refill (socket, associate, bind for a batch) before it "
                  "can connect; that work is the pool's, on the calling thread, and inside the rate."]
    rep.section("Churn", lines)
    parts, ok = [], True
    for p in POLICIES:
        name = f"churn/pool_{p}"
        r = rep.get(name, "connects_per_s")
        f = rep.get(name, "failures")
        rf, ra = ratio(r, floor), ratio(r, auto)
        ok &= rf is not None and rf >= 0.95 and ra is not None and ra >= 40 and f == 0
        parts.append(f"{p} {x(rf)} floor, {x(ra, 1)} autobind, {'n/a' if f is None else f'{f:.0f}'} failures")
    note = "" if secs is None or secs >= 9500 else f" (runs of {secs / 1000:.0f} s, not 10 s)"
    rep.target("P3", "churn (client closes first, 1,000 ports, default sysctls, 10 s): pool >= 0.95x the explicit-bind "
               "floor, >= 40x autobind, zero connect failures", "; ".join(parts) + note, ok,
               needs=[f"churn/{m}" for m in CHURN])


def pool_section(rep):
    lines = [f"| case | {TAIL_HEAD} |", "|---|---|---|---|---|---|---|"]
    for name, prefix, label in [("pool/get_sync", "", "pool/get_sync (try_get)"),
                                ("pool/get_sync", "cycle_", "&nbsp;&nbsp;└ cycle: get + return + refill (io.poll)"),
                                ("pool/get_async", "", "pool/get_async (call until handler)")]:
        lines.append(f"| {label} | " + " | ".join(rep.tails(name, prefix)) + " |")
    rep.section("Pool get", lines)
    s50 = rep.get("pool/get_sync", "p50_us")
    a50, a999, amax = (rep.get("pool/get_async", k) for k in ["p50_us", "p999_us", "max_us"])
    bad = rep.bad_runs(["pool/get_sync", "pool/get_async"])
    ok = (None not in (s50, a50, a999, amax)) and s50 <= 0.25 and a50 <= 1 and a999 <= 5 and amax <= 100 and not bad
    rep.target("P2", "pool get: sync p50 <= 0.25 us; async p50 <= 1 us, p99.9 <= 5 us, max <= 100 us",
               f"sync p50 {us(s50)}; async p50 {us(a50)}, p99.9 {us(a999)}, max {us(amax)}" +
               "".join(f"; {b}" for b in bad), ok, needs=["pool/get_sync", "pool/get_async"])


def acquire_section(rep):
    lines = ["Acquire in each registry mode (a process picks its mode once; each mode runs in its own process, "
             "in its own private network namespace): **broker** = portresd, started inside the namespace, grants "
             "machine-wide, kernel-enforced blocks; **per-user registry** = the folder of one user's processes. "
             "Live reservations are held by other processes (children of the benchmark) in the same mode.", "",
             f"| mode | case | {TAIL_HEAD} | vs live:0 | failures |", "|---|---|---|---|---|---|---|---|---|---|"]
    figures = {}
    for mode, label in MODES:
        base = rep.get(f"acquire/{mode}/live/reservations:0", "p50_us")
        for n in [0, 100, 1000]:
            name = f"acquire/{mode}/live/reservations:{n}"
            held = rep.get(name, "live_reservations")
            lines.append(f"| {label} | live/reservations:{n} (held: {'n/a' if held is None else f'{held:.0f}'}) | " +
                         " | ".join(rep.tails(name)) +
                         f" | {'-' if n == 0 else x(ratio(rep.get(name, 'p50_us'), base))} | {rep.failures(name)} |")
        init = f"acquire/{mode}/async_initiation"
        lines.append(f"| {label} | async_acquire: the initiating call | " + " | ".join(rep.tails(init)) +
                     f" | - | {rep.failures(init)} |")
        lines.append(f"| {label} | &nbsp;&nbsp;└ until the handler ran | " + " | ".join(rep.tails(init, "complete_")) +
                     " | - | - |")
        l1000 = ratio(rep.get(f"acquire/{mode}/live/reservations:1000", "p50_us"), base)
        figures[mode] = (base, l1000, rep.get(init, "p50_us"), rep.get(init, "p99_us"))
    lines += ["", f"| case (per-user registry) | {TAIL_HEAD} | vs ports:1 | failures |", "|---|---|---|---|---|---|---|---|---|"]
    one = rep.get("lifecycle/acquire/ports:1", "p50_us")
    for n in [1, 16, 256, 4096, 16384]:
        name = f"lifecycle/acquire/ports:{n}"
        lines.append(f"| {name} | " + " | ".join(rep.tails(name)) +
                     f" | {'-' if n == 1 else x(ratio(rep.get(name, 'p50_us'), one))} | {rep.failures(name)} |")
    for name in ["lifecycle/acquire_associate_release/sync", "lifecycle/acquire_associate_release/async"]:
        lines.append(f"| {name} | " + " | ".join(rep.tails(name)) + f" | - | {rep.failures(name)} |")
    rep.section("Acquire", lines)

    def said(mode):
        base, l1000, i50, i99 = figures[mode]
        return f"p50 {us(base)}; 1,000 live {x(l1000)}; initiating call p99 {us(i99)} (p50 {us(i50)})"
    names = [f"acquire/broker/live/reservations:{n}" for n in (0, 1000)] + ["acquire/broker/async_initiation"]
    bad = rep.bad_runs(names, {"acquire/broker/live/reservations:1000": {"live_reservations": 1000}})
    base, l1000, _, i99 = figures["broker"]
    ok = None not in (base, l1000, i99) and base <= 25 and l1000 <= 1.5 and i99 <= 5 and not bad
    rep.target("P4", "acquire p50 <= 25 us, 1,000 live vs none <= 1.5x; async_acquire initiating call <= 5 us "
               "(judged through the broker; the initiating call on its p99: a bound on every call)",
               "broker: " + said("broker") + "".join(f"; {b}" for b in bad) + ". Per-user registry, for comparison: " +
               said("per_user"), ok, needs=names)
    sizes = ["lifecycle/acquire/ports:1", "lifecycle/acquire/ports:16384"]
    r5 = ratio(rep.get(sizes[1], "p50_us"), one)
    bad = rep.bad_runs(sizes)
    rep.target("P5", "acquire cost for 16,384 ports <= 2x for 1 port", x(r5) + " (per-user registry)" +
               "".join(f"; {b}" for b in bad), r5 is not None and r5 <= 2.0 and not bad, needs=sizes)


def peers_section(rep):
    p = rep.peers
    lines = []
    if not p:
        rep.section("Peers", ["Not run (see 'Not run')."])
        rep.target("P7", "peers: loadgen >= ab req/s; gateway (pool) >= nginx proxy_pass req/s at both ranges, CPU "
                   "per request <= gateway in ephemeral mode", "-", False, extra_missing=["the peers did not run"])
        return
    if "error" in p:
        lines.append(f"Peers stopped early: {p['error']}")

    def med(runs, who, key):
        vals = sorted(r[who][key] for r in runs if key in r.get(who, {}))
        return vals[len(vals) // 2] if vals else None

    def fails(runs, who):
        return sum(r[who].get("failures", 0) for r in runs if who in r)

    lines += [f"Inside a private network namespace on loopback; {p.get('nginx', 'nginx')}, concurrency "
              f"{p.get('concurrency')}, {p.get('rounds')} rounds of {p.get('seconds_per_run')} s runs, methods "
              "alternating within each round; ratios are medians of per-round ratios; CPU per request is the "
              "measured process's CPU time (client for the client rows, proxy for the proxy rows) over its "
              "requests.", "",
              "| range | method | req/s (median) | ratio (median of rounds) | failures (all rounds) | CPU per request |",
              "|---|---|---|---|---|---|"]
    cl = p.get("clients", {})
    runs = cl.get("runs", [])
    for who, label, r in [("ab", "ab (one request per connection)", None),
                          ("loadgen", "loadgen (pool, one request per connection)", cl.get("loadgen_vs_ab")),
                          ("wrk", "wrk (keep-alive, reference)", cl.get("wrk_vs_ab"))]:
        cpu = [x[who]["client_cpu_s"] * 1e6 / x[who]["requests"] for x in runs
               if x.get(who, {}).get("requests")]
        lines.append(f"| default | {label} | {rate(med(runs, who, 'rps'))} | "
                     f"{'-' if r is None and who == 'ab' else x(r) + ' ab'} | {fails(runs, who)} | "
                     f"{us(sorted(cpu)[len(cpu) // 2] if cpu else None)} (client) |")
    pr = p.get("proxies", {})
    for label in ["default", "narrow_1000"]:
        d = pr.get(label)
        if not d:
            continue
        for who, name, r in [("nginx_proxy", "nginx proxy_pass", None),
                             ("gateway_pool", "gateway (pool)", d.get("pool_vs_nginx")),
                             ("gateway_ephemeral", "gateway (ephemeral)", d.get("ephemeral_vs_nginx"))]:
            lines.append(f"| {label} ({d.get('range')}) | {name} | {rate(med(d['runs'], who, 'rps'))} | "
                         f"{'-' if who == 'nginx_proxy' else x(r) + ' nginx'} | {fails(d['runs'], who)} | "
                         f"{us(med(d['runs'], who, 'proxy_cpu_us_per_req'))} (proxy) |")
    rep.section("Peers", lines)
    lg = cl.get("loadgen_vs_ab")
    ok = lg is not None and lg >= 1.0
    parts = [f"loadgen {x(lg)} ab"]
    missing = [] if lg is not None else ["loadgen vs ab"]
    for label in ["default", "narrow_1000"]:
        d = pr.get(label, {})
        pv, cv = d.get("pool_vs_nginx"), d.get("pool_cpu_vs_ephemeral_cpu")
        ok &= pv is not None and pv >= 1.0 and cv is not None and cv <= 1.0
        missing += [f"{label}: {what}" for what, v in [("gateway(pool) vs nginx", pv), ("CPU per request", cv)] if v is None]
        parts.append(f"{label}: gateway(pool) {x(pv)} nginx, CPU/req {x(cv)} gateway(ephemeral)")
    if missing and "error" in p:
        missing.append(f"peers stopped: {p['error']}")
    rep.target("P7", "peers: loadgen >= ab req/s; gateway (pool) >= nginx proxy_pass req/s at both ranges, CPU per "
               "request <= gateway in ephemeral mode", "; ".join(parts), ok, extra_missing=missing)


MEASURES = """| case | inside the timed region | outside it |
|---|---|---|
| bind/explicit | setsockopt(SO_REUSEADDR) + bind(known free port) | socket creation, close |
| bind/ephemeral | bind(port 0) | socket creation, close |
| bind/portres | portres::associate + portres::bind | socket creation, close; acquire (once per case) |
| bind/portres_bind_only | portres::bind | socket creation, associate, close |
| own/explicit | SO_REUSEADDR + bind(next port of its own free list) | socket creation, close; filling the block |
| own/ephemeral | bind(port 0), ip_local_port_range narrowed to 16,384 ports | socket creation, close; filling the range |
| own/portres_* | associate + bind from a 16,384-port reservation (any reclaim or search the library does) | socket creation, close; acquire, filling the block |
| connect/autobind | socket() + connect() + abortive close | - |
| connect/explicit | socket() + SO_REUSEADDR + bind(next port) + connect() + abortive close | - |
| connect/pool | try_get (waiting if empty) + connect() + abortive close + the pool's refill work queued on this thread (io.poll: socket, associate, bind) | pool warm-up before the loop; a bind the pool runs on the library's blocking pool (its CPU counts, see below) |
| connect CPU | the client process's CPU, all threads (getrusage RUSAGE_SELF), over the loop, per connection | the server (a child process) |
| connect syscalls | every system call of the client process, all threads, during N connections (strace -c -f -p) | setup, the server process |
| churn/* | the whole run: ready a socket, connect, close (client first); latency columns: start until connected | - |
| pool/get_sync | try_get | returning the socket and refill (cycle_* rows include them) |
| pool/get_async | async_get call until its handler ran (refill work the io_context runs meanwhile included) | returning the socket |
| acquire/MODE/live | portres::acquire of 16 ports with N reservations held by other processes; MODE broker: a request to portresd and its answer; per_user: the registry's folder, lock and records | release; the children's acquires; starting portresd |
| acquire/MODE/async_initiation | the async_acquire call itself (until it returns) | the operation's completion (shown separately) |
| lifecycle/acquire | portres::acquire(N ports) | release |
| lifecycle/acquire_associate_release | acquire + associate + release (sync; async: until the last handler) | socket creation |
| peers | requests/s as the client measures it over a fixed time; CPU of the measured process | process start-up |"""


def write_plot(rows, out_dir):
    if not shutil.which("gnuplot"):
        return "gnuplot not found: no plot"
    data_path = os.path.join(out_dir, "bind_latency.dat")
    left, right = [], []
    for m in ["explicit", "ephemeral", "portres"]:
        for layout in ["random", "clustered"]:
            pts = [(i, rows[f"bind/{m}/{layout}/occupancy:{l}"]["p50_us"]) for i, l in enumerate(FOREIGN_LEVELS)
                   if "p50_us" in rows.get(f"bind/{m}/{layout}/occupancy:{l}", {})]
            if pts:
                left.append((f"{m} ({layout}) p50", pts))
    for m in ["explicit", "ephemeral"] + [f"portres_{p}" for p in POLICIES]:
        for stat in ["p50", "mean"]:
            pts = [(i, rows[f"own/{m}/fullness:{l}"][f"{stat}_us"]) for i, l in enumerate(OWN_LEVELS)
                   if f"{stat}_us" in rows.get(f"own/{m}/fullness:{l}", {})]
            if pts:
                right.append((f"{m} {stat}", pts))
    if not left and not right:
        return "no bind data: no plot"
    series = left + right
    with open(data_path, "w") as f:
        for title, pts in series:
            f.write(f"# {title}\n" + "".join(f"{a} {b}\n" for a, b in pts) + "\n\n")

    def plots(items, offset):
        return ", ".join(f"'{data_path}' index {offset + i} with linespoints lw 2 "
                         f"dt {2 if t.endswith('mean') else 1} title '{t}'" for i, (t, _) in enumerate(items))
    script = f"""
set terminal svg size 1400,600 dynamic noenhanced font 'sans,11'
set output '{os.path.join(out_dir, "bind_latency.svg")}'
set multiplot layout 1,2
set logscale y
set grid
set key top left
set ylabel 'latency (us, log scale)'
set title 'bind against foreign occupancy of the ephemeral range (portres: associate + bind)'
set xlabel 'share of the ephemeral range held by other processes'
set xtics ('0%%' 0, '50%%' 1, '90%%' 2, '99%%' 3)
{('plot ' + plots(left, 0)) if left else ''}
set title 'own-block fullness: 16,384 ports held by the caller (p50 solid, mean dashed)'
set xlabel 'share of the 16,384-port block held by the caller'
set xtics ('0%%' 0, '50%%' 1, '90%%' 2, '99%%' 3, '99.9%%' 4)
{('plot ' + plots(right, len(left))) if right else ''}
unset multiplot
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    return "bind_latency.svg"


def load_json(path, skipped, what):
    if not path:
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        skipped.append(f"{what}: {e}")
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", action="append", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--syscalls")
    ap.add_argument("--peers")
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
    context = contexts[0] if contexts else {}
    skipped = list(args.skipped)
    rep = Report(rows, load_json(args.syscalls, failed, "syscalls"), load_json(args.peers, failed, "peers"))
    own_section(rep)
    pool_section(rep)
    churn_section(rep)
    acquire_section(rep)
    connect_section(rep)
    peers_section(rep)
    foreign_section(rep)
    plot = "plot skipped" if args.no_plot else write_plot(rows, args.out)
    rep.targets.sort(key=lambda t: t[0])
    registries = {}
    for c in contexts:  # one line per mode (each run names its own scratch folder)
        if c.get("registry_mode"):
            registries.setdefault(c["registry_mode"], re.sub(r" /\S*portres-bench-\S*", " (scratch folder)",
                                                            c.get("registry", "?")))
    registries = [f"{m}: {t}" for m, t in sorted(registries.items())]

    md = ["# portres benchmark report", "",
          f"- machine: {context.get('host_name', '?')}, {context.get('num_cpus', '?')} CPUs at "
          f"{context.get('mhz_per_cpu', '?')} MHz; kernel {args.kernel}; {args.compiler}; {args.build_type}",
          f"- date: {context.get('date', '?')}" + (f"; whole run {args.wall_seconds} s" if args.wall_seconds else ""),
          f"- environment: {context.get('occupancy_method', '?')}"] + [f"- registry {r}" for r in registries] + [
          "- figures: per-operation p50/p99/p99.9/max/mean from per-iteration samples (samples: how many, per "
          "repetition; a tail of few samples is its max); over repetitions: max is the worst repetition's, "
          "failures are summed, the rest are medians; every ratio compares figures measured in the same run. "
          "The machine is shared: absolute figures are noisy, ratios less so.",
          "- Windows: the suite needs a Windows machine with Google Benchmark; no Windows figures here", "",
          "## Targets", "", "| target | what | measured | result |", "|---|---|---|---|"]
    for tid, text, measured, verdict in rep.targets:
        md.append(f"| {tid} | {text} | {measured} | {verdict} |")
    fails = [t[0] for t in rep.targets if t[3] == "FAIL"]
    unmeasured = [t[0] for t in rep.targets if t[3] == "NOT MEASURED"]
    summary = []
    if fails:
        summary.append(f"{len(fails)} of {len(rep.targets)} targets FAIL ({', '.join(fails)}): the tables below show "
                       "each miss and where its time goes; no case is tuned to pass.")
    if unmeasured:
        summary.append(f"{len(unmeasured)} NOT MEASURED ({', '.join(unmeasured)}): see 'Not run'.")
    md += ["", " ".join(summary) if summary else "All targets pass.", ""]
    peers = [s for s in rep.sections if s[0] == "Peers"]
    rest = [s for s in rep.sections if s[0] != "Peers"]
    for title, lines in peers:
        md += [f"## {title}", ""] + lines + [""]
    md += ["## What each case measures", "", MEASURES, ""]
    for title, lines in rest:
        md += [f"## {title}", ""] + lines + [""]
    not_run = [f"- FAILED: {n} ({r['error']})" for n, r in rows.items() if "error" in r and r.get("failed")]
    not_run += [f"- FAILED: {f}" for f in failed]
    not_run += [f"- SKIPPED: {n} ({r['error']})" for n, r in rows.items() if "error" in r and not r.get("failed")]
    not_run += [f"- SKIPPED: {s}" for s in skipped]
    absent = sorted(n for n in rep.looked_up if n not in rows)
    if absent:
        not_run.append(f"- MISSING (no result; its run stopped or was filtered out): {', '.join(absent)}")
    if not_run:
        md += ["## Not run", ""] + not_run + [""]
    md.append(f"Plot: {plot}" + ("" if not plot.endswith(".svg") else f"\n\n![bind latency]({plot})"))
    text = "\n".join(md) + "\n"
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
