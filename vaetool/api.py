"""The small public Python API, re-exported lazily from ``vaetool``."""

from __future__ import annotations

from pathlib import Path

import torch

from vaetool.checkpoint import load_checkpoint
from vaetool.device import resolve_device
from vaetool.models import VAE


def load(path: str | Path, device: str | torch.device = "cpu") -> VAE:
    """Rebuild a trained VAE from a vaetool ``.safetensors`` checkpoint, in eval mode.

    ``device`` is ``cpu``, ``cuda``, ``auto`` or a torch.device. The model's ``config`` attribute
    is its :class:`~vaetool.config.ModelConfig`; use :func:`vaetool.read_info` for the rest.
    """
    target = resolve_device(device) if isinstance(device, str) else device
    model, _info = load_checkpoint(path, device=target)
    return model
