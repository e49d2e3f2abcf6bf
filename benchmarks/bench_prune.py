"""Time the `vaetool prune` tables on mnist5k (issue 5). Not a test: prints markdown.

    python benchmarks/bench_prune.py [--checkpoint CKPT] [--device auto]

Without --checkpoint, trains a conv28 model (H = 128, 2 epochs) on mnist5k into a temporary
folder first (not timed). Each table is timed end to end as `vaetool prune` runs it: load,
rank (q* fit on the 1,000 test images), one reconstruction pass per ranking, probes.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from timing import device_name, sync

from vaetool.config import DataConfig, TrainConfig
from vaetool.device import resolve_device
from vaetool.workflows import PruneRequest, TrainRequest, prune, train_run

CASES = {
    "reconstruction, default 10 rows (Table 1)": {},
    "reconstruction + --compare (5 more orders)": {"compare": True},
    "classify, 10 rows x 3 probe seeds (Table 2)": {"task": "classify"},
    "classify --refit (60 more probes)": {"task": "classify", "refit": True},
}


def checkpoint_for(args: argparse.Namespace, folder: Path) -> Path:
    if args.checkpoint:
        return Path(args.checkpoint)
    request = TrainRequest(folder / "run", DataConfig("mnist5k"), TrainConfig(epochs=2),
                           device=args.device)  # fmt: skip
    return train_run(request).checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    name = device_name(device)
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = checkpoint_for(args, Path(folder))
        prune(PruneRequest(checkpoint, device=str(device)))  # warm-up
        print(f"device: {name}; torch {torch.__version__}; {checkpoint.name}\n")
        print("| table | s |\n| --- | ---: |")
        for label, options in CASES.items():
            start = time.perf_counter()
            prune(PruneRequest(checkpoint, device=str(device), **options))
            sync(device)
            print(f"| {label} | {time.perf_counter() - start:.2f} |")


if __name__ == "__main__":
    main()
