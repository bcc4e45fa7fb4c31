"""Control quality of a run, from a trace sampled at the control sample time.

Every figure is computed on samples (t_k, true pH_k, setpoint_k, output_k) taken every
sample_s from a session's trace, so they count what the plant did, not what the board read:
- IAE: Σ |setpoint − pH| · sample_s, in pH·min;
- settling time after a step: from the step until the pH enters ±band of the new setpoint and
  stays there until the next step (None if it never does);
- total variation of the output: Σ |u_k − u_(k−1)| (a measure of actuator wear);
- sustained oscillation: in the last half of any interval between steps, the error changes sign
  at least `crossings` times with a swing above `swing` pH (a decaying ring does not count).
"""
import dataclasses


@dataclasses.dataclass
class Samples:
    t_s: list
    ph: list
    setpoint: list
    output: list


def sample(trace, board, sample_s, output="base"):
    """Samples of one board from a session Trace, every sample_s of simulated time."""
    step = max(1, int(round(sample_s / (trace.t_s[1] - trace.t_s[0])))) if len(trace.t_s) > 1 else 1
    ks = range(0, len(trace.t_s), step)
    out = getattr(trace, output)
    return Samples([trace.t_s[k] for k in ks], [trace.ph[k][board] for k in ks],
                   [trace.setpoint[k][board] for k in ks], [out[min(k, len(out) - 1)][board] for k in ks])


def iae(s, since_s=0.0):
    dt = s.t_s[1] - s.t_s[0]
    return sum(abs(sp - ph) for t, ph, sp in zip(s.t_s, s.ph, s.setpoint) if t >= since_s) * dt / 60.0


def total_variation(s):
    return sum(abs(b - a) for a, b in zip(s.output, s.output[1:]))


def max_error(s, since_s=0.0):
    return max(abs(sp - ph) for t, ph, sp in zip(s.t_s, s.ph, s.setpoint) if t >= since_s)


def settling(s, steps_s, band=0.1):
    """Seconds from each step time to the pH staying within ±band of the setpoint until the next step."""
    edges = list(steps_s) + [s.t_s[-1] + 1e-9]
    out = []
    for start, end in zip(edges, edges[1:]):
        inside = [(t, abs(sp - ph) <= band) for t, ph, sp in zip(s.t_s, s.ph, s.setpoint) if start <= t < end]
        settled = None
        for t, ok in reversed(inside):
            if not ok:
                break
            settled = t
        out.append(None if settled is None else settled - start)
    return out


def oscillates(s, steps_s, crossings=4, swing=0.05):
    """True if some interval between steps is still ringing in its second half."""
    edges = list(steps_s) + [s.t_s[-1] + 1e-9]
    for start, end in zip(edges, edges[1:]):
        mid = (start + end) / 2.0
        err = [sp - ph for t, ph, sp in zip(s.t_s, s.ph, s.setpoint) if mid <= t < end]
        if not err or max(err) - min(err) < swing:
            continue
        signs = [e > 0 for e in err if abs(e) > swing / 4.0]
        if sum(1 for a, b in zip(signs, signs[1:]) if a != b) >= crossings:
            return True
    return False
