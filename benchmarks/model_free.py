"""Noisy-label detection by model-free values (LAVA, CGS) against KNN-Shapley and Data-OOB.

Usage::

    python benchmarks/model_free.py [--seeds 5] [--datasets breast_cancer,digits]
                                    [--out benchmarks/model_free.md]

For each dataset and seed: a stratified split of the bundled data into training (80%) and
valuation (20%) rows (``Dataset.split(0.2, random_state=seed)``); features standardised with the
training rows' statistics; 10% of the *training* labels flipped to another class
(``flip_labels(train, 0.1, random_state=seed)``, which returns the flipped rows = ground truth).
Every method values the noisy training rows; a row's suspicion score is minus its value, and the
table reports the AUROC of that score for "this row was flipped", the share of flipped rows
among the 10% lowest-valued rows (recall at the noise rate) and the wall time of the
``dataworth.value`` call (one process, BLAS limited to one thread).

Methods: ``lava`` and ``cgs`` with their defaults; ``knn-shapley`` (K=5, exact, no training);
``data-oob`` (logistic regression) twice: stopped after the wall time of the slower of lava and
cgs on the same seed (``stop=MaxTime(t)``, so "at similar wall time"; Data-OOB draws bags in
rounds of 64 and checks the clock between rounds, so it runs at least one round; the number of
bags it reached is reported), and with its default budget of 200 bags. Rows that no bag left out
get NaN from Data-OOB; they are scored as the mean (neutral) and counted. One more row,
``lava (noisy valuation set)``, runs LAVA against a valuation set whose labels are also 10%
flipped (``random_state=seed + 1000``), to show how much LAVA relies on a clean valuation set.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from dataworth import value
from dataworth.data import Dataset
from dataworth.datasets import flip_labels, load_dataset
from dataworth.engine.stopping import MaxTime

HERE = Path(__file__).resolve().parent
NOISE = 0.1
METHODS = [
    "lava",
    "lava (noisy valuation set)",
    "cgs",
    "knn-shapley",
    "data-oob (same time)",
    "data-oob (200 bags)",
]


def standardise(train: Dataset, valid: Dataset) -> tuple[Dataset, Dataset]:
    mean, std = train.X.mean(axis=0), train.X.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return train.replace(X=(train.X - mean) / std), valid.replace(X=(valid.X - mean) / std)


def detection(values: np.ndarray, flipped: np.ndarray) -> dict[str, float]:
    n = values.shape[0]
    nan = np.isnan(values)
    score = -np.where(nan, np.nanmean(values), values)
    truth = np.isin(np.arange(n), flipped)
    k = flipped.size
    lowest = np.argsort(-score, kind="stable")[:k]
    return {
        "auroc": float(roc_auc_score(truth, score)),
        "recall_at_noise_rate": float(truth[lowest].mean()) if k else float("nan"),
        "n_nan": int(nan.sum()),
    }


def run_one(name: str, seed: int) -> dict[str, Any]:
    train, valid = load_dataset(name).split(0.2, random_state=seed)
    train, valid = standardise(train, valid)
    noisy, flipped = flip_labels(train, NOISE, random_state=seed)
    out: dict[str, Any] = {"seed": seed, "n_train": noisy.n_samples, "n_flipped": int(flipped.size)}

    def timed(
        method: str, valuation: Dataset = valid, **params: Any
    ) -> tuple[np.ndarray, float, dict[str, Any]]:
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = value(method, noisy, valuation, random_state=seed, **params)
        return res.values.copy(), time.perf_counter() - started, res.metadata

    for method, params in (("lava", {}), ("cgs", {}), ("knn-shapley", {"k": 5})):
        vals, secs, meta = timed(method, **params)
        out[method] = {"seconds": secs, **detection(vals, flipped)}
        if method == "lava":
            out[method]["converged"] = bool(meta.get("converged"))
    noisy_valid, _ = flip_labels(valid, NOISE, random_state=seed + 1000)
    vals, secs, _ = timed("lava", noisy_valid)
    out["lava (noisy valuation set)"] = {"seconds": secs, **detection(vals, flipped)}
    budget_s = max(out["lava"]["seconds"], out["cgs"]["seconds"])
    vals, secs, meta = timed("data-oob", budget=100_000, stop=MaxTime(budget_s))
    out["data-oob (same time)"] = {
        "seconds": secs,
        "bags": int(meta.get("n_updates", 0)),
        **detection(vals, flipped),
    }
    vals, secs, meta = timed("data-oob", budget=200)
    out["data-oob (200 bags)"] = {
        "seconds": secs,
        "bags": int(meta.get("n_updates", 0)),
        **detection(vals, flipped),
    }
    return out


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for m in METHODS:
        rows = [r[m] for r in runs]
        entry = {}
        for key in ("auroc", "recall_at_noise_rate", "seconds", "bags", "n_nan"):
            if key in rows[0]:
                arr = np.array([row[key] for row in rows], dtype=float)
                entry[key] = float(arr.mean())
                entry[key + "_sd"] = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
        table[m] = entry
    return table


def write_report(results: dict[str, Any], path: Path) -> None:
    lines = [
        "# Noisy-label detection without a model: LAVA and CGS",
        "",
        f"Command: `{results['command']}`  ",
        f"Date: {results['date']}; Python {results['python']}; {results['machine']}; "
        f"POT {results['pot']}; BLAS limited to 1 thread.",
        "",
        f"10% of the training labels flipped; {len(results['seeds'])} seeds (mean ± sd). "
        "AUROC of minus the value for 'flipped'; recall = share of flipped rows among the "
        "10% lowest-valued; time = one `dataworth.value` call.",
        "",
    ]
    for name, block in results["datasets"].items():
        first = block["runs"][0]
        lines += [
            f"## {name} ({first['n_train']} training rows, {first['n_flipped']} flipped)",
            "",
            "| method | AUROC | recall at 10% | time (s) | bags |",
            "|---|---|---|---|---|",
        ]
        for m in METHODS:
            e = block["summary"][m]
            bags = f"{e['bags']:.0f}" if "bags" in e else ""
            lines.append(
                f"| {m} | {e['auroc']:.3f} ± {e['auroc_sd']:.3f} | "
                f"{e['recall_at_noise_rate']:.3f} ± {e['recall_at_noise_rate_sd']:.3f} | "
                f"{e['seconds']:.2f} | {bags} |"
            )
        lines.append("")
    path.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--datasets", default="breast_cancer,digits")
    parser.add_argument("--out", type=Path, default=HERE / "model_free.md")
    args = parser.parse_args()
    try:
        import ot

        pot = ot.__version__
    except ImportError:
        sys.exit('this benchmark needs POT for lava: pip install "dataworth[ot]"')
    results: dict[str, Any] = {
        "command": "python benchmarks/model_free.py " + " ".join(sys.argv[1:]),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores (shared)",
        "pot": pot,
        "seeds": list(range(args.seeds)),
        "datasets": {},
    }
    with threadpool_limits(limits=1):
        for name in args.datasets.split(","):
            runs = []
            for seed in results["seeds"]:
                print(f"{name} seed {seed}", flush=True)
                runs.append(run_one(name, seed))
            results["datasets"][name] = {"runs": runs, "summary": summarise(runs)}
            args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
            write_report(results, args.out)
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
