"""Guided calibration of a stage's pH, ORP or flow input over the bus.

The board does the arithmetic and keeps the old calibration until commit (firmware/
calibration.py); this side leads the user: what to do next, the live reading, a wait for a
stable reading, the buffer's value at its temperature, slope and offset against the
acceptance limits (DOMAIN.md §3), then commit or abort. With `assume_yes` it runs without
prompts, for scripts.
"""
import time

from sxproto import messages

from .errors import SxctlError

PH_BUFFERS = {"7": 7000, "7.00": 7000, "4": 4000, "4.00": 4000, "10": 10010, "10.01": 10010}
SENSORS = {"ph": 0, "orp": 1, "flow_aq": 2, "flow_org": 3}
PROBE_TEMPERATURE = -32768
# Electrode acceptance [S23-S26]: warn outside 95-105 % or ±30 mV, reject outside 85-105 % or ±60 mV.
SLOPE_WARN = (95.0, 105.0)
SLOPE_REJECT = (85.0, 105.0)
OFFSET_WARN_MV = 30.0
OFFSET_REJECT_MV = 60.0
VERDICTS = messages.CAL_VERDICTS


class CalibrationFailed(SxctlError):
    pass


class Wizard:
    def __init__(self, bus, addr, sensor, ask=input, say=print, assume_yes=False,
                 stable_timeout=120.0, poll_s=0.5, settle_s=10.0):
        if sensor not in SENSORS:
            raise SxctlError("unknown sensor %r: use one of %s" % (sensor, ", ".join(SENSORS)))
        self.bus = bus
        self.addr = addr
        self.sensor = sensor
        self.code = SENSORS[sensor]
        self.ask = ask
        self.say = say
        self.assume_yes = assume_yes
        self.stable_timeout = stable_timeout
        self.poll_s = poll_s
        self.settle_s = settle_s  # the board's stable reading must also hold this long here

    def _step(self, step, reference=0, temperature=0):
        return self.bus.request(self.addr, messages.CALIBRATE, dict(
            sensor=self.code, step=step, reference=reference, temperature=temperature),
            expect=messages.CAL_STATUS).values

    def _prompt(self, text):
        if self.assume_yes:
            self.say(text)
            return
        self.ask(text + " Press Enter when ready (Ctrl-C aborts) ")

    def _live(self, status):
        if self.sensor == "ph":
            return "%+8.1f mV  pH %6.3f" % (status["live_uv"] / 1000, status["live_value"] / 1000)
        if self.sensor == "orp":
            return "%+8.1f mV" % (status["live_uv"] / 1000)
        return "%d pulses" % status["live_value"]

    def wait_stable(self):
        """Poll until the board calls the reading stable and it has stayed within 0.5 mV for
        settle_s here too (the board judges its last few scans; right after the probe moved
        those can still be the old buffer's); print the live value meanwhile."""
        deadline = time.monotonic() + self.stable_timeout
        since = None
        while True:
            status = self._step(0)
            self.say("  live %s%s" % (self._live(status), "  stable" if status["stable"] else ""))
            now = time.monotonic()
            if not status["stable"] or (since and abs(status["live_uv"] - since[1]) > 500):
                since = None
            elif since is None:
                since = (now, status["live_uv"])
            elif now - since[0] >= self.settle_s:
                return status
            if now > deadline:
                raise CalibrationFailed("the reading did not settle within %.0f s: check the probe is "
                                        "immersed and not touching the beaker, then try again"
                                        % self.stable_timeout)
            time.sleep(self.poll_s)

    def run(self, points, temperature_c=None):
        """Calibrate with `points` (buffers for pH, mV for ORP, mL for flow); commit or abort."""
        self._step(1)  # begin
        try:
            status = None
            for point in points:
                status = self._point(point, temperature_c)
            self.report(status)
            if status["verdict"] == 3:
                raise CalibrationFailed("calibration rejected (%s); the previous calibration stays in use"
                                        % self._why(status))
            if not self.assume_yes:
                answer = self.ask("Commit this calibration? [y/N] ").strip().lower()
                if answer not in ("y", "yes"):
                    self._step(4)
                    self.say("aborted: the previous calibration stays in use")
                    return None
            done = self._step(3)
            self.say("committed: calibration id %d" % done["cal_id"])
            return status
        except BaseException:
            try:
                self._step(4)  # abort: the board puts the old calibration back
            except SxctlError:
                pass
            raise

    def _point(self, point, temperature_c):
        temperature = PROBE_TEMPERATURE if temperature_c is None else int(round(temperature_c * 100))
        if self.sensor == "ph":
            reference = PH_BUFFERS.get(str(point))
            if reference is None:
                raise SxctlError("pH buffers are 4.00, 7.00 and 10.01 (mid point 7.00 first); got %r" % point)
            self._prompt("Rinse the probe and put it in the pH %.2f buffer." % (reference / 1000))
        elif self.sensor == "orp":
            reference = int(point)
            self._prompt("Put the ORP probe in the %d mV standard." % reference)
        else:
            reference = int(point)
            self._prompt("Reset the measuring vessel; run exactly %d mL through the meter." % reference)
        if self.sensor in ("ph", "orp"):
            self.wait_stable()
        status = self._step(2, reference, temperature)
        return status

    def _why(self, s):
        reasons = []
        for side in ("slope_acid", "slope_base"):
            pct = s[side] / 100
            if not SLOPE_REJECT[0] <= pct <= SLOPE_REJECT[1]:
                reasons.append("%s %.1f %% outside %g-%g %%" % (side.replace("_", " "), pct, *SLOPE_REJECT))
        if abs(s["offset_uv"] / 1000) > OFFSET_REJECT_MV:
            reasons.append("offset %+.1f mV beyond ±%g mV" % (s["offset_uv"] / 1000, OFFSET_REJECT_MV))
        return "; ".join(reasons) or "the board refused the point"

    def report(self, s):
        if self.sensor != "ph":
            self.say("verdict: %s" % VERDICTS.get(s["verdict"], s["verdict"]))
            return
        for side in ("slope_acid", "slope_base"):
            pct = s[side] / 100
            mark = "ok" if SLOPE_WARN[0] <= pct <= SLOPE_WARN[1] else (
                "warn" if SLOPE_REJECT[0] <= pct <= SLOPE_REJECT[1] else "REJECT")
            self.say("%-11s %6.2f %%  (warn outside %g-%g, reject outside %g-%g)  %s" % (
                side.replace("_", " "), pct, *SLOPE_WARN, *SLOPE_REJECT, mark))
        off = s["offset_uv"] / 1000
        mark = "ok" if abs(off) <= OFFSET_WARN_MV else ("warn" if abs(off) <= OFFSET_REJECT_MV else "REJECT")
        self.say("offset      %+6.1f mV (warn beyond ±%g, reject beyond ±%g)  %s" % (
            off, OFFSET_WARN_MV, OFFSET_REJECT_MV, mark))
        self.say("verdict: %s" % VERDICTS.get(s["verdict"], s["verdict"]))
