"""The demo: find flipped labels in breast-cancer data with several fast methods.

Ten percent of the training labels are flipped; each method values the training rows, and we
report how many flipped rows land among the lowest-valued 10%, the detection AUROC, and the
accuracy on a held-out test split (never the valuation set) after dropping the lowest-valued 10%
compared with dropping a random 10%.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dataworth.api import make_utility
from dataworth.data import Dataset
from dataworth.datasets import flip_labels, load_dataset
from dataworth.engine.runner import check_n_jobs
from dataworth.engine.stopping import MaxTime
from dataworth.errors import DataworthError
from dataworth.methods import get_method, parameters_of
from dataworth.models import default_model
from dataworth.ranking import detection_auroc
from dataworth.result import ValuationResult
from dataworth.utility.model import fit_and_score

__all__ = ["DEMO_METHODS", "SAME_TIME_AS", "detection_auroc", "run_demo"]

#: (method, parameters) run by the demo; all finish in seconds on 2 cores.
DEMO_METHODS: list[tuple[str, dict[str, Any]]] = [
    ("knn-shapley", {"k": 10}),
    ("data-oob", {"budget": 200}),
    ("tmc-shapley", {"budget": 300}),
    ("shapley", {}),  # given tmc-shapley's wall time (see SAME_TIME_AS)
    ("beta-shapley", {"budget": 100}),
    ("banzhaf", {"budget": 5000}),
    ("loo", {}),
]


#: The demo runs ``shapley`` (its default estimator) for as long as ``tmc-shapley`` took, and
#: compares their detection at equal wall time.
SAME_TIME_AS = ("shapley", "tmc-shapley")


def run_demo(
    *,
    seed: int = 0,
    n_jobs: int = 2,
    out_dir: Path | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, dict[str, float]]:
    """Run the demo and print a table; returns the figures per method.

    With ``out_dir``, each method's values (``<method>.csv``) and the review page
    (``report.html``, see :mod:`dataworth.report.html`) are written there, and the page's path
    is printed last.
    """
    check_n_jobs(n_jobs)
    if out_dir is not None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataworthError(f"cannot create {out_dir}: {exc.strerror or exc}") from None
    data = load_dataset("breast_cancer")
    rest, test = data.split(0.3, random_state=seed)
    train, valid = rest.split(0.25, random_state=seed)
    mean, std = train.X.mean(axis=0), train.X.std(axis=0)
    train, valid, test = (d.replace(X=(d.X - mean) / std) for d in (train, valid, test))
    noisy, flipped = flip_labels(train, 0.1, random_state=seed)
    model = default_model(noisy.y)  # LogisticRegression(max_iter=1000)
    utility = make_utility(noisy, valid, model=model)
    n = noisy.n_samples
    n_low = int(round(0.1 * n))
    rng = np.random.default_rng(seed)
    everything = np.arange(n)

    def accuracy_without(drop: NDArray[np.intp]) -> float:
        return fit_and_score(model, noisy, np.setdiff1d(everything, drop), [test])[0]

    base = accuracy_without(np.empty(0, dtype=np.intp))
    random_acc = float(
        np.mean([accuracy_without(rng.choice(n, n_low, replace=False)) for _ in range(10)])
    )
    echo(
        f"breast_cancer: {n} training rows ({flipped.size} labels flipped), "
        f"{valid.n_samples} valuation rows, {test.n_samples} held-out test rows; "
        "features standardised; model: logistic regression."
    )
    echo(
        f"held-out accuracy with all training rows: {base:.3f}; "
        f"after dropping a random 10%: {random_acc:.3f} (mean of 10 draws)"
    )
    echo("")
    header = f"{'method':<14} {'flipped in lowest 10%':>22} {'AUROC':>6} "
    header += f"{'acc. drop lowest 10%':>21} {'acc. drop random 10%':>21} {'seconds':>8}"
    echo(header)
    echo("-" * len(header))
    figures: dict[str, dict[str, float]] = {}
    results: dict[str, ValuationResult] = {}
    for name, params in DEMO_METHODS:
        cls = get_method(name)
        kwargs = dict(params)
        accepted = parameters_of(cls)
        kwargs.update(
            {k: v for k, v in (("random_state", seed), ("n_jobs", n_jobs)) if k in accepted}
        )
        if name == SAME_TIME_AS[0]:
            kwargs.update(budget=None, stop=MaxTime(figures[SAME_TIME_AS[1]]["seconds"]))
        started = time.monotonic()
        result: ValuationResult = cls(**kwargs).fit(utility).result_
        seconds = time.monotonic() - started
        lowest = result.bottom(n_low)
        found = int(np.isin(lowest, flipped).sum())
        auroc = detection_auroc(result.values, flipped)
        acc = accuracy_without(lowest)
        figures[name] = {"found": found, "auroc": auroc, "accuracy": acc, "seconds": seconds}
        results[name] = result
        echo(
            f"{name:<14} {f'{found}/{flipped.size}':>22} {auroc:>6.3f} {acc:>21.3f} "
            f"{random_acc:>21.3f} {seconds:>8.1f}"
        )
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            result.to_csv(out_dir / f"{name}.csv")
    fast, slow = (figures[m] for m in SAME_TIME_AS)
    echo(
        f"\nat equal wall time ({slow['seconds']:.1f} s), {SAME_TIME_AS[0]} "
        f"(estimator {results[SAME_TIME_AS[0]].metadata['estimator']}) detects flipped labels "
        f"at AUROC {fast['auroc']:.3f}, "
        f"{SAME_TIME_AS[1]} at {slow['auroc']:.3f}."
    )
    if out_dir is not None:
        echo(f"\nvalues written to {out_dir}/<method>.csv")
        path = _write_report(
            out_dir / "report.html", model, noisy, valid, test, flipped, results, seed=seed
        )
        echo(f"report written to {path}")
    return figures


def _write_report(
    path: Path,
    model: Any,
    noisy: Dataset,
    valid: Dataset,
    test: Dataset,
    flipped: NDArray[np.intp],
    results: dict[str, ValuationResult],
    *,
    seed: int,
) -> Path:
    """The review page of the demo: every method's values, out-of-fold predictions, removal
    curves on the held-out test split and the flipped rows marked (about 1 s: one process, as
    the fits are tiny and worker processes cost more than they save)."""
    from dataworth.apps.removal import removal_curves
    from dataworth.report.html import out_of_fold_predictions, write_report

    curves = removal_curves(results, noisy, test, model, n_random=5, random_state=seed)
    predictions = out_of_fold_predictions(model, noisy, cv=5, random_state=seed)
    is_flipped = np.zeros(noisy.n_samples, dtype=bool)
    is_flipped[flipped] = True
    settings = {
        "data": (
            f"breast_cancer (scikit-learn), split with seed {seed}: {noisy.n_samples} training "
            f"rows valued, {valid.n_samples} valuation rows, {test.n_samples} held-out test rows"
        ),
        "corruption": f"{flipped.size} training labels flipped (column 'flipped')",
        "feature scaling": "standardised with the training rows' mean and standard deviation",
        "model": "LogisticRegression(max_iter=1000)",
        "method parameters": ", ".join(
            name + "".join(f" {k}={v}" for k, v in params.items()) for name, params in DEMO_METHODS
        ),
        "predictions": "out-of-fold, 5-fold stratified cross-validation on the training rows",
        "removal curves": "retrained on the training rows, scored on the held-out test rows",
    }
    return write_report(
        path,
        noisy,
        results,
        predictions=predictions,
        curves=curves,
        settings=settings,
        extra_columns={"flipped": is_flipped},
        title="dataworth demo: flipped labels in breast-cancer data",
    )
