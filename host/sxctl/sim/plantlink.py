"""The simulator's side of the plant link: one pty per board, SENSE out, ACT back.

The records are protocol/plantlink.py's (struct formats derived from that declaration, so the
two cannot drift); docs/plant-link.md describes them for users. A board reads its link from
the pty named by SXCTL_PLANT; its clock is the time_ms of the SENSE records it receives.

Two ways to exchange one tick (`PlantLink.exchange`):
- lock-step: wait for every board's ACT to that tick's SENSE, however long the boards take
  (bounded by a timeout that names the board that missed it): deterministic;
- paced: wait only until a deadline (the wall-clock time of the next tick); a board that has
  not answered by then keeps its previous outputs for this tick and is counted as late.

The first SENSE of a board should be written before it starts (`BoardLink.preload`): the board
then starts its clock from that record, and nothing it measures comes from an empty input.
"""
import collections
import select
import struct
import time

from sxproto import fields, plantlink

from ..errors import SxctlError
from .ptys import Pty


def _struct(record):
    infos = fields.infos(record)
    return struct.Struct("<" + "".join(f.fmt for f in infos)), [f.name for f in infos], infos


SENSE, SENSE_FIELDS, _SENSE_INFOS = _struct(plantlink.SENSE)
ACT, ACT_FIELDS, _ = _struct(plantlink.ACT)
Act = collections.namedtuple("Act", ACT_FIELDS)
TIME_MASK = 0x3FFFFFFF  # the board's clock wraps here (ticks stay small ints on 32-bit boards)
_LIMITS = {f.name: (f.lo, f.hi) for f in _SENSE_INFOS}
OFF = Act(plantlink.ACT_MAGIC, 0, 0, 0, 0, 0, 0, 0, 0, 0)  # outputs of a board not yet heard


def _clip(name, value):
    lo, hi = _LIMITS[name]
    value = int(round(value))
    return lo if value < lo else hi if value > hi else value


def sense_record(time_ms, ph_uv=0, orp_uv=0, rtd_mohm=0, pulses_aq=0, pulses_org=0):
    """The 24 bytes of one SENSE; signals are rounded and held inside their declared ranges."""
    return SENSE.pack(plantlink.SENSE_MAGIC, 0, 0, int(time_ms) & TIME_MASK, _clip("ph_uv", ph_uv),
                      _clip("orp_uv", orp_uv), _clip("rtd_mohm", rtd_mohm),
                      _clip("pulses_aq", pulses_aq), _clip("pulses_org", pulses_org))


class PlantLinkError(SxctlError):
    pass


class BoardLink:
    """One board's plant link: a pty whose other end the board opens as SXCTL_PLANT."""

    def __init__(self, addr):
        self.addr = addr
        # VMIN=0 on the board's end: the board reads it without ever blocking its bus.
        self.pty = Pty(nonblocking_reads=True, backlog=64 << 10)
        self.path = self.pty.path
        self.act = OFF  # the newest outputs
        self.sent = 0
        self.received = 0
        self.skipped = 0  # bytes dropped to find the next ACT (never on a healthy link)
        self.late = 0  # paced ticks this board had not answered in time
        self._rx = bytearray()

    @property
    def fd(self):
        return self.pty.master

    def send(self, record):
        self.pty.write(record)
        self.sent += 1

    preload = send  # before the board starts: its first SENSE waits in the pty

    def read(self):
        """Take what the board wrote; returns the ACTs completed, oldest first."""
        data = self.pty.read()
        if not data:
            return []
        rx = self._rx
        rx += data
        acts = []
        while len(rx) >= ACT.size:
            if rx[0] != plantlink.ACT_MAGIC:
                del rx[0]
                self.skipped += 1
                continue
            acts.append(Act._make(ACT.unpack_from(rx)))
            del rx[:ACT.size]
        if acts:
            self.act = acts[-1]
            self.received += len(acts)
        return acts

    def close(self):
        self.pty.close()


class PlantLink:
    """The plant links of several boards, exchanged a tick at a time."""

    def __init__(self, boards, timeout_s=5.0, why=None):
        self.boards = {b.addr: b for b in boards}
        self.timeout_s = timeout_s
        self.why = why or (lambda addr: "")  # more about a board that did not answer
        self._by_fd = {b.fd: b for b in boards}

    def exchange(self, time_ms, records, deadline=None):
        """Send each board its SENSE ({addr: record}) and collect the ACTs answering it.

        Without a deadline (lock-step) every board must answer within timeout_s, or
        PlantLinkError names it. With one (paced, time.monotonic()), boards that have not
        answered by then are counted late and keep their previous outputs. Returns
        {addr: Act} for every board, the newest outputs each has.
        """
        time_ms &= TIME_MASK
        for addr, record in records.items():
            self.boards[addr].send(record)
        waiting = {self.boards[addr].fd for addr in records}
        lock_step = deadline is None
        if lock_step:
            deadline = time.monotonic() + self.timeout_s
        poller = select.poll()
        for fd in waiting:
            poller.register(fd, select.POLLIN)
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for fd, _ in poller.poll(left * 1000.0):
                board = self._by_fd[fd]
                if any(act.time_ms == time_ms for act in board.read()) and fd in waiting:
                    waiting.discard(fd)
                    poller.unregister(fd)
        if waiting:
            missing = sorted(self._by_fd[fd].addr for fd in waiting)
            if lock_step:
                raise PlantLinkError("board %s did not answer the plant link's SENSE for t=%.3f s within %.1f s%s" % (
                    ", ".join(map(str, missing)), time_ms / 1000.0, self.timeout_s,
                    "".join(self.why(a) for a in missing)))
            for addr in missing:
                self.boards[addr].late += 1
        return {addr: board.act for addr, board in self.boards.items()}

    def drain(self):
        """Read whatever the boards wrote (a late ACT of a paced tick) without waiting."""
        for board in self.boards.values():
            board.read()

    def stats(self):
        return {addr: dict(sent=b.sent, received=b.received, late=b.late, skipped=b.skipped)
                for addr, b in self.boards.items()}

    def close(self):
        for board in self.boards.values():
            board.close()


def ready(boards, first_time_ms, timeout_s=20.0, why=None):
    """Wait until every board answered its preloaded first SENSE: its loop and clock run."""
    deadline = time.monotonic() + timeout_s
    waiting = {b.fd: b for b in boards}
    while waiting:
        left = deadline - time.monotonic()
        if left <= 0:
            missing = sorted(b.addr for b in waiting.values())
            raise PlantLinkError("board %s did not start (no ACT to its first SENSE within %.0f s)%s" % (
                ", ".join(map(str, missing)), timeout_s, "".join((why or (lambda a: ""))(a) for a in missing)))
        r, _, _ = select.select(list(waiting), [], [], min(left, 0.1))
        for fd in r:
            if any(act.time_ms == first_time_ms & TIME_MASK for act in waiting[fd].read()):
                del waiting[fd]

