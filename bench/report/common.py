"""Formatting figures, and the Report every section writes into: rows by
case name, sections, and targets with their verdicts (PASS, FAIL, or NOT
MEASURED with the reason, never a verdict without its figures)."""
import math

from report.results import SUMMED


def finite(v):
    """Whether v is a number the report can compute and print with: not a bool, NaN or infinite, and not an
    integer past a float's range (json.load takes 1 followed by 400 digits; formatting it raises)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


def number(v):
    """v when it is a finite, non-negative figure, else None: json.load takes NaN, Infinity, huge integers and
    text where a count belongs, and NaN compares false both ways."""
    return v if finite(v) and v >= 0 else None


# A shape (see shape_problems) for a figure the sections may find null: a finite number, or null.
FIGURE = (float, None)


def described(v):
    """A JSON value, briefly, for a message naming what was found."""
    if v is None:
        return "null"
    if isinstance(v, str):
        return f"the text {v[:20]!r}"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return "a number" if finite(v) else "NaN" if v != v else "an infinite or out-of-range number"
    return "a list" if isinstance(v, list) else "an object"


def shape_problems(value, shape, where):
    """Where loaded JSON lacks the shape the report reads it with: ["where.key is null, not a list", ...].
    shape: {key: shape} an object whose keys, where present, have those shapes ("*": any other key's value;
    "!": a tuple of keys that must be there); [shape] a list of elements of that shape; float a finite number;
    (shape, None) that shape or null. Other absent keys are no problem: the sections read them with defaults."""
    if isinstance(shape, tuple):
        return [] if value is None else shape_problems(value, shape[0], where)
    if shape is float:
        return [] if finite(value) else [f"{where} is {described(value)}, not a finite number"]
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return [f"{where} is {described(value)}, not an object"]
        sep = ": " if where.endswith(".json") else "."  # "peers.json: clients.runs"
        absent = [f"{where}{sep}{k} is missing" for k in shape.get("!", ()) if k not in value]
        inner = ((k, shape.get("*") if k == "!" else shape.get(k, shape.get("*"))) for k in value)
        return absent + [p for k, s in inner if s is not None for p in shape_problems(value[k], s, f"{where}{sep}{k}")]
    if not isinstance(value, list):
        return [f"{where} is {described(value)}, not a list"]
    return [p for i, v in enumerate(value) for p in shape_problems(v, shape[0], f"{where}[{i}]")]


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


class Report:
    def __init__(self, rows, syscalls, peers, capacity=None):
        self.rows, self.syscalls, self.peers, self.capacity = rows, syscalls or {}, peers or {}, capacity or {}
        self.targets = []
        self.sections = []
        self.looked_up = set()

    def get(self, name, key):
        self.looked_up.add(name)
        r = self.rows.get(name)
        if not r or "error" in r:
            return None
        return r.get(key)

    def unusable(self, names):
        """Why each of `names` gives no figures: 'name (reason)'."""
        out = []
        for n in names:
            r = self.rows.get(n)
            if r is None:
                out.append(f"{n} (no result)")
            elif "error" in r:
                out.append(f"{n} ({'FAILED' if r.get('failed') else 'SKIPPED'}: {r['error']})")
        return out

    def bad_runs(self, names, expect=None):
        """Failed operations in rows that did run, and rows that held less than they should."""
        out = []
        for n in names:
            r = self.rows.get(n) or {}
            if "error" in r:
                continue
            bad = sum(v for k, v in r.items() if k in SUMMED)
            if bad:
                out.append(f"{n}: {bad:.0f} failed operations")
            for key, wanted in (expect or {}).get(n, {}).items():
                if r.get(key) is None or r[key] < wanted:
                    out.append(f"{n}: {key} {r.get(key)} (wanted {wanted})")
        return out

    def target(self, tid, text, measured, ok, needs=(), extra_missing=()):
        missing = self.unusable(needs) + list(extra_missing)
        if missing:
            self.targets.append((tid, text, measured + "; not measured: " + "; ".join(missing), "NOT MEASURED"))
        else:
            self.targets.append((tid, text, measured, "PASS" if ok else "FAIL"))

    def section(self, title, lines):
        self.sections.append((title, lines))

    def not_run(self, title, tid, text, what):
        """A section whose step did not run, and its target NOT MEASURED."""
        self.section(title, ["Not run (see 'Not run')."])
        self.target(tid, text, "-", False, extra_missing=[f"{what} did not run"])

    def malformed(self, title, tid, text, problems):
        """A section whose JSON has the wrong shape: not shown, and its target NOT MEASURED naming the fields."""
        why = "; ".join(problems[:3]) + (f"; {len(problems) - 3} more" if len(problems) > 3 else "")
        self.section(title, [f"Not shown: {why}."])
        self.target(tid, text, "-", False, extra_missing=[why])

    def tails(self, name, prefix=""):
        n = self.get(name, f"{prefix}samples")
        return [us(self.get(name, f"{prefix}{k}_us")) for k in ["p50", "p99", "p999", "max", "mean"]] + [
            "n/a" if n is None else f"{n:.0f}"]

    def failures(self, name):
        r = self.rows.get(name) or {}
        if "error" in r:
            return "FAILED" if r.get("failed") else "SKIPPED"
        kinds = {k[5:]: v for k, v in r.items() if k.startswith("fail_") and v}
        total = next((r[k] for k in SUMMED if k in r), None)
        if total is None:
            return "n/a"
        return f"{total:.0f}" + (" (" + ", ".join(f"{k} {v:.0f}" for k, v in sorted(kinds.items())) + ")" if kinds else "")


TAIL_HEAD = "p50 | p99 | p99.9 | max | mean | samples"

