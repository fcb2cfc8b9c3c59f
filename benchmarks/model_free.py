"""Noisy-label detection by model-free values (LAVA, CGS) against KNN-Shapley and Data-OOB.

Usage::

    python benchmarks/model_free.py [--seeds 5] [--datasets breast_cancer,digits]
                                    [--parts detection,cgs-variants,lava-epsilon] [--merge]
                                    [--out benchmarks/model_free.md]

Writes the JSON (``--out`` with ``.json``) and the markdown next to it, whose tables are
``benchmarks/tables.py``'s ``model_free.*``; ``--merge`` keeps the parts not run from the
existing JSON. Three parts:

**detection** (``--seeds``, ``--datasets``). For each dataset and seed: a stratified split of
the bundled data into training (80%) and valuation (20%) rows
(``Dataset.split(0.2, random_state=seed)``); features standardised with the training rows'
statistics; 10% of the *training* labels flipped to another class
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

**cgs-variants** (``--variant-seeds``, default 3; breast_cancer, digits, wine, iris): the same
split and noise; ``cgs`` as dataworth computes it (class-pair-wise: every pair of classes is one
+1/-1 problem on its rows, a row's score the mean over the pairs of its class) against
one-vs-rest as in the authors' released code, but on all other rows instead of a balanced random
sample of them (class ``k`` against every other row, one problem per class on all rows, a row
scored in the problem of its own class). Same kernel, same unit rows, same ridge (1e-6). AUROC
of minus the value for "flipped", wall seconds.

**lava-epsilon** (``--variant-seeds``; breast_cancer, digits): LAVA's AUROC for a relative
entropic regularisation ``epsilon`` of 0.02, 0.05 (the default), 0.1 and 0.2.
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
from dataworth.methods.cgs import arccos_gram

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import tables  # noqa: E402

PARTS = ("detection", "cgs-variants", "lava-epsilon")
CGS_DATASETS = ("breast_cancer", "digits", "wine", "iris")
LAVA_DATASETS = ("breast_cancer", "digits")
EPSILONS = (0.02, 0.05, 0.1, 0.2)
CGS_RIDGE = 1e-6
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
    noisy, valid, flipped = noisy_split(name, seed)
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


def noisy_split(name: str, seed: int) -> tuple[Dataset, Dataset, np.ndarray]:
    """The protocol of every part: split 80/20, standardise, flip 10% of the training labels."""
    train, valid = load_dataset(name).split(0.2, random_state=seed)
    train, valid = standardise(train, valid)
    noisy, flipped = flip_labels(train, NOISE, random_state=seed)
    return noisy, valid, flipped


def cgs_one_vs_rest(train: Dataset) -> np.ndarray:
    """CGS values with one problem per class on all rows (class k = +1, every other row = -1),
    each row scored in its own class's problem; same kernel, unit rows and ridge as ``cgs``."""
    from scipy.linalg import cho_factor, cho_solve

    X = np.asarray(train.X, dtype=np.float64)
    X = X - X.mean(axis=0)
    std = X.std(axis=0)
    X = X / np.where(std > 0, std, 1.0)
    X = X / np.linalg.norm(X, axis=1)[:, None]
    A = arccos_gram(X)
    A[np.diag_indices_from(A)] += CGS_RIDGE
    inverse = cho_solve(cho_factor(A, lower=True), np.eye(A.shape[0]))
    diag = np.diag(inverse)
    y = np.asarray(train.y)
    scores = np.empty(y.shape[0])
    for k in np.unique(y):
        mine = y == k
        alpha = inverse @ np.where(mine, 1.0, -1.0)
        scores[mine] = (alpha**2 / diag)[mine]
    return -scores


def cgs_variants(seeds: list[int]) -> dict[str, Any]:
    """AUROC and seconds of class-pair-wise ``cgs`` and the one-vs-rest variant."""
    out: dict[str, Any] = {
        "variants": ["pairwise", "one-vs-rest"],
        "seeds": seeds,
        "ridge": CGS_RIDGE,
        "datasets": {},
    }
    for name in CGS_DATASETS:
        runs = []
        for seed in seeds:
            noisy, valid, flipped = noisy_split(name, seed)
            run: dict[str, Any] = {"seed": seed}
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                vals = value("cgs", noisy, valid, ridge=CGS_RIDGE).values
            run["pairwise"] = {"seconds": time.perf_counter() - started, **detection(vals, flipped)}
            started = time.perf_counter()
            vals = cgs_one_vs_rest(noisy)
            run["one-vs-rest"] = {
                "seconds": time.perf_counter() - started,
                **detection(vals, flipped),
            }
            runs.append(run)
            print(
                f"cgs variants {name} seed {seed}: {run['pairwise']['auroc']:.3f} / "
                f"{run['one-vs-rest']['auroc']:.3f}",
                flush=True,
            )
        out["datasets"][name] = {
            "n_train": noisy.n_samples,
            "n_classes": int(np.unique(noisy.y).size),
            "runs": runs,
        }
    return out


def lava_epsilon(seeds: list[int]) -> dict[str, Any]:
    """LAVA's AUROC and seconds for each relative epsilon."""
    out: dict[str, Any] = {"epsilons": list(EPSILONS), "seeds": seeds, "datasets": {}}
    for name in LAVA_DATASETS:
        runs = []
        for seed in seeds:
            noisy, valid, flipped = noisy_split(name, seed)
            run: dict[str, Any] = {"seed": seed}
            for eps in EPSILONS:
                started = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = value("lava", noisy, valid, epsilon=eps)
                run[str(eps)] = {
                    "seconds": time.perf_counter() - started,
                    "converged": bool(res.metadata.get("converged")),
                    **detection(res.values, flipped),
                }
            runs.append(run)
            shown = ", ".join(f"{e:g} {run[str(e)]['auroc']:.3f}" for e in EPSILONS)
            print(f"lava epsilon {name} seed {seed}: {shown}", flush=True)
        out["datasets"][name] = {"n_train": noisy.n_samples, "runs": runs}
    return out


def write_report(results: dict[str, Any], path: Path) -> None:
    """The markdown of ``results`` (as in the JSON); tables from ``tables.py``."""
    lines = ["# Noisy-label detection without a model: LAVA and CGS", ""]
    if "datasets" in results:
        lines += [
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
                tables.block(f"model_free.detection:{name}", results),
                "",
            ]
    if "cgs_variants" in results:
        part = results["cgs_variants"]
        lines += [
            "## CGS: class pairs (dataworth) or one class against all other rows",
            "",
            f"Command: `{part['command']}` ({part['date']}). Same protocol, seeds "
            f"{part['seeds']}; mean ± sd (over seeds) of the AUROC, mean seconds.",
            "",
            tables.block("model_free.cgs_variants", results),
            "",
        ]
    if "lava_epsilon" in results:
        part = results["lava_epsilon"]
        lines += [
            "## LAVA: relative epsilon",
            "",
            f"Command: `{part['command']}` ({part['date']}). Same protocol, seeds "
            f"{part['seeds']}; AUROC mean ± sd over seeds, best per dataset in bold.",
            "",
            tables.block("model_free.lava_epsilon", results),
            "",
        ]
    path.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--variant-seeds", type=int, default=3)
    parser.add_argument("--datasets", default="breast_cancer,digits")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"subset of {','.join(PARTS)}")
    parser.add_argument(
        "--merge", action="store_true", help="keep the parts not run from the existing JSON"
    )
    parser.add_argument("--out", type=Path, default=HERE / "model_free.md")
    args = parser.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    if unknown := set(parts) - set(PARTS):
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    try:
        import ot

        pot = ot.__version__
    except ImportError:
        sys.exit('this benchmark needs POT for lava: pip install "dataworth[ot]"')
    json_path = args.out.with_suffix(".json")
    results: dict[str, Any] = {}
    if args.merge and json_path.exists():
        results = json.loads(json_path.read_text())
    command = "python benchmarks/model_free.py " + " ".join(sys.argv[1:])
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")

    def save() -> None:
        json_path.write_text(json.dumps(results, indent=2) + "\n")
        write_report(json.loads(json_path.read_text()), args.out)

    with threadpool_limits(limits=1):
        if "detection" in parts:
            results.update(
                {
                    "command": command,
                    "date": date,
                    "python": platform.python_version(),
                    "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores (shared)",
                    "pot": pot,
                    "seeds": list(range(args.seeds)),
                    "datasets": {},
                }
            )
            for name in args.datasets.split(","):
                runs = []
                for seed in results["seeds"]:
                    print(f"{name} seed {seed}", flush=True)
                    runs.append(run_one(name, seed))
                results["datasets"][name] = {"runs": runs, "summary": summarise(runs)}
                save()
        seeds = list(range(args.variant_seeds))
        meta = {"command": command, "date": date, "pot": pot}
        if "cgs-variants" in parts:
            results["cgs_variants"] = {**meta, **cgs_variants(seeds)}
            save()
        if "lava-epsilon" in parts:
            results["lava_epsilon"] = {**meta, **lava_epsilon(seeds)}
            save()
    print(f"wrote {args.out} and {json_path}")


if __name__ == "__main__":
    main()
