"""Where table 5's CIFAR-10 FIDs come from: the decoder, the prior, or the sample count.

    python benchmarks/fid_decomposition.py --data-dir ../shared/datasets   # 30-50 minutes

On the runs of the reproduction's table5 part (CIFAR-10, dcgan64 width 1/16, d = 64; their
weights must be on this machine: docs/results keeps none), for the first `--seeds` runs of each
model, the Inception FID against the same 1,000 real test images that table 5 used (the run's
seeded draw of 2,000 test images, then a draw of 1,000 of them, as `vimae evaluate` does) of:

- prior samples: table 5's own number, read from the run's evaluation record;
- samples whose codes come from a Gaussian mixture fitted to 10,000 training images' codes
  (`vimae evaluate --sampler gmm`, K by BIC): what the FID is when q(z) and p(z) differ no more;
- reconstructions of the other 1,000 test images of the draw: the decoder's own quality, the
  best any sampler of codes could reach with this decoder.

And, once per run of the script (the first run's draw), references on real images: the other
1,000 test images themselves (the FID of 1,000 against 1,000 with no model: the sample-count
bias), and the same images blurred by a Gaussian of sigma 1 and 2 pixels (64x64 input): the FID of
a known loss of detail at this sample count.

If the reconstructions' FID is near the prior samples', the decoder (a width-1/16 network trained
8 epochs) sets the FID and no choice of prior or sampler can bring it to the paper's; if it is far
below, the codes' distribution is to blame. On the 2-core machine a model took 5-9 minutes (two
Inception passes of 1,000 images at about 10 images/s, and CIFAR-10's training JPEGs loaded for
the mixture's 10,000 codes), the references 5.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from part_runs import add_arguments, part_runs

from vimae.data.split import stratified_indices
from vimae.metrics import MetricOptions
from vimae.metrics.fid import real_statistics
from vimae.metrics.inception import InceptionFeatures, feature_statistics, frechet_from_statistics
from vimae.models.batched import batched
from vimae.runs.evaluation import evaluate_run, load_test_split
from vimae.runs.loading import load_model

FID_IMAGES = 1_000  # table 5's cpu setting: 1,000 generated against 1,000 real
BLUR_SIGMAS = (1.0, 2.0)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Images (N, C, H, W) convolved with a separable Gaussian (reflected edges), kept in [0, 1]."""
    radius = int(3 * sigma)
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(t**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = images.shape[1]
    x = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    x = F.conv2d(x, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return x.clamp(0.0, 1.0)


def fid_to(real_stats: tuple, images: torch.Tensor, network: InceptionFeatures) -> float:
    """FID of `images` against the real images' (mu, sigma) in the network's features."""
    mu, sigma = feature_statistics(network.features(images, 50))
    return frechet_from_statistics(*real_stats, mu, sigma)


def real_and_heldout(run: Path, data_dir: str, test_size: int, seed: int):
    """(the 1,000 real images of table 5's FID, the other images of the run's test draw)."""
    config = json.loads((run / "config.json").read_text())
    test = load_test_split(
        "cifar10", data_dir, (3, 64, 64), test_size, config["data"]["image_size"], seed=seed
    )
    chosen = stratified_indices(len(test), FID_IMAGES, test.labels, seed)  # as test.subset draws
    rest = np.setdiff1d(np.arange(len(test)), chosen)
    return test.take(chosen).images, test.take(rest).images[:FID_IMAGES]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser, seeds=1)
    parser.add_argument("--test-size", type=int, default=2_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--cache", type=Path, help="cache folder (default: RESULTS/cache, the reproduction's)"
    )
    parser.add_argument(
        "--no-references", action="store_true", help="skip the real-image references"
    )
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cache = args.cache or args.results / "cache"
    started = time.perf_counter()
    network = InceptionFeatures()
    measured: dict[str, list[dict]] = {}
    references: dict[str, float] = {}
    for model, runs in part_runs(
        args.results, "table5", args.models, args.seeds, "cifar10"
    ).items():
        for run in runs:
            seed = json.loads((run / "config.json").read_text())["data"]["seed"]
            real, heldout = real_and_heldout(run, args.data_dir, args.test_size, seed)
            real_stats = real_statistics(real, network, cache)[:2]
            if not references and not args.no_references:
                references["held-out real images"] = fid_to(real_stats, heldout, network)
                for sigma in BLUR_SIGMAS:
                    references[f"blurred, sigma {sigma:g} px"] = fid_to(
                        real_stats, gaussian_blur(heldout, sigma), network
                    )
                print(references, flush=True)
            prior = next((run / "evaluation").glob("fid-*.json"))
            record = json.loads(prior.read_text())
            options = MetricOptions(
                seed=seed, sampler="gmm", fid_samples=FID_IMAGES, fid_features="inception",
                cache_dir=cache,
            )  # fmt: skip
            gmm = evaluate_run(run, None, args.data_dir, ["fid"], options, args.test_size)
            net = load_model(run).eval()
            recon = batched(net.reconstruct, heldout, 250).clamp(0.0, 1.0)
            row = {
                "run": run.name,
                "prior": record["fid"],
                "gmm": gmm["metrics"]["fid"].get("fid"),
                "gmm_sampler": gmm.get("generated_from"),
                "reconstructions": fid_to(real_stats, recon, network),
            }
            measured.setdefault(model, []).append(row)
            print(f"{model}: {row}", flush=True)
    print(f"\nInception FID, {FID_IMAGES:,} images against table 5's {FID_IMAGES:,} real ones")
    print("\n| model | prior samples (table 5) | GMM samples | reconstructions |")
    print("|---|---|---|---|")
    for model, rows in measured.items():
        cells = [np.mean([r[k] for r in rows]) for k in ("prior", "gmm", "reconstructions")]
        print(f"| {model} | " + " | ".join(f"{c:.0f}" for c in cells) + " |")
    for name, value in references.items():
        print(f"| {name} | – | – | {value:.0f} |")
    print(f"\ntook {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"runs": measured, "references": references}, indent=2))


if __name__ == "__main__":
    main()
