"""Every GPU figure the project claims, in one run, plus `pytest -m gpu` (issue 25).

    python benchmarks/gpu_suite.py [--out DIR] [--device auto] [--budget 420] [--dry]

On the device (one H100: under 8 minutes) it measures, each in this one process:

1. `pytest -m gpu` (the CUDA paths' own tests), its exit status and its last line;
2. training images/s at batch 100 and 1000: vaetool eager and CUDA graph, fp32 and bf16, and
   pythae 0.1.2's VAE around the same conv28 modules (when installed), interleaved;
3. K = 10 seeds as one stacked model against one run and against ten separate runs;
4. the encoder pass (the `mi rank` floor), images/s at batch 4096, fp32 and bf16;
5. the mixture estimator at N = 10,000, H = 128 (M' = N, S = 1);
6. paper 003's 64 × 64 step rate (conv64, batch 64, H = 10): β-VAE, FactorVAE and β-TCVAE,
   paper and split encoders, steps/s.

It writes DIR/gpu_suite.json (device, torch, every figure with its unit and setting) and
DIR/gpu_suite.md (the same as a table for docs/benchmarks.md). ``--dry`` runs every figure at a
toy size on whatever device there is (the CPU in CI: tests/test_benchmarks.py) and collects the
GPU tests without running them, so the suite cannot rot between the rare runs on a GPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from timing import device_name

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Sizes:
    """The work of each figure: the real one, or a toy one for ``--dry``."""

    batches: tuple[int, ...] = (100, 1000)
    steps: int = 30
    warmup: int = 5
    seeds: int = 10
    seed_images: int = 2000  # 60 % train
    seed_epochs: int = 2
    pass_batch: int = 4096
    mixture_n: int = 10_000
    mixture_h: int = 128
    paper003_batch: int = 64


DRY = Sizes(batches=(4,), steps=1, warmup=1, seeds=2, seed_images=200, seed_epochs=1, pass_batch=16,
            mixture_n=64, mixture_h=4, paper003_batch=2)  # fmt: skip


@dataclass
class Figure:
    name: str
    value: float | None
    unit: str
    setting: str
    extra: dict[str, float | str | None] = field(default_factory=dict)


def gpu_tests(dry: bool) -> list[Figure]:
    """``pytest -m gpu`` over the modules that hold GPU tests (``--dry``: collected only)."""
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py")
                   if "mark.gpu" in p.read_text())  # fmt: skip
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", *files]
    if dry:
        command.append("--collect-only")
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    last = lines[-1] if lines else done.stderr.strip()[-200:]
    if dry and done.returncode == 0:  # "-q" lists "file: count" per module
        last = f"{sum(int(line.rsplit(': ', 1)[1]) for line in lines)} collected"
    seconds = round(time.perf_counter() - start, 1)
    return [Figure("pytest -m gpu", float(done.returncode), "exit status", " ".join(files),
                   {"summary": last, "seconds": seconds})]  # fmt: skip


def training(device: torch.device, sizes: Sizes) -> list[Figure]:
    """Images/s of one training step: eager, CUDA graph, bf16 and pythae, interleaved per batch."""
    from bench_train import batch_of, pythae_step, vaetool_step

    found = []
    for size in sizes.batches:
        x = batch_of(size, device)
        runs: dict[str, Callable[[torch.Tensor], float | None]] = {
            "eager fp32": lambda x: vaetool_step(x, False, "fp32", sizes.steps, sizes.warmup),
            "graph fp32": lambda x: vaetool_step(x, True, "fp32", sizes.steps, sizes.warmup),
            "eager bf16": lambda x: vaetool_step(x, False, "bf16", sizes.steps, sizes.warmup),
            "graph bf16": lambda x: vaetool_step(x, True, "bf16", sizes.steps, sizes.warmup),
            "pythae 0.1.2 fp32": lambda x: pythae_step(x, sizes.steps),
        }
        setting = f"conv28, H = 10, β-VAE, batch {size}"
        found += [
            Figure(f"train, {label}", run(x), "img/s", setting) for label, run in runs.items()
        ]
    return found


def stacked_seeds(device: torch.device, sizes: Sizes) -> list[Figure]:
    """K seeds as one stacked model against one run and K separate runs."""
    from bench_train import seeds_at_once

    work = (str(device), sizes.seed_images, sizes.seed_epochs)
    separate, stacked = seeds_at_once(sizes.seeds, *work)
    one, _ = seeds_at_once(1, *work)
    setting = (
        f"K = {sizes.seeds}, {sizes.seed_epochs} epochs of {sizes.seed_images * 3 // 5:,} "
        "mnist5k images, batch 100"
    )
    return [Figure(f"{sizes.seeds} seeds stacked", stacked, "s", setting,
                   {"one run s": one, "separate runs s": separate,
                    "speed-up vs separate": separate / stacked})]  # fmt: skip


def encoder_pass(device: torch.device, sizes: Sizes) -> list[Figure]:
    from bench_train import batch_of
    from bench_train import encoder_pass as run

    x = batch_of(sizes.pass_batch, device)
    setting = f"conv28, H = 10, batch {sizes.pass_batch}"
    return [Figure(f"encoder pass {p}", run(x, p, sizes.steps), "img/s", setting)
            for p in ("fp32", "bf16")]  # fmt: skip


def mixture(device: torch.device, sizes: Sizes) -> list[Figure]:
    from bench_mi import mixture_time

    seconds = mixture_time(device, sizes.mixture_n, sizes.mixture_h)
    return [Figure("mixture estimator", seconds, "s",
                   f"N = M' = {sizes.mixture_n:,}, H = {sizes.mixture_h}, S = 1")]  # fmt: skip


def paper003(device: torch.device, sizes: Sizes) -> list[Figure]:
    """Steps/s of paper 003's models at 64 × 64 (random binary images: the rate does not
    depend on the pixels)."""
    from bench_objectives import step_seconds

    g = torch.Generator().manual_seed(0)
    x = (torch.rand(sizes.paper003_batch, 1, 64, 64, generator=g) < 0.1).float().to(device)
    found = []
    for objective in ("beta_vae", "factor_vae", "beta_tcvae"):
        for encoder in ("paper", "split"):
            rate = 1 / step_seconds(objective, encoder, x, sizes.steps)
            name = f"paper 003 step, {objective}, {encoder} encoder"
            found.append(Figure(name, rate, "steps/s", f"conv64, H = 10, batch {x.shape[0]}"))
    return found


PARTS = (training, stacked_seeds, encoder_pass, mixture, paper003)


def markdown(device: str, figures: list[Figure]) -> str:
    def cell(value: float | None) -> str:
        return "—" if value is None else f"{value:,.4g}" if abs(value) < 100 else f"{value:,.0f}"

    head = "| figure | value | unit | setting | more |\n| --- | ---: | --- | --- | --- |"
    rows = [f"device: {device}; torch {torch.__version__}", "", head]
    for f in figures:
        more = "; ".join(
            f"{k} {cell(v) if isinstance(v, float) else v}" for k, v in f.extra.items()
        )
        rows.append(f"| {f.name} | {cell(f.value)} | {f.unit} | {f.setting} | {more} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--device", default="auto")
    skip = "seconds; parts not started by then are skipped (and said so)"
    parser.add_argument("--budget", type=float, default=420.0, help=skip)
    parser.add_argument("--dry", action="store_true", help="toy sizes, GPU tests collected only")
    args = parser.parse_args(argv)
    from vaetool.device import resolve_device

    device = resolve_device(args.device)
    sizes = DRY if args.dry else Sizes()
    start = time.perf_counter()
    figures = gpu_tests(args.dry)
    for part in PARTS:
        if time.perf_counter() - start > args.budget:
            figures.append(Figure(part.__name__, None, "skipped", "over --budget"))
            continue
        figures += part(device, sizes)
        print(f"{part.__name__}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    name = device_name(device)
    report = {"device": name, "torch": torch.__version__, "dry": args.dry,
              "seconds": round(time.perf_counter() - start, 1),
              "figures": [asdict(f) for f in figures]}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_suite.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / "gpu_suite.md").write_text(markdown(name, figures))
    print(markdown(name, figures))


if __name__ == "__main__":
    main()
