"""The constant folder (sxctl/constfold.py): it replaces uses the syntax tree names, nothing else,
and keeps every line where it was."""
import pytest

from sxctl import FIRMWARE_DIR, constfold

TABLES = {
    "proto": {"MODE_AUTO": "2", "MODE_OFF": "0", "HEADER_FMT": "'<BBHB'"},
    "sensors.ph": {"BUF_7": "1", "BUF_4": "2"},
}


def fold(source, own=None):
    return constfold.fold(source, TABLES, own)


def test_an_attribute_of_a_constant_module_is_folded():
    assert fold("import proto\nx = proto.MODE_AUTO + 1\n") == "\nx = 2 + 1\n"


def test_a_string_that_spells_a_constant_is_left_alone():
    src = "import proto\nerr = 'expected proto.MODE_AUTO here'\nm = proto.MODE_AUTO\n"
    assert fold(src) == "\nerr = 'expected proto.MODE_AUTO here'\nm = 2\n"


def test_comments_and_docstrings_are_left_alone():
    src = '"""Uses proto.MODE_AUTO and BUF_7."""\nfrom sensors.ph import BUF_7  # BUF_7 is 1\nb = BUF_7\n'
    assert fold(src) == '"""Uses proto.MODE_AUTO and BUF_7."""\n  # BUF_7 is 1\nb = 1\n'


def test_a_parenthesised_import_over_lines_is_folded_and_keeps_the_line_count():
    src = "from sensors.ph import (\n    BUF_7,\n    Probe,\n)\nx = BUF_7\ny = 3\n"
    out = fold(src)
    assert out == "from sensors.ph import Probe\n\n\n\nx = 1\ny = 3\n"
    compile(out, "folded", "exec")


def test_an_import_left_with_nothing_goes_and_a_block_keeps_a_statement():
    assert fold("from sensors.ph import (\n BUF_7,\n)\n") == "\n\n\n"
    out = fold("def f():\n    from sensors.ph import BUF_4\n\n\nx = 1\n")
    assert out == "def f():\n    pass\n\n\nx = 1\n"


def test_a_local_name_shadows_an_imported_constant():
    src = ("from sensors.ph import BUF_7\n"
           "def f(BUF_7):\n    return BUF_7\n"
           "def g():\n    BUF_7 = 5\n    return BUF_7\n"
           "def h():\n    return BUF_7\n"
           "k = [BUF_7 for BUF_7 in range(3)]\n"
           "j = lambda BUF_7: BUF_7\n")
    out = fold(src).split("\n")
    assert out[2] == "    return BUF_7" and out[5] == "    return BUF_7"
    assert out[7] == "    return 1"
    assert out[8] == "k = [BUF_7 for BUF_7 in range(3)]" and out[9] == "j = lambda BUF_7: BUF_7"


def test_a_local_name_shadows_a_constant_module():
    src = "import proto\ndef f(proto):\n    return proto.MODE_AUTO\ndef g():\n    return proto.MODE_AUTO\n"
    assert fold(src).split("\n")[2:5] == ["    return proto.MODE_AUTO", "def g():", "    return 2"]


def test_a_class_body_name_does_not_shadow_inside_its_methods():
    src = "import proto\nclass C:\n    proto = None\n    def m(self):\n        return proto.MODE_AUTO\n"
    assert fold(src).split("\n")[4] == "        return 2"


def test_an_import_inside_a_function_folds_there():
    src = "def f():\n    import proto\n    return proto.MODE_OFF\n"
    assert fold(src) == "def f():\n    import proto\n    return 0\n"


def test_an_assignment_to_the_attribute_is_not_folded():
    assert fold("import proto\nproto.MODE_AUTO = 7\n") == "import proto\nproto.MODE_AUTO = 7\n"


def test_a_folded_name_rebound_at_module_level_is_refused():
    with pytest.raises(constfold.FoldError, match="BUF_7"):
        fold("from sensors.ph import BUF_7\nBUF_7 = 3\n")
    with pytest.raises(constfold.FoldError, match="proto"):
        fold("import proto\nfrom json import proto\n")


def test_own_constants_are_renamed_private_and_plain_ones_dropped():
    src = ('from micropython import const\nMODE_AUTO = const(2)\nHEADER_FMT = \'<BBHB\'\n'
           'def f(x):\n    return x == MODE_AUTO, HEADER_FMT  # MODE_AUTO\n'
           'def g(MODE_AUTO):\n    return MODE_AUTO\n')
    out = fold(src, TABLES["proto"]).split("\n")
    assert out[1] == "_MODE_AUTO = const(2)" and out[2] == ""
    assert out[4] == "    return x == _MODE_AUTO, '<BBHB'  # MODE_AUTO"
    assert out[6] == "    return MODE_AUTO"  # a parameter of that name is not the constant


def test_declarations_read_the_tree():
    src = ("from micropython import const\nA = const(5)\nB = const(-0x10)\n_C = const(3)\n"
           "D = 'text'\nE = (1, 2)\nclass K:\n    F = const(9)\n")
    assert constfold.declarations(src) == {"A": "5", "B": "-16"}
    assert constfold.declarations(src, strings=True) == {"A": "5", "B": "-16", "D": "'text'"}


def test_every_firmware_source_folds_to_the_same_line_count():
    tables = constfold.tables()
    assert tables["proto"]["MSG_HELLO"].isdigit() and tables["version"]["MAJOR"].isdigit()
    for path in FIRMWARE_DIR.rglob("*.py"):
        source = path.read_text()
        module = constfold.module_name(path.relative_to(FIRMWARE_DIR).as_posix())
        folded = constfold.fold(source, tables, tables.get(module))
        assert folded.count("\n") == source.count("\n"), path
        compile(folded, str(path), "exec")
