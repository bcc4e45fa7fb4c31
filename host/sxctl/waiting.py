"""Waiting on a condition with a deadline, never on a fixed sleep: for the campaigns, benches
and tests that drive virtual boards, servers and browsers."""
import time


def wait_for(condition, timeout=20.0, what="condition", interval=0.05):
    """condition()'s first true value, polled every `interval` s; TimeoutError naming `what`
    once `timeout` s have passed."""
    deadline = time.monotonic() + timeout
    while True:
        got = condition()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)
