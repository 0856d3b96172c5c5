"""The paper's published numbers (SPEC section 8), printed beside ours by the report.

Semi-supervised accuracies are in %, keyed by the corruption spec of `vimae.data.corruption`
("clean", "gauss:SIGMA", "mask:P"); None marks a number the paper does not give.
"""

MODELS = ("vae", "beta-vae-h", "beta-vae-a", "vimae-n", "vimae-l")
ELBO_MODELS = ("vae", "beta-vae-h", "beta-vae-a")
VIMAE_MODELS = ("vimae-n", "vimae-l")
LABELS = {
    "vae": "VAE",
    "beta-vae-h": "β_H-VAE",
    "beta-vae-a": "β_A-VAE",
    "vimae-n": "VIMAE-n",
    "vimae-l": "VIMAE-l",
}

# Table 1: Parzen NLL (nats) of generated Omniglot samples, smaller is better.
PARZEN_NLL = {"vae": 1223, "beta-vae-h": 1224, "beta-vae-a": 1254, "vimae-n": 1228, "vimae-l": 1190}

_FIVE = ("clean", "gauss:0.2", "gauss:0.4", "mask:0.2", "mask:0.5")
_THREE = ("clean", "gauss:0.3", "mask:0.2")


def _columns(columns: tuple[str, ...], rows: dict[str, tuple[int, ...]]) -> dict:
    return {model: dict(zip(columns, values, strict=True)) for model, values in rows.items()}


# Tables 2-4: semi-supervised accuracy % per corruption, by table.
SEMI_SUPERVISED = {
    "table2": _columns(
        _THREE,
        {
            "vae": (30, 25, 16),
            "beta-vae-h": (29, 26, 19),
            "beta-vae-a": (31, 31, 18),
            "vimae-n": (29, 28, 23),
            "vimae-l": (32, 34, 23),
        },
    ),
    "table3": _columns(
        _FIVE,
        {
            "vae": (80, 77, 70, 72, 52),
            "beta-vae-h": (92, 86, 82, 91, 84),
            "beta-vae-a": (93, 66, 13, 85, 65),
            "vimae-n": (93, 92, 86, 92, 86),
            "vimae-l": (93, 92, 88, 92, 87),
        },
    ),
    "table4": _columns(
        _FIVE,
        {
            "vae": (22, 22, 17, 22, 16),
            "beta-vae-h": (21, 21, 22, 19, 17),
            "beta-vae-a": (22, 22, 21, 21, 24),
            "vimae-n": (22, 23, 24, 22, 22),
            "vimae-l": (24, 23, 20, 23, 22),
        },
    ),
}
SEMI_SUPERVISED_COLUMNS = {"table2": _THREE, "table3": _FIVE, "table4": _FIVE}
# Chance accuracy % of each table: 100 / classes (10 CIFAR-10 classes, 10 digits, 5 Omniglot
# characters; table 4's own title says "random sampling: 20%").
CHANCE = {"table2": 10.0, "table3": 10.0, "table4": 20.0}
# Codes each accuracy of the paper is measured on: table 4's 100 held-out codes (section 5.3);
# the paper does not say for tables 2-3, whose test splits hold 10,000 images (appendix).
EVALUATED = {"table2": 10_000, "table3": 10_000, "table4": 100}

# Table 5: FID of generated samples (smaller is better); β_H-VAE did not converge on CelebA.
FID = {
    "celeba": {"vae": 82, "beta-vae-h": None, "beta-vae-a": 89, "vimae-l": 56, "vimae-n": 55},
    "cifar10": {"vae": 168, "beta-vae-h": 262, "beta-vae-a": 174, "vimae-l": 103, "vimae-n": 104},
}
