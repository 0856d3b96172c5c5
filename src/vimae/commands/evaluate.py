"""`vimae evaluate RUN_DIR`: every measurement of SPEC section 6 on a trained run, as a table and
RUN_DIR/metrics.json (metrics-DATASET.json when evaluated on another dataset than the run's own;
training logs go to metrics.jsonl, a different file).

The flags of the options come from their declarations in `vimae.metrics.MetricOptions`; the
measuring is `vimae.runs.evaluation.evaluate_run`.
"""

import argparse
import contextlib
import dataclasses
import json
import sys
import typing
from pathlib import Path
from typing import Any

from vimae.commands.common import on_interrupt, out_path
from vimae.config import convert, load_config
from vimae.errors import VimaeError
from vimae.files import atomic_write_text, jsonable, run_lock
from vimae.metrics import MetricOptions
from vimae.metrics.base import option_flag
from vimae.runs.device import DEVICE_HELP
from vimae.runs.evaluation import DEFAULT_METRICS, evaluate_run, merge_reports
from vimae.runs.folder import check_output_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `vimae evaluate`: the run and data, then one `--field-name` flag per
    declared MetricOptions field."""
    parser.add_argument("run_dir", type=Path, help="a run folder written by `vimae train`")
    parser.add_argument("--dataset", help="dataset to evaluate on (default: the run's)")
    parser.add_argument("--data-dir", help="where the dataset files are (default: the run's)")
    parser.add_argument(
        "--metrics",
        default=",".join(DEFAULT_METRICS),
        help=f"comma-separated metrics to compute (default: all of {', '.join(DEFAULT_METRICS)})",
    )
    parser.add_argument(
        "--test-size",
        type=int,
        help="use a seeded, class-stratified draw of N test images (the seed is --seed)",
    )
    parser.add_argument("--device", default="auto", help=f"{DEVICE_HELP} (default auto)")
    parser.add_argument("--out", type=out_path, help="result file (default RUN_DIR/metrics.json)")
    defaults = MetricOptions()
    for f in dataclasses.fields(MetricOptions):
        default = getattr(defaults, f.name)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        choices = f.metadata["choices"]
        listed = f"; choices: {', '.join(choices)}" if isinstance(choices, tuple) else ""
        parser.add_argument(
            option_flag(f.name),
            dest=f.name,
            default=None,
            metavar=f.name.split("_")[-1].upper(),
            help=f"{f.metadata['help']} (default: {shown}{listed})".replace("%", "%%"),
        )


def options_from_args(args: argparse.Namespace) -> MetricOptions:
    """MetricOptions with the declared defaults, overridden by the flags that were given."""
    hints = typing.get_type_hints(MetricOptions)
    given = {}
    for f in dataclasses.fields(MetricOptions):
        value = getattr(args, f.name, None)
        if value is not None:
            given[f.name] = convert(value, hints[f.name], option_flag(f.name))
    return MetricOptions(**given)


def format_table(report: dict[str, Any]) -> str:
    """The printed summary: one row per metric value, the time per metric, then the accuracies."""
    seen = report.get("test_data", {})
    classes = ""
    if "classes" in seen:
        classes = (
            f", {seen['classes']} classes of {seen['smallest_class']} to "
            f"{seen['largest_class']} images"
        )
    lines = [
        f"{report['model']} on {report['dataset']} ({report['test_images']} test images{classes})",
        f"{'metric':<16} {'value':<58} {'seconds':>8}",
    ]
    semi = None
    for name, values in report["metrics"].items():
        shown = _describe(values)
        lines.append(f"{name:<16} {shown[0]:<58} {values['seconds']:>8.2f}")
        lines += [f"{'':<16} {more}" for more in shown[1:]]
        if name == "semi-supervised" and values["status"] == "ok":
            semi = values
    if semi is not None:
        lines += [
            "",
            f"semi-supervised accuracy % ({semi['semi_supervised_protocol']}; "
            f"mean +- std over {semi['semi_supervised_repeats']} draws)",
        ]
        tables = [("draws z ~ q(z|x+nu)", semi["semi_supervised"])]
        if "semi_supervised_means" in semi:
            tables.append(("posterior means", semi["semi_supervised_means"]))
        for codes, accuracies in tables:
            lines.append(f"{'input':<12} {'svm':>16} {'label_spreading':>18}   codes: {codes}")
            for spec, acc in accuracies.items():
                cells = [
                    f"{acc[c]['mean']:6.2f} +- {acc[c]['std']:5.2f}"
                    for c in ("svm", "label_spreading")
                ]
                lines.append(f"{spec:<12} {cells[0]:>16} {cells[1]:>18}")
    lines.append(f"total {report['total_seconds']:.1f} s")
    return "\n".join(lines)


def _describe(values: dict[str, Any]) -> list[str]:
    if values["status"] != "ok":
        return [f"{values['status'].upper()}: {values['reason']}"]
    skip = {"status", "seconds", "warnings"}
    skip |= {"semi_supervised", "semi_supervised_means", "semi_supervised_protocol"}
    parts = []
    for key, value in values.items():
        if key in skip:
            continue
        parts.append(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}")
    parts = parts or ["see the table below"]
    return parts + [f"WARNING: {w}" for w in values.get("warnings", [])]


def output_path(args_out: Path | None, run_dir: Path, dataset: str, own_dataset: str) -> Path:
    """RUN_DIR/metrics.json, or metrics-DATASET.json for a foreign dataset, unless --out."""
    if args_out is not None:
        return args_out
    return run_dir / ("metrics.json" if dataset == own_dataset else f"metrics-{dataset}.json")


def _previous_report(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, or None when there is none or it cannot be read."""
    try:
        previous = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return previous if isinstance(previous, dict) else None


def run(args: argparse.Namespace) -> int:
    """Handler of `vimae evaluate`: check where the result goes, evaluate, print the table,
    merge with the metrics already in the file, write it atomically."""
    run_dir = Path(args.run_dir)
    names = [n.strip() for n in args.metrics.split(",") if n.strip()]
    if not names:
        raise VimaeError(f"--metrics names no metric; choose from: {', '.join(DEFAULT_METRICS)}.")
    own = load_config(run_dir).data.dataset
    out = check_output_file(output_path(args.out, run_dir, args.dataset or own, own), run_dir)
    into_run = out.parent.resolve() == run_dir.resolve()
    lock = run_lock(run_dir, "vimae evaluate") if into_run else contextlib.nullcontext()
    with on_interrupt(f"evaluate wrote nothing ({out} is as it was)."), lock:
        for stale in out.parent.glob(f".{out.name}.*.tmp"):  # left by a killed evaluate
            stale.unlink(missing_ok=True)
        report = evaluate_run(
            run_dir,
            dataset=args.dataset,
            data_dir=args.data_dir,
            metrics=names,
            options=options_from_args(args),
            test_size=args.test_size,
            device=args.device,
            progress=True,
        )
        print(format_table(report))
        previous = _previous_report(out)
        report, kept = merge_reports(previous, jsonable(report)) if previous else (report, [])
        atomic_write_text(out, json.dumps(jsonable(report), indent=2) + "\n")
    print(f"written: {out}" + (f" (kept from before: {', '.join(kept)})" if kept else ""))
    if previous and not kept and set(previous.get("metrics", {})) - set(names):
        print(
            f"note: the metrics {out} held before were measured on other weights, data or "
            "options and were replaced."
        )
    statuses = {n: report["metrics"].get(n, {}).get("status") for n in names}
    if "failed" in statuses.values():
        return 1
    if "ok" not in statuses.values():  # nothing that was asked for could be computed
        print(
            f"vimae: none of the metrics asked for ({', '.join(names)}) could be computed; "
            "the table above says why.",
            file=sys.stderr,
        )
        return 1
    return 0
