"""The one exception type for bad input.

Anything a user can get wrong (a missing file, an unknown name, a nonsense hyper-parameter) raises
`VimaeError` with one sentence that says what is wrong and what to do. The command line prints that
sentence and exits non-zero without a traceback; library users catch it like any exception.
"""


class VimaeError(Exception):
    """A user-facing error: its message is one actionable sentence."""
