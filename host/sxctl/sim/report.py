"""What a plant run shows a user: a live table while it runs and a summary per stage after it."""
import sys
import time

from sxproto import messages

ALARM_NAMES = messages.ALARMS
AUTO = next(number for number, name in messages.MODES.items() if name == "auto")


def alarm_text(bits):
    return ",".join(ALARM_NAMES[b] for b in range(16) if bits >> b & 1) or "-"


class LiveTable:
    """The boards' latest telemetry as a table, redrawn in place on a terminal at most every
    `every_s` seconds of wall time; on anything else, printed every `log_every_s` simulated s."""

    def __init__(self, stream=None, every_s=0.5, log_every_s=60.0):
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.every_s = every_s
        self.log_every_s = log_every_s
        self._last_wall = 0.0
        self._last_sim = None
        self._lines = 0

    def __call__(self, session, t_s):
        now = time.monotonic()
        if self.tty:
            if now - self._last_wall < self.every_s:
                return
        elif self._last_sim is not None and t_s - self._last_sim < self.log_every_s:
            return
        self._last_wall, self._last_sim = now, t_s
        lines = self.render(session, t_s)
        if self.tty and self._lines:
            self.stream.write("\x1b[%dA" % self._lines)
        self.stream.write("".join(line + ("\x1b[K" if self.tty else "") + "\n" for line in lines))
        self.stream.flush()
        self._lines = len(lines)

    @staticmethod
    def render(session, t_s):
        head = "t = %s  (%s)" % (clock(t_s), "lock-step" if not session.speed else "%g× real time" % session.speed)
        rows = ["%-6s %7s %7s %12s %7s %s" % ("stage", "pH", "target", "base mL/min", "mode", "alarms")]
        for stage in session.plant.stages:
            rec = session.latest.get(stage.address)
            if rec is None:
                rows.append("%-6s %7s" % (stage.name, "…"))
                continue
            rows.append("%-6s %7.3f %7.3f %12.2f %7s %s" % (
                stage.name, rec["ph"] / 1000.0, rec["ph_setpoint"] / 1000.0, rec["base_dose"] / 100.0,
                messages.MODES[rec["mode"]], alarm_text(rec["alarms_active"])))
        return [head] + rows


def clock(t_s):
    t = int(t_s)
    return "%d:%02d:%02d" % (t // 3600, t // 60 % 60, t % 60)


def summary(result, last_s=600.0, band=0.1):
    """Per stage: final pH against setpoint, worst error over the last `last_s` (records in auto),
    time to settle within ±band for good, base used; from the boards' telemetry as logged."""
    rows = []
    for i, stage in enumerate(result.plant.stages):
        recs = result.telemetry[stage.address]
        if not recs:
            rows.append(dict(stage=stage.name, records=0))
            continue
        end = recs[-1]["time_s"]
        tail = [r for r in recs if r["time_s"] >= end - last_s and r["mode"] == AUTO]
        if not tail:
            rows.append(dict(stage=stage.name, records=len(recs), auto=False))
            continue
        err = [abs(r["ph"] - r["ph_setpoint"]) / 1000.0 for r in tail]
        settled = None
        for r in reversed(recs):
            if abs(r["ph"] - r["ph_setpoint"]) / 1000.0 > band or r["mode"] != AUTO:
                break
            settled = r["time_s"]
        used_ml = 0.0
        for a, b in zip(recs, recs[1:]):
            used_ml += a["base_dose"] / 100.0 * (b["time_s"] - a["time_s"]) / 60.0
        alarms = 0
        for r in recs:
            alarms |= r["alarms_active"] | r["alarms_unacked"]
        rows.append(dict(stage=stage.name, records=len(recs), ph=tail[-1]["ph"] / 1000.0,
                         setpoint=tail[-1]["ph_setpoint"] / 1000.0,
                         mean_ph=sum(r["ph"] for r in tail) / len(tail) / 1000.0, max_error=max(err),
                         within=max(err) <= band, settled_s=settled, base_used_L=used_ml / 1000.0,
                         alarms_seen=alarm_text(alarms)))
    return rows


def summary_text(rows, last_s=600.0, band=0.1):
    out = ["%-6s %7s %7s %12s %10s %10s  %s" % ("stage", "pH", "target", "max |err|", "settled", "base used",
                                                 "alarms seen")]
    for r in rows:
        if not r.get("records"):
            out.append("%-6s no telemetry" % r["stage"])
            continue
        if r.get("auto") is False:
            out.append("%-6s not in auto over the last %d min" % (r["stage"], last_s // 60))
            continue
        out.append("%-6s %7.3f %7.3f %12.3f %10s %8.2f L  %s" % (
            r["stage"], r["mean_ph"], r["setpoint"], r["max_error"],
            "never" if r["settled_s"] is None else clock(r["settled_s"]), r["base_used_L"], r["alarms_seen"]))
    out.append("pH: mean over the last %d min; max |err|: worst reading there; settled: from then on within "
               "±%.2f pH in auto" % (last_s // 60, band))
    return "\n".join(out)
