"""Does the paper's training spike in its first Adam steps, seed by seed?

At dcgan28 width 1 the third Adam step of a Gaussian encoder can reach a loss of 1e10-1e15, whose
gradient freezes the encoder's body for the rest of training (`vimae.runs.spike`,
`benchmarks/layer_movement.py`). Whether that happens depends on the seed (the initial weights and
the first batches), so one run of each model says little. This script trains the first steps of
table 3's width-1 setting (the commands of docs/results/README.md, "Width 1 itself": the WAE
code's initial weights, Adam at 1e-3 with beta1 = 0.5) for several seeds and models, at a constant
learning rate so that the steps are those of the 12-epoch cosine run to within 2e-5 of its rate,
and prints each run's losses and largest jump, and per model how many seeds spiked (a loss over
vimae.runs.spike.SPIKE_FACTOR times the step before's).

    python benchmarks/first_steps.py --data-dir ../shared/datasets --out runs/first-steps
        # vae, beta-vae-a and vimae-l, seeds 0-9, 4 steps: about 2 minutes a run on 1 thread

Each run is an ordinary `vimae train` in its own process (`OMP_NUM_THREADS=--threads`); its
weights are deleted afterwards (264 MB each at width 1) and its metrics.jsonl kept, so a second
call reads the runs already made instead of training them again (delete --out to retrain).
"""

import argparse
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

from vimae.runs.spike import SPIKE_FACTOR


def train_flags(model: str, seed: int, args: argparse.Namespace, out: Path) -> list[str]:
    """`vimae train`'s arguments for the first `args.steps` steps of one model and seed."""
    return [
        "--model", model,  # its preset gives the paper's prior and beta (vimae.models.objective)
        "--arch", "dcgan28", "--width", str(args.width), "--latent-dim", "8",
        "--recon-weight", "20.0", "--dataset", "mnist", "--data-dir", args.data_dir,
        "--train-size", "10000", "--val-fraction", "0.1",
        "--steps", str(args.steps), "--schedule", "constant", "--seed", str(seed),
        "--init", args.init, "--set", "train.log_every=1", "--out", str(out),
    ]  # fmt: skip


def step_losses(run: Path) -> list[tuple[float, float]]:
    """(loss, gradient norm) of each logged step of a run, in order."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["loss"], r["grad_norm"]) for r in rows if r.get("kind") == "step"]


def first_steps(model: str, seed: int, args: argparse.Namespace) -> list[tuple[float, float]]:
    """The run's first steps, trained now unless its folder already holds them all."""
    run = args.out / f"{model}-s{seed}"
    if (run / "metrics.jsonl").exists() and len(step_losses(run)) >= args.steps:
        return step_losses(run)[: args.steps]
    env = os.environ | {"OMP_NUM_THREADS": str(args.threads)}
    command = [sys.executable, "-m", "vimae", "train", *train_flags(model, seed, args, run)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{model} seed {seed} failed:\n{done.stderr[-2000:]}")
    for weights in run.glob("*.safetensors"):
        weights.unlink()
    return step_losses(run)[: args.steps]


def largest_jump(losses: list[float]) -> tuple[int, float]:
    """(step, ratio) of the largest loss over the step before's (steps counted from 1)."""
    ratios = [(i + 2, b / a) for i, (a, b) in enumerate(itertools.pairwise(losses)) if a > 0]
    return max(ratios, key=lambda r: r[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/datasets")
    parser.add_argument("--out", type=Path, default=Path("runs/first-steps"))
    parser.add_argument("--models", nargs="+", default=["vae", "beta-vae-a", "vimae-l"])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--init", default="wae", help="vimae train --init (default: wae)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.steps < 3:
        parser.error("--steps must be at least 3: the spike comes at the third step")
    print(
        f"dcgan28 width {args.width:g}, --init {args.init}, {args.steps} steps at a constant "
        f"rate; a spike is a loss over {SPIKE_FACTOR:g} times the step before's\n"
    )
    print("| model | seed | loss at steps 1.. | largest jump (step: ratio) | its gradient norm |")
    print("|---|---|---|---|---|")
    spiked: dict[str, list[int]] = {}
    for model in args.models:
        spiked[model] = []
        for seed in range(args.seeds):
            rows = first_steps(model, seed, args)
            losses = [loss for loss, _ in rows]
            step, ratio = largest_jump(losses)
            if ratio > SPIKE_FACTOR:
                spiked[model].append(seed)
            shown = " / ".join(f"{loss:.3g}" for loss in losses)
            print(f"| {model} | {seed} | {shown} | {step}: {ratio:.3g} | {rows[step - 1][1]:.3g} |")
    print()
    for model, seeds in spiked.items():
        print(f"{model}: spiked in {len(seeds)} of {args.seeds} seeds {seeds}")


if __name__ == "__main__":
    main()
