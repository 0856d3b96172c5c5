"""vimae: the Variational InfoMax AutoEncoder and the VAE family it is measured against.

The front door (see vimae.api): `vimae.fit` trains a model on a dataset name or images in memory,
`vimae.load` reads a run folder or weights file, `vimae.evaluate` measures a model on images in
memory; `vimae.sklearn.VimaeEncoder` is the encoder as a scikit-learn transformer. The command
line (`vimae` or `python -m vimae`) does the same through run folders.

The names are imported on first use, so that `import vimae.runs.evaluation` (what `vimae evaluate`
runs) never imports the training code.
"""

from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "fit": "vimae.api",
    "load": "vimae.api",
    "evaluate": "vimae.api",
    "fit_sampler": "vimae.api",
    "as_image_data": "vimae.api",
    "ImageData": "vimae.data",
    "load_dataset": "vimae.data",
    "VimaeError": "vimae.errors",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vimae' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value
