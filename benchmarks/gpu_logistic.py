"""Throughput of the torch back end of batched logistic regression (GPU or CPU).

Usage::

    python benchmarks/gpu_logistic.py --device cuda [--dtype float64] [--permutations 10000]
    python benchmarks/gpu_logistic.py --device torch --permutations 20     # torch on the CPU

Two measurements on breast-cancer-sized problems (scikit-learn's breast cancer data, features
standardised, 200 training rows x 30 features, the other 369 rows for validation,
``LogisticRegression()``):

1. Fits per second of the trainer alone (``fit_predict`` of a batch of random subsets, sizes
   uniform in 2%..95% of the rows, predictions on the validation rows; numpy arrays in and out,
   so every timing includes the transfers), for batches of 1k to 64k subsets. Each batch is
   timed ``--repeats`` times after a warm-up (the warm starts of both class patterns, CUDA
   kernels), and the best time is kept.
2. A full TMC-Shapley run (``dataworth.get_method("tmc-shapley")``, ``--permutations``
   permutations, tolerance 0.01, seed 0, one process) on ``BatchedUtility(..., device=...)``:
   wall time, subsets fitted, subsets per trainer call (TMC evaluates the prefixes of one
   permutation at a time, 32 per call while it checks for truncation), and how far its values
   are from the numpy run's with the same seed.

Both are also run with the numpy trainer for reference (``--no-numpy`` skips that). The GPU
figures must be measured on a GPU machine: ``--device cuda`` needs a CUDA build of torch
(``pip install "dataworth[torch]"``). Set ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS`` for
comparable CPU figures; the table states the thread counts used.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from typing import Any

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import dataworth
from dataworth.data import Dataset
from dataworth.utility.batched import BatchedUtility, make_trainer
from dataworth.utility.batched.torch_logistic import make_torch_trainer

N_TRAIN = 200


def problem() -> tuple[Dataset, Dataset]:
    """Standardised breast cancer data: 200 training rows, 369 validation rows (seeded split)."""
    X, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(0).permutation(y.size)
    X, y = X[order], y[order]
    mean, std = X[:N_TRAIN].mean(axis=0), X[:N_TRAIN].std(axis=0)
    X = (X - mean) / std
    return Dataset(X[:N_TRAIN], y[:N_TRAIN]), Dataset(X[N_TRAIN:], y[N_TRAIN:])


def subsets(y: np.ndarray, size: int, seed: int) -> np.ndarray:
    """``size`` random 0/1 weight rows with both classes present."""
    rng = np.random.default_rng(seed)
    W = rng.random((size, y.size)) < rng.uniform(0.02, 0.95, size=(size, 1))
    W[:, np.flatnonzero(y == 0)[0]] = W[:, np.flatnonzero(y == 1)[0]] = True
    return W.astype(np.float64)


def make(kind: str, train: Dataset, dtype: str) -> Any:
    model = LogisticRegression()
    if kind == "numpy":
        return make_trainer(model, train.X, train.y, 2)
    device = "cpu" if kind == "torch" else kind
    return make_torch_trainer(model, train.X, train.y, 2, device, dtype=dtype)


def fits_per_second(
    trainer: Any, train: Dataset, valid: Dataset, batch: int, repeats: int
) -> float:
    W = subsets(train.y, batch, seed=batch)
    trainer.fit_predict(W[:64], valid.X)  # warm-up: warm starts, kernels, allocator
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        trainer.fit_predict(W, valid.X)  # returns numpy: includes the device synchronisation
        best = min(best, time.perf_counter() - start)
    return batch / best


class Counting:
    """Wraps a trainer and counts its calls and the subsets fitted."""

    def __init__(self, trainer: Any) -> None:
        self.trainer, self.calls, self.fits = trainer, 0, 0

    def fit_predict(self, weights: np.ndarray, X_eval: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.fits += weights.shape[0]
        return self.trainer.fit_predict(weights, X_eval)


def tmc(device: str, train: Dataset, valid: Dataset, n_perm: int) -> dict[str, Any]:
    utility = BatchedUtility(LogisticRegression(), train, valid, device=device)
    counter = Counting(utility.trainer)
    utility.trainer = counter
    method = dataworth.get_method("tmc-shapley")(budget=n_perm, tolerance=0.01, random_state=0)
    start = time.perf_counter()
    values = method.fit(utility).result_.values
    seconds = time.perf_counter() - start
    return {
        "device": utility.device,
        "seconds": seconds,
        "fits": counter.fits,
        "calls": counter.calls,
        "values": values,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--device",
        default="cuda",
        help="torch device: cuda, cuda:N, or torch (the CPU); default cuda",
    )
    parser.add_argument(
        "--dtype",
        default="float64",
        choices=["float64", "float32"],
        help="trainer dtype for the fits/s table (TMC always float64)",
    )
    parser.add_argument(
        "--batches",
        default="1024,4096,16384,65536",
        help="comma-separated batch sizes (subsets per fit_predict call)",
    )
    parser.add_argument("--permutations", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-numpy", action="store_true", help="skip the numpy reference runs")
    args = parser.parse_args(argv)
    kind = "torch" if args.device in ("torch", "cpu") else args.device
    batches = [int(b) for b in args.batches.split(",") if b.strip()]

    import torch

    if kind != "torch" and not torch.cuda.is_available():
        print(
            f"--device {args.device}: CUDA is not available to torch {torch.__version__}; "
            "run on a GPU machine, or use --device torch for the CPU.",
            file=sys.stderr,
        )
        return 2
    where = "CPU" if kind == "torch" else torch.cuda.get_device_name(torch.device(kind))
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    print(f"# torch back end of batched logistic regression: {where}")
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, numpy "
        f"{np.__version__}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, "
        f"OMP_NUM_THREADS={threads}"
    )
    train, valid = problem()
    print(
        f"data: breast cancer, {train.n_samples} training rows x {train.X.shape[1]} features, "
        f"{valid.n_samples} validation rows, LogisticRegression(), dtype {args.dtype}\n"
    )

    kinds = [kind] + ([] if args.no_numpy else ["numpy"])
    print("| subsets per call | " + " | ".join(f"{k} fits/s" for k in kinds) + " |")
    print("|---:|" + "---:|" * len(kinds))
    trainers = {k: make(k, train, args.dtype) for k in kinds}
    for batch in batches:
        rates = [fits_per_second(trainers[k], train, valid, batch, args.repeats) for k in kinds]
        print(f"| {batch:,} | " + " | ".join(f"{r:,.0f}" for r in rates) + " |", flush=True)

    print(f"\nTMC-Shapley, {args.permutations:,} permutations, tolerance 0.01, float64:\n")
    device = "torch" if kind == "torch" else kind
    runs = [tmc(d, train, valid, args.permutations) for d in [device, "numpy"][: len(kinds)]]
    print("| device | seconds | permutations/s | subsets fitted | subsets per call | fits/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in runs:
        print(
            f"| {r['device']} | {r['seconds']:.1f} | {args.permutations / r['seconds']:,.1f} | "
            f"{r['fits']:,} | {r['fits'] / max(r['calls'], 1):.1f} | "
            f"{r['fits'] / r['seconds']:,.0f} |"
        )
    if len(runs) == 2:
        a, b = runs[0]["values"], runs[1]["values"]
        print(
            f"\nvalues vs numpy: max |difference| {np.abs(a - b).max():.2e} "
            f"(value scale {np.abs(b).max():.2e}), correlation {np.corrcoef(a, b)[0, 1]:.6f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
