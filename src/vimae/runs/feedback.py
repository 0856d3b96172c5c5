"""Where a training run's rows go while it runs: metrics.jsonl, the loggers and the console.

metrics.jsonl is the record (one JSON object per line, flushed as it is written, so `tail -f`
follows a run). The console gets one line per epoch with every loss term, the validation loss,
images per second and the epoch's time, printed with `tqdm.write` so that a progress bar above it
is not torn; a bar is only drawn on a terminal (`progress_bar`), elsewhere the lines are all.
Loggers (`vimae.runs.loggers`: TensorBoard with `--tensorboard`, MLflow with `--mlflow`, one's
own through `vimae.fit(loggers=...)`) receive every row after it is in metrics.jsonl.
"""

import json
import sys
from pathlib import Path
from typing import Any, TextIO

from tqdm.auto import tqdm

from vimae.errors import VimaeError
from vimae.files import io_error_sentence
from vimae.runs.loggers import NOT_SCALARS, Logger


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
    """The rows of one training run: appended to `path` (None: kept in memory only), passed on to
    each of `loggers`, epoch rows printed when `console`."""

    def __init__(
        self,
        path: Path | None,
        loggers: list[Logger] | None = None,
        console: bool = True,
        epochs: int = 0,
    ) -> None:
        self.path = path
        self.console = console
        self.epochs = epochs
        self.history: list[dict[str, Any]] = []  # epoch rows, for a caller without a run folder
        self.loggers = list(loggers or [])
        self._file: TextIO | None = open(path, "a") if path is not None else None  # noqa: SIM115

    def write(self, row: dict[str, Any], images_per_second: float | None = None) -> None:
        """Record one row (kind "step", "epoch", "lr", "check" or "spike"); an epoch row is also
        printed."""
        if self._file is not None:
            try:
                self._file.write(json.dumps(row) + "\n")
                self._file.flush()
            except OSError as err:  # a full disk: the checkpoint before this row is intact
                raise VimaeError(io_error_sentence(err, Path(self.path), "writing it")) from None
        for logger in self.loggers:
            logger.log(row)
        if row["kind"] == "epoch":
            self.history.append(row)
            if self.console:
                tqdm.write(epoch_line(row, self.epochs, images_per_second or 0.0))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        for logger in self.loggers:
            logger.close()
        self.loggers = []

    def reopen(self) -> None:
        """Open the log again (closed at the end of training) to append rows after it."""
        if self._file is None and self.path is not None:
            self._file = open(self.path, "a")  # noqa: SIM115
