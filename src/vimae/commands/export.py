"""`vimae export`: a trained model for use outside training, optionally as ONNX graphs.

DIR/model.safetensors and DIR/config.json hold the weights alone (see `vimae.runs.loading`;
`load_exported(DIR)` reads them back, and every command on a model accepts DIR as its RUN). With
`--onnx`, DIR/encoder.onnx maps images (B, C, H, W) to codes (B, d) (a Gaussian encoder also
outputs logvar (B, d)) and DIR/decoder.onnx codes (B, d) to images, for any batch size B.

The graphs come from PyTorch's torch.export-based exporter (`torch.onnx.export(dynamo=True)`, the
default since PyTorch 2.9; the TorchScript one is deprecated), which needs the `onnx` and
`onnxscript` packages; each graph is then run with onnxruntime on a batch of another size than
the traced one and compared with PyTorch before the command reports success. The three packages
are the `vimae[onnx]` extra.
"""

import argparse
import contextlib
import logging
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vimae.commands.common import add_run_argument, finish, out_path
from vimae.errors import VimaeError
from vimae.files import atomic_write, writable_folder
from vimae.models import Autoencoder, GaussianVAE
from vimae.runs.checkpoint import CHECKPOINT_FILE
from vimae.runs.evaluation import checkpoint_step
from vimae.runs.folder import METRICS_FILE
from vimae.runs.loading import load_trained, save_export

ENCODER_ONNX = "encoder.onnx"
DECODER_ONNX = "decoder.onnx"
OPSET = 18
# Largest |ONNX - PyTorch| accepted on the check batch: float32 reassociation is ~1e-6.
ONNX_TOLERANCE = 1e-4


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="the model's weights and config (and ONNX graphs) for use outside training",
        description="Write DIR/model.safetensors (weights only, verified on load) and "
        "DIR/config.json; with --onnx also DIR/encoder.onnx and DIR/decoder.onnx.",
    )
    add_run_argument(p)
    p.add_argument("--out", type=out_path, required=True, help="output folder DIR")
    p.add_argument(
        "--onnx",
        action="store_true",
        help="also export encoder and decoder as ONNX (needs pip install 'vimae[onnx]')",
    )
    p.set_defaults(handler=run_export)


class EncoderGraph(nn.Module):
    """The evaluation encoder as a module to trace: images -> codes (VIMAE's noiseless code, a
    VAE's posterior mean), and for a Gaussian encoder (codes, logvar)."""

    def __init__(self, model: Autoencoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if isinstance(self.model, GaussianVAE):
            return self.model.split(x)
        return self.model.mean_codes(x)  # the networks alone: no input checks in the graph


def encoder_outputs(model: Autoencoder) -> list[str]:
    return ["codes", "logvar"] if isinstance(model, GaussianVAE) else ["codes"]


def require_onnx() -> None:
    """One sentence unless the ONNX packages are installed and torch has the exporter (2.5 or
    later), checked before anything is written."""
    major, minor = (int(part) for part in torch.__version__.split(".")[:2])
    if (major, minor) < (2, 5):
        raise VimaeError(
            f"--onnx needs torch 2.5 or later (its torch.export-based exporter); this is torch "
            f"{torch.__version__}."
        )
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise VimaeError(
            f"--onnx needs the package {err.name}: pip install 'vimae[onnx]' "
            "(onnx, onnxscript, onnxruntime)."
        ) from None


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Hide the exporter's chatter (deprecations inside torch, 'torchvision is not installed')."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export_graph(
    module: nn.Module, example: torch.Tensor, path: Path, inputs: list[str], outputs: list[str]
) -> Path:
    """Trace `module` on `example` (batch dimension left free) and write the graph atomically."""
    batch = torch.export.Dim("batch")
    with _quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(
            module,
            (example,),
            dynamo=True,
            input_names=inputs,
            output_names=outputs,
            dynamic_shapes=({0: batch},),
            opset_version=OPSET,
            verbose=False,
        )
    atomic_write(path, lambda tmp: program.save(str(tmp)))
    return path


def export_onnx(model: Autoencoder, folder: Path) -> list[Path]:
    """DIR/encoder.onnx and DIR/decoder.onnx of a CPU model (see the module docstring)."""
    c, h, w = model.image_shape
    x = torch.rand(2, c, h, w, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        z = model.encode(x)
    encoder = EncoderGraph(model).eval()
    return [
        export_graph(encoder, x, folder / ENCODER_ONNX, ["images"], encoder_outputs(model)),
        export_graph(model.decoder, z, folder / DECODER_ONNX, ["codes"], ["images"]),
    ]


def onnx_difference(model: Autoencoder, folder: Path, n: int = 5) -> float:
    """Largest |ONNX - PyTorch| over the encoder's and decoder's outputs on n seeded images and
    their codes, run by onnxruntime on the CPU."""
    import onnxruntime

    c, h, w = model.image_shape
    x = torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = EncoderGraph(model)(x)
        expected = expected if isinstance(expected, tuple) else (expected,)
        images = model.decode(expected[0])
    pairs = [(ENCODER_ONNX, "images", x, expected), (DECODER_ONNX, "codes", expected[0], (images,))]
    worst = 0.0
    for name, feed, value, reference in pairs:
        session = onnxruntime.InferenceSession(
            str(folder / name), providers=["CPUExecutionProvider"]
        )
        got = session.run(None, {feed: value.numpy()})
        for array, want in zip(got, reference, strict=True):
            worst = max(worst, float(np.abs(array - want.numpy()).max()))
    return worst


def run_export(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    run_dir, out = Path(args.run_dir), Path(args.out)
    if args.onnx:
        require_onnx()
    trained = load_trained(run_dir, "cpu")
    if out.exists() and out.resolve() == run_dir.resolve():
        raise VimaeError(f"--out {out} is the run folder itself; export into another folder.")
    for name in (CHECKPOINT_FILE, METRICS_FILE):
        if (out / name).exists():
            raise VimaeError(
                f"--out {out} holds a training run ({name}); export into another folder."
            )
    if out.exists() and not out.is_dir():
        raise VimaeError(f"--out {out} is a file; give a folder for the exported model.")
    writable_folder(out)
    source = {"run_dir": str(run_dir), "checkpoint_step": checkpoint_step(run_dir)}
    paths = save_export(out, trained.model, trained.config, source)
    summary = f"{trained.config.model.name} exported: weights and config"
    if args.onnx:
        paths += export_onnx(trained.model, out)
        worst = onnx_difference(trained.model, out)
        if worst > ONNX_TOLERANCE:
            raise VimaeError(
                f"the ONNX graphs in {out} differ from the model by up to {worst:.2g} (more than "
                f"{ONNX_TOLERANCE:g}); do not use them, and report this with your torch version."
            )
        summary += f", ONNX encoder and decoder (onnxruntime matches PyTorch to {worst:.1g})"
    return finish(started, summary, paths)
