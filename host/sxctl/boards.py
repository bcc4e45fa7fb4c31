"""Board definitions (boards/*.py), read on the host without running them."""
import ast

from . import BOARDS_DIR


class BoardError(ValueError):
    pass


def _module_path(name):
    return BOARDS_DIR / (name.replace("-", "_") + ".py")


def names():
    return sorted(load_file(p)["name"] for p in BOARDS_DIR.glob("*.py"))


def load_file(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in tree.body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["BOARD"]:
            return ast.literal_eval(node.value)
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
