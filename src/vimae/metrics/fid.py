"""Frechet Inception Distance between generated and real images (paper appendix, table 5).

FID = |mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)) between Gaussians fitted to features of
real and generated images (Heusel et al., 2017). The arithmetic is torchmetrics'
`FrechetInceptionDistance`, which accepts any feature network, so the feature network is pluggable:

- "inception": Inception-v3 pool features (2048-d), the paper's choice for CIFAR-10 and CelebA. Its
  weights (the FID port, pt_inception-2015-12-05-6726825d.pth) are read from a local file given by
  `inception_weights`; torchmetrics builds the network through the `torch-fidelity` package. Nothing
  is downloaded: on an offline machine the weights must be placed by hand.
- "classifier": the feature layer of a small classifier trained by vimae on the labelled training
  split (`vimae.metrics.classifier`), the stand-in for 28x28 grey data, where Inception features are
  not meaningful. Numbers from the two are not comparable with each other.
- "auto": Inception when weights are given, else the classifier for grey images with labels.
"""

from pathlib import Path
from typing import Any

import torch
from torch import nn

from vimae.errors import VimaeError
from vimae.metrics.base import METRICS, MetricContext, MetricUnavailableError
from vimae.metrics.classifier import FeatureExtractor, load_or_train_classifier

FEATURE_CHOICES = ("auto", "inception", "classifier")


@torch.no_grad()
def frechet_distance(
    real: torch.Tensor, fake: torch.Tensor, feature: nn.Module, batch_size: int = 500
) -> float:
    """FID between images real: (N, C, H, W) and fake: (M, C, H, W) in the features of `feature`.

    `feature` maps a batch of images to (B, F) features (and should have `num_features`).
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    fid = FrechetInceptionDistance(feature=feature, reset_real_features=True)
    return _accumulate(fid, real, fake, batch_size)


@torch.no_grad()
def inception_distance(
    real: torch.Tensor, fake: torch.Tensor, weights: Path, batch_size: int = 100
) -> float:
    """FID with Inception-v3 pool features, weights read from the local file `weights`.

    Grey images are repeated to three channels; torchmetrics resizes to 299x299 itself.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    fid = FrechetInceptionDistance(
        feature=2048, normalize=True, feature_extractor_weights_path=str(weights)
    )
    rgb = (lambda x: x.expand(-1, 3, -1, -1)) if real.shape[1] == 1 else (lambda x: x)
    return _accumulate(fid, rgb(real), rgb(fake), batch_size)


def _accumulate(fid: Any, real: torch.Tensor, fake: torch.Tensor, batch_size: int) -> float:
    for i in range(0, real.shape[0], batch_size):
        fid.update(real[i : i + batch_size], real=True)
    for i in range(0, fake.shape[0], batch_size):
        fid.update(fake[i : i + batch_size], real=False)
    return float(fid.compute())


def inception_unavailable(weights: Path | None) -> str | None:
    """Why the Inception-v3 FID cannot run here, or None when it can."""
    if weights is None:
        return (
            "Inception-v3 weights were not given (--inception-weights PATH to "
            "pt_inception-2015-12-05-6726825d.pth); they cannot be downloaded on this machine"
        )
    if not Path(weights).is_file():
        return f"the Inception-v3 weights file {weights} does not exist"
    try:
        import torch_fidelity  # noqa: F401
    except ImportError:
        return "Inception-v3 features need the torch-fidelity package (pip install torch-fidelity)"
    return None


def choose_features(ctx: MetricContext) -> str:
    """'inception' or 'classifier' for this run, or MetricUnavailableError saying why neither."""
    choice = ctx.options.fid_features
    if choice not in FEATURE_CHOICES:
        valid = ", ".join(FEATURE_CHOICES)
        raise VimaeError(f"unknown FID features {choice!r}; choose one of: {valid}.")
    why_not_inception = inception_unavailable(ctx.options.inception_weights)
    if choice == "inception" or (choice == "auto" and why_not_inception is None):
        if why_not_inception is not None:
            raise MetricUnavailableError(why_not_inception)
        return "inception"
    if choice == "auto" and ctx.test.images.shape[1] != 1:
        raise MetricUnavailableError(
            f"{why_not_inception}; the domain-classifier stand-in is only automatic for grey "
            "images (--fid-features classifier forces it)"
        )
    return "classifier"


@METRICS.register("fid")
def _fid(ctx: MetricContext) -> dict[str, Any]:
    opts = ctx.options
    features = choose_features(ctx)
    real = ctx.test.images[: opts.fid_samples]
    fake = ctx.generated(opts.fid_samples)
    out: dict[str, Any] = {"fid_real_images": real.shape[0], "fid_generated_images": fake.shape[0]}
    if features == "inception":
        out["fid"] = inception_distance(real, fake, Path(opts.inception_weights))
        out["fid_features"] = "inception-v3 pool3 (2048)"
        return out
    train = ctx.train()
    if train.labels is None:
        raise MetricUnavailableError(
            f"the training split of {ctx.dataset} has no labels to train the FID domain "
            "classifier, and Inception-v3 is unavailable"
        )
    net, info = load_or_train_classifier(
        ctx.dataset, train, ctx.test, opts.cache_dir, opts.seed, opts.fid_classifier_steps
    )
    out["fid"] = frechet_distance(real, fake, FeatureExtractor(net), opts.batch_size)
    acc = info.get("test_accuracy")
    out["fid_features"] = f"vimae domain classifier ({net.num_features}-d" + (
        f", test accuracy {acc:.3f})" if acc is not None else ")"
    )
    return out
