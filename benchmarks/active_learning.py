"""Batch active learning on a clean and on polluted pools: learning curves, labels saved.

    python benchmarks/active_learning.py            # 10 seeds; writes active_learning.md/.json
    python benchmarks/active_learning.py --seeds 5  # fewer seeds
    python benchmarks/active_learning.py --quick    # 2 seeds, 4 rounds, no files: a smoke run
    python benchmarks/active_learning.py --scaling standardise --seeds 5 --output first-run
                                                    # the first measurement (see docs/select.md)

Task: scikit-learn's digits, **classify the digits 0-4** with logistic regression. Features are
the pixel intensities divided by 16 (one common scale, so that Euclidean distances, which
KNN-Shapley, the value regressor and k-center greedy use, are those of the images;
``--scaling standardise`` standardises each pixel with the pool's statistics instead). A fixed
test split (30% of all images, drawn once with seed 12345, its 0-4 images) is used only to
measure accuracy. Every strategy of one seed starts from the same 50 random pool rows and buys
25 labels per round for 14 rounds (400 labels).

Scenarios (the pool is drawn from the other 70% of the images):

* ``clean``: the pool holds only images of 0-4, with their true labels.
* ``polluted``: the pool holds every image; the images of 5-9 (about half the pool) do not
  belong to the task (out-of-distribution), and the oracle labels them with a uniformly random
  class 0-4 (a labeller forced to pick one of the task's classes). Uncertainty sampling is
  drawn to them: the model is unsure on digits it has never seen, and their random labels keep
  it unsure there.
* ``outliers``: the images of 0-4 plus 30% junk: blends of two images of different classes 0-4
  plus Gaussian pixel noise (sd 2 on the 0-16 scale), labelled uniformly at random. The noise
  makes them outliers in feature space, where k-center greedy (the diversity step of
  shapley-regression) is drawn: the value filter has to be nearly perfect. A stress case,
  reported as measured.

Target accuracies are fixed fractions (90%, 95%) of the accuracy of the same model trained on
*every* clean, correctly labelled task row of the pool. "Labels saved" = random's labels minus
the strategy's labels to first reach the target (linear interpolation between rounds), paired
by seed; a run that never reaches the target counts as the 400-label budget and the figure is a
bound (marked). Intervals: Student t over seeds, 95%.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from dataworth.apps.active_loop import (
    compare_strategies,
    format_reach_table,
    labels_to_reach,
    summarize_curves,
)

HERE = Path(__file__).resolve().parent
STRATEGIES = ["random", "uncertainty", "entropy", "shapley-regression", "influence"]
TARGET_FRACTIONS = (0.90, 0.95)
TEST_SEED = 12345


def _scale(Xp: np.ndarray, Xt: np.ndarray, scaling: str) -> tuple[np.ndarray, np.ndarray]:
    """``unit``: pixels / 16; ``standardise``: per-pixel mean and sd of the pool (features only)."""
    if scaling == "unit":
        return Xp / 16.0, Xt / 16.0
    mean, std = Xp.mean(0), Xp.std(0)
    std = np.where(std > 0, std, 1.0)
    return (Xp - mean) / std, (Xt - mean) / std


def make_scenario(name: str, seed: int, scaling: str = "unit") -> dict[str, Any]:
    """Pool features, oracle labels, junk mask, test split and clean reference rows."""
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float64)
    perm = np.random.default_rng(TEST_SEED).permutation(y.size)
    n_test = int(0.3 * y.size)
    test, rest = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    test = test[y[test] < 5]
    rng = np.random.default_rng(seed)
    if name in ("clean", "polluted"):
        rows = rest if name == "polluted" else rest[y[rest] < 5]
        Xp, y_true = X[rows], y[rows]
        junk = y_true >= 5
        oracle = y_true.copy()
        oracle[junk] = rng.integers(5, size=int(junk.sum()))
    elif name == "outliers":
        task = rest[y[rest] < 5]
        Xc, yc = X[task], y[task]
        n_junk = int(round(0.3 / 0.7 * yc.size))
        a = rng.integers(yc.size, size=n_junk)
        b = rng.integers(yc.size, size=n_junk)
        same = yc[a] == yc[b]
        while same.any():
            b[same] = rng.integers(yc.size, size=int(same.sum()))
            same = yc[a] == yc[b]
        blends = np.clip(0.5 * (Xc[a] + Xc[b]) + rng.normal(scale=2.0, size=(n_junk, 64)), 0, 16)
        Xp = np.vstack([Xc, blends])
        y_true = np.concatenate([yc, np.full(n_junk, -1)])
        junk = np.r_[np.zeros(yc.size, bool), np.ones(n_junk, bool)]
        oracle = np.concatenate([yc, rng.integers(5, size=n_junk)])
    else:
        raise ValueError(f"unknown scenario {name!r}")
    order = rng.permutation(oracle.size)
    Xp, oracle, junk, y_true = Xp[order], oracle[order], junk[order], y_true[order]
    Xp, Xt = _scale(Xp, X[test], scaling)
    return {
        "X_pool": Xp,
        "y_oracle": oracle,
        "junk": junk,
        "X_test": Xt,
        "y_test": y[test],
        "clean_X": Xp[~junk],
        "clean_y": y_true[~junk],
    }


def reference_accuracy(sc: dict[str, Any]) -> float:
    """Test accuracy with every clean, correctly labelled task row of the pool."""
    model = LogisticRegression(max_iter=1000).fit(sc["clean_X"], sc["clean_y"])
    return float(np.mean(model.predict(sc["X_test"]) == sc["y_test"]))


def run_scenario(
    name: str, seeds: list[int], rounds: int, n_jobs: int, scaling: str
) -> dict[str, Any]:
    started = time.perf_counter()
    curves: dict[str, list[Any]] = {s: [] for s in STRATEGIES}
    junk_share: dict[str, list[float]] = {s: [] for s in STRATEGIES}
    refs = []
    for seed in seeds:  # the pool's junk labels depend on the seed: one scenario per seed
        sc = make_scenario(name, seed, scaling)
        refs.append(reference_accuracy(sc))
        got = compare_strategies(
            STRATEGIES,
            sc["X_pool"],
            sc["y_oracle"],
            sc["X_test"],
            sc["y_test"],
            seeds=[seed],
            initial=50,
            batch=25,
            rounds=rounds,
            n_jobs=n_jobs,
        )
        for s in STRATEGIES:
            curves[s] += got[s]
            c = got[s][0]
            junk_share[s].append(float(sc["junk"][c.bought[c.n_initial :]].mean()))
    reference = float(np.mean(refs))
    summary = summarize_curves(curves)
    reach = {
        f"{frac:.2f}": labels_to_reach(curves, round(frac * reference, 4))
        for frac in TARGET_FRACTIONS
    }
    return {
        "scenario": name,
        "n_pool": int(sc["X_pool"].shape[0]),
        "junk_fraction": float(sc["junk"].mean()),
        "n_test": int(sc["X_test"].shape[0]),
        "reference_accuracy": reference,
        "n_labels": summary[STRATEGIES[0]].n_labels.tolist(),
        "curves": {
            s: {
                "mean": summary[s].mean.tolist(),
                "low": summary[s].low.tolist(),
                "high": summary[s].high.tolist(),
                "per_seed": [c.accuracy.tolist() for c in curves[s]],
                "junk_share_bought": junk_share[s],
                "select_seconds": [c.select_seconds for c in curves[s]],
            }
            for s in STRATEGIES
        },
        "reach": {k: [r.to_dict() for r in rows] for k, rows in reach.items()},
        "_reach_rows": reach,
        "seconds": time.perf_counter() - started,
    }


def markdown(results: list[dict[str, Any]], command: str, seeds: list[int], scaling: str) -> str:
    out = [
        "# Batch active learning: clean and polluted pools",
        "",
        f"Produced by `{command}` ({len(seeds)} seeds: {seeds}; Python {platform.python_version()},"
        f" {platform.machine()}; features: {scaling}). Protocol: see the docstring of"
        " `benchmarks/active_learning.py` and `docs/select.md`.",
        "",
    ]
    for res in results:
        n_labels = res["n_labels"]
        show = list(range(0, len(n_labels), 2))
        if show[-1] != len(n_labels) - 1:
            show.append(len(n_labels) - 1)
        out += [
            f"## {res['scenario']}",
            "",
            f"Pool {res['n_pool']} rows ({res['junk_fraction']:.0%} junk), test {res['n_test']}"
            f" rows; accuracy with every clean label: {res['reference_accuracy']:.3f}."
            f" Wall time {res['seconds']:.0f} s.",
            "",
            "Test accuracy (mean over seeds [95% t interval]) by labels bought:",
            "",
            "| strategy | " + " | ".join(str(n_labels[j]) for j in show) + " | junk share of "
            "bought labels | selection s/run |",
            "|---|" + "---|" * len(show) + "---|---|",
        ]
        for s, c in res["curves"].items():
            cells = [f"{c['mean'][j]:.3f} [{c['low'][j]:.3f}, {c['high'][j]:.3f}]" for j in show]
            out.append(
                f"| {s} | " + " | ".join(cells) + f" | {np.mean(c['junk_share_bought']):.2f} "
                f"| {np.mean(c['select_seconds']):.1f} |"
            )
        for frac, rows in res["_reach_rows"].items():
            out += [
                "",
                f"Labels to reach {float(frac):.0%} of the all-clean accuracy "
                f"(target {rows[0].target:.4f}; baseline: random):",
                "",
                format_reach_table(rows),
            ]
        out.append("")
    out += [
        "`>=`: some runs never reached the target within the budget and count as the budget, "
        "so the mean is a lower bound; `~`: the saving involves such runs (a bound, not an "
        "estimate). Labels saved are paired by seed (same initial rows).",
        "",
    ]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=14)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--scenarios", default="clean,polluted,outliers")
    parser.add_argument("--quick", action="store_true", help="2 seeds, 4 rounds, no files")
    parser.add_argument("--output", default="active_learning", help="file stem under benchmarks/")
    parser.add_argument("--scaling", choices=["unit", "standardise"], default="unit")
    args = parser.parse_args()
    seeds = list(range(2 if args.quick else args.seeds))
    rounds = 4 if args.quick else args.rounds
    command = "python benchmarks/active_learning.py " + " ".join(sys.argv[1:])
    results = []
    with threadpool_limits(1):
        for name in args.scenarios.split(","):
            res = run_scenario(name, seeds, rounds, args.n_jobs, args.scaling)
            results.append(res)
            print(f"{name}: {res['seconds']:.0f} s", flush=True)
    text = markdown(results, command.strip(), seeds, args.scaling)
    print(text)
    if args.quick:
        return
    (HERE / f"{args.output}.md").write_text(text)
    payload = {
        "command": command.strip(),
        "seeds": seeds,
        "strategies": STRATEGIES,
        "initial": 50,
        "batch": 25,
        "rounds": rounds,
        "target_fractions": TARGET_FRACTIONS,
        "scaling": args.scaling,
        "python": platform.python_version(),
        "results": [{k: v for k, v in r.items() if k != "_reach_rows"} for r in results],
    }
    (HERE / f"{args.output}.json").write_text(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
