"""Stage model from a step test, and the loop settings derived from it by a documented rule.

The model a step test identifies (DOMAIN.md §6, mixer-stage model): a static titration curve
(pH against base per feed) followed by linear dynamics; in the board's curve-linearised
coordinates (pid.py maps the pH error through the curve and scales it by the curve's mean
slope) the stage is then one linear process from the base dose to that error:

    gain K = 10 · (ΔpH / Δbase of the whole curve) / feed    [pH per mL/min of dose]
    mixing lag τ1 = mix_time (holdup ÷ throughput), electrode lag τ2, dead time θ

θ is what the pH the board reports lags the dose by: pump and sample line, the electrode's dead
time and the board's 3-sample median on the pH (one measure period), all seen in the response.

The settings follow Skogestad's SIMC rules (S. Skogestad, "Simple analytic rules for model
reduction and PID controller tuning", J. Process Control 13 (2003) 291-309) with the
recommended closed-loop time constant τc = θ, which gives a gain margin of about 3 and a
phase margin of 47-61° at the identified model whatever its dead time. `worst_margins` checks
the loop over titration slope ±30 % × mixing time ±50 %: the slope alone keeps the gain margin
above 2.4, the mixing time alone above 1.7; both at their worst together (slope 30 % steeper,
mixing twice as fast) leave about 1.3 and 28°, stable but ringing, and `sxctl tune` prints that
figure with the settings. A control scan holds its output for Ts, which adds Ts/2 of
delay. The rule is SIMC's for the second-order model as fitted (its rule for SOPDT: Kc =
τ1 / (k (τc + θ)), τI = min(τ1, 4 (τc + θ)), τD = τ2), a series PID whose derivative cancels the
electrode's lag, converted to the board's ideal form, with one guard: τD is at most θ, and the
lag above it goes half into θ and half into τ1 (Skogestad's half rule for a neglected lag). A
fitted lag longer than the dead time is where a step test cannot tell the two apart (on a noisy
stage two lags and no dead time fit as well as one lag and a dead time), and a derivative tuned on
it would leave the loop with nearly no delay to respect. Skogestad switches to a PI by the half
rule when τ2 < θ, where the derivative gains less; the board has the derivative and the electrode
lag is measured, so it is kept there, and the settings move smoothly with the fitted lag: with
the switch, a lag a second either side of the dead time cut the integral gain by a third, and a
load step leaves an integrated error of Δd · τI / Kc (Åström & Hägglund, Advanced PID Control,
2006: IE = 1 / ki), the whole IAE of a well-damped loop.
"""
import dataclasses
import math

import numpy as np

MEDIAN_SAMPLES = 3  # the board's pH median filter (sensors/checks.py): one sample period of delay
SETTLE_LAGS = 5  # an electrode has settled (99 %) after its dead time and 5 lags
LAG_RATIO = 2.0  # the fit tells the lags apart by size: mixing at least twice the electrode's


@dataclasses.dataclass
class Response:
    """A step response fitted by the second-order-plus-dead-time model, in seconds."""

    tau1: float  # the larger lag: the stage's mixing
    tau2: float  # the smaller: the electrode
    theta: float  # dead time of the reported pH
    rms: float  # fit residual, as a fraction of the step
    steps: int = 1  # how many step responses it was fitted to


def step_response(t, tau1, tau2, theta):
    """Unit step response of 1 / ((tau1 s + 1)(tau2 s + 1)) e^(-theta s) at times t."""
    t = np.maximum(np.asarray(t, dtype=float) - theta, 0.0)
    if abs(tau1 - tau2) < 1e-6:
        return 1.0 - (1.0 + t / tau1) * np.exp(-t / tau1)
    return 1.0 - (tau1 * np.exp(-t / tau1) - tau2 * np.exp(-t / tau2)) / (tau1 - tau2)


def fit_response(t, y):
    """Least-squares fit of a step response: y from 0 (before the step) to 1 (settled), t in s
    from the step. Grid search (θ by 1 s, lags on a log grid), then a finer grid around it;
    tau1 >= LAG_RATIO * tau2."""
    return fit_responses([(t, y, 1.0)])


def fit_responses(steps):
    """One model fitted to several step responses at once: [(t, y, weight)], each y from 0 to 1
    as in fit_response, its squared residuals weighted (a step's size squared: its signal over
    the electrode's noise). On a noisy stage a single small step fits a dead time anywhere
    between 0 and 40 s; all of them together pin it down."""
    t = np.concatenate([np.asarray(a, dtype=float) for a, _, _ in steps])
    y = np.concatenate([np.asarray(b, dtype=float) for _, b, _ in steps])
    w = np.concatenate([np.full(len(a), float(k)) for a, _, k in steps])
    w = w / w.sum()

    def search(thetas, tau1s, tau2s):
        best = None
        for theta in thetas:
            for tau2 in tau2s:
                # every tau1 at once: rows of the grid
                T1 = tau1s[:, None]
                tt = np.maximum(t[None, :] - theta, 0.0)
                d = np.where(np.abs(T1 - tau2) < 1e-6, T1 + 1e-3, T1)
                if tau2 > 0:
                    yy = 1.0 - (d * np.exp(-tt / d) - tau2 * np.exp(-tt / tau2)) / (d - tau2)
                else:
                    yy = 1.0 - np.exp(-tt / d)
                err = np.sum(w[None, :] * (yy - y[None, :]) ** 2, axis=1)
                # the mixing lag is the larger by at least LAG_RATIO: two similar lags and a
                # short dead time fit a step as well as one lag and a longer dead time, and only
                # the latter is safe to tune on
                err = np.where(tau1s >= LAG_RATIO * tau2, err, np.inf)
                k = int(np.argmin(err))
                if best is None or err[k] < best[0]:
                    best = (err[k], float(tau1s[k]), float(tau2), float(theta))
        return best

    span = max(float(t.max()), 1.0)
    best = search(np.arange(0.0, min(120.0, span / 2), 1.0), np.geomspace(5.0, max(10.0, span), 60),
                  np.concatenate(([0.0], np.geomspace(1.0, 120.0, 40))))
    _, tau1, tau2, theta = best
    best = search(np.arange(max(0.0, theta - 2.0), theta + 2.01, 0.25),
                  np.linspace(tau1 * 0.85, tau1 * 1.15, 31),
                  np.unique(np.concatenate(([0.0], np.linspace(max(0.0, tau2 * 0.8), tau2 * 1.2 + 0.5, 21)))))
    err, tau1, tau2, theta = best
    return Response(tau1, tau2, theta, math.sqrt(err), len(steps))


@dataclasses.dataclass
class StageModel:
    """What the step test found on one stage."""

    points: list  # titration curve for the board: [(pH, base in 0.1 mL per L feed)], ≤ 8
    feed_L_min: float
    setpoint: float  # pH
    mix_s: float  # τ1
    lag_s: float  # τ2
    dead_s: float  # θ (includes the median filter's sample)
    control_s: float  # the board's control period Ts
    measure_s: float  # the board's measure period (the median's delay)

    @property
    def gain(self):
        """pH (curve-linearised) per mL/min of base dose, at the curve's mean slope."""
        (p0, b0), (p1, b1) = self.points[0], self.points[-1]
        return 10.0 * (p1 - p0) / (b1 - b0) / self.feed_L_min

    @property
    def ph_response_s(self):
        """Dead time (the median's sample included) + 5 lags: when the electrode has seen a dose."""
        return self.dead_s + SETTLE_LAGS * self.lag_s

    def describe(self):
        return ("gain %.4g pH per mL/min (curve-linearised, feed %.3f L/min); mixing %.0f s; electrode lag "
                "%.0f s; dead time %.0f s (of which %.0f s the %d-sample median); control every %g s"
                % (self.gain, self.feed_L_min, self.mix_s, self.lag_s, self.dead_s, self.measure_s,
                   MEDIAN_SAMPLES, self.control_s))


@dataclasses.dataclass
class Settings:
    kp: float  # mL/min per pH
    ti_s: float
    td_s: float
    tau_c: float
    rule: str


def simc(model, tau_c_per_theta=1.0):
    """Loop gains by SIMC (module docstring) for the model; tau_c = tau_c_per_theta × θ."""
    theta = model.dead_s + model.control_s / 2.0
    tau1, tau2, k = model.mix_s, model.lag_s, model.gain
    # the derivative cancels the electrode lag as far as the dead time; the rest of the lag, which
    # a step test cannot tell from dead time, goes half into θ and half into τ1 (the half rule)
    td = min(tau2, theta)
    rest = tau2 - td
    theta += rest / 2.0
    tau1 += rest / 2.0
    tc = tau_c_per_theta * theta
    kc = tau1 / (k * (tc + theta))
    ti = min(tau1, 4.0 * (tc + theta))
    if td <= 0.0:
        return Settings(kc, ti, 0.0, tc, "SIMC PI, τc = θ = %.0f s" % theta)
    # series (kc, ti, td) -> the board's ideal form
    f = 1.0 + td / ti
    return Settings(kc * f, ti * f, td / f, tc, "SIMC PID, τD = %.0f s of the electrode's lag, τc = θ = %.0f s"
                    % (td, theta))


def loop_gain(model, settings, w, gain_scale=1.0, mix_scale=1.0):
    """Open-loop frequency response L(jw) of the settings on the model (numpy array w, rad/s)."""
    s = 1j * np.asarray(w, dtype=float)
    theta = model.dead_s + model.control_s / 2.0
    g = model.gain * gain_scale * np.exp(-theta * s) / ((model.mix_s * mix_scale * s + 1) * (model.lag_s * s + 1))
    c = settings.kp * (1 + 1 / (settings.ti_s * s) + settings.td_s * s)
    return g * c


def margins(model, settings, gain_scale=1.0, mix_scale=1.0):
    """(gain margin, phase margin in degrees) of the loop, the model's gain and mixing scaled."""
    w = np.geomspace(1e-5, 10.0, 20000)
    L = loop_gain(model, settings, w, gain_scale, mix_scale)
    mag = np.abs(L)
    ph = np.unwrap(np.angle(L))
    cross = np.where(np.diff(np.sign(ph + np.pi)) != 0)[0]
    gm = 1.0 / mag[cross[0]] if len(cross) else float("inf")
    up = np.where(np.diff(np.sign(mag - 1.0)) != 0)[0]
    pm = math.degrees(ph[up[0]] + np.pi) if len(up) else 180.0
    return gm, pm


def worst_margins(model, settings):
    """The smallest gain and phase margins over titration slope ±30 % and mixing time ±50 %."""
    gms, pms = [], []
    for g in (0.7, 1.0, 1.3):
        for m in (0.5, 1.0, 1.5):
            gm, pm = margins(model, settings, g, m)
            gms.append(gm)
            pms.append(pm)
    return min(gms), min(pms)


@dataclasses.dataclass
class RuleBreak:
    item: str
    text: str
    fix: dict  # item -> new value (engineering units) that keeps the rule


def rule_breaks(model, values):
    """The cross-field rules the identified settings break, each with its fix. `values`: the
    stage's items in engineering units (stuck_window, ...)."""
    out = []
    response = round(model.ph_response_s)
    stuck = values.get("stuck_window", 120)
    if response >= stuck:
        new = int(math.ceil(2 * response / 10.0) * 10)
        out.append(RuleBreak("ph_response", "ph_response %d s (dead time %.0f s + 5 × lag %.0f s) must be below "
                             "stuck_window %d s, or the stuck check never sees the loop act; fix: stuck_window = %d "
                             "(twice the response), written with the settings" % (
                                 response, model.dead_s, model.lag_s, stuck, new), {"stuck_window": new}))
    if response > 600:
        out.append(RuleBreak("ph_response", "ph_response %d s is above the board's 600 s: the electrode is too slow "
                             "for this loop; clean or replace it and tune again" % response, {}))
    return out
