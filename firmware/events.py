"""Event queue: alarms raised, cleared and acknowledged, config and calibration changes, boots
(proto.EV_*), each with a sequence number, kept in a ring the host reads with EVENTS_READ."""
import struct

import proto


def push(ring, time_s, code, alarm, value):
    """Queue one event in a RecordRing of EVENTS records."""
    struct.pack_into(proto.EVENTS_EVENTS_FMT, ring.ring, ring.slot(), ring.latest + 1,
                     time_s, code, alarm, value)
    ring.commit()
