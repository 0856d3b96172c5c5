"""The reproduction report: a function of files, the output folder of `vimae reproduce` in, pages
and pictures out.

Reads OUT/manifest.json (which runs each experiment used, one per model and training seed, its
command and wall time) and, in each run folder, config.json, data.json, metrics.jsonl,
evaluation/*.json and pictures/*.npz; writes OUT/report.md, OUT/report.html and OUT/figures/*.png.
Nothing is trained or measured here, so a report can be rebuilt (or tested) from hand-written files.
Every number is a mean over training seeds with its standard error (`vimae.paper.verdict`), printed
beside the paper's (`vimae.paper.numbers`); every claim of SPEC section 8 (`vimae.paper.claims`) is
judged on our numbers and on the paper's by the same stated rule; every setting says what data it
saw (with its class counts) and whether its training had converged by its held-out loss
(`records.CONVERGENCE_RULE`); every number can be traced to the `vimae train` and `vimae evaluate`
commands that made it.
"""

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from vimae.paper import claims as C
from vimae.paper.page import Block, to_html, to_markdown
from vimae.paper.report.blocks import NUMBERS_NOTE, describe_data
from vimae.paper.report.comparison import section_comparison
from vimae.paper.report.convergence import section_convergence
from vimae.paper.report.figures import (
    section_fig1,
    section_rate_distortion,
    section_recon,
    section_table1,
    section_table5,
)
from vimae.paper.report.longer import section_longer
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
from vimae.paper.verdict import STATUSES, UNDECIDABLE, UNMEASURED

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
    "convergence": section_longer,
}


def _counts(statuses: list[str]) -> str:
    """'3 holds; 1 does not hold; ...' in the order of `verdict.STATUSES` (zero counts shown,
    except for "cannot decide", which only a table at chance gives)."""
    count = Counter(statuses)
    return "; ".join(f"{count[s]} {s}" for s in STATUSES if count[s] or s != UNDECIDABLE)


def claims_blocks(claims: list[C.Claim]) -> list[Block]:
    """The verdict counts, for the paper's own claims and for the project's own questions apart
    (each on our numbers and on the paper's), and the table of every claim with its origin."""
    mine = [c for c in claims if c.origin == C.PAPER]
    asked = [c for c in claims if c.origin != C.PAPER]
    rows = [
        [
            c.source,
            c.origin,
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
        "origin",
        "claim (the paper's words where the origin is paper)",
        "rule",
        "verdict (ours)",
        "difference ± se (ours)",
        "verdict (paper's numbers)",
        "difference (paper)",
    ]
    counts = (
        f"The paper's claims ({len(mine)}). Our numbers: {_counts([c.status for c in mine])}. "
        "The paper's own numbers, by the same rules: "
        f"{_counts([c.paper_status for c in mine])}. The project's own questions ({len(asked)}: "
        "the encoder-noise sweep, the decoder likelihood, a paper's claim read another way or "
        "asked of another dataset, what a table shows that the text does not say), counted "
        f"apart. Our numbers: {_counts([c.status for c in asked])}. The paper's numbers where "
        f"they bear on them: {_counts([c.paper_status for c in asked])}."
    )
    return [
        Block(
            "p",
            f"{counts} {NUMBERS_NOTE} Thresholds: '>>' is more than {C.MUCH_NATS:g} "
            f"nat; 'at least as well' allows {100 * C.RECON_TOLERANCE:g}% more error; 'about "
            f"twice' is {C.RATE_RATIO[0]:g} to {C.RATE_RATIO[1]:g} times; 'comparable' "
            f"accuracies are within {C.CLOSE_POINTS:g} points; 'close' FIDs within "
            f"{100 * C.CLOSE_FID:g}% of their mean. A table of the paper is at chance when every "
            f"accuracy in it lies within {C.CHANCE_SE:g} binomial standard errors of chance "
            "(100 / classes) on the codes it was measured on: its verdicts then read CANNOT "
            "DECIDE, since its differences are noise. 'Not measured' for the paper: its tables "
            "do not give the number (figures 1-3 give no values in the text).",
        ),
        Block("table", header=header, rows=rows),
    ]


def made_by(record: dict) -> str:
    """'Made by `COMMAND` in S s (finished T).', with each invocation where a part was continued
    (new measurements of runs made earlier, say): the part's wall time is their sum."""
    sessions = record.get("sessions") or [record]
    if len(sessions) == 1:
        return (
            f"Made by `{record['command']}` in {record['seconds']:.0f} s "
            f"(finished {record['finished']})."
        )
    parts = "; ".join(
        f"`{s['command']}`, {s['seconds']:.0f} s, finished {s['finished']}" for s in sessions
    )
    return f"Made in {record['seconds']:.0f} s over {len(sessions)} invocations: {parts}."


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
        asks_nothing = ("noise", "calibration", "schedule", "convergence")
        if len(claims) == before and name not in asks_nothing:
            why = "; ".join(s.get("reason", "") for s in experiments[name]["settings"])
            claims.append(
                C.Claim(name, f"(the claims of {name})", "", UNMEASURED, why, UNMEASURED, "")
            )
        body.append(Block("p", made_by(experiments[name])))
    blocks.append(Block("h2", "Claims of the paper, and the project's own questions"))
    blocks += claims_blocks(claims)
    missing_experiments = [name for name in SECTIONS if name not in experiments]
    if missing_experiments:
        blocks.append(Block("p", f"Experiments not run: {', '.join(missing_experiments)}."))
    blocks.append(Block("h2", "Our numbers beside the paper's (tables 1-5)"))
    blocks += section_comparison(out, results)
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
    blocks.append(Block("h2", "Training and convergence"))
    blocks += section_convergence(out, results)
    blocks.append(Block("h2", "Rate, distortion and MMD of all models"))
    blocks += section_rate_distortion(out, results)
    blocks.append(Block("h2", "Wall time"))
    blocks.append(
        Block(
            "table",
            header=["experiment", "seconds", "invocations", "command"],
            rows=[
                [n, f"{r['seconds']:.0f}", str(len(r.get("sessions") or [r])), r["command"]]
                for n, r in experiments.items()
            ],
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
