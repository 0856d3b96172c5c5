"""Datasets as in-memory tensors in [0, 1]: the registry, the loaders and input corruptions."""

from vimae.data import digits  # noqa: F401  (registers its loader)
from vimae.data.base import DATASETS, ImageData, default_data_dir, load_dataset, resize

__all__ = ["DATASETS", "ImageData", "default_data_dir", "load_dataset", "resize"]
