"""Model registry: the papers' architectures, chosen from the image shape."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from vaetool.config import ModelConfig
from vaetool.models.conv import ConvDecoder, ConvEncoder
from vaetool.models.mlp import MLPDecoder, MLPEncoder
from vaetool.models.vae import VAE, VAEOutput, reparameterize
from vaetool.registry import Registry

__all__ = [
    "ARCHITECTURES",
    "VAE",
    "VAEOutput",
    "architecture_for_shape",
    "build_model",
    "default_lr",
    "reparameterize",
]

Builder = Callable[[ModelConfig], tuple[nn.Module, nn.Module]]
ARCHITECTURES: Registry[Builder] = Registry("architecture")

# Conv channel stacks from paper 000's appendix table, keyed by architecture name.
_CONV_CHANNELS = {"conv28": (32, 32), "conv32": (32, 32, 64, 64), "conv64": (32, 32, 64, 64)}
# Adam learning rates from the same table: MNIST 1e-3, CelebA 1e-4, DEAP (32×32×3) 1e-4.
_DEFAULT_LR = {"conv28": 1e-3, "conv32": 1e-4, "conv64": 1e-4, "mlp": 1e-3}


def _conv_builder(name: str) -> Builder:
    def build(cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
        channels = _CONV_CHANNELS[name]
        return (
            ConvEncoder(cfg.image_shape, channels, cfg.hidden, cfg.latents),
            ConvDecoder(cfg.image_shape, channels, cfg.hidden, cfg.latents),
        )

    return build


for _name in _CONV_CHANNELS:
    ARCHITECTURES.register(_name)(_conv_builder(_name))


@ARCHITECTURES.register("mlp")
def _mlp_builder(cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    return (
        MLPEncoder(cfg.image_shape, cfg.hidden, cfg.latents),
        MLPDecoder(cfg.image_shape, cfg.hidden, cfg.latents),
    )


def architecture_for_shape(image_shape: tuple[int, int, int]) -> str:
    """28×28 -> conv28, 32×32 -> conv32, 64×64 -> conv64 (any channel count), else mlp."""
    _, h, w = image_shape
    return {(28, 28): "conv28", (32, 32): "conv32", (64, 64): "conv64"}.get((h, w), "mlp")


def default_lr(architecture: str) -> float:
    return _DEFAULT_LR.get(architecture, 1e-3)


def build_model(config: ModelConfig) -> VAE:
    """A freshly initialised VAE for ``config`` (weights from torch's global generator)."""
    encoder, decoder = ARCHITECTURES.get(config.architecture)(config)
    return VAE(config, encoder, decoder)
