"""pyDVL 0.10.0 (``pydvl.valuation``), configured to match the benchmark's settings.

Where pyDVL's defaults differ from the benchmark, the adapter overrides them (and says so in
``SETTINGS``): TMC's truncation burn-in (0.4 by default) is set to 0 so that its rule is
dataworth's ``|u(N) - u(S)| <= 0.01 |u(N)|``; every Monte Carlo method stops after exactly
the benchmark's number of samples instead of pyDVL's convergence criteria.
Parallelism is joblib's: ``parallel_config(n_jobs=...)`` around ``fit``.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
from common import SEED, Budgets, RunOutput, Split, package_version
from numpy.typing import NDArray
from sklearn.ensemble import BaggingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier

NAME = "pyDVL"
DISTRIBUTION = "pydvl"

#: What pyDVL runs for each task, and where that differs from its defaults.
SETTINGS: dict[str, str] = {
    "knn-shapley": "KNNShapleyValuation(KNeighborsClassifier(n_neighbors=5))",
    "permutation-shapley": (
        "ShapleyValuation(PermutationSampler(), MaxSamples(permutations)); no truncation"
    ),
    "tmc-shapley": (
        "TMCShapleyValuation(RelativeTruncation(rtol=0.01, burn_in_fraction=0.0), "
        "MaxChecks(permutations)); pyDVL default burn_in_fraction=0.4 and "
        "HistoryDeviation(n_steps=100, rtol=0.05) stopping overridden"
    ),
    "beta-shapley": (
        "BetaShapleyValuation(PermutationSampler(), MaxSamples(permutations), alpha=16, beta=1)"
    ),
    "banzhaf": "MSRBanzhafValuation(MaxChecks(subsets)) (one subset per check)",
    "data-oob": (
        "DataOOBValuation(BaggingClassifier(DecisionTreeClassifier(), n_estimators=bags, "
        "max_samples=1.0, bootstrap=True)); time includes fitting the bagging model"
    ),
    "loo": "LOOValuation(ModelUtility)",
}

#: Conventions of pyDVL's ModelUtility that differ from dataworth's, for the notes.
UTILITY_NOTE = (
    "u(empty)=0 (SupervisedScorer default=0); a single-class subset fails to fit and "
    "scores the default 0 (catch_errors=True; dataworth scores the constant predictor)"
)


def version() -> str | None:
    """Installed pyDVL version."""
    return package_version(DISTRIBUTION)


def unavailable_reason() -> str | None:
    """None when pyDVL imports, else the error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FutureWarnings of pyDeprecate at import
            import pydvl.valuation  # noqa: F401
    except Exception as exc:
        return f"import pydvl.valuation failed: {type(exc).__name__}: {exc}"
    return None


def supports(task: str) -> str | None:
    """pyDVL 0.10.0 has every benchmarked method."""
    return None if task in SETTINGS else f"pyDVL has no {task}"


def skip_reason(task: str, n_jobs: int, budgets: Budgets) -> str | None:
    """Why a supported run is left out (too slow to run here), or None.

    MSR Banzhaf at ``n_jobs > 1``: pyDVL folds the updates of every sample into the result in
    the main process (about 25 ms per subset for 200 points) while the workers keep drawing and
    evaluating subsets ahead of it. Measured here with 600 subsets: 14.4 s at n_jobs=1, 46.9 s
    at n_jobs=2 with 3,390 subsets drawn (batch_size 1; 44-47 s with batch_size 16 or 64), so the
    full budget would take several times the 3-minute limit per peer run.
    """
    subsets = budgets.of(task)
    if task == "banzhaf" and n_jobs > 1 and subsets is not None and subsets > 1000:
        return (
            "not run: pyDVL MSR at n_jobs>1 is slower than at n_jobs=1 (600 subsets here: "
            "46.9 s at n_jobs=2 vs 14.4 s at n_jobs=1, 3,390 subsets drawn); "
            f"{subsets:,} subsets would take ~8 min"
        )
    return None


def _values(result: Any, n: int) -> NDArray[np.float64]:
    """Values in training-row order (pyDVL results carry their own indices)."""
    out = np.full(n, np.nan)
    out[np.asarray(result.indices, dtype=np.intp)] = np.asarray(result.values, dtype=np.float64)
    return out


def _counting_utility_class() -> type:
    """A pyDVL ModelUtility that counts its model fits (shared counter, this process only)."""
    from pydvl.valuation import ModelUtility

    class CountingModelUtility(ModelUtility):
        counter: list[int]

        def _utility(self, sample: Any) -> float:
            self.counter[0] += 1
            return float(super()._utility(sample))

    return CountingModelUtility


def run(task: str, split: Split, budgets: Budgets, n_jobs: int, *, seed: int = SEED) -> RunOutput:
    """Value ``split`` with pyDVL; time from data wrapping to values."""
    from joblib import parallel_config
    from pydvl.valuation import (
        BetaShapleyValuation,
        DataOOBValuation,
        Dataset,
        KNNShapleyValuation,
        LOOValuation,
        MaxChecks,
        MaxSamples,
        ModelUtility,
        MSRBanzhafValuation,
        PermutationSampler,
        RelativeTruncation,
        ShapleyValuation,
        SupervisedScorer,
        TMCShapleyValuation,
    )

    budget = budgets.of(task)
    n = split.n_train
    samples: int | None = None
    box: list[int] | None = None
    with warnings.catch_warnings(), parallel_config(n_jobs=n_jobs):
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        train = Dataset(split.X_train, split.y_train)
        valid = Dataset(split.X_valid, split.y_valid)
        if task == "knn-shapley":
            knn = KNNShapleyValuation(
                KNeighborsClassifier(n_neighbors=5), test_data=valid, progress=False
            )
            result = knn.fit(train).result
        elif task == "data-oob":
            assert budget is not None
            bag = BaggingClassifier(
                DecisionTreeClassifier(),
                n_estimators=budget,
                max_samples=1.0,
                bootstrap=True,
                random_state=seed,
                n_jobs=n_jobs,
            ).fit(split.X_train, split.y_train)
            result = DataOOBValuation(bag).fit(train).result
            samples = budget
        else:
            scorer = SupervisedScorer("accuracy", valid, default=0.0, range=(0.0, 1.0))
            utility_cls = _counting_utility_class() if n_jobs == 1 else ModelUtility
            utility = utility_cls(LogisticRegression(max_iter=1000), scorer, show_warnings=False)
            utility.counter = box = [0]
            valuation: Any
            if task == "loo":
                valuation = LOOValuation(utility)
            elif task == "permutation-shapley":
                assert budget is not None
                sampler = PermutationSampler(seed=seed)
                valuation = ShapleyValuation(
                    utility, sampler, MaxSamples(sampler, budget), show_warnings=False
                )
            elif task == "tmc-shapley":
                assert budget is not None
                valuation = TMCShapleyValuation(
                    utility,
                    truncation=RelativeTruncation(rtol=0.01, burn_in_fraction=0.0),
                    is_done=MaxChecks(budget),
                    seed=seed,
                    show_warnings=False,
                )
            elif task == "beta-shapley":
                assert budget is not None
                sampler = PermutationSampler(seed=seed)
                valuation = BetaShapleyValuation(
                    utility,
                    sampler,
                    MaxSamples(sampler, budget),
                    alpha=16,
                    beta=1,
                    show_warnings=False,
                )
            elif task == "banzhaf":
                assert budget is not None
                valuation = MSRBanzhafValuation(
                    utility, is_done=MaxChecks(budget), seed=seed, show_warnings=False
                )
            else:
                raise ValueError(f"unknown task {task}")
            result = valuation.fit(train).result
            sampled = getattr(getattr(valuation, "sampler", None), "n_samples", None)
            samples = int(sampled) if sampled is not None and task != "loo" else None
        values = _values(result, n)
        seconds = time.perf_counter() - start
    note = "" if task in ("knn-shapley", "data-oob") else UTILITY_NOTE
    return RunOutput(
        values=values,
        seconds=seconds,
        samples=samples,
        evaluations=box[0] if box is not None and n_jobs == 1 else None,
        settings=SETTINGS[task],
        note=note,
    )
