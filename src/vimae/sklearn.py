"""`VimaeEncoder`: a trained encoder as a scikit-learn transformer.

    pipe = make_pipeline(MinMaxScaler(clip=True), VimaeEncoder(latent_dim=8), LogisticRegression())
    cross_val_score(pipe, X, y)

`fit(X)` trains an autoencoder on the rows of X (each row one image, values in [0, 1]) in memory,
with no run folder; `transform(X)` returns their codes (N, latent_dim): the encoder's evaluation
codes (VIMAE's deterministic code, a VAE's posterior mean) or, with `codes="draw"`, one seeded
draw z ~ q(z|x). The estimator pickles (weights and config, not the torch objects), clones and
cross-validates like any scikit-learn transformer.
"""

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

from vimae.config import RunConfig
from vimae.errors import VimaeError
from vimae.models import Autoencoder, build_model
from vimae.models.batched import BATCH_SIZE, encode


class VimaeEncoder(TransformerMixin, BaseEstimator):
    """Fit an autoencoder of `model` on image rows, transform rows to codes.

    `image_shape` (C, H, W) says how a row is an image; None takes rows of s*s features as
    one-channel s x s images and any other row as a 1 x 1 x F "image" (the mlp network flattens
    it anyway). The other parameters are `vimae train`'s settings of the same names; `steps`
    (2,000 by default, so that a small table trains as long as a large one; None: `epochs`
    decide) was chosen so that the codes beat PCA with as many components under a logistic
    regression on digits and Fashion-MNIST (BENCHMARKS.md, "VimaeEncoder as features").
    """

    def __init__(
        self,
        model: str = "vimae-l",
        latent_dim: int = 8,
        arch: str = "mlp",
        width: float = 1.0,
        epochs: int = 20,
        steps: int | None = 2000,
        batch_size: int = 100,
        lr: float = 1e-3,
        schedule: str = "constant",
        seed: int = 0,
        image_shape: tuple[int, int, int] | None = None,
        codes: str = "mean",
        device: str = "cpu",
        progress: bool = False,
    ) -> None:
        self.model = model
        self.latent_dim = latent_dim
        self.arch = arch
        self.width = width
        self.epochs = epochs
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.schedule = schedule
        self.seed = seed
        self.image_shape = image_shape
        self.codes = codes
        self.device = device
        self.progress = progress

    def fit(self, X: Any, y: Any = None) -> "VimaeEncoder":  # noqa: N803 (sklearn names)
        """Train on the rows of X (labels y, when given, are recorded with the class counts)."""
        from vimae.api import fit

        if self.codes not in ("mean", "draw"):
            raise VimaeError(f"codes must be 'mean' or 'draw', got {self.codes!r}.")
        images = self._images(X, fitting=True)
        self.model_ = fit(
            self.model,
            images,
            labels=None if y is None else np.asarray(y),
            out=None,
            arch=self.arch,
            width=self.width,
            latent_dim=self.latent_dim,
            epochs=self.epochs,
            steps=self.steps,
            batch_size=min(self.batch_size, len(images)),
            lr=self.lr,
            schedule=self.schedule,
            seed=self.seed,
            device=self.device,
            progress=self.progress,
        )
        return self

    def transform(self, X: Any) -> np.ndarray:  # noqa: N803
        """Codes of the rows of X: (N, latent_dim) float32."""
        check_is_fitted(self, "model_")
        images = self._images(X, fitting=False)
        draw = self.codes == "draw"
        generator = torch.Generator().manual_seed(self.seed)
        codes = encode(self.model_, images, BATCH_SIZE, draw=draw, generator=generator)
        return codes.numpy()

    def _images(self, X: Any, fitting: bool) -> torch.Tensor:  # noqa: N803
        """Rows of X as images (N, C, H, W), float32 in [0, 1]."""
        array = check_array(X, dtype=np.float32)
        if fitting:
            self.n_features_in_ = array.shape[1]
        elif array.shape[1] != self.n_features_in_:
            raise VimaeError(
                f"X has {array.shape[1]} features but the encoder was fitted on "
                f"{self.n_features_in_}."
            )
        shape = self.image_shape or _row_shape(array.shape[1])
        if int(np.prod(shape)) != array.shape[1]:
            raise VimaeError(f"image_shape {shape} does not hold rows of {array.shape[1]} values.")
        if not (np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1):
            raise VimaeError("X must lie in [0, 1]; put MinMaxScaler(clip=True) before it.")
        return torch.from_numpy(array).reshape(len(array), *shape)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the weights and the model config, not the torch module (its generators)."""
        state = self.__dict__.copy()
        model: Autoencoder | None = state.pop("model_", None)
        if model is not None:
            weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            state["_fitted"] = (RunConfig(model=model.config).to_dict()["model"], weights)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        fitted = state.pop("_fitted", None)
        self.__dict__.update(state)
        if fitted is not None:
            config, weights = fitted
            model = build_model(RunConfig.from_dict({"model": config}).model)
            model.load_state_dict(weights)
            self.model_ = model.eval()


def _row_shape(features: int) -> tuple[int, int, int]:
    side = round(features**0.5)
    return (1, side, side) if side * side == features else (1, 1, features)
