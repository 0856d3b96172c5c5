"""Every measurement of SPEC section 6 on a trained run folder (what `vimae evaluate` computes).

`evaluate_run` loads the run's model (never the training code) and its dataset's test split,
runs the registered metrics of `vimae.metrics` one by one and returns the record that
`vimae evaluate` writes to RUN_DIR/metrics.json: what was measured (weights, test data, options)
and each metric's values with the time it took. A metric that cannot be computed is reported
with the reason instead of a number. `merge_reports` keeps earlier results of the same weights.
"""

import dataclasses
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open

from vimae.config import MAX_COUNT, load_config
from vimae.data import ImageData, PoolSplit, StreamData, load_dataset
from vimae.data.memory import require_memory
from vimae.errors import VimaeError
from vimae.files import jsonable
from vimae.metrics import (
    METRICS,
    MetricContext,
    MetricOptions,
    MetricUnavailableError,
    check_against_data,
    default_metrics,
    validate_options,
)
from vimae.models.fitted import SAMPLER_FOLDER
from vimae.runs.checkpoint import CHECKPOINT_FILE
from vimae.runs.device import resolve_device
from vimae.runs.loading import load_model

# Every registered metric, in the table's order (cheap, code-based measurements first).
DEFAULT_METRICS = default_metrics()
CODE_METRICS = ("mmd", "entropy", "kl")
# A re-evaluation merges into an earlier result file only when these agree (same weights, test
# images and options); otherwise the earlier metrics would describe something else.
MERGE_KEYS = ("run_dir", "checkpoint_step", "model", "dataset", "test_data", "options")


def check_test_size(test_size: int | None) -> None:
    if test_size is not None and not 1 <= test_size <= MAX_COUNT:
        raise VimaeError(f"--test-size must be between 1 and {MAX_COUNT}, got {test_size}.")


def load_test_split(
    dataset: str,
    data_dir: str | None,
    image_shape: Sequence[int],
    test_size: int | None,
    image_size: int | None = None,
    pool: PoolSplit | None = None,
    seed: int = 0,
) -> ImageData:
    """A seeded, class-stratified draw of `test_size` test images (all when None), resized to
    `image_size` when training resized its data (the run's data.image_size); any other mismatch
    with the model's input is an error. `pool` is the run's split of pooled data."""
    check_test_size(test_size)
    test = load_dataset(dataset, "test", data_dir, image_size, pool, resize_all=False)
    test = test.subset(test_size, seed=seed)
    if isinstance(test, StreamData):  # the metrics read the test split whole, in memory
        require_memory(
            len(test) * math.prod(test.image_shape) * 5,  # uint8 pixels and their float32 view
            f"the {len(test):,} streamed test images (for the metrics)",
            "pass --test-size N to measure on a seeded, class-stratified draw of N.",
        )
        test = test.load()
    if image_size is not None:
        test = test.resized(image_size)
    if test.image_shape != tuple(image_shape):
        c, h, w = image_shape
        tc, th, tw = test.image_shape
        raise VimaeError(
            f"{dataset} has {tc}-channel {th}x{tw} images but the model takes {c}-channel "
            f"{h}x{w} images; evaluate on data of the kind it was trained on."
        )
    return test


def run_metrics(
    ctx: MetricContext, names: Sequence[str], progress: bool = False
) -> dict[str, dict[str, Any]]:
    """Each named metric's values and seconds, or its reason for not being computed; with
    `progress`, a line on stderr as each metric starts (FID or Parzen can take minutes)."""
    check_against_data(names, ctx.options, len(ctx.test))  # before any metric runs
    results: dict[str, dict[str, Any]] = {}
    if any(n in CODE_METRICS for n in names):
        start = time.perf_counter()
        _ = ctx.codes
        results["codes"] = {
            "status": "ok",
            "shape": list(ctx.codes.shape),
            "seconds": _since(start),
        }
    for i, name in enumerate(names):
        if progress:
            print(f"[{i + 1}/{len(names)}] {name} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        try:
            values: dict[str, Any] = {"status": "ok", **METRICS[name](ctx)}
        except (MetricUnavailableError, VimaeError) as err:
            values = {"status": "not computed", "reason": str(err).rstrip(".")}
        except Exception as err:  # a bug: reported, the other metrics still run
            values = {"status": "failed", "reason": f"{type(err).__name__}: {err}"}
        values["seconds"] = _since(start)
        results[name] = values
    return results


def checkpoint_step(run_dir: str | Path) -> int | None:
    """The training step of the run's checkpoint (which weights were measured)."""
    try:
        with safe_open(str(Path(run_dir) / CHECKPOINT_FILE), framework="pt") as f:
            return int(json.loads(f.metadata()["progress"])["step"])
    except (OSError, SafetensorError, KeyError, ValueError, TypeError):
        return None


def _since(start: float) -> float:
    return round(time.perf_counter() - start, 3)


def evaluate_run(
    run_dir: str | Path,
    dataset: str | None = None,
    data_dir: str | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    options: MetricOptions | None = None,
    test_size: int | None = None,
    device: str = "auto",
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate a run folder; returns what `vimae evaluate` writes to metrics.json."""
    for name in metrics:
        METRICS[name]  # an unknown name fails now, listing the valid ones
    options = options or MetricOptions()
    validate_options(options)
    check_test_size(test_size)
    torch_device = resolve_device(device)
    start = time.perf_counter()
    config = load_config(run_dir)
    model = load_model(run_dir, torch_device)
    dataset = dataset or config.data.dataset
    data_dir = data_dir if data_dir is not None else config.data.data_dir
    pool = PoolSplit.of(config.data)
    test = load_test_split(
        dataset, data_dir, model.image_shape, test_size, config.data.image_size, pool, options.seed
    )
    ctx = MetricContext(model, test, dataset, data_dir, model.image_shape[1], options, pool)
    ctx.sampler_folder = Path(run_dir) / SAMPLER_FOLDER
    results = run_metrics(ctx, list(metrics), progress)
    used = ctx.sampler_used()
    return {
        "run_dir": str(run_dir),
        "checkpoint_step": checkpoint_step(run_dir),
        "model": config.model.name,
        "prior": model.prior.name,
        "dataset": dataset,
        "test_images": len(test),
        "test_data": test.describe(),
        "options": jsonable(dataclasses.asdict(options)),
        **({"generated_from": used} if used else {}),
        "metrics": results,
        "total_seconds": _since(start),
    }


def merge_reports(old: dict[str, Any], new: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """`new` with the metrics of `old` that it did not recompute, when both measured the same
    weights (checkpoint step) on the same test data with the same options; else `new` alone.
    Returns the merged report and the names of the metrics kept from `old`."""
    same = all(old.get(k) == new.get(k) for k in MERGE_KEYS)
    if not same or not isinstance(old.get("metrics"), dict):
        return new, []
    kept = [name for name in old["metrics"] if name not in new["metrics"]]
    metrics = {**{name: old["metrics"][name] for name in kept}, **new["metrics"]}
    return {**new, "metrics": metrics}, kept
