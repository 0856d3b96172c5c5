"""Seeded, class-stratified subsets and train/test splits of a pool of examples.

Data files are often ordered: the CIFAR-10 JPEG copy decodes class by class, Omniglot by alphabet,
a folder of images by class subfolder. A first-n slice of such data silently drops classes (the
first 10,000 CIFAR-10 images are airplanes and automobiles only), so no subset in vimae is a slice:

- with labels, a subset of `size` keeps every class at its proportional share, within one example
  (the share size * n_c / n rounded down, plus one for the classes with the largest remainders,
  ties broken at random), and draws its members at random within each class;
- without labels, it is a seeded random draw.

The chosen indices are returned in their original order, so a subset of ordered data is still
ordered and a subset of a subset is well defined. The same (labels, size, seed) always give the
same indices.
"""

import os
from collections.abc import Sequence

import numpy as np
import torch

from vimae.errors import VimaeError

Labels = np.ndarray | torch.Tensor | Sequence[int] | None


def _as_numpy(labels: Labels) -> np.ndarray | None:
    if labels is None:
        return None
    if isinstance(labels, torch.Tensor):
        return labels.detach().cpu().numpy()
    return np.asarray(labels)


def class_quotas(counts: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """How many of each class a stratified subset of `size` holds: (K,) -> (K,).

    Each quota is floor(size * n_c / n) or one more (largest remainder method), so every class is
    within one example of its proportional share and the quotas add up to `size`.
    """
    share = size * counts / counts.sum()
    quota = np.floor(share).astype(np.int64)
    left = size - int(quota.sum())
    if left:
        remainder = share - quota
        # Largest remainders first; a random key breaks ties so no class is favoured by its index.
        order = np.lexsort((rng.random(len(counts)), -remainder))
        quota[order[:left]] += 1
    return np.minimum(quota, counts)


def stratified_indices(
    n: int, size: int | None, labels: Labels = None, seed: int = 0
) -> np.ndarray:
    """`size` indices of range(n), sorted: a seeded draw, stratified by class when labels exist.

    size None (or >= n) keeps everything.
    """
    if size is None or size >= n:
        return np.arange(n)
    if size < 0:
        raise ValueError(f"a subset size must be >= 0, got {size}")
    rng = np.random.default_rng(seed)
    y = _as_numpy(labels)
    if y is None:
        return np.sort(rng.choice(n, size=size, replace=False))
    if len(y) != n:
        raise ValueError(f"{len(y)} labels for {n} examples")
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    quota = class_quotas(counts, size, rng)
    chosen = [
        rng.choice(np.flatnonzero(inverse == k), size=int(q), replace=False)
        for k, q in enumerate(quota)
        if q
    ]
    return np.sort(np.concatenate(chosen)) if chosen else np.arange(0)


def stratified_split(
    n: int, test_fraction: float, labels: Labels = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices of range(n): a seeded stratified `test_fraction` is the test split."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    test = stratified_indices(n, round(n * test_fraction), labels, seed)
    is_test = np.zeros(n, dtype=bool)
    is_test[test] = True
    return np.flatnonzero(~is_test), test


def split_indices(n: int, split: str, every: int) -> np.ndarray:
    """Indices of `split` ("train" or "test") among `n` items; every `every`-th item is test.

    Used by `mnist-t10k` only, whose fixed stride keeps both writer populations of MNIST's test set
    (its two halves) in both parts.
    """
    is_test = np.arange(n) % every == every - 1
    return np.flatnonzero(is_test if split == "test" else ~is_test)


def class_counts(labels: Labels) -> dict[int, int] | None:
    """{class: count} of a label array, classes in increasing order; None without labels."""
    y = _as_numpy(labels)
    if y is None:
        return None
    classes, counts = np.unique(y, return_counts=True)
    return {int(c): int(k) for c, k in zip(classes, counts, strict=True)}


def limit_from_env(variable: str) -> int | None:
    """The most images one split may hold, from environment `variable` (a positive number), or
    None when it is unset or "all"; one sentence for anything else."""
    value = os.environ.get(variable, "").strip().lower()
    if value in ("", "all"):
        return None
    if not value.isdigit() or int(value) == 0:
        raise VimaeError(f"${variable} is {value!r}; set it to a positive number or to 'all'.")
    return int(value)


def capped_name(name: str, split: str, kept: int, total: int, variable: str) -> str:
    """A dataset's name, saying so when environment `variable` capped its split."""
    if kept == total:
        return name
    return f"{name} ({kept} of {total} {split} images drawn at random, ${variable})"
