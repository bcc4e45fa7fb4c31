"""What the web view shows, as JSON-able dicts: the overview of every stage from the gateway's
current state, the trends and the alarm history from its SQLite log.

A faulted value (its sensor's fault alarm active) and every value of a stale or offline stage
is None here, never a number: the page shows FAULT or stale for it.
"""
import sqlite3
import time

from sxproto import messages

from ... import store
from .. import registers

TILE_FIELDS = ("ph", "ph_setpoint", "orp_mv", "temperature", "flow_aq", "flow_org", "base_dose",
               "reagent_dose", "aq_pump", "org_pump")
TREND_FIELDS = ("ph", "ph_setpoint", "base_dose", "flow_aq", "flow_org")
TREND_SPAN_S = 8 * 3600
TREND_POINTS = 600  # at most this many points per field and request: a bucket's mean
ALARM_HISTORY = 200
_CODE = {name: code for code, name in messages.EVENT_CODES.items()}


def stage_view(state, name=None):
    """One tile: engineering values (None where faulted or stale), alarms, mode, calibration."""
    values = state.values()
    fresh = state.fresh()
    active = state.alarms()
    unacked = state.unacked_now()
    out = {"addr": state.addr, "name": name or "stage %d" % state.addr, "online": bool(state.online),
           "fresh": fresh, "data_age_ms": None if state.read_at is None else state.age_ms(),
           "record": state.record, "values": {}, "faults": [],
           "mode": store.mode_name(state.raw["mode"]) if state.raw and fresh else None,
           "alarms_active": alarm_list(active) if fresh else [], "alarms_unacked": alarm_list(unacked),
           "cal_id": state.cal_id, "cal_age_s": None if state.cal_time is None else state.cal_age_s(),
           "cal_slope_acid": _config(state, "ph_cal_slope_acid"), "cal_slope_base": _config(state, "ph_cal_slope_base")}
    for name_ in TILE_FIELDS:
        raw = values.get(name_)
        out["values"][name_] = None if raw is None or not store.in_range(name_, raw) else store.engineering(name_, raw)
        if fresh and state.raw and name_ in registers.FAULTS_OF and raw is None:
            out["faults"].append(name_)
    return out


def _config(state, item):
    raw = state.config.get(item)
    return None if raw is None else round(raw * 0.01, 2)  # the slopes' scale, 0.01 %


def alarm_list(bits):
    return [name for bit, name in messages.ALARMS.items() if bits >> bit & 1]


def overview(gw, names=None):
    names = names or {}
    return {"now": time.time(), "period": gw.period, "stale_s": gw.stale_s,
            "rounds": gw.logger.rounds if gw.logger else 0,
            "stages": [stage_view(gw.states[a], names.get(a)) for a in gw.addrs]}


def connect(db):
    """A read-only connection to the gateway's log (the bus thread writes; we only read)."""
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
    c.execute("PRAGMA query_only = 1")
    return c


def trend(db, stage, start, end, points=TREND_POINTS):
    """{t: [...], field: [...]} for stage between Unix times start and end, one mean per bucket so
    that at most `points` come back; a bucket where the value was faulted throughout is None."""
    span = max(1.0, end - start)
    bucket = max(1, int(span // points) + (1 if span % points else 0))
    cols = ", ".join("AVG(CASE WHEN alarms_active & %d THEN NULL ELSE %s END)" % (
        _fault_bits(f), f) for f in TREND_FIELDS)
    sql = ("SELECT MIN(time), %s FROM telemetry WHERE stage = ? AND time >= ? AND time <= ? "
           "GROUP BY time / ? ORDER BY MIN(time)" % cols)
    out = {"stage": stage, "start": start, "end": end, "bucket_s": bucket, "t": []}
    out.update({f: [] for f in TREND_FIELDS})
    with connect(db) as c:
        for row in c.execute(sql, (stage, int(start), int(end), bucket)):
            out["t"].append(row[0])
            for f, v in zip(TREND_FIELDS, row[1:]):
                out[f].append(None if v is None else round(v * store.scale(f), store.decimals(f)))
    return out


def _fault_bits(field):
    return sum(1 << bit for bit, name in messages.ALARMS.items() if name in registers.FAULTS_OF.get(field, ()))


def alarms(gw, db, names=None):
    """The alarm list: every alarm now active or unacknowledged, with its state and the time it was
    raised; then the alarm events of the log, newest first."""
    names = names or {}
    raised = {}
    history = []
    try:
        with connect(db) as c:
            for stage, t, code, alarm in c.execute(
                    "SELECT stage, time, code, alarm FROM events WHERE code IN (?, ?, ?) ORDER BY time DESC, seq DESC "
                    "LIMIT ?", (_CODE["raised"], _CODE["cleared"], _CODE["acknowledged"], ALARM_HISTORY)):
                if code == _CODE["raised"]:
                    raised.setdefault((stage, alarm), t)
                history.append({"time": t, "stage": stage, "alarm": messages.ALARMS.get(alarm, str(alarm)),
                                "event": messages.EVENT_CODES[code]})
    except sqlite3.OperationalError:  # no log yet
        pass
    current = []
    for addr in gw.addrs:
        state = gw.states[addr]
        active = state.alarms() if state.fresh() else 0
        unacked = state.unacked_now()
        for bit, name in messages.ALARMS.items():
            a, u = active >> bit & 1, unacked >> bit & 1
            if a or u:
                current.append({"time": raised.get((addr, bit)), "stage": addr, "stage_name": names.get(addr),
                                "alarm": name, "state": ("active" if a else "cleared") + (" unacked" if u else " acked")})
    return {"current": current, "history": history}
