"""Datasets as in-memory tensors in [0, 1]: the registry, the loaders and input corruptions."""

# Each loader module registers its datasets when imported.
from vimae.data import array, celeba, cifar, digits, folder, mnist, omniglot, stream  # noqa: F401
from vimae.data.base import (
    DATASETS,
    ImageData,
    PoolSplit,
    default_data_dir,
    load_dataset,
    resize,
)
from vimae.data.stream import StreamData, write_shards

__all__ = [
    "DATASETS",
    "ImageData",
    "PoolSplit",
    "StreamData",
    "default_data_dir",
    "load_dataset",
    "resize",
    "write_shards",
]
