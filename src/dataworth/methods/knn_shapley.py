"""Exact Shapley values of the K-nearest-neighbour utility in closed form (Jia et al. 2019).

For one valuation point ``(x, y)`` the utility of a subset ``S`` of training rows is

    u(S) = (1/K) * #{ the min(K, |S|) nearest neighbours of x within S whose label is y },

and over a valuation set it is the mean over valuation points. Sorting the training rows by
distance to ``x`` (nearest first, ties by training index), ``alpha_1 .. alpha_n``, with
``m_j = 1[y_alpha_j == y]``, the Shapley values are

    s(alpha_n) = m_n * min(K, n) / (K * n)            (= m_n / n when n >= K)
    s(alpha_j) = s(alpha_{j+1}) + (m_j - m_{j+1}) / K * min(K, j) / j

and the value of a row is the mean of ``s`` over the valuation points. The recursion is computed
for a chunk of valuation points at a time as a cumulative sum along the sorted rows, so memory is
bounded by ``chunk_size * n_train`` and no Python loop runs over rows or valuation points.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any, ClassVar

import numpy as np
from joblib import effective_n_jobs
from numpy.typing import NDArray
from scipy.spatial.distance import cdist

from dataworth import memory
from dataworth.base import Valuation
from dataworth.engine.runner import run_tasks, threads_if_local
from dataworth.errors import DataworthError
from dataworth.memory import check_memory, format_bytes
from dataworth.params import Constraint, Interval
from dataworth.result import ValuationResult

__all__ = ["KNNShapley"]


def _squared_distances(
    A: NDArray[np.float64], B: NDArray[np.float64], out: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Squared Euclidean distances between the rows of ``A`` and the rows of ``B``.

    ``scipy.spatial.distance.cdist`` sums ``(a_f - b_f)**2`` feature by feature for each pair:
    every entry is computed by the same sequence of correctly rounded operations, whatever the
    shapes, the chunking or the BLAS library. Identical training rows therefore get
    bit-identical distances (so they tie exactly and are ordered by index), values do not depend
    on ``chunk_size``, and there is none of the cancellation of the ``|a|^2 + |b|^2 - 2ab``
    expansion for points far from the origin.
    """
    return cdist(A, B, "sqeuclidean", out=out)


def _stable_argsort(dist: NDArray[np.float64]) -> NDArray[np.intp]:
    """Row-wise ``argsort(dist, kind="stable")``, faster when most rows have no ties.

    A row without equal entries has a unique sorted order, which any sort finds; only rows
    with ties are sorted again with a stable sort (ties by position, i.e. training index).
    """
    order = np.argsort(dist, axis=1)
    ranked = np.take_along_axis(dist, order, axis=1)
    tied = np.flatnonzero((ranked[:, 1:] == ranked[:, :-1]).any(axis=1))
    if tied.size:
        order[tied] = np.argsort(dist[tied], axis=1, kind="stable")
    return order


def _chunk_values(
    X_train: NDArray[np.float64],
    codes_train: NDArray[np.intp],
    X_valid: NDArray[np.float64],
    codes_valid: NDArray[np.intp],
    k: int,
    bounds: tuple[int, int],
) -> NDArray[np.float64]:
    """Sum over the valuation points ``bounds[0]:bounds[1]`` of their KNN-Shapley values."""
    lo, hi = bounds
    c, n = hi - lo, X_train.shape[0]
    dist = np.empty((c, n))
    _squared_distances(X_valid[lo:hi], X_train, dist)
    order = _stable_argsort(dist)  # nearest first, ties by training index
    del dist
    match = (codes_train[order] == codes_valid[lo:hi, None]).astype(np.int8)
    j = np.arange(1, n + 1)
    coef = np.minimum(k, j) / (k * j)  # coef[j-1] = min(K, j) / (K j)
    # Reversed order: position t holds alpha_{n-t}; s_rev[:, 0] = s(alpha_n) and each later
    # position adds (m_j - m_{j+1}) * coef_j, so a cumulative sum runs the recursion exactly.
    m_rev = match[:, ::-1]
    coef_rev = coef[::-1]
    s_rev = np.empty((c, n))
    s_rev[:, 0] = m_rev[:, 0] * coef_rev[0]
    s_rev[:, 1:] = np.diff(m_rev, axis=1) * coef_rev[1:]
    np.cumsum(s_rev, axis=1, out=s_rev)
    values = np.empty((c, n))
    np.put_along_axis(values, order[:, ::-1], s_rev, axis=1)
    return values.sum(axis=0)


#: Bytes per (valuation point, training row) of a chunk at its peak: the distances, the sort
#: order, the sorted distances or the recursion's terms and the values (float64 or intp), and
#: the label matches (int8).
_BYTES_PER_PAIR = 41


def _fitting_chunk(chunk_size: int, n_train: int, n_valid: int, n_jobs: int | None) -> int:
    """``chunk_size``, lowered if the chunks processed at once would not fit in memory.

    Raises :class:`DataworthError` when even one valuation point per chunk does not fit.
    """
    try:
        jobs = max(1, int(effective_n_jobs(n_jobs)))
    except (ValueError, TypeError):
        jobs = 1
    per_point = float(_BYTES_PER_PAIR) * n_train * min(jobs, max(n_valid, 1))
    size = min(chunk_size, max(n_valid, 1))
    if size * per_point <= memory.available_memory():
        return size
    check_memory(
        per_point,
        f"knn-shapley sorts the {n_train} training rows by distance to each valuation point, "
        f"{jobs} point(s) at once ({format_bytes(_BYTES_PER_PAIR * n_train)} each)",
        "use fewer training rows or parallel workers (--n-jobs).",
    )
    return max(1, int(memory.available_memory() // per_point))


class KNNShapley(Valuation):
    """Exact KNN-Shapley values in closed form (Jia et al. 2019).

    The game is the K-nearest-neighbour classifier's utility: for a valuation point, the share
    of its ``K`` nearest training neighbours (Euclidean distance on the features, ties broken by
    training index) that carry its label; over the valuation set, the mean. The Shapley values
    of that game have a closed form computed in ``O(n log n)`` per valuation point, so the
    values are exact (``stderr`` is 0) and no model is trained: the utility's ``model`` and
    ``scoring`` are not used, only its training and valuation data.

    Parameters
    ----------
    k : int, default=5
        Number of neighbours ``K``. Values of ``K`` above the number of training rows are
        allowed (every row is then a neighbour and the values are ``m_i / K``).
    chunk_size : int, default=256
        Valuation points processed together; memory is about ``41 * chunk_size * n_train``
        bytes per worker. Lowered (``metadata["chunk_size"]``) when the chunks processed at
        once would not fit in the available memory. Changing it changes the values only at
        rounding level (summation order).
    n_jobs : int or None, default=1
        Chunks processed in parallel (joblib; ``-1`` for all cores). The values are identical
        for any ``n_jobs``.
    progress : bool or None, default=None
        Show a progress bar over chunks; ``None``: when interactive (a terminal or a notebook).

    Notes
    -----
    Classification only: the utility's target must be class labels.

    With ``by_group=True`` the value of a group is the **sum of its rows' values** (recorded as
    ``metadata["group_aggregation"]``). This is the Shapley value of the game in which each row is
    a player, aggregated by group; it is not the Shapley value of the game between groups.

    Examples
    --------
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from dataworth.datasets import load_dataset
    >>> from dataworth.utility import ModelUtility
    >>> train, valid = load_dataset("iris").split(0.3, random_state=0)
    >>> u = ModelUtility(KNeighborsClassifier(5), train, valid)
    >>> res = KNNShapley(k=5).fit(u).result_
    >>> len(res) == u.n_players, bool((res.stderr == 0).all())
    (True, True)
    """

    name: ClassVar[str] = "knn-shapley"
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        **Valuation._parameter_constraints,
        "k": [Interval(Integral, 1, None)],
        "chunk_size": [Interval(Integral, 1, None)],
    }

    def __init__(
        self,
        k: int = 5,
        *,
        chunk_size: int = 256,
        n_jobs: int | None = 1,
        progress: bool | None = None,
    ) -> None:
        self.k = k
        self.chunk_size = chunk_size
        self.n_jobs = n_jobs
        self.progress = progress

    def _check(self, utility: Any) -> None:
        if not all(hasattr(utility, a) for a in ("train", "valid", "player_of_row")):
            raise DataworthError(
                "knn-shapley needs a data utility with training and valuation data "
                f"(a ModelUtility); got {type(utility).__name__}."
            )
        if not getattr(utility, "is_classifier", False):
            raise DataworthError(
                "knn-shapley needs class labels: it values rows for a nearest-neighbour "
                "classifier, but the utility's model is a regressor. Use a classifier model, "
                "or a method that supports regression (e.g. data-oob, tmc-shapley)."
            )
        if utility.valid.n_samples == 0 or utility.train.n_samples == 0:
            raise DataworthError("knn-shapley needs at least one training and one valuation row.")

    def _fit(self, utility: Any) -> ValuationResult:
        self._check(utility)
        train, valid = utility.train, utility.valid
        _, codes = np.unique(np.concatenate([train.y, valid.y]), return_inverse=True)
        codes = codes.astype(np.intp).ravel()
        n_train, n_valid = train.n_samples, valid.n_samples
        codes_train, codes_valid = codes[:n_train], codes[n_train:]
        k, size = int(self.k), _fitting_chunk(int(self.chunk_size), n_train, n_valid, self.n_jobs)
        bounds = [(lo, min(lo + size, n_valid)) for lo in range(0, n_valid, size)]
        X_train = np.ascontiguousarray(train.X)
        with threads_if_local():  # numpy's sorts and BLAS release the GIL: no processes
            parts = run_tasks(
                _chunk_values,
                bounds,
                n_jobs=self.n_jobs,
                progress=self.progress,
                desc=self.name,
                extra=(X_train, codes_train, valid.X, codes_valid, k),
            )
        total = np.zeros(n_train)
        for part in parts:  # in chunk order: identical for any n_jobs
            total += part
        row_values = total / n_valid
        metadata: dict[str, Any] = {"n_valuation_points": n_valid, "chunk_size": size}
        if getattr(utility, "by_group", False):
            values = np.bincount(
                utility.player_of_row, weights=row_values, minlength=utility.n_players
            )
            metadata["group_aggregation"] = "sum of row values"
        else:
            values = row_values
        return self._result(
            utility,
            values=values,
            stderr=np.zeros(utility.n_players),
            counts=np.full(utility.n_players, n_valid, dtype=np.int64),
            metadata=metadata,
        )
