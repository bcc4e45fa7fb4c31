"""A multi-drop bus (as RS-485): what the host sends reaches every board, and every board's
answer reaches the host. Each board sees its own pty, set so reads never block.

By default bytes move as fast as the ptys take them. `Bus(baud=115200)` paces them as a UART
would: each byte takes 10 bit times (start, 8 data, stop) on its way, host to boards on one
line and boards to host on another, and a byte is delivered when its last bit has arrived.

`Bus(ber=1e-4, drop=1e-3, seed=1)` injects faults as a noisy line would: each bit flips with
probability `ber`, each byte is lost with probability `drop`, drawn from `seed` (one stream per
direction, so a run repeats exactly for the same bytes). `bus.faults` counts what was done.
"""
import ctypes
import math
import random
import threading
import time

from .ptys import Pty

BITS_PER_BYTE = 10  # 8N1: start bit, 8 data bits, stop bit
_GRAIN_S = 0.0005  # during a long transfer, deliver in batches this far apart (the end is exact)


class Faults:
    """Bit flips and byte losses on one direction of the line, seeded; counts what it did."""

    def __init__(self, ber=0.0, drop=0.0, seed=0):
        if not 0.0 <= ber < 1.0 or not 0.0 <= drop < 1.0:
            raise ValueError("bit error rate and drop rate must be in [0, 1)")
        self.ber = ber
        self.drop = drop
        self._rng = random.Random(seed)
        self.bytes = 0  # bytes offered
        self.bits_flipped = 0  # in bytes delivered
        self.bytes_corrupted = 0  # bytes with at least one flipped bit (and not dropped)
        self.bytes_dropped = 0
        # Bits (bytes) until the next flip (loss): geometric gaps, so the pattern does not
        # depend on how the stream is cut into reads.
        self._to_flip = self._gap(ber)
        self._to_drop = self._gap(drop)

    def _gap(self, p):
        if p <= 0.0:
            return math.inf
        return int(math.log(1.0 - self._rng.random()) / math.log(1.0 - p))

    def apply(self, data):
        if self._to_flip == math.inf and self._to_drop == math.inf:
            self.bytes += len(data)
            return data
        out = bytearray()
        for byte in data:
            self.bytes += 1
            mask = flips = 0
            while self._to_flip < 8:
                mask |= 1 << self._to_flip
                flips += 1
                self._to_flip += 1 + self._gap(self.ber)
            self._to_flip -= 8
            if self._to_drop == 0:
                self.bytes_dropped += 1  # its flips, if any, never reach anyone
                self._to_drop = self._gap(self.drop)
                continue
            self._to_drop -= 1
            if mask:
                self.bytes_corrupted += 1
                self.bits_flipped += flips
            out.append(byte ^ mask)
        return bytes(out)

    def as_dict(self):
        return dict(bytes=self.bytes, bits_flipped=self.bits_flipped, bytes_corrupted=self.bytes_corrupted,
                    bytes_dropped=self.bytes_dropped)


class Bus:
    def __init__(self, baud=None, ber=0.0, drop=0.0, seed=0):
        self.host = Pty(backlog=64 << 10)
        self.drops = {}
        self.baud = None
        self._pacer = None
        # Where bytes read from the host and from a drop go: straight on, or to the pacer.
        self._down = self._to_drops
        self._up = self.host.write
        if baud:
            self.pace(baud)
        self.inject(ber, drop, seed)

    def inject(self, ber=0.0, drop=0.0, seed=0):
        """Inject faults from now on (0, 0: none): host -> boards and boards -> host each draw
        from their own stream of `seed`, and count afresh."""
        self.faults = {"down": Faults(ber, drop, 2 * seed), "up": Faults(ber, drop, 2 * seed + 1)}

    @property
    def path(self):
        return self.host.path

    def add_drop(self, addr):
        drop = Pty(nonblocking_reads=True, backlog=64 << 10)
        self.drops[addr] = drop
        return drop.path

    def pace(self, baud):
        """From now on, move bytes no faster than `baud` allows (see the module docstring)."""
        if self._pacer is not None:
            if baud != self.baud:
                raise ValueError("the bus is already paced at %d baud" % self.baud)
            return self
        self.baud = baud
        pacer = self._pacer = _Pacer(BITS_PER_BYTE / baud, self._to_drops, self.host.write,
                                     self._ptys)
        self._down = lambda data: pacer.send(pacer.down, data)
        self._up = lambda data: pacer.send(pacer.up, data)
        return self

    def _ptys(self):
        return [self.host] + list(self.drops.values())

    def _to_drops(self, data):
        for drop in self.drops.values():
            drop.write(data)

    def fds(self):
        return [self.host.master] + [d.master for d in self.drops.values()]

    def on_readable(self, fd):
        if fd == self.host.master:
            self._down(self.faults["down"].apply(self.host.read()))
            return
        for drop in self.drops.values():
            if drop.master == fd:
                self._up(self.faults["up"].apply(drop.read()))
                return

    def fault_stats(self):
        """What the fault injection did, per direction."""
        return {name: f.as_dict() for name, f in self.faults.items()}

    def service(self):
        if self._pacer:
            return  # the pacer's thread does all writing, so nothing here races it
        self.host.flush()
        for drop in self.drops.values():
            drop.flush()

    def close(self):
        if self._pacer:
            self._pacer.close()
        self.host.close()
        for drop in self.drops.values():
            drop.close()


class _Line:
    """One direction of the wire: bytes leave in order, one per `byte_s` at most."""

    def __init__(self, byte_s, deliver):
        self.byte_s = byte_s
        self.deliver = deliver
        self.queue = bytearray()
        self.start = 0.0  # when the first queued byte started (or starts) on the wire

    def add(self, data, now):
        if not self.queue:
            # An idle line starts at once; a busy one continues after its last byte.
            self.start = max(now, self.start)
        self.queue += data

    def run(self, now):
        """Deliver every byte whose last bit has arrived; the time to call again, or None."""
        if not self.queue:
            return None
        n = min(len(self.queue), int((now - self.start) / self.byte_s + 1e-9))
        if n > 0:
            self.deliver(bytes(self.queue[:n]))
            del self.queue[:n]
            self.start += n * self.byte_s
        if not self.queue:
            return None
        end = self.start + len(self.queue) * self.byte_s
        return min(end, self.start + self.byte_s + _GRAIN_S)


class _Pacer:
    """A thread that delivers each line's bytes when they are due; it alone writes the ptys."""

    def __init__(self, byte_s, to_drops, to_host, ptys):
        self.down = _Line(byte_s, to_drops)
        self.up = _Line(byte_s, to_host)
        self._ptys = ptys
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="bus-pacer", daemon=True)
        self._thread.start()

    def send(self, line, data):
        if data:
            with self._cond:
                line.add(data, time.monotonic())
                self._cond.notify()

    def _run(self):
        _precise_timers()
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                due = [t for t in (self.down.run(now), self.up.run(now)) if t is not None]
                stalled = False
                for pty in self._ptys():
                    pty.flush()
                    stalled = stalled or bool(pty.pending)
                if stalled:
                    due.append(now + 0.002)  # a reader is behind: try its pty again soon
                self._cond.wait(max(0.0, min(due) - time.monotonic()) if due else None)

    def close(self):
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()


def _precise_timers():
    """Let this thread's timed waits end on time: Linux may otherwise stretch each by its 50 µs
    default timer slack, and every delivery would be that late."""
    try:
        ctypes.CDLL(None).prctl(29, 1000, 0, 0, 0)  # PR_SET_TIMERSLACK, 1 µs
    except (OSError, AttributeError):
        pass  # not Linux: pacing is merely less exact
