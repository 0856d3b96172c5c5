"""The paper scale starts: every setting of `experiments.SETTINGS["paper"]` and every model its
experiments train, built as training builds it, takes one real training step, and each metric of
its experiments runs on a few images; `--dry-run` lists the runs without training any.

The networks are the paper's (width 1.0), so the data is cut to a few images instead: a seeded
stratified draw from ../shared/datasets where it has the dataset (MNIST, CIFAR-10), random images
of the setting's shape where it does not (full Omniglot, CelebA), with labels where the real data
has them. A GPU run then only changes the sizes, not the code paths.
"""

import dataclasses
import json
import math
import re

import pytest
import torch
from conftest import SHARED_DATA_REQUIRED, SHARED_DATASETS

from vimae.cli import main
from vimae.config import RunConfig
from vimae.data import ImageData, PoolSplit
from vimae.errors import VimaeError
from vimae.metrics import METRICS, MetricContext, MetricUnavailableError, validate_options
from vimae.models import Autoencoder, build_model, resolve
from vimae.paper import estimate, experiments, reproduce
from vimae.runs.evaluation import load_test_split
from vimae.runs.fit import build_optimizer, compute_gradients, load_training_data, prepare

PAPER = experiments.SETTINGS["paper"]
# Images of the one training step (BatchNorm needs a few) and test images the metrics see (the
# Omniglot protocol needs 5 characters of 2 images). The conftest's one thread is kept: it is as
# fast as two on a busy 2-core machine.
TRAIN = 8
TEST = 10
# Metric options cut to TEST images: a few samples, one repeat, a one-step FID classifier on the
# training slice (its features, since Inception-v3 weights are not here).
TINY = {
    "batch_size": TRAIN,
    "rate_images": TEST,
    "rate_copies": 2,
    "rate_samples": 2,
    "knn_k": 2,
    "knn_repeats": 1,
    "n_labels": TRAIN,
    "n_repeats": 1,
    "parzen_samples": TEST,
    "parzen_valid": TRAIN,
    "fid_samples": TEST,
    "fid_classifier_steps": 1,
    "fid_features": "classifier",
}
UNLABELLED = ("celeba",)  # datasets without labels, as their random stand-ins are
IN_SHARED = ("mnist", "cifar10")  # the paper's datasets that ../shared/datasets holds


def _uses(key: str) -> tuple[list[str], list[str]]:
    """The models and metrics of every experiment that runs setting `key`."""
    every = [experiments.EXPERIMENTS[name] for name in (*experiments.ALL, *experiments.QUESTIONS)]
    using = [e for e in every if key in e.keys]
    models = dict.fromkeys(m for e in using for m in e.models)
    metrics = dict.fromkeys(m for e in using for m in e.metrics)
    return list(models), list(metrics)


def _expected_shape(setting: experiments.Setting) -> tuple[int, int, int]:
    c, h, w = estimate.IMAGE_SHAPES[setting.dataset]
    side = setting.image_size
    return (c, h, w) if side is None else (c, side, side)


def _slices(setting: experiments.Setting) -> tuple[ImageData, ImageData, str]:
    """(training, test) images of `setting`, drawn and resized as training and evaluation draw
    them, and where they come from."""
    config = setting.config("vae", str(SHARED_DATASETS))
    data = dataclasses.replace(config.data, train_size=TEST)
    try:
        train = load_training_data(dataclasses.replace(config, data=data))
        test = load_test_split(
            setting.dataset,
            str(SHARED_DATASETS),
            train.image_shape,
            TEST,
            setting.image_size,
            PoolSplit.of(config.data),
        )
        return train, test, "real"
    except VimaeError:  # not in ../shared/datasets
        gen = torch.Generator().manual_seed(0)
        shape = _expected_shape(setting)
        labels = None if setting.dataset in UNLABELLED else torch.arange(TEST) % 5
        name = f"random stand-in for {setting.dataset}"
        train = ImageData(name, torch.rand(TEST, *shape, generator=gen), labels)
        test = ImageData(name, torch.rand(TEST, *shape, generator=gen), labels)
        return train, test, "random"


@pytest.fixture(scope="module")
def cache() -> dict:
    """Data slices per (dataset, image size) and models per resolved config, shared by the
    settings: mnist-dcgan28 and omniglot-dcgan28 (and cifar10 / celeba) resolve to the same
    models, so each is built and stepped once."""
    return {}


def _slices_cached(cache: dict, setting: experiments.Setting) -> tuple[ImageData, ImageData, str]:
    key = ("data", setting.dataset, setting.image_size)
    if key not in cache:
        cache[key] = _slices(setting)
    return cache[key]


def _one_step(config: RunConfig, train: ImageData) -> Autoencoder:
    """A model built as `fit` builds it, after one training step on `train`'s first images."""
    torch.manual_seed(config.train.seed)
    model = build_model(config.model)
    model.prior_generator = torch.Generator().manual_seed(config.train.seed + 1)
    optimizer = build_optimizer(model, config.train)
    model.train()
    terms = compute_gradients(model, optimizer, train.images[:TRAIN], config.train.precision)
    values = {k: v.item() for k, v in terms.items()}
    assert all(math.isfinite(v) for v in values.values()), values
    assert {"loss", "recon", "mmd"} <= set(values)
    last = list(model.parameters())[-1]  # the decoder's output layer
    before = last.detach().clone()
    optimizer.step()
    assert not torch.equal(before, last)
    return model.eval()


def _finite(values: dict) -> bool:
    numbers = [v for v in values.values() if isinstance(v, float)]
    return all(math.isfinite(v) for v in numbers)


# The likelihood calibration's Gaussian weights share one code path: a step is taken at both ends
# of the grid (0.05; 20, the main setting's) and at vimae's default 1, while the weights between
# only build their configs (below): a width-1 step at w = 2, 5 or 10 exercises nothing those do
# not, and cost the suite about 9 s each.
BETWEEN = {
    experiments.calibration_key("gaussian", w)
    for w in experiments.RECON_WEIGHTS
    if w not in (0.05, 1.0, 20.0)
}


@pytest.mark.parametrize("key", [k for k in PAPER if k not in BETWEEN])
def test_paper_setting_trains_a_step_and_measures(key, cache, tmp_path):
    setting = PAPER[key]
    assert setting.width == 1.0
    models, metrics = _uses(key)
    assert models, f"no experiment uses the paper setting {key}"
    train, test, source = _slices_cached(cache, setting)
    assert train.image_shape == test.image_shape == _expected_shape(setting), source
    if (SHARED_DATASETS.is_dir() or SHARED_DATA_REQUIRED) and setting.dataset in IN_SHARED:
        assert source == "real", f"{setting.dataset} did not load from {SHARED_DATASETS}"
    options = dataclasses.replace(setting.metric_options(tmp_path / "cache", None), **TINY)
    validate_options(options)
    for model_name in models:
        config = prepare(setting.config(model_name, str(SHARED_DATASETS)), train)
        identity = ("model", json.dumps(dataclasses.asdict(config.model), sort_keys=True))
        if identity not in cache:
            cache[identity] = _one_step(config, train)
        model = cache[identity]
        # A run that reproduce shares with another setting (mnist-noise-0.005's VIMAE-l is
        # mnist-dcgan28's) is measured once there, with the same data and options.
        measured = ("measured", experiments.run_name(config), setting.options, setting.test_size)
        if measured in cache:
            continue
        cache[measured] = True
        ctx = MetricContext(
            model,
            test,
            setting.dataset,
            SHARED_DATASETS,
            model.image_shape[1],
            options,
            PoolSplit.of(config.data),
            # The training split as the slice: the real one would be loaded (and resized) whole.
            train_split=train,
        )
        for name in metrics:
            if name == "fid" and train.labels is None:
                # CelebA has no labels for the domain classifier: its FID needs Inception-v3
                # weights (--inception-weights), which are not here.
                with pytest.raises(MetricUnavailableError, match="no labels"):
                    METRICS[name](ctx)
                continue
            values = METRICS[name](ctx)
            assert values and _finite(values), (key, model_name, name, source, values)


def test_dry_run_lists_every_run_and_trains_nothing(tmp_path, monkeypatch, capsys):
    """Every run of every experiment at the paper scale is one line with its estimate, then the
    totals; no training, no folder. The step timing is stubbed (a paper-width step takes tens of
    seconds on a CPU); the next test times a real one."""
    timed = []

    def fake_timing(config, device, batch_size=100):
        timed.append((config.arch, config.width, config.image_shape, config.latent_dim))
        return 0.5, "stub"

    def no_training(*args, **kwargs):
        raise AssertionError("a dry run trained")

    monkeypatch.setattr(estimate, "time_training_step", fake_timing)
    monkeypatch.setattr(reproduce, "fit", no_training)
    out = tmp_path / "out"
    args = ["reproduce", "all", "--scale", "paper", "--dry-run", "--seeds", "2", "--out", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert not out.exists()

    expected = 0
    names = set()
    for experiment in (experiments.EXPERIMENTS[n] for n in experiments.ALL):
        for setting in experiment.settings("paper"):
            expected += len(experiment.models) * 2
            for model in experiment.models:
                names.update(experiments.run_name(setting.config(model, None, s)) for s in (0, 1))
    rows = [line for line in text.splitlines() if line.split(" ")[0] in experiments.ALL]
    assert len(rows) == expected
    assert all("unknown" not in row for row in rows)  # every run has both estimates
    # one timing per distinct network: (mlp, dcgan28, dcgan64) x (gaussian, deterministic)
    assert len(timed) == 6 and len(set(timed)) == 3
    cifar = next(r for r in rows if "cifar10-dcgan64" in r and " vae " in r)
    assert "50,000" in cifar and f"{50_000 // 100 * 60:,}" in cifar  # train images, steps
    mnist = next(r for r in rows if r.startswith("table3 ") and " vae " in r)
    assert "50,000" in mnist and f"{500 * 80:,}" in mnist  # capped by train_size
    assert sum("counted once" in r for r in rows) == expected - len(names)
    total = next(line for line in text.splitlines() if line.startswith("total: "))
    assert f"{expected} runs listed, {len(names)} distinct" in total
    assert "evaluation per run:" in text

    # the same through Python, where the returned totals are the sum of the distinct runs
    summary = estimate.dry_run("fig1", "paper", seeds=1, log=lambda s: None)
    steps = 50_000 // 100 * 80
    assert summary["runs"] == summary["distinct"] == 5 and summary["unknown"] == 0
    assert summary["train_seconds"] == pytest.approx(5 * steps * 0.5)
    assert summary["eval_seconds"] > 0


def test_dry_run_counts_the_epochs_left_of_a_run_in_out(tmp_path, monkeypatch):
    monkeypatch.setattr(estimate, "time_training_step", lambda *a, **k: (1.0, "stub"))
    monkeypatch.setattr(estimate, "epochs_done", lambda run_dir: 20)  # of 80
    summary = estimate.dry_run("fig1", "paper", seeds=1, out=tmp_path, log=lambda s: None)
    assert summary["train_seconds"] == pytest.approx(5 * 500 * 60)


def test_timing_runs_the_real_training_step():
    setting = experiments.SETTINGS["cpu"]["mnist-mlp"]
    config = setting.config("vimae-l", None)
    resolved = resolve(config.model, setting.dataset, (1, 28, 28))
    seconds, how = estimate.time_training_step(resolved, torch.device("cpu"), batch_size=10)
    assert 0 < seconds < 5 and "steps" in how


def test_help_estimates_count_every_seed_and_shared_runs_once():
    text = estimate.estimate_table(seeds=3)
    assert "3 seeds per model" in text
    listed, distinct = 0, set()
    for name in (*experiments.ALL, *experiments.QUESTIONS):
        experiment = experiments.EXPERIMENTS[name]
        runs = estimate.experiment_runs(experiment, "cpu", 3)
        assert len(runs) == len(experiment.settings("cpu")) * len(experiment.models) * 3
        assert re.search(rf"^  {re.escape(name)} +~ *\d+ min +{len(runs)} runs ", text, re.M)
        if name not in experiments.ALL:
            continue  # the open questions run only by name, not in `all`
        listed += len(runs)
        distinct.update(experiments.run_name(s.config(m, None, seed)) for s, m, seed in runs)
    assert re.search(rf"^  all +~ *\d+ min +{len(distinct)} runs ", text, re.M)
    assert len(distinct) < listed  # e.g. recon, table3 and noise share mnist-dcgan28's
    dcgan28 = experiments.SETTINGS["cpu"]["mnist-dcgan28"]
    # 10,000 images less the 10% validation split, 12 epochs
    per_step = estimate.CPU_SECONDS_PER_STEP[("dcgan28", 0.125)]
    per_run = 9_000 // 100 * 12 * per_step + estimate.CPU_EVAL_SECONDS
    assert estimate.estimate_seconds(dcgan28) == pytest.approx(per_run)


@pytest.mark.parametrize("key", sorted(BETWEEN))
def test_calibration_weights_between_the_ends_build_their_configs(key):
    """The weights whose step the test above leaves out: each model's config carries the weight
    its setting names, and every other field equals the stepped w = 20 setting's."""
    weight = float(key.removeprefix("mnist-dcgan28-recon"))
    stepped = PAPER[experiments.calibration_key("gaussian", 20.0)]
    models, _ = _uses(key)
    assert models
    for model_name in models:
        config = PAPER[key].config(model_name, str(SHARED_DATASETS))
        assert config.model.recon_weight == weight
        reference = stepped.config(model_name, str(SHARED_DATASETS))
        assert dataclasses.replace(config.model, recon_weight=20.0) == reference.model
        assert config.train == reference.train


def test_the_paper_scale_starts_from_the_wae_codes_weights_and_the_cpu_scale_does_not():
    """Every paper setting, its likelihood variants included, trains from --init wae (the WAE
    code the paper trained with); the cpu scale keeps PyTorch's defaults, so the fingerprints of
    the committed cpu runs stay what they were."""
    for key, setting in PAPER.items():
        assert setting.config("vae", None).model.init == "wae", key
    for key, setting in experiments.SETTINGS["cpu"].items():
        config = setting.config("vae", None)
        assert config.model.init == "pytorch", key
        assert '"init"' not in config.fingerprint()
