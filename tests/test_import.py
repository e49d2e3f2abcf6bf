"""`vaetool import` and `vaetool encode`: source-format checkpoints built here from the published
architectures and key names (disentangling-vae's Burgess nets, pythae's default MLPs and MNIST
benchmark conv nets, re-typed below from their repositories), imported, and compared output for
output; then analysed by every command; bad sources give one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import vaetool

# ---------------------------------------------------------------- disentangling-vae (disvae/models)


class EncoderBurgess(nn.Module):
    """disvae/models/encoders.py, verbatim but for docstrings."""

    def __init__(self, img_size, latent_dim=10):
        super().__init__()
        hid_channels, kernel_size, hidden_dim = 32, 4, 256
        self.latent_dim, self.img_size = latent_dim, img_size
        self.reshape = (hid_channels, kernel_size, kernel_size)
        n_chan = self.img_size[0]
        cnn_kwargs = dict(stride=2, padding=1)
        self.conv1 = nn.Conv2d(n_chan, hid_channels, kernel_size, **cnn_kwargs)
        self.conv2 = nn.Conv2d(hid_channels, hid_channels, kernel_size, **cnn_kwargs)
        self.conv3 = nn.Conv2d(hid_channels, hid_channels, kernel_size, **cnn_kwargs)
        if self.img_size[1] == self.img_size[2] == 64:
            self.conv_64 = nn.Conv2d(hid_channels, hid_channels, kernel_size, **cnn_kwargs)
        self.lin1 = nn.Linear(int(np.prod(self.reshape)), hidden_dim)
        self.lin2 = nn.Linear(hidden_dim, hidden_dim)
        self.mu_logvar_gen = nn.Linear(hidden_dim, self.latent_dim * 2)

    def forward(self, x):
        batch_size = x.size(0)
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        x = torch.relu(self.conv3(x))
        if self.img_size[1] == self.img_size[2] == 64:
            x = torch.relu(self.conv_64(x))
        x = x.view((batch_size, -1))
        x = torch.relu(self.lin1(x))
        x = torch.relu(self.lin2(x))
        mu_logvar = self.mu_logvar_gen(x)
        mu, logvar = mu_logvar.view(-1, self.latent_dim, 2).unbind(-1)
        return mu, logvar


class DecoderBurgess(nn.Module):
    """disvae/models/decoders.py."""

    def __init__(self, img_size, latent_dim=10):
        super().__init__()
        hid_channels, kernel_size, hidden_dim = 32, 4, 256
        self.img_size = img_size
        self.reshape = (hid_channels, kernel_size, kernel_size)
        n_chan = self.img_size[0]
        self.lin1 = nn.Linear(latent_dim, hidden_dim)
        self.lin2 = nn.Linear(hidden_dim, hidden_dim)
        self.lin3 = nn.Linear(hidden_dim, int(np.prod(self.reshape)))
        cnn_kwargs = dict(stride=2, padding=1)
        if self.img_size[1] == self.img_size[2] == 64:
            self.convT_64 = nn.ConvTranspose2d(
                hid_channels, hid_channels, kernel_size, **cnn_kwargs
            )
        self.convT1 = nn.ConvTranspose2d(hid_channels, hid_channels, kernel_size, **cnn_kwargs)
        self.convT2 = nn.ConvTranspose2d(hid_channels, hid_channels, kernel_size, **cnn_kwargs)
        self.convT3 = nn.ConvTranspose2d(hid_channels, n_chan, kernel_size, **cnn_kwargs)

    def forward(self, z):
        batch_size = z.size(0)
        x = torch.relu(self.lin1(z))
        x = torch.relu(self.lin2(x))
        x = torch.relu(self.lin3(x))
        x = x.view(batch_size, *self.reshape)
        if self.img_size[1] == self.img_size[2] == 64:
            x = torch.relu(self.convT_64(x))
        x = torch.relu(self.convT1(x))
        x = torch.relu(self.convT2(x))
        return torch.sigmoid(self.convT3(x))


class DisVAE(nn.Module):
    """disvae/models/vae.py's wrapper: state keys encoder.*, decoder.*."""

    def __init__(self, img_size, latent_dim):
        super().__init__()
        self.encoder = EncoderBurgess(img_size, latent_dim)
        self.decoder = DecoderBurgess(img_size, latent_dim)


def disvae_folder(folder: Path, img_size: list[int], rec_dist: str = "bernoulli",
                  dataset: str = "dsprites", latent_dim: int = 10) -> DisVAE:  # fmt: skip
    torch.manual_seed(0)
    model = DisVAE(img_size, latent_dim).eval()
    folder.mkdir(parents=True)
    specs = {"img_size": img_size, "latent_dim": latent_dim, "model_type": "Burgess",
             "rec_dist": rec_dist, "dataset": dataset, "loss": "betaH", "betaH_B": 4}  # fmt: skip
    (folder / "specs.json").write_text(json.dumps(specs, indent=4, sort_keys=True))
    torch.save(model.state_dict(), folder / "model.pt")
    (folder / "train_losses.log").write_text("Epoch,Loss,Value\n")
    return model


# ---------------------------------------------------------------- pythae (models/nn)


class EncoderVAEMLP(nn.Module):
    """pythae default_architectures.Encoder_VAE_MLP (returns embedding, log_covariance)."""

    def __init__(self, input_dim, latent_dim):
        super().__init__()
        self.input_dim = input_dim
        self.layers = nn.ModuleList([nn.Sequential(nn.Linear(int(np.prod(input_dim)), 512),
                                                   nn.ReLU())])  # fmt: skip
        self.embedding = nn.Linear(512, latent_dim)
        self.log_var = nn.Linear(512, latent_dim)

    def forward(self, x):
        out = self.layers[0](x.reshape(-1, int(np.prod(self.input_dim))))
        return self.embedding(out), self.log_var(out)


class DecoderAEMLP(nn.Module):
    """pythae default_architectures.Decoder_AE_MLP (a sigmoid output, always)."""

    def __init__(self, input_dim, latent_dim):
        super().__init__()
        self.input_dim = tuple(input_dim)
        self.layers = nn.ModuleList([
            nn.Sequential(nn.Linear(latent_dim, 512), nn.ReLU()),
            nn.Sequential(nn.Linear(512, int(np.prod(input_dim))), nn.Sigmoid())])  # fmt: skip

    def forward(self, z):
        out = self.layers[1](self.layers[0](z))
        return out.reshape((z.shape[0], *self.input_dim))


class EncoderConvMNIST(nn.Module):
    """pythae benchmarks/mnist/convnets.Encoder_Conv_VAE_MNIST."""

    def __init__(self, latent_dim):
        super().__init__()
        blocks, c = [], 1
        for out in (128, 256, 512, 1024):
            blocks.append(nn.Sequential(nn.Conv2d(c, out, 4, 2, padding=1), nn.BatchNorm2d(out),
                                        nn.ReLU()))  # fmt: skip
            c = out
        self.layers = nn.ModuleList(blocks)
        self.embedding = nn.Linear(1024, latent_dim)
        self.log_var = nn.Linear(1024, latent_dim)

    def forward(self, x):
        out = x
        for layer in self.layers:
            out = layer(out)
        flat = out.reshape(x.shape[0], -1)
        return self.embedding(flat), self.log_var(flat)


class DecoderConvMNIST(nn.Module):
    """pythae benchmarks/mnist/convnets.Decoder_Conv_AE_MNIST (a bare first Linear)."""

    def __init__(self, latent_dim):
        super().__init__()
        self.layers = nn.ModuleList([
            nn.Linear(latent_dim, 1024 * 4 * 4),
            nn.Sequential(nn.ConvTranspose2d(1024, 512, 3, 2, padding=1), nn.BatchNorm2d(512),
                          nn.ReLU()),
            nn.Sequential(nn.ConvTranspose2d(512, 256, 3, 2, padding=1, output_padding=1),
                          nn.BatchNorm2d(256), nn.ReLU()),
            nn.Sequential(nn.ConvTranspose2d(256, 1, 3, 2, padding=1, output_padding=1),
                          nn.Sigmoid())])  # fmt: skip

    def forward(self, z):
        out = self.layers[0](z).reshape(z.shape[0], 1024, 4, 4)
        for layer in self.layers[1:]:
            out = layer(out)
        return out


class EncoderConvCELEBA(EncoderConvMNIST):
    """pythae benchmarks/celeba/convnets.Encoder_Conv_VAE_CELEBA: 3 channels, heads from 16384."""

    def __init__(self, latent_dim):
        super().__init__(latent_dim)
        self.layers[0][0] = nn.Conv2d(3, 128, 4, 2, padding=1)
        self.embedding = nn.Linear(1024 * 4 * 4, latent_dim)
        self.log_var = nn.Linear(1024 * 4 * 4, latent_dim)


class DecoderConvCELEBA(nn.Module):
    """pythae benchmarks/celeba/convnets.Decoder_Conv_AE_CELEBA (a Sequential-wrapped Linear)."""

    def __init__(self, latent_dim):
        super().__init__()

        def block(c_in, c_out, p, op):
            up = nn.ConvTranspose2d(c_in, c_out, 5, 2, padding=p, output_padding=op)
            return nn.Sequential(up, nn.BatchNorm2d(c_out), nn.ReLU())

        self.layers = nn.ModuleList([
            nn.Sequential(nn.Linear(latent_dim, 1024 * 8 * 8)),
            block(1024, 512, 2, 0), block(512, 256, 1, 0), block(256, 128, 2, 1),
            nn.Sequential(nn.ConvTranspose2d(128, 3, 5, 1, padding=1), nn.Sigmoid())])  # fmt: skip

    def forward(self, z):
        out = self.layers[0](z).reshape(z.shape[0], 1024, 8, 8)
        for layer in self.layers[1:]:
            out = layer(out)
        return out


class PythaeVAE(nn.Module):
    """pythae's VAE: decoder set first (BaseAE), then the encoder; keys encoder.*, decoder.*."""

    def __init__(self, encoder, decoder):
        super().__init__()
        self.decoder, self.encoder = decoder, encoder


def pythae_folder(folder: Path, kind: str, latent_dim: int, loss: str = "bce") -> PythaeVAE:
    torch.manual_seed(1)
    shape = [3, 64, 64] if kind == "celeba" else [1, 28, 28]
    if kind == "mlp":
        model = PythaeVAE(EncoderVAEMLP(shape, latent_dim), DecoderAEMLP(shape, latent_dim))
    else:
        nets = {"conv": (EncoderConvMNIST, DecoderConvMNIST),
                "celeba": (EncoderConvCELEBA, DecoderConvCELEBA)}[kind]  # fmt: skip
        model = PythaeVAE(nets[0](latent_dim), nets[1](latent_dim))
        model.train()
        with torch.no_grad():  # give the batch norms running statistics of their own
            model.decoder(model.encoder(torch.rand(8, *shape))[0])
    model.eval()
    folder.mkdir(parents=True)
    default = kind == "mlp"
    config = {"name": "VAEConfig", "input_dim": shape, "latent_dim": latent_dim,
              "uses_default_encoder": default, "uses_default_decoder": default,
              "reconstruction_loss": loss}  # fmt: skip
    (folder / "model_config.json").write_text(json.dumps(config))
    (folder / "environment.json").write_text('{"name": "EnvironmentConfig"}')
    torch.save({"model_state_dict": model.state_dict()}, folder / "model.pt")
    if not default:  # pythae pickles custom nets; vaetool must never open these
        (folder / "encoder.pkl").write_bytes(b"not to be opened")
        (folder / "decoder.pkl").write_bytes(b"not to be opened")
    return model


# ---------------------------------------------------------------- tests


def _same_outputs(imported, encoder, decoder, shape: tuple[int, ...], latents: int) -> None:
    torch.manual_seed(5)
    x = torch.rand(6, *shape)
    with torch.no_grad():
        mu, logvar = imported.encode(x)
        ref_mu, ref_logvar = encoder(x)
        z = torch.randn(6, latents)
        assert torch.allclose(mu, ref_mu, atol=1e-5) and torch.allclose(
            logvar, ref_logvar, atol=1e-5
        )
        assert torch.allclose(imported.decode_mean(z), decoder(z), atol=1e-5)


@pytest.mark.parametrize("size", [32, 64])
def test_disvae_round_trip_gives_the_same_outputs(tmp_path: Path, cli, size: int) -> None:
    source = disvae_folder(tmp_path / "src", [1, size, size])
    out = tmp_path / "m.safetensors"
    data = [] if size == 64 else ["--data", f"npz:{_npz32(tmp_path)}"]
    code, _, err = cli("import", "disentangling-vae", str(tmp_path / "src"), "--out", str(out),
                       *data)  # fmt: skip
    assert code == 0, err
    imported = vaetool.load(out)
    _same_outputs(imported, source.encoder, source.decoder, (1, size, size), 10)
    info = vaetool.read_info(out)
    provenance = info.extra["imported"]
    assert (
        provenance["framework"] == "disentangling-vae" and len(provenance["weights_sha256"]) == 64
    )
    assert provenance["files_left"] == ["train_losses.log"]
    assert info.data.spec == ("dsprites" if size == 64 else f"npz:{tmp_path / 'x32.npz'}")


def _npz32(tmp_path: Path) -> Path:
    path = tmp_path / "x32.npz"
    rng = np.random.RandomState(0)
    np.savez(path, x=rng.randint(0, 256, (60, 32, 32)).astype(np.uint8), y=rng.randint(0, 3, 60))
    return path


@pytest.mark.parametrize("kind", ["mlp", pytest.param("conv", marks=pytest.mark.slow)])
def test_pythae_round_trip_gives_the_same_outputs(tmp_path: Path, cli, kind: str) -> None:
    source = pythae_folder(tmp_path / "final_model", kind, 6)
    out = tmp_path / "m.safetensors"
    code, _, err = cli("import", "pythae", str(tmp_path / "final_model" / "model.pt"), "--out",
                       str(out), "--data", "mnist5k")  # fmt: skip
    assert code == 0, err
    imported = vaetool.load(out)
    assert imported.config.architecture == ("pythae_mlp" if kind == "mlp" else "pythae_conv_mnist")
    _same_outputs(imported, source.encoder, source.decoder, (1, 28, 28), 6)
    left = vaetool.read_info(out).extra["imported"]["files_left"]
    assert "environment.json" in left and ("encoder.pkl" in left) == (kind == "conv")


@pytest.mark.slow  # ~35 s: the report ranks with the mixture and probes the labels
@pytest.mark.slow  # 13 M parameters
def test_pythae_celeba_conv_round_trip(tmp_path: Path) -> None:
    from vaetool.workflows.foreign import ImportRequest, import_model

    source = pythae_folder(tmp_path / "c", "celeba", 8)
    folder = tmp_path / "faces"
    folder.mkdir()
    from PIL import Image

    for i in range(4):
        Image.fromarray(np.full((64, 64, 3), 40 * i, dtype=np.uint8)).save(folder / f"{i}.png")
    out = tmp_path / "c.safetensors"
    import_model(ImportRequest("pythae", tmp_path / "c", out, data=f"folder:{folder}"))
    imported = vaetool.load(out)
    assert imported.config.architecture == "pythae_conv_celeba"
    _same_outputs(imported, source.encoder, source.decoder, (3, 64, 64), 8)


@pytest.mark.slow  # ~35 s: the report ranks with the mixture and probes the labels
def test_an_imported_model_is_analysed_by_every_command(tmp_path: Path, cli) -> None:
    """The Done-when: import, then mi rank, prune, traverse and metrics; encode → mi rank."""
    pythae_folder(tmp_path / "p", "mlp", 5, loss="mse")
    model = tmp_path / "p.safetensors"
    assert cli("import", "pythae", str(tmp_path / "p"), "--out", str(model), "--data",
               "mnist5k")[0] == 0  # fmt: skip
    assert vaetool.load(model).config.likelihood == "gaussian"
    for args in (["mi", "rank", str(model), "--samples", "200"],
                 ["prune", str(model), "--top", "1,3", "--samples", "200"],
                 ["traverse", str(model), "--top", "2", "--out", str(tmp_path / "t.png")],
                 ["metrics", str(model), "--metric", "mig", "--samples", "200"],
                 ["report", str(model), "--out", str(tmp_path / "rep")]):  # fmt: skip
        code, _, err = cli(*args)
        assert code == 0, (args, err)
    posterior = tmp_path / "post.npz"
    code, _, err = cli("encode", str(model), "--out", str(posterior), "--samples", "300")
    assert code == 0, err
    with np.load(posterior) as arrays:
        assert set(arrays.files) == {"mu", "logvar", "labels"} and arrays["mu"].shape == (300, 5)
    code, out, err = cli("mi", "rank", str(posterior), "-f", "json")
    assert code == 0, err
    assert json.loads(out)["summary"]["n"] == 300


@pytest.mark.slow  # renders dSprites
def test_disvae_dsprites_metrics_and_encode_with_factors(tmp_path: Path, cli) -> None:
    disvae_folder(tmp_path / "d", [1, 64, 64])
    model = tmp_path / "d.safetensors"
    assert cli("import", "disentangling-vae", str(tmp_path / "d"), "--out", str(model))[0] == 0
    sheet = str(tmp_path / "t.png")
    for args in (["mi", "rank", str(model), "--samples", "200"],
                 ["prune", str(model), "--top", "2,10", "--samples", "200"],
                 ["traverse", str(model), "--top", "3", "--out", sheet]):  # fmt: skip
        code, _, err = cli(*args)
        assert code == 0, (args, err)
    code, out, err = cli("metrics", str(model), "--metric", "mig", "--samples", "200", "-f",
                         "json")  # fmt: skip
    assert code == 0, err
    assert 0.0 <= json.loads(out)["values"]["mig"] <= 1.0
    posterior = tmp_path / "d.npz"
    assert cli("encode", str(model), "--out", str(posterior), "--samples", "100")[0] == 0
    with np.load(posterior) as arrays:
        assert arrays["factors"].shape == (100, 5)  # dSprites' five factors (colour constant)
    code, _, err = cli("metrics", str(posterior), "--metric", "mig", "--samples", "100")
    assert code == 0, err


def test_bad_sources_give_one_line_and_write_nothing(tmp_path: Path, fails) -> None:
    out = tmp_path / "m.safetensors"
    good = tmp_path / "good"
    disvae_folder(good, [1, 64, 64])
    assert "no such folder" in fails("import", "pythae", str(tmp_path / "none"), "--out", str(out))
    assert "unknown import format" in fails("import", "keras", str(good), "--out", str(out))
    # a mismatched tensor (another latent size than specs.json says)
    bad = tmp_path / "bad"
    disvae_folder(bad, [1, 64, 64], latent_dim=6)
    specs = json.loads((bad / "specs.json").read_text())
    (bad / "specs.json").write_text(json.dumps({**specs, "latent_dim": 10}))
    assert "shape" in fails("import", "disentangling-vae", str(bad), "--out", str(out))
    # an extra tensor, a missing one, a damaged file, a laplace likelihood, no data named
    state = torch.load(good / "model.pt", weights_only=True)  # noqa: TID251 (the test's own file)
    extra = {**state, "encoder.extra": torch.zeros(1)}
    missing = {k: v for k, v in state.items() if "lin2" not in k}
    for name, broken in (("extra", extra), ("missing", missing)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "specs.json").write_text((good / "specs.json").read_text())
        torch.save(broken, folder / "model.pt")
        assert name.replace("extra", "unexpected") in fails(
            "import", "disentangling-vae", str(folder), "--out", str(out)
        )
    (tmp_path / "extra" / "model.pt").write_bytes(b"PK\x03\x04 damaged")
    assert "not readable as plain tensors" in fails(
        "import", "disentangling-vae", str(tmp_path / "extra"), "--out", str(out)
    )
    (tmp_path / "missing" / "specs.json").write_text(json.dumps({**specs, "rec_dist": "laplace"}))
    assert "laplace" in fails("import", "disentangling-vae", str(tmp_path / "missing"), "--out",
                              str(out))  # fmt: skip
    pythae_folder(tmp_path / "p", "mlp", 4)
    assert "--data" in fails("import", "pythae", str(tmp_path / "p"), "--out", str(out))
    assert not out.exists()
    assert "--data mnist5k: images are" in fails(
        "import", "disentangling-vae", str(good), "--out", str(out), "--data", "mnist5k"
    )
    assert not out.exists()


def test_a_pickled_custom_network_is_refused_without_opening_it(tmp_path: Path, fails) -> None:
    folder = tmp_path / "custom"
    pythae_folder(folder, "mlp", 4)
    state = torch.load(folder / "model.pt", weights_only=True)["model_state_dict"]  # noqa: TID251
    state["encoder.layers.0.0.weight"] = torch.zeros(300, 784)  # another width: a custom net
    torch.save({"model_state_dict": state}, folder / "model.pt")
    (folder / "encoder.pkl").write_bytes(b"\x80\x04 code vaetool must not run")
    line = fails("import", "pythae", str(folder), "--out", str(tmp_path / "m.safetensors"),
                 "--data", "mnist5k")  # fmt: skip
    assert "never unpickles" in line


def test_only_the_importers_module_loads_torch_weights() -> None:
    """vaetool never unpickles: torch.load (weights_only) lives in vaetool/importers.py alone."""
    package = Path(vaetool.__file__).parent
    users = sorted(str(p.relative_to(package)) for p in package.rglob("*.py")
                   if "torch.load(" in p.read_text(encoding="utf-8"))  # fmt: skip
    assert users == ["importers.py"]
    assert "weights_only=True" in (package / "importers.py").read_text(encoding="utf-8")
