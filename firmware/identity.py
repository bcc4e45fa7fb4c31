"""The board's identity (bus address, unit serial), written by `sxctl flash` to /identity.json."""
import json
import sys

import proto

PATH = proto.FILE_IDENTITY


def load():
    try:
        with open(PATH) as f:
            ident = json.load(f)
    except OSError:
        # An unprovisioned board listens on the highest address and says so in INFO.
        ident = {}
    addr = ident.get("addr", 247)
    if not (isinstance(addr, int) and 1 <= addr <= 247):
        raise ValueError("identity.json: addr must be 1..247, got %r; reflash with sxctl flash --addr" % (addr,))
    return addr, ident.get("serial", "")


del sys.modules[__name__]  # read once at reset: not kept
