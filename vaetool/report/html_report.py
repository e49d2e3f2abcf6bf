"""The content of `vaetool report`'s page: sections, notes and tables from the analysis results.

The workflow (vaetool.workflows.report) computes and writes the images; this module only turns
results into a :class:`~vaetool.report.html.ReportPage` and its HTML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vaetool.analysis.pruning import KEEP_RULE, ClassificationTable, ReconstructionTable
from vaetool.analysis.ranking import Ranking
from vaetool.report.html import ReportPage, Section, render_page
from vaetool.report.mi_tables import (
    TABLE_HEADERS,
    ranking_frame,
    summary_rows,
    summary_warnings,
)
from vaetool.report.prune_tables import display_frame, prune_frame
from vaetool.store.checkpoint import CheckpointInfo


def report_page(
    checkpoint: Path,
    info: CheckpointInfo,
    ranking: Ranking,
    summary: dict[str, Any],
    tables: list[ReconstructionTable | ClassificationTable],
    truth: Any = None,
    history: bool = False,
    extras: tuple[str, ...] = (),
) -> str:
    """The whole page as HTML: summary (labelled), flags, ranking, prune tables, traversals,
    (a data set with true factors) the codes against the factors, and (``history``: the run's
    history.png was written) the training curves."""
    shown = dict(summary_rows(summary))
    if truth is not None:
        shown["MIG (dlib, 20 bins, these points)"] = round(truth.mig, 4)
    warnings = summary_warnings(summary)
    if summary.get("n_influential") == 0:
        warnings.insert(0, COLLAPSE_WARNING)
    page = ReportPage(
        f"vaetool report: {run_name(checkpoint)}",
        _subtitle(info),
        shown,
        tuple(_sections(ranking, tables))
        + tuple(_truth_sections(truth))
        + tuple(_EXTRA_SECTIONS[name] for name in extras)
        + ((_HISTORY_SECTION,) if history else ()),
        warnings=tuple(warnings),
    )
    return render_page(page)


_EXTRA_SECTIONS = {
    "bracket": Section(
        "Information bracket per factor",
        "Each factor's information between paper 001's variational lower bound (VMI, ▲, ± 2 "
        "s.e.; a Q network fitted on the decoder's own samples) and paper 000's q* upper bound "
        "(▼), with the consistent mixture estimate (●) between them. The lower bound is of the "
        "decoder's joint p(z)p(x|z), the others of the encoder's q(z|x)p(x): where the two "
        "joints disagree the bracket can cross (MATH.md §12). A categorical code is the column "
        "c, with its cap log K.",
        image="bracket.png",
        image_alt="information bracket per factor",
    ),
    "code": Section(
        "Categorical code",
        "Paper 001 Figs. 4–5: each row a test image (first column), then its Gaussian part "
        "decoded with each of the code's K classes. A code that carries information changes "
        "the digit class across a row; one the decoder ignores repeats the image.",
        image="code.png",
        image_alt="categorical code traversal",
    ),
}

_HISTORY_SECTION = Section(
    "Training",
    "Per epoch from the run's history.csv: the β = 1 ELBO on the training split (running mean "
    "over the epoch) and the validation split; with a likelihood that learns its noise (paper "
    "002: gaussian_learned's σ², mog2's weights and variances) their values at each epoch's end.",
    image="history.png",
    image_alt="training curves",
)

COLLAPSE_WARNING = (
    "no factor carries more than 0.5 nats: the model is in posterior collapse (the decoder "
    "ignores the code), so the tables and traversals below show noise; see docs/training.md"
)


def run_name(checkpoint: Path) -> str:
    """``runs/mnist/model.safetensors`` -> ``mnist``; a file named otherwise keeps its stem."""
    if checkpoint.name == "model.safetensors" and checkpoint.parent.name:
        return checkpoint.parent.name
    return (
        f"{checkpoint.parent.name}/{checkpoint.stem}" if checkpoint.parent.name else checkpoint.stem
    )


def _sections(
    ranking: Ranking, tables: list[ReconstructionTable | ClassificationTable]
) -> list[Section]:
    sections = [
        Section(
            "Factors ranked by I(x; z_h)",
            _RANK_NOTE,
            ranking_frame(ranking).rename(columns=TABLE_HEADERS),
            "ranking",
            "pulse.png",
            "pulse plot",
            scroll=True,
        )
    ]
    for table in tables:
        if isinstance(table, ClassificationTable):
            sections.append(
                Section(
                    "Classification with the top-k factors (paper 000, Table 2)",
                    _CLASSIFY_NOTE,
                    display_frame(prune_frame(table)),
                    "classify",
                )
            )
        else:
            sections.append(
                Section(
                    "Reconstruction with the top-k factors (paper 000, Table 1 and Fig. 4)",
                    _PRUNE_NOTE,
                    display_frame(prune_frame(table)),
                    "prune",
                    "reconstructions.png",
                    "Fig. 4",
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


def _truth_sections(truth: Any) -> list[Section]:
    if truth is None:
        return []
    import pandas as pd

    matrix = truth.mi_matrix
    frame = pd.DataFrame({"code": [f"z{h}" for h in range(matrix.shape[0])],
                          "I(x; z_h)": truth.information})  # fmt: skip
    for k, name in enumerate(truth.factor_names):
        frame[f"I(z_h; {name})"] = matrix[:, k]
    frame["best factor"] = [truth.factor_names[k] for k in matrix.argmax(1)]
    gaps = ", ".join(f"{n} {g:.3f}" for n, g in zip(truth.factor_names, truth.gaps, strict=True))
    bias = float(truth.bias.max())
    caution = (f" On {truth.points} points the plug-in MI is biased upwards by up to "
               f"{bias:.2f} nats (≈ 19(n_k − 1)/2N): small values are noise" if bias > 0.05
               else "")  # fmt: skip
    return [
        Section(
            "Codes against the true factors",
            "I(z_h; v_k): the plug-in MI of each code (20 equal-width bins) with each ground-truth "
            "factor on the ranked points, in nats (disentanglement_lib's MIG matrix, docs/math.md "
            "§13), beside q*'s I(x; z_h). Informative codes that capture no factor carry "
            f"information the factors do not name. MIG gap per factor (÷ H(v_k)): {gaps}.{caution}",
            frame,
            "truth",
            "factors.png",
            "codes × factors heat map",
            scroll=True,
        )
    ]


def _subtitle(info: CheckpointInfo) -> str:
    m, t, d = info.model, info.train, info.data
    return (
        f"{m.architecture} ({m.encoder} encoder), H = {m.latents}, {m.likelihood} likelihood, "
        f"{t.objective} ({_options(t.options)}), "
        f"{t.epochs} epochs on {d.spec}; vaetool {info.version}. Information in nats."
    )


def _options(options: dict) -> str:
    return ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}"
                     for k, v in options.items())  # fmt: skip


_RANK_NOTE = (
    "I_h = ½ log s²_h − ½ mean logvar_h with the closed-form zero-mean q*(z) (paper 000, "
    "Algorithm 1): an upper bound on I(x; z_h), so Σ_h I_h bounds I(x; z) from above. "
    "Influential: I_h > 0.5 nats. Below: the pulse plot (paper 000, Fig. 1), I_h up and the "
    "aggregate variance s²_h of q* (the paper's σ²_{z_h}) down."
)
_PRUNE_NOTE = (
    "Pruned factors are set to 0 before decoding. SSE / image is the sum of squared errors on "
    "[0, 1] pixels per image; each sse_<order> column keeps factors in another order at the same k "
    "(aggregate_variance: s²_h largest first, PCA's rule; posterior_variance: mean σ²_h "
    f"smallest first; var_mu: active units; kl: KLprior_h; random: chance). {KEEP_RULE}."
)
_CLASSIFY_NOTE = (
    "Probes trained on the training split's codes; accuracy on the test split with pruned "
    "factors set to 0, mean and std over 3 seeds. acc: fed the posterior mean (paper protocol); "
    "sampled: fed z ~ q(z|x). fano_error_lb: Fano's lower bound on the error of any classifier "
    "fed z ~ q(z|x), from Σ I_h of the kept factors; it does not bound the mean-fed probes."
)
_TRAVERSE_NOTE = (
    "Rows: test images; columns: the factor swept over [-3, 3] with the others at the image's "
    "posterior mean, decoded with the likelihood's mean."
)
