"""Batch active learning on a clean and on polluted pools: learning curves, labels saved.

    python benchmarks/active_learning.py            # final run: 10 fresh seeds (1000-1009),
                                                    # test split; writes active_learning.md/.json
    python benchmarks/active_learning.py --seeds 5  # fewer seeds
    python benchmarks/active_learning.py --quick    # 2 seeds, 4 rounds, no files: a smoke run
    python benchmarks/active_learning.py --split validation --first-seed 100 --seeds 20 \
        --strategies random,uncertainty --variants '{"sr-k5": {"k": 5, "n_folds": 5}}' \
        --scenarios polluted                        # a validation run (prints; --json PATH
                                                    # keeps the numbers; never writes the .md)

The strategies are the five of ``dataworth select`` plus ``sr-previous``: shapley-regression with
its previous defaults (``k=5``, 5 folds, raw values, no acquisition), for comparison
(``--variants`` replaces it). shapley-regression values the labelled rows as ``dataworth select``
does: the paper's exact KNN-Shapley through ``dataworth.api.valuer("knn-shapley", k=K)``
(:class:`KNNValuer`; ``K`` is 3, or a variant's ``"k"``); its other parameters are the strategy's.

Two tasks, four scenarios. A fixed test split (30% of the rows, drawn once with seed 12345) is
used only to measure accuracy in the final run. ``--split validation`` never reads it: it carves
30% of the other rows (seed 54321) as the evaluation set and draws the pool from the remaining
rows; every setting of ``shapley-regression`` was chosen that way, on seeds 100-119, before the
final run (see ``docs/select.md``).

**digits** (scikit-learn's digits, classify 0-4 with logistic regression; features are the
pixel intensities divided by 16, one common scale, so that Euclidean distances, which
KNN-Shapley, the value regressor and k-center greedy use, are those of the images;
``--scaling standardise`` standardises each pixel with the pool's statistics instead). Every
strategy of one seed starts from the same 50 random pool rows and buys 25 labels per round for
14 rounds (400 labels).

* ``clean``: the pool holds only images of 0-4, with their true labels.
* ``polluted``: the pool holds every image; the images of 5-9 (about half the pool) do not
  belong to the task (out-of-distribution), and the oracle labels them with a uniformly random
  class 0-4 (a labeller forced to pick one of the task's classes). Uncertainty sampling is
  drawn to them: the model is unsure on digits it has never seen, and their random labels keep
  it unsure there.
* ``outliers``: the images of 0-4 plus 30% junk: blends of two images of different classes 0-4
  plus Gaussian pixel noise (sd 2 on the 0-16 scale), labelled uniformly at random. The noise
  makes them outliers in feature space, where k-center greedy (the diversity step of
  shapley-regression) is drawn: the value filter has to be nearly perfect. A stress case.

**breast cancer** (scikit-learn's breast_cancer, malignant vs benign with logistic regression;
the 30 features standardised with the pool's mean and sd). Every strategy of one seed starts
from the same 20 random pool rows and buys 10 labels per round for 15 rounds (170 labels).

* ``cancer-texture``: in-distribution rows with unreliable labels in one region of feature
  space: the labels of the pool rows whose ``mean texture`` (the spread of grey levels of the
  scan) is above the pool's 70th percentile are coin flips, as if hard-to-read scans had been
  labelled by guessing. Those 30% are the junk; the test split keeps its true labels.

Target accuracies are fixed fractions (90%, 95%) of the accuracy of the same model trained on
*every* clean, correctly labelled task row of the pool. "Labels saved" = random's labels minus
the strategy's labels to first reach the target (linear interpolation between rounds), paired
by seed; a run that never reaches the target counts as the label budget and the figure is a
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
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from threadpoolctl import threadpool_limits

from dataworth.api import valuer
from dataworth.apps.active_loop import (
    compare_strategies,
    labels_to_reach,
    summarize_curves,
)
from dataworth.apps.select import ShapleyRegression
from dataworth.data import Dataset
from dataworth.result import ValuationResult

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import tables  # noqa: E402

STRATEGIES = ["random", "uncertainty", "entropy", "shapley-regression", "influence"]
TARGET_FRACTIONS = (0.90, 0.95)
TEST_SEED = 12345
VALID_SEED = 54321
#: neighbours of the KNN-Shapley valuer of shapley-regression (``dataworth select --k``'s default)
DEFAULT_K = 3
#: shapley-regression as first measured (before the settings were chosen on validation runs)
PREVIOUS = {
    "sr-previous": {"k": 5, "n_folds": 5, "within_class": False, "acquisition": None},
}
#: scenario -> (initial rows, batch, rounds)
PROTOCOL = {
    "clean": (50, 25, 14),
    "polluted": (50, 25, 14),
    "outliers": (50, 25, 14),
    "cancer-texture": (20, 10, 15),
}


def _scale(Xp: np.ndarray, Xt: np.ndarray, scaling: str) -> tuple[np.ndarray, np.ndarray]:
    """``unit``: pixels / 16; ``standardise``: per-pixel mean and sd of the pool (features only)."""
    if scaling == "unit":
        return Xp / 16.0, Xt / 16.0
    mean, std = Xp.mean(0), Xp.std(0)
    std = np.where(std > 0, std, 1.0)
    return (Xp - mean) / std, (Xt - mean) / std


def _splits(n: int, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(evaluation rows, rows the pool is drawn from) for ``split`` ("test" or "validation").

    The test split is 30% of the rows (seed ``TEST_SEED``). For validation the test rows are
    set aside unread and 30% of the others (seed ``VALID_SEED``) are the evaluation rows.
    """
    perm = np.random.default_rng(TEST_SEED).permutation(n)
    n_test = int(0.3 * n)
    test, rest = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    if split == "test":
        return test, rest
    if split != "validation":
        raise ValueError(f"unknown split {split!r}")
    inner = np.random.default_rng(VALID_SEED).permutation(rest)
    n_valid = int(0.3 * rest.size)
    return np.sort(inner[:n_valid]), np.sort(inner[n_valid:])


def make_scenario(
    name: str, seed: int, scaling: str = "unit", split: str = "test"
) -> dict[str, Any]:
    """Pool features, oracle labels, junk mask, evaluation split and clean reference rows."""
    if name == "cancer-texture":
        return _cancer_texture(seed, split)
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float64)
    test, rest = _splits(y.size, split)
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


def _cancer_texture(seed: int, split: str) -> dict[str, Any]:
    """Breast cancer; the pool rows of highest mean texture (top 30%) have coin-flip labels."""
    data = load_breast_cancer()
    X, y = data.data.astype(np.float64), data.target
    test, rest = _splits(y.size, split)
    rng = np.random.default_rng(seed)
    rest = rest[rng.permutation(rest.size)]
    Xp, y_true = X[rest], y[rest]
    texture = Xp[:, list(data.feature_names).index("mean texture")]
    junk = texture > np.quantile(texture, 0.7)
    oracle = y_true.copy()
    oracle[junk] = rng.integers(2, size=int(junk.sum()))
    Xp, Xt = _scale(Xp, X[test], "standardise")
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
    name: str,
    strategies: dict[str, Any],
    seeds: list[int],
    rounds: int | None,
    n_jobs: int,
    scaling: str,
    split: str,
) -> dict[str, Any]:
    """Every strategy on one scenario over ``seeds`` (paired by seed), with its summaries."""
    started = time.perf_counter()
    initial, batch, default_rounds = PROTOCOL[name]
    rounds = default_rounds if rounds is None else rounds
    curves: dict[str, list[Any]] = {s: [] for s in strategies}
    junk_share: dict[str, list[float]] = {s: [] for s in strategies}
    junk_early: dict[str, list[float]] = {s: [] for s in strategies}
    refs = []
    for seed in seeds:  # the pool's junk labels depend on the seed: one scenario per seed
        sc = make_scenario(name, seed, scaling, split)
        refs.append(reference_accuracy(sc))
        got = compare_strategies(
            strategies,
            sc["X_pool"],
            sc["y_oracle"],
            sc["X_test"],
            sc["y_test"],
            seeds=[seed],
            initial=initial,
            batch=batch,
            rounds=rounds,
            n_jobs=n_jobs,
        )
        for s in strategies:
            curves[s] += got[s]
            c = got[s][0]
            bought = c.bought[c.n_initial :]
            junk_share[s].append(float(sc["junk"][bought].mean()))
            junk_early[s].append(float(sc["junk"][bought[: 2 * batch]].mean()))
    reference = float(np.mean(refs))
    summary = summarize_curves(curves)
    reach = {
        f"{frac:.2f}": labels_to_reach(curves, round(frac * reference, 4))
        for frac in TARGET_FRACTIONS
    }
    # the same crossings, paired against uncertainty sampling (the second baseline)
    versus_uncertainty = (
        {
            f"{frac:.2f}": labels_to_reach(
                curves, round(frac * reference, 4), baseline="uncertainty"
            )
            for frac in TARGET_FRACTIONS
        }
        if "uncertainty" in curves
        else {}
    )
    return {
        "scenario": name,
        "split": split,
        "initial": initial,
        "batch": batch,
        "rounds": rounds,
        "n_pool": int(sc["X_pool"].shape[0]),
        "junk_fraction": float(sc["junk"].mean()),
        "n_test": int(sc["X_test"].shape[0]),
        "reference_accuracy": reference,
        "n_labels": next(iter(summary.values())).n_labels.tolist(),
        "curves": {
            s: {
                "mean": summary[s].mean.tolist(),
                "low": summary[s].low.tolist(),
                "high": summary[s].high.tolist(),
                "per_seed": [c.accuracy.tolist() for c in curves[s]],
                "junk_share_bought": junk_share[s],
                "junk_share_first_two_batches": junk_early[s],
                "select_seconds": [c.select_seconds for c in curves[s]],
            }
            for s in strategies
        },
        "reach": {k: [r.to_dict() for r in rows] for k, rows in reach.items()},
        "reach_vs_uncertainty": {
            k: [r.to_dict() for r in rows] for k, rows in versus_uncertainty.items()
        },
        "seconds": time.perf_counter() - started,
    }


def markdown(payload: dict[str, Any]) -> str:
    """The markdown of a run from its JSON payload; the tables are ``tables.py``'s
    ``active_learning.*`` (of ``benchmarks/active_learning.json``)."""
    where = (
        "the test split"
        if payload["split"] == "test"
        else "the validation split (test split unread)"
    )
    seeds = payload["seeds"]
    out = [
        "# Batch active learning: clean and polluted pools",
        "",
        f"Produced by `{payload['command']}` ({len(seeds)} seeds: {seeds}; accuracy on {where}; "
        f"Python {payload['python']}, {payload.get('machine', platform.machine())}; digits "
        f"features: {payload['scaling']}). "
        "Protocol: see the docstring of `benchmarks/active_learning.py` and `docs/select.md`.",
        "",
    ]
    for res in payload["results"]:
        scenario = res["scenario"]
        out += [
            f"## {scenario}",
            "",
            f"Pool {res['n_pool']} rows ({res['junk_fraction']:.0%} junk), evaluation "
            f"{res['n_test']} rows; {res['initial']} initial rows, then {res['batch']} per round "
            f"for {res['rounds']} rounds; accuracy with every clean label: "
            f"{res['reference_accuracy']:.3f}. Wall time {res['seconds']:.0f} s.",
            "",
            "Accuracy (mean over seeds [95% t interval]) by labels bought:",
            "",
            tables.block(f"active_learning.curve:{scenario}", payload),
        ]
        for frac, rows in res["reach"].items():
            out += [
                "",
                f"Labels to reach {float(frac):.0%} of the all-clean accuracy "
                f"(target {rows[0]['target']:.4f}; baseline: random):",
                "",
                tables.block(f"active_learning.reach:{scenario}:{frac}", payload),
            ]
            paired = [
                f"{r['strategy']} {r['saved_mean']:+.1f} [{r['saved_low']:+.1f}, "
                f"{r['saved_high']:+.1f}]" + (" (a bound)" if r["censored"] else "")
                for r in res["reach_vs_uncertainty"].get(frac, [])
                if r["strategy"].startswith(("shapley-regression", "sr-"))
            ]
            if paired:
                out += [
                    "",
                    "Labels saved vs uncertainty (paired by seed): " + "; ".join(paired) + ".",
                ]
        out.append("")
    out += [
        "`>=`: some runs never reached the target within the budget and count as the budget, "
        "so the mean is a lower bound; `~`: the saving involves such runs (a bound, not an "
        "estimate). Labels saved are paired by seed (same initial rows).",
        "",
    ]
    return "\n".join(out)


class KNNValuer:
    """The values of the labelled rows for shapley-regression: the paper's exact KNN-Shapley
    (``k`` neighbours) through :func:`dataworth.api.valuer`, as ``dataworth select --k`` makes
    it; its repr names it (the JSON records the strategies by their repr)."""

    def __init__(self, k: int = DEFAULT_K) -> None:
        self.k = k
        self._run = valuer("knn-shapley", model=KNeighborsClassifier(n_neighbors=k), k=k)

    def __call__(self, train: Dataset, valid: Dataset) -> ValuationResult:
        return self._run(train, valid)

    def __repr__(self) -> str:
        return f"valuer('knn-shapley', k={self.k})"


def shapley_regression(k: int = DEFAULT_K, **params: Any) -> ShapleyRegression:
    """shapley-regression valuing with :class:`KNNValuer` (``k``); ``params`` are the
    strategy's own (``n_folds``, ``within_class``, ``acquisition``, ...)."""
    return ShapleyRegression(valuer=KNNValuer(k), **params)


def build_strategies(names: str, variants: str | None) -> dict[str, Any]:
    """Display name -> strategy: the named ones, plus shapley-regression variants (JSON; a
    variant's ``"k"`` is its valuer's, see :func:`shapley_regression`)."""
    chosen: dict[str, Any] = {}
    for name in (n.strip() for n in names.split(",")):
        if name:
            chosen[name] = shapley_regression() if name == "shapley-regression" else name
    if variants:
        for label, params in json.loads(variants).items():
            chosen[label] = shapley_regression(**params)
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="number of seeds")
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=None, help="override every scenario's")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--scenarios", default="clean,polluted,outliers,cancer-texture")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument(
        "--variants",
        default=json.dumps(PREVIOUS),
        help='JSON {"name": {shapley-regression params, "k" for its KNN-Shapley}, ...}; '
        "default: the previous defaults",
    )
    parser.add_argument("--split", choices=["test", "validation"], default="test")
    parser.add_argument("--quick", action="store_true", help="2 seeds, 4 rounds, no files")
    parser.add_argument("--output", default="active_learning", help="file stem under benchmarks/")
    parser.add_argument("--scaling", choices=["unit", "standardise"], default="unit")
    parser.add_argument("--json", default=None, help="also write the JSON here (any split)")
    args = parser.parse_args()
    seeds = list(range(args.first_seed, args.first_seed + (2 if args.quick else args.seeds)))
    rounds = 4 if args.quick else args.rounds
    strategies = build_strategies(args.strategies, args.variants)
    command = "python benchmarks/active_learning.py " + " ".join(sys.argv[1:])
    results = []
    with threadpool_limits(1):
        for name in args.scenarios.split(","):
            res = run_scenario(
                name, strategies, seeds, rounds, args.n_jobs, args.scaling, args.split
            )
            results.append(res)
            print(f"{name}: {res['seconds']:.0f} s", flush=True)
    payload = {
        "command": command.strip(),
        "seeds": seeds,
        "split": args.split,
        "strategies": {k: repr(v) if not isinstance(v, str) else v for k, v in strategies.items()},
        "protocol": {
            k: dict(zip(("initial", "batch", "rounds"), v, strict=True))
            for k, v in PROTOCOL.items()
        },
        "target_fractions": TARGET_FRACTIONS,
        "scaling": args.scaling,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "results": [{k: v for k, v in r.items() if not k.startswith("_")} for r in results],
    }
    text = json.dumps(payload, indent=1)
    print(markdown(json.loads(text)))
    if args.json:
        Path(args.json).write_text(text)
    if args.quick or args.split == "validation":
        return  # smoke and validation runs never overwrite the reported figures
    (HERE / f"{args.output}.json").write_text(text)
    if args.output == "active_learning":
        (HERE / f"{args.output}.md").write_text(markdown(json.loads(text)))
    else:  # tables.py renders benchmarks/active_learning.json only
        print(f"wrote {args.output}.json; no markdown for a JSON other than active_learning.json")


if __name__ == "__main__":
    main()
