"""A run folder's files and guards: its file names, result files that never replace them, a log
that heals. (One writer at a time, `run_lock`, and `writable_folder` are in `vimae.files`.)

- `check_output_file`: an evaluation's `--out` that is a file, lies under a file, or cannot
  be written is one sentence before anything is computed; an evaluation can never overwrite the
  run's own checkpoint, config or log.
- `read_log` / `repair_log`: metrics.jsonl is one JSON object per line. A run killed mid-write
  leaves a partial last line; resuming drops it (and the rows after the checkpoint it resumes
  from) by an atomic rewrite, never by truncating the file in place.
"""

import json
import os
import sys
from pathlib import Path
from typing import Any

from vimae.errors import VimaeError
from vimae.files import LOCK_FILE, atomic_write_text, special_kind, writable_folder

METRICS_FILE = "metrics.jsonl"
MAX_LOG_BYTES = 256 << 20  # a row every 10 steps of a long run is a few MB
# What the run trained on: dataset name, source, digest, image count and shape, class counts.
DATA_FILE = "data.json"
# Files of a run that an evaluation's --out must never replace (the checkpoint and config are
# named in their own modules; listed here by name to keep the import direction one way).
RUN_FILES = ("checkpoint.safetensors", "config.json", METRICS_FILE, DATA_FILE, LOCK_FILE)


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


def read_log(path: Path) -> list[dict[str, Any]]:
    """The rows of a metrics.jsonl. A partial last line (a run killed mid-write) is dropped
    quietly; a damaged line elsewhere is dropped with a warning on stderr."""
    if not path.exists() and not path.is_symlink():
        return []
    kind = special_kind(path)
    if kind is not None:
        raise VimaeError(f"{path} is {kind}, not a training log; restore the run's metrics.jsonl.")
    with open(path, "rb") as f:
        data = f.read(MAX_LOG_BYTES + 1)
    if len(data) > MAX_LOG_BYTES:
        raise VimaeError(f"{path} is larger than {MAX_LOG_BYTES >> 20} MiB; it is no training log.")
    # Text after the last newline is a torn write: split("\n") leaves it as the last item.
    complete = data.decode("utf-8", errors="replace").split("\n")[:-1]
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
    """Keep the log's whole rows up to `last_step` (the checkpoint a run resumes from), less the
    end-of-run checks; the file is replaced atomically, so a kill during the repair loses
    nothing."""
    if not path.exists():
        return
    # An end-of-run "check" row describes the session that ended; the resumed one writes its own.
    rows = [r for r in read_log(path) if r["step"] <= last_step and r.get("kind") != "check"]
    text = "".join(json.dumps(row) + "\n" for row in rows)
    if text != path.read_text(errors="replace"):
        atomic_write_text(path, text)
