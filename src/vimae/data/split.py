"""The deterministic train/test split for data that comes as one pool of images.

Every `every`-th item (indices every-1, 2*every-1, ...) is a test item, the rest are training
items. Taking a regular stride rather than a contiguous tail keeps the split stable without a
random generator and spreads the test set over the whole pool, which matters when a pool is
ordered (MNIST's test set has its two writer populations in its two halves; a folder of images
is sorted by class).
"""

import numpy as np


def split_indices(n: int, split: str, every: int) -> np.ndarray:
    """Indices of `split` ("train" or "test") among `n` items; every `every`-th item is test."""
    is_test = np.arange(n) % every == every - 1
    return np.flatnonzero(is_test if split == "test" else ~is_test)
