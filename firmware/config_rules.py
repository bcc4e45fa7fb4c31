"""Cross-field config rules, shared verbatim by the board and the host's plant-file check."""
import config_table as T


def violations(value):
    """[(item index, text)] for every rule broken; `value(index)` gives an item's raw value.
    Indices are config_table's (on the host, sxproto.config_items provides the same table)."""
    bad = []
    if value(T.PH_DEV_WARN) >= value(T.PH_DEV_ALARM):
        bad.append((T.PH_DEV_WARN, "must be below ph_dev_alarm"))
    if not value(T.PH_LOW_ALARM) < value(T.PH_SETPOINT) < value(T.PH_HIGH_TRIP):
        bad.append((T.PH_SETPOINT, "must lie between ph_low_alarm and ph_high_trip"))
    if value(T.PH_RESPONSE) >= value(T.STUCK_WINDOW):
        bad.append((T.PH_RESPONSE, "must be below stuck_window, or the stuck check never sees the loop act"))
    n = value(T.TITRATION_POINTS)
    for i in range(1, n):
        if value(T.TITRATION_PH_0 + i) <= value(T.TITRATION_PH_0 + i - 1):
            bad.append((T.TITRATION_PH_0 + i, "titration pH points must increase"))
        if value(T.TITRATION_BASE_0 + i) < value(T.TITRATION_BASE_0 + i - 1):
            bad.append((T.TITRATION_BASE_0 + i, "titration base points must not decrease"))
    if n >= 2 and 0 <= value(T.TITRATION_PH_0 + n - 1) - value(T.TITRATION_PH_0) < 100:
        bad.append((T.TITRATION_PH_0 + n - 1, "the titration curve must span at least 0.1 pH"))
    return bad
