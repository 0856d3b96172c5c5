"""The run folders of one part of a reproduction, for the benchmarks that measure them again.

A reproduction (`vimae reproduce PART --out RESULTS`) lists its runs per experiment, setting and
model in RESULTS/manifest.json; docs/results keeps no weights, so the runs must have been trained
on this machine for a benchmark to load them.
"""

import argparse
import json
from pathlib import Path

MODELS = ("vae", "beta-vae-h", "beta-vae-a", "vimae-n", "vimae-l")


def add_arguments(parser: argparse.ArgumentParser, seeds: int) -> None:
    """--results, --data-dir, --models and --seeds (the first `seeds` runs of each model)."""
    parser.add_argument("--results", type=Path, default=Path("docs/results/cpu"))
    parser.add_argument("--data-dir", default="../shared/datasets")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--seeds", type=int, default=seeds)


def part_runs(
    results: Path, part: str, models: list[str], seeds: int, dataset: str | None = None
) -> dict[str, list[Path]]:
    """model -> its first `seeds` run folders in the part's setting (the one of `dataset` when
    the part has several)."""
    manifest = json.loads((results / "manifest.json").read_text())
    settings = manifest["experiments"][part]["settings"]
    (setting,) = [s for s in settings if dataset is None or s["dataset"] == dataset]
    return {m: [results / r for r in setting["runs"][m][:seeds]] for m in models}
