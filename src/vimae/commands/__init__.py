"""The `vimae` commands, one module each (`add_arguments` for its flags, `run` its handler):

    vimae train             one model into a run folder (train.py)
    vimae evaluate RUN      every measurement of the paper, RUN/metrics.json (evaluate.py)
    vimae demo              figure 1 in miniature on scikit-learn's digits (demo.py)
    vimae reproduce EXP     a figure or table of the paper with a report (reproduce.py)
    vimae shards            a dataset converted for streaming (shards.py)

and the commands on a trained model, each reading a run folder (results go to RUN/outputs/
unless --out says otherwise, never into the run's own files):

    vimae sample RUN        images decoded from prior draws
    vimae encode RUN        codes (and labels) of the test images as .npz
    vimae reconstruct RUN   test images above their reconstructions, and the squared error
    vimae interpolate RUN   decoded straight lines in latent space between test images
    vimae traverse RUN      one latent at a time varied around a test image's code
    vimae plot RUN          training curves from metrics.jsonl
    vimae export RUN        weights and config (and ONNX graphs) for use outside training
"""

import argparse
import importlib
from typing import Any

from vimae.runs.loading import load_exported

__all__ = ["add_parsers", "load_exported"]

# name -> (module under vimae.commands, argparse's add_parser keywords)
COMMANDS: dict[str, tuple[str, dict[str, Any]]] = {
    "train": (
        "train",
        {
            "help": "train one model into a run folder",
            "description": "Train one model; every flag overrides the config.",
            "formatter_class": argparse.RawDescriptionHelpFormatter,
        },
    ),
    "demo": (
        "demo",
        {
            "help": "figure 1 in miniature on scikit-learn's digits",
            "description": "Train the five models of figure 1 (mlp, d = 2) on the bundled 8x8 "
            "digits and draw their codes.",
        },
    ),
    "evaluate": (
        "evaluate",
        {
            "help": "every measurement of the paper on a run folder",
            "description": "Measure a trained run: reconstruction, rate, MMD, entropy, KL, "
            "Parzen NLL, FID and semi-supervised accuracy; writes metrics.json and prints a "
            "table.",
        },
    ),
    "reproduce": (
        "reproduce",
        {
            "help": "regenerate a figure or table of the paper, with a report",
            "description": "Train, evaluate and draw what one figure or table of the paper needs "
            "(runs and measurements are cached in --out), then write OUT/report.html and "
            "OUT/report.md with our numbers beside the paper's.",
            "formatter_class": argparse.RawDescriptionHelpFormatter,
        },
    ),
    "shards": (
        "shards",
        {
            "help": "convert a dataset (a folder larger than memory too) into streamed shards",
            "description": "Write both splits of a dataset as uint8 .npy shards in OUT/train and "
            "OUT/test, a shard at a time, for `vimae train --dataset shards --data-dir OUT`. A "
            "killed conversion continues when run again with the same flags.",
        },
    ),
}
# Modules that register several commands on a trained model (`add_parsers`).
MODEL_COMMANDS = ("pictures", "codes", "curves", "export")


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register every command on the `vimae` command's subparsers."""
    for name, (module_name, keywords) in COMMANDS.items():
        module = importlib.import_module(f"vimae.commands.{module_name}")
        more = module.parser_keywords() if hasattr(module, "parser_keywords") else {}
        parser = subparsers.add_parser(name, **keywords, **more)
        module.add_arguments(parser)
        parser.set_defaults(handler=module.run)
    for module_name in MODEL_COMMANDS:
        importlib.import_module(f"vimae.commands.{module_name}").add_parsers(subparsers)
