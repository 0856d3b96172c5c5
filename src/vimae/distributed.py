"""Multi-process training through PyTorch's own `torchrun` + DistributedDataParallel.

Each rank trains on its shard of the global batch, but the MMD of eq. 7 compares the codes of the
*whole* global batch with as many prior draws. `gather_codes` all-gathers the shards in the forward
pass (the rank's own shard keeps its graph, the others arrive detached) and every rank draws the
same prior samples (a generator seeded alike on all ranks), so every rank computes the same MMD
value. Its gradient reaches each shard once, on its own rank; `full_gradient` multiplies that
gradient by the world size, so that DDP's averaging over ranks yields exactly the single-process
gradient on the global batch. No collective runs inside backward except DDP's own all-reduce,
which keeps the order of collectives identical on all ranks (gloo deadlocks otherwise).

Batch normalization: on CUDA the layers become SyncBatchNorm (statistics of the global batch); on
the CPU (gloo), where PyTorch has no SyncBatchNorm, each rank normalizes with its shard's
statistics, as plain DDP does.
"""

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from vimae.errors import VimaeError


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_world(device_kind: str) -> World:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); else a world of one."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        backend = "nccl" if device_kind == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_codes(z: torch.Tensor) -> torch.Tensor:
    """The codes of every rank's shard in rank order; only this rank's shard keeps gradients."""
    if not is_distributed():
        return z
    parts = [torch.empty_like(z) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, z.detach().contiguous())
    parts[dist.get_rank()] = z
    return torch.cat(parts, dim=0)


def full_gradient(term: torch.Tensor) -> torch.Tensor:
    """`term` unchanged in value, its gradient multiplied by the world size.

    For a term every rank computes alike from gathered inputs: each rank's backward reaches only
    its own shard, and DDP divides the summed parameter gradients by the world size.
    """
    if not is_distributed():
        return term
    factor = dist.get_world_size()
    return term + (factor - 1) * (term - term.detach())


def mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """Average logged scalars over ranks (the loss of the global batch is the mean of shards')."""
    if not is_distributed():
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    dist.all_reduce(t)
    t /= dist.get_world_size()
    return dict(zip(keys, t.tolist(), strict=True))


def gather_rng_states(state: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's RNG state (rank order), so that rank 0's checkpoint can resume them all."""
    if not is_distributed():
        return [state]
    states = [torch.empty_like(state) for _ in range(dist.get_world_size())]
    dist.all_gather(states, state)
    return states


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def shard(batch_size: int, world: World) -> slice:
    """This rank's slice of a global batch."""
    if batch_size % world.size:
        raise VimaeError(
            f"train.batch_size {batch_size} is not divisible by the {world.size} "
            "processes; choose a multiple of the process count."
        )
    per_rank = batch_size // world.size
    return slice(world.rank * per_rank, (world.rank + 1) * per_rank)


def shutdown() -> None:
    """Leave the process group, all ranks together: a rank that tears gloo down while another
    still writes its results can abort the other one ("terminate called without an active
    exception"). Unreachable DistributedDataParallel wrappers, whose reducers hold the group, are
    collected first, while the group and the interpreter are alive: the same abort also came at
    interpreter exit, with no Python frame left, now and then when tests/workers/ddp_step.py ran
    under torchrun on a loaded machine."""
    if dist.is_available() and dist.is_initialized():
        gc.collect()
        if dist.get_world_size() > 1:
            dist.barrier()
        dist.destroy_process_group()
