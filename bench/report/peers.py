"""Peers (P7): loadgen against ab, httperf and wrk; gateway against nginx
proxy_pass and HAProxy, at two port ranges and with 1 and 4 upstreams."""
import math

from report.common import FIGURE, number, rate, shape_problems, us, x

TARGET = ("peers: loadgen >= ab and >= httperf req/s single-threaded; loadgen --threads 2 >= wrk -t2 with "
          "Connection: close; gateway (pool) >= nginx proxy_pass and >= HAProxy at both ranges and with 4 upstreams, "
          "CPU per request <= gateway in ephemeral mode")
SETTINGS = ["default/1", "default/4", "narrow_1000/1", "narrow_1000/4"]
CLIENT_ROWS = [  # key, threads, label, [(ratio key, against)]
    ("ab", 1, "ab", []),
    ("httperf", 1, "httperf (open loop: best offered rate with <= 1 % errors)", []),
    ("loadgen", 1, "loadgen (pool)", [("loadgen_vs_ab", "ab"), ("loadgen_vs_httperf", "httperf")]),
    ("wrk_t2_close", 2, 'wrk -t2 -H "Connection: close"', []),
    ("loadgen_t2", 2, "loadgen --threads 2 (pool)", [("loadgen_t2_vs_wrk_t2_close", "wrk -t2 close")]),
    ("wrk", 1, "wrk keep-alive (reference, not one request per connection)", [("wrk_vs_ab", "ab")]),
]

# The clients P7 judges (wrk keep-alive is a reference), by short name.
JUDGED_CLIENTS = {"loadgen": "loadgen", "ab": "ab", "httperf": "httperf", "loadgen_t2": "loadgen --threads 2",
                  "wrk_t2_close": "wrk -t2 close"}
PROXIES = [("nginx_proxy", "nginx proxy_pass"), ("haproxy", "HAProxy"), ("gateway_pool", "gateway (pool)"),
           ("gateway_ephemeral", "gateway (ephemeral)")]

# Each round: {client or proxy: its figures}; the figures and ratios the tables compute with or print.
RUN = {"*": {k: FIGURE for k in ["rps", "requests", "client_cpu_s", "proxy_cpu_us_per_req"]}}
CLIENT_RATIOS = ["loadgen_vs_ab", "loadgen_vs_httperf", "loadgen_t2_vs_wrk_t2_close", "wrk_vs_ab"]
PROXY_RATIOS = ["pool_vs_nginx", "pool_vs_haproxy", "ephemeral_vs_nginx", "pool_cpu_vs_ephemeral_cpu"]
SHAPE = {"clients": {"runs": [RUN], **{k: FIGURE for k in CLIENT_RATIOS}},
         "proxies": {"*": {"!": ("runs",), "runs": [RUN], **{k: FIGURE for k in PROXY_RATIOS}}}, "httperf_steps": [float]}


def med(runs, who, key):
    vals = sorted(r[who][key] for r in runs if r.get(who, {}).get(key) is not None)
    return vals[len(vals) // 2] if vals else None


def tails(runs, who):
    """The request latency tail the client measured (p99 and p99.9: medians over rounds; max: the worst round's),
    n/a where the client gives none (ab and wrk: no p99.9)."""
    out = []
    for k in ["p99", "p999", "max"]:
        vals = sorted(v for r in runs for v in [number(latency(r, who).get(k))] if v is not None)
        out.append("n/a" if not vals else us(vals[-1] if k == "max" else vals[len(vals) // 2]))
    return " | ".join(out)


def latency(run, who):
    got = run.get(who, {}).get("latency_us")
    return got if isinstance(got, dict) else {}


def fails(runs, who):
    """Failed requests over the rounds; NaN (never a PASS) when a round's count is not a count."""
    counts = [r[who].get("failures", 0) for r in runs if who in r]
    return sum(number(v) if number(v) is not None else math.nan for v in counts)


def client_cpu(runs, who):
    """The client's median CPU time per request over the rounds, in microseconds."""
    cpu = sorted(r[who]["client_cpu_s"] * 1e6 / r[who]["requests"] for r in runs
                 if r.get(who, {}).get("requests") and r[who].get("client_cpu_s") is not None)
    return cpu[len(cpu) // 2] if cpu else None


def clients_table(p):
    cl = p.get("clients", {})
    runs = cl.get("runs", [])
    lines = ["| threads | client | req/s (median) | ratio (median of rounds) | failures (all rounds) | CPU per request | "
             "p99 | p99.9 | max |", "|---|---|---|---|---|---|---|---|---|"]
    for who, threads, label, against in CLIENT_ROWS:
        ratios = ", ".join(f"{x(cl.get(k))} {name}" for k, name in against) or "-"
        capped = [r for r in runs if r.get(who, {}).get("at_top_step")]
        note = f" (at the top offered rate in {len(capped)} round(s): it may do more)" if capped else ""
        lines.append(f"| {threads} | {label}{note} | {rate(med(runs, who, 'rps'))} | {ratios} | {fails(runs, who)} | "
                     f"{us(client_cpu(runs, who))} (client) | {tails(runs, who)} |")
    return lines


CPU_MARGIN = 0.05  # CPU per request within 5 % either way: the same cost, as far as these figures tell


def cause(label, r, cpu, other, other_cpu):
    """One line on a comparison below 1.0x: what the CPU per request says, and only what it says (its own
    work is the limit only when it spends clearly more CPU per request than the other side)."""
    if cpu is None or other_cpu is None or other_cpu <= 0:
        return f"- {label} {x(r)} {other}: no CPU figures to say why"
    diff = f"{(cpu / other_cpu - 1) * 100:+.1f} %"
    if cpu > (1 + CPU_MARGIN) * other_cpu:
        why = "it spends more CPU per request, so on this shared machine its own work is the limit"
    elif cpu < (1 - CPU_MARGIN) * other_cpu:
        why = "it spends less CPU per request, so its own CPU is not the limit: the server or the shared machine " \
              "set the pace"
    else:
        why = f"CPU per request within {CPU_MARGIN * 100:.0f} % of the other's, so the CPU figures do not explain the miss " \
              "(noise on the shared machine, or a cost outside CPU time)"
    return f"- {label} {x(r)} {other}: CPU per request {us(cpu)} against {us(other_cpu)} ({diff}): {why}"


def misses(p):
    """Why each judged comparison below 1.0x (or CPU above 1.0x) missed, from the CPU figures."""
    cl, out = p.get("clients", {}), []
    runs = cl.get("runs", [])
    for key, a, b, label, other in [("loadgen_vs_ab", "loadgen", "ab", "loadgen", "ab"),
                                    ("loadgen_vs_httperf", "loadgen", "httperf", "loadgen", "httperf"),
                                    ("loadgen_t2_vs_wrk_t2_close", "loadgen_t2", "wrk_t2_close",
                                     "loadgen --threads 2", "wrk -t2")]:
        if cl.get(key) is not None and cl[key] < 1.0:
            out.append(cause(label, cl[key], client_cpu(runs, a), other, client_cpu(runs, b)))
    for key in SETTINGS:
        d = p.get("proxies", {}).get(key, {})
        runs = d.get("runs", [])
        pool_cpu = med(runs, "gateway_pool", "proxy_cpu_us_per_req")
        for rkey, who, other in [("pool_vs_nginx", "nginx_proxy", "nginx"), ("pool_vs_haproxy", "haproxy", "HAProxy")]:
            if d.get(rkey) is not None and d[rkey] < 1.0:
                out.append(cause(f"{key}: gateway (pool)", d[rkey], pool_cpu, other,
                                 med(runs, who, "proxy_cpu_us_per_req")))
        c = d.get("pool_cpu_vs_ephemeral_cpu")
        if c is not None and c > 1.0:
            out.append(f"- {key}: gateway (pool) CPU per request {x(c)} gateway (ephemeral)'s: "
                       f"{us(pool_cpu)} against {us(med(runs, 'gateway_ephemeral', 'proxy_cpu_us_per_req'))}")
    return ["", "Where P7 misses, and what the CPU figures say about it:", ""] + out if out else []


def proxies_table(p):
    pr = p.get("proxies", {})
    lines = ["| range | upstreams | proxy | req/s (median) | ratio (median of rounds) | failures (all rounds) | "
             "CPU per request | p99 | p99.9 | max |", "|---|---|---|---|---|---|---|---|---|---|"]
    for key in SETTINGS:
        d = pr.get(key)
        if not d:
            continue
        label = key.split("/")[0]
        for who, name, ratios in [
                ("nginx_proxy", "nginx proxy_pass", "-"),
                ("haproxy", f"HAProxy (source {d.get('haproxy_source')} per server)", "-"),
                ("gateway_pool", f"gateway (pool, {d.get('gateway_block')}-port block)",
                 f"{x(d.get('pool_vs_nginx'))} nginx, {x(d.get('pool_vs_haproxy'))} HAProxy"),
                ("gateway_ephemeral", "gateway (ephemeral)", f"{x(d.get('ephemeral_vs_nginx'))} nginx")]:
            lines.append(f"| {label} ({d.get('range')}) | {d.get('upstreams')} | {name} | "
                         f"{rate(med(d['runs'], who, 'rps'))} | {ratios} | {fails(d['runs'], who)} | "
                         f"{us(med(d['runs'], who, 'proxy_cpu_us_per_req'))} (proxy) | {tails(d['runs'], who)} |")
    return lines


def peers_section(rep):
    p = rep.peers
    if not p:
        rep.not_run("Peers", "P7", TARGET, "the peers")
        return
    problems = shape_problems(p, SHAPE, "peers.json")
    if problems:
        rep.malformed("Peers", "P7", TARGET, problems)
        return
    lines = [f"Peers stopped early: {p['error']}", ""] if "error" in p else []
    lines += [f"Inside a private network namespace on loopback; {p.get('nginx', 'nginx')}, "
              f"{p.get('haproxy', 'HAProxy')}; concurrency {p.get('concurrency')}, {p.get('rounds')} rounds of "
              f"{p.get('seconds_per_run')} s runs, methods alternating within each round; ratios are medians of "
              "per-round ratios. Clients make one request per connection against nginx serving a small page; "
              "httperf offers a fixed rate, so each round offers it "
              f"{', '.join(f'{k:g}' for k in p.get('httperf_steps', []))} x ab's rate of the round and its best "
              "reply rate with at most 1 % errors counts. Proxies are driven by ab; each opens a new upstream "
              "connection per request (HAProxy: httpclose, no reuse; one thread each). CPU per request: the "
              "measured process's CPU time (client rows: the client; proxy rows: the proxy) over its requests. "
              "p99, p99.9, max: request latency as the client measured it (proxy rows: ab through the proxy), "
              "p99 and p99.9 medians over rounds, max the worst round's; ab reports whole milliseconds and no p99.9, wrk no p99.9, httperf none (n/a).",
              "", "### Clients", ""] + clients_table(p) + ["", "### Proxies", ""] + proxies_table(p) + misses(p)
    rep.section("Peers", lines)

    cl, pr = p.get("clients", {}), p.get("proxies", {})
    checks = {"loadgen vs ab": cl.get("loadgen_vs_ab"), "loadgen vs httperf": cl.get("loadgen_vs_httperf"),
              "loadgen --threads 2 vs wrk -t2": cl.get("loadgen_t2_vs_wrk_t2_close")}
    parts = [f"loadgen {x(checks['loadgen vs ab'])} ab, {x(checks['loadgen vs httperf'])} httperf; --threads 2 "
             f"{x(checks['loadgen --threads 2 vs wrk -t2'])} wrk -t2 (Connection: close)"]
    ok = all(v is not None and v >= 1.0 for v in checks.values())
    for key in SETTINGS:
        d = pr.get(key, {})
        pn, ph, cpu = d.get("pool_vs_nginx"), d.get("pool_vs_haproxy"), d.get("pool_cpu_vs_ephemeral_cpu")
        checks.update({f"{key}: gateway(pool) vs nginx": pn, f"{key}: gateway(pool) vs HAProxy": ph,
                       f"{key}: CPU per request": cpu})
        ok &= pn is not None and pn >= 1.0 and ph is not None and ph >= 1.0 and cpu is not None and cpu <= 1.0
        parts.append(f"{key.replace('/', ', ')} upstream(s): gateway(pool) {x(pn)} nginx, {x(ph)} HAProxy, CPU/req "
                     f"{x(cpu)} gateway(ephemeral)")
    # A rate won with failed requests, or against a peer that failed some, is no win.
    failed = [f"{name} {fails(cl.get('runs', []), who)}" for who, name in JUDGED_CLIENTS.items()
              if fails(cl.get("runs", []), who)]
    failed += [f"{key}: {name} {fails(pr[key]['runs'], who)}" for key in SETTINGS if pr.get(key)
               for who, name in PROXIES if fails(pr[key].get("runs", []), who)]
    if failed:
        ok = False
        parts.append("failed requests (no PASS with failures): " + ", ".join(failed))
    missing = [what for what, v in checks.items() if v is None]
    if missing and "error" in p:
        missing.append(f"peers stopped: {p['error']}")
    rep.target("P7", TARGET, "; ".join(parts), ok, extra_missing=missing)
