"""The document: the header, the targets with their verdicts, the peers and
capacity tables, what each case measures, every other section, and what did
not run (failed, skipped, left out by --quick, missing)."""
import fnmatch
import re

from report import binds, capacity, cases, peers

# Every section in the order it is computed; FIRST are printed before "What each case measures".
SECTIONS = [binds.own_section, cases.pool_section, cases.churn_section, cases.acquire_section, cases.connect_section,
            peers.peers_section, capacity.capacity_section, binds.foreign_section]
FIRST = ("Peers", "Capacity")

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
| peers | requests/s as the client measures it over a fixed time; CPU of the measured process | process start-up |
| capacity | connections open at the destinations once their count stops growing; seconds from loadgen's start until the destinations accepted the last one | starting the sinks and HAProxy |"""


QUICK = "quick mode "
LEFT_OUT = QUICK + "leaves out "


def left_out(skipped):
    """The name patterns of the cases --quick leaves out: scripts/bench says them as
    'quick mode leaves out PATTERN, PATTERN: why' (listed under 'Not run', so not MISSING)."""
    return [g for s in skipped if s.startswith(LEFT_OUT) for g in s[len(LEFT_OUT):].split(": ", 1)[0].split(", ")]


def render(rep, contexts, info, failed, skipped, plot):
    """The report as Markdown. info: kernel, compiler, build_type, wall_seconds."""
    rows = rep.rows
    context = contexts[0] if contexts else {}
    rep.targets.sort(key=lambda t: t[0])
    registries = {}
    for c in contexts:  # one line per mode (each run names its own scratch folder)
        if c.get("registry_mode"):
            registries.setdefault(c["registry_mode"], re.sub(r" /\S*portres-bench-\S*", " (scratch folder)",
                                                            c.get("registry", "?")))
    registries = [f"{m}: {t}" for m, t in sorted(registries.items())]
    mode = ["- mode: --quick: every case a target reads, fewer of the others and one peers round ('Not run' lists "
            "what it leaves out; the full run has them all)"] if any(s.startswith(QUICK) for s in skipped) else []

    md = ["# portres benchmark report", "",
          f"- machine: {context.get('host_name', '?')}, {context.get('num_cpus', '?')} CPUs at "
          f"{context.get('mhz_per_cpu', '?')} MHz; kernel {info['kernel']}; {info['compiler']}; {info['build_type']}",
          f"- date: {context.get('date', '?')}" + (f"; whole run {info.get('wall_seconds')} s" if info.get('wall_seconds') else ""),
          f"- environment: {context.get('occupancy_method', '?')}"] + mode + [f"- registry {r}" for r in registries] + [
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
    first = [s for s in rep.sections if s[0] in FIRST]
    rest = [s for s in rep.sections if s[0] not in FIRST]
    for title, lines in first:
        md += [f"## {title}", ""] + lines + [""]
    md += ["## What each case measures", "", MEASURES, ""]
    for title, lines in rest:
        md += [f"## {title}", ""] + lines + [""]
    not_run = [f"- FAILED: {n} ({r['error']})" for n, r in rows.items() if "error" in r and r.get("failed")]
    not_run += [f"- FAILED: {f}" for f in failed]
    not_run += [f"- SKIPPED: {n} ({r['error']})" for n, r in rows.items() if "error" in r and not r.get("failed")]
    not_run += [f"- SKIPPED: {s}" for s in skipped]
    quick = left_out(skipped)
    absent = sorted(n for n in rep.looked_up if n not in rows and not any(fnmatch.fnmatchcase(n, g) for g in quick))
    if absent:
        not_run.append(f"- MISSING (no result; its run stopped or was filtered out): {', '.join(absent)}")
    if not_run:
        md += ["## Not run", ""] + not_run + [""]
    md.append(f"Plot: {plot}" + ("" if not plot.endswith(".svg") else f"\n\n![bind latency]({plot})"))
    return "\n".join(md) + "\n"
