"""Pictures as PNG files: a function of arrays in, a file out (no model, no training)."""

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


@dataclass
class CodePanel:
    """One panel of figure 1: 2-d codes (N, 2), their labels (N,), a title."""

    title: str
    codes: np.ndarray
    labels: np.ndarray


def plot_codes(panels: list[CodePanel], path: Path, prior_std: float = 1.0) -> Path:
    """Figure 1: scatter of 2-d codes per model coloured by label, with the prior's 1 and 2 std
    circles dashed, on a shared square window so that spreads compare across panels."""
    reach = max(4.0 * prior_std, *(float(np.quantile(np.abs(p.codes), 0.99)) for p in panels))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4), squeeze=False)
    theta = np.linspace(0, 2 * np.pi, 200)
    for ax, panel in zip(axes[0], panels, strict=True):
        ax.scatter(
            panel.codes[:, 0],
            panel.codes[:, 1],
            c=panel.labels,
            cmap="tab10",
            s=3,
            vmin=0,
            vmax=9,
            rasterized=True,
        )
        for r in (1.0, 2.0):
            ax.plot(r * prior_std * np.cos(theta), r * prior_std * np.sin(theta), "k--", lw=0.7)
        ax.set_xlim(-reach, reach)
        ax.set_ylim(-reach, reach)
        ax.set_aspect("equal")
        ax.set_title(panel.title, fontsize=9)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
