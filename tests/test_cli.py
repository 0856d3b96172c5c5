"""End to end through the command line, on real (scikit-learn digits) data."""

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch
from conftest import DIGITS_MLP, fails_cleanly

import vimae
from vimae.cli import build_parser, main
from vimae.commands.train import train_config
from vimae.config import PRECISIONS, SETTING_FIELDS, TRAIN_FLAGS, TRAIN_PRESETS, RunConfig
from vimae.data import DATASETS
from vimae.models import PRESETS
from vimae.models.divergence import KERNELS
from vimae.models.network import NETWORKS
from vimae.models.prior import PRIORS


def test_train_then_resume_through_the_cli(tmp_path, capsys):
    args = ["train", "--model", "vimae-n", *DIGITS_MLP, "--latent-dim", "2", "--out", str(tmp_path)]
    assert main([*args, "--epochs", "1"]) == 0
    assert (tmp_path / "checkpoint.safetensors").exists()
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model"]["name"] == "vimae-n" and config["model"]["lam"] == 10.0
    assert main([*args, "--epochs", "2", "--resume"]) == 0
    epochs = [
        json.loads(s)
        for s in (tmp_path / "metrics.jsonl").read_text().splitlines()
        if '"epoch"' in s and '"kind": "epoch"' in s
    ]
    assert len(epochs) == 2
    # the resumed run ends where one trained for 2 epochs straight through ends
    straight = tmp_path / "straight"
    assert main([*args[:-1], str(straight), "--epochs", "2"]) == 0
    from vimae.runs.checkpoint import read_checkpoint

    a = read_checkpoint(tmp_path / "checkpoint.safetensors")[0]
    b = read_checkpoint(straight / "checkpoint.safetensors")[0]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "wae"], "unknown model 'wae'; choose one of: beta-vae-a, beta-vae-h"),
        (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
        (["--arch", "resnet"], "unknown network 'resnet'; choose one of: dcgan28, dcgan64, mlp."),
        (["--prior", "cauchy"], "unknown prior 'cauchy'"),
        (["--lam", "-1"], "--lam (model.lam) must be positive"),
        (["--latent-dim", "0"], "--latent-dim (model.latent_dim) must be positive"),
        (["--model", "rate-target"], "needs a target rate R0"),
        (
            ["--arch", "dcgan28"],
            "dcgan28 needs 28x28 images but the data is 8x8; pass --image-size 28",
        ),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(tmp_path, capsys, args, message):
    base = {"--model": "vae", "--dataset": "digits", "--arch": "mlp", "--epochs": "1"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    argv = ["train", *[x for kv in base.items() for x in kv], "--out", str(tmp_path / "r")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("vimae: error: ") and err.count("\n") == 1


def test_console_script_prints_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "vimae.cli", "train", "--model", "nope", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "unknown model 'nope'" in result.stderr


def test_demo_draws_the_figure_and_table(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "figure1-digits.png").stat().st_size > 10_000
    for name in ("vae", "beta-vae-h", "beta-vae-a", "vimae-n", "vimae-l"):
        assert f"| {name} |" in out


# Discoverability: --version, a help that names every default, choice and unit, a valid example
# config and presets.

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = REPO / "docs" / "example-config.toml"


def test_version_is_the_installed_one(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert capsys.readouterr().out == f"vimae {version}\n"
    assert vimae.__version__ == version


def _option_help(text: str) -> dict[str, str]:
    """--flag -> its help, from argparse output printed unwrapped (COLUMNS large): on the flag's
    line, or on the next one when the flag and its metavar are long."""
    helps: dict[str, str] = {}
    flag = None
    for line in text.splitlines():
        head = re.match(r"  (--[a-z][a-z-]*)(?: \S+)?(?:\s{2,}(.*))?$", line)
        if head:
            flag = head.group(1)
            helps[flag] = head.group(2) or ""
        elif flag is not None and not helps[flag] and line.startswith(" " * 20):
            helps[flag] = line.strip()
    return helps


def test_train_help_names_every_default_choice_and_unit(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    helps = _option_help(text)
    registries = {
        "model": PRESETS.names(),
        "arch": NETWORKS.names(),
        "prior": PRIORS.names(),
        "kernel": KERNELS.names(),
        "dataset": DATASETS.names(),
        "precision": list(PRECISIONS),
    }
    defaults = RunConfig()
    described = {k for k, f in SETTING_FIELDS.items() if f.metadata["help"]}
    assert described == set(SETTING_FIELDS), "every setting declares what it sets"
    for flag, key in TRAIN_FLAGS.items():
        parts = helps["--" + flag.replace("_", "-")].split("; ")
        section, name = key.split(".")
        default = getattr(getattr(defaults, section), name)
        if default is not None:
            assert f"default: {default}" in parts, (flag, parts)
        elif name in ("lam", "beta", "alpha", "prior"):
            assert any(p.startswith("default: the paper's value for the dataset") for p in parts)
        else:
            assert any(p.startswith("default: ") for p in parts), (flag, parts)
        if flag in registries:
            assert f"choices: {', '.join(registries[flag])}" in parts, (flag, parts)
    units = {"rate-target": "nats", "image-size": "pixels", "train-size": "images"}
    for flag, unit in {**units, "epochs": "epochs", "checkpoint-every": "steps"}.items():
        assert f"unit: {unit}" in helps["--" + flag].split("; ")
    assert "quick = model.width 0.5 (mlp)" in helps["--preset"]
    assert "docs/example-config.toml" in helps["--config"]
    assert "the defaults, --preset, --config, the flags, --set" in " ".join(text.split())


def test_example_config_names_every_key_and_trains(tmp_path, capsys):
    text = EXAMPLE_CONFIG.read_text()
    for section, values in RunConfig().to_dict().items():
        for key in values:
            if key != "image_shape":  # filled from the data, never set by hand
                assert re.search(rf"^(# )?{key} = ", text, re.MULTILINE), f"{section}.{key}"
    run = tmp_path / "run"
    argv = ["train", "--config", str(EXAMPLE_CONFIG), *DIGITS_MLP, "--latent-dim", "2"]
    assert main([*argv, "--epochs", "1", "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["name"] == "vimae-l"  # from the file
    assert (config["data"]["dataset"], config["model"]["width"]) == ("digits", 0.25)  # flags win


def _train_config(*argv: str) -> RunConfig:
    """The config `vimae train ARGV` would run, without training."""
    return train_config(build_parser().parse_args(["train", *argv]))


def test_quick_preset_is_applied_beneath_the_file_and_the_flags(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", *DIGITS_MLP, "--latent-dim", "2", "--preset", "quick", "--out", str(run)]
    assert main(argv) == 0
    config = json.loads((run / "config.json").read_text())
    assert (config["model"]["width"], config["train"]["epochs"]) == (0.25, 5)  # the flag wins
    # 1,500 digits are 15 steps an epoch: at least 600 steps take 40 epochs, not 5
    assert len((run / "metrics.jsonl").read_text().split('"kind": "epoch"')) == 40 + 1
    explicit = _train_config("--preset", "quick", "--arch", "mlp", "--epochs", "2")
    assert (explicit.model.width, explicit.train.epochs) == (0.5, 2)
    assert _train_config("--preset", "quick", "--arch", "dcgan64").model.width == 0.0625
    assert _train_config("--preset", "quick").model.width == 0.5  # auto: 8x8 digits, the mlp
    from_file = _train_config("--preset", "quick", "--config", str(EXAMPLE_CONFIG))
    assert from_file.train.epochs == 10  # the file's value over the preset's
    fails_cleanly(
        capsys,
        ["train", *DIGITS_MLP, "--preset", "fast", "--out", str(tmp_path / "x")],
        "unknown preset 'fast'; choose one of: quick.",
    )


def test_presets_give_every_network_a_value():
    for name in TRAIN_PRESETS:
        for key, value in TRAIN_PRESETS[name].items():
            if isinstance(value, dict):
                assert set(value) == set(NETWORKS.names()), (name, key)
