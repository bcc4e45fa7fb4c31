"""Board definitions (boards/*.py), read on the host without running them, and their schema.

A board file is data only: `BOARD = {...}` with the keys of SCHEMA below. The firmware reads
it as `board.py` (its HAL, the buffers memory.py makes); the host reads it to build an image
and to check that a port holds the board it is said to be.
"""
import ast

from . import BOARDS_DIR


class BoardError(ValueError):
    pass


REQUIRED = object()  # a key every board of the HAL kinds listed must have


class Key:
    """One key a board definition may hold: its Python type, unit, default (REQUIRED: none) and
    the HAL kinds ("mcu", "unix") it applies to; `keys` is the schema of a nested dict."""

    def __init__(self, kind, meaning, unit="", default=REQUIRED, hals=("mcu", "unix"), keys=None):
        self.kind = kind
        self.meaning = meaning
        self.unit = unit
        self.default = default
        self.hals = hals
        self.keys = keys


_PIN = (int, str)  # a pin: its number, or its name on the board (pyboard "X1")
SCHEMA = {
    "name": Key(str, "the board's name: sxctl flash --board NAME, INFO.board"),
    "mcu": Key(str, "the chip, as a person names it"),
    "platform": Key(str, "sys.platform on the board: flash checks the port holds this board"),
    "machine": Key(str, "a word of sys.implementation._machine on the board: flash checks it too"),
    "hal": Key(str, "the HAL backend: 'mcu' (hal/mcu.py, real pins) or 'unix' (hal/unix_sim.py)"),
    "mpy_arch": Key((str, type(None)), "mpy-cross -march for native code; None: bytecode only"),
    "heap_kb": Key(int, "the free heap MicroPython has on this board at start", "KiB"),
    "wdt_ms": Key(int, "the watchdog timeout (on unix-sim its ROM's machine.WDT)", "ms"),
    "backlog_records": Key(int, "telemetry records the board keeps for the logger (memory.py)", "records", 120),
    "bus": Key(dict, "the RS-485 bus", keys={
        "baud": Key(int, "line speed (protocol/link_rules.py BAUD)", "bit/s"),
        "uart": Key(int, "UART number", hals=("mcu",)),
        "tx": Key(_PIN, "UART transmit pin; absent: the UART's fixed pins", default=None, hals=("mcu",)),
        "rx": Key(_PIN, "UART receive pin; absent: the UART's fixed pins", default=None, hals=("mcu",)),
        "de": Key(_PIN, "RS-485 driver-enable pin, high only while sending; absent: none", default=None,
                  hals=("mcu",)),
    }),
    "adc": Key(dict, "the analogue inputs", hals=("mcu",), keys={
        "bits": Key(int, "ADC resolution", "bit"),
        "vref_mv": Key(int, "ADC reference voltage", "mV"),
        "ph": Key(_PIN, "pH electrode input (front end shifts it to mid-rail)"),
        "orp": Key(_PIN, "ORP electrode input"),
        "temperature": Key(_PIN, "Pt1000 divider input"),
        "electrode_offset_mv": Key(int, "the electrode front end's mid-rail shift: E = (V - offset) / gain; "
                                        "default vref_mv / 2", "mV", None),
        "electrode_gain": Key(int, "the electrode front end's gain", "", 1),
        "rtd_series_ohm": Key(int, "the resistor from Vref in series with the Pt1000", "Ω", 1000),
    }),
    "pulse_in": Key(dict, "flow meter pulse inputs", hals=("mcu",), keys={
        "flow_aq": Key(_PIN, "aqueous feed flow meter"), "flow_org": Key(_PIN, "organic feed flow meter")}),
    "pwm_out": Key(dict, "pump outputs, PWM duty 0..65535 of full scale", hals=("mcu",), keys={
        "base_pump": Key(_PIN, "caustic dosing pump"), "acid_pump": Key(_PIN, "reagent (ORP) pump"),
        "aq_pump": Key(_PIN, "aqueous feed pump"), "org_pump": Key(_PIN, "organic feed pump")}),
    "digital_out": Key(dict, "digital outputs", hals=("mcu",), keys={
        "valve": Key(_PIN, "the stage's valve"),
        "outputs_enable": Key(_PIN, "gates every output stage; pulled low at reset by hardware")}),
}


def check(board, where="board", schema=SCHEMA, hal=None):
    """Refuse a board definition with a key it must not hold, one it lacks or one of the wrong
    type: BoardError names the key."""
    hal = hal or board.get("hal")
    if hal not in ("mcu", "unix"):
        raise BoardError("%s: hal must be 'mcu' or 'unix', not %r" % (where, hal))
    for key in board:
        if key not in schema or hal not in schema[key].hals:
            raise BoardError("%s: unknown key %r for a %s board (the keys are in sxctl/boards.py SCHEMA)"
                             % (where, key, hal))
    for key, spec in schema.items():
        if hal not in spec.hals:
            continue
        if key not in board:
            if spec.default is REQUIRED:
                raise BoardError("%s: %r is missing (%s)" % (where, key, spec.meaning))
            continue
        value = board[key]
        if not isinstance(value, spec.kind) or isinstance(value, bool):
            raise BoardError("%s: %r must be %s, not %r" % (where, key, _kind_name(spec.kind), value))
        if spec.keys is not None:
            check(value, "%s.%s" % (where, key), spec.keys, hal)


def _kind_name(kind):
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join("None" if k is type(None) else k.__name__ for k in kinds)


def _module_path(name):
    return BOARDS_DIR / (name.replace("-", "_") + ".py")


def names():
    return sorted(load_file(p)["name"] for p in BOARDS_DIR.glob("*.py"))


def load_file(path):
    """The BOARD dict of one board file, checked against SCHEMA."""
    tree = ast.parse(path.read_text(), str(path))
    for node in tree.body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["BOARD"]:
            board = ast.literal_eval(node.value)
            check(board, path.name)
            return board
    raise BoardError("%s defines no BOARD = {...}" % path)


def load(name):
    path = _module_path(name)
    if not path.exists():
        raise BoardError("unknown board %r; known boards: %s" % (name, ", ".join(names())))
    return load_file(path)


def source_path(name):
    load(name)
    return _module_path(name)


def smallest_heap_kb():
    return min(load_file(p)["heap_kb"] for p in BOARDS_DIR.glob("*.py"))
