"""`vimae train`: one model into a run folder. Its flags, their --help and their checks all come
from the settings' declarations in `vimae.config`; this module only reads them."""

import argparse
import time
from pathlib import Path

from vimae import distributed
from vimae.commands.common import on_interrupt, out_path
from vimae.config import (
    CONFIG_FILE,
    SETTING_FIELDS,
    TRAIN_FLAGS,
    TRAIN_PRESETS,
    RunConfig,
    apply_overrides,
    choice_names,
    load_config,
    load_config_file,
    preset_overrides,
)
from vimae.data import (
    DATASETS,  # noqa: F401  (fills the registry the --dataset choices read)
    PoolSplit,
    peek_image_shape,
)
from vimae.models import LARGE_DATASETS, PAPER_DEFAULTS
from vimae.models.objective import network_for
from vimae.runs.device import DEVICE_HELP

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


def parser_keywords() -> dict[str, str]:
    """More keywords of this command's parser (read by vimae.commands.add_parsers)."""
    return {"epilog": TRAIN_EPILOG}


def paper_values() -> dict[str, str]:
    """The paper's hyper-parameters per dataset group, as the `unset` texts name them."""
    small, large = PAPER_DEFAULTS["small"], PAPER_DEFAULTS["large"]
    on = " and ".join(LARGE_DATASETS)
    return {key: f"{small[key]:g} ({large[key]:g} on {on})" for key in small}


def train_flag_help(flag: str, paper: dict[str, str] | None = None) -> str:
    """The help of `vimae train --FLAG` from its setting's declaration: "WHAT; unit: UNIT;
    default: DEFAULT; choices: CHOICES" (the choices from the registries)."""
    key = TRAIN_FLAGS[flag]
    spec = SETTING_FIELDS[key]
    meta = spec.metadata
    section, _, name = key.partition(".")
    default = getattr(getattr(RunConfig(), section), name)
    if default is None:
        default = meta["unset"].format(**(paper or paper_values())) or "none"
    choices = choice_names(meta["choices"])
    if key == "train.device":
        choices = [DEVICE_HELP]
    parts = [
        meta["help"] or f"sets {key}",
        f"unit: {meta['unit']}" if meta["unit"] else "",
        f"default: {default}",
        f"choices: {', '.join(choices)}" if choices else "",
    ]
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


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of `vimae train`: one per declared setting with a flag, then the others."""
    paper = paper_values()
    for flag, key in TRAIN_FLAGS.items():
        p.add_argument(
            "--" + flag.replace("_", "-"),
            dest=flag,
            metavar=key.split(".")[1].upper(),
            help=train_flag_help(flag, paper),
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
    p.add_argument(
        "--out", type=out_path, help="run folder (default runs/MODEL-DATASET-ARCH-seedSEED)"
    )
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
    p.add_argument(
        "--mlflow",
        action="store_true",
        help="also log every row of metrics.jsonl and the settings to an MLflow store in "
        "RUN/mlflow.db, no server needed (pip install 'vimae[mlflow]')",
    )


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
        chosen = apply_overrides(
            load_config_file(args.config) if args.config else RunConfig(), overrides
        )
        arch = chosen.model.arch
        if arch == "auto":  # the network the images' size will choose
            d = chosen.data
            shape = peek_image_shape(d.dataset, d.data_dir, d.image_size, PoolSplit.of(d))
            arch = network_for(shape) if shape is not None else arch
        base = apply_overrides(base, preset_overrides(args.preset, arch))
    recorded = Path(args.out) / CONFIG_FILE if args.out else None
    if args.resume and recorded is not None and recorded.is_file():
        base = load_config(args.out)
    config = load_config_file(args.config, base=base) if args.config else base
    config = apply_overrides(config, overrides)
    if args.tensorboard:
        config.train.tensorboard = True
    if args.mlflow:
        config.train.mlflow = True
    if args.no_progress:
        config.train.progress = False
    return config


def run(args: argparse.Namespace) -> int:
    """Handler of `vimae train`."""
    from vimae.runs.fit import fit

    config = train_config(args)
    m, d = config.model, config.data
    out = Path(args.out or f"runs/{m.name}-{d.dataset}-{m.arch}-seed{config.train.seed}")
    started = time.perf_counter()
    note = f"{out} continues from its last checkpoint with `vimae train --resume --out {out}`."
    try:
        with on_interrupt(note):
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
