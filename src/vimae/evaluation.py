"""`vimae evaluate RUN_DIR`: every measurement of SPEC section 6 on a trained run.

Loads the run's model (never the training code), its dataset's test split, runs the registered
metrics of `vimae.metrics` one by one, prints a table with the time each took and writes
RUN_DIR/metrics.json (metrics-DATASET.json when evaluated on another dataset than the run's own;
training logs go to metrics.jsonl, a different file). A metric that cannot be computed is reported
with the reason, in the table and in the file, instead of a number.
"""

import argparse
import contextlib
import dataclasses
import json
import math
import sys
import time
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open

from vimae.atomic import atomic_write_text
from vimae.checkpoint import CHECKPOINT_FILE, load_model
from vimae.config import MAX_COUNT, MAX_SEED, load_config
from vimae.data import ImageData, PoolSplit, StreamData, load_dataset
from vimae.data.base import require_memory
from vimae.data.corruption import parse_corruption
from vimae.device import resolve_device
from vimae.divergence import KERNELS
from vimae.errors import VimaeError
from vimae.metrics import METRICS, MetricContext, MetricOptions, MetricUnavailableError
from vimae.metrics.fid import FEATURE_CHOICES
from vimae.runfolder import check_output_file, run_lock

# The order of the table: cheap, code-based measurements first.
DEFAULT_METRICS = (
    "reconstruction",
    "rate",
    "mmd",
    "entropy",
    "kl",
    "parzen",
    "fid",
    "semi-supervised",
)
CODE_METRICS = ("mmd", "entropy", "kl")
# The largest count any evaluation option accepts: more is a typo, and would be allocated.
MAX_OPTION_COUNT = 10_000_000
# A re-evaluation merges into an earlier result file only when these agree (same weights, test
# images and options); otherwise the earlier metrics would describe something else.
MERGE_KEYS = ("run_dir", "checkpoint_step", "model", "dataset", "test_data", "options")

OPTION_HELP = {
    "batch_size": "images per forward pass",
    "seed": "seed of every random draw of the evaluation",
    "knn_k": "neighbours k of the Kozachenko-Leonenko entropy estimator",
    "knn_repeats": "seeded repeats on prior draws of the entropy reference and the KL estimate",
    "rate_copies": "noisy copies per image for VIMAE's fitted-Gaussian rate",
    "rate_samples": "posterior samples per image for the Monte-Carlo rate (non-Normal prior)",
    "rate_images": "test images (a stratified draw) the rate is averaged over",
    "mmd_kernel": "MMD kernel (imq or rbf)",
    "mmd_block_size": "block size of the bounded-memory MMD",
    "parzen_samples": "generated samples of the Parzen window; None: min(10000, 10 x test images)",
    "parzen_valid": "validation images (a stratified draw from the training split) that choose "
    "the Parzen bandwidth",
    "parzen_bandwidths": "comma-separated bandwidth grid of the Parzen window",
    "fid_samples": "generated images of the FID, and real ones as many or all of the test split; "
    "None: min(10000, test images) of each",
    "fid_features": "FID features: auto, inception or classifier",
    "inception_weights": "local Inception-v3 FID weights (pt_inception-2015-12-05-6726825d.pth)",
    "fid_classifier_steps": "training steps of the FID domain classifier (when not cached)",
    "corruptions": "comma-separated input corruptions of the semi-supervised accuracy",
    "n_labels": "labelled codes of the semi-supervised accuracy (not Omniglot)",
    "n_repeats": "random labelled subsets of the semi-supervised accuracy",
    "cache_dir": "where the FID domain classifier is cached ($VIMAE_CACHE_DIR, else "
    "$XDG_CACHE_HOME/vimae, else ~/.cache/vimae)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `vimae evaluate`; every MetricOptions field is one `--field-name` flag."""
    parser.add_argument("run_dir", type=Path, help="a run folder written by `vimae train`")
    parser.add_argument("--dataset", help="dataset to evaluate on (default: the run's)")
    parser.add_argument("--data-dir", help="where the dataset files are (default: the run's)")
    parser.add_argument(
        "--metrics",
        default=",".join(DEFAULT_METRICS),
        help=f"comma-separated metrics to compute (default: all of {', '.join(DEFAULT_METRICS)})",
    )
    parser.add_argument(
        "--test-size",
        type=int,
        help="use a seeded, class-stratified draw of N test images (the seed is --seed)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--out", type=Path, help="result file (default RUN_DIR/metrics.json)")
    defaults = MetricOptions()
    for f in dataclasses.fields(MetricOptions):
        default = getattr(defaults, f.name)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        parser.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            default=None,
            metavar=f.name.split("_")[-1].upper(),
            help=f"{OPTION_HELP[f.name]} (default: {shown})",
        )


def options_from_args(args: argparse.Namespace) -> MetricOptions:
    """MetricOptions with the defaults of the dataclass, overridden by the flags that were given."""
    hints = typing.get_type_hints(MetricOptions)
    given = {}
    for f in dataclasses.fields(MetricOptions):
        value = getattr(args, f.name, None)
        if value is not None:
            given[f.name] = _convert(value, hints[f.name], f.name)
    return MetricOptions(**given)


def validate_options(options: MetricOptions) -> None:
    """Reject bad settings with one sentence before any model is loaded or metric runs."""
    for name in ("batch_size", "knn_k", "knn_repeats", "rate_copies", "rate_samples", "rate_images",
                 "mmd_block_size", "parzen_samples", "parzen_valid", "fid_samples",
                 "fid_classifier_steps", "n_labels", "n_repeats"):  # fmt: skip
        value = getattr(options, name)
        flag = "--" + name.replace("_", "-")
        if value is not None and value < 1:  # None: a count scaled to the test split
            raise VimaeError(f"{flag} must be at least 1, got {value}.")
        if value is not None and value > MAX_OPTION_COUNT:  # checked before any allocation
            raise VimaeError(f"{flag} must be at most {MAX_OPTION_COUNT}, got {value}.")
    if not 0 <= options.seed <= MAX_SEED:
        raise VimaeError(f"--seed must be at most {MAX_SEED} and >= 0, got {options.seed}.")
    if options.rate_copies < 2:
        raise VimaeError("--rate-copies must be at least 2 to fit a variance to the codes.")
    bandwidths = options.parzen_bandwidths
    if not bandwidths or not all(0 < b < math.inf for b in bandwidths):
        raise VimaeError("--parzen-bandwidths must list positive, finite bandwidths.")
    KERNELS[options.mmd_kernel]
    if options.fid_features not in FEATURE_CHOICES:
        valid = ", ".join(FEATURE_CHOICES)
        raise VimaeError(f"unknown FID features {options.fid_features!r}; choose one of: {valid}.")
    for spec in options.corruptions:
        parse_corruption(spec)


def _convert(text: Any, annotation: Any, name: str) -> Any:
    """A flag's text converted to its MetricOptions field type, or a VimaeError."""
    if not isinstance(text, str):
        return text
    flag = "--" + name.replace("_", "-")
    origin = typing.get_origin(annotation)
    try:
        if origin is tuple:
            (item,) = set(typing.get_args(annotation)) - {Ellipsis}
            value = tuple(item(part.strip()) for part in text.split(",") if part.strip())
        elif origin in (typing.Union, types.UnionType):
            (item,) = set(typing.get_args(annotation)) - {type(None)}
            value = item(text)
        else:
            value = annotation(text)
    except ValueError:
        raise VimaeError(f"cannot read {flag} {text!r}; see `vimae evaluate --help`.") from None
    numbers = value if isinstance(value, tuple) else (value,)
    if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
        raise VimaeError(f"{flag} must be a finite number, got {text!r}.")
    return value


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
    results = run_metrics(ctx, list(metrics), progress)
    return {
        "run_dir": str(run_dir),
        "checkpoint_step": checkpoint_step(run_dir),
        "model": config.model.name,
        "prior": model.prior.name,
        "dataset": dataset,
        "test_images": len(test),
        "test_data": test.describe(),
        "options": _jsonable(dataclasses.asdict(options)),
        "metrics": results,
        "total_seconds": _since(start),
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no inf / nan
    return value


def format_table(report: dict[str, Any]) -> str:
    """The printed summary: one row per metric value, the time per metric, then the accuracies."""
    seen = report.get("test_data", {})
    classes = ""
    if "classes" in seen:
        classes = (
            f", {seen['classes']} classes of {seen['smallest_class']} to "
            f"{seen['largest_class']} images"
        )
    lines = [
        f"{report['model']} on {report['dataset']} ({report['test_images']} test images{classes})",
        f"{'metric':<16} {'value':<58} {'seconds':>8}",
    ]
    semi = None
    for name, values in report["metrics"].items():
        shown = _describe(values)
        lines.append(f"{name:<16} {shown[0]:<58} {values['seconds']:>8.2f}")
        lines += [f"{'':<16} {more}" for more in shown[1:]]
        if name == "semi-supervised" and values["status"] == "ok":
            semi = values
    if semi is not None:
        lines += [
            "",
            f"semi-supervised accuracy % ({semi['semi_supervised_protocol']}; "
            f"mean +- std over {semi['semi_supervised_repeats']} draws)",
        ]
        lines.append(f"{'input':<12} {'svm':>16} {'label_spreading':>18}")
        for spec, acc in semi["semi_supervised"].items():
            cells = [
                f"{acc[c]['mean']:6.2f} +- {acc[c]['std']:5.2f}" for c in ("svm", "label_spreading")
            ]
            lines.append(f"{spec:<12} {cells[0]:>16} {cells[1]:>18}")
    lines.append(f"total {report['total_seconds']:.1f} s")
    return "\n".join(lines)


def _describe(values: dict[str, Any]) -> list[str]:
    if values["status"] != "ok":
        return [f"{values['status'].upper()}: {values['reason']}"]
    skip = {"status", "seconds", "semi_supervised", "semi_supervised_protocol", "warnings"}
    parts = []
    for key, value in values.items():
        if key in skip:
            continue
        parts.append(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}")
    parts = parts or ["see the table below"]
    return parts + [f"WARNING: {w}" for w in values.get("warnings", [])]


def output_path(args_out: Path | None, run_dir: Path, dataset: str, own_dataset: str) -> Path:
    """RUN_DIR/metrics.json, or metrics-DATASET.json for a foreign dataset, unless --out."""
    if args_out is not None:
        return args_out
    return run_dir / ("metrics.json" if dataset == own_dataset else f"metrics-{dataset}.json")


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


def _previous_report(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, or None when there is none or it cannot be read."""
    try:
        previous = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return previous if isinstance(previous, dict) else None


def run(args: argparse.Namespace) -> int:
    """Handler of `vimae evaluate`: check where the result goes, evaluate, print the table,
    merge with the metrics already in the file, write it atomically."""
    run_dir = Path(args.run_dir)
    names = [n.strip() for n in args.metrics.split(",") if n.strip()]
    own = load_config(run_dir).data.dataset
    out = check_output_file(output_path(args.out, run_dir, args.dataset or own, own), run_dir)
    args.interrupted = f"interrupted; evaluate wrote nothing ({out} is as it was)."
    into_run = out.parent.resolve() == run_dir.resolve()
    with run_lock(run_dir, "vimae evaluate") if into_run else contextlib.nullcontext():
        for stale in out.parent.glob(f".{out.name}.*.tmp"):  # left by a killed evaluate
            stale.unlink(missing_ok=True)
        report = evaluate_run(
            run_dir,
            dataset=args.dataset,
            data_dir=args.data_dir,
            metrics=names,
            options=options_from_args(args),
            test_size=args.test_size,
            device=args.device,
            progress=True,
        )
        print(format_table(report))
        previous = _previous_report(out)
        report, kept = merge_reports(previous, _jsonable(report)) if previous else (report, [])
        atomic_write_text(out, json.dumps(_jsonable(report), indent=2) + "\n")
    print(f"written: {out}" + (f" (kept from before: {', '.join(kept)})" if kept else ""))
    if previous and not kept and set(previous.get("metrics", {})) - set(names):
        print(
            f"note: the metrics {out} held before were measured on other weights, data or "
            "options and were replaced."
        )
    failed = [n for n, v in report["metrics"].items() if v.get("status") == "failed"]
    return 1 if failed else 0
