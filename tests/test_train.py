"""Training: logs, checkpoints, exact resume, refusals, divergence."""

import json
import re
import warnings

import pytest
import torch

from vimae.config import DataConfig, ModelConfig, RunConfig, TrainConfig, load_config
from vimae.data import ImageData
from vimae.errors import VimaeError
from vimae.models import build_model, resolve
from vimae.runs import precision as precision_check
from vimae.runs.checkpoint import CHECKPOINT_FILE, read_checkpoint
from vimae.runs.fit import METRICS_FILE, build_optimizer, compute_gradients, fit
from vimae.runs.loading import load_model


def small_config(epochs: int = 2, **train) -> RunConfig:
    return RunConfig(
        model=ModelConfig(name="vimae-l", arch="mlp", latent_dim=2, width=0.25),
        data=DataConfig(dataset="digits", train_size=600),
        train=TrainConfig(epochs=epochs, progress=False, log_every=1, **train),
    )


def weights(run_dir) -> dict[str, torch.Tensor]:
    tensors, _ = read_checkpoint(run_dir / CHECKPOINT_FILE)
    return {k: v for k, v in tensors.items() if k.startswith(("model.", "optim."))}


@pytest.mark.filterwarnings("ignore::vimae.errors.VimaeNote")  # 12 steps learn nothing yet
def test_run_folder_holds_config_metrics_and_checkpoint(tmp_path, digits_train):
    fit(small_config(), tmp_path, data=digits_train.subset(600))
    config = load_config(tmp_path)
    assert config.model.lam == 10.0 and config.model.prior == "logistic"  # resolved defaults
    assert config.model.image_shape == (1, 8, 8)
    lines = [json.loads(s) for s in (tmp_path / METRICS_FILE).read_text().splitlines()]
    steps = [r for r in lines if r["kind"] == "step"]
    epochs = [r for r in lines if r["kind"] == "epoch"]
    assert [r["step"] for r in steps] == list(range(1, 13))  # 600 / 100 = 6 steps x 2 epochs
    assert len(epochs) == 2
    assert all({"loss", "recon", "mmd"} <= set(r) for r in steps + epochs)
    (check,) = [r for r in lines if r["kind"] == "check"]  # the end-of-run check, last
    assert lines[-1] == check and check["step"] == 12 and check["reconstruction_mean_image"] > 0
    model = load_model(tmp_path)
    assert model.encode(digits_train.images[:3]).shape == (3, 2)


def test_resumed_run_equals_uninterrupted_run_bit_for_bit(tmp_path, digits_train):
    data = digits_train.subset(600)
    fit(small_config(epochs=3), tmp_path / "straight", data=data)

    # The same run crashes in its 11th optimizer step (mid-epoch 2); its last checkpoint is the
    # mid-epoch one after step 8; resuming must replay steps 9.. exactly.
    interrupted = small_config(epochs=3, checkpoint_every=4)
    calls = {"n": 0}
    real_step = torch.optim.Adam.step

    def crash_after_10_steps(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 10:
            raise KeyboardInterrupt
        return real_step(self, *args, **kwargs)

    torch.optim.Adam.step = crash_after_10_steps
    try:
        with pytest.raises(KeyboardInterrupt):
            fit(interrupted, tmp_path / "resumed", data=data)
    finally:
        torch.optim.Adam.step = real_step
    progress = json.loads(read_checkpoint(tmp_path / "resumed" / CHECKPOINT_FILE)[1]["progress"])
    assert progress["step"] == 8 and progress["batch"] == 2  # mid-epoch checkpoint at step 8
    fit(interrupted, tmp_path / "resumed", resume=True, data=data)

    a, b = weights(tmp_path / "straight"), weights(tmp_path / "resumed")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    log = lambda d: [json.loads(s) for s in (d / METRICS_FILE).read_text().splitlines()]  # noqa: E731
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(log(tmp_path / "straight")) == strip(log(tmp_path / "resumed"))


def test_same_folder_refuses_a_different_run(tmp_path, digits_train):
    data = digits_train.subset(600)
    fit(small_config(epochs=1), tmp_path, data=data)
    with pytest.raises(VimaeError, match="already holds this run; pass --resume"):
        fit(small_config(epochs=1), tmp_path, data=data)
    other = small_config(epochs=1)
    other.model.lam = 3.0
    with pytest.raises(VimaeError, match="already holds a different run"):
        fit(other, tmp_path, data=data)


def test_a_resume_on_other_data_is_refused_before_any_step(tmp_path, digits_train):
    data = digits_train.subset(600)
    fit(small_config(epochs=1), tmp_path, data=data)
    before = weights(tmp_path)
    poisoned = data.images.clone()
    poisoned[poisoned.shape[0] // 2 :] = float("nan")
    with pytest.raises(VimaeError, match=r"was trained on other data .* digest"):
        fit(small_config(epochs=2), tmp_path, resume=True, data=ImageData("digits", poisoned))
    after = weights(tmp_path)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_diverging_run_stops_and_the_advice_it_gives_resumes_it(tmp_path, digits_train):
    """A huge learning rate diverges; the message names the step, the terms and a command that
    `--resume` accepts (a lower lr), which, followed, trains the run to the end."""
    data = digits_train.subset(600)
    config = small_config(epochs=1, lr=10.0)
    config.model.name = "vae"  # its KL term overflows at once; VIMAE's bounded MMD does not
    with pytest.raises(VimaeError, match=r"diverged at step \d+ \(.*=(nan|inf)") as caught:
        fit(config, tmp_path, data=data)
    for _ in range(4):  # each refusal advises a tenth of the rate
        advice = re.search(r"`vimae train --resume --out (\S+) --lr (\S+)`", str(caught.value))
        assert advice and advice.group(1) == str(tmp_path)
        config.train.lr = float(advice.group(2))
        try:
            fit(config, tmp_path, resume=True, data=data)
            break
        except VimaeError as err:
            caught = pytest.ExceptionInfo.from_exc_info((type(err), err, err.__traceback__))
    else:
        pytest.fail("following the advice never trained the run")
    trained = {k: v for k, v in weights(tmp_path).items() if k.startswith("model.")}
    assert all(torch.isfinite(v).all() for v in trained.values())
    rows = [json.loads(s) for s in (tmp_path / METRICS_FILE).read_text().splitlines()]
    assert any(r["kind"] == "lr" and r["lr"] == config.train.lr for r in rows)
    assert load_config(tmp_path).train.lr == config.train.lr


def test_a_finished_run_resumes_with_more_epochs(tmp_path, digits_train):
    data = digits_train.subset(600)
    fit(small_config(epochs=3), tmp_path / "straight", data=data)
    fit(small_config(epochs=1), tmp_path / "longer", data=data)
    fit(small_config(epochs=3), tmp_path / "longer", resume=True, data=data)
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "longer")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bf16_autocast_runs_the_networks_in_bfloat16_and_the_loss_in_float32(digits_train):
    """train.precision = "bf16": the networks' matrix products in bfloat16, loss terms, weights
    and Adam in float32; on real digits the loss after 20 steps stays within 2% of float32's."""
    x = digits_train.images[:100]
    losses = {}
    for precision in ("float32", "bf16"):
        torch.manual_seed(0)
        config = ModelConfig(name="vimae-n", arch="mlp", latent_dim=2, width=0.25)
        model = build_model(resolve(config, "digits", (1, 8, 8)))
        optimizer = build_optimizer(model, TrainConfig())
        seen: list[torch.dtype] = []
        model.decoder.register_forward_hook(lambda _m, _i, out, seen=seen: seen.append(out.dtype))
        for _ in range(20):
            terms = compute_gradients(model, optimizer, x, precision)
            optimizer.step()
        assert set(seen) == {torch.bfloat16 if precision == "bf16" else torch.float32}
        assert all(t.dtype == torch.float32 for t in terms.values())
        assert all(p.dtype == torch.float32 for p in model.parameters())
        losses[precision] = terms["loss"].item()
    assert losses["bf16"] == pytest.approx(losses["float32"], rel=0.02)
    assert losses["bf16"] != losses["float32"]  # bfloat16 did run


@pytest.mark.parametrize(("rates", "noted"), [((100.0, 10.0), True), ((50.0, 200.0), False)])
def test_bf16_says_once_when_it_is_slower_here(monkeypatch, tmp_path, digits_train, rates, noted):
    """The note follows the measured matrix-product rates (float32, bf16), not the CPU's name."""
    monkeypatch.setattr(precision_check, "cpu_matmul_rates", lambda: rates)
    config = small_config(epochs=1, precision="bf16")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(config, tmp_path / "run", data=digits_train.subset(200))
    notes = [str(w.message) for w in caught if "bf16 is slower" in str(w.message)]
    assert notes == (["--precision bf16 is slower on this CPU: a matrix product runs at 10 "
                      "GFLOP/s in bfloat16 against 100 in float32 (no bfloat16 units), so "
                      "training will be slower and less precise; --precision float32 is faster "
                      "here"] if noted else [])  # fmt: skip


def test_the_matmul_rates_are_measured_and_positive():
    fp32, bf16 = precision_check.cpu_matmul_rates()
    assert fp32 > 0 and bf16 > 0
