#!/usr/bin/env python3
"""Peers: portres' samples against the tools a user would pick instead.

Must run inside a private network namespace (scripts/bench starts it with
`unshare -n`): it brings loopback up, narrows ip_local_port_range for the
1,000-port runs, and runs nginx and HAProxy there with private configurations
(no daemon, pid and logs in a temporary directory), killed at the end.

  clients, one request per connection, against nginx serving a small page:
    single-threaded: loadgen (pool) vs ab and vs httperf (open loop: each round
    offers it 0.8-1.8x ab's rate of that round, and its best reply rate with at
    most 1 % errors counts); two threads: loadgen --threads 2 vs
    wrk -t2 -H "Connection: close"; wrk keep-alive (-t1) as a reference.
  proxies, driven by ab: gateway (pool) vs gateway (ephemeral) vs nginx
    proxy_pass vs HAProxy 2.6 (one thread, `source 127.0.0.1:LOW-HIGH` per
    server, a new upstream connection per request as the others), to 1 and 4
    upstreams (nginx on 4 ports), at the default range (gateway block and
    HAProxy range 4,096 ports) and with 1,000 ports (ip_local_port_range
    narrowed to 1,000 ports, gateway --block 1000, HAProxy 1,000 ports per server).
Methods alternate within each round (A B A B); a ratio is the median of the
per-round ratios. Every run is bounded in time (-t/--duration) and count.
Usage: peers.py --loadgen BIN --gateway BIN --out FILE [--rounds R] [--seconds S]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from peerlib import (bring_up_loopback, children_cpu, cpu_seconds, haproxy_version, loadgen_json, median, ratio,
                     read_range, run_client, set_range, spawn, start_haproxy, start_nginx, stop, wait_port)

UPSTREAMS = [18090, 18091, 18092, 18093]
NGINX_PROXY = {1: 18081, 4: 18082}
HAPROXY = {1: 18083, 4: 18084}
GATEWAY_PORTS = {("pool", 1): 18085, ("pool", 4): 18086, ("ephemeral", 1): 18087, ("ephemeral", 4): 18088}
CONCURRENCY = 32
HAPROXY_FIRST = 20000  # its source ranges: below the default ephemeral range, away from the gateway's blocks
HTTPERF_STEPS = [0.8, 1.1, 1.4, 1.8]
RANGES = [("default", None, 4096), ("narrow_1000", ("40000", "40999"), 1000)]


UNIT_US = {"us": 1.0, "ms": 1000.0, "s": 1e6}


def ab_tails(out):
    """ab's request latency tail in microseconds: its 99 % and 100 % (longest) rows, whole milliseconds."""
    p99 = re.search(r"^\s*99%\s+(\d+)", out, re.M)
    top = re.search(r"^\s*100%\s+(\d+)", out, re.M)
    return {"p99": int(p99.group(1)) * 1000.0, "max": int(top.group(1)) * 1000.0} if p99 and top else None


def wrk_tails(out):
    """wrk --latency's request latency tail in microseconds: the 99 % row and the threads' max."""
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\b", out, re.M)
    top = re.search(r"Latency\s+[\d.]+(?:us|ms|s)\s+[\d.]+(?:us|ms|s)\s+([\d.]+)(us|ms|s)\b", out)
    if not p99 or not top:
        return None
    return {"p99": float(p99.group(1)) * UNIT_US[p99.group(2)], "max": float(top.group(1)) * UNIT_US[top.group(2)]}


def ab(url, seconds):
    with children_cpu() as c:
        out = run_client(["ab", "-q", "-r", "-s", "5", "-t", str(seconds), "-n", "2000000", "-c", str(CONCURRENCY), url],
                         seconds + 30)
    m = re.search(r"Complete requests:\s+(\d+)", out)
    t = re.search(r"Time taken for tests:\s+([\d.]+)", out)
    failed = re.search(r"Failed requests:\s+(\d+)", out)
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    if not m or not t:
        return {"error": "ab: " + out[-300:]}
    done = int(m.group(1))
    fails = (int(failed.group(1)) if failed else 0) + (int(non2xx.group(1)) if non2xx else 0)
    return {"requests": done, "seconds": float(t.group(1)), "rps": (done - fails) / float(t.group(1)),
            "failures": fails, "client_cpu_s": c.seconds, "latency_us": ab_tails(out)}


def loadgen(binary, port, seconds, threads=1):
    with children_cpu() as c:
        out = run_client([binary, "--target", f"127.0.0.1:{port}", "--http", "--close", "server", "--concurrency",
                          str(CONCURRENCY), "--threads", str(threads), "--duration", str(seconds), "--ports", "pool",
                          "--json"], seconds + 30)
    j = loadgen_json(out)
    if not j:
        return {"error": "loadgen: " + out[-300:]}
    return {"requests": j["connections"], "seconds": j["seconds"], "rps": j["connections_per_s"],
            "failures": j["errors"], "failures_by_kind": j.get("errors_by_kind", {}), "client_cpu_s": c.seconds,
            "latency_us": j.get("request_us")}


def wrk(url, seconds, threads=1, close=False):
    cmd = ["wrk", f"-t{threads}", f"-c{CONCURRENCY}", f"-d{seconds}s", "--timeout", "5s", "--latency"]
    with children_cpu() as c:
        out = run_client(cmd + (["-H", "Connection: close"] if close else []) + [url], seconds + 30)
    m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    if not m:
        return {"error": "wrk: " + out[-300:]}
    secs = float(m.group(2)) / (1000 if m.group(3) == "ms" else 1)
    errs = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    fails = errs + (int(non2xx.group(1)) if non2xx else 0)
    return {"requests": int(m.group(1)), "seconds": secs, "rps": int(m.group(1)) / secs, "failures": fails,
            "client_cpu_s": c.seconds, "latency_us": wrk_tails(out)}


def httperf_once(port, seconds, offered):
    # Not --hog: that binds ports explicitly all over 1024-65535, and the
    # TIME_WAIT it leaves there would keep the samples' blocks from being placed.
    with children_cpu() as c:
        out = run_client(["httperf", "--server", "127.0.0.1", "--port", str(port), "--uri", "/", "--rate",
                          str(offered), "--num-conns", str(offered * seconds), "--timeout", "5"], seconds + 30)
    total = re.search(r"Total: connections (\d+) requests (\d+) replies (\d+) test-duration ([\d.]+) s", out)
    ok = re.search(r"Reply status: 1xx=\d+ 2xx=(\d+)", out)
    errors = re.search(r"Errors: total (\d+)", out)
    if not total or not ok or not errors:
        return {"error": "httperf: " + out[-300:]}
    secs = float(total.group(4))
    return {"offered": offered, "requests": int(ok.group(1)), "seconds": secs, "rps": int(ok.group(1)) / secs,
            "failures": int(errors.group(1)) + int(total.group(3)) - int(ok.group(1)),
            "attempted": offered * seconds, "client_cpu_s": c.seconds}


def httperf(port, seconds, anchor):
    """httperf offers a fixed rate (open loop): a few steps around `anchor`
    (ab's rate this round); its best reply rate with at most 1 % errors (else
    its best) is its figure, the steps are kept."""
    if not anchor:
        return {"error": "httperf: no ab rate this round to offer around"}
    step = max(1, seconds // 2)  # four steps: each half as long as a run (at least 1 s) keeps the round short
    steps = [httperf_once(port, step, max(1, int(anchor * k))) for k in HTTPERF_STEPS]
    done = [s for s in steps if "rps" in s]
    if not done:
        return {"error": steps[-1]["error"], "steps": steps}
    clean = [s for s in done if s["failures"] <= 0.01 * s["attempted"]]
    best = dict(max(clean or done, key=lambda s: s["rps"]))
    best["steps"] = steps
    best["at_top_step"] = best["offered"] == steps[-1].get("offered") and best["failures"] == 0
    return best


def clients(a, result):
    url = f"http://127.0.0.1:{UPSTREAMS[0]}/"
    for r in range(a.rounds):
        run = {"ab": ab(url, a.seconds)}
        run["loadgen"] = loadgen(a.loadgen, UPSTREAMS[0], a.seconds)
        run["httperf"] = httperf(UPSTREAMS[0], a.seconds, run["ab"].get("rps"))
        run["loadgen_t2"] = loadgen(a.loadgen, UPSTREAMS[0], a.seconds, threads=2)
        run["wrk_t2_close"] = wrk(url, a.seconds, threads=2, close=True)
        run["wrk"] = wrk(url, a.seconds)
        result["clients"]["runs"].append(run)
        print(f"peers round {r + 1}: " + ", ".join(f"{k} {v.get('rps', 0):,.0f}/s" for k, v in run.items()), flush=True)
    runs = result["clients"]["runs"]
    for key, (x, y) in {"loadgen_vs_ab": ("loadgen", "ab"), "loadgen_vs_httperf": ("loadgen", "httperf"),
                        "loadgen_t2_vs_wrk_t2_close": ("loadgen_t2", "wrk_t2_close"), "wrk_vs_ab": ("wrk", "ab")}.items():
        result["clients"][key] = median([ratio(run[x], run[y]) for run in runs])


def start_proxies(a, tmp, label, block, n):
    """The gateways and HAProxy for one setting, one of each at a time so the
    pool's block fits outside the ephemeral range (the nginx proxy lives for the whole run)."""
    procs, servers = [], {}
    try:
        for mode in ["pool", "ephemeral"]:
            port = GATEWAY_PORTS[(mode, n)]
            cmd = [a.gateway, "--listen", f"127.0.0.1:{port}", "--ports", mode, "--duration", "3600"]
            cmd += [x for u in UPSTREAMS[:n] for x in ("--upstream", f"127.0.0.1:{u}")]
            if mode == "pool":
                cmd += ["--block", str(block)]
            p = spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            procs.append(p)
            try:
                wait_port(port, p)
            except RuntimeError as e:
                raise RuntimeError(f"gateway --ports {mode}: {e}: {p.communicate(timeout=5)[0][-300:].strip()}")
            servers[f"gateway_{mode}"] = (p, port)
        source = f"127.0.0.1:{HAPROXY_FIRST}-{HAPROXY_FIRST + block - 1}"
        hp = start_haproxy(tmp, f"{label}-{n}", "http", 8192, [(HAPROXY[n], [(u, source) for u in UPSTREAMS[:n]])])
        procs.append(hp)
        servers["haproxy"] = (hp, HAPROXY[n])
    except Exception:
        stop(procs)
        raise
    return procs, servers, source


def proxies(a, tmp, result, nginx_proxy, default_range):
    for label, span, block in RANGES:
        span = span or default_range
        set_range(*span)
        for n in (1, 4):
            procs, servers, source = start_proxies(a, tmp, label, block, n)
            servers["nginx_proxy"] = (nginx_proxy, NGINX_PROXY[n])
            try:
                runs = []
                for r in range(a.rounds):
                    run = {}
                    for name in ["nginx_proxy", "gateway_pool", "gateway_ephemeral", "haproxy"]:
                        p, port = servers[name]
                        before = cpu_seconds(p.pid)
                        x = ab(f"http://127.0.0.1:{port}/", a.seconds)
                        x["proxy_cpu_s"] = cpu_seconds(p.pid) - before
                        if x.get("requests"):
                            x["proxy_cpu_us_per_req"] = x["proxy_cpu_s"] * 1e6 / x["requests"]
                        run[name] = x
                    runs.append(run)
                    print(f"peers {label}, {n} upstream(s), round {r + 1}: " + ", ".join(
                        f"{k} {v.get('rps', 0):,.0f}/s" for k, v in run.items()), flush=True)
            finally:
                stop(procs)
            result["proxies"][f"{label}/{n}"] = {
                "range": f"{span[0]}-{span[1]}", "upstreams": n, "gateway_block": block, "haproxy_source": source,
                "runs": runs,
                "pool_vs_nginx": median([ratio(x["gateway_pool"], x["nginx_proxy"]) for x in runs]),
                "pool_vs_haproxy": median([ratio(x["gateway_pool"], x["haproxy"]) for x in runs]),
                "ephemeral_vs_nginx": median([ratio(x["gateway_ephemeral"], x["nginx_proxy"]) for x in runs]),
                "pool_cpu_vs_ephemeral_cpu": median([ratio(x["gateway_pool"], x["gateway_ephemeral"],
                                                           "proxy_cpu_us_per_req") for x in runs])}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=3)
    a = ap.parse_args()
    result = {"rounds": a.rounds, "seconds_per_run": a.seconds, "concurrency": CONCURRENCY,
              "httperf_steps": HTTPERF_STEPS, "clients": {"runs": []}, "proxies": {}}
    procs = []
    default_range = None
    with tempfile.TemporaryDirectory(prefix="portres-peers-") as tmp:
        # The samples' registry lives in this run's own folder, never the host's.
        os.environ["PORTRES_RUNTIME_DIR"] = os.path.join(tmp, "run")
        os.environ["PORTRES_STATE_DIR"] = os.path.join(tmp, "state")
        os.makedirs(os.path.join(tmp, "www"))
        with open(os.path.join(tmp, "www", "index.html"), "w") as f:
            f.write("<html><body>portres peers: a small page</body></html>\n")
        try:
            missing = [t for t in ["nginx", "ab", "wrk", "httperf", "haproxy", "ip"] if not shutil.which(t)] + \
                      [b for b in [a.loadgen, a.gateway] if not os.access(b, os.X_OK)]
            if missing:
                raise RuntimeError("not installed or not built: " + ", ".join(missing))
            bring_up_loopback()
            default_range = read_range()
            result["nginx"] = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
            result["haproxy"] = haproxy_version()
            procs.append(start_nginx(tmp, "upstream", [(UPSTREAMS, f"location / {{ root {tmp}/www; }}")]))
            clients(a, result)
            nginx_proxy = start_nginx(tmp, "proxy", [([NGINX_PROXY[1]], "location / { proxy_pass http://one; }"),
                                                     ([NGINX_PROXY[4]], "location / { proxy_pass http://four; }")],
                                      {"one": UPSTREAMS[:1], "four": UPSTREAMS})
            procs.append(nginx_proxy)
            proxies(a, tmp, result, nginx_proxy, default_range)
        except Exception as e:  # reported in the JSON and the report, not hidden
            result["error"] = str(e)
            print("peers:", e, file=sys.stderr)
        finally:
            if default_range:
                set_range(*default_range)
            stop(procs)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
