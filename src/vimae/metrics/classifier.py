"""A small domain classifier whose penultimate layer stands in for Inception-v3 in the FID.

FID with Inception-v3 features is meaningless for 28x28 grey digits and characters, and its
weights cannot be downloaded on an offline machine; the usual substitute (e.g. the "FID with a
LeNet" of many MNIST papers) is the feature layer of a classifier trained on the labelled training
split of the same dataset. vimae trains one once per (dataset, image size) and caches it as
safetensors, its test accuracy in the file's metadata, so that every model evaluated on that
dataset is measured with the same features.
"""

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from vimae.data import ImageData


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


class FeatureExtractor(nn.Module):
    """Wraps a network's `features` as the `feature` module torchmetrics' FID expects."""

    def __init__(self, net: DomainClassifier) -> None:
        super().__init__()
        self.net = net.eval()
        self.num_features = net.num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x)


def train_classifier(
    data: ImageData, steps: int = 600, batch_size: int = 128, seed: int = 0
) -> DomainClassifier:
    """Fit a DomainClassifier on labelled images: `steps` Adam steps (lr 1e-3) over shuffled epochs.

    A fixed number of steps rather than of epochs keeps the cost the same for 8k or 60k images
    (about 75k images seen, enough for ~98% on MNIST); returned in eval mode.
    """
    if data.labels is None:
        raise ValueError("the domain classifier needs labelled training images")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    n_classes = int(data.labels.max()) + 1
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


def cache_path(cache_dir: Path, dataset: str, image_shape: tuple[int, int, int]) -> Path:
    """Where the classifier of `dataset` at this image shape is cached."""
    c, h, w = image_shape
    return Path(cache_dir) / f"fid-classifier-{dataset}-{c}x{h}x{w}.safetensors"


def load_or_train_classifier(
    dataset: str,
    train: ImageData,
    test: ImageData,
    cache_dir: Path,
    seed: int = 0,
    steps: int = 600,
) -> tuple[DomainClassifier, dict]:
    """The cached classifier of `dataset`, trained and saved first if absent; and its metadata."""
    path = cache_path(cache_dir, dataset, train.image_shape)
    if path.exists():
        info = json.loads(_metadata(path)["vimae"])
        net = DomainClassifier(info["channels"], info["n_classes"])
        net.load_state_dict(load_file(path), strict=True)
        return net.eval(), info | {"cached": True}
    net = train_classifier(train, steps=steps, seed=seed)
    info = {
        "dataset": dataset,
        "channels": net.channels,
        "n_classes": net.n_classes,
        "train_images": len(train),
        "steps": steps,
        "test_accuracy": accuracy(net, test) if test.labels is not None else None,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(net.state_dict(), tmp, metadata={"vimae": json.dumps(info)})
    tmp.replace(path)  # atomic: a concurrent evaluation never reads half a file
    return net, info | {"cached": False}


def _metadata(path: Path) -> dict[str, str]:
    with safe_open(path, framework="pt") as f:
        return f.metadata()
