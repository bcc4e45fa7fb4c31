"""Firmware test runner, run ON MicroPython: runs the test_* functions of one module.

The host (tests/firmware/conftest.py) names the module and functions in SXTEST_MODULE and
SXTEST_NAMES; each result is one marked line, a failure's traceback printed just before it.
"""
import io
import os
import sys

_MARK = "@@SXTEST@@"


def _run():
    module = __import__(os.getenv("SXTEST_MODULE"))
    for name in os.getenv("SXTEST_NAMES").split(","):
        print(_MARK, "START", name)
        try:
            getattr(module, name)()
        except Exception as e:  # report every failure, keep running the rest
            buf = io.StringIO()
            sys.print_exception(e, buf)
            print(buf.getvalue())
            print(_MARK, "FAIL", name)
        else:
            print(_MARK, "PASS", name)
    print(_MARK, "DONE")


_run()
