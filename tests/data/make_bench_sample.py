#!/usr/bin/env python3
"""Writes the canned inputs of tests/report_test.py: bench_sample.json (Google
Benchmark JSON: per-repetition runs plus median/mean aggregates, as
scripts/bench writes them; a few cases as aggregates only),
bench_syscalls_sample.json, bench_peers_sample.json and bench_capacity_sample.json. Figures are invented
to hit PASS, FAIL and NOT MEASURED on purpose."""
import json
import os

here = os.path.dirname(os.path.abspath(__file__))
bench = []


def case(name, p50, extra=None, reps=2, error=None, per_rep=None):
    """per_rep: {key: [value of repetition 1, value of repetition 2]}: written as
    per-repetition runs (the aggregates then carry misleading values on purpose:
    the report must use the runs)."""
    counters = {"p50_us": p50, "p99_us": p50 * 2, "p999_us": p50 * 5, "max_us": p50 * 50, "mean_us": p50 * 1.2,
                "samples": 1000}
    counters.update(extra or {})
    run = f"{name}/manual_time"
    if error:
        bench.append({"name": run, "run_name": run, "run_type": "iteration", "error_occurred": True,
                      "error_message": error})
        return
    if per_rep:
        for i in range(reps):
            row = {"name": run, "run_name": run, "run_type": "iteration", "repetitions": reps, "repetition_index": i,
                   "real_time": p50, "cpu_time": p50, "time_unit": "us"}
            row.update(counters)
            row.update({k: v[i] for k, v in per_rep.items()})
            bench.append(row)
    for agg, scale in [("mean", 1.1), ("median", 1.0), ("stddev", 0.1)]:
        row = {"name": f"{run}_{agg}", "run_name": run, "run_type": "aggregate", "aggregate_name": agg,
               "repetitions": reps, "real_time": p50, "cpu_time": p50, "time_unit": "us"}
        row.update({k: v * scale for k, v in counters.items()})
        bench.append(row)


for layout in ["random", "clustered"]:
    for lvl, eph in zip([0, 50, 90, 99], [0.7, 4.0, 400.0, 450.0]):
        case(f"bind/explicit/{layout}/occupancy:{lvl}", 0.55, {"failures": 0})
        case(f"bind/ephemeral/{layout}/occupancy:{lvl}", eph, {"failures": 0})
        if layout == "clustered" and lvl == 99:
            case(f"bind/portres/{layout}/occupancy:{lvl}", 0, error="canned: did not run")
        else:
            case(f"bind/portres/{layout}/occupancy:{lvl}", 1.5, {"failures": 0})
        if layout == "random":
            case(f"bind/portres_bind_only/{layout}/occupancy:{lvl}", 0.6, {"failures": 0})
own = {"explicit": [1.0] * 5, "ephemeral": [1.2, 2.0, 4.0, 20.0, 170.0],
       "portres_sequential": [1.4, 1.4, 1.5, 1.6, 1.8], "portres_lru": [1.4, 1.4, 1.5, 1.7, 1.9],
       "portres_random": [1.6, 2.0, 8.0, 50.0, 500.0]}
for m, vals in own.items():
    for lvl, v in zip([0, 500, 900, 990, 999], vals):
        case(f"own/{m}/fullness:{lvl}", v, {"failures": 0, "held_sockets": 16384 * lvl // 1000})
for c, cpu, in [("autobind", 40.0), ("explicit", 35.0), ("pool", 30.0)]:
    for lvl in [0, 50, 90, 99]:
        case(f"connect/{c}/occupancy:{lvl}", 35.0, {"use_p50_us": 25.0, "cpu_us_per_conn": cpu, "failures": 0})
churn = {"autobind": (1000, 8900), "explicit": (45000, 0), "pool_sequential": (44000, 0), "pool_lru": (43000, 0),
         "pool_random": (40000, 0)}
for m, (r, f) in churn.items():
    extra = {"connects_per_s": r, "failures": f, "tcp_tw_reuse": 2, "tcp_timestamps": 1, "real_time": 10000}
    if f:
        extra["fail_EADDRNOTAVAIL"] = f
    case(f"churn/{m}", 20.0, extra)
case("pool/get_sync", 0.08, {"cycle_p50_us": 2.7, "misses": 0})
bench.append(dict(bench[-2], name="pool/get_sync/manual_time_median"))  # harmless duplicate median row
# Two repetitions: max is the worst one's (90 us), p50 the median, errors summed.
case("pool/get_async", 0.7, {"p999_us": 4.0, "errors": 0},
     per_rep={"max_us": [20.0, 90.0], "p50_us": [0.6, 0.8], "errors": [0, 0]})
# Broker: passes. Per-user registry: slower, shown beside it, not judged.
case("acquire/broker/live/reservations:0", 20.0, {"live_reservations": 0, "failures": 0})
case("acquire/broker/live/reservations:100", 25.0, {"live_reservations": 100, "failures": 0})
case("acquire/broker/live/reservations:1000", 28.0, {"live_reservations": 1000, "failures": 0})
case("acquire/broker/async_initiation", 1.0, {"p99_us": 3.0, "complete_p50_us": 30.0, "failures": 0})
case("acquire/per_user/live/reservations:0", 70.0, {"live_reservations": 0, "failures": 0})
case("acquire/per_user/live/reservations:100", 900.0, {"live_reservations": 100, "failures": 0})
case("acquire/per_user/live/reservations:1000", 30000.0, {"live_reservations": 1000, "failures": 0})
case("acquire/per_user/async_initiation", 2.0, {"p99_us": 2700.0, "complete_p50_us": 100.0, "failures": 0})
for n, v in [(1, 40.0), (16, 41.0), (256, 42.0), (4096, 60.0), (16384, 100.0)]:
    case(f"lifecycle/acquire/ports:{n}", v, {"errors": 0})
case("lifecycle/acquire_associate_release/sync", 8.0)
case("lifecycle/acquire_associate_release/async", 0, error="FAILED: a completion did not arrive within 5 s")

context = {"date": "2026-11-21T00:00:00", "host_name": "canned", "num_cpus": 2, "mhz_per_cpu": 2000,
           "occupancy_method": "canned input", "registry_mode": "broker", "registry": "broker: canned portresd"}
with open(os.path.join(here, "bench_sample.json"), "w") as f:
    json.dump({"context": context, "benchmarks": bench}, f, indent=1)

syscalls = {"method": "canned", "autobind": {"calls_per_conn": 5.0, "by_call": {"socket": 1.0, "connect": 1.0}},
            "explicit": {"calls_per_conn": 7.0, "by_call": {"socket": 1.0, "bind": 1.0}},
            "pool": {"calls_per_conn": 6.5, "by_call": {"connect": 1.0, "getsockopt": 0.5}}}
with open(os.path.join(here, "bench_syscalls_sample.json"), "w") as f:
    json.dump(syscalls, f, indent=1)


def client(rps, fails=0, cpu=1.0, seconds=2.0, tail=None):
    out = {"requests": int(rps * seconds), "seconds": seconds, "rps": rps, "failures": fails, "client_cpu_s": cpu}
    return dict(out, latency_us=tail) if tail else out


def proxy(rps, cpu_us, fails=0):
    # Driven by ab: its tail in whole milliseconds, no p99.9.
    return {"requests": int(rps * 2), "seconds": 2.0, "rps": rps, "failures": fails, "proxy_cpu_us_per_req": cpu_us,
            "latency_us": {"p99": 9000.0, "max": 21000.0}}


def steps(best):
    return [{"offered": o, "rps": min(o, best), "failures": 0 if o <= best else o - best, "attempted": o * 2}
            for o in (16000, 22000, 28000, 36000)]


# Request latency tails: loadgen has p99.9, ab (whole ms) and wrk none; httperf none at all.
runs = [{"ab": client(20000, tail={"p99": 4000.0, "max": 12000.0}),
         "loadgen": client(19000, 3, tail={"p99": 3100.0, "p999": 6200.0, "max": 9400.0}), "httperf": dict(client(18000), offered=22000, steps=steps(18000)),
         "loadgen_t2": client(30000), "wrk_t2_close": client(28000), "wrk": client(80000)},
        {"ab": client(21000, tail={"p99": 5000.0, "max": 14000.0}),
         "loadgen": client(20370, tail={"p99": 2900.0, "p999": 5800.0, "max": 8800.0}), "httperf": dict(client(19000), offered=22000, steps=steps(19000)),
         "loadgen_t2": client(30500), "wrk_t2_close": client(28500, 4, tail={"p99": 2500.0, "max": 7000.0}), "wrk": client(78000)}]


def setting(rng, n, block, pool, nginx, haproxy, eph, ratios):
    return {"range": rng, "upstreams": n, "gateway_block": block,
            "haproxy_source": f"127.0.0.1:20000-{20000 + block - 1}", **ratios,
            "runs": [{"nginx_proxy": proxy(*nginx), "haproxy": proxy(*haproxy), "gateway_pool": proxy(*pool),
                      "gateway_ephemeral": proxy(*eph)}] * 2}


peers = {"rounds": 2, "seconds_per_run": 2, "concurrency": 32, "nginx": "nginx version: canned",
         "haproxy": "HAProxy version 2.6-canned", "httperf_steps": [0.8, 1.1, 1.4, 1.8],
         "clients": {"runs": runs, "loadgen_vs_ab": 0.96, "loadgen_vs_httperf": 1.06,
                     "loadgen_t2_vs_wrk_t2_close": 1.07, "wrk_vs_ab": 3.8},
         "proxies": {
             "default/1": setting("32768-60999", 1, 4096, (12240, 72), (12000, 66), (11000, 80), (12600, 66),
                                  {"pool_vs_nginx": 1.02, "pool_vs_haproxy": 1.11, "ephemeral_vs_nginx": 1.05,
                                   "pool_cpu_vs_ephemeral_cpu": 1.09}),
             "default/4": setting("32768-60999", 4, 4096, (12300, 70), (12000, 66), (11500, 79), (12400, 71),
                                  {"pool_vs_nginx": 1.03, "pool_vs_haproxy": 1.07, "ephemeral_vs_nginx": 1.03,
                                   "pool_cpu_vs_ephemeral_cpu": 0.99}),
             "narrow_1000/1": setting("40000-40999", 1, 1000, (11600, 73, 2), (12500, 67), (11000, 81), (12500, 66),
                                      {"pool_vs_nginx": 0.93, "pool_vs_haproxy": 1.05, "ephemeral_vs_nginx": 1.0,
                                       "pool_cpu_vs_ephemeral_cpu": 1.1}),
             "narrow_1000/4": setting("40000-40999", 4, 1000, (12000, 70), (11900, 67), (11800, 80), (11000, 72),
                                      {"pool_vs_nginx": 1.01, "pool_vs_haproxy": 1.02, "ephemeral_vs_nginx": 0.92,
                                       "pool_cpu_vs_ephemeral_cpu": 0.97})}}
with open(os.path.join(here, "bench_peers_sample.json"), "w") as f:
    json.dump(peers, f, indent=1)


def held(n, seconds, failures=0, not_opened=0, kinds=None):
    return {"held": n, "seconds": seconds, "failures": failures, "not_opened": not_opened,
            "failures_by_kind": kinds or {}}


# Capacity: the pool passes (16,000 of 16,000 at 4 x 4, never below autobind or HAProxy);
# HAProxy drops some at 4 x 4 (ECONNRESET: it could not connect upstream).
capacity = {"ports": 1000, "rounds": 1, "haproxy": "HAProxy version 2.6-canned", "points": []}
for (d, s), (pool, auto, hap) in {(1, 1): (1000, 1000, 1000), (4, 1): (4000, 4000, 3990),
                                  (1, 4): (4000, 3998, 4000), (4, 4): (16000, 15990, 15200)}.items():
    run = {"pool": held(pool, 0.3 * d * s), "autobind": held(auto, 0.2 * d * s, failures=1000 * d * s - auto,
                                                             kinds={"EADDRNOTAVAIL": 1000 * d * s - auto} if auto < 1000 * d * s else None),
           "haproxy": held(hap, 0.5 * d * s, failures=1000 * d * s - hap,
                           kinds={"ECONNRESET": 1000 * d * s - hap} if hap < 1000 * d * s else None)}
    point = {"destinations": d, "sources": s, "requested": 1000 * d * s, "runs": [run]}
    point.update({m: {k: v for k, v in r.items() if k != "failures_by_kind"} for m, r in run.items()})
    point["pool_vs_autobind"], point["pool_vs_haproxy"] = pool / auto, pool / hap
    capacity["points"].append(point)
with open(os.path.join(here, "bench_capacity_sample.json"), "w") as f:
    json.dump(capacity, f, indent=1)
