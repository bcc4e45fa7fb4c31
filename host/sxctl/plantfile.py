"""Plant files: the bus and every stage's settings in engineering units, checked as a whole.

A plant file is TOML:

    [bus]                     # optional; --port/--baud on the command line win
    port = "/dev/ttyUSB0"
    baud = 115200
    key_file = "plant.key"    # optional: sign writes with this plant key (docs/security.md)

    [defaults]                # config items every stage starts from
    ph_dev_warn = 0.3

    [[stage]]                 # one per board
    address = 1
    name = "E1"
    role = "extraction"       # ROLES below
    ph_setpoint = 2.1         # any config item by name (protocol/config_items.py), in its unit
    orp_setpoint = "680 mV"   # a quoted value carries its unit, which must be the item's
    titration = [[0.69, 0], [1.18, 2000]]  # [pH, 0.1 mL base/L feed] points: titration_* items

A stage's items are set from [defaults], then from the stage's own keys; `sxctl config diff`
and `apply` touch only the items the file names, so a board keeps what the file leaves out
(a calibration committed on the board, say). The check runs the rules on the stage's full map,
with item defaults for what the file leaves out; `apply` runs them again on the board's real
values before writing. Unknown keys, wrong types or units, values outside an
item's range or finer than its step, duplicate addresses or names and broken cross-field rules
(the board's own, firmware/config_rules.py) are all reported, each with file, line and key;
a file with any of them is refused whole.
"""
import decimal
import difflib
import pathlib
import re
import tomllib

from sxproto import config_items, link_rules

from .errors import SxctlError

ITEMS = config_items.BY_NAME

# A stage's role says what kind of stage the board runs (DOMAIN.md §1, §2).
ROLES = {
    "feed_prep": "feed preparation: Fe²⁺ oxidation on ORP, FeOOH removal before the cascade",
    "extraction": "extraction: aqueous pH ≈ 1–3 held by base dosing",
    "scrub": "scrub (0.1–1 M H⁺): below pH 0, no glass electrode; acid flow-ratio control",
    "strip": "strip (3–6 M HCl): below pH 0, no glass electrode; acid flow-ratio control",
}
# Highest high-pH trip an extraction stage may have: REE hydroxides and crud above (DOMAIN.md §5).
EXTRACTION_PH_HIGH_TRIP_MAX = 5500

STAGE_KEYS = ("address", "name", "role")
BUS_KEYS = ("port", "baud", "key_file")
# [sim]: the plant model of `sxctl sim --plant` (sim/plants.py checks it); nothing here reads it
TOP_KEYS = ("bus", "defaults", "stage", "sim", "gateway")  # [gateway]: sxctl serve checks it
ADDRESSES = range(link_rules.BOARD_ADDRS[0], link_rules.BOARD_ADDRS[1] + 1)  # the Modbus unit ids
TITRATION = "titration"  # shorthand for titration_points and the titration_ph_i/base_i items
UNIT_ALIASES = {"degC": "°C", "deg C": "°C"}
# Items whose values are choices: their names, as the item's declaration describes them
# (protocol/config_items.py); the number is taken too.
CHOICES = {
    "safe_state": {"off": 0, "flows_held": 1},
    "temperature_source": {"fixed": 0, "probe": 1},
}


class PlantFileError(SxctlError):
    """A plant file refused whole; `problems` lists every reason."""

    def __init__(self, path, problems):
        self.path = path
        self.problems = problems
        lines = [p.format(path) for p in problems]
        super().__init__("%s refused (%d error%s), nothing sent to any board; fix these and run "
                         "`sxctl config check %s`:\n  %s" % (path, len(problems), "" if len(problems) == 1 else "s",
                                                            path, "\n  ".join(lines)))


class Problem:
    def __init__(self, line, where, key, text):
        self.line = line
        self.where = where  # "stage E2", "defaults", "bus" or ""
        self.key = key
        self.text = text

    def format(self, path):
        where = self.where + ": " if self.where else ""
        return "%s:%d: %s%s: %s" % (path, self.line, where, self.key, self.text)


class Stage:
    def __init__(self, name, address, role, values, managed, line):
        self.name = name
        self.address = address
        self.role = role
        self.values = values  # {item name: raw value} for every config item, defaults filled in
        self.managed = managed  # the items the file names for this stage, in [defaults] or its own table
        self.line = line

    def settings(self):
        """{item name: raw value} of the items the file sets on the board."""
        return {name: self.values[name] for name in self.managed}

    def label(self):
        return "stage %s (address %d, %s)" % (self.name, self.address, self.role)


class Plant:
    def __init__(self, path, port, baud, stages, key_file=None):
        self.path = path
        self.port = port
        self.baud = baud
        self.stages = stages
        self.key_file = key_file  # path of the plant key writes are signed with, or None


# --- values in engineering units ---------------------------------------------------------------

def _step(item):
    return decimal.Decimal(repr(item.scale))


def decimals(item):
    return max(0, -_step(item).as_tuple().exponent)


def engineering(item, raw):
    """`raw` in the item's unit as text, e.g. '2.500 pH'."""
    number = format(decimal.Decimal(raw) * _step(item), ".%df" % decimals(item))
    return number + (" " + item.unit if item.unit else "")


def item_range(item):
    return "%s..%s" % (engineering(item, item.lo).split(" ")[0], engineering(item, item.hi))


_NUMBER_UNIT = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")


def _norm_unit(unit):
    unit = " ".join(unit.split())
    return UNIT_ALIASES.get(unit, unit)


def parse_text(item, text, unit_required=False):
    """Raw value of `text` ('2.5', '2.5 pH', '680mV') for `item`; ValueError says what is wrong."""
    m = _NUMBER_UNIT.match(text)
    if not m:
        raise ValueError("%r is not a number%s" % (text, " with a unit" if unit_required else ""))
    unit = m.group(2)
    if unit_required and not unit:
        raise ValueError("a quoted value needs its unit (%r), or write the number without quotes" % (
            "%s %s" % (text.strip(), item.unit or "")).strip())
    if unit and _norm_unit(unit) != _norm_unit(item.unit):
        expected = ("in %s" % item.unit) if item.unit else "without a unit"
        raise ValueError("unit %r does not fit %s, which is %s" % (unit, item.name, expected))
    return to_raw(item, decimal.Decimal(m.group(1)))


def parse_value(item, value):
    """Raw value of a TOML value (int, Decimal, 'number unit' string, or a name of CHOICES) for `item`."""
    if isinstance(value, bool) or not isinstance(value, (int, decimal.Decimal, str)):
        raise ValueError("must be a number%s, not %s" % (
            " in " + item.unit if item.unit else "", _toml_type(value)))
    choices = CHOICES.get(item.name)
    if isinstance(value, str) and choices and not _NUMBER_UNIT.match(value):
        if value.strip() not in choices:
            raise ValueError("must be one of %s (or its number), not %r" % (", ".join(map(repr, choices)), value))
        return choices[value.strip()]
    if isinstance(value, str):
        return parse_text(item, value, unit_required=True)
    return to_raw(item, decimal.Decimal(value))


def to_raw(item, number):
    if not number.is_finite():
        raise ValueError("%s is not a finite number" % number)
    # the range first: arithmetic on a number like 1e2000000 overflows Decimal
    step = _step(item)
    if not item.lo * step <= number <= item.hi * step:
        raise ValueError("%s is outside %s" % (_short(item, number), item_range(item)))
    raw = number / step
    if raw != raw.to_integral_value() or int(raw) * step != number:  # (a tiny number underflows to 0)
        raise ValueError("%s is finer than the board keeps (steps of %s)" % (
            number, engineering(item, 1)))
    raw = int(raw)
    if not item.lo <= raw <= item.hi:
        raise ValueError("%s is outside %s" % (engineering(item, raw), item_range(item)))
    return raw


def _short(item, number):
    """A number in the item's unit, as engineering() shows one; in E notation if absurdly large."""
    if number.adjusted() < 12:  # no arithmetic on the number: it may be too large for any
        text = format(number, ".%df" % decimals(item))
    else:
        text = format(number, ".6E")
    return text + (" " + item.unit if item.unit else "")


def _toml_type(value):
    names = {bool: "true/false", str: "text", list: "a list", dict: "a table"}
    return next((n for t, n in names.items() if isinstance(value, t)), type(value).__name__)


# --- where keys are: tomllib gives no positions, so scan the text ------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z_\"'][A-Za-z0-9_.\-\"' ]*?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*')\s*=(.*)$")
_STRINGS = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'[^']*'")


class _Array:
    """An array value read line by line: its bracket depth and the line each element starts on."""

    def __init__(self, key, line, elements):
        self.key, self.line, self.elements = key, line, elements
        self.depth = 0
        self.waiting = False  # after its "[" or a ",": the next thing that is not blank is an element

    def scan(self, text, n):
        text = _STRINGS.sub("0", text).split("#", 1)[0]  # a string is one value, a comment none
        for ch in text:
            if self.depth == 1 and self.waiting and not ch.isspace() and ch not in ",]":
                self.elements.append(n)
                self.waiting = False
            if ch == "[":
                self.depth += 1
                self.waiting = self.depth == 1
            elif ch == "]":
                self.depth -= 1
            elif ch == "," and self.depth == 1:
                self.waiting = True
        return self.depth > 0


class Lines:
    """Line of each (table, key); a table is ('bus',), ('defaults',) or ('stage', index). For a
    key whose value is an array, also the line each of its elements starts on (an array may
    span lines: a bad point is reported where it is, not where the key is), and for each line
    inside a multi-line array the array's key and first line."""

    def __init__(self, text):
        self.at = {}
        self.elements = {}  # (table, key) -> [line of element 0, of element 1, ...]
        self.inside = {}    # line -> (key, line of the key) of a multi-line array open there
        seen = {}
        table = ()
        array = None  # the multi-line array being read
        for n, line in enumerate(text.splitlines(), 1):
            if array is not None:
                self.inside[n] = (array.key, array.line)
                if not array.scan(line, n):
                    array = None
                continue
            m = _HEADER.match(line)
            if m:
                name = m.group(2).strip().strip("\"'")
                if m.group(1) == "[[":
                    table = (name, seen.get(name, 0))
                    seen[name] = table[1] + 1
                else:
                    table = (name,)
                self.at.setdefault((table, None), n)
                self.at.setdefault(((), name), n)
                continue
            m = _KEY.match(line)
            if m:
                key = m.group(1).strip("\"'")
                self.at.setdefault((table, key), n)
                if m.group(2).lstrip().startswith("["):
                    array = _Array(key, n, self.elements.setdefault((table, key), []))
                    if not array.scan(m.group(2), n):
                        array = None
        self.unclosed = (array.key, array.line) if array is not None else None  # open at the end

    def of(self, table, key=None, element=None):
        elements = self.elements.get((table, key), [])
        if element is not None and element < len(elements):
            return elements[element]
        for where in ((table, key), (table, None), ((), table[0] if table else None)):
            if where in self.at:
                return self.at[where]
        return 1


# --- the check ----------------------------------------------------------------------------------

def load(path):
    """The checked Plant of the file at `path`; PlantFileError lists every problem."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise SxctlError("cannot read plant file %s: %s" % (path, e.strerror or e)) from None
    plant, problems = check_text(data.decode("utf-8", errors="replace"), str(path))
    if problems:
        raise PlantFileError(str(path), problems)
    return plant


def check_text(text, path="plant.toml"):
    """(Plant or None, [Problem]) for the text of a plant file: every problem, sorted by line."""
    try:
        doc = tomllib.loads(text, parse_float=decimal.Decimal)
    except tomllib.TOMLDecodeError as e:
        return None, [_syntax_problem(text, e)]
    checker = _Checker(Lines(text))
    plant = checker.check(doc, path)
    problems = sorted(_merged(checker.problems), key=lambda p: p.line)
    return (None if problems else plant), problems


def _merged(problems):
    """One problem per line, key and text: a value from [defaults] that breaks a rule in every
    stage is reported once, naming the stages."""
    out = {}
    for p in problems:
        same = out.get((p.line, p.key, p.text))
        if same is None:
            out[(p.line, p.key, p.text)] = p
        elif same.where.startswith("stage") and p.where.startswith("stage "):
            same.where = "stages %s, %s" % (same.where.split(" ", 1)[1], p.where.split(" ", 1)[1])
    return list(out.values())


def _syntax_problem(text, e):
    msg = str(e)
    m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
    line = int(m.group(1)) if m else len(text.splitlines()) or 1
    detail = msg[:m.start()].strip() if m else msg
    if m:
        detail += " (column %s)" % m.group(2)
    lines = Lines(text)
    if msg.startswith("Unclosed array") and lines.unclosed:
        # an array whose "]" is missing: TOML finds out at the next key or the end of the file;
        # the line to fix is the array's own
        key, opened = lines.unclosed
        return Problem(opened, "", key, "syntax: the array opened here is not closed (a ']' is missing); "
                       "the file was not read further")
    if line in lines.inside:  # a line of a multi-line array: the error belongs to its key
        return Problem(line, "", lines.inside[line][0], "syntax: %s; the file was not read further" % detail)
    text_lines = text.splitlines()
    key = _KEY.match(text_lines[line - 1]) if 0 < line <= len(text_lines) else None
    return Problem(line, "", key.group(1).strip("\"'") if key else "TOML",
                   "syntax: %s; the file was not read further" % detail)


class _Checker:
    def __init__(self, lines):
        self.lines = lines
        self.problems = []
        self.refused = set()  # items whose value was refused: no rule is checked on their default

    def problem(self, table, key, where, text, element=None):
        self.problems.append(Problem(self.lines.of(table, key, element), where, key, text))

    def check(self, doc, path):
        for key in doc:
            if key not in TOP_KEYS:
                self.problem((), key, "", "unknown table%s; a plant file has [bus], [defaults], [[stage]] "
                             "and, for `sxctl sim`, [sim] and for `sxctl serve`, [gateway]" % did_you_mean(key, TOP_KEYS))
        port, baud, key_file = self.bus(doc.get("bus", {}), path)
        defaults, default_keys = self.items(doc.get("defaults", {}), ("defaults",), "defaults", defaults=True)
        self.refused_defaults = set(self.refused)
        stages = self.stages(doc.get("stage"), defaults, default_keys)
        return Plant(path, port, baud, stages, key_file)

    def bus(self, bus, path):
        table = ("bus",)
        if not isinstance(bus, dict):
            self.problem((), "bus", "", "must be a table: [bus]")
            return None, None, None
        port, baud = bus.get("port"), bus.get("baud", 115200)
        for key in bus:
            if key not in BUS_KEYS:
                self.problem(table, key, "bus", "unknown key%s; [bus] has port, baud and key_file"
                             % did_you_mean(key, BUS_KEYS))
        if port is not None and (not isinstance(port, str) or not port):
            self.problem(table, "port", "bus", "must be the serial port's path as text, e.g. \"/dev/ttyUSB0\"")
            port = None
        if isinstance(baud, bool) or not isinstance(baud, int) or not 300 <= baud <= 4000000:
            self.problem(table, "baud", "bus", "must be a whole number of bits/s (300..4000000), e.g. 115200")
            baud = None
        return port, baud, self.key_file(bus.get("key_file"), path)

    def key_file(self, name, path):
        """The plant key file's path (relative to the plant file); only its presence is checked here."""
        if name is None:
            return None
        if not isinstance(name, str) or not name:
            self.problem(("bus",), "key_file", "bus", "must be the plant key file's path as text, e.g. \"plant.key\"")
            return None
        key_file = pathlib.Path(path).parent / pathlib.Path(name).expanduser()
        if not key_file.is_file():
            self.problem(("bus",), "key_file", "bus", "no such file: %s (make one with `sxctl key new --key-file %s`)"
                         % (key_file, key_file))
            return None
        return str(key_file)

    def items(self, table_doc, table, where, defaults=False):
        """{item name: raw} for the config items of one table, and the keys it set them from."""
        values, source = {}, {}
        if not isinstance(table_doc, dict):
            self.problem((), table[0], "", "must be a table")
            return values, source
        for key, value in table_doc.items():
            if key == TITRATION:
                for name, raw in self.titration(value, table, where).items():
                    values[name], source[name] = raw, TITRATION
                continue
            item = ITEMS.get(key)
            if item is None:
                if key in STAGE_KEYS and defaults:
                    self.problem(table, key, where, "belongs in each [[stage]], not in [defaults]")
                elif key not in STAGE_KEYS:
                    self.problem(table, key, where, "unknown key%s; keys are config item names "
                                 "(protocol/config_items.py)%s" % (
                                     did_you_mean(key, list(ITEMS) + [TITRATION] + list(STAGE_KEYS)),
                                     "" if defaults else ", address, name, role and titration"))
                continue
            if key.startswith("titration_") and TITRATION in table_doc:
                self.problem(table, key, where, "the curve is given by `titration` in this table already; "
                             "use one or the other")
                continue
            try:
                values[key], source[key] = parse_value(item, value), key
            except ValueError as e:
                self.problem(table, key, where, str(e))
                self.refused.add(key)
        return values, source

    def titration(self, points, table, where):
        """The titration_* items of a `titration = [[pH, base], ...]` curve; unused points are 0."""
        n_max = config_items.TITRATION_POINTS
        if not isinstance(points, list) or len(points) > n_max or not all(
                isinstance(p, list) and len(p) == 2 for p in points):
            self.problem(table, TITRATION, where, "must be a list of at most %d [pH, 0.1 mL base/L feed] pairs, "
                         "e.g. [[0.69, 0], [1.18, 400]]" % n_max)
            return {}
        values = {"titration_points": len(points)}
        for i in range(n_max):
            ph, base = points[i] if i < len(points) else (0, 0)
            for name, value in (("titration_ph_%d" % i, ph), ("titration_base_%d" % i, base)):
                try:
                    values[name] = parse_value(ITEMS[name], value)
                except ValueError as e:
                    self.problem(table, TITRATION, where, "point %d (%s): %s" % (i, name, e), element=i)
                    self.refused.add(name)
        return values

    def stages(self, docs, defaults, default_keys):
        if docs is None:
            self.problem((), "stage", "", "no [[stage]] tables: a plant file describes at least one stage")
            return []
        if not isinstance(docs, list) or not all(isinstance(d, dict) for d in docs):
            self.problem((), "stage", "", "write each stage as its own [[stage]] table")
            return []
        stages, by_address, by_name = [], {}, {}
        for index, doc in enumerate(docs):
            table = ("stage", index)
            name = doc.get("name")
            if not isinstance(name, str) or not name.strip():
                self.problem(table, "name", "stage %d" % (index + 1), "missing or empty: give each stage a "
                             "name as text, e.g. name = \"E%d\"" % (index + 1))
                name = "#%d" % (index + 1)
            where = "stage " + (name if name not in by_name else "#%d %s" % (index + 1, name))
            address = doc.get("address")
            if isinstance(address, bool) or not isinstance(address, int) or address not in ADDRESSES:
                self.problem(table, "address", where, "missing or not a bus address: a whole number %d..%d "
                             "(the Modbus unit ids, which `sxctl serve` serves the stages under)" % link_rules.BOARD_ADDRS)
                address = None
            role = doc.get("role")
            if role not in ROLES:
                self.problem(table, "role", where, "missing or unknown%s; roles: %s" % (
                    did_you_mean(role, ROLES) if isinstance(role, str) else "", ", ".join(ROLES)))
                role = None
            for key, seen, what in (("address", by_address, address), ("name", by_name, name)):
                if what is not None and what in seen:
                    other_name, other_index = seen[what]
                    self.problem(table, key, where, "%s %s already used by stage %s (line %d)" % (
                        key, what, other_name, self.lines.of(("stage", other_index), key)))
                elif what is not None:
                    seen[what] = (name, index)
            self.refused = set(self.refused_defaults)
            own, own_keys = self.items(doc, table, where)
            values = {i.name: i.default for i in config_items.ITEMS}
            values.update(defaults)
            values.update(own)
            keys = dict(default_keys, **own_keys)
            self.rules(values, keys, own_keys, table, where, role)
            stages.append(Stage(name, address, role, values, set(defaults) | set(own), self.lines.of(table)))
        return stages

    def rules(self, values, keys, own_keys, table, where, role):
        broken = list(config_items.rule_violations(values))
        if role == "extraction" and values["ph_high_trip"] > EXTRACTION_PH_HIGH_TRIP_MAX:
            broken.append(("ph_high_trip", "an extraction stage trips at %s at most (REE hydroxides, crud)"
                           % engineering(ITEMS["ph_high_trip"], EXTRACTION_PH_HIGH_TRIP_MAX)))
        for name, text in broken:
            named = [n for n in re.findall(r"[a-z][a-z0-9_]+", text) if n in ITEMS and n != name]
            if self.refused & {name, *named}:
                continue  # the value is refused already; its stand-in breaking a rule says nothing more
            point = re.match(r"(titration_\w+_)(\d+)$", name)
            if point and int(point.group(2)) > 0:  # a curve point is out of order with the one before
                named.insert(0, "%s%d" % (point.group(1), int(point.group(2)) - 1))
            shown = ", ".join("%s %s" % (n, engineering(ITEMS[n], values[n])) for n in [name] + named)
            key = keys.get(name, name)
            if name in own_keys:
                line_table, origin = table, ""
            elif name in keys:
                line_table, origin = ("defaults",), " (value from [defaults])"
            else:
                line_table, origin = table, " (item default; set %s in this stage)" % name
            point = re.match(r"titration_\w+_(\d+)$", name) if key == TITRATION else None
            self.problems.append(Problem(self.lines.of(line_table, key, point and int(point.group(1))), where,
                                         key, "%s%s: %s" % (text, origin, shown)))


def did_you_mean(key, choices):
    close = difflib.get_close_matches(str(key), list(choices), n=1)
    return " (did you mean %s?)" % close[0] if close else ""
