"""Connect cost per client (P6), churn (P3), pool get (P2) and acquire (P4, P5)."""
from report.binds import FOREIGN_LEVELS, POLICIES
from report.common import TAIL_HEAD, rate, ratio, us, x

CLIENTS = ["autobind", "explicit", "pool"]
CHURN = ["autobind", "explicit"] + [f"pool_{p}" for p in POLICIES]
MODES = [("broker", "broker (portresd)"), ("per_user", "per-user registry")]


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
        ok &= rf is not None and rf >= 0.95 and f == 0
        parts.append(f"{p} {x(rf)} floor, {'n/a' if f is None else f'{f:.0f}'} failures ({x(ra, 1)} autobind, not judged)")
    note = "" if secs is None or secs >= 9500 else f" (runs of {secs / 1000:.0f} s, not 10 s)"
    rep.target("P3", "churn (client closes first, 1,000 ports, default sysctls, 10 s): pool >= 0.95x the explicit-bind "
               "floor, zero connect failures", "; ".join(parts) + note, ok,
               needs=["churn/explicit"] + [f"churn/pool_{p}" for p in POLICIES])


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

