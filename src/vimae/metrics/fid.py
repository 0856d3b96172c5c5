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

The real images are a seeded, class-stratified draw from the test split (never its first n: data
files are often ordered by class). By default the FID is scaled to the test split: min(10,000, N)
real images of its N and as many generated; an explicit `fid_samples` generates that many and
caps the real images at N. The result carries warnings when its number is not to be trusted: a
real set of no more images than feature dimensions (the sample covariance is then singular and the
FID biased upward) or a test split of fewer than 1,000 images.
"""

from pathlib import Path
from typing import Any

import torch
from torch import nn

from vimae.errors import VimaeError
from vimae.metrics.base import FEATURE_CHOICES, MetricContext, MetricUnavailableError, metric
from vimae.metrics.classifier import (
    DomainClassifier,
    FeatureExtractor,
    load_or_train_classifier,
)

INCEPTION_FEATURES = 2048
# Real images of the FID at most by default, and the test split below which it is unreliable.
DEFAULT_IMAGES = 10_000
SMALL_TEST_SPLIT = 1_000
# What the FID output records of its domain classifier.
CLASSIFIER_RECORD = ("dataset", "digest", "train_images", "train_classes", "heldout_images",
                     "heldout_classes", "heldout_accuracy", "cached")  # fmt: skip


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
        feature=INCEPTION_FEATURES, normalize=True, feature_extractor_weights_path=str(weights)
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


def sample_counts(requested: int | None, test_images: int) -> tuple[int, int]:
    """(real, generated) image counts of the FID on a test split of `test_images` images.

    None scales both to the split, min(DEFAULT_IMAGES, N); an explicit count is generated in full
    and caps the real images at the N that exist.
    """
    if requested is None:
        n = min(DEFAULT_IMAGES, test_images)
        return n, n
    return min(requested, test_images), requested


def fid_warnings(test_images: int, real_images: int, feature_dim: int) -> list[str]:
    """Sentences saying why an FID computed at these sizes is not to be trusted; [] when none."""
    warnings = []
    if real_images <= feature_dim:
        # n images give a sample covariance of rank at most n - 1 < F: singular.
        warnings.append(
            f"the FID used {real_images} real images for {feature_dim}-d features, so their "
            "covariance estimate is singular and the FID is biased upward; use more real images "
            "than feature dimensions"
        )
    if test_images < SMALL_TEST_SPLIT:
        warnings.append(
            f"the test split has only {test_images} images (fewer than {SMALL_TEST_SPLIT:,}), so "
            "the FID has a large bias and variance and is not comparable with FIDs on 10,000 images"
        )
    return warnings


@metric(
    "fid",
    position=7,
    options=(
        "batch_size",
        "seed",
        "fid_samples",
        "fid_features",
        "inception_weights",
        "fid_classifier_steps",
        "cache_dir",
    ),
)
def _fid(ctx: MetricContext) -> dict[str, Any]:
    opts = ctx.options
    features = choose_features(ctx)
    n_real, n_generated = sample_counts(opts.fid_samples, len(ctx.test))
    real = ctx.test.subset(n_real, seed=opts.seed).images
    fake = ctx.generated(n_generated)
    out: dict[str, Any] = {"fid_real_images": real.shape[0], "fid_generated_images": fake.shape[0]}
    if features == "inception":
        out["fid"] = inception_distance(real, fake, Path(opts.inception_weights))
        out["fid_features"] = f"inception-v3 pool3 ({INCEPTION_FEATURES})"
        feature_dim = INCEPTION_FEATURES
    else:
        net, info = _domain_classifier(ctx)
        out["fid"] = frechet_distance(real, fake, FeatureExtractor(net), opts.batch_size)
        acc = info.get("heldout_accuracy")
        shown = "" if acc is None else f", held-out accuracy {acc:.3f}"
        out["fid_features"] = f"vimae domain classifier ({net.num_features}-d{shown})"
        out["fid_classifier"] = {key: info.get(key) for key in CLASSIFIER_RECORD}
        feature_dim = net.num_features
    warnings = fid_warnings(len(ctx.test), real.shape[0], feature_dim)
    if warnings:
        out["warnings"] = warnings
    return out


def _domain_classifier(ctx: MetricContext) -> tuple[DomainClassifier, dict[str, Any]]:
    """The domain classifier of the labelled training split, or why there is none."""
    train = ctx.train()
    if train.labels is None:
        raise MetricUnavailableError(
            f"the training split of {ctx.dataset} has no labels to train the FID domain "
            "classifier, and Inception-v3 is unavailable"
        )
    opts = ctx.options
    return load_or_train_classifier(
        ctx.dataset, train, opts.cache_dir, opts.seed, opts.fid_classifier_steps
    )
