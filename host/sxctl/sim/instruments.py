"""A stage's instruments as the board sees them: the plant's true values turned into SENSE signals.

- pH electrode: the true pH reaches the glass through a dead time and a first-order lag
  (plant/sensor.py Probe), then reads E = offset + (7 − pH)·Nernst(T)·slope, Nernst(T) =
  59.16 mV/pH at 25 °C, proportional to absolute temperature (DOMAIN.md §3), optionally with
  seeded Gaussian noise. An ideal probe has no lag, dead time or noise.
- RTD: Pt1000 resistance by IEC 60751 (Callendar–Van Dusen).
- Flow meters: Hall turbines, whole pulses at each unit's true K-factor (plant/flow.py).
- ORP: the potential in µV, as the electrode gives it.
"""
import collections
import random

from ..plant.flow import FlowMeter
from ..plant.sensor import Probe
from .plantlink import sense_record

NERNST_25_UV = 59160.0
T_ABS_25_K = 298.15
_A, _B, _C = 3.9083e-3, -5.775e-7, -4.183e-12  # IEC 60751

# What a plant model reports per board and tick: true values in engineering units.
Signals = collections.namedtuple("Signals", "ph temp_c flow_aq_L_min flow_org_L_min orp_mv")
Signals.__new__.__defaults__ = (25.0, 0.0, 0.0, 0.0)


def nernst_uv(temp_c):
    """Ideal electrode slope in µV per pH at temp_c."""
    return NERNST_25_UV * (temp_c + 273.15) / T_ABS_25_K


def electrode_uv(ph, temp_c=25.0, offset_uv=0.0, slope=1.0):
    """pH electrode potential: offset at pH 7, Nernst slope times `slope` (1.0 = 100 %)."""
    return offset_uv + (7.0 - ph) * nernst_uv(temp_c) * slope


def pt1000_mohm(temp_c):
    """Pt1000 resistance in mΩ at temp_c (IEC 60751)."""
    t = temp_c
    r = 1.0 + _A * t + _B * t * t
    if t < 0:
        r += _C * (t - 100.0) * t ** 3
    return 1000000.0 * r


class Instruments:
    """One board's sensors, sampled once per tick of tick_s.

    ph_tau_s / ph_dead_s: electrode lag and dead time; ph_noise: standard deviation of
    Gaussian noise on the reading (pH), drawn from `seed`; ph_offset_uv / ph_slope: the
    electrode's true offset and slope (the board's calibration should match them);
    k_aq / k_org: the meters' K-factors (pulses/L) with unit_error_* how far each unit is off.
    """

    def __init__(self, tick_s, ph_tau_s=0.0, ph_dead_s=0.0, ph_noise=0.0, seed=0, ph_offset_uv=0.0,
                 ph_slope=1.0, k_aq=450.0, k_org=450.0, unit_error_aq=0.0, unit_error_org=0.0,
                 initial_ph=7.0):
        self.tick_s = tick_s
        self.probe = Probe(ph_tau_s, ph_dead_s, tick_s, initial_ph)
        self.ph_noise = ph_noise
        self._rng = random.Random(seed)
        self.ph_offset_uv = ph_offset_uv
        self.ph_slope = ph_slope
        self.meter_aq = FlowMeter(k_aq, unit_error_aq)
        self.meter_org = FlowMeter(k_org, unit_error_org)
        self.ph_read = initial_ph  # what the electrode shows, noise included

    def sense(self, time_ms, s, first=False):
        """The SENSE record for `time_ms` from true Signals `s`; meters count the tick before it."""
        ph = self.probe.measure(s.ph)
        if self.ph_noise:
            ph += self._rng.gauss(0.0, self.ph_noise)
        self.ph_read = ph
        dt = 0.0 if first else self.tick_s
        return sense_record(
            time_ms,
            ph_uv=electrode_uv(ph, s.temp_c, self.ph_offset_uv, self.ph_slope),
            orp_uv=s.orp_mv * 1000.0,
            rtd_mohm=pt1000_mohm(s.temp_c),
            pulses_aq=self.meter_aq.count(s.flow_aq_L_min, dt),
            pulses_org=self.meter_org.count(s.flow_org_L_min, dt))
