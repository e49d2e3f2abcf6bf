"""Foreign models: posterior statistics from a file, so any framework's VAE can be ranked.

A posterior file is a ``.safetensors`` or ``.npz`` file (suffix in any case) holding two float
arrays of shape (N, H): ``mu`` (posterior means) and ``logvar`` (natural-log posterior variances;
MATH.md, notation). :func:`open_posterior_file` checks names, dtypes and shapes from the header
alone; :meth:`PosteriorFile.batches` streams row blocks (a ``.safetensors`` file in O(batch · H)
memory, an ``.npz`` read whole) and :meth:`PosteriorFile.load` reads everything; both check every
value. Nothing is ever unpickled. See docs/foreign.md.
"""

from __future__ import annotations

import re
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor

from vaetool.analysis.encode import Posterior, check_plausible, plausible
from vaetool.data.npz import npy_header
from vaetool.errors import ConfigError, DataError, VaetoolWarning
from vaetool.store.checkpoint import METADATA_KEY

REQUIRED = ("mu", "logvar")
# Stored float dtype -> the dtype vaetool computes in (half precisions are promoted to float32).
FLOAT_DTYPES = {
    "float16": torch.float32,
    "bfloat16": torch.float32,
    "float32": torch.float32,
    "float64": torch.float64,
}
_ALIASES = {  # names other codebases use; a misnamed file gets a rename hint
    "mu": ("mean", "means", "mus", "z_mean", "z_mu", "mu_z", "loc", "posterior_mean"),
    "logvar": ("log_var", "logvars", "z_log_var", "z_logvar", "logvar_z", "log_variance", "lv"),
}
_NOT_LOGVAR = ("std", "sigma", "scale", "var", "variance", "z_std", "z_sigma", "z_var", "log_std")
_SAVE_NPZ = "np.savez(path, mu=mu, logvar=logvar)"
_SAVE_SAFETENSORS = 'safetensors.torch.save_file({"mu": mu, "logvar": logvar}, path)'
_FOREIGN_SUFFIXES = {  # what to say about a file type vaetool does not read
    ".npy": f"a .npy file holds one array; save both as an .npz: {_SAVE_NPZ}",
    ".pt": f".pt files are pickles, which vaetool never loads; save {_SAVE_SAFETENSORS}",
    ".pth": f".pth files are pickles, which vaetool never loads; save {_SAVE_SAFETENSORS}",
    ".pkl": f"vaetool never unpickles; save {_SAVE_NPZ}",
}
_READ_ERRORS = (OSError, ValueError, EOFError, RuntimeError, zipfile.BadZipFile, zlib.error)


@dataclass(frozen=True)
class _Stored:
    """One array as its header describes it: shape and dtype name ("float32", "int64", "object")."""

    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class _Format:
    """How one file type is inspected (header only) and read in row blocks."""

    kind: str  # what the format calls its arrays: "array" or "tensor"
    expected: str  # what a readable file of this type is, for errors
    inspect: Callable[[Path], tuple[list[str], dict[str, _Stored]]]  # (all names, REQUIRED found)
    # (path, N, batch size) -> (first row, mu block, logvar block) on the CPU, stored dtype
    blocks: Callable[[Path, int, int], Iterator[tuple[int, Tensor, Tensor]]]


@dataclass(frozen=True)
class PosteriorFile:
    """An opened posterior file whose names, dtypes and shapes are valid (values not yet read).

    ``dtype`` is what :meth:`batches` and :meth:`load` return: float32 or float64 as stored
    (float16 and bfloat16 are promoted to float32; if ``mu`` and ``logvar`` differ, the wider).
    """

    path: Path
    num_points: int  # N, rows
    num_factors: int  # H, columns
    dtype: torch.dtype

    def batches(
        self, batch_size: int, device: torch.device | str = "cpu"
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield (mu, logvar) row blocks, each (B, H) with B <= ``batch_size``, in file order.

        A ``.safetensors`` file is read one block at a time (O(batch_size · H) memory); an
        ``.npz`` is read whole first. Each block is checked: :class:`DataError` names the first
        [row, col] holding NaN or inf, a logvar whose exp overflows float64, or a value that
        cannot be right (|mu| > 2**24, |logvar| > 87: vaetool.analysis.encode.LIMITS).
        """
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1; got {batch_size}")
        target = torch.device(device)
        reader = _format_of(self.path).blocks
        for start, *pair in reader(self.path, self.num_points, batch_size):
            rows = min(batch_size, self.num_points - start)
            if any(tuple(block.shape) != (rows, self.num_factors) for block in pair):
                raise DataError(f"{self.path}: the file changed after it was opened; open it again")
            mu, logvar = (block.to(target, self.dtype) for block in pair)
            _check_values(self.path, "mu", mu, start)
            _check_values(self.path, "logvar", logvar, start)
            yield mu, logvar

    def load(self, device: torch.device | str = "cpu") -> Posterior:
        """The whole posterior, (N, H) each, in :attr:`dtype` on ``device``; values checked."""
        [(mu, logvar)] = self.batches(self.num_points, device)  # one block: every row
        return Posterior(mu, logvar)


def open_posterior_file(path: str | Path) -> PosteriorFile:
    """Open ``path`` and check its names, dtypes and shapes from the header, reading no values.

    Raises :class:`DataError` (one line naming the file and what was expected) for a missing,
    unreadable or unsupported file, missing ``mu``/``logvar``, a non-float dtype, shapes that
    are not one (N, H) with N >= 2 and H >= 1, or an .npz header claiming more data than its
    member holds (checked before anything is allocated). Warns (:class:`VaetoolWarning`) when
    H > N: the arrays may have been saved transposed.
    """
    target = Path(path)
    if not target.is_file():
        what = "a folder, not a posterior file" if target.is_dir() else "no such posterior file"
        raise DataError(f"{target}: {what}; expected a .safetensors or .npz file")
    fmt = _format_of(target)
    names, stored = fmt.inspect(target)
    if len(stored) < len(REQUIRED):
        raise DataError(_missing_message(target, fmt.kind, names))
    for name in REQUIRED:
        _check_dtype(target, fmt.kind, name, stored[name].dtype)
    num_points, num_factors = _check_shapes(target, fmt.kind, stored["mu"], stored["logvar"])
    if num_factors > num_points:
        warnings.warn(
            f"{target}: mu and logvar are (N, H) = ({num_points}, {num_factors}), more factors "
            "than points (H > N); they may be transposed: rows must be points and columns "
            "latent factors",
            VaetoolWarning,
            stacklevel=2,
        )
    dtype = torch.promote_types(*(FLOAT_DTYPES[stored[k].dtype] for k in REQUIRED))
    return PosteriorFile(target, num_points, num_factors, dtype)


def is_posterior_file(path: str | Path) -> bool:
    """Whether ``path`` is meant as a posterior file rather than a vaetool checkpoint; never raises.

    A readable safetensors file (any name) is a posterior file unless its metadata has the
    checkpoint key ``vaetool``. An ``.npz`` name always is, so is any other existing file that
    is not readable safetensors (``.npy``, ``.csv``, ...: :func:`open_posterior_file` then says
    what to save instead). A missing or unreadable ``.safetensors`` is left to the checkpoint
    loader.
    """
    try:
        target = Path(path)
    except TypeError:
        return False
    suffix = target.suffix.lower()
    if suffix == ".npz":
        return True
    try:
        if not target.is_file():
            return False
        with safe_open(str(target), framework="pt") as handle:
            return METADATA_KEY not in (handle.metadata() or {})
    except Exception:  # not readable safetensors (or an odd path): the name decides; never raise
        return suffix != ".safetensors"


def _format_of(path: Path) -> _Format:
    suffix = path.suffix.lower()
    if suffix in _FORMATS:
        return _FORMATS[suffix]
    hint = _FOREIGN_SUFFIXES.get(suffix, f"save mu and logvar with {_SAVE_NPZ}")
    raise DataError(
        f"{path}: unsupported file type {repr(suffix) if suffix else '(no suffix)'}; expected a "
        ".safetensors or "
        f".npz posterior file holding float arrays 'mu' and 'logvar' of shape (N, H): {hint}"
    )


@contextmanager
def _unreadable(path: Path) -> Iterator[None]:
    """Turn a reader's low-level error into one DataError line naming the file."""
    try:
        yield
    except (*_READ_ERRORS, SafetensorError) as err:
        lines = str(err).strip().splitlines()
        detail = lines[0] if lines else type(err).__name__
        expected = _FORMATS[path.suffix.lower()].expected
        raise DataError(
            f"{path}: not a readable {path.suffix.lower()} file ({detail}); expected {expected}"
        ) from None


def _missing_message(path: Path, kind: str, names: list[str]) -> str:
    missing = [k for k in REQUIRED if k not in names]
    shown = ", ".join(repr(k) for k in names[:8]) or "none"
    if len(names) > 8:
        shown += f", ... ({len(names) - 8} more)"
    plural = "s" if len(missing) > 1 else ""
    renames = [
        f"{alias!r} to {want!r}" for want in missing for alias in _ALIASES[want] if alias in names
    ]
    hint = f"; rename {' and '.join(renames)}" if renames else ""
    if kind == "tensor" and not renames and len(missing) == len(REQUIRED):
        hint = f"; nor is it a vaetool checkpoint (no {METADATA_KEY!r} metadata)"
    if "logvar" in missing and any(name in _NOT_LOGVAR for name in names):
        hint += "; save logvar = log(variance) = 2 * log(std), not a std or variance"
    return (
        f"{path}: no {kind}{plural} {' and '.join(repr(k) for k in missing)} (has {shown}); "
        f"expected {kind}s named 'mu' and 'logvar' of shape (N, H){hint}"
    )


def _check_dtype(path: Path, kind: str, name: str, dtype: str) -> None:
    if dtype == "object":
        raise DataError(
            f"{path}: {kind} {name!r} holds Python objects (dtype object), which only unpickling "
            f"could read and vaetool never unpickles; expected a float array: "
            f"np.savez(path, {name}=np.asarray({name}, dtype=np.float32), ...)"
        )
    if dtype not in FLOAT_DTYPES:
        raise DataError(
            f"{path}: {kind} {name!r} has dtype {dtype}; expected a float dtype "
            "(float32 or float64; float16 and bfloat16 are read as float32)"
        )


def _check_shapes(path: Path, kind: str, mu: _Stored, logvar: _Stored) -> tuple[int, int]:
    """(N, H) of two 2-D arrays of one shape with N >= 2 and H >= 1; else DataError."""
    for name, stored in (("mu", mu), ("logvar", logvar)):
        if len(stored.shape) != 2:
            one = len(stored.shape) == 1
            fix = f"for one factor save {name}.reshape(-1, 1)" if one else "reshape it to (N, H)"
            raise DataError(
                f"{path}: {kind} {name!r} has shape {stored.shape} ({len(stored.shape)}-D); "
                f"expected 2-D (N points, H factors): {fix}"
            )
    if mu.shape != logvar.shape:
        raise DataError(
            f"{path}: mu and logvar shapes differ: mu {mu.shape}, logvar {logvar.shape}; "
            "expected the same (N, H)"
        )
    num_points, num_factors = mu.shape
    if num_factors < 1:
        raise DataError(f"{path}: mu and logvar have shape {mu.shape}, no factors; need H >= 1")
    if num_points < 2:
        raise DataError(
            f"{path}: mu and logvar have N = {num_points} point{'s' * (num_points != 1)} "
            f"(shape {mu.shape}); expected "
            "at least 2 rows (one per data point) to estimate information"
        )
    return num_points, num_factors


def _check_values(path: Path, name: str, block: Tensor, first_row: int) -> None:
    """DataError naming the first [row, col] of ``block`` (rows from ``first_row``) that is NaN or
    inf, or, for logvar, whose exp overflows float64 (logvar > ~709.78), or that cannot be right
    (outside vaetool.analysis.encode.LIMITS: |mu| <= 2**24, |logvar| <= 87). One sync when valid."""
    low, high = torch.aminmax(block)  # one pass; NaN propagates (far cheaper than isfinite)
    ok = torch.isfinite(low) & torch.isfinite(high)
    if name == "logvar":  # exp is monotone: only the largest value can overflow
        ok &= torch.isfinite(high.to(torch.float64).exp())
    finite, in_range = torch.stack([ok, ok & plausible(name, low, high)]).tolist()
    if in_range:
        return
    if finite:
        check_plausible(name, block, f"{path}: ", first_row)
    bad = ~torch.isfinite(block)
    if name == "logvar":
        bad |= torch.isinf(block.to(torch.float64).exp())
    row, col = (int(i) for i in bad.nonzero()[0])  # the first in file order
    value = float(block[row, col])
    where = f"{path}: {name}[{first_row + row}, {col}]"
    if np.isfinite(value):
        raise DataError(
            f"{where} = {value!r} makes exp(logvar) overflow float64; expected a log-variance "
            "below 709.78 (logvar is the natural log of a variance)"
        )
    raise DataError(f"{where} is {_nonfinite_name(value)}; expected finite values (no NaN or inf)")


def _nonfinite_name(value: float) -> str:
    return "NaN" if np.isnan(value) else ("inf" if value > 0 else "-inf")


def _inspect_npz(path: Path) -> tuple[list[str], dict[str, _Stored]]:
    """Member names and the .npy headers of ``mu``/``logvar``: no array data is read, and a
    header claiming more data than its member holds is refused before anything is allocated."""
    with _unreadable(path), zipfile.ZipFile(path) as archive:
        members = {m.removesuffix(".npy"): m for m in archive.namelist() if m.endswith(".npy")}
        size = path.stat().st_size
        headers = {k: npy_header(archive, members[k], size) for k in REQUIRED if k in members}
    stored = {
        k: _Stored(shape, "object" if dtype.hasobject else dtype.name)
        for k, (shape, dtype) in headers.items()
    }
    return sorted(members), stored


def _npz_blocks(path: Path, rows: int, batch_size: int) -> Iterator[tuple[int, Tensor, Tensor]]:
    """The whole ``mu`` and ``logvar`` (zip members are read whole), then row views of them."""
    with _unreadable(path), np.load(path, allow_pickle=False) as npz:
        mu, logvar = (_native(npz[k]) for k in REQUIRED)
    for start in range(0, rows, batch_size):
        yield start, mu[start : start + batch_size], logvar[start : start + batch_size]


def _native(array: np.ndarray) -> Tensor:
    """A tensor sharing ``array``'s memory when it is in native byte order (torch needs that)."""
    return torch.from_numpy(array.astype(array.dtype.newbyteorder("="), copy=False))


def _inspect_safetensors(path: Path) -> tuple[list[str], dict[str, _Stored]]:
    """Tensor names, shapes and dtypes from the header; a vaetool checkpoint is refused."""
    with _unreadable(path), safe_open(str(path), framework="pt") as handle:
        if METADATA_KEY in (handle.metadata() or {}):
            raise DataError(
                f"{path}: a vaetool checkpoint (it has {METADATA_KEY!r} metadata), not a posterior "
                "file; open it with vaetool.load, or pass a file of tensors 'mu' and 'logvar' of "
                "shape (N, H)"
            )
        names = sorted(handle.keys())
        slices = {k: handle.get_slice(k) for k in REQUIRED if k in names}
        stored = {
            k: _Stored(tuple(s.get_shape()), _dtype_name(s.get_dtype())) for k, s in slices.items()
        }
    return names, stored


def _dtype_name(code: str) -> str:
    """A safetensors dtype code by its torch name: F32 -> float32, BF16 -> bfloat16, I8 -> int8."""
    match = re.fullmatch(r"(BF|F|I|U)(\d+)", code)
    prefixes = {"BF": "bfloat", "F": "float", "I": "int", "U": "uint"}
    return f"{prefixes[match[1]]}{match[2]}" if match else code.lower()


def _safetensors_blocks(
    path: Path, rows: int, batch_size: int
) -> Iterator[tuple[int, Tensor, Tensor]]:
    """Row blocks read with ``get_slice``: only ``batch_size`` rows are in memory at a time.

    Each block is copied out of the memory map, so a kept block holds only its own rows and
    never faults on a file changed later.
    """
    with _unreadable(path), safe_open(str(path), framework="pt") as handle:
        mu, logvar = (handle.get_slice(k) for k in REQUIRED)
        for start in range(0, rows, batch_size):
            stop = min(start + batch_size, rows)
            yield start, mu[start:stop].clone(), logvar[start:stop].clone()


_FORMATS = {
    ".npz": _Format(
        "array", f"a zip of .npy arrays written by {_SAVE_NPZ}", _inspect_npz, _npz_blocks
    ),
    ".safetensors": _Format(
        "tensor",
        f"a file written by {_SAVE_SAFETENSORS}",
        _inspect_safetensors,
        _safetensors_blocks,
    ),
}
