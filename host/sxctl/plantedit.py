"""Setting a stage's items in a plant file's text, keeping everything else as the user wrote it.

A key the stage's own table names is replaced there; in a one-stage plant a key [defaults]
names is replaced there; otherwise the key is added to the end of the stage's table. The new
line keeps no old comment (it described how the old value was found) but carries `note`.
The result is checked by parsing it again: it must give exactly the values asked for.
"""
import difflib
import re
import tomllib

from .errors import SxctlError

_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"^(\s*)([A-Za-z_][A-Za-z0-9_]*)\s*=")


def _tables(lines):
    """[(name, first line, end line)]: every table's span, stages as 'stage' in file order."""
    spans, name, start = [], "", 0
    for n, line in enumerate(lines):
        m = _HEADER.match(line)
        if m:
            spans.append((name, start, n))
            name, start = m.group(1), n
    spans.append((name, start, len(lines)))
    return spans


def set_items(text, stage_name, values, note=""):
    """The text with `values` ({key: TOML value text}) set for the stage named `stage_name`."""
    lines = text.splitlines()
    spans = _tables(lines)
    stages = [s for s in spans if s[0] == "stage"]
    target = None
    for span in stages:
        body = "\n".join(lines[span[1] + 1:span[2]])
        if re.search(r"^\s*name\s*=\s*\"%s\"" % re.escape(stage_name), body, re.M):
            target = span
    if target is None:
        raise SxctlError("the plant file has no [[stage]] named %r" % stage_name)
    defaults = [s for s in spans if s[0] == "defaults"]
    suffix = ("   # " + note) if note else ""
    added = []
    for key, value in values.items():
        where = _find(lines, target, key)
        if where is None and len(stages) == 1 and defaults:
            where = _find(lines, defaults[0], key)
        new = "%s = %s%s" % (key, value, suffix)
        if where is not None:
            indent = _KEY.match(lines[where]).group(1)
            lines[where] = indent + new
        else:
            added.append(new)
    if added:
        spans = _tables(lines)
        end = [s for s in spans if s[0] == "stage"][stages.index(target)][2]
        while end > 0 and not lines[end - 1].strip():
            end -= 1
        lines[end:end] = added
    out = "\n".join(lines) + "\n"
    try:
        tomllib.loads(out)
    except tomllib.TOMLDecodeError as e:
        raise SxctlError("writing the settings would break the plant file (%s); set them by hand" % e) from None
    return out


def _find(lines, span, key):
    for n in range(span[1] + 1, span[2]):
        m = _KEY.match(lines[n])
        if m and m.group(2) == key:
            if lines[n].count("[") != lines[n].count("]"):
                raise SxctlError("%s spans several lines in the plant file: put it on one line, or set it by "
                                 "hand" % key)
            return n
    return None


def diff(old, new, path):
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), path, path + " (tuned)"))
