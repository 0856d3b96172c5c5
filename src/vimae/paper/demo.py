"""`vimae demo`: figure 1 of the paper in miniature, in about a minute on a laptop CPU.

The five models of figure 1 (VAE, beta_H-VAE, beta_A-VAE, VIMAE-n, VIMAE-l) with the `mlp`
networks and a 2-d latent space are trained on scikit-learn's bundled 8x8 digits (1,500 training
images). The picture shows the codes of all 1,797 digits per model, one draw z ~ q(z|x) each (the
aggregate posterior q(z); VIMAE's code is deterministic); each title gives the MMD between these
codes and as many prior draws, the paper's measure of how well q(z) fills p(z).
"""

import sys
import time
from pathlib import Path

import torch

from vimae.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from vimae.data import load_dataset
from vimae.metrics.rate import estimate_rate, posterior
from vimae.models import reconstruction_error
from vimae.models.divergence import mmd_blocked
from vimae.plotting.charts import CodePanel, plot_codes
from vimae.runs.checkpoint import CHECKPOINT_FILE
from vimae.runs.fit import fit

FIGURE1_MODELS = ("vae", "beta-vae-h", "beta-vae-a", "vimae-n", "vimae-l")
DEMO_EPOCHS = 60


def demo_config(model: str, epochs: int, seed: int) -> RunConfig:
    return RunConfig(
        model=ModelConfig(name=model, arch="mlp", latent_dim=2),
        data=DataConfig(dataset="digits"),
        train=TrainConfig(epochs=epochs, seed=seed, progress=False),
    )


@torch.no_grad()
def demo(out: Path, epochs: int = DEMO_EPOCHS, seed: int = 0) -> tuple[Path, str]:
    """Train (or reuse) the five runs under `out`, draw their codes, return (picture, table)."""
    train = load_dataset("digits", "train")
    test = load_dataset("digits", "test")
    images = torch.cat([train.images, test.images])
    labels = torch.cat([train.labels, test.labels]).numpy()
    panels, rows = [], []
    for i, name in enumerate(FIGURE1_MODELS):
        print(f"[{i + 1}/{len(FIGURE1_MODELS)}] {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        with torch.enable_grad():
            resume = (out / name / CHECKPOINT_FILE).is_file()  # reuse or finish an earlier run
            model = fit(demo_config(name, epochs, seed), out / name, resume=resume, data=train)
        seconds = time.perf_counter() - started
        print(f"[{i + 1}/{len(FIGURE1_MODELS)}] {name}: {seconds:.1f} s", file=sys.stderr)
        codes = model.draw_codes(images, torch.Generator().manual_seed(seed))
        prior_draws = model.prior.sample(len(codes), generator=torch.Generator().manual_seed(seed))
        divergence = mmd_blocked(codes, prior_draws, model.config.kernel)
        recon = reconstruction_error(test.images, model.reconstruct(test.images)).mean().item()
        mu, logvar = posterior(model, test.images, generator=torch.Generator().manual_seed(seed))
        rate, _ = estimate_rate(mu, logvar, model.prior, generator=torch.Generator().manual_seed(0))
        panels.append(CodePanel(f"{name}  MMD={divergence:.3f}", codes.numpy(), labels))
        rows.append(f"| {name} | {recon:.2f} | {rate:.2f} | {divergence:.4f} |")
    picture = plot_codes(panels, out / "figure1-digits.png")
    header = "| model | test recon (sum sq. err.) | rate (nats) | MMD(q(z), p(z)) |"
    table = "\n".join([header, "|---|---|---|---|", *rows])
    (out / "demo.md").write_text(table + "\n")
    return picture, table
