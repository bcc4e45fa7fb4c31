"""Benchmarks: a registry of sections, and their figures merged into build/bench.json.

Each section is one module whose run(options) returns Figures; `python -m sxctl.bench` runs
them, merges the figures into the JSON file (keeping other sections' keys) and prints them
beside their goals.
"""
import importlib
import json
import operator

from .. import BUILD_DIR

# section -> module whose run(options) returns its Figures; a new section is one line here.
SECTIONS = {
    "protocol": "sxctl.bench.protocol",
    "host": "sxctl.bench.host_flash",
    "host_log": "sxctl.bench.host_log",
    "firmware": "sxctl.bench.firmware",
    "control": "sxctl.bench.control",
    "gateway": "sxctl.bench.gateway",
    "web": "sxctl.bench.web",
    "historian": "sxctl.bench.historian",
}
OUTPUT = BUILD_DIR / "bench.json"
_OPS = {">=": operator.ge, "<=": operator.le, "==": operator.eq}


class Figure:
    """One measured figure: `key` is its name in bench.json; `goal` is (op, target) or None."""

    def __init__(self, key, value, unit="", goal=None, note=""):
        self.key = key
        self.value = value
        self.unit = unit
        self.goal = goal
        self.note = note

    def verdict(self):
        if self.goal is None:
            return ""
        op, target = self.goal
        return "met" if _OPS[op](self.value, target) else "MISSED"


def run(sections, options, table=None):
    """Figures of the named sections of `table` (default: the benchmarks), in order."""
    table = SECTIONS if table is None else table
    figures = []
    for name in sections:
        figures += importlib.import_module(table[name]).run(options)
    return figures


def merge(figures, path=OUTPUT):
    """Write the figures into the JSON file, keeping keys other sections wrote before."""
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update((f.key, f.value) for f in figures)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return data


def table(figures):
    rows = [("figure", "value", "goal", "", "note")]
    for f in figures:
        value = f.value if isinstance(f.value, str) else "{:,.6g}".format(f.value)
        goal = "" if f.goal is None else "%s %s" % (f.goal[0], "{:,.6g}".format(f.goal[1]))
        rows.append((f.key, ("%s %s" % (value, f.unit)).strip(), goal, f.verdict(), f.note))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "".join(("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4]).rstrip() + "\n"
                   for r in rows)
