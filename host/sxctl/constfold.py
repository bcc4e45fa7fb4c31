"""Build-time folding of `const()` names across firmware modules, so constants cost no RAM.

MicroPython folds a `const()` only inside the module that declares it, and only when its name
starts with an underscore; a public `NAME = const(1)` still becomes a module global, a qstr and,
in every other module, a dictionary lookup at run time. On a 64 KB heap that adds up to many
kilobytes. So the image builder, for every firmware source going onto a board:
  - replaces each use of another module's constant (`proto.MSG_HELLO`, `A.AL_LINK`, a name
    from `from sensors.flow import FLOW_OK`) with its value, and
  - renames the module's own constants to `_NAME`, which mpy-cross folds away entirely.
The generated protocol module's other constants (format strings, byte tables, numbers above
the 32-bit small-int range) are folded the same way and dropped from its board copy; a module
left with no use of an `import X` it folded loses that import too, so a running board does
not even load the protocol module. Sources in the repository stay readable; only what goes
onto the board is folded. Code that looks constants up by name at run time (getattr) must not
be used on folded modules.
"""
import ast
import re

from . import FIRMWARE_DIR

_CONST = re.compile(r"^([A-Z][A-Z0-9_]*) = const\((-?(?:0x[0-9a-fA-F]+|\d+))\)", re.M)
# Plain constants (str, bytes, int), folded only in these modules (their board copy drops them).
STRINGS_FOLDED = ("proto",)
_STRING = re.compile(r"^([A-Z][A-Z0-9_]*) = ('[^'\\\n]*'|b'(?:[^'\\\n]|\\.)*'|0x[0-9a-fA-F]+|\d+)[ \t]*(?:#.*)?\n",
                     re.M)


def module_name(rel):
    """'sensors/ph.py' -> 'sensors.ph'."""
    return rel[:-3].replace("/", ".")


def tables(root=FIRMWARE_DIR):
    """{module: {NAME: replacement text}} for every firmware module's integer `const()`
    declarations (and string constants of STRINGS_FOLDED modules)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        module = module_name(path.relative_to(root).as_posix())
        text = path.read_text()
        consts = {name: str(int(value, 0)) for name, value in _CONST.findall(text)}
        if module in STRINGS_FOLDED:
            consts.update(_STRING.findall(text))
        if consts:
            found[module] = consts
    return found


def _drop_unused_imports(source, tables):
    """Remove `import X` / `import X as Y` lines of constant modules the folded source no longer uses."""
    tree = ast.parse(source)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    lines = source.split("\n")
    for node in tree.body:
        if isinstance(node, ast.Import) and len(node.names) == 1:
            a = node.names[0]
            if a.name in tables and (a.asname or a.name) not in used:
                lines[node.lineno - 1] = ""  # blanked, not removed: later line numbers hold
    return "\n".join(lines)


def _imports(tree, tables):
    """(aliases {local name: table}, names {local name: value}) from the source's imports."""
    aliases = {}
    names = {}
    for node in ast.walk(tree):  # imports inside functions count too
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in tables:
                    aliases[a.asname or a.name] = tables[a.name]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for a in node.names:
                sub = node.module + "." + a.name
                if sub in tables:
                    aliases[a.asname or a.name] = tables[sub]
                elif node.module in tables and a.name in tables[node.module]:
                    names[a.asname or a.name] = tables[node.module][a.name]
    return aliases, names


def _drop_imported_names(source, names):
    """Remove folded names from `from X import ...` lines (the whole line if nothing is left)."""
    def fix(m):
        kept = [n for n in (p.strip() for p in m.group(2).split(",")) if n.split(" as ")[-1].strip() not in names]
        return "%s%s" % (m.group(1), ", ".join(kept)) if kept else ""
    return re.sub(r"^(from [\w.]+ import )([^\n(#]+?)[ \t]*$", fix, source, flags=re.M)


def fold(source, tables, own=None):
    """A firmware source ready for a board. `own` is its own module's constant table."""
    tree = ast.parse(source)
    aliases, names = _imports(tree, tables)
    for alias, table in aliases.items():
        source = re.sub(r"(?<![\w.])%s\.([A-Z][A-Z0-9_]*)\b" % re.escape(alias),
                        lambda m, t=table: t[m.group(1)] if m.group(1) in t else m.group(0), source)
    if names:
        source = _drop_imported_names(source, names)
        pattern = r"(?<![\w.])(%s)\b" % "|".join(map(re.escape, names))
        source = re.sub(pattern, lambda m: names[m.group(1)], source)
    if own:
        source = _STRING.sub(lambda m: "" if m.group(1) in own else m.group(0), source)
        for name, text in own.items():
            if not text.startswith(("'", "b'")):
                source = re.sub(r"(?<![\w.])%s\b" % name, "_" + name, source)
    return _drop_unused_imports(source, tables)
