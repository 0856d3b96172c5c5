"""The report as a function of files: claims on hand-made numbers, a report from hand-written run
folders, and the page rendered by a real browser (headless Chromium) with every image loaded."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from vimae.paper import report

FIVE = ("clean", "gauss:0.2", "gauss:0.4", "mask:0.2", "mask:0.5")


# ---------------------------------------------------------------- a report from written files


FLAT = (10.0, 10.0, 10.0, 10.0, 9.99)  # validation loss per epoch: 0.1% over the last 10%
MOVING = (10.0, 9.9, 9.8, 9.7, 9.0)  # 9.7 at step 400 -> 9.0 at step 500: 7% over the last 10%


def _write_run(out: Path, name: str, model: str, metrics: dict, seed: int = 0, losses=FLAT) -> str:
    run = out / "runs" / name
    (run / "evaluation").mkdir(parents=True)
    config = {
        "model": {"name": model, "arch": "dcgan28", "width": 0.125, "latent_dim": 8},
        "data": {"dataset": "mnist", "data_dir": "data", "train_size": None, "image_size": None},
        "train": {"epochs": 5, "seed": seed},
    }
    (run / "config.json").write_text(json.dumps(config))
    epochs = [
        {"kind": "epoch", "epoch": e, "step": 100 * (e + 1), "loss": v, "val_loss": v}
        for e, v in enumerate(losses)
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in epochs))
    seen = {"name": "MNIST", "images": 10_000, "classes": 10, "smallest_class": 892,
            "largest_class": 1_135}  # fmt: skip
    (run / "data.json").write_text(json.dumps({"train": seen}))
    tested = {**seen, "images": 2_000, "smallest_class": 178, "largest_class": 227}
    for metric, values in metrics.items():
        record = {"metric": metric, "status": "ok", "command": f"vimae evaluate {name}",
                  "test_data": tested, **values}  # fmt: skip
        (run / "evaluation" / f"{metric}-abc.json").write_text(json.dumps(record))
    return f"runs/{name}"


def _accuracy_record(values: tuple[float, ...]) -> dict:
    table = {
        spec: {c: {"mean": v, "std": 1.0} for c in ("svm", "label_spreading")}
        for spec, v in zip(FIVE, values, strict=True)
    }
    return {"semi_supervised": table, "semi_supervised_protocol": "1000 labelled test codes"}


def _hand_written_output(out: Path) -> None:
    """table3 and recon with all five models, three seeds each (VIMAE-l losing the most under
    noise), and table5 with CelebA missing."""
    acc = {
        "vae": (80, 78, 75, 76, 70),
        "beta-vae-h": (90, 89, 88, 89, 87),
        "beta-vae-a": (91, 85, 70, 86, 75),
        "vimae-n": (92, 88, 80, 87, 79),
        "vimae-l": (92, 70, 50, 60, 40),
    }
    runs: dict[str, list[str]] = {}
    for k, (model, values) in enumerate(acc.items()):
        for seed in range(3):
            jitter = (seed - 1) * 0.5  # seeds differ a little: standard error 0.29 when clean
            noisy = tuple(a + jitter * (1 + 0.2 * i) for i, a in enumerate(values))
            metrics = {
                "semi-supervised": _accuracy_record(noisy),
                "reconstruction": {"reconstruction": 20.0 + k + jitter},
                "rate": {"rate": 5.0 + 3 * k},
                "mmd": {"mmd": 0.1 / (k + 1)},
            }
            losses = MOVING if model == "vae" else FLAT  # the VAE still moves
            name = f"{model}-mnist-{seed}"
            runs.setdefault(model, []).append(_write_run(out, name, model, metrics, seed, losses))
            pictures = out / runs[model][-1] / "pictures"
            pictures.mkdir()
            rng = np.random.default_rng(k)
            np.savez(pictures / "images-x.npz", originals=rng.random((32, 1, 28, 28)),
                     reconstructions=rng.random((32, 1, 28, 28)),
                     samples=rng.random((32, 1, 28, 28)))  # fmt: skip
    setting = {"key": "mnist-dcgan28", "dataset": "mnist", "arch": "dcgan28", "width": 0.125,
               "latent_dim": 8, "epochs": 5, "reduced": "hand-written", "status": "ok"}  # fmt: skip
    missing = {**setting, "key": "celeba-dcgan64", "dataset": "celeba", "status": "not run",
               "reason": "CelebA needs data/celeba/img_align_celeba/"}  # fmt: skip
    common = {"scale": "cpu", "seconds": 12.0, "finished": "today", "metrics": [], "pictures": []}
    manifest = {"experiments": {
        "table3": {**common, "title": "Table 3: MNIST", "command": "vimae reproduce table3",
                   "settings": [{**setting, "runs": runs}]},
        "recon": {**common, "title": "Figures 2-3", "command": "vimae reproduce recon",
                  "settings": [{**setting, "runs": runs}]},
        "table5": {**common, "title": "Table 5: FID", "command": "vimae reproduce table5",
                   "settings": [missing]},
    }}  # fmt: skip
    (out / "manifest.json").write_text(json.dumps(manifest))


def test_report_is_built_from_hand_written_files(tmp_path):
    _hand_written_output(tmp_path)
    md_path, html_path = report.build_report(tmp_path)
    md = md_path.read_text()
    # ours (mean ± se over three seeds) beside the paper's: VAE clean 80 / paper 80
    assert "80 ± 0.29 / 80" in md and "92 ± 0.29 / 93" in md
    rows = {
        line.split(" | ")[2]: line.split(" | ")
        for line in md.splitlines()
        if line.startswith("| table 3 (MNIST)")
    }
    # from, origin, claim, rule, ours, evidence, paper, evidence
    robust = rows["VIMAE-l is the most robust"]
    assert robust[1] == "paper"  # the paper's own sentence
    assert robust[4].startswith("DOES NOT HOLD") and "se; t = 2.78)" in robust[5]  # in se, t(4)
    assert robust[6] == "HOLDS"  # the paper's own table 3 supports it
    # the project's reading of the same words is counted apart, as the project's question
    assert rows["VIMAE-l is the most robust, read as: the highest accuracy under noise"][1] == (
        "project"
    )
    comparable = rows["the two VIMAEs are comparable on clean data and small noise"]
    assert comparable[1] == "paper"
    assert comparable[4].startswith("DOES NOT HOLD")  # 88 vs 70 under gauss:0.2
    assert "NOT MEASURED" in md and "img_align_celeba" in md  # CelebA: missing, files named
    assert "Experiments not run: fig1" in md
    assert "vimae train --model vae --arch dcgan28" in md and "--dataset mnist" in md
    assert "--seed 2" in md
    assert "vimae evaluate vae-mnist" in md
    assert "3 training seeds per model" in md
    # the VAE's validation loss still moved 7% over the last 10% of its steps: the setting is
    # not converged, and so every verdict from it says so
    assert "Training NOT converged" in md and "(training had not converged" in md
    assert "Our numbers: " in md and "The paper's own numbers, by the same rules: " in md
    assert "The paper's claims (" in md and "The project's own questions (" in md  # apart
    # what every setting saw, from the runs' own records
    assert "trained on 10,000 images of MNIST, 10 classes of 892 to 1,135 images each" in md
    assert "measured on 2,000 images of MNIST, 10 classes of 178 to 227 images each" in md
    for figure in ("accuracy-table3.png", "rate-distortion.png", "recon-mnist-dcgan28.png"):
        assert (tmp_path / "figures" / figure).is_file()
        assert f'src="figures/{figure}"' in html_path.read_text()
    # a function of files: building twice gives the same pages
    first = (md, html_path.read_text())
    report.build_report(tmp_path)
    assert (md_path.read_text(), html_path.read_text()) == first


# ---------------------------------------------------------------- a real browser


CHECK_SCRIPT = """<script>
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                     .map(function (i) { return i.getAttribute('src'); });
  var out = document.createElement('pre');
  out.id = 'image-check';
  out.textContent = JSON.stringify({total: images.length, broken: broken});
  document.body.appendChild(out);
});
</script>
</body>"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium is not installed; scripts/test.sh installs Debian's chromium")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def _images_in_browser(page: Path, profile: Path) -> dict:
    """Load `page` in headless Chromium and report how many <img> loaded and which did not."""
    probe = page.with_name("browser-check.html")
    probe.write_text(page.read_text().replace("</body>", CHECK_SCRIPT))
    command = [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={profile}", "--virtual-time-budget=10000",
        "--dump-dom", probe.as_uri(),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=90)
    dom = done.stdout
    start = dom.find('<pre id="image-check">')
    assert start >= 0, f"the page did not load in chromium: {done.stderr[-2000:]}"
    text = dom[start + len('<pre id="image-check">') : dom.index("</pre>", start)]
    return json.loads(text.replace("&quot;", '"'))


def test_report_opens_in_a_browser_with_every_image(tmp_path):
    _hand_written_output(tmp_path)
    _, page = report.build_report(tmp_path)
    result = _images_in_browser(page, tmp_path / "profile")
    assert result["total"] >= 4 and result["broken"] == []
    # the check itself notices a missing picture
    (tmp_path / "figures" / "rate-distortion.png").unlink()
    result = _images_in_browser(page, tmp_path / "profile")
    assert result["broken"] == ["figures/rate-distortion.png"]


def _set_config(out: Path, run: str, section: str, **values) -> None:
    config = json.loads((out / run / "config.json").read_text())
    config[section].update(values)
    (out / run / "config.json").write_text(json.dumps(config))


def test_noise_sweep_and_calibration_sections(tmp_path):
    """The experiments on what the paper leaves open: a table and a figure per noise level with
    the rate claims at each level, and which decoder likelihood gives the paper's table 3, from
    hand-written runs."""
    common = {"scale": "cpu", "seconds": 5.0, "finished": "today", "metrics": [], "pictures": []}
    base = {"dataset": "mnist", "arch": "dcgan28", "width": 0.125, "latent_dim": 8, "epochs": 5,
            "reduced": "hand-written", "status": "ok"}  # fmt: skip
    noise_settings, calibration_settings = [], []
    for level, std in enumerate((0.0, 0.005, 0.05)):
        runs = []
        for seed in range(3):
            metrics = {"rate": {"rate": 40.0 - 10 * level + 0.1 * seed},
                       "reconstruction": {"reconstruction": 20.0 + level},
                       "mmd": {"mmd": 0.01},
                       "semi-supervised": _accuracy_record((90, 85, 80, 88, 80))}  # fmt: skip
            runs.append(_write_run(tmp_path, f"l-{std}-{seed}", "vimae-l", metrics, seed))
        noise_settings.append({**base, "key": f"mnist-noise-{std:g}", "runs": {"vimae-l": runs}})
    # table 3's ELBO models, whose rates the noise levels' claims compare with
    table3 = {}
    for model, rate in (("vae", 10.0), ("beta-vae-h", 2.0), ("beta-vae-a", 15.0)):
        table3[model] = [
            _write_run(tmp_path, f"t3-{model}-{seed}", model, {"rate": {"rate": rate + 0.1 * seed}},
                       seed)
            for seed in range(3)
        ]  # fmt: skip
    # calibration: the Gaussian with w = 1 collapses beta_H (rate 0.01, the mean image's error);
    # the Bernoulli decoder gives the paper's accuracies
    for likelihood, weight, clean_h, rate_h in (("gaussian", 1.0, 60.0, 0.01),
                                                 ("bernoulli", 1.0, 91.0, 6.0)):  # fmt: skip
        runs = {}
        for model, clean in (("vae", 80.0), ("beta-vae-h", clean_h), ("beta-vae-a", 93.0)):
            for seed in range(3):
                rate = rate_h if model == "beta-vae-h" else 12.0
                recon = 52.0 if rate < 1 else 20.0
                draws = _accuracy_record((clean + seed, 80, 70, 75, 60))
                means = _accuracy_record((clean + 5 + seed, 80, 70, 75, 60))["semi_supervised"]
                metrics = {"semi-supervised": {**draws, "semi_supervised_means": means},
                           "rate": {"rate": rate},
                           "reconstruction": {"reconstruction": recon,
                                              "reconstruction_mean_image": 52.8}}  # fmt: skip
                name = f"c-{likelihood}-{model}-{seed}"
                runs.setdefault(model, []).append(_write_run(tmp_path, name, model, metrics, seed))
                _set_config(tmp_path, runs[model][-1], "model", likelihood=likelihood,
                            recon_weight=weight)  # fmt: skip
        calibration_settings.append({**base, "key": f"c-{likelihood}", "runs": runs})
    manifest = {"experiments": {
        "noise": {**common, "title": "Noise", "command": "vimae reproduce noise",
                  "settings": noise_settings},
        "table3": {**common, "title": "Table 3", "command": "vimae reproduce table3",
                   "settings": [{**base, "key": "mnist-dcgan28", "runs": table3}]},
        "calibration": {**common, "title": "Likelihood",
                        "command": "vimae reproduce calibration",
                        "settings": calibration_settings},
    }}  # fmt: skip
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    md = report.build_report(tmp_path)[0].read_text()
    assert (tmp_path / "figures" / "noise-sweep.png").stat().st_size > 1000
    sweep_rows = [line for line in md.splitlines() if line.startswith("| 0.05 |")]
    assert sweep_rows and "20.1 ± 0.058" in sweep_rows[0]  # the rate at the largest noise
    # the rate claims at each noise level: at 0.005 VIMAE-l's 30 nats are twice beta_A's 15
    lines = [line for line in md.splitlines() if line.startswith("| 0.0")]
    by_noise = {line.split(" | ")[0]: line for line in lines if "HOLD" in line}
    assert "HOLDS | HOLDS" in by_noise["| 0.005"]
    assert "DOES NOT HOLD" in by_noise["| 0.05"]  # 20 nats: not twice 15, nor above 15 by much
    assert "conditional on VIMAE-l's encoder noise std 0.005" in md
    rows = {line.split(" | ")[0]: line for line in md.splitlines() if "β_H-VAE reproduces" in line}
    assert "DOES NOT HOLD" in rows["| decoder likelihood gaussian, w = 1"]  # 61 vs 92
    assert "HOLDS" in rows["| decoder likelihood bernoulli"]  # 92 ± 0.58
    assert "β_H-VAE (collapsed)" in md
    assert "Closest: bernoulli" in md
    assert "the VIMAE rate follows the encoder noise" in md


def test_collapsed_models_decide_no_robustness_claim_and_means_are_shown(tmp_path):
    """β_H-VAE with a collapsed encoder (rate 0.2 nats) loses no accuracy under noise; it would
    make VIMAE-l's robustness claim fail, and is left out, saying which verdict that changed."""
    _hand_written_output(tmp_path)
    for seed in range(3):
        run = tmp_path / "runs" / f"beta-vae-h-mnist-{seed}" / "evaluation"
        record = json.loads((run / "rate-abc.json").read_text())
        record["rate"] = 0.2
        (run / "rate-abc.json").write_text(json.dumps(record))
        record = json.loads((run / "semi-supervised-abc.json").read_text())
        table = _accuracy_record((11, 11, 11, 11, 11))["semi_supervised"]
        record["semi_supervised"] = table  # chance on draws, the same under every noise
        record["semi_supervised_means"] = _accuracy_record((90, 89, 88, 89, 87))["semi_supervised"]
        (run / "semi-supervised-abc.json").write_text(json.dumps(record))
    md = report.build_report(tmp_path)[0].read_text()
    assert "β_H-VAE (collapsed)" in md and "β_H-VAE has collapsed (rate 0.2" in md
    assert "codes: posterior means μ(x+ν)" in md
    assert "Leaving the collapsed models out changed" in md
    assert "Judged on posterior means instead" in md
    rows = [line for line in md.splitlines() if line.startswith("| table 3 (MNIST)")]
    assert any("β_H-VAE left out: collapsed" in line for line in rows)


def test_the_schedule_section_names_the_lowest_validation_loss(tmp_path):
    common = {"scale": "cpu", "seconds": 5.0, "finished": "today", "metrics": [], "pictures": []}
    base = {"dataset": "mnist", "arch": "dcgan28", "width": 0.125, "latent_dim": 8, "epochs": 20,
            "reduced": "hand-written", "status": "ok"}  # fmt: skip
    settings = []
    for schedule, final in (("constant", 12.5), ("step", 11.9), ("cosine", 12.1)):
        runs = []
        for seed in range(2):
            name = f"s-{schedule}-{seed}"
            runs.append(_write_run(tmp_path, name, "vimae-l", {}, seed))
            val = [final + 1.0 / (e + 1) + 0.01 * seed for e in range(3)]
            rows = [{"kind": "epoch", "epoch": e, "step": e, "loss": 10.0, "val_loss": v}
                    for e, v in enumerate(val)]  # fmt: skip
            (tmp_path / runs[-1] / "metrics.jsonl").write_text(
                "".join(json.dumps(r) + "\n" for r in rows)
            )
        settings.append({**base, "key": f"mnist-dcgan28-schedule-{schedule}",
                         "runs": {"vimae-l": runs}})  # fmt: skip
    manifest = {"experiments": {"schedule": {**common, "title": "Schedule",
                                             "command": "vimae reproduce schedule",
                                             "settings": settings}}}  # fmt: skip
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    md = report.build_report(tmp_path)[0].read_text()
    assert "Lowest final validation loss: VIMAE-l: step." in md
    assert "| step | VIMAE-l | 12.24 ± 0.005" in md


def test_a_damaged_cached_picture_is_one_sentence(tmp_path):
    from vimae.errors import VimaeError
    from vimae.paper.report.blocks import picture
    from vimae.paper.report.records import RunResult

    run = RunResult("vae", tmp_path, {})
    assert picture(run, "recon") is None  # not drawn yet
    (tmp_path / "pictures").mkdir()
    np.savez(tmp_path / "pictures" / "recon-abc.npz", images=np.zeros((2, 1, 4, 4)))
    assert picture(run, "recon")["images"].shape == (2, 1, 4, 4)
    (tmp_path / "pictures" / "recon-abc.npz").write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(VimaeError, match=r"recon-abc\.npz is damaged; delete it"):
        picture(run, "recon")


def _readings_record(clean_fit: dict[str, float], unclamped: dict[str, float]) -> dict:
    """A semi-supervised-readings record: the SVM's means under each reading."""

    def table(values: dict[str, float]) -> dict:
        return {spec: {"svm": {"mean": v, "std": 1.0}} for spec, v in values.items()}

    return {
        "readings": {
            "clean_fit": table(clean_fit),
            "unclamped": table(unclamped),
            "clean_fit_unclamped": table(unclamped),
        },
        "readings_protocol": "1000 labelled test codes",
    }


def test_accuracies_far_from_the_paper_are_set_beside_the_readings(tmp_path):
    """Every cell of table 3 more than FAR_POINTS from the paper's is listed; one that a reading
    brings within FAR_POINTS of the paper's is called explained by it, the rest unexplained with
    the closest reading, and the verdicts under each reading are judged."""
    _hand_written_output(tmp_path)
    for seed in range(3):
        # beta_A: 70% at gauss 0.4 on our reading, 15% fitted on clean codes (the paper: 13%)
        run = tmp_path / "runs" / f"beta-vae-a-mnist-{seed}" / "evaluation"
        record = {"metric": "semi-supervised-readings", "status": "ok", "command": "vimae x",
                  **_readings_record({"gauss:0.2": 80.0, "gauss:0.4": 15.0 + seed,
                                      "mask:0.5": 74.0},
                                     {"gauss:0.2": 84.0, "gauss:0.4": 69.0})}  # fmt: skip
        (run / "semi-supervised-readings-abc.json").write_text(json.dumps(record))
    md = report.build_report(tmp_path)[0].read_text()
    rows = {
        tuple(line.split(" | ")[:2]): line
        for line in md.splitlines()
        if line.startswith("| ") and ("explained" in line)
    }
    row = rows[("| β_A-VAE", "gauss:0.4")]
    assert "explained by the reading 'SVM fitted on clean codes' (16)" in row
    assert "16 ± 0.58" in row
    # the VAE's 70% at mask 0.5 against the paper's 52: no reading of it was measured
    assert "unexplained" in rows[("| VAE", "mask:0.5")]
    # an unexplained cell points to the experiments that changed the training, not the reading
    assert "remain unexplained. The readings change only the evaluation" in md
    # within FAR_POINTS of the paper: not listed (VAE clean 80 against 80)
    assert ("| VAE", "clean") not in rows
    assert "Judged under each reading instead: SVM fitted on clean codes:" in md
    # the whole table's distance to the paper's under every reading, the other classifier too
    gaps = next(line for line in md.splitlines() if "mean |ours − paper|" in line)
    for name in ("our reading", "'SVM fitted on clean codes'", "'label spreading'"):
        assert name in gaps


def test_table_5_names_its_features_and_the_sample_count_behind_its_bias(tmp_path):
    """Inception FID on CIFAR-10 from 1,000 samples: the table shows ours beside the paper's and
    says which features and how many samples made it, and that the count biases every value."""
    _hand_written_output(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    runs: dict[str, list[str]] = {}
    for k, model in enumerate(("vae", "beta-vae-h", "beta-vae-a", "vimae-n", "vimae-l")):
        for seed in range(3):
            fid = {
                "fid": 400.0 - 10 * k + seed,
                "fid_generated_images": 1000,
                "fid_real_images": 1000,
                "fid_features": "inception-v3 pool3 (2048)",
            }
            name = f"{model}-cifar10-{seed}"
            runs.setdefault(model, []).append(_write_run(tmp_path, name, model, {"fid": fid}, seed))
    cifar = {"key": "cifar10-dcgan64", "dataset": "cifar10", "arch": "dcgan64", "width": 0.0625,
             "latent_dim": 64, "epochs": 8, "reduced": "hand-written", "status": "ok",
             "runs": runs}  # fmt: skip
    manifest["experiments"]["table5"]["settings"].append(cifar)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    md = report.build_report(tmp_path)[0].read_text()
    row = next(line for line in md.splitlines() if line.startswith("| VIMAE-l | – | 56 |"))
    assert "361 ± 0.58 | 103" in row  # ours (mean ± se of 360, 361, 362) beside the paper's
    assert (
        "cifar10: FID on inception-v3 pool3 (2048) features, 1,000 generated samples against "
        "1,000 real test images per run" in md
    )
    assert "46 apart with 1,000 images a side" in md
    assert "benchmarks/fid_decomposition.py measures the same runs' reconstructions" in md


def test_longer_training_is_set_beside_table_3s_first_seed(tmp_path):
    """The convergence experiment: each model's first seed at E and 2E epochs; a held-out loss
    8% lower at 2E says the rule certified a levelled curve, not the asymptote."""
    _hand_written_output(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    longer = {}
    for model in ("vae", "vimae-l"):
        metrics = {"semi-supervised": _accuracy_record((81, 79, 76, 77, 71)),
                   "reconstruction": {"reconstruction": 18.0}, "rate": {"rate": 6.0},
                   "mmd": {"mmd": 0.05}}  # fmt: skip
        losses = [f * 0.92 for f in FLAT] + [FLAT[-1] * 0.92] * len(FLAT)
        longer[model] = [_write_run(tmp_path, f"{model}-long", model, metrics, 0, losses)]
    setting = {"key": "mnist-dcgan28-long", "dataset": "mnist", "arch": "dcgan28", "width": 0.125,
               "latent_dim": 8, "epochs": 10, "reduced": "hand-written", "status": "ok",
               "runs": longer}  # fmt: skip
    manifest["experiments"]["convergence"] = {
        "title": "Longer training", "scale": "cpu", "command": "vimae reproduce convergence",
        "seconds": 5.0, "finished": "today", "metrics": [], "pictures": [],
        "settings": [setting],
    }  # fmt: skip
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    md = report.build_report(tmp_path)[0].read_text()
    start = md.index("## Longer training")
    section = md[start : md.index("\n## ", start + 1)]
    assert "lowered the validation loss by up to 8.0%" in section
    assert "not that the loss reached its asymptote" in section
    rows = [line for line in section.splitlines() if line.startswith("| VAE |")]
    assert len(rows) == 1 and "clean 79.5 → 81.0" in rows[0]  # seed 0's 79.5 in table 3
