"""A multi-drop bus (as RS-485): what the host sends reaches every board, and every board's
answer reaches the host. Each board sees its own pty, set so reads never block."""
from .ptys import Pty


class Bus:
    def __init__(self):
        self.host = Pty(backlog=64 << 10)
        self.drops = {}

    @property
    def path(self):
        return self.host.path

    def add_drop(self, addr):
        drop = Pty(nonblocking_reads=True, backlog=64 << 10)
        self.drops[addr] = drop
        return drop.path

    def fds(self):
        return [self.host.master] + [d.master for d in self.drops.values()]

    def on_readable(self, fd):
        if fd == self.host.master:
            data = self.host.read()
            for drop in self.drops.values():
                drop.write(data)
            return
        for drop in self.drops.values():
            if drop.master == fd:
                self.host.write(drop.read())
                return

    def service(self):
        self.host.flush()
        for drop in self.drops.values():
            drop.flush()

    def close(self):
        self.host.close()
        for drop in self.drops.values():
            drop.close()
