"""Planted confounders by method (``class_debug``), and the stability of values (``explain``).

Usage::

    python benchmarks/explain.py [--seeds 8] [--quick] [--out benchmarks/explain.md]

The measured figures of ``docs/explain.md`` that are not worked examples.

Part 1, which method brings confounders to the top
(:func:`dataworth.apps.debug.class_debug`). For each seed: two Gaussian classes in 2-D (means
``(+2, 0)`` and ``(-2, 0)``, unit variance; ``np.random.default_rng(seed)``), 40 training rows
per class and 60 valuation rows per class; then 5 copies of the most typical class-1 training
rows (nearest to the class-1 mean) are added, labelled 0 (the planted rows). Class 0 is debugged
with ``top=10`` and ``random_state=0`` (default model: logistic regression) by banzhaf (budget
1000), tmc-shapley (budget 100), loo and knn-shapley (k 5): each method values the training rows
against the class-0 valuation rows (:func:`dataworth.apps.debug.class_valuation_set`,
``random_state=0``, the same model) and ``class_debug`` reads those values. Counted over seeds:
planted rows among the 10 most helpful rows, planted rows flagged as possible confounders, and
planted rows whose features the cross-validated "looks like" check assigns to class 1 (the
check does not depend on the valuation method).

Part 2, stability of values across bootstrap resamples
(:func:`dataworth.apps.explain.bootstrap_stability`), on the data of
``tests/apps/test_explain.py``:

* structured data: 3 standard normal features, label ``x0 > 0`` with 20% of the labels flipped,
  120 training rows (``np.random.default_rng(2)``) against 60 unflipped valuation rows
  (``np.random.default_rng(3)``); KNN-Shapley (k 5, 5 resamples) and one-permutation
  TMC-Shapley (``budget=1``, 4 resamples);
* random labels: 200 training and 100 valuation rows of 3 standard normal features with
  labels drawn at random (``np.random.default_rng(5)``); KNN-Shapley (default k, 4 resamples),
  with the cross-validated R^2 of the value tree (:func:`explain_values`) and the verdict of
  :func:`collection_verdict`.

All resamples use ``random_state=0``: :func:`dataworth.apps.explain.bootstrap_draws` draws them
and each resample is valued with its draw's seed. ``--quick``: part 1 with 2 seeds, a smoke run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import tables  # noqa: E402
from common import environment, record_lines, run_record  # noqa: E402

from dataworth import value  # noqa: E402
from dataworth.apps.debug import class_debug, class_valuation_set  # noqa: E402
from dataworth.apps.explain import (  # noqa: E402
    StabilityResult,
    bootstrap_draws,
    bootstrap_stability,
    collection_verdict,
    explain_values,
)
from dataworth.data import Dataset  # noqa: E402
from dataworth.models import default_model  # noqa: E402

N_PLANT = 5
SEP = 2.0
TOP = 10
#: (label in the report, method, parameters)
METHODS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("banzhaf (budget 1000)", "banzhaf", {"budget": 1000}),
    ("tmc-shapley (budget 100)", "tmc-shapley", {"budget": 100}),
    ("loo", "loo", {}),
    ("knn-shapley (k 5)", "knn-shapley", {"k": 5}),
)


# ------------------------------------------------------------------------ part 1: planted
def planted(seed: int) -> tuple[Dataset, Dataset, np.ndarray]:
    """Two Gaussian classes (40 + 40 rows) plus 5 copies of typical class-1 rows labelled 0."""
    rng = np.random.default_rng(seed)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        X = np.vstack([rng.normal([SEP, 0], 1, (n, 2)), rng.normal([-SEP, 0], 1, (n, 2))])
        return X, np.r_[np.zeros(n, int), np.ones(n, int)]

    (X, y), (Xv, yv) = draw(40), draw(60)
    ones = np.arange(40, 80)
    typical = ones[np.argsort(np.linalg.norm(X[ones] - [-SEP, 0], axis=1))[:N_PLANT]]
    train = Dataset.from_arrays(np.vstack([X, X[typical]]), np.r_[y, np.zeros(N_PLANT, int)])
    return train, Dataset.from_arrays(Xv, yv), np.arange(80, 80 + N_PLANT)


def confounders(seeds: list[int]) -> dict[str, Any]:
    rows = []
    for label, method, params in METHODS:
        runs = []
        t0 = time.perf_counter()
        for seed in seeds:
            train, valid, plant = planted(seed)
            model = default_model(train.y, random_state=0)
            values = value(
                method, train, class_valuation_set(valid, 0), model=model, random_state=0, **params
            )
            res = class_debug(values, train, valid, 0, model, top=TOP, random_state=0)
            looks = np.asarray(res.looks_like)
            runs.append(
                {
                    "seed": seed,
                    "in_top": int(np.isin(plant, res.helpers["position"]).sum()),
                    "flagged": int(np.isin(plant, res.confounders["position"]).sum()),
                    "looks_like_other": int((looks[plant] != 0).sum()) if looks.size else None,
                }
            )
        rows.append(
            {
                "label": label,
                "method": method,
                "params": params,
                "runs": runs,
                "in_top": sum(r["in_top"] for r in runs),
                "flagged": sum(r["flagged"] for r in runs),
                "looks_like_other": sum(r["looks_like_other"] or 0 for r in runs),
                "planted": N_PLANT * len(seeds),
                "seconds": round(time.perf_counter() - t0, 2),
            }
        )
        print(f"  {label}: {rows[-1]['in_top']} in the top {TOP}, {rows[-1]['flagged']} flagged")
    return {"seeds": seeds, "planted": N_PLANT, "top": TOP, "rows": rows}


# ---------------------------------------------------------------------- part 2: stability
def noisy(n: int, seed: int, flip: float = 0.2) -> Dataset:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] > 0).astype(int)
    return Dataset.from_arrays(X, np.where(rng.random(n) < flip, 1 - y, y))


def _stab(data: str, method: str, st: Any, **extra: Any) -> dict[str, Any]:
    return {
        "data": data,
        "method": method,
        "resamples": int(st.values.shape[0]),
        "mean": st.mean,
        "sd": st.std,
        "min": st.min,
        "max": st.max,
        "verdict": st.verdict.split(":")[0],
        **extra,
    }


def resampled(
    method: str, train: Dataset, valid: Dataset, n_bootstrap: int, **params: Any
) -> StabilityResult:
    """``bootstrap_stability`` of ``method``: the draws of ``bootstrap_draws(..., random_state=0)``,
    each resample valued against ``valid`` with its draw's seed."""
    draws = bootstrap_draws(train.n_samples, n_bootstrap, random_state=0)
    values = [
        value(method, train.take(rows), valid, random_state=seed, **params)
        for rows, seed in zip(draws.rows, draws.seeds, strict=True)
    ]
    return bootstrap_stability(values, draws)


def stability() -> dict[str, Any]:
    t0 = time.perf_counter()
    train, valid = noisy(120, seed=2), noisy(60, seed=3, flip=0.0)
    easy = resampled("knn-shapley", train, valid, 5, k=5)
    rough = resampled("tmc-shapley", train, valid, 4, budget=1)
    rng = np.random.default_rng(5)
    rand = Dataset.from_arrays(rng.normal(size=(200, 3)), rng.integers(0, 2, 200))
    rand_valid = Dataset.from_arrays(rng.normal(size=(100, 3)), rng.integers(0, 2, 100))
    st_r = resampled("knn-shapley", rand, rand_valid, 4)
    ex_r = explain_values(value("knn-shapley", rand, rand_valid), rand, random_state=0)
    ok, why = collection_verdict(ex_r, st_r)
    structured = "structured (x0 > 0, 20% flipped), 120 rows"
    rows = [
        _stab(structured, "knn-shapley (k 5)", easy),
        _stab(structured, "tmc-shapley (one permutation)", rough),
        _stab(
            "random labels, 200 rows",
            "knn-shapley (default k)",
            st_r,
            r2_tree_cv=ex_r.r2_tree_cv,
            collect_more=ok,
            collection_verdict=why,
        ),
    ]
    for r in rows:
        print(f"  {r['data']}, {r['method']}: mean {r['mean']:.3f}")
    return {"rows": rows, "seconds": round(time.perf_counter() - t0, 2)}


# ---------------------------------------------------------------------------------- report
def write_report(results: dict[str, Any], out: Path) -> None:
    conf, stab = results["confounders"], results["stability"]
    n = N_PLANT * len(conf["seeds"])
    md = [
        "# Explaining values and debugging with them: measured figures",
        "",
        *record_lines(results),
        "",
        "## 1. Planted confounders: which method brings them to the top",
        "",
        f"{N_PLANT} copies of typical class-1 rows labelled 0, planted into 80 rows of two "
        f"Gaussian classes ({len(conf['seeds'])} seeds: {conf['seeds']}); "
        "`class_debug(value(method, train, class_valuation_set(valid, 0), random_state=0), "
        f"train, valid, 0, top={TOP}, random_state=0)`.",
        "",
        tables.block("explain.confounders", results),
    ]
    looks = conf["rows"][0]["looks_like_other"]
    md += [
        "",
        f'The cross-validated "looks like" check assigns {looks} of the {n} planted rows to '
        f"class 1 ({n - looks} escape it); it does not depend on the valuation method.",
        "",
        "## 2. Stability across bootstrap resamples",
        "",
        "Spearman rank correlation of the values between resamples (on shared rows), "
        "`bootstrap_stability(values, bootstrap_draws(..., random_state=0))`; data of "
        "`tests/apps/test_explain.py`.",
        "",
        tables.block("explain.stability", results),
    ]
    for r in stab["rows"]:
        if "collection_verdict" in r:
            md += ["", f"Collection verdict on the random labels: {r['collection_verdict']}"]
    out.write_text("\n".join(md) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=8, help="seeds of part 1")
    parser.add_argument("--quick", action="store_true", help="part 1 with 2 seeds: a smoke run")
    parser.add_argument("--out", type=Path, default=HERE / "explain.md")
    args = parser.parse_args()
    seeds = list(range(2 if args.quick else args.seeds))
    started = time.perf_counter()
    results: dict[str, Any] = run_record("explain.py")
    with threadpool_limits(limits=1):
        print("part 1: planted confounders", flush=True)
        results["confounders"] = confounders(seeds)
        print("part 2: stability", flush=True)
        results["stability"] = stability()
    results["seconds"] = time.perf_counter() - started
    results["environment"] = environment()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    write_report(json.loads(args.out.with_suffix(".json").read_text()), args.out)
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
