"""Model registry: the papers' architectures, chosen from the image shape."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from torch import nn

from vaetool.config import ModelConfig
from vaetool.errors import ConfigError
from vaetool.likelihoods import LIKELIHOODS
from vaetool.models import foreign
from vaetool.models.conv import ConvDecoder, ConvEncoder, conv_trunk
from vaetool.models.latents import LATENTS
from vaetool.models.mlp import MLPDecoder, MLPEncoder, mlp_trunk
from vaetool.models.split import SplitEncoder
from vaetool.models.vae import VAE, VAEOutput
from vaetool.options import NoOptions, make_options, option
from vaetool.registry import Registry

__all__ = [
    "ARCHITECTURES",
    "ENCODERS",
    "VAE",
    "VAEOutput",
    "architecture_for_shape",
    "build_model",
    "check_choice",
    "default_lr",
]

EncoderBuilder = Callable[[ModelConfig], nn.Module]
TrunkBuilder = Callable[[ModelConfig], tuple[nn.Module, int]]  # (shared layers, features out)
DecoderBuilder = Callable[[ModelConfig], nn.Module]


@dataclass(frozen=True)
class Architecture:
    """A network family for one image shape: the papers' encoder, the shared trunk a split
    encoder starts from (paper 003 §4.2), and the decoder."""

    paper_encoder: EncoderBuilder
    trunk: TrunkBuilder
    decoder: DecoderBuilder


ARCHITECTURES: Registry[Architecture] = Registry("architecture")
# An encoder kind builds the encoder from an architecture and a config (--encoder).
EncoderKind = Callable[[Architecture, ModelConfig], nn.Module]
ENCODERS: Registry[EncoderKind] = Registry("encoder", "‹encoder›")

# Conv channel stacks from paper 000's appendix table, keyed by architecture name.
_CONV_CHANNELS = {"conv28": (32, 32), "conv32": (32, 32, 64, 64), "conv64": (32, 32, 64, 64)}
# Adam learning rates from the same table: MNIST 1e-3, CelebA 1e-4, DEAP (32×32×3) 1e-4.
_DEFAULT_LR = {"conv28": 1e-3, "conv32": 1e-4, "conv64": 1e-4, "mlp": 1e-3}


def _conv(name: str) -> Architecture:
    channels = _CONV_CHANNELS[name]
    return Architecture(
        paper_encoder=lambda cfg: ConvEncoder(
            cfg.image_shape, channels, cfg.hidden, cfg.latents, cfg.categories
        ),
        trunk=lambda cfg: conv_trunk(cfg.image_shape, channels),
        decoder=lambda cfg: ConvDecoder(
            cfg.image_shape, channels, cfg.hidden, cfg.latents + cfg.categories
        ),
    )


for _name in _CONV_CHANNELS:
    ARCHITECTURES.register(_name)(_conv(_name))

ARCHITECTURES.register("mlp")(
    Architecture(
        paper_encoder=lambda cfg: MLPEncoder(
            cfg.image_shape, cfg.hidden, cfg.latents, cfg.categories
        ),
        trunk=lambda cfg: mlp_trunk(cfg.image_shape),
        decoder=lambda cfg: MLPDecoder(cfg.image_shape, cfg.hidden, cfg.latents + cfg.categories),
    )
)


# Other frameworks' published networks (vaetool.models.foreign; `vaetool import`).
ARCHITECTURES.register("burgess")(
    Architecture(foreign.burgess_encoder, foreign.no_trunk, foreign.burgess_decoder)
)
ARCHITECTURES.register("pythae_mlp")(
    Architecture(foreign.pythae_mlp_encoder, foreign.no_trunk, foreign.pythae_mlp_decoder)
)
for _name in foreign.PYTHAE_CONV_SHAPES:
    ARCHITECTURES.register(_name)(
        Architecture(
            lambda cfg, n=_name: foreign.pythae_conv_encoder(n, cfg),
            foreign.no_trunk,
            lambda cfg, n=_name: foreign.pythae_conv_decoder(n, cfg),
        )
    )


@dataclass(frozen=True)
class SplitOptions:
    split_width: int = option(256, "width of each factor's own layers (paper 003 §4.2)")
    split_depth: int = option(1, "hidden layers each factor owns before its head")

    def __post_init__(self) -> None:
        for name in ("split_width", "split_depth"):
            if getattr(self, name) < 1:
                raise ConfigError(f"‹{name}› {getattr(self, name)}: expected a positive integer")


def encoder(name: str, options: type = NoOptions) -> Callable[[EncoderKind], EncoderKind]:
    """Decorator: ``@encoder("name", Options)`` registers an encoder builder with its options."""

    def add(build: EncoderKind) -> EncoderKind:
        build.Options = options  # type: ignore[attr-defined]
        return ENCODERS.register(name)(build)

    return add


@encoder("paper")
def _paper_encoder(architecture: Architecture, config: ModelConfig) -> nn.Module:
    """The papers' encoder: shared layers to one linear (mu, logvar) head (paper 000, App.)."""
    return architecture.paper_encoder(config)


@encoder("split", SplitOptions)
def _split_encoder(architecture: Architecture, config: ModelConfig) -> nn.Module:
    """Paper 003 §4.2: the shared trunk, then per-factor layers batched as one einsum layer."""
    trunk, features = architecture.trunk(config)
    options = encoder_options("split", config.encoder_options)
    return SplitEncoder(trunk, features, config, options.split_width, options.split_depth)


def architecture_for_shape(image_shape: tuple[int, int, int]) -> str:
    """28×28 -> conv28, 32×32 -> conv32, 64×64 -> conv64 (any channel count), else mlp."""
    _, h, w = image_shape
    return {(28, 28): "conv28", (32, 32): "conv32", (64, 64): "conv64"}.get((h, w), "mlp")


def default_lr(architecture: str) -> float:
    return _DEFAULT_LR.get(architecture, 1e-3)


def build_model(config: ModelConfig) -> VAE:
    """A freshly initialised VAE for ``config`` (weights from torch's global generator)."""
    architecture = ARCHITECTURES.get(config.architecture)
    encoder = ENCODERS.get(config.encoder)(architecture, config)
    return VAE(config, encoder, architecture.decoder(config))


def check_choice(model: ModelConfig) -> None:
    """A chosen model's registry names (likelihood, encoder) and their options checked without
    building anything (ranges are checked by the config itself)."""
    for family in MODEL_COMPONENTS:
        resolve_component_options(
            family, getattr(model, family), getattr(model, f"{family}_options")
        )


def encoder_options(name: str, raw: dict[str, Any]) -> Any:
    """The encoder ``name``'s Options from ``raw`` (defaults for what is absent), checked."""
    return make_options("encoder", name, ENCODERS.get(name).Options, raw)  # type: ignore[attr-defined]


# The model's components that take options, by family: ModelConfig.<family> names the chosen
# one and ModelConfig.<family>_options holds its resolved options.
MODEL_COMPONENTS: dict[str, Registry[Any]] = {
    "likelihood": LIKELIHOODS,
    "encoder": ENCODERS,
    "latent": LATENTS,
}


def option_fields(family: str, name: str) -> dict[str, str]:
    """The options of component ``name`` of ``family``: name -> type."""
    options = MODEL_COMPONENTS[family].get(name).Options  # type: ignore[attr-defined]
    return {f.name: str(f.type) for f in fields(options)}


def resolve_component_options(family: str, name: str, raw: dict[str, Any]) -> dict[str, Any]:
    """The component's options with defaults filled in, as the dict a ModelConfig stores."""
    options = MODEL_COMPONENTS[family].get(name).Options  # type: ignore[attr-defined]
    return asdict(make_options(family, name, options, raw))
