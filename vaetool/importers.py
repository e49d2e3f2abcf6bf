"""Other frameworks' checkpoints as vaetool models (`vaetool import`; docs/foreign.md).

An importer reads a source folder's config (JSON) and weights, recognises the network among the
registered foreign architectures (vaetool.models.foreign), and maps every source key onto
vaetool's layer names: a key it does not map, one it leaves unfilled, or a shape that differs is
one clear error, never ignored. This is the only module that reads torch's own weight files, with
``torch.load(weights_only=True)``: tensors and containers only, never code. Pickled networks
(pythae's encoder.pkl/decoder.pkl) are never opened.

- ``disentangling-vae``: a results folder (specs.json + model.pt: a plain state_dict of the
  "Burgess" nets, 32×32 or 64×64; ``rec_dist`` bernoulli → Bernoulli pixels, gaussian → a
  Gaussian with σ² = 1/510, its 255·Σ(x − x̂)² loss; laplace is refused).
- ``pythae``: a saved model folder (model_config.json + model.pt with ``model_state_dict``): the
  default MLPs, or the MNIST / CelebA benchmark conv nets recognised from the tensors' shapes;
  ``reconstruction_loss`` bce → Bernoulli, mse → a Gaussian with σ² = 1 (its ½‖x − x̂‖²).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vaetool.config import ModelConfig
from vaetool.errors import CheckpointError, ConfigError, VaetoolError, VaetoolWarning
from vaetool.likelihoods import resolve_likelihood_options
from vaetool.models import build_model
from vaetool.registry import Registry
from vaetool.store.text import read_text

Transform = Callable[[Tensor], Tensor]
Rule = tuple[str, str, Transform | None]  # (source key, vaetool key, transform of the tensor)


@dataclass(frozen=True, eq=False)
class ForeignModel:
    """What an importer read: the vaetool config, the state under vaetool's keys, the source's
    own config, the data set it names (a vaetool spec, or None), the files it read and left."""

    framework: str
    config: ModelConfig
    state: dict[str, Tensor]
    source_config: dict[str, Any]
    weights: Path
    dataset: str | None = None
    read: tuple[str, ...] = ()
    left: tuple[str, ...] = ()
    notes: dict[str, Any] = field(default_factory=dict)
    # the data set the source's config names when vaetool has no spec for it, and how to name
    # its images instead (the import then asks for ‹data› saying both)
    source_dataset: str | None = None
    data_hint: str = ""


IMPORTERS: Registry[Callable[[Path], ForeignModel]] = Registry("import format", "FORMAT")


def read_weights(path: Path) -> dict[str, Any]:
    """torch's weight file ``path`` loaded with ``weights_only=True`` onto the CPU (a file that
    needs code to load is refused: one line)."""
    if not path.is_file():  # a FIFO or a device is never opened: torch.load would block
        what = "not a regular file" if path.exists() else "no such weights file"
        raise CheckpointError(f"{path}: {what}; expected the source's weights there")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)  # noqa: TID251
    except Exception as err:  # a damaged file, or one that would need code: say which
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path}: not readable as plain tensors ({first[:160]}); vaetool loads weights "
            "without running code"
        ) from None
    if not isinstance(loaded, dict):
        raise CheckpointError(f"{path}: holds a {type(loaded).__name__}, expected a dict")
    return loaded


def read_json(path: Path) -> dict[str, Any]:
    if not path.exists():  # read_text names what a path that is no regular file is
        raise CheckpointError(f"{path}: no such file; expected the source's config there")
    try:
        value = json.loads(read_text(path, "JSON config"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError, ConfigError) as err:
        raise CheckpointError(f"{path}: not readable as JSON ({err})") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return value


def map_state(source: dict[str, Any], rules: list[Rule], where: Path) -> dict[str, Tensor]:
    """Every source key through its rule; a key without a rule (unexpected) or a rule without
    its key (missing) is an error naming it."""
    mapped: dict[str, Tensor] = {}
    for key in source:
        if not isinstance(source[key], Tensor):
            raise CheckpointError(f"{where}: entry {key!r} is not a tensor")
    known = {src for src, _, _ in rules}
    unexpected = sorted(set(source) - known)
    if unexpected:
        raise CheckpointError(
            f"{where}: unexpected tensor {unexpected[0]!r} ({len(unexpected)} not part of the "
            "recognised network); nothing was imported"
        )
    missing = [src for src, _, _ in rules if src not in source]
    if missing:
        raise CheckpointError(f"{where}: missing tensor {missing[0]!r} ({len(missing)} of the "
                              "recognised network's are absent); nothing was imported")  # fmt: skip
    for src, dst, transform in rules:
        tensor = source[src]
        mapped[dst] = transform(tensor) if transform is not None else tensor
    return mapped


def check_against(state: dict[str, Tensor], expected: dict[str, Tensor], where: Path) -> None:
    """The mapped state must fill the built model exactly: same keys, same shapes."""
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        what = f"no source tensor for {missing[0]!r}" if missing else f"extra tensor {extra[0]!r}"
        raise CheckpointError(f"{where}: {what}; the source does not match its config")
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"{where}: tensor for {key!r} has shape {tuple(tensor.shape)}, the network "
                f"its config describes needs {tuple(expected[key].shape)}"
            )


def cast_state(
    state: dict[str, Tensor], expected: dict[str, Tensor], where: Path
) -> dict[str, Tensor]:
    """``state`` in the built model's dtypes: a tensor stored in another dtype (float64,
    float16, int32 …) is cast, with one warning naming the tensors and the casts; a tensor
    with NaN or inf values (or one the cast overflows) is refused, naming it."""
    cast: dict[str, Tensor] = {}
    changed: list[str] = []
    for key, tensor in state.items():
        want = expected[key].dtype
        if tensor.dtype != want:
            changed.append(f"{key!r} {_dtype(tensor.dtype)} → {_dtype(want)}")
            tensor = tensor.to(want)
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            how = " after its cast" if tensor.dtype != state[key].dtype else ""
            raise CheckpointError(f"{where}: tensor for {key!r} holds NaN or inf values{how}; "
                                  "the weights are damaged; nothing was imported")  # fmt: skip
        cast[key] = tensor
    if changed:
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        shown = ", ".join(changed[:3]) + more
        warnings.warn(f"{where}: cast {len(changed)} tensor(s) to the dtype vaetool's network "
                      f"uses: {shown} (vaetool's names)", VaetoolWarning, stacklevel=2)  # fmt: skip
    return cast


def _dtype(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _interleaved_rows(tensor: Tensor) -> Tensor:
    """disentangling-vae's head rows are (mu_1, logvar_1, mu_2, …): reorder to [mu; logvar]."""
    return torch.cat([tensor[0::2], tensor[1::2]])


def _linear(src: str, dst: str) -> list[Rule]:
    return [(f"{src}.weight", f"{dst}.weight", None), (f"{src}.bias", f"{dst}.bias", None)]


def _batch_norm(src: str, dst: str) -> list[Rule]:
    names = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    return [(f"{src}.{n}", f"{dst}.{n}", None) for n in names]


def _source_folder(source: Path, weights: str) -> Path:
    """A folder, or the weights file inside one."""
    source = Path(source)
    if source.is_file() and source.name == weights:
        return source.parent
    if source.is_dir():
        return source
    if source.is_file():
        raise CheckpointError(f"{source}: is a file; expected the model's folder (or the "
                              f"{weights} inside it)")  # fmt: skip
    if source.exists():
        raise CheckpointError(f"{source}: not a folder; expected the model's folder")
    raise CheckpointError(f"{source}: no such folder; expected the model's folder")


# ---------------------------------------------------------------- disentangling-vae
# (likelihood, its options): disentangling-vae's MSE loss is the Gaussian NLL at σ² = 1/510
DISVAE_LIKELIHOODS = {
    "bernoulli": ("bernoulli", {}),
    "gaussian": ("gaussian", {"sigma2": 1.0 / 510.0}),
}
DISVAE_DATASETS = {"dsprites": "dsprites"}  # its others (mnist 32×32, chairs, celeba): --data
# how to name the images of its other data sets (vaetool's mnist5k and idx: are 28×28)
DISVAE_DATA_HINTS = {
    "mnist": "npz:FILE holding MNIST resized to 32×32 as array x",
    "fashion": "npz:FILE holding Fashion-MNIST resized to 32×32 as array x",
    "celeba": "folder:DIR of the CelebA images",
    "chairs": "folder:DIR of the chairs images, or npz:FILE holding them as array x",
}


@IMPORTERS.register("disentangling-vae")
def import_disvae(source: Path) -> ForeignModel:
    """A disentangling-vae results folder: specs.json + model.pt (Burgess nets)."""
    folder = _source_folder(source, "model.pt")
    specs = read_json(folder / "specs.json")
    try:
        image = tuple(int(v) for v in specs["img_size"])
        latents, model_type = int(specs["latent_dim"]), str(specs["model_type"])
        rec_dist = str(specs.get("rec_dist", "bernoulli"))
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{folder / 'specs.json'}: lacks img_size, latent_dim or "
                              f"model_type ({err})") from None  # fmt: skip
    if model_type.lower() != "burgess":
        raise CheckpointError(f"{folder / 'specs.json'}: model_type {model_type!r}; "
                              "disentangling-vae's only network is Burgess")  # fmt: skip
    if rec_dist not in DISVAE_LIKELIHOODS:
        raise ConfigError(f"{folder / 'specs.json'}: rec_dist {rec_dist!r} has no vaetool "
                          "likelihood (bernoulli and gaussian import)")  # fmt: skip
    if len(image) != 3 or image[1:] not in ((32, 32), (64, 64)):
        raise CheckpointError(f"{folder / 'specs.json'}: img_size {list(image)}; the Burgess "
                              "nets take [C, 32, 32] or [C, 64, 64]")  # fmt: skip
    likelihood, options = DISVAE_LIKELIHOODS[rec_dist]
    resolved = resolve_likelihood_options(likelihood, options)
    config = ModelConfig("burgess", image, latents=latents, likelihood=likelihood,  # type: ignore[arg-type]
                         likelihood_options=resolved)  # fmt: skip
    big = image[1] == 64
    rules: list[Rule] = []
    convs = ["conv1", "conv2", "conv3"] + (["conv_64"] if big else [])
    for i, name in enumerate(convs):
        rules += _linear(f"encoder.{name}", f"encoder.features.{2 * i}")
    rules += _linear("encoder.lin1", "encoder.fc.0") + _linear("encoder.lin2", "encoder.fc.2")
    rules += [("encoder.mu_logvar_gen.weight", "encoder.head.weight", _interleaved_rows),
              ("encoder.mu_logvar_gen.bias", "encoder.head.bias", _interleaved_rows)]  # fmt: skip
    rules += _linear("decoder.lin1", "decoder.input") + _linear("decoder.lin2", "decoder.fc.1")
    rules += _linear("decoder.lin3", "decoder.fc.3")
    deconvs = (["convT_64"] if big else []) + ["convT1", "convT2", "convT3"]
    for i, name in enumerate(deconvs):
        rules += _linear(f"decoder.{name}", f"decoder.deconv.{2 * i}")
    weights = folder / "model.pt"
    state = map_state(read_weights(weights), rules, weights)
    read = ("specs.json", "model.pt")
    left = tuple(sorted(p.name for p in folder.iterdir() if p.name not in read))
    named = specs.get("dataset")
    named = str(named) if named is not None else None
    hint = DISVAE_DATA_HINTS.get(str(named).lower(), "npz:FILE holding them as array x, or "
                                 "folder:DIR of its image files")  # fmt: skip
    return ForeignModel("disentangling-vae", config, state, specs, weights,
                        DISVAE_DATASETS.get(str(named)), read,
                        left, {"loss": specs.get("loss"), "rec_dist": rec_dist},
                        named, hint)  # fmt: skip


# ---------------------------------------------------------------- pythae
PYTHAE_MODELS = ("VAEConfig", "BetaVAEConfig", "BetaTCVAEConfig", "DisentangledBetaVAEConfig")
PYTHAE_LIKELIHOODS = {"bce": ("bernoulli", {}), "mse": ("gaussian", {"sigma2": 1.0})}


PYTHAE_ARCHITECTURES = ("pythae_mlp", "pythae_conv_mnist", "pythae_conv_celeba")


def _pythae_architecture(state: dict[str, Any], image: tuple[int, ...], where: Path) -> str:
    """Which published network the tensors are: the one whose every key and shape they match
    (pythae's config does not say; its encoder.pkl would, but vaetool never unpickles code).
    A network that shares a first layer with one of them (pythae's CIFAR conv net and the
    CelebA one's) but not the rest is no match: an unsupported architecture."""
    head = state.get("encoder.embedding.weight")
    if isinstance(head, Tensor) and head.dim() == 2 and head.shape[0] > 0:
        for name in PYTHAE_ARCHITECTURES:
            if _pythae_matches(name, state, image, int(head.shape[0])):
                return name
    raise CheckpointError(
        f"{where}: unsupported architecture: its tensors are not those of pythae's default MLP "
        f"nor of its MNIST or CelebA benchmark conv nets for {list(image)} images (the networks "
        "vaetool rebuilds); a custom network's code is pickled in encoder.pkl/decoder.pkl, "
        "which vaetool never unpickles — export its (mu, logvar) instead (docs/foreign.md)"
    )


def _pythae_matches(name: str, state: dict[str, Any], image: tuple[int, ...], latents: int) -> bool:
    """Whether ``state`` holds exactly network ``name``'s keys, each of its shape (the model
    built on the meta device: nothing allocated)."""
    rules = _pythae_rules(name)
    if {src for src, _, _ in rules} != set(state):
        return False
    try:
        with torch.device("meta"):
            config = ModelConfig(name, image, latents=latents)  # type: ignore[arg-type]
            expected = build_model(config).state_dict()
    except (VaetoolError, ValueError, TypeError, RuntimeError):
        return False
    for src, dst, _ in rules:
        want = tuple(expected[dst].shape)
        if dst.startswith("encoder.head."):  # mu's and logvar's layers, stacked by _join_heads
            want = (want[0] // 2, *want[1:])
        tensor = state[src]
        if not isinstance(tensor, Tensor) or tuple(tensor.shape) != want:
            return False
    return True


def _pythae_rules(architecture: str) -> list[Rule]:
    head = [("encoder.embedding.weight", "encoder.head.weight"),
            ("encoder.log_var.weight", "encoder.head.weight"),
            ("encoder.embedding.bias", "encoder.head.bias"),
            ("encoder.log_var.bias", "encoder.head.bias")]  # fmt: skip
    rules: list[Rule] = [(src, dst, None) for src, dst in head]  # joined by _join_heads
    if architecture == "pythae_mlp":
        rules += _linear("encoder.layers.0.0", "encoder.features.1")
        rules += _linear("decoder.layers.0.0", "decoder.input")
        return rules + _linear("decoder.layers.1.0", "decoder.fc.1")
    for i in range(4):
        rules += _linear(f"encoder.layers.{i}.0", f"encoder.features.{3 * i}")
        rules += _batch_norm(f"encoder.layers.{i}.1", f"encoder.features.{3 * i + 1}")
    if architecture == "pythae_conv_mnist":
        rules += _linear("decoder.layers.0", "decoder.input")
        blocks, last = 2, 3
    else:
        rules += _linear("decoder.layers.0.0", "decoder.input")
        blocks, last = 3, 4
    for i in range(blocks):
        rules += _linear(f"decoder.layers.{i + 1}.0", f"decoder.deconv.{3 * i}")
        rules += _batch_norm(f"decoder.layers.{i + 1}.1", f"decoder.deconv.{3 * i + 1}")
    return rules + _linear(f"decoder.layers.{last}.0", f"decoder.deconv.{3 * blocks}")


def _join_heads(source: dict[str, Tensor], mapped_rules: list[Rule]) -> list[Rule]:
    """pythae keeps mu (``embedding``) and logvar (``log_var``) in two layers: vaetool's head
    stacks them, rows [mu; logvar]. Replaces the four head rules by two joined tensors."""
    for part in ("weight", "bias"):
        mu, lv = source.get(f"encoder.embedding.{part}"), source.get(f"encoder.log_var.{part}")
        if isinstance(mu, Tensor) and isinstance(lv, Tensor):
            source[f"encoder.head.{part}"] = torch.cat([mu, lv])
            del source[f"encoder.embedding.{part}"], source[f"encoder.log_var.{part}"]
    kept = [
        r for r in mapped_rules if not r[0].startswith(("encoder.embedding.", "encoder.log_var."))
    ]
    return kept + _linear("encoder.head", "encoder.head")


@IMPORTERS.register("pythae")
def import_pythae(source: Path) -> ForeignModel:
    """A pythae saved model folder: model_config.json + model.pt (``model_state_dict``)."""
    folder = _source_folder(source, "model.pt")
    config_path = folder / "model_config.json"
    spec = read_json(config_path)
    name = str(spec.get("name"))
    if name not in PYTHAE_MODELS:
        raise CheckpointError(
            f"{config_path}: model {name!r}; vaetool imports pythae's "
            f"{', '.join(PYTHAE_MODELS)} (an encoder and a decoder only)"
        )
    try:
        image = tuple(int(v) for v in spec["input_dim"])
        latents = int(spec["latent_dim"])
        loss = str(spec.get("reconstruction_loss", "mse"))
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{config_path}: lacks input_dim or latent_dim ({err})") from None
    if len(image) == 1:
        image = (1, 1, image[0])
    if len(image) != 3 or loss not in PYTHAE_LIKELIHOODS:
        raise CheckpointError(f"{config_path}: input_dim {list(image)} / reconstruction_loss "
                              f"{loss!r}; expected (C, H, W) and bce or mse")  # fmt: skip
    weights = folder / "model.pt"
    loaded = read_weights(weights)
    if "model_state_dict" not in loaded or not isinstance(loaded["model_state_dict"], dict):
        raise CheckpointError(f"{weights}: no 'model_state_dict'; expected a file pythae's "
                              "model.save wrote")  # fmt: skip
    state = dict(loaded["model_state_dict"])
    architecture = _pythae_architecture(state, image, weights)
    likelihood, options = PYTHAE_LIKELIHOODS[loss]
    resolved = resolve_likelihood_options(likelihood, options)
    config = ModelConfig(architecture, image, latents=latents, likelihood=likelihood,  # type: ignore[arg-type]
                         likelihood_options=resolved)  # fmt: skip
    rules = _join_heads(state, _pythae_rules(architecture))
    mapped = map_state(state, rules, weights)
    read = ("model_config.json", "model.pt")
    left = tuple(sorted(p.name for p in folder.iterdir() if p.name not in read))
    return ForeignModel("pythae", config, mapped, spec, weights, None, read, left,
                        {"model": name, "reconstruction_loss": loss})  # fmt: skip
