"""The `vimae` command: train, evaluate, demo, reproduce, shards (a dataset converted for
streaming), and the commands for a trained model (sample, encode, reconstruct, interpolate,
traverse, plot, export). Each command lives in its own module of `vimae.commands`.

User errors (VimaeError) print one sentence and exit with status 2, never a traceback.
"""

import argparse
import importlib.metadata
import signal
import sys
import threading
import warnings
from collections.abc import Sequence

from vimae.commands import add_parsers
from vimae.errors import VimaeError, VimaeNote
from vimae.runs.allocator import keep_freed_memory

# Commands whose steps allocate and free large activations: glibc's malloc is told to keep freed
# memory (vimae/runs/allocator.py), which removes a page fault storm on every step.
MEMORY_HUNGRY = ("train", "evaluate", "demo", "reproduce")


def installed_version() -> str:
    """The version pip installed (its metadata), else the source tree's `vimae.__version__`."""
    try:
        return importlib.metadata.version("vimae")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        import vimae

        return vimae.__version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vimae", description=" ".join(__doc__.split("\n\n")[0].split())
    )
    parser.add_argument("--version", action="version", version=f"vimae {installed_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_parsers(subparsers)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is (like Ctrl-C) so that it unwinds the same way."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def _show_note(message, category, filename, lineno, file=None, line=None) -> None:
    """Print a VimaeNote as one line on stderr; other warnings as Python prints them."""
    if issubclass(category, VimaeNote):
        print(f"vimae: note: {message}", file=sys.stderr)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


_python_showwarning = warnings.showwarning


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; bad input is one sentence and status 2, Ctrl-C or SIGTERM a sentence
    saying what the interruption means for that command (the note its handler attached, see
    `vimae.commands.common.on_interrupt`) and status 130 or 143."""
    args = build_parser().parse_args(argv)
    warnings.showwarning = _show_note
    previous = signal.getsignal(signal.SIGTERM)
    in_main_thread = _in_main_thread()
    if in_main_thread:
        signal.signal(signal.SIGTERM, _raise_terminated)
    if args.command in MEMORY_HUNGRY:
        keep_freed_memory()  # a process setting: the CLI's choice, a library user's on request
    try:
        return args.handler(args)
    except VimaeError as err:
        print(f"vimae: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        notes = getattr(err, "__notes__", [])
        print(
            f"vimae: interrupted; {notes[-1]}" if notes else "vimae: interrupted.", file=sys.stderr
        )
        return 143 if isinstance(err, Terminated) else 130
    finally:
        warnings.showwarning = _python_showwarning
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
