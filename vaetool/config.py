"""Frozen, validated configuration dataclasses, stored resolved in every checkpoint.

Each config round-trips through a plain dict (``to_dict`` / ``from_dict``) so a checkpoint's JSON
metadata alone rebuilds the model, and reloads the data and split it was trained on.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, TypeVar

from vaetool.errors import ConfigError
from vaetool.options import type_ok

C = TypeVar("C", bound="_DictConfig")

KEEP_CHOICES = ("last", "best")
PRECISION_CHOICES = ("fp32", "bf16")  # vaetool.device.PRECISIONS


MAX_SEED = 2**63 - 1  # seeds are 64-bit for torch and numpy


def check_seed(option: str, seed: int) -> None:
    """ConfigError unless 0 <= ``seed`` <= 2**63 - 1 (what torch and numpy accept)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"{option} {seed}: expected an integer from 0 to 2**63 - 1")


def check_finite(option: str, value: float, *, positive: bool = False) -> None:
    """ConfigError unless ``value`` is a finite number (and > 0 when ``positive``, else >= 0)."""
    ok = math.isfinite(value) and (value > 0 if positive else value >= 0)
    if not ok:
        what = "a finite positive number" if positive else "a finite number >= 0"
        raise ConfigError(f"{option} {value}: expected {what}")


def check_fractions(fractions: tuple[float, ...]) -> None:
    """ConfigError unless ``fractions`` are three finite numbers >= 0 summing to 1 (the
    train/val/test split)."""
    ok = len(fractions) == 3 and all(math.isfinite(f) and f >= 0 for f in fractions)
    if not ok or abs(sum(fractions) - 1) > 1e-6:
        raise ConfigError(
            f"split fractions {list(fractions)}: expected three finite numbers >= 0 summing to 1"
        )


MAX_CATEGORIES = 1000  # a code wider than this is a mistake, not a model


def check_categories(categories: int, temperature: float, rate: float) -> None:
    """ConfigError unless K is 0 (no code) or 2..MAX_CATEGORIES, τ > 0 and r >= 0 finite."""
    if categories != 0 and not 2 <= categories <= MAX_CATEGORIES:
        raise ConfigError(
            f"‹categories› {categories}: expected 0 (none) or K from 2 to {MAX_CATEGORIES}"
        )
    check_finite("‹temperature›", temperature, positive=True)
    check_finite("‹temperature_rate›", rate)


class _DictConfig:
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    def _check_types(self) -> None:
        """ConfigError naming the first field whose value does not fit its annotation (a config
        read from a file is checked before anything is built from it)."""
        for item in fields(self):  # type: ignore[arg-type]
            value = getattr(self, item.name)
            if not type_ok(value, str(item.type)):
                raise ConfigError(f"{item.name} {value!r}: expected {item.type}")

    @classmethod
    def from_dict(cls: type[C], raw: dict[str, Any]) -> C:
        """Build from a dict; an unknown key is an error (a typo or a newer writer), and every
        field's type and range is checked by ``__post_init__`` before anything is built."""
        if not isinstance(raw, dict):
            raise ConfigError(f"{cls.__name__}: expected a mapping, got {type(raw).__name__}")
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(raw) - names)
        if unknown:
            raise ConfigError(
                f"{cls.__name__}: unknown key {unknown[0]!r}; "
                f"expected some of {', '.join(sorted(names))}"
            )
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
        try:
            return cls(**kwargs)
        except TypeError as err:
            raise ConfigError(f"{cls.__name__}: {err}") from None


@dataclass(frozen=True)
class ModelConfig(_DictConfig):
    """What rebuilds a VAE. ``architecture`` and ``image_shape`` are None in a model the user
    chooses before the data is read: :meth:`for_data` fills them (the architecture from the
    image shape, paper 000's appendix). Each component is a registry name and, where it takes
    options, its resolved options (``likelihood_options``, ``encoder_options``,
    ``latent_options``: the dicts of their ``Options`` dataclasses, vaetool.options)."""

    architecture: str | None = None  # registry name in vaetool.models: conv28, conv32, conv64, mlp
    image_shape: tuple[int, int, int] | None = None  # (C, H, W) of the training images
    latents: int = 128  # H, the number of latent factors (paper 000 uses 128)
    likelihood: str = "bernoulli"  # registry name in vaetool.likelihoods
    likelihood_options: dict[str, Any] = field(default_factory=dict)  # the likelihood's Options
    hidden: int = 256  # width of the fully connected layer (paper 000: FC 256)
    encoder: str = "paper"  # registry name in vaetool.models.ENCODERS: paper or split
    encoder_options: dict[str, Any] = field(default_factory=dict)  # the encoder's Options
    latent: str = "gaussian"  # registry name in vaetool.models.latents.LATENTS
    latent_options: dict[str, Any] = field(default_factory=dict)  # its Options (correlated: ρ)
    categories: int = 0  # K of a categorical code beside the Gaussian factors (paper 001 §4.2)
    temperature: float = 0.67  # τ of the code's Gumbel-softmax relaxation (jointvae's 0.67)
    temperature_rate: float = 0.0  # r > 0: τ_t = max(0.5, exp(−r t)) (Jang et al.), else τ fixed

    def __post_init__(self) -> None:
        self._check_types()
        check_categories(self.categories, self.temperature, self.temperature_rate)
        if self.latents < 1:
            raise ConfigError(f"‹latents› {self.latents}: expected a positive integer")
        if self.hidden < 1:
            raise ConfigError(f"hidden {self.hidden}: expected a positive integer")
        if (self.architecture is None) != (self.image_shape is None):
            raise ConfigError("architecture and image shape: give both or neither")
        if self.image_shape is not None and (
            len(self.image_shape) != 3 or min(self.image_shape) < 1
        ):
            raise ConfigError(f"image shape {self.image_shape}: expected (C, H, W)")

    def for_data(self, architecture: str, image_shape: tuple[int, int, int]) -> ModelConfig:
        """This model for data of ``image_shape`` with the network ``architecture``."""
        return replace(self, architecture=architecture, image_shape=tuple(image_shape))

    def __hash__(self) -> int:  # the options are dicts: hash their sorted items
        options = tuple(tuple(sorted(o.items())) for o in (
            self.likelihood_options, self.encoder_options, self.latent_options))  # fmt: skip
        return hash((self.architecture, self.image_shape, self.latents, self.likelihood, options))


@dataclass(frozen=True)
class DataConfig(_DictConfig):
    """Which data a model saw and how it was split (default 0.6/0.2/0.2, as paper 000)."""

    spec: str = "mnist5k"  # dataset spec: mnist5k, idx:DIR, npz:FILE, folder:DIR, dsprites[:FILE]
    split_seed: int = 0  # seed of the train/val/test permutation
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    subset: int | None = None  # a seeded sample of this many images, or all

    def __post_init__(self) -> None:
        self._check_types()
        if not self.spec:
            raise ConfigError("‹spec› '': expected a dataset spec (docs/datasets.md)")
        check_seed("‹split_seed›", self.split_seed)
        check_fractions(self.fractions)
        if self.subset is not None and self.subset < 1:
            raise ConfigError(f"‹subset› {self.subset}: expected a positive number of images")


@dataclass(frozen=True)
class TrainConfig(_DictConfig):
    """Optimisation settings; defaults follow paper 000's appendix table (Adam, batch 100)."""

    objective: str = "beta_vae"  # registry name in vaetool.objectives
    options: dict[str, Any] = field(default_factory=dict)  # the objective's, resolved
    epochs: int = 20
    batch_size: int = 100
    lr: float | None = None  # Adam rate; None = the paper's rate for the architecture
    seed: int = 0  # seeds weight init, shuffling and the reparameterisation noise
    keep: str = "last"  # which weights the checkpoint holds: the last epoch's or the best val ELBO
    precision: str = "fp32"  # the forward's autocast dtype: fp32 or bf16 (vaetool.device)
    graph: bool = True  # on CUDA, capture the step as a CUDA graph (vaetool.training.fast_step)

    def __post_init__(self) -> None:
        self._check_types()
        if self.keep not in KEEP_CHOICES:
            raise ConfigError(f"‹keep› {self.keep!r}: expected one of {', '.join(KEEP_CHOICES)}")
        if self.precision not in PRECISION_CHOICES:
            raise ConfigError(f"‹precision› {self.precision!r}: expected fp32 or bf16")
        if self.epochs < 1:
            raise ConfigError(f"‹epochs› {self.epochs}: expected at least 1")
        if self.batch_size < 1:
            raise ConfigError(f"‹batch_size› {self.batch_size}: expected at least 1")
        if self.lr is not None:
            check_finite("‹lr›", self.lr, positive=True)
        check_seed("‹seed›", self.seed)

    def __hash__(self) -> int:  # options is a dict: hash its sorted items
        return hash((self.objective, tuple(sorted(self.options.items())), self.epochs))
