"""A step whose loss jumps by orders of magnitude is logged and said once (vimae.runs.spike)."""

import json
import warnings

from vimae.api import fit
from vimae.errors import VimaeNote
from vimae.runs.spike import SPIKE_FACTOR, SpikeWatch


def _said(watch: SpikeWatch, loss: float, step: int) -> str | None:
    previous = watch.jumped(loss)
    return None if previous is None else watch.note(loss, previous, step)


def test_ordinary_steps_say_nothing_and_the_first_spike_is_said_once():
    watch = SpikeWatch(clip_norm=None, beta2=0.999)
    assert watch.jumped(3000.0) is None  # no step before it
    assert watch.jumped(9000.0) is None  # 3 times: noise of early training
    assert watch.jumped(8.9 * SPIKE_FACTOR * 1000.0) is None  # just under the factor
    assert watch.jumped(1.0) is None
    note = _said(watch, 2.5e9, 5)
    assert note is not None and "step 5's loss (2.5e+09)" in note and "--clip-norm" in note
    assert "beta2 = 0.999" in note
    assert watch.jumped(1.0) is None
    assert watch.jumped(1e12) == 1.0 and watch.note(1e12, 1.0, 7) is None  # said once a run


def test_with_a_clip_norm_the_spike_is_found_but_nothing_is_said():
    watch = SpikeWatch(clip_norm=1e5, beta2=0.999)
    watch.jumped(1.0)
    assert watch.jumped(1e9) == 1.0  # still a spike, for the metrics row
    assert watch.note(1e9, 1.0, 2) is None


def _spiking_run(out, **settings) -> list[str]:
    """The mlp VAE on the 8x8 digits at lr 0.03, 4 steps: two Adam steps push logvar so high that
    step 2's KL is about 1e9 while the loss stays finite (measured: 9.5e7 times step 1's). Returns
    the notes it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit("vae", data="digits", arch="mlp", lr=0.03, steps=4, out=out, progress=False, **settings)
    return [str(w.message) for w in caught if issubclass(w.category, VimaeNote)]


def test_a_training_run_whose_kl_explodes_logs_the_spike_and_warns(tmp_path):
    out = tmp_path / "run"
    notes = _spiking_run(out)
    spikes = [n for n in notes if "times the step before's" in n]
    assert len(spikes) == 1 and spikes[0].startswith("step 2's loss")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    (row,) = [r for r in rows if r["kind"] == "spike"]
    assert row["step"] == 2 and row["loss"] > SPIKE_FACTOR * row["previous_loss"] > 0


def _rows(run_dir, kind):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def test_step_rows_carry_the_gradient_norm_before_clipping(tmp_path):
    """`--clip-norm` is set from a run's ordinary gradient norms: each step row has the global norm
    before any clipping, so the first step's (same weights, same batch) is the same clipped or not,
    and a spike's row has its own, larger than the ordinary steps'."""
    settings = dict(data="digits", arch="mlp", steps=3, log_every=1, progress=False)
    fit("vae", out=tmp_path / "free", **settings)
    fit("vae", out=tmp_path / "clipped", clip_norm=1e-3, **settings)
    free, clipped = _rows(tmp_path / "free", "step"), _rows(tmp_path / "clipped", "step")
    assert [r["step"] for r in free] == [1, 2, 3]
    assert all(r["grad_norm"] > 0 for r in free + clipped)
    assert clipped[0]["grad_norm"] == free[0]["grad_norm"] > 1e-3  # measured before the cap
    assert clipped[1]["grad_norm"] != free[1]["grad_norm"]  # the capped first step moved less

    _spiking_run(tmp_path / "spiked", log_every=1)
    (spike,) = _rows(tmp_path / "spiked", "spike")
    ordinary = _rows(tmp_path / "spiked", "step")[0]
    assert spike["grad_norm"] > 1e3 * ordinary["grad_norm"]


def test_a_clipped_run_logs_its_spike_without_a_note(tmp_path):
    """With --clip-norm the spike is not said, but its row (with the norm before the cap) is
    written, so that a user sees that the clip had something to cap."""
    out = tmp_path / "run"
    notes = _spiking_run(out, clip_norm=1e9)  # a cap too high to act: the unclipped run's steps
    assert not [n for n in notes if "times the step before's" in n]
    (spike,) = _rows(out, "spike")
    assert spike["step"] == 2 and spike["grad_norm"] > 0
