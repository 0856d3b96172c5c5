"""What every metric shares: the registry, the evaluation context, options and batching.

A metric of the command is a function `(context) -> dict` registered under the name that
`vimae evaluate --metrics` spells. The context holds the trained model, the test split, the
options and the codes of the test images, computed once and shared, so that five metrics of the
codes do not encode the test set five times. The estimators themselves are plain functions of
tensors in the sibling modules; the registered functions only feed them.

A metric that cannot be computed for this model or dataset raises `MetricUnavailableError` with one
sentence saying why; the command reports that sentence instead of a number (never a silent skip).
"""

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vimae.data import ImageData, PoolSplit, load_dataset
from vimae.data.cache import cache_dir as default_cache_dir
from vimae.data.corruption import PAPER_CORRUPTIONS
from vimae.registry import Registry


class MetricUnavailableError(Exception):
    """This metric cannot be computed here; the message says why in one sentence."""


@dataclass
class MetricOptions:
    """Every setting of the measurements, each default stated once."""

    batch_size: int = 500
    seed: int = 0
    # entropy / KL of q(z): neighbours of the Kozachenko-Leonenko estimator.
    knn_k: int = 5
    # entropy / KL: seeded repeats on fresh prior draws (the estimator's reference and spread).
    knn_repeats: int = 5
    # rate: noisy copies per image for the fitted Gaussian of VIMAE's encoder (SPEC section 6), and
    # posterior samples per image for the Monte-Carlo rate when the prior is not Normal.
    rate_copies: int = 32
    rate_samples: int = 16
    # rate: test images it is averaged over (the first ones); a mean, so a subset with its standard
    # error is enough and keeps VIMAE's K forward passes per image affordable.
    rate_images: int = 2_000
    mmd_kernel: str = "imq"
    mmd_block_size: int = 1024
    # Parzen window: generated samples (None: min(10_000, 10 x test images)), validation images (a
    # seeded stratified draw from the training split) and the bandwidth grid.
    parzen_samples: int | None = None
    parzen_valid: int = 1_000
    parzen_bandwidths: tuple[float, ...] = tuple(round(0.05 * 1.4**i, 4) for i in range(10))
    # FID: generated images, real ones being as many or all of the test split (None: min(10_000,
    # test images) of each); feature network choice and weights.
    fid_samples: int | None = None
    fid_features: str = "auto"
    inception_weights: Path | None = None
    fid_classifier_steps: int = 600
    # Semi-supervised accuracy (SPEC section 6).
    corruptions: tuple[str, ...] = PAPER_CORRUPTIONS
    n_labels: int = 1_000
    n_repeats: int = 5
    # Where trained helper networks (the FID domain classifier) are cached: $VIMAE_CACHE_DIR, else
    # $XDG_CACHE_HOME/vimae, else ~/.cache/vimae, read when the options are created.
    cache_dir: Path = field(default_factory=default_cache_dir)


@dataclass
class MetricContext:
    """A trained model, its test split and the options; codes of the clean test set on demand."""

    model: Any
    test: ImageData
    dataset: str
    data_dir: Path | None = None
    image_size: int | None = None
    options: MetricOptions = field(default_factory=MetricOptions)
    pool: PoolSplit | None = None  # the run's split of pooled data (folder, array)
    _codes: torch.Tensor | None = None
    _mean_codes: torch.Tensor | None = None
    # The training split when the caller has it in memory; loaded on first use otherwise.
    train_split: ImageData | None = None
    _generated: torch.Tensor | None = None
    # Evaluating data held in memory (vimae.evaluate): nothing is read from disk.
    in_memory: bool = False

    @property
    def codes(self) -> torch.Tensor:
        """Codes of q(z), one seeded draw from q(z|x) per test image: (N, d) (see
        `Autoencoder.draw_codes`); what MMD, entropy and KL of q(z) are measured on."""
        if self._codes is None:
            gen = self.generator("codes")
            self._codes = draw_codes(self.model, self.test.images, gen, self.options.batch_size)
        return self._codes

    @property
    def codes_are_random(self) -> bool:
        """Whether codes differ from posterior means (the Gaussian encoders)."""
        return bool(getattr(self.model, "codes_are_random", False))

    @property
    def mean_codes(self) -> torch.Tensor:
        """Posterior means (the Gaussian encoders) or deterministic codes: (N, d); the named
        "_means" variants of the code metrics, never a stand-in for q(z)."""
        if not self.codes_are_random:
            return self.codes
        if self._mean_codes is None:
            self._mean_codes = encode(self.model, self.test.images, self.options.batch_size)
        return self._mean_codes

    def generated(self, n: int) -> torch.Tensor:
        """n images decoded from prior samples, drawn once and shared by Parzen and FID."""
        if self._generated is None or self._generated.shape[0] < n:
            wanted = (n, self.options.parzen_samples, self.options.fid_samples)
            size = max(k for k in wanted if k is not None)
            gen = self.generator("generated")
            self._generated = generate(self.model, size, gen, self.options.batch_size)
        return self._generated[:n]

    def train(self) -> ImageData:
        """The training split of the same dataset (validation images, classifier training)."""
        if self.train_split is None and self.in_memory:
            raise MetricUnavailableError(
                "it needs training images: pass train_data= to vimae.evaluate"
            )
        if self.train_split is None:
            self.train_split = load_dataset(
                self.dataset, "train", self.data_dir, self.image_size, self.pool
            )
        return self.train_split

    def generator(self, name: str) -> torch.Generator:
        """A generator seeded by (seed, metric name): results do not depend on metric order."""
        return torch.Generator().manual_seed(
            self.options.seed * 1_000_003 + zlib.crc32(name.encode())
        )


Metric = Callable[[MetricContext], dict[str, Any]]
METRICS: Registry[Metric] = Registry("metric")


def model_device(model: Any) -> torch.device:
    """The device of the model's parameters (CPU for a parameter-free stand-in)."""
    params = getattr(model, "parameters", None)
    first = next(iter(params()), None) if params is not None else None
    return first.device if first is not None else torch.device("cpu")


@torch.no_grad()
def batched(
    fn: Callable[[torch.Tensor], Any],
    x: torch.Tensor,
    batch_size: int,
    device: torch.device | None = None,
) -> Any:
    """fn applied to consecutive batches of x (moved to `device`), outputs gathered on the CPU.

    Tuples of tensors (e.g. (mu, logvar)) are concatenated element-wise.
    """
    outs = []
    for i in range(0, x.shape[0], batch_size):
        out = fn(x[i : i + batch_size].to(device) if device is not None else x[i : i + batch_size])
        outs.append(tuple(o.cpu() for o in out) if isinstance(out, tuple) else out.cpu())
    if isinstance(outs[0], tuple):
        return tuple(torch.cat(parts) for parts in zip(*outs, strict=True))
    return torch.cat(outs)


def encode(model: Any, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Evaluation codes (no encoder noise / posterior mean) of images: (N, C, H, W) -> (N, d).

    This is also the way to use a trained encoder as a feature extractor in other code.
    """
    return batched(model.encode, images, batch_size, model_device(model)).float()


def draw_codes(
    model: Any,
    images: torch.Tensor,
    generator: torch.Generator | None = None,
    batch_size: int = 500,
) -> torch.Tensor:
    """One code z ~ q(z|x) per image, (N, C, H, W) -> (N, d): samples of the aggregate posterior
    q(z) (`Autoencoder.draw_codes`); the deterministic code for VIMAE."""
    if not getattr(model, "codes_are_random", False):
        return encode(model, images, batch_size)
    draw = lambda x: model.draw_codes(x, generator)  # noqa: E731
    return batched(draw, images, batch_size, model_device(model)).float()


@torch.no_grad()
def generate(
    model: Any, n: int, generator: torch.Generator | None = None, batch_size: int = 500
) -> torch.Tensor:
    """n images decoded from prior samples z ~ p(z), drawn with `generator` on the CPU."""
    z = model.prior.sample(n, generator=generator)
    return batched(model.decode, z, batch_size, model_device(model))
