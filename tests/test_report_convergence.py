"""Convergence judged on the held-out loss, the loss curves, the class counts of every setting and
the paper's tables 1-5 beside ours, from hand-written run folders."""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from vimae.paper import numbers as paper
from vimae.paper import report
from vimae.paper.report import blocks, comparison, convergence
from vimae.paper.report.records import CONVERGED, MIN_EPOCHS, load_results, load_run
from vimae.plotting.curves import CurvePanel, loss_curves_figure

STEPS_PER_EPOCH = 50
EPOCHS = 20  # final step 1000; the window starts at the epoch of step 900


def _write_run(
    out: Path,
    name: str,
    model: str = "vimae-l",
    val: list[float] | None = None,
    train: list[float] | None = None,
    data: dict | None = None,
    tested: dict | None = None,
    metrics: dict | None = None,
    seed: int = 0,
) -> str:
    """A run folder with one epoch row per training loss (validation losses beside them when
    given), data.json and evaluation records."""
    run = out / "runs" / name
    (run / "evaluation").mkdir(parents=True)
    config = {
        "model": {"name": model, "arch": "dcgan28", "width": 0.125, "latent_dim": 8},
        "data": {"dataset": "mnist"},
        "train": {"epochs": EPOCHS, "seed": seed, "schedule": "cosine"},
    }
    (run / "config.json").write_text(json.dumps(config))
    train = train if train is not None else [50.0] * (len(val) if val else EPOCHS)
    rows = []
    for e, loss in enumerate(train):
        row = {"kind": "epoch", "epoch": e, "step": STEPS_PER_EPOCH * (e + 1), "loss": loss}
        if val is not None:
            row["val_loss"] = val[e]
        rows.append(row)
    # a step row and the final check row: neither is an epoch
    rows.insert(0, {"kind": "step", "epoch": 0, "step": 10, "loss": 1e6})
    rows.append({"kind": "check", "step": rows[-1]["step"], "reconstruction": 1.0})
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "data.json").write_text(json.dumps(data if data is not None else {}))
    for metric, values in (metrics or {"rate": {"rate": 5.0}}).items():
        record = {"metric": metric, "status": "ok", **values}
        if tested is not None:
            record["test_data"] = tested
        (run / "evaluation" / f"{metric}-abc.json").write_text(json.dumps(record))
    return f"runs/{name}"


def _cells(text: str, first: str) -> list[list[str]]:
    """The cells of the Markdown table body rows of `text` whose first cell starts with `first`
    (a header row, the one above a `|---|` separator, is not a row of the table's data)."""
    lines = text.splitlines()
    rows = [
        line[2:-2].split(" | ")
        for line, below in zip(lines, [*lines[1:], ""], strict=True)
        if line.startswith("| ") and not below.startswith("|---")
    ]
    return [row for row in rows if row[0].startswith(first)]


def _steps() -> np.ndarray:
    return STEPS_PER_EPOCH * np.arange(1, EPOCHS + 1)


def _falling_in_window() -> list[float]:
    """Flat at 100 up to step 900, then 5% lower by step 1000, spread over the window's two
    epochs (so the last epoch alone moved only 2.6%)."""
    return [100.0 if s <= 900 else 100.0 - 0.05 * (s - 900) for s in _steps()]


def _flat() -> list[float]:
    """Falling fast early, then within 0.3% over the last 10% of steps."""
    return [100.0 + 400.0 / s + (0.3 if s <= 900 else 0.3 - 0.003 * (s - 900)) for s in _steps()]


def test_a_validation_loss_still_falling_5_percent_is_not_converged(tmp_path):
    # the training loss is flat: the rule that read it would have called this converged
    run = load_run(tmp_path, "vimae-l", _write_run(tmp_path, "falling", val=_falling_in_window()))
    c = run.convergence()
    assert c.converged is False
    assert c.change == pytest.approx(-0.05)  # 100 at step 900 -> 95 at step 1000
    assert (c.since_step, c.final_step) == (900, 1000)
    assert c.val_loss == pytest.approx(95.0) and c.train_loss == 50.0
    assert c.gap == pytest.approx(45.0)


def test_a_flat_validation_loss_is_converged_whatever_the_training_loss(tmp_path):
    # the training loss fell 10% in its last epoch: noise to the old rule, ignored by the new one
    train = [50.0] * (EPOCHS - 1) + [45.0]
    run = load_run(tmp_path, "vae", _write_run(tmp_path, "flat", "vae", _flat(), train))
    c = run.convergence()
    assert c.converged is True
    before, after = 100.0 + 400.0 / 900 + 0.3, 100.0 + 400.0 / 1000
    assert abs(c.change) < CONVERGED and c.change == pytest.approx((after - before) / before)


def test_the_window_is_the_last_10_percent_of_steps_not_the_last_epoch(tmp_path):
    # a 10% drop just before step 900 is outside the window: converged
    val = [110.0 if s < 900 else 100.0 for s in _steps()]
    run = load_run(tmp_path, "vae", _write_run(tmp_path, "early-drop", "vae", val))
    assert run.convergence().converged is True
    # a 3% drop between steps 900 and 950, flat in the last epoch: not converged
    val = [100.0 if s <= 900 else 97.0 for s in _steps()]
    run = load_run(tmp_path, "vae", _write_run(tmp_path, "in-window", "vae", val))
    assert run.convergence().converged is False


def test_without_validation_or_with_few_epochs_convergence_is_not_judged(tmp_path):
    run = load_run(tmp_path, "vae", _write_run(tmp_path, "no-val", "vae", None))
    c = run.convergence()
    assert c.converged is None and c.reason == "no validation loss"
    assert c.train_loss == 50.0 and c.gap is None
    few = load_run(tmp_path, "vae", _write_run(tmp_path, "few", "vae", [3.0, 2.0, 1.0, 1.0]))
    c = few.convergence()
    assert c.converged is None and f"fewer than {MIN_EPOCHS}" in c.reason
    nothing = load_run(tmp_path, "vae", "runs/absent")
    assert nothing.convergence().converged is None


def _output(out: Path, val_by_model: dict[str, list[list[float] | None]], **run) -> None:
    """table3 and recon sharing one setting's runs (model -> one val curve per seed)."""
    runs = {
        model: [
            _write_run(out, f"{model}-{seed}", model, val, seed=seed, **run)
            for seed, val in enumerate(curves)
        ]
        for model, curves in val_by_model.items()
    }
    setting = {"key": "mnist-dcgan28", "dataset": "mnist", "arch": "dcgan28", "width": 0.125,
               "latent_dim": 8, "epochs": EPOCHS, "status": "ok", "runs": runs}  # fmt: skip
    common = {"scale": "cpu", "seconds": 1.0, "finished": "today", "metrics": [], "pictures": []}
    manifest = {"experiments": {
        "table3": {**common, "title": "Table 3", "command": "vimae reproduce table3",
                   "settings": [setting]},
        "recon": {**common, "title": "Figures 2-3", "command": "vimae reproduce recon",
                  "settings": [setting]},
    }}  # fmt: skip
    (out / "manifest.json").write_text(json.dumps(manifest))


def test_a_setting_converges_when_every_run_does_and_claims_say_so(tmp_path):
    # VIMAE-l's second seed still moves: the setting has not converged
    _output(tmp_path, {"vae": [_flat(), _flat()], "vimae-l": [_flat(), _falling_in_window()]})
    _, results = load_results(tmp_path)
    setting = results["table3"][0]
    assert setting.convergence() == (False, pytest.approx(0.05))
    assert blocks.unconverged(setting).startswith("training had not converged")
    assert "training NOT converged (1 of 4 runs'" in blocks.converged_text(setting)
    verdicts = {m: convergence.model_verdict(c) for m, c in setting.convergences().items()}
    assert verdicts == {"vae": "yes", "vimae-l": "NO (1 of 2 seeds moved by 1% or more)"}
    # every run flat: converged, and claims carry no note
    setting.seeds["vimae-l"].pop()
    assert setting.convergence()[0] is True and blocks.unconverged(setting) == ""


def test_an_old_report_folder_builds_and_says_convergence_was_not_judged(tmp_path):
    _output(tmp_path, {"vae": [None, None], "vimae-l": [None]})
    md = report.build_report(tmp_path)[0].read_text()
    assert "Convergence not judged: no validation loss" in md
    assert "not judged (2 of 2 seeds): no validation loss" in md
    _, results = load_results(tmp_path)
    assert blocks.unconverged(results["table3"][0]) == "convergence not judged: no validation loss"


def test_the_convergence_section_lists_each_setting_once_with_its_curves(tmp_path):
    counts = {str(k): 100 + k for k in range(10)}
    data = {
        "train": {"name": "MNIST", "images": 1045, "class_counts": counts},
        "validation": {"name": "MNIST", "images": 110, "class_counts": {"0": 11, "1": 12}},
    }
    tested = {"name": "MNIST", "images": 20, "class_counts": {"0": 7, "1": 13}}
    _output(tmp_path, {"vae": [_flat()] * 3, "vimae-l": [_falling_in_window()] * 3,
                       "beta-vae-a": [_flat()] * 3}, data=data, tested=tested)  # fmt: skip
    md = report.build_report(tmp_path)[0].read_text()
    section = md[md.index("## Training and convergence") :]
    section = section[: section.index("\n## ")]
    # the rule stated, with the caveat of a decaying schedule
    assert "changed by under 1% over the last 10% of its optimiser steps" in section
    assert "partly because the learning rate is small" in section
    assert "cosine schedule, at most 2.4% of its peak" in section  # (1 + cos(0.9 pi)) / 2
    # table3 and recon share the runs: one entry, one figure
    assert section.count("### mnist-dcgan28 (table3, recon)") == 1 and section.count("### ") == 1
    rows = {row[0]: row for row in _cells(section, "")}
    vimae = rows["VIMAE-l"]
    assert vimae[1] == "3" and vimae[3] == "95" and vimae[4] == "45"  # final val, gap
    assert vimae[5] == "-5%, -5%, -5%" and vimae[6] == "900–1000"
    assert vimae[7].startswith("NO (3 of 3 seeds")
    assert rows["VAE"][7] == "yes" and rows["β_A-VAE"][7] == "yes"
    # the class counts of the training, validation and test data
    assert "training: 0: 100, 1: 101, 2: 102" in section and "9: 109" in section
    assert "validation: 0: 11, 1: 12" in section
    assert "test (measurements): 0: 7, 1: 13" in section
    figure = tmp_path / "figures" / "loss-mnist-dcgan28.png"
    assert figure.stat().st_size > 5000 and "figures/loss-mnist-dcgan28.png" in section
    assert sorted(p.name for p in (tmp_path / "figures").glob("loss-*")) == [figure.name]


def test_the_loss_figure_has_a_panel_per_model_and_a_line_per_seed_and_split(tmp_path):
    _output(tmp_path, {"vae": [_flat()] * 3, "vimae-l": [_falling_in_window()] * 2})
    _, results = load_results(tmp_path)
    setting = results["table3"][0]
    panels = [
        CurvePanel(model, [convergence.run_curve(r) for r in runs])
        for model, runs in setting.seeds.items()
    ]
    fig = loss_curves_figure(panels, 0.1)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["vae", "vimae-l"]
    assert [len(ax.get_lines()) for ax in axes] == [6, 4]  # train + validation per seed
    assert all(ax.get_yscale() == "linear" for ax in axes)
    dashed = [line for line in axes[1].get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 2 and list(dashed[0].get_ydata()) == _falling_in_window()
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert any("validation loss" in t for t in labels) and any("training loss" in t for t in labels)


def test_class_counts_are_printed_when_recorded():
    assert blocks.class_counts(None) == "not recorded"
    assert blocks.class_counts({"images": 10}) == "not recorded"
    assert blocks.class_counts({"class_counts": {"10": 5, "2": 1_200}}) == "2: 1,200, 10: 5"
    many = {str(k): 20 + k % 3 for k in range(100)}
    assert (
        blocks.class_counts({"class_counts": many}) == "100 classes of 20 to 22 images (median 21)"
    )


def test_ranks_and_their_agreement():
    assert list(comparison.ranks({"a": 93, "b": 93, "c": 80}, True, "min").values()) == [1, 1, 3]
    assert list(comparison.ranks({"a": 1223, "b": 1190}, False, "min").values()) == [2, 1]
    ours, theirs = (
        {"a": 1.0, "b": 3.0, "c": 2.0, "d": 5.0},
        {"a": 2.0, "b": 2.0, "c": 1.0, "d": 4.0},
    )
    expected = spearmanr(list(ours.values()), list(theirs.values())).statistic
    assert comparison.spearman(ours, theirs) == pytest.approx(expected)
    assert comparison.spearman(ours, {m: 1.0 for m in ours}) is None  # a constant order


def test_the_paper_beside_ours_section_has_every_number_of_tables_1_to_5(tmp_path):
    # our clean accuracy in the paper's order for table 3; nothing else measured
    clean = {"vae": 70.0, "beta-vae-h": 85.0, "beta-vae-a": 90.0, "vimae-n": 91.0, "vimae-l": 92.0}
    accuracy = {}
    for model, value in clean.items():
        table = {
            spec: {c: {"mean": value - 5 * k} for c in ("svm", "label_spreading")}
            for k, spec in enumerate(paper.SEMI_SUPERVISED_COLUMNS["table3"])
        }
        accuracy[model] = {"semi-supervised": {"semi_supervised": table}}
    runs = {m: [_write_run(tmp_path, f"{m}-{s}", m, metrics=accuracy[m], seed=s,
                           val=[1.0 + 0.01 * s] * EPOCHS)
                for s in range(2)] for m in clean}  # fmt: skip
    setting = {"key": "mnist-dcgan28", "dataset": "mnist", "arch": "dcgan28", "width": 0.125,
               "latent_dim": 8, "epochs": EPOCHS, "status": "ok", "runs": runs}  # fmt: skip
    common = {"scale": "cpu", "seconds": 1.0, "finished": "today", "metrics": [], "pictures": []}
    manifest = {"experiments": {"table3": {**common, "title": "Table 3", "settings": [setting],
                                           "command": "vimae reproduce table3"}}}  # fmt: skip
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    md = report.build_report(tmp_path)[0].read_text()
    section = md[md.index("## Our numbers beside the paper's (tables 1-5)") :]
    section = section[: section.index("\n## ")]
    rows = _cells(section, "table")
    by_column = {(r[0], r[1]): r for r in rows}
    assert len(rows) == 1 + 3 + 5 + 5 + 2  # every column of tables 1-5
    for model, nll in paper.PARZEN_NLL.items():
        k = paper.MODELS.index(model)
        assert by_column[("table 1", "Parzen NLL (nats)")][3 + k] == f"– / {nll}"
    for name, table in paper.SEMI_SUPERVISED.items():
        label = {"table2": "CIFAR10", "table3": "MNIST", "table4": "Omniglot"}[name]
        for spec in paper.SEMI_SUPERVISED_COLUMNS[name]:
            row = by_column[(f"table {name[-1]} ({label})", spec)]
            for k, model in enumerate(paper.MODELS):
                assert row[3 + k].split(" / ")[1].split(" ")[0] == str(table[model][spec])
    for dataset, numbers in paper.FID.items():
        row = by_column[("table 5 (FID)", dataset)]
        for k, model in enumerate(paper.MODELS):
            expected = "–" if numbers[model] is None else str(numbers[model])
            assert row[3 + k] == f"– / {expected}"
    # ours beside the paper's with both ranks: the same order as the paper's clean column
    clean_row = by_column[("table 3 (MNIST)", "clean")]
    assert clean_row[3] == "70 / 80 (#5 / #5)"  # equal seeds: no spread to show
    assert clean_row[7] == "92 / 93 (#1 / #1)"
    assert clean_row[8].startswith("ρ = +0.")  # the paper ties three models at 93
    assert (tmp_path / "figures" / "paper-vs-ours.png").stat().st_size > 5000
