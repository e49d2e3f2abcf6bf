"""dSprites images: drawn on demand against read from the render cache (issue 13).

    python benchmarks/bench_data.py [--cache DIR]

Times DSpritesData.images for a training batch (64 random indices) and a metric's sample
(10,000 random indices) three ways: drawn (VAETOOL_CACHE=off), the first read through the cache
(drawn and stored), and later reads (from the cache file). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import torch
from timing import device_name


def _seconds(data: object, batches: list[np.ndarray]) -> float:
    """Median seconds of ``data.images(batch)`` over the batches."""
    times = []
    for batch in batches:
        start = time.perf_counter()
        data.images(batch)  # type: ignore[attr-defined]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", help="cache folder (default: a fresh temporary one)")
    args = parser.parse_args()
    folder = args.cache or tempfile.mkdtemp(prefix="vaetool-bench-cache-")
    from vaetool.data import dsprites

    rng = np.random.default_rng(0)
    n = int(np.prod(dsprites.FACTOR_SIZES))
    print(f"device: {device_name(torch.device('cpu'))}, cache folder {folder}")
    print("| images | drawn, ms | first read via the cache (draw + store), ms | cached, ms |")
    print("| ---: | ---: | ---: | ---: |")
    for size, repeats in ((64, 20), (10_000, 3)):
        batches = [rng.choice(n, size, replace=False) for _ in range(repeats)]
        os.environ["VAETOOL_CACHE"] = "off"
        drawn = _seconds(dsprites.DSpritesData(), batches)
        os.environ["VAETOOL_CACHE"] = folder
        cached = dsprites.DSpritesData()
        first = _seconds(cached, batches)
        again = _seconds(cached, batches)
        print(f"| {size:,} | {drawn * 1e3:.1f} | {first * 1e3:.1f} | {again * 1e3:.2f} |")
    per_image = drawn / size
    print(f"\nwhole grid drawn: ~{per_image * n:.0f} s; stored, "
          f"{n * (1 + 512) / 2**20:.0f} MiB on disk when full")  # fmt: skip


if __name__ == "__main__":
    main()
