"""Loading the inputs: Google Benchmark JSON (per-repetition runs and/or
aggregates, a file cut off mid-way salvaged) into one row per case, and the
other steps' JSON files."""
import json
import os
import re
import statistics

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


def load_json(path, skipped, what):
    if not path:
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError, RecursionError) as e:  # RecursionError: nesting deeper than the decoder goes
        skipped.append(f"{what}: {e}")
        return None

