"""A log as a picture: per stage, pH against its setpoint, and the dosing with the flows, over time."""
import math

from . import store as st
from .errors import SxctlError

MAX_POINTS = 3000  # per stage and line; longer logs are plotted as means over equal buckets
_PLOTTED = ("ph", "ph_setpoint", "base_dose", "reagent_dose", "flow_aq", "flow_org")


def _series(store, stages, start, end):
    """{stage: {name: numpy array}} in engineering units, and the bucket length in seconds."""
    import numpy as np

    first, last, count = store.time_span(stages, start, end)
    if not count:
        held = store.stages()
        raise SxctlError("no telemetry in %s for the stages and times asked (it holds stages %s%s); "
                         "check --stage, --from and --to" % (store.path, ",".join(map(str, held)) or "none",
                                                              _span_text(store) if held else ""))
    bucket = max(1, math.ceil((last - first + 1) / MAX_POINTS))
    rows = {}
    for row in store.telemetry_means(bucket, stages, start, end, columns=_PLOTTED):
        rows.setdefault(row[0], []).append(row[1:])
    series = {}
    for stage, got in rows.items():
        a = np.array(got, dtype=float)
        t = a[:, 0]
        # Break the lines where data is missing (a stage offline, the logger stopped).
        breaks = np.nonzero(np.diff(t) > 3 * bucket + 2)[0] + 1
        a = np.insert(a, breaks, np.nan, axis=0)
        a[breaks + np.arange(len(breaks)), 0] = t[breaks - 1] + bucket
        s = {"time": a[:, 0].astype("datetime64[s]"), "alarm": a[:, -1]}
        for i, name in enumerate(_PLOTTED, start=1):
            s[name] = a[:, i] * st.scale(name)
        series[stage] = s
    return series, bucket


def _span_text(store):
    first, last, _ = store.time_span()
    return " from %s to %s" % (st.iso_time(first), st.iso_time(last))


def render(store, out, stages=None, start=None, end=None, title=None):
    """Write the PNG; returns (stages plotted, bucket seconds)."""
    import numpy as np
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    series, bucket = _series(store, stages, start, end)
    resets = store.resets(list(series), start, end)
    n = len(series)
    fig = Figure(figsize=(14, 1.2 + 2.8 * n), layout="constrained")
    axes = fig.subplots(n, 2, sharex=True, squeeze=False)
    for (ph_ax, out_ax), (stage, s) in zip(axes, sorted(series.items())):
        t = s["time"]
        ph_ax.plot(t, s["ph"], color="tab:blue", lw=1.2, label="pH")
        ph_ax.plot(t, s["ph_setpoint"], color="black", lw=1, ls="--", label="setpoint")
        ph_ax.fill_between(t, 0, 1, where=s["alarm"] > 0, step="post", transform=ph_ax.get_xaxis_transform(),
                           color="tab:red", alpha=0.12, lw=0, label="alarm active")
        ph_ax.set_title("Stage %s: pH" % stage, loc="left", fontsize=11)
        ph_ax.set_ylabel("pH")
        out_ax.plot(t, s["base_dose"], color="tab:purple", lw=1.2, label="base dose (mL/min)")
        if np.nanmax(s["reagent_dose"], initial=0) > 0:
            out_ax.plot(t, s["reagent_dose"], color="tab:pink", lw=1, label="reagent dose (mL/min)")
        out_ax.set_ylabel("dose (mL/min)")
        flow_ax = out_ax.twinx()
        flow_ax.plot(t, s["flow_aq"], color="tab:green", lw=1, label="aqueous flow (L/min)")
        flow_ax.plot(t, s["flow_org"], color="tab:orange", lw=1, label="organic flow (L/min)")
        flow_ax.set_ylabel("flow (L/min)")
        out_ax.set_title("Stage %s: dosing and flows" % stage, loc="left", fontsize=11)
        for ax in (ph_ax, out_ax):
            ax.grid(True, alpha=0.3)
            for reset_stage, boot in resets:
                if reset_stage == stage:
                    ax.axvline(np.datetime64(int(boot), "s"), color="grey", ls=":", lw=1.2, label="board reset")
        for ax in (ph_ax, out_ax, flow_ax):  # headroom for the legends above the lines
            lo, hi = ax.get_ylim()
            ax.set_ylim(lo, hi + 0.35 * (hi - lo))
        handles, labels = _unique(ph_ax.get_legend_handles_labels())
        ph_ax.legend(handles, labels, loc="upper left", fontsize=8, ncols=4)
        h1, l1 = out_ax.get_legend_handles_labels()
        h2, l2 = flow_ax.get_legend_handles_labels()
        out_ax.legend(*_unique((h1 + h2, l1 + l2)), loc="upper left", fontsize=8, ncols=3)
    for ax in axes[-1]:
        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        ax.set_xlabel("time (UTC)")
    first = min(s["time"][0] for s in series.values())
    last = max(s["time"][-1] for s in series.values())
    heading = title or "SX circuit log"
    heading += ": stage%s %s, %s to %s UTC" % ("s" if n > 1 else "", ", ".join(map(str, sorted(series))),
                                                 str(first).replace("T", " "), str(last).replace("T", " "))
    if bucket > 1:
        heading += " (means over %d s)" % bucket
    fig.suptitle(heading, fontsize=13)
    fig.savefig(out, format="png", dpi=100)
    return sorted(series), bucket


def _unique(handles_labels):
    handles, labels = handles_labels
    seen = {}
    for h, label in zip(handles, labels):
        seen.setdefault(label, h)
    return list(seen.values()), list(seen)
