"""Batch active learning: which unlabelled pool rows to label next.

Every strategy has one signature, ``strategy.select(labeled, pool_X, batch, model=...,
random_state=...)``, sees only the labelled rows and the *features* of the pool, and returns a
:class:`Selection`: the pool rows to label next (0-based positions in ``pool_X``, in the order
chosen) and the strategy's score of every pool row (higher = preferred).

Strategies (``STRATEGIES``):

``random``
    A uniform random batch (the score is the uniform draw that ranked the row).
``uncertainty``
    Margin sampling: the rows whose two most probable classes are closest; score
    ``1 - (p_top1 - p_top2)``.
``entropy``
    The rows of highest predictive entropy ``-sum_c p_c log p_c``.
``shapley-regression``
    Ghorbani, Zou & Esteva (2022), as in ``docs/conventions.md``: KNN-Shapley values of the labelled
    rows (by the caller's ``valuer``, e.g. ``dataworth.api.valuer("knn-shapley", k=3)``,
    cross-fitted over folds of the labelled rows, then ranked within each class; see
    :class:`ShapleyRegression`) -> a regressor from features
    to value -> the predicted value of every pool row (the score) -> keep the top
    ``keep_fraction`` of the pool -> k-center greedy on the kept rows, with the labelled rows as
    initial centres -> the batch; by default the kept rows are first narrowed to the most
    uncertain ones (margin), so the value filter is a pre-filter for uncertainty sampling.
``influence``
    Influence with pseudo-labels (after Liu et al. 2021): each pool row, with the label the
    current model predicts for it, is scored by how much up-weighting it is predicted to lower
    the loss on held-out labelled rows (cross-fitted; see :class:`InfluenceSampling`).

Examples
--------
>>> import numpy as np
>>> from dataworth.data import Dataset
>>> from dataworth.apps.select import select_batch
>>> rng = np.random.default_rng(0)
>>> pool = rng.normal(size=(200, 2))
>>> labeled = Dataset.from_arrays(rng.normal(size=(20, 2)), np.arange(20) % 2)
>>> idx = select_batch("uncertainty", labeled, pool, 5, random_state=0)
>>> idx.shape, len(set(idx.tolist()))
((5,), 5)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.distance import cdist
from sklearn.base import is_classifier

from dataworth.data import Dataset, is_categorical
from dataworth.errors import DataworthError
from dataworth.ranking import as_values
from dataworth.utility.model import fit_model

__all__ = [
    "STRATEGIES",
    "EntropySampling",
    "InfluenceSampling",
    "RandomSampling",
    "Selection",
    "ShapleyRegression",
    "Strategy",
    "UncertaintySampling",
    "k_center_greedy",
    "make_strategy",
    "pseudo_label_influence",
    "select_batch",
    "within_class_ranks",
]

_F64 = NDArray[np.float64]
_IDX = NDArray[np.intp]


# ---------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Selection:
    """The rows a strategy chose, and its score of every pool row.

    Attributes
    ----------
    indices : ndarray of int
        Pool rows to label next (0-based positions in the pool), in the order chosen.
    scores : ndarray of float, shape (n_pool,)
        The strategy's score of every pool row; higher means preferred (see ``score_name``).
    strategy : str
        Name of the strategy.
    score_name : str
        What the score is (e.g. ``"predicted value"``).
    details : dict
        Strategy-specific facts (rows kept by the filter, pseudo-labels, ...).
    """

    indices: _IDX
    scores: _F64
    strategy: str
    score_name: str
    details: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.indices.shape[0])


# ------------------------------------------------------------------------------ validation
def _is_whole(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_pool(labeled: Dataset, pool_X: ArrayLike, batch: int) -> _F64:
    if not isinstance(labeled, Dataset):
        raise DataworthError(
            "labeled must be a dataworth Dataset of the labelled rows; "
            f"got {type(labeled).__name__}."
        )
    X = np.asarray(pool_X, dtype=np.float64)
    if X.ndim != 2:
        raise DataworthError(f"pool_X must be a 2-D array (rows x features); got {X.ndim} dims.")
    if X.shape[1] != labeled.n_features:
        raise DataworthError(
            f"pool_X has {X.shape[1]} feature columns but the labelled rows have "
            f"{labeled.n_features}; they must have the same features."
        )
    if not np.all(np.isfinite(X)):
        row = int(np.flatnonzero(~np.isfinite(X).all(axis=1))[0])
        raise DataworthError(f"pool_X has missing or infinite values (first at pool row {row}).")
    if not _is_whole(batch) or batch < 1:
        raise DataworthError(f"batch must be a positive whole number; got {batch!r}.")
    if batch > X.shape[0]:
        raise DataworthError(
            f"batch ({batch}) is larger than the pool ({X.shape[0]} unlabelled rows)."
        )
    if labeled.n_samples == 0:
        raise DataworthError("labeled has no rows; label a few rows (e.g. at random) first.")
    return X


def _check_classes(labeled: Dataset, strategy: str) -> NDArray[Any]:
    if not is_categorical(labeled.y):
        raise DataworthError(
            f"{strategy} needs class labels in {labeled.target_name!r}; got real values. "
            "Active learning here is for classification."
        )
    classes = np.unique(labeled.y)
    if classes.size < 2:
        raise DataworthError(
            f"{strategy} needs at least two classes among the labelled rows; got only "
            f"{classes[0].item()!r}. Label a few more rows first (e.g. with strategy 'random')."
        )
    return classes


def _top(scores: _F64, k: int) -> _IDX:
    """Positions of the ``k`` highest scores, highest first; ties by position."""
    return np.argsort(-scores, kind="stable")[:k].astype(np.intp)


# ---------------------------------------------------------------------------- k-center greedy
def _min_sq_distances(X: _F64, centers: _F64, chunk_size: int) -> _F64:
    """Squared distance of each row of ``X`` to its nearest centre, in row chunks."""
    out = np.full(X.shape[0], np.inf)
    if centers.shape[0] == 0:
        return out
    rows = max(1, chunk_size * chunk_size // max(centers.shape[0], 1))
    for lo in range(0, X.shape[0], rows):
        hi = min(lo + rows, X.shape[0])
        out[lo:hi] = cdist(X[lo:hi], centers, "sqeuclidean").min(axis=1)
    return out


def k_center_greedy(
    X: ArrayLike,
    n: int,
    *,
    centers: ArrayLike | None = None,
    chunk_size: int = 1024,
) -> _IDX:
    """Greedy k-center (Sener & Savarese 2018): repeatedly take the row farthest from all centres.

    The distance of every candidate to its nearest centre is kept in one array; each pick is its
    ``argmax`` (ties: the lowest row), becomes a centre, and updates the array with one
    vectorised distance computation. Distances to the initial ``centers`` are computed in chunks
    (about ``chunk_size**2`` distances at a time), never as one dense matrix.

    Parameters
    ----------
    X : array-like of shape (m, d)
        Candidate rows.
    n : int
        Number of rows to pick (at most ``m``).
    centers : array-like of shape (c, d), optional
        Rows already covered (e.g. the labelled set). Without them the first pick is the row
        nearest the mean of ``X``.
    chunk_size : int, default=1024

    Returns
    -------
    ndarray of int
        Rows of ``X`` in the order picked; no row twice, even among duplicates.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [10.0], [11.0], [5.0]])
    >>> k_center_greedy(X, 2, centers=[[0.0]]).tolist()
    [3, 4]
    >>> k_center_greedy(X, 2).tolist()  # starts from the row nearest the mean (5.4)
    [4, 3]
    """
    A = np.asarray(X, dtype=np.float64)
    if A.ndim != 2:
        raise DataworthError(f"X must be a 2-D array; got {A.ndim} dimensions.")
    m = A.shape[0]
    if not _is_whole(n) or not 0 <= n <= m:
        raise DataworthError(f"n must be a whole number between 0 and {m}; got {n!r}.")
    if not _is_whole(chunk_size) or chunk_size < 1:
        raise DataworthError(f"chunk_size must be a positive whole number; got {chunk_size!r}.")
    picked = np.empty(n, dtype=np.intp)
    if n == 0:
        return picked
    if centers is None:
        C = np.empty((0, A.shape[1]))
    else:
        C = np.asarray(centers, dtype=np.float64).reshape(-1, A.shape[1])
    nearest = _min_sq_distances(A, C, int(chunk_size))
    start = 0
    if C.shape[0] == 0:
        first = int(np.argmin(cdist(A, A.mean(axis=0, keepdims=True), "sqeuclidean")[:, 0]))
        picked[0] = first
        nearest = cdist(A, A[first : first + 1], "sqeuclidean")[:, 0]
        nearest[first] = -np.inf
        start = 1
    for t in range(start, n):
        i = int(np.argmax(nearest))
        picked[t] = i
        np.minimum(nearest, cdist(A, A[i : i + 1], "sqeuclidean")[:, 0], out=nearest)
        nearest[picked[: t + 1]] = -np.inf  # never pick a row twice (duplicates have 0 distance)
    return picked


# ---------------------------------------------------------------------------------- strategies
class Strategy:
    """Base class: ``select(labeled, pool_X, batch, *, model, random_state) -> Selection``."""

    name: ClassVar[str] = ""
    score_name: ClassVar[str] = "score"
    needs_model: ClassVar[bool] = True

    def select(
        self,
        labeled: Dataset,
        pool_X: ArrayLike,
        batch: int,
        *,
        model: Any = None,
        random_state: int | np.random.Generator | None = None,
    ) -> Selection:
        """Choose ``batch`` rows of ``pool_X`` to label next.

        Parameters
        ----------
        labeled : Dataset
            The rows labelled so far (features and labels).
        pool_X : array-like of shape (n_pool, n_features)
            Features of the unlabelled pool; its labels are never seen.
        batch : int
            Number of rows to choose.
        model : estimator, optional
            The classifier being trained (unfitted; cloned before every fit). Default: logistic
            regression.
        random_state : int, Generator or None
            Seed for the strategy's randomness (only ``random`` and the cross-fitting folds).
        """
        X = _check_pool(labeled, pool_X, batch)
        if self.uses_model:
            if model is None:
                from dataworth.models import default_model

                seed: Any = random_state if _is_whole(random_state) else None
                model = default_model(random_state=seed)  # a classifier
            if not is_classifier(model):
                raise DataworthError(f"{self.name} needs a classifier; got {type(model).__name__}.")
        rng = np.random.default_rng(random_state)
        return self._select(labeled, X, int(batch), model, rng)

    @property
    def uses_model(self) -> bool:
        """Whether :meth:`select` fits the model (``needs_model`` unless parameters decide)."""
        return self.needs_model

    def _select(
        self, labeled: Dataset, X: _F64, batch: int, model: Any, rng: np.random.Generator
    ) -> Selection:
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


class RandomSampling(Strategy):
    """A uniform random batch: the baseline every strategy is measured against.

    Examples
    --------
    >>> import numpy as np
    >>> from dataworth.data import Dataset
    >>> lab = Dataset.from_arrays(np.zeros((2, 1)), [0, 1])
    >>> RandomSampling().select(lab, np.zeros((10, 1)), 3, random_state=0).indices.size
    3
    """

    name = "random"
    score_name = "random draw"
    needs_model = False

    def _select(
        self, labeled: Dataset, X: _F64, batch: int, model: Any, rng: np.random.Generator
    ) -> Selection:
        scores = np.asarray(rng.random(X.shape[0]), dtype=np.float64)
        return Selection(_top(scores, batch), scores, self.name, self.score_name)


def _probabilities(labeled: Dataset, X: _F64, model: Any, strategy: str) -> _F64:
    _check_classes(labeled, strategy)
    fitted = fit_model(model, labeled.X, labeled.y)
    if not hasattr(fitted, "predict_proba"):
        raise DataworthError(
            f"{strategy} needs a model with predict_proba; {type(fitted).__name__} has none."
        )
    return np.asarray(fitted.predict_proba(X), dtype=np.float64)


def _uncertainty(P: _F64, kind: str) -> _F64:
    """``1 - (p_(1) - p_(2))`` (``"margin"``) or ``-sum_c p_c log p_c`` (``"entropy"``)."""
    if kind == "margin":
        if P.shape[1] < 2:
            return np.ones(P.shape[0])
        top2 = -np.partition(-P, 1, axis=1)[:, :2]
        return np.asarray(1.0 - (top2[:, 0] - top2[:, 1]), dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(-np.where(P > 0, P * np.log(P), 0.0).sum(axis=1), dtype=np.float64)


class UncertaintySampling(Strategy):
    """Margin sampling: the rows whose two most probable classes are closest.

    Score ``1 - (p_(1) - p_(2))`` from the model fitted on the labelled rows (1 = a tie).

    Examples
    --------
    >>> import numpy as np
    >>> from dataworth.data import Dataset
    >>> lab = Dataset.from_arrays([[-2.0], [-1.0], [1.0], [2.0]], [0, 0, 1, 1])
    >>> UncertaintySampling().select(lab, [[-3.0], [0.1], [3.0]], 1).indices.tolist()
    [1]
    """

    name = "uncertainty"
    score_name = "1 - margin"

    def _select(
        self, labeled: Dataset, X: _F64, batch: int, model: Any, rng: np.random.Generator
    ) -> Selection:
        scores = _uncertainty(_probabilities(labeled, X, model, self.name), "margin")
        return Selection(_top(scores, batch), scores, self.name, self.score_name)


class EntropySampling(Strategy):
    """The rows of highest predictive entropy ``-sum_c p_c log p_c`` (natural log).

    Examples
    --------
    >>> import numpy as np
    >>> from dataworth.data import Dataset
    >>> lab = Dataset.from_arrays([[-2.0], [-1.0], [1.0], [2.0]], [0, 0, 1, 1])
    >>> EntropySampling().select(lab, [[-3.0], [0.1], [3.0]], 1).indices.tolist()
    [1]
    """

    name = "entropy"
    score_name = "entropy"

    def _select(
        self, labeled: Dataset, X: _F64, batch: int, model: Any, rng: np.random.Generator
    ) -> Selection:
        scores = _uncertainty(_probabilities(labeled, X, model, self.name), "entropy")
        return Selection(_top(scores, batch), scores, self.name, self.score_name)


def _folds(y: NDArray[Any], n_folds: int, rng: np.random.Generator) -> list[_IDX]:
    """``n_folds`` disjoint folds of the rows, stratified by class where every class allows."""
    from sklearn.model_selection import KFold, StratifiedKFold

    seed = int(rng.integers(2**31 - 1))
    _, counts = np.unique(y, return_counts=True)
    splitter: Any
    if counts.min() >= n_folds:
        splitter = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_folds, shuffle=True, random_state=seed)
    return [np.sort(test).astype(np.intp) for _, test in splitter.split(np.zeros(y.size), y)]


def _check_folds(n_folds: Any, n_rows: int) -> int:
    """``n_folds``, validated, and at most the number of labelled rows."""
    if not _is_whole(n_folds) or n_folds < 2:
        raise DataworthError(f"n_folds must be a whole number >= 2; got {n_folds!r}.")
    return min(int(n_folds), n_rows)


def within_class_ranks(values: ArrayLike, y: ArrayLike) -> _F64:
    """Each value's rank among the values of its own class, scaled to (0, 1).

    ``(rank - 0.5) / n_c`` with ``rank`` the average rank (ties share it) of the value among the
    ``n_c`` rows of its class: the lowest of a class gets ``0.5 / n_c``, the highest
    ``1 - 0.5 / n_c``, a lone row ``0.5``.

    Examples
    --------
    >>> within_class_ranks([0.3, 0.1, 0.9, 0.2, 0.2], ["a", "a", "b", "b", "b"]).round(3).tolist()
    [0.75, 0.25, 0.833, 0.333, 0.333]
    """
    from scipy.stats import rankdata

    v = np.asarray(values, dtype=np.float64)
    labels = np.asarray(y)
    if v.ndim != 1 or labels.shape != v.shape:
        raise DataworthError(
            f"values and y must be 1-D and of the same length; got shapes {v.shape} and "
            f"{labels.shape}."
        )
    _, codes = np.unique(labels, return_inverse=True)
    codes = codes.ravel()
    out = np.empty_like(v)
    for c in range(int(codes.max()) + 1 if codes.size else 0):  # a loop over classes, not rows
        rows = np.flatnonzero(codes == c)
        out[rows] = (rankdata(v[rows]) - 0.5) / rows.size
    return out


_ACQUISITIONS = (None, "margin", "entropy")


class ShapleyRegression(Strategy):
    """Shapley-regression batch selection (Ghorbani, Zou & Esteva 2022).

    1. **Values of the labelled rows**, by ``valuer`` (the paper's KNN-Shapley:
       ``dataworth.api.valuer("knn-shapley", k=3)``, exact, ``k`` neighbours) on the features, or on
       ``embedding(X)`` when given. The labelled rows are cut into ``n_folds`` folds (stratified,
       seeded); for each fold, the *other* rows are valued with the fold as valuation set, and a
       row's value is the mean over the ``n_folds - 1`` runs that valued it. No row is ever its own
       valuation point, so a mislabelled row, or a row from a region of unreliable labels, gets a
       low value.
    2. **Regression target** (``within_class=True``): each value is replaced by its rank among
       the values of its own labelled class (:func:`within_class_ranks`). A KNN-Shapley value is
       a mean over the valuation points, so it grows with the number of valuation points of the
       row's class: without this step the rows of a class that is rare among the labelled rows
       get low values, the filter drops that class from the pool, and it stays rare.
    3. **Regressor** from features to the target (``regressor``, default a distance-weighted
       5-nearest-neighbour regressor) fitted on the labelled rows; it scores every pool row
       (its predicted value).
    4. **Filter**: keep the ``ceil(keep_fraction * n_pool)`` highest-scoring pool rows (at least
       ``batch``).
    5. **Acquisition** (``acquisition``, default ``"margin"``): the model fitted on the
       labelled rows ranks the kept rows by uncertainty (margin, or ``"entropy"``) and the
       ``candidates * batch`` most uncertain stay candidates: the value filter is a pre-filter
       for another acquisition function. With ``acquisition=None`` every kept row is a
       candidate (the pipeline of ``docs/conventions.md`` without this step).
    6. **Diversity**: :func:`k_center_greedy` on the candidates, with the labelled rows as
       initial centres, picks the batch (``diversity=False``: the first ``batch`` candidates,
       i.e. the most uncertain, or the highest predicted values without an acquisition).

    The defaults (``k=3`` for the valuer, ``n_folds=10``, ``within_class=True``,
    ``keep_fraction=0.5``, ``acquisition="margin"``, ``candidates=2``) were chosen on validation
    runs (validation
    splits carved from the training side, seeds never used for the reported figures); see
    ``docs/select.md``.

    Parameters
    ----------
    valuer : callable
        ``valuer(train, valid) -> ValuationResult or array``: the values of the rows of
        ``train`` against ``valid`` (one call per fold). The strategy never values by itself
        (the applications take values); :func:`dataworth.api.valuer` makes one, and
        ``dataworth select`` uses ``valuer("knn-shapley", k=--k)``. Required by :meth:`select`.
    keep_fraction : float, default=0.5
        Share of the pool kept by the value filter, in (0, 1].
    regressor : estimator, optional
        Any scikit-learn regressor (cloned before fitting).
    n_folds : int, default=10
        Folds of the cross-fitted valuation (>= 2; at most the number of labelled rows). More
        folds value each row with more of the other rows as training set.
    embedding : callable, optional
        ``embedding(X) -> Z``: values, regression and distances are computed on ``Z``.
    diversity : bool, default=True
        Step 6; without it the batch is the first ``batch`` candidates.
    within_class : bool, default=True
        Step 2; without it the regressor is fitted to the raw values.
    acquisition : {"margin", "entropy", None}, default="margin"
        Step 5. With one, the strategy fits the model (``model`` of :meth:`select`, default
        logistic regression); with ``None`` it uses no model.
    candidates : int, default=2
        With an acquisition, ``candidates * batch`` kept rows go to the diversity step.

    Examples
    --------
    >>> import numpy as np
    >>> from dataworth.data import Dataset
    >>> rng = np.random.default_rng(0)
    >>> from dataworth.api import valuer
    >>> X = rng.normal(size=(40, 2)); y = (X[:, 0] > 0).astype(int)
    >>> strategy = ShapleyRegression(valuer=valuer("knn-shapley", k=3))
    >>> sel = strategy.select(Dataset.from_arrays(X, y), rng.normal(size=(100, 2)), 8)
    >>> len(sel), sel.details["n_kept"]
    (8, 50)
    """

    name = "shapley-regression"
    score_name = "predicted value"
    needs_model = True  # for the acquisition step; ``uses_model`` is False without one

    def __init__(
        self,
        *,
        valuer: Callable[[Dataset, Dataset], Any] | None = None,
        keep_fraction: float = 0.5,
        regressor: Any = None,
        n_folds: int = 10,
        embedding: Any = None,
        diversity: bool = True,
        within_class: bool = True,
        acquisition: str | None = "margin",
        candidates: int = 2,
    ) -> None:
        self.valuer = valuer
        self.keep_fraction = keep_fraction
        self.regressor = regressor
        self.n_folds = n_folds
        self.embedding = embedding
        self.diversity = diversity
        self.within_class = within_class
        self.acquisition = acquisition
        self.candidates = candidates

    @property
    def uses_model(self) -> bool:
        """Whether :meth:`select` fits the model (only with an ``acquisition``)."""
        return self.acquisition is not None

    def labeled_values(
        self, labeled: Dataset, random_state: int | np.random.Generator | None = None
    ) -> _F64:
        """Cross-fitted KNN-Shapley value of every labelled row (step 1)."""
        rng = np.random.default_rng(random_state)
        _check_classes(labeled, self.name)
        return self._values(labeled, self._embed(labeled.X), rng)

    def _embed(self, X: _F64) -> _F64:
        if self.embedding is None:
            return X
        Z = np.asarray(self.embedding(X), dtype=np.float64)
        if Z.ndim != 2 or Z.shape[0] != X.shape[0]:
            raise DataworthError(
                f"embedding must map {X.shape[0]} rows to a 2-D array with as many rows; "
                f"got shape {Z.shape}."
            )
        return Z

    def _values(self, labeled: Dataset, Z: _F64, rng: np.random.Generator) -> _F64:
        if not callable(self.valuer):
            raise DataworthError(
                "shapley-regression values the labelled rows with its valuer, which is not set: "
                "pass valuer=dataworth.api.valuer('knn-shapley', k=3) (the paper's KNN-Shapley) "
                "or any function (train, valid) -> values."
            )
        n = labeled.n_samples
        n_folds = _check_folds(self.n_folds, n)
        data = Dataset.from_arrays(Z, labeled.y)
        total = np.zeros(n)
        count = np.zeros(n)
        for fold in _folds(labeled.y, n_folds, rng):
            rest = np.setdiff1d(np.arange(n), fold)
            total[rest] += as_values(self.valuer(data.take(rest), data.take(fold)), n=rest.size)
            count[rest] += 1
        return total / count

    def _check_params(self) -> None:
        if not (
            isinstance(self.keep_fraction, (int, float))
            and not isinstance(self.keep_fraction, bool)
            and 0 < self.keep_fraction <= 1
        ):
            raise DataworthError(
                f"keep_fraction must be a number in (0, 1]; got {self.keep_fraction!r}."
            )
        if self.acquisition not in _ACQUISITIONS:
            raise DataworthError(
                f"acquisition must be None, 'margin' or 'entropy'; got {self.acquisition!r}."
            )
        if not _is_whole(self.candidates) or self.candidates < 1:
            raise DataworthError(
                f"candidates must be a positive whole number; got {self.candidates!r}."
            )

    def _select(
        self, labeled: Dataset, X: _F64, batch: int, model: Any, rng: np.random.Generator
    ) -> Selection:
        from sklearn.neighbors import KNeighborsRegressor

        self._check_params()
        _check_classes(labeled, self.name)
        Z_lab = self._embed(labeled.X)
        Z_pool = self._embed(X)
        values = self._values(labeled, Z_lab, rng)
        targets = within_class_ranks(values, labeled.y) if self.within_class else values
        regressor = (
            KNeighborsRegressor(n_neighbors=min(5, labeled.n_samples), weights="distance")
            if self.regressor is None
            else self.regressor
        )
        fitted = fit_model(regressor, Z_lab, targets)
        scores = np.asarray(fitted.predict(Z_pool), dtype=np.float64).ravel()
        n_keep = max(batch, math.ceil(self.keep_fraction * X.shape[0]))
        kept = _top(scores, n_keep)
        candidates = kept
        if self.acquisition is not None:
            P = _probabilities(labeled, X[kept], model, self.name)
            uncertainty = _uncertainty(P, self.acquisition)
            candidates = kept[_top(uncertainty, min(kept.size, int(self.candidates) * batch))]
        if self.diversity:
            chosen = candidates[k_center_greedy(Z_pool[candidates], batch, centers=Z_lab)]
        else:
            chosen = candidates[:batch]
        details = {
            "n_folds": _check_folds(self.n_folds, labeled.n_samples),
            "n_kept": int(n_keep),
            "kept": kept,
            "n_candidates": int(candidates.size),
            "value_threshold": float(scores[kept[-1]]),
            "labeled_values": values,
            "targets": targets,
            "acquisition": self.acquisition,
        }
        score_name = "predicted within-class value rank" if self.within_class else self.score_name
        return Selection(chosen, scores, self.name, score_name, details)


class InfluenceSampling(Strategy):
    """Influence of each pool row under its pseudo-label (after Liu et al. 2021, ISAL).

    Exactly what is computed, with ``LinearInfluence`` (closed form, exact Hessian; the model
    must be a scikit-learn ``LogisticRegression``): the labelled rows are cut into ``n_folds``
    folds. For each fold ``f``, the model is fitted on the other labelled rows (parameters
    ``theta_f``, Hessian ``H_f`` of its regularised mean training loss), and

    * the pseudo-label of pool row ``z`` is the class ``theta_f`` predicts for it;
    * ``g_z`` is the gradient of the loss of ``(z, pseudo-label)`` at ``theta_f``;
    * ``g_f`` is the mean gradient of the loss of the fold's rows (with their true labels);
    * ``score_f(z) = g_f^T H_f^-1 g_z = -I(z, loss on fold f)``: positive when up-weighting
      ``z`` with its pseudo-label is predicted to *lower* the loss on labelled rows that the
      model did not see (the library's value convention: helpful is positive).

    The score is the mean over folds, and the batch is the ``batch`` highest-scoring rows.
    Fold rows whose class the fold's model never saw are left out of ``g_f``; folds whose
    training part has a single class are skipped. A held-out reference is what makes the score
    informative: on the training rows themselves the mean loss gradient is (minus) the
    regularisation gradient at the optimum, close to zero.

    Parameters
    ----------
    n_folds : int, default=3
    damping : float, default=0.0
        Added to the diagonal of each Hessian.

    Examples
    --------
    >>> import numpy as np
    >>> from dataworth.data import Dataset
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 2)); y = (X[:, 0] > 0).astype(int)
    >>> sel = InfluenceSampling().select(Dataset.from_arrays(X, y), rng.normal(size=(50, 2)), 4)
    >>> sel.scores.shape, len(sel)
    ((50,), 4)
    """

    name = "influence"
    score_name = "predicted loss decrease"

    def __init__(self, *, n_folds: int = 3, damping: float = 0.0) -> None:
        self.n_folds = n_folds
        self.damping = damping

    def _select(
        self, labeled: Dataset, X: _F64, batch: int, model: Any, rng: np.random.Generator
    ) -> Selection:
        _check_classes(labeled, self.name)
        n = labeled.n_samples
        n_folds = _check_folds(self.n_folds, n)
        total = np.zeros(X.shape[0])
        used = 0
        for fold in _folds(labeled.y, n_folds, rng):
            rest = np.setdiff1d(np.arange(n), fold)
            if np.unique(labeled.y[rest]).size < 2:
                continue
            known = np.isin(labeled.y[fold], labeled.y[rest])
            if not known.any():
                continue
            ref = fold[known]
            total += pseudo_label_influence(
                model,
                labeled.X[rest],
                labeled.y[rest],
                labeled.X[ref],
                labeled.y[ref],
                X,
                damping=self.damping,
            )
            used += 1
        if used == 0:
            raise DataworthError(
                "influence needs at least two classes in the training part of some fold; "
                "label more rows (or use fewer folds) first."
            )
        scores = total / used
        details = {"n_folds_used": used}
        return Selection(_top(scores, batch), scores, self.name, self.score_name, details)


def pseudo_label_influence(
    model: Any,
    X_train: ArrayLike,
    y_train: ArrayLike,
    X_ref: ArrayLike,
    y_ref: ArrayLike,
    X_pool: ArrayLike,
    *,
    damping: float = 0.0,
    block_size: int = 4096,
) -> _F64:
    """``g_ref^T H^-1 g_z`` for each pool row ``z`` under its pseudo-label (one fold's score).

    ``model`` (a ``LogisticRegression``) is fitted on ``X_train, y_train`` through
    :class:`~dataworth.influence.LinearInfluence` (exact optimum, exact Hessian ``H`` of the
    regularised mean training loss, plus ``damping``); ``g_ref`` is the mean loss gradient of the
    reference rows ``X_ref, y_ref``; ``g_z`` the loss gradient of pool row ``z`` with the label
    the fitted model predicts for it. The result is ``-I(z, mean reference loss)``: to first
    order, adding ``z`` with sample weight ``w`` to the training rows lowers the mean reference
    loss by ``w * score / n_train``. Pool rows are processed ``block_size`` at a time.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 2)); y = (X[:, 0] > 0).astype(int)
    >>> s = pseudo_label_influence(LogisticRegression(), X[:40], y[:40], X[40:], y[40:], X[:5])
    >>> s.shape
    (5,)
    """
    from dataworth.influence import LinearInfluence

    infl = LinearInfluence(model, X_train, y_train, damping=damping)
    g_ref = infl.test_gradients(X_ref, y_ref, "loss").mean(axis=0)
    solved = infl.solve(g_ref[None, :])[0]
    P = np.asarray(X_pool, dtype=np.float64)
    out = np.empty(P.shape[0])
    for lo in range(0, P.shape[0], block_size):
        block = P[lo : lo + block_size]
        pseudo = infl.model_.predict(block)
        out[lo : lo + block_size] = infl.test_gradients(block, pseudo, "loss") @ solved
    return out


#: strategy name -> class
STRATEGIES: dict[str, type[Strategy]] = {
    "random": RandomSampling,
    "uncertainty": UncertaintySampling,
    "entropy": EntropySampling,
    "shapley-regression": ShapleyRegression,
    "influence": InfluenceSampling,
}


def make_strategy(name: str | Strategy, **params: Any) -> Strategy:
    """A strategy object from its name (see :data:`STRATEGIES`) and parameters.

    Examples
    --------
    >>> make_strategy("shapley-regression", keep_fraction=0.3).keep_fraction
    0.3
    """
    if isinstance(name, Strategy):
        if params:
            raise DataworthError("parameters can only be given with a strategy name.")
        return name
    if name not in STRATEGIES:
        raise DataworthError(f"unknown strategy {name!r}; choose one of: {', '.join(STRATEGIES)}.")
    cls = STRATEGIES[name]
    try:
        return cls(**params)
    except TypeError:
        import inspect

        accepted = [p for p in inspect.signature(cls).parameters if p != "self"]
        raise DataworthError(
            f"strategy {name!r} does not take parameter(s) {', '.join(sorted(params))}; "
            f"it takes: {', '.join(accepted) or 'none'}."
        ) from None


def select_batch(
    strategy: str | Strategy,
    labeled: Dataset,
    pool_X: ArrayLike,
    batch: int,
    *,
    model: Any = None,
    random_state: int | np.random.Generator | None = None,
    **params: Any,
) -> _IDX:
    """Pool rows (0-based positions in ``pool_X``) to label next, in the order chosen.

    ``strategy`` is a name from :data:`STRATEGIES` (``params`` go to its constructor) or a
    :class:`Strategy`. For the scores as well, use ``make_strategy(name).select(...)``.

    Examples
    --------
    >>> import numpy as np
    >>> from dataworth.data import Dataset
    >>> lab = Dataset.from_arrays([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    >>> select_batch("random", lab, np.arange(10.0)[:, None], 3, random_state=0).size
    3
    """
    chosen = make_strategy(strategy, **params).select(
        labeled, pool_X, batch, model=model, random_state=random_state
    )
    return chosen.indices
