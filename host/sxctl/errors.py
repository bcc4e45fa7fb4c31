"""Errors a user sees: each says what happened and what to do."""


class SxctlError(Exception):
    """An error the CLI prints as one line (no traceback) and exits non-zero on."""
    exit_code = 1
