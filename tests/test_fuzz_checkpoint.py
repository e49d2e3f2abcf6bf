"""Issue 24, the checkpoint contract (docs/checkpoints.md) beside tests/test_fuzz.py: one
validation, run by every command that reads a checkpoint, so a file one command refuses no
other command uses — `info` shows a checkpoint whose weights cannot be loaded, then says so and
exits 1; a path that is no regular file is named for what it is, never opened; and `vaetool
import` says what it cast, which data set a source names, and when a network is not one it
rebuilds."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from test_import import _npz32, disvae_folder
from torch import nn

import vaetool
from vaetool.errors import VaetoolWarning

Edit = Callable[[dict], None]


def _parts(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    with safe_open(str(path), framework="pt") as handle:
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
        return tensors, json.loads(handle.metadata()["vaetool"])


def _mutant(trained_run: Path, path: Path, document: Edit | None = None,
            tensors: Callable[[dict[str, torch.Tensor]], None] | None = None) -> Path:  # fmt: skip
    stored, doc = _parts(trained_run / "model.safetensors")
    if document is not None:
        document(doc)
    if tensors is not None:
        tensors(stored)
    save_file(stored, str(path), metadata={"vaetool": json.dumps(doc)})
    return path


def _commands(path: Path, tmp: Path) -> list[list[str]]:
    """Every command that reads a checkpoint (info is checked on its own)."""
    p = str(path)
    return [["mi", "rank", p, "--samples", "60"], ["mi", "fit", p, "--samples", "60"],
            ["prune", p, "--top", "50%", "--samples", "60"],
            ["traverse", p, "--top", "1", "--out", str(tmp / "t.png")],
            ["metrics", p, "--metric", "mig", "--samples", "100"],
            ["encode", p, "--out", str(tmp / "p.npz"), "--samples", "60"],
            ["report", p, "--out", str(tmp / "rep")]]  # fmt: skip


def _set(section: str, key: str, value: object) -> Edit:
    return lambda doc: doc[section].update({key: value})


def _option(key: str, value: object) -> Edit:
    return lambda doc: doc["train"]["options"].update({key: value})


def _tcvae_with_code(doc: dict) -> None:
    doc["train"].update(objective="beta_tcvae", options={})
    doc["model"].update(categories=3)


# -- 1. and 2.: a document one command refuses, every command refuses (info included) ----------

DOCUMENTS: dict[str, tuple[Edit, str]] = {
    "beta 'x'": (_option("beta", "x"), "beta 'x'"),
    "beta null": (_option("beta", None), "beta None"),
    "beta -1": (_option("beta", -1.0), "beta"),
    "beta true": (_option("beta", True), "beta True"),
    "extra option": (_option("bogus", 1), "bogus does not apply to objective beta_vae"),
    "another objective's option": (_option("gamma", 35.0), "gamma does not apply"),
    "options a list": (_set("train", "options", [1]), "options"),
    "unknown objective": (_set("train", "objective", "nope"), "objective 'nope'"),
    "objective without its code": (_tcvae_with_code, "categorical code"),
    "unknown top-level key": (lambda doc: doc.update(bogus=1), "unknown key 'bogus'"),
    "graph 'yes'": (_set("train", "graph", "yes"), "graph 'yes': expected bool"),
    "epochs 1.5": (_set("train", "epochs", 1.5), "epochs 1.5"),
    "architecture ../../etc": (_set("model", "architecture", "../../etc"), "'../../etc'"),
    "architecture null": (_set("model", "architecture", None), "architecture"),
    "unknown dataset": (_set("data", "spec", "imagenet"), "spec 'imagenet'"),
    "empty dataset": (_set("data", "spec", ""), "expected a dataset spec"),
    "fractions NaN": (_set("data", "fractions", [float("nan")] * 3), "split fractions"),
    "fractions over 1": (_set("data", "fractions", [0.5, 0.5, 0.5]), "summing to 1"),
    "four fractions": (_set("data", "fractions", [0.6, 0.2, 0.2, 0.0]), "split fractions"),
    "no data section": (lambda doc: doc.pop("data"), "data: expected a mapping, got nothing"),
    "version a number": (lambda doc: doc.update(vaetool_version=1), "vaetool_version 1"),
}


def _refused_alike(name: str, run: Path, tmp: Path, fails, commands: int | None) -> None:
    edit, needle = DOCUMENTS[name]
    path = _mutant(run, tmp / "m.safetensors", edit)
    line = fails("info", str(path))
    assert "unreadable vaetool metadata" in line and needle in line, line
    for command in _commands(path, tmp)[:commands]:
        assert fails(*command) == line, command  # the same validation, the same line


@pytest.mark.parametrize("name", list(DOCUMENTS))
def test_a_bad_document_is_one_line(name: str, trained_run: Path, tmp_path: Path, fails) -> None:
    """Fast lane: `info` and `mi rank` give the same line for each damaged document."""
    _refused_alike(name, trained_run, tmp_path, fails, commands=1)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(DOCUMENTS))
def test_a_bad_document_is_one_line_from_every_command(
    name: str, trained_run: Path, tmp_path: Path, fails
) -> None:
    _refused_alike(name, trained_run, tmp_path, fails, commands=None)


def test_an_option_an_older_writer_left_out_takes_its_default(
    trained_run: Path, tmp_path: Path, cli
) -> None:
    path = _mutant(trained_run, tmp_path / "m.safetensors", lambda d: d["train"]["options"].clear())
    assert cli("info", str(path))[0] == 0
    assert vaetool.read_info(path).train.options == {}
    vaetool.load(path)


# -- 2.: weights no command can load: info shows them, says so, exits 1 --------------------------


def _nan(t: dict[str, torch.Tensor]) -> None:
    t["model.encoder.head.weight"].view(-1)[3] = float("nan")


def _swap(t: dict[str, torch.Tensor]) -> None:
    t["model.decoder.input.weight"] = t["model.decoder.input.weight"].t().contiguous()


def _float64(t: dict[str, torch.Tensor]) -> None:
    t["model.encoder.head.bias"] = t["model.encoder.head.bias"].double()


WEIGHTS: dict[str, tuple[Edit | None, Callable | None, str]] = {
    "NaN weight": (None, _nan, "tensor 'encoder.head.weight' holds NaN or inf"),
    "inf bias": (None, lambda t: t["model.encoder.head.bias"].fill_(float("inf")), "NaN or inf"),
    "swapped shape": (None, _swap, "tensor 'decoder.input.weight' has shape [16, 256]"),
    "10^9 latents": (_set("model", "latents", 10**9), None, "cannot be built"),
    "missing tensor": (None, lambda t: t.pop("model.decoder.input.bias"), "missing tensor"),
    "extra model tensor": (None, lambda t: t.update({"model.x": torch.zeros(2)}), "'x'"),
    "stray tensor": (None, lambda t: t.update(x=torch.zeros(2)), "unexpected tensor 'x'"),
    "float64 weight": (None, _float64, "has dtype float64"),
}


@pytest.mark.parametrize("name", list(WEIGHTS))
def test_weights_that_cannot_be_loaded_are_shown_by_info_then_refused(
    name: str, trained_run: Path, tmp_path: Path, cli, fails
) -> None:
    document, tensors, needle = WEIGHTS[name]
    path = _mutant(trained_run, tmp_path / "m.safetensors", document, tensors)
    code, out, err = cli("info", str(path), "-f", "json")
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err, err
    assert needle in err and "cannot be loaded" in err, err
    assert json.loads(out)["model"]["architecture"] == "conv28"  # shown all the same
    for command in _commands(path, tmp_path)[:: 2 if name != "NaN weight" else 1]:
        assert needle in fails(*command), command


def test_metrics_refuses_a_subset_its_data_cannot_hold(
    trained_run: Path, tmp_path: Path, fails
) -> None:
    path = _mutant(trained_run, tmp_path / "m.safetensors", _set("data", "subset", 10**12))
    assert "subset" in fails("mi", "rank", str(path), "--samples", "60")
    line = fails("metrics", str(path), "--metric", "mig", "--samples", "100")
    assert "its data subset 1000000000000 exceeds the 5000 images of mnist5k" in line


# -- item 7: what a path that is no checkpoint file is ---------------------------------------------


def test_a_folder_or_a_device_is_named_for_what_it_is(trained_run: Path, fails) -> None:
    line = fails("info", str(trained_run))
    assert "is a directory; expected a .safetensors checkpoint file" in line
    assert str(trained_run / "model.safetensors") in line  # a run folder: where its model is
    for command in (["info"], ["mi", "rank"], ["prune"]):
        line = fails(*command, "/dev/zero")
        assert "not a regular file (a character device)" in line, command


def test_a_fifo_is_refused_without_being_opened(tmp_path: Path) -> None:
    """In a subprocess with a timeout: opening a FIFO no process writes would block for ever."""
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    for command in (["info"],):  # mi rank and the rest share check_checkpoint_file
        done = subprocess.run([sys.executable, "-m", "vaetool", *command, str(fifo)],
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 1, done.stderr
        assert done.stderr.strip().endswith("not a regular file (a FIFO); expected a "
                                            ".safetensors checkpoint file")  # fmt: skip


# -- items 4 and 7: vaetool import ---------------------------------------------------------------


def test_import_given_a_file_says_it_is_a_file(tmp_path: Path, fails) -> None:
    disvae_folder(tmp_path / "d", [1, 32, 32])
    out = str(tmp_path / "m.safetensors")
    line = fails("import", "disentangling-vae", str(tmp_path / "d" / "specs.json"), "--out", out)
    assert "is a file; expected the model's folder (or the model.pt inside it)" in line
    assert "no such folder" in fails("import", "pythae", str(tmp_path / "none"), "--out", out)


@pytest.mark.parametrize(
    ("dataset", "hint"),
    [("mnist", "npz:FILE holding MNIST resized to 32×32"),
     ("celeba", "folder:DIR of the CelebA images"), ("chairs", "folder:DIR of the chairs"),
     ("shapes3d", "npz:FILE holding them as array x")],
)  # fmt: skip
def test_import_names_the_data_set_the_source_names(
    dataset: str, hint: str, tmp_path: Path, fails
) -> None:
    disvae_folder(tmp_path / "d", [1, 32, 32], dataset=dataset)
    line = fails("import", "disentangling-vae", str(tmp_path / "d"), "--out",
                 str(tmp_path / "m.safetensors"))  # fmt: skip
    assert f"names data set '{dataset}' (1×32×32 images)" in line and hint in line, line
    assert "--data" in line and "does not record" not in line


def _pythae_cifar_state(latent_dim: int) -> dict[str, torch.Tensor]:
    """pythae's benchmarks/cifar convnets (Encoder_Conv_VAE_CIFAR, Decoder_Conv_AE_CIFAR):
    the CelebA net's first layer (3 → 128, 4×4), heads from 1024·2·2, a bare first Linear."""

    def block(conv: nn.Module, c: int) -> nn.Module:
        return nn.Sequential(conv, nn.BatchNorm2d(c), nn.ReLU())

    encoder = nn.Module()
    channels = [3, 128, 256, 512, 1024]
    encoder.layers = nn.ModuleList(block(nn.Conv2d(a, b, 4, 2, padding=1), b)
                                   for a, b in itertools.pairwise(channels))  # fmt: skip
    encoder.embedding = nn.Linear(4096, latent_dim)
    encoder.log_var = nn.Linear(4096, latent_dim)
    decoder = nn.Module()
    decoder.layers = nn.ModuleList([
        nn.Linear(latent_dim, 1024 * 8 * 8),
        block(nn.ConvTranspose2d(1024, 512, 4, 2, padding=1), 512),
        block(nn.ConvTranspose2d(512, 256, 4, 2, padding=1, output_padding=1), 256),
        nn.Sequential(nn.ConvTranspose2d(256, 3, 4, 1, padding=2), nn.Sigmoid())])  # fmt: skip
    model = nn.Module()
    model.decoder, model.encoder = decoder, encoder
    return model.state_dict()


@pytest.mark.parametrize("input_dim", [[3, 32, 32], [3, 64, 64]])
def test_pythae_cifar_net_is_an_unsupported_architecture(
    input_dim: list[int], tmp_path: Path, fails
) -> None:
    folder = tmp_path / "cifar"
    folder.mkdir()
    config = {"name": "VAEConfig", "input_dim": input_dim, "latent_dim": 4,
              "reconstruction_loss": "mse"}  # fmt: skip
    (folder / "model_config.json").write_text(json.dumps(config))
    torch.save({"model_state_dict": _pythae_cifar_state(4)}, folder / "model.pt")
    line = fails("import", "pythae", str(folder), "--out", str(tmp_path / "m.safetensors"),
                 "--data", "mnist5k")  # fmt: skip
    assert "unsupported architecture" in line and "unexpected tensor" not in line, line
    assert not (tmp_path / "m.safetensors").exists()


def test_imported_weights_in_another_dtype_are_cast_with_one_warning(
    tmp_path: Path, cli, fails
) -> None:
    disvae_folder(tmp_path / "d", [1, 32, 32])
    state = torch.load(tmp_path / "d" / "model.pt", weights_only=True)  # noqa: TID251 (the test's own file)
    state["encoder.lin1.weight"] = state["encoder.lin1.weight"].double()
    state["decoder.lin1.bias"] = (state["decoder.lin1.bias"] * 100).to(torch.int32)
    torch.save(state, tmp_path / "d" / "model.pt")
    out = tmp_path / "m.safetensors"
    data = ["--data", f"npz:{_npz32(tmp_path)}"]
    code, _, err = cli("import", "disentangling-vae", str(tmp_path / "d"), "--out", str(out), *data)
    assert code == 0, err
    (warning,) = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert "cast 2 tensor(s)" in warning and "'encoder.fc.0.weight' float64 → float32" in warning
    assert "'decoder.input.bias' int32 → float32" in warning
    assert vaetool.load(out).encoder.fc[0].weight.dtype == torch.float32
    state["encoder.lin2.bias"] = torch.full_like(
        state["encoder.lin2.bias"], 1e300, dtype=torch.float64
    )
    torch.save(state, tmp_path / "d" / "model.pt")
    line = fails("import", "disentangling-vae", str(tmp_path / "d"), "--out",
                 str(tmp_path / "n.safetensors"), *data)  # fmt: skip
    assert "'encoder.fc.2.bias' holds NaN or inf values after its cast" in line


def test_the_cast_warning_is_a_vaetool_warning(tmp_path: Path) -> None:
    from vaetool.importers import cast_state

    expected = {"w": torch.zeros(2)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cast = cast_state({"w": torch.ones(2, dtype=torch.float64)}, expected, tmp_path)
    assert cast["w"].dtype == torch.float32
    assert [type(w.message) for w in caught] == [VaetoolWarning]
