"""The reproduction report: a function of files, the output folder of `vimae reproduce` in, pages
and pictures out.

Reads OUT/manifest.json (which runs each experiment used, one per model and training seed, its
command and wall time) and, in each run folder, config.json, data.json, metrics.jsonl,
evaluation/*.json and pictures/*.npz; writes OUT/report.md, OUT/report.html and OUT/figures/*.png.
Nothing is trained or measured here, so a report can be rebuilt (or tested) from hand-written files.
Every number is a mean over training seeds with its standard error (`vimae.paper.verdict`), printed
beside the paper's (`vimae.paper.numbers`); every claim of SPEC section 8 (`vimae.paper.claims`) is
judged on our numbers and on the paper's by the same stated rule; every setting says what data it
saw and whether its training had converged; every number can be traced to the `vimae train` and
`vimae evaluate` commands that made it.
"""

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from vimae.paper import claims as C
from vimae.paper.page import Block, to_html, to_markdown
from vimae.paper.report.blocks import NUMBERS_NOTE, describe_data
from vimae.paper.report.figures import (
    section_fig1,
    section_rate_distortion,
    section_recon,
    section_table1,
    section_table5,
)
from vimae.paper.report.records import (
    load_results,
    published,
    published_accuracy,
    setting_values,
)
from vimae.paper.report.robustness import (
    robustness_claims,
    section_calibration,
    section_noise,
    section_schedule,
    semi_table,
)
from vimae.paper.verdict import FAILS, HOLDS, INCONCLUSIVE, UNMEASURED

__all__ = [
    "build_blocks",
    "build_report",
    "describe_data",
    "load_results",
    "published",
    "published_accuracy",
    "robustness_claims",
    "setting_values",
]

# Experiment -> the function that writes its section (and adds its claims).
SECTIONS: dict[str, Callable[[Path, dict, list[C.Claim]], list[Block]]] = {
    "fig1": section_fig1,
    "recon": section_recon,
    "table1": section_table1,
    "table2": lambda out, r, c: semi_table("table2", out, r, c),
    "table3": lambda out, r, c: semi_table("table3", out, r, c),
    "table4": lambda out, r, c: semi_table("table4", out, r, c),
    "table5": section_table5,
    "noise": section_noise,
    "calibration": section_calibration,
    "schedule": section_schedule,
}


def claims_blocks(claims: list[C.Claim]) -> list[Block]:
    """The verdict counts and the table of every claim, ours and the paper's."""
    ours = Counter(c.status for c in claims)
    theirs = Counter(c.paper_status for c in claims)
    order = (HOLDS, FAILS, INCONCLUSIVE, UNMEASURED)
    counts = "; ".join(f"{ours[s]} {s}" for s in order)
    paper_counts = "; ".join(f"{theirs[s]} {s}" for s in order)
    rows = [
        [
            c.source,
            c.statement,
            c.rule,
            c.status.upper() + (f" ({c.note})" if c.note else ""),
            c.evidence,
            c.paper_status.upper(),
            c.paper_evidence,
        ]
        for c in claims
    ]
    header = [
        "from",
        "claim (the paper's words)",
        "rule",
        "verdict (ours)",
        "difference ± se (ours)",
        "verdict (paper's numbers)",
        "difference (paper)",
    ]
    return [
        Block(
            "p",
            f"Our numbers: {counts}. The paper's own numbers, by the same rules: "
            f"{paper_counts}. {NUMBERS_NOTE} Thresholds: '>>' is more than {C.MUCH_NATS:g} "
            f"nat; 'at least as well' allows {100 * C.RECON_TOLERANCE:g}% more error; 'about "
            f"twice' is {C.RATE_RATIO[0]:g} to {C.RATE_RATIO[1]:g} times; 'comparable' "
            f"accuracies are within {C.CLOSE_POINTS:g} points; 'close' FIDs within "
            f"{100 * C.CLOSE_FID:g}% of their mean. 'Not measured' for the paper: its tables "
            "do not give the number (figures 1-3 give no values in the text).",
        ),
        Block("table", header=header, rows=rows),
    ]


def build_blocks(out: Path) -> list[Block]:
    """The whole report as blocks (also draws every figure into OUT/figures)."""
    manifest, results = load_results(out)
    experiments = manifest["experiments"]
    blocks = [Block("h1", "vimae: reproduction of the Variational InfoMax AutoEncoder paper")]
    scales = sorted({r["scale"] for r in experiments.values()}) or ["none"]
    blocks.append(
        Block(
            "p",
            f"Scale: {', '.join(scales)}. Our numbers beside the paper's "
            "(SPEC section 8); the cpu scale trains narrower networks for fewer "
            "epochs on subsets, so its numbers are not the paper's protocol and are "
            "compared for direction, not value.",
        )
    )
    claims: list[C.Claim] = []
    body: list[Block] = []
    for name, section in SECTIONS.items():
        if name not in experiments:
            continue
        body.append(Block("h2", experiments[name]["title"]))
        before = len(claims)
        body += section(out, results, claims)
        if len(claims) == before and name not in ("noise", "calibration", "schedule"):
            why = "; ".join(s.get("reason", "") for s in experiments[name]["settings"])
            claims.append(
                C.Claim(name, f"(the claims of {name})", "", UNMEASURED, why, UNMEASURED, "")
            )
        body.append(
            Block(
                "p",
                f"Made by `{experiments[name]['command']}` in "
                f"{experiments[name]['seconds']:.0f} s "
                f"(finished {experiments[name]['finished']}).",
            )
        )
    blocks.append(Block("h2", "Claims of the paper"))
    blocks += claims_blocks(claims)
    missing_experiments = [name for name in SECTIONS if name not in experiments]
    if missing_experiments:
        blocks.append(Block("p", f"Experiments not run: {', '.join(missing_experiments)}."))
    blocks.append(Block("h2", "Missing data and runs not made"))
    missing = [
        [name, s["key"], s["dataset"], s.get("reason", "")]
        for name, record in experiments.items()
        for s in record["settings"]
        if s.get("status") != "ok"
    ]
    if missing:
        blocks.append(
            Block("table", header=["experiment", "setting", "dataset", "why"], rows=missing)
        )
    else:
        blocks.append(Block("p", "Every setting ran."))
    blocks += body
    blocks.append(Block("h2", "Rate, distortion and MMD of all models"))
    blocks += section_rate_distortion(out, results)
    blocks.append(Block("h2", "Wall time"))
    blocks.append(
        Block(
            "table",
            header=["experiment", "seconds", "command"],
            rows=[[n, f"{r['seconds']:.0f}", r["command"]] for n, r in experiments.items()],
        )
    )
    return blocks


def build_report(out: str | Path) -> tuple[Path, Path]:
    """Write OUT/report.md and OUT/report.html (and OUT/figures/*.png) from OUT's files."""
    out = Path(out)
    blocks = build_blocks(out)
    md, page = out / "report.md", out / "report.html"
    md.write_text(to_markdown(blocks))
    page.write_text(to_html(blocks))
    return md, page
