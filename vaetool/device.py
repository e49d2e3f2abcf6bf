"""The one place that decides device and dtype.

Everything that creates tensors for training or analysis asks :func:`resolve_device` for the
device and uses :data:`MODEL_DTYPE` for network weights and activations and :data:`REDUCE_DTYPE`
for estimator reductions (MATH.md: "Do every reduction over m in float64").
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from vaetool.errors import ConfigError

MODEL_DTYPE = torch.float32
REDUCE_DTYPE = torch.float64
DEVICE_CHOICES = ("auto", "cpu", "cuda")

# Keep a dataset resident on the device when it takes at most this share of free memory.
_RESIDENT_SHARE = 0.5
_CPU_RESIDENT_BYTES = 4 * 1024**3


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> cuda when available else cpu; ``cpu``; ``cuda`` or ``cuda:N`` (checked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"‹device› {name}: CUDA is not available here; use ‹device› cpu")
        try:
            return torch.device(name)
        except RuntimeError:
            raise ConfigError(f"‹device› {name}: expected cuda or cuda:N") from None
    raise ConfigError(f"‹device› {name!r}: expected one of {', '.join(DEVICE_CHOICES)}")


def configure_threads(threads: int | None) -> None:
    """Use ``threads`` CPU threads for torch's intra-op work (None: torch's default).

    On a small or loaded machine fewer threads can be much faster (a 2-core machine under load
    ran one-thread training 4x faster than torch's default of two; docs/training.md).
    """
    if threads is None:
        return
    if threads < 1:
        raise ConfigError(f"‹threads› {threads}: expected at least 1")
    torch.set_num_threads(threads)


def inference_batch_size(device: torch.device) -> int:
    """Images per forward pass when only encoding/decoding (no gradients): large on a GPU so
    per-batch launch overhead is amortised, moderate on a CPU to stay cache friendly."""
    return 8192 if device.type == "cuda" else 1000


def available_bytes(device: torch.device) -> int:
    """Memory free for new tensors on ``device``: CUDA's free memory, or the host's available
    memory (MemAvailable in /proc/meminfo; physical memory where that is missing)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_bytes(nbytes: int, device: torch.device, what: str) -> None:
    """ConfigError (one line) when ``nbytes`` of work would not fit on ``device``."""
    have = available_bytes(device)
    if nbytes > have:
        raise ConfigError(
            f"{what} needs about {nbytes / 1e9:.3g} GB; {device} has {have / 1e9:.3g} GB free"
        )


def fits_on_device(nbytes: int, device: torch.device) -> bool:
    """Whether a tensor of ``nbytes`` should be moved to ``device`` once and kept there."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return nbytes <= _RESIDENT_SHARE * free
    return nbytes <= _CPU_RESIDENT_BYTES


# --precision: the autocast dtype of the training forward (None: float32 throughout).
PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16}


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    """bfloat16 autocast on ``device`` for ``precision = "bf16"``; nothing for fp32."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def adam_options(device: torch.device) -> dict[str, bool]:
    """Adam's implementation for ``device``: fused and capturable (a CUDA graph can hold its
    step) on CUDA; torch's default elsewhere. The arithmetic is the same Adam."""
    return {"fused": True, "capturable": True} if device.type == "cuda" else {}
