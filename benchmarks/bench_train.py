"""Training throughput and CLI cold start (issue 3). Not a test: prints a markdown table.

    python benchmarks/bench_train.py [--device auto] [--epochs 3]

Measures, on the embedded mnist5k (3,000 training images, conv28, H = 128, Bernoulli):
images/s of the training step at batch 100 (the paper's) and at a large batch, seconds per epoch
(including the validation pass), and the cold start of `vaetool --help` (median of 5 runs).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import torch
from timing import device_name, sync

from vaetool.config import ModelConfig, TrainConfig
from vaetool.data import load_dataset, split_indices
from vaetool.data.feed import DeviceFeed
from vaetool.device import resolve_device
from vaetool.models import build_model
from vaetool.training import fit


def train_throughput(device: torch.device, batch_size: int, epochs: int) -> tuple[float, float]:
    """(images/s of training steps, seconds per epoch incl. validation) after one warm-up epoch."""
    data = load_dataset("mnist5k")
    split = split_indices(len(data))
    torch.manual_seed(0)
    model = build_model(ModelConfig("conv28", (1, 28, 28), latents=128)).to(device)
    train_feed, val_feed = (
        DeviceFeed(data, split.train, device),
        DeviceFeed(data, split.val, device),
    )
    config = TrainConfig(epochs=1, batch_size=batch_size, lr=1e-3)
    fit(model, train_feed, val_feed, config)  # warm-up: kernels, allocator, caches
    sync(device)
    start = time.perf_counter()
    history = fit(
        model, train_feed, val_feed, TrainConfig(epochs=epochs, batch_size=batch_size, lr=1e-3)
    )
    sync(device)
    per_epoch = (time.perf_counter() - start) / epochs
    return statistics.median(r.images_per_s for r in history), per_epoch


def help_cold_start(runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "vaetool", "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--large-batch", type=int, default=1000)
    args = parser.parse_args()
    device = resolve_device(args.device)
    rows = []
    for batch in (100, args.large_batch):
        images_per_s, per_epoch = train_throughput(device, batch, args.epochs)
        rows.append((batch, images_per_s, per_epoch))
    cold = help_cold_start()
    print(f"device: {device_name(device)}; torch {torch.__version__}\n")
    print("| batch | train images/s | s / epoch (mnist5k: 3,000 train + 1,000 val) |")
    print("| ---: | ---: | ---: |")
    for batch, ips, sec in rows:
        print(f"| {batch} | {ips:,.0f} | {sec:.3f} |")
    print(f"\n`vaetool --help` cold start: {cold:.3f} s (median of 5)")


if __name__ == "__main__":
    main()
