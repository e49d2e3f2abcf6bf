"""Train a small β-VAE on the embedded MNIST digits from Python, save it, load it back, encode.

python examples/train_and_inspect.py
"""

from __future__ import annotations

import torch

import vaetool
from vaetool.config import DataConfig, TrainConfig
from vaetool.data import split_indices
from vaetool.run import save_run


def main() -> None:
    result = vaetool.train(DataConfig("mnist5k"), TrainConfig(epochs=3, beta=4.0), latents=32)
    checkpoint = save_run(result, "example-run", force=True)
    model = vaetool.load(checkpoint)
    data = vaetool.load_dataset("mnist5k")
    test = split_indices(len(data)).test  # the same seeded split the model was evaluated on
    with torch.no_grad():
        mu, logvar = model.encode(data.images(test[:500]))
    print(f"{checkpoint}: mu {tuple(mu.shape)}, mean posterior variance per factor:")
    print(logvar.exp().mean(0).numpy().round(2))


if __name__ == "__main__":
    main()
