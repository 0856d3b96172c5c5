"""FID with a small random-init feature network (offline), the domain classifier's data-keyed cache
and held-out accuracy, and the FID metric's real images, counts and warnings."""

import itertools
import json
from pathlib import Path

import pytest
import torch
from conftest import Memorizer
from safetensors.torch import save_file

from vimae.data import ImageData, load_dataset
from vimae.data.split import class_counts
from vimae.metrics import (
    METRICS,
    DomainClassifier,
    MetricContext,
    MetricOptions,
    frechet_distance,
    load_or_train_classifier,
)
from vimae.metrics import fid as fid_module
from vimae.metrics.classifier import accuracy, cache_path, heldout_split


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    return load_dataset("digits", "train").images[:600]


def _features(seed: int = 0):
    torch.manual_seed(seed)
    return DomainClassifier(channels=1, n_classes=10).eval().features


def test_fid_of_a_set_against_itself_is_near_zero(digits: torch.Tensor) -> None:
    assert abs(frechet_distance(digits, digits, _features())) < 1e-3


def test_fid_grows_with_added_noise(digits: torch.Tensor) -> None:
    gen = torch.Generator().manual_seed(0)
    feature = _features()
    fids = [
        frechet_distance(
            digits, (digits + s * torch.randn(digits.shape, generator=gen)).clamp(0, 1), feature
        )
        for s in (0.05, 0.1, 0.2, 0.4)
    ]
    assert all(a < b for a, b in itertools.pairwise(fids)), fids


def test_fid_is_symmetric(digits: torch.Tensor) -> None:
    a, b = digits[:300], digits[300:]
    feature = _features()
    assert frechet_distance(a, b, feature) == pytest.approx(
        frechet_distance(b, a, feature), rel=1e-4
    )


# --- the domain classifier: cache keyed by its data, held-out accuracy, damaged files ---


def _sorted_by_class(data: ImageData) -> ImageData:
    return data.take(torch.argsort(data.labels, stable=True))


def _metadata(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        return json.loads(f.metadata()["vimae"])


def test_classifier_is_trained_once_per_training_data_then_read_from_cache(
    digits_train: ImageData, tmp_path: Path
) -> None:
    first, second = digits_train.take(range(0, 750)), digits_train.take(range(750, 1500))
    net, info = load_or_train_classifier("digits", first, tmp_path, steps=20)
    other, other_info = load_or_train_classifier("digits", second, tmp_path, steps=20)
    # Same dataset name and image shape, other images: its own key, file and training.
    assert not info["cached"] and not other_info["cached"]
    assert info["digest"] != other_info["digest"]
    files = sorted(tmp_path.glob("*.safetensors"))
    assert len(files) == 2
    again, again_info = load_or_train_classifier("digits", first, tmp_path, steps=20)
    assert again_info["cached"] and again_info["digest"] == info["digest"]
    x = digits_train.images[:5]
    assert torch.equal(net.features(x), again.features(x))
    assert not torch.equal(net.features(x), other.features(x))
    # A changed label alone is other data too.
    relabelled = ImageData("digits", first.images, first.labels.clone())
    relabelled.labels[0] = (relabelled.labels[0] + 1) % 10
    assert not load_or_train_classifier("digits", relabelled, tmp_path, steps=20)[1]["cached"]


def test_cache_file_records_the_data_it_was_trained_on(
    digits_train: ImageData, tmp_path: Path
) -> None:
    _, info = load_or_train_classifier("digits", digits_train, tmp_path, steps=5)
    path = cache_path(tmp_path, "digits", info["digest"], digits_train.image_shape)
    assert info["digest"] in path.name and "1x8x8" in path.name
    meta = _metadata(path)
    assert meta["dataset"] == "digits" and meta["digest"] == info["digest"]
    assert meta["image_shape"] == [1, 8, 8]
    assert meta["train_images"] + meta["heldout_images"] == len(digits_train)
    assert meta["train_classes"] == meta["heldout_classes"] == 10
    assert meta["heldout_accuracy"] == info["heldout_accuracy"]


def test_heldout_accuracy_covers_every_class_of_a_class_sorted_split(
    digits_train: ImageData, tmp_path: Path
) -> None:
    # The digits sorted by class: a last-10% slice would hold out nines only.
    ordered = _sorted_by_class(digits_train)
    net, info = load_or_train_classifier("digits", ordered, tmp_path, steps=60)
    assert info["heldout_classes"] == 10 and info["heldout_images"] == 150
    assert info["train_images"] == 1350 and info["train_classes"] == 10
    fit, heldout = heldout_split(ordered, seed=0)
    counts = class_counts(heldout.labels)
    assert min(counts.values()) >= 14 and max(counts.values()) <= 20  # every class at its share
    assert not set(map(tuple, fit.images.flatten(1).tolist())) & set(
        map(tuple, heldout.images.flatten(1).tolist())
    )
    assert info["heldout_accuracy"] == accuracy(net, heldout)
    assert info["heldout_accuracy"] > 0.5  # chance is 0.1


def _damage_garbage(path: Path) -> None:
    path.write_bytes(b"not a safetensors file at all")


def _damage_truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _damage_no_metadata(path: Path) -> None:
    save_file({"head.bias": torch.zeros(10)}, path)


def _damage_wrong_shapes(path: Path) -> None:
    meta = {"vimae": json.dumps(_metadata(path))}
    save_file({key: torch.zeros(3) for key in DomainClassifier(1, 10).state_dict()}, path, meta)


@pytest.mark.parametrize(
    "damage", [_damage_garbage, _damage_truncated, _damage_no_metadata, _damage_wrong_shapes]
)
def test_a_damaged_cache_file_is_rebuilt(damage, digits_train: ImageData, tmp_path: Path) -> None:
    train = digits_train.take(range(300))
    net, info = load_or_train_classifier("digits", train, tmp_path, steps=5)
    path = cache_path(tmp_path, "digits", info["digest"], train.image_shape)
    damage(path)
    rebuilt, rebuilt_info = load_or_train_classifier("digits", train, tmp_path, steps=5)
    assert not rebuilt_info["cached"]
    x = train.images[:5]
    assert torch.equal(rebuilt.features(x), net.features(x))  # same seed, same network
    assert load_or_train_classifier("digits", train, tmp_path, steps=5)[1]["cached"]
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, no temporary left behind


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("VIMAE_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert MetricOptions().cache_dir == tmp_path / "home" / ".cache" / "vimae"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert MetricOptions().cache_dir == tmp_path / "xdg" / "vimae"
    monkeypatch.setenv("VIMAE_CACHE_DIR", str(tmp_path / "vimae"))
    assert MetricOptions().cache_dir == tmp_path / "vimae"
    assert MetricOptions(cache_dir=tmp_path / "given").cache_dir == tmp_path / "given"


# --- the FID metric: real images, counts and warnings ---


@pytest.fixture(scope="module")
def classifier_cache(tmp_path_factory) -> Path:
    """One cache for the metric tests: the classifier is trained once, then read."""
    return tmp_path_factory.mktemp("cache")


def _fid(test: ImageData, cache: Path, **options) -> dict:
    bank = load_dataset("digits", "train").images
    opts = MetricOptions(cache_dir=cache, fid_classifier_steps=20, **options)
    return METRICS["fid"](MetricContext(Memorizer(bank), test, "digits", options=opts))


def test_fid_real_images_of_a_class_sorted_test_split_keep_every_class(
    monkeypatch, classifier_cache: Path
) -> None:
    test = _sorted_by_class(load_dataset("digits", "test"))  # 297 images, ~30 per class
    seen = []

    def spy(real, fake, feature, batch_size=500):
        seen.append(real)
        return 0.0

    monkeypatch.setattr(fid_module, "frechet_distance", spy)
    out = _fid(test, classifier_cache, fid_samples=60)
    (real,) = seen
    assert out["fid_real_images"] == 60 and out["fid_generated_images"] == 60
    match = (real.flatten(1)[:, None] == test.images.flatten(1)[None]).all(-1)  # (60, 297)
    assert (match.sum(1) == 1).all()  # real test images, each once
    counts = class_counts(test.labels[match.float().argmax(1)])
    assert len(counts) == 10 and min(counts.values()) >= 5  # a first-60 slice has 2 classes


def test_fid_sample_counts_scale_to_the_test_split() -> None:
    assert fid_module.sample_counts(None, 297) == (297, 297)
    assert fid_module.sample_counts(None, 60_000) == (10_000, 10_000)
    assert fid_module.sample_counts(5_000, 297) == (297, 5_000)
    assert fid_module.sample_counts(100, 297) == (100, 100)


def test_fid_warnings_appear_exactly_when_they_should() -> None:
    assert fid_module.fid_warnings(1_000, 129, 128) == []
    (singular,) = fid_module.fid_warnings(1_000, 128, 128)  # rank <= 127: singular
    assert "singular" in singular
    (small,) = fid_module.fid_warnings(999, 999, 128)
    assert "999 images" in small
    assert len(fid_module.fid_warnings(500, 100, 2048)) == 2


def test_fid_metric_counts_and_warnings(classifier_cache: Path) -> None:
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    big = _fid(train, classifier_cache)  # a 1,500-image "test split": nothing to warn about
    assert big["fid_real_images"] == big["fid_generated_images"] == 1_500
    assert "warnings" not in big
    assert "held-out accuracy" in big["fid_features"]
    assert big["fid_classifier"]["heldout_classes"] == 10
    small = _fid(test, classifier_cache)
    assert small["fid_real_images"] == small["fid_generated_images"] == 297
    (warning,) = small["warnings"]
    assert "297 images" in warning
    few = _fid(test, classifier_cache, fid_samples=100)
    assert few["fid_real_images"] == few["fid_generated_images"] == 100
    assert len(few["warnings"]) == 2 and "singular" in few["warnings"][0]
    many = _fid(test, classifier_cache, fid_samples=400)
    assert many["fid_real_images"] == 297 and many["fid_generated_images"] == 400
