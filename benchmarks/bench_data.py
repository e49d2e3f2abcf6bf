"""Images made once and read from the cache (issues 13 and 14).

    python benchmarks/bench_data.py [--folder-images 20000] [--skip-folder]

dSprites: DSpritesData.images for a training batch (64 random indices) and a metric's sample
(10,000) three ways: drawn (VAETOOL_CACHE=off), the first read through the cache (drawn and
stored) and later reads (from the cache file).

Image folder: a generated folder of CelebA-sized JPEGs (178 x 218, smooth colour fields with
noise) read as ``folder:DIR`` at 64 x 64 in shuffled batches of 100 over a whole epoch: the
first epoch without the cache decoding on one thread (what vaetool did before), the first
epoch with the cache (the thread pool decodes and stores), and a later epoch (cache reads).
Prints markdown tables.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from timing import device_name


def _median_seconds(data: object, batches: list[np.ndarray]) -> float:
    """Median seconds of ``data.images(batch)`` over the batches."""
    times = []
    for batch in batches:
        start = time.perf_counter()
        data.images(batch)  # type: ignore[attr-defined]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_dsprites(folder: str) -> None:
    from vaetool.data import dsprites

    rng = np.random.default_rng(0)
    n = int(np.prod(dsprites.FACTOR_SIZES))
    print("\n### dSprites\n")
    print("| images | drawn, ms | first read via the cache (draw + store), ms | cached, ms |")
    print("| ---: | ---: | ---: | ---: |")
    for size, repeats in ((64, 20), (10_000, 3)):
        batches = [rng.choice(n, size, replace=False) for _ in range(repeats)]
        os.environ["VAETOOL_CACHE"] = "off"
        drawn = _median_seconds(dsprites.DSpritesData(), batches)
        os.environ["VAETOOL_CACHE"] = folder
        cached = dsprites.DSpritesData()
        first = _median_seconds(cached, batches)
        again = _median_seconds(cached, batches)
        print(f"| {size:,} | {drawn * 1e3:.1f} | {first * 1e3:.1f} | {again * 1e3:.2f} |")
    print(f"\nthe whole grid drawn: ~{drawn / size * n:.0f} s on this machine")


def make_folder(directory: Path, n: int) -> None:
    """``n`` JPEGs of 178 x 218 (CelebA's size): smooth colour fields plus noise."""
    from PIL import Image

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:218, 0:178].astype(np.float32)
    for i in range(n):
        a, b, c = rng.random(3) * 0.05
        field = np.stack([np.sin(a * xx + b * yy + k + c * i) for k in range(3)], -1)
        pixels = 127 + 80 * field + rng.normal(0, 12, field.shape)
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        image.save(directory / f"{i:06d}.jpg", quality=90)


def _epoch(data: object, n: int, batch: int = 100) -> float:
    """Images/s of one shuffled pass in batches of ``batch``."""
    order = np.random.default_rng(1).permutation(n)
    start = time.perf_counter()
    for i in range(0, n, batch):
        data.images(order[i : i + batch])  # type: ignore[attr-defined]
    return n / (time.perf_counter() - start)


def bench_folder(cache: str, n: int) -> None:
    from vaetool.data import folder as folder_module

    with tempfile.TemporaryDirectory(prefix="vaetool-bench-folder-") as tmp:
        directory = Path(tmp) / "celeba-like"
        start = time.perf_counter()
        make_folder(directory, n)
        print(f"\n### Image folder: {n:,} JPEGs 178 × 218 "
              f"(generated in {time.perf_counter() - start:.0f} s)\n")  # fmt: skip
        os.environ["VAETOOL_CACHE"] = "off"
        threads = folder_module.DECODE_THREADS
        folder_module.DECODE_THREADS = 1
        single = _epoch(folder_module.FolderData(directory), n)
        folder_module.DECODE_THREADS = threads
        pooled = _epoch(folder_module.FolderData(directory), n)
        os.environ["VAETOOL_CACHE"] = cache
        first = _epoch(folder_module.FolderData(directory), n)
        later = _epoch(folder_module.FolderData(directory), n)
        print("| epoch | images/s |")
        print("| --- | ---: |")
        print(f"| no cache, decoded on 1 thread | {single:,.0f} |")
        print(f"| no cache, decoded by the pool ({threads} threads) | {pooled:,.0f} |")
        print(f"| first epoch through the cache (pool decodes + stores) | {first:,.0f} |")
        print(f"| later epochs (cache reads) | {later:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder-images", type=int, default=20_000)
    parser.add_argument("--skip-folder", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vaetool-bench-cache-") as cache:
        print(f"device: {device_name(torch.device('cpu'))}")
        bench_dsprites(cache)
        if not args.skip_folder:
            bench_folder(cache, args.folder_images)


if __name__ == "__main__":
    main()
