"""4-20 mA flow transmitters, with the NAMUR NE43 fault bands."""

from micropython import const
from fixedpoint import muldiv as _muldiv  # a module name tests can swap for a checking one
from sensors.flow import FLOW_OK, FLOW_RANGE, FLOW_FAULT

# Units: flow mL/min, loop current µA.
SPAN_MAX = const(1000000)  # mL/min, largest 4-20 mA span

# NAMUR NE43 [S32]: valid 3.8-20.5 mA, fault below 3.6 or above 21 mA, between is out of range.
_UA_FAULT_LO = const(3600)
_UA_VALID_LO = const(3800)
_UA_VALID_HI = const(20500)
_UA_FAULT_HI = const(21000)
_UA_ZERO = const(4000)
_UA_SPAN = const(16000)


class LoopFlow:
    """4-20 mA flow transmitter: 4 mA = zero_ml_min, 20 mA = zero_ml_min + span_ml_min."""

    def __init__(self, span_ml_min, zero_ml_min=0):
        if not 0 < span_ml_min <= SPAN_MAX or not 0 <= zero_ml_min <= SPAN_MAX:
            raise ValueError("span_ml_min")
        self.span_ml_min = span_ml_min
        self.zero_ml_min = zero_ml_min
        self.ml_min = 0
        self.status = FLOW_FAULT

    def read(self, ua):
        """Loop current (µA) -> FLOW_OK, FLOW_RANGE (value flagged) or FLOW_FAULT (.ml_min = 0)."""
        if ua < _UA_FAULT_LO or ua > _UA_FAULT_HI:
            self.ml_min = 0
            self.status = FLOW_FAULT
            return FLOW_FAULT
        d = ua - _UA_ZERO
        if d < 0:
            d = 0  # below 4 mA is below zero flow: read zero
        self.ml_min = self.zero_ml_min + _muldiv(self.span_ml_min, d, _UA_SPAN)
        self.status = FLOW_OK if _UA_VALID_LO <= ua <= _UA_VALID_HI else FLOW_RANGE
        return self.status
