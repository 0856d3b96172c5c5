"""MIG, SAP, DCI and the FactorVAE score of the five models of the paper on the shapes dataset.

    python benchmarks/disentanglement_table.py            # about 15 minutes on a 2-core CPU

Each model (the paper's five: VAE, beta_H-VAE, beta_A-VAE, VIMAE-n, VIMAE-l, with the squared
error weighted `--recon-weight`, 20 as in the reproduction: at weight 1 beta_H-VAE learns nothing
here) is trained `--seeds` times on the shapes dataset drawn by vimae (`vimae.data.shapes`: shape,
scale, orientation, x and y known exactly), the mlp of figure 1 with d = 10 (the code size of
disentanglement_lib's studies) for `--epochs` epochs on its 20,000 training images, and measured
on its 5,000 test images (`vimae evaluate --metrics disentanglement`). Prints a table of means ±
standard errors over seeds, a model whose runs learned nothing (reconstruction within 5% of the
mean image's) marked, and the command of each run; the runs go to --out.
"""

import argparse
import time
from pathlib import Path

import torch

from vimae.cli import main as vimae
from vimae.metrics import MetricOptions
from vimae.metrics.reconstruction import learned_nothing
from vimae.paper.verdict import Estimate
from vimae.runs.evaluation import evaluate_run
from vimae.runs.folder import read_log

MODELS = ("vae", "beta-vae-h", "beta-vae-a", "vimae-n", "vimae-l")
KEYS = ("mig", "sap", "dci_disentanglement", "dci_completeness", "dci_informativeness", "factorvae")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/disentanglement"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--latent-dim", type=int, default=10)
    parser.add_argument("--recon-weight", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    scores: dict[str, list[dict]] = {}
    for model in args.models:
        for seed in range(args.seeds):
            run = args.out / f"{model}-{seed}"
            command = ["train", "--model", model, "--dataset", "shapes", "--arch", "mlp",
                       "--latent-dim", str(args.latent_dim), "--epochs", str(args.epochs),
                       "--recon-weight", str(args.recon_weight),
                       "--seed", str(seed), "--out", str(run)]  # fmt: skip
            if not (run / "checkpoint.safetensors").is_file():
                print("vimae " + " ".join(command), flush=True)
                assert vimae([*command, "--no-progress"]) == 0
            report = evaluate_run(run, metrics=["disentanglement"], options=MetricOptions(seed=0))
            values = report["metrics"]["disentanglement"]
            check = [r for r in read_log(run / "metrics.jsonl") if r["kind"] == "check"][-1]
            values["learned_nothing"] = learned_nothing(
                check["reconstruction"], check["reconstruction_mean_image"]
            )
            scores.setdefault(model, []).append(values)
            print(model, seed, {k: round(values[k], 3) for k in KEYS}, flush=True)
    print(f"\nshapes, mlp d = {args.latent_dim}, {args.epochs} epochs, squared error weighted "
          f"{args.recon_weight:g}, {args.seeds} seeds; "
          "5,000 test images; higher is better")  # fmt: skip
    print("\n| model | MIG | SAP | DCI disentanglement | DCI completeness | DCI informativeness "
          "| FactorVAE score |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for model, rows in scores.items():
        cells = [Estimate.of(r[k] for r in rows).text(3) for k in KEYS]
        nothing = sum(r["learned_nothing"] for r in rows)
        name = f"{model} (learned nothing: {nothing} of {len(rows)} runs)" if nothing else model
        print(f"| {name} | {' | '.join(cells)} |")
    print(f"\ntook {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
