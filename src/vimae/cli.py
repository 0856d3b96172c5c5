"""The `vimae` command: train, evaluate, demo, reproduce.

User errors (VimaeError) print one sentence and exit with status 2, never a traceback.
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from vimae import distributed
from vimae.config import RunConfig, apply_overrides, load_config_file
from vimae.errors import VimaeError

# Command-line flag -> config key; each flag is a shortcut for `--set KEY=VALUE`.
TRAIN_FLAGS = {
    "model": "model.name",
    "arch": "model.arch",
    "width": "model.width",
    "latent_dim": "model.latent_dim",
    "prior": "model.prior",
    "lam": "model.lam",
    "beta": "model.beta",
    "rate_target": "model.rate_target",
    "alpha": "model.alpha",
    "kernel": "model.kernel",
    "encoder_noise": "model.encoder_noise",
    "encoder_noise_bound": "model.encoder_noise_bound",
    "recon_weight": "model.recon_weight",
    "dataset": "data.dataset",
    "data_dir": "data.data_dir",
    "image_size": "data.image_size",
    "train_size": "data.train_size",
    "test_fraction": "data.test_fraction",
    "data_seed": "data.seed",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "lr": "train.lr",
    "seed": "train.seed",
    "device": "train.device",
    "precision": "train.precision",
    "checkpoint_every": "train.checkpoint_every",
}


def add_train_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train one model into a run folder",
        description="Train one model; every flag overrides the config.",
    )
    for flag, key in TRAIN_FLAGS.items():
        p.add_argument(
            "--" + flag.replace("_", "-"),
            dest=flag,
            metavar=key.split(".")[1].upper(),
            help=f"sets {key}",
        )
    p.add_argument("--config", help="a JSON or TOML file with [model], [data], [train] sections")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override any config key (repeatable)",
    )
    p.add_argument("--out", help="run folder (default runs/MODEL-DATASET-ARCH-seedSEED)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run_train)


def train_config(args: argparse.Namespace) -> RunConfig:
    config = load_config_file(args.config) if args.config else RunConfig()
    overrides = [
        f"{key}={getattr(args, flag)}"
        for flag, key in TRAIN_FLAGS.items()
        if getattr(args, flag) is not None
    ]
    config = apply_overrides(config, overrides + args.set)
    if args.no_progress:
        config.train.progress = False
    return config


def run_train(args: argparse.Namespace) -> int:
    from vimae.train import fit

    config = train_config(args)
    m, d = config.model, config.data
    out = Path(args.out or f"runs/{m.name}-{d.dataset}-{m.arch}-seed{config.train.seed}")
    try:
        fit(config, out, resume=args.resume)
    finally:
        distributed.shutdown()
    print(f"trained {m.name} on {d.dataset}: run folder {out}")
    return 0


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
    picture, table = demo(Path(args.out), epochs=epochs, seed=args.seed)
    print(table)
    print(f"picture: {picture}")
    return 0


def add_evaluate_parser(subparsers: argparse._SubParsersAction) -> None:
    from vimae import evaluate

    p = subparsers.add_parser(
        "evaluate",
        help="every measurement of the paper on a run folder",
        description="Measure a trained run: reconstruction, rate, MMD, entropy, KL, Parzen NLL, "
        "FID and semi-supervised accuracy; writes metrics.json and prints a table.",
    )
    evaluate.add_arguments(p)
    p.set_defaults(handler=evaluate.run)


def add_reproduce_parser(subparsers: argparse._SubParsersAction) -> None:
    from vimae import reproduce
    from vimae.estimate import estimate_table

    p = subparsers.add_parser(
        "reproduce",
        help="regenerate a figure or table of the paper, with a report",
        description="Train, evaluate and draw what one figure or table of the paper needs (runs "
        "and measurements are cached in --out), then write OUT/report.html and OUT/report.md "
        "with our numbers beside the paper's.",
        epilog=estimate_table(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    reproduce.add_arguments(p)
    p.set_defaults(handler=reproduce.run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vimae", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_train_parser(subparsers)
    add_demo_parser(subparsers)
    add_evaluate_parser(subparsers)
    add_reproduce_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except VimaeError as err:
        print(f"vimae: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "vimae: interrupted; a run continues with --resume from its last checkpoint.",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
