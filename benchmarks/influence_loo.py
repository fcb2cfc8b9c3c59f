"""Influence of L2 logistic regression against real leave-one-out refits, over seeds.

    python benchmarks/influence_loo.py      # about 1-2 minutes on 2 cores

Synthetic: 500 rows, 3 features, logistic labels, 300 training / 200 valuation rows, C=1
(the setting of tests/influence/test_influence.py, seeds 0-7). Real: 80 standardised breast-cancer
training rows (30 features) and 60 valuation rows, seeds 0-4. Prints the Pearson correlation of
the influence values with the change in mean valuation log-loss when each row is refitted away,
and writes every correlation to ``benchmarks/influence_loo.json`` (``--out``), which
``benchmarks/tables.py`` renders into the README.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from dataworth.datasets import load_dataset
from dataworth.influence import LinearInfluence, influence_values

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import run_record  # noqa: E402


def pearson_vs_loo(Xt, yt, Xv, yv) -> float:
    values = influence_values(LinearInfluence(LogisticRegression(C=1.0), Xt, yt), Xv, yv).values

    def loss(rows: np.ndarray) -> float:
        fit = LogisticRegression(C=1.0, tol=1e-10, max_iter=10000).fit(Xt[rows], yt[rows])
        return float(log_loss(yv, fit.predict_proba(Xv), labels=[0, 1]))

    n = len(yt)
    full = loss(np.arange(n))
    loo = np.array([loss(np.delete(np.arange(n), i)) for i in range(n)]) - full
    return float(np.corrcoef(values, loo)[0, 1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic-seeds", type=int, default=8)
    parser.add_argument("--real-seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=HERE / "influence_loo.json")
    args = parser.parse_args(argv)
    record = run_record("influence_loo.py")
    record["load_average_at_start"] = os.getloadavg()[0]
    started = time.perf_counter()
    settings = []
    pearsons = []
    for seed in range(args.synthetic_seeds):
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(500, 3))
        y = (rng.random(500) < 1 / (1 + np.exp(-X @ np.array([1.0, -1.0, 0.5])))).astype(int)
        r = pearson_vs_loo(X[:300], y[:300], X[300:], y[300:])
        pearsons.append(r)
        print(f"synthetic 300 rows, seed {seed}: Pearson {r:.4f}", flush=True)
    settings.append(
        {
            "data": "synthetic, 3 features, logistic labels",
            "train_rows": 300,
            "valid_rows": 200,
            "features": 3,
            "pearson_by_seed": pearsons,
        }
    )
    ds = load_dataset("breast_cancer")
    pearsons = []
    for seed in range(args.real_seeds):
        idx = np.random.default_rng(seed).permutation(ds.n_samples)[:140]
        X = np.asarray(ds.X, float)[idx]
        X = (X - X.mean(0)) / X.std(0)
        y = np.asarray(ds.y)[idx]
        r = pearson_vs_loo(X[:80], y[:80], X[80:], y[80:])
        pearsons.append(r)
        print(f"breast_cancer 80 rows, seed {seed}: Pearson {r:.4f}", flush=True)
    settings.append(
        {
            "data": "breast_cancer, standardised",
            "train_rows": 80,
            "valid_rows": 60,
            "features": 30,
            "pearson_by_seed": pearsons,
        }
    )
    record["seconds"] = time.perf_counter() - started
    record["settings"] = settings
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
