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
import json
import math
import shlex
import time
from pathlib import Path
from typing import Any

import torch

from vimae import distributed
from vimae.atomic import atomic_write_text, remove_stale_temporaries
from vimae.checkpoint import (
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
from vimae.config import CONFIG_FILE, RunConfig, TrainConfig, load_config, save_config, validate
from vimae.data import ImageData, PoolSplit, default_data_dir, load_dataset
from vimae.data.split import stratified_split
from vimae.data.stream import StreamData, epoch_batches
from vimae.device import resolve_device
from vimae.errors import VimaeError
from vimae.feedback import RunLog, progress_bar
from vimae.model import Autoencoder, build_model, resolve
from vimae.runfolder import DATA_FILE, METRICS_FILE, repair_log, run_lock

# What training reads: a split in memory, or shards streamed from disk (vimae.data.stream).
TrainingData = ImageData | StreamData

# A resume may lower the learning rate (the advice after a divergence); nothing else may change.
RESUMABLE_CHANGES = ("train.lr",)


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled example order of one epoch, a function of (seed, epoch) only."""
    generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % 2**64)
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
    was_training, generator = model.training, model.prior_generator
    model.eval()
    model.prior_generator = torch.Generator().manual_seed(seed)
    sums: dict[str, float] = {}
    device = next(model.parameters()).device
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            for start in range(0, len(data), batch_size):
                x = data.batch(slice(start, start + batch_size), device)
                if x.shape[0] < 2:  # the unbiased MMD needs two codes
                    continue
                for key, value in model(x).items():
                    sums[key] = sums.get(key, 0.0) + value.item() * x.shape[0]
    finally:
        model.train(was_training)
        model.prior_generator = generator
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
    """Checkpoint contents to resume from, or None for a fresh run; refuses to mix two runs."""
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
    seen = json.loads(metadata.get("data", "null"))  # None in checkpoints before data digests
    if seen is not None and seen.get("digest") != identity["digest"]:
        raise VimaeError(
            f"{run_dir} was trained on other data ({_shown(seen)}) than this resume loads "
            f"({_shown(identity)}); resume with the data it was trained on."
        )
    return {"tensors": tensors, "metadata": metadata}


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


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> float | None:
    """Give every parameter group learning rate `lr`; the previous one if it changed."""
    previous = optimizer.param_groups[0]["lr"]
    if previous == lr:
        return None
    for group in optimizer.param_groups:
        group["lr"] = lr
    return previous


def fit(
    config: RunConfig,
    run_dir: str | Path | None,
    resume: bool = False,
    data: TrainingData | None = None,
    validation: TrainingData | None = None,
) -> Autoencoder:
    """Train `config` into `run_dir` (config.json, data.json, metrics.jsonl,
    checkpoint.safetensors, and best.safetensors with validation); `resume` continues the
    checkpoint there (which must exist). With `run_dir` None nothing is written: the model is
    returned with its epoch rows in `model.history`.

    `data` overrides loading the training split; `validation` gives the validation images
    (else `data.val_fraction` holds out a stratified share of the training images). Every value
    is checked before data is loaded; the folder is locked while this process trains into it.
    """
    run_dir = Path(run_dir) if run_dir is not None else None
    validate(config)
    device = resolve_device(config.train.device)
    world = distributed.init_world(device.type)
    # Rank 0 alone writes; it holds the folder's lock for the whole run.
    writes = world.is_main and run_dir is not None
    lock = run_lock(run_dir, "vimae train") if writes else contextlib.nullcontext()
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
        return _train(config, run_dir, resume, data, validation, device, world)


def _train(
    config: RunConfig,
    run_dir: Path | None,
    resume: bool,
    data: TrainingData,
    validation: TrainingData | None,
    device: torch.device,
    world: distributed.World,
) -> Autoencoder:
    """The body of `fit` once values, device, folder and data are settled."""
    t = config.train
    if device.type == "cuda" and world.size > 1:
        device = torch.device("cuda", world.local_rank)
    rows = distributed.shard(t.batch_size, world)
    identity = data_identity(config, data)
    previous = _check_run_dir(run_dir, config, resume, identity) if run_dir else None
    n_batches = len(data) // t.batch_size
    if n_batches == 0:
        raise VimaeError(
            f"the training set has {len(data)} images, fewer than one batch of "
            f"{t.batch_size}; lower train.batch_size."
        )

    torch.manual_seed(t.seed)
    model = build_model(config.model).to(device)
    model.prior_generator = torch.Generator().manual_seed(t.seed + 1)
    if world.rank > 0:
        torch.manual_seed(t.seed + 7919 * world.rank)  # own encoder noise on every rank
    optimizer = build_optimizer(model, t)
    progress: dict[str, Any] = {"epoch": 0, "batch": 0, "step": 0, "sums": {}}
    ckpt_path = run_dir / CHECKPOINT_FILE if run_dir else None
    lr_change = None
    if previous is not None:
        progress = read_progress(previous["metadata"], n_batches, ckpt_path)
        load_weights(model, previous["tensors"], ckpt_path)
        restore_optimizer(optimizer, previous["tensors"], previous["metadata"])
        _restore_rng(model, previous["tensors"], world.rank)
        lr_change = _set_lr(optimizer, t.lr)
    step_model: torch.nn.Module = model
    if world.size > 1:
        if device.type == "cuda":
            step_model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        step_model = torch.nn.parallel.DistributedDataParallel(
            step_model, device_ids=[device.index] if device.type == "cuda" else None
        )
    saved_step = progress["step"]
    writes = world.is_main and run_dir is not None

    def checkpoint() -> None:
        nonlocal saved_step
        if run_dir is None:
            return
        rng = _rng_states(model)  # collective: every rank takes part
        if world.is_main:
            save_checkpoint(ckpt_path, model, optimizer, config, progress, rng, identity)
        saved_step = progress["step"]

    # Only now, with the model built, does the folder become this run's: a start that failed
    # above leaves nothing that blocks the corrected command.
    if writes:
        remove_stale_temporaries(run_dir)  # a run killed mid-write leaves its temporary file
        repair_log(run_dir / METRICS_FILE, progress["step"])  # rows after the checkpoint, torn
        save_config(config, run_dir)
        record = {"train": {**data.describe(), **identity}}
        if validation is not None:
            record["validation"] = validation.describe()
        atomic_write_text(run_dir / DATA_FILE, json.dumps(record, indent=2) + "\n")
    if previous is None:
        checkpoint()  # step 0: a run that diverges early still has a checkpoint to resume
    log = RunLog(
        run_dir / METRICS_FILE if writes else None,
        run_dir / "tensorboard" if writes and t.tensorboard else None,
        console=t.progress and world.is_main,
        epochs=t.epochs,
    )
    model.train()
    try:
        if lr_change is not None:
            log.write({"kind": "lr", "step": progress["step"], "lr": t.lr, "previous": lr_change})
        for epoch in range(progress["epoch"], t.epochs):
            if progress.get("stopped"):
                break
            order = epoch_order(len(data), t.seed, epoch)
            description = f"epoch {epoch + 1}/{t.epochs}"
            bar = progress_bar(range(progress["batch"], n_batches), description, t.progress)
            started = time.perf_counter()
            first_batch = progress["batch"]
            batches = epoch_batches(
                data, order, progress["batch"], n_batches, t.batch_size, rows, device, t.workers
            )  # in memory, or streamed by DataLoader workers: the same batches either way
            for b, x in zip(bar, batches, strict=True):
                terms = compute_gradients(step_model, optimizer, x, t.precision)
                step = progress["step"] + 1
                values = distributed.mean_over_ranks({k: v.item() for k, v in terms.items()})
                _finite_or_stop(values, step, run_dir, t.lr, saved_step)
                optimizer.step()
                for k, v in values.items():
                    progress["sums"][k] = progress["sums"].get(k, 0.0) + v
                progress["step"], progress["batch"] = step, b + 1
                if step % t.log_every == 0:
                    log.write({"kind": "step", "epoch": epoch, "step": step, **values})
                if t.checkpoint_every and step % t.checkpoint_every == 0 and b + 1 < n_batches:
                    checkpoint()
            seconds = time.perf_counter() - started
            row = {"kind": "epoch", "epoch": epoch, "step": progress["step"]}
            row["seconds"] = round(seconds, 3)
            row.update({k: v / n_batches for k, v in progress["sums"].items()})
            if validation is not None:
                row.update(validation_loss(model, validation, t.batch_size, t.seed))
                _keep_best(model, config, progress, row, run_dir if writes else None)
            images_per_second = (n_batches - first_batch) * t.batch_size / max(seconds, 1e-9)
            log.write(row, images_per_second)
            progress.update(epoch=epoch + 1, batch=0, sums={})
            if t.patience and epoch + 1 - progress["best"]["epoch"] >= t.patience:
                progress["stopped"] = True
                if log.console:
                    best = progress["best"]
                    print(
                        f"early stop: val_loss has not improved for {t.patience} epochs "
                        f"(best {best['val_loss']:.4g} after epoch {best['epoch']})"
                    )
            checkpoint()
    finally:
        log.close()
    distributed.barrier()
    model.history = log.history
    return model.eval()


def _keep_best(
    model: Autoencoder,
    config: RunConfig,
    progress: dict[str, Any],
    row: dict[str, Any],
    run_dir: Path | None,
) -> None:
    """Track the lowest validation loss in `progress["best"]`; write the weights that reach it
    to RUN/best.safetensors (weights only, beside the resumable checkpoint)."""
    best = progress.get("best")
    if best is not None and not row["val_loss"] < best["val_loss"]:
        return
    progress["best"] = {"val_loss": row["val_loss"], "epoch": row["epoch"] + 1}
    if run_dir is not None:
        save_weights(run_dir / BEST_FILE, model, config, {"best": json.dumps(progress["best"])})
