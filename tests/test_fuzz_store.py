"""Issue 24, "trust nothing read from disk": every file vaetool reads back — .npz headers, codes
files, resume states, q* and VMI sidecars, posteriors — is checked before use. Each class of
damage gives one `error:` line (or a warning and a refit), never a traceback, a runaway
allocation or a silently wrong number; each test here fails without its fix."""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from vaetool.analysis.disentanglement import dense_classes, discrete_entropy, mig
from vaetool.analysis.encode import LOGVAR_LIMIT, MU_LIMIT
from vaetool.analysis.indicators import factor_indicators
from vaetool.analysis.metrics import METRICS, compute_metrics
from vaetool.analysis.qstar import QStar
from vaetool.errors import DataError
from vaetool.store.sidecar import DamagedSidecar, load_q_sidecar, payload_sha256, save_q_sidecar
from vaetool.workflows.metrics import CodesTruth
from vaetool.workflows.mi import rank_posterior

HUGE = (10**11, 4)  # 1.46 TiB of float32 if a reader believed it


def _parts(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    with safe_open(str(path), framework="pt") as handle:
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
        return tensors, json.loads((handle.metadata() or {})["vaetool"])


def _save(path: Path, tensors: dict[str, torch.Tensor], document: dict) -> None:
    save_file(tensors, str(path), metadata={"vaetool": json.dumps(document)})


# --- 1. an .npz header that claims more data than the member holds ------------------------------


def _npy(array: np.ndarray, claimed: tuple[int, ...] | None = None) -> bytes:
    """``array`` as .npy bytes, its header's shape replaced by ``claimed`` (data unchanged)."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer,
        {
            "descr": np.lib.format.dtype_to_descr(array.dtype),
            "fortran_order": False,
            "shape": claimed or array.shape,
        },
    )
    return buffer.getvalue() + array.tobytes()


def _lying_npz(path: Path, compression: int, **arrays: tuple[np.ndarray, tuple | None]) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, (array, claimed) in arrays.items():
            archive.writestr(f"{name}.npy", _npy(array, claimed))
    return path


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_npz_headers_claiming_more_than_the_file_holds_are_refused_unread(
    tmp_path: Path, compression: int, fails
) -> None:
    rng = np.random.default_rng(0)
    mu, logvar = rng.normal(size=(40, 4)).astype(np.float32), np.zeros((40, 4), np.float32)
    posterior = _lying_npz(tmp_path / "p.npz", compression, mu=(mu, HUGE), logvar=(logvar, HUGE))
    line = fails("mi", "rank", str(posterior))
    assert "mu.npy's header claims shape (100000000000, 4) of float32" in line
    assert "damaged or crafted" in line and str(posterior) in line
    codes = _lying_npz(tmp_path / "c.npz", compression, mu=(mu.astype(np.float64), None),
                       factors=(np.zeros((40, 1), np.int64), (10**11, 1)))  # fmt: skip
    assert "'factors' is not readable (factors.npy's header claims" in fails("metrics", str(codes))
    images = _lying_npz(tmp_path / "x.npz", compression,
                        x=(np.zeros((8, 28, 28), np.uint8), (10**9, 28, 28)))  # fmt: skip
    out = str(tmp_path / "run")
    assert "x.npy's header claims" in fails("train", "--data", f"npz:{images}", "--out", out)


def test_an_honest_npz_still_reads(tmp_path: Path) -> None:
    from vaetool.store.posterior_file import open_posterior_file

    rng = np.random.default_rng(1)
    arrays = {"mu": rng.normal(size=(30, 2)), "logvar": rng.normal(size=(30, 2)) * 0.1}
    np.savez_compressed(tmp_path / "z.npz", **arrays)
    np.savez(tmp_path / "s.npz", **arrays)
    for name in ("z.npz", "s.npz"):
        loaded = open_posterior_file(tmp_path / name).load()
        assert torch.equal(loaded.mu, torch.from_numpy(arrays["mu"]))


# --- 2. codes files: class values of any size, no factor --------------------------------------


def _codes(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    v = np.stack([rng.randint(0, 3, n), rng.randint(0, 4, n)], 1)
    return v + 0.3 * rng.randn(n, 2), v


def test_huge_factor_classes_cost_nothing_and_change_no_value(tmp_path: Path, cli, fails) -> None:
    codes, v = _codes()
    np.savez(tmp_path / "small.npz", mu=codes, factors=v)
    big = v * 10**15 + 7  # 64 PB of joint histogram if the classes were used as indices
    np.savez(tmp_path / "big.npz", mu=codes, factors=big)
    values = []
    for name in ("small.npz", "big.npz"):
        code, out, err = cli("metrics", str(tmp_path / name), "--metric", "mig", "-f", "json")
        assert code == 0, err
        values.append(json.loads(out)["values"])
    assert values[0] == values[1]
    # the tensor layer relabels too (a GroundTruth from Python), keeping order
    c, f = torch.from_numpy(codes.T.copy()), torch.from_numpy(v.T.copy())
    assert float(mig(c, f * 10**15)["mig"]) == pytest.approx(float(mig(c, f)["mig"]), abs=1e-12)
    assert torch.equal(
        dense_classes(torch.tensor([[5, -1, 10**15, 5]])), torch.tensor([[1, 0, 2, 1]])
    )
    with pytest.raises(DataError, match="at least one factor"):
        discrete_entropy(torch.zeros((0, 10), dtype=torch.int64))
    np.savez(tmp_path / "nofactor.npz", mu=codes, factors=np.zeros((600, 0), np.int64))
    np.savez(tmp_path / "nocode.npz", mu=np.zeros((600, 0)), factors=v)
    for name in ("nofactor.npz", "nocode.npz"):
        assert "expected at least one code (H >= 1) and one factor" in fails(
            "metrics", str(tmp_path / name)
        )
    np.savez(tmp_path / "float.npz", mu=codes, factors=v.astype(np.float64))
    assert "'factors' must hold non-negative integer classes" in fails(
        "metrics", str(tmp_path / "float.npz")
    )


# --- 3. stored codes: every row once; --samples draws; --metric help lists every metric --------


def test_stored_codes_use_every_row_once_by_default(tmp_path: Path, cli) -> None:
    codes, v = _codes(n=3000, seed=3)
    path = tmp_path / "codes.npz"
    np.savez(path, mu=codes, factors=v)
    code, out, err = cli("metrics", str(path), "--metric", "mig", "-f", "json")
    assert code == 0, err
    whole = mig(torch.from_numpy(codes.T.copy()), torch.from_numpy(v.T.copy()))
    assert json.loads(out)["values"]["mig"] == pytest.approx(float(whole["mig"]), abs=1e-12)
    code, out, _ = cli("metrics", str(path), "--metric", "mig", "--samples", "500", "-f", "json")
    assert code == 0 and json.loads(out)["values"]["mig"] != pytest.approx(float(whole["mig"]))
    # a classifier metric: two thirds to fit, the other third to score, every row once
    truth = CodesTruth(codes, v, every_row=True, held_out=True)
    rng = np.random.RandomState(0)
    train, test = truth.sample(10_000, rng)[0], truth.sample(5_000, rng)[0]
    assert (len(train), len(test)) == (2000, 1000)
    rows = np.concatenate([train, test])
    assert len(np.unique(rows, axis=0)) == 3000  # a partition of the file's rows
    assert compute_metrics(CodesTruth(codes, v, every_row=True), ["mig"])["mig"] == pytest.approx(
        float(whole["mig"]), abs=1e-12
    )


def test_metric_help_points_at_the_registry_which_lists_every_metric(cli) -> None:
    """`--metric` help copies no names (issue 23) but sends the reader to `vaetool components
    metric`, which lists every registered metric, categorical_accuracy included; --help
    imports no torch."""
    script = (
        "import sys; from vaetool.cli import main; "
        "rc = main(['metrics', '--help']); "
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH'); sys.exit(rc)"
    )
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("NO-TORCH")
    assert "vaetool components metric" in " ".join(done.stdout.split())
    code, out, _ = cli("components", "metric")
    assert code == 0
    listed = {line.split()[1] for line in out.splitlines() if line.split()[:1] == ["metric"]}
    assert listed == set(METRICS.names()) and "categorical_accuracy" in listed


# --- 4. resume states: damaged entries, flipped bytes, edited settings -------------------------


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder stopped after epoch 2 of 3 (mnist5k, 200 images, H = 4): its
    resume.safetensors carries the checksum."""
    from vaetool.config import DataConfig, ModelConfig, TrainConfig
    from vaetool.workflows import TrainRequest, train_run

    class Crash(Exception):
        pass

    def crash(record) -> None:
        if record.epoch == 2:
            raise Crash

    out = tmp_path_factory.mktemp("resume") / "run"
    request = TrainRequest(out, DataConfig("mnist5k", subset=200), TrainConfig(epochs=3,
                           batch_size=50), ModelConfig(latents=4), device="cpu")  # fmt: skip
    with warnings.catch_warnings(), pytest.raises(Crash):
        warnings.simplefilter("ignore")  # the small splits
        train_run(request, on_epoch=crash)
    return out


def _copy_run(stopped: Path, where: Path, edit=None, keep_checksum: bool = True) -> Path:
    folder = where / "run"
    shutil.copytree(stopped, folder)
    state = folder / "resume.safetensors"
    tensors, document = _parts(state)
    assert isinstance(document["resume"]["sha256"], str)
    if not keep_checksum:
        document["resume"].pop("sha256")
    if edit is not None:
        edit(document)
    _save(state, tensors, document)
    return folder


def _set_resume(key: str, value: object):
    return lambda document: document["resume"].update({key: value})


DAMAGED_ENTRIES = {
    "history null": (_set_resume("history", None), "'history' is NoneType, not a list"),
    "history a string": (_set_resume("history", "x"), "'history' is str, not a list"),
    "history row": (_set_resume("history", [{"epoch": "a"}]), "history row 1 is damaged"),
    "optimizers null": (_set_resume("optimizers", None), "'optimizers' is not a mapping"),
    "optimizers a list": (_set_resume("optimizers", [1]), "'optimizers' is not a mapping"),
    "optimizer null": (
        lambda d: d["resume"]["optimizers"].update(dict.fromkeys(d["resume"]["optimizers"])),
        "'optimizers' is not a mapping",
    ),
    "optimizers empty": (_set_resume("optimizers", {}), "does not match its config"),
    "epochs below done": (lambda d: d["train"].update(epochs=1), "has done 2 epochs but its"),
}


def _error_line(cli, *args: str) -> str:
    """Exit 1 with `warning:` lines at most before one `error:` line (opening the session may
    warn about the small splits first); returns the error line."""
    code, _, err = cli(*args)
    lines = err.splitlines()
    assert code == 1 and lines and lines[-1].startswith("error: "), f"exit {code}: {err}"
    assert all(line.startswith("warning: ") for line in lines[:-1]) and "Traceback" not in err
    return lines[-1]


@pytest.mark.parametrize("case", list(DAMAGED_ENTRIES))
def test_a_damaged_resume_entry_is_one_line(stopped: Path, tmp_path: Path, case: str, cli):
    edit, expected = DAMAGED_ENTRIES[case]
    old = _copy_run(stopped, tmp_path / "old", edit, keep_checksum=False)  # an older vaetool's
    line = _error_line(cli, "train", "--resume", str(old), "--device", "cpu")
    assert expected in line and f"{old / 'resume.safetensors'}: " in line
    new = _copy_run(stopped, tmp_path / "new", edit)  # with its checksum: caught first by it
    line = _error_line(cli, "train", "--resume", str(new), "--device", "cpu")
    assert "the run state is damaged (its tensors or settings do not match its checksum)" in line


def test_flipped_bytes_in_a_resume_state_are_refused(stopped: Path, tmp_path: Path, fails):
    folder = tmp_path / "run"
    shutil.copytree(stopped, folder)
    state = folder / "resume.safetensors"
    data = bytearray(state.read_bytes())
    data[len(data) - 100] ^= 0x10  # inside the last tensor's bytes
    state.write_bytes(bytes(data))
    line = fails("train", "--resume", str(folder), "--device", "cpu")
    assert f"{state}: the run state is damaged" in line


def test_a_state_without_checksum_still_resumes(stopped: Path, tmp_path: Path, cli) -> None:
    folder = _copy_run(stopped, tmp_path, keep_checksum=False)
    code, _, err = cli("train", "--resume", str(folder), "--device", "cpu")
    assert code == 0, err
    assert (folder / "model.safetensors").is_file()


# --- 5. q* and VMI sidecars: checksum and values ----------------------------------------------


@pytest.fixture()
def fitted(trained_run: Path, tmp_path: Path, cli) -> Path:
    """A copy of the session's checkpoint with its q* sidecar fitted on 200 test points."""
    model = tmp_path / "model.safetensors"
    shutil.copy(trained_run / "model.safetensors", model)
    code, _, err = cli("mi", "fit", str(model), "--samples", "200", "--device", "cpu")
    assert code == 0, err
    return model


def _scale(t: dict, meta: dict) -> None:
    t["s2"], t["mean_mu2"] = t["s2"] * 1e8, t["mean_mu2"] * 1e8


def _meta(key: str, value: object):
    return lambda t, meta: meta.update({key: value})


def _nan(t: dict, meta: dict) -> None:
    t["mean_var"][0] = math.nan


def _negative(t: dict, meta: dict) -> None:
    t["mean_var"][1] = -t["mean_var"][1]


def _shape(t: dict, meta: dict) -> None:
    t["s2"] = t["s2"][:-1].clone()


def _dtype(t: dict, meta: dict) -> None:
    t["s2"] = t["s2"].float()


def _consistent_scale(t: dict, meta: dict) -> None:  # every moment scaled: only the sum knows
    for key in ("s2", "mean_mu2", "mean_var", "var_mu"):
        t[key] = t[key] * 1e8
    t["mean_logvar"] = t["mean_logvar"] + math.log(1e8)


SIDECAR_DAMAGE = {
    "scaled variances": (_scale, "not the zero_mean q* of the stored moments"),
    "NaN variance": (_nan, "'mean_var' holds NaN or inf"),
    "negative variance": (_negative, "is not positive"),
    "negative N": (_meta("n", -5), "N = -5 points"),
    "wrong shape": (_shape, "'s2' is float64 (15,); expected float64 (16,)"),
    "wrong dtype": (_dtype, "'s2' is float32 (16,)"),
    "variant": (_meta("variant", "median"), "variant 'median'"),
}


def _damage(sidecar: Path, edit, checksum: str) -> None:
    tensors, meta = _parts(sidecar)
    edit(tensors, meta)
    if checksum == "recomputed":
        meta["sha256"] = payload_sha256(tensors, meta)
    elif checksum == "absent":
        meta.pop("sha256")
    _save(sidecar, tensors, meta)


def _rank(cli, model: Path, *extra: str) -> tuple[dict, str]:
    code, out, err = cli("mi", "rank", str(model), "--samples", "200", "--device", "cpu",
                         "-f", "json", *extra)  # fmt: skip
    assert code == 0, err
    return json.loads(out), err


@pytest.mark.parametrize("case", list(SIDECAR_DAMAGE))
def test_a_damaged_sidecar_is_fitted_again_with_a_warning(fitted: Path, case: str, cli, fails):
    clean, _ = _rank(cli, fitted)
    assert clean["summary"]["qstar_from"] == "sidecar"
    sidecar = fitted.with_name("model.qstar.safetensors")
    edit, expected = SIDECAR_DAMAGE[case]
    for checksum in ("kept", "recomputed"):  # the checksum, then the values, catch it
        shutil.copy(sidecar, sidecar.with_suffix(".orig"))
        _damage(sidecar, edit, checksum)
        ranked, err = _rank(cli, fitted)
        want = "do not match their checksum" if checksum == "kept" else expected
        assert err.startswith("warning: ") and want in err and "fitting q* again now" in err
        assert ranked["summary"]["qstar_from"] == "fit"
        assert ranked["factors"] == clean["factors"]  # the fresh fit, not the damaged one
        line = fails("mi", "rank", str(fitted), "--samples", "200", "--device", "cpu",
                     "--qstar", str(sidecar))  # fmt: skip
        assert want in line and "run `vaetool mi fit` to fit it again" in line
        shutil.move(sidecar.with_suffix(".orig"), sidecar)


def test_a_sidecar_without_checksum_is_not_trusted(fitted: Path, cli) -> None:
    sidecar = fitted.with_name("model.qstar.safetensors")
    _damage(sidecar, _consistent_scale, "absent")  # values self-consistent: only a sum could tell
    ranked, err = _rank(cli, fitted)
    assert "q* sidecar has no checksum" in err and ranked["summary"]["qstar_from"] == "fit"


def test_a_damaged_vmi_sidecar_is_refused_on_read(tmp_path: Path) -> None:
    from vaetool.store.sidecar import QRecord

    path = tmp_path / "m.vmi.safetensors"
    record = QRecord("0" * 64, "m.safetensors", 10, 8, 1e-3, 0, 0.0)
    save_q_sidecar(path, {"w": torch.ones(3)}, torch.zeros(5), record)
    state, _, found = load_q_sidecar(path)
    assert found == record and torch.equal(state["w"], torch.ones(3))
    tensors, meta = _parts(path)
    tensors["q.w"][0] = 2.0
    _save(path, tensors, meta)
    with pytest.raises(DamagedSidecar, match="do not match their checksum"):
        load_q_sidecar(path)
    tensors["q.w"][0] = math.nan
    meta["sha256"] = payload_sha256(tensors, meta)
    _save(path, tensors, meta)
    with pytest.raises(DamagedSidecar, match="NaN or inf weights"):
        load_q_sidecar(path)


def test_q_star_statistics_of_mismatched_shapes_are_one_line() -> None:
    ones = torch.ones(4, dtype=torch.float64)
    q = QStar(ones, ones[:3], ones, ones, ones, ones, 10, "zero_mean")
    with pytest.raises(DataError, match=r"q\* statistics have shapes .* s2 \(3,\)"):
        factor_indicators(q)


# --- 6. posteriors that cannot be right -------------------------------------------------------


def test_an_encoder_with_an_absurd_bias_is_refused(trained_run: Path, tmp_path: Path, fails):
    tensors, document = _parts(trained_run / "model.safetensors")
    bias = tensors["model.encoder.head.bias"]
    bias[:16] = 1e30  # every mean: Var μ = 0 yet q* would rank all 16 factors at ~69 nats
    model = tmp_path / "bias.safetensors"
    _save(model, tensors, document)
    line = fails("mi", "rank", str(model), "--samples", "100", "--device", "cpu")
    assert "the encoder's posterior mu of factor 0 reaches 1e+30 on mnist5k" in line
    assert f"|mu| <= 2**24 = {MU_LIMIT:.0f}" in line


def test_posteriors_outside_the_plausible_range_are_refused(tmp_path: Path, fails) -> None:
    rng = np.random.default_rng(2)
    mu, logvar = rng.normal(size=(50, 3)), rng.uniform(-3, 0, size=(50, 3))
    bad = logvar.copy()
    bad[4, 1] = -1e30  # alone it would make I_h = 5e29 nats
    np.savez(tmp_path / "lv.npz", mu=mu, logvar=bad)
    line = fails("mi", "rank", str(tmp_path / "lv.npz"))
    assert "logvar[4, 1] = -1e+30 cannot be right" in line and f"±{LOGVAR_LIMIT:g}" in line
    far = mu.copy()
    far[7, 2] = 1e30
    with pytest.raises(DataError, match=r"posterior mu\[7, 2\] = 1e\+30 cannot be right"):
        rank_posterior(far, logvar)
    assert rank_posterior(mu, logvar).ranking.mi.shape == (3,)  # the plausible one is ranked


def test_training_saves_a_model_whose_posterior_is_implausible() -> None:
    """The end-of-training information check warns instead of raising: the run's weights are
    written either way (nothing lost), and the analysis commands then refuse them in one line."""
    import warnings

    import numpy as np
    import torch

    from vaetool.config import ModelConfig
    from vaetool.data import load_dataset
    from vaetool.data.feed import DeviceFeed
    from vaetool.errors import VaetoolWarning
    from vaetool.models import build_model
    from vaetool.training.loop import information_check

    model = build_model(ModelConfig("conv28", (1, 28, 28), latents=4))
    with torch.no_grad():
        model.encoder.head.bias[:4] = 1e30
    feed = DeviceFeed(load_dataset("mnist5k"), np.arange(40), torch.device("cpu"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert information_check(model, feed) == {}
    assert any(issubclass(w.category, VaetoolWarning) and "no information check" in str(w.message)
               for w in caught)  # fmt: skip
