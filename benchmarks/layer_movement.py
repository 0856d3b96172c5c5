"""How far each layer of a trained run moved from its initial weights, and how large Adam's
second-moment estimates of it are at the end: a look inside training, for table 3's far numbers.

At the paper's width (dcgan28, width 1) the first Adam steps of a Gaussian encoder push logvar
to about 28 at step 3, the KL to about 1e10, and that one gradient into Adam's second-moment
estimate of almost every encoder weight (`exp_avg_sq` about 1e11-1e13 against the 1e-3 of an
ordinary step's square). With beta2 = 0.999 that estimate decays by e in 1,000 steps, so those
weights move by a tiny fraction of the learning rate for thousands of steps: the encoder's body
keeps about its initial weights. VIMAE's encoder (no logvar, no exp) has no such step.

This script measures the outcome on finished runs: it rebuilds each run's initial weights the
way `fit` does (torch.manual_seed(seed), then build_model with prior_seed = seed + 1), reads
the final checkpoint (weights and Adam state), and prints for every parameter its relative
movement ||w_end - w_0|| / ||w_0||, the median of Adam's exp_avg_sq and the share of its entries
whose exp_avg_sq is over 1e6 (their steps are a millionth of an ordinary one's). With `--since`
the movement is counted from an earlier checkpoint instead of the initial weights, which shows
what still moves late in training.

    python benchmarks/layer_movement.py RUN [RUN ...]
    python benchmarks/layer_movement.py RUN --since EARLIER/checkpoint.safetensors   # a copy
        # of the run's checkpoint from an earlier epoch: how far each group moved since then
"""

import argparse
from pathlib import Path

import torch
from safetensors.torch import load_file

from vimae.config import load_config_file
from vimae.models.autoencoder import build_model

FROZEN_SQUARE = 1e6  # an exp_avg_sq this large keeps a weight's Adam step under ~1e-6 of lr


def initial_model(run: Path) -> torch.nn.Module:
    """The run's model with the weights `fit` started it from."""
    config = load_config_file(run / "config.json")
    torch.manual_seed(config.train.seed)
    return build_model(config.model, prior_seed=config.train.seed + 1)


def movement(run: Path, since: Path | None = None) -> list[tuple[str, float, float, float]]:
    """(parameter, ||w_end - w_0|| / ||w_0||, median exp_avg_sq, share of its entries whose
    exp_avg_sq exceeds FROZEN_SQUARE) for every parameter; w_0 the initial weights or those of
    the checkpoint `since`."""
    model = initial_model(run)
    saved = load_file(str(run / "checkpoint.safetensors"))
    earlier = None if since is None else load_file(str(since))
    rows = []
    for i, (name, start) in enumerate(model.named_parameters()):
        begin = start.detach() if earlier is None else earlier[f"model.{name}"]
        end, square = saved[f"model.{name}"], saved[f"optim.{i}.exp_avg_sq"]
        moved = float((end - begin).norm() / begin.norm().clamp_min(1e-12))
        frozen = float((square > FROZEN_SQUARE).float().mean())
        rows.append((name, moved, float(square.median()), frozen))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--since", type=Path, help="an earlier checkpoint of the run: w_0")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"| run | model | width | parameter | moved | median exp_avg_sq | > {FROZEN_SQUARE:g} |")
    print("|---|---|---|---|---|---|---|")
    for run in args.runs:
        config = load_config_file(run / "config.json")
        head = f"| {run.name} | {config.model.name} | {config.model.width:g} |"
        for name, moved, square, frozen in movement(run, args.since):
            print(f"{head} {name} | {moved:.3g} | {square:.1e} | {frozen:.3f} |")


if __name__ == "__main__":
    main()
