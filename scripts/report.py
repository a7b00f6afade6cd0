#!/usr/bin/env python3
"""Turns Google Benchmark JSON (aggregates) into report.md and an SVG plot.

Usage: report.py --input results.json --out DIR [--kernel K] [--compiler C] [--build-type T] [--no-plot]
Prints the table to stdout as well.
"""
import argparse
import json
import re
import os
import shutil
import subprocess
import sys


def load_medians(path):
    """name (without /manual_time and aggregate suffix) -> counters and time of the median row."""
    with open(path) as f:
        data = json.load(f)
    rows = {}
    for b in data.get("benchmarks", []):
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        name = re.sub(r"/(manual_time|iterations:\d+|real_time)", "", b.get("run_name", b["name"]))
        if b.get("error_occurred"):
            rows[name] = {"error": b.get("error_message", "error")}
            continue
        row = {k: v for k, v in b.items() if isinstance(v, (int, float))}
        rows[name] = row
    return data.get("context", {}), rows


def fmt(v, unit="us"):
    if v is None:
        return "n/a"
    if unit == "us":
        return f"{v:.3f} us" if v < 10 else f"{v:.1f} us"
    if unit == "/s":
        return f"{v:,.0f}/s"
    return f"{v}"


class Report:
    def __init__(self, rows):
        self.rows = rows
        self.lines = []   # table rows
        self.targets = []  # (id, text, measured, pass)

    def get(self, name, key):
        r = self.rows.get(name)
        if not r or "error" in r:
            return None
        return r.get(key)

    def row(self, case, median, p99, baseline_name, ratio, target="", ok=None):
        verdict = "" if ok is None else ("PASS" if ok else "FAIL")
        self.lines.append((case, median, p99, baseline_name, ratio, target, verdict))

    def target(self, tid, text, measured, ok):
        self.targets.append((tid, text, measured, ok))


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def build(rows):
    rep = Report(rows)
    levels = [0, 50, 90, 99]
    layouts = ["random", "clustered"]

    # Case 1: bind latency.
    p1a_ok, p1a_worst = True, 0.0
    for layout in layouts:
        for lvl in levels:
            base = f"bind/explicit/{layout}/occupancy:{lvl}"
            b50 = rep.get(base, "p50_us")
            for method in ["explicit", "ephemeral", "portres"]:
                name = f"bind/{method}/{layout}/occupancy:{lvl}"
                p50, p99 = rep.get(name, "p50_us"), rep.get(name, "p99_us")
                r = ratio(p50, b50)
                target, ok = "", None
                if method == "portres" and r is not None:
                    target, ok = "<= 1.5x explicit (P1)", r <= 1.5
                    p1a_ok &= ok
                    p1a_worst = max(p1a_worst, r)
                rep.row(name, fmt(p50), fmt(p99), "explicit" if method != "explicit" else "-",
                        f"{r:.2f}x" if r is not None and method != "explicit" else "-", target, ok)
    rep.target("P1a", "portres::bind p50 <= 1.5x raw explicit bind (every occupancy and layout)",
               f"worst {p1a_worst:.2f}x", p1a_ok)
    p1b = []
    for layout in layouts:
        r = ratio(rep.get(f"bind/portres/{layout}/occupancy:99", "p50_us"),
                  rep.get(f"bind/portres/{layout}/occupancy:0", "p50_us"))
        p1b.append(r)
    ok = all(r is not None and r <= 1.3 for r in p1b)
    rep.target("P1b", "portres::bind p50 at 99 % occupancy <= 1.3x its p50 at 0 %",
               ", ".join(f"{l} {r:.2f}x" if r else f"{l} n/a" for l, r in zip(layouts, p1b)), ok)

    # Case 2: connect.
    for layout in layouts:
        for lvl in levels:
            base = f"connect/autobind/{layout}/occupancy:{lvl}"
            for method in ["autobind", "pooled"]:
                name = f"connect/{method}/{layout}/occupancy:{lvl}"
                p50, p99 = rep.get(name, "p50_us"), rep.get(name, "p99_us")
                r = ratio(p50, rep.get(base, "p50_us"))
                rep.row(name, fmt(p50), fmt(p99), "autobind" if method == "pooled" else "-",
                        f"{r:.2f}x" if r is not None and method == "pooled" else "-")

    # Case 3: pool.
    sync50 = rep.get("pool/get_sync", "p50_us")
    async50 = rep.get("pool/get_async", "p50_us")
    rep.row("pool/get_sync", fmt(sync50), fmt(rep.get("pool/get_sync", "p99_us")), "-", "-",
            "p50 <= 0.25 us (P2)", sync50 is not None and sync50 <= 0.25)
    rep.row("pool/get_async", fmt(async50), fmt(rep.get("pool/get_async", "p99_us")), "-", "-",
            "p50 <= 1 us (P2)", async50 is not None and async50 <= 1.0)
    rep.target("P2", "pool get with stock p50 <= 0.25 us sync, <= 1 us through the io_context",
               f"sync {fmt(sync50)}, async {fmt(async50)}",
               sync50 is not None and async50 is not None and sync50 <= 0.25 and async50 <= 1.0)

    # Case 4: lifecycle.
    ls = rep.get("lifecycle/acquire_associate_release/sync", "p50_us")
    la = rep.get("lifecycle/acquire_associate_release/async", "p50_us")
    rep.row("lifecycle/acquire_associate_release/sync", fmt(ls),
            fmt(rep.get("lifecycle/acquire_associate_release/sync", "p99_us")), "-", "-", "p50 <= 10 us (P4)",
            ls is not None and ls <= 10)
    rep.row("lifecycle/acquire_associate_release/async", fmt(la),
            fmt(rep.get("lifecycle/acquire_associate_release/async", "p99_us")), "sync",
            f"+{la - ls:.2f} us" if la is not None and ls is not None else "-", "<= sync + 1 us (P4)",
            la is not None and ls is not None and la - ls <= 1.0)
    rep.target("P4", "acquire + associate + release <= 10 us; async adds <= 1 us",
               f"sync {fmt(ls)}, async {fmt(la)}",
               ls is not None and la is not None and ls <= 10 and la - ls <= 1.0)
    a1 = rep.get("lifecycle/acquire/ports:1", "p50_us")
    for n in [1, 16, 256, 4096, 16384]:
        name = f"lifecycle/acquire/ports:{n}"
        p50 = rep.get(name, "p50_us")
        r = ratio(p50, a1)
        target, ok = ("<= 2x 1 port (P5)", r is not None and r <= 2.0) if n == 16384 else ("", None)
        rep.row(name, fmt(p50), fmt(rep.get(name, "p99_us")), "ports:1" if n != 1 else "-",
                f"{r:.2f}x" if r is not None and n != 1 else "-", target, ok)
    r5 = ratio(rep.get("lifecycle/acquire/ports:16384", "p50_us"), a1)
    rep.target("P5", "acquire cost for 16,384 ports <= 2x the cost for 1 port",
               f"{r5:.2f}x" if r5 else "n/a", r5 is not None and r5 <= 2.0)

    # Case 5: churn.
    for mode in ["paced", "flat_out"]:
        base = f"churn/autobind/{mode}"
        for method in ["autobind", "portres_lru"]:
            name = f"churn/{method}/{mode}"
            rate = rep.get(name, "connects_per_s")
            fails = rep.get(name, "failures")
            r = ratio(rate, rep.get(base, "connects_per_s"))
            rep.row(f"{name} (rate {fmt(rate, '/s')}, failures {fails:.0f})" if rate is not None else name,
                    fmt(rep.get(name, "p50_us")), fmt(rep.get(name, "p99_us")),
                    "autobind" if method != "autobind" else "-",
                    f"{r:.2f}x rate" if r is not None and method != "autobind" else "-")
    paced = "churn/portres_lru/paced"
    rate, fails, p99 = rep.get(paced, "connects_per_s"), rep.get(paced, "failures"), rep.get(paced, "p99_us")
    target_rate = rep.get(paced, "target_per_s")
    flat_ratio = ratio(rep.get("churn/portres_lru/flat_out", "connects_per_s"),
                       rep.get("churn/autobind/flat_out", "connects_per_s"))
    ok = (rate is not None and target_rate is not None and rate >= 0.99 * target_rate and fails == 0
          and flat_ratio is not None and flat_ratio >= 1.5 and p99 is not None and p99 <= 50)
    rep.target("P3", "churn (client closes first), B ports each: portres LRU sustains >= 90 % of B per reuse "
               "interval with 0 failures, >= 1.5x autobind's rate, connect p99 <= 50 us",
               (f"paced {fmt(rate, '/s')} of {fmt(target_rate, '/s')}, failures {fails:.0f}, p99 {fmt(p99)}; "
                f"flat-out rate {flat_ratio:.1f}x autobind") if rate is not None and flat_ratio else "n/a", ok)
    return rep


def write_plot(rows, out_dir):
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        return "gnuplot not found: no plot"
    levels = [0, 50, 90, 99]
    series = []
    for method in ["explicit", "ephemeral", "portres"]:
        for layout in ["random", "clustered"]:
            pts = []
            for lvl in levels:
                r = rows.get(f"bind/{method}/{layout}/occupancy:{lvl}") or {}
                if "p50_us" in r:
                    pts.append((lvl, r["p50_us"]))
            if pts:
                series.append((f"{method} ({layout})", pts))
    if not series:
        return "no bind data: no plot"
    data_path = os.path.join(out_dir, "bind_latency.dat")
    with open(data_path, "w") as f:
        for title, pts in series:
            f.write(f"# {title}\n")
            for x, y in pts:
                f.write(f"{x} {y}\n")
            f.write("\n\n")
    plots = ", ".join(f"'{data_path}' index {i} with linespoints lw 2 title '{t}'" for i, (t, _) in enumerate(series))
    script = f"""
set terminal svg size 900,560 dynamic font 'sans,12'
set output '{os.path.join(out_dir, "bind_latency.svg")}'
set title 'bind() latency (p50) against occupancy of the ephemeral range'
set xlabel 'occupancy of the ephemeral range (%)'
set ylabel 'p50 latency (us, log scale)'
set logscale y
set grid
set key top left
set xtics (0, 50, 90, 99)
plot {plots}
"""
    subprocess.run([gnuplot], input=script, text=True, check=True)
    return "bind_latency.svg"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--kernel", default=os.uname().release)
    ap.add_argument("--compiler", default="unknown")
    ap.add_argument("--build-type", default="Release")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    context, rows = load_medians(args.input)
    rep = build(rows)
    plot = "plot skipped" if args.no_plot else write_plot(rows, args.out)

    md = ["# portres benchmark report", ""]
    md.append(f"- machine: {context.get('host_name', '?')}, {context.get('num_cpus', '?')} CPUs "
              f"at {context.get('mhz_per_cpu', '?')} MHz")
    md.append(f"- kernel: {args.kernel}")
    md.append(f"- compiler: {args.compiler}")
    md.append(f"- build type: {args.build_type}")
    md.append(f"- date: {context.get('date', '?')}")
    md.append(f"- occupancy: {context.get('occupancy_method', '?')}")
    md.append(f"- ephemeral range during the runs: {context.get('ephemeral_range', '?')}")
    md.append("- figures: medians over the repetitions of per-operation p50/p99 (microseconds); "
              "ratios are against the baseline measured in the same run")
    md.append("- Windows: the same suite needs a Windows machine with Google Benchmark; no Windows figures here")
    md.append("")
    md.append("## Targets")
    md.append("")
    md.append("| target | what | measured | result |")
    md.append("|---|---|---|---|")
    for tid, text, measured, ok in rep.targets:
        md.append(f"| {tid} | {text} | {measured} | {'PASS' if ok else 'FAIL'} |")
    md.append("")
    md.append("## All cases")
    md.append("")
    md.append("| case | p50 (median) | p99 | baseline | ratio | target | result |")
    md.append("|---|---|---|---|---|---|---|")
    for line in rep.lines:
        md.append("| " + " | ".join(line) + " |")
    errors = [n for n, r in rows.items() if "error" in r]
    if errors:
        md.append("")
        md.append("Cases that did not run: " + "; ".join(f"{n} ({rows[n]['error']})" for n in errors))
    md.append("")
    md.append(f"Plot: {plot}" + ("" if not plot.endswith(".svg") else f"\n\n![bind latency]({plot})"))
    text = "\n".join(md) + "\n"
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
