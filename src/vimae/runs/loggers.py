"""Experiment trackers fed with a training run's rows: the same rows as metrics.jsonl.

A logger is anything with `log(row)` and `close()` (`Logger`); `vimae.fit(..., loggers=[...])`
takes one's own, and `vimae train --tensorboard` / `--mlflow` add the two built in:

- `TensorBoardLogger`: scalars under RUN/tensorboard, named "KIND/KEY" (epoch/loss, step/recon).
- `MlflowLogger`: an MLflow tracking store in RUN/mlflow.db (SQLite, read by any MLflow client or
  `mlflow ui --backend-store-uri sqlite:///RUN/mlflow.db`; no server), experiment "vimae", one
  MLflow run per run folder (a resumed run continues it), its settings as params and each row's
  scalars as metrics "KIND/KEY" at the row's step. MLflow 3 keeps its file store in maintenance
  mode and refuses it by default, so the store is its database backend (the `mlflow` extra:
  mlflow-skinny, SQLAlchemy and Alembic).

A row is a dict with "kind" ("step", "epoch", "lr", "check", "spike"), "step" and scalars; rows
carry what `RunLog.write` writes, in the same order.
"""

import json
import time
from pathlib import Path
from typing import Any, Protocol

from vimae.errors import VimaeError

# Keys of a row that are bookkeeping, not a measured scalar.
NOT_SCALARS = ("kind", "epoch", "step")
MLFLOW_FILE = "mlflow.db"
MLFLOW_EXPERIMENT = "vimae"


class Logger(Protocol):
    """Receives every row of a training run as it is written (see the module docstring)."""

    def log(self, row: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def scalars(row: dict[str, Any]) -> dict[str, float]:
    """The row's measured numbers, named "KIND/KEY"."""
    return {
        f"{row['kind']}/{key}": float(value)
        for key, value in row.items()
        if key not in NOT_SCALARS and isinstance(value, int | float) and not isinstance(value, bool)
    }


def flat_settings(config: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A run's settings {"model": {"name": ...}, ...} as {"model.name": ...}: the MLflow params."""
    return {
        f"{section}.{key}": value
        for section, values in config.items()
        for key, value in values.items()
    }


class TensorBoardLogger:
    """Scalars of every row into a TensorBoard event folder."""

    def __init__(self, folder: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise VimaeError(
                "--tensorboard needs the tensorboard package: pip install 'vimae[tensorboard]'."
            ) from None
        self._writer = SummaryWriter(log_dir=str(folder))

    def log(self, row: dict[str, Any]) -> None:
        for name, value in scalars(row).items():
            self._writer.add_scalar(name, value, row["step"])

    def close(self) -> None:
        self._writer.close()


def _mlflow_client(database: Path) -> Any:
    """An MLflow client of the SQLite store at `database`, or one sentence naming the extra."""
    try:
        import logging

        from mlflow.tracking import MlflowClient

        logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)  # schema chatter
        logging.getLogger("alembic").setLevel(logging.WARNING)
    except ImportError:
        raise VimaeError(
            "--mlflow needs MLflow's client and its database backend: pip install 'vimae[mlflow]'."
        ) from None
    return MlflowClient(tracking_uri=f"sqlite:///{Path(database).resolve()}")


class MlflowLogger:
    """Every row's scalars into an MLflow run of the store RUN/mlflow.db (see the module)."""

    def __init__(self, run_dir: Path, params: dict[str, Any]) -> None:
        run_dir = Path(run_dir)
        self._client = _mlflow_client(run_dir / MLFLOW_FILE)
        experiment = self._client.get_experiment_by_name(MLFLOW_EXPERIMENT)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else self._client.create_experiment(
                MLFLOW_EXPERIMENT,
                artifact_location=(run_dir / "mlflow-artifacts").resolve().as_uri(),
            )
        )
        tag = str(run_dir.resolve())
        found = self._client.search_runs(
            [experiment_id], filter_string=f"tags.`vimae.run_dir` = '{tag}'"
        )
        if found:  # a resumed run continues its MLflow run
            self._run_id = found[0].info.run_id
            self._client.update_run(self._run_id, status="RUNNING")
        else:
            run = self._client.create_run(
                experiment_id, run_name=run_dir.name, tags={"vimae.run_dir": tag}
            )
            self._run_id = run.info.run_id
            for key, value in params.items():
                text = value if isinstance(value, str) else json.dumps(value)
                self._client.log_param(self._run_id, key, text[:6000])

    @property
    def run_id(self) -> str:
        return self._run_id

    def log(self, row: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        values = scalars(row)
        if values:
            stamp = int(time.time() * 1000)
            metrics = [Metric(k, v, stamp, int(row["step"])) for k, v in values.items()]
            self._client.log_batch(self._run_id, metrics=metrics)

    def close(self) -> None:
        self._client.set_terminated(self._run_id)
