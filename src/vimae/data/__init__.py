"""Datasets as in-memory tensors in [0, 1]: the registry, the loaders and input corruptions."""

# Each loader module registers its datasets when imported.
from vimae.data import (  # noqa: F401
    array,
    celeba,
    cifar,
    digits,
    dsprites,
    folder,
    mnist,
    omniglot,
    shapes,
    shapes3d,
    stream,
)
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
    "peek_image_shape",
    "resize",
    "write_shards",
]


def peek_image_shape(
    name: str, data_dir: str | None, image_size: int | None, pool: PoolSplit | None = None
) -> tuple[int, int, int] | None:
    """The (C, H, W) a run on dataset `name` trains on, found cheaply where it can be: a folder
    from its files' headers, shards from theirs, any other dataset from its (smaller) test split.
    None when it cannot be found (the run's own loading then says why)."""
    from pathlib import Path

    from vimae.data.folder import folder_split
    from vimae.errors import VimaeError

    where = Path(data_dir) if data_dir is not None else default_data_dir()
    try:
        if name == "folder":
            shape = folder_split("train", where, pool or PoolSplit(), image_size).image_shape
        elif name == "shards":
            shape = StreamData.open(where / "train", name).image_shape
        else:
            shape = load_dataset(name, "test", where, None, pool).image_shape
    except VimaeError:
        return None
    return shape if image_size is None else (shape[0], image_size, image_size)
