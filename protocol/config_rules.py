"""Cross-field config rules: combinations of item values a board refuses as a whole.

Declared once here. The host checks plant files and write plans with `violations`; `make proto`
generates the board's copy (firmware/config_rules.py, `firmware_source`) from the same
declarations, and tests keep the two alike. A rule names the item the error is reported on
first; its text says what is wrong, as the user reads it after `file:line: key:`.
"""


class Below:
    """`item` must be below `limit`."""

    def __init__(self, item, limit, text):
        self.item, self.limit, self.text = item, limit, text

    def names(self):
        return [self.item, self.limit]

    def check(self, value):
        return [] if value(self.item) < value(self.limit) else [(self.item, self.text)]

    def firmware(self):
        return ["if not value(T.%s) < value(T.%s):" % (_ident(self.item), _ident(self.limit)),
                "    bad.append((T.%s, %r))" % (_ident(self.item), self.text)]


class Between:
    """`item` must lie strictly between `low` and `high`."""

    def __init__(self, low, item, high, text):
        self.low, self.item, self.high, self.text = low, item, high, text

    def names(self):
        return [self.low, self.item, self.high]

    def check(self, value):
        return [] if value(self.low) < value(self.item) < value(self.high) else [(self.item, self.text)]

    def firmware(self):
        return ["if not value(T.%s) < value(T.%s) < value(T.%s):" % tuple(map(_ident, self.names())),
                "    bad.append((T.%s, %r))" % (_ident(self.item), self.text)]


class Ordered:
    """The first `count` points of each series (items `<series>_0`, `<series>_1`, ...) increase:
    strictly where `strict`, else never decrease. An error names the point out of order."""

    def __init__(self, count, *series):
        self.count = count
        self.series = series  # (prefix, strict, text)

    def names(self):
        return [self.count] + [prefix + "_0" for prefix, _, _ in self.series]

    def check(self, value):
        bad = []
        for i in range(1, value(self.count)):
            for prefix, strict, text in self.series:
                before, here = value("%s_%d" % (prefix, i - 1)), value("%s_%d" % (prefix, i))
                if not (before < here if strict else before <= here):
                    bad.append(("%s_%d" % (prefix, i), text))
        return bad

    def firmware(self):
        # Indices run on from <series>_0: codegen checks the table keeps the points adjacent.
        out = ["n = value(T.%s)" % _ident(self.count), "for i in range(1, n):"]
        for prefix, strict, text in self.series:
            first = "T.%s_0" % _ident(prefix)
            out += ["    if not value(%s + i - 1) %s value(%s + i):" % (first, "<" if strict else "<=", first),
                    "        bad.append((%s + i, %r))" % (first, text)]
        return out


class Span:
    """The points in use of a rising series (`<series>_0` .. `<series>_<count-1>`) span at least
    `minimum` from first to last; an error names the last point. A falling series is left to
    Ordered."""

    span = True

    def __init__(self, count, prefix, minimum, text):
        self.count, self.prefix, self.minimum, self.text = count, prefix, minimum, text
        self.series = ((prefix, None, text),)  # codegen keeps the points adjacent

    def names(self):
        return [self.count, self.prefix + "_0"]

    def check(self, value):
        n = value(self.count)
        last = "%s_%d" % (self.prefix, n - 1)
        if n >= 2 and 0 <= value(last) - value(self.prefix + "_0") < self.minimum:
            return [(last, self.text)]
        return []

    def firmware(self):
        first = "T.%s_0" % _ident(self.prefix)
        return ["n = value(T.%s)" % _ident(self.count),
                "if n >= 2 and 0 <= value(%s + n - 1) - value(%s) < %d:" % (first, first, self.minimum),
                "    bad.append((%s + n - 1, %r))" % (first, self.text)]


RULES = [
    Below("ph_dev_warn", "ph_dev_alarm", "must be below ph_dev_alarm"),
    Between("ph_low_alarm", "ph_setpoint", "ph_high_trip", "must lie between ph_low_alarm and ph_high_trip"),
    Below("ph_response", "stuck_window", "must be below stuck_window, or the stuck check never sees the loop act"),
    Ordered("titration_points",
            ("titration_ph", True, "titration pH points must increase"),
            ("titration_base", False, "titration base points must not decrease")),
    # The pH loop divides by the curve's span in 1/256 milli-pH: below 0.1 pH the products leave
    # the 30-bit small integers of a 32-bit board (control/pid.py).
    Span("titration_points", "titration_ph", 100, "the titration curve must span at least 0.1 pH"),
]


def violations(value):
    """[(item name, text)] for every rule broken; `value(name)` gives an item's raw value."""
    return [broken for rule in RULES for broken in rule.check(value)]


def firmware_source():
    """firmware/config_rules.py: the same rules over item indices (config_table.py)."""
    out = [
        '"""Cross-field config rules. GENERATED by protocol/codegen.py from protocol/config_rules.py:',
        "do not edit. The board refuses a config write that breaks one (config.py); the host",
        'checks plant files with the declarations themselves."""',
        "import config_table as T",
        "",
        "",
        "def violations(value):",
        '    """[(item index, text)] for every rule broken; `value(index)` gives an item\'s raw value."""',
        "    bad = []",
    ]
    for rule in RULES:
        out += ["    " + line for line in rule.firmware()]
    out.append("    return bad")
    return "\n".join(out) + "\n"


def _ident(name):
    return name.upper()
