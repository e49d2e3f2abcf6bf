"""Posterior files (vaetool.store.posterior_file): real files in tmp_path, good and bad.

Every bad file must give one DataError line naming the file and what was expected; values are
checked while streaming or loading and named by [row, col]; nothing is ever unpickled.
"""

from __future__ import annotations

import os
import pickle  # noqa: TID251 (only to trip the test if anything unpickles)
import warnings
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
import safetensors.torch
import torch

import vaetool.store.posterior_file as pf
from vaetool.analysis.qstar import QStarAccumulator, fit_qstar
from vaetool.errors import ConfigError, DataError, VaetoolWarning
from vaetool.store.posterior_file import (
    PosteriorFile,
    is_posterior_file,
    open_posterior_file,
)

FORMATS = (".npz", ".safetensors")


def _posterior(n: int = 40, h: int = 3, dtype: type = np.float64) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(n, h)) * np.linspace(0.1, 2.0, h)
    logvar = rng.uniform(-4.0, 1.0, size=(n, h))
    return {"mu": mu.astype(dtype), "logvar": logvar.astype(dtype)}


def _write(path: Path, metadata: dict[str, str] | None = None, **arrays: np.ndarray) -> Path:
    """``arrays`` as an npz (any suffix but .safetensors: through a handle, so numpy appends no
    .npz) or as safetensors."""
    if path.suffix.lower() == ".safetensors":
        safetensors.numpy.save_file(arrays, str(path), metadata=metadata)
    else:
        with path.open("wb") as handle:
            np.savez(handle, **arrays)
    return path


def _error(path: Path, call=open_posterior_file) -> str:
    """The DataError of ``call(path)``: asserted to be one line naming the file."""
    with pytest.raises(DataError) as info:
        call(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: "), message
    return message


def _load(path: Path) -> object:
    return open_posterior_file(path).load()


def _stream(path: Path) -> object:
    return list(open_posterior_file(path).batches(4))


# --- good files --------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_keeps_the_stored_dtype(tmp_path: Path, suffix: str, dtype: type) -> None:
    arrays = _posterior(dtype=dtype)
    file = open_posterior_file(_write(tmp_path / f"p{suffix}", **arrays))
    expected = torch.float64 if dtype is np.float64 else torch.float32
    assert file == PosteriorFile(tmp_path / f"p{suffix}", 40, 3, expected)
    posterior = file.load()
    assert posterior.mu.dtype == posterior.logvar.dtype == expected
    assert torch.equal(posterior.mu, torch.from_numpy(arrays["mu"]))
    assert torch.equal(posterior.logvar, torch.from_numpy(arrays["logvar"]))
    assert {b.dtype for pair in file.batches(7) for b in pair} == {expected}


@pytest.mark.parametrize(("suffix", "half"), [(".npz", "float16"), (".safetensors", "bfloat16")])
def test_half_precisions_are_read_as_float32(tmp_path: Path, suffix: str, half: str) -> None:
    arrays = {k: torch.from_numpy(v).to(getattr(torch, half)) for k, v in _posterior().items()}
    path = tmp_path / f"p{suffix}"
    if suffix == ".npz":
        _write(path, **{k: v.numpy() for k, v in arrays.items()})
    else:
        safetensors.torch.save_file(arrays, str(path))
    posterior = open_posterior_file(path).load()
    assert posterior.mu.dtype == torch.float32
    assert torch.equal(posterior.mu, arrays["mu"].float())


def test_mixed_and_big_endian_dtypes(tmp_path: Path) -> None:
    arrays = _posterior()
    path = _write(tmp_path / "p.npz", mu=arrays["mu"].astype(">f8"), logvar=arrays["logvar"])
    assert torch.equal(open_posterior_file(path).load().mu, torch.from_numpy(arrays["mu"]))
    path = _write(tmp_path / "m.npz", mu=arrays["mu"].astype(np.float32), logvar=arrays["logvar"])
    assert open_posterior_file(path).dtype == torch.float64  # the wider of the two


@pytest.mark.parametrize("name", ["X.NPZ", "X.Npz", "X.SAFETENSORS"])
def test_upper_case_suffixes_are_accepted(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path / name, **_posterior())
    assert is_posterior_file(path)
    assert open_posterior_file(path).load().num_points == 40
    assert not (tmp_path / f"{name}.npz").exists()


# --- streaming ---------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", FORMATS)
def test_streamed_batches_concatenate_to_the_loaded_posterior(tmp_path: Path, suffix: str) -> None:
    file = open_posterior_file(_write(tmp_path / f"p{suffix}", **_posterior(n=1003, h=5)))
    blocks = list(file.batches(100))  # 100 does not divide 1003
    assert [mu.shape[0] for mu, _ in blocks] == [100] * 10 + [3]
    posterior = file.load()
    assert torch.equal(torch.cat([mu for mu, _ in blocks]), posterior.mu)
    assert torch.equal(torch.cat([lv for _, lv in blocks]), posterior.logvar)


class _SliceOnlyHandle:
    """A safe_open handle that records every row range read and refuses whole-tensor reads."""

    def __init__(self, handle, reads: list[tuple[str, int]]) -> None:
        self._handle, self._reads = handle, reads

    def __getattr__(self, name: str):
        return getattr(self._handle, name)

    def get_tensor(self, name: str):
        raise AssertionError(f"get_tensor({name!r}) reads the whole tensor")

    def get_slice(self, name: str):
        whole, reads = self._handle.get_slice(name), self._reads

        class Rows:
            def __getattr__(self, attr: str):
                return getattr(whole, attr)

            def __getitem__(self, rows: slice):
                reads.append((name, rows.stop - rows.start))
                return whole[rows]

        return Rows()


def test_safetensors_streams_row_slices_in_bounded_memory(tmp_path: Path, monkeypatch) -> None:
    """Only get_slice row blocks of at most batch_size rows are read, and each yielded block
    owns just its rows (not a view of the whole file): memory is O(batch · H)."""
    path = _write(tmp_path / "p.safetensors", **_posterior(n=5000, h=16))
    file = open_posterior_file(path)
    reads: list[tuple[str, int]] = []
    real_open = pf.safe_open

    class Opener:
        def __init__(self, *args, **kwargs) -> None:
            self._context = real_open(*args, **kwargs)

        def __enter__(self):
            return _SliceOnlyHandle(self._context.__enter__(), reads)

        def __exit__(self, *exc):
            return self._context.__exit__(*exc)

    monkeypatch.setattr(pf, "safe_open", Opener)
    batch = 256
    for mu, logvar in file.batches(batch):
        for block in (mu, logvar):
            assert block.shape[0] <= batch
            assert block.untyped_storage().nbytes() <= batch * 16 * block.element_size()
    assert len(reads) == 2 * 20 and max(rows for _, rows in reads) == batch


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("variant", ["zero_mean", "free_mean"])
def test_streamed_qstar_equals_the_loaded_one(tmp_path: Path, suffix: str, variant: str) -> None:
    arrays = _posterior(n=2001, h=6)
    arrays["mu"] += 3.0  # far from 0: the streaming shift matters
    file = open_posterior_file(_write(tmp_path / f"p{suffix}", **arrays))
    accumulator = QStarAccumulator(file.num_factors)
    for mu, logvar in file.batches(300):
        accumulator.update(mu, logvar)
    streamed = accumulator.finalize(variant)
    posterior = file.load()
    whole = fit_qstar(posterior.mu, posterior.logvar, variant)
    assert streamed.n == whole.n == 2001
    for field in ("mean", "s2", "mean_mu2", "mean_var", "mean_logvar", "var_mu"):
        torch.testing.assert_close(
            getattr(streamed, field), getattr(whole, field), rtol=1e-12, atol=1e-12
        )


def test_batch_size_must_be_positive(tmp_path: Path) -> None:
    file = open_posterior_file(_write(tmp_path / "p.npz", **_posterior()))
    with pytest.raises(ConfigError, match="batch_size"):
        next(file.batches(0))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("suffix", FORMATS)
def test_batches_and_load_on_cuda(tmp_path: Path, suffix: str) -> None:
    file = open_posterior_file(_write(tmp_path / f"p{suffix}", **_posterior()))
    assert file.load("cuda").mu.device.type == "cuda"
    assert all(mu.is_cuda and lv.is_cuda for mu, lv in file.batches(8, "cuda"))


# --- bad files: one DataError line each ----------------------------------------------------------


def test_missing_file_and_folder(tmp_path: Path) -> None:
    for name in ("absent.npz", "absent.safetensors", "absent"):
        message = _error(tmp_path / name)
        assert "no such posterior file" in message and "checkpoint" not in message
    (tmp_path / "dir.npz").mkdir()
    assert "a folder, not a posterior file" in _error(tmp_path / "dir.npz")


def test_unsupported_suffixes(tmp_path: Path) -> None:
    with (tmp_path / "mu.npy").open("wb") as handle:
        np.save(handle, _posterior()["mu"])
    message = _error(tmp_path / "mu.npy")
    assert "a .npy file holds one array" in message
    assert "np.savez(path, mu=mu, logvar=logvar)" in message
    (tmp_path / "p.pt").write_bytes(b"\x80\x04not really a pickle")
    assert "pickles, which vaetool never loads" in _error(tmp_path / "p.pt")
    np.savetxt(tmp_path / "p.csv", _posterior()["mu"], delimiter=",")
    message = _error(tmp_path / "p.csv")
    assert "unsupported file type '.csv'" in message and "'mu' and 'logvar'" in message


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (("mu",), "no {kind} 'logvar' (has 'mu')"),
        (("mean", "log_var"), "rename 'mean' to 'mu' and 'log_var' to 'logvar'"),
        (("z_mean", "z_log_var"), "(has 'z_log_var', 'z_mean')"),
        (("mu", "std"), "2 * log(std)"),
    ],
)
def test_missing_or_misnamed_arrays(
    tmp_path: Path, suffix: str, names: tuple[str, ...], expected: str
) -> None:
    arrays = dict(zip(names, _posterior().values(), strict=False))
    message = _error(_write(tmp_path / f"p{suffix}", **arrays))
    kind = "array" if suffix == ".npz" else "tensor"
    assert expected.format(kind=kind) in message
    assert f"expected {kind}s named 'mu' and 'logvar' of shape (N, H)" in message


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_])
def test_non_float_dtypes(tmp_path: Path, suffix: str, dtype: type) -> None:
    arrays = _posterior()
    arrays["logvar"] = arrays["logvar"].astype(dtype)
    message = _error(_write(tmp_path / f"p{suffix}", **arrays))
    assert f"'logvar' has dtype {np.dtype(dtype).name}; expected a float dtype" in message


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize(
    ("mu_shape", "logvar_shape", "expected"),
    [
        ((40,), (40,), "'mu' has shape (40,) (1-D); expected 2-D (N points, H factors)"),
        ((40, 3, 2), (40, 3, 2), "'mu' has shape (40, 3, 2) (3-D); expected 2-D"),
        ((40, 3, 2), (40, 3), "(N points, H factors): reshape it to (N, H)"),
        ((40, 3), (40, 3, 2), "'logvar' has shape (40, 3, 2) (3-D)"),
        ((40, 3), (40, 2), "mu and logvar shapes differ: mu (40, 3), logvar (40, 2)"),
        ((40, 3), (39, 3), "shapes differ"),
        ((1, 3), (1, 3), "N = 1 point (shape (1, 3)); expected at least 2 rows"),
        ((40, 0), (40, 0), "no factors; need H >= 1"),
    ],
)
def test_wrong_shapes(
    tmp_path: Path, suffix: str, mu_shape: tuple, logvar_shape: tuple, expected: str
) -> None:
    arrays = {"mu": np.zeros(mu_shape), "logvar": np.zeros(logvar_shape)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VaetoolWarning)  # (1, 3) also has H > N
        assert expected in _error(_write(tmp_path / f"p{suffix}", **arrays))


@pytest.mark.parametrize("suffix", FORMATS)
def test_more_factors_than_points_warns_of_transposition(tmp_path: Path, suffix: str) -> None:
    arrays = {k: v.T.copy() for k, v in _posterior(n=10, h=3).items()}  # saved as (H, N)
    with pytest.warns(VaetoolWarning, match=r"H > N.*transposed: rows must be points"):
        file = open_posterior_file(_write(tmp_path / f"t{suffix}", **arrays))
    assert (file.num_points, file.num_factors) == (3, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # N >= H: no warning
        open_posterior_file(_write(tmp_path / f"p{suffix}", **_posterior(n=10, h=10)))


def test_object_arrays_are_refused_without_unpickling(tmp_path: Path, monkeypatch) -> None:
    def tripwire(*args, **kwargs):
        raise AssertionError("something unpickled")

    objects = {"mu": np.array([{"a": 1}, None], dtype=object), "logvar": np.ones((2, 1))}
    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, tripwire)
    path = _write(tmp_path / "p.npz", **objects)
    message = _error(path)
    assert "'mu' holds Python objects (dtype object)" in message
    assert "vaetool never unpickles" in message
    assert is_posterior_file(path)
    swapped = _write(tmp_path / "s.npz", **_posterior())
    file = open_posterior_file(swapped)
    _write(swapped, **objects)  # replaced after the header check: reading must refuse it too
    assert "not a readable .npz file" in _error(swapped, lambda _: file.load())


def _truncated(path: Path, keep: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("damage", ["random", "half", "almost", "empty"])
def test_corrupt_or_truncated_files(tmp_path: Path, suffix: str, damage: str) -> None:
    path = _write(tmp_path / f"p{suffix}", **_posterior(n=500))
    if damage == "random":
        path.write_bytes(os.urandom(4096))
    else:
        _truncated(path, {"half": 0.5, "almost": 0.99, "empty": 0.0}[damage])
    message = _error(path)
    assert f"not a readable {suffix} file (" in message and "; expected " in message


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("read", [_load, _stream])
@pytest.mark.parametrize(
    ("name", "where", "value", "expected"),
    [
        ("mu", (3, 1), np.nan, "mu[3, 1] is NaN; expected finite values (no NaN or inf)"),
        ("mu", (9, 0), -np.inf, "mu[9, 0] is -inf"),
        ("logvar", (5, 2), np.inf, "logvar[5, 2] is inf"),
        ("logvar", (7, 2), 1000.0, "logvar[7, 2] = 1000.0 makes exp(logvar) overflow float64"),
        ("logvar", (38, 1), 710.0, "logvar[38, 1] = 710.0 makes exp(logvar) overflow"),
    ],
)
def test_bad_values_are_named_by_row_and_column(
    tmp_path: Path, suffix: str, read, name: str, where: tuple, value: float, expected: str
) -> None:
    arrays = _posterior(dtype=np.float32)
    arrays[name][where] = value
    path = _write(tmp_path / f"p{suffix}", **arrays)
    open_posterior_file(path)  # the header is fine: values are checked when read
    assert expected in _error(path, read)  # _stream uses 4-row blocks: rows are file rows


def test_the_first_bad_entry_in_file_order_is_named(tmp_path: Path) -> None:
    arrays = _posterior()
    arrays["logvar"][[2, 5, 30], [2, 0, 1]] = [800.0, np.nan, -np.inf]
    path = _write(tmp_path / "p.safetensors", **arrays)
    for read in (_load, _stream):
        assert "logvar[2, 2] = 800.0" in _error(path, read)


def test_logvar_and_mu_are_bounded_by_what_is_plausible(tmp_path: Path) -> None:
    # exp(±87) is a normal float32 number; beyond, and |mu| > 2**24, nothing estimated means
    # anything (vaetool.analysis.encode.LIMITS): refused naming the entry, read whole or streamed
    arrays = _posterior()
    arrays["logvar"][0, 0], arrays["logvar"][1, 1], arrays["mu"][2, 2] = 87.0, -87.0, 2.0**24
    assert open_posterior_file(_write(tmp_path / "p.npz", **arrays)).load().num_points == 40
    for name, where, value in [("logvar", (4, 1), 709.78), ("logvar", (5, 0), -1e30),
                               ("mu", (6, 2), -1e30), ("mu", (7, 0), 2.0**24 + 2)]:  # fmt: skip
        bad = _posterior()
        bad[name][where] = value
        path = _write(tmp_path / "bad.npz", **bad)
        for read in (_load, _stream):
            assert f"{name}[{where[0]}, {where[1]}] = {value:.6g} cannot be right" in _error(
                path, read
            )


# --- is_posterior_file -------------------------------------------------------------------------


def test_a_vaetool_checkpoint_is_not_a_posterior_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "model.safetensors", metadata={"vaetool": "{}"}, **_posterior())
    assert not is_posterior_file(path)
    assert "a vaetool checkpoint" in _error(path)
    weights = _write(tmp_path / "foreign.safetensors", **{"encoder.weight": np.zeros((2, 2))})
    assert "nor is it a vaetool checkpoint (no 'vaetool' metadata)" in _error(weights)


def test_is_posterior_file_never_raises(tmp_path: Path) -> None:
    good = _write(tmp_path / "p.safetensors", **_posterior())
    foreign = _write(tmp_path / "f.safetensors", **{"encoder.weight": np.zeros((2, 2))})
    (tmp_path / "junk.safetensors").write_bytes(os.urandom(64))
    (tmp_path / "junk.csv").write_bytes(b"1,2\n")
    (tmp_path / "folder").mkdir()
    cases = {
        good: True,  # holds mu and logvar
        foreign: True,  # no vaetool metadata: open_posterior_file lists what it holds
        _write(tmp_path / "p.npz", **_posterior()): True,
        tmp_path / "absent.npz": True,  # meant as one: open_posterior_file says it is missing
        tmp_path / "absent.safetensors": False,  # could be a checkpoint: its loader decides
        tmp_path / "junk.safetensors": False,
        tmp_path / "junk.csv": True,  # not a checkpoint: open_posterior_file says what to save
        tmp_path / "folder": False,
        tmp_path / "bad\x00name.safetensors": False,
    }
    assert {path: is_posterior_file(path) for path in cases} == cases
    assert is_posterior_file(str(good)) and not is_posterior_file(None)  # type: ignore[arg-type]
