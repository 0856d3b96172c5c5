"""Prior sampling against a Gaussian mixture fitted to the codes (ex-post density estimation).

    python benchmarks/expost_sampling.py --data-dir ../shared/datasets      # about 15 minutes

On the runs of the reproduction's table-3 part (MNIST, dcgan28 width 1/8, d = 8; their weights
must be on this machine: docs/results keeps none), for each model and its first `--seeds` training
seeds: FID (the domain classifier's features: Inception does not apply to grey digits) and Parzen
NLL (nats per image) of samples decoded from prior draws and from a Gaussian mixture fitted to the
codes of 10,000 training images (`vimae evaluate RUN --sampler gmm`, K by BIC). Prints a table of
means ± standard errors over seeds, and writes a picture of 64 samples of each kind for the first
seed of each model into --pictures. Lower is better for both; a fitted sampler that does not lower
them for a model whose q(z) is far from its prior is no reason to use it.
"""

import argparse
import json
import time
from pathlib import Path

import torch
from part_runs import add_arguments, part_runs

from vimae.metrics import MetricOptions
from vimae.models.batched import generate
from vimae.models.fitted import SAMPLER_FOLDER, build_sampler
from vimae.paper.verdict import Estimate
from vimae.plotting.imagegrid import save_image_grid
from vimae.runs.evaluation import evaluate_run
from vimae.runs.loading import load_model

SAMPLERS = ("prior", "gmm")  # --samplers prior gmm flow adds the RealNVP


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser, seeds=3)
    parser.add_argument("--test-size", type=int, default=2_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--pictures", type=Path, default=Path("docs/figures"))
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    parser.add_argument("--samplers", nargs="+", default=list(SAMPLERS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    measured: dict[str, dict[str, list[dict]]] = {}
    for model, runs in part_runs(args.results, "table3", args.models, args.seeds).items():
        for seed, run in enumerate(runs):
            for sampler in args.samplers:
                options = MetricOptions(seed=seed, sampler=sampler, fid_features="classifier")
                report = evaluate_run(
                    run, None, args.data_dir, ["fid", "parzen"], options, args.test_size
                )
                row = {
                    "run": run.name,
                    "fid": report["metrics"]["fid"].get("fid"),
                    "parzen": report["metrics"]["parzen"].get("parzen_nll"),
                    "generated_from": report.get("generated_from"),
                }
                measured.setdefault(model, {}).setdefault(sampler, []).append(row)
                print(f"{model} seed {seed} {sampler}: {row}", flush=True)
        first = load_model(runs[0])
        for sampler in args.samplers:
            drawn = build_sampler(sampler, first, lambda: None, runs[0] / SAMPLER_FOLDER)
            _, images = generate(first, 64, torch.Generator().manual_seed(0), sampler=drawn)
            rows = [images[i : i + 8].numpy() for i in range(0, 64, 8)]
            save_image_grid(rows, args.pictures / f"expost-{model}-{sampler}.png")
    print(f"\n{args.seeds} seeds per model, {args.test_size} test images; lower is better")
    header = [f"{key} {s}" for key in ("FID", "Parzen NLL") for s in args.samplers]
    print("\n| model | " + " | ".join(header) + " |")
    print("|---" * (len(header) + 1) + "|")
    for model, by_sampler in measured.items():
        cells = []
        for key in ("fid", "parzen"):
            for sampler in args.samplers:
                values = [r[key] for r in by_sampler[sampler] if r[key] is not None]
                cells.append(Estimate.of(values).text(3) if values else "–")
        print(f"| {model} | {' | '.join(cells)} |")
    for model, by_sampler in measured.items():
        fitted = {r["generated_from"] for s in args.samplers if s != "prior" for r in by_sampler[s]}
        print(f"{model}: " + "; ".join(sorted(fitted)))
    print(f"\ntook {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(measured, indent=2))


if __name__ == "__main__":
    main()
