"""A run folder's guards: one writer at a time, writable before work starts, a log that heals.

- `run_lock`: an advisory lock (`flock` on RUN/.lock) held while a process trains or evaluates
  into the folder. A second writer is refused with a sentence naming the holder, instead of two
  processes writing every log row twice. The kernel drops the lock when its process dies, so a
  killed run never leaves the folder locked.
- `writable_folder` / `check_output_file`: an `--out` that is a file, lies under a file, or cannot
  be written is one sentence before anything is computed; an evaluation can never overwrite the
  run's own checkpoint, config or log.
- `read_log` / `repair_log`: metrics.jsonl is one JSON object per line. A run killed mid-write
  leaves a partial last line; resuming drops it (and the rows after the checkpoint it resumes
  from) by an atomic rewrite, never by truncating the file in place.
"""

import fcntl
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vimae.atomic import atomic_write_text, io_error_sentence
from vimae.errors import VimaeError

LOCK_FILE = ".lock"
METRICS_FILE = "metrics.jsonl"
# What the run trained on: dataset name, source, digest, image count and shape, class counts.
DATA_FILE = "data.json"
# Files of a run that an evaluation's --out must never replace (the checkpoint and config are
# named in their own modules; listed here by name to keep the import direction one way).
RUN_FILES = ("checkpoint.safetensors", "config.json", METRICS_FILE, DATA_FILE, LOCK_FILE)

_held: set[Path] = set()  # folders this process has locked (a lock is re-entrant per process)


def writable_folder(path: str | Path) -> Path:
    """Create folder `path` if needed and prove it writable, or raise one VimaeError sentence."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise VimaeError(f"--out {path} is a file, not a folder; choose a folder for the run.")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise VimaeError(io_error_sentence(err, path, "preparing the output folder")) from None
    return path


def check_output_file(path: str | Path, run_dir: str | Path) -> Path:
    """An evaluation's result file: never one of the run's own files, never a folder, in a
    writable folder. Checked before anything is computed."""
    path = Path(path)
    if path.is_dir():
        raise VimaeError(f"--out {path} is a folder; give a file name such as {path}/metrics.json.")
    if path.parent.resolve() == Path(run_dir).resolve() and path.name in RUN_FILES:
        raise VimaeError(
            f"--out {path} is the run's own {path.name}; write the metrics to another file "
            "(default RUN/metrics.json)."
        )
    if path.suffix != ".json":
        raise VimaeError(f"--out {path} must be a .json file (metrics are written as JSON).")
    writable_folder(path.parent)
    if path.exists() and not os.access(path, os.W_OK):
        raise VimaeError(f"--out {path} exists and cannot be written; choose another --out.")
    return path


@contextmanager
def run_lock(folder: str | Path, purpose: str) -> Iterator[None]:
    """Hold RUN/.lock for `purpose` (e.g. "vimae train"), or refuse if another process holds it."""
    folder = writable_folder(folder)
    key = folder.resolve()
    if key in _held:  # this process holds it already (a reproduce that trains, then evaluates)
        yield
        return
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 400, 0).decode(errors="replace").strip() or "another process"
            raise VimaeError(
                f"{folder} is in use by {holder}; wait for it to finish or choose another folder."
            ) from None
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        note = f"{purpose} (process {os.getpid()} on {socket.gethostname()}, since {started})"
        os.ftruncate(fd, 0)
        os.pwrite(fd, note.encode() + b"\n", 0)
        _held.add(key)
        try:
            yield
        finally:
            _held.discard(key)
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def read_log(path: Path) -> list[dict[str, Any]]:
    """The rows of a metrics.jsonl. A partial last line (a run killed mid-write) is dropped
    quietly; a damaged line elsewhere is dropped with a warning on stderr."""
    if not path.exists():
        return []
    # Text after the last newline is a torn write: split("\n") leaves it as the last item.
    complete = path.read_text(errors="replace").split("\n")[:-1]
    rows, damaged = [], 0
    for line in complete:
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.append(row)
        else:
            damaged += 1
    if damaged:
        print(f"vimae: warning: dropped {damaged} damaged line(s) of {path}.", file=sys.stderr)
    return rows


def repair_log(path: Path, last_step: int) -> None:
    """Keep the log's whole rows up to `last_step` (the checkpoint a run resumes from); the
    file is replaced atomically, so a kill during the repair loses nothing."""
    if not path.exists():
        return
    rows = [row for row in read_log(path) if row["step"] <= last_step]
    text = "".join(json.dumps(row) + "\n" for row in rows)
    if text != path.read_text(errors="replace"):
        atomic_write_text(path, text)
