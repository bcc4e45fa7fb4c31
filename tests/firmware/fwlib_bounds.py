"""Test support: a muldiv that records the largest intermediate value, to check the 2^30 bound."""


def checked_muldiv(orig, peak):
    """Wraps fixedpoint.muldiv; peak[0] holds the largest magnitude it formed."""
    def muldiv(a, b, c):
        q = a // c
        for v in (a, q * c, q * b, (a - q * c) * b + (c >> 1), b * c):
            if v < 0:
                v = -v
            if v > peak[0]:
                peak[0] = v
        return orig(a, b, c)
    return muldiv
