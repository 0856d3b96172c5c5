"""The reproduction report: a function of files, the output folder of `vimae reproduce` in, pages
and pictures out.

Reads OUT/manifest.json (which runs each experiment used, its command and wall time) and, in each
run folder, config.json, evaluation/*.json and pictures/*.npz; writes OUT/report.md, OUT/report.html
and OUT/figures/*.png. Nothing is trained or measured here, so a report can be rebuilt (or tested)
from hand-written files. Every table prints our numbers beside the paper's (`vimae.paper`), every
claim of SPEC section 8 is marked holds / does not hold / not measured with the numbers that decide
it, and every number can be traced to the `vimae train` and `vimae evaluate` commands that made it.
"""

import html
import json
import math
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vimae import paper
from vimae.plot import (
    AccuracyCurve,
    CodePanel,
    ImagePanel,
    RatePoint,
    interleave_rows,
    plot_accuracy_vs_noise,
    plot_codes,
    plot_image_grids,
    plot_rate_distortion,
)

HOLDS, FAILS, UNMEASURED = "holds", "does not hold", "not measured"
RECON_TOLERANCE = 1.05  # "at least as well": within 5 % of beta_A-VAE's reconstruction error
RATE_RATIO = (1.5, 3.0)  # "about twice its rate"
SEMI_CLASSIFIER = "svm"  # the supervised half of M1+TSVM decides the claims (see semisupervised)


# ---------------------------------------------------------------- what the files say


@dataclass
class RunResult:
    """One run folder: its config, each metric's values and the command that made them."""

    model: str
    path: Path
    config: dict[str, Any]
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # data.json: what it trained on

    def test_data(self) -> dict[str, Any] | None:
        """What its measurements were made on (every metric of a setting sees the same split)."""
        return next((m["test_data"] for m in self.metrics.values() if "test_data" in m), None)

    def value(self, metric: str, key: str | None = None) -> Any:
        """A measured value, or None when it was not computed."""
        values = self.metrics.get(metric)
        if values is None or values.get("status") != "ok":
            return None
        return values.get(key or metric)

    def train_command(self) -> str:
        m, d, t = self.config["model"], self.config["data"], self.config["train"]
        parts = ["vimae", "train", "--model", m["name"], "--dataset", d["dataset"]]
        parts += ["--arch", m["arch"], "--width", str(m["width"]), "--latent-dim"]
        parts += [str(m["latent_dim"]), "--epochs", str(t["epochs"]), "--seed", str(t["seed"])]
        for flag, value in (("--train-size", d["train_size"]), ("--image-size", d["image_size"])):
            if value is not None:
                parts += [flag, str(value)]
        if d.get("data_dir"):
            parts += ["--data-dir", d["data_dir"]]
        return shlex.join([*parts, "--out", str(self.path)])


@dataclass
class SettingResult:
    """One setting of one experiment as the manifest recorded it, with its runs."""

    setting: dict[str, Any]
    seeds: dict[str, list[RunResult]]  # model -> its runs, one per training seed

    @property
    def ok(self) -> bool:
        return self.setting.get("status") == "ok"

    @property
    def runs(self) -> dict[str, RunResult]:
        """The first seed's run of each model (what the pictures show)."""
        return {model: runs[0] for model, runs in self.seeds.items() if runs}


def load_run(out: Path, model: str, relative: str) -> RunResult:
    """A run folder's config, the data it trained on and its cached measurements (the newest file
    per metric)."""
    path = out / relative
    config_file, data_file = path / "config.json", path / "data.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    run = RunResult(model, path, config)
    run.data = json.loads(data_file.read_text()) if data_file.is_file() else {}
    files = sorted((path / "evaluation").glob("*.json"), key=lambda p: p.stat().st_mtime)
    for file in files:
        record = json.loads(file.read_text())
        run.metrics[record["metric"]] = record
    return run


def load_results(out: Path) -> tuple[dict[str, Any], dict[str, list[SettingResult]]]:
    """The manifest and, per experiment, its settings with their runs."""
    manifest_file = out / "manifest.json"
    manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {}
    manifest.setdefault("experiments", {})
    results = {}
    for name, record in manifest["experiments"].items():
        results[name] = [
            SettingResult(
                s,
                {
                    m: [load_run(out, m, r) for r in ([paths] if isinstance(paths, str) else paths)]
                    for m, paths in s.get("runs", {}).items()
                },
            )
            for s in record["settings"]
        ]
    return manifest, results


# ---------------------------------------------------------------- claims


@dataclass
class Claim:
    """A claim of the paper, its verdict on our numbers and the numbers that decide it."""

    source: str
    statement: str
    status: str
    evidence: str


CODES_NOTE = (
    "q(z) is the aggregate posterior E_x q(z|x): MMD, h(q(z)) and KL(q||p) are measured on one "
    "seeded draw z ~ q(z|x) per test image (the deterministic code for VIMAE), and the claims "
    "use these. 'MMD of means' is the same MMD on the Gaussian encoders' posterior means, shown "
    "only for comparison (a collapsed encoder has means near 0, hence a large MMD of means, "
    "while its q(z) is the prior). h(q(z)) stands beside the same k-NN estimator on as many "
    "prior draws (mean ± sd over seeded repeats): the estimator is biased upward in high "
    "dimension, so the exact h(p(z)) is not the comparison. KL(q||p) is the k-NN plug-in with "
    "that bias matched on prior draws (± sd over repeats)."
)


def _pm(x: float | None, sd: float | None) -> str:
    """'x ± sd', or just x when there is no spread."""
    return _fmt(x) if sd is None or x is None else f"{_fmt(x)} ± {_fmt(sd, 2)}"


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}g}" if abs(x) < 10**digits else f"{x:.0f}"


def _missing(values: dict[str, Any], models: Iterable[str]) -> list[str]:
    return [m for m in models if values.get(m) is None]


def claim_codes_fill_prior(stats: dict[str, dict[str, float | None]]) -> Claim:
    """Figure 1: every VIMAE has a lower MMD and a smaller entropy gap |h(q) - h(p)| than every
    ELBO model. stats: model -> {"mmd", "entropy_q", "entropy_prior"}, all on codes drawn from
    q(z|x), h(p) the same estimator on as many prior draws."""
    statement = (
        "ELBO models leave h(q(z)) far from h(p(z)) and the MMD high; VIMAE does not (figure 1)"
    )
    gap = {
        m: abs(s["entropy_q"] - s["entropy_prior"])
        if s.get("entropy_q") is not None and s.get("entropy_prior") is not None
        else None
        for m, s in stats.items()
    }  # entropy_prior: the k-NN estimate on prior draws where measured (its bias matched)
    mmd = {m: s.get("mmd") for m, s in stats.items()}
    if _missing(gap, paper.MODELS) or _missing(mmd, paper.MODELS):
        return Claim("fig1", statement, UNMEASURED, "needs MMD and entropies of all five models")
    evidence = "; ".join(
        f"{paper.LABELS[m]}: MMD {_fmt(mmd[m])}, h(q) {_fmt(stats[m]['entropy_q'])} vs h(p) "
        f"{_fmt(stats[m]['entropy_prior'])}"
        for m in paper.MODELS
    )
    worst_vimae = (max(mmd[m] for m in paper.VIMAE_MODELS), max(gap[m] for m in paper.VIMAE_MODELS))
    best_elbo = (min(mmd[m] for m in paper.ELBO_MODELS), min(gap[m] for m in paper.ELBO_MODELS))
    holds = worst_vimae[0] < best_elbo[0] and worst_vimae[1] < best_elbo[1]
    evidence += (
        f". Largest VIMAE MMD {_fmt(worst_vimae[0])} vs smallest ELBO MMD {_fmt(best_elbo[0])}; "
        f"largest VIMAE entropy gap {_fmt(worst_vimae[1])} vs smallest ELBO gap "
        f"{_fmt(best_elbo[1])}"
    )
    return Claim("fig1", statement, HOLDS if holds else FAILS, evidence)


def claim_reconstruction_rate(stats: dict[str, dict[str, float | None]], dataset: str) -> Claim:
    """Figures 2-3: each VIMAE reconstructs within 5 % of beta_A-VAE's error (or better) at 1.5-3
    times its rate. stats: model -> {"reconstruction", "rate"}."""
    statement = (
        f"VIMAE reconstructs at least as well as β_A-VAE with about twice its rate ({dataset})"
    )
    needed = ("beta-vae-a", *paper.VIMAE_MODELS)
    values = {m: stats.get(m, {}) for m in needed}
    if any(v.get("reconstruction") is None or v.get("rate") is None for v in values.values()):
        return Claim("recon", statement, UNMEASURED, "needs reconstruction and rate of β_A-VAE "
                     "and both VIMAEs")  # fmt: skip
    a = values["beta-vae-a"]
    parts, holds = [], True
    for m in paper.VIMAE_MODELS:
        v = values[m]
        ratio = v["rate"] / a["rate"] if a["rate"] > 0 else math.inf
        good = v["reconstruction"] <= RECON_TOLERANCE * a["reconstruction"]
        about_twice = RATE_RATIO[0] <= ratio <= RATE_RATIO[1]
        holds = holds and good and about_twice
        parts.append(
            f"{paper.LABELS[m]}: reconstruction {_fmt(v['reconstruction'])} vs "
            f"{_fmt(a['reconstruction'])} ({'ok' if good else 'worse'}), rate {_fmt(v['rate'])} "
            f"vs {_fmt(a['rate'])} = {_fmt(ratio)}x ({'ok' if about_twice else 'not ~2x'})"
        )
    note = (
        f" (at least as well = within {RECON_TOLERANCE - 1:.0%}; about twice = "
        f"{RATE_RATIO[0]}-{RATE_RATIO[1]}x)"
    )
    return Claim("recon", statement, HOLDS if holds else FAILS, "; ".join(parts) + note)


def claims_robustness(accuracy: dict[str, dict[str, float]], table: str) -> list[Claim]:
    """Tables 2-4: (a) the model losing the least accuracy under noise (clean minus the mean of
    the corrupted columns) is a VIMAE; (b) VIMAE-l loses the least of all models under Bernoulli
    masking. accuracy: model -> {corruption spec -> mean accuracy %}."""
    first = f"VIMAE features lose the least accuracy under noise ({table})"
    second = f"VIMAE-l loses the least accuracy under Bernoulli masking ({table})"
    if _missing(accuracy, paper.MODELS) or any("clean" not in accuracy[m] for m in paper.MODELS):
        why = "needs the semi-supervised accuracy of all five models"
        return [Claim(table, first, UNMEASURED, why), Claim(table, second, UNMEASURED, why)]
    specs = [s for s in accuracy[paper.MODELS[0]] if s != "clean"]
    masks = [s for s in specs if s.startswith("mask")]

    def drop(model: str, columns: list[str]) -> float:
        return accuracy[model]["clean"] - float(np.mean([accuracy[model][c] for c in columns]))

    drops = {m: drop(m, specs) for m in paper.MODELS}
    best = min(drops, key=drops.__getitem__)
    shown = ", ".join(f"{paper.LABELS[m]} {drops[m]:+.1f}" for m in paper.MODELS)
    claims = [
        Claim(
            table,
            first,
            HOLDS if best in paper.VIMAE_MODELS else FAILS,
            f"accuracy lost (clean minus mean of {', '.join(specs)}, points): {shown}; "
            f"least: {paper.LABELS[best]}",
        )
    ]
    if not masks:
        claims.append(Claim(table, second, UNMEASURED, "no Bernoulli masking column"))
        return claims
    mask_drops = {m: drop(m, masks) for m in paper.MODELS}
    best = min(mask_drops, key=mask_drops.__getitem__)
    shown = ", ".join(f"{paper.LABELS[m]} {mask_drops[m]:+.1f}" for m in paper.MODELS)
    claims.append(
        Claim(
            table,
            second,
            HOLDS if best == "vimae-l" else FAILS,
            f"accuracy lost under {', '.join(masks)} (points): {shown}; "
            f"least: {paper.LABELS[best]}",
        )
    )
    return claims


def claim_lowest(values: dict[str, float | None], source: str, what: str) -> Claim:
    """The lowest value (FID, Parzen NLL) among the models that have one belongs to a VIMAE."""
    statement = f"VIMAE samples have the lowest {what}"
    have = {m: v for m, v in values.items() if v is not None}
    if not have or not any(m in have for m in paper.VIMAE_MODELS):
        return Claim(source, statement, UNMEASURED, f"no {what} measured")
    best = min(have, key=have.__getitem__)
    shown = ", ".join(f"{paper.LABELS.get(m, m)} {_fmt(v, 4)}" for m, v in have.items())
    status = HOLDS if best in paper.VIMAE_MODELS else FAILS
    return Claim(source, statement, status, f"{shown}; lowest: {paper.LABELS.get(best, best)}")


# ---------------------------------------------------------------- report blocks


@dataclass
class Block:
    """One piece of the page: heading, text, table, image or code, rendered to both formats."""

    kind: str
    text: str = ""
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


def _img(out: Path, path: Path, caption: str) -> Block:
    return Block("img", str(path.relative_to(out)), rows=[[caption]])


def _runs(results: dict[str, list[SettingResult]], name: str) -> list[SettingResult]:
    return [s for s in results.get(name, []) if s.ok]


def _accuracy(run: RunResult, classifier: str) -> dict[str, tuple[float, float]]:
    table = run.value("semi-supervised", "semi_supervised") or {}
    return {spec: (acc[classifier]["mean"], acc[classifier]["std"]) for spec, acc in table.items()}


def _commands(setting: SettingResult, metrics: Iterable[str]) -> Block:
    lines = []
    for run in setting.runs.values():
        lines.append(run.train_command())
        for metric in metrics:
            command = run.metrics.get(metric, {}).get("command")
            if command:
                lines.append(command)
    return Block("details", "\n".join(lines))


def describe_data(record: dict[str, Any] | None) -> str:
    """'N images of NAME, K classes of A to B images each' from a `ImageData.describe()` record."""
    if not record:
        return "not recorded"
    text = f"{record['images']:,} images of {record['name']}"
    if "classes" in record:
        text += (
            f", {record['classes']} classes of {record['smallest_class']:,} to "
            f"{record['largest_class']:,} images each"
        )
    return text


def _setting_note(setting: SettingResult) -> Block:
    s = setting.setting
    text = (
        f"{s['dataset']}, {s['arch']} width {s['width']}, d = {s['latent_dim']}, "
        f"{s['epochs']} epochs"
    )
    if s.get("reduced"):
        text += f". Reduced from the paper: {s['reduced']}"
    run = next(iter(setting.runs.values()), None)
    if run is not None:
        text += (
            f". Data seen (recorded by the runs): trained on {describe_data(run.data.get('train'))}"
            f"; measured on {describe_data(run.test_data())}"
        )
    return Block("p", text + ".")


def section_fig1(out: Path, results: dict, claims: list[Claim]) -> list[Block]:
    blocks: list[Block] = []
    for setting in _runs(results, "fig1"):
        panels, rows, stats = [], [], {}
        for model, run in setting.runs.items():
            mmd = run.value("mmd")
            reference = run.value("entropy", "entropy_prior_knn")
            stats[model] = {
                "mmd": mmd,
                "entropy_q": run.value("entropy", "entropy_q"),
                "entropy_prior": reference,
            }
            rows.append([
                paper.LABELS[model], _fmt(mmd), _fmt(run.value("mmd", "mmd_means")),
                _fmt(stats[model]["entropy_q"]),
                _pm(reference, run.value("entropy", "entropy_prior_knn_std")),
                _fmt(run.value("entropy", "entropy_prior")),
                _pm(run.value("kl", "kl_q_p"), run.value("kl", "kl_q_p_std")),
                _fmt(run.value("reconstruction")), _fmt(run.value("rate")),
            ])  # fmt: skip
            arrays = _picture(run, "codes")
            if arrays is not None:
                title = f"{paper.LABELS[model]}  MMD={_fmt(mmd)}"
                panels.append(CodePanel(title, arrays["codes"], arrays["labels"]))
        claims.append(claim_codes_fill_prior(stats))
        blocks.append(_setting_note(setting))
        blocks.append(Block("table", header=[
            "model", "MMD", "MMD of means", "h(q(z))", "k-NN h(p(z)) ± sd", "exact h(p(z))",
            "KL(q||p) ± sd", "reconstruction", "rate",
        ], rows=rows))  # fmt: skip
        blocks.append(Block("p", CODES_NOTE))
        if panels:
            path = plot_codes(panels, out / "figures" / "fig1.png")
            blocks.append(_img(out, path, "Figure 1: test codes per model, MMD in each title"))
        blocks.append(_commands(setting, ["mmd", "entropy", "kl"]))
    return blocks


def _picture(run: RunResult, kind: str) -> dict[str, np.ndarray] | None:
    files = sorted((run.path / "pictures").glob(f"{kind}-*.npz"))
    if not files:
        return None
    with np.load(files[-1]) as arrays:
        return {k: arrays[k] for k in arrays.files}


def section_recon(out: Path, results: dict, claims: list[Claim]) -> list[Block]:
    blocks: list[Block] = []
    for setting in _runs(results, "recon"):
        key, dataset = setting.setting["key"], setting.setting["dataset"]
        recon_panels, sample_panels, rows, stats = [], [], [], {}
        for model, run in setting.runs.items():
            recon, rate = run.value("reconstruction"), run.value("rate")
            stats[model] = {"reconstruction": recon, "rate": rate}
            rows.append([paper.LABELS[model], _fmt(recon), _fmt(rate), _fmt(run.value("mmd")),
                         _fmt(run.value("mmd", "mmd_means"))])  # fmt: skip
            arrays = _picture(run, "images")
            if arrays is None:
                continue
            caption = f"{paper.LABELS[model]}\nrecon {_fmt(recon)}, rate {_fmt(rate)}"
            grid = interleave_rows(arrays["originals"], arrays["reconstructions"], 8)
            recon_panels.append(ImagePanel(caption, grid))
            sample_panels.append(ImagePanel(paper.LABELS[model], arrays["samples"]))
        claims.append(claim_reconstruction_rate(stats, dataset))
        blocks += [Block("h3", f"{dataset} ({key})"), _setting_note(setting)]
        blocks.append(Block("table", header=["model", "reconstruction", "rate", "MMD",
                                             "MMD of means"], rows=rows))  # fmt: skip
        if recon_panels:
            figures = out / "figures"
            a = plot_image_grids(recon_panels, figures / f"recon-{key}.png",
                                 "test reconstructions: odd rows originals, even rows "
                                 "reconstructions")  # fmt: skip
            b = plot_image_grids(sample_panels, figures / f"samples-{key}.png", "prior samples")
            blocks.append(_img(out, a, f"Test reconstructions, {dataset}"))
            blocks.append(_img(out, b, f"Random samples from the prior, {dataset}"))
        blocks.append(_commands(setting, ["reconstruction", "rate"]))
    return blocks


def section_table1(out: Path, results: dict, claims: list[Claim]) -> list[Block]:
    blocks: list[Block] = []
    for setting in _runs(results, "table1"):
        rows, values = [], {}
        for model, run in setting.runs.items():
            nll = run.value("parzen", "parzen_nll")
            values[model] = nll
            sem = run.value("parzen", "parzen_nll_sem")
            ours = "–" if nll is None else f"{nll:.1f} ± {sem:.1f}"
            rows.append([paper.LABELS[model], ours, str(paper.PARZEN_NLL[model])])
        claims.append(claim_lowest(values, "table1", "Parzen NLL on Omniglot"))
        blocks += [_setting_note(setting)]
        blocks.append(Block("table", header=["model", "ours (nats)", "paper"], rows=rows))
        blocks.append(_commands(setting, ["parzen"]))
    return blocks


def _semi_table(name: str, out: Path, results: dict, claims: list[Claim]) -> list[Block]:
    blocks: list[Block] = []
    columns = paper.SEMI_SUPERVISED_COLUMNS[name]
    for setting in _runs(results, name):
        blocks.append(_setting_note(setting))
        protocol = next(
            (r.value("semi-supervised", "semi_supervised_protocol") for r in setting.runs.values()),
            None,
        )
        if protocol:
            blocks.append(Block("p", f"Protocol: {protocol}. Cells: ours (mean ± std) / paper."))
        for classifier in ("svm", "label_spreading"):
            rows = []
            for model, run in setting.runs.items():
                acc = _accuracy(run, classifier)
                row = [paper.LABELS[model]]
                for spec in columns:
                    ours = f"{acc[spec][0]:.1f} ± {acc[spec][1]:.1f}" if spec in acc else "–"
                    row.append(f"{ours} / {paper.SEMI_SUPERVISED[name][model][spec]}")
                rows.append(row)
            blocks.append(Block("p", f"Classifier: {classifier}"))
            blocks.append(Block("table", header=["model", *columns], rows=rows))
        means = {
            m: {s: v[0] for s, v in _accuracy(r, SEMI_CLASSIFIER).items()}
            for m, r in setting.runs.items()
        }
        claims.extend(claims_robustness(means, name))
        curves = []
        for model, run in setting.runs.items():
            acc = _accuracy(run, SEMI_CLASSIFIER)
            if "clean" not in acc:
                continue
            for family in ("gauss", "mask"):
                specs = sorted((s for s in acc if s.startswith(family)), key=_level)
                curves.append(AccuracyCurve(
                    paper.LABELS[model], family, [0.0] + [_level(s) for s in specs],
                    [acc["clean"][0]] + [acc[s][0] for s in specs],
                    [acc["clean"][1]] + [acc[s][1] for s in specs],
                ))  # fmt: skip
        if curves:
            path = plot_accuracy_vs_noise(curves, out / "figures" / f"accuracy-{name}.png",
                                          f"{setting.setting['dataset']}: {SEMI_CLASSIFIER} "
                                          "accuracy against noise level")  # fmt: skip
            blocks.append(_img(out, path, "Semi-supervised accuracy against noise level"))
        blocks.append(_commands(setting, ["semi-supervised"]))
    return blocks


def _level(spec: str) -> float:
    return float(spec.partition(":")[2] or 0.0)


def section_table5(out: Path, results: dict, claims: list[Claim]) -> list[Block]:
    blocks: list[Block] = []
    columns: dict[str, dict[str, float | None]] = {}
    features: dict[str, str] = {}
    settings = _runs(results, "table5")
    for setting in settings:
        dataset = setting.setting["dataset"]
        columns[dataset] = {m: r.value("fid") for m, r in setting.runs.items()}
        features[dataset] = next(
            (r.value("fid", "fid_features") for r in setting.runs.values() if r.value("fid")), ""
        )
        claims.append(claim_lowest(columns[dataset], "table5", f"FID on {dataset}"))
    for dataset in paper.FID:
        if dataset not in columns:
            claims.append(claim_lowest({}, "table5", f"FID on {dataset}"))
    rows = []
    for model in paper.MODELS:
        row = [paper.LABELS[model]]
        for dataset, published in paper.FID.items():
            row += [_fmt(columns.get(dataset, {}).get(model), 4), _fmt(published[model], 4)]
        rows.append(row)
    header = ["model"] + [f"{d} {w}" for d in paper.FID for w in ("ours", "paper")]
    blocks.append(Block("table", header=header, rows=rows))
    for dataset, name in features.items():
        if name and "inception" not in name:
            blocks.append(Block("p", f"{dataset}: FID in the features of {name}, not "
                                "Inception-v3: compare the ranking, not the values, with the "
                                "paper."))  # fmt: skip
    for setting in settings:
        blocks += [_setting_note(setting), _commands(setting, ["fid"])]
    return blocks


# Experiment -> the function that writes its section (and adds its claims).
SECTIONS: dict[str, Callable[[Path, dict, list[Claim]], list[Block]]] = {
    "fig1": section_fig1,
    "recon": section_recon,
    "table1": section_table1,
    "table2": lambda out, r, c: _semi_table("table2", out, r, c),
    "table3": lambda out, r, c: _semi_table("table3", out, r, c),
    "table4": lambda out, r, c: _semi_table("table4", out, r, c),
    "table5": section_table5,
}


def section_rate_distortion(out: Path, results: dict) -> list[Block]:
    """Every run measured (reconstruction, rate, MMD) in one picture, one panel per setting."""
    points, seen = [], set()
    for settings in results.values():
        for setting in settings:
            for model, run in setting.runs.items():
                values = [run.value(m) for m in ("rate", "reconstruction", "mmd")]
                if run.path in seen or any(v is None for v in values):
                    continue
                seen.add(run.path)
                group = setting.setting["key"]
                points.append(RatePoint(group, paper.LABELS[model], *values))
    if not points:
        return [Block("p", "No run has reconstruction, rate and MMD yet.")]
    path = plot_rate_distortion(points, out / "figures" / "rate-distortion.png")
    caption = "Rate (x), reconstruction error (y) and MMD to the prior (colour) of every run"
    return [_img(out, path, caption)]


def build_blocks(out: Path) -> list[Block]:
    """The whole report as blocks (also draws every figure into OUT/figures)."""
    manifest, results = load_results(out)
    experiments = manifest["experiments"]
    blocks = [Block("h1", "vimae: reproduction of the Variational InfoMax AutoEncoder paper")]
    scales = sorted({r["scale"] for r in experiments.values()}) or ["none"]
    blocks.append(Block("p", f"Scale: {', '.join(scales)}. Our numbers beside the paper's "
                        "(SPEC section 8); the cpu scale trains narrower networks for fewer "
                        "epochs on subsets, so its numbers are not the paper's protocol and are "
                        "compared for direction, not value."))  # fmt: skip
    claims: list[Claim] = []
    body: list[Block] = []
    for name, section in SECTIONS.items():
        if name not in experiments:
            continue
        body.append(Block("h2", experiments[name]["title"]))
        before = len(claims)
        body += section(out, results, claims)
        if len(claims) == before:
            why = "; ".join(s.get("reason", "") for s in experiments[name]["settings"])
            claims.append(Claim(name, f"(the claims of {name})", UNMEASURED, why))
        body.append(Block("p", f"Made by `{experiments[name]['command']}` in "
                          f"{experiments[name]['seconds']:.0f} s "
                          f"(finished {experiments[name]['finished']})."))  # fmt: skip
    blocks.append(Block("h2", "Claims of the paper"))
    rows = [[c.source, c.statement, c.status.upper(), c.evidence] for c in claims]
    for name in SECTIONS:
        if name not in experiments:
            rows.append([name, f"(experiment {name} was not run)", UNMEASURED.upper(), ""])
    blocks.append(Block("table", header=["from", "claim", "verdict", "numbers"], rows=rows))
    blocks.append(Block("h2", "Missing data and runs not made"))
    missing = [
        [name, s["key"], s["dataset"], s.get("reason", "")]
        for name, record in experiments.items()
        for s in record["settings"]
        if s.get("status") != "ok"
    ]
    if missing:
        blocks.append(Block("table", header=["experiment", "setting", "dataset", "why"],
                            rows=missing))  # fmt: skip
    else:
        blocks.append(Block("p", "Every setting ran."))
    blocks += body
    blocks.append(Block("h2", "Rate, distortion and MMD of all models"))
    blocks += section_rate_distortion(out, results)
    blocks.append(Block("h2", "Wall time"))
    blocks.append(Block("table", header=["experiment", "seconds", "command"], rows=[
        [n, f"{r['seconds']:.0f}", r["command"]] for n, r in experiments.items()
    ]))  # fmt: skip
    return blocks


# ---------------------------------------------------------------- rendering


def to_markdown(blocks: list[Block]) -> str:
    lines: list[str] = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            lines += ["#" * int(b.kind[1]) + " " + b.text, ""]
        elif b.kind == "p":
            lines += [b.text, ""]
        elif b.kind == "table":
            cell = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
            lines.append("| " + " | ".join(cell(h) for h in b.header) + " |")
            lines.append("|" + "---|" * len(b.header))
            lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in b.rows]
            lines.append("")
        elif b.kind == "img":
            lines += [f"![{b.rows[0][0]}]({b.text})", ""]
        elif b.kind == "details":
            lines += ["Commands:", "", "```", b.text, "```", ""]
    return "\n".join(lines)


def to_html(blocks: list[Block]) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>vimae reproduction report</title>',
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
        "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;"
        "padding:3px 6px;font-size:0.9em;vertical-align:top}img{max-width:100%}"
        "pre{background:#f4f4f4;padding:0.5em;overflow-x:auto;font-size:0.8em}</style>",
        "</head><body>",
    ]
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            parts.append(f"<{b.kind}>{e(b.text)}</{b.kind}>")
        elif b.kind == "p":
            parts.append(f"<p>{e(b.text)}</p>")
        elif b.kind == "table":
            head = "".join(f"<th>{e(str(h))}</th>" for h in b.header)
            body = "".join(
                "<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in b.rows
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif b.kind == "img":
            caption = e(b.rows[0][0])
            parts.append(
                f'<figure><img src="{e(b.text)}" alt="{caption}">'
                f"<figcaption>{caption}</figcaption></figure>"
            )
        elif b.kind == "details":
            parts.append(f"<details><summary>commands</summary><pre>{e(b.text)}</pre></details>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def build_report(out: str | Path) -> tuple[Path, Path]:
    """Write OUT/report.md and OUT/report.html (and OUT/figures/*.png) from OUT's files."""
    out = Path(out)
    blocks = build_blocks(out)
    md, page = out / "report.md", out / "report.html"
    md.write_text(to_markdown(blocks))
    page.write_text(to_html(blocks))
    return md, page
