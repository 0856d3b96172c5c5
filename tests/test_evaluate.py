"""`vimae evaluate` end to end on a short real run, and the command's reporting rules."""

import argparse
import importlib
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import SHARED_DATASETS as SHARED
from conftest import requires_shared_data

from vimae.cli import main
from vimae.data import ImageData
from vimae.errors import VimaeError
from vimae.metrics import METRICS, MetricContext, MetricOptions
from vimae.models.prior import build_prior

# The command `vimae evaluate` and the measuring behind it (`vimae.evaluate` is the Python API's
# function).
evaluate = importlib.import_module("vimae.commands.evaluate")
evaluation = importlib.import_module("vimae.runs.evaluation")

needs_mnist = requires_shared_data("mnist")  # the real MNIST training and test sets

# Small but complete: every metric runs, each on a few hundred images.
FAST = [
    "--test-size", "400",
    "--rate-copies", "8",
    "--rate-images", "200",
    "--parzen-samples", "500",
    "--parzen-valid", "200",
    "--fid-samples", "400",
    "--fid-classifier-steps", "30",
    "--n-labels", "100",
]  # fmt: skip


def _evaluate(args: list[str]) -> int:
    parser = argparse.ArgumentParser()
    evaluate.add_arguments(parser)
    return evaluate.run(parser.parse_args(args))


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory) -> Path:
    """A width-1/8 dcgan28 VIMAE-l trained for a few steps on real MNIST."""
    run = tmp_path_factory.mktemp("run")
    code = main(
        [
            "train", "--model", "vimae-l", "--dataset", "mnist", "--data-dir", str(SHARED),
            "--arch", "dcgan28", "--width", "0.125", "--latent-dim", "8", "--epochs", "1",
            "--train-size", "300", "--no-progress", "--out", str(run),
        ]
    )  # fmt: skip
    assert code == 0
    return run


@needs_mnist
def test_evaluate_produces_every_metric_on_a_real_run(mnist_run, tmp_path, capsys) -> None:
    assert _evaluate([str(mnist_run), "--cache-dir", str(tmp_path), *FAST]) == 0
    report = json.loads((mnist_run / "metrics.json").read_text())
    assert report["dataset"] == "mnist" and report["test_images"] == 400
    # What it saw: a stratified 300 of the 60k training images, 400 of the 10k test images.
    seen = json.loads((mnist_run / "data.json").read_text())["train"]
    assert (seen["images"], seen["classes"]) == (300, 10)
    # MNIST's classes hold 9.0% to 11.2% of the images: 27.1 to 33.7 of 300, within one
    assert 27 <= seen["smallest_class"] <= seen["largest_class"] <= 34
    tested = report["test_data"]
    assert (tested["images"], tested["classes"], sum(tested["class_counts"].values())) == (
        400,
        10,
        400,
    )
    assert 35 <= tested["smallest_class"] <= tested["largest_class"] <= 46  # 35.7 to 45.4
    metrics = report["metrics"]
    for name in evaluation.DEFAULT_METRICS:
        assert metrics[name]["status"] == "ok", (name, metrics[name])
        assert metrics[name]["seconds"] >= 0
    for key, name in [
        ("reconstruction", "reconstruction"),
        ("rate", "rate"),
        ("mmd", "mmd"),
        ("entropy_q", "entropy"),
        ("kl_q_p", "kl"),
        ("parzen_nll", "parzen"),
        ("fid", "fid"),
    ]:
        assert math.isfinite(metrics[name][key]), (name, key)
    # VIMAE-l: logistic prior, so the rate is Monte Carlo over the fitted Gaussian posterior.
    assert metrics["rate"]["rate_method"].startswith("Monte Carlo")
    assert metrics["entropy"]["entropy_prior"] == pytest.approx(
        build_prior("logistic", 8).entropy()
    )
    semi = metrics["semi-supervised"]["semi_supervised"]
    assert list(semi) == ["clean", "gauss:0.2", "gauss:0.3", "gauss:0.4", "mask:0.2", "mask:0.5"]
    for acc in semi.values():
        assert len(acc["svm"]["runs"]) == 5 and 0 <= acc["label_spreading"]["mean"] <= 100
    printed = capsys.readouterr().out
    for name in evaluation.DEFAULT_METRICS:
        assert name in printed
    assert "label_spreading" in printed and "total" in printed


@needs_mnist
def test_a_metric_that_cannot_be_computed_says_why(mnist_run, tmp_path, capsys) -> None:
    out = tmp_path / "m.json"
    missing = tmp_path / "no-weights.pt"
    args = [str(mnist_run), "--metrics", "fid", "--fid-features", "inception", "--out", str(out)]
    assert _evaluate([*args, "--inception-weights", str(missing), *FAST]) == 1  # nothing computed
    fid = json.loads(out.read_text())["metrics"]["fid"]
    assert fid["status"] == "not computed" and "Inception-v3 weights file" in fid["reason"]
    assert f"NOT COMPUTED: the Inception-v3 weights file {missing} does not exist" in (
        capsys.readouterr().out
    )


def test_evaluation_never_imports_training() -> None:
    code = "import sys, vimae.runs.evaluation; sys.exit('vimae.runs.fit' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_unknown_metric_is_a_user_error(tmp_path) -> None:
    with pytest.raises(VimaeError, match="unknown metric 'fidd'; choose one of"):
        evaluation.evaluate_run(tmp_path, metrics=["fidd"])


class _GaussianStandIn:
    """A model whose posterior is a known Gaussian: the rate must be its mean analytic KL."""

    def __init__(self, mu: torch.Tensor, logvar: torch.Tensor) -> None:
        self.mu, self.logvar = mu, logvar
        self.prior = build_prior("normal", mu.shape[1])

    def posterior(self, x: torch.Tensor, n_copies: int = 32, generator=None) -> tuple:
        i = x[:, 0, 0, 0].long()  # each image carries its row index
        return self.mu[i], self.logvar[i]


def test_a_collapsed_gaussian_encoder_measures_its_q_as_the_prior(digits_train) -> None:
    """q(z|x) = N(0, I) for every x: the aggregate posterior is the prior, so MMD, entropy gap and
    KL on drawn codes are near 0, while the posterior means (all 0) are far from the prior."""
    from vimae.config import ModelConfig
    from vimae.models import build_model, resolve

    config = ModelConfig(name="beta-vae-h", arch="mlp", latent_dim=4, width=0.25)
    model = build_model(resolve(config, "digits", (1, 8, 8))).eval()
    last = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Linear)][-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)  # mu = 0, log sigma^2 = 0
    ctx = MetricContext(model, digits_train, "digits")
    mmd = METRICS["mmd"](ctx)
    assert abs(mmd["mmd"]) < 0.01 and mmd["mmd_means"] > 0.3
    entropy = METRICS["entropy"](ctx)
    assert abs(entropy["entropy_gap"]) < 3 * entropy["entropy_prior_knn_std"] + 0.05
    assert entropy["entropy_q_means"] < -20  # identical means: the old artefact, named as such
    assert abs(METRICS["kl"](ctx)["kl_q_p"]) < 0.1


def test_rate_metric_of_a_gaussian_encoder_is_the_mean_analytic_kl() -> None:
    n, d = 300, 4
    gen = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(n, d, generator=gen), torch.randn(n, d, generator=gen) - 1
    images = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1)
    ctx = MetricContext(
        _GaussianStandIn(mu, logvar),
        ImageData("ids", images),
        "ids",
        options=MetricOptions(batch_size=64),
    )
    expected = (0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)).mean().item()
    out = METRICS["rate"](ctx)
    assert out["rate_method"] == "closed form" and out["rate_images"] == n
    assert out["rate"] == pytest.approx(expected, rel=1e-6)


def test_flags_override_only_the_given_options() -> None:
    parser = argparse.ArgumentParser()
    evaluate.add_arguments(parser)
    args = parser.parse_args(["run", "--knn-k", "3", "--corruptions", "clean,mask:0.5"])
    options = evaluate.options_from_args(args)
    assert options.knn_k == 3 and options.corruptions == ("clean", "mask:0.5")
    assert options.n_repeats == MetricOptions().n_repeats


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--corruptions", "clean,blur:1"], "unknown corruption 'blur'"),
        (["--fid-features", "vgg"], "--fid-features must be one of auto, inception, classifier"),
        (["--rate-copies", "1"], "--rate-copies must be at least 2"),
        (["--knn-k", "0"], "--knn-k must be at least 1"),
        (["--mmd-kernel", "laplace"], "unknown kernel 'laplace'"),
    ],
)
def test_bad_options_fail_before_any_work(tmp_path, flags, message) -> None:
    parser = argparse.ArgumentParser()
    evaluate.add_arguments(parser)
    options = evaluate.options_from_args(parser.parse_args([str(tmp_path), *flags]))
    with pytest.raises(VimaeError, match=message):
        evaluation.evaluate_run(tmp_path, options=options)  # tmp_path is not even a run folder


class MeanImage(torch.nn.Module):
    """A model that learned nothing: it reconstructs every image as the data's mean image."""

    def __init__(self, mean: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.mean.expand_as(x)


def test_a_model_that_returns_the_mean_image_is_named_collapsed(digits_train):
    from vimae.metrics.reconstruction import learned_nothing, mean_image_error
    from vimae.paper.report.records import collapsed
    from vimae.paper.verdict import Estimate

    # the mean image's error is the total pixel variance: two one-pixel images 0 and 1 -> 0.25
    assert mean_image_error(torch.tensor([0.0, 1.0]).reshape(2, 1, 1, 1)) == 0.25
    test = digits_train.subset(300)
    ctx = MetricContext(MeanImage(test.images.mean(0, keepdim=True)), test, "digits")
    out = METRICS["reconstruction"](ctx)
    assert out["reconstruction"] == pytest.approx(out["reconstruction_mean_image"], rel=1e-9)
    assert learned_nothing(out["reconstruction"], out["reconstruction_mean_image"])
    recon = {
        "reconstruction": Estimate(out["reconstruction"]),
        "reconstruction_mean_image": Estimate(out["reconstruction_mean_image"]),
    }
    values = {
        "beta-vae-h": {**recon, "rate": Estimate(4.0)},  # collapsed by its reconstruction
        "vae": {"rate": Estimate(0.3)},  # collapsed by its rate
        "vimae-l": {
            **recon,
            "reconstruction": Estimate(0.5 * out["reconstruction"]),
            "rate": Estimate(30.0),
        },  # learned: half the mean image's error
    }
    gone = collapsed(values)
    assert set(gone) == {"beta-vae-h", "vae"}
    assert "mean image" in gone["beta-vae-h"] and "rate 0.3" in gone["vae"]
