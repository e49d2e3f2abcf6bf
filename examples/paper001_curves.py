"""Paper 001 Figs. 7–8 from run folders: the categorical code's VMI term (lower-bound curve) and
its KL to the uniform prior (upper bound on I(x; c)) per epoch, mean ± sd over seeds.

    python examples/paper001_curves.py docs/figures/p001-curves.png \
        "ELBO=docs/studies/paper001/runs/vmi_lambda=0.0/seed-*" \
        "VMI λ 1=docs/studies/paper001/runs/vmi_lambda=1.0/seed-*"

Each LABEL=GLOB (the label without "=") names run folders (their history.csv: val_mi_vmi and
val_kl_code, which the `vmi` objective writes; λ = 0 trains the plain ELBO with Q fitted
alongside).
"""

from __future__ import annotations

import glob
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def curves(pattern: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(epochs, {column: (runs, epochs)}) of the run folders matching ``pattern``."""
    folders = sorted(glob.glob(pattern))
    if not folders:
        raise SystemExit(f"{pattern}: no run folders")
    frames = [pd.read_csv(Path(f) / "history.csv") for f in folders]
    epochs = min(len(f) for f in frames)
    columns = ("val_mi_vmi", "val_kl_code")
    return frames[0]["epoch"].to_numpy()[:epochs], {
        c: np.stack([f[c].to_numpy()[:epochs] for f in frames]) for c in columns
    }


def main(out: str, groups: list[str]) -> None:
    figure = Figure(figsize=(9.0, 3.2), dpi=120)
    titles = {"val_mi_vmi": "Fig. 7: VMI term H + E log Q(c | x̃)",
              "val_kl_code": "Fig. 8: KL(q(c|x) ‖ U_K), upper bound"}  # fmt: skip
    axes = {c: figure.add_subplot(1, 2, i + 1) for i, c in enumerate(titles)}
    for group in groups:
        label, pattern = group.split("=", 1)  # a glob may hold "=" (point=value folders)
        epochs, values = curves(pattern)
        for column, ax in axes.items():
            mean, sd = values[column].mean(0), values[column].std(0)
            ax.plot(epochs, mean, label=f"{label} ({values[column].shape[0]} seeds)")
            ax.fill_between(epochs, mean - sd, mean + sd, alpha=0.2)
    for column, ax in axes.items():
        ax.axhline(np.log(10), color="0.6", lw=0.8, ls="--")
        ax.set_title(titles[column], fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation [nats]")
        ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
