"""Stage configuration: every config item's value, range-checked, stored atomically.

The values live in RAM as an array; config_load.py reads them from the slot files at reset,
config_store.py checks and stores a write. Each is loaded only for that moment and not kept:
a board that is not being configured spends no RAM on them.
"""
import config_table as T

SLOTS = ("/config.a", "/config.b")


class ConfigError(Exception):
    """A write refused as a whole: `code` is a protocol error code, `item` the item id."""

    def __init__(self, code, item, text):
        super().__init__(text)
        self.code = code
        self.item = item


def index_of(item_id):
    ids = T.IDS
    for i in range(T.COUNT):
        if ids[i] == item_id:
            return i
    return -1


class Config:
    def __init__(self, slots=SLOTS, opener=open):
        self.values = None  # array("i"), by item index: set by the load below
        self.version = 0
        self._slots = slots
        self._open = opener
        self._slot = 1  # the slot holding `version`; the first write goes to slot 0
        import config_load
        config_load.load(self)

    def get(self, index):
        return self.values[index]

    def apply(self, pairs):
        """Check, store, then use: all items or none. Returns the new version; raises
        ConfigError (nothing changed) or OSError (the stored versions intact)."""
        import config_store
        return config_store.apply(self, pairs)
