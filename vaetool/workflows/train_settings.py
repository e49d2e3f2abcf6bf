"""Settings by name -> a :class:`TrainRequest`: the one route from a flag, ``--option
KEY=VALUE``, a ``--config`` file or a study plan to the configs a run is built from.

Every name is checked against what can be set (the run's own keys and every registered
component's options) before it is routed, and every integer against 64 bits and its own sane
bound, so a typo, a key of no component or ``epochs = 99999999999999999999`` is one line that
says so, wherever it was written.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from vaetool.config import MAX_SEED, DataConfig, ModelConfig, TrainConfig
from vaetool.errors import ConfigError, fields_in, marked
from vaetool.models import MODEL_COMPONENTS, option_fields, resolve_component_options
from vaetool.objectives import OBJECTIVES, check_fits, resolve_options
from vaetool.options import comma_ints, option_names
from vaetool.store.text import read_config_file


@dataclass(frozen=True)
class TrainRequest:
    """Train a VAE with the papers' architecture for the data's image shape into ``out``."""

    out: Path = Path("vaetool-run")
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    threads: int | None = None  # CPU threads for torch (None: torch's default)
    force: bool = False
    device: str = "auto"
    seeds: tuple[int, ...] = ()  # train these K seeds at once into out/seed-S (training.ensemble)


# Which settings go where: a setting from --config or a flag lands in one of these (data:
# DataConfig field names; run: the request's own), the rest are the objective's options.
DATA_KEYS = {"data": "spec", "subset": "subset", "split_seed": "split_seed"}
TRAIN_KEYS = ("objective", "epochs", "batch_size", "lr", "seed", "keep", "precision", "graph")
RUN_KEYS = ("out", "force", "device", "threads", "seeds")
MODEL_ALIASES = {"latent_categorical": "categories"}  # flag name -> ModelConfig field
OPTION_TABLES = ("likelihood_options", "encoder_options", "latent_options")  # filled by name
CHOSEN_BY_DATA = ("architecture", "image_shape", *OPTION_TABLES)
MODEL_KEYS = frozenset(f.name for f in fields(ModelConfig)) - set(CHOSEN_BY_DATA)

# Names that look like settings but are not: what each is instead.
NOT_SETTINGS = {
    "config": "the file itself holds the settings (one ‹config› file per run)",
    "resume": "a run is continued by ‹resume› FOLDER alone (a study resumes its own runs)",
    "architecture": "chosen from the data's image shape",
    "image_shape": "chosen from the data's image shape",
    **{t: "the component's options are set by their own names" for t in OPTION_TABLES},
}
MAX_INT = 2**63 - 1  # every integer setting fits int64 (torch's and numpy's integers)
INT_LIMITS = {"epochs": 10**6}  # tighter than 64 bits: beyond it, a number no run means
SEE_OPTIONS = ("expected a `vaetool train` setting or an option of a registered component "
               "(`vaetool components` lists them, with their options)")  # fmt: skip


def setting_names() -> frozenset[str]:
    """Every name :func:`train_request` routes: data, training, run and model keys and every
    option of every registered objective, likelihood, encoder and latent family."""
    return _names(_registered())[0]


def _registered() -> tuple[tuple[Any, ...], ...]:
    """What the registries hold now (a plugin may add or remove a component at any time)."""
    families = (*MODEL_COMPONENTS.items(), ("objective", OBJECTIVES))
    return tuple((family, *((n, r.get(n)) for n in r.names())) for family, r in families)


@functools.lru_cache(maxsize=4)
def _names(registered: tuple[tuple[Any, ...], ...]) -> tuple[frozenset[str], dict[str, set[str]]]:
    """The names a request routes, and each model family's options over all its components
    (computed once per state of the registries: a study checks thousands of points)."""
    del registered  # the cache key
    names = {*DATA_KEYS, *TRAIN_KEYS, *RUN_KEYS, *MODEL_ALIASES, *MODEL_KEYS}
    families = {family: {o for name in registry for o in option_fields(family, name)}
                for family, registry in MODEL_COMPONENTS.items()}  # fmt: skip
    names |= {o for options in families.values() for o in options}
    names |= {o for n in OBJECTIVES.names() for o in option_names(OBJECTIVES.get(n).Options)}
    return frozenset(names), families


def check_setting_names(keys: list[str], where: str = "") -> None:
    """ConfigError for the first of ``keys`` that no setting or component option has: ``where``
    (a file, a plan table) says where it was written; a close name is suggested."""
    known = setting_names()
    for key in keys:
        if key in known:
            continue
        at = f" in {where}" if where else ""
        if key in NOT_SETTINGS:
            raise ConfigError(f"{key!r}{at} is not a setting: {NOT_SETTINGS[key]}")
        close = difflib.get_close_matches(key, sorted(known), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown key {key!r}{at}{hint}: {SEE_OPTIONS}")


def check_integers(settings: dict[str, Any]) -> None:
    """ConfigError for the first integer setting beyond 64 bits or its own bound."""
    for key, value in settings.items():
        if isinstance(value, bool) or not isinstance(value, int):
            continue
        if not -MAX_INT - 1 <= value <= MAX_INT:
            raise ConfigError(f"‹{key}› {value}: out of range; expected an integer that fits "
                              "in 64 bits")  # fmt: skip
        if key in INT_LIMITS and value > INT_LIMITS[key]:
            raise ConfigError(f"‹{key}› {value}: expected at most {INT_LIMITS[key]:,}")


def train_request(settings: dict[str, Any], config_file: Path | None = None) -> TrainRequest:
    """A request from ``--config FILE`` (TOML or JSON, option names with - or _) overridden by
    ``settings`` (the flags given; None = not given). Model keys are ModelConfig's fields,
    data keys data/subset/split_seed, training keys objective/epochs/batch_size/lr/seed/keep,
    run keys out/force/device/threads; a key of the chosen likelihood's or encoder's Options is
    its option;
    every other key is an option of the objective, checked by it (one that does not apply is
    an error naming the flag). A key that is no setting at all is refused first, naming the
    file it came from; any other problem with a value the file set names the file too."""
    from_file = read_config_file(config_file) if config_file is not None else {}
    if config_file is not None:
        check_setting_names(list(from_file), f"‹config› {config_file}")
    given = {k: v for k, v in settings.items() if v is not None}
    check_setting_names(list(given))
    try:
        return _request({**from_file, **given})
    except ConfigError as err:
        text = marked(err)
        named = {*fields_in(text), text.split(" ", 1)[0]}  # a field, or a config's own message
        if config_file is None or not named & (set(from_file) - set(given)):
            raise
        raise ConfigError(f"‹config› {config_file}: {text}") from None


def _request(merged: dict[str, Any]) -> TrainRequest:
    check_integers(merged)
    for flag, name in MODEL_ALIASES.items():
        if flag in merged:
            merged[name] = merged.pop(flag)
    if "noise_corr" in merged and "latent" not in merged:  # ρ alone picks the latent family
        if merged["noise_corr"] == 0:
            merged.pop("noise_corr")  # ρ = 0: the factorised family, the default
        else:
            merged["latent"] = "correlated"
    data = {DATA_KEYS[k]: merged.pop(k) for k in list(merged) if k in DATA_KEYS}
    model = {k: merged.pop(k) for k in list(merged) if k in MODEL_KEYS}
    for family in MODEL_COMPONENTS:  # the chosen likelihood's and encoder's options by name
        name = str(model.get(family, getattr(ModelConfig, family)))
        owned = option_fields(family, name)
        raw = {k: merged.pop(k) for k in list(merged) if k in owned}
        model[f"{family}_options"] = resolve_component_options(family, name, raw)
    _refuse_other_components(model, merged)
    train = {k: merged.pop(k) for k in list(merged) if k in TRAIN_KEYS}
    run = {k: merged.pop(k) for k in list(merged) if k in RUN_KEYS}
    if "out" in run:
        run["out"] = Path(run["out"])
    if "seeds" in run:
        run["seeds"] = parse_seeds(run["seeds"])
        if "seed" in train:
            raise ConfigError("‹seed› and ‹seeds›: give one (‹seeds› trains several at once)")
    train_config = TrainConfig(options=merged, **train)
    resolve_options(train_config.objective, merged)  # an option that does not apply fails now
    choice = ModelConfig(**model)
    check_objective_fits(train_config.objective, choice, train_config.options)
    return TrainRequest(data=DataConfig(**data), train=train_config, model=choice, **run)


def check_objective_fits(
    objective: str, model: ModelConfig, options: dict[str, Any] | None = None
) -> None:
    """:func:`vaetool.objectives.check_fits` for a model chosen before its data is read (any
    architecture stands in): refused before anything is written."""
    check_fits(objective, options or {}, model.for_data("mlp", (1, 1, 1)))


def _refuse_other_components(model: dict[str, Any], settings: dict[str, Any]) -> None:
    """An option of a likelihood or encoder other than the chosen one is refused, naming the
    chosen one's options."""
    for family, others in _names(_registered())[1].items():
        for key in settings:
            if key in others:
                chosen = str(model.get(family, getattr(ModelConfig, family)))
                valid = ", ".join(f"‹{o}›" for o in sorted(option_fields(family, chosen)))
                raise ConfigError(f"‹{key}› does not apply to ‹{family}› {chosen} (its options: "
                                  f"{valid or 'none'})")  # fmt: skip


MAX_SEEDS = 64  # models in one stack


def parse_seeds(value: object) -> tuple[int, ...]:
    """``--seeds 0,1,2`` (or a TOML list): distinct ints from 0 to 2**63 - 1, at most
    MAX_SEEDS."""
    expected = "distinct seeds from 0 to 2**63 - 1, e.g. 0,1,2"
    if isinstance(value, str):
        seeds = comma_ints("seeds", value, expected)
    else:
        is_list = isinstance(value, list | tuple)
        seeds = tuple(v for v in value if type(v) is int) if is_list else ()  # type: ignore[union-attr]
        seeds = seeds if is_list and len(seeds) == len(value) else ()  # type: ignore[arg-type]
    if not seeds or any(not 0 <= s <= MAX_SEED for s in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"‹seeds› {value!r}: expected {expected}")
    if len(seeds) > MAX_SEEDS:
        raise ConfigError(f"‹seeds›: {len(seeds)} seeds; at most {MAX_SEEDS} train at once")
    return seeds
