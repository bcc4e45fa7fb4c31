"""The calibration wizard: prompts, stability wait, limits shown, commit, abort on reject."""
import pytest
from sxproto import messages

from sxctl.calibrate import CalibrationFailed, Wizard


class Reply:
    def __init__(self, values):
        self.values = values


class FakeBoard:
    """Answers CALIBRATE like firmware/calibration.py, for a scripted electrode."""

    def __init__(self, slope_pct=98.0, offset_mv=5.0, unstable_polls=2):
        self.slope = slope_pct
        self.offset = offset_mv
        self.unstable = unstable_polls
        self.steps = []
        self.points = 0
        self.committed = False
        self.aborted = False

    def request(self, addr, message, values=None, expect=None):
        assert message is messages.CALIBRATE and expect is messages.CAL_STATUS
        step = values["step"]
        self.steps.append((step, values["reference"], values["temperature"]))
        if step == 1:
            self.points = 0
        elif step == 2:
            self.points += 1
        elif step == 3:
            self.committed = True
        elif step == 4:
            self.aborted = True
        stable = 1
        if step == 0 and self.unstable:
            self.unstable -= 1
            stable = 0
        reject = not 85 <= self.slope <= 105 or abs(self.offset) > 60
        warn = not 95 <= self.slope <= 105 or abs(self.offset) > 30
        verdict = 0 if not self.points else (3 if reject else 2 if warn else 1)
        return Reply(dict(sensor=0, points=self.points, live_uv=int(self.offset * 1000), live_value=7000,
                          stable=stable, slope_acid=int(self.slope * 100), slope_base=int(self.slope * 100),
                          offset_uv=int(self.offset * 1000), verdict=verdict, cal_id=4 if self.committed else 3))


def _wizard(board, answers=(), **kw):
    said = []
    answers = list(answers)
    wizard = Wizard(board, 2, "ph", ask=lambda text: said.append(text) or answers.pop(0),
                    say=said.append, poll_s=0, settle_s=0, **kw)
    return wizard, said


def test_scripted_two_point_calibration_waits_for_stable_readings_and_commits():
    board = FakeBoard()
    wizard, said = _wizard(board, assume_yes=True)
    status = wizard.run(["7.00", "4.00"], temperature_c=21.5)
    assert board.committed and not board.aborted
    points = [s for s in board.steps if s[0] == 2]
    assert points == [(2, 7000, 2150), (2, 4000, 2150)]
    polls_before_first_point = board.steps.index((2, 7000, 2150)) - 1
    assert polls_before_first_point == 4  # two unstable polls, then stable twice (held settle_s)
    assert status["slope_acid"] == 9800
    text = "\n".join(said)
    assert "98.00 %" in text and "+5.0 mV" in text and "committed: calibration id 4" in text


def test_rejected_calibration_is_aborted_and_fails_with_the_reason():
    board = FakeBoard(slope_pct=80.0)
    wizard, said = _wizard(board, assume_yes=True)
    with pytest.raises(CalibrationFailed, match="80.0 % outside 85-105"):
        wizard.run(["7.00", "4.00"])
    assert board.aborted and not board.committed


def test_interactive_prompts_and_declined_commit_aborts():
    board = FakeBoard(unstable_polls=0)
    wizard, said = _wizard(board, answers=["", "", "n"])
    assert wizard.run(["7.00", "10.01"]) is None
    prompts = [s for s in said if s.endswith("(Ctrl-C aborts) ")]
    assert len(prompts) == 2 and "pH 7.00 buffer" in prompts[0] and "pH 10.01 buffer" in prompts[1]
    assert board.aborted and not board.committed


def test_unknown_buffer_is_refused_before_the_board_is_touched():
    board = FakeBoard()
    wizard, _ = _wizard(board, assume_yes=True)
    with pytest.raises(Exception, match="buffers are 4.00, 7.00 and 10.01"):
        wizard.run(["6.86"])
    assert board.aborted


# --- end to end: a virtual board whose electrode sits in simulated buffers -----------------------

import threading  # noqa: E402
import time  # noqa: E402

from sxctl import boards  # noqa: E402
from sxctl.buslink import BusClient  # noqa: E402
from sxctl.sim import plantlink  # noqa: E402
from sxctl.sim.instruments import electrode_uv  # noqa: E402
from sxctl.sim.simulator import Simulator  # noqa: E402
from sxproto import config_items  # noqa: E402

OFFSET_UV = 12000.0  # this electrode reads +12 mV at pH 7
SLOPE = 0.97  # and 97 % of the Nernst slope


class Beaker:
    """Ticks one board's plant link (one simulated second per tick) with the electrode in `ph`."""

    def __init__(self, link):
        self.link = link
        self.ph = 7.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        t = 0
        while not self.stop.is_set():
            t += 1000
            self.link.send(plantlink.sense_record(t, ph_uv=electrode_uv(self.ph, 25.0, OFFSET_UV, SLOPE)))
            deadline = time.monotonic() + 5
            while not self.link.read() and time.monotonic() < deadline and not self.stop.is_set():
                time.sleep(0.001)
            time.sleep(0.005)  # leave the bus some room between ticks


def test_scripted_ph_calibration_with_simulated_buffers_gives_the_electrode_slope_and_offset():
    sim = Simulator(1, heapsize="%dK" % boards.load("unix-sim")["heap_kb"], plant_link=True)
    link = sim.plant_links[1]
    link.preload(plantlink.sense_record(0, ph_uv=electrode_uv(7.0, 25.0, OFFSET_UV, SLOPE)))
    beaker = Beaker(link)
    try:
        sim.start()
        halt = sim.run_in_background()
        beaker.thread.start()
        try:
            sim.wait_ready()
            with BusClient(sim.bus.path) as bus:
                buffers = iter((7.0, 4.0))

                def ask(text):  # the user moves the probe when asked, then presses Enter
                    if "buffer" in text:
                        beaker.ph = next(buffers)
                    return "y"
                wizard = Wizard(bus, 1, "ph", ask=ask, say=lambda text: None, poll_s=0.05, stable_timeout=30,
                                settle_s=0.3)
                status = wizard.run(["7.00", "4.00"], temperature_c=25.0)
                read = {name: bus.request(1, messages.CONFIG_READ, dict(item=config_items.BY_NAME[name].id),
                                          expect=messages.CONFIG_VALUE).values["value"]
                        for name in ("ph_cal_offset", "ph_cal_slope_acid", "ph_cal_id")}
        finally:
            halt()
    finally:
        beaker.stop.set()
        sim.close()
    assert status["verdict"] == 1  # ok: inside the warn limits
    assert abs(read["ph_cal_offset"] - OFFSET_UV) <= 200  # µV
    assert abs(read["ph_cal_slope_acid"] - SLOPE * 10000) <= 10  # 0.01 %
    assert read["ph_cal_id"] == 1
