"""The board's large buffers, made once at reset before anything else fragments the heap."""
import gc

import proto
from board import BOARD
from ring import RecordRing

backlog = None
events_ring = None


def reserve():
    global backlog, events_ring
    gc.collect()
    backlog = RecordRing(BOARD.get("backlog_records", 120), proto.BACKLOG_RECORDS_SIZE)
    events_ring = RecordRing(32, proto.EVENTS_EVENTS_SIZE)
