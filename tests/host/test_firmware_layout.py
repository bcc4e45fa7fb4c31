"""The firmware's layout: no import cycle among its modules (imports inside functions count:
a cycle held together by a late import hides which module owns what)."""
import ast

from sxctl import FIRMWARE_DIR
from test_layout import _cycles


def _module(path):
    rel = path.relative_to(FIRMWARE_DIR).with_suffix("").parts
    return ".".join(p for p in rel if p != "__init__")


def firmware_imports():
    """{module: the firmware modules it imports, anywhere in its source}."""
    paths = {_module(p): p for p in FIRMWARE_DIR.rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
                found.update(node.module + "." + a.name for a in node.names)
        # a submodule's import of its own package (which runs first anyway) is no cycle
        graph[name] = {m for m in found if m in paths and m != name and not name.startswith(m + ".")}
    return graph


def test_no_import_cycle_among_firmware_modules():
    graph = firmware_imports()
    assert {"app", "service", "controller", "sensors.ph", "control.pid"} <= graph.keys()
    assert "controller" in graph["app"]  # the graph sees imports
    assert _cycles(graph) == []
