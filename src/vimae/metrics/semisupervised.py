"""Semi-supervised accuracy of the codes on clean and corrupted inputs (section 5.3, tables 2-4).

The paper follows Zhao et al. (2017) and trains "M1+TSVM" (Kingma et al., 2014) on the codes
z ~ q(z | x + nu) of 1,000 labelled images (MNIST, CIFAR-10), or on 300 codes of 5 Omniglot
characters from the evaluation alphabets tested on 100 more. The paper writes the codes as draws
z ~ q(z | x + nu) (section 5.3), which is what `semi_supervised` is measured on; for a Gaussian
encoder the same accuracies on the posterior means mu(x + nu) are reported beside them as
`semi_supervised_means` (Kingma et al.'s code trains on fresh draws and tests on means; a nearly
collapsed encoder can have means that still separate classes while its draws are noise).
Two classifiers are reported here:

- "svm": an RBF support-vector machine (scikit-learn `SVC`, codes standardised on the labelled
  set) trained on the labelled codes only, the supervised half of M1+TSVM;
- "label_spreading": the transductive variant, which also uses the unlabelled codes. No maintained
  transductive SVM exists for Python, so this is a different, well-founded semi-supervised method
  named for what it is: label spreading on the 10-nearest-neighbour graph of all codes
  (Zhou et al., "Learning with local and global consistency", NIPS 2004; scikit-learn
  `LabelSpreading`). Like a TSVM it places decision boundaries in low-density regions of the codes.

Protocols (SPEC section 6): "labels": a seeded, class-stratified draw of n_labels test codes is
labelled and the accuracy is measured on the other test codes; "omniglot": 5 random characters of
the test (evaluation) alphabets, per character 3/4 of its drawings labelled (15 of 20, with their
rotations: 60 of 80 images) and 1/4 held out (20 of 80), 300 / 100 in all. Each protocol is
repeated over `n_repeats` random draws, with the same draws for every corruption so that
corruptions are compared on equal terms; mean and standard deviation over draws are reported, as
percentages.
"""

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from vimae.data.corruption import gaussian_noise, parse_corruption
from vimae.data.split import stratified_indices
from vimae.metrics.base import MetricContext, MetricUnavailableError, draw_codes, encode, metric
from vimae.models.batched import draw_codes_outside_range

# (labelled indices, held-out indices) into the test split.
Split = tuple[np.ndarray, np.ndarray]


def svm_accuracy(
    z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray
) -> float:
    """Accuracy on (z_test, y_test) of an RBF SVM fitted on the labelled codes z_train: (n, d)."""
    # scikit-learn is imported where it is used: at the top it would add 0.8 s to the start of
    # every vimae command (this module registers a metric, so `vimae --help` imports it).
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    clf = make_pipeline(StandardScaler(), SVC(kernel="rbf", C=1.0, gamma="scale"))
    clf.fit(z_train, y_train)
    return float((clf.predict(z_test) == y_test).mean())


def label_spreading_accuracy(
    z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray
) -> float:
    """Transductive accuracy on z_test of label spreading over the kNN graph of all codes."""
    from sklearn.preprocessing import StandardScaler  # imported here: see svm_accuracy
    from sklearn.semi_supervised import LabelSpreading

    z = np.concatenate([z_train, z_test])
    z = StandardScaler().fit_transform(z)
    y = np.concatenate([y_train, np.full(len(z_test), -1, dtype=y_train.dtype)])
    neighbours = min(10, len(z) - 1)
    model = LabelSpreading(kernel="knn", n_neighbors=neighbours, alpha=0.2, max_iter=100)
    model.fit(z, y)
    return float((model.transduction_[len(z_train) :] == y_test).mean())


CLASSIFIERS: dict[str, Callable[..., float]] = {
    "svm": svm_accuracy,
    "label_spreading": label_spreading_accuracy,
}


def random_label_splits(
    labels: np.ndarray, n_labels: int, n_repeats: int, seed: int = 0
) -> list[Split]:
    """n_repeats seeded (labelled, rest) partitions of the examples with these labels: the
    n_labels labelled ones a class-stratified draw (every class at its share), the rest held out."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    splits = []
    for _ in range(n_repeats):
        labelled = stratified_indices(n, n_labels, labels, seed=int(rng.integers(2**31)))
        splits.append((labelled, np.setdiff1d(np.arange(n), labelled)))
    return splits


def omniglot_splits(
    labels: np.ndarray,
    n_repeats: int,
    n_classes: int = 5,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> list[Split]:
    """n_repeats draws of n_classes random characters, each split 3/4 labelled, 1/4 held out.

    The split is by `groups` (the drawing an image comes from) where given: the four rotations of
    a drawing are all labelled or all held out, since a held-out image whose rotated copy is
    labelled is not a new drawing of the character.
    """
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    if len(classes) < n_classes:
        raise MetricUnavailableError(f"the Omniglot protocol needs {n_classes} characters")
    groups = np.arange(len(labels)) if groups is None else np.asarray(groups)
    splits = []
    for _ in range(n_repeats):
        train, test = [], []
        for c in rng.choice(classes, size=n_classes, replace=False):
            members = np.flatnonzero(labels == c)
            drawings = rng.permutation(np.unique(groups[members]))
            cut = (3 * len(drawings)) // 4
            labelled = np.isin(groups[members], drawings[:cut])
            train.append(members[labelled])
            test.append(members[~labelled])
        splits.append((np.concatenate(train), np.concatenate(test)))
    return splits


def accuracy_over_splits(
    codes: torch.Tensor | np.ndarray, labels: np.ndarray, splits: Sequence[Split]
) -> dict[str, dict[str, Any]]:
    """For each classifier: accuracy (%) per split, their mean and standard deviation."""
    z = np.asarray(codes, dtype=np.float64)
    out = {}
    for name, classify in CLASSIFIERS.items():
        runs = [100.0 * classify(z[tr], labels[tr], z[te], labels[te]) for tr, te in splits]
        out[name] = {"mean": float(np.mean(runs)), "std": float(np.std(runs)), "runs": runs}
    return out


def semi_supervised(
    model: Any,
    images: torch.Tensor,
    labels: torch.Tensor,
    splits: Sequence[Split],
    corruptions: Sequence[str],
    seed: int = 0,
    batch_size: int = 500,
    means: bool = False,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Accuracies of both classifiers on codes z ~ q(z | x + nu) (one seeded draw per image) of
    each corrupted version of `images`; with `means`, on the posterior means of the same
    corrupted images instead (the same for VIMAE, whose code is deterministic)."""
    y = labels.numpy()
    results = {}
    for k, spec in enumerate(corruptions):
        corrupt = parse_corruption(spec)
        gen = torch.Generator().manual_seed(seed * 7919 + k)
        noisy = torch.cat(
            [corrupt(images[i : i + batch_size], gen) for i in range(0, len(images), batch_size)]
        )
        if means:
            codes = encode(model, noisy, batch_size)  # mu(x + nu)
        else:
            codes = draw_codes(model, noisy, gen, batch_size)  # z ~ q(z | x + nu)
        results[spec] = accuracy_over_splits(codes, y, splits)
    return results


def _splits(ctx: MetricContext) -> tuple[list[Split], str]:
    """The labelled / held-out splits of the test codes and the protocol's description."""
    opts = ctx.options
    labels = ctx.test.labels
    if labels is None:
        raise MetricUnavailableError(f"the test split of {ctx.dataset} has no labels")
    classes = len(torch.unique(labels))
    if classes < 2:
        raise MetricUnavailableError(
            f"the test split of {ctx.dataset} holds one class only, so there is nothing to "
            "classify; measure on images of two classes or more"
        )
    y = labels.numpy()
    if ctx.dataset.startswith("omniglot"):
        groups = None if ctx.test.groups is None else ctx.test.groups.numpy()
        splits = omniglot_splits(y, opts.n_repeats, seed=opts.seed, groups=groups)
        protocol = (
            f"omniglot: 5 random test characters (chance 20%), {len(splits[0][0])} labelled "
            f"codes, accuracy on {len(splits[0][1])} of other drawings"
        )
    else:
        n_labels = min(opts.n_labels, len(y) // 2)
        protocol = (
            f"{n_labels} labelled test codes (a stratified draw), accuracy on the other "
            f"{len(y) - n_labels}"
        )
        splits = random_label_splits(y, n_labels, opts.n_repeats, seed=opts.seed)
    return splits, protocol


SEMI_OPTIONS = ("batch_size", "seed", "corruptions", "n_labels", "n_repeats")


@metric("semi-supervised", position=8, needs=("labels",), options=SEMI_OPTIONS)
def _semi_supervised(ctx: MetricContext) -> dict[str, Any]:
    opts = ctx.options
    splits, protocol = _splits(ctx)
    args = (ctx.model, ctx.test.images, ctx.test.labels, splits, opts.corruptions, opts.seed)
    out = {
        "semi_supervised": semi_supervised(*args, opts.batch_size),
        "semi_supervised_protocol": protocol,
        "semi_supervised_repeats": len(splits),
        "semi_supervised_codes": "draws z ~ q(z | x + nu), one per image",
    }
    if ctx.codes_are_random:  # a Gaussian encoder: its means are other features than its draws
        out["semi_supervised_means"] = semi_supervised(*args, opts.batch_size, means=True)
    return out


@metric(
    "semi-supervised-readings",
    position=9,
    needs=("labels",),
    options=SEMI_OPTIONS,
    on_request=True,
)
def _semi_supervised_readings(ctx: MetricContext) -> dict[str, Any]:
    opts = ctx.options
    splits, protocol = _splits(ctx)
    args = (ctx.model, ctx.test.images, ctx.test.labels, splits, opts.corruptions, opts.seed)
    return {
        "readings": readings(*args, opts.batch_size),
        "readings_protocol": protocol,
    }


def readings(
    model: Any,
    images: torch.Tensor,
    labels: torch.Tensor,
    splits: Sequence[Split],
    corruptions: Sequence[str],
    seed: int = 0,
    batch_size: int = 500,
) -> dict[str, dict[str, dict[str, Any]]]:
    """The SVM's accuracies under the other readings of section 5.3 that its text allows (the
    paper says neither where its classifier is fitted nor whether noisy pixels stay in [0, 1]):

    - "clean_fit": the classifier fitted on the codes of the clean labelled images, its accuracy
      measured on the codes of the corrupted held-out images (a fixed classifier facing noise);
    - "unclamped": fitted and measured on corrupted codes, the Gaussian noise left unclamped
      (x + nu, pixels outside [0, 1]); Gaussian corruptions only;
    - "clean_fit_unclamped": both.

    The main reading (`semi_supervised`) fits and measures on the codes of corrupted images,
    clamped to [0, 1]. Codes are draws z ~ q(z | x + nu) with the same seeds as there.
    """
    y = labels.numpy()

    def codes_of(x: torch.Tensor, gen: torch.Generator) -> np.ndarray:
        return draw_codes(model, x, gen, batch_size).numpy().astype(np.float64)

    def svm(fit_codes: np.ndarray, test_codes: np.ndarray) -> dict[str, Any]:
        runs = [
            100.0 * svm_accuracy(fit_codes[tr], y[tr], test_codes[te], y[te]) for tr, te in splits
        ]
        return {"svm": {"mean": float(np.mean(runs)), "std": float(np.std(runs)), "runs": runs}}

    clean = codes_of(images, torch.Generator().manual_seed(seed * 7919 + 10_007))
    out: dict[str, dict[str, dict[str, Any]]] = {
        "clean_fit": {},
        "unclamped": {},
        "clean_fit_unclamped": {},
    }
    for k, spec in enumerate(corruptions):
        family, _, level = spec.partition(":")
        corrupt = parse_corruption(spec)
        gen = torch.Generator().manual_seed(seed * 7919 + k)
        noisy = torch.cat(
            [corrupt(images[i : i + batch_size], gen) for i in range(0, len(images), batch_size)]
        )
        out["clean_fit"][spec] = svm(clean, codes_of(noisy, gen))
        if family == "gauss":
            gen = torch.Generator().manual_seed(seed * 7919 + k)
            raw = torch.cat(
                [
                    gaussian_noise(images[i : i + batch_size], float(level), gen, clamp=False)
                    for i in range(0, len(images), batch_size)
                ]
            )
            unclamped = draw_codes_outside_range(model, raw, gen, batch_size)
            unclamped = unclamped.numpy().astype(np.float64)
            out["unclamped"][spec] = svm(unclamped, unclamped)
            out["clean_fit_unclamped"][spec] = svm(clean, unclamped)
    return out
