"""Speed of a `vaetool traverse` sheet (issue 6). Not a test: prints a markdown table.

    python benchmarks/bench_traverse.py [--device auto] [--factors 20] [--seeds 8] [--steps 10]

Builds the sheet of ``--factors`` × ``--seeds`` × ``--steps`` images (default 20 × 8 × 10 =
1,600 decodes) for two shapes with H = 128 and untrained weights (speed does not depend on
training): conv28 on 1×28×28 (MNIST) and conv64 on 3×64×64 (CelebA-like). Stages, timed
separately (median of 5 after a warm-up, device synchronised):

- decode: latent grid by broadcasting + batched decode + copy to the CPU (``factor_traversal``);
- compose: uint8 blocks, labels and stacking (``factor_sheet`` without the pulse plot);
- pulse plot: matplotlib render of paper 000's Fig. 1 at the sheet's width, decoded to RGB;
- PNG encode: PIL, of the full sheet (with the pulse plot);
- GIF: frames + encode (``--gif``), for reference.
"""

from __future__ import annotations

import argparse

import torch
from timing import device_name, timed

from vaetool.analysis import fit_qstar
from vaetool.analysis.ranking import Ranking, rank_factors
from vaetool.analysis.traversal import factor_traversal, traversal_values
from vaetool.config import ModelConfig
from vaetool.device import resolve_device
from vaetool.models import VAE, build_model
from vaetool.report.figures import pulse_png
from vaetool.report.images import decode_png, gif_bytes, png_bytes
from vaetool.report.traversal_sheets import factor_frames, factor_sheet

SHAPES = {"conv28": (1, 28, 28), "conv64": (3, 64, 64)}
LATENTS = 128


def fake_ranking(generator: torch.Generator) -> Ranking:
    """A ranking of H = 128 factors from a random posterior (labels and the pulse plot)."""
    mu = torch.randn(1000, LATENTS, generator=generator, dtype=torch.float64)
    mu = mu * torch.linspace(2.0, 0.0, LATENTS, dtype=torch.float64)
    logvar = torch.full_like(mu, -1.0)
    return rank_factors(fit_qstar(mu, logvar))


def stage_times(architecture: str, device: torch.device, args: argparse.Namespace) -> dict:
    """Seconds of each stage for one architecture."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model: VAE = build_model(ModelConfig(architecture, SHAPES[architecture], latents=LATENTS))
    model = model.to(device).eval()
    ranking = fake_ranking(generator)
    factors = [int(h) for h in ranking.order[: args.factors]]
    mu = torch.randn(args.seeds, LATENTS, generator=generator).to(device)
    values = traversal_values(-3.0, 3.0, args.steps)

    def decode() -> object:
        return factor_traversal(model, mu, factors, values, mi=ranking.mi)

    traversal = factor_traversal(model, mu, factors, values, mi=ranking.mi)
    blocks = factor_sheet(traversal)
    sheet = factor_sheet(traversal, pulse=ranking)
    return {
        "decode": timed(decode, device),
        "compose": timed(lambda: factor_sheet(traversal), device),
        "pulse plot": timed(
            lambda: decode_png(pulse_png(ranking, width_px=blocks.shape[1])), device
        ),
        "PNG encode": timed(lambda: png_bytes(sheet), device),
        "GIF (frames + encode)": timed(lambda: gif_bytes(factor_frames(traversal)), device),
        "size": f"{sheet.shape[1]}×{sheet.shape[0]}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--factors", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(f"device: {device_name(device)}; torch {torch.__version__}")
    count = args.factors * args.seeds * args.steps
    print(f"sheet: {args.factors} factors × {args.seeds} seeds × {args.steps} steps = {count:,}")
    print("images, H = 128; milliseconds, median of 5 after a warm-up\n")
    results = {name: stage_times(name, device, args) for name in SHAPES}
    header = " | ".join(f"{name} {'×'.join(map(str, SHAPES[name]))}" for name in SHAPES)
    print(f"| stage | {header} |")
    print("| --- |" + " ---: |" * len(SHAPES))
    stages = ["decode", "compose", "pulse plot", "PNG encode"]
    for stage in [*stages, "GIF (frames + encode)"]:
        print(
            f"| {stage} | " + " | ".join(f"{1e3 * r[stage]:.1f}" for r in results.values()) + " |"
        )
    totals = " | ".join(f"**{1e3 * sum(r[s] for s in stages):.1f}**" for r in results.values())
    print(f"| **sheet total** (decode + compose + pulse + PNG) | {totals} |")
    print("| sheet size (px) | " + " | ".join(r["size"] for r in results.values()) + " |")


if __name__ == "__main__":
    main()
