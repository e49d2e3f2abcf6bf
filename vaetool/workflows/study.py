"""`vaetool study PLAN.toml --out DIR`: a grid of training settings × seeds, each an ordinary run.

A plan (TOML)::

    seeds = [0, 1, 2]            # every grid point is trained once per seed
    stack_seeds = false          # true: a point's seeds train at once (vaetool.training.ensemble)
    metrics = ["mig"]            # ground-truth metrics in every summary (vaetool.analysis.metrics)
    prune = true                 # paper 000's Table 1 rows in every summary (or "100%,10%,4")
    [base]                       # any `vaetool train` setting, as in --config
    data = "mnist5k"
    epochs = 20
    [grid]                       # lists: every combination is a point
    beta = [1, 2, 4]
    objective = ["beta_vae", "beta_tcvae"]
    # max_runs = 20000           # a plan of more runs than 10,000 is refused unless this says so

Several grids (``[[grid]]`` tables) give the union of their points: paper 002 sweeps σ² for
fixed-noise models and β for noise-learning ones in one study.

Layout: ``DIR/study.toml`` (the plan), ``DIR/runs/<point>/seed-<s>/`` (a run folder, plus
``summary.json``: the run's settings, status, final validation terms and its factors' ranking
summary), ``DIR/results.csv`` (one row per summary, rebuilt after every run).

Checked before anything trains: every key (one no setting or component has is named, with the
table it is in), every grid point's settings, and the size: the runs are counted from the
grids' sizes before a point is made, and a plan of more than ``max_runs`` (10,000) runs, or one
that sets nothing (it would train the default model), is refused with one line.

Resumable and shardable without coordination: a run with a summary is skipped (a failed one
too: delete its summary.json to retry it), so a folder holding only the plan and the summaries
(a campaign committed without its checkpoints) continues where it stopped; an unfinished run
resumes from its state, one locked by another process is left to it; ``--shard K/N`` takes
every N-th unit of work. Nothing read back is trusted: a summary that cannot be read is made
again from the run's checkpoint, and a checkpoint that cannot be loaded is kept as
``model.damaged.safetensors`` and the run trained again (each a warning); another shard's
unreadable summary is a row of results.csv with status ``unreadable``, never dropped. Each
summary is written atomically, and results.csv is rebuilt from all summaries under an
exclusive lock, so shards running at once on one file system never corrupt it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaetool.analysis.ranking import Ranking
from vaetool.errors import CheckpointError, ConfigError, VaetoolError, VaetoolWarning, marked
from vaetool.store.atomic import write_atomic
from vaetool.store.locks import exclusive, is_held
from vaetool.store.text import read_text
from vaetool.training.run_folder import CHECKPOINT_NAME, HISTORY_NAME, LOCK_NAME, RESUME_NAME
from vaetool.workflows.study_plan import (
    PLAN_NAME,
    RUNS_DIR,
    StudyPlan,
    Unit,
    point_name,
    read_plan,
    units,
)
from vaetool.workflows.train import (
    resume_run,
    seed_folder,
    train_request,
    train_run,
    train_seeds,
)

SUMMARY_NAME = "summary.json"
RESULTS_NAME = "results.csv"
DAMAGED_NAME = "model.damaged.safetensors"  # a finished run's checkpoint that cannot be loaded
UNREADABLE = "unreadable"  # results.csv's status of a summary that cannot be read


@dataclass(frozen=True)
class StudyRequest:
    plan: Path
    out: Path
    shard: tuple[int, int] = (1, 1)
    device: str = "auto"
    threads: int | None = None


@dataclass
class StudyResult:
    results: Path
    trained: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # finished before, or held elsewhere
    failed: list[str] = field(default_factory=list)  # "folder: reason" (diverged runs)
    repaired: list[str] = field(default_factory=list)  # "file: what was wrong; what was done"
    unreadable: list[str] = field(default_factory=list)  # summaries results.csv marks unreadable


RunCallback = Callable[[int, int, str], None]  # (unit done, units in the shard, its name)


def run_study(
    request: StudyRequest,
    on_unit: RunCallback | None = None,
    on_batch: Callable[..., None] | None = None,
) -> StudyResult:
    """Train this shard's units that have no summary yet, summarising each as it ends."""
    plan = read_plan(request.plan)
    out = Path(request.out)
    _claim(out, request.plan)
    k, n = request.shard
    mine = [u for i, u in enumerate(units(plan, out)) if i % n == k - 1]
    result = StudyResult(out / RESULTS_NAME)
    for done, unit in enumerate(mine):
        if on_unit is not None:
            seeds = ",".join(map(str, unit.seeds))
            on_unit(done, len(mine), f"{point_name(unit.point)} seed {seeds}")
        _run_unit(plan, unit, request, result, on_batch)
        rebuild_results(out, plan)
    rows = _rebuild(out, plan)
    result.unreadable = [f"{r['run']}: {r['reason']}" for r in rows if r["status"] == UNREADABLE]
    return result


def _claim(out: Path, plan_path: Path) -> None:
    """Create DIR with a copy of the plan; refuse a DIR that holds a different study."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"‹out› {out}: is a file; expected a folder for the study")
    text = read_text(plan_path, "TOML study plan")
    copy = out / PLAN_NAME
    if copy.exists():
        if read_text(copy, "TOML study plan") != text:
            raise ConfigError(f"‹out› {out}: holds a different study ({copy}); choose another "
                              "folder")  # fmt: skip
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"‹out› {out}: cannot create the folder ({err.strerror})") from None
    write_atomic(copy, text.encode())


def _run_unit(
    plan: StudyPlan,
    unit: Unit,
    request: StudyRequest,
    result: StudyResult,
    on_batch: Callable[..., None] | None,
) -> None:
    folders = unit.run_folders()
    todo = [f for f in folders if not (f / SUMMARY_NAME).exists()]
    damaged = {f: why for f in folders if f not in todo and (why := _unreadable(f / SUMMARY_NAME))}
    result.skipped += [f for f in folders if f not in todo and f not in damaged]
    todo += [f for f in folders if f in damaged]  # its summary is made again, never dropped
    if not todo:
        return
    if any(is_held(f / LOCK_NAME) for f in todo):
        result.skipped += todo  # another process is training it
        return
    for folder in todo:
        _repair(folder, damaged.get(folder), result)
    settings = {**plan.base, **unit.point, "device": request.device, "threads": request.threads}
    try:
        _train(unit, todo, settings, on_batch)
    except VaetoolError as err:  # a diverged run is a result of the study, not its end
        if getattr(err, "exit_code", 1) == 130:
            raise
        for folder in todo:
            _summarise(folder, unit, request.device, status="failed", reason=str(err))
            result.failed.append(f"{folder}: {marked(err)}")
        return
    for folder in todo:
        spec = {**plan.base, **unit.point}.get("data")  # the whole data set, not a subset
        _summarise(folder, unit, request.device,
                   metrics=(plan.metrics, plan.metric_samples, spec), prune=plan.prune)  # fmt: skip
        result.trained.append(folder)


def _repair(folder: Path, summary_problem: str | None, result: StudyResult) -> None:
    """A run about to be summarised or trained again: a checkpoint that cannot be loaded is
    moved aside (``model.damaged.safetensors``) so the run is trained again; an unreadable
    summary is made again. Each repair is a warning and a line of the result."""
    checkpoint = folder / CHECKPOINT_NAME
    problem = _damaged_checkpoint(checkpoint) if checkpoint.exists() else None
    if problem is not None:
        checkpoint.replace(folder / DAMAGED_NAME)
    if summary_problem is None and problem is None:
        return
    what = f"{folder / SUMMARY_NAME}: unreadable ({summary_problem})" if summary_problem else ""
    if problem is not None:
        what += ("; " if what else "") + f"{checkpoint}: cannot be loaded ({problem})"
        done = f"kept as {DAMAGED_NAME}; the run is trained again"
    else:
        done = "summarised again from its checkpoint" if checkpoint.exists() else "trained again"
    line = f"{what}; {done}"
    result.repaired.append(line)
    warnings.warn(line, VaetoolWarning, stacklevel=3)


def _damaged_checkpoint(path: Path) -> str | None:
    """Why the finished run's checkpoint cannot be loaded, or None when it can."""
    from vaetool.store.checkpoint import load_checkpoint

    try:
        load_checkpoint(path)
    except (VaetoolError, OSError, ValueError, RuntimeError) as err:
        return marked(err).removeprefix(f"{path}: ")
    return None


def _unreadable(path: Path) -> str | None:
    """Why ``path`` is not a summary this study wrote, or None when it is one."""
    try:
        row = json.loads(read_text(path, "JSON summary"))
    except VaetoolError as err:
        return marked(err).removeprefix(f"{path}: ")
    except (OSError, ValueError, RecursionError) as err:
        return str(err) or type(err).__name__
    if not (isinstance(row, dict) and isinstance(row.get("run"), str) and "status" in row):
        return "not a study summary (a JSON object with run and status)"
    return None


def _train(
    unit: Unit, todo: list[Path], settings: dict[str, Any], on_batch: Callable[..., None] | None
) -> None:
    """Finish every folder of ``todo``: resume what has a state, train what has nothing."""
    fresh = [f for f in todo if not (f / CHECKPOINT_NAME).exists()]
    resumable = [f for f in fresh if (f / RESUME_NAME).exists()]
    for folder in resumable:
        resume_run(folder, device=settings["device"], threads=settings["threads"],
                   on_batch=on_batch)  # fmt: skip
    new = [f for f in fresh if f not in resumable]
    if not new:
        return
    seeds = tuple(s for s, f in zip(unit.seeds, unit.run_folders(), strict=True) if f in new)
    if len(seeds) > 1:
        train_seeds(train_request({**settings, "out": unit.folder, "seeds": seeds,
                                   "force": True}), on_batch)  # fmt: skip
        return
    request = train_request({**settings, "out": seed_folder(unit.folder, seeds[0]),
                             "seed": seeds[0], "force": True})  # fmt: skip
    train_run(request, on_batch)


def _summarise(
    folder: Path,
    unit: Unit,
    device: str,
    status: str = "finished",
    reason: str = "",
    metrics: tuple[str, int | None, str | None] = ("", None, None),
    prune: str = "",
) -> None:
    """``folder/summary.json``: settings, status, final validation terms, ranking summary;
    the plan's metrics and prune rows; a categorical code's histograms (paper 001 Figs. 6,
    9–10; lists, kept out of results.csv)."""
    from vaetool.workflows.mi import RankRequest, rank

    seed = int(folder.name.removeprefix("seed-"))
    row: dict[str, Any] = {"run": str(Path(RUNS_DIR) / unit.folder.name / folder.name),
                           **unit.point, "seed": seed, "status": status}  # fmt: skip
    if reason:
        row["reason"] = reason
    history = folder / HISTORY_NAME
    if history.exists():
        rows = list(csv.DictReader(io.StringIO(history.read_text(encoding="utf-8"))))
        if rows:
            row["epochs"] = int(rows[-1]["epoch"])
            row.update({k: _number(v) for k, v in rows[-1].items() if k.startswith("val_")})
    checkpoint = folder / CHECKPOINT_NAME
    if status == "finished" and checkpoint.exists():
        ranked = rank(RankRequest(checkpoint, device=device))
        summary = ranked.summary()
        row.update({k: v for k, v in summary.items()
                    if isinstance(v, int | float | bool) and k not in row})  # fmt: skip
        row.update(_factor_columns(ranked.ranking))
        if metrics[0]:
            from vaetool.workflows.metrics import MetricsRequest, compute

            names, samples, spec = metrics
            measured = compute(MetricsRequest(checkpoint, names, spec, samples, seed, device))
            row.update(measured.values)
        if prune:
            row.update(_prune_columns(checkpoint, prune, device))
        row.update(_code_columns(checkpoint, device))
    folder.mkdir(parents=True, exist_ok=True)  # a run that failed before its first epoch
    write_atomic(folder / SUMMARY_NAME, json.dumps(row, indent=1, default=str).encode())


def _factor_columns(ranking: Ranking) -> dict[str, list[float]]:
    """Every factor's I_h, KL to the prior and aggregate variance s²_h, in factor order (lists:
    summary.json only): a pulse plot (paper 000 Fig. 1) or a per-factor comparison redrawn
    without the checkpoint."""
    values = {"factor_mi": ranking.mi, "factor_kl": ranking.indicators.kl_prior,
              "factor_s2": ranking.indicators.aggregate_variance}  # fmt: skip
    return {k: [round(float(x), 6) for x in t.tolist()] for k, t in values.items()}


def _prune_columns(checkpoint: Path, top: str, device: str) -> dict[str, float]:
    """Paper 000's Table 1 per row label: ``prune_k_<top>``, ``prune_mi_<top>`` (Σ_kept I_h),
    ``prune_sse_<top>`` and ``prune_mse_<top>`` (per image and per pixel, test split)."""
    from vaetool.workflows.prune import PruneRequest, prune

    table = prune(PruneRequest(checkpoint, top=top, device=device)).table
    out: dict[str, float] = {}
    for i, spec in enumerate(table.rows.specs):
        out[f"prune_k_{spec.label}"] = table.rows.counts[i]
        out[f"prune_mi_{spec.label}"] = float(table.rows.mi_used[i])
        out[f"prune_sse_{spec.label}"] = float(table.sse[i])  # type: ignore[union-attr]
        out[f"prune_mse_{spec.label}"] = float(table.mse_pixel[i])  # type: ignore[union-attr]
    return out


def _code_columns(checkpoint: Path, device: str) -> dict[str, Any]:
    """A labelled model with a categorical code: its histograms (paper 001 Figs. 6, 9–10)."""
    from vaetool.analysis.categorical import code_histograms
    from vaetool.workflows.metrics import code_truth
    from vaetool.workflows.source import open_source

    source = open_source(checkpoint, device)
    model, info = source.checkpoint("summary")
    if not model.categories or source.data(info.data.spec).labels is None:
        return {}
    truth = code_truth(source, None)
    return code_histograms(truth.probabilities, truth.labels, truth.categories)


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def read_summaries(out: Path, plan: StudyPlan | None = None) -> list[dict[str, Any]]:
    """Every run's summary.json under ``out``, in folder order. One that cannot be read is a
    row too (status ``unreadable``, the reason, and its grid point when ``plan`` is given),
    never dropped: the next `vaetool study` makes it again."""
    points = {u.folder.name: u.point for u in units(plan, Path(out))} if plan else {}
    rows = []
    for path in sorted((Path(out) / RUNS_DIR).glob(f"*/seed-*/{SUMMARY_NAME}")):
        reason = _unreadable(path)
        if reason is None:
            rows.append(json.loads(read_text(path, "JSON summary")))
            continue
        seed = path.parent.name.removeprefix("seed-")
        rows.append({"run": str(Path(RUNS_DIR) / path.parent.parent.name / path.parent.name),
                     **points.get(path.parent.parent.name, {}),
                     "seed": int(seed) if seed.isdigit() else seed, "status": UNREADABLE,
                     "reason": f"{SUMMARY_NAME} unreadable ({reason})"})  # fmt: skip
    return rows


def rebuild_results(out: Path, plan: StudyPlan | None = None) -> Path:
    """DIR/results.csv from every run's summary.json, under an exclusive lock (shards running
    at once serialise here; the last rebuild sees every summary written before it)."""
    _rebuild(out, plan)
    return Path(out) / RESULTS_NAME


def _rebuild(out: Path, plan: StudyPlan | None) -> list[dict[str, Any]]:
    target = Path(out) / RESULTS_NAME
    with exclusive(Path(out) / ".results.lock"):
        rows = read_summaries(out, plan)
        columns: list[str] = []
        for row in rows:  # lists (a code's histograms) stay in summary.json
            columns += [c for c in row if c not in columns and not isinstance(row[c], list)]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: _cell(row.get(c, "")) for c in columns})
        write_atomic(target, buffer.getvalue().encode())
    return rows


def _cell(value: object) -> object:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return value


def check_study_folder(out: Path) -> StudyPlan:
    """The plan of the study in ``out`` (for its report); refuses a folder that is not one."""
    if not (Path(out) / PLAN_NAME).is_file():
        raise CheckpointError(f"{out}: not a study folder (no {PLAN_NAME})")
    if not (Path(out) / RESULTS_NAME).is_file():
        raise CheckpointError(f"{out}: no {RESULTS_NAME} yet; run `vaetool study` first")
    return read_plan(Path(out) / PLAN_NAME)
