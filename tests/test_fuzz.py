"""The fuzz corpus as a test: hundreds of damaged checkpoints and bad option sets through every
command, in-process. The rule (issue 10): exit 0, or exit 1 with one `error:` line (warnings
may precede it), or a usage error (exit 2) — never a traceback, never a hang."""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from vaetool.cli import main

pytestmark = pytest.mark.slow

Mutation = tuple[str, Callable[[Path, Path], None]]  # (name, write the mutant from the original)


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real checkpoint: conv28, H = 4, one epoch on 500 mnist5k images."""
    out = tmp_path_factory.mktemp("fuzz") / "run"
    args = ["train", "--subset", "500", "--latents", "4", "--epochs", "1", "--device", "cpu",
            "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    return out / "model.safetensors"


def _parts(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), framework="pt") as handle:
        return {k: handle.get_tensor(k) for k in handle.keys()}, dict(handle.metadata())  # noqa: SIM118


def _with_document(edit: Callable[[dict], None]) -> Callable[[Path, Path], None]:
    def write(src: Path, dst: Path) -> None:
        tensors, meta = _parts(src)
        doc = json.loads(meta["vaetool"])
        edit(doc)
        save_file(tensors, str(dst), metadata={"vaetool": json.dumps(doc)})

    return write


def _with_tensors(edit: Callable[[dict[str, torch.Tensor]], None]) -> Callable[[Path, Path], None]:
    def write(src: Path, dst: Path) -> None:
        tensors, meta = _parts(src)
        edit(tensors)
        save_file(tensors, str(dst), metadata=meta)

    return write


def _with_bytes(edit: Callable[[bytearray], bytes]) -> Callable[[Path, Path], None]:
    def write(src: Path, dst: Path) -> None:
        dst.write_bytes(edit(bytearray(src.read_bytes())))

    return write


def _set(section: str, key: str, value: object) -> Callable[[dict], None]:
    def edit(doc: dict) -> None:
        doc[section][key] = value

    return edit


def _drop(section: str, key: str | None = None) -> Callable[[dict], None]:
    def edit(doc: dict) -> None:
        if key is None:
            doc.pop(section)
        else:
            doc[section].pop(key, None)  # a key the writer left out (another likelihood's)

    return edit


BAD_VALUES = ["x", -1, 0, 1.5, 10**12, None, [], {}, True, 1e308, float("nan")]
FIELDS = {
    "model": [
        "architecture",
        "image_shape",
        "latents",
        "likelihood",
        "sigma2",
        "hidden",
        "encoder",
        "split_width",
        "split_depth",
        "latent",
        "noise_corr",
    ],
    "data": ["spec", "split_seed", "fractions", "subset"],
    "train": ["objective", "options", "epochs", "batch_size", "lr", "seed", "keep"],
}


def document_mutations() -> Iterator[Mutation]:
    for section, keys in FIELDS.items():
        for key in keys:
            for value in BAD_VALUES:
                yield f"{section}.{key}={value!r}", _with_document(_set(section, key, value))
            yield f"drop {section}.{key}", _with_document(_drop(section, key))
        yield f"drop {section}", _with_document(_drop(section))
    for shape in ([1, 28], [1, 28, 28.5], [1000000, 1000000, 1], [3, 28, 28], [0, 28, 28]):
        yield f"image_shape={shape}", _with_document(_set("model", "image_shape", shape))
    yield "format", _with_document(lambda doc: doc.update(format="other"))
    yield "format_version", _with_document(lambda doc: doc.update(format_version=99))
    yield "summary=list", _with_document(lambda doc: doc.update(summary=[1, 2]))


def tensor_mutations(rng: random.Random) -> Iterator[Mutation]:
    names = ["model.encoder.head.weight", "model.encoder.head.bias", "model.decoder.input.weight"]
    for name in names:
        for value in (float("nan"), float("inf"), -float("inf"), 1e30):

            def poison(t, name=name, value=value):
                t[name].view(-1)[0] = value

            yield f"{name}[0]={value}", _with_tensors(poison)
        for dtype in (torch.int32, torch.float64, torch.float16, torch.bool):

            def cast(t, name=name, dtype=dtype):
                t[name] = t[name].to(dtype)

            yield f"{name} as {dtype}", _with_tensors(cast)
        yield f"drop {name}", _with_tensors(lambda t, name=name: t.pop(name))
        yield f"rename {name}", _with_tensors(lambda t, name=name: t.update(x=t.pop(name)))
        yield (
            f"reshape {name}",
            _with_tensors(lambda t, name=name: t.update({name: t[name].reshape(-1)[:-1].clone()})),
        )
    yield "extra tensor", _with_tensors(lambda t: t.update(extra=torch.zeros(3)))
    for i in range(60):  # random bytes anywhere: header, metadata JSON or weights

        def flip(data: bytearray, seed=i) -> bytes:
            local = random.Random(seed)
            header = struct.unpack("<Q", bytes(data[:8]))[0]
            where = local.randrange(8, header + 8) if seed % 2 else local.randrange(len(data))
            data[where] ^= 1 << local.randrange(8)
            return bytes(data)

        yield f"bit flip {i}", _with_bytes(flip)
    for fraction in (0.0, 0.001, 0.01, 0.1, 0.5, 0.9, 0.999):
        yield f"truncate {fraction}", _with_bytes(lambda d, f=fraction: bytes(d[: int(len(d) * f)]))
    yield "header length huge", _with_bytes(lambda d: struct.pack("<Q", 2**62) + bytes(d[8:]))
    yield "garbage", _with_bytes(lambda d: bytes(rng.randrange(256) for _ in range(4096)))


def all_mutations() -> list[Mutation]:
    rng = random.Random(0)
    return [*document_mutations(), *tensor_mutations(rng)]


COMMANDS = [
    ["mi", "rank", "--samples", "60"],
    ["prune", "--top", "50%", "--samples", "60"],
    ["traverse", "--top", "1", "--seeds", "1", "--steps", "2", "--force"],
    ["mi", "fit", "--samples", "60"],
]


def _check(code: int, err: str, what: str) -> None:
    assert "Traceback" not in err, what
    lines = [line for line in err.splitlines() if line.strip()]
    if code == 0:
        return
    assert code == 1, f"{what}: exit {code}: {err}"
    assert lines and lines[-1].startswith("error: "), f"{what}: {err}"
    assert all(line.startswith(("warning: ", "error: ")) for line in lines), f"{what}: {err}"


def test_corpus_is_large_enough() -> None:
    assert len(all_mutations()) >= 200


def test_every_damaged_checkpoint_gives_a_result_or_one_line(
    original: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outcomes = {0: 0, 1: 0}
    for i, (name, write) in enumerate(all_mutations()):
        mutant = tmp_path / f"m{i}.safetensors"
        write(original, mutant)
        for command in (["info"], COMMANDS[i % len(COMMANDS)]):
            code = main([*command[:2 if command[0] == "mi" else 1], str(mutant),
                         *command[2 if command[0] == "mi" else 1 :], "--device", "cpu"]
                        if command != ["info"] else ["info", str(mutant)])  # fmt: skip
            _check(code, capsys.readouterr().err, f"{name}: {' '.join(command)}")
            outcomes[code] += 1
    assert outcomes[1] > 150  # most mutants are refused, with one line


BAD_OPTIONS = [
    ["train", "--epochs", "-1"], ["train", "--batch-size", "0"], ["train", "--lr", "0"],
    ["train", "--lr", "-1"], ["train", "--beta", "-1"], ["train", "--beta", "nan"],
    ["train", "--sigma2", "0"], ["train", "--sigma2", "inf"], ["train", "--latents", "0"],
    ["train", "--latents", "-3"], ["train", "--subset", "-5"], ["train", "--subset", "3"],
    ["train", "--keep", "median"], ["train", "--data", ""], ["train", "--data", "idx"],
    ["train", "--data", "npz:"], ["train", "--data", "folder:/nonexistent"],
    ["train", "--threads", "0"], ["train", "--device", "tpu"], ["train", "--device", "cuda:9"],
    ["train", "--seed", "-2"], ["train", "--split-seed", "99999999999999999999999"],
    ["train", "--epochs", "x"], ["train", "--unknown"],
    ["mi", "rank", "CKPT", "--split", "holdout"], ["mi", "rank", "CKPT", "--samples", "1"],
    ["mi", "rank", "CKPT", "--samples", "-4"], ["mi", "rank", "CKPT", "--variant", "median"],
    ["mi", "rank", "CKPT", "--estimator", ""], ["mi", "rank", "CKPT", "--estimator", "a,b"],
    ["mi", "rank", "CKPT", "--estimator", "qstar,qstar"], ["mi", "rank", "CKPT", "-f", "xml"],
    ["mi", "rank", "CKPT", "--threshold", "-1"], ["mi", "rank", "CKPT", "--threshold", "inf"],
    ["mi", "rank", "CKPT", "--mc-points", "1", "--estimator", "mixture"],
    ["mi", "rank", "CKPT", "--mc-points", "100000000", "--estimator", "mixture"],
    ["mi", "rank", "CKPT", "--rows", "0"], ["mi", "rank", "CKPT", "--plot", "p.gif"],
    ["mi", "rank", "CKPT", "--qstar", "/nonexistent.qstar.safetensors"],
    ["mi", "rank", "CKPT", "--pulse-variance", "both", "--plot", "p.png"],
    ["mi", "rank", "CKPT", "--data", "dsprites"], ["mi", "fit", "CKPT", "--data", "imagenet"],
    ["prune", "CKPT", "--top", "0.5"], ["prune", "CKPT", "--top", "%"],
    ["prune", "CKPT", "--top", "1e3"], ["prune", "CKPT", "--top", "100,,5"],
    ["prune", "CKPT", "--rank-by", "variance"], ["prune", "CKPT", "--rank-by", "active"],
    ["prune", "CKPT", "--task", "classify", "--compare"], ["prune", "CKPT", "--repeats", "0"],
    ["prune", "CKPT", "--save", "x.safetensors"], ["prune", "CKPT", "--plot", "f.bmp"],
    ["prune", "CKPT", "--split", "none"], ["prune", "CKPT", "--samples", "0"],
    ["traverse", "CKPT", "--factor", "99"], ["traverse", "CKPT", "--pair", "1", "1"],
    ["traverse", "CKPT", "--seeds", "0"], ["traverse", "CKPT", "--seed-index", "x"],
    ["traverse", "CKPT", "--seed-index", "-1"], ["traverse", "CKPT", "--scale", "1000"],
    ["traverse", "CKPT", "--out", "sheet.jpg"], ["traverse", "CKPT", "--range", "1", "-1"],
    ["traverse", "CKPT", "--min-mi", "1000"], ["traverse", "CKPT", "--top", "0"],
    ["report", "CKPT", "--out", "/dev/null"], ["info", "CKPT", "-f", "yaml"],
    ["info", "/nonexistent"], ["mi", "rank", "/nonexistent.npz"], ["prune", "/"],
    ["train", "--seeds", ""], ["train", "--seeds", "1,1"], ["train", "--seeds", "-1"],
    ["train", "--seeds", "a"], ["train", "--seeds", ",".join(map(str, range(65)))],
    ["train", "--seeds", "1,2", "--seed", "3"], ["train", "--precision", "fp16"],
    ["metrics", "CKPT", "--metric", "nope"], ["metrics", "CKPT",
    "--metric", ""], ["metrics", "CKPT", "--samples", "10"], ["metrics", "CKPT", "--seed", "-1"],
    ["metrics", "CKPT", "--data", "dsprites"], ["metrics", "CKPT", "-f", "xml"],
    ["metrics", "/nonexistent.npz"], ["study", "/nonexistent.toml", "--out", "d"],
    ["study", "CKPT", "--out", "d"], ["study", "/nonexistent.toml", "--out", "d", "--shard",
    "3/2"], ["report", "/", "--kind", "pie"],
]  # fmt: skip


@pytest.mark.parametrize("args", BAD_OPTIONS, ids=[" ".join(a) for a in BAD_OPTIONS])
def test_bad_option_sets_give_one_line(
    args: list[str], original: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    argv = [str(original) if a == "CKPT" else a for a in args]
    if argv[0] == "train":
        argv += ["--out", str(tmp_path / "run"), "--subset", "500"] if "--subset" not in argv else [
            "--out", str(tmp_path / "run")]  # fmt: skip
    code = main([*argv, "--device", "cpu"] if "--device" not in argv else argv)
    err = capsys.readouterr().err
    assert code in (1, 2), f"{args}: exit {code}: {err}"
    if code == 1:
        _check(code, err, " ".join(args))
    assert "Traceback" not in err
    assert not (tmp_path / "run" / "model.safetensors").exists()


NESTED = "[" * 100_000 + "]" * 100_000  # parses to a RecursionError in json, not a value


def test_unbounded_and_deeply_nested_inputs_are_one_line(
    original: Path, tmp_path: Path, fails
) -> None:
    """Issue 24: a plan read from /dev/zero, a config or specs.json nested 100,000 deep, and a
    checkpoint whose metadata is: one line each, no traceback, nothing allocated without
    bound."""
    line = fails("study", "/dev/zero", "--out", str(tmp_path / "S"))
    assert "not a regular file (a character device)" in line  # never read (tests/test_fuzz_plans)
    config = tmp_path / "deep.json"
    config.write_text(NESTED)
    assert "not readable as json" in fails("train", "--config", str(config))
    folder = tmp_path / "disvae"
    folder.mkdir()
    (folder / "specs.json").write_text(NESTED)
    (folder / "model.pt").write_bytes(b"")
    out = str(tmp_path / "i.safetensors")
    err = fails("import", "disentangling-vae", str(folder), "--out", out, "--data", "mnist5k")
    assert "not readable as JSON" in err
    tensors, _ = _parts(original)
    deep = tmp_path / "deep.safetensors"
    save_file(tensors, str(deep), metadata={"vaetool": NESTED})
    assert "unreadable vaetool metadata" in fails("info", str(deep))
