"""Frechet Inception Distance between generated and real images (paper appendix, table 5).

FID = |mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)) between Gaussians fitted to features of
real and generated images (Heusel et al., 2017), computed in float64 from the features' means
and covariances (`vimae.metrics.inception.frechet_from_statistics`; the tests check it against
the closed form and against torchmetrics). The feature network is one of:

- "inception": Inception-v3 pool features (2048-d), the paper's choice for CIFAR-10 and CelebA,
  with the reference preprocessing (`vimae.metrics.inception`: weights found offline and
  verified by sha256). The real images' statistics are cached in the cache folder under a digest
  of the images and the network, so a real set is passed through Inception once.
- "classifier": the feature layer of a small classifier trained by vimae on the labelled training
  split (`vimae.metrics.classifier`), the stand-in for 28x28 grey data, where Inception features are
  not meaningful. Numbers from the two are not comparable with each other.
- "auto": Inception for colour images when its weights are installed (or given), the classifier
  for grey images with labels; the result names the features it used.

The real images are a seeded, class-stratified draw from the test split (never its first n: data
files are often ordered by class). By default the FID is scaled to the test split: min(10,000, N)
real images of its N and as many generated; an explicit `fid_samples` generates that many and
caps the real images at N. The result carries warnings when its number is not to be trusted: a
real set of no more images than feature dimensions (the sample covariance is then singular and the
FID biased upward) or a test split of fewer than 1,000 images.
"""

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vimae.files import atomic_write
from vimae.metrics.base import CACHE_FLAG, MetricContext, MetricUnavailableError, metric
from vimae.metrics.classifier import DomainClassifier, load_or_train_classifier
from vimae.metrics.inception import (
    INCEPTION_FEATURES,
    InceptionFeatures,
    feature_statistics,
    frechet_from_statistics,
    weights_unavailable,
)
from vimae.models.batched import batched, model_device

# Real images of the FID at most by default, and the test split below which it is unreliable.
DEFAULT_IMAGES = 10_000
SMALL_TEST_SPLIT = 1_000
INCEPTION_BATCH = 50  # images per Inception pass (299x299 activations: about 60 MB an image)
# What the FID output records of its domain classifier.
CLASSIFIER_RECORD = ("dataset", "digest", "train_images", "train_classes", "heldout_images",
                     "heldout_classes", "heldout_accuracy", "cached")  # fmt: skip
# Bumped whenever the preparation of images for Inception changes (cached statistics then differ).
PREPARATION = "tf-bilinear-299-uint8-v1"


@torch.no_grad()
def frechet_distance(
    real: torch.Tensor, fake: torch.Tensor, feature: nn.Module, batch_size: int = 500
) -> float:
    """FID between images real: (N, C, H, W) and fake: (M, C, H, W) in the features of `feature`
    (a module mapping a batch of images to (B, F) features)."""
    mu_r, s_r = feature_statistics(batched(feature, real, batch_size).double())
    mu_g, s_g = feature_statistics(batched(feature, fake, batch_size).double())
    return frechet_from_statistics(mu_r, s_r, mu_g, s_g)


def inception_distance(
    real: torch.Tensor, fake: torch.Tensor, weights: Path | None = None, batch_size: int = 50
) -> float:
    """FID with Inception-v3 pool features (weights: a file, else the installed package)."""
    network = InceptionFeatures(weights)
    mu_r, s_r = feature_statistics(network.features(real, batch_size))
    mu_g, s_g = feature_statistics(network.features(fake, batch_size))
    return frechet_from_statistics(mu_r, s_r, mu_g, s_g)


def images_digest(images: torch.Tensor) -> str:
    """sha256 of the images' shape and 8-bit levels (what Inception is fed), for the cache."""
    levels = (images.clamp(0, 1) * 255).round().to(torch.uint8).contiguous()
    digest = hashlib.sha256(f"{tuple(images.shape)}".encode())
    digest.update(levels.numpy().tobytes())
    return digest.hexdigest()


def real_statistics(
    real: torch.Tensor, network: InceptionFeatures, cache_dir: Path | None
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(mu, sigma, whether read from the cache) of the real images' Inception features.

    Cached as cache_dir/fid-real/KEY.npz, KEY a digest of the images, the network's sha256 and
    the preparation; an unreadable or wrongly shaped file is computed again and replaced.
    """
    key = hashlib.sha256(
        f"{images_digest(real)}|{network.sha256}|{PREPARATION}".encode()
    ).hexdigest()[:32]
    path = Path(cache_dir) / "fid-real" / f"{key}.npz" if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as stored:
                mu, sigma = torch.from_numpy(stored["mu"]), torch.from_numpy(stored["sigma"])
            shape_ok = mu.shape == (INCEPTION_FEATURES,) and sigma.shape == (
                INCEPTION_FEATURES,
                INCEPTION_FEATURES,
            )
            if shape_ok and torch.isfinite(mu).all() and torch.isfinite(sigma).all():
                return mu.double(), sigma.double(), True
        except (OSError, ValueError, KeyError):
            pass  # damaged: computed again below
    mu, sigma = feature_statistics(network.features(real, INCEPTION_BATCH))
    if path is not None:
        arrays = {"mu": mu.numpy(), "sigma": sigma.numpy()}

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)

        atomic_write(path, write, CACHE_FLAG)
    return mu, sigma, False


def choose_features(ctx: MetricContext) -> str:
    """'inception' or 'classifier' for this run, or MetricUnavailableError saying why neither."""
    choice = ctx.options.fid_features  # one of FEATURE_CHOICES (validate_options)
    why_not_inception = weights_unavailable(ctx.options.inception_weights)
    colour = ctx.test.images.shape[1] != 1
    if choice == "inception" or (choice == "auto" and colour):
        if why_not_inception is not None and choice == "auto":
            why_not_inception += "; --fid-features classifier forces the domain-classifier stand-in"
        if why_not_inception is not None:
            raise MetricUnavailableError(why_not_inception)
        return "inception"
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
        network = InceptionFeatures(opts.inception_weights, model_device(ctx.model))
        mu_r, s_r, cached = real_statistics(real, network, opts.cache_dir)
        mu_g, s_g = feature_statistics(network.features(fake, INCEPTION_BATCH))
        out["fid"] = frechet_from_statistics(mu_r, s_r, mu_g, s_g)
        out["fid_features"] = network.name
        out["fid_weights_sha256"] = network.sha256
        out["fid_real_statistics"] = "cached" if cached else "computed"
        feature_dim = INCEPTION_FEATURES
    else:
        net, info = _domain_classifier(ctx)
        out["fid"] = frechet_distance(real, fake, net.features, opts.batch_size)
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
            "classifier (--fid-features inception uses Inception-v3 instead)"
        )
    opts = ctx.options
    return load_or_train_classifier(
        ctx.dataset, train, opts.cache_dir, opts.seed, opts.fid_classifier_steps
    )
