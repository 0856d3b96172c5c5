"""VimaeEncoder at its defaults as a feature extractor, against PCA and raw pixels.

    python benchmarks/encoder_vs_pca.py            # about 15 minutes on a 2-core CPU

Each row is a scikit-learn pipeline, MinMaxScaler -> features -> LogisticRegression, scored by
3-fold cross-validation (mean accuracy, and the seconds the three fits took): the encoder of
`VimaeEncoder()` as it comes (latent_dim 8), PCA with as many components, and the raw pixels. On
scikit-learn's 8x8 digits (1,797 images) and on a seeded, class-stratified draw of 5,000
Fashion-MNIST training images (Debian's dataset-fashion-mnist). A representation learner that
loses to PCA with the same number of components is no feature extractor to recommend.
"""

import argparse
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler

from vimae.data import load_dataset
from vimae.sklearn import VimaeEncoder


def score(features, x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(mean, sd of the 3 folds' accuracies, seconds) of features + logistic regression."""
    pipe = make_pipeline(MinMaxScaler(clip=True), features, LogisticRegression(max_iter=3000))
    started = time.perf_counter()
    folds = cross_val_score(pipe, x, y, cv=3)
    return float(folds.mean()), float(folds.std()), time.perf_counter() - started


def datasets(fashion_size: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    X, y = load_digits(return_X_y=True)
    out = {"digits (8x8, 1,797)": (X, y)}
    fashion = load_dataset("fashion-mnist", "train").subset(fashion_size, seed=0)
    out[f"fashion-mnist (28x28, {fashion_size:,})"] = (
        fashion.images.flatten(1).numpy(),
        fashion.labels.numpy(),
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fashion-size", type=int, default=5_000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")  # convergence chatter of the logistic regressions
    encoder = VimaeEncoder()
    print(f"VimaeEncoder defaults: {encoder.get_params()}\n")
    print("| data | features | accuracy (3-fold) | fit time (3 folds) |")
    print("|---|---|---|---|")
    for name, (X, y) in datasets(args.fashion_size).items():
        for label, features in (
            (f"VimaeEncoder() ({encoder.latent_dim}-d codes)", VimaeEncoder()),
            (f"PCA ({encoder.latent_dim} components)", PCA(encoder.latent_dim)),
            ("raw pixels", FunctionTransformer()),
        ):
            mean, sd, seconds = score(features, X, y)
            print(f"| {name} | {label} | {mean:.3f} ± {sd:.3f} | {seconds:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
