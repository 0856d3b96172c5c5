"""What `vimae reproduce` will cost: the cpu-scale estimates of `--help` and the `--dry-run`
listing of every run with a time measured on the current device."""

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from vimae.config import ModelConfig, TrainConfig
from vimae.errors import VimaeError
from vimae.metrics import MetricOptions
from vimae.metrics.fid import sample_counts as fid_sample_counts
from vimae.metrics.parzen import sample_count as parzen_sample_count
from vimae.models import PRESETS, build_model, resolve
from vimae.paper.experiments import (
    ALL,
    COLOUR,
    EXPERIMENTS,
    QUESTIONS,
    SCALES,
    Experiment,
    Setting,
    epochs_done,
    run_name,
)
from vimae.runs.allocator import keep_freed_memory
from vimae.runs.device import resolve_device
from vimae.runs.fit import build_optimizer, compute_gradients

# Seconds per training step (batch 100) of each (arch, width) at the cpu scale on 2 cores, as the
# throughput of `--jobs 2` (two one-thread runs at a time, validation passes included);
# `vimae reproduce --help` turns them into wall-time estimates (`--dry-run` times the step on the
# machine it runs on instead). Measured 2026-12-06 on the 2-core AMD EPYC machine from the parts'
# own records (`python benchmarks/part_timings.py`, epochs after the first): dcgan28 at width
# 0.125 from the noise part (0.166 s a step in each of the two jobs; parts that shared the cores
# with benchmarks or tests ran slower, 0.21-0.26 s), the mlp from the fig1 part (0.0097 s),
# dcgan64 at width 0.0625 from the table2 part (25 runs, 15,750 steps, 0.313 s).
CPU_SECONDS_PER_STEP = {
    ("mlp", 1.0): 0.0049,
    ("dcgan28", 0.125): 0.083,
    ("dcgan64", 0.0625): 0.157,
}
# Evaluation wall time per run at the cpu scale (codes, rate with noisy copies, SVMs, Parzen),
# seconds: the table3 part of 2026-12-06 (25 runs, --jobs 2) recorded 217 s of measurements in
# its two one-thread jobs, 8.7 s a run in a job, so about 4.4 s of wall time a run; the rerun of
# 2026-11-25 (one job, 90 runs) spent about 4.5 s a run outside training.
CPU_EVAL_SECONDS = 4.5
# Inception-v3 FID features per second on 2 cores (two one-thread jobs; 8.2 in one two-thread
# process), measured 2026-12-06 on the AMD EPYC machine: table 5's colour datasets pay this for
# their generated samples and, once per evaluation seed, for their real images.
INCEPTION_IMAGES_PER_SECOND = 8.7
# The test images that evaluation time is measured on (the cpu scale's test_size).
CPU_EVAL_TEST_IMAGES = 2_000
# Training and test images per dataset (before `train_size` / `test_size`) and the shape of its
# images as loaded (before `image_size`), for the estimates.
TRAIN_IMAGES = {
    "mnist": 60_000,
    "mnist-t10k": 8_000,
    "omniglot": 77_120,
    "omniglot-small": 16_240,
    "cifar10": 50_000,
    "celeba": 182_599,
}
TEST_IMAGES = {
    "mnist": 10_000,
    "mnist-t10k": 2_000,
    "omniglot": 52_720,
    "omniglot-small": 3_120,
    "cifar10": 10_000,
    "celeba": 20_000,
}
IMAGE_SHAPES = {
    "mnist": (1, 28, 28),
    "mnist-t10k": (1, 28, 28),
    "omniglot": (1, 28, 28),
    "omniglot-small": (1, 28, 28),
    "cifar10": (3, 32, 32),
    "celeba": (3, 64, 64),
}


def estimate_seconds(setting: Setting) -> float | None:
    """Training and evaluation time of one run at the cpu scale on 2 cores, or None if
    unknown (from CPU_SECONDS_PER_STEP and CPU_EVAL_SECONDS)."""
    per_step = CPU_SECONDS_PER_STEP.get((setting.arch, setting.width))
    steps = training_steps(setting)
    if per_step is None or steps is None:
        return None
    return steps * per_step + CPU_EVAL_SECONDS


def train_images(setting: Setting) -> int | None:
    """Training images of a run of `setting`: the dataset's (TRAIN_IMAGES) capped by train_size;
    None where the dataset's size is not known here."""
    total = TRAIN_IMAGES.get(setting.dataset)
    if total is None:
        return None
    return min(total, setting.train_size or total)


def training_steps(setting: Setting, epochs: int | None = None) -> int | None:
    """Optimizer steps of a run of `setting` over `epochs` (default all of them); incomplete last
    batches are dropped, as training does. None where the training images are unknown."""
    images = train_images(setting)
    if images is None:
        return None
    held_out = float(dict(setting.overrides).get("data.val_fraction", 0.0))
    images -= round(images * held_out)
    return images // TrainConfig().batch_size * (setting.epochs if epochs is None else epochs)


def _test_images(setting: Setting) -> int | None:
    total = TEST_IMAGES.get(setting.dataset)
    if total is None:
        return None
    return min(total, setting.test_size or total)


def _image_shape(setting: Setting) -> tuple[int, int, int] | None:
    """(C, H, W) of the images a run of `setting` trains on, or None where unknown."""
    shape = IMAGE_SHAPES.get(setting.dataset)
    if shape is None or setting.image_size is None:
        return shape
    return (shape[0], setting.image_size, setting.image_size)


def experiment_runs(
    experiment: Experiment, scale: str, seeds: int | None = None
) -> list[tuple[Setting, str, int]]:
    """(setting, model, seed) of every run of `experiment`, in the order `reproduce` makes them;
    `seeds` None gives each setting its own count."""
    return [
        (setting, model, seed)
        for setting in experiment.settings(scale)
        for model in experiment.models
        for seed in range(setting.seeds if seeds is None else seeds)
    ]


def estimate_table(seeds: int | None = None) -> str:
    """Estimated cpu-scale wall time of each experiment run alone (shared runs counted each time),
    and of `all` (each shared run once), with `seeds` runs per model and setting."""
    lines = [
        f"estimated cpu-scale wall time on 2 cores, {_seeds_text(seeds)} (from timed "
        "training steps):"
    ]
    seen: dict[str, float] = {}  # the runs of `all`, each once
    real_done: set[tuple[str, int]] = set()  # (setting, evaluation seed) with real features
    for name in (*ALL, *QUESTIONS):
        experiment = EXPERIMENTS[name]
        runs = experiment_runs(experiment, "cpu", seeds)
        total = new = 0.0
        for setting, model, seed in runs:
            seconds = estimate_seconds(setting) or 0.0
            fid = 0.0
            if "fid" in experiment.metrics and seed < (experiment.measured_seeds or seed + 1):
                fid = inception_seconds(setting, seed, real_done)
            total += seconds + fid
            key = run_name(setting.config(model, None, seed))
            if name in ALL:
                new += fid + (seconds if key not in seen else 0.0)
                seen[key] = seen.get(key, seconds) + fid
        # run in the order of `all`, a part trains only what the parts before it did not
        part = f"(~{new / 60:.0f} min after the parts above) " if name in ALL else ""
        lines.append(
            f"  {name:<12} ~{total / 60:4.0f} min {len(runs):4d} runs  {part}{experiment.title}"
        )
    lines.append(
        f"  {'all':<12} ~{sum(seen.values()) / 60:4.0f} min {len(seen):4d} runs  (shared runs "
        "trained once)"
    )
    lines.append(
        "--dry-run lists every run with its estimate at either scale, timing the training step "
        "on this machine."
    )
    return "\n".join(lines)


def inception_seconds(setting: Setting, seed: int, real_done: set[tuple[str, int]]) -> float:
    """Seconds of Inception-v3 features for one run's FID: its samples, and the real images of
    its evaluation seed unless `real_done` holds them (their statistics are cached); 0 where the
    FID uses the domain classifier (grey images)."""
    if setting.dataset not in COLOUR:
        return 0.0
    options = dict(setting.options)
    real, generated = fid_sample_counts(options.get("fid_samples"), _test_images(setting) or 0)
    key = (setting.key, setting.eval_seed(seed))
    images = generated + (real if key not in real_done else 0)
    real_done.add(key)
    return images / INCEPTION_IMAGES_PER_SECOND


def _seeds_text(seeds: int | None) -> str:
    if seeds is None:
        return "each setting's own seeds per model (5 where a main claim is decided, else 3)"
    return f"{seeds} seed{'s' if seeds != 1 else ''} per model"


# `--dry-run` times the real training step on a random batch: a step slower than
# SLOW_STEP_SECONDS (a paper-width dcgan64 on a CPU takes tens of seconds) is timed once after
# one warm-up step; a faster one is averaged over about TIMING_SECONDS of steps (3 to 20) after
# two warm-up steps.
SLOW_STEP_SECONDS = 1.0
TIMING_SECONDS = 2.0
EVALUATION_BASIS = (
    f"evaluation per run: {CPU_EVAL_SECONDS:g} s per {CPU_EVAL_TEST_IMAGES:,} test images (the cpu "
    "scale's measured evaluation on 2 cores, mostly SVMs, label spreading, k-NN and Parzen sums on "
    "the CPU), scaled to the run's test split, plus the networks' passes of its metrics (codes, "
    "reconstructions, the rate's noisy copies, each corruption, Parzen / FID samples), each "
    "encoder or decoder pass of an image at a sixth of the timed training step per image; the "
    "FID's feature network is not counted here (the --help table counts Inception-v3 at "
    f"{INCEPTION_IMAGES_PER_SECOND:g} images/s)"
)


def time_training_step(
    config: ModelConfig, device: torch.device, batch_size: int = TrainConfig().batch_size
) -> tuple[float, str]:
    """Seconds per training step of the resolved model `config` on `device`, and how it was
    timed: the step `fit` makes (model and Adam built as training builds them, gradients of the
    loss, every loss term read back, the update) on a random batch of `batch_size` images."""
    torch.manual_seed(0)
    model = build_model(config).to(device)
    model.prior_generator = torch.Generator().manual_seed(1)
    optimizer = build_optimizer(model, TrainConfig())
    x = torch.rand(batch_size, *config.image_shape).to(device)

    def timed(steps: int) -> float:
        started = time.perf_counter()
        for _ in range(steps):
            terms = compute_gradients(model, optimizer, x)
            for value in terms.values():
                value.item()  # training reads every term back at each step
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - started

    model.train()
    timed(1)
    first = timed(1)
    if first >= SLOW_STEP_SECONDS:
        return first, "1 step timed after 1 warm-up step"
    n = min(20, max(3, int(TIMING_SECONDS / first)))
    return timed(n) / n, f"mean of {n} steps after 2 warm-up steps"


def evaluation_seconds(
    setting: Setting, encoder: str, metrics: Sequence[str], per_step: float
) -> float | None:
    """Estimated time of `metrics` on one run of `setting` (see EVALUATION_BASIS), or None where
    the test split's size is unknown; `per_step` is the timed training step (batch 100)."""
    n = _test_images(setting)
    if n is None:
        return None
    o = MetricOptions(**dict(setting.options))
    passes = 0  # encoder or decoder passes of one image
    if "reconstruction" in metrics:
        passes += 2 * n
    if "rate" in metrics:
        passes += min(o.rate_images, n) * (o.rate_copies if encoder == "deterministic" else 1)
    if {"mmd", "entropy", "kl"} & set(metrics):
        passes += n  # the codes, shared
        if encoder == "gaussian" and {"entropy", "kl"} & set(metrics):
            passes += n  # and the posterior means
    if "semi-supervised" in metrics:
        passes += len(o.corruptions) * n
    generated = [parzen_sample_count(o.parzen_samples, n)] if "parzen" in metrics else []
    if "fid" in metrics:
        generated.append(fid_sample_counts(o.fid_samples, n)[1])
    passes += max(generated, default=0)  # drawn once, shared by Parzen and FID
    # A training step passes each of its images through encoder and decoder, forward and
    # backward (about twice a forward pass): some 6 passes per image.
    batch = TrainConfig().batch_size
    return CPU_EVAL_SECONDS * n / CPU_EVAL_TEST_IMAGES + passes * per_step / (6 * batch)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _count(value: int | None) -> str:
    return "unknown" if value is None else f"{value:,}"


def dry_run(
    experiment: str,
    scale: str = "cpu",
    seeds: int | None = None,
    out: Path | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Print every run `reproduce` would make, with its training steps and estimated time on this
    machine's device, and the totals; trains, loads and writes nothing.

    The training time is the real training step timed once per distinct network (arch, width,
    image shape, latent size, encoder kind) on a random batch, times the run's steps. Runs that
    experiments share (the same `run_name`) are listed under each and counted once; a run already
    in `out` counts only the epochs it has left (its evaluation is counted whole: cached
    measurements are not looked up). Returns the totals.
    """
    if seeds is not None and seeds < 1:
        raise VimaeError(f"--seeds must be at least 1, got {seeds}.")
    if scale not in SCALES:
        raise VimaeError(f"unknown scale {scale!r}; choose one of: {', '.join(SCALES)}.")
    names = ALL if experiment == "all" else (EXPERIMENTS[experiment].name,)
    planned = [(n, *run) for n in names for run in experiment_runs(EXPERIMENTS[n], scale, seeds)]
    metrics: dict[str, set[str]] = {}  # run name -> metrics of every experiment listing it
    for name, setting, model, seed in planned:
        key = run_name(setting.config(model, None, seed))
        metrics.setdefault(key, set()).update(EXPERIMENTS[name].metrics)

    keep_freed_memory()  # as training does: its steps do not page-fault freed memory back
    device = resolve_device("auto")
    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    log(
        f"dry run: {experiment} at the {scale} scale, {_seeds_text(seeds)}; nothing is "
        "trained or written"
    )
    log(f"seconds per training step on {device}{threads}, batch 100 (random images):")
    timings: dict[tuple[Any, ...], float] = {}
    for _, setting, model, _ in planned:
        shape = _image_shape(setting)
        encoder = PRESETS[model].encoder
        network = (setting.arch, setting.width, shape, setting.latent_dim, encoder)
        if shape is None or network in timings:
            continue
        config = resolve(setting.config(model, None).model, setting.dataset, shape)
        timings[network], how = time_training_step(config, device)
        c, h, w = shape
        log(
            f"  {setting.arch} width {setting.width:g}, {c}x{h}x{w}, d = {setting.latent_dim}, "
            f"{encoder} encoder: {timings[network]:.4g} s ({how})"
        )

    header = (
        f"{'experiment':<12} {'setting':<24} {'model':<10} {'seed':>4} {'dataset':<14} "
        f"{'arch':<7} {'width':>6} {'epochs':>6} {'train images':>12} {'steps':>9} "
        f"{'training':>9} {'evaluation':>10}"
    )
    log(header)
    first_listed: dict[str, str] = {}
    train_total = eval_total = 0.0
    unknown = 0
    for name, setting, model, seed in planned:
        key = run_name(setting.config(model, None, seed))
        encoder = PRESETS[model].encoder
        network = (setting.arch, setting.width, _image_shape(setting), setting.latent_dim, encoder)
        per_step = timings.get(network)
        done = epochs_done(out / "runs" / key) if out is not None else 0
        steps = training_steps(setting)
        left = training_steps(setting, max(0, setting.epochs - done))
        train = None if per_step is None or left is None else left * per_step
        evaluation = None
        if per_step is not None:
            evaluation = evaluation_seconds(setting, encoder, sorted(metrics[key]), per_step)
        note = ""
        if key in first_listed:
            note = f"same run as in {first_listed[key]}, counted once"
        else:
            first_listed[key] = name
            if train is None or evaluation is None:
                unknown += 1
            else:
                train_total += train
                eval_total += evaluation
        if done:
            note = ", ".join(filter(None, [f"{min(done, setting.epochs)} epochs done", note]))
        log(
            f"{name:<12} {setting.key:<24} {model:<10} {seed:>4} {setting.dataset:<14} "
            f"{setting.arch:<7} {setting.width:>6g} {setting.epochs:>6} "
            f"{_count(train_images(setting)):>12} {_count(steps):>9} {_duration(train):>9} "
            f"{_duration(evaluation):>10}  {note}".rstrip()
        )
    distinct = len(first_listed)
    log(EVALUATION_BASIS + ".")
    log(
        f"total: {len(planned)} runs listed, {distinct} distinct (runs listed again are counted "
        f"once): training ~{_duration(train_total)}, evaluation ~{_duration(eval_total)}, "
        f"~{_duration(train_total + eval_total)} in all on {device}{threads}"
    )
    if unknown:
        log(f"{unknown} runs have no estimate (unknown data size or image shape) and are left out")
    return {
        "runs": len(planned),
        "distinct": distinct,
        "train_seconds": train_total,
        "eval_seconds": eval_total,
        "unknown": unknown,
        "device": str(device),
    }
