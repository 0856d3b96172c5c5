"""A reproduction's parts committed without weights (docs/results): they move, rebuild their
report and continue without training or measuring again, and ask for the weights only when a new
measurement needs them."""

import json
import shutil
from pathlib import Path

import pytest

from vimae.errors import VimaeError
from vimae.metrics.base import MetricOptions
from vimae.paper import reproduce
from vimae.paper.experiments import CPU, Setting
from vimae.runs.checkpoint import CHECKPOINT_FILE

RESULTS_IGNORE = Path(__file__).parents[1] / "docs" / "results" / ".gitignore"


def _tiny() -> Setting:
    """Table 3's setting shrunk to one epoch of two batches on scikit-learn's digits."""
    return Setting(
        "mnist-dcgan28", "digits", "mlp", 0.125, 4, epochs=1, train_size=200, test_size=120,
        options=(("n_repeats", 2), ("n_labels", 60), ("batch_size", 200),
                 ("corruptions", ("clean", "gauss:0.2"))),
        reduced="tiny test setting",
    )  # fmt: skip


def test_the_evaluation_key_ignores_where_the_cache_lives(tmp_path):
    setting = _tiny()
    a = reproduce.evaluation_key(setting, MetricOptions(cache_dir=tmp_path / "a"))
    b = reproduce.evaluation_key(setting, MetricOptions(cache_dir=Path("elsewhere/cache")))
    assert a == b
    # ... but not what changes a number
    assert a != reproduce.evaluation_key(setting, MetricOptions(cache_dir=tmp_path, seed=1))


def test_a_part_without_weights_moves_and_continues_without_work(monkeypatch, tmp_path):
    monkeypatch.setitem(CPU, "mnist-dcgan28", _tiny())
    first = tmp_path / "first"
    reproduce.reproduce("table3", first, "cpu", data_dir=tmp_path, log=lambda s: None, seeds=2)
    report = (first / "report.md").read_text()
    # what docs/results/.gitignore keeps out of git is removed, and the folder moved
    ignored = [line for line in RESULTS_IGNORE.read_text().splitlines() if line[:1] not in "#"]
    assert {"*.safetensors", "cache/"} <= set(ignored)
    for path in first.rglob(f"*{CHECKPOINT_FILE}"):
        path.unlink()
    shutil.rmtree(first / "cache", ignore_errors=True)
    moved = tmp_path / "moved"
    first.rename(moved)
    ctx = reproduce.reproduce(
        "table3", moved, "cpu", data_dir=tmp_path, log=lambda s: None, seeds=2
    )
    assert ctx.trained == [] and ctx.evaluated == []
    # the part's wall time is the sum over the invocations that made it, each one kept
    record = json.loads((moved / "manifest.json").read_text())["experiments"]["table3"]
    assert len(record["sessions"]) == 2
    assert record["seconds"] == pytest.approx(
        sum(s["seconds"] for s in record["sessions"]), abs=0.2
    )
    assert record["sessions"][0]["seconds"] > record["sessions"][1]["seconds"]  # it trained
    rebuilt = (moved / "report.md").read_text()
    assert f"Made in {record['seconds']:.0f} s over 2 invocations" in rebuilt
    start = report.index("## Table 3")
    assert rebuilt[start : start + 3000] == report[start : start + 3000]
    # a measurement that was not made needs the weights: the setting is "not run", saying why
    said: list[str] = []
    reproduce.reproduce("recon", moved, "cpu", data_dir=tmp_path, log=said.append, seeds=2)
    assert any(f"has no {CHECKPOINT_FILE}" in line and "not run" in line for line in said)
    with pytest.raises(VimaeError, match=f"has no {CHECKPOINT_FILE}"):
        reproduce.check_trained(next((moved / "runs").iterdir()))
