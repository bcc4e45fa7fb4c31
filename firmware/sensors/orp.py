"""ORP electrode: calibrated potential from the input µV, with a reading at the input rail as a fault."""

from micropython import const

# Single-point standards, µV at 25 °C [S15, S29].
STD_225 = const(225000)  # ORP calibration solution
STD_QH_PH7 = const(87000)  # quinhydrone in pH 7 buffer
STD_QH_PH4 = const(264000)  # quinhydrone in pH 4 buffer

ORP_OK = const(0)
ORP_FAULT = const(1)  # at/beyond the input rail: not a value

CAL_OK = const(0)
CAL_REJECT_RAIL = const(1)
CAL_REJECT_OFFSET = const(2)

E_MAX = const(2000000)  # µV; largest rail accepted, keeps every sum far below 2**30


class Orp:
    """ORP input. rail_uv: front-end range (±1020 mV common [S17]); margin_uv: how close to the rail
    still counts as "at" it; max_offset_uv: largest calibration offset accepted [est]."""

    def __init__(self, rail_uv=1020000, margin_uv=1000, max_offset_uv=50000):
        if rail_uv <= margin_uv or rail_uv > E_MAX or margin_uv < 0:
            raise ValueError("rail_uv")
        if not 0 <= max_offset_uv <= E_MAX:
            raise ValueError("max_offset_uv")
        self._limit = rail_uv - margin_uv  # |raw| >= this is a fault
        self.max_offset_uv = max_offset_uv
        self.offset_uv = 0  # added to the raw potential
        self.uv = 0  # last calibrated potential, µV (held while faulted)
        self.mv = 0  # the same, rounded to mV
        self.fault = False

    def read(self, raw_uv):
        """Raw potential (µV) -> ORP_OK with .uv/.mv set, or ORP_FAULT (value held) at the rail."""
        if raw_uv >= self._limit or raw_uv <= -self._limit:
            self.fault = True
            return ORP_FAULT
        self.fault = False
        self.uv = raw_uv + self.offset_uv
        self.mv = (self.uv + 500) // 1000
        return ORP_OK

    def calibrate(self, raw_uv, standard_uv):
        """Single point: raw_uv read in a standard (STD_*); returns CAL_OK or a CAL_REJECT_* (no change)."""
        if raw_uv >= self._limit or raw_uv <= -self._limit:
            return CAL_REJECT_RAIL
        offset = standard_uv - raw_uv
        if offset > self.max_offset_uv or offset < -self.max_offset_uv:
            return CAL_REJECT_OFFSET
        self.offset_uv = offset
        return CAL_OK
