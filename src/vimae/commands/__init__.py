"""Commands for what users do with a trained autoencoder, each reading a run folder.

    vimae sample RUN        images decoded from prior draws
    vimae encode RUN        codes (and labels) of the test images as .npz
    vimae reconstruct RUN   test images above their reconstructions, and the squared error
    vimae interpolate RUN   decoded straight lines in latent space between test images
    vimae traverse RUN      one latent at a time varied around a test image's code
    vimae plot RUN          training curves from metrics.jsonl
    vimae export RUN        weights and config (and ONNX graphs) for use outside training

Results go to RUN/outputs/ unless --out says otherwise, never into the run's own files.
"""

import argparse

from vimae.commands import codes, curves, export, pictures
from vimae.commands.weights import load_exported

__all__ = ["add_parsers", "load_exported"]


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register the commands above on the `vimae` command's subparsers."""
    for module in (pictures, codes, curves, export):
        module.add_parsers(subparsers)
