"""Build-time folding of `const()` names across firmware modules, so constants cost no RAM.

MicroPython folds a `const()` only inside the module that declares it, and only when its name
starts with an underscore; a public `NAME = const(1)` still becomes a module global, a qstr and,
in every other module, a dictionary lookup at run time. So the image builder, for every
firmware source going onto a board:
  - replaces each use of another module's constant (`proto.MSG_HELLO`, `A.AL_LINK`, a name
    from `from sensors.flow import FLOW_OK`) with its value, and
  - renames the module's own constants to `_NAME`, which mpy-cross folds away entirely.
The generated protocol module's other constants (format strings, byte tables, numbers above
the 32-bit small-int range) are folded the same way and dropped from its board copy; a module
left with no use of an `import X` it folded loses that import too, so a running board does
not even load the protocol module.

It works on the syntax tree, never on the text: only the names the tree says are uses are
replaced (a string or comment that spells `proto.MODE_AUTO` is left alone, as is a local
variable or parameter that shadows an imported name), and every edit keeps the line count, so
a traceback's line numbers are the repository's. Sources in the repository stay readable; only
what goes onto the board is folded. Code that looks constants up by name at run time
(getattr) must not be used on folded modules.
"""
import ast
import re
import threading

from . import FIRMWARE_DIR

# Plain constants (str, bytes, int), folded only in these modules (their board copy drops them).
STRINGS_FOLDED = ("proto",)
_PUBLIC = re.compile(r"[A-Z][A-Z0-9_]*\Z")
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef,
           ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


class FoldError(ValueError):
    """A source the folder cannot make correct for a board (the message says which name)."""


def module_name(rel):
    """'sensors/ph.py' -> 'sensors.ph'."""
    return rel[:-3].replace("/", ".")


# CPython 3.11's ast.parse is not safe from two threads at once ("SystemError: AST constructor
# recursion depth mismatch"), and flashes of several boards run in threads: one parse at a time.
_PARSE_LOCK = threading.Lock()


def _parse(source):
    with _PARSE_LOCK:
        return ast.parse(source)


def _int_const(value):
    # const(5), const(-5), const(0x1F): the literal integers MicroPython's const() takes here
    if isinstance(value, ast.Constant) and type(value.value) is int:
        return value.value
    if (isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.USub)
            and isinstance(value.operand, ast.Constant) and type(value.operand.value) is int):
        return -value.operand.value
    return None


def declarations(source, strings=False):
    """{NAME: replacement text} of one module's public `NAME = const(<int>)` declarations (and,
    with `strings`, its plain str/bytes/int constants, as written)."""
    found = {}
    for node in _parse(source).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and _PUBLIC.match(node.targets[0].id)):
            continue
        name, value = node.targets[0].id, node.value
        if (isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "const"
                and len(value.args) == 1 and not value.keywords and _int_const(value.args[0]) is not None):
            found[name] = str(_int_const(value.args[0]))
        elif strings and isinstance(value, ast.Constant) and type(value.value) in (str, bytes, int):
            found[name] = ast.get_source_segment(source, value)
    return found


def tables(root=FIRMWARE_DIR):
    """{module: {NAME: replacement text}} for every firmware module's integer `const()`
    declarations (and string constants of STRINGS_FOLDED modules)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        module = module_name(path.relative_to(root).as_posix())
        consts = declarations(path.read_text(), module in STRINGS_FOLDED)
        if consts:
            found[module] = consts
    return found


def _targets(node, out):
    # the names an assignment target binds
    if isinstance(node, ast.Name):
        out.add(node.id)
    elif isinstance(node, (ast.Tuple, ast.List)):
        for elt in node.elts:
            _targets(elt, out)
    elif isinstance(node, ast.Starred):
        _targets(node.value, out)


def _bound(scope):
    """Names bound in one scope (a module, function, class body or comprehension), not counting
    nested scopes (a nested def or class binds its own name here) nor global/nonlocal names."""
    bound, declared = set(), set()
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        a = scope.args
        for arg in a.posonlyargs + a.args + a.kwonlyargs + [a.vararg, a.kwarg]:
            if arg is not None:
                bound.add(arg.arg)
        body = scope.body if isinstance(scope.body, list) else [scope.body]
    elif isinstance(scope, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        for gen in scope.generators:
            _targets(gen.target, bound)
        return bound
    else:
        body = scope.body
    todo = list(body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
            continue
        if isinstance(node, _SCOPES):
            continue
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            declared.update(node.names)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            continue  # what imports bind is _imports' (a local `import proto` is no shadow)
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchAs) and node.name:
            bound.add(node.name)
        todo.extend(ast.iter_child_nodes(node))
    return bound - declared


def _imports(tree, tables):
    """(aliases {local name: table}, names {local name: value}, import nodes folded from) from the
    source's imports, at module level and inside functions alike."""
    aliases, names, nodes, other = {}, {}, [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in tables and (a.asname or "." not in a.name):
                    aliases[a.asname or a.name] = tables[a.name]
                else:
                    other.add((a.asname or a.name).split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            for a in node.names:
                sub = "%s.%s" % (node.module, a.name)
                if node.level == 0 and sub in tables:
                    aliases[a.asname or a.name] = tables[sub]
                elif node.level == 0 and node.module in tables and a.name in tables[node.module]:
                    names[a.asname or a.name] = tables[node.module][a.name]
                    nodes.append(node)
                else:
                    other.add(a.asname or a.name)
    clash = other & (set(aliases) | set(names))
    if clash:
        raise FoldError("%s: imported both as a constant (or constant module) and as something else"
                        % ", ".join(sorted(clash)))
    return aliases, names, nodes


class _Uses(ast.NodeVisitor):
    """The edits that fold one source: (line, col, end line, end col, text), UTF-8 byte columns."""

    def __init__(self, aliases, names, own, plain):
        self.aliases = aliases
        self.names = names
        self.own = own  # this module's const() names: renamed to _NAME
        self.plain = plain  # this module's dropped plain constants: their value inlined
        self.shadow = []  # the enclosing function scopes' locals (a class body's names do not reach its methods)
        self.edits = []

    def _shadowed(self, name):
        return any(name in s for s in self.shadow)

    def _edit(self, node, text):
        if node.lineno == node.end_lineno:  # a use split over lines stays a run-time lookup
            self.edits.append((node.lineno, node.col_offset, node.end_lineno, node.end_col_offset, text))

    def visit_FunctionDef(self, node):
        for d in node.decorator_list + node.args.defaults + [d for d in node.args.kw_defaults if d]:
            self.visit(d)  # evaluated in the enclosing scope
        outer = self.shadow
        self.shadow = outer + [_bound(node)]
        for stmt in node.body:
            self.visit(stmt)
        self.shadow = outer

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        for d in node.args.defaults + [d for d in node.args.kw_defaults if d]:
            self.visit(d)
        outer = self.shadow
        self.shadow = outer + [_bound(node)]
        self.visit(node.body)
        self.shadow = outer

    def visit_ClassDef(self, node):
        for d in node.decorator_list + node.bases + [k.value for k in node.keywords]:
            self.visit(d)
        outer = self.shadow
        bound = _bound(node)
        self.shadow = outer + [bound]
        for stmt in node.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.shadow = outer  # a method does not see the class body's names
                self.visit(stmt)
                self.shadow = outer + [bound]
            else:
                self.visit(stmt)
        self.shadow = outer

    def _comprehension(self, node):
        outer = self.shadow
        self.shadow = outer + [_bound(node)]
        self.generic_visit(node)
        self.shadow = outer

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension

    def visit_Attribute(self, node):
        base = node.value
        if (isinstance(base, ast.Name) and base.id in self.aliases and isinstance(node.ctx, ast.Load)
                and node.attr in self.aliases[base.id] and not self._shadowed(base.id)):
            self._edit(node, self.aliases[base.id][node.attr])
        else:
            self.generic_visit(node)

    def visit_Name(self, node):
        if self._shadowed(node.id):
            return
        if node.id in self.names and isinstance(node.ctx, ast.Load):
            self._edit(node, self.names[node.id])
        elif node.id in self.own:
            self._edit(node, "_" + node.id)
        elif node.id in self.plain and isinstance(node.ctx, ast.Load):
            self._edit(node, self.plain[node.id])  # a dropped plain constant used in its own module


def _apply(source, edits):
    """`source` (bytes) with each edit's span replaced; an edit spanning lines keeps their count."""
    lines = source.split(b"\n")
    for line, col, end_line, end_col, text in sorted(edits, reverse=True):
        head = lines[line - 1][:col]
        tail = lines[end_line - 1][end_col:]
        new = (head + text.encode() + tail).split(b"\n")
        new += [b""] * (end_line - line + 1 - len(new))
        lines[line - 1:end_line] = new
    return b"\n".join(lines)


def _statement_edit(node, text, parent_body):
    # a statement replaced (or removed: "pass" where it was a block's only statement)
    if not text and len(parent_body) == 1 and not isinstance(parent_body, _ModuleBody):
        text = "pass"
    return (node.lineno, node.col_offset, node.end_lineno, node.end_col_offset, text)


class _ModuleBody(list):
    pass


def _parents(tree):
    """{statement: the body list holding it}."""
    found = {}
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody", "handlers"):
            body = getattr(node, field, None)
            if isinstance(body, list):
                body = _ModuleBody(body) if isinstance(node, ast.Module) else body
                for stmt in body:
                    found[id(stmt)] = body
    return found


def _module_stores(tree):
    """{name: how many module-level statements bind it}, imports aside."""
    stores = {}

    def count(name):
        stores[name] = stores.get(name, 0) + 1
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            count(node.name)
        elif not isinstance(node, (ast.Import, ast.ImportFrom)):
            for name in {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)
                         and not _inside_function(node, n)}:
                count(name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            for name in node.names:
                count(name)
    return stores


def _inside_function(top, target):
    # True when `target` sits in a nested scope of the module-level statement `top`
    todo = [(top, False)]
    while todo:
        node, nested = todo.pop()
        if node is target:
            return nested
        inner = nested or (node is not top and isinstance(node, _SCOPES))
        todo.extend((child, inner) for child in ast.iter_child_nodes(node))
    return False


def _check_rebinds(tree, names, own):
    # A module-level binding of a folded name, besides its import or its one declaration, would
    # make the folded value wrong: refused, with the name.
    stores = _module_stores(tree)
    for name in names:
        if stores.get(name):
            raise FoldError("%s: imported as a constant, and assigned in the module" % name)
    for name in own:
        if stores.get(name, 0) > 1:
            raise FoldError("%s: a constant assigned more than once in its module" % name)


def fold(source, tables, own=None):
    """A firmware source ready for a board (str in, str out). `own` is its own module's constant
    table. Raises FoldError where folding would change what the code means."""
    own = own or {}
    data = source.encode()
    tree = _parse(data)
    consts = set(declarations(source)) & set(own)
    plain = {name: text for name, text in own.items() if name not in consts}
    aliases, names, from_nodes = _imports(tree, tables)
    _check_rebinds(tree, names, consts)
    uses = _Uses(aliases, names, consts, plain)
    uses.visit(tree)
    edits = uses.edits
    parents = _parents(tree)
    for node in {id(n): n for n in from_nodes}.values():  # drop the folded names from their import
        kept = [a for a in node.names if (a.asname or a.name) not in names]
        text = ("from %s import %s" % (node.module, ", ".join(
            a.name + (" as " + a.asname if a.asname else "") for a in kept))) if kept else ""
        edits.append(_statement_edit(node, text, parents[id(node)]))
    for node in tree.body:  # a dropped plain constant's declaration goes (its line stays, empty)
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id in plain):
            edits = [e for e in edits if not (node.lineno <= e[0] <= node.end_lineno)]
            edits.append(_statement_edit(node, "", parents[id(node)]))
    data = _apply(data, edits)
    return _drop_unused_imports(data, tables).decode()


def _drop_unused_imports(data, tables):
    """Blank `import X` / `import X as Y` lines of constant modules the folded source no longer uses."""
    tree = _parse(data)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    edits = []
    for node in tree.body:
        if isinstance(node, ast.Import) and len(node.names) == 1:
            a = node.names[0]
            if a.name in tables and (a.asname or a.name) not in used:
                edits.append((node.lineno, node.col_offset, node.end_lineno, node.end_col_offset, ""))
    return _apply(data, edits)
