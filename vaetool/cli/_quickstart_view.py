"""`vaetool quickstart`: train on mnist5k, then every analysis, reusing one q* fit."""

from __future__ import annotations

from pathlib import Path

from vaetool.cli import _console


def run_quickstart(out: Path, force: bool, device: str, *, beta: float, epochs: int) -> None:
    """Train -> q* sidecar -> ranking (top 10) -> prune table + Fig. 4 -> HTML report."""
    from vaetool.cli._mi_view import RankView, run_fit, run_rank
    from vaetool.cli._prune_view import PruneView, run_prune
    from vaetool.cli._training_view import run_training
    from vaetool.html_report import build_report
    from vaetool.mi import FitRequest
    from vaetool.prune import PruneRequest

    checkpoint = run_training(out, force, device, data="mnist5k", beta=beta, epochs=epochs)
    fit = FitRequest()
    options = {
        "data": fit.data,
        "split": fit.split,
        "samples": fit.samples,
        "variant": fit.variant,
        "device": device,
    }
    run_fit(checkpoint, **options)  # the sidecar every later step reuses
    run_rank(
        checkpoint,
        RankView(plot=out / "pulse.png", top=10),
        estimator="qstar",
        threshold=0.5,
        mc_samples=1,
        mc_points=None,
        seed=0,
        qstar=None,
        **options,
    )
    run_prune(checkpoint, PruneRequest(), PruneView(plot=out / "reconstructions.png"), device)
    with _console.busy("writing the report (traversal sheet, tables)"):
        page = build_report(checkpoint, out / "report", force=True, device=device)
    _console.out.print(
        f"traversal sheet  {page.parent / 'traversals.png'}\nreport           {page}",
        markup=False,
        highlight=False,
    )
    _console.err.print(f"next: vaetool traverse {checkpoint} --factor N", markup=False)
