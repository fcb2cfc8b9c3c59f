"""Shared pieces of the benchmarks: data splits, budgets, thread limits, references, agreement.

Every library in a benchmark run gets the same arrays (``Split``), the same budget (``Budgets``)
and the same thread limits (:func:`limit_threads`); agreement is the Spearman rank correlation of
a library's values with a reference (:func:`spearman`).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_info, threadpool_limits

__all__ = [
    "FULL",
    "QUICK",
    "REFERENCE_SEED",
    "SEED",
    "TASKS",
    "Budgets",
    "RunOutput",
    "Split",
    "TaskSpec",
    "breast_cancer_split",
    "digits_split",
    "environment",
    "exact_knn_shapley",
    "exact_loo",
    "limit_threads",
    "package_version",
    "spearman",
    "split_for",
]

#: Seed of every benchmarked run (each library's own generator is seeded with it).
SEED = 0
#: Seed of the long dataworth reference runs (different from :data:`SEED` on purpose).
REFERENCE_SEED = 12345


@dataclass(frozen=True)
class Split:
    """Training and valuation arrays given to every library (labels are integer codes)."""

    name: str
    X_train: NDArray[np.float64]
    y_train: NDArray[np.int64]
    X_valid: NDArray[np.float64]
    y_valid: NDArray[np.int64]
    description: str

    @property
    def n_train(self) -> int:
        """Number of training rows (the points that are valued)."""
        return int(self.X_train.shape[0])

    @property
    def n_classes(self) -> int:
        """Number of classes in the training and valuation labels together."""
        return int(np.unique(np.concatenate([self.y_train, self.y_valid])).size)


def breast_cancer_split(seed: int = SEED) -> Split:
    """breast_cancer: 200 training / 100 valuation rows (stratified), standardised.

    The features are standardised with the mean and standard deviation of the 200 training
    rows only.
    """
    X, y = load_breast_cancer(return_X_y=True)
    X_tr, X_va, y_tr, y_va = train_test_split(
        X, y, train_size=200, test_size=100, stratify=y, random_state=seed
    )
    mean, std = X_tr.mean(axis=0), X_tr.std(axis=0)
    std[std == 0] = 1.0
    return Split(
        name="breast_cancer",
        X_train=np.ascontiguousarray((X_tr - mean) / std),
        y_train=y_tr.astype(np.int64),
        X_valid=np.ascontiguousarray((X_va - mean) / std),
        y_valid=y_va.astype(np.int64),
        description=(
            "breast_cancer, 200 training / 100 valuation rows (stratified, seed "
            f"{seed}), 30 features standardised with training statistics"
        ),
    )


def digits_split(seed: int = SEED) -> Split:
    """digits: 1,000 training / 400 valuation rows (stratified), raw 0-16 pixel features."""
    X, y = load_digits(return_X_y=True)
    X_tr, X_va, y_tr, y_va = train_test_split(
        X, y, train_size=1000, test_size=400, stratify=y, random_state=seed
    )
    return Split(
        name="digits",
        X_train=np.ascontiguousarray(X_tr, dtype=np.float64),
        y_train=y_tr.astype(np.int64),
        X_valid=np.ascontiguousarray(X_va, dtype=np.float64),
        y_valid=y_va.astype(np.int64),
        description=(
            f"digits, 1,000 training / 400 valuation rows (stratified, seed {seed}), "
            "64 raw pixel features (integers 0-16, so exact distance ties occur)"
        ),
    )


@dataclass(frozen=True)
class TaskSpec:
    """One benchmark task: a method on a dataset with a model."""

    name: str
    dataset: str
    model: str
    budget_kind: str  # "permutations", "subsets", "bags" or "exact"
    reference: str  # "exact" or "long-run"


TASKS: dict[str, TaskSpec] = {
    "knn-shapley": TaskSpec("knn-shapley", "digits", "KNN, K=5", "exact", "exact"),
    "permutation-shapley": TaskSpec(
        "permutation-shapley",
        "breast_cancer",
        "LogisticRegression(max_iter=1000)",
        "permutations",
        "long-run",
    ),
    "tmc-shapley": TaskSpec(
        "tmc-shapley",
        "breast_cancer",
        "LogisticRegression(max_iter=1000)",
        "permutations",
        "long-run",
    ),
    "beta-shapley": TaskSpec(
        "beta-shapley",
        "breast_cancer",
        "LogisticRegression(max_iter=1000)",
        "permutations",
        "long-run",
    ),
    "banzhaf": TaskSpec(
        "banzhaf", "breast_cancer", "LogisticRegression(max_iter=1000)", "subsets", "long-run"
    ),
    "data-oob": TaskSpec(
        "data-oob", "breast_cancer", "DecisionTreeClassifier(random_state=0)", "bags", "long-run"
    ),
    "loo": TaskSpec("loo", "breast_cancer", "LogisticRegression(max_iter=1000)", "exact", "exact"),
}


def split_for(task: str) -> Split:
    """The data split of a task."""
    return digits_split() if TASKS[task].dataset == "digits" else breast_cancer_split()


@dataclass(frozen=True)
class Budgets:
    """Monte Carlo budgets shared by every library in a run.

    ``permutations``: permutations for permutation, TMC and Beta Shapley (each costs
    ``n_train + 1`` utility evaluations without truncation); ``subsets``: sampled subsets for
    MSR Banzhaf (one evaluation each); ``bags``: bootstrap bags (trees) for Data-OOB;
    ``reference_factor``: the long dataworth reference run uses this many times the budget.
    """

    permutations: int
    subsets: int
    bags: int
    reference_factor: int

    def of(self, task: str, *, reference: bool = False) -> int | None:
        """The budget of a task (None for exact methods)."""
        kind = TASKS[task].budget_kind
        if kind == "exact":
            return None
        base = {"permutations": self.permutations, "subsets": self.subsets, "bags": self.bags}
        return base[kind] * (self.reference_factor if reference else 1)

    def describe(self, task: str, n_train: int) -> str:
        """Human-readable budget of a task, with its number of utility evaluations."""
        kind = TASKS[task].budget_kind
        if task == "knn-shapley":
            return "exact (closed form)"
        if task == "loo":
            return f"exact ({n_train + 1} evaluations)"
        b = self.of(task)
        assert b is not None
        if kind == "permutations":
            return f"{b} permutations x {n_train + 1} = {b * (n_train + 1):,} evaluations"
        if kind == "subsets":
            return f"{b:,} subsets = {b:,} evaluations"
        return f"{b} bags (trees)"


#: Budgets of the full run: 30 permutations x 201 = 6,030 utility evaluations and the same
#: number of MSR subsets (pyDVL's MSR, the slowest peer run, takes about 2.5 minutes on it),
#: 500 trees; the references use 40 times as much.
FULL = Budgets(permutations=30, subsets=6030, bags=500, reference_factor=40)
#: Budgets of ``--quick``: a smoke run of about two minutes.
QUICK = Budgets(permutations=3, subsets=600, bags=50, reference_factor=5)


@dataclass
class RunOutput:
    """What one library returned for one task."""

    values: NDArray[np.float64] | None
    seconds: float | None
    samples: int | None = None
    evaluations: int | None = None
    settings: str = ""
    note: str = ""
    error: str | None = None
    raw: Any = None  # the library's own result object, when kept


def spearman(a: NDArray[np.float64] | None, b: NDArray[np.float64] | None) -> float:
    """Spearman rank correlation over the points where both are finite (NaN if undefined)."""
    if a is None or b is None:
        return math.nan
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return math.nan
    return float(spearmanr(a[ok], b[ok]).statistic)


def exact_knn_shapley(split: Split, k: int) -> NDArray[np.float64]:
    """Exact KNN-Shapley values (Jia et al. 2019), written independently of any library.

    For each valuation point the training rows are sorted by squared Euclidean distance
    (float64; ties by training index, ``kind="stable"``), and the recursion of Theorem 1 runs
    from the farthest row to the nearest:
    ``s_n = m_n / n``, ``s_j = s_{j+1} + (m_j - m_{j+1}) / k * min(k, j) / j`` (``n >= k``).
    The value of a row is the mean over valuation points.
    """
    X, y = split.X_train, split.y_train
    n = X.shape[0]
    if n < k:
        raise ValueError("the closed form here assumes at least k training rows")
    total = np.zeros(n)
    for x, label in zip(split.X_valid, split.y_valid, strict=True):
        d = ((X - x) ** 2).sum(axis=1)
        order = np.argsort(d, kind="stable")
        m = (y[order] == label).astype(np.float64)
        s = np.empty(n)
        s[n - 1] = m[n - 1] / n
        for j in range(n - 2, -1, -1):  # 0-based position j is rank j + 1
            rank = j + 1
            s[j] = s[j + 1] + (m[j] - m[j + 1]) / k * min(k, rank) / rank
        total[order] += s
    return total / split.X_valid.shape[0]


def exact_loo(split: Split, model: Any) -> NDArray[np.float64]:
    """Leave-one-out accuracy drops computed directly with scikit-learn (n + 1 fits)."""

    def accuracy(mask: NDArray[np.bool_]) -> float:
        fitted = clone(model).fit(split.X_train[mask], split.y_train[mask])
        return float(np.mean(fitted.predict(split.X_valid) == split.y_valid))

    n = split.n_train
    full = accuracy(np.ones(n, dtype=bool))
    out = np.empty(n)
    for i in range(n):
        mask = np.ones(n, dtype=bool)
        mask[i] = False
        out[i] = full - accuracy(mask)
    return out


def limit_threads(n: int = 1) -> threadpool_limits:
    """Limit BLAS/OpenMP thread pools of this process to ``n`` threads (kept until exit)."""
    return threadpool_limits(limits=n)


def package_version(name: str) -> str | None:
    """Installed version of a distribution, or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Machine, interpreter, package versions and thread pools, for the JSON record."""
    pools = [
        {
            "user_api": p.get("user_api"),
            "internal_api": p.get("internal_api"),
            "version": p.get("version"),
            "num_threads": p.get("num_threads"),
            "architecture": p.get("architecture"),
        }
        for p in threadpool_info()
    ]
    names = ["numpy", "scipy", "scikit-learn", "joblib", "threadpoolctl", "torch"]
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "packages": {n: package_version(n) for n in names},
        "thread_pools": pools,
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
    }


def run_record(script: str, packages: Sequence[str] = ()) -> dict[str, Any]:
    """The header of a benchmark's JSON record: command line, date, interpreter, machine and the
    versions of dataworth, numpy, scipy, scikit-learn and ``packages``."""
    names = ["dataworth", "numpy", "scipy", "scikit-learn", *packages]
    return {
        "command": " ".join([f"python benchmarks/{script}", *sys.argv[1:]]),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores (shared)",
        "versions": {n: package_version(n) for n in names},
    }


def record_lines(record: dict[str, Any]) -> list[str]:
    """The Markdown header lines (command; date, machine and versions) of a :func:`run_record`."""
    versions = ", ".join(f"{k} {v}" for k, v in record["versions"].items())
    return [
        f"Command: `{record['command']}`  ",
        f"Date: {record['date']}; {record['machine']}; Python {record['python']}; {versions}; "
        f"BLAS limited to 1 thread; {record['seconds']:.0f} s.",
    ]
