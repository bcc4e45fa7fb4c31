"""Event queue: alarms raised, cleared and acknowledged, config and calibration changes, boots,
each with a sequence number, kept in a ring the host reads with EVENTS_READ."""
import struct
from micropython import const

import proto

EV_RAISED = const(1)
EV_CLEARED = const(2)
EV_ACKED = const(3)
EV_CONFIG = const(4)
EV_CALIBRATION = const(5)
EV_BOOT = const(6)


def push(ring, time_s, code, alarm, value):
    """Queue one event in a RecordRing of EVENTS records."""
    struct.pack_into(proto.EVENTS_EVENTS_FMT, ring.ring, ring.slot(), ring.latest + 1,
                     time_s, code, alarm, value)
    ring.commit()
