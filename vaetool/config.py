"""Frozen, validated configuration dataclasses, stored resolved in every checkpoint.

Each config round-trips through a plain dict (``to_dict`` / ``from_dict``) so a checkpoint's JSON
metadata alone rebuilds the model, and reloads the data and split it was trained on.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, TypeVar

from vaetool.errors import ConfigError

C = TypeVar("C", bound="_DictConfig")

# ModelConfig fields only some likelihoods read (each names its own in .options)
LIKELIHOOD_OPTIONS = ("noise_fit", "noise_per_pixel", "noise_warmup", "components")
NOISE_FITS = ("closed", "gradient")  # how gaussian_learned learns σ² (vaetool.likelihoods)
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


MAX_CATEGORIES = 1000  # a code wider than this is a mistake, not a model


def check_categories(categories: int, temperature: float, rate: float) -> None:
    """ConfigError unless K is 0 (no code) or 2..MAX_CATEGORIES, τ > 0 and r >= 0 finite."""
    if categories != 0 and not 2 <= categories <= MAX_CATEGORIES:
        raise ConfigError(
            f"‹categories› {categories}: expected 0 (none) or K from 2 to {MAX_CATEGORIES}"
        )
    check_finite("‹temperature›", temperature, positive=True)
    check_finite("‹temperature_rate›", rate)


def _type_ok(value: Any, hint: str) -> bool:
    """Whether ``value`` fits a field's annotation (the few forms configs use)."""
    if hint.endswith(" | None"):
        return value is None or _type_ok(value, hint.removesuffix(" | None"))
    if hint.startswith("tuple["):
        inner = hint[len("tuple[") : -1].split(", ")[0]
        return isinstance(value, tuple) and all(_type_ok(v, inner) for v in value)
    if hint.startswith("dict["):
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)
    if hint == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if hint == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, str) if hint == "str" else True


class _DictConfig:
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    def _check_types(self) -> None:
        """ConfigError naming the first field whose value does not fit its annotation (a config
        read from a file is checked before anything is built from it)."""
        for item in fields(self):  # type: ignore[arg-type]
            value = getattr(self, item.name)
            if not _type_ok(value, str(item.type)):
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
    """What rebuilds a VAE: the architecture is chosen from the image shape (paper 000, App.)."""

    architecture: str  # registry name in vaetool.models: conv28, conv32, conv64, mlp
    image_shape: tuple[int, int, int]  # (C, H, W) of the training images
    latents: int = 128  # H, the number of latent factors (paper 000 uses 128)
    likelihood: str = "bernoulli"  # registry name in vaetool.likelihoods
    sigma2: float = 0.01  # gaussian: the fixed variance; gaussian_learned, mog2: the start
    hidden: int = 256  # width of the fully connected layer (paper 000: FC 256)
    encoder: str = "paper"  # registry name in vaetool.models.ENCODERS: paper or split
    split_width: int = 256  # split encoder: width of each factor's own layers (paper 003 §4.2)
    split_depth: int = 1  # split encoder: hidden layers each factor owns before its head
    latent: str = "gaussian"  # registry name in vaetool.models.latents.LATENTS
    noise_corr: float = 0.0  # ρ of the equicorrelated reparameterisation noise (paper 003 eq. 13)
    noise_fit: str = "closed"  # gaussian_learned: "closed" (batch optimum) or "gradient" (Adam)
    noise_per_pixel: bool = False  # gaussian_learned: one σ² per pixel instead of one in all
    noise_warmup: int = 50  # gaussian_learned (closed): steps at the start σ² before fitting it
    components: int = 2  # mog2: K, mixture components per pixel (paper 002 App. A.2)
    categories: int = 0  # K of a categorical code beside the Gaussian factors (paper 001 §4.2)
    temperature: float = 0.67  # τ of the code's Gumbel-softmax relaxation (jointvae's 0.67)
    temperature_rate: float = 0.0  # r > 0: τ_t = max(0.5, exp(−r t)) (Jang et al.), else τ fixed

    def __post_init__(self) -> None:
        self._check_types()
        check_categories(self.categories, self.temperature, self.temperature_rate)
        if self.noise_fit not in NOISE_FITS:
            raise ConfigError(
                f"‹noise_fit› {self.noise_fit!r}: expected one of {', '.join(NOISE_FITS)}"
            )
        if self.components < 1:
            raise ConfigError(f"‹components› {self.components}: expected a positive integer")
        if self.noise_warmup < 0:
            raise ConfigError(f"‹noise_warmup› {self.noise_warmup}: expected 0 or more steps")
        if self.latents < 1:
            raise ConfigError(f"‹latents› {self.latents}: expected a positive integer")
        check_finite("‹sigma2›", self.sigma2, positive=True)
        for name in ("hidden", "split_width", "split_depth"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} {getattr(self, name)}: expected a positive integer")
        if not (math.isfinite(self.noise_corr) and 0 <= self.noise_corr < 1):
            raise ConfigError(f"‹noise_corr› {self.noise_corr}: expected ρ in [0, 1)")
        if (self.noise_corr > 0) != (self.latent == "correlated"):
            raise ConfigError(
                f"latent {self.latent!r} with noise_corr {self.noise_corr}: correlated noise "
                "(ρ > 0) is the 'correlated' family, ρ = 0 the 'gaussian' one"
            )
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise ConfigError(f"image shape {self.image_shape}: expected (C, H, W)")


@dataclass(frozen=True)
class ModelChoice(_DictConfig):
    """The model options a user chooses; :meth:`resolve` adds what the data decides (the
    architecture and image shape) to make a :class:`ModelConfig`."""

    latents: int = 128
    likelihood: str = "bernoulli"
    sigma2: float = 0.01
    hidden: int = 256
    encoder: str = "paper"
    split_width: int = 256
    split_depth: int = 1
    noise_corr: float = 0.0
    noise_fit: str = "closed"
    noise_per_pixel: bool = False
    noise_warmup: int = 50
    components: int = 2
    categories: int = 0
    temperature: float = 0.67
    temperature_rate: float = 0.0

    def __post_init__(self) -> None:
        self._check_types()

    def resolve(self, architecture: str, image_shape: tuple[int, int, int]) -> ModelConfig:
        latent = "correlated" if self.noise_corr > 0 else "gaussian"
        return ModelConfig(architecture, image_shape, latent=latent, **self.to_dict())


@dataclass(frozen=True)
class DataConfig(_DictConfig):
    """Which data a model saw and how it was split (default 0.6/0.2/0.2, as paper 000)."""

    spec: str = "mnist5k"  # dataset spec: mnist5k, idx:DIR, npz:FILE, folder:DIR, dsprites[:FILE]
    split_seed: int = 0  # seed of the train/val/test permutation
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    subset: int | None = None  # a seeded sample of this many images, or all

    def __post_init__(self) -> None:
        self._check_types()
        check_seed("‹split_seed›", self.split_seed)
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
