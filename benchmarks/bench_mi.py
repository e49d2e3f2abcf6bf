"""Speed of the `mi rank` pass and of the mixture estimator (issue 4). Not a test.

    python benchmarks/bench_mi.py [--device auto] [--images 100000] [--mixture-n 10000]
        [--mixture-sizes 20000x128,50000x512] [--mixture-points M] [--mixture-only]

1. Encoder pass over ``--images`` MNIST-shaped images (mnist5k tiled, resident on the device as
   uint8), conv28 with H = 128: raw (mu, logvar only), with the streaming q* accumulator (what
   `mi fit` / `mi rank` run), and keeping the posterior for the mixture estimator.
2. The mixture estimator (MATH.md §3) at N = ``--mixture-n``, H = 128, M' = N, S = 1.
3. The mixture estimator's marginal cost per evaluation point (S = 1) at each N x H of
   ``--mixture-sizes`` (M' = ``--mixture-points``, default one chunk, vs twice that): wall
   seconds and this process's user and system CPU seconds (getrusage), so allocation overhead
   (system time) shows; plus the fixed setup.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np
import torch
from timing import device_name, sync, timed

from vaetool.analysis import QStarAccumulator, auto_chunk_size, mixture_information
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


def random_posterior(device: torch.device, n: int, h: int) -> tuple[torch.Tensor, torch.Tensor]:
    """mu ~ N(0, 1), logvar ~ U(-3, 1): (N, H) float32 on ``device``."""
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(n, h, generator=g).to(device)
    logvar = (torch.rand(n, h, generator=g) * 4 - 3).to(device)
    return mu, logvar


def mixture_time(device: torch.device, n: int, h: int = 128) -> float:
    mu, logvar = random_posterior(device, n, h)
    return timed(lambda: mixture_information(mu, logvar, eval_points=n), device, repeats=1)


def mixture_cost(mu: torch.Tensor, logvar: torch.Tensor, points: int) -> tuple[float, ...]:
    """(wall, user CPU, system CPU) seconds of one estimate with M' = ``points``, S = 1."""
    sync(mu.device)
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    mixture_information(mu, logvar, eval_points=points)
    sync(mu.device)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    return wall, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime


def mixture_per_point(
    device: torch.device, n: int, h: int, points: int, repeats: int = 3
) -> dict[str, float]:
    """Marginal seconds per evaluation point (S = 1) at N, H, and the fixed setup (wall).

    (cost at 2·``points`` − cost at ``points``) / ``points`` for wall, user and system CPU time
    (this process, getrusage): medians over ``repeats`` after a warm-up. System time is mostly
    page faults of freshly allocated memory.
    """
    mu, logvar = random_posterior(device, n, h)
    mixture_cost(mu, logvar, points)  # warm-up
    one = [mixture_cost(mu, logvar, points) for _ in range(repeats)]
    two = [mixture_cost(mu, logvar, 2 * points) for _ in range(repeats)]
    costs = {}
    for i, key in enumerate(("wall", "user", "system")):
        low, high = statistics.median(c[i] for c in one), statistics.median(c[i] for c in two)
        costs[key] = (high - low) / points
    costs["setup"] = statistics.median(c[0] for c in one) - points * costs["wall"]
    return costs


def print_mixture_per_point(device: torch.device, sizes: str, points: int | None) -> None:
    print("\n| mixture, S = 1 | M' | s/point wall | user | system | setup s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for size in sizes.split(","):
        n, h = (int(v) for v in size.lower().split("x"))
        m = points or auto_chunk_size(n, h, device)
        t = mixture_per_point(device, n, h, m)
        print(
            f"| N = {n:,}, H = {h} | {m} vs {2 * m} | {t['wall']:.4f} | {t['user']:.4f} "
            f"| {t['system']:.4f} | {t['setup']:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--mixture-n", type=int, default=10_000)
    parser.add_argument("--mixture-sizes", default="20000x128,50000x512")
    parser.add_argument("--mixture-points", type=int, default=None, help="default: a chunk")
    parser.add_argument("--mixture-only", action="store_true", help="skip parts 1 and 2")
    args = parser.parse_args()
    device = resolve_device(args.device)
    name = device_name(device)
    print(f"device: {name} ({torch.get_num_threads()} CPU threads); torch {torch.__version__}\n")
    if args.mixture_only:
        print_mixture_per_point(device, args.mixture_sizes, args.mixture_points)
        return
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
    print_mixture_per_point(device, args.mixture_sizes, args.mixture_points)


if __name__ == "__main__":
    main()
