"""Run N virtual boards on one virtual bus until a deadline or a signal."""
import json
import pathlib
import selectors
import shutil
import tempfile
import threading
import time

from .. import image, toolchain
from .bus import Bus
from .vboard import VirtualBoard


class Simulator:
    def __init__(self, stages, heapsize="64K", root=None, blank=False, micropython=None):
        if not 1 <= stages <= 247:
            raise ValueError("--stages must be 1..247 (bus addresses), got %d" % stages)
        self.stages = stages
        self.heapsize = heapsize
        self.blank = blank
        self.micropython = micropython or toolchain.micropython_path()
        self._own_root = root is None
        self.root = pathlib.Path(root or tempfile.mkdtemp(prefix="sxctl-sim-"))
        self.bus = Bus()
        self.boards = []

    def start(self):
        files = None if self.blank else image.build("unix-sim")
        for addr in range(1, self.stages + 1):
            root = self.root / ("board%d" % addr)
            root.mkdir(parents=True, exist_ok=True)
            if files is not None:
                image.write_tree(files, root)
                (root / "identity.json").write_text(json.dumps(
                    {"addr": addr, "serial": "SIM-%04d" % addr}))
            board = VirtualBoard(addr, root, self.micropython, self.heapsize,
                                 bus_path=self.bus.add_drop(addr))
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
        return {"bus": self.bus.path,
                "boards": [{"addr": b.addr, "usb": b.usb.path, "root": str(b.root)} for b in self.boards]}

    def run(self, duration=None, should_stop=lambda: False):
        """Move bytes until `duration` seconds pass or `should_stop()` is true."""
        sel = selectors.DefaultSelector()
        handlers = {}
        for fd in self.bus.fds():
            handlers[fd] = self.bus
        for board in self.boards:
            for fd in board.fds():
                handlers[fd] = board
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
        finally:
            sel.close()

    def close(self):
        for board in self.boards:
            board.close()
        self.bus.close()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)
