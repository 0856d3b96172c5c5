"""A small domain classifier whose penultimate layer stands in for Inception-v3 in the FID.

FID with Inception-v3 features is meaningless for 28x28 grey digits and characters, and its
weights cannot be downloaded on an offline machine; the usual substitute (e.g. the "FID with a
LeNet" of many MNIST papers) is the feature layer of a classifier trained on the labelled training
split of the same dataset, so that every model evaluated on that data is measured with the same
features.

- It is cached as safetensors under a key that names the data it was trained on: the dataset, a
  digest of the split's images and labels and the image shape. A classifier is never reused for
  other data, e.g. another `train_size` or image size of the same dataset.
- Its accuracy is measured on a seeded, class-stratified tenth of the training split held out from
  its training, every class at its share, not on the evaluated test split (often a subset, possibly
  of a few classes only). The file's metadata records the data, the held-out accuracy and the
  images and classes of both parts.
- A cache file that cannot be read back (truncated, not safetensors, metadata missing or for other
  data, tensors of the wrong shapes) is trained again and rewritten atomically, never an error.
"""

import contextlib
import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from vimae.data import ImageData
from vimae.data.split import class_counts, stratified_split
from vimae.files import atomic_write
from vimae.metrics.base import CACHE_FLAG

# Share of the labelled training split held out to measure the classifier's accuracy.
HELD_OUT_FRACTION = 0.1
# Hex characters of the sha256 data digest kept in the cache key.
DIGEST_CHARS = 16


class DomainClassifier(nn.Module):
    """Conv(32)-ReLU-Conv(64)-ReLU-Conv(128)-ReLU (stride 2), global average pool, FC -> classes.

    `features` (the pooled 128-d layer) is what the FID compares; it accepts any image size.
    """

    num_features = 128

    def __init__(self, channels: int, n_classes: int) -> None:
        super().__init__()
        self.channels = channels
        self.n_classes = n_classes
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(64, self.num_features, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(self.num_features, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images in [0, 1] -> (B, 128) features."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def train_classifier(
    data: ImageData,
    steps: int = 600,
    batch_size: int = 128,
    seed: int = 0,
    n_classes: int | None = None,
) -> DomainClassifier:
    """Fit a DomainClassifier on labelled images: `steps` Adam steps (lr 1e-3) over shuffled epochs.

    A fixed number of steps rather than of epochs keeps the cost the same for 8k or 60k images
    (about 75k images seen, enough for ~98% on MNIST); returned in eval mode. `n_classes` is given
    when `data` is part of a split whose largest label it may lack.
    """
    if data.labels is None:
        raise ValueError("the domain classifier needs labelled training images")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    n_classes = n_classes if n_classes is not None else int(data.labels.max()) + 1
    net = DomainClassifier(data.images.shape[1], n_classes)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    order = torch.randperm(len(data), generator=gen)
    start = 0
    for _ in range(steps):
        if start >= len(data):
            order, start = torch.randperm(len(data), generator=gen), 0
        idx = order[start : start + batch_size]
        start += batch_size
        loss = F.cross_entropy(net(data.images[idx]), data.labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net.eval()


@torch.no_grad()
def accuracy(net: nn.Module, data: ImageData, batch_size: int = 1000) -> float:
    """Fraction of correctly classified labelled images."""
    correct = 0
    for i in range(0, len(data), batch_size):
        pred = net(data.images[i : i + batch_size]).argmax(1)
        correct += int((pred == data.labels[i : i + batch_size]).sum())
    return correct / len(data)


def data_digest(data: ImageData) -> str:
    """The first DIGEST_CHARS hex characters of the data's digest (`ImageData.digest`)."""
    return data.digest()[:DIGEST_CHARS]


def cache_path(
    cache_dir: Path, dataset: str, digest: str, image_shape: tuple[int, int, int]
) -> Path:
    """Where the classifier trained on the data of `digest` (from `dataset`) is cached."""
    c, h, w = image_shape
    return Path(cache_dir) / f"fid-classifier-{dataset}-{c}x{h}x{w}-{digest}.safetensors"


def heldout_split(train: ImageData, seed: int = 0) -> tuple[ImageData, ImageData]:
    """(fit, held out) parts of a labelled split: a seeded, class-stratified HELD_OUT_FRACTION is
    held out, so its accuracy speaks for every class whatever the order of the data."""
    fit, heldout = stratified_split(len(train), HELD_OUT_FRACTION, train.labels, seed)
    return train.take(fit), train.take(heldout)


def load_or_train_classifier(
    dataset: str,
    train: ImageData,
    cache_dir: Path,
    seed: int = 0,
    steps: int = 600,
) -> tuple[DomainClassifier, dict[str, Any]]:
    """The classifier cached for exactly this labelled split of `dataset`, trained and saved first
    when absent or unreadable; and its metadata, with `cached` saying which.

    It is fitted on the split less a seeded stratified held-out part, whose accuracy it records.
    """
    if train.labels is None:
        raise ValueError("the domain classifier needs labelled training images")
    digest = data_digest(train)
    path = cache_path(cache_dir, dataset, digest, train.image_shape)
    found = _read_cached(path, dataset, digest, train.image_shape)
    if found is not None:
        net, info = found
        return net, info | {"cached": True}
    fit, heldout = heldout_split(train, seed)
    n_classes = int(train.labels.max()) + 1
    net = train_classifier(fit, steps=steps, seed=seed, n_classes=n_classes)
    info = {
        "dataset": dataset,
        "digest": digest,
        "image_shape": list(train.image_shape),
        "channels": net.channels,
        "n_classes": net.n_classes,
        "train_images": len(fit),
        "train_classes": len(class_counts(fit.labels)),
        "heldout_images": len(heldout),
        "heldout_classes": len(class_counts(heldout.labels)),
        "heldout_accuracy": accuracy(net, heldout) if len(heldout) else None,
        "steps": steps,
        "seed": seed,
    }
    metadata = {"vimae": json.dumps(info)}
    # A read-only or full cache folder only costs training again next time.
    with contextlib.suppress(OSError):
        atomic_write(
            path,
            lambda tmp: save_file(net.state_dict(), tmp, metadata=metadata),
            CACHE_FLAG,
        )
    return net, info | {"cached": False}


def _read_cached(
    path: Path, dataset: str, digest: str, image_shape: tuple[int, int, int]
) -> tuple[DomainClassifier, dict[str, Any]] | None:
    """The classifier in `path` when it is a complete file for this data, else None."""
    if not path.is_file():
        return None
    try:
        with safe_open(path, framework="pt") as f:
            info = json.loads(f.metadata()["vimae"])
        if (info["dataset"], info["digest"], tuple(info["image_shape"])) != (
            dataset,
            digest,
            tuple(image_shape),
        ):
            return None
        net = DomainClassifier(info["channels"], info["n_classes"])
        net.load_state_dict(load_file(path), strict=True)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError):
        return None
    return net.eval(), info
