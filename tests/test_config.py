"""Settings: overrides are typed, unknown keys and nonsense values are clear errors."""

import re

import pytest

from vimae.config import RunConfig, apply_overrides, load_config_file, validate
from vimae.errors import VimaeError


def test_overrides_are_converted_to_the_field_types():
    config = apply_overrides(
        RunConfig(),
        [
            "model.lam=2.5",
            "train.epochs=3",
            "model.prior=laplace",
            "train.progress=false",
            "model.beta=none",
        ],
    )
    assert config.model.lam == 2.5 and config.train.epochs == 3
    assert config.model.prior == "laplace" and config.train.progress is False
    assert config.model.beta is None


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.lamda=3", "unknown config key 'model.lamda'"),
        ("optim.lr=3", "unknown config key 'optim.lr'"),
        ("train.epochs=ten", "--epochs (train.epochs) expects int"),
        ("train.epochs=2.5", "--epochs (train.epochs) expects int"),
        ("epochs", "not of the form section.key=value"),
    ],
)
def test_bad_overrides_are_one_sentence_errors(override, message):
    with pytest.raises(VimaeError, match=re.escape(message)):
        apply_overrides(RunConfig(), [override])


@pytest.mark.parametrize(
    "override",
    [
        "model.lam=0",
        "model.lam=-1",
        "model.beta=-2",
        "model.width=0",
        "train.batch_size=0",
        "train.epochs=0",
        "model.latent_dim=0",
        "train.lr=-1",
        "train.batch_size=1",
    ],
)
def test_nonsense_hyper_parameters_are_rejected(override):
    with pytest.raises(VimaeError, match="must be"):
        validate(apply_overrides(RunConfig(), [override]))


def test_round_trip_through_dict_and_toml(tmp_path):
    config = apply_overrides(RunConfig(), ["model.name=vimae-l", "model.image_shape=1,28,28"])
    assert RunConfig.from_dict(config.to_dict()) == config
    path = tmp_path / "run.toml"
    path.write_text('[model]\nname = "vae"\nlatent_dim = 16\n[train]\nepochs = 5\n')
    loaded = load_config_file(path)
    assert (loaded.model.name, loaded.model.latent_dim, loaded.train.epochs) == ("vae", 16, 5)
