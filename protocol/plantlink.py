"""The plant link: how a simulator drives a Unix-port board's sensors, outputs and clock.

Two fixed-size little-endian records on a byte stream (the board's SXCTL_PLANT pty):

    simulator -> board  SENSE (one per tick): the board's clock and its sensor signals
    board -> simulator  ACT   (one per SENSE, after the board has run every scan due up to
                        that time): its outputs

A simulator sends SENSE, waits for ACT, advances its model by the tick and repeats: that
is lock-step, deterministic and as fast as the CPU allows. Pacing the SENSE records in real
time (or `--speed X` times it) is the paced mode. Any language that can write 24 bytes to a
file can drive the unmodified firmware this way; docs/plant-link.md describes it for users.
"""
import construct as c

from .fields import num

SENSE_MAGIC = 0x53  # "S"
ACT_MAGIC = 0x41  # "A"

SENSE = c.Struct(
    num("magic", c.Int8ub, doc="0x53"),
    num("flags", c.Int8ub, doc="reserved, 0"),
    num("reserved", c.Int16ul, doc="reserved, 0"),
    num("time_ms", c.Int32ul, "ms", "board clock: milliseconds since the board started (wraps at 2^30)", 1, 0, 0x3FFFFFFF),
    num("ph_uv", c.Int32sl, "µV", "pH electrode potential", 1, -2000000, 2000000),
    num("orp_uv", c.Int32sl, "µV", "ORP electrode potential vs Ag/AgCl", 1, -2000000, 2000000),
    num("rtd_mohm", c.Int32sl, "mΩ", "Pt1000 resistance (0: no probe)", 1, 0, 2000000),
    num("pulses_aq", c.Int16ul, "pulses", "aqueous meter pulses since the previous SENSE"),
    num("pulses_org", c.Int16ul, "pulses", "organic meter pulses since the previous SENSE"),
)

ACT = c.Struct(
    num("magic", c.Int8ub, doc="0x41"),
    num("enabled", c.Int8ub, doc="1 when the output enable line is on", lo=0, hi=1),
    num("valves", c.Int8ub, doc="valve outputs, one bit each"),
    num("mode", c.Int8ub, doc="stage mode (MODES)", lo=0, hi=3),
    num("time_ms", c.Int32ul, "ms", "the SENSE time these outputs answer"),
    num("base_dose", c.Int16ul, "mL/min", "base pump", 0.01),
    num("reagent_dose", c.Int16ul, "mL/min", "reagent pump", 0.01),
    num("aq_pump", c.Int8ub, "%", "aqueous pump", 0.5, 0, 200),
    num("org_pump", c.Int8ub, "%", "organic pump", 0.5, 0, 200),
    num("reserved", c.Int16ul, doc="reserved, 0"),
)

RECORDS = {"SENSE": SENSE, "ACT": ACT}
