#!/usr/bin/env python3
"""Writes the canned inputs of tests/report_test.py: bench_sample.json (Google
Benchmark JSON: per-repetition runs plus median/mean aggregates, as
scripts/bench writes them; a few cases as aggregates only),
bench_syscalls_sample.json and bench_peers_sample.json. Figures are invented
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


def client(rps, fails=0, cpu=1.0, seconds=2.0):
    return {"requests": int(rps * seconds), "seconds": seconds, "rps": rps, "failures": fails, "client_cpu_s": cpu}


def proxy(rps, cpu_us, fails=0):
    return {"requests": int(rps * 2), "seconds": 2.0, "rps": rps, "failures": fails, "proxy_cpu_us_per_req": cpu_us}


peers = {"rounds": 2, "seconds_per_run": 2, "concurrency": 32, "nginx": "nginx version: canned",
         "clients": {"runs": [{"ab": client(20000), "loadgen": client(19000, 3), "wrk": client(80000)},
                              {"ab": client(21000), "loadgen": client(20370), "wrk": client(78000)}],
                     "loadgen_vs_ab": 0.96, "wrk_vs_ab": 3.8},
         "proxies": {
             "default": {"range": "32768-60999", "pool_vs_nginx": 1.02, "ephemeral_vs_nginx": 1.05,
                         "pool_cpu_vs_ephemeral_cpu": 1.09,
                         "runs": [{"nginx_proxy": proxy(12000, 66), "gateway_pool": proxy(12240, 72),
                                   "gateway_ephemeral": proxy(12600, 66)}] * 2},
             "narrow_1000": {"range": "40000-40999", "pool_vs_nginx": 0.93, "ephemeral_vs_nginx": 1.0,
                             "pool_cpu_vs_ephemeral_cpu": 1.1,
                             "runs": [{"nginx_proxy": proxy(12500, 67), "gateway_pool": proxy(11600, 73, 2),
                                       "gateway_ephemeral": proxy(12500, 66)}] * 2}}}
with open(os.path.join(here, "bench_peers_sample.json"), "w") as f:
    json.dump(peers, f, indent=1)
