"""Conformance suite run over every registered model (STYLE: one suite, not a file per model)."""

import math

import pytest
import torch

from vimae.config import ModelConfig
from vimae.errors import VimaeError
from vimae.models import PRESETS, Objective, build_model, resolve
from vimae.runs.checkpoint import load_weights

EXTRA = {"rate-target": {"rate_target": 5.0}}
TERMS = {"deterministic": {"recon", "mmd", "loss"}, "gaussian": {"recon", "kl", "mmd", "loss"}}


def make(name: str, arch: str = "mlp", image_shape=(1, 8, 8), seed: int = 0, **kw):
    config = ModelConfig(
        name=name, arch=arch, **{"latent_dim": 4, "width": 0.25, **EXTRA.get(name, {}), **kw}
    )
    torch.manual_seed(seed)
    return build_model(resolve(config, "digits", image_shape))


@pytest.fixture
def batch(digits_train):
    return digits_train.images[:64]


@pytest.mark.parametrize("name", PRESETS.names())
class TestEveryModel:
    def test_draw_codes_are_seeded_draws_of_the_posterior(self, name, batch):
        model = make(name).eval()
        with torch.no_grad():
            z = model.draw_codes(batch, torch.Generator().manual_seed(1))
            again = model.draw_codes(batch, torch.Generator().manual_seed(1))
            mu, logvar = model.posterior(batch, n_copies=8)
        assert z.shape == (64, 4) and torch.equal(z, again)
        if not model.codes_are_random:  # VIMAE: the deterministic code, no input noise
            assert torch.equal(z, model.encode(batch))
            return
        standard = (z - mu) / (0.5 * logvar).exp()  # N(0, 1) if z ~ N(mu, sigma^2)
        assert abs(standard.mean().item()) < 0.15
        assert standard.std().item() == pytest.approx(1.0, abs=0.15)

    def test_shapes_and_named_finite_terms(self, name, batch):
        model = make(name)
        terms = model(batch)
        expected = TERMS[PRESETS[name].encoder] | ({"rate_gap"} if name == "rate-target" else set())
        assert set(terms) == expected
        assert all(v.dim() == 0 and torch.isfinite(v) for v in terms.values())
        assert model.encode(batch).shape == (64, 4)
        assert model.reconstruct(batch).shape == batch.shape
        assert model.sample(7).shape == (7, 1, 8, 8)
        mu, logvar = model.posterior(batch[:5], n_copies=8)
        assert mu.shape == logvar.shape == (5, 4) and torch.isfinite(logvar).all()

    def test_gradients_reach_every_parameter(self, name, batch):
        model = make(name)
        model(batch)["loss"].backward()
        for pname, p in model.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, pname

    def test_a_step_changes_weights_and_eval_changes_none(self, name, batch):
        model = make(name)
        model.eval()
        before = {k: v.clone() for k, v in model.state_dict().items()}
        with torch.no_grad():
            model(batch)
            model.encode(batch)
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
        model.train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        model(batch)["loss"].backward()
        optimizer.step()
        changed = [k for k, v in model.named_parameters() if not torch.equal(before[k], v)]
        assert len(changed) == len(list(model.parameters()))

    def test_save_load_round_trip_and_same_seed_same_output(self, name, batch):
        a, b = make(name, seed=3), make(name, seed=3)
        c = make(name, seed=4)
        a.eval(), b.eval(), c.eval()
        assert torch.equal(a.encode(batch), b.encode(batch))
        assert not torch.equal(a.encode(batch), c.encode(batch))
        load_weights(c, {f"model.{k}": v for k, v in a.state_dict().items()}, "memory")
        assert torch.equal(a.reconstruct(batch), c.reconstruct(batch))

    def test_a_few_steps_lower_the_loss(self, name, batch):
        model = make(name)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))

        def loss_on_batch() -> float:
            torch.manual_seed(123)  # same noise / reparameterisation draws before and after
            with torch.no_grad():
                return model(batch)["loss"].item()

        start = loss_on_batch()
        for _ in range(40):
            optimizer.zero_grad()
            model(batch)["loss"].backward()
            optimizer.step()
        assert loss_on_batch() < 0.8 * start


@pytest.mark.parametrize("name", ["vimae-n", "vae"])
def test_convolutional_models_train_on_28x28(name, digits28):
    """A few Adam steps on one batch of 28x28 digits lower its loss (a step that did nothing, or
    a gradient that does not reach the weights, would not)."""
    model = make(name, arch="dcgan28", image_shape=(1, 28, 28), width=0.125, encoder_noise=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = digits28.images[:32]
    losses = []
    for _ in range(8):
        torch.manual_seed(0)  # the same noise and prior draws every step: only weights move
        terms = model(x)
        optimizer.zero_grad()
        terms["loss"].backward()
        optimizer.step()
        losses.append(terms["loss"].item())
    assert all(math.isfinite(v) for v in losses) and losses[-1] < 0.9 * losses[0], losses


def test_presets_carry_the_papers_weights():
    def weights(name, dataset="mnist", **kw):
        config = resolve(
            ModelConfig(name=name, **{**EXTRA.get(name, {}), **kw}), dataset, (1, 28, 28)
        )
        return PRESETS[name].weights(config), config

    assert weights("vimae-n")[0] == Objective(mmd=10.0)
    assert weights("vimae-l", "cifar10")[0] == Objective(mmd=100.0)
    assert weights("vimae-l")[1].prior == "logistic"
    assert weights("vae")[0] == Objective(kl=1.0)
    assert weights("beta-vae-h")[0] == Objective(kl=10.0)
    assert weights("beta-vae-h", "celeba")[0] == Objective(kl=100.0)
    assert weights("beta-vae-a")[0] == Objective(kl=0.2)
    assert weights("beta-vae-a", "cifar10")[0] == Objective(kl=0.4)
    assert weights("rate-target", beta=2.0)[0] == Objective(rate=2.0, rate_target=5.0)
    assert weights("infovae", alpha=0.5, lam=4.0)[0] == Objective(kl=0.5, mmd=3.5)


@pytest.mark.parametrize("name", ["vimae-n", "beta-vae-h"])
def test_recon_weight_scales_only_the_squared_error(name, batch):
    terms = {}
    for weight in (1.0, 0.05):
        model = make(name, encoder_noise=0.0, recon_weight=weight).eval()
        torch.manual_seed(0)
        terms[weight] = model(batch)
    one, scaled = terms[1.0], terms[0.05]
    assert torch.equal(one["recon"], scaled["recon"])  # logged unweighted
    rest = one["loss"] - one["recon"]
    assert torch.allclose(scaled["loss"], 0.05 * one["recon"] + rest, rtol=1e-5)


def test_rate_target_without_r0_is_a_clear_error():
    with pytest.raises(VimaeError, match="--rate-target"):
        resolve(ModelConfig(name="rate-target"), "mnist", (1, 28, 28))


def test_vimae_noise_is_a_truncated_normal_and_only_in_training(batch):
    from scipy.stats import truncnorm

    model = make("vimae-n", encoder_noise=0.01, encoder_noise_bound=0.01)
    torch.manual_seed(0)
    eps = (model.noisy(batch.repeat(40, 1, 1, 1)) - batch.repeat(40, 1, 1, 1)).double()
    assert eps.abs().max() <= 0.01 + 1e-7
    # Redrawn, not clamped: no mass piles up at the bound (clamping puts 32% there); the outer 1%
    # of the range holds what the truncated density gives it, 0.71%.
    assert (eps.abs() > 0.0099).double().mean() < 0.012
    # The standard deviation of N(0, 0.01^2) truncated to [-0.01, 0.01]: 0.00538.
    exact = truncnorm(-1.0, 1.0, scale=0.01).std()
    assert eps.std().item() == pytest.approx(exact, rel=0.02)
    wide = make("vimae-n", encoder_noise=0.01, encoder_noise_bound=1.0)
    assert (wide.noisy(batch) - batch).std().item() == pytest.approx(0.01, rel=0.05)
    model.eval()
    torch.manual_seed(0)
    z1, _ = model.encoder_terms(batch)
    assert torch.equal(z1, model.encode(batch))


def test_vae_kl_term_is_the_closed_form_mean(batch):
    from vimae.models.divergence import gaussian_kl_normal

    model = make("vae")
    mu, logvar = model.posterior(batch)
    assert torch.allclose(model(batch)["kl"], gaussian_kl_normal(mu, logvar).mean())


def test_vae_with_a_non_normal_prior_uses_a_monte_carlo_kl(batch):
    model = make("vae", prior="logistic")
    torch.manual_seed(0)
    terms = model(batch)
    terms["loss"].backward()
    assert torch.isfinite(terms["kl"]) and terms["kl"] > 0
    assert all(p.grad is not None for p in model.encoder.parameters())


def test_bernoulli_nll_is_the_binary_cross_entropy():
    from vimae.models import bernoulli_nll

    x = torch.tensor([1.0, 0.0, 0.25, 0.5]).reshape(1, 1, 2, 2)
    p = torch.tensor([0.5, 0.5, 0.25, 0.9]).reshape(1, 1, 2, 2)
    # -x log p - (1 - x) log(1 - p), pixel by pixel
    expected = math.log(2) + math.log(2) - (0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    expected -= 0.5 * math.log(0.9) + 0.5 * math.log(0.1)
    assert bernoulli_nll(x, p).item() == pytest.approx(expected, rel=1e-6)
    # a saturated decoder is finite (the logarithms are bounded below by -100)
    assert bernoulli_nll(torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)).item() == 400.0


@pytest.mark.parametrize("weight", [1.0, 5.0])
def test_a_bernoulli_decoder_weighs_the_cross_entropy_and_still_logs_the_squared_error(
    weight, batch
):
    from vimae.models import bernoulli_nll, reconstruction_error

    model = make("vimae-n", encoder_noise=0.0, likelihood="bernoulli", recon_weight=weight).eval()
    torch.manual_seed(0)
    terms = model(batch)
    x_hat = model.reconstruct(batch)
    assert terms["recon"].item() == pytest.approx(
        reconstruction_error(batch, x_hat).mean().item(), rel=1e-5
    )
    assert terms["bce"].item() == pytest.approx(bernoulli_nll(batch, x_hat).mean().item(), rel=1e-5)
    expected = weight * terms["bce"] + model.objective.mmd * terms["mmd"]
    assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_the_squared_error_weight_is_a_gaussian_decoder_of_variance_one_over_2w(batch):
    """w * sum (x - x_hat)^2 is -log N(x; x_hat, 1 / (2w)) up to a constant in x_hat."""
    weight = 5.0
    model = make("vimae-n", encoder_noise=0.0, recon_weight=weight).eval()
    torch.manual_seed(0)
    terms = model(batch)
    x_hat = model.reconstruct(batch)
    gaussian = torch.distributions.Normal(x_hat, math.sqrt(1 / (2 * weight)))
    nll = -gaussian.log_prob(batch).flatten(1).sum(1).mean()
    constant = 0.5 * batch[0].numel() * math.log(2 * math.pi / (2 * weight))
    fit = terms["loss"] - model.objective.mmd * terms["mmd"]
    assert fit.item() == pytest.approx((nll - constant).item(), rel=1e-5)
