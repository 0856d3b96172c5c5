"""Train a model with its encoder's convolutions and batch norms frozen at their initial weights:
what the loss spike at the paper's width leaves of a Gaussian encoder (vimae.runs.spike), made
on purpose at a width the cpu can train in minutes.

At dcgan28 width 1 the third Adam step's loss reaches 1e10-1e15 and from then on the encoder's
first three convolutions and the batch norms after them keep their weights to within 1e-5
(relative), while its linear head and the decoder train, and its last convolution through the 1%
of its weights the spike missed (`benchmarks/layer_movement.py`). Here all four convolutions and
batch norms are kept, a little more than the spike freezes. Whether that is what
makes the paper's VAE family lose its features under noise is a question of what such a model
learns, which this answers at table 3's width 1/8: the same `vimae train` run, with Adam given
only the head's and the decoder's weights. Batch norm still normalises with the batch's
statistics and updates its running ones, as in the frozen run. The run folder is an ordinary
one, measured with `vimae evaluate`.

    python benchmarks/frozen_encoder.py -- TRAIN ARGUMENTS ...    # as `vimae train` takes them
"""

import sys

import torch

import vimae.runs.fit as fit_module
from vimae.cli import main

original = fit_module.build_optimizer


def build_optimizer_of_the_rest(model: torch.nn.Module, t: object) -> torch.optim.Adam:
    """Adam over every weight but the encoder's convolutions and batch norms, which keep their
    initial values (requires_grad off, so no gradient is computed for them either)."""
    for name, parameter in model.named_parameters():
        if name.startswith("encoder.") and not name.startswith("encoder.head"):
            parameter.requires_grad_(False)
    trainable = torch.nn.ParameterList(p for p in model.parameters() if p.requires_grad)
    return original(trainable, t)


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if arguments[:1] == ["--"]:
        arguments = arguments[1:]
    fit_module.build_optimizer = build_optimizer_of_the_rest
    sys.exit(main(["train", *arguments]))
