"""The whole vaetool pipeline from Python (docs/library.md shows and explains this file).

python examples/library.py [OUT]       # about a minute on a laptop CPU
"""

from __future__ import annotations

import sys
from pathlib import Path

import vaetool
from vaetool.analysis.traversal_plan import TraversalPlan
from vaetool.config import DataConfig, ModelConfig, TrainConfig

out = Path(sys.argv[1] if len(sys.argv) > 1 else "library-run")

# 1. Train a β-VAE on the embedded MNIST digits: out/model.safetensors + out/history.csv.
trained = vaetool.train(
    vaetool.TrainRequest(
        out,
        DataConfig("mnist5k"),
        TrainConfig(epochs=5, batch_size=25, keep="best"),
        ModelConfig(latents=16),
        force=True,
        device="cpu",
    )
)
checkpoint = trained.checkpoint
print("kept epoch", trained.result.kept_epoch, "of", len(trained.result.history))

# 2. Rank the factors by I(x; z_h) on 1,000 test images (q*: an upper bound per factor) and
#    show the consistent mixture estimate beside it.
ranked = vaetool.rank(
    vaetool.RankRequest(checkpoint, estimators=("qstar", "mixture"), device="cpu")
)
table = ranked.frame()  # pandas: rank, factor, mi, mi_mixture, mi_mixture_stderr, ...
summary = ranked.summary()
print(table[["factor", "mi", "mi_mixture", "aggregate_variance"]].head())
print("Σ_h I_h =", round(summary["sum_mi"], 2), "nats;", summary["sum_mi_is"])

# 3. Prune: reconstruction error keeping the top-k factors (paper 000, Table 1), with every
#    other ordering of the factors beside it, and Fig. 4.
pruned = vaetool.prune(
    vaetool.PruneRequest(checkpoint, compare=True, plot=out / "fig4.png", force=True, device="cpu")
)
print("SSE per image at each row:", [round(v, 1) for v in pruned.table.sse.tolist()])

# 4. Traverse the three most informative factors, and write the HTML report.
traversed = vaetool.traverse(
    vaetool.TraverseRequest(checkpoint, TraversalPlan(top=3), force=True, device="cpu")
)
page = vaetool.build_report(vaetool.ReportRequest(checkpoint, force=True, device="cpu"))
print("wrote", *traversed.written, page)

# 5. Any model's posterior, no checkpoint needed: (N, H) arrays of means and log-variances.
model = vaetool.load(checkpoint)
data = vaetool.load_dataset("mnist5k")
mu, logvar = model.encode(data.images(range(500)))
print(vaetool.rank_posterior(mu.detach(), logvar.detach()).frame().head(3))
