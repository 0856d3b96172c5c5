"""Training speed of vimae against pythae on the paper's dcgan28 network, measured in one run.

    pip install -e '.[bench]'          # pythae 0.1.2, the peer; only this benchmark needs it
    python benchmarks/train_speed.py   # about 10 minutes on a 2-core CPU

Prints the machine, the float32 matmul rate (2048x2048), the FLOP of one training step (counted
by torch.utils.flop_counter, forward + backward), and a table: images/s of vimae's training step
(`vimae.train.build_optimizer` + `compute_gradients` + `optimizer.step`, exactly what `fit` runs)
and of pythae's WAE_MMD with the *same* encoder/decoder modules and weights (the same loss: sum of
squared errors + lambda * multi-scale IMQ MMD), timed alternately round by round so that both see
the same machine state; their ratio; the fraction of the matmul rate each reaches; vimae at width
0.25 and 0.125; evaluation throughput (encode + decode, no gradients); peak memory (each setting
in a fresh process); and the effect of bfloat16 autocast on speed and on the loss.
"""

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from vimae.config import ModelConfig, TrainConfig
from vimae.model import build_model, resolve
from vimae.train import build_optimizer, compute_gradients

BATCH = 100
SCALES = [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0]


def vimae_model(width: float, noise: float = 0.0):
    """vimae-n without input noise computes exactly WAE-MMD's loss (pythae's WAE_MMD)."""
    torch.manual_seed(0)
    config = ModelConfig(name="vimae-n", arch="dcgan28", width=width, encoder_noise=noise)
    return build_model(resolve(config, "mnist", (1, 28, 28)))


def vimae_stepper(width: float, autocast: bool = False):
    model = vimae_model(width).train()
    optimizer = build_optimizer(model, TrainConfig())

    def step(x: torch.Tensor) -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            terms = compute_gradients(model, optimizer, x)
        optimizer.step()
        return terms["loss"].item()

    return step


def pythae_stepper(width: float):
    from pythae.models import WAE_MMD, WAE_MMD_Config
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    source = vimae_model(width)  # same modules, same initial weights

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
        input_dim=(1, 28, 28),
        latent_dim=8,
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
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def step_gflop(width: float) -> float:
    """FLOP of one training step (forward + backward) on a batch, counted, in GFLOP."""
    model = vimae_model(width).train()
    x = torch.rand(BATCH, 1, 28, 28)
    with FlopCounterMode(display=False) as counter:
        model(x)["loss"].backward()
    return counter.get_total_flops() / 1e9


def images_per_second(steppers: dict, x: torch.Tensor, rounds: int, steps: int) -> dict:
    """Median images/s per stepper; steppers alternate within every round."""
    for step in steppers.values():  # warm-up (allocator, oneDNN primitive caches)
        step(x)
    times: dict[str, list[float]] = {name: [] for name in steppers}
    for _ in range(rounds):
        for name, step in steppers.items():
            elapsed = _timed(lambda s=step: [s(x) for _ in range(steps)])
            times[name].append(steps * BATCH / elapsed)
    return {name: statistics.median(v) for name, v in times.items()}


@torch.inference_mode()
def eval_images_per_second(width: float, repeats: int = 3) -> float:
    model = vimae_model(width).eval()
    x = torch.rand(1000, 1, 28, 28)
    model.decode(model.encode(x[:BATCH]))
    best = min(
        _timed(
            lambda: [model.decode(model.encode(x[i : i + BATCH])) for i in range(0, len(x), BATCH)]
        )
        for _ in range(repeats)
    )
    return len(x) / best


def peak_memory_mb(kind: str, width: float) -> float:
    """Peak resident memory of a fresh process that runs 3 training steps of `kind`."""
    code = (
        f"import sys; sys.path.insert(0, {str(__file__.rsplit('/', 1)[0])!r});"
        f"import torch, train_speed as b, resource; torch.set_num_threads(2);"
        f"s = b.{kind}_stepper({width}); x = torch.rand(100, 1, 28, 28);"
        f"[s(x) for _ in range(3)];"
        f"print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def autocast_effect(width: float, steps: int) -> dict:
    """Loss after `steps` steps on real digits (28x28) in float32 and in bf16 autocast."""
    from vimae.data import load_dataset

    x = load_dataset("digits", "train", image_size=28).images[:BATCH]
    result = {}
    for name, autocast in (("float32", False), ("bf16 autocast", True)):
        step = vimae_stepper(width, autocast)
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
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.rand(BATCH, 1, 28, 28)
    with open("/proc/cpuinfo") as f:
        names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    cpu = names[0] if names else platform.processor()
    print(f"machine: {cpu}; {args.threads} threads; torch {torch.__version__}; float32")

    peak = matmul_gflops()
    print(f"matmul 2048x2048 float32: {peak:.1f} GFLOP/s")
    results: dict = {
        "machine": cpu,
        "threads": args.threads,
        "torch": torch.__version__,
        "matmul_gflops": peak,
        "rows": [],
    }

    flop = step_gflop(1.0)
    print(
        f"dcgan28 width 1.0, batch {BATCH}: {flop:.1f} GFLOP per training step "
        f"({flop / BATCH:.2f} GFLOP per image)"
    )
    speeds = images_per_second(
        {"vimae": vimae_stepper(1.0), "pythae": pythae_stepper(1.0)}, x, args.rounds, args.steps
    )
    rows = [("vimae", 1.0, speeds["vimae"], flop), ("pythae", 1.0, speeds["pythae"], flop)]
    for width in (0.25, 0.125):
        speed = images_per_second({"vimae": vimae_stepper(width)}, x, args.rounds, args.steps * 4)[
            "vimae"
        ]
        rows.append(("vimae", width, speed, step_gflop(width)))

    print(
        "\n| impl | width | images/s | GFLOP/s | fraction of matmul rate | eval images/s "
        "| peak memory MB |"
    )
    print("|---|---|---|---|---|---|---|")
    for impl, width, speed, gflop in rows:
        rate = speed / BATCH * gflop
        eval_speed = eval_images_per_second(width) if impl == "vimae" else float("nan")
        memory = peak_memory_mb(impl, width) if width == 1.0 else float("nan")
        print(
            f"| {impl} | {width} | {speed:.1f} | {rate:.1f} | {rate / peak:.2f} | "
            f"{eval_speed:.0f} | {memory:.0f} |"
        )
        results["rows"].append(
            {
                "impl": impl,
                "width": width,
                "images_per_s": speed,
                "gflop_per_step": gflop,
                "fraction_of_matmul": rate / peak,
                "eval_images_per_s": eval_speed,
                "peak_memory_mb": memory,
            }
        )
    ratio = speeds["vimae"] / speeds["pythae"]
    print(f"\nvimae / pythae images/s at width 1.0 (same run, alternating): {ratio:.3f}")
    results["ratio_vimae_over_pythae"] = ratio

    effect = autocast_effect(0.25, steps=30)
    print("\nbf16 autocast, width 0.25, 30 steps on 100 real digits (resized to 28x28):")
    for name, row in effect.items():
        print(f"  {name}: final loss {row['final loss']:.3f}, {row['images/s']:.0f} images/s")
    results["autocast"] = effect
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
