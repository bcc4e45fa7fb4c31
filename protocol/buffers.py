"""pH calibration buffers: each buffer's pH against temperature, the one table sxctl has.

The host looks a buffer's pH up at the buffer's temperature and sends that value with the
calibration point (messages.CALIBRATE.reference); the board keeps no table of its own.

Sources:
- Primary (NIST/DIN 19266) buffers 1.679, 4.005, 6.865, 9.180: R. P. Buck et al., "Measurement
  of pH. Definition, standards, and procedures (IUPAC Recommendations 2002)", Pure Appl. Chem.
  74 (2002) 2169-2200, Table 4 (potassium tetroxalate 0.05 mol/kg, potassium hydrogen phthalate
  0.05 mol/kg, phosphate 1:1 0.025 mol/kg, borax 0.01 mol/kg); DIN 19266:2015 lists the same.
- Technical buffers 4.00, 7.00, 10.01: the buffer tables of DOMAIN.md §3 [S22, Foxboro], the
  values the boards used before this table moved here.
- Technical buffers 2.00 and 4.01: Mettler-Toledo technical buffer set (ref. 25 °C), as the
  meter firmware of that maker tabulates it.
Between table temperatures the pH is interpolated linearly; outside 0-50 °C it is refused.
"""

# Electrode acceptance [S23-S26] (DOMAIN.md §3): warn outside 95-105 % of the Nernst slope or
# ±30 mV offset, reject outside 85-105 % or ±60 mV. The board judges each point by these (as
# proto.PH_* constants, codegen); the host shows the same limits beside its result.
SLOPE_WARN = (95.0, 105.0)  # % of the Nernst slope
SLOPE_REJECT = (85.0, 105.0)
OFFSET_WARN_MV = 30.0  # |potential at pH 7.00|
OFFSET_REJECT_MV = 60.0
# CALIBRATE.temperature meaning "the buffers are at the board's temperature input's reading"
PROBE_TEMPERATURE = -32768

# name -> ((°C, pH), ...): the name is how a user asks for the buffer (--points 1.68,4.00)
BUFFERS = {
    "1.68": ((0, 1.666), (5, 1.668), (10, 1.670), (15, 1.672), (20, 1.675), (25, 1.679),
             (30, 1.683), (35, 1.688), (40, 1.694), (50, 1.707)),
    "2.00": ((5, 2.02), (10, 2.01), (15, 2.00), (20, 2.00), (25, 2.00), (30, 1.99), (35, 1.99),
             (40, 1.98), (45, 1.98), (50, 1.98)),
    "4.00": ((0, 4.00), (10, 4.00), (20, 4.00), (25, 4.00), (30, 4.01), (40, 4.03), (50, 4.06)),
    "4.005": ((0, 4.000), (5, 3.998), (10, 3.997), (15, 3.998), (20, 4.000), (25, 4.005),
              (30, 4.011), (35, 4.018), (40, 4.027), (50, 4.050)),
    "4.01": ((5, 4.01), (10, 4.00), (15, 4.00), (20, 4.00), (25, 4.01), (30, 4.01), (35, 4.02),
             (40, 4.03), (45, 4.04), (50, 4.06)),
    "6.86": ((0, 6.984), (5, 6.951), (10, 6.923), (15, 6.900), (20, 6.881), (25, 6.865),
             (30, 6.853), (35, 6.844), (40, 6.838), (50, 6.833)),
    "7.00": ((0, 7.12), (10, 7.06), (20, 7.02), (25, 7.00), (30, 6.99), (40, 6.98), (50, 6.97)),
    "9.18": ((0, 9.464), (5, 9.395), (10, 9.332), (15, 9.276), (20, 9.225), (25, 9.180),
             (30, 9.139), (35, 9.102), (40, 9.068), (50, 9.011)),
    "10.01": ((0, 10.32), (10, 10.18), (20, 10.06), (25, 10.01), (30, 9.97), (40, 9.89), (50, 9.83)),
}
# other spellings users write for the same buffers
ALIASES = {"1.679": "1.68", "2": "2.00", "2.0": "2.00", "4": "4.00", "4.0": "4.00", "6.865": "6.86",
           "7": "7.00", "7.0": "7.00", "9.180": "9.18", "9.2": "9.18", "10": "10.01", "10.0": "10.01"}


class BufferError(ValueError):
    pass


def name_of(text):
    """The table name of a buffer as a user writes it; BufferError names the ones there are."""
    text = str(text).strip()
    name = ALIASES.get(text, text)
    if name not in BUFFERS:
        raise BufferError("no pH buffer %r: the buffers are %s" % (text, ", ".join(BUFFERS)))
    return name


def ph_at(name, temperature_c):
    """pH of buffer `name` at `temperature_c`, rounded to 0.001 pH, from its table."""
    table = BUFFERS[name_of(name)]
    lo_t, hi_t = table[0][0], table[-1][0]
    if not lo_t <= temperature_c <= hi_t:
        raise BufferError("the pH %s buffer is tabulated for %g-%g °C, not %.1f °C" % (name, lo_t, hi_t, temperature_c))
    for (t0, p0), (t1, p1) in zip(table, table[1:]):
        if t0 <= temperature_c <= t1:
            return round(p0 + (p1 - p0) * (temperature_c - t0) / (t1 - t0), 3)
    return table[-1][1]  # temperature_c == hi_t
