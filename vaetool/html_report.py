"""`vaetool report`: one static page with everything vaetool knows about a checkpoint.

    import vaetool.html_report
    vaetool.html_report.build_report("run/model.safetensors", "run/report")   # -> index.html

The folder gets ``index.html`` and the PNGs it shows (pulse plot, Fig. 4 reconstructions,
traversal sheet), each written atomically; ``index.html`` is written last, so a page that exists
is complete. No server, no CDN: the page opens by double-click.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from vaetool.analysis.pruning import PruneResult
from vaetool.analysis.ranking import Ranking
from vaetool.analysis.source import Source, open_source, source_data
from vaetool.analysis.traversal_plan import TraversalRequest, run_traversal
from vaetool.atomic import write_atomic
from vaetool.checkpoint import CheckpointInfo
from vaetool.device import resolve_device
from vaetool.errors import ConfigError
from vaetool.mi import FitRequest, rank_source
from vaetool.prune import PruneRequest, prune_table, reconstruction_examples
from vaetool.report.figures import pulse_png
from vaetool.report.html import ReportPage, Section, render_page
from vaetool.report.images import png_bytes
from vaetool.report.mi_tables import ranking_frame
from vaetool.report.prune_figure import reconstruction_sheet
from vaetool.report.prune_tables import classification_frame, reconstruction_frame
from vaetool.report.traversal_sheets import factor_sheet

INDEX = "index.html"
SUMMARY_KEYS = (
    "total_mi",
    "total_rate",
    "kl_aggregate",
    "n_influential",
    "n_active",
    "n",
    "latents",
    "estimator",
    "qstar_variant",
    "data",
    "split",
)
Step = Callable[[str], None]


def prepare_report_dir(out: str | Path, force: bool = False) -> Path:
    """Create ``out``; refuse if it holds a report (unless force) or cannot be written."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {folder}: is a file; expected a folder for the report")
    if (folder / INDEX).exists() and not force:
        raise ConfigError(f"--out {folder}: holds a report already; pass --force to overwrite it")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"--out {folder}: cannot create the folder ({err.strerror})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {folder}: folder is not writable")
    return folder


def build_report(
    checkpoint: str | Path,
    out: str | Path,
    *,
    force: bool = False,
    device: str = "auto",
    on_step: Step | None = None,
) -> Path:
    """Rank, prune, classify (when labelled), traverse, and write the page; returns its path.

    The checkpoint is loaded and ranked once; one prune pass gives both tables.
    """
    step = on_step or (lambda _: None)
    folder = prepare_report_dir(out, force)
    source = open_source(checkpoint, resolve_device(device))
    if source.info is None:
        raise ConfigError(
            f"{checkpoint}: a report needs a vaetool checkpoint, not a posterior file"
        )
    step("ranking factors by I(x; z_h)")
    ranking, summary = rank_source(source, FitRequest())
    write_atomic(folder / "pulse.png", pulse_png(ranking))
    labelled = source_data(source).labels is not None
    step("pruning: reconstruction" + (" and classification tables" if labelled else " table"))
    pruned = prune_table(source, compare=True, classify=labelled, ranking=ranking)
    grid = reconstruction_examples(source, PruneRequest(), pruned)
    labels = [spec.label for spec in pruned.specs]
    reconstruction_sheet(grid, labels, folder / "reconstructions.png")
    step("traversals of the influential factors")
    write_atomic(folder / "traversals.png", _traversal_sheet(source, ranking))
    page = ReportPage(
        f"vaetool report: {Path(checkpoint).name}",
        _subtitle(source.info),
        {k: summary[k] for k in SUMMARY_KEYS if k in summary},
        tuple(_sections(ranking, pruned, labelled)),
    )
    return write_atomic(folder / INDEX, render_page(page).encode())


def _sections(ranking: Ranking, pruned: PruneResult, labelled: bool) -> list[Section]:
    sections = [
        Section(
            "Factors ranked by I(x; z_h)",
            _RANK_NOTE,
            ranking_frame(ranking),
            "ranking",
            "pulse.png",
            "pulse plot",
            scroll=True,
        ),
        Section(
            "Reconstruction with the top-k factors (paper 000, Table 1 and Fig. 4)",
            _PRUNE_NOTE,
            reconstruction_frame(pruned),
            "prune",
            "reconstructions.png",
            "Fig. 4",
        ),
    ]
    if labelled:
        sections.append(
            Section(
                "Classification with the top-k factors (paper 000, Table 2)",
                _CLASSIFY_NOTE,
                classification_frame(pruned),
                "classify",
            )
        )
    sections.append(
        Section(
            "Traversals, most informative factor first",
            _TRAVERSE_NOTE,
            image="traversals.png",
            image_alt="traversal sheet",
        )
    )
    return sections


def _traversal_sheet(source: Source, ranking: Ranking) -> bytes:
    """The sheet of every influential factor (or the top 8 when none is), pulse plot on top."""
    assert source.model is not None and source.info is not None
    influential = int(ranking.influential.sum())
    request = TraversalRequest() if influential else TraversalRequest(top=min(8, len(ranking.mi)))
    with torch.no_grad():
        traversal = run_traversal(source.model, source.info, request, ranking.mi)
    return png_bytes(factor_sheet(traversal, pulse=ranking))


def _subtitle(info: CheckpointInfo) -> str:
    m, t, d = info.model, info.train, info.data
    return (
        f"{m.architecture}, H = {m.latents}, {m.likelihood} likelihood, β = {t.beta:g}, "
        f"{t.epochs} epochs on {d.spec}; vaetool {info.version}. Information in nats."
    )


_RANK_NOTE = (
    "I_h = ½ log s²_h − ½ mean logvar_h with the closed-form zero-mean q*(z) (paper 000, "
    "Algorithm 1): an upper bound on I(x; z_h). Influential: I_h > 0.5 nats. Below: the pulse "
    "plot (paper 000, Fig. 1), I_h up and the mean posterior variance down."
)
_PRUNE_NOTE = (
    "Pruned factors are set to 0 before decoding. sse is the per-image sum of squared errors on "
    "[0, 1] pixels; sse_variance / sse_active / sse_random keep factors in the order of the mean "
    "posterior variance, Var(mu) and chance instead of I_h. k = max(1, round(r·H)), halves up."
)
_CLASSIFY_NOTE = (
    "Probes on the training latent means; accuracy on the test split with pruned factors set to "
    "0 (paper protocol), mean and std over 3 seeds. fano_error_lb: Fano's lower bound on the "
    "error rate from Σ I_h of the kept factors."
)
_TRAVERSE_NOTE = (
    "Rows: test images; columns: the factor swept over [-3, 3] with the others at the image's "
    "posterior mean, decoded with the likelihood's mean."
)
