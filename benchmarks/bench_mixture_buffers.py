"""Mixture estimator per evaluation point: the first release's code against today's (issue 9).

    python benchmarks/bench_mixture_buffers.py [--before bb6d8c4] [--threads 1]

Loads vaetool/analysis/mixture.py as it was at git commit ``--before`` beside the current one and
times both in one process on the same random float64 posterior (wall, user and system seconds
per point, after a warm-up call). Not a test: prints markdown.
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from vaetool.analysis.mixture import mixture_information

CASES = ((20_000, 128, 40), (50_000, 512, 4))  # N, H, M'


def load_before(commit: str):
    source = subprocess.run(["git", "show", f"{commit}:vaetool/analysis/mixture.py"],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "mixture_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("mixture_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["mixture_before"] = module
    spec.loader.exec_module(module)
    return module.mixture_information


def per_point(fn, mu, logvar, points: int, **options) -> tuple[float, float, float]:
    fn(mu, logvar, eval_points=points, **options)  # warm-up
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    fn(mu, logvar, eval_points=points, **options)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    return (
        wall / points,
        (after.ru_utime - before.ru_utime) / points,
        (after.ru_stime - before.ru_stime) / points,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", default="bb6d8c4")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    before = load_before(args.before)
    print(f"torch {torch.__version__}, {args.threads} thread(s), CPU\n")
    print("| N × H | M' | before s/point (user, system) | after s/point (user, system) |")
    print("| --- | ---: | --- | --- |")
    for n, h, points in CASES:
        gen = torch.Generator().manual_seed(0)
        mu = torch.randn(n, h, generator=gen, dtype=torch.float64)
        logvar = -2 + torch.rand(n, h, generator=gen, dtype=torch.float64)
        old = per_point(before, mu, logvar, points)
        new = per_point(mixture_information, mu, logvar, points, time_budget_s=None)
        cells = [f"{t[0]:.3f} ({t[1]:.3f}, {t[2]:.3f})" for t in (old, new)]
        print(f"| {n:,} × {h} | {points} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
