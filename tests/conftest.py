"""Shared fixtures: small real data (scikit-learn digits) and where ../shared/datasets lives."""

from pathlib import Path

import pytest
import torch

from vimae.cli import main
from vimae.data import ImageData, load_dataset

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"

# `vimae train` flags of a tiny real run (a quarter-width mlp on scikit-learn's digits).
DIGITS_MLP = ["--dataset", "digits", "--arch", "mlp", "--width", "0.25", "--no-progress"]


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """No test reaches the internet: downloads are tested against a local server, whose tests
    lift this explicitly."""
    monkeypatch.setenv("VIMAE_NO_DOWNLOAD", "1")


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tests use tiny networks: one thread is as fast and immune to other load on the cores."""
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits_train() -> ImageData:
    return load_dataset("digits", "train")


@pytest.fixture(scope="session")
def digits28() -> ImageData:
    """The first 400 digits resized to 28x28, for the dcgan28 network."""
    return load_dataset("digits", "train", image_size=28).subset(400)


class _UniformPrior:
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.rand(n, 1, generator=generator)


class Memorizer(torch.nn.Module):
    """A stand-in generative model for the sample metrics: z ~ p(z) picks one of a bank of
    images, decoded as it is."""

    def __init__(self, bank: torch.Tensor) -> None:
        super().__init__()
        self.bank = bank
        self.prior = _UniformPrior()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.bank[(z[:, 0] * len(self.bank)).long().clamp_max(len(self.bank) - 1)]


def fails_cleanly(capsys, argv: list[str], *fragments: str) -> str:
    """Run the CLI in-process and check it refuses `argv` with one sentence on stderr and status
    2 (any exception but VimaeError would escape as a traceback); returns that sentence."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("vimae: error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err
    return err
