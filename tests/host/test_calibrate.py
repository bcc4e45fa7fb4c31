"""The calibration wizard: prompts, stability wait, limits shown, commit, abort on reject."""
import pytest
from sxproto import messages

from sxctl.calibrate import CalibrationFailed, Wizard


class Reply:
    def __init__(self, values):
        self.values = values


class FakeBoard:
    """Answers CALIBRATE like firmware/calibration.py, for a scripted electrode sitting in the
    buffer of pH `in_buffer` (moved by the wizard's prompts through `say`)."""

    def __init__(self, slope_pct=98.0, offset_mv=5.0, unstable_polls=2):
        self.slope = slope_pct
        self.offset = offset_mv
        self.unstable = unstable_polls
        self.steps = []
        self.points = 0
        self.committed = False
        self.aborted = False
        self.in_buffer = 7.0
        self.alarms = 0

    def live_uv(self):
        return int(self.offset * 1000 - (self.in_buffer - 7.0) * 59160 * self.slope / 100)

    def request(self, addr, message, values=None, expect=None):
        if message is messages.GET_TELEMETRY:
            return Reply(dict(alarms_active=self.alarms, temperature=2500))
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
        return Reply(dict(sensor=0, points=self.points, live_uv=self.live_uv(), live_value=7000,
                          stable=stable, slope_acid=int(self.slope * 100), slope_base=int(self.slope * 100),
                          offset_uv=int(self.offset * 1000), verdict=verdict, cal_id=4 if self.committed else 3))


def _wizard(board, answers=(), **kw):
    said = []
    answers = list(answers)

    def told(text):  # the user puts the probe where a prompt says
        said.append(text)
        if "buffer (pH" in text:
            board.in_buffer = float(text.split("buffer (pH ")[1].split()[0])
    wizard = Wizard(board, 2, "ph", ask=lambda text: told(text) or answers.pop(0),
                    say=told, poll_s=0, settle_s=0, fault_grace_s=0, **kw)
    return wizard, said


def test_scripted_two_point_calibration_waits_for_stable_readings_and_commits():
    board = FakeBoard()
    wizard, said = _wizard(board, assume_yes=True)
    status = wizard.run(["7.00", "4.00"], temperature_c=21.5)
    assert board.committed and not board.aborted
    points = [s for s in board.steps if s[0] == 2]
    assert points == [(2, 7014, 2150), (2, 4000, 2150)]  # each buffer's pH at 21.5 °C (7.00 reads 7.014)
    polls_before_first_point = board.steps.index((2, 7014, 2150)) - 1
    assert polls_before_first_point == 4  # two unstable polls, then stable twice (held settle_s)
    assert status["slope_acid"] == 9800
    text = "\n".join(said)
    assert "98.00 %" in text and "+5.0 mV" in text and "committed: calibration id 4" in text
    summary = wizard.summary(status)  # what --json prints
    assert summary["committed"] and summary["cal_id"] == 4 and summary["slope_acid_pct"] == 98.0
    assert summary["offset_mv"] == 5.0 and summary["verdict"] in messages.CAL_VERDICTS.values()


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
    assert "(pH 10.010 at 25.0 °C)" in prompts[1]  # the board's temperature input, no --temperature
    assert board.aborted and not board.committed


def test_unknown_buffer_is_refused_before_the_board_is_touched():
    board = FakeBoard()
    wizard, _ = _wizard(board, assume_yes=True)
    with pytest.raises(Exception, match="no pH buffer '6.87': the buffers are 1.68, 2.00, 4.00"):
        wizard.run(["7.00", "6.87"])
    assert board.steps == []  # nothing begun on the board


def test_a_railed_electrode_is_refused_and_a_faulted_ph_never_shown_as_a_number():
    board = FakeBoard(offset_mv=2000.0)  # railed at +2000 mV: once "pH 7.000 stable"
    board.alarms = 1 << 4  # ph_sensor_fault
    wizard, said = _wizard(board, assume_yes=True)
    with pytest.raises(CalibrationFailed, match="reads \\+2000 mV, beyond the ±700 mV.*ph_sensor_fault"):
        wizard.run(["7.00", "4.00"])
    assert board.aborted and not any(s[0] == 2 for s in board.steps)
    live = [text for text in said if text.startswith("  live")]
    assert live and all("pH  FAULT" in text and "7.000" not in text for text in live)


def test_under_yes_a_point_waits_for_the_reading_to_move_then_times_out_saying_why():
    board = FakeBoard(unstable_polls=0)
    wizard, said = _wizard(board, assume_yes=True, stable_timeout=0.2)
    wizard.say = said.append  # nobody moves the probe: it stays in the 7.00 buffer
    with pytest.raises(CalibrationFailed, match="did not move as expected for the pH 4.00 buffer"):
        wizard.run(["7.00", "4.00"])
    assert [s[0] for s in board.steps].count(2) == 1 and board.aborted
    assert any("has not moved as it should" in text for text in said)


def test_buffers_are_taken_mid_first_at_their_temperature():
    from sxctl.calibrate import ph_points

    assert ph_points(["1.68", "4.00"]) == ["4.00", "1.68"]
    assert ph_points(["4", "7", "10"]) == ["7.00", "4.00", "10.01"]
    assert ph_points(["2.00", "6.86", "9.18"]) == ["6.86", "2.00", "9.18"]


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
        self.temperature_c = 25.0
        self.railed_uv = None  # an electrode stuck at this potential instead
        self.ticks = 0
        self.tick_s = 0.005  # real seconds between ticks: the board's clock runs that much faster
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        t = 0
        while not self.stop.is_set():
            t += 1000
            self.ticks += 1
            uv = self.railed_uv if self.railed_uv is not None else electrode_uv(self.ph, self.temperature_c, OFFSET_UV, SLOPE)
            self.link.send(plantlink.sense_record(t, ph_uv=uv))
            deadline = time.monotonic() + 5
            while not self.link.read() and time.monotonic() < deadline and not self.stop.is_set():
                time.sleep(0.001)
            time.sleep(self.tick_s)  # leave the bus some room between ticks


@pytest.fixture(scope="module")
def beaker():
    """One virtual board whose electrode sits in a simulated beaker, and a bus client to it."""
    sim = Simulator(1, heapsize="%dK" % boards.load("unix-sim")["heap_kb"], plant_link=True)
    link = sim.plant_links[1]
    link.preload(plantlink.sense_record(0, ph_uv=electrode_uv(7.0, 25.0, OFFSET_UV, SLOPE)))
    beaker = Beaker(link)
    sim.start()
    halt = sim.run_in_background()
    beaker.thread.start()
    try:
        sim.wait_ready()
        with BusClient(sim.bus.path) as bus:
            beaker.bus = bus
            yield beaker
    finally:
        halt()
        beaker.stop.set()
        sim.close()


def _cal_items(bus):
    return {name: bus.request(1, messages.CONFIG_READ, dict(item=config_items.BY_NAME[name].id),
                              expect=messages.CONFIG_VALUE).values["value"]
            for name in ("ph_cal_offset", "ph_cal_slope_acid", "ph_cal_id")}


def test_scripted_ph_calibration_with_simulated_buffers_gives_the_electrode_slope_and_offset(beaker):
    beaker.ph, beaker.temperature_c = 7.0, 25.0
    buffers = iter((7.0, 4.0))

    def ask(text):  # the user moves the probe when asked, then presses Enter
        if "buffer" in text:
            beaker.ph = next(buffers)
        return "y"
    before = _cal_items(beaker.bus)["ph_cal_id"]
    wizard = Wizard(beaker.bus, 1, "ph", ask=ask, say=lambda text: None, poll_s=0.05, stable_timeout=30, settle_s=0.3)
    status = wizard.run(["7.00", "4.00"], temperature_c=25.0)
    read = _cal_items(beaker.bus)
    assert status["verdict"] == 1  # ok: inside the warn limits
    assert abs(read["ph_cal_offset"] - OFFSET_UV) <= 200  # µV
    assert abs(read["ph_cal_slope_acid"] - SLOPE * 10000) <= 10  # 0.01 %
    assert read["ph_cal_id"] == before + 1


def test_a_railed_electrode_on_a_board_is_refused_and_nothing_committed(beaker):
    before = _cal_items(beaker.bus)
    beaker.railed_uv = 2_000_000
    try:
        wizard = Wizard(beaker.bus, 1, "ph", say=lambda text: None, assume_yes=True, poll_s=0.05,
                        stable_timeout=20, settle_s=0.3, fault_grace_s=0.5)
        with pytest.raises(CalibrationFailed, match="beyond the ±700 mV a pH electrode gives"):
            wizard.run(["7.00", "4.00"], temperature_c=25.0)
    finally:
        beaker.railed_uv = None
    assert _cal_items(beaker.bus) == before


def test_under_yes_a_late_buffer_change_is_waited_for_and_gives_the_electrode_slope(beaker):
    beaker.ph, beaker.temperature_c = 7.0, 25.0
    said = []

    def say(text):  # the user is slow: the probe reaches the 4.00 buffer 40 ticks after the prompt
        said.append(text)
        if text.startswith("Rinse the probe and put it in the pH 4.00 buffer"):
            start = beaker.ticks
            threading.Thread(target=lambda: _move_when(beaker, start + 40, 4.0), daemon=True).start()
    wizard = Wizard(beaker.bus, 1, "ph", say=say, assume_yes=True, poll_s=0.05, stable_timeout=60, settle_s=0.3)
    status = wizard.run(["7.00", "4.00"], temperature_c=25.0)
    assert any("has not moved as it should" in text for text in said)  # it waited, and said so
    read = _cal_items(beaker.bus)
    assert status["verdict"] == 1
    assert abs(read["ph_cal_slope_acid"] - SLOPE * 10000) <= 10  # not the 0 % of a point taken too early
    assert abs(read["ph_cal_offset"] - OFFSET_UV) <= 200


def _move_when(beaker, tick, ph):
    while beaker.ticks < tick and not beaker.stop.is_set():
        time.sleep(0.005)
    beaker.ph = ph


def test_a_1_68_and_4_00_calibration_at_20_c_follows_the_buffer_tables(beaker):
    from sxproto import buffers

    beaker.temperature_c = 20.0
    order = iter((4.0, 1.675))  # the electrode sits in each buffer at its 20 °C pH (1.68 reads 1.675)

    def say(text):
        if text.startswith("Rinse the probe"):
            beaker.ph = next(order)
    try:
        wizard = Wizard(beaker.bus, 1, "ph", say=say, assume_yes=True, poll_s=0.05, stable_timeout=60, settle_s=0.3)
        status = wizard.run(["1.68", "4.00"], temperature_c=20.0)
    finally:
        beaker.temperature_c = 25.0
    assert buffers.ph_at("1.68", 20.0) == 1.675 and buffers.ph_at("4.00", 20.0) == 4.000
    read = _cal_items(beaker.bus)
    assert status["verdict"] == 1
    assert abs(read["ph_cal_slope_acid"] - SLOPE * 10000) <= 10
    assert abs(read["ph_cal_offset"] - OFFSET_UV) <= 300  # the potential at pH 7.00, extrapolated


def test_the_buffer_table_gives_each_buffer_at_its_temperature():
    from sxproto import buffers

    temps = (0, 10, 20, 25, 30, 40, 50)
    assert [buffers.ph_at("7.00", t) for t in temps] == [7.12, 7.06, 7.02, 7.00, 6.99, 6.98, 6.97]
    assert [buffers.ph_at("10.01", t) for t in temps] == [10.32, 10.18, 10.06, 10.01, 9.97, 9.89, 9.83]
    assert [buffers.ph_at("4.00", t) for t in temps] == [4.00, 4.00, 4.00, 4.00, 4.01, 4.03, 4.06]
    assert buffers.ph_at("10.01", 15) == 10.12 and buffers.ph_at("4.00", 35) == 4.02
    assert buffers.ph_at("7", 22.5) == 7.01
    # primary (NIST/DIN 19266) buffers at 25 °C are their names
    assert [buffers.ph_at(n, 25) for n in ("1.68", "4.005", "6.86", "9.18")] == [1.679, 4.005, 6.865, 9.180]
    assert buffers.ph_at("1.68", 37.5) == 1.691  # between 35 (1.688) and 40 (1.694)
    with pytest.raises(buffers.BufferError, match="tabulated for 5-50 °C"):
        buffers.ph_at("2.00", 2.0)
    with pytest.raises(buffers.BufferError, match="no pH buffer '3.00'"):
        buffers.name_of("3.00")
