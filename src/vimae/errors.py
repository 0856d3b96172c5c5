"""The one exception type for bad input, and the one warning type for notes.

Anything a user can get wrong (a missing file, an unknown name, a nonsense hyper-parameter) raises
`VimaeError` with one sentence that says what is wrong and what to do. The command line prints that
sentence and exits non-zero without a traceback; library users catch it like any exception.
"""


class VimaeError(Exception):
    """A user-facing error: its message is one actionable sentence."""


class VimaeNote(UserWarning):
    """Something a user should know that is not an error (e.g. one colour image made a folder
    of grey images load as colour): issued with `warnings.warn`, printed by the command line as
    "vimae: note: ...", and visible (or filterable) in a library user's warnings."""
