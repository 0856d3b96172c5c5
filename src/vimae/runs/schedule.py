"""The learning rate as a pure function of the step (as nanoGPT's `get_lr(it)`).

Nothing about the schedule is stored: the rate of step s is `learning_rate(s, total, lr, name)`,
so a resumed run recomputes exactly the rates an uninterrupted one used, and a resume that lowers
`--lr` (the advice after a divergence) scales the rest of the schedule.

- constant: lr at every step (the paper's appendix: Adam at 1e-3).
- cosine: lr * (1 + cos(pi * s / total)) / 2, from lr at the first step to 0 after the last.
- step: the WAE code's "manual" schedule, which the paper builds on, made proportional: it halves
  the rate at epoch 30 and divides it by 5 more at epoch 50 of the 80 epochs, so here lr until
  3/8 of the steps, lr / 2 until 5/8, lr / 10 after.
"""

import math

from vimae.config import SCHEDULES

STEP_DECAY = ((3 / 8, 0.5), (5 / 8, 0.1))  # (fraction of the steps, factor from then on)


def learning_rate(step: int, total: int, lr: float, schedule: str = "constant") -> float:
    """The learning rate of optimiser step `step` (0-based) of `total` under `schedule`."""
    if schedule == "constant":
        return lr
    progress = min(step / max(total, 1), 1.0)
    if schedule == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "step":
        factor = 1.0
        for fraction, decayed in STEP_DECAY:
            if progress >= fraction:
                factor = decayed
        return lr * factor
    raise ValueError(f"unknown schedule {schedule!r}; one of {SCHEDULES}")
