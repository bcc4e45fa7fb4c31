"""`make faults`: the reliability and security campaign against virtual boards.

Each section is a module whose run(short) returns Figures (sxctl.bench.Figure); the results go
to build/faults.json and a table. `--short` is the quick form that `make test` runs.
"""
import importlib
import json

from .. import BUILD_DIR

SECTIONS = {
    "sensors": "sxctl.faults.sensors",
    "config_crash": "sxctl.faults.config_crash",
}
OUTPUT = BUILD_DIR / "faults.json"


def run(names, short):
    figures = []
    for name in names:
        figures += importlib.import_module(SECTIONS[name]).run(short)
    return figures


def write(figures, path=OUTPUT):
    data = {f.key: f.value for f in figures}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return data
