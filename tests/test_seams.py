"""The seams of docs/architecture.md: a setting declared once, the learning-rate schedule, the
sampler, the one KL choice, networks of one's own, and run folders made before the layout."""

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

import vimae
from vimae.cli import main
from vimae.config import (
    NEW_WEIGHTS,
    SETTING_FIELDS,
    SETTINGS,
    TRAIN_FLAGS,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    apply_overrides,
    validate,
)
from vimae.errors import VimaeError
from vimae.models import build_model, encoder_outputs, resolve
from vimae.models.batched import generate
from vimae.models.divergence import gaussian_log_density
from vimae.runs.checkpoint import CHECKPOINT_FILE, read_checkpoint
from vimae.runs.fit import METRICS_FILE, fit
from vimae.runs.loading import load_trained
from vimae.runs.schedule import learning_rate

FIXTURES = Path(__file__).parent / "fixtures"


def small_config(epochs: int = 2, **train) -> RunConfig:
    return RunConfig(
        model=ModelConfig(name="vimae-l", arch="mlp", latent_dim=2, width=0.25),
        data=DataConfig(dataset="digits", train_size=600),
        train=TrainConfig(epochs=epochs, progress=False, log_every=1, **train),
    )


def test_one_declaration_gives_the_flag_help_keyword_checks_and_fingerprint(capsys, monkeypatch):
    """train.schedule is declared once (config.py); everything else follows from it."""
    spec = SETTING_FIELDS["train.schedule"]
    assert spec.metadata["fingerprint"] == NEW_WEIGHTS
    assert TRAIN_FLAGS["schedule"] == "train.schedule" and SETTINGS["schedule"] == "train.schedule"
    monkeypatch.setenv("COLUMNS", "1000")
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "choices: constant, cosine, step" in capsys.readouterr().out
    with pytest.raises(VimaeError, match=r"--schedule \(train.schedule\) must be one of"):
        validate(apply_overrides(RunConfig(), ["train.schedule=linear"]))
    base = RunConfig()
    cosine = apply_overrides(RunConfig(), ["train.schedule=cosine"])
    # At its default a later setting leaves the fingerprint of older runs as it was.
    assert "schedule" not in base.fingerprint() and "schedule" in cosine.fingerprint()
    # A decaying schedule depends on the total steps, so the epochs count there.
    longer = apply_overrides(RunConfig(), ["train.schedule=cosine", "train.epochs=81"])
    assert cosine.fingerprint() != longer.fingerprint()
    assert base.fingerprint() == apply_overrides(RunConfig(), ["train.epochs=81"]).fingerprint()


def test_the_schedules_are_functions_of_the_step():
    assert all(learning_rate(s, 100, 1e-3) == 1e-3 for s in range(100))
    assert learning_rate(0, 100, 1e-3, "cosine") == pytest.approx(1e-3)
    assert learning_rate(50, 100, 1e-3, "cosine") == pytest.approx(5e-4)
    assert learning_rate(100, 100, 1e-3, "cosine") == pytest.approx(0.0, abs=1e-12)
    steps = [learning_rate(s, 80, 1.0, "step") for s in range(80)]
    # The WAE code: x0.5 from epoch 30 of 80, x0.1 from epoch 50.
    assert steps[29] == 1.0 and steps[30] == 0.5 and steps[49] == 0.5 and steps[50] == 0.1


def test_a_run_on_a_decaying_schedule_resumes_exactly_and_uses_its_rates(
    tmp_path, digits_train, monkeypatch
):
    data = digits_train.subset(600)
    config = small_config(epochs=3, schedule="cosine", checkpoint_every=4)
    seen: list[float] = []
    real_step = torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    fit(config, tmp_path / "straight", data=data)
    assert seen == pytest.approx([learning_rate(s, 18, 1e-3, "cosine") for s in range(18)])

    calls = {"n": 0}

    def crash_after_10_steps(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 10:
            raise KeyboardInterrupt
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", crash_after_10_steps)
    with pytest.raises(KeyboardInterrupt):
        fit(config, tmp_path / "resumed", data=data)
    monkeypatch.setattr(torch.optim.Adam, "step", real_step)
    fit(config, tmp_path / "resumed", resume=True, data=data)
    a = read_checkpoint(tmp_path / "straight" / CHECKPOINT_FILE)[0]
    b = read_checkpoint(tmp_path / "resumed" / CHECKPOINT_FILE)[0]
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith(("model.", "optim.")))
    longer = small_config(epochs=4, schedule="cosine", checkpoint_every=4)
    with pytest.raises(VimaeError, match="already holds a different run"):
        fit(longer, tmp_path / "resumed", resume=True, data=data)


def test_a_resume_may_lower_the_learning_rate_but_not_raise_it(tmp_path, digits_train):
    data = digits_train.subset(600)
    fit(small_config(epochs=1), tmp_path, data=data)
    with pytest.raises(VimaeError, match="may lower the learning rate, not raise it"):
        fit(small_config(epochs=2, lr=1e-2), tmp_path, resume=True, data=data)
    assert json.loads(read_checkpoint(tmp_path / CHECKPOINT_FILE)[1]["progress"])["epoch"] == 1
    fit(small_config(epochs=2, lr=1e-4), tmp_path, resume=True, data=data)
    rows = [json.loads(s) for s in (tmp_path / METRICS_FILE).read_text().splitlines()]
    assert any(r["kind"] == "lr" and r["lr"] == 1e-4 and r["previous"] == 1e-3 for r in rows)


class FixedCodes:
    """A sampler whose codes are given."""

    def __init__(self, codes: torch.Tensor) -> None:
        self.codes = codes

    def sample_codes(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.codes[:n]


def _model(name: str = "vae", prior: str | None = None) -> torch.nn.Module:
    config = resolve(
        ModelConfig(name=name, arch="mlp", latent_dim=3, prior=prior), "digits", (1, 8, 8)
    )
    torch.manual_seed(0)
    return build_model(config).eval()


def test_every_sample_goes_through_one_sampler_seam():
    model = _model()
    z = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    images = model.sample(5, sampler=FixedCodes(z))
    assert torch.allclose(images, model.decode(z), atol=1e-6)
    codes, prior_images = generate(model, 4, torch.Generator().manual_seed(2))
    assert torch.equal(codes, model.prior.sample(4, generator=torch.Generator().manual_seed(2)))
    assert torch.equal(prior_images, model.sample(4, seed=2))


@pytest.mark.parametrize("prior", ["logistic", "laplace"])
def test_a_vae_with_another_prior_takes_the_monte_carlo_kl_on_its_own_draw(prior):
    """The KL term of a Gaussian VAE against a non-Normal prior is log q(z|x) - log p(z) at the
    reparameterised z (not the Normal prior's closed form)."""
    model = _model("vae", prior).train()
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(4)
    z, terms = model.encoder_terms(x)
    mu, logvar = model.split(x)
    expected = (gaussian_log_density(z, mu, logvar) - model.prior.log_prob(z)).mean()
    assert terms["kl"].item() == pytest.approx(expected.item(), rel=1e-6)
    closed = (0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)).mean()
    assert not math.isclose(terms["kl"].item(), closed.item(), rel_tol=1e-3)


class TinyEncoder(nn.Module):
    def __init__(self, out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def test_networks_of_ones_own_are_used_as_given():
    config = resolve(ModelConfig(name="vae", arch="mlp", latent_dim=4), "digits", (1, 8, 8))
    encoder = TinyEncoder(encoder_outputs(config))
    decoder = nn.Sequential(nn.Linear(4, 64), nn.Sigmoid(), nn.Unflatten(1, (1, 8, 8)))
    model = build_model(config, networks=(encoder, decoder))
    assert model.encoder is encoder and model.decoder is decoder
    assert encoder_outputs(config) == 8  # mu and logvar of a Gaussian q(z|x)
    x = torch.rand(5, 1, 8, 8)
    assert model.encode(x).shape == (5, 4) and model(x)["loss"].isfinite()


def test_folders_made_before_the_layout_load_evaluate_and_resume(tmp_path, capsys):
    """tests/fixtures: a run folder and an export written by the code before the layout by role
    (vimae train ... --width 0.0625 --latent-dim 2 --epochs 1 --val-fraction 0.1 on digits)."""
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "run-before-layout", run)
    model = vimae.load(run)
    exported = vimae.load(FIXTURES / "export-before-layout")
    best = vimae.load(run / "best.safetensors")
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(model.encode(x), exported.encode(x))
    assert best.encode(x).shape == (3, 2)
    assert load_trained(run).config.model.name == "vae"
    assert main(["evaluate", str(run), "--metrics", "reconstruction,rate"]) == 0
    assert json.loads((run / "metrics.json").read_text())["metrics"]["rate"]["status"] == "ok"
    assert main(["train", "--resume", "--out", str(run), "--epochs", "2", "--no-progress"]) == 0
    progress = json.loads(read_checkpoint(run / CHECKPOINT_FILE)[1]["progress"])
    assert progress["epoch"] == 2 and "best" in progress
    capsys.readouterr()


def test_gradient_clipping_caps_the_norm_each_step_sees(digits_train, monkeypatch):
    norms: list[float] = []
    real_step = torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        grads = [
            p.grad for group in self.param_groups for p in group["params"] if p.grad is not None
        ]
        norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    fit(small_config(epochs=1, clip_norm=0.01), None, data=digits_train.subset(600))
    assert len(norms) == 6 and max(norms) <= 0.01 * (1 + 1e-5)
    norms.clear()
    fit(small_config(epochs=1), None, data=digits_train.subset(600))
    assert max(norms) > 0.1  # unclipped, the same run's gradients are far larger
