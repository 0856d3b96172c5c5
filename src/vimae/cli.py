"""The `vimae` command: train, evaluate, demo, reproduce.

User errors (VimaeError) print one sentence and exit with status 2, never a traceback.
"""

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from vimae import distributed
from vimae.config import (
    CONFIG_FILE,
    TRAIN_FLAGS,
    RunConfig,
    apply_overrides,
    load_config,
    load_config_file,
)
from vimae.errors import VimaeError


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
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its checkpoint; its config.json supplies every "
        "setting not given again (a lower --lr is the one change a resume accepts)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run_train)


def train_config(args: argparse.Namespace) -> RunConfig:
    """The run's settings: with --resume --out DIR, DIR's config.json; else the defaults or
    --config; then the flags and --set on top."""
    recorded = Path(args.out) / CONFIG_FILE if args.out else None
    if args.resume and recorded is not None and recorded.is_file():
        config = load_config(args.out)
        if args.config:
            config = load_config_file(args.config, base=config)
    else:
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
    args.interrupted = (
        f"interrupted; {out} continues from its last checkpoint with "
        f"`vimae train --resume --out {out}`."
    )
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
    args.interrupted = (
        f"interrupted; `vimae demo --out {args.out}` reuses the finished models and resumes "
        "the others when run again."
    )
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
