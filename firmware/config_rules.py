"""Cross-field config rules, shared verbatim by the board and the host's plant-file check."""


def violations(value):
    """[(item name, text)] for every rule broken; `value(name)` gives an item's raw value."""
    bad = []
    if value("ph_dev_warn") >= value("ph_dev_alarm"):
        bad.append(("ph_dev_warn", "must be below ph_dev_alarm"))
    if not value("ph_low_alarm") < value("ph_setpoint") < value("ph_high_trip"):
        bad.append(("ph_setpoint", "must lie between ph_low_alarm and ph_high_trip"))
    n = value("titration_points")
    for i in range(1, n):
        if value("titration_ph_%d" % i) <= value("titration_ph_%d" % (i - 1)):
            bad.append(("titration_ph_%d" % i, "titration pH points must increase"))
        if value("titration_base_%d" % i) < value("titration_base_%d" % (i - 1)):
            bad.append(("titration_base_%d" % i, "titration base points must not decrease"))
    return bad
