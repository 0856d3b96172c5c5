"""Training speed of vimae against pythae on the paper's networks, measured in one run.

    pip install -e '.[bench]'          # pythae 0.1.2, the peer; only this benchmark needs it
    python benchmarks/train_speed.py   # about 15 minutes on a 2-core CPU

Prints the machine, the float32 matmul rate (2048x2048, before and after), the FLOP of one
training step (counted by torch.utils.flop_counter, forward + backward), and a table per network
and width (`--nets`, default dcgan28 at 1.0, 0.25 and 0.125 with d = 8, dcgan64 at 0.0625 with
d = 64 on 64x64 images, and figure 1's mlp with d = 2: the paper's width and the widths the cpu
scale trains): images/s of vimae's training step (`build_optimizer` + `compute_gradients` +
`optimizer.step`, exactly what `fit` runs, with the allocator settings `fit` makes) and of
pythae's WAE_MMD on the *same* encoder/decoder modules and weights (the same loss: sum of squared
errors + lambda * multi-scale IMQ MMD) on PyTorch's own kernels, as a pythae user runs it. Each
variant lives in its own process (the malloc settings are process-wide) and the processes take
turns round by round, so all see the same machine state. At width 1.0 two ablations say what the
kernels and the allocator each bring. Also: the ratio, the fraction of the matmul rate, evaluation
throughput (encode + decode, no gradients), peak resident memory of each process, and the effect
of bfloat16 autocast (`--precision bf16`) on speed and on the loss.
"""

import argparse
import contextlib
import dataclasses
import json
import multiprocessing
import platform
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from vimae.config import ModelConfig, TrainConfig
from vimae.models import build_model, resolve
from vimae.models.kernel import native_kernels
from vimae.runs.allocator import keep_freed_memory
from vimae.runs.fit import build_optimizer, compute_gradients

BATCH = 100
SCALES = [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0]


@dataclasses.dataclass(frozen=True)
class Net:
    """A network at one width, with the latent size and image shape the cpu scale trains it on."""

    arch: str
    width: float
    latent_dim: int
    image_shape: tuple[int, int, int]

    @property
    def name(self) -> str:
        return f"{self.arch} {self.width:g}"

    @classmethod
    def parse(cls, text: str) -> "Net":
        """'dcgan28:0.125' -> Net (d and the image shape from the network)."""
        arch, _, width = text.partition(":")
        shapes = {"dcgan28": (1, 28, 28), "dcgan64": (3, 64, 64), "mlp": (1, 28, 28)}
        dims = {"dcgan28": 8, "dcgan64": 64, "mlp": 2}
        return cls(arch, float(width), dims[arch], shapes[arch])


def vimae_model(net: Net, noise: float = 0.0):
    """vimae-n without input noise computes exactly WAE-MMD's loss (pythae's WAE_MMD)."""
    torch.manual_seed(0)
    config = ModelConfig(
        name="vimae-n", arch=net.arch, width=net.width, latent_dim=net.latent_dim,
        encoder_noise=noise,
    )  # fmt: skip
    return build_model(resolve(config, "mnist", net.image_shape))


def vimae_stepper(
    net: Net, precision: str = "float32", compiled: bool = False, channels_last: bool = False
):
    """vimae's training step: what `fit` runs for one batch (`compiled`: under torch.compile;
    `channels_last`: the weights and the batch in channels-last layout, which oneDNN's
    convolutions and the batch norms then keep; `fit` does neither, benchmarks/step_profile.py
    measures both)."""
    model = vimae_model(net).train()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, TrainConfig())
    step_model = torch.compile(model) if compiled else model
    layout = torch.channels_last if channels_last else torch.contiguous_format

    def step(x: torch.Tensor) -> float:
        x = x.contiguous(memory_format=layout)
        terms = compute_gradients(step_model, optimizer, x, precision)
        optimizer.step()
        return terms["loss"].item()

    return step


def pythae_stepper(net: Net):
    from pythae.models import WAE_MMD, WAE_MMD_Config
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    source = vimae_model(net)  # same modules, same initial weights

    class Encoder(BaseEncoder):
        def __init__(self) -> None:
            super().__init__()
            self.net = source.encoder

        def forward(self, x):
            return ModelOutput(embedding=self.net(x))

    class Decoder(BaseDecoder):
        def __init__(self) -> None:
            super().__init__()
            self.net = source.decoder

        def forward(self, z):
            return ModelOutput(reconstruction=self.net(z))

    config = WAE_MMD_Config(
        input_dim=net.image_shape,
        latent_dim=net.latent_dim,
        kernel_choice="imq",
        reg_weight=10.0,
        kernel_bandwidth=1.0,
        scales=SCALES,
        reconstruction_loss_scale=1.0,
    )
    model = WAE_MMD(config, encoder=Encoder(), decoder=Decoder()).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))

    def step(x: torch.Tensor) -> float:
        out = model({"data": x})
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        return out.loss.item()

    return step


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(seconds(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def step_gflop(net: Net) -> float:
    """FLOP of one training step (forward + backward) on a batch, counted, in GFLOP."""
    model = vimae_model(net).train()
    x = torch.rand(BATCH, *net.image_shape)
    with native_kernels(), FlopCounterMode(display=False) as counter:
        model(x)["loss"].backward()
    return counter.get_total_flops() / 1e9


@dataclasses.dataclass(frozen=True)
class Variant:
    """One training-step implementation, run in its own process so that process-wide settings
    (the allocator) stay with the implementation that chose them."""

    name: str
    library: str  # "vimae" or "pythae"
    tuned_kernels: bool  # vimae.models.kernel's CPU kernels (else PyTorch's own for every layer)
    keep_freed_memory: bool  # vimae.runs.allocator's malloc settings (else glibc's defaults)


VIMAE = Variant("vimae", "vimae", True, True)
PYTHAE = Variant("pythae", "pythae", False, False)
ABLATIONS = [
    Variant("vimae, PyTorch kernels", "vimae", False, True),
    Variant("vimae, default allocator", "vimae", True, False),
]


def _worker(connection, variant: Variant, net: Net, threads: int) -> None:
    """Build the variant's step, then run as many steps as asked and answer with the seconds."""
    torch.set_num_threads(threads)
    if variant.keep_freed_memory:
        keep_freed_memory()
    with contextlib.ExitStack() as stack:
        if not variant.tuned_kernels:
            stack.enter_context(native_kernels())
        step = vimae_stepper(net) if variant.library == "vimae" else pythae_stepper(net)
        x = torch.rand(BATCH, *net.image_shape)
        step(x)  # warm-up: oneDNN primitive caches, allocator
        while (steps := connection.recv()) is not None:
            connection.send(seconds(lambda: [step(x) for _ in range(steps)]))
    connection.send(peak_resident_mb())


def peak_resident_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the
    parent that spawned it)."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def race(variants: list[Variant], net: Net, rounds: int, steps: int, threads: int) -> dict:
    """images/s (median over rounds) and peak memory (MB) per variant, each in its own process,
    taking turns round by round so that all of them see the same machine state."""
    context = multiprocessing.get_context("spawn")
    pipes, processes = {}, []
    for variant in variants:
        pipes[variant.name], child = context.Pipe()
        processes.append(context.Process(target=_worker, args=(child, variant, net, threads)))
        processes[-1].start()
    speeds: dict[str, list[float]] = {name: [] for name in pipes}
    for _ in range(rounds):
        for name, pipe in pipes.items():
            pipe.send(steps)
            speeds[name].append(steps * BATCH / pipe.recv())
    memory = {}
    for name, pipe in pipes.items():
        pipe.send(None)
        memory[name] = pipe.recv()
    for process in processes:
        process.join()
    return {
        name: {"images_per_s": statistics.median(v), "peak_memory_mb": memory[name]}
        for name, v in speeds.items()
    }


@torch.inference_mode()
def eval_images_per_second(net: Net, repeats: int = 3) -> float:
    model = vimae_model(net).eval()
    x = torch.rand(1000, *net.image_shape)
    model.decode(model.encode(x[:BATCH]))
    best = min(
        seconds(
            lambda: [model.decode(model.encode(x[i : i + BATCH])) for i in range(0, len(x), BATCH)]
        )
        for _ in range(repeats)
    )
    return len(x) / best


def autocast_effect(width: float, steps: int) -> dict:
    """Loss after `steps` steps on real digits (28x28) in float32 and in bf16 autocast."""
    from vimae.data import load_dataset

    x = load_dataset("digits", "train", image_size=28).images[:BATCH]
    result = {}
    for name, precision in (("float32", "float32"), ("bf16 autocast", "bf16")):
        step = vimae_stepper(Net("dcgan28", width, 8, (1, 28, 28)), precision)
        start = time.perf_counter()
        losses = [step(x) for _ in range(steps)]
        result[name] = {
            "final loss": losses[-1],
            "images/s": steps * BATCH / (time.perf_counter() - start),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=2, help="steps per round at width 1.0")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument(
        "--nets",
        nargs="+",
        default=["dcgan28:1.0", "dcgan28:0.25", "dcgan28:0.125", "dcgan64:0.0625", "mlp:1.0"],
        help="networks as ARCH:WIDTH",
    )
    parser.add_argument("--autocast-steps", type=int, default=20)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # this process measures vimae's evaluation and autocast
    with open("/proc/cpuinfo") as f:
        names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    cpu = names[0] if names else platform.processor()
    print(f"machine: {cpu}; {args.threads} threads; torch {torch.__version__}; float32")
    matmul_before = matmul_gflops()
    print(f"matmul 2048x2048 float32: {matmul_before:.1f} GFLOP/s")
    results: dict = {
        "machine": cpu,
        "threads": args.threads,
        "torch": torch.__version__,
        "matmul_gflops_before": matmul_before,
        "rows": [],
        "ratios": {},
    }
    rows = []
    for net in map(Net.parse, args.nets):
        flop = step_gflop(net)
        print(
            f"{net.name}, d = {net.latent_dim}, {net.image_shape}, batch {BATCH}: {flop:.2f} "
            f"GFLOP per training step ({flop / BATCH:.3f} GFLOP per image)"
        )
        variants = [VIMAE, PYTHAE, *(ABLATIONS if net.name == "dcgan28 1" else [])]
        steps = max(1, min(40, round(args.steps * 5.5 / max(flop, 1e-3))))  # ~ seconds a round
        speeds = race(variants, net, args.rounds, steps, args.threads)
        eval_speed = eval_images_per_second(net)
        for variant in variants:
            rate = speeds[variant.name]["images_per_s"] / BATCH * flop
            rows.append(
                {
                    "impl": variant.name,
                    "net": net.name,
                    **speeds[variant.name],
                    "gflop_per_step": flop,
                    "gflops": rate,
                    "eval_images_per_s": eval_speed if variant is VIMAE else None,
                }
            )
        ratio = speeds["vimae"]["images_per_s"] / speeds["pythae"]["images_per_s"]
        results["ratios"][net.name] = ratio
    matmul_after = matmul_gflops()
    print(f"matmul 2048x2048 float32 again: {matmul_after:.1f} GFLOP/s")
    # the machine's speed drifts (a shared VM): fractions are of the faster of the two
    matmul = max(matmul_before, matmul_after)
    for row in rows:
        row["fraction_of_matmul"] = row["gflops"] / matmul
    results.update(matmul_gflops_after=matmul_after, matmul_gflops=matmul, rows=rows)

    print(
        f"\n| impl | network | images/s | GFLOP/s | fraction of {matmul:.0f} GFLOP/s | eval "
        "images/s | peak memory MB |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        eval_speed = "-" if row["eval_images_per_s"] is None else f"{row['eval_images_per_s']:.0f}"
        print(
            f"| {row['impl']} | {row['net']} | {row['images_per_s']:.1f} | {row['gflops']:.1f} "
            f"| {row['fraction_of_matmul']:.2f} | {eval_speed} | {row['peak_memory_mb']:.0f} |"
        )
    print()
    for name, ratio in results["ratios"].items():
        print(f"vimae / pythae images/s, {name} (same run, alternating): {ratio:.3f}")

    if args.autocast_steps:
        effect = autocast_effect(0.25, steps=args.autocast_steps)
        print(
            f"\nbf16 autocast, width 0.25, {args.autocast_steps} steps on 100 real digits "
            "(resized to 28x28):"
        )
        for name, row in effect.items():
            print(f"  {name}: final loss {row['final loss']:.3f}, {row['images/s']:.0f} images/s")
        results["autocast"] = effect
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
