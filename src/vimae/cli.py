"""The `vimae` command: train, evaluate, demo, reproduce, shards (a dataset converted for
streaming), and the commands for a trained model (sample, encode, reconstruct, interpolate,
traverse, plot, export).

User errors (VimaeError) print one sentence and exit with status 2, never a traceback.
"""

import argparse
import importlib.metadata
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

from vimae import distributed
from vimae.allocator import keep_freed_memory
from vimae.config import (
    CONFIG_FILE,
    PRECISIONS,
    TRAIN_FLAGS,
    TRAIN_PRESETS,
    RunConfig,
    apply_overrides,
    load_config,
    load_config_file,
    preset_overrides,
)
from vimae.errors import VimaeError

# Commands whose steps allocate and free large activations: glibc's malloc is told to keep freed
# memory (vimae/allocator.py), which removes a page fault storm on every step.
MEMORY_HUNGRY = ("train", "evaluate", "demo", "reproduce")


class FlagHelp(NamedTuple):
    """What a `vimae train` flag sets, its unit, and what a None default means."""

    what: str
    unit: str = ""
    unset: str = ""


PAPER_VALUE = "the paper's value for the dataset and model"
FRACTION = "fraction of the images, 0 to 1"
INTENSITY = "pixel intensity, images lie in [0, 1]"

# `vimae train --help`, one entry per flag of TRAIN_FLAGS (a test checks): "WHAT; unit: UNIT;
# default: DEFAULT; choices: CHOICES". The default comes from config.py's dataclasses and the
# choices from the registries (`train_flag_help`), so neither can drift; `unset` says what a None
# default means, its {fields} filled from the paper's hyper-parameters (`_paper_values`).
TRAIN_HELP = {
    "model": FlagHelp("objective: VIMAE (Normal / Logistic prior), the VAE family or InfoVAE"),
    "arch": FlagHelp("network: dcgan28 takes 28x28 images, dcgan64 64x64, mlp any size"),
    "width": FlagHelp("scales every layer's channels and units", "multiple of the paper's net"),
    "latent_dim": FlagHelp("size d of the code z", "dimensions"),
    "prior": FlagHelp(
        "prior p(z), unit variance", unset=f"{PAPER_VALUE}: logistic for vimae-l, else normal"
    ),
    "lam": FlagHelp(
        "weight lambda of the MMD term (vimae-n, vimae-l, infovae)", unset=f"{PAPER_VALUE}: {{lam}}"
    ),
    "beta": FlagHelp(
        "weight beta of the KL term (beta-vae-h, beta-vae-a) or of |R0 - KL| (rate-target)",
        unset=f"{PAPER_VALUE}: {{beta_h}} for beta-vae-h, {{beta_a}} for beta-vae-a, "
        "1 for rate-target",
    ),
    "rate_target": FlagHelp("target rate R0 of --model rate-target", "nats", "none (give one)"),
    "alpha": FlagHelp(
        "InfoVAE's alpha in recon + (1 - alpha) KL + (alpha + lambda - 1) MMD",
        unset=f"{PAPER_VALUE}: 0 (InfoVAE's MMD-VAE)",
    ),
    "kernel": FlagHelp("kernel of the MMD between the codes and prior draws"),
    "encoder_noise": FlagHelp("std of VIMAE's truncated Gaussian input noise", INTENSITY),
    "encoder_noise_bound": FlagHelp("truncation bound of VIMAE's input noise", INTENSITY),
    "recon_weight": FlagHelp("weight of the squared reconstruction error (the WAE code: 0.05)"),
    "dataset": FlagHelp("dataset; its files under --data-dir: the README's table of layouts"),
    "data_dir": FlagHelp(
        "folder of the dataset's files (folder: the image folder; array: the .npy/.npz file)",
        unset="$VIMAE_DATA_DIR, else ./data",
    ),
    "image_size": FlagHelp(
        "side to resize the images to, square (a folder of mixed sizes needs it)",
        "pixels",
        "the data's own size",
    ),
    "train_size": FlagHelp(
        "training images to keep, a seeded class-stratified draw", "images", "all"
    ),
    "test_fraction": FlagHelp("test share of pooled data (folder, array), stratified", FRACTION),
    "val_fraction": FlagHelp(
        "training images held out for a validation loss each epoch (0: none)", FRACTION
    ),
    "data_seed": FlagHelp("seed of the --train-size draw and of the pooled and validation splits"),
    "epochs": FlagHelp("passes over the training images", "epochs"),
    "batch_size": FlagHelp("images per step, over all processes", "images"),
    "lr": FlagHelp("Adam's learning rate (betas 0.5, 0.999 as in the paper)"),
    "seed": FlagHelp("seed of the initial weights, the batch order and the noise"),
    "device": FlagHelp("where to train; auto: CUDA, else Apple MPS, else the CPU"),
    "precision": FlagHelp("bf16: the networks under bfloat16 autocast, the loss terms in float32"),
    "checkpoint_every": FlagHelp("also checkpoint every N steps (0: at each epoch's end)", "steps"),
    "patience": FlagHelp(
        "stop when the validation loss has not improved for N epochs (0: never; needs "
        "--val-fraction)",
        "epochs",
    ),
    "workers": FlagHelp(
        "DataLoader worker processes reading streamed data (the shards dataset; 0: the "
        "training process reads)",
        "processes",
    ),
}

TRAIN_EPILOG = """\
Settings apply in this order, each over the ones before: the defaults, --preset, --config, the
flags, --set (with --resume, the run folder's config.json takes the place of the defaults and
--preset).

A --config file (TOML or JSON) sets any key of its [model], [data] and [train] sections;
docs/example-config.toml in the source tree shows every key. For instance:

  [model]
  name = "vimae-l"
  arch = "mlp"
  latent_dim = 2

  [train]
  epochs = 5
"""


def _paper_values() -> dict[str, str]:
    """The paper's hyper-parameters per dataset group, as `unset` texts name them."""
    from vimae.model import LARGE_DATASETS, PAPER_DEFAULTS

    small, large = PAPER_DEFAULTS["small"], PAPER_DEFAULTS["large"]
    on = " and ".join(LARGE_DATASETS)
    return {key: f"{small[key]:g} ({large[key]:g} on {on})" for key in small}


def _train_choices() -> dict[str, str]:
    """flag -> its valid values, from the registries."""
    from vimae.data import DATASETS
    from vimae.device import DEVICE_HELP
    from vimae.divergence import KERNELS
    from vimae.model import PRESETS
    from vimae.net import NETWORKS
    from vimae.prior import PRIORS

    registries = {"model": PRESETS, "arch": NETWORKS, "prior": PRIORS, "kernel": KERNELS}
    choices = {flag: ", ".join(registry.names()) for flag, registry in registries.items()}
    choices["dataset"] = ", ".join(DATASETS.names())
    choices["precision"] = ", ".join(PRECISIONS)
    choices["device"] = DEVICE_HELP
    return choices


def train_flag_help(flag: str, choices: dict[str, str], paper: dict[str, str]) -> str:
    """The help of `vimae train --FLAG` in TRAIN_HELP's format."""
    key = TRAIN_FLAGS[flag]
    entry = TRAIN_HELP.get(flag, FlagHelp(f"sets {key}"))
    section, _, name = key.partition(".")
    default = getattr(getattr(RunConfig(), section), name)
    if default is None:
        default = entry.unset.format(**paper) or "none"
    parts = [entry.what, f"unit: {entry.unit}" if entry.unit else "", f"default: {default}"]
    if flag in choices:
        parts.append(f"choices: {choices[flag]}")
    return "; ".join(part for part in parts if part).replace("%", "%%")  # argparse %-formats


def preset_help() -> str:
    """Each preset's values, e.g. "quick = model.width 0.25 (mlp), 0.125 (dcgan28); ..."."""
    described = []
    for name in TRAIN_PRESETS:
        values = []
        for key, value in TRAIN_PRESETS[name].items():
            if isinstance(value, dict):
                value = ", ".join(f"{v} ({arch})" for arch, v in value.items())
            values.append(f"{key} {value}")
        described.append(f"{name} = {'; '.join(values)}")
    return " | ".join(described)


def add_train_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train one model into a run folder",
        description="Train one model; every flag overrides the config.",
        epilog=TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    choices, paper = _train_choices(), _paper_values()
    for flag, key in TRAIN_FLAGS.items():
        p.add_argument(
            "--" + flag.replace("_", "-"),
            dest=flag,
            metavar=key.split(".")[1].upper(),
            help=train_flag_help(flag, choices, paper),
        )
    p.add_argument(
        "--preset",
        metavar="NAME",
        help="other defaults, beneath --config and the flags; quick: a narrow network for a few "
        "epochs, to try one's own data in minutes on a CPU (docs/choices.md); choices: "
        + preset_help().replace("%", "%%"),
    )
    p.add_argument(
        "--config",
        help="a TOML or JSON file with [model], [data], [train] sections (below; example: "
        "docs/example-config.toml)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override any config key, also those without a flag (repeatable)",
    )
    p.add_argument("--out", help="run folder (default runs/MODEL-DATASET-ARCH-seedSEED)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its checkpoint; its config.json supplies every "
        "setting not given again (a lower --lr is the one change a resume accepts)",
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar and no line per epoch (the summary at the end stays)",
    )
    p.add_argument(
        "--tensorboard",
        action="store_true",
        help="also log every row of metrics.jsonl to RUN/tensorboard (pip install "
        "'vimae[tensorboard]')",
    )
    p.set_defaults(handler=run_train)


def train_config(args: argparse.Namespace) -> RunConfig:
    """The run's settings: with --resume --out DIR, DIR's config.json; else the defaults, with
    --preset and then --config on top; then the flags and --set."""
    overrides = [
        f"{key}={getattr(args, flag)}"
        for flag, key in TRAIN_FLAGS.items()
        if getattr(args, flag) is not None
    ] + args.set
    base = RunConfig()
    if args.preset:
        # The preset's per-network values follow the network the file and flags choose.
        chosen = load_config_file(args.config) if args.config else RunConfig()
        arch = apply_overrides(chosen, overrides).model.arch
        base = apply_overrides(base, preset_overrides(args.preset, arch))
    recorded = Path(args.out) / CONFIG_FILE if args.out else None
    if args.resume and recorded is not None and recorded.is_file():
        base = load_config(args.out)
    config = load_config_file(args.config, base=base) if args.config else base
    config = apply_overrides(config, overrides)
    if args.tensorboard:
        config.train.tensorboard = True
    if args.no_progress:
        config.train.progress = False
    return config


def run_train(args: argparse.Namespace) -> int:
    from vimae.train import fit

    config = train_config(args)
    m, d = config.model, config.data
    out = Path(args.out or f"runs/{m.name}-{d.dataset}-{m.arch}-seed{config.train.seed}")
    args.interrupted = (
        f"interrupted; {out} continues from its last checkpoint with "
        f"`vimae train --resume --out {out}`."
    )
    started = time.perf_counter()
    try:
        model = fit(config, out, resume=args.resume)
    finally:
        distributed.shutdown()
    print(training_summary(model.history, m.name, d.dataset, out, time.perf_counter() - started))
    return 0


def training_summary(
    history: list[dict], model: str, dataset: str, out: Path, seconds: float
) -> str:
    """The last word of `vimae train`: what ran, where it is, and the next command."""
    done = f"trained {model} on {dataset} in {seconds:.1f} s"
    if history:
        last = history[-1]
        epochs = f"{len(history)} epoch" + ("s" if len(history) > 1 else "")
        done += f" ({epochs} this time, final loss {last['loss']:.4g}"
        if "val_loss" in last:
            best = min(history, key=lambda row: row["val_loss"])
            done += f", best val_loss {best['val_loss']:.4g} after epoch {best['epoch'] + 1}"
        done += ")"
    return f"{done}\nrun folder: {out}\nnext: vimae evaluate {out}"


def add_demo_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="figure 1 in miniature on scikit-learn's digits",
        description="Train the five models of figure 1 (mlp, d = 2) on "
        "the bundled 8x8 digits and draw their codes.",
    )
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per model")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from vimae.demo import DEMO_EPOCHS, demo

    epochs = args.epochs if args.epochs is not None else DEMO_EPOCHS
    args.interrupted = (
        f"interrupted; `vimae demo --out {args.out}` reuses the finished models and resumes "
        "the others when run again."
    )
    picture, table = demo(Path(args.out), epochs=epochs, seed=args.seed)
    print(table)
    print(f"picture: {picture}")
    return 0


def add_module_command(
    subparsers: argparse._SubParsersAction, name: str, module: ModuleType, **parser: Any
) -> None:
    """Command `name`, whose flags (`add_arguments`) and handler (`run`) live in `module`."""
    p = subparsers.add_parser(name, **parser)
    module.add_arguments(p)
    p.set_defaults(handler=module.run)


def add_evaluate_parser(subparsers: argparse._SubParsersAction) -> None:
    from vimae import evaluation

    add_module_command(
        subparsers,
        "evaluate",
        evaluation,
        help="every measurement of the paper on a run folder",
        description="Measure a trained run: reconstruction, rate, MMD, entropy, KL, Parzen NLL, "
        "FID and semi-supervised accuracy; writes metrics.json and prints a table.",
    )


def add_shards_parser(subparsers: argparse._SubParsersAction) -> None:
    from vimae.data import convert

    add_module_command(
        subparsers,
        "shards",
        convert,
        help="convert a dataset (a folder larger than memory too) into streamed shards",
        description="Write both splits of a dataset as uint8 .npy shards in OUT/train and "
        "OUT/test, a shard at a time, for `vimae train --dataset shards --data-dir OUT`. A killed "
        "conversion continues when run again with the same flags.",
    )


def add_reproduce_parser(subparsers: argparse._SubParsersAction) -> None:
    from vimae import reproduce
    from vimae.estimate import estimate_table

    add_module_command(
        subparsers,
        "reproduce",
        reproduce,
        help="regenerate a figure or table of the paper, with a report",
        description="Train, evaluate and draw what one figure or table of the paper needs (runs "
        "and measurements are cached in --out), then write OUT/report.html and OUT/report.md "
        "with our numbers beside the paper's.",
        epilog=estimate_table(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def installed_version() -> str:
    """The version pip installed (its metadata), else the source tree's `vimae.__version__`."""
    try:
        return importlib.metadata.version("vimae")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        import vimae

        return vimae.__version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vimae", description=" ".join(__doc__.split("\n\n")[0].split())
    )
    parser.add_argument("--version", action="version", version=f"vimae {installed_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_train_parser(subparsers)
    add_demo_parser(subparsers)
    add_evaluate_parser(subparsers)
    add_reproduce_parser(subparsers)
    add_shards_parser(subparsers)
    importlib.import_module("vimae.commands").add_parsers(subparsers)  # sample, encode, ...
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is (like Ctrl-C) so that it unwinds the same way."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; bad input is one sentence and status 2, Ctrl-C or SIGTERM a sentence
    saying what the interruption means for that command and status 130 or 143."""
    args = build_parser().parse_args(argv)
    args.interrupted = "interrupted."
    previous = signal.getsignal(signal.SIGTERM)
    in_main_thread = _in_main_thread()
    if in_main_thread:
        signal.signal(signal.SIGTERM, _raise_terminated)
    if args.command in MEMORY_HUNGRY:
        keep_freed_memory()  # a process setting: the CLI's choice, a library user's on request
    try:
        return args.handler(args)
    except VimaeError as err:
        print(f"vimae: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(f"vimae: {args.interrupted}", file=sys.stderr)
        return 143 if isinstance(err, Terminated) else 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
