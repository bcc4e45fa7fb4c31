"""Guided calibration of a stage's pH, ORP or flow input over the bus.

The board does the arithmetic and keeps the old calibration until commit (firmware/
calibration.py); this side leads the user: what to do next, the live reading, a wait for a
stable reading, the buffer's value at its temperature (sxproto/buffers.py, sent with the point),
slope and offset against the acceptance limits (DOMAIN.md §3), then commit or abort. With
`assume_yes` it runs without prompts, for scripts.

A pH point is taken only from an electrode that reads like one: not faulted, not at its rail,
stable, and (after the first buffer) moved from the previous buffer's reading by about the
Nernst slope times the pH step; under `assume_yes` it waits, up to the stable timeout, for the
probe to be moved. The buffer nearest pH 7 is taken first, as the board's mid point.
"""
import time

from sxproto import buffers, messages
# the electrode acceptance limits the board judges by, shown beside its verdict
from sxproto.buffers import OFFSET_REJECT_MV, OFFSET_WARN_MV, PROBE_TEMPERATURE, SLOPE_REJECT, SLOPE_WARN

from .errors import SxctlError

# A glass electrode reads within about ±420 mV over pH 0-14; beyond this it is railed, open or shorted.
ELECTRODE_MAX_UV = 700_000
# After the first buffer the reading must move by this share of the Nernst step (the board's
# reject limits are 85-105 % of it, DOMAIN.md §3; a little room either side for the meter).
MOVE_SHARE = (0.80, 1.10)
PH_FAULT_BIT = next(bit for bit, name in messages.ALARMS.items() if name == "ph_sensor_fault")
TEMPERATURE_FAULT_BIT = next(bit for bit, name in messages.ALARMS.items() if name == "temperature_fault")
SENSORS = {"ph": 0, "orp": 1, "flow_aq": 2, "flow_org": 3}
VERDICTS = messages.CAL_VERDICTS


class CalibrationFailed(SxctlError):
    pass


def nernst_uv(temperature_c):
    """Ideal electrode slope in µV per pH (59.16 mV at 25 °C, proportional to absolute temperature)."""
    return 59160.0 * (temperature_c + 273.15) / 298.15


def ph_points(texts):
    """Buffer names in the order to take them: the one nearest pH 7 first (the board's mid point),
    then the others as given. BufferError for an unknown buffer."""
    names = [buffers.name_of(t) for t in texts]
    if len(set(names)) != len(names):
        raise SxctlError("a pH buffer is given twice in %s" % ",".join(texts))
    mid = min(names, key=lambda n: abs(buffers.BUFFERS[n][0][1] - 7))
    return [mid] + [n for n in names if n != mid]


class Wizard:
    def __init__(self, bus, addr, sensor, ask=input, say=print, assume_yes=False,
                 stable_timeout=120.0, poll_s=0.5, settle_s=10.0, fault_grace_s=10.0):
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
        self.fault_grace_s = fault_grace_s  # a faulted or railed reading is refused once it lasts this long

    def _step(self, step, reference=0, temperature=0):
        return self.bus.request(self.addr, messages.CALIBRATE, dict(
            sensor=self.code, step=step, reference=reference, temperature=temperature),
            expect=messages.CAL_STATUS).values

    def _prompt(self, text):
        if self.assume_yes:
            self.say(text)
            return
        self.ask(text + " Press Enter when ready (Ctrl-C aborts) ")

    def _live(self, status, faulted=False):
        if self.sensor == "ph" and faulted:  # the board's pH is no reading; the electrode's mV still is
            return "%+8.1f mV  pH  FAULT" % (status["live_uv"] / 1000)
        if self.sensor == "ph":
            return "%+8.1f mV  pH %6.3f" % (status["live_uv"] / 1000, status["live_value"] / 1000)
        if self.sensor == "orp":
            return "%+8.1f mV" % (status["live_uv"] / 1000)
        return "%d pulses" % status["live_value"]

    def _alarms(self):
        return self.bus.request(self.addr, messages.GET_TELEMETRY, expect=messages.TELEMETRY).values["alarms_active"]

    def _refuse_unusable(self, status, alarms):
        """The reason a pH reading cannot be calibrated on, or None. The board's sensor-fault
        alarm alone is not one: moving the probe between buffers trips its rate check, while the
        electrode's own signal (what a point takes) is fine; a railed or open input is."""
        if abs(status["live_uv"]) >= ELECTRODE_MAX_UV:
            return ("the electrode reads %+.0f mV, beyond the ±%d mV a pH electrode gives: the input is railed, "
                    "open or shorted%s; check the electrode and its cable" % (
                status["live_uv"] / 1000, ELECTRODE_MAX_UV // 1000,
                " (the board reports ph_sensor_fault)" if alarms >> PH_FAULT_BIT & 1 else ""))
        return None

    def wait_stable(self, expect_uv=None, what=""):
        """Poll until the board calls the reading stable and it has stayed within 0.5 mV for
        settle_s here too (the board judges its last few scans; right after the probe moved
        those can still be the old buffer's); print the live value meanwhile. For pH, a faulted
        or railed reading is refused, and with `expect_uv` (lo, hi) the reading must also lie in
        that window: it has moved from the previous buffer by the expected amount."""
        deadline = time.monotonic() + self.stable_timeout
        since = None
        told = False
        unusable_since = None
        while True:
            status = self._step(0)
            faulted = False
            if self.sensor == "ph":
                alarms = self._alarms()
                faulted = bool(alarms >> PH_FAULT_BIT & 1)
                why = self._refuse_unusable(status, alarms)
                if why:  # moving the probe can fault the input for a moment: refused if it lasts
                    self.say("  live %s" % self._live(status, faulted=True))
                    now = time.monotonic()
                    unusable_since = unusable_since or now
                    if now - unusable_since >= min(self.fault_grace_s, self.stable_timeout) or now > deadline:
                        raise CalibrationFailed(why + "; the previous calibration stays in use")
                    since = None
                    time.sleep(self.poll_s)
                    continue
                unusable_since = None
            moved = expect_uv is None or expect_uv[0] <= status["live_uv"] <= expect_uv[1]
            self.say("  live %s%s" % (self._live(status, faulted), "  stable" if status["stable"] and moved else ""))
            now = time.monotonic()
            if not moved and status["stable"] and not told:
                self.say("  the reading has not moved as it should for %s: waiting for %+.0f..%+.0f mV"
                         % (what, expect_uv[0] / 1000, expect_uv[1] / 1000))
                told = True
            if not status["stable"] or not moved or (since and abs(status["live_uv"] - since[1]) > 500):
                since = None
            elif since is None:
                since = (now, status["live_uv"])
            elif now - since[0] >= self.settle_s:
                return status
            if now > deadline:
                if not moved:
                    raise CalibrationFailed(
                        "the reading did not move as expected for %s within %.0f s (it reads %+.1f mV, expected "
                        "%+.0f..%+.0f mV): is the probe in that buffer, rinsed, and the buffer fresh? The previous "
                        "calibration stays in use" % (what, self.stable_timeout, status["live_uv"] / 1000,
                                                      expect_uv[0] / 1000, expect_uv[1] / 1000))
                raise CalibrationFailed("the reading did not settle within %.0f s: check the probe is "
                                        "immersed and not touching the beaker, then try again"
                                        % self.stable_timeout)
            time.sleep(self.poll_s)

    def run(self, points, temperature_c=None):
        """Calibrate with `points` (buffers for pH, mV for ORP, mL for flow); commit or abort."""
        if self.sensor == "ph":
            points = ph_points(points)  # refuses an unknown buffer before the board is touched
            temperature_c = self._buffer_temperature(temperature_c)
        self.previous = None  # (pH, µV) of the last pH point taken
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
            return dict(status, cal_id=done["cal_id"])
        except BaseException:
            try:
                self._step(4)  # abort: the board puts the old calibration back
            except SxctlError:
                pass
            raise

    def _buffer_temperature(self, temperature_c):
        """The buffers' temperature: given, else the board's temperature input if it works."""
        if temperature_c is not None:
            return temperature_c
        tel = self.bus.request(self.addr, messages.GET_TELEMETRY, expect=messages.TELEMETRY).values
        if tel["alarms_active"] >> TEMPERATURE_FAULT_BIT & 1:
            raise CalibrationFailed("the board's temperature input is faulted: give the buffers' temperature "
                                    "with --temperature")
        return tel["temperature"] / 100.0

    def _point(self, point, temperature_c):
        temperature = PROBE_TEMPERATURE if temperature_c is None else int(round(temperature_c * 100))
        expect = None
        what = ""
        if self.sensor == "ph":
            ph = buffers.ph_at(point, temperature_c)
            reference = int(round(ph * 1000))
            what = "the pH %s buffer (pH %.3f at %.1f °C)" % (point, ph, temperature_c)
            self._prompt("Rinse the probe and put it in the pH %s buffer (pH %.3f at %.1f °C)."
                         % (point, ph, temperature_c))
            if self.previous is not None:
                step = -nernst_uv(temperature_c) * (ph - self.previous[0])  # µV: the reading falls as pH rises
                ends = sorted((self.previous[1] + step * MOVE_SHARE[0], self.previous[1] + step * MOVE_SHARE[1]))
                expect = (int(ends[0]), int(ends[1]))
        elif self.sensor == "orp":
            reference = int(point)
            self._prompt("Put the ORP probe in the %d mV standard." % reference)
        else:
            reference = int(point)
            self._prompt("Reset the measuring vessel; run exactly %d mL through the meter." % reference)
        if self.sensor in ("ph", "orp"):
            taken = self.wait_stable(expect, what)
            if self.sensor == "ph":
                self.previous = (ph, taken["live_uv"])
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

    def summary(self, s):
        """A committed calibration's result in engineering units, verdict by name (for --json)."""
        out = dict(sensor=self.sensor, address=self.addr, committed=True, cal_id=s["cal_id"], points=s["points"],
                   verdict=VERDICTS.get(s["verdict"], s["verdict"]))
        if self.sensor == "ph":
            out.update(slope_acid_pct=s["slope_acid"] / 100, slope_base_pct=s["slope_base"] / 100,
                       offset_mv=s["offset_uv"] / 1000)
        return out

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
