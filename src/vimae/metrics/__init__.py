"""Every measurement of the paper (SPEC section 6), as functions of tensors or of (model, data).

One module per estimator family; each registers its command-line metric in `METRICS` with the
`@metric(name, position, needs, options)` decorator, and every module of this package is imported
here, so a new metric is one new file:

| name | module | what |
|---|---|---|
| reconstruction | reconstruction | mean sum of squared pixel errors |
| rate | rate | E_x KL(q(z|x) || p(z)) |
| mmd | discrepancy | MMD^2(q(z), p(z)) on all test codes |
| entropy | entropy | k-NN entropy of q(z) beside the same estimator on prior draws |
| kl | entropy | KL(q(z) || p(z)), the k-NN plug-in with its bias matched on prior draws |
| parzen | parzen | Parzen-window NLL of test images under generated samples |
| fid | fid (+ classifier) | Frechet distance of generated to real image features |
| semi-supervised | semisupervised | SVM and label-spreading accuracy on clean / corrupted codes |
| semi-supervised-readings | semisupervised | on request: the other readings of section 5.3 |
| disentanglement | disentanglement | on request: MIG, SAP, DCI, FactorVAE score (known factors) |

q(z) is the aggregate posterior: the code metrics and the semi-supervised features read one seeded
draw z ~ q(z|x) per image (`draw_codes`); for the Gaussian encoders the posterior-mean versions
are reported beside them under names ending in `_means`.

Used from Python, e.g. `vimae.metrics.knn_entropy(z)`, `vimae.metrics.mmd(z, prior)`,
or `vimae.metrics.encode(model, images)` (posterior means) to use a trained encoder as a feature
extractor.
"""

import importlib
import pkgutil

from vimae.metrics.base import (
    METRICS,
    Metric,
    MetricContext,
    MetricOptions,
    MetricUnavailableError,
    check_against_data,
    default_metrics,
    draw_codes,
    encode,
    generate,
    metric,
    validate_options,
)
from vimae.metrics.classifier import DomainClassifier, load_or_train_classifier
from vimae.metrics.discrepancy import mmd
from vimae.metrics.entropy import (
    cross_entropy_to_prior,
    kl_to_prior,
    kl_to_prior_repeats,
    knn_entropy,
    prior_entropy_reference,
)
from vimae.metrics.fid import frechet_distance, inception_distance
from vimae.metrics.parzen import parzen_log_density, parzen_nll, select_bandwidth
from vimae.metrics.rate import (
    estimate_rate,
    gaussian_rate,
    kl_per_image,
    monte_carlo_rate,
    posterior,
)
from vimae.metrics.reconstruction import reconstruct, reconstruction_error
from vimae.metrics.semisupervised import (
    accuracy_over_splits,
    label_spreading_accuracy,
    omniglot_splits,
    random_label_splits,
    semi_supervised,
    svm_accuracy,
)

# Importing every module of this package registers its metrics: a new metric is one new file.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "METRICS",
    "DomainClassifier",
    "Metric",
    "MetricContext",
    "MetricOptions",
    "MetricUnavailableError",
    "accuracy_over_splits",
    "check_against_data",
    "cross_entropy_to_prior",
    "default_metrics",
    "draw_codes",
    "encode",
    "estimate_rate",
    "frechet_distance",
    "gaussian_rate",
    "generate",
    "inception_distance",
    "kl_per_image",
    "kl_to_prior",
    "kl_to_prior_repeats",
    "knn_entropy",
    "label_spreading_accuracy",
    "load_or_train_classifier",
    "metric",
    "mmd",
    "monte_carlo_rate",
    "omniglot_splits",
    "parzen_log_density",
    "parzen_nll",
    "posterior",
    "prior_entropy_reference",
    "random_label_splits",
    "reconstruct",
    "reconstruction_error",
    "select_bandwidth",
    "semi_supervised",
    "svm_accuracy",
    "validate_options",
]
