"""Speed of the `mi rank` pass and of the mixture estimator (issue 4). Not a test.

    python benchmarks/bench_mi.py [--device auto] [--images 100000] [--mixture-n 10000]

1. Encoder pass over ``--images`` MNIST-shaped images (mnist5k tiled, resident on the device as
   uint8), conv28 with H = 128: raw (mu, logvar only), with the streaming q* accumulator (what
   `mi fit` / `mi rank` run), and keeping the posterior for the mixture estimator.
2. The mixture estimator (MATH.md §3) at N = ``--mixture-n``, H = 128, M' = N, S = 1.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from timing import device_name, timed

from vaetool.analysis import QStarAccumulator, mixture_information
from vaetool.analysis.encode import encode
from vaetool.config import ModelConfig
from vaetool.data import ArrayData, load_dataset
from vaetool.data.feed import DeviceFeed
from vaetool.device import inference_batch_size, resolve_device
from vaetool.models import build_model


def tiled_mnist(n: int) -> ArrayData:
    pixels = load_dataset("mnist5k").pixels()
    reps = -(-n // len(pixels))
    return ArrayData("mnist5k-tiled", pixels.repeat(reps, 1, 1, 1)[:n].contiguous())


def encoder_pass(device: torch.device, n: int) -> dict[str, float]:
    torch.manual_seed(0)
    model = build_model(ModelConfig("conv28", (1, 28, 28), latents=128)).to(device).eval()
    feed = DeviceFeed(tiled_mnist(n), np.arange(n), device)

    def with_qstar() -> None:
        accumulator = QStarAccumulator(128, device=device)
        encode(model, feed, keep=False, accumulator=accumulator)
        accumulator.finalize()

    raw = timed(lambda: encode(model, feed, keep=False), device)
    qstar = timed(with_qstar, device)
    keep = timed(lambda: encode(model, feed, keep=True), device)
    posterior = encode(model, feed, keep=True)
    batch = inference_batch_size(device)

    def accumulate_only() -> None:  # the q* work alone, on the same batches
        accumulator = QStarAccumulator(128, device=device)
        for start in range(0, n, batch):
            rows = slice(start, start + batch)
            accumulator.update(posterior.mu[rows], posterior.logvar[rows])
        accumulator.finalize()

    alone = timed(accumulate_only, device)
    return {"raw": raw, "qstar": qstar, "keep": keep, "alone": alone}


def mixture_time(device: torch.device, n: int, h: int = 128) -> float:
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(n, h, generator=g).to(device)
    logvar = (torch.rand(n, h, generator=g) * 4 - 3).to(device)
    return timed(lambda: mixture_information(mu, logvar, eval_points=n), device, repeats=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--mixture-n", type=int, default=10_000)
    args = parser.parse_args()
    device = resolve_device(args.device)
    name = device_name(device)
    print(f"device: {name} ({torch.get_num_threads()} CPU threads); torch {torch.__version__}\n")
    t = encoder_pass(device, args.images)
    print(f"| pass over {args.images:,} images (conv28, H = 128) | s | images/s |")
    print("| --- | ---: | ---: |")
    for label, key in (
        ("encoder only", "raw"),
        ("encoder + streaming q* (`mi rank`)", "qstar"),
        ("encoder, posterior kept (mixture input)", "keep"),
    ):
        print(f"| {label} | {t[key]:.3f} | {args.images / t[key]:,.0f} |")
    print(f"\nq* overhead on the encoder pass: {100 * (t['qstar'] / t['raw'] - 1):+.1f} %")
    print(
        f"q* accumulator alone on the same batches: {t['alone']:.4f} s "
        f"= {100 * t['alone'] / t['raw']:.1f} % of the encoder pass"
    )
    seconds = mixture_time(device, args.mixture_n)
    print(f"mixture estimator, N = M' = {args.mixture_n:,}, H = 128, S = 1: {seconds:.3f} s")


if __name__ == "__main__":
    main()
