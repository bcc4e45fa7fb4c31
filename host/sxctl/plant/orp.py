"""ORP of an oxidation tank: a Nernst target set by the oxidant dose, reached through a lag.

Simplified on purpose: the oxidant converts the reduced species one electron-equivalent at a
time and instantly, so the oxidised fraction is min(dose ratio, 1); the electrode and the tank's
mixing together give the lag. Potentials are read against an Ag/AgCl (3 M) reference.
"""

import math

from .sensor import lag

NERNST_MV_PER_DECADE = 59.16  # at 25 °C
AG_AGCL_MV_VS_SHE = 207.0
IRON_E0_MV_VS_SHE = 771.0  # Fe3+/Fe2+
_FRACTION_FLOOR = 1e-6  # a couple is never 100 % one side; keeps the log finite


def nernst_mV(e0_mV_vs_she, oxidised_fraction, electrons=1, reference_mV_vs_she=AG_AGCL_MV_VS_SHE):
    """Electrode potential vs the reference for a couple that is oxidised_fraction oxidised."""
    x = min(max(oxidised_fraction, _FRACTION_FLOOR), 1.0 - _FRACTION_FLOOR)
    return (e0_mV_vs_she - reference_mV_vs_she
            + NERNST_MV_PER_DECADE / electrons * math.log10(x / (1.0 - x)))


class OrpResponse:
    """ORP in mV vs Ag/AgCl of a tank dosed with oxidant.

    dose_ratio is oxidant electron-equivalents per mole of the reduced species fed (≥ 0).
    tau_s [est] lumps tank mixing and electrode response.
    """

    def __init__(self, e0_mV_vs_she=IRON_E0_MV_VS_SHE, electrons=1, tau_s=30.0,
                 reference_mV_vs_she=AG_AGCL_MV_VS_SHE, dose_ratio=0.0):
        self.e0_mV_vs_she = e0_mV_vs_she
        self.electrons = electrons
        self.tau_s = tau_s
        self.reference_mV_vs_she = reference_mV_vs_she
        self.dose_ratio = dose_ratio
        self.mV = self.target_mV()

    @property
    def dose_ratio(self):
        return self._dose_ratio

    @dose_ratio.setter
    def dose_ratio(self, value):
        self._dose_ratio = max(value, 0.0)

    def oxidised_fraction(self):
        return min(self.dose_ratio, 1.0)

    def target_mV(self):
        return nernst_mV(self.e0_mV_vs_she, self.oxidised_fraction(), self.electrons,
                         self.reference_mV_vs_she)

    def step(self, dt_s):
        """Advance dt_s with the dose held; return the ORP reading in mV."""
        self.mV = lag(self.mV, self.target_mV(), self.tau_s, dt_s)
        return self.mV
