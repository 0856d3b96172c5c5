"""The splits of a factorial dataset: every combination of its factors exactly once, no test set.

dSprites (`vimae.data.dsprites`) and 3dshapes (`vimae.data.shapes3d`) are stored as one array in
factor order and come without a train/test split. vimae makes one that is the same on every
machine: a seeded permutation (seed 0) of all images puts a tenth in "test" and the rest in
"train", each returned in file order. Both sets are large in memory (dSprites 737,280 images, 3.0
GB as uint8; 3dshapes 480,000 colour images, 5.9 GB), so $VIMAE_FACTORS_LIMIT=N caps each split at
a seeded random draw of N of its images (never the first N: the files are ordered by factor, and a
slice would hold one shape and one scale), and a capped split says so in its name.
"""

import numpy as np

from vimae.data.split import limit_from_env, stratified_indices

TEST_FRACTION = 0.1
SPLIT_SEED = 0
LIMIT_ENV = "VIMAE_FACTORS_LIMIT"


def split_indices(n: int, split: str) -> tuple[np.ndarray, int]:
    """The sorted indices of `split` ("test", or "train" for any other name) among n images,
    capped at $VIMAE_FACTORS_LIMIT by a seeded draw, and how many the split holds uncapped."""
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_test = max(1, round(n * TEST_FRACTION))
    chosen = np.sort(order[:n_test] if split == "test" else order[n_test:])
    total = len(chosen)
    limit = limit_from_env(LIMIT_ENV)
    if limit is not None and limit < total:
        chosen = chosen[stratified_indices(total, limit, seed=SPLIT_SEED)]
    return chosen, total
