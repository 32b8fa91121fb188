"""The one error type users see.

Every bad input (a wrong path, a malformed config, an unknown variant, twins that do not align, an SAE for
another model) raises :class:`InterpAFError` with a single line that names the input and the fix. The
command line prints it as ``error: ...`` and exits with status 2, without a traceback.
"""


class InterpAFError(Exception):
    """A user-facing error: one line, naming the offending input and how to fix it."""
