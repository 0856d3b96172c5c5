"""A step whose loss jumps by orders of magnitude: said once, because Adam remembers it.

Adam divides each weight's step by the root of a running mean of its squared gradients, which
forgets at a rate of 1 - beta2 (0.001 a step by default). One gradient 10^6 times the ordinary
ones puts 10^12 times their square into that mean, and the weights it reached then move by a
millionth of their usual step until it has decayed: tens of thousands of steps. The loss itself
recovers at once, so nothing else in a run's log shows it. Measured on table 3's beta_A-VAE at
the paper's width (dcgan28 width 1, `benchmarks/layer_movement.py`): the third step's loss
reaches 1e10-1e15 (logvar near 28 after two Adam steps of the learning rate on 4,096 features,
from PyTorch's or the WAE code's initial weights alike), and from then on the encoder's first
three convolutions and the batch norms after them stay within 1e-5 of their weights (relative)
while the decoder trains. Whether it comes depends on the seed: from the WAE code's weights the
VAE and beta_A-VAE spiked in the same 5 of 10 seeds (`benchmarks/first_steps.py`). At the cpu
scale's width 1/8 nothing of the kind happens.
"""

SPIKE_FACTOR = 1e3  # a loss this many times the step before's is a spike, not noise


class SpikeWatch:
    """Compares each step's loss with the previous one's. Every spike is logged (`jumped`); the
    first of the run is also said (`note`), unless `--clip-norm` is set: then the gradient of such
    a step is capped already, and the row in metrics.jsonl is what shows that it came."""

    def __init__(self, clip_norm: float | None, beta2: float) -> None:
        self.clip_norm, self.beta2 = clip_norm, beta2
        self.previous: float | None = None
        self.noted = False

    def jumped(self, loss: float) -> float | None:
        """The step before's loss when `loss` is over SPIKE_FACTOR times it, else None."""
        previous, self.previous = self.previous, loss
        if previous is None or previous <= 0 or not loss > SPIKE_FACTOR * previous:
            return None
        return previous

    def note(self, loss: float, previous: float, step: int) -> str | None:
        """The sentence that says what a spike does and what to change, for the run's first
        spike and only without a clip."""
        if self.noted or self.clip_norm is not None:
            return None
        self.noted = True
        return (
            f"step {step}'s loss ({loss:.3g}) was {loss / previous:.2g} times the step "
            f"before's: Adam keeps that gradient's square in its second-moment estimate "
            f"(beta2 = {self.beta2:g}), so the weights it reached barely move for thousands of "
            "steps (at dcgan28 width 1 a Gaussian encoder's convolutions stay where they were, "
            "docs/choices.md); to train them, run again with --clip-norm at about ten times an "
            "ordinary step's gradient norm (the grad_norm of the step rows in metrics.jsonl)"
        )
