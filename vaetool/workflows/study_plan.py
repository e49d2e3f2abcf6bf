"""A study plan (TOML): base settings, one or more grids, seeds, and what every summary holds
(ground-truth metrics, paper 000's Table 1 rows); read and checked whole before anything trains,
then cut into units of work (a grid point and the seeds trained for it together).
"""

from __future__ import annotations

import itertools
import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaetool.errors import ConfigError, VaetoolError, marked
from vaetool.store.text import read_text
from vaetool.workflows.train import parse_seeds, seed_folder, train_request
from vaetool.workflows.train_settings import check_setting_names

PLAN_NAME = "study.toml"
PLAN_KEYS = {"base", "grid", "seeds", "stack_seeds", "metrics", "metric_samples", "prune",
             "max_runs"}  # fmt: skip
STUDY_SETS = {"out", "seed", "seeds", "force", "device", "threads"}  # the study's own
MAX_RUNS = 10_000  # a larger grid is refused unless the plan's max_runs says so
RUNS_DIR = "runs"
_SAFE = re.compile(r"[^A-Za-z0-9._=+-]")


@dataclass(frozen=True)
class StudyPlan:
    """Base settings, the grid (option -> values, in order) and the seeds."""

    base: dict[str, Any]
    grids: tuple[dict[str, list[Any]], ...]
    seeds: tuple[int, ...] = (0,)
    stack_seeds: bool = False
    metrics: str = ""  # ground-truth metrics for every run's summary (analysis.metrics), "" none
    metric_samples: int | None = None
    prune: str = ""  # --top rows of paper 000's Table 1 for every run's summary, "" none

    @property
    def swept(self) -> list[str]:
        """Every option some grid sweeps, in first-seen order."""
        return list(dict.fromkeys(name for grid in self.grids for name in grid))

    def points(self) -> list[dict[str, Any]]:
        """Every combination of each grid's values, the first option varying slowest; grids
        in order (a point two grids share is trained once)."""
        found: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
        for grid in self.grids:
            names = list(grid)
            for values in itertools.product(*(grid[n] for n in names)):
                point = dict(zip(names, values, strict=True))
                found.setdefault(_identity(point), point)  # a dict: linear in the points
        return list(found.values())

    def run_count(self) -> int:
        """How many runs the plan asks for, counted from the grids' sizes (nothing expanded):
        an upper bound when grids share points."""
        return sum(math.prod(len(v) for v in grid.values()) for grid in self.grids) * len(
            self.seeds
        )


def _identity(point: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """A grid point as a hashable key, equal for equal points (4 and 4.0 are one point)."""
    return tuple(sorted((k, _same(v)) for k, v in point.items()))


def _same(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return repr(int(value))
    return repr(value)


@dataclass(frozen=True)
class Unit:
    """One piece of work: a grid point and the seeds trained for it together."""

    point: dict[str, Any]
    seeds: tuple[int, ...]
    folder: Path  # DIR/runs/<point>

    def run_folders(self) -> list[Path]:
        return [seed_folder(self.folder, s) for s in self.seeds]


def read_plan(path: Path) -> StudyPlan:
    """The plan in ``path``; any problem is one ConfigError naming the file and the key. The
    runs are counted from the grids' sizes before any point is made, and every point's settings
    are checked before anything trains."""
    try:
        raw = tomllib.loads(read_text(path, "TOML study plan"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such plan file") from None
    except (OSError, UnicodeDecodeError, RecursionError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{path}: not a readable TOML plan ({err})") from None
    unknown = set(raw) - PLAN_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]!r} (expected "
                          f"{', '.join(sorted(PLAN_KEYS))})")  # fmt: skip
    base, grid = raw.get("base", {}), raw.get("grid", {})
    grids = grid if isinstance(grid, list) else [grid]
    if not isinstance(base, dict) or not grids or not all(isinstance(g, dict) for g in grids):
        raise ConfigError(f"{path}: [base] and [grid] (or [[grid]] tables) must be tables")
    for grid in grids:
        for key, values in grid.items():
            if not isinstance(values, list) or not values or any(isinstance(v, dict | list)
                                                                  for v in values):  # fmt: skip
                raise ConfigError(f"{path}: grid.{key}: expected a non-empty list of values")
            if len({_same(v) for v in values}) != len(values):
                raise ConfigError(f"{path}: grid.{key}: repeated values")
    _check_names(path, base, grids)
    try:
        seeds = parse_seeds(raw.get("seeds", [0]))
    except ConfigError as err:
        raise ConfigError(f"{path}: {marked(err)}") from None
    stack = raw.get("stack_seeds", False)
    if not isinstance(stack, bool):
        raise ConfigError(f"{path}: stack_seeds: expected true or false")
    metrics = raw.get("metrics", "")
    metrics = ",".join(metrics) if isinstance(metrics, list) else str(metrics)
    samples = raw.get("metric_samples")
    if metrics:
        from vaetool.analysis.metrics import MetricSizes, metric_names

        try:
            metric_names(metrics)
            MetricSizes().scaled(samples)
        except VaetoolError as err:
            raise ConfigError(f"{path}: {marked(err)}") from None
    prune = _prune_rows(path, raw.get("prune", ""))
    plan = StudyPlan({_key(k): v for k, v in base.items()},
                     tuple({_key(k): v for k, v in g.items()} for g in grids), seeds, stack,
                     metrics, samples, prune)  # fmt: skip
    _check_size(path, plan, raw.get("max_runs", MAX_RUNS))
    for point in plan.points():  # every setting checked before anything trains
        try:
            train_request({**plan.base, **point, "seed": plan.seeds[0]})
        except VaetoolError as err:
            raise ConfigError(f"{path}: point {point_name(point)}: {marked(err)}") from None
    return plan


def _check_names(path: Path, base: dict[str, Any], grids: list[dict[str, Any]]) -> None:
    """Every key of [base] and the grids is a training setting the study does not set itself,
    and is set in one place."""
    for table, keys in (("[base]", list(base)), *(("[grid]", list(g)) for g in grids)):
        check_setting_names([_key(k) for k in keys], f"{path} {table}")
    swept = {_key(k) for g in grids for k in g}
    clash = {_key(k) for k in base} & swept
    forbidden = STUDY_SETS & ({_key(k) for k in base} | swept)
    if clash or forbidden:
        what = sorted(clash or forbidden)[0]
        raise ConfigError(f"{path}: {what!r} cannot be set there (the study sets out, seed, "
                          "device and threads; an option is in [base] or in [grid])")  # fmt: skip


def _check_size(path: Path, plan: StudyPlan, limit: Any) -> None:
    """Refuse a plan that sets nothing (it would train the default model) or asks for more
    runs than ``max_runs`` (counted from the grids' sizes, before any point is made)."""
    if not plan.base and not plan.swept:
        raise ConfigError(f"{path}: the plan sets nothing ([base] and [grid] are empty or "
                          "missing) and would train the default model; expected settings in "
                          "[base], lists to sweep in [grid], or both")  # fmt: skip
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 2**63 - 1:
        raise ConfigError(f"{path}: max_runs {limit!r}: expected a positive integer")
    count = plan.run_count()
    if count > limit:
        sizes = " + ".join(" × ".join(str(len(v)) for v in g.values()) or "1" for g in plan.grids)
        sizes = f"({sizes})" if len(plan.grids) > 1 else sizes
        seeds = f"{len(plan.seeds)} seed{'s' if len(plan.seeds) > 1 else ''}"
        raise ConfigError(f"{path}: the grid asks for {count:,} runs ({sizes} points × "
                          f"{seeds}), more than max_runs {limit:,}; shrink the grid, or set "
                          f"max_runs = {count} in the plan to confirm")  # fmt: skip


def _prune_rows(path: Path, value: Any) -> str:
    """The plan's ``prune`` rows (a --top text or a list of rows; ``true``: the paper's)."""
    from vaetool.analysis.pruning import PAPER_TOP, parse_top

    if value is True:
        value = PAPER_TOP
    text = ",".join(map(str, value)) if isinstance(value, list) else value
    if not isinstance(text, str):
        raise ConfigError(f'{path}: prune: expected true or prune rows such as "100%,10%,1"')
    try:
        parse_top(text) if text else None
    except VaetoolError as err:
        raise ConfigError(f"{path}: prune: {marked(err)}") from None
    return text


def _key(name: str) -> str:
    return name.replace("-", "_")


def point_name(point: dict[str, Any]) -> str:
    """A folder name for a grid point: ``beta=4,objective=beta_tcvae`` (unsafe chars -> _)."""
    if not point:
        return "base"
    return ",".join(_SAFE.sub("_", f"{k}={v}") for k, v in point.items())


def units(plan: StudyPlan, out: Path) -> list[Unit]:
    """The study's work in a fixed order: per point, its seeds together (``stack_seeds``)
    or one seed at a time."""
    found = []
    for point in plan.points():
        folder = Path(out) / RUNS_DIR / point_name(point)
        groups = [plan.seeds] if plan.stack_seeds else [(s,) for s in plan.seeds]
        found += [Unit(point, seeds, folder) for seeds in groups]
    return found


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` with 1 <= K <= N."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise ConfigError(f"‹shard› {text!r}: expected K/N with 1 <= K <= N, e.g. 2/4")
    return int(match[1]), int(match[2])
