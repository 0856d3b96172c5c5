"""`vimae reproduce` end to end on tiny settings: every experiment, the report, and the caches."""

import json
import re
from pathlib import Path

import pytest
import torch

from vimae.cli import main
from vimae.errors import VimaeError
from vimae.paper import experiments, reproduce
from vimae.paper.experiments import CPU, Setting
from vimae.runs.checkpoint import CHECKPOINT_FILE

TINY_EVAL = (
    ("rate_images", 40),
    ("rate_copies", 4),
    ("n_repeats", 2),
    ("n_labels", 60),
    ("parzen_samples", 200),
    ("parzen_valid", 60),
    ("fid_samples", 100),
    ("fid_classifier_steps", 5),
    ("fid_features", "classifier"),
    ("batch_size", 200),
)
FIVE = ("clean", "gauss:0.2", "gauss:0.4", "mask:0.2", "mask:0.5")


def _tiny(key: str, arch: str, latent_dim: int, image_size: int | None) -> Setting:
    """One epoch of two batches on sklearn's digits (always there), tiny networks."""
    return Setting(
        key, "digits", arch, 0.0625 if arch != "mlp" else 0.125, latent_dim, epochs=1,
        train_size=200, image_size=image_size, test_size=120,
        options=(*TINY_EVAL, ("corruptions", FIVE)), reduced="tiny test setting",
    )  # fmt: skip


@pytest.fixture()
def tiny_scale(monkeypatch):
    """The cpu scale shrunk to seconds; CelebA keeps its real (missing here) setting."""
    tiny = {
        "mnist-mlp": _tiny("mnist-mlp", "mlp", 2, None),
        "mnist-dcgan28": _tiny("mnist-dcgan28", "dcgan28", 4, 28),
        "omniglot-dcgan28": _tiny("omniglot-dcgan28", "dcgan28", 3, 28),
        "cifar10-dcgan64": _tiny("cifar10-dcgan64", "mlp", 4, None),
    }
    for key, setting in tiny.items():
        monkeypatch.setitem(CPU, key, setting)
    return tiny


def _checkpoints(out: Path) -> dict[str, float]:
    return {p.parent.name: p.stat().st_mtime_ns for p in out.glob(f"runs/*/{CHECKPOINT_FILE}")}


def test_reproduce_all_tiny_then_reuse(tiny_scale, tmp_path, capsys):
    out = tmp_path / "out"
    ctx = reproduce.reproduce(
        "all", out, "cpu", data_dir=tmp_path / "no-data", log=lambda s: None, seeds=2
    )
    # fig1 (5) + three dcgan/mlp settings (15), two seeds each: 40 runs, each trained once
    # although recon and tables 1-5 share them; CelebA and the MNIST variants of "noise" and
    # "calibration" and "schedule" have no data here and are reported as such.
    assert len(ctx.trained) == 40
    assert len(set(ctx.trained)) == 40
    md = (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    for text in ("Table 3", "Table 4", "Table 1", "Table 5", "Figure 1", "Claims of the paper"):
        assert text in md
    assert "celeba" in md and "img_align_celeba" in md  # names the files that are missing
    assert "93 " in md or "/ 93" in md  # the paper's numbers are printed
    assert "vimae train --model vae --arch" in md  # the command behind each number
    assert "--dataset digits" in md
    for figure in (
        "fig1.png",
        "recon-mnist-dcgan28.png",
        "samples-omniglot-dcgan28.png",
        "accuracy-table3.png",
        "accuracy-table2.png",
        "rate-distortion.png",
    ):
        assert (out / "figures" / figure).stat().st_size > 1000
        assert f"figures/{figure}" in page
    # every claim row (from, origin, claim, rule, ours, evidence, paper's, evidence) has an
    # origin and one verdict on ours and one on the paper's; the counts above the table, the
    # paper's claims and the project's questions apart, add up to its rows of each origin
    claims = md.split("## Claims of the paper", 1)[1].split("\n## ", 1)[0]
    rows = [line.split(" | ") for line in claims.splitlines() if line.startswith("| ")][1:]
    verdicts = ("HOLDS", "DOES NOT HOLD", "INCONCLUSIVE", "NOT MEASURED")
    assert rows and all(r[1] in ("paper", "project") for r in rows)
    assert all(r[4].startswith(verdicts) for r in rows)  # ours: never "cannot decide"
    assert all(r[6].startswith((*verdicts, "CANNOT DECIDE")) for r in rows)
    ours = r"Our numbers: (\d+) holds; (\d+) does not hold; (\d+) inconclusive; (\d+) not measured"
    leads = {
        "paper": r"The paper's claims \((\d+)\)\. ",
        "project": r"The project's own questions \((\d+):[^)]*\), counted apart\. ",
    }
    decided = 0
    for origin, lead in leads.items():
        counts = re.search(lead + ours, claims)
        n = sum(r[1] == origin for r in rows)
        assert counts and int(counts.group(1)) == n and sum(map(int, counts.groups()[1:])) == n
        decided += int(counts.group(2)) + int(counts.group(3))
    assert decided > 0  # some claim was decided
    # the paper's table 4 is at chance: where its numbers bear on a claim, they cannot decide it
    table4 = [r for r in rows if r[0] == "| table 4 (Omniglot)"]
    assert table4 and all(r[6] in ("CANNOT DECIDE", "NOT MEASURED") for r in table4)
    assert any(r[6] == "CANNOT DECIDE" for r in table4)
    assert "NOT MEASURED" in md  # CelebA's FID
    # the commands use the folders as given (absolute here), so they can be typed again
    assert f"--data-dir {tmp_path / 'no-data'} --out {out}" in md
    assert "classes of" in md  # each setting says what it trained and was measured on

    before = _checkpoints(out)
    again = reproduce.reproduce(
        "all", out, "cpu", data_dir=tmp_path / "no-data", log=lambda s: None, seeds=2
    )
    assert again.trained == [] and again.evaluated == []
    assert _checkpoints(out) == before


def test_reproduce_continues_a_partial_run_and_runs_from_the_cli(
    tiny_scale, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "out"
    longer = Setting(**{**tiny_scale["mnist-mlp"].__dict__, "epochs": 2})
    monkeypatch.setitem(CPU, "mnist-mlp", longer)
    calls, interrupted = [], []
    real_fit = reproduce.fit

    def counting_fit(config, run_dir, resume, data):
        calls.append((Path(run_dir).name, resume, experiments.epochs_done(Path(run_dir))))
        if not interrupted:  # the first run is "interrupted" after one of its two epochs
            interrupted.append(run_dir)
            config.train.epochs = 1
        return real_fit(config, run_dir, resume=resume, data=data)

    monkeypatch.setattr(reproduce, "fit", counting_fit)
    fig1 = ["reproduce", "fig1", "--out", str(out), "--data-dir", str(tmp_path), "--seeds", "1"]
    assert main(fig1) == 0
    first = calls[0][0]
    assert experiments.epochs_done(out / "runs" / first) == 1
    calls.clear()
    assert main(fig1) == 0
    assert calls == [(first, True, 1)]  # only the partial run, continued from its checkpoint
    assert experiments.epochs_done(out / "runs" / first) == 2
    # its measurements were redone on the new weights
    assert len(list((out / "runs" / first / "evaluation").glob("mmd-*.json"))) == 1
    assert "evaluating " + first in capsys.readouterr().out


def test_help_prints_the_time_estimates(capsys):
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    text = capsys.readouterr().out
    assert "estimated cpu-scale wall time" in text
    for name in experiments.ALL:
        assert f"  {name} " in text


def test_setting_keys_and_shared_runs():
    """Experiments that share a setting share its runs: same config, same folder name."""
    recon = experiments.EXPERIMENTS["recon"].settings("cpu")
    table3 = experiments.EXPERIMENTS["table3"].settings("cpu")
    assert table3[0] in recon
    a = experiments.run_name(table3[0].config("vae", "x"))
    b = experiments.run_name(recon[0].config("vae", "elsewhere"))
    assert a == b  # the data folder is not part of a run's identity
    cifar = experiments.EXPERIMENTS["table2"].settings("cpu")[0]
    assert cifar.image_size == 64 and cifar.arch == "dcgan64"
    assert all(s.width == 1.0 for s in experiments.SETTINGS["paper"].values())


def test_runs_in_parallel_processes_equal_the_runs_made_one_by_one(tiny_scale, tmp_path):
    """--jobs 2 trains and measures in two spawned processes (one thread each, as the tests'
    one process): the same checkpoints and the same measurements as --jobs 1."""
    from vimae.runs.checkpoint import read_checkpoint

    outs = {}
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        ctx = reproduce.reproduce(
            "table3", out, "cpu", data_dir=tmp_path / "no-data", log=lambda s: None, seeds=1,
            jobs=jobs,
        )  # fmt: skip
        assert len(ctx.trained) == 5 and len(ctx.evaluated) == 5
        outs[jobs] = out
    for checkpoint in sorted(outs[1].glob(f"runs/*/{CHECKPOINT_FILE}")):
        twin = outs[2] / checkpoint.relative_to(outs[1])
        a, b = read_checkpoint(checkpoint)[0], read_checkpoint(twin)[0]
        assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("model."))
        # (the cache key of a measurement differs: it names each output's own cache folder)
        measured = [
            {json.loads(f.read_text())["metric"]: json.loads(f.read_text()) for f in files}
            for files in (
                (checkpoint.parent / "evaluation").glob("*.json"),
                (twin.parent / "evaluation").glob("*.json"),
            )
        ]
        assert measured[0].keys() == measured[1].keys() and len(measured[0]) == 5
        for metric, record in measured[0].items():
            other = measured[1][metric]
            for key in set(record) - {"seconds", "command"}:
                assert record[key] == other[key], (metric, key)
    with pytest.raises(VimaeError, match="--jobs must be between 1 and 64"):
        reproduce.reproduce("table3", tmp_path / "x", "cpu", log=lambda s: None, jobs=0)
