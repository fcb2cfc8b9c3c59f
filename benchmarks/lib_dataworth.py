"""dataworth, called only through its public API (``make_utility`` + ``get_method``).

``dataworth.make_utility`` picks the utility (a batched one where dataworth has it), so the
benchmark measures whatever the installed dataworth does by default.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from common import SEED, TASKS, Budgets, RunOutput, Split, package_version
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier

NAME = "dataworth"

#: task -> (registered method name, extra parameters)
METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "knn-shapley": ("knn-shapley", {"k": 5}),
    "permutation-shapley": ("permutation-shapley", {}),
    "tmc-shapley": ("tmc-shapley", {"tolerance": 0.01}),
    "beta-shapley": ("beta-shapley", {"alpha": 16.0, "beta": 1.0}),
    "banzhaf": ("banzhaf", {}),
    "data-oob": ("data-oob", {}),
    "loo": ("loo", {}),
}


def version() -> str | None:
    """Installed dataworth version."""
    return package_version("dataworth")


def unavailable_reason() -> str | None:
    """None: dataworth is the library under test and must import."""
    import dataworth  # noqa: F401

    return None


def supports(task: str) -> str | None:
    """Every task is a dataworth method."""
    return None if task in METHODS else f"no dataworth method for {task}"


def model_for(task: str) -> Any:
    """The scikit-learn model of a task (the same one every library gets)."""
    if task == "knn-shapley":
        return KNeighborsClassifier(n_neighbors=5)
    if task == "data-oob":
        return DecisionTreeClassifier(random_state=0)
    return LogisticRegression(max_iter=1000)


def _count_evaluations(utility: Any) -> list[int]:
    """Count the subsets whose utility is computed (in this process only).

    A batched utility computes every subset in ``evaluate_many`` (its ``__call__`` and
    ``evaluate_prefixes`` go through it); a plain ``ModelUtility`` in ``score_rows``.
    Empty subsets (scored ``default_score`` without a fit) are counted by the former only
    when requested explicitly, never by ``evaluate_prefixes``.
    """
    box = [0]
    if "evaluate_many" in vars(type(utility)):
        inner_many = utility.evaluate_many

        def evaluate_many(subsets: Any) -> Any:
            subsets = subsets if isinstance(subsets, np.ndarray) else list(subsets)
            box[0] += len(subsets)
            return inner_many(subsets)

        utility.evaluate_many = evaluate_many
    else:
        inner_rows = utility.score_rows

        def score_rows(rows: Any) -> float:
            box[0] += int(np.asarray(rows).size > 0)
            return float(inner_rows(rows))

        utility.score_rows = score_rows
    return box


def run(
    task: str,
    split: Split,
    budgets: Budgets,
    n_jobs: int,
    *,
    seed: int = SEED,
    reference: bool = False,
    budget: int | None = None,
) -> RunOutput:
    """Value ``split`` with dataworth's method for ``task``; time from data to values.

    ``reference``: use the reference budget (``budgets.reference_factor`` times the budget);
    ``budget`` overrides either.
    """
    import dataworth
    from dataworth.methods import get_method, parameters_of

    method, extra = METHODS[task]
    cls = get_method(method)
    accepted = parameters_of(cls)
    params: dict[str, Any] = dict(extra)
    budget = budget if budget is not None else budgets.of(task, reference=reference)
    if budget is not None:
        params["budget"] = budget
    if "random_state" in accepted:
        params["random_state"] = seed
    if "n_jobs" in accepted:
        params["n_jobs"] = n_jobs
    start = time.perf_counter()
    train = dataworth.Dataset.from_arrays(split.X_train, split.y_train)
    valid = dataworth.Dataset.from_arrays(split.X_valid, split.y_valid)
    utility = dataworth.make_utility(train, valid, model=model_for(task))
    counted = n_jobs == 1 and not reference and task not in ("knn-shapley", "data-oob")
    box = _count_evaluations(utility) if counted else None
    result = cls(**params).fit(utility).result_
    seconds = time.perf_counter() - start
    shown = {k: v for k, v in params.items() if k != "n_jobs"}
    settings = (
        f"{method}({', '.join(f'{k}={v}' for k, v in shown.items())}); "
        f"utility {type(utility).__name__}"
    )
    samples = result.metadata.get("n_updates")
    return RunOutput(
        values=np.asarray(result.values, dtype=np.float64),
        seconds=seconds,
        samples=int(samples) if samples is not None else None,
        evaluations=box[0] if box is not None else None,
        settings=settings,
        note=TASKS[task].model,
        raw=result,
    )
