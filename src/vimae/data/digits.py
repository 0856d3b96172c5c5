"""scikit-learn's bundled 8x8 digits: 1,797 real handwritten digits that are always there.

It is the dataset of `vimae demo` and of fast tests. The split is fixed: the last 297 images are
the test set, the first 1,500 the training set.
"""

from pathlib import Path

import torch

from vimae.data.base import DATASETS, ImageData

N_TRAIN = 1500


@DATASETS.register("digits")
def load_digits(split: str, data_dir: Path) -> ImageData:
    """Pixels 0..16 scaled to [0, 1]; `data_dir` is unused since sklearn ships the files."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(bunch.target, dtype=torch.int64)
    part = slice(0, N_TRAIN) if split == "train" else slice(N_TRAIN, None)
    return ImageData("digits", images[part].contiguous(), labels[part].contiguous())
