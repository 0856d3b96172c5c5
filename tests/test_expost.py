"""Samplers fitted after training (vimae.models.expost, vimae.models.fitted, `vimae sample
--sampler`, `vimae evaluate --sampler`): a mixture recovered from codes of a known one, stored and
read back exactly, refused when damaged, refitted when the weights change."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import DIGITS_MLP

import vimae
from vimae.cli import main
from vimae.errors import VimaeError
from vimae.models.expost import GaussianMixtureSampler, fit_gaussian_mixture, free_parameters
from vimae.models.fitted import build_sampler, parse_sampler
from vimae.models.sampler import PriorSampler
from vimae.runs.loading import load_model


def _two_clusters(n: int = 3000, seed: int = 0) -> np.ndarray:
    """Codes of a known mixture in d = 2: weight 0.3 at (-4, 0) with sd 0.5, 0.7 at (3, 2) with
    a correlated covariance."""
    rng = np.random.default_rng(seed)
    first = rng.normal([-4.0, 0.0], 0.5, size=(int(0.3 * n), 2))
    cov = np.array([[1.0, 0.6], [0.6, 0.8]])
    second = rng.multivariate_normal([3.0, 2.0], cov, size=n - len(first))
    return np.concatenate([first, second])


def test_the_mixture_of_known_codes_is_recovered_and_its_draws_follow_it():
    sampler = fit_gaussian_mixture(_two_clusters(), seed=0)
    assert sampler.components == 2 and sampler.fitted["chosen_by"] == "lowest BIC"
    order = torch.argsort(sampler.means[:, 0])
    torch.testing.assert_close(
        sampler.weights[order], torch.tensor([0.3, 0.7]).double(), atol=0.02, rtol=0
    )
    torch.testing.assert_close(
        sampler.means[order], torch.tensor([[-4.0, 0.0], [3.0, 2.0]]).double(), atol=0.1, rtol=0
    )
    # draws of the fitted mixture: the second component's covariance comes back
    z = sampler.sample_codes(20_000, torch.Generator().manual_seed(1)).double()
    second = z[z[:, 0] > 0]
    assert abs(len(second) / len(z) - 0.7) < 0.02
    torch.testing.assert_close(
        torch.cov(second.T), torch.tensor([[1.0, 0.6], [0.6, 0.8]]).double(), atol=0.08, rtol=0
    )
    # seeded: the same generator seed gives the same codes
    a = sampler.sample_codes(5, torch.Generator().manual_seed(3))
    assert torch.equal(a, sampler.sample_codes(5, torch.Generator().manual_seed(3)))


def test_few_codes_get_a_mixture_they_can_support_and_k_can_be_given():
    codes = _two_clusters(n=60)
    sampler = fit_gaussian_mixture(codes)
    tried = [int(k) for k in sampler.fitted["bic"]]
    assert all(2 * free_parameters(k, 2) <= 60 for k in tried) and 20 not in tried
    assert fit_gaussian_mixture(codes, components=3).components == 3
    with pytest.raises(VimaeError, match="cannot be fitted to 60 codes"):
        fit_gaussian_mixture(codes, components=31)
    with pytest.raises(VimaeError, match="finite codes"):
        fit_gaussian_mixture(np.full((10, 2), np.nan))


def test_a_stored_mixture_reads_back_exactly_and_a_damaged_one_is_one_sentence(tmp_path):
    sampler = fit_gaussian_mixture(_two_clusters(), seed=0)
    path = tmp_path / "gmm.safetensors"
    sampler.save(path)
    again = GaussianMixtureSampler.load(path, latent_dim=2)
    for name in ("weights", "means", "cholesky"):
        assert torch.equal(getattr(again, name), getattr(sampler, name))
    assert again.fitted == sampler.fitted
    with pytest.raises(VimaeError, match="codes have 2 dimensions, the model's 8"):
        GaussianMixtureSampler.load(path, latent_dim=8)
    path.write_bytes(path.read_bytes()[:-40])  # truncated
    with pytest.raises(VimaeError, match="not a readable sampler file"):
        GaussianMixtureSampler.load(path, latent_dim=2)
    bad = GaussianMixtureSampler(
        sampler.weights, sampler.means, sampler.cholesky.transpose(1, 2), sampler.fitted
    )
    bad.save(path)
    with pytest.raises(VimaeError, match="not lower-triangular"):
        GaussianMixtureSampler.load(path, latent_dim=2)


def test_sampler_names_are_checked():
    assert parse_sampler("prior") == ("prior", None)
    assert parse_sampler("gmm") == ("gmm", None) and parse_sampler("gmm:7") == ("gmm", 7)
    assert parse_sampler("flow") == ("flow", None)
    for spec in ("maf", "gmm:0", "gmm:x", "prior:3", "flow:2"):
        with pytest.raises(VimaeError, match="sampler"):
            parse_sampler(spec)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("expost") / "run"
    assert (
        main(["train", *DIGITS_MLP, "--epochs", "1", "--latent-dim", "2", "--out", str(folder)])
        == 0
    )
    return folder


def test_a_run_fits_its_mixture_once_and_again_after_its_weights_change(run, tmp_path):
    model = load_model(run)
    calls = []

    def images() -> torch.Tensor:
        calls.append(1)
        return torch.rand(400, *model.image_shape)

    folder = tmp_path / "samplers"
    first = build_sampler("gmm:3", model, images, folder)
    assert calls == [1] and (folder / "gmm-3-seed0.safetensors").is_file()
    second = build_sampler("gmm:3", model, images, folder)
    assert calls == [1] and torch.equal(first.means, second.means)  # read back, not refitted
    with torch.no_grad():
        next(model.parameters()).add_(0.1)  # more training: other weights, other codes
    build_sampler("gmm:3", model, images, folder)
    assert calls == [1, 1]
    assert isinstance(build_sampler("prior", model, images), PriorSampler) and calls == [1, 1]


def test_sample_and_evaluate_from_a_fitted_mixture(run, tmp_path):
    out = tmp_path / "samples"
    assert main(["sample", str(run), "-n", "12", "--sampler", "gmm:2", "--out", str(out)]) == 0
    record = json.loads((out / "samples.json").read_text())
    assert record["codes_from"].startswith("a 2-component Gaussian mixture (given)")
    stored = GaussianMixtureSampler.load(run / "samplers" / "gmm-2-seed0.safetensors", 2)
    expected = load_model(run).sample(12, seed=0, sampler=stored)
    np.testing.assert_allclose(np.load(out / "samples.npy"), expected.numpy(), atol=1e-6)
    # the mixture's draws are not the prior's
    prior = load_model(run).sample(12, seed=0)
    assert not np.allclose(np.load(out / "samples.npy"), prior.numpy())
    report = tmp_path / "metrics.json"
    assert main(["evaluate", str(run), "--metrics", "parzen", "--sampler", "gmm:2",
                 "--test-size", "200", "--parzen-samples", "300", "--parzen-valid", "100",
                 "--out", str(report)]) == 0  # fmt: skip
    result = json.loads(report.read_text())
    assert result["generated_from"].startswith("a 2-component Gaussian mixture")
    assert result["metrics"]["parzen"]["status"] == "ok"
    assert main(["sample", str(run), "--sampler", "gmm:0"]) != 0  # one sentence, no traceback


def test_fit_sampler_from_python(run):
    model = vimae.load(run)
    images = torch.rand(300, *model.image_shape)
    sampler = vimae.fit_sampler(model, images, "gmm")
    assert isinstance(sampler, GaussianMixtureSampler)
    assert model.sample(6, seed=0, sampler=sampler).shape == (6, *model.image_shape)
    from vimae.models.codeflow import FlowSampler

    flow = vimae.fit_sampler(model, images, "flow")
    assert isinstance(flow, FlowSampler) and flow.fitted["codes"] == 300
    assert torch.isfinite(model.sample(6, seed=0, sampler=flow)).all()


def test_a_flow_learns_a_curved_density_and_reads_back_exactly(tmp_path):
    """Codes on a noisy ring: a Gaussian fits it badly, the flow well (its held-out likelihood is
    far higher and its draws lie on the ring); stored and read back, it draws the same codes."""
    from vimae.models.codeflow import FlowSampler, fit_flow

    rng = np.random.default_rng(0)
    angle = rng.uniform(0, 2 * np.pi, 4000)
    ring = np.stack([np.cos(angle), np.sin(angle)], 1) * 3 + 0.1 * rng.normal(size=(4000, 2))
    flow = fit_flow(ring[:3000], seed=0, steps=1500)
    held_out = torch.as_tensor(ring[3000:], dtype=torch.float32)
    flow_nll = -flow.flow.log_prob(held_out).mean().item()
    gaussian = fit_gaussian_mixture(ring[:3000], components=1)
    cov = gaussian.cholesky[0] @ gaussian.cholesky[0].T
    normal = torch.distributions.MultivariateNormal(gaussian.means[0], cov)
    gaussian_nll = -normal.log_prob(held_out.double()).mean().item()
    assert flow_nll < gaussian_nll - 0.5
    radius = flow.sample_codes(2000, torch.Generator().manual_seed(0)).norm(dim=1)
    assert abs(radius.median().item() - 3) < 0.3 and (radius < 1.5).float().mean() < 0.05
    path = tmp_path / "flow.safetensors"
    flow.save(path)
    again = FlowSampler.load(path, latent_dim=2)
    a = flow.sample_codes(7, torch.Generator().manual_seed(5))
    assert torch.equal(a, again.sample_codes(7, torch.Generator().manual_seed(5)))
    with pytest.raises(VimaeError, match="2-dimensional codes, the model's are 8"):
        FlowSampler.load(path, latent_dim=8)
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(VimaeError, match="not a readable sampler file"):
        FlowSampler.load(path, latent_dim=2)
