"""The board's large buffers, made once at reset before anything else fragments the heap."""
import gc

import proto
from board import BOARD
from link import make_buffers
from ring import RecordRing

backlog = None
events_ring = None
link_buffers = None  # the bus link's frame buffers (link.Link), kept even by the fail-safe firmware


def reserve_link():
    global link_buffers
    gc.collect()
    if link_buffers is None:
        link_buffers = make_buffers()


def reserve():
    global backlog, events_ring
    reserve_link()
    backlog = RecordRing(BOARD.get("backlog_records", 120), proto.BACKLOG_RECORDS_SIZE)
    events_ring = RecordRing(32, proto.EVENTS_EVENTS_SIZE)
