"""Experiment trackers (vimae.runs.loggers): a logger of one's own gets the rows of metrics.jsonl,
and `vimae train --mlflow` writes an MLflow store that MLflow's own client reads back, continued
by a resumed run."""

import json
from pathlib import Path

from conftest import DIGITS_MLP

import vimae
from vimae.cli import main
from vimae.runs.folder import read_log
from vimae.runs.loggers import MLFLOW_EXPERIMENT, MLFLOW_FILE


class Collect:
    """A logger of one's own: keeps every row, and whether it was closed."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.closed = False

    def log(self, row: dict) -> None:
        self.rows.append(dict(row))

    def close(self) -> None:
        self.closed = True


def test_a_logger_of_ones_own_gets_the_rows_of_metrics_jsonl(tmp_path):
    collect = Collect()
    vimae.fit("vae", "digits", arch="mlp", steps=30, out=tmp_path / "run", loggers=[collect],
              progress=False)  # fmt: skip
    written = read_log(tmp_path / "run" / "metrics.jsonl")
    training = [r for r in written if r["kind"] != "check"]  # the check comes after training
    assert collect.rows == training and collect.closed
    assert any(r["kind"] == "epoch" for r in collect.rows)


def test_train_with_mlflow_is_read_back_by_mlflows_client_and_resumes_its_run(tmp_path):
    import mlflow  # the mlflow extra is part of the test extras: never skipped

    run = tmp_path / "run"
    base = ["train", *DIGITS_MLP, "--model", "vae", "--mlflow", "--out", str(run)]
    assert main([*base, "--epochs", "1"]) == 0
    assert main([*base, "--epochs", "2", "--resume"]) == 0
    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{run / MLFLOW_FILE}")
    experiment = client.get_experiment_by_name(MLFLOW_EXPERIMENT)
    (found,) = client.search_runs([experiment.experiment_id])  # one MLflow run, continued
    assert found.info.run_name == "run" and found.info.status == "FINISHED"
    assert found.data.params["model.name"] == "vae"
    epochs = [r for r in read_log(run / "metrics.jsonl") if r["kind"] == "epoch"]
    history = client.get_metric_history(found.info.run_id, "epoch/loss")
    assert [(m.step, m.value) for m in history] == [(r["step"], r["loss"]) for r in epochs]
    assert len(epochs) == 2
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["mlflow"] is True
    assert Path(run / MLFLOW_FILE).stat().st_size > 0
