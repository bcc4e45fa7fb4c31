"""Stage temperature from a Pt100/Pt1000 RTD resistance, falling back to a configured fixed temperature."""

from micropython import const

# Units: resistance mΩ, temperature m°C.
TEMP_OK = const(0)
TEMP_FALLBACK = const(1)  # no usable reading: .mc is the configured fixed temperature

# Pt1000 resistance (mΩ) every 10 °C from -50 to 150 °C, IEC 60751 Callendar-Van Dusen
# (A 3.9083e-3, B -5.775e-7, C -4.183e-12 below 0 °C). Linear between entries: error < 5 m°C.
# A Pt100 reading is scaled by 10 onto this table.
_PT1000_MOHM = (
    803063, 842707, 882217, 921599, 960859, 1000000, 1039025, 1077935, 1116729, 1155408, 1193971,
    1232419, 1270751, 1308968, 1347069, 1385055, 1422925, 1460680, 1498319, 1535843, 1573251,
)
_T_FIRST = const(-50000)
_T_STEP = const(10000)
_LAST = const(20)


def rtd_mc(r_mohm_pt1000):
    """Pt1000 resistance (mΩ) -> m°C, or -1000000 outside -50..150 °C (open or shorted sensor)."""
    if r_mohm_pt1000 < _PT1000_MOHM[0] or r_mohm_pt1000 > _PT1000_MOHM[_LAST]:
        return -1000000
    i = 1
    while r_mohm_pt1000 > _PT1000_MOHM[i]:
        i += 1
    r0 = _PT1000_MOHM[i - 1]
    dr = _PT1000_MOHM[i] - r0  # < 40000 mΩ, so (r - r0) * 10000 stays below 2**30
    return _T_FIRST + (i - 1) * _T_STEP + ((r_mohm_pt1000 - r0) * _T_STEP + (dr >> 1)) // dr


class Temperature:
    """Temperature input. r0_ohm: 100 or 1000 (Pt100/Pt1000), or 0 for no sensor (always fixed_mc).
    Readings outside low_mc..high_mc use fixed_mc and set .fallback."""

    def __init__(self, r0_ohm=1000, fixed_mc=25000, low_mc=-10000, high_mc=100000):
        if r0_ohm not in (0, 100, 1000):
            raise ValueError("r0_ohm")
        if not _T_FIRST <= low_mc < high_mc <= _T_FIRST + _LAST * _T_STEP:
            raise ValueError("low_mc")
        self._scale = 1000 // r0_ohm if r0_ohm else 0
        self.fixed_mc = fixed_mc
        self.low_mc = low_mc
        self.high_mc = high_mc
        self.mc = fixed_mc
        self.fallback = True

    def read(self, r_mohm):
        """RTD resistance (mΩ) -> TEMP_OK with .mc, or TEMP_FALLBACK with .mc = fixed_mc."""
        if self._scale and 0 < r_mohm <= 2000000:
            t = rtd_mc(r_mohm * self._scale)
            if self.low_mc <= t <= self.high_mc:
                self.mc = t
                self.fallback = False
                return TEMP_OK
        self.mc = self.fixed_mc
        self.fallback = True
        return TEMP_FALLBACK
