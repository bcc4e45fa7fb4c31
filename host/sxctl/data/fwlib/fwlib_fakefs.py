"""Test support ON MicroPython: a filesystem in memory that can lose power in the middle of a write."""


class Crash(Exception):
    pass


class FakeFs:
    """Files in memory; `crash_after` write calls, a write raises Crash (a reset mid-write)."""

    def __init__(self):
        self.files = {}
        self.crash_after = -1
        self.writes = 0

    def open(self, path, mode):
        return FakeFile(self, path, mode)


class FakeFile:
    def __init__(self, fs, path, mode):
        self.fs = fs
        self.path = path
        if "w" in mode:
            fs.files[path] = b""
        elif path not in fs.files:
            raise OSError(2)

    def read(self):
        return self.fs.files[self.path]

    def write(self, data):
        fs = self.fs
        if fs.crash_after >= 0 and fs.writes >= fs.crash_after:
            # Half the bytes reach the flash, then the power goes.
            fs.files[self.path] += bytes(data[:len(data) // 2])
            raise Crash()
        fs.writes += 1
        fs.files[self.path] += bytes(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
