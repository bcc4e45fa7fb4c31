"""sxctl monitor: one table of every stage, alarms acknowledged by command line or keyboard."""
import io

from simboards import sxctl
from sxproto import messages

from sxctl import monitor
from sxctl.bench.host_log import FakeBoard, memory_bus


def test_once_prints_every_stage(sim3):
    proc = sxctl("monitor", "--port", sim3.bus, "--stages", "1-3", "--once")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("sxctl monitor  " + sim3.bus)
    assert lines[2].split()[:4] == ["stg", "pH", "setpt", "dev"]
    assert max(len(line) for line in lines) <= 80  # fits a standard terminal
    rows = {line.split()[0]: (line.split(), lines[i + 5]) for i, line in enumerate(lines[4:]) if line[:3].strip().isdigit()}
    assert set(rows) == {"1", "2", "3"}
    for cells, alarms in rows.values():
        assert cells[12] in messages.MODES.values()
        if cells[1] == "FAULT":  # a board on the bench, no electrode: a fault, never a number
            assert "ph_sensor_fault" in alarms and cells[3] == "--"
        else:
            float(cells[1])
    assert "\x1b" not in proc.stdout  # not a terminal: no escape sequences


def test_once_says_which_stage_did_not_answer(sim3):
    proc = sxctl("monitor", "--port", sim3.bus, "--addr", "1", "9", "--once")
    assert proc.returncode == 1
    assert any(line.split()[:3] == ["9", "no", "answer"] for line in proc.stdout.splitlines())


def test_ack_from_the_command_line(sim3):
    proc = sxctl("monitor", "--port", sim3.bus, "--ack", "2")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("stage 2: acknowledged ")


def _board_with_alarm():
    board = FakeBoard(1)
    board.raise_alarm(3)
    return board, memory_bus([board])


def test_table_marks_unacknowledged_alarms_and_ack_clears_them():
    board, bus = _board_with_alarm()
    view = monitor.read_stage(bus, 1)
    assert view.unacked == 1 << 3
    assert monitor.table([view])[3].endswith("alarms: ph_low*")
    assert monitor.acknowledge(bus, 1) == "stage 1: acknowledged ph_low; still active: ph_low"
    assert monitor.table([monitor.read_stage(bus, 1)])[3].endswith("alarms: ph_low")
    assert [e["code"] for e in board.events][-1] == 3  # the board queued an acknowledged event


class ScriptedKeys:
    """A keyboard that types one string per refresh, then `q`."""

    def __init__(self, *typed):
        self.typed = list(typed)

    def read_keys(self, timeout):
        return self.typed.pop(0) if self.typed else "q"


def test_keyboard_acknowledges_a_stage_and_quits():
    board, bus = _board_with_alarm()
    out = io.StringIO()
    monitor.live(bus, [1], period=0.01, out=out, keyboard=ScriptedKeys("a", "1", "\r"))
    assert board.latched == 0
    screens = out.getvalue()
    assert "acknowledge alarms of stage: 1" in screens
    assert "stage 1: acknowledged ph_low" in screens


def test_keys_cancel_and_edit():
    keys = monitor.Keys()
    assert [keys.feed(c) for c in "a1\x1b"] == [None, None, None] and keys.typing is None
    assert [keys.feed(c) for c in "a12\x7f3\n"][-1] == ("ack", 13)
    assert keys.feed("q") == ("quit",)


def test_alarm_text_keeps_the_two_states_apart():
    low, trip = 1 << 3, 1 << 15
    assert monitor.alarms_text(low, low) == "ph_low*"                    # active, unacknowledged
    assert monitor.alarms_text(low, 0) == "ph_low"                       # active, acknowledged
    assert monitor.alarms_text(0, trip) == "dose_trip*(cleared)"         # cleared, unacknowledged
    assert monitor.alarms_text(0, 0) == ""


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_alarms_are_coloured_only_on_a_terminal_and_never_with_no_color(monkeypatch):
    board, bus = _board_with_alarm()
    view = monitor.read_stage(bus, 1)
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert monitor.colour_wanted(_Tty()) and not monitor.colour_wanted(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not monitor.colour_wanted(_Tty())
    coloured = monitor.table([view], colour=True)
    assert "\x1b[31malarms: ph_low*\x1b[0m" in coloured[3]
    assert not any("\x1b" in line for line in monitor.table([view], colour=False))
    assert all(len(line) <= monitor.WIDTH for line in monitor.table([view]))
