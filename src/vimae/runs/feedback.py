"""Where a training run's rows go while it runs: metrics.jsonl, TensorBoard and the console.

metrics.jsonl is the record (one JSON object per line, flushed as it is written, so `tail -f`
follows a run). The console gets one line per epoch with every loss term, the validation loss,
images per second and the epoch's time, printed with `tqdm.write` so that a progress bar above it
is not torn; a bar is only drawn on a terminal (`progress_bar`), elsewhere the lines are all.
TensorBoard (optional, `--tensorboard`) receives the same scalars under RUN/tensorboard.
"""

import json
import sys
from pathlib import Path
from typing import Any, TextIO

from tqdm.auto import tqdm

from vimae.errors import VimaeError
from vimae.files import io_error_sentence

# Keys of a row that are bookkeeping, not a measured scalar.
NOT_SCALARS = ("kind", "epoch", "step")


def progress_bar(iterable: Any, description: str, enabled: bool) -> Any:
    """A tqdm bar over `iterable` on a terminal when `enabled`; the bare iterable otherwise
    (a log file or a CI console gets the epoch lines, not carriage-return noise)."""
    if not (enabled and sys.stderr.isatty()):
        return iterable
    return tqdm(iterable, desc=description, leave=False)


def epoch_line(row: dict[str, Any], epochs: int, images_per_second: float) -> str:
    """ "epoch 3/20  loss 12.3  recon 10.1  mmd 0.0213  |  val_loss 12.9  |  1,234 img/s  4.2 s"."""
    terms = "  ".join(
        f"{k} {v:.4g}"
        for k, v in row.items()
        if k not in (*NOT_SCALARS, "seconds") and not k.startswith("val_")
    )
    parts = [f"epoch {row['epoch'] + 1}/{epochs}  {terms}"]
    validation = "  ".join(f"{k} {v:.4g}" for k, v in row.items() if k.startswith("val_"))
    if validation:
        parts.append(validation)
    parts.append(f"{images_per_second:,.0f} img/s  {row['seconds']:.1f} s")
    return "  |  ".join(parts)


class RunLog:
    """The rows of one training run: appended to `path` (None: kept in memory only), mirrored to
    TensorBoard under `tensorboard_dir` (None: off), epoch rows printed when `console`."""

    def __init__(
        self,
        path: Path | None,
        tensorboard_dir: Path | None = None,
        console: bool = True,
        epochs: int = 0,
    ) -> None:
        self.path = path
        self.console = console
        self.epochs = epochs
        self.history: list[dict[str, Any]] = []  # epoch rows, for a caller without a run folder
        self._file: TextIO | None = open(path, "a") if path is not None else None  # noqa: SIM115
        self._board = _summary_writer(tensorboard_dir) if tensorboard_dir is not None else None

    def write(self, row: dict[str, Any], images_per_second: float | None = None) -> None:
        """Record one row (kind "step", "epoch", "lr" or "check"); an epoch row is also printed."""
        if self._file is not None:
            try:
                self._file.write(json.dumps(row) + "\n")
                self._file.flush()
            except OSError as err:  # a full disk: the checkpoint before this row is intact
                raise VimaeError(io_error_sentence(err, Path(self.path), "writing it")) from None
        if self._board is not None:
            for key, value in row.items():
                if key not in NOT_SCALARS and isinstance(value, int | float):
                    self._board.add_scalar(f"{row['kind']}/{key}", value, row["step"])
        if row["kind"] == "epoch":
            self.history.append(row)
            if self.console:
                tqdm.write(epoch_line(row, self.epochs, images_per_second or 0.0))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._board is not None:
            self._board.close()
            self._board = None

    def reopen(self) -> None:
        """Open the log again (closed at the end of training) to append rows after it."""
        if self._file is None and self.path is not None:
            self._file = open(self.path, "a")  # noqa: SIM115


def _summary_writer(folder: Path) -> Any:
    """torch's TensorBoard writer into `folder`, or one sentence naming the extra to install."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise VimaeError(
            "--tensorboard needs the tensorboard package: pip install 'vimae[tensorboard]'."
        ) from None
    return SummaryWriter(log_dir=str(folder))
