"""Capacity (P8): connections held from 1,000 ports to 1 and 4 destinations
over 1 and 4 source addresses, by the pool, kernel autobind and HAProxy."""
from capacity import PORTS, POINTS  # the run's own configuration (bench/capacity.py), not what its JSON says
from report.common import FIGURE, number, shape_problems, x

TARGET = ("capacity: from a 1,000-port block, 4 destinations x 4 source addresses: >= 15,840 of 16,000 held (99 %), "
          "zero failures; at every point held >= autobind's and >= HAProxy's")
METHODS = [("pool", "loadgen --hold through the pool (1,000-port block)"),
           ("autobind", "kernel autobind, IP_BIND_ADDRESS_NO_PORT (1,000-port ephemeral range)"),
           ("haproxy", "HAProxy (1,000-port source range per server)")]
WANTED_SHARE = 0.99
FIGURES = {"failures_by_kind": {"*": float}}  # summed over rounds
# A point is found by (destinations, sources) and sorted by it; its figures go through figure().
POINT = {"!": ("destinations", "sources"), "destinations": float, "sources": float, "pool_vs_autobind": FIGURE,
         "pool_vs_haproxy": FIGURE, "runs": [{m: FIGURES for m, _ in METHODS}], **{m: {} for m, _ in METHODS}}
SHAPE = {"points": [POINT]}


def wanted(d, s):
    """Connections a point asks for: the 4-tuple limit of the configured block."""
    return PORTS * d * s


def figure(r, key):
    """A count from the JSON, or None where there is none (see number())."""
    return number(r.get(key)) if isinstance(r, dict) else None


def count(v):
    return "n/a" if v is None else f"{v:,.0f}"


def seconds(v):
    return "n/a" if v is None else f"{v:.2f} s"


def capacity_section(rep):
    c = rep.capacity
    if not c:
        rep.not_run("Capacity", "P8", TARGET, "the capacity runs")
        return
    problems = shape_problems(c, SHAPE, "capacity.json")
    if problems:
        rep.malformed("Capacity", "P8", TARGET, problems)
        return
    ports = PORTS
    points = {(pt.get("destinations"), pt.get("sources")): pt for pt in c.get("points", [])}
    lines = [f"Capacity stopped early: {c['error']}", ""] if "error" in c else []
    lines += [f"Concurrent connections held from {ports:,} ports to 1 and 4 destinations (127.0.0.1:19001-19004) "
              "over 1 and 4 source addresses (127.0.0.1-4), asking for ports x destinations x sources (the 4-tuple "
              f"limit); {c.get('rounds')} round(s), methods alternating at each point; figures are medians over "
              "rounds, failures summed. held: open at the destinations (a sink process per destination) once the "
              "count stopped growing; failures: failed connects and dropped connections, by errno; not opened: "
              "still waiting when the count stopped growing; seconds: until the destinations accepted the last "
              "one. Private network namespace; connections split over processes for the 20,000-descriptor limit "
              f"(loadgen, a sink per destination, an HAProxy per source address); {c.get('haproxy', 'HAProxy')}.", "",
              "| destinations x sources | wanted | method | held | failures | not opened | seconds to open |",
              "|---|---|---|---|---|---|---|"]
    notes = []
    for (d, s), pt in sorted(points.items()):
        for m, label in METHODS:
            r = pt.get(m, {})
            kinds = {}
            for run in pt.get("runs", []):
                for k, v in run.get(m, {}).get("failures_by_kind", {}).items():
                    kinds[k] = kinds.get(k, 0) + v
            why = " (" + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) + ")" if kinds else ""
            lines.append(f"| {d} x {s} | {count(wanted(d, s))} | {label} | {count(figure(r, 'held'))} | "
                         f"{count(figure(r, 'failures'))}{why} | {count(figure(r, 'not_opened'))} | "
                         f"{seconds(figure(r, 'seconds'))} |")
        held = figure(pt.get("pool", {}), "held")
        if held is not None and wanted(d, s) > ports and held <= ports:
            notes.append(f"{d} x {s}")
    errors = [f"- {m} at {pt['destinations']} x {pt['sources']}, round {i + 1}: {run[m]['error']}"
              for pt in c.get("points", []) for i, run in enumerate(pt.get("runs", []))
              for m, _ in METHODS if "error" in run.get(m, {})]
    if errors:
        lines += ["", "Runs without figures:"] + errors
    if notes:
        lines += ["", f"The pool held no more than its {ports:,} ports at {', '.join(notes)}: each port served one "
                  "connection whatever the destination and source address (no per-destination ports in this build); "
                  "the rest waited for a port (not opened)."]
    rep.section("Capacity", lines)

    parts, missing, wrong = [], [], []
    top = points.get((4, 4), {})
    held, failures = figure(top.get("pool", {}), "held"), figure(top.get("pool", {}), "failures")
    if held is None:
        missing.append("4 x 4: the pool's held count")
    else:
        if held < WANTED_SHARE * wanted(4, 4) or failures != 0:
            wrong.append(f"4 x 4: the pool held {count(held)} of {count(wanted(4, 4))} with {count(failures)} failures")
        parts.append(f"4 x 4: pool held {count(held)} of {count(wanted(4, 4))} in "
                     f"{seconds(figure(top['pool'], 'seconds'))}, {count(failures)} failures")
    for (d, s) in POINTS:
        pt = points.get((d, s), {})
        if pt and pt.get("requested") != wanted(d, s):  # the run asked for something else: its figures prove nothing
            wrong.append(f"{d} x {s}: the run asked for {count(figure(pt, 'requested'))} connections, not "
                         f"{count(wanted(d, s))}")
        figures = [figure(pt.get(m, {}), "held") for m, _ in METHODS]
        if None in figures:
            missing.append(f"{d} x {s}: " + ", ".join(m for (m, _), v in zip(METHODS, figures) if v is None) +
                           (" (see 'Runs without figures')" if errors else ""))
            continue
        if figures[0] < figures[1] or figures[0] < figures[2]:
            wrong.append(f"{d} x {s}: the pool held fewer than " +
                         " and ".join(m for (m, _), v in zip(METHODS[1:], figures[1:]) if figures[0] < v))
        if any(v > wanted(d, s) for v in figures):  # more than the 4-tuples asked for: a miscount
            wrong.append(f"{d} x {s}: held " + " / ".join(count(v) for v in figures) +
                         f", more than the {count(wanted(d, s))} asked for")
        if figures[0] == 0:  # 0 >= 0 says nothing
            wrong.append(f"{d} x {s}: the pool held none of {count(wanted(d, s))}")
        parts.append(f"{d} x {s}: pool/autobind/HAProxy {' / '.join(count(v) for v in figures)} "
                     f"({x(pt.get('pool_vs_autobind'))}, {x(pt.get('pool_vs_haproxy'))})")
    if missing and "error" in c:
        missing.append(f"capacity stopped: {c['error']}")
    elif missing:  # a run that reports no error yet lacks figures: its result is wrong, not unmeasured
        wrong += [f"no figures: {m}" for m in missing]
        missing = []
    if wrong:
        parts.append("misses: " + "; ".join(wrong))
    rep.target("P8", TARGET, "; ".join(parts), not wrong, extra_missing=missing)
