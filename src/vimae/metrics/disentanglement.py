"""Disentanglement metrics of codes against known generating factors: MIG, SAP, DCI and the
FactorVAE score, as functions of arrays (codes (N, d), discrete factors (N, K) as integer labels).

The paper compares VIMAE with beta_H-VAE, a model made for disentanglement, but judges
representations by clustering and robustness only. These are the field's standard measures, as
disentanglement_lib (Locatello et al. 2019, TensorFlow 1, unmaintained) computes them, written
here from their papers with the protocol choices disentanglement_lib made:

- MIG, the mutual information gap (Chen et al. 2018, "Isolating sources of disentanglement in
  VAEs", eq. 6): each code coordinate discretised into `bins` equal-width bins; for each factor,
  the gap between the two largest mutual informations I(z_j; v_k) over the code coordinates,
  divided by the factor's entropy H(v_k); the mean over factors. 1: each factor is in one
  coordinate alone; 0: none is.
- SAP, the separated attribute predictability (Kumar et al. 2018, "Variational inference of
  disentangled latent concepts from unlabeled observations", section 3): for each factor and
  each code coordinate, the held-out accuracy of a linear classifier of the factor from that one
  coordinate; per factor the gap between the best and the second-best coordinate; their mean.
- DCI (Eastwood and Williams 2018, "A framework for the quantitative evaluation of disentangled
  representations"): gradient-boosted trees predict each factor from all coordinates; their
  feature importances R (d x K) give disentanglement (per coordinate 1 - its importance entropy
  over factors, base K, weighted by its share of importance), completeness (per factor 1 - the
  entropy over coordinates, base d, averaged) and informativeness (mean held-out accuracy).
- FactorVAE score (Kim and Mnih 2018, "Disentangling by factorising", section 4): codes scaled by
  their standard deviation over the data; each vote fixes one factor at a random value, takes
  `batch` codes with that value, and names the coordinate of least variance; a majority-vote
  classifier from coordinate to factor is scored on held-out votes. Coordinates whose standard
  deviation is below `min_std` (collapsed) are left out, as in disentanglement_lib.

Every function is seeded and uses only NumPy and scikit-learn. The metric "disentanglement"
of `vimae evaluate` computes all four on the evaluation codes (VIMAE's code, a VAE's posterior
mean, as disentanglement_lib reads the mean representation) of test images whose factors are
known: the "shapes" dataset (`vimae.data.shapes`).
"""

from typing import Any

import numpy as np

from vimae.errors import VimaeError
from vimae.metrics.base import MetricContext, MetricUnavailableError, metric


def mutual_info_score(a: np.ndarray, b: np.ndarray) -> float:
    """I(a; b) in nats of two label arrays (scikit-learn's, imported here: at the top of the
    module it would slow the start of every vimae command, which imports the metrics)."""
    from sklearn.metrics import mutual_info_score as score

    return float(score(a, b))


def _check(codes: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(codes, dtype=np.float64)
    v = np.asarray(factors)
    if v.ndim == 1:
        v = v[:, None]
    if z.ndim != 2 or v.ndim != 2 or len(z) != len(v) or len(z) < 10:
        raise VimaeError(
            f"disentanglement metrics need codes (N, d) and factors (N, K) of the same N >= 10, "
            f"got {z.shape} and {v.shape}."
        )
    if not np.isfinite(z).all():
        raise VimaeError("the codes hold NaN or infinite values.")
    if not np.issubdtype(v.dtype, np.integer):
        raise VimaeError("factors must be integer labels (discretise continuous factors first).")
    return z, v


def discretise(codes: np.ndarray, bins: int = 20) -> np.ndarray:
    """Each coordinate of codes (N, d) as its equal-width bin index in [0, bins): (N, d) ints
    (a constant coordinate falls in bin 0)."""
    z = np.asarray(codes, dtype=np.float64)
    out = np.zeros(z.shape, dtype=np.int64)
    for j in range(z.shape[1]):
        low, high = z[:, j].min(), z[:, j].max()
        if high > low:
            edges = np.linspace(low, high, bins + 1)[1:-1]
            out[:, j] = np.digitize(z[:, j], edges)
    return out


def mutual_information(codes: np.ndarray, factors: np.ndarray, bins: int = 20) -> np.ndarray:
    """I(z_j; v_k) in nats between discretised code coordinates and factors: (d, K)."""
    z, v = _check(codes, factors)
    zd = discretise(z, bins)
    return np.array(
        [
            [mutual_info_score(zd[:, j], v[:, k]) for k in range(v.shape[1])]
            for j in range(z.shape[1])
        ]
    )


def mig(codes: np.ndarray, factors: np.ndarray, bins: int = 20) -> dict[str, float | list]:
    """Mutual information gap: the mean over factors of (largest - second largest I(z_j; v_k))
    / H(v_k); factors with one value (no entropy) are left out."""
    z, v = _check(codes, factors)
    info = mutual_information(z, v, bins)
    gaps = []
    for k in range(v.shape[1]):
        entropy = mutual_info_score(v[:, k], v[:, k])  # H(v_k) = I(v_k; v_k)
        if entropy <= 0:
            continue
        top = np.sort(info[:, k])[::-1]
        second = top[1] if len(top) > 1 else 0.0
        gaps.append((top[0] - second) / entropy)
    if not gaps:
        raise VimaeError("every factor has a single value: MIG needs factors that vary.")
    return {"mig": float(np.mean(gaps)), "mig_per_factor": [float(g) for g in gaps]}


def _split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    cut = max(1, round(n * (1 - test_fraction)))
    return order[:cut], order[cut:]


def sap(
    codes: np.ndarray, factors: np.ndarray, test_fraction: float = 0.5, seed: int = 0
) -> dict[str, float | list]:
    """Separated attribute predictability: per factor, the gap between the held-out accuracies
    of the best and second-best single-coordinate linear classifiers; their mean."""
    from sklearn.svm import LinearSVC

    z, v = _check(codes, factors)
    train, test = _split(len(z), test_fraction, seed)
    scores = np.zeros((z.shape[1], v.shape[1]))
    for k in range(v.shape[1]):
        if len(np.unique(v[train, k])) < 2:
            continue
        for j in range(z.shape[1]):
            x_train, x_test = z[train, j : j + 1], z[test, j : j + 1]
            if np.ptp(x_train) == 0:
                # a constant coordinate predicts the majority class, no better than nothing
                values, counts = np.unique(v[train, k], return_counts=True)
                scores[j, k] = float(np.mean(v[test, k] == values[np.argmax(counts)]))
                continue
            clf = LinearSVC(C=0.01, dual="auto").fit(x_train, v[train, k])
            scores[j, k] = float(np.mean(clf.predict(x_test) == v[test, k]))
    gaps = []
    for k in range(v.shape[1]):
        top = np.sort(scores[:, k])[::-1]
        gaps.append(top[0] - (top[1] if len(top) > 1 else 0.0))
    return {"sap": float(np.mean(gaps)), "sap_per_factor": [float(g) for g in gaps]}


def _entropy_rows(p: np.ndarray, base: int) -> np.ndarray:
    """Entropy of each row of a non-negative matrix normalised to sum 1, in log base `base`."""
    p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
    logs = np.log(np.where(p > 0, p, 1.0)) / np.log(base)
    return -(p * logs).sum(axis=1)


def dci(
    codes: np.ndarray, factors: np.ndarray, test_fraction: float = 0.3, seed: int = 0
) -> dict[str, float | list]:
    """Disentanglement, completeness and informativeness from the feature importances of
    gradient-boosted trees (one per factor) predicting the factor from all code coordinates."""
    from sklearn.ensemble import GradientBoostingClassifier

    z, v = _check(codes, factors)
    d, n_factors = z.shape[1], v.shape[1]
    train, test = _split(len(z), test_fraction, seed)
    importance = np.zeros((d, n_factors))
    accuracy = []
    for k in range(n_factors):
        if len(np.unique(v[train, k])) < 2:
            accuracy.append(1.0)  # a constant factor: nothing to predict, nothing to explain
            continue
        clf = GradientBoostingClassifier(random_state=seed).fit(z[train], v[train, k])
        importance[:, k] = np.abs(clf.feature_importances_)
        accuracy.append(float(np.mean(clf.predict(z[test]) == v[test, k])))
    total = importance.sum()
    if total <= 0:
        return {"dci_disentanglement": 0.0, "dci_completeness": 0.0,
                "dci_informativeness": float(np.mean(accuracy))}  # fmt: skip
    per_code = 1.0 - _entropy_rows(importance, max(n_factors, 2))
    weights = importance.sum(axis=1) / total
    per_factor = 1.0 - _entropy_rows(importance.T, max(d, 2))
    used = importance.sum(axis=0) > 0
    return {
        "dci_disentanglement": float(np.sum(weights * per_code)) if n_factors > 1 else 1.0,
        "dci_completeness": float(np.mean(per_factor[used])) if d > 1 else 1.0,
        "dci_informativeness": float(np.mean(accuracy)),
    }


def factorvae_score(
    codes: np.ndarray,
    factors: np.ndarray,
    batch: int = 64,
    votes: int = 800,
    test_votes: int = 400,
    min_std: float = 0.05,
    seed: int = 0,
) -> dict[str, float]:
    """The FactorVAE score: accuracy on held-out votes of the majority-vote classifier from the
    coordinate of least (scaled) variance to the factor held fixed."""
    z, v = _check(codes, factors)
    rng = np.random.default_rng(seed)
    std = z.std(axis=0)
    active = np.flatnonzero(std >= min_std)
    if len(active) == 0:
        return {"factorvae": 0.0, "factorvae_active_codes": 0}
    scaled = z[:, active] / std[active]
    varying = [k for k in range(v.shape[1]) if len(np.unique(v[:, k])) > 1]
    groups = {
        k: [np.flatnonzero(v[:, k] == value) for value in np.unique(v[:, k])] for k in varying
    }

    def vote() -> tuple[int, int]:
        k = varying[rng.integers(len(varying))]
        members = groups[k][rng.integers(len(groups[k]))]
        chosen = rng.choice(members, size=batch, replace=len(members) < batch)
        return int(np.argmin(scaled[chosen].var(axis=0))), k

    table = np.zeros((len(active), v.shape[1]), dtype=np.int64)
    for _ in range(votes):
        j, k = vote()
        table[j, k] += 1
    predict = table.argmax(axis=1)  # coordinate -> factor
    held_out = [vote() for _ in range(test_votes)]
    correct = sum(predict[j] == k for j, k in held_out)
    return {"factorvae": float(correct / test_votes), "factorvae_active_codes": len(active)}


@metric(
    "disentanglement",
    position=10,
    needs=("factors",),
    options=("batch_size", "seed"),
    on_request=True,  # only data with known factors has it: `vimae evaluate --metrics ...`
)
def _disentanglement(ctx: MetricContext) -> dict[str, Any]:
    factors = ctx.test.factors
    if factors is None:
        raise MetricUnavailableError(
            f"the test images of {ctx.dataset} have no known generating factors; measure on "
            "--dataset shapes"
        )
    z = ctx.mean_codes.numpy()
    v = factors.numpy()
    seed = ctx.options.seed
    return {
        **mig(z, v),
        **sap(z, v, seed=seed),
        **dci(z, v, seed=seed),
        **factorvae_score(z, v, seed=seed),
        "disentanglement_codes": "evaluation codes (VIMAE's code, a VAE's posterior mean)",
    }
