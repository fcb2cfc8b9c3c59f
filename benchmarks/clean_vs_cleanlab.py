"""Label-error detection: dataworth's values next to cleanlab, on the same corrupted data.

For each bundled dataset (breast_cancer, wine, digits) and seed: standardise, split into train /
valuation / held-out test (49 / 21 / 30 %, stratified), flip 10% of the training labels
(:func:`dataworth.datasets.flip_labels`, the ground truth), then

* dataworth: knn-shapley (k=5), data-oob (100 bags), data-oob with as many bags as fit in
  cleanlab's wall time (cost per bag measured on the 100-bag run: the "equal wall time" row),
  influence (closed form) and
  tmc-shapley (20 permutations; only on training sets of at most ``--tmc-max-rows`` rows, 400 by
  default, which leaves out digits); all with logistic regression where a model is used;
* cleanlab 2.9.0: out-of-fold predicted probabilities from ``cross_val_predict`` (5-fold
  stratified, the same logistic regression), then ``find_label_issues`` (its own flag count) and
  ``get_label_quality_scores`` (the ranking);

and report per method: detection AUROC, recall among the lowest 10%, wall time, and held-out test
accuracy of logistic regression retrained after removing the lowest-valued 10% (for cleanlab
also after removing the rows it flags), next to no removal, random removal (mean of 5 seeds) and
removal of exactly the flipped rows (the oracle). A second table repeats knn-shapley and data-oob
with 20% of the **valuation** labels flipped as well (:func:`noisy_valuation_comparison`).

Fairness notes: the utility-based methods (knn-shapley, tmc-shapley, influence) also see the
clean valuation set, extra information cleanlab and data-oob do not use. Every run uses one
BLAS thread. Timing is wall time on the machine named in the JSON.

    .venv-bench/bin/python benchmarks/clean_vs_cleanlab.py            # writes clean.md / .json
    .venv-bench/bin/python benchmarks/clean_vs_cleanlab.py --quick    # 2 seeds, smoke run

Needs cleanlab in the benchmark environment (see benchmarks/README.md); it is not a dependency of
dataworth.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import tables  # noqa: E402
from common import environment, limit_threads, package_version  # noqa: E402

from dataworth.api import value_many  # noqa: E402
from dataworth.apps.clean import (  # noqa: E402
    DEFAULT_METHOD_PARAMS,
    detection_auroc,
    detection_recall,
)
from dataworth.apps.removal import removal_curves  # noqa: E402
from dataworth.data import Dataset  # noqa: E402
from dataworth.datasets import flip_labels, load_dataset  # noqa: E402
from dataworth.experiments import noisy_valuation_comparison  # noqa: E402

DATASETS = ("breast_cancer", "wine", "digits")
NOISE = 0.1
CUT = 0.1
VALID_NOISE = 0.2
ACC = "accuracy_after_removing_lowest_10"
EQUAL = "data-oob (bags for cleanlab's time)"
NEVER_OOB = "data_oob_equal_time_never_out_of_bag"


def model() -> LogisticRegression:
    return LogisticRegression(max_iter=1000)


def make_split(name: str, seed: int) -> dict[str, Any]:
    ds = load_dataset(name)
    rest, test = ds.split(0.3, random_state=seed)
    train, valid = rest.split(0.3, random_state=seed)
    mean, std = train.X.mean(0), train.X.std(0)
    std = np.where(std > 0, std, 1.0)
    train, valid, test = (d.replace(X=(d.X - mean) / std) for d in (train, valid, test))
    noisy, flipped = flip_labels(train, NOISE, random_state=seed)
    return {"train": noisy, "valid": valid, "test": test, "flipped": flipped}


def cleanlab_scores(train: Dataset, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(quality scores, flagged mask, seconds): out-of-fold probabilities + cleanlab."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    started = time.perf_counter()
    _, labels = np.unique(train.y, return_inverse=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        probs = cross_val_predict(
            model(),
            train.X,
            labels,
            cv=StratifiedKFold(5, shuffle=True, random_state=seed),
            method="predict_proba",
        )
    flagged = find_label_issues(labels, probs)
    scores = get_label_quality_scores(labels, probs)
    return (
        np.asarray(scores, dtype=float),
        np.asarray(flagged, dtype=bool),
        time.perf_counter() - started,
    )


def compute_values(
    methods: list[str],
    train: Dataset,
    valid: Dataset,
    model: Any,
    *,
    params: dict[str, dict[str, Any]] | None = None,
    random_state: int | None = None,
) -> dict[str, Any]:
    """Each method's values of ``train`` on ``valid`` with ``dataworth clean``'s fast settings
    (:data:`DEFAULT_METHOD_PARAMS`, ``params`` over them), one worker, convergence warnings of
    the many small fits silenced; ``metadata["seconds"]`` is each one's wall time
    (:func:`dataworth.api.value_many`)."""
    own = {m: {**DEFAULT_METHOD_PARAMS.get(m, {}), **(params or {}).get(m, {})} for m in methods}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return value_many(
            methods, train, valid, params=own, model=model, random_state=random_state, n_jobs=1
        )


def seconds_per_bag(result: Any) -> float:
    return float(result.metadata["seconds"]) / float(result.params.get("budget") or 100)


def held_out(train: Dataset, test: Dataset, keep: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = clone(model()).fit(train.X[keep], train.y[keep])
    return float(np.mean(fitted.predict(test.X) == test.y))


def run_one(name: str, seed: int, tmc_max_rows: int) -> dict[str, Any]:
    s = make_split(name, seed)
    train, valid, test, flipped = s["train"], s["valid"], s["test"], s["flipped"]
    n = train.n_samples
    with_tmc = n <= tmc_max_rows
    cl_scores, cl_flagged, cl_seconds = cleanlab_scores(train, seed)

    methods = ["knn-shapley", "data-oob", "influence"] + (["tmc-shapley"] if with_tmc else [])
    values = compute_values(methods, train, valid, model(), random_state=seed)
    # equal wall time: as many bags as fit in cleanlab's time at the measured cost per bag
    per_bag = seconds_per_bag(values["data-oob"])
    equal_budget = max(1, round(cl_seconds / per_bag))
    equal = compute_values(
        ["data-oob"],
        train,
        valid,
        model(),
        params={"data-oob": {"budget": equal_budget}},
        random_state=seed,
    )["data-oob"]
    scores: dict[str, np.ndarray] = {m: values[m].values for m in methods}
    seconds: dict[str, float] = {m: values[m].metadata["seconds"] for m in methods}
    scores[EQUAL] = equal.values
    seconds[EQUAL] = equal.metadata["seconds"]
    scores["cleanlab"] = cl_scores
    seconds["cleanlab"] = cl_seconds

    curves = removal_curves(
        scores, train, test, model(), fractions=(0.0, CUT), n_random=5, random_state=seed
    )
    clean_rows = np.setdiff1d(np.arange(n), flipped)
    out: dict[str, Any] = {
        "dataset": name,
        "seed": seed,
        "n_train": n,
        "n_valid": valid.n_samples,
        "n_test": test.n_samples,
        "n_flipped": int(flipped.size),
        "no_removal": float(curves.random_mean[0]),
        "random_removal": float(curves.random_mean[1]),
        "oracle_removal": held_out(train, test, clean_rows),
        "data_oob_equal_time_bags": int(equal_budget),
        "data_oob_equal_time_never_out_of_bag": int(np.isnan(equal.values).sum()),
        "methods": {},
    }
    for m, v in scores.items():
        out["methods"][m] = {
            "auroc": detection_auroc(v, flipped),
            "recall_at_10": detection_recall(v, flipped, CUT),
            "seconds": seconds[m],
            "accuracy_after_removing_lowest_10": float(curves.lowest[m][1]),
        }
    out["methods"]["cleanlab"]["n_flagged"] = int(cl_flagged.sum())
    out["methods"]["cleanlab"]["flagged_precision"] = (
        float(np.isin(np.flatnonzero(cl_flagged), flipped).mean()) if cl_flagged.any() else None
    )
    out["methods"]["cleanlab"]["accuracy_after_removing_flagged"] = held_out(
        train, test, np.flatnonzero(~cl_flagged)
    )

    cmp = noisy_valuation_comparison(
        train,
        valid,
        test,
        model(),
        methods=["knn-shapley", "data-oob"],
        valid_noise=VALID_NOISE,
        corrupted=flipped,
        fraction=CUT,
        random_state=seed,
    )
    out["noisy_valuation"] = cmp.rows
    return out


def _mean(runs: list[dict[str, Any]], get: Callable[[dict[str, Any]], Any]) -> float:
    vals = [get(r) for r in runs]
    vals = [v for v in vals if v is not None]
    return float(np.mean(vals)) if vals else float("nan")


def render(record: dict[str, Any]) -> str:
    """The markdown of a run (``{"meta": ..., "results": ...}`` as in the JSON); its tables are
    ``tables.py``'s ``clean.*``."""
    results, meta = record["results"], record["meta"]
    lines = [
        "# Label-error detection: dataworth next to cleanlab",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"cleanlab {meta['cleanlab']}, dataworth {meta['dataworth']}, scikit-learn "
        f"{meta['environment']['packages']['scikit-learn']}; one BLAS thread; "
        f"{meta['environment']['cpu_count']} CPU cores; total {meta['seconds']:.0f} s. Wall "
        "times come from a machine shared with other jobs: compare them within a run, not "
        "across runs.",
        "",
        f"Setting: standardised features; train / valuation / held-out test = 49 / 21 / 30 % "
        f"(stratified); {100 * NOISE:g}% of the training labels flipped to another class; "
        f"seeds {meta['seeds']}; figures are means over the seeds. Model everywhere: "
        "LogisticRegression(max_iter=1000). AUROC: -value (cleanlab: -label quality) as a "
        "detector of the flipped rows. recall@10%: share of the flipped rows among the lowest "
        f"10%. Accuracy: held-out test accuracy after removing the lowest-valued {100 * CUT:g}% "
        "and retraining (the test split is used for nothing else).",
        "",
    ]
    lines += [
        "## Summary: equal wall time",
        "",
        "Per dataset, the dataworth method with the best mean AUROC among those whose mean wall "
        "time is at most cleanlab's (out-of-fold probabilities included), next to cleanlab. The "
        "method is picked per dataset, after the run, from the rows below (no one method is "
        "the pick on every dataset). Not like for like: knn-shapley, influence and tmc-shapley "
        "score the training rows against the valuation split, whose labels are clean, and "
        "cleanlab never sees that split (it has only the noisy training rows); data-oob does "
        "not use it either.",
        "",
        tables.block("clean.summary", record),
    ]
    lines += [""]
    for name in meta["datasets"]:
        runs = [r for r in results if r["dataset"] == name]
        if not runs:
            continue
        r0 = runs[0]
        lines += [
            f"## {name} ({r0['n_train']} training rows, {r0['n_flipped']} flipped; "
            f"{r0['n_valid']} valuation, {r0['n_test']} test)",
            "",
            f"No removal: {_mean(runs, lambda r: r['no_removal']):.4f}; random removal of 10%: "
            f"{_mean(runs, lambda r: r['random_removal']):.4f}; removing exactly the flipped "
            f"rows (oracle): {_mean(runs, lambda r: r['oracle_removal']):.4f}.",
            "",
            tables.block(f"clean.methods:{name}", record),
        ]
        cl = [r["methods"]["cleanlab"] for r in runs]
        lines += [
            "",
            f"cleanlab's `find_label_issues` flags {np.mean([c['n_flagged'] for c in cl]):.1f} "
            f"rows on average (precision {_mean(cl, lambda c: c['flagged_precision']):.3f}); "
            "held-out accuracy after removing them: "
            f"{_mean(cl, lambda c: c['accuracy_after_removing_flagged']):.4f}. "
            "data-oob at cleanlab's time: "
            f"{np.mean([r['data_oob_equal_time_bags'] for r in runs]):.0f} bags on average (the "
            "cost per bag measured on the 100-bag run); rows never out of bag (NaN, ranked as "
            f"least suspicious): {_mean(runs, lambda r: r[NEVER_OOB]):.1f}.",
            "",
        ]
    lines += [
        f"## Noisy valuation set ({100 * VALID_NOISE:g}% of the valuation labels flipped too)",
        "",
        tables.block("clean.noisy_valuation", record),
    ]
    lines += [
        "",
        "data-oob never uses the valuation set, so its values and results cannot change; "
        "knn-shapley scores subsets on the valuation set and inherits its label errors.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, for a smoke run")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--tmc-max-rows", type=int, default=400, help="tmc-shapley only up to this many rows"
    )
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--out", default=str(HERE / "clean"), help="prefix of the .md/.json")
    parser.add_argument(
        "--render-only", action="store_true", help="rewrite the .md from an existing .json"
    )
    args = parser.parse_args()
    if args.render_only:
        saved = json.loads(Path(f"{args.out}.json").read_text())
        Path(f"{args.out}.md").write_text(render(saved))
        print(f"wrote {args.out}.md")
        return
    limit_threads(1)
    seeds = list(range(2 if args.quick else args.seeds))
    names = [d.strip() for d in args.datasets.split(",") if d.strip()]
    started = time.perf_counter()
    results = []
    for name in names:
        for seed in seeds:
            t = time.perf_counter()
            results.append(run_one(name, seed, args.tmc_max_rows))
            print(f"{name} seed {seed}: {time.perf_counter() - t:.1f} s", flush=True)
    command = "python benchmarks/clean_vs_cleanlab.py " + " ".join(sys.argv[1:])
    meta = {
        "command": command.strip(),
        "datasets": names,
        "seeds": seeds,
        "noise": NOISE,
        "cut": CUT,
        "valid_noise": VALID_NOISE,
        "cleanlab": package_version("cleanlab"),
        "dataworth": package_version("dataworth"),
        "environment": environment(),
        "seconds": time.perf_counter() - started,
    }
    Path(f"{args.out}.json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=2, default=float)
    )
    Path(f"{args.out}.md").write_text(render(json.loads(Path(f"{args.out}.json").read_text())))
    print(f"wrote {args.out}.md and {args.out}.json")


if __name__ == "__main__":
    main()
