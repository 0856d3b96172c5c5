"""`vimae reproduce EXPERIMENT`: train, measure and draw what a figure or table of the paper needs.

The experiments and their settings are defined in `vimae.paper.experiments`; the time they will take
in `vimae.paper.estimate` (`--help`, `--dry-run`). Every model of a setting is trained with
`--seeds` training seeds (3 by default), so that every number of the report is a mean with a
standard error.

Everything is cached in the output folder, so a repeated or interrupted reproduce only does what is
left. A run lives in OUT/runs/<model>-<dataset>-<arch>-<hash>, the hash taken over its config's
fingerprint and epochs: experiments that share a setting (table 3 and figure 6 on MNIST) share
their runs, a finished run is reused without loading data, a partial one continues from its
checkpoint (`fit(..., resume=True)`). Each measurement is cached per run and metric in
RUN/evaluation/<metric>-<hash>.json (the hash over dataset, test size and options), each picture's
arrays in RUN/pictures/<kind>-<hash>.npz. OUT/manifest.json records which runs each experiment used
and how long it took; `vimae.paper.report` builds the report from these files alone.
"""

import contextlib
import dataclasses
import hashlib
import json
import os
import platform
import shlex
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vimae.config import CONFIG_FILE, RunConfig
from vimae.data import ImageData, PoolSplit, default_data_dir
from vimae.errors import VimaeError
from vimae.files import atomic_write_text, run_lock
from vimae.metrics import MetricContext, MetricOptions, draw_codes, generate
from vimae.paper.experiments import (
    ALL,
    EXPERIMENTS,
    MAX_SEEDS,
    SCALES,
    Setting,
    epochs_done,
    run_name,
)
from vimae.runs.checkpoint import CHECKPOINT_FILE
from vimae.runs.evaluation import evaluate_run, load_test_split
from vimae.runs.fit import (
    fit,
    load_training_data,
)
from vimae.runs.jobs import MAX_JOBS, run_jobs
from vimae.runs.loading import load_model

MANIFEST_FILE = "manifest.json"
PICTURE_ROWS = 8  # figures 2-3: 8 columns x (4 original rows + 4 reconstruction rows), 32 samples
PICTURE_SEED = 0


def _hash(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


@dataclass
class Context:
    """Where a reproduce reads and writes, and what it did (for the tests and the summary)."""

    out: Path
    data_dir: str
    scale: str
    inception_weights: Path | None = None
    seeds: int | None = None  # training seeds per model and setting; None: each setting's own
    jobs: int = 1  # runs trained and measured at a time, each in its own process
    trained: list[str] = field(default_factory=list)
    evaluated: list[str] = field(default_factory=list)
    log: Callable[[str], None] = print

    @property
    def runs(self) -> Path:
        return self.out / "runs"

    def seeds_of(self, setting: Setting) -> int:
        """How many training seeds each model of `setting` gets."""
        return self.seeds if self.seeds is not None else setting.seeds


def train_setting(ctx: Context, setting: Setting, models: Sequence[str]) -> dict[str, list[Path]]:
    """Train (or reuse, or continue) every model's runs of `setting`, one per seed, `ctx.jobs` at
    a time; model -> run folders in seed order."""
    runs: dict[str, list[Path]] = {}
    todo: list[tuple[RunConfig, Path]] = []
    for model, seed in ((m, s) for m in models for s in range(ctx.seeds_of(setting))):
        config = setting.config(model, ctx.data_dir, seed)
        run_dir = ctx.runs / run_name(config)
        runs.setdefault(model, []).append(run_dir)
        if not ((run_dir / CONFIG_FILE).is_file() and epochs_done(run_dir) >= setting.epochs):
            todo.append((config, run_dir))

    def announce(config: RunConfig, run_dir: Path) -> None:
        name, seed = config.model.name, config.train.seed
        ctx.log(f"training {name} seed {seed} on {setting.dataset} ({setting.key}) -> {run_dir}")

    if ctx.jobs == 1:  # in this process, the data loaded once: the same for every model
        data = load_training_data(todo[0][0]) if todo else None
        for config, run_dir in todo:
            announce(config, run_dir)
            train_run(config.to_dict(), run_dir, data)
    else:  # each worker loads its own data
        for config, run_dir in todo:
            announce(config, run_dir)
        run_jobs(train_run, [(c.to_dict(), d, None) for c, d in todo], ctx.jobs)
    for _, run_dir in todo:
        for stale in ("evaluation", "pictures"):  # measured on weights that have changed since
            shutil.rmtree(run_dir / stale, ignore_errors=True)
        ctx.trained.append(run_dir.name)
    return runs


def train_run(config: dict[str, Any], run_dir: Path, data: Any = None) -> None:
    """Train (or continue) one run (a job of `run_jobs`: plain arguments, no return value)."""
    resume = (run_dir / CHECKPOINT_FILE).is_file()
    with torch.enable_grad():
        fit(RunConfig.from_dict(config), run_dir, resume=resume, data=data)


def evaluation_key(setting: Setting, options: MetricOptions) -> str:
    """The hash that names a run's cached measurements of `setting` with `options`. Where the
    real images' statistics are cached changes no number, so the cache folder is left out: a part
    moved, committed (docs/results) or continued under another --out keeps its measurements. The
    Inception weights count by file name (their sha256 is checked when they load); the sampler
    counts only when it is not the prior."""
    described = dataclasses.asdict(options)
    described.pop("cache_dir", None)
    if options.sampler == "prior":  # the default: keys made before samplers existed stay valid
        described.pop("sampler", None)
        described.pop("sampler_images", None)
    if options.inception_weights is not None:
        described["inception_weights"] = Path(options.inception_weights).name
    return _hash([setting.dataset, setting.test_size, _jsonable(described)])


def check_trained(run_dir: Path) -> None:
    """A run to be measured needs its weights: a committed part (docs/results) holds none."""
    if not (run_dir / CHECKPOINT_FILE).is_file():
        raise VimaeError(
            f"{run_dir} has no {CHECKPOINT_FILE}: its cached measurements are reused, but a new "
            "one needs the weights; train the run again (delete its folder) or measure it on the "
            "machine that trained it."
        )


def evaluate_command(
    run_dir: Path, setting: Setting, metric: str, data_dir: str, seed: int = 0
) -> str:
    """The `vimae evaluate` command line that computes one cached measurement."""
    parts = ["vimae", "evaluate", str(run_dir), "--metrics", metric, "--data-dir", data_dir]
    if seed:
        parts += ["--seed", str(seed)]
    if setting.test_size is not None:
        parts += ["--test-size", str(setting.test_size)]
    for key, value in setting.options:
        shown = ",".join(value) if isinstance(value, tuple) else str(value)
        parts += ["--" + key.replace("_", "-"), shown]
    return shlex.join(parts)


def evaluate_setting(
    ctx: Context, setting: Setting, runs: dict[str, list[Path]], metrics: Sequence[str]
) -> None:
    """Every metric on every run, each cached in RUN/evaluation/<metric>-<hash>.json (the hash
    over the dataset, test size and options, the run's evaluation seed among them)."""
    todo, keys = [], []
    for seed, run_dir in (pair for paths in runs.values() for pair in enumerate(paths)):
        options = setting.metric_options(ctx.out / "cache", ctx.inception_weights, seed)
        key = evaluation_key(setting, options)
        missing = [m for m in metrics if not (run_dir / "evaluation" / f"{m}-{key}.json").is_file()]
        if missing:
            check_trained(run_dir)
            ctx.log(f"evaluating {run_dir.name}: {', '.join(missing)}")
            todo.append((run_dir, ctx.data_dir, missing, options, setting.test_size))
            keys.append(key)

    def keep(index: int, result: dict[str, Any]) -> None:
        """One run's measurements written as soon as they come back."""
        run_dir, _, missing, options, _ = todo[index]
        ctx.evaluated.append(run_dir.name)
        for metric in missing:
            values = result["metrics"][metric]
            if values["status"] == "failed":  # a bug, not a property of the run: not cached
                ctx.log(f"  {metric} failed: {values['reason']}")
            record = {
                "metric": metric,
                "model": result["model"],
                "dataset": result["dataset"],
                "test_images": result["test_images"],
                "test_data": result["test_data"],
                "command": evaluate_command(run_dir, setting, metric, ctx.data_dir, options.seed),
                **values,
            }
            if values["status"] != "failed":
                folder = run_dir / "evaluation"
                folder.mkdir(exist_ok=True)
                text = json.dumps(_jsonable(record))
                atomic_write_text(folder / f"{metric}-{keys[index]}.json", text)

    run_jobs(measure_run, todo, ctx.jobs, on_result=keep)


def measure_run(
    run_dir: Path,
    data_dir: str,
    metrics: list[str],
    options: MetricOptions,
    test_size: int | None,
) -> dict[str, Any]:
    """Every metric of `metrics` on one run folder (a job of `run_jobs`)."""
    return evaluate_run(
        run_dir, data_dir=data_dir, metrics=metrics, options=options, test_size=test_size
    )


@torch.no_grad()
def _codes(model: Any, test: ImageData) -> dict[str, np.ndarray]:
    """Figure 1's codes: one draw of q(z|x) per test image (the aggregate posterior, the same
    codes as the MMD in each panel's title), with their labels."""
    labels = test.labels if test.labels is not None else torch.zeros(len(test))
    codes = draw_codes(model, test.images, MetricContext(model, test, "").generator("codes"))
    return {"codes": codes.numpy(), "labels": labels.numpy()}


@torch.no_grad()
def _images(model: Any, test: ImageData) -> dict[str, np.ndarray]:
    """Figures 2-3: a seeded, class-stratified draw of test images with their reconstructions,
    and as many prior samples."""
    n = PICTURE_ROWS * 4
    x = test.subset(n, seed=PICTURE_SEED).images
    samples = generate(model, n, torch.Generator().manual_seed(PICTURE_SEED))
    return {
        "originals": x.numpy(),
        "reconstructions": model.reconstruct(x).numpy(),
        "samples": samples.numpy(),
    }


# Picture kind -> arrays drawn from (model, test split); the report draws them.
PICTURES: dict[str, Callable[[Any, ImageData], dict[str, np.ndarray]]] = {
    "codes": _codes,
    "images": _images,
}


def picture_setting(
    ctx: Context, setting: Setting, runs: dict[str, list[Path]], kinds: Sequence[str]
) -> None:
    """The arrays each picture needs, cached in RUN/pictures/<kind>-<hash>.npz; pictures show the
    first seed's run of each model."""
    key = _hash([setting.dataset, setting.test_size])
    for run_dir in (paths[0] for paths in runs.values()):
        todo = [k for k in kinds if not (run_dir / "pictures" / f"{k}-{key}.npz").is_file()]
        if not todo:
            continue
        model = load_model(run_dir)
        config = setting.config(next(iter(runs)), ctx.data_dir)  # the first seed's
        test = load_test_split(
            setting.dataset,
            ctx.data_dir,
            model.image_shape,
            setting.test_size,
            setting.image_size,
            PoolSplit.of(config.data),
            setting.eval_seed(0),  # the first seed's evaluation: the test images it saw
        )
        (run_dir / "pictures").mkdir(exist_ok=True)
        for kind in todo:
            path = run_dir / "pictures" / f"{kind}-{key}.npz"
            tmp = path.with_suffix(".tmp.npz")
            np.savez_compressed(tmp, **PICTURES[kind](model, test))
            tmp.replace(path)


def command_line(experiment: str, ctx: Context) -> str:
    parts = ["vimae", "reproduce", experiment, "--scale", ctx.scale]
    if ctx.seeds is not None:
        parts += ["--seeds", str(ctx.seeds)]
    if ctx.jobs != 1:
        parts += ["--jobs", str(ctx.jobs)]
    parts += ["--data-dir", ctx.data_dir, "--out", str(ctx.out)]
    if ctx.inception_weights is not None:
        parts += ["--inception-weights", str(ctx.inception_weights)]
    return shlex.join(parts)


def run_experiment(ctx: Context, name: str) -> dict[str, Any]:
    """Train, evaluate and picture one experiment; its manifest entry (also written to disk)."""
    experiment = EXPERIMENTS[name]
    started = time.perf_counter()
    entries = []
    for setting in experiment.settings(ctx.scale):
        entry: dict[str, Any] = {**_jsonable(dataclasses.asdict(setting)), "status": "ok"}
        try:
            runs = train_setting(ctx, setting, experiment.models)
            if experiment.measured_seeds is not None:
                runs = {m: paths[: experiment.measured_seeds] for m, paths in runs.items()}
            evaluate_setting(ctx, setting, runs, experiment.metrics)
            picture_setting(ctx, setting, runs, experiment.pictures)
            entry["runs"] = {
                m: [str(p.relative_to(ctx.out)) for p in paths] for m, paths in runs.items()
            }
        except VimaeError as err:  # most often a dataset that is not on this machine
            entry.update(status="not run", reason=str(err))
            ctx.log(f"{name}: {setting.key} not run: {err}")
        entries.append(entry)
    manifest = read_manifest(ctx.out)
    session = {
        "command": command_line(name, ctx),
        "seconds": round(time.perf_counter() - started, 1),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine(ctx.jobs),
    }
    sessions = [*past_sessions(manifest["experiments"].get(name)), session]
    record = {
        "title": experiment.title,
        "scale": ctx.scale,
        **session,
        "seconds": round(sum(s["seconds"] for s in sessions), 1),
        "sessions": sessions,
        "metrics": list(experiment.metrics),
        "pictures": list(experiment.pictures),
        "models": list(experiment.models),
        "settings": entries,
    }
    manifest["experiments"][name] = record
    atomic_write_text(ctx.out / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
    return record


def past_sessions(record: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The invocations that made a part before this one: a part is continued, not redone (its
    cached runs and measurements are reused), so its wall time is the sum over them. A record
    written before sessions were kept is its own one session."""
    if not record:
        return []
    if "sessions" in record:
        return list(record["sessions"])
    keys = ("command", "seconds", "finished", "machine")
    return [{k: record[k] for k in keys if k in record}]


def machine(jobs: int) -> str:
    """Where a part ran, in words: the processor (or GPU), cores and jobs, for its wall time."""
    if torch.cuda.is_available():
        where = torch.cuda.get_device_name()
    else:
        where = platform.processor() or platform.machine()
        with contextlib.suppress(OSError):
            with open("/proc/cpuinfo") as f:
                names = [line.split(":", 1)[1].strip() for line in f if "model name" in line]
            where = names[0] if names else where
    return f"{where}, {os.cpu_count()} cores, {jobs} job(s) at a time"


def read_manifest(out: Path) -> dict[str, Any]:
    path = Path(out) / MANIFEST_FILE
    if not path.is_file():
        return {"experiments": {}}
    return json.loads(path.read_text())


def reproduce(
    experiment: str,
    out: Path,
    scale: str = "cpu",
    data_dir: str | Path | None = None,
    inception_weights: Path | None = None,
    log: Callable[[str], None] = print,
    seeds: int | None = None,
    jobs: int = 1,
) -> Context:
    """Run one experiment (or "all") into `out`, `seeds` training seeds per model and setting
    (None: each setting's own), `jobs` runs at a time, and rebuild the report there."""
    if seeds is not None and not 1 <= seeds <= MAX_SEEDS:
        raise VimaeError(f"--seeds must be between 1 and {MAX_SEEDS}, got {seeds}.")
    if not 1 <= jobs <= MAX_JOBS:
        raise VimaeError(f"--jobs must be between 1 and {MAX_JOBS}, got {jobs}.")
    from vimae.paper.report import build_report

    if scale not in SCALES:
        raise VimaeError(f"unknown scale {scale!r}; choose one of: {', '.join(SCALES)}.")
    names = ALL if experiment == "all" else (EXPERIMENTS[experiment].name,)
    # the paths as the user gave them: the report's commands are the ones to type again
    data_dir = str(data_dir or default_data_dir())
    ctx = Context(Path(out), data_dir, scale, inception_weights, seeds, jobs, log=log)
    with run_lock(ctx.out, "vimae reproduce"):  # one reproduce per --out at a time
        for name in names:
            record = run_experiment(ctx, name)
            log(f"{name}: done in {record['seconds']:.0f} s")
        build_report(ctx.out)
    return ctx
