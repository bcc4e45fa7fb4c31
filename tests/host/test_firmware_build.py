"""The firmware image as built for a board: tracebacks with real line numbers in debug builds
(every firmware test runs on one), and the same bytes for the same sources."""
import importlib.util
import pathlib
import re

from sxctl import FIRMWARE_DIR, image

FW_TESTS = pathlib.Path(__file__).resolve().parents[1] / "firmware"


def _firmware_conftest():
    # tests/firmware/conftest.py, which runs a firmware test module on the Unix port
    spec = importlib.util.spec_from_file_location("firmware_conftest", FW_TESTS / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _line_of(path, text):
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_a_failing_firmware_test_shows_the_real_line_numbers(tmp_path):
    # A test that fails in its own assert, and one that fails inside a firmware module: both
    # tracebacks name the line where it happened, in the test module and in sensors/ph.py.
    module = tmp_path / "test_fails_on_purpose.py"
    module.write_text('"""Fails on purpose."""\nimport proto\nfrom sensors import ph\n\n\n'
                      'def test_assert():\n    mode = proto.MODE_AUTO\n    assert mode == proto.MODE_OFF, "on purpose"\n\n\n'
                      'def test_inside_the_firmware():\n    ph.Probe(rail_uv=0)\n')
    results = _firmware_conftest().run_module(module, ["test_assert", "test_inside_the_firmware"], "100K")
    passed, text = results["test_assert"]
    assert not passed and 'File "test_fails_on_purpose.py", line 8, in test_assert' in text, text
    assert "AssertionError: on purpose" in text
    passed, text = results["test_inside_the_firmware"]
    line = _line_of(FIRMWARE_DIR / "sensors" / "ph.py", 'raise ValueError("rail_uv")')
    assert line > 1 and not passed
    assert re.search(r'File "sensors\.ph", line %d, in __init__' % line, text), text
    assert 'File "test_fails_on_purpose.py", line 12, in test_inside_the_firmware' in text, text


def test_the_same_sources_build_the_same_image(tmp_path, monkeypatch):
    # Two builds from empty compile caches: byte for byte the same image, for release and debug.
    builds = []
    for n in range(2):
        monkeypatch.setenv("SXCTL_CACHE_DIR", str(tmp_path / ("cache%d" % n)))
        builds.append((image.build("unix-sim"), image.build("unix-sim", debug=True)))
    assert builds[0] == builds[1]
    release, debug = builds[0]
    assert release.keys() == debug.keys()
    # the debug build keeps line-number tables: a module with code differs from its release build
    assert release["sensors/ph.mpy"] != debug["sensors/ph.mpy"] and release["link.mpy"] != debug["link.mpy"]


def test_sxctl_build_debug_makes_every_build_a_debug_one(monkeypatch):
    monkeypatch.setenv("SXCTL_BUILD", "debug")
    assert image.build("unix-sim") == image.build("unix-sim", debug=True)
    monkeypatch.setenv("SXCTL_BUILD", "release")
    assert image.build("unix-sim") == image.build("unix-sim", debug=False)
