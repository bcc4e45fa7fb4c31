"""Run N virtual boards on one virtual bus until a deadline or a signal.

With `plant_link=True` every board also gets a plant link (sim/plantlink.py): a pty named to
it by SXCTL_PLANT, through which a plant model feeds its sensors and clock and reads its
outputs. `plant_links[addr]` is created here, before the boards start, so a driver can preload
each board's first SENSE. With `plant_link="external"` another program drives the links: each
board's link is bridged to a pty of its own whose path `ports()` lists as the board's "plant".
"""
import contextlib
import json
import pathlib
import selectors
import shutil
import tempfile
import threading
import time

from .. import image, toolchain
from .bus import Bus
from .plantlink import BoardLink
from .ptys import Pty
from .vboard import VirtualBoard


class Simulator:
    def __init__(self, stages, heapsize="64K", root=None, blank=False, micropython=None, plant_link=False,
                 bus=None):
        if not 1 <= stages <= 247:
            raise ValueError("--stages must be 1..247 (bus addresses), got %d" % stages)
        self.stages = stages
        self.heapsize = heapsize
        self.blank = blank
        self.micropython = micropython or toolchain.micropython_path()
        self._own_root = root is None
        self.root = pathlib.Path(root or tempfile.mkdtemp(prefix="sxctl-sim-"))
        self.bus = bus or Bus()
        self.boards = []
        self.plant_links = {addr: BoardLink(addr) for addr in range(1, stages + 1)} if plant_link else {}
        # an external driver's end of each link, bridged to the board's (a pty's master end
        # cannot be opened by path)
        self.plant_ports = {addr: _Bridge(link.pty, Pty(backlog=64 << 10))
                            for addr, link in self.plant_links.items()} if plant_link == "external" else {}

    def start(self):
        files = None if self.blank else image.build("unix-sim")
        for addr in range(1, self.stages + 1):
            root = self.root / ("board%d" % addr)
            root.mkdir(parents=True, exist_ok=True)
            if files is not None:
                image.write_tree(files, root)
                (root / "identity.json").write_text(json.dumps(
                    {"addr": addr, "serial": "SIM-%04d" % addr}))
            link = self.plant_links.get(addr)
            board = VirtualBoard(addr, root, self.micropython, self.heapsize,
                                 bus_path=self.bus.add_drop(addr), plant_path=link.path if link else None)
            board.start()
            self.boards.append(board)

    def wait_ready(self, timeout=20.0):
        """Block until every board answers HELLO on the bus (the loop must be running)."""
        from ..buslink import BusClient, NoAnswer

        deadline = time.monotonic() + timeout
        with BusClient(self.bus.path, timeout=0.2, retries=0) as client:
            for board in self.boards:
                while True:
                    try:
                        client.hello(board.addr)
                        break
                    except NoAnswer:
                        if time.monotonic() > deadline:
                            raise NoAnswer("virtual board %d did not start within %.0f s; run it by hand "
                                           "to see why: cd %s && %s" % (board.addr, timeout, board.root,
                                                                        self.micropython)) from None

    def run_in_background(self):
        """Run the byte-moving loop on a thread; returns a function that stops and joins it."""
        stop = threading.Event()
        thread = threading.Thread(target=self.run, kwargs=dict(should_stop=stop.is_set), daemon=True)
        thread.start()

        def halt():
            stop.set()
            thread.join()
        return halt

    def ports(self):
        def plant(b):
            bridge = self.plant_ports.get(b.addr)
            return {"plant": bridge.outer.path} if bridge else {}
        return {"bus": self.bus.path,
                "boards": [dict({"addr": b.addr, "usb": b.usb.path, "root": str(b.root)}, **plant(b))
                           for b in self.boards]}

    def board_status(self, addr):
        """Why a board may not answer: empty while its interpreter runs, else how it ended."""
        board = next((b for b in self.boards if b.addr == addr), None)
        if board is None or board.proc is None:
            return "; board %d is not running" % addr
        code = board.proc.poll()
        said = board.console_tail.decode(errors="replace").strip().splitlines()
        if code is None:
            return "; board %d last printed: %s" % (addr, said[-1]) if said else ""
        return "; board %d's interpreter exited with status %s (run it by hand to see why: cd %s && %s)" % (
            addr, code, board.root, self.micropython)

    def run(self, duration=None, should_stop=lambda: False):
        """Move bytes until `duration` seconds pass or `should_stop()` is true."""
        sel = selectors.DefaultSelector()
        handlers = {}
        for fd in self.bus.fds():
            handlers[fd] = self.bus
        for board in self.boards:
            for fd in board.fds():
                handlers[fd] = board
        for bridge in self.plant_ports.values():
            for fd in bridge.fds():
                handlers[fd] = bridge
        for fd in handlers:
            sel.register(fd, selectors.EVENT_READ)
        deadline = None if duration is None else time.monotonic() + duration
        try:
            while not should_stop() and (deadline is None or time.monotonic() < deadline):
                for key, _ in sel.select(0.02):
                    handlers[key.fd].on_readable(key.fd)
                self.bus.service()
                for board in self.boards:
                    board.service()
                for bridge in self.plant_ports.values():
                    bridge.service()
        finally:
            sel.close()

    def close(self):
        for board in self.boards:
            board.close()
        for link in self.plant_links.values():
            link.close()
        for bridge in self.plant_ports.values():
            bridge.outer.close()
        self.bus.close()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)


class _Bridge:
    """Copies bytes both ways between two ptys' master ends: the board's and an outside program's."""

    def __init__(self, inner, outer):
        self.inner = inner
        self.outer = outer

    def fds(self):
        return (self.inner.master, self.outer.master)

    def on_readable(self, fd):
        if fd == self.inner.master:
            self.outer.write(self.inner.read())
        else:
            self.inner.write(self.outer.read())

    def service(self):
        self.inner.flush()
        self.outer.flush()


@contextlib.contextmanager
def running(stages, **options):
    """Virtual boards started, their bytes moving on a thread and every board answering; closed
    (processes ended, folders removed) on leaving. Heap: the unix-sim board's unless given."""
    from .. import boards

    options.setdefault("heapsize", "%dK" % boards.load("unix-sim")["heap_kb"])
    sim = Simulator(stages, **options)
    try:
        sim.start()
        halt = sim.run_in_background()
        try:
            sim.wait_ready()
            yield sim
        finally:
            halt()
    finally:
        sim.close()
