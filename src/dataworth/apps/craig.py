"""CRAIG coresets (Mirzasoleiman, Bilmes & Leskovec 2020): weighted subsets by facility location.

For the rows of one class with pairwise distances ``d_ij`` (Euclidean, between features or
per-sample gradients), CRAIG greedily maximises the facility-location function

    F(S) = sum_i max_{j in S} (C - d_ij),        C = max_ij d_ij,

so that every row is close to some selected row. Each selected row is then weighted by the
number of rows it represents (those closer to it than to any other selected row); training
with those weights approximates the full gradient. Selection runs per class, with class
quotas in proportion to class sizes, as in the paper.

The greedy is the lazy greedy of Minoux: marginal gains only shrink as the set grows, so a stale
gain is an upper bound and a candidate whose freshly computed gain beats every other bound is
the exact argmax (ties: lowest index). Distances are computed in blocks of columns on demand,
never as an ``n x n`` matrix, so memory stays at ``chunk_size * n`` floats per class.

Examples
--------
>>> import numpy as np
>>> X = np.array([[0.0], [0.1], [0.2], [5.0], [5.1]])
>>> cs = craig(X, n_select=2)
>>> cs.indices.tolist(), cs.weights.tolist()
([2, 3], [3.0, 2.0])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.distance import cdist
from sklearn.base import clone

from dataworth.apps.prune import class_quotas, label_groups, n_to_keep
from dataworth.errors import DataworthError

__all__ = ["SIMILARITIES", "Coreset", "craig", "facility_location", "logistic_gradients"]

#: What the distances are measured between.
SIMILARITIES: tuple[str, ...] = ("features", "gradients")


@dataclass(frozen=True, eq=False)
class Coreset:
    """A weighted subset of rows.

    Attributes
    ----------
    indices : ndarray of int
        Selected rows, sorted.
    weights : ndarray of float
        Number of rows each selected row represents (aligned with ``indices``; they sum to the
        number of rows considered). Pass them as ``sample_weight`` when training.
    order : ndarray of int
        Selected rows in greedy order, class by class.
    gains : ndarray of float
        Marginal gain of each selection (aligned with ``order``).
    objective : float
        ``F(S)`` summed over classes.
    metadata : dict
    """

    indices: NDArray[np.intp]
    weights: NDArray[np.float64]
    order: NDArray[np.intp]
    gains: NDArray[np.float64]
    objective: float
    metadata: dict[str, Any] = field(default_factory=dict)


def _check_chunk(chunk_size: Any) -> int:
    if not (isinstance(chunk_size, (int, np.integer)) and chunk_size >= 1):
        raise DataworthError(f"chunk_size must be a positive whole number; got {chunk_size!r}.")
    return int(chunk_size)


def _max_distance(F: NDArray[np.float64], chunk: int) -> float:
    n = F.shape[0]
    best = 0.0
    for lo in range(0, n, chunk):
        best = max(best, float(cdist(F[lo : lo + chunk], F).max()))
    return best


def facility_location(
    F: ArrayLike,
    n_select: int,
    *,
    chunk_size: int = 512,
    batch_size: int = 8,
) -> tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.float64], float]:
    """Lazy-greedy maximisation of ``F(S) = sum_i max_{j in S} (C - d_ij)``, ``C = max d``.

    Parameters
    ----------
    F : array-like of shape (n, d)
        Rows whose Euclidean distances define the similarities.
    n_select : int
        Size of the subset (at most ``n``).
    chunk_size : int, default=512
        Distance columns computed at once (memory: ``chunk_size * n`` floats).
    batch_size : int, default=8
        Stale candidates re-evaluated together once every bound is finite.

    Returns
    -------
    order : ndarray of int, shape (n_select,)
        Selected rows in greedy order (equal to the plain greedy argmax, ties lowest index).
    gains : ndarray of float, shape (n_select,)
        Marginal gain of each selection.
    weights : ndarray of float, shape (n_select,)
        Number of rows closest to each selected row (ties: earliest selected).
    objective : float
        ``F(S)`` of the selection.

    Examples
    --------
    >>> order, gains, weights, obj = facility_location([[0.0], [1.0], [10.0]], 2)
    >>> order.tolist(), weights.tolist(), gains.tolist()
    ([1, 2], [2.0, 1.0], [20.0, 9.0])
    """
    X = np.ascontiguousarray(F, dtype=np.float64)
    if X.ndim != 2:
        raise DataworthError(f"features must be a 2-D array; got shape {X.shape}.")
    n = X.shape[0]
    if not (isinstance(n_select, (int, np.integer)) and 0 <= n_select <= n):
        raise DataworthError(f"n_select must be a whole number in [0, {n}]; got {n_select!r}.")
    chunk = _check_chunk(chunk_size)
    batch = _check_chunk(batch_size)
    if n_select == 0:
        empty = np.empty(0)
        return np.empty(0, dtype=np.intp), empty, empty, 0.0
    if not np.isfinite(X).all():
        raise DataworthError("features contain NaN or infinite values.")
    C = _max_distance(X, chunk)
    covered = np.zeros(n)  # max over the selected j of (C - d_ij); 0 for the empty set
    bounds = np.full(n, np.inf)  # upper bounds on the marginal gains
    fresh = np.zeros(n, dtype=bool)
    order = np.empty(n_select, dtype=np.intp)
    gains = np.empty(n_select)
    for step in range(n_select):
        while True:
            j = int(np.argmax(bounds))  # lowest index among ties
            if fresh[j]:
                break
            cand = np.flatnonzero(~fresh & (bounds > -np.inf))  # stale and not selected
            size = chunk if bounds[j] == np.inf else batch
            if cand.size > size:
                top = np.argpartition(-bounds[cand], size - 1)[:size]
                cand = np.union1d(cand[top], [j])
            # One row per candidate, summed along the contiguous axis: the same floating-point
            # sum for a candidate whatever else is in the batch.
            sim = C - cdist(X[cand], X)
            bounds[cand] = np.maximum(sim - covered[None, :], 0.0).sum(axis=1)
            fresh[cand] = True
        order[step] = j
        gains[step] = bounds[j]
        np.maximum(covered, C - cdist(X[j : j + 1], X)[0], out=covered)
        bounds[j] = -np.inf
        fresh[:] = False
    nearest = np.empty(n, dtype=np.intp)
    for lo in range(0, n, chunk):
        nearest[lo : lo + chunk] = np.argmin(cdist(X[lo : lo + chunk], X[order]), axis=1)
    weights = np.bincount(nearest, minlength=n_select).astype(np.float64)
    return order, gains, weights, float(covered.sum())


def logistic_gradients(model: Any, X: ArrayLike, y: ArrayLike) -> NDArray[np.float64]:
    """Per-sample gradients of the log-loss of a fitted logistic regression.

    For row ``i`` with predicted probabilities ``p_i`` and one-hot label ``e_i`` the gradient
    with respect to the coefficients and intercepts is ``(p_i - e_i) outer [x_i, 1]``
    (binary: ``(p_i - y_i) [x_i, 1]``), flattened.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
    >>> logistic_gradients(LogisticRegression().fit(X, y), X, y).shape
    (4, 2)
    """
    Xa = np.asarray(X, dtype=np.float64)
    ya = np.asarray(y)
    if not hasattr(model, "predict_proba") or not hasattr(model, "classes_"):
        raise DataworthError(
            "gradients need a fitted classifier with predict_proba (logistic regression); "
            f"got {type(model).__name__}."
        )
    P = model.predict_proba(Xa)
    classes = np.asarray(model.classes_)
    if not np.isin(ya, classes).all():
        raise DataworthError("y holds labels the model was not fitted on.")
    ones = np.ones((Xa.shape[0], 1))
    Xb = np.hstack([Xa, ones])
    if classes.size == 2:
        residual = P[:, 1] - (ya == classes[1])
        return residual[:, None] * Xb
    residual = P - (ya[:, None] == classes[None, :])
    return (residual[:, :, None] * Xb[:, None, :]).reshape(Xa.shape[0], -1)


def craig(
    X: ArrayLike,
    y: ArrayLike | None = None,
    *,
    keep_fraction: float | None = None,
    n_select: int | None = None,
    similarity: str = "features",
    model: Any = None,
    per_class: bool = True,
    chunk_size: int = 512,
    n_jobs: int | None = 1,
    random_state: int | None = None,
) -> Coreset:
    """Select a CRAIG coreset: per class, greedy facility location, with weights.

    Parameters
    ----------
    X : array-like of shape (n, d)
        Features (or embeddings).
    y : array-like of shape (n,), optional
        Class labels; with ``per_class`` the coreset is chosen class by class, each class
        getting a share of ``n_select`` in proportion to its size (at least one row). Needed
        for ``similarity="gradients"``.
    keep_fraction : float in (0, 1], optional
        Size of the coreset as a fraction of the rows (rounded half up).
    n_select : int, optional
        Size of the coreset (give this or ``keep_fraction``).
    similarity : {"features", "gradients"}, default="features"
        Distances between the features (the paper's bound for convex models), or between the
        per-sample log-loss gradients of ``model`` fitted on all rows
        (:func:`logistic_gradients`).
    model : estimator, optional
        For ``"gradients"``: a logistic regression (cloned and fitted; default
        ``LogisticRegression(max_iter=1000)``).
    per_class : bool, default=True
    chunk_size : int, default=512
        Distance columns per block (memory ``chunk_size * n_class`` floats).
    n_jobs : int, optional
        Classes processed in parallel (joblib).
    random_state : int, optional
        Passed to the default model.

    Returns
    -------
    Coreset

    Examples
    --------
    >>> from dataworth.datasets import load_dataset
    >>> ds = load_dataset("iris")
    >>> cs = craig(ds.X, ds.y, keep_fraction=0.1)
    >>> cs.indices.size, int(cs.weights.sum())
    (15, 150)
    """
    Xa = np.asarray(X, dtype=np.float64)
    if Xa.ndim != 2:
        raise DataworthError(f"X must be a 2-D array of features; got shape {Xa.shape}.")
    n = Xa.shape[0]
    if n == 0:
        raise DataworthError("X has no rows; there is nothing to select.")
    if (keep_fraction is None) == (n_select is None):
        raise DataworthError("give exactly one of keep_fraction and n_select.")
    if keep_fraction is not None:
        k = n_to_keep(n, keep_fraction)
    else:
        if not (isinstance(n_select, (int, np.integer)) and 1 <= n_select <= n):
            raise DataworthError(f"n_select must be a whole number in [1, {n}]; got {n_select!r}.")
        k = int(n_select)
    if similarity not in SIMILARITIES:
        raise DataworthError(
            f"similarity must be one of {', '.join(SIMILARITIES)}; got {similarity!r}."
        )
    feats = Xa
    if similarity == "gradients":
        if y is None:
            raise DataworthError('similarity="gradients" needs the labels y.')
        if model is None:
            from dataworth.models import default_model

            model = default_model(random_state=random_state)  # a classifier
        fitted = clone(model).fit(Xa, np.asarray(y))
        feats = logistic_gradients(fitted, Xa, y)
    groups = label_groups(y if per_class else None, n)
    quotas = class_quotas([g.size for g in groups], k)
    parts = Parallel(n_jobs=n_jobs)(
        delayed(facility_location)(feats[g], int(q), chunk_size=chunk_size)
        for g, q in zip(groups, quotas, strict=True)
    )
    order = np.concatenate([g[p[0]] for g, p in zip(groups, parts, strict=True)]).astype(np.intp)
    gains = np.concatenate([p[1] for p in parts])
    weights = np.concatenate([p[2] for p in parts])
    objective = float(sum(p[3] for p in parts))
    sort = np.argsort(order, kind="stable")
    return Coreset(
        indices=order[sort],
        weights=weights[sort],
        order=order,
        gains=gains,
        objective=objective,
        metadata={
            "similarity": similarity,
            "per_class": per_class,
            "n_select": k,
            "class_sizes": [int(g.size) for g in groups],
            "class_quotas": quotas.tolist(),
            "fraction": k / n if n else math.nan,
        },
    )
