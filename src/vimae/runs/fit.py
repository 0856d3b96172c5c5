"""`fit`: train one model, top to bottom — build, maybe resume, loop, log, checkpoint, finish.

Determinism: the batch order of epoch e is a permutation drawn from a generator seeded with
(seed, e), and the global torch RNG (encoder noise, reparameterisation, prior draws) is saved in
every checkpoint. A resumed run therefore replays exactly the batches and random draws an
uninterrupted run would have made, and on a CPU reaches the same weights bit for bit.

Under `torchrun` each process trains on its shard of every global batch (see vimae.distributed);
rank 0 alone writes the config, the log and the checkpoints, which hold every rank's RNG state.

Incomplete last batches are dropped, so every step sees `batch_size` images (the MMD is an
average over pairs in the batch and its variance depends on the batch size).
"""

import contextlib
import copy
import json
import math
import shlex
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vimae import distributed
from vimae.config import (
    CONFIG_FILE,
    RunConfig,
    TrainConfig,
    derived_seed,
    load_config,
    named,
    save_config,
    validate,
)
from vimae.data import ImageData, PoolSplit, default_data_dir, load_dataset
from vimae.data.split import stratified_split
from vimae.data.stream import StreamData, epoch_batches
from vimae.errors import VimaeError, VimaeNote
from vimae.files import LOCK_FILE, atomic_write_text, remove_stale_temporaries, run_lock
from vimae.metrics.reconstruction import (
    learned_nothing,
    mean_image_error,
    reconstruction_error,
)
from vimae.models import Autoencoder, build_model, encoder_outputs, resolve
from vimae.models.batched import batched
from vimae.models.custom import check_networks
from vimae.runs.checkpoint import (
    BEST_FILE,
    CHECKPOINT_FILE,
    checkpoint_config,
    load_weights,
    read_checkpoint,
    read_progress,
    restore_optimizer,
    save_checkpoint,
    save_weights,
)
from vimae.runs.device import resolve_device
from vimae.runs.feedback import RunLog, progress_bar
from vimae.runs.folder import DATA_FILE, METRICS_FILE, repair_log
from vimae.runs.loggers import Logger, MlflowLogger, TensorBoardLogger, flat_settings
from vimae.runs.precision import bf16_slower_note
from vimae.runs.schedule import learning_rate
from vimae.runs.spike import SpikeWatch

# What training reads: a split in memory, or shards streamed from disk (vimae.data.stream).
TrainingData = ImageData | StreamData

# A resume may lower the learning rate (the advice after a divergence); nothing else may change.
RESUMABLE_CHANGES = ("train.lr",)


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled example order of one epoch, a function of (seed, epoch) only."""
    generator = torch.Generator().manual_seed(derived_seed(seed, epoch))
    return torch.randperm(n, generator=generator)


def build_optimizer(model: torch.nn.Module, t: TrainConfig) -> torch.optim.Adam:
    """Adam of the paper's appendix; the fused kernel (same update, one pass over the weights)."""
    fused = next(model.parameters()).device.type in ("cpu", "cuda", "mps")
    return torch.optim.Adam(model.parameters(), lr=t.lr, betas=(t.beta1, t.beta2), fused=fused)


def compute_gradients(
    step_model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    precision: str = "float32",
) -> dict[str, torch.Tensor]:
    """Zero the gradients and back-propagate the loss of batch x (the caller steps the
    optimizer once the loss is known to be finite); returns the named loss terms, detached.

    precision "bf16" runs the forward pass under bfloat16 autocast: the networks' convolutions
    and matrix products in bfloat16, the loss terms in float32 (Autoencoder.forward), the
    weights and the optimizer in float32.
    """
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        terms = step_model(x)
    optimizer.zero_grad(set_to_none=True)
    terms["loss"].backward()
    return {k: v.detach() for k, v in terms.items()}


def load_training_data(config: RunConfig, data: TrainingData | None = None) -> TrainingData:
    """The training split of the run's dataset (or `data`, given in memory): its seeded
    stratified `train_size` subset, cut before resizing (resizing 50k CIFAR-10 images to 64x64
    first would hold 2.4 GB)."""
    d = config.data
    if data is None:
        pool = PoolSplit.of(d)
        data = load_dataset(d.dataset, "train", d.data_dir, d.image_size, pool, resize_all=False)
    data = data.subset(d.train_size, seed=d.seed)
    if d.image_size is None:
        return data
    return data.resized(d.image_size)


def split_validation(
    data: TrainingData, fraction: float, seed: int
) -> tuple[TrainingData, TrainingData]:
    """(train, validation): a seeded, class-stratified `fraction` of `data` held out."""
    train, validation = stratified_split(len(data), fraction, data.labels, seed)
    return data.take(train), data.take(validation)


@torch.no_grad()
def validation_loss(
    model: Autoencoder, data: TrainingData, batch_size: int, seed: int
) -> dict[str, float]:
    """Mean loss terms over `data` with the model in eval mode (VIMAE without input noise),
    named "val_<term>". Its random draws (the MMD's prior draws, a VAE's reparameterisation)
    come from generators of their own, seeded alike every epoch (the loss moves only with the
    weights), so validating never changes the training trajectory."""
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    device = next(model.parameters()).device
    try:
        with (
            model.prior_draws(torch.Generator().manual_seed(seed)),
            torch.random.fork_rng(devices=[device] if device.type == "cuda" else []),
        ):
            torch.manual_seed(seed)
            for start in range(0, len(data), batch_size):
                x = data.batch(slice(start, start + batch_size), device)
                if x.shape[0] < 2:  # the unbiased MMD needs two codes
                    continue
                for key, value in model(x).items():
                    sums[key] = sums.get(key, 0.0) + value.item() * x.shape[0]
    finally:
        model.train(was_training)
    counted = len(data) - (len(data) % batch_size == 1)
    return {f"val_{k}": v / counted for k, v in sums.items()}


def prepare(config: RunConfig, data: TrainingData) -> RunConfig:
    """The resolved config: paper defaults filled in for this dataset and image shape."""
    model = resolve(config.model, config.data.dataset, data.image_shape)
    return RunConfig(model=model, data=config.data, train=config.train)


def data_identity(config: RunConfig, data: TrainingData) -> dict[str, Any]:
    """What a run trains on: dataset, where its files are, the image count and a digest of the
    images and labels (after subset and resize), so a resume on other data is refused."""
    d = config.data
    source = d.data_dir if d.data_dir is not None else str(default_data_dir())
    return {"dataset": d.dataset, "source": source, "images": len(data), "digest": data.digest()}


def _check_run_dir(
    run_dir: Path, config: RunConfig, resume: bool, identity: dict[str, Any]
) -> dict[str, Any] | None:
    """Checkpoint contents to resume from (tensors, metadata and the learning rate it trained
    with), or None for a fresh run; refuses to mix two runs or to raise the learning rate."""
    recorded = run_dir / CONFIG_FILE
    ckpt = run_dir / CHECKPOINT_FILE
    if ckpt.exists() and not recorded.is_file():
        raise VimaeError(
            f"{run_dir} holds a checkpoint but no {CONFIG_FILE}, so it is not clear which run "
            f"it is; restore {CONFIG_FILE} or choose another --out."
        )
    if resume and not ckpt.exists():
        raise VimaeError(
            f"--resume was given but {run_dir} has no checkpoint to continue; "
            "drop --resume to start the run afresh."
        )
    if recorded.is_file():
        old = load_config(run_dir)
        same = old.fingerprint(RESUMABLE_CHANGES) == config.fingerprint(RESUMABLE_CHANGES)
        if not same or (not resume and old.train.lr != config.train.lr):
            raise VimaeError(
                f"{run_dir} already holds a different run; choose another --out "
                "or delete that folder."
            )
        if not resume and ckpt.exists():
            raise VimaeError(
                f"{run_dir} already holds this run; pass --resume to continue it "
                "or choose another --out."
            )
    if not resume:
        return None
    tensors, metadata = read_checkpoint(ckpt)
    written = checkpoint_config(metadata, ckpt)
    if written.fingerprint(RESUMABLE_CHANGES) != config.fingerprint(RESUMABLE_CHANGES):
        raise VimaeError(
            f"checkpoint {ckpt} was written by an incompatible config; "
            "resume with the config it was trained with."
        )
    if config.train.lr > written.train.lr:
        raise VimaeError(
            f"a resume may lower the learning rate, not raise it: {run_dir} trained with "
            f"--lr {written.train.lr:g}, this resume asks for {config.train.lr:g}; resume with "
            f"--lr {written.train.lr:g} or lower."
        )
    seen = json.loads(metadata.get("data", "null"))  # None in checkpoints before data digests
    if seen is not None and seen.get("digest") != identity["digest"]:
        raise VimaeError(
            f"{run_dir} was trained on other data ({_shown(seen)}) than this resume loads "
            f"({_shown(identity)}); resume with the data it was trained on."
        )
    return {"tensors": tensors, "metadata": metadata, "lr": written.train.lr}


def _shown(identity: dict[str, Any]) -> str:
    """A data identity in words: count, dataset, source and the start of the digest."""
    digest = str(identity.get("digest"))[:12]
    return (
        f"{identity.get('images')} {identity.get('dataset')} images from "
        f"{identity.get('source')}, digest {digest}"
    )


def _finite_or_stop(
    values: dict[str, float], step: int, run_dir: Path | None, lr: float, saved_step: int
) -> None:
    """Stop at a non-finite loss with a sentence naming a change that `--resume` accepts."""
    if all(math.isfinite(v) for v in values.values()):
        return
    shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
    if run_dir is None:
        raise VimaeError(
            f"training diverged at step {step} ({shown}); train again with a lower learning "
            f"rate (lr={lr:g} now; try lr={lr / 10:.3g})."
        )
    command = f"vimae train --resume --out {shlex.quote(str(run_dir))} --lr {lr / 10:.3g}"
    raise VimaeError(
        f"training diverged at step {step} ({shown}); the checkpoint of step {saved_step} in "
        f"{run_dir} is kept: resume it with a lower learning rate, `{command}`."
    )


def _rng_states(model: Autoencoder) -> dict[str, torch.Tensor]:
    """Every rank's global RNG state and the shared prior generator's (a collective call)."""
    states = distributed.gather_rng_states(torch.get_rng_state())
    rng = {f"rng.cpu.{r}": s for r, s in enumerate(states)}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["rng.cuda"] = torch.cuda.get_rng_state()
    rng["rng.prior"] = model.prior_generator.get_state()
    return rng


def _restore_rng(model: Autoencoder, tensors: dict[str, torch.Tensor], rank: int) -> None:
    """Set the RNG states a checkpoint holds, each checked for the generator's size first."""
    if f"rng.cpu.{rank}" not in tensors:
        raise VimaeError(
            "the checkpoint was written by a run with fewer processes; resume it "
            "with the process count it was started with."
        )
    expected = torch.get_rng_state()
    for key in (f"rng.cpu.{rank}", "rng.prior"):
        state = tensors.get(key)
        if state is None or state.dtype != expected.dtype or state.shape != expected.shape:
            raise VimaeError(
                f"the checkpoint's random generator state {key} is missing or has the wrong "
                "size; it is damaged: resume from a copy or train again."
            )
    torch.set_rng_state(tensors[f"rng.cpu.{rank}"])
    if "rng.cuda" in tensors and torch.cuda.is_available() and rank == 0:
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    model.prior_generator.set_state(tensors["rng.prior"])


def fit(
    config: RunConfig,
    run_dir: str | Path | None,
    resume: bool = False,
    data: TrainingData | None = None,
    validation: TrainingData | None = None,
    networks: tuple[torch.nn.Module, torch.nn.Module] | None = None,
    loggers: Sequence[Logger] = (),
) -> Autoencoder:
    """Train `config` into `run_dir` (config.json, data.json, metrics.jsonl,
    checkpoint.safetensors, and best.safetensors with validation); `resume` continues the
    checkpoint there (which must exist). With `run_dir` None nothing is written: the model is
    returned with its epoch rows in `model.history`.

    `data` overrides loading the training split; `validation` gives the validation images
    (else `data.val_fraction` holds out a stratified share of the training images); `networks`
    is an (encoder, decoder) pair of one's own (`vimae.models.custom`, arch "custom"); `loggers`
    receive every row of the run as metrics.jsonl does (`vimae.runs.loggers`). Every value is
    checked before data is loaded; the folder is locked while this process trains into it.
    """
    run_dir = Path(run_dir) if run_dir is not None else None
    validate(config)
    made = run_dir is not None and not run_dir.exists()
    try:
        return _fit(config, run_dir, resume, data, validation, networks, loggers)
    except BaseException:
        if made:  # a start refused before the folder became the run's leaves nothing behind
            _remove_if_unused(run_dir)
        raise


def _remove_if_unused(run_dir: Path) -> None:
    """Delete a folder this process made if nothing but its lock is in it."""
    if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= {LOCK_FILE}:
        (run_dir / LOCK_FILE).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            run_dir.rmdir()


def _fit(
    config: RunConfig,
    run_dir: Path | None,
    resume: bool,
    data: TrainingData | None,
    validation: TrainingData | None,
    networks: tuple[torch.nn.Module, torch.nn.Module] | None,
    loggers: Sequence[Logger] = (),
) -> Autoencoder:
    """`fit` once the config is valid (see there)."""
    device = resolve_device(config.train.device)
    if config.train.precision == "bf16" and (note := bf16_slower_note(device)) is not None:
        warnings.warn(VimaeNote(note), stacklevel=3)
    world = distributed.init_world(device.type)
    # Rank 0 alone writes; it holds the folder's lock for the whole run.
    lock = run_lock(run_dir, "vimae train") if writes(world, run_dir) else contextlib.nullcontext()
    with lock:
        data = load_training_data(config, data)
        d = config.data
        if validation is None and d.val_fraction > 0:
            data, validation = split_validation(data, d.val_fraction, d.seed)
        if config.train.patience and validation is None:
            raise VimaeError(
                "train.patience stops on the validation loss: give --val-fraction too "
                "(e.g. --val-fraction 0.1)."
            )
        config = prepare(config, data)
        if validation is not None and validation.image_shape != data.image_shape:
            raise VimaeError(
                f"the validation images are {validation.image_shape} but the training images "
                f"{data.image_shape}; give validation data of the same shape."
            )
        run = _start(config, run_dir, resume, data, device, world, networks)
        _open_folder(run, data, validation, loggers)
        _loop(run, data, validation)
        if run.world.is_main:
            _check_learned(run, validation if validation is not None else data)
    distributed.barrier()
    run.model.history = run.log.history
    return run.model.eval()


LEARN_CHECK_IMAGES = 1000  # images the end-of-run check reconstructs (a seeded draw)


def _check_learned(run: "Run", data: TrainingData) -> None:
    """After training, compare the reconstruction error on (up to 1,000 of) `data` with the
    error of their mean image: a model no better than the mean image learned nothing about its
    input (too few steps, a collapsed encoder), and says so in a note with what to change. The
    numbers go to the log as a "check" row."""
    sample = data.subset(min(len(data), LEARN_CHECK_IMAGES), seed=0)
    images = sample.load().images if isinstance(sample, StreamData) else sample.images
    model = run.model.eval()
    with torch.no_grad():
        x_hat = batched(model.reconstruct, images, device=run.device)
    recon, baseline = reconstruction_error(images, x_hat), mean_image_error(images)
    run.log.reopen()
    try:
        run.log.write(
            {
                "kind": "check",
                "step": run.progress.step,
                "reconstruction": recon,
                "reconstruction_mean_image": baseline,
            }
        )
    finally:
        run.log.close()
    if learned_nothing(recon, baseline):
        warnings.warn(
            VimaeNote(
                f"the model learned nothing about its input: its reconstruction error "
                f"{recon:.4g} is no better than that of the images' mean image ({baseline:.4g}) "
                f"after "
                f"{run.progress.step} steps; train longer (--steps or --epochs), or lower "
                "--lam / --beta, or raise --recon-weight"
            ),
            stacklevel=3,
        )


def writes(world: distributed.World, run_dir: Path | None) -> bool:
    """Whether this process writes the run folder: rank 0 of a run with a folder; the other ranks
    and in-memory runs do not."""
    return world.is_main and run_dir is not None


@dataclass
class Progress:
    """Where a run stands, saved in every checkpoint: the epoch and batch to do next, the
    optimiser steps done, this epoch's running sums of the loss terms, the best validation loss
    so far ({"val_loss", "epoch"}) and whether early stopping ended the run."""

    epoch: int = 0
    batch: int = 0
    step: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    best: dict[str, Any] | None = None
    stopped: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint's record (the keys of runs made before early stopping and validation
        appear only when set, so such checkpoints read back the same)."""
        record: dict[str, Any] = {
            "epoch": self.epoch,
            "batch": self.batch,
            "step": self.step,
            "sums": self.sums,
        }
        if self.best is not None:
            record["best"] = self.best
        if self.stopped:
            record["stopped"] = True
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> "Progress":
        return cls(
            record["epoch"],
            record["batch"],
            record["step"],
            dict(record["sums"]),
            record.get("best"),
            bool(record.get("stopped", False)),
        )


@dataclass
class Run:
    """What the training loop works with once the model is built (and maybe resumed)."""

    config: RunConfig
    run_dir: Path | None
    model: Autoencoder
    step_model: torch.nn.Module  # the model, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    progress: Progress
    world: distributed.World
    device: torch.device
    identity: dict[str, Any]
    n_batches: int
    resumed: bool
    lr_change: float | None  # the learning rate before a resume lowered it
    saved_step: int = 0  # the step of the last checkpoint
    log: RunLog | None = None
    spikes: SpikeWatch | None = None  # made by the loop, from the train config

    @property
    def writes(self) -> bool:
        return writes(self.world, self.run_dir)

    @property
    def total_steps(self) -> int:
        """The optimiser steps of the whole run: `train.steps`, else every batch of every epoch,
        and at least `train.min_steps`."""
        t = self.config.train
        if t.steps is not None:
            return t.steps
        return max(t.epochs * self.n_batches, t.min_steps)

    @property
    def epochs(self) -> int:
        """The epochs the run passes through (the last one perhaps in part)."""
        return math.ceil(self.total_steps / self.n_batches)

    def checkpoint(self) -> None:
        """Save weights, optimiser, config, progress and every rank's RNG state (collective)."""
        if self.run_dir is None:
            return
        rng = _rng_states(self.model)  # every rank takes part
        if self.world.is_main:
            path = self.run_dir / CHECKPOINT_FILE
            progress = self.progress.to_dict()
            save_checkpoint(
                path, self.model, self.optimizer, self.config, progress, rng, self.identity
            )
        self.saved_step = self.progress.step


def _start(
    config: RunConfig,
    run_dir: Path | None,
    resume: bool,
    data: TrainingData,
    device: torch.device,
    world: distributed.World,
    networks: tuple[torch.nn.Module, torch.nn.Module] | None = None,
) -> Run:
    """Build the model and optimiser and, when resuming, load the checkpoint into them."""
    t = config.train
    if device.type == "cuda" and world.size > 1:
        device = torch.device("cuda", world.local_rank)
    identity = data_identity(config, data)
    previous = _check_run_dir(run_dir, config, resume, identity) if run_dir else None
    n_batches = len(data) // t.batch_size
    if n_batches == 0:
        held = config.data.val_fraction
        if held > 0:
            raise VimaeError(
                f"{named('data.val_fraction')} {held:g} leaves {len(data)} training images, "
                f"fewer than one batch of {t.batch_size}; lower --val-fraction (or "
                "--batch-size)."
            )
        raise VimaeError(
            f"the training set has {len(data)} images, fewer than one batch of "
            f"{t.batch_size}; lower --batch-size (train.batch_size)."
        )
    torch.manual_seed(t.seed)
    if networks is not None:  # one's own: they must fit the data and d before anything runs
        x = data.subset(min(2, len(data)), seed=0)
        sample = x.load().images if isinstance(x, StreamData) else x.images
        check_networks(*networks, sample, encoder_outputs(config.model), config.model.latent_dim)
    model = build_model(config.model, networks, prior_seed=t.seed + 1).to(device)
    if world.rank > 0:
        torch.manual_seed(t.seed + 7919 * world.rank)  # own encoder noise on every rank
    optimizer = build_optimizer(model, t)
    progress, lr_change = Progress(), None
    if previous is not None:
        ckpt_path = run_dir / CHECKPOINT_FILE
        progress = Progress.from_dict(read_progress(previous["metadata"], n_batches, ckpt_path))
        load_weights(model, previous["tensors"], ckpt_path)
        restore_optimizer(optimizer, previous["tensors"], previous["metadata"])
        _restore_rng(model, previous["tensors"], world.rank)
        lr_change = previous["lr"] if previous["lr"] != t.lr else None
    step_model: torch.nn.Module = model
    if world.size > 1:
        if device.type == "cuda":
            step_model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        step_model = torch.nn.parallel.DistributedDataParallel(
            step_model, device_ids=[device.index] if device.type == "cuda" else None
        )
    return Run(
        config, run_dir, model, step_model, optimizer, progress, world, device, identity,
        n_batches, previous is not None, lr_change, saved_step=progress.step,
    )  # fmt: skip


def _open_folder(
    run: Run,
    data: TrainingData,
    validation: TrainingData | None,
    extra_loggers: Sequence[Logger] = (),
) -> None:
    """Make the folder this run's (only now, with the model built: a start that failed earlier
    leaves nothing that blocks the corrected command), write step 0's checkpoint, open the log."""
    t, run_dir = run.config.train, run.run_dir
    if run.writes:
        remove_stale_temporaries(run_dir)  # a run killed mid-write leaves its temporary file
        repair_log(run_dir / METRICS_FILE, run.progress.step)  # rows after the checkpoint, torn
        save_config(run.config, run_dir)
        record = {"train": {**data.describe(), **run.identity}}
        if validation is not None:
            record["validation"] = validation.describe()
        atomic_write_text(run_dir / DATA_FILE, json.dumps(record, indent=2) + "\n")
    if not run.resumed:
        run.checkpoint()  # step 0: a run that diverges early still has a checkpoint to resume
    loggers: list[Logger] = []
    if run.writes and t.tensorboard:
        loggers.append(TensorBoardLogger(run_dir / "tensorboard"))
    if run.writes and t.mlflow:
        loggers.append(MlflowLogger(run_dir, flat_settings(run.config.to_dict())))
    if run.world.is_main:
        loggers += extra_loggers
    run.log = RunLog(
        run_dir / METRICS_FILE if run.writes else None,
        loggers,
        console=t.progress and run.world.is_main,
        epochs=run.epochs,
    )
    if run.lr_change is not None:
        step = run.progress.step
        run.log.write({"kind": "lr", "step": step, "lr": t.lr, "previous": run.lr_change})
    if run.log.console:
        print(estimate_line(run, data), file=sys.stderr, flush=True)


def time_step(run: "Run", data: TrainingData, repeats: int = 2) -> float:
    """Seconds of one training step, timed on a copy of the model (its own optimiser, its own
    random draws), so that the run itself is not touched: the same weights, batch-norm
    statistics and random state as if it had not been timed."""
    t = run.config.train
    model = copy.deepcopy(run.model).train()
    optimizer = build_optimizer(model, t)
    index = torch.arange(min(t.batch_size, len(data)))
    devices = [run.device] if run.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), model.prior_draws(torch.Generator()):
        if isinstance(data, ImageData):
            x = data.batch(index, run.device)
        else:  # streamed: uint8 pixels, converted as a training batch is
            x = data.read(index).to(run.device).float() / 255
        times = []
        for _ in range(repeats + 1):  # the first step warms caches up: not counted
            started = time.perf_counter()
            compute_gradients(model, optimizer, x, t.precision)
            optimizer.step()
            if run.device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
    return min(times[1:])


def estimate_line(run: "Run", data: TrainingData) -> str:
    """ "about 12 min on this machine: 3,000 steps of 0.24 s (cpu)", from one timed step; a
    long CPU run is pointed at --preset quick."""
    left = run.total_steps - run.progress.step
    seconds = time_step(run, data) * left
    line = (
        f"about {_duration(seconds)} on this machine: {left:,} steps of "
        f"{seconds / max(left, 1):.3g} s ({run.device.type})"
    )
    if seconds > 600 and run.config.train.min_steps == 0:
        line += "; --preset quick trains a narrower network for fewer steps"
    return line


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _loop(run: Run, data: TrainingData, validation: TrainingData | None) -> None:
    """Train epoch after epoch from where `run.progress` stands; checkpoint each epoch's end."""
    t, progress = run.config.train, run.progress
    run.model.train()
    try:
        for epoch in range(progress.epoch, run.epochs):
            if progress.stopped or progress.step >= run.total_steps:
                break
            started, first_batch = time.perf_counter(), progress.batch
            _train_epoch(run, data, epoch)
            seconds = time.perf_counter() - started
            done = progress.batch or run.n_batches  # batches of this epoch trained (part-way)
            row = {"kind": "epoch", "epoch": epoch, "step": progress.step}
            row["seconds"] = round(seconds, 3)
            row.update({k: v / done for k, v in progress.sums.items()})
            if done < run.n_batches:
                row["batches"] = done  # `train.steps` ended this epoch part-way
            if validation is not None:
                row.update(validation_loss(run.model, validation, t.batch_size, t.seed))
                _keep_best(run, row)
            run.log.write(row, (done - first_batch) * t.batch_size / max(seconds, 1e-9))
            if done == run.n_batches:
                progress.epoch, progress.batch, progress.sums = epoch + 1, 0, {}
            _maybe_stop_early(run)
            run.checkpoint()
    finally:
        run.log.close()


def _train_epoch(run: Run, data: TrainingData, epoch: int) -> None:
    """The steps of one epoch, from `run.progress.batch` on."""
    t, progress = run.config.train, run.progress
    rows = distributed.shard(t.batch_size, run.world)
    order = epoch_order(len(data), t.seed, epoch)
    bar = progress_bar(
        range(progress.batch, run.n_batches), f"epoch {epoch + 1}/{run.epochs}", t.progress
    )
    batches = epoch_batches(
        data, order, progress.batch, run.n_batches, t.batch_size, rows, run.device, t.workers
    )  # in memory, or streamed by DataLoader workers: the same batches either way
    report = Heartbeat(run, epoch) if run.log.console else None
    for b, x in zip(bar, batches, strict=True):
        if progress.step >= run.total_steps:  # `train.steps` reached part-way through
            break
        if report is not None:
            report.maybe(b)
        _set_lr(run.optimizer, learning_rate(progress.step, run.total_steps, t.lr, t.schedule))
        terms = compute_gradients(run.step_model, run.optimizer, x, t.precision)
        step = progress.step + 1
        values = distributed.mean_over_ranks({k: v.item() for k, v in terms.items()})
        _finite_or_stop(values, step, run.run_dir, t.lr, run.saved_step)
        _note_a_spike(run, values["loss"], step)
        logged = step % t.log_every == 0
        grad_norm = _clip_or_measure(run.model, t.clip_norm, measure=logged)
        run.optimizer.step()
        for k, v in values.items():
            progress.sums[k] = progress.sums.get(k, 0.0) + v
        progress.step, progress.batch = step, b + 1
        if logged:
            row = {"kind": "step", "epoch": epoch, "step": step, **values, "grad_norm": grad_norm}
            run.log.write(row)
        if t.checkpoint_every and step % t.checkpoint_every == 0 and b + 1 < run.n_batches:
            run.checkpoint()


def _clip_or_measure(model: torch.nn.Module, clip_norm: float | None, measure: bool) -> float:
    """The global L2 norm of the model's gradients before any clipping (NaN when neither
    clipped nor `measure`d, to spare the narrow networks' steps the pass): written to the step
    rows as grad_norm, so that `--clip-norm` can be set from a run's ordinary steps."""
    if clip_norm is not None:
        return float(torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm))
    return _gradient_norm(model) if measure else math.nan


def _gradient_norm(model: torch.nn.Module) -> float:
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    return float(torch.nn.utils.get_total_norm(grads)) if grads else 0.0


def _note_a_spike(run: Run, loss: float, step: int) -> None:
    """Log a step whose loss jumped by orders of magnitude, with its gradient norm before any
    clipping, and say the run's first one where no clip caps it (runs/spike.py)."""
    t = run.config.train
    if run.spikes is None:
        run.spikes = SpikeWatch(t.clip_norm, t.beta2)
    previous = run.spikes.jumped(loss)
    if previous is None:
        return
    spike = {"loss": loss, "previous_loss": previous, "grad_norm": _gradient_norm(run.model)}
    run.log.write({"kind": "spike", "step": step, **spike})
    note = run.spikes.note(loss, previous, step)
    if note is not None and run.world.is_main:
        warnings.warn(VimaeNote(note), stacklevel=2)


HEARTBEAT_SECONDS = 30.0  # a line within an epoch this often, where no progress bar is drawn


class Heartbeat:
    """Where no progress bar is drawn (output to a file or a pipe), a line every 30 s within an
    epoch: "epoch 1/80  step 120/500 (24%)  loss 35.2  210 img/s", so that a long epoch is not
    silence."""

    def __init__(self, run: "Run", epoch: int) -> None:
        self.run, self.epoch = run, epoch
        self.started = self.last = time.perf_counter()
        self.first = run.progress.batch
        self.quiet = sys.stderr.isatty()  # a terminal has its progress bar

    def maybe(self, batch: int) -> None:
        now = time.perf_counter()
        if self.quiet or now - self.last < HEARTBEAT_SECONDS or batch == self.first:
            return
        self.last = now
        run, t = self.run, self.run.config.train
        done = batch - self.first
        loss = run.progress.sums.get("loss", 0.0) / max(batch, 1)
        rate = done * t.batch_size / (now - self.started)
        print(
            f"epoch {self.epoch + 1}/{run.epochs}  step {batch}/{run.n_batches} "
            f"({100 * batch / run.n_batches:.0f}%)  loss {loss:.4g}  {rate:,.0f} img/s",
            file=sys.stderr,
            flush=True,
        )


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def _maybe_stop_early(run: Run) -> None:
    """Mark the run stopped when the validation loss has not improved for `patience` epochs."""
    patience, progress = run.config.train.patience, run.progress
    if not patience or progress.epoch - progress.best["epoch"] < patience:
        return
    progress.stopped = True
    if run.log.console:
        best = progress.best
        print(
            f"early stop: val_loss has not improved for {patience} epochs "
            f"(best {best['val_loss']:.4g} after epoch {best['epoch']})"
        )


def _keep_best(run: Run, row: dict[str, Any]) -> None:
    """Track the lowest validation loss in `run.progress.best`; write the weights that reach it
    to RUN/best.safetensors (weights only, beside the resumable checkpoint)."""
    best = run.progress.best
    if best is not None and not row["val_loss"] < best["val_loss"]:
        return
    run.progress.best = {"val_loss": row["val_loss"], "epoch": row["epoch"] + 1}
    if run.writes:
        extra = {"best": json.dumps(run.progress.best)}
        save_weights(run.run_dir / BEST_FILE, run.model, run.config, extra)
