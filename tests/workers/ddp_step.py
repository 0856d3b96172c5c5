"""One training step's loss terms and gradients, in 1 process or under torchrun (test helper).

usage: python ddp_step.py MODEL OUT.safetensors   (or: torchrun --nproc_per_node 2 ddp_step.py ...)
"""

import json
import sys

import torch
from safetensors.torch import save_file

from vimae import distributed
from vimae.config import ModelConfig
from vimae.data import load_dataset
from vimae.models import build_model, resolve

GLOBAL_BATCH = 100


def main(model_name: str, out: str) -> None:
    torch.set_num_threads(1)
    world = distributed.init_world("cpu")
    torch.manual_seed(0)
    config = ModelConfig(name=model_name, arch="mlp", latent_dim=3, width=0.25, encoder_noise=0.0)
    model = build_model(resolve(config, "digits", (1, 8, 8)))
    model.prior_generator = torch.Generator().manual_seed(1)
    step_model = torch.nn.parallel.DistributedDataParallel(model) if world.size > 1 else model
    x = load_dataset("digits", "train").images[:GLOBAL_BATCH]
    terms = step_model(x[distributed.shard(GLOBAL_BATCH, world)])
    terms["loss"].backward()
    values = distributed.mean_over_ranks({k: v.item() for k, v in terms.items()})
    if world.is_main:
        grads = {name: p.grad.contiguous() for name, p in model.named_parameters()}
        save_file(grads, out, metadata={"terms": json.dumps(values), "world": str(world.size)})
    del step_model, terms  # DDP's reducer holds the process group: free it before leaving
    distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
