"""Training speed (issues 3 and 12), side by side in one process. Not a test: prints markdown.

    python benchmarks/bench_train.py [--device auto] [--large-batch 4096] [--steps 30]

On the embedded mnist5k's images (1 × 28 × 28, conv28 network, H = 10, Bernoulli, β-VAE):

1. images/s of one training step (forward, backward, Adam) at batch 100 and a large batch for
   vaetool's plain step, vaetool's fast step (the CUDA graph of training.fast_step; the same as
   plain on a CPU), the fast step with bf16 autocast, and pythae 0.1.2's VAE with the *same*
   encoder and decoder modules and the same Adam (if pythae is installed) — medians of
   ``--steps`` steps after warm-up;
2. the encoder pass alone (the `mi rank` floor), images/s at the large batch;
3. K seeds at once (vaetool.training.ensemble) against K separate runs: 2 epochs of 1,200 images;
4. the cold start of `vaetool --help`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from dataclasses import replace

import torch
from timing import device_name, sync, timed

from vaetool.config import DataConfig, ModelConfig, TrainConfig
from vaetool.data import load_dataset
from vaetool.device import autocast, resolve_device
from vaetool.models import build_model
from vaetool.objectives import TrainContext, build_objective
from vaetool.training.ensemble import fit_stack, stack_sessions
from vaetool.training.fast_step import make_step
from vaetool.training.fit import fit
from vaetool.training.loop import open_session, start_session
from vaetool.training.session import Session

CONFIG = ModelConfig("conv28", (1, 28, 28), latents=10)


def batch_of(size: int, device: torch.device) -> torch.Tensor:
    data = load_dataset("mnist5k")
    rows = torch.arange(size) % len(data)
    return data.images(rows.numpy()).to(device)


def vaetool_step(x: torch.Tensor, fast: bool, precision: str, steps: int, warmup: int = 5) -> float:
    torch.manual_seed(0)
    model = build_model(CONFIG).to(x.device)
    context = TrainContext(3000, 30, 1e-3, x.device, precision)
    objective = build_objective("beta_vae", {}, model, context)
    step = make_step(objective, x.device, graph=fast)
    for _ in range(warmup):  # warm-up (and, on CUDA, the graph's capture)
        step(x)
    return x.shape[0] / timed(lambda: step(x), x.device, repeats=steps)


def pythae_step(x: torch.Tensor, steps: int) -> float | None:
    """pythae 0.1.2's VAE around the same conv28 encoder and decoder: its forward (loss
    included), backward and Adam, as its trainer's step does."""
    try:
        from pythae.models import VAE, VAEConfig
        from pythae.models.base.base_utils import ModelOutput
        from pythae.models.nn import BaseDecoder, BaseEncoder
    except ImportError:
        return None
    torch.manual_seed(0)
    ours = build_model(CONFIG).to(x.device)

    class Encoder(BaseEncoder):
        def __init__(self) -> None:
            super().__init__()
            self.net = ours.encoder

        def forward(self, x: torch.Tensor) -> ModelOutput:
            mu, logvar = self.net(x)
            return ModelOutput(embedding=mu, log_covariance=logvar)

    class Decoder(BaseDecoder):
        def __init__(self) -> None:
            super().__init__()
            self.net = ours.decoder

        def forward(self, z: torch.Tensor) -> ModelOutput:
            return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))

    config = VAEConfig(input_dim=(1, 28, 28), latent_dim=10, reconstruction_loss="bce")
    model = VAE(config, encoder=Encoder(), decoder=Decoder()).to(x.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        optimizer.zero_grad()
        out = model({"data": x}, epoch=1, dataset_size=3000)
        out.loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    return x.shape[0] / timed(step, x.device, repeats=steps)


@torch.no_grad()
def encoder_pass(x: torch.Tensor, precision: str, steps: int) -> float:
    model = build_model(CONFIG).to(x.device).eval()

    def run() -> None:
        with autocast(x.device, precision):
            model.encode(x)

    return x.shape[0] / timed(run, x.device, repeats=steps)


def seeds_at_once(k: int, device: str, subset: int = 2000, epochs: int = 2) -> tuple[float, float]:
    """(seconds for K separate runs, seconds for one stack of K): ``epochs`` on 60 % of
    ``subset`` images (1,200 by default) at batch 100, the training only (sessions are opened
    before the clock starts)."""
    data = DataConfig("mnist5k", subset=subset)
    config = TrainConfig(epochs=epochs, batch_size=100)
    choice = ModelConfig(latents=10)
    lead = start_session(data, config, choice, device)
    loaded = lead.train_feed.data

    def opened(seed: int) -> Session:
        session = open_session(lead.model_config, lead.data_config,
                               replace(lead.train_config, seed=seed), device, loaded)  # fmt: skip
        if session.device.type == "cpu":
            session.noise = torch.Generator()
            session.noise.set_state(torch.get_rng_state())
        return session

    separate = [opened(seed) for seed in range(k)]
    start = time.perf_counter()
    for session in separate:
        fit(session)
    sync(lead.device)
    separate_s = time.perf_counter() - start
    stack = stack_sessions([opened(seed) for seed in range(k)])
    start = time.perf_counter()
    fit_stack(stack)
    sync(lead.device)
    return separate_s, time.perf_counter() - start


def help_cold_start(runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "vaetool", "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--large-batch", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--seeds", default="1,2,4,8")
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(f"device: {device_name(device)}; torch {torch.__version__}\n")
    print("| batch | vaetool plain | vaetool fast | vaetool fast bf16 | pythae 0.1.2 |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for size in (100, args.large_batch):
        x = batch_of(size, device)
        plain = vaetool_step(x, False, "fp32", args.steps)
        fast = vaetool_step(x, True, "fp32", args.steps)
        bf16 = vaetool_step(x, True, "bf16", args.steps)
        peer = pythae_step(x, args.steps)
        peer_text = "not installed" if peer is None else f"{peer:,.0f}"
        print(f"| {size} | {plain:,.0f} | {fast:,.0f} | {bf16:,.0f} | {peer_text} |")
    x = batch_of(args.large_batch, device)
    print(f"\nencoder pass at batch {args.large_batch}: {encoder_pass(x, 'fp32', args.steps):,.0f} "
          f"img/s fp32, {encoder_pass(x, 'bf16', args.steps):,.0f} img/s bf16\n")  # fmt: skip
    print("| K seeds | K separate runs, s | one stack of K, s | speed-up |")
    print("| ---: | ---: | ---: | ---: |")
    for k in (int(s) for s in args.seeds.split(",")):
        separate, stacked = seeds_at_once(k, str(device))
        print(f"| {k} | {separate:.2f} | {stacked:.2f} | {separate / stacked:.2f}× |")
    print(f"\n`vaetool --help` cold start: {help_cold_start():.3f} s (median of 5)")


if __name__ == "__main__":
    main()
