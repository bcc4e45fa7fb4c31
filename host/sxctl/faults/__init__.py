"""`make faults`: the reliability and security campaign against virtual boards.

Each section is a module whose run(short) returns Figures (sxctl.bench.Figure); the results go
to build/faults.json and a table. `--short` is the quick form that `make test` runs.
"""
from .. import BUILD_DIR, bench

SECTIONS = {
    "sensors": "sxctl.faults.sensors",
    "config_crash": "sxctl.faults.config_crash",
    "fuzz": "sxctl.faults.fuzz",
    "link_loss": "sxctl.faults.link_loss",
    "signed": "sxctl.faults.signed",
    "logger_kills": "sxctl.faults.logger_kills",
    "power_loss": "sxctl.faults.power_loss",
    "link_noise": "sxctl.faults.link_noise",
    "historian": "sxctl.faults.historian",
}
OUTPUT = BUILD_DIR / "faults.json"


def run(names, short):
    return bench.run(names, short, SECTIONS)


def write(figures, path=OUTPUT):
    """Merge into build/faults.json: a run of some sections keeps the others' figures."""
    return bench.merge(figures, path)
