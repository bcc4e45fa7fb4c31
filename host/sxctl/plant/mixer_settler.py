"""Mixer-settler extraction stages and a counter-current cascade (DOMAIN.md §6), for pH loop tests.

Chemistry units are the model's own: litres, minutes, mol/L. step() takes seconds, because that
is what controllers scan in. Symbols of DOMAIN.md and the names used here:

    Qa  aqueous_in.flow_L_min     H   acid_M     free strong acid; negative = excess hydroxide
    Qo  organic_in.flow_L_min     C   ree_M      aqueous rare earth
    Qb  base_dose_L_min (command) Y   loading_M  rare earth in the organic ("loading")
    Cb  params.base_M             r   extraction rate, mol per L aqueous per min

Stage balances (Va = Vm·Qa/(Qa+Qo) aqueous and Vo = Vm − Va organic hold-up in the mixer):
    Va·dH/dt = Qa·H_in − Qb·Cb − (Qa+Qb)·H + 3·Va·r
    Va·dC/dt = Qa·C_in − (Qa+Qb)·C − Va·r
    Vo·dY/dt = Qo·(Y_in − Y) + Va·r
    r = km·(C − Y/D),  D = K·(HA_t/2 − 3Y)³/h³,  h = (H + √(H² + 4Kw))/2
The probe lags pH by sensor_tau_s; the base pump acts pump_dead_time_s after it is commanded.

Integration. Extraction is stiff (D moves 1000× per pH unit and → 0 as the organic saturates)
while flows act over minutes, so each tick is one backward-Euler step, stable for any tick and
with the model's exact steady state as its fixed point. The step has one scalar unknown, the
extent ξ = dt·r: the new H, C, Y are linear in it and the residual rises monotonically, so
bracketed Newton always finds it inside C ≥ 0, Y ≥ 0, 3Y ≤ HA_t/2. Against a 0.05 s tick, the
default 1 s tick is within 0.001 pH through a base step.
Saturated organic (HA_t/2 − 3Y ≤ 0) means D = 0: the stage can only strip, never load further.

Cascade coupling (counter-current). Aqueous flows stage 1 → n: the feed enters stage 1 and the
raffinate leaves stage n. Organic flows stage n → 1: fresh organic enters stage n and the loaded
organic leaves stage 1. Each stage's base dose joins the aqueous stream, so stage k passes on
Qa + Σ Qb of stages 1..k. Within a tick each stage sees its neighbours' outlets as they were at
the start of the tick (one-tick coupling lag, small against residence times of minutes).

Titration reference. titration_curve() solves the stage steady state algebraically. With the
DOMAIN.md defaults (fresh organic Y_in = 0, base volume diluting the aqueous) it gives pH
0.70 / 1.19 / 2.09 / 7.4 for 0 / 0.4 / 0.7 / 0.76 mol base per L feed; DOMAIN.md's [calc]
0.69 / 1.18 / 2.06 / >7 are the same model at extraction equilibrium (km → ∞), which
titration_curve(..., params=StageParams(transfer_rate_per_min=1e9)) reproduces to ±0.005.
The base's own volume matters: without its dilution 0.4 and 0.7 would read 1.15 and 2.02.
Between 0.7 and 0.76 the slope is ~90 pH per mol/L against ~1.2 near zero: the organic saturates.
"""

import math
from collections import namedtuple
from dataclasses import dataclass, replace

from .sensor import DeadTime, FirstOrderSensor

_NEWTON_ITERATIONS = 100
_EXTENT_TOL_M = 1e-15


@dataclass(frozen=True)
class StageParams:
    """Equipment and chemistry of one stage (defaults: Nd with P507, DOMAIN.md §6)."""

    mixer_volume_L: float = 7.5
    extractant_M: float = 1.0  # HA_t, as monomer; the dimer (HA)2 is half of it
    log_k: float = -1.80
    transfer_rate_per_min: float = 2.0  # km
    base_M: float = 2.0  # Cb, NaOH
    water_kw: float = 1e-14
    sensor_tau_s: float = 10.0  # 60 s when the electrode is fouled
    pump_dead_time_s: float = 10.0  # [est] 5–15 s plus line volume ÷ dose flow

    @property
    def saturation_loading_M(self):
        """Loading at which every extractant dimer is bound (3 dimers per rare-earth ion)."""
        return self.extractant_M / 6.0


@dataclass
class Aqueous:
    """An aqueous stream (default: the DOMAIN.md feed)."""

    flow_L_min: float = 1.0
    acid_M: float = 0.01
    ree_M: float = 0.5


@dataclass
class Organic:
    """An organic stream (default: fresh, barren extractant)."""

    flow_L_min: float = 1.5
    ree_M: float = 0.0


StageState = namedtuple("StageState", "acid_M ree_M loading_M")
ReeFlows = namedtuple("ReeFlows", "feed raffinate loaded_organic")  # mol/min


def free_proton(acid_M, kw):
    """[H+] from net free acid, with water's own ionisation (exact for H of either sign)."""
    return 0.5 * (acid_M + math.sqrt(acid_M * acid_M + 4.0 * kw))


def ph_of(acid_M, kw=1e-14):
    return -math.log10(free_proton(acid_M, kw))


def distribution_ratio(loading_M, proton_M, params):
    """D = K·(free dimer)³/h³; zero once the organic is saturated."""
    free_dimer = params.extractant_M / 2.0 - 3.0 * loading_M
    if free_dimer <= 0.0:
        return 0.0
    return 10.0 ** params.log_k * free_dimer**3 / proton_M**3


def extraction_rate(acid_M, ree_M, loading_M, params):
    """r in mol per L aqueous per min; −inf when loaded organic meets saturated extractant."""
    if loading_M <= 0.0:
        return params.transfer_rate_per_min * ree_M
    d = distribution_ratio(loading_M, free_proton(acid_M, params.water_kw), params)
    if d == 0.0:
        return -math.inf
    return params.transfer_rate_per_min * (ree_M - loading_M / d)


def phase_volumes(aqueous_flow_L_min, organic_flow_L_min, params):
    """(Va, Vo): the mixer holds the phases in their flow ratio."""
    if aqueous_flow_L_min <= 0.0 or organic_flow_L_min <= 0.0:
        raise ValueError("the stage model needs both phases flowing")
    va = params.mixer_volume_L * aqueous_flow_L_min / (aqueous_flow_L_min + organic_flow_L_min)
    return va, params.mixer_volume_L - va


def backward_euler(state, aqueous_in, organic_in, base_L_min, dt_min, params):
    """One backward-Euler step of a stage over dt_min with inlets and base dose held.

    With the extraction over the step, ξ = dt·r, as the only unknown, every new concentration is
    linear in ξ, and ξ − dt·r(ξ) rises monotonically: bracketed Newton finds it inside the
    bounds C ≥ 0, Y ≥ 0, 3Y ≤ HA_t/2.
    """
    va, vo = phase_volumes(aqueous_in.flow_L_min, organic_in.flow_L_min, params)
    out = aqueous_in.flow_L_min + base_L_min
    # Inlet mix the hold-ups relax to; base neutralises acid and dilutes everything it joins.
    acid_mix = (aqueous_in.flow_L_min * aqueous_in.acid_M - base_L_min * params.base_M) / out
    ree_mix = aqueous_in.flow_L_min * aqueous_in.ree_M / out
    keep_aq = 1.0 / (1.0 + out * dt_min / va)
    keep_org = 1.0 / (1.0 + organic_in.flow_L_min * dt_min / vo)
    # New state = start + slope·ξ.
    acid0 = keep_aq * state.acid_M + (1.0 - keep_aq) * acid_mix
    ree0 = keep_aq * state.ree_M + (1.0 - keep_aq) * ree_mix
    loading0 = keep_org * state.loading_M + (1.0 - keep_org) * organic_in.ree_M
    acid_slope, ree_slope, loading_slope = 3.0 * keep_aq, -keep_aq, keep_org * va / vo
    saturation = params.saturation_loading_M
    km_dt = params.transfer_rate_per_min * dt_min

    def residual(extent):
        """ξ − dt·r(ξ) and its slope; +inf where the organic would pass saturation."""
        acid = acid0 + acid_slope * extent
        ree = ree0 + ree_slope * extent
        loading = max(loading0 + loading_slope * extent, 0.0)
        proton = free_proton(acid, params.water_kw)
        d = distribution_ratio(loading, proton, params)
        if d == 0.0:
            return math.inf, math.inf
        back = loading / d  # Y/D
        free_dimer = params.extractant_M / 2.0 - 3.0 * loading
        root = 2.0 * proton - acid  # √(H² + 4Kw); dh/dH = h/root
        # d(Y/D)/dξ: Y rises, h³ rises with H, free dimer³ falls with Y.
        d_back = loading_slope / d + back * (
            3.0 * acid_slope / root + 9.0 * loading_slope / free_dimer
        )
        return extent - km_dt * (ree - back), 1.0 + km_dt * (-ree_slope + d_back)

    lo = -loading0 / loading_slope  # organic fully stripped
    hi = min(-ree0 / ree_slope, (saturation - loading0) / loading_slope)  # aqueous empty / full
    extent = 0.0
    if hi > lo:
        extent = min(max(0.0, lo), hi)
        for _ in range(_NEWTON_ITERATIONS):
            g, slope = residual(extent)
            if g > 0.0:
                hi = extent
            else:
                lo = extent
            if g == 0.0 or hi - lo <= _EXTENT_TOL_M:
                break
            guess = extent - g / slope if math.isfinite(g) else lo
            if not lo < guess < hi:
                guess = 0.5 * (lo + hi)  # Newton left the bracket: bisect instead
            if abs(guess - extent) <= _EXTENT_TOL_M:
                extent = guess
                break
            extent = guess
    return StageState(
        acid0 + acid_slope * extent,
        max(ree0 + ree_slope * extent, 0.0),
        min(max(loading0 + loading_slope * extent, 0.0), saturation),
    )


def steady_state(base_L_min, aqueous_in=None, organic_in=None, params=None):
    """The stage's steady state for a constant base dose, by bisection on the loading."""
    params = params or StageParams()
    aq = aqueous_in or Aqueous()
    org = organic_in or Organic()
    va, _ = phase_volumes(aq.flow_L_min, org.flow_L_min, params)
    out = aq.flow_L_min + base_L_min

    def state_at(loading):
        extracted = org.flow_L_min * (loading - org.ree_M)  # mol/min moved into the organic
        return StageState(
            (aq.flow_L_min * aq.acid_M - base_L_min * params.base_M + 3.0 * extracted) / out,
            max((aq.flow_L_min * aq.ree_M - extracted) / out, 0.0),  # rounding only
            loading,
        )

    def surplus(loading):
        """Extraction minus what the organic carries away; falls as loading rises."""
        s = state_at(loading)
        return va * extraction_rate(*s, params) - org.flow_L_min * (loading - org.ree_M)

    lo = 0.0
    hi = min(org.ree_M + aq.flow_L_min * aq.ree_M / org.flow_L_min, params.saturation_loading_M)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if surplus(mid) > 0.0:
            lo = mid
        else:
            hi = mid
    return state_at(0.5 * (lo + hi))


def titration_curve(base_mol_per_L_feed_values, aqueous_in=None, organic_in=None, params=None):
    """Steady-state stage pH for each base-to-feed ratio (mol base per L of aqueous feed)."""
    params = params or StageParams()
    aq = aqueous_in or Aqueous()
    result = []
    for ratio in base_mol_per_L_feed_values:
        base_L_min = ratio * aq.flow_L_min / params.base_M
        state = steady_state(base_L_min, aq, organic_in, params)
        result.append(ph_of(state.acid_M, params.water_kw))
    return result


class Stage:
    """One mixer with its pH probe and base dosing pump.

    Set base_dose_L_min (the controller output, clamped ≥ 0) and the inlet streams between
    step() calls. Starts at the steady state of its initial dose unless a state is given.
    """

    def __init__(self, params=None, aqueous_in=None, organic_in=None, base_dose_L_min=0.0,
                 state=None, tick_s=1.0):
        self.params = params or StageParams()
        self.aqueous_in = aqueous_in or Aqueous()
        self.organic_in = organic_in or Organic()
        self.base_dose_L_min = base_dose_L_min
        self.tick_s = tick_s
        if state is None:
            state = steady_state(self.base_dose_L_min, self.aqueous_in, self.organic_in,
                                 self.params)
        self.acid_M, self.ree_M, self.loading_M = state
        self.applied_base_L_min = self.base_dose_L_min
        self._pump = DeadTime(self.params.pump_dead_time_s, tick_s, self.base_dose_L_min)
        self._probe = FirstOrderSensor(self.params.sensor_tau_s, self.ph())
        self.time_s = 0.0

    @property
    def base_dose_L_min(self):
        return self._base_dose

    @base_dose_L_min.setter
    def base_dose_L_min(self, value):
        self._base_dose = max(0.0, value)

    @property
    def state(self):
        return StageState(self.acid_M, self.ree_M, self.loading_M)

    def ph(self):
        """True pH in the mixer."""
        return ph_of(self.acid_M, self.params.water_kw)

    def ph_measured(self):
        """What the (lagging) probe reads."""
        return self._probe.value

    def volumes_L(self):
        """(Va, Vo) hold-ups at the current inlet flows."""
        return phase_volumes(self.aqueous_in.flow_L_min, self.organic_in.flow_L_min, self.params)

    def aqueous_out(self):
        """The aqueous leaving: inlet plus the base the pump is delivering."""
        flow = self.aqueous_in.flow_L_min + self.applied_base_L_min
        return Aqueous(flow, self.acid_M, self.ree_M)

    def organic_out(self):
        return Organic(self.organic_in.flow_L_min, self.loading_M)

    def step(self, dt_s):
        """Advance dt_s (a whole number of ticks) with the current inlets; return measured pH."""
        for _ in range(ticks_in(dt_s, self.tick_s)):
            self._pump_tick()
            self._process_tick(self.aqueous_in, self.organic_in)
        return self.ph_measured()

    def _pump_tick(self):
        self.applied_base_L_min = self._pump.push(self.base_dose_L_min)

    def _process_tick(self, aqueous_in, organic_in):
        self.acid_M, self.ree_M, self.loading_M = backward_euler(
            self.state, aqueous_in, organic_in, self.applied_base_L_min, self.tick_s / 60.0,
            self.params)
        self._probe.update(self.ph(), self.tick_s)
        self.time_s += self.tick_s


def ticks_in(dt_s, tick_s):
    ticks = round(dt_s / tick_s)
    if ticks < 1 or abs(ticks * tick_s - dt_s) > 1e-9 * max(1.0, dt_s):
        raise ValueError(f"step of {dt_s} s is not a whole number of {tick_s} s ticks")
    return ticks


class Cascade:
    """n stages in counter-current: feed into stage 1 (index 0), fresh organic into stage n.

    Disturb by changing feed (flow_L_min, ree_M, acid_M) or fresh_organic between steps; dose
    base per stage with stages[i].base_dose_L_min or set_base_doses(). Starts with every mixer
    full of feed and fresh organic.
    """

    def __init__(self, n_stages, params=None, feed=None, fresh_organic=None, tick_s=1.0):
        if n_stages < 1:
            raise ValueError("a cascade needs at least one stage")
        self.params = params or StageParams()
        self.feed = feed or Aqueous()
        self.fresh_organic = fresh_organic or Organic()
        self.tick_s = tick_s
        fill = StageState(self.feed.acid_M, self.feed.ree_M, self.fresh_organic.ree_M)
        self.stages = [
            Stage(self.params, replace(self.feed), replace(self.fresh_organic), 0.0, fill, tick_s)
            for _ in range(n_stages)
        ]
        self.time_s = 0.0

    def set_base_doses(self, doses_L_min):
        for stage, dose in zip(self.stages, doses_L_min, strict=True):
            stage.base_dose_L_min = dose

    def ph(self):
        return [stage.ph() for stage in self.stages]

    def ph_measured(self):
        return [stage.ph_measured() for stage in self.stages]

    def step(self, dt_s):
        """Advance dt_s (a whole number of ticks); return the measured pH of every stage."""
        for _ in range(ticks_in(dt_s, self.tick_s)):
            for stage in self.stages:
                stage._pump_tick()
            self._wire_inlets()
            for stage in self.stages:
                stage._process_tick(stage.aqueous_in, stage.organic_in)
            self.time_s += self.tick_s
        return self.ph_measured()

    def _wire_inlets(self):
        """Each stage's inlets are its neighbours' outlets at the start of the tick."""
        aqueous = replace(self.feed)
        for stage in self.stages:
            stage.aqueous_in = aqueous
            aqueous = stage.aqueous_out()
        organic = replace(self.fresh_organic)
        for stage in reversed(self.stages):
            stage.organic_in = organic
            organic = stage.organic_out()

    @property
    def raffinate(self):
        """Aqueous leaving the last stage."""
        self._wire_inlets()  # flows follow the current feed and pump deliveries
        return self.stages[-1].aqueous_out()

    @property
    def loaded_organic(self):
        """Organic leaving the first stage."""
        return self.stages[0].organic_out()

    def ree_flows(self):
        """Rare earth carried in by the feed and out by raffinate and loaded organic, mol/min."""
        raffinate = self.raffinate
        loaded = self.loaded_organic
        return ReeFlows(
            self.feed.flow_L_min * self.feed.ree_M
            + self.fresh_organic.flow_L_min * self.fresh_organic.ree_M,
            raffinate.flow_L_min * raffinate.ree_M,
            loaded.flow_L_min * loaded.ree_M,
        )

    def ree_inventory_mol(self):
        """Rare earth held in all mixers."""
        self._wire_inlets()
        total = 0.0
        for stage in self.stages:
            va, vo = stage.volumes_L()
            total += va * stage.ree_M + vo * stage.loading_M
        return total
