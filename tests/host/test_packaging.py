"""The package list in pyproject.toml names every package of the host toolkit.

An editable install finds unlisted subpackages through the source tree, so only a regular
install (`pip install .`) would miss one; this test catches it first.
"""
import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_every_host_package_is_listed_in_pyproject():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs = setuptools["package-dir"]
    found = set()
    for top, folder in dirs.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join((top,) + rel.parts))
    assert {"sxctl", "sxctl.faults", "sxproto"} <= found
    assert sorted(found - set(setuptools["packages"])) == []
