"""Shared fixtures: small real data (scikit-learn digits), where ../shared/datasets lives, and
the `requires_shared_data` mark of the tests that read real data files."""

import os
from pathlib import Path

import pytest
import torch

from vimae.cli import main
from vimae.data import ImageData, load_dataset
from vimae.data.mnist import FASHION_MNIST

# $VIMAE_SHARED_DATASETS moves it (e.g. to an empty folder, to see what runs without the data).
SHARED_DATASETS = Path(
    os.environ.get("VIMAE_SHARED_DATASETS")
    or Path(__file__).resolve().parents[2] / "shared" / "datasets"
)
# Debian's dataset-fashion-mnist package (scripts/test.sh installs it), where the loader looks.
DEBIAN_FASHION_MNIST = FASHION_MNIST.fallback_dirs[0]
# Set to 1 by CI (.ci/run): a test whose data is missing fails instead of being skipped.
REQUIRE_ENV = "VIMAE_REQUIRE_SHARED_DATA"
SHARED_DATA_REQUIRED = os.environ.get(REQUIRE_ENV) == "1"


def requires_shared_data(*paths: str | Path) -> pytest.MarkDecorator:
    """Mark a test (or a module, as `pytestmark`) that reads these files or folders, relative
    ones under SHARED_DATASETS: when one is missing the test is skipped with the path as the
    reason (`pytest -rs` lists them), or fails when $VIMAE_REQUIRE_SHARED_DATA is 1."""
    return pytest.mark.shared_data(*paths)


def missing_shared_data(paths: tuple[str | Path, ...]) -> str | None:
    """Why data `paths` cannot be read (the missing ones named), or None when all are there."""
    missing = [str(SHARED_DATASETS / p) for p in paths if not (SHARED_DATASETS / p).exists()]
    if not missing:
        return None
    return f"no test data at {', '.join(missing)} (tests/conftest.py: requires_shared_data)"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "shared_data(*paths): the test reads real data files (requires_shared_data)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip the tests whose data is missing, unless CI requires it (then setup fails them)."""
    if SHARED_DATA_REQUIRED:
        return
    for item in items:
        for mark in item.iter_markers("shared_data"):
            reason = missing_shared_data(mark.args)
            if reason is not None:
                item.add_marker(pytest.mark.skip(reason=reason))
                break


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if not SHARED_DATA_REQUIRED:
        return
    for mark in item.iter_markers("shared_data"):
        reason = missing_shared_data(mark.args)
        if reason is not None:
            pytest.fail(f"{reason}, and ${REQUIRE_ENV}=1 forbids skipping", pytrace=False)


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
