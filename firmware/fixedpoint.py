"""Fixed-point helpers for per-scan arithmetic that must stay in small ints on 32-bit boards."""


def muldiv(a, b, c):
    """round(a * b / c) for b >= 0, c > 0 without forming a * b: small ints while b * c < 2**30."""
    q = a // c
    return q * b + ((a - q * c) * b + (c >> 1)) // c
