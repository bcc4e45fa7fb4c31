"""The host's layout: no import cycle among the modules of sxctl and sxproto (a matter of layering,
not of speed: a cycle held together by imports inside functions hides which module owns what)."""
import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGES = {"sxctl": ROOT / "host" / "sxctl", "sxproto": ROOT / "protocol"}


def _modules():
    mods = {}
    for pkg, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder)
            if rel.parts[0] == "data":  # MicroPython files the package carries, never imported here
                continue
            mods[".".join([pkg] + [p for p in rel.with_suffix("").parts if p != "__init__"])] = path
    return mods


def _imports(name, path, mods):
    """Every module of `mods` that `name` imports, at module level or inside a function."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else node.module
            found.add(base)
            found.update(base + "." + a.name for a in node.names)
    # a submodule's import of its own package (which Python runs first anyway) is no cycle
    return {m for m in found if m in mods and m != name and not name.startswith(m + ".")}


def _cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_among_host_modules():
    mods = _modules()
    assert "sxctl.buslink" in mods and "sxproto.messages" in mods
    graph = {name: _imports(name, path, mods) for name, path in mods.items()}
    assert _cycles(graph) == []
