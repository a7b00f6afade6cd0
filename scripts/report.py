#!/usr/bin/env python3
"""Turns the benchmark results into report.md and an SVG plot.

Usage: report.py --input results.json --out DIR [--syscalls syscalls.json] [--peers peers.json]
                 [--kernel K] [--compiler C] [--build-type T] [--wall-seconds S] [--skipped TEXT]... [--no-plot]
results.json is Google Benchmark JSON (median aggregates, or single runs for
cases with one repetition). Prints the report to stdout as well.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys

FOREIGN_LEVELS = [0, 50, 90, 99]
OWN_LEVELS = [0, 500, 900, 990, 999]
POLICIES = ["sequential", "lru", "random"]
CLIENTS = ["autobind", "explicit", "pool"]
CHURN = ["autobind", "explicit"] + [f"pool_{p}" for p in POLICIES]


def load_medians(path):
    """name (without /manual_time etc.) -> numeric fields of its median row (or its only run)."""
    with open(path) as f:
        data = json.load(f)
    rows = {}
    for b in data.get("benchmarks", []):
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        name = re.sub(r"/(manual_time|iterations:\d+|repeats:\d+|real_time)", "", b.get("run_name", b["name"]))
        if b.get("error_occurred") or b.get("skipped"):
            rows[name] = {"error": b.get("error_message", b.get("skip_message", "error"))}
            continue
        rows[name] = {k: v for k, v in b.items() if isinstance(v, (int, float))}
    return data.get("context", {}), rows


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


def verdict(ok):
    return "PASS" if ok else "FAIL"


class Report:
    def __init__(self, rows, syscalls, peers):
        self.rows, self.syscalls, self.peers = rows, syscalls or {}, peers or {}
        self.targets = []
        self.sections = []

    def get(self, name, key):
        r = self.rows.get(name)
        if not r or "error" in r:
            return None
        return r.get(key)

    def target(self, tid, text, measured, ok):
        self.targets.append((tid, text, measured, ok))

    def section(self, title, lines):
        self.sections.append((title, lines))

    def tails(self, name, prefix=""):
        n = self.get(name, f"{prefix}samples")
        return [us(self.get(name, f"{prefix}{k}_us")) for k in ["p50", "p99", "p999", "max", "mean"]] + [
            "n/a" if n is None else f"{n:.0f}"]

    def failures(self, name):
        r = self.rows.get(name) or {}
        kinds = {k[5:]: v for k, v in r.items() if k.startswith("fail_") and v}
        total = r.get("failures")
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

    worst = {}
    parts = []
    ok = True
    for p in POLICIES:
        r0 = ratio(rep.get(f"own/portres_{p}/fullness:0", "p50_us"), rep.get("own/explicit/fullness:0", "p50_us"))
        r9 = ratio(rep.get(f"own/portres_{p}/fullness:999", "p50_us"), rep.get("own/explicit/fullness:999", "p50_us"))
        ok &= r0 is not None and r0 <= 1.5 and r9 is not None and r9 <= 2.0
        parts.append(f"{p} {x(r0)} / {x(r9)}")
        worst[p] = (r0, r9)
    e9 = ratio(rep.get("own/ephemeral/fullness:999", "p50_us"), rep.get("own/explicit/fullness:999", "p50_us"))
    ok &= e9 is not None and e9 >= 10
    rep.target("P1", "associate+bind p50 <= 1.5x the hand-written explicit bind at 0 % own fullness and <= 2x at "
               "99.9 %, while bind(0) at the same fullness is >= 10x slower",
               "portres at 0 % / 99.9 %: " + ", ".join(parts) + f"; bind(0) at 99.9 %: {x(e9)}", ok)


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
                if name not in rep.rows:
                    continue
                label = ("&nbsp;&nbsp;└ " if m == "portres_bind_only" else "") + name
                lines.append(f"| {label} | " + " | ".join(rep.tails(name)) +
                             f" | {'-' if m == 'explicit' else x(ratio(rep.get(name, 'p50_us'), base))} | "
                             f"{rep.failures(name)} |")
    rep.section("Whole per-socket cost against foreign occupancy of the ephemeral range", lines)


def connect_section(rep):
    sc = rep.syscalls
    lines = ["One connection as its user pays for it, same loop and same server for the three clients "
             "(see 'What each case measures'). Latency columns: the whole timed region; 'until connected': p50 from "
             "the start until connect() returned. CPU: the calling thread's CPU time per connection (getrusage). "
             "System calls: strace on a fixed-count run at 0 % occupancy.", "",
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
    cpu_ratios = [ratio(rep.get(f"connect/pool/occupancy:{l}", "cpu_us_per_conn"),
                        rep.get(f"connect/autobind/occupancy:{l}", "cpu_us_per_conn")) for l in FOREIGN_LEVELS]
    known = [r for r in cpu_ratios if r is not None]
    worst_cpu = max(known) if known else None
    ok = (s_pool is not None and s_exp is not None and s_pool <= s_exp and worst_cpu is not None and worst_cpu <= 1.0
          and len(known) == len(cpu_ratios))
    rep.target("P6", "pool: system calls per connection <= the explicit-bind floor's; CPU per connection <= autobind's",
               f"syscalls pool {'n/a' if s_pool is None else f'{s_pool:.2f}'} vs explicit "
               f"{'n/a' if s_exp is None else f'{s_exp:.2f}'}; CPU pool/autobind worst over occupancy {x(worst_cpu)}", ok)


def churn_section(rep):
    floor = rep.get("churn/explicit", "connects_per_s")
    auto = rep.get("churn/autobind", "connects_per_s")
    secs = rep.get("churn/explicit", "real_time")
    lines = ["Client closes first (each connection leaves TIME_WAIT on the client's port), 1,000 ports per method, "
             "flat out, default sysctls (tcp_tw_reuse 2, tcp_timestamps 1, as read back in the namespace). "
             "Failures are connect() errors by errno.", "",
             "| method | rate | vs explicit floor | vs autobind | connect p50 | p99.9 | max | failures | sysctls |",
             "|---|---|---|---|---|---|---|---|---|"]
    for m in CHURN:
        name = f"churn/{m}"
        r = rep.get(name, "connects_per_s")
        tw, ts = rep.get(name, "tcp_tw_reuse"), rep.get(name, "tcp_timestamps")
        lines.append(f"| {m} | {rate(r)} | {x(ratio(r, floor))} | {x(ratio(r, auto), 1)} | {us(rep.get(name, 'p50_us'))} | "
                     f"{us(rep.get(name, 'p999_us'))} | {us(rep.get(name, 'max_us'))} | {rep.failures(name)} | "
                     f"{'n/a' if tw is None else f'tw_reuse {tw:.0f}, timestamps {ts:.0f}'} |")
    lines += ["", "Mechanism: the win over autobind is the kernel's, not the pool's. A socket bound explicitly with "
              "SO_REUSEADDR may take over a port whose previous connection to the same peer is in TIME_WAIT: with TCP "
              "timestamps on, connect() accepts the new 4-tuple at once (tcp_tw_reuse only governs autobind, which "
              "by default on loopback reuses a TIME_WAIT port only after 1 s). Autobind therefore runs out of its "
              "1,000 ports and fails with EADDRNOTAVAIL, while any client that binds explicitly with SO_REUSEADDR "
              "reaches the same rate as the pool: the hand-written explicit-bind client is the floor a pool has to "
              "match. A port whose previous connection is still in FIN_WAIT (not yet TIME_WAIT) fails at connect() "
              "with EADDRNOTAVAIL even so; with timestamps off the explicit client falls to a few hundred "
              "connections per second."]
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
               "floor, >= 40x autobind, zero connect failures", "; ".join(parts) + note, ok)


def pool_section(rep):
    lines = [f"| case | {TAIL_HEAD} |", "|---|---|---|---|---|---|---|"]
    for name, prefix, label in [("pool/get_sync", "", "pool/get_sync (try_get)"),
                                ("pool/get_sync", "cycle_", "&nbsp;&nbsp;└ cycle: get + return + refill (io.poll)"),
                                ("pool/get_async", "", "pool/get_async (call until handler)")]:
        lines.append(f"| {label} | " + " | ".join(rep.tails(name, prefix)) + " |")
    rep.section("Pool get", lines)
    s50 = rep.get("pool/get_sync", "p50_us")
    a50, a999, amax = (rep.get("pool/get_async", k) for k in ["p50_us", "p999_us", "max_us"])
    ok = (None not in (s50, a50, a999, amax)) and s50 <= 0.25 and a50 <= 1 and a999 <= 5 and amax <= 100
    rep.target("P2", "pool get: sync p50 <= 0.25 us; async p50 <= 1 us, p99.9 <= 5 us, max <= 100 us",
               f"sync p50 {us(s50)}; async p50 {us(a50)}, p99.9 {us(a999)}, max {us(amax)}", ok)


def acquire_section(rep):
    lines = [f"| case | {TAIL_HEAD} | vs baseline | failures |", "|---|---|---|---|---|---|---|---|---|"]
    base = rep.get("acquire/live/reservations:0", "p50_us")
    for n in [0, 100, 1000]:
        name = f"acquire/live/reservations:{n}"
        held = rep.get(name, "live_reservations")
        lines.append(f"| {name} (held: {'n/a' if held is None else f'{held:.0f}'}) | " + " | ".join(rep.tails(name)) +
                     f" | {'-' if n == 0 else x(ratio(rep.get(name, 'p50_us'), base)) + ' live:0'} | {rep.failures(name)} |")
    lines.append("| acquire/async_initiation (the initiating call) | " + " | ".join(rep.tails("acquire/async_initiation")) +
                 f" | - | {rep.failures('acquire/async_initiation')} |")
    lines.append("| &nbsp;&nbsp;└ until the handler ran | " + " | ".join(rep.tails("acquire/async_initiation", "complete_")) +
                 " | - | - |")
    one = rep.get("lifecycle/acquire/ports:1", "p50_us")
    for n in [1, 16, 256, 4096, 16384]:
        name = f"lifecycle/acquire/ports:{n}"
        lines.append(f"| {name} | " + " | ".join(rep.tails(name)) +
                     f" | {'-' if n == 1 else x(ratio(rep.get(name, 'p50_us'), one)) + ' ports:1'} | - |")
    for name in ["lifecycle/acquire_associate_release/sync", "lifecycle/acquire_associate_release/async"]:
        lines.append(f"| {name} | " + " | ".join(rep.tails(name)) + " | - | - |")
    rep.section("Acquire", lines)
    l1000 = ratio(rep.get("acquire/live/reservations:1000", "p50_us"), base)
    init = rep.get("acquire/async_initiation", "p50_us")
    ok = None not in (base, l1000, init) and base <= 25 and l1000 <= 1.5 and init <= 5
    rep.target("P4", "acquire p50 <= 25 us, 1,000 live vs none <= 1.5x; async_acquire initiating call <= 5 us",
               f"p50 {us(base)}; 1,000 live {x(l1000)}; initiating call p50 {us(init)}", ok)
    r5 = ratio(rep.get("lifecycle/acquire/ports:16384", "p50_us"), one)
    rep.target("P5", "acquire cost for 16,384 ports <= 2x for 1 port", x(r5), r5 is not None and r5 <= 2.0)


def peers_section(rep):
    p = rep.peers
    lines = []
    if not p:
        rep.section("Peers", ["Not run (see 'Not run')."])
        rep.target("P7", "peers: loadgen >= ab req/s; gateway (pool) >= nginx proxy_pass req/s at both ranges, CPU "
                   "per request <= gateway in ephemeral mode", "not run", False)
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
                     f"{'-' if r is None and who == 'ab' else x_of(r) + ' ab'} | {fails(runs, who)} | "
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
                         f"{'-' if who == 'nginx_proxy' else x_of(r) + ' nginx'} | {fails(d['runs'], who)} | "
                         f"{us(med(d['runs'], who, 'proxy_cpu_us_per_req'))} (proxy) |")
    rep.section("Peers", lines)
    lg = cl.get("loadgen_vs_ab")
    ok = lg is not None and lg >= 1.0
    parts = [f"loadgen {x_of(lg)} ab"]
    for label in ["default", "narrow_1000"]:
        d = pr.get(label, {})
        pv, cv = d.get("pool_vs_nginx"), d.get("pool_cpu_vs_ephemeral_cpu")
        ok &= pv is not None and pv >= 1.0 and cv is not None and cv <= 1.0
        parts.append(f"{label}: gateway(pool) {x_of(pv)} nginx, CPU/req {x_of(cv)} gateway(ephemeral)")
    rep.target("P7", "peers: loadgen >= ab req/s; gateway (pool) >= nginx proxy_pass req/s at both ranges, CPU per "
               "request <= gateway in ephemeral mode", "; ".join(parts), ok)


def x_of(v):
    return x(v)


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
| connect/pool | try_get (waiting if empty) + connect() + abortive close + the pool's refill work (io.poll: socket, associate, bind) | pool warm-up before the loop |
| connect CPU | the calling thread's CPU (getrusage RUSAGE_THREAD) over the loop, per connection | the server thread |
| connect syscalls | every system call of the client process during N connections (strace -c -f -p) | setup, the server process |
| churn/* | the whole run: ready a socket, connect, close (client first); p50/p99.9/max: start until connected | - |
| pool/get_sync | try_get | returning the socket and refill (cycle_* rows include them) |
| pool/get_async | async_get call until its handler ran (refill work the io_context runs meanwhile included) | returning the socket |
| acquire/live | portres::acquire of 16 ports with N reservations held by other processes | release; the children's acquires |
| acquire/async_initiation | the async_acquire call itself (until it returns) | the operation's completion (shown separately) |
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
    ap.add_argument("--input", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--syscalls")
    ap.add_argument("--peers")
    ap.add_argument("--kernel", default=os.uname().release)
    ap.add_argument("--compiler", default="unknown")
    ap.add_argument("--build-type", default="Release")
    ap.add_argument("--wall-seconds", type=int)
    ap.add_argument("--skipped", action="append", default=[])
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    context, rows = load_medians(args.input)
    skipped = list(args.skipped)
    rep = Report(rows, load_json(args.syscalls, skipped, "syscalls"), load_json(args.peers, skipped, "peers"))
    own_section(rep)
    pool_section(rep)
    churn_section(rep)
    acquire_section(rep)
    connect_section(rep)
    peers_section(rep)
    foreign_section(rep)
    plot = "plot skipped" if args.no_plot else write_plot(rows, args.out)
    rep.targets.sort(key=lambda t: t[0])

    md = ["# portres benchmark report", "",
          f"- machine: {context.get('host_name', '?')}, {context.get('num_cpus', '?')} CPUs at "
          f"{context.get('mhz_per_cpu', '?')} MHz; kernel {args.kernel}; {args.compiler}; {args.build_type}",
          f"- date: {context.get('date', '?')}" + (f"; whole run {args.wall_seconds} s" if args.wall_seconds else ""),
          f"- environment: {context.get('occupancy_method', '?')}",
          "- figures: per-operation p50/p99/p99.9/max/mean from per-iteration samples (samples: how many, per "
          "repetition; a tail of few samples is its max), medians over the repetitions; every ratio compares figures measured in the same run. The machine is shared: "
          "absolute figures are noisy, ratios less so.",
          "- Windows: the suite needs a Windows machine with Google Benchmark; no Windows figures here", "",
          "## Targets", "", "| target | what | measured | result |", "|---|---|---|---|"]
    for tid, text, measured, ok in rep.targets:
        md.append(f"| {tid} | {text} | {measured} | {verdict(ok)} |")
    failed = [t[0] for t in rep.targets if not t[3]]
    md += ["", (f"{len(failed)} of {len(rep.targets)} targets FAIL ({', '.join(failed)}): the tables below show "
                "each miss and where its time goes; no case is tuned to pass.") if failed else
           "All targets pass.", ""]
    peers = [s for s in rep.sections if s[0] == "Peers"]
    rest = [s for s in rep.sections if s[0] != "Peers"]
    for title, lines in peers:
        md += [f"## {title}", ""] + lines + [""]
    md += ["## What each case measures", "", MEASURES, ""]
    for title, lines in rest:
        md += [f"## {title}", ""] + lines + [""]
    errors = [f"{n} ({r['error']})" for n, r in rows.items() if "error" in r]
    if errors or skipped:
        md += ["## Not run", ""] + [f"- SKIPPED: {e}" for e in errors + skipped] + [""]
    md.append(f"Plot: {plot}" + ("" if not plot.endswith(".svg") else f"\n\n![bind latency]({plot})"))
    text = "\n".join(md) + "\n"
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
