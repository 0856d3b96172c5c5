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

import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from vimae import distributed
from vimae.allocator import keep_freed_memory
from vimae.atomic import atomic_write_text, remove_stale_temporaries
from vimae.checkpoint import (
    CHECKPOINT_FILE,
    checkpoint_config,
    load_weights,
    read_checkpoint,
    restore_optimizer,
    save_checkpoint,
)
from vimae.config import CONFIG_FILE, RunConfig, TrainConfig, save_config, validate
from vimae.data import ImageData, PoolSplit, load_dataset
from vimae.errors import VimaeError
from vimae.model import Autoencoder, build_model, resolve

METRICS_FILE = "metrics.jsonl"
# What the run trained on: dataset name, image count and shape, classes and their counts.
DATA_FILE = "data.json"


def pick_device(name: str) -> torch.device:
    """ "auto" picks CUDA, then Apple MPS, then the CPU; any other name is used as given."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise VimaeError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps.") from None


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled example order of one epoch, a function of (seed, epoch) only."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
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


def load_training_data(config: RunConfig) -> ImageData:
    """The training split of the run's dataset: its seeded stratified `train_size` subset, cut
    before resizing (resizing 50k CIFAR-10 images to 64x64 first would hold 2.4 GB)."""
    d = config.data
    data = load_dataset(d.dataset, "train", d.data_dir, pool=PoolSplit.of(d))
    data = data.subset(d.train_size, seed=d.seed)
    if d.image_size is None:
        return data
    return data.resized(d.image_size)


def prepare(config: RunConfig, data: ImageData) -> RunConfig:
    """The resolved config: paper defaults filled in for this dataset and image shape."""
    validate(config)
    model = resolve(config.model, config.data.dataset, data.image_shape)
    return RunConfig(model=model, data=config.data, train=config.train)


def _trim_log(path: Path, last_step: int) -> None:
    """Drop log lines written after the checkpoint a run resumes from."""
    if not path.exists():
        return
    kept = [
        line
        for line in path.read_text().splitlines()
        if line.strip() and json.loads(line)["step"] <= last_step
    ]
    path.write_text("".join(line + "\n" for line in kept))


def _check_run_dir(run_dir: Path, config: RunConfig, resume: bool) -> dict[str, Any] | None:
    """Checkpoint contents to resume from, or None for a fresh run; refuses to mix two runs."""
    recorded = run_dir / CONFIG_FILE
    ckpt = run_dir / CHECKPOINT_FILE
    if recorded.exists():
        old = RunConfig.from_dict(json.loads(recorded.read_text()))
        if old.fingerprint() != config.fingerprint():
            raise VimaeError(
                f"{run_dir} already holds a different run; choose another --out "
                "or delete that folder."
            )
        if not resume and ckpt.exists():
            raise VimaeError(
                f"{run_dir} already holds this run; pass --resume to continue it "
                "or choose another --out."
            )
    if not (resume and ckpt.exists()):
        return None
    tensors, metadata = read_checkpoint(ckpt)
    if checkpoint_config(metadata).fingerprint() != config.fingerprint():
        raise VimaeError(
            f"checkpoint {ckpt} was written by an incompatible config; "
            "resume with the config it was trained with."
        )
    return {"tensors": tensors, "metadata": metadata, "progress": json.loads(metadata["progress"])}


def _finite_or_stop(values: dict[str, float], step: int, run_dir: Path) -> None:
    if all(math.isfinite(v) for v in values.values()):
        return
    shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
    raise VimaeError(
        f"training diverged at step {step} ({shown}); the last good checkpoint in "
        f"{run_dir} is kept: lower train.lr or the loss weights and --resume."
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
    if f"rng.cpu.{rank}" not in tensors:
        raise VimaeError(
            "the checkpoint was written by a run with fewer processes; resume it "
            "with the process count it was started with."
        )
    torch.set_rng_state(tensors[f"rng.cpu.{rank}"])
    if "rng.cuda" in tensors and torch.cuda.is_available() and rank == 0:
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    model.prior_generator.set_state(tensors["rng.prior"])


def fit(
    config: RunConfig, run_dir: str | Path, resume: bool = False, data: ImageData | None = None
) -> Autoencoder:
    """Train `config` into `run_dir` (config.json, metrics.jsonl, checkpoint.safetensors).

    `data` overrides loading the training split (tests pass a small in-memory set).
    """
    keep_freed_memory()  # no page faults on every step's large activations (allocator.py)
    run_dir = Path(run_dir)
    data = load_training_data(config) if data is None else data
    config = prepare(config, data)
    t = config.train
    device = pick_device(t.device)
    world = distributed.init_world(device.type)
    if device.type == "cuda" and world.size > 1:
        device = torch.device("cuda", world.local_rank)
    rows = distributed.shard(t.batch_size, world)
    previous = _check_run_dir(run_dir, config, resume)
    if world.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(run_dir)  # a run killed mid-write leaves its temporary file
        save_config(config, run_dir)
        record = {"train": data.describe()}
        atomic_write_text(run_dir / DATA_FILE, json.dumps(record, indent=2) + "\n")

    torch.manual_seed(t.seed)
    model = build_model(config.model).to(device)
    model.prior_generator = torch.Generator().manual_seed(t.seed + 1)
    if world.rank > 0:
        torch.manual_seed(t.seed + 7919 * world.rank)  # own encoder noise on every rank
    optimizer = build_optimizer(model, t)
    progress: dict[str, Any] = {"epoch": 0, "batch": 0, "step": 0, "sums": {}}
    log_path = run_dir / METRICS_FILE
    if previous is not None:
        load_weights(model, previous["tensors"], run_dir / CHECKPOINT_FILE)
        restore_optimizer(optimizer, previous["tensors"], previous["metadata"])
        _restore_rng(model, previous["tensors"], world.rank)
        progress = previous["progress"]
    step_model: torch.nn.Module = model
    if world.size > 1:
        if device.type == "cuda":
            step_model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        step_model = torch.nn.parallel.DistributedDataParallel(
            step_model, device_ids=[device.index] if device.type == "cuda" else None
        )

    images = data.images
    n_batches = len(data) // t.batch_size
    if n_batches == 0:
        raise VimaeError(
            f"the training set has {len(data)} images, fewer than one batch of "
            f"{t.batch_size}; lower train.batch_size."
        )
    ckpt_path = run_dir / CHECKPOINT_FILE

    def checkpoint() -> None:
        rng = _rng_states(model)  # collective: every rank takes part
        if world.is_main:
            save_checkpoint(ckpt_path, model, optimizer, config, progress, rng)

    model.train()
    log = open(log_path, "a") if world.is_main else None  # noqa: SIM115 (closed below)
    if world.is_main:
        _trim_log(log_path, progress["step"])
    try:
        for epoch in range(progress["epoch"], t.epochs):
            order = epoch_order(len(data), t.seed, epoch)
            bar = tqdm(
                range(progress["batch"], n_batches),
                desc=f"epoch {epoch + 1}/{t.epochs}",
                disable=not (t.progress and world.is_main),
                leave=False,
            )
            started = time.perf_counter()
            for b in bar:
                batch = order[b * t.batch_size : (b + 1) * t.batch_size][rows]
                x = images[batch].to(device, non_blocking=True)
                terms = compute_gradients(step_model, optimizer, x, t.precision)
                step = progress["step"] + 1
                values = distributed.mean_over_ranks({k: v.item() for k, v in terms.items()})
                _finite_or_stop(values, step, run_dir)
                optimizer.step()
                for k, v in values.items():
                    progress["sums"][k] = progress["sums"].get(k, 0.0) + v
                progress["step"], progress["batch"] = step, b + 1
                if log is not None and step % t.log_every == 0:
                    record = {"kind": "step", "epoch": epoch, "step": step, **values}
                    log.write(json.dumps(record) + "\n")
                    bar.set_postfix(loss=f"{values['loss']:.3g}")
                if t.checkpoint_every and step % t.checkpoint_every == 0 and b + 1 < n_batches:
                    if log is not None:
                        log.flush()
                    checkpoint()
            means = {k: v / n_batches for k, v in progress["sums"].items()}
            if log is not None:
                seconds = round(time.perf_counter() - started, 3)
                record = {
                    "kind": "epoch",
                    "epoch": epoch,
                    "step": progress["step"],
                    "seconds": seconds,
                    **means,
                }
                log.write(json.dumps(record) + "\n")
                log.flush()
            progress.update(epoch=epoch + 1, batch=0, sums={})
            checkpoint()
    finally:
        if log is not None:
            log.close()
    distributed.barrier()
    return model.eval()
