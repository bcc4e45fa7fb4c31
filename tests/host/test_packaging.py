"""The package list in pyproject.toml names every package of the host toolkit.

An editable install finds unlisted subpackages through the source tree, so only a regular
install (`pip install .`) would miss one; this test catches it first. Folders of run-time
files (sxctl/data: the firmware and its subfolders, boards, examples) count as packages too:
setuptools takes the modules of listed packages only.
"""
import os
import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_every_folder_with_modules_is_listed_in_pyproject():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = set()
    for top, folder in setuptools["package-dir"].items():
        base = ROOT / folder
        for here, _, files in os.walk(base, followlinks=True):  # sxctl/data links into the tree
            if any(name.endswith((".py", ".toml")) for name in files):
                found.add(".".join((top,) + pathlib.Path(here).relative_to(base).parts))
    assert {"sxctl", "sxctl.faults", "sxproto", "sxctl.data.firmware.control", "sxctl.data.examples"} <= found
    assert sorted(found - set(setuptools["packages"])) == []
