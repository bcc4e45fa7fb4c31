"""Configuration items: id, unit, scale, range and default of every setting a stage board keeps.

Declared once here; the firmware's table (firmware/config_table.py) is generated from it, the
board range-checks every write against it, and the host validates plant files with it.
Raw values are integers: the engineering value is raw × scale.
"""
from . import config_rules


class Item:
    def __init__(self, item_id, name, unit, scale, lo, hi, default, doc):
        if not lo <= default <= hi:
            raise ValueError("config item %s: default %s outside %s..%s" % (name, default, lo, hi))
        self.id = item_id
        self.name = name
        self.unit = unit
        self.scale = scale
        self.lo = lo
        self.hi = hi
        self.default = default
        self.doc = doc

    def describe(self):
        return "%d:%s:%s:%s:%d:%d:%d" % (self.id, self.name, self.unit, self.scale, self.lo, self.hi, self.default)


TITRATION_POINTS = 8

ITEMS = [
    # pH loop and alarms (DOMAIN.md §1, §5)
    Item(1, "ph_setpoint", "pH", 0.001, -1000, 14000, 1500, "stage pH setpoint"),
    Item(2, "ph_high_trip", "pH", 0.001, 0, 14000, 5500, "absolute high pH: base dosing trips (extraction ≤ 5.5; Fe feed ≤ 3.0)"),
    Item(3, "ph_low_alarm", "pH", 0.001, -2000, 14000, 0, "absolute low pH alarm"),
    Item(4, "ph_dev_warn", "pH", 0.001, 10, 5000, 300, "deviation from setpoint that warns"),
    Item(5, "ph_dev_alarm", "pH", 0.001, 10, 5000, 500, "deviation from setpoint that alarms"),
    Item(6, "ph_deadband", "pH", 0.001, 0, 1000, 30, "no output change within this band"),
    Item(7, "pid_kp", "mL/min per pH", 0.01, 1, 1000000, 10000, "proportional gain on the base dose"),
    Item(8, "pid_ti", "s", 1, 0, 36000, 120, "integral time (0: no integral action)"),
    Item(9, "pid_td", "s", 0.1, 0, 1000, 0, "derivative time (the pH loop takes up to 100 s)"),
    Item(10, "base_max", "mL/min", 0.01, 100, 65535, 50000, "base pump full scale: the largest dose the loop may command"),
    Item(11, "base_rate_limit", "mL/min per scan", 0.01, 1, 65535, 5000, "largest change of the base dose per control scan"),
    Item(12, "dose_cap_period", "mL", 0.01, 0, 1000000, 40000, "most base dosed within one dose period"),
    Item(13, "dose_period", "s", 1, 2, 60, 60, "length of the dose period"),
    Item(14, "dose_cap_hour", "mL", 0.01, 0, 50000000, 2500000, "most base dosed within any rolling hour (DOMAIN.md §5: about 1.2 × the need)"),
    Item(15, "dose_min_off", "s", 1, 0, 3600, 0, "minimum pause after a period's cap is reached"),
    Item(16, "min_flow_for_dosing", "L/min", 0.001, 0, 60000, 100, "no dosing while the aqueous flow is below this"),
    # Fail-safe and timing
    Item(20, "link_timeout", "s", 1, 0, 86400, 30, "silence on the bus before the safe state (0: never)"),
    Item(21, "safe_state", "", 1, 0, 1, 0, "on link loss: 0 all outputs off, 1 base off and flows held"),
    Item(22, "measure_period", "ms", 1, 200, 10000, 1000, "sensor scan period"),
    Item(23, "control_scans", "scans", 1, 1, 20, 2, "control every N sensor scans"),
    Item(24, "invalid_scans_to_stop", "scans", 1, 1, 20, 3, "scans without a valid pH before dosing stops"),
    Item(25, "stuck_window", "s", 1, 10, 3600, 120, "window of the stuck-sensor check"),
    # Flows (DOMAIN.md §4)
    Item(30, "flow_aq_setpoint", "L/min", 0.001, 0, 60000, 1000, "aqueous flow setpoint"),
    Item(31, "flow_org_setpoint", "L/min", 0.001, 0, 60000, 1500, "organic flow setpoint"),
    Item(32, "oa_ratio", "", 0.001, 0, 10000, 1500, "organic/aqueous ratio held by the organic loop (0: use flow_org_setpoint)"),
    Item(33, "k_factor_aq", "pulses/L", 0.1, 1, 1000000, 4500, "aqueous meter K-factor"),
    Item(34, "k_factor_org", "pulses/L", 0.1, 1, 1000000, 4500, "organic meter K-factor"),
    Item(36, "flow_kp", "% per L/min", 0.01, 0, 20000, 5000, "flow loops: pump output per L/min of error"),
    Item(37, "flow_ti", "s", 1, 0, 3600, 20, "flow loops: integral time"),
    Item(35, "feedforward", "mL base per L feed", 0.01, 0, 100000, 0,
         "base dosed in proportion to the aqueous flow; with a titration curve, the curve's base at the setpoint (0: none)"),
    Item(38, "mix_time", "s", 1, 0, 3600, 0,
         "stage holdup ÷ throughput: a setpoint change doses at once the base that moves the contents along the curve (0: none)"),
    Item(39, "ph_response", "s", 1, 0, 600, 0,
         "electrode response (dead time + 5 lags): after that dose the loop waits for it at most this long"),
    # ORP and temperature (DOMAIN.md §2, §3)
    Item(40, "orp_setpoint", "mV", 1, -2000, 2000, 680, "ORP setpoint vs Ag/AgCl"),
    Item(41, "orp_range", "mV", 1, 100, 2000, 1020, "ORP input range; a reading at the rail is a fault"),
    Item(44, "orp_kp", "mL/min per mV", 0.01, 0, 100000, 0, "ORP loop gain on the reagent dose (0: no ORP loop)"),
    Item(45, "orp_ti", "s", 1, 0, 36000, 120, "ORP loop integral time"),
    Item(46, "reagent_max", "mL/min", 0.01, 100, 65535, 10000, "reagent pump full scale"),
    Item(42, "temperature_fixed", "°C", 0.01, -1000, 10000, 2500, "temperature used without a probe"),
    Item(43, "temperature_source", "", 1, 0, 1, 0, "0 fixed, 1 probe"),
    # Calibration in use (written by a committed calibration or a plant file)
    Item(70, "ph_cal_offset", "mV", 0.001, -60000, 60000, 0, "pH electrode potential at pH 7.00"),
    Item(71, "ph_cal_slope_acid", "%", 0.01, 8500, 10500, 10000, "pH slope below 7, % of Nernst"),
    Item(72, "ph_cal_slope_base", "%", 0.01, 8500, 10500, 10000, "pH slope above 7, % of Nernst"),
    Item(73, "ph_cal_id", "", 1, 0, 65535, 0, "id of the pH calibration in use (0: factory)"),
    Item(74, "ph_cal_time", "s", 1, 0, 0x7FFFFFFF, 0, "when the pH calibration was made (Unix time)"),
    Item(75, "orp_cal_offset", "mV", 0.001, -50000, 50000, 0, "ORP offset added to the input"),
    # Titration curve for gain scheduling and feedforward: pH points and base per litre of feed (DOMAIN.md §6)
    Item(50, "titration_points", "", 1, 0, TITRATION_POINTS, 0, "points used (0: no gain scheduling)"),
] + [
    Item(51 + i, "titration_ph_%d" % i, "pH", 0.001, -2000, 16000, 0, "titration curve pH, point %d" % i)
    for i in range(TITRATION_POINTS)
] + [
    Item(61 + i, "titration_base_%d" % i, "0.1 mL/L feed", 1, 0, 10000, 0, "base per litre of feed, point %d" % i)
    for i in range(TITRATION_POINTS)
]

BY_ID = {i.id: i for i in ITEMS}
BY_NAME = {i.name: i for i in ITEMS}


def rule_violations(values):
    """Cross-field rules (config_rules.py) broken by a full {name: raw value} map, as
    [(item name, text)]."""
    return config_rules.violations(values.__getitem__)


def rule_texts():
    """The cross-field rules as the reference prints them: [(item, text)], where `item` names the
    item the board reports in ERROR.detail (code 5) when the rule is broken."""
    out = []
    for rule in config_rules.RULES:
        series = getattr(rule, "series", None)
        if getattr(rule, "span", False):  # the last point in use
            first = BY_NAME[rule.prefix + "_0"]
            out.append(("%s_i (id %d + i), i = %s - 1" % (rule.prefix, first.id, rule.count), rule.text))
            continue
        if series is None:
            out.append(("%s (id %d)" % (rule.item, BY_NAME[rule.item].id), rule.text))
            continue
        for prefix, _, text in series:  # a rule over the points in use: item i for 1 <= i < the count
            first = BY_NAME[prefix + "_0"]
            out.append(("%s_i (id %d + i), 1 ≤ i < %s" % (prefix, first.id, rule.count), text))
    return out
