"""The sections of the paper's figure 1, figures 2-3, table 1 and table 5, and the
rate-distortion picture of every setting: tables of means over seeds, pictures, and claims."""

from pathlib import Path

from vimae.paper import claims as C
from vimae.paper import numbers as paper
from vimae.paper.page import Block
from vimae.paper.report.blocks import (
    CODES_NOTE,
    ELBO,
    VIMAE,
    L,
    cell,
    commands_block,
    image_block,
    ok_settings,
    picture,
    se_or_zero,
    setting_note,
    unconverged,
)
from vimae.paper.report.records import (
    published,
    setting_values,
)
from vimae.plotting.charts import (
    CodePanel,
    ImagePanel,
    RatePoint,
    interleave_rows,
    plot_codes,
    plot_image_grids,
    plot_rate_distortion,
)


def section_fig1(out: Path, results: dict, claims: list[C.Claim]) -> list[Block]:
    blocks: list[Block] = []
    for setting in ok_settings(results, "fig1"):
        v = setting_values(setting)
        rows = [
            [L[m], cell(v, m, "mmd"), cell(v, m, "mmd_means"), cell(v, m, "entropy_q"),
             _reference(v, m), cell(v, m, "entropy_gap"), cell(v, m, "kl"),
             cell(v, m, "reconstruction"), cell(v, m, "rate")]
            for m in setting.seeds
        ]  # fmt: skip
        note = unconverged(setting)
        claims += [
            C.judge(
                "figure 1",
                "ELBO models have h(q(z)) >> h(p(z))",
                f"for each ELBO model: entropy gap > {C.MUCH_NATS:g} nat",
                C.exceeds("entropy_gap", ELBO, C.MUCH_NATS),
                v,
                None,
                note,
            ),
            C.judge(
                "figure 1",
                "VIMAE does not have h(q(z)) >> h(p(z))",
                f"for each VIMAE: entropy gap < {C.MUCH_NATS:g} nat",
                C.below("entropy_gap", VIMAE, C.MUCH_NATS),
                v,
                None,
                note,
            ),
            C.judge(
                "figure 1",
                "ELBO models have a high MMD, VIMAE does not",
                "MMD of each ELBO model > MMD of each VIMAE",
                C.all_above("mmd", ELBO, VIMAE),
                v,
                None,
                note,
            ),
        ]
        blocks.append(setting_note(setting))
        header = [
            "model",
            "MMD",
            "MMD of means",
            "h(q(z))",
            "k-NN h(p(z)) of prior draws",
            "entropy gap h(q) − k-NN h(p)",
            "KL(q||p)",
            "reconstruction",
            "rate",
        ]
        blocks += [Block("table", header=header, rows=rows), Block("p", CODES_NOTE)]
        panels = []
        for model, run in setting.runs.items():
            arrays = picture(run, "codes")
            if arrays is not None:
                mmd = run.value("mmd")
                title = L[model] + ("" if mmd is None else f"  MMD={mmd:.3g}")
                panels.append(CodePanel(title, arrays["codes"], arrays["labels"]))
        if panels:
            path = plot_codes(panels, out / "figures" / "fig1.png")
            blocks.append(
                image_block(
                    out,
                    path,
                    "Figure 1: test codes (first seed), one draw of q(z|x) "
                    "per image, its MMD in each title",
                )
            )
        blocks.append(commands_block(setting, ["mmd", "entropy", "kl"]))
    return blocks


def _reference(v: C.Values, model: str) -> str:
    """The k-NN entropy of prior draws: its mean and the sd of its repeats (the same draws for
    every seed, so a spread over seeds would be 0)."""
    q = v.get(model, {})
    if "entropy_prior_knn" not in q:
        return "–"
    spread = q.get("entropy_prior_knn_std")
    shown = f"{q['entropy_prior_knn'].mean:.3g}"
    return shown if spread is None else f"{shown} (sd {spread.mean:.2g})"


def section_recon(out: Path, results: dict, claims: list[C.Claim]) -> list[Block]:
    blocks: list[Block] = []
    for setting in ok_settings(results, "recon"):
        key, dataset = setting.setting["key"], setting.setting["dataset"]
        v = setting_values(setting)
        rows = [
            [L[m]] + [cell(v, m, q) for q in ("reconstruction", "rate", "mmd", "mmd_means")]
            for m in setting.seeds
        ]
        note = unconverged(setting)
        where = f"figures 2-3 ({dataset})"
        claims += [
            C.judge(
                where,
                "VIMAE reconstructs at least as well as β_A-VAE",
                f"for each VIMAE: recon ≤ {1 + C.RECON_TOLERANCE:g} × recon of β_A-VAE",
                C.reconstructs_as_well("beta-vae-a", VIMAE),
                v,
                None,
                note,
            ),
            C.judge(
                where,
                "... with about twice its rate",
                f"for each VIMAE: {C.RATE_RATIO[0]:g} × rate of β_A-VAE < rate < "
                f"{C.RATE_RATIO[1]:g} × rate of β_A-VAE",
                C.rate_ratio("beta-vae-a", VIMAE),
                v,
                None,
                note,
            ),
            C.judge(
                where,
                "VIMAE has the highest rate",
                "rate of each VIMAE > each ELBO model's",
                C.all_above("rate", VIMAE, ELBO),
                v,
                None,
                note,
            ),
            C.judge(
                where,
                "β_H-VAE reconstructs worst",
                "recon of β_H-VAE > every other model's",
                C.all_above("reconstruction", ["beta-vae-h"], paper.MODELS),
                v,
                None,
                note,
            ),
        ]
        blocks += [Block("h3", f"{dataset} ({key})"), setting_note(setting)]
        blocks.append(
            Block(
                "table",
                header=["model", "reconstruction", "rate", "MMD", "MMD of means"],
                rows=rows,
            )
        )
        recon_panels, sample_panels = [], []
        for model, run in setting.runs.items():
            arrays = picture(run, "images")
            if arrays is None:
                continue
            caption = (
                f"{L[model]}\nrecon {cell(v, model, 'reconstruction')}, "
                f"rate {cell(v, model, 'rate')}"
            )
            grid = interleave_rows(arrays["originals"], arrays["reconstructions"], 8)
            recon_panels.append(ImagePanel(caption, grid))
            sample_panels.append(ImagePanel(L[model], arrays["samples"]))
        if recon_panels:
            figures = out / "figures"
            a = plot_image_grids(
                recon_panels,
                figures / f"recon-{key}.png",
                "test reconstructions (first seed): odd rows originals, even rows reconstructions",
            )
            b = plot_image_grids(sample_panels, figures / f"samples-{key}.png", "prior samples")
            blocks.append(
                image_block(out, a, f"Test reconstructions, {dataset} (a stratified draw)")
            )
            blocks.append(image_block(out, b, f"Random samples from the prior, {dataset}"))
        blocks.append(commands_block(setting, ["reconstruction", "rate"]))
    return blocks


def section_table1(out: Path, results: dict, claims: list[C.Claim]) -> list[Block]:
    blocks: list[Block] = []
    theirs = published(paper.PARZEN_NLL, "parzen")
    for setting in ok_settings(results, "table1"):
        v = setting_values(setting)
        rows = [[L[m], cell(v, m, "parzen", 4), str(paper.PARZEN_NLL[m])] for m in setting.seeds]
        note = unconverged(setting)
        others = [m for m in paper.MODELS if m != "vimae-l"]
        claims += [
            C.judge(
                "table 1",
                "VIMAE-l's samples have the lowest Parzen NLL",
                "NLL of every other model > NLL of VIMAE-l",
                C.all_above("parzen", others, ["vimae-l"]),
                v,
                theirs,
                note,
            ),
            C.judge(
                "table 1",
                "VAE and β_H-VAE do not generate good samples",
                "NLL of VAE and of β_H-VAE > NLL of each VIMAE",
                C.all_above("parzen", ["vae", "beta-vae-h"], VIMAE),
                v,
                theirs,
                note,
            ),
        ]
        blocks += [setting_note(setting)]
        blocks.append(Block("table", header=["model", "ours (nats)", "paper"], rows=rows))
        blocks.append(commands_block(setting, ["parzen"]))
    return blocks


def section_table5(out: Path, results: dict, claims: list[C.Claim]) -> list[Block]:
    blocks: list[Block] = []
    columns: dict[str, C.Values] = {}
    features: dict[str, str] = {}
    settings = ok_settings(results, "table5")
    for setting in settings:
        dataset = setting.setting["dataset"]
        columns[dataset] = setting_values(setting)
        features[dataset] = next(
            (r.value("fid", "fid_features") for r in setting.runs.values() if r.value("fid")), ""
        )
    for dataset, numbers in paper.FID.items():
        v, theirs = columns.get(dataset, {}), published(numbers, "fid")
        setting = next((s for s in settings if s.setting["dataset"] == dataset), None)
        note = unconverged(setting) if setting is not None else ""
        elbo = [m for m in ELBO if numbers.get(m) is not None]
        claims += [
            C.judge(
                f"table 5 ({dataset})",
                "the two VIMAEs have close FIDs",
                f"|FID VIMAE-n − VIMAE-l| < {100 * C.CLOSE_FID:g}% of their mean",
                C.close_relative("fid", "vimae-n", "vimae-l", C.CLOSE_FID),
                v,
                theirs,
                note,
            ),
            C.judge(
                f"table 5 ({dataset})",
                "... lower than the ELBO models'",
                "FID of each ELBO model > FID of each VIMAE",
                C.all_above("fid", elbo, VIMAE),
                v,
                theirs,
                note,
            ),
        ]
    rows = []
    for model in paper.MODELS:
        row = [L[model]]
        for dataset, numbers in paper.FID.items():
            row += [
                cell(columns.get(dataset, {}), model, "fid", 4),
                "–" if numbers[model] is None else str(numbers[model]),
            ]
        rows.append(row)
    header = ["model"] + [f"{d} {w}" for d in paper.FID for w in ("ours", "paper")]
    blocks.append(Block("table", header=header, rows=rows))
    for dataset, name in features.items():
        if name and "inception" not in name:
            blocks.append(
                Block(
                    "p",
                    f"{dataset}: FID in the features of {name}, not "
                    "Inception-v3: compare the ranking, not the values, with the "
                    "paper.",
                )
            )
    for setting in settings:
        blocks += [setting_note(setting), commands_block(setting, ["fid"])]
    return blocks


def section_rate_distortion(out: Path, results: dict) -> list[Block]:
    """Every setting's models (means over seeds) in one picture, one panel per setting."""
    points, seen = [], set()
    for settings in results.values():
        for setting in settings:
            if not setting.ok or setting.setting["key"] in seen:
                continue
            seen.add(setting.setting["key"])
            v = setting_values(setting)
            for model, q in v.items():
                if all(k in q for k in ("rate", "reconstruction", "mmd")):
                    points.append(
                        RatePoint(
                            setting.setting["key"],
                            L[model],
                            q["rate"].mean,
                            q["reconstruction"].mean,
                            q["mmd"].mean,
                            rate_sem=se_or_zero(q["rate"]),
                            reconstruction_sem=se_or_zero(q["reconstruction"]),
                        )
                    )
    if not points:
        return [Block("p", "No run has reconstruction, rate and MMD yet.")]
    path = plot_rate_distortion(points, out / "figures" / "rate-distortion.png")
    caption = "Rate (x), reconstruction error (y) and MMD to the prior (colour), means over seeds"
    return [image_block(out, path, caption)]
