"""The sections of the robustness tables 2-4 and of the two experiments the paper leaves open
(the encoder-noise sweep, the reconstruction weight): tables, pictures and claims."""

from pathlib import Path

from vimae.paper import claims as C
from vimae.paper import numbers as paper
from vimae.paper.page import Block
from vimae.paper.report.blocks import (
    ELBO,
    NUMBERS_NOTE,
    VIMAE,
    L,
    accuracy_of,
    cell,
    commands_block,
    image_block,
    ok_settings,
    se_or_zero,
    setting_note,
    unconverged,
)
from vimae.paper.report.records import (
    SEMI_CLASSIFIER,
    SettingResult,
    noise_level,
    published_accuracy,
    setting_values,
)
from vimae.paper.verdict import Estimate
from vimae.plotting.charts import (
    AccuracyCurve,
    SweepSeries,
    plot_accuracy_vs_noise,
    plot_noise_sweep,
)


def robustness_claims(table: str, v: C.Values, note: str) -> list[C.Claim]:
    """The claims of section 5.3 on one of tables 2-4."""
    theirs = published_accuracy(table)
    where = {
        "table2": "table 2 (CIFAR-10)",
        "table3": "table 3 (MNIST)",
        "table4": "table 4 (Omniglot)",
    }[table]
    out = [
        C.judge(
            where,
            "ELBO models learn good features for clean data but not for corrupted data",
            "accuracy lost under noise (clean − mean of the corrupted columns), mean of the "
            "ELBO models > mean of the VIMAEs",
            C.group_above("drop", ELBO, VIMAE, "loss ELBO − loss VIMAE"),
            v,
            theirs,
            note,
        ),
        C.judge(
            where,
            "... most clearly under Bernoulli masking",
            "(loss under masking − loss under Gaussian noise): mean of the ELBO models > mean "
            "of the VIMAEs",
            C.group_above("mask-gauss", ELBO, VIMAE, "masking excess ELBO − VIMAE"),
            v,
            theirs,
            note,
        ),
        C.judge(
            where,
            "the two VIMAEs are comparable on clean data and small noise",
            f"|accuracy VIMAE-n − VIMAE-l| < {C.CLOSE_POINTS:g} points, clean and smallest "
            "Gaussian level",
            _comparable_clean_small(v),
            v,
            theirs,
            note,
        ),
        C.judge(
            where,
            "VIMAE-n suffers under large noise",
            "accuracy lost at the largest Gaussian level: VIMAE-n > VIMAE-l",
            C.above("drop:large", "vimae-n", "vimae-l"),
            v,
            theirs,
            note,
        ),
        C.judge(
            where,
            "VIMAE-l is the most robust",
            "accuracy lost under noise: every other model > VIMAE-l",
            C.all_above("drop", [m for m in paper.MODELS if m != "vimae-l"], ["vimae-l"]),
            v,
            theirs,
            note,
        ),
    ]
    if table == "table2":
        out.append(
            C.judge(
                where,
                "noise even helps VIMAE-l (CIFAR-10)",
                "accuracy of VIMAE-l at the Gaussian level > clean accuracy",
                C.exceeds("help", ["vimae-l"], 0.0),
                v,
                theirs,
                note,
            )
        )
    return out


def _comparable_clean_small(v: C.Values) -> C.Builder:
    gauss = sorted((q for q in v.get("vimae-l", {}) if q.startswith("acc:gauss")), key=noise_level)
    keys = ["acc:clean", *gauss[:1]] if gauss else ["acc:clean", "acc:gauss"]
    return C.comparable(keys, "vimae-n", "vimae-l", C.CLOSE_POINTS)


COLLAPSED_NATS = 1.0  # less than a nat about x in all d coordinates: q(z|x) is about the prior


def far_from_paper(table: str, v: C.Values) -> list[str]:
    """Sentences that explain accuracies far from the paper's: collapsed encoders (chance
    accuracy, whatever the paper's model did) and, on Omniglot, a paper table at chance level."""
    notes = []
    for model, q in v.items():
        rate = q.get("rate")
        if rate is not None and rate.mean < COLLAPSED_NATS:
            notes.append(
                f"{L[model]}'s rate is {rate.text()} nats: its encoder has collapsed (q(z|x) is "
                "nearly the prior for every x), so its codes carry almost nothing about the input "
                "and its "
                f"accuracy is at or near chance, where the paper's {L[model]} reports "
                f"{paper.SEMI_SUPERVISED[table][model]['clean']}% clean; the reconstruction-weight "
                "experiment below asks whether the loss's scale explains it."
            )
    if table == "table4":
        notes.append(
            "Chance is 20% (5 characters). The paper's table 4 lies at or near chance for every "
            "model (16-24%), while ours lies far above it for every model but a collapsed one; "
            "the paper's Omniglot protocol must differ from the one SPEC section 6 describes (5 "
            "characters, 300 labelled and 100 held-out codes), so compare directions here, not "
            "values."
        )
    return notes


def semi_table(name: str, out: Path, results: dict, claims: list[C.Claim]) -> list[Block]:
    blocks: list[Block] = []
    columns = paper.SEMI_SUPERVISED_COLUMNS[name]
    for setting in ok_settings(results, name):
        blocks.append(setting_note(setting))
        protocol = next(
            (r.value("semi-supervised", "semi_supervised_protocol") for r in setting.runs.values()),
            None,
        )
        if protocol:
            blocks.append(
                Block(
                    "p",
                    f"Protocol: {protocol}. Cells: ours (mean ± se over seeds "
                    "of each seed's mean over its labelled draws) / paper.",
                )
            )
        blocks += [Block("p", text) for text in far_from_paper(name, setting_values(setting))]
        for classifier in ("svm", "label_spreading"):
            rows = []
            for model, runs in setting.seeds.items():
                row = [L[model]]
                for spec in columns:
                    per_seed = [accuracy_of(run, classifier).get(spec) for run in runs]
                    ours = "–" if None in per_seed else Estimate.of(per_seed).text(3)
                    row.append(f"{ours} / {paper.SEMI_SUPERVISED[name][model][spec]}")
                rows.append(row)
            blocks.append(Block("p", f"Classifier: {classifier}"))
            blocks.append(Block("table", header=["model", *columns], rows=rows))
        v = setting_values(setting)
        claims.extend(robustness_claims(name, v, unconverged(setting)))
        curves = []
        for model in setting.seeds:
            specs = {
                q.removeprefix("acc:"): e
                for q, e in v.get(model, {}).items()
                if q.startswith("acc:")
            }
            if "clean" not in specs:
                continue
            for family in ("gauss", "mask"):
                levels = sorted((s for s in specs if s.startswith(family)), key=noise_level)
                points = [specs["clean"], *(specs[s] for s in levels)]
                curves.append(
                    AccuracyCurve(
                        L[model],
                        family,
                        [0.0] + [noise_level(s) for s in levels],
                        [p.mean for p in points],
                        [se_or_zero(p) for p in points],
                        sems=[se_or_zero(p) for p in points],
                    )
                )
        if curves:
            path = plot_accuracy_vs_noise(
                curves,
                out / "figures" / f"accuracy-{name}.png",
                f"{setting.setting['dataset']}: {SEMI_CLASSIFIER} "
                "accuracy against noise level (± se)",
            )
            blocks.append(image_block(out, path, "Semi-supervised accuracy against noise level"))
        blocks.append(commands_block(setting, ["semi-supervised"]))
    return blocks


SWEEP_QUANTITIES = {
    "rate": ("rate (nats)", "rate"),
    "reconstruction": ("reconstruction", "reconstruction"),
    "mmd": ("MMD", "MMD"),
    "acc:clean": ("accuracy % clean", "accuracy"),
}


def section_noise(out: Path, results: dict, claims: list[C.Claim]) -> list[Block]:
    """The encoder-noise sweep of VIMAE-l: rate, reconstruction, MMD and accuracies per level."""
    blocks: list[Block] = []
    levels: list[tuple[float, C.Values, SettingResult]] = []
    for setting in ok_settings(results, "noise"):
        std = float(setting.setting["key"].rpartition("-")[2])
        levels.append((std, setting_values(setting), setting))
    if not levels:
        return blocks
    levels.sort(key=lambda item: item[0])
    model = "vimae-l"
    specs = sorted(
        {q for _, v, _ in levels for q in v.get(model, {}) if q.startswith("acc:")},
        key=lambda q: (q != "acc:clean", q),
    )
    header = [
        "noise std",
        "rate",
        "reconstruction",
        "MMD",
        *(s.removeprefix("acc:") for s in specs),
        "training",
    ]
    rows = []
    for std, v, setting in levels:
        converged, _ = setting.convergence()
        rows.append(
            [
                f"{std:g}",
                *(cell(v, model, q) for q in ("rate", "reconstruction", "mmd")),
                *(cell(v, model, q) for q in specs),
                {True: "converged", False: "not converged", None: "–"}[converged],
            ]
        )
    blocks.append(
        Block(
            "p",
            "VIMAE-l on table 3's MNIST setting; the encoder noise is "
            "N(0, std^2) truncated at 2 std, added to the encoder's input in training "
            "only; accuracies: SVM on 1,000 labelled codes. " + NUMBERS_NOTE,
        )
    )
    blocks.append(Block("table", header=header, rows=rows))
    series = []
    for q in ["rate", "reconstruction", "mmd", *specs]:
        name, panel = SWEEP_QUANTITIES.get(q, (f"accuracy % {q.removeprefix('acc:')}", "accuracy"))
        have = [(std, v[model][q]) for std, v, _ in levels if q in v.get(model, {})]
        if have:
            series.append(
                SweepSeries(
                    name,
                    [s for s, _ in have],
                    [e.mean for _, e in have],
                    [se_or_zero(e) for _, e in have],
                    panel,
                )
            )
    if series:
        path = plot_noise_sweep(
            series,
            out / "figures" / "noise-sweep.png",
            "VIMAE-l on MNIST against its encoder noise (± se)",
        )
        blocks.append(
            image_block(out, path, "Rate, reconstruction, MMD and accuracy against the noise")
        )
    noisy = [(std, v) for std, v, _ in levels if std > 0 and "rate" in v.get(model, {})]
    if len(noisy) >= 2:
        (low, v_low), (high, v_high) = noisy[0], noisy[-1]
        claims.append(
            C.judge(
                "encoder-noise sweep",
                "the VIMAE rate follows the encoder noise (issue: rate/d "
                "about 5 nats in every run)",
                f"rate at std {low:g} > rate at std {high:g}",
                lambda _: [
                    C.Comparison(
                        f"rate(std {low:g}) − rate(std {high:g})",
                        v_low[model]["rate"] - v_high[model]["rate"],
                    )
                ],
                {},
                None,
                unconverged(levels[0][2]),
            )
        )
    for _, _, setting in levels:
        blocks.append(commands_block(setting, ["rate", "semi-supervised"]))
    return blocks


PAPER_BETA_H_CLEAN = paper.SEMI_SUPERVISED["table3"]["beta-vae-h"]["clean"]
REPRODUCES_POINTS = 5.0  # "reproduces the paper's beta_H-VAE": clean accuracy within 5 points


def section_recon_weight(out: Path, results: dict, claims: list[C.Claim]) -> list[Block]:
    """Table 3's models with the squared error weighted 1 and 0.05."""
    blocks: list[Block] = []
    settings = ok_settings(results, "recon-weight")
    if not settings:
        return blocks
    header = [
        "model",
        "recon weight",
        "reconstruction",
        "rate",
        "MMD",
        "accuracy clean",
        "accuracy mask:0.5",
        "paper (clean)",
    ]
    rows = []
    for setting in settings:
        v = setting_values(setting)
        weight = _recon_weight(setting)
        for m in setting.seeds:
            rows.append(
                [
                    L[m],
                    f"{weight:g}",
                    *(
                        cell(v, m, q)
                        for q in ("reconstruction", "rate", "mmd", "acc:clean", "acc:mask:0.5")
                    ),
                    str(paper.SEMI_SUPERVISED["table3"][m]["clean"]),
                ]
            )
        claims.append(
            C.judge(
                f"reconstruction weight {weight:g}",
                "β_H-VAE reproduces the paper's (92% clean MNIST accuracy, table 3)",
                f"|accuracy − {PAPER_BETA_H_CLEAN}| < {REPRODUCES_POINTS:g} points",
                lambda vals: [
                    C.close(
                        f"{REPRODUCES_POINTS:g} − |accuracy β_H-VAE − {PAPER_BETA_H_CLEAN}|",
                        C.value_of(vals, "beta-vae-h", "acc:clean"),
                        Estimate(PAPER_BETA_H_CLEAN),
                        REPRODUCES_POINTS,
                    )
                ],
                v,
                None,
                unconverged(setting),
            )
        )
    blocks.append(
        Block(
            "p",
            "The WAE code the paper builds on multiplies the squared error by "
            "0.05, which changes what lambda and beta mean; here table 3's five models "
            "are trained with the error weighted 1 (our default) and 0.05. " + NUMBERS_NOTE,
        )
    )
    blocks.append(Block("table", header=header, rows=rows))
    for setting in settings:
        blocks += [setting_note(setting), commands_block(setting, ["semi-supervised"])]
    return blocks


def _recon_weight(setting: SettingResult) -> float:
    run = next(iter(setting.runs.values()), None)
    return float(run.config.get("model", {}).get("recon_weight", 1.0)) if run else 1.0
