"""Batched ``Ridge`` and ``LinearRegression``: one weighted least-squares fit per row of weights.

Each row of ``weights`` (shape ``(B, n_train)``) holds sample weights: 0/1 for a subset, counts
for a bootstrap bag. Integer weights mean repeated rows, exactly as scikit-learn's
``sample_weight`` does for these models, so a fit here equals scikit-learn's fit on the selected
(or repeated) rows.

* :class:`RidgeTrainer` solves the weighted, weight-centred normal equations of all subsets at
  once (Gram matrices by one matrix product, then ``np.linalg.solve`` on stacked ``(B, d, d)``
  systems). The intercept is not penalised.
* :class:`LeastSquaresTrainer` returns the *minimum-norm* least-squares solution, like
  :func:`scipy.linalg.lstsq` (which scikit-learn calls), through a stacked singular value
  decomposition of the weight-centred design with the same relative cutoff.

Examples
--------
>>> import numpy as np
>>> from sklearn.linear_model import Ridge
>>> rng = np.random.default_rng(0)
>>> X, y = rng.normal(size=(20, 3)), rng.normal(size=20)
>>> trainer = make_ridge_trainer(Ridge(alpha=1.0), X, y, 0)
>>> masks = (rng.random((4, 20)) < 0.5).astype(float)
>>> pred = trainer.fit_predict(masks, X[:5])
>>> ref = Ridge(alpha=1.0).fit(X[masks[0] > 0], y[masks[0] > 0]).predict(X[:5])
>>> pred.shape, bool(np.allclose(pred[0], ref))
((4, 5), True)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import sklearn
from numpy.typing import ArrayLike, NDArray

from dataworth.utility.batched import Unsupported

__all__ = [
    "LeastSquaresTrainer",
    "RidgeTrainer",
    "as_matrix",
    "blocks",
    "check_eval",
    "check_weights",
    "compact_blocks",
    "make_ols_trainer",
    "make_ridge_trainer",
]

#: Largest temporary array (in float64 elements) built for one block of subsets (32 MiB).
_BLOCK_ELEMENTS = 1 << 22


def _sklearn_version() -> tuple[int, int]:
    major, minor = (int(p) for p in re.findall(r"\d+", sklearn.__version__)[:2])
    return major, minor


# ---------------------------------------------------------------------- shared helpers
def as_matrix(X: ArrayLike, name: str = "X") -> NDArray[np.float64]:
    arr = np.ascontiguousarray(X, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains missing or infinite values.")
    return arr


def check_weights(weights: ArrayLike, n_train: int) -> NDArray[np.float64]:
    """Weights as a float (B, n_train) array; every row non-negative with a positive total."""
    W = np.asarray(weights, dtype=np.float64)
    if W.ndim == 1:
        W = W[None, :]
    if W.ndim != 2 or W.shape[1] != n_train:
        raise ValueError(f"weights must have shape (B, {n_train}); got {W.shape}.")
    if not np.all(np.isfinite(W)) or np.any(W < 0):
        raise ValueError("weights must be finite and non-negative.")
    if W.shape[0] and not np.all(W.sum(axis=1) > 0):
        raise ValueError("every row of weights needs a positive total weight (a non-empty fit).")
    return W


def check_eval(X_eval: ArrayLike, n_features: int) -> NDArray[np.float64]:
    Xe = as_matrix(X_eval, "X_eval")
    if Xe.shape[1] != n_features:
        raise ValueError(f"X_eval has {Xe.shape[1]} features; the training data {n_features}.")
    return Xe


#: Subsets per block of :func:`compact_blocks` (at most; fewer when rows are many).
_GROUP = 32


def compact_blocks(
    W: NDArray[np.float64], cost_per_row: int
) -> Iterator[tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]]:
    """Blocks of subsets of similar size, each with its rows of positive weight gathered.

    Subsets are sorted by how many rows they hold and cut into blocks of at most ``_GROUP``
    subsets (fewer if ``r * cost_per_row`` elements per subset would pass ``_BLOCK_ELEMENTS``),
    so that padding every subset of a block to the block's largest ``r`` wastes little.
    Yields ``(which, idx, Wc)``: the block's subsets (positions in ``W``), and for each the row
    positions with positive weight first (original order), then padding rows, and their weights
    (0 for padding), both of shape (len(which), r).
    """
    present = W > 0
    sizes = present.sum(axis=1)
    order = np.argsort(sizes, kind="stable")
    start, B = 0, W.shape[0]
    while start < B:
        end = min(start + _GROUP, B)
        r = max(int(sizes[order[end - 1]]), 1)
        end = min(end, start + max(1, _BLOCK_ELEMENTS // max(r * cost_per_row, 1)))
        r = max(int(sizes[order[end - 1]]), 1)
        which = order[start:end]
        idx = np.argsort(~present[which], axis=1, kind="stable")[:, :r]
        yield which, idx, np.take_along_axis(W[which], idx, axis=1)
        start = end


def blocks(n_items: int, cost_per_item: int) -> Iterator[slice]:
    """Slices of ``range(n_items)`` whose temporaries stay under ``_BLOCK_ELEMENTS``."""
    step = max(1, _BLOCK_ELEMENTS // max(int(cost_per_item), 1))
    for start in range(0, n_items, step):
        yield slice(start, min(start + step, n_items))


def _check_regression_data(
    X: ArrayLike, y: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    Xa = as_matrix(X)
    ya = np.asarray(y, dtype=np.float64)
    if ya.ndim != 1:
        raise Unsupported(f"only single-output regression is batched; y has shape {ya.shape}")
    if ya.shape[0] != Xa.shape[0]:
        raise ValueError(f"X has {Xa.shape[0]} rows but y has {ya.shape[0]}.")
    if not np.all(np.isfinite(ya)):
        raise ValueError("y contains missing or infinite values.")
    return Xa, ya


def _predict(
    coef: NDArray[np.float64], intercept: NDArray[np.float64], X_eval: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``X_eval @ coef + intercept`` for every subset, as scikit-learn's ``predict``."""
    return np.asarray(coef @ X_eval.T + intercept[:, None], dtype=np.float64)


# ---------------------------------------------------------------------- ridge
class RidgeTrainer:
    """Batched ridge regression: scikit-learn's ``Ridge(alpha, fit_intercept)`` per subset.

    For weights ``w`` (one row of ``weights``) with total ``N``, weighted means
    ``mu = sum_i w_i x_i / N`` and ``ybar = sum_i w_i y_i / N`` (when fitting an intercept),

    ``coef = (Xc^T S Xc + alpha I)^{-1} Xc^T S yc``, ``intercept = ybar - mu . coef``,

    with ``S = diag(w)``, ``Xc = X - mu`` and ``yc = y - ybar``; the intercept is unpenalised.
    This is the optimum scikit-learn computes (it centres with the sample-weighted means and
    rescales rows by ``sqrt(w)``), whatever its ``solver``: the direct solvers (``auto``,
    ``cholesky``, ``svd``) agree to rounding, iterative ones (``sag``, ``saga``, ``lsqr``,
    ``sparse_cg``) to their ``tol``.

    The weighted Gram matrices of all subsets come from one matrix product with the per-row
    outer products of ``X`` shifted by its overall mean, then are centred as
    ``sum w z z^T - N mu mu^T``. The shift keeps the cancellation in that difference small (it
    only grows for a subset whose mean lies many of its own standard deviations away from the
    training mean, and the penalty ``alpha I`` then dominates the lost digits); predictions
    agree with scikit-learn's to ~1e-13 relative in the tests.

    Parameters
    ----------
    X : ndarray of shape (n_train, d)
    y : ndarray of shape (n_train,)
    alpha : float
        Positive L2 penalty.
    fit_intercept : bool, default=True

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> y = np.array([1.0, 3.0, 5.0, 7.0])
    >>> t = RidgeTrainer(X, y, alpha=1e-12)
    >>> coef, intercept = t.fit(np.ones((1, 4)))
    >>> np.round(coef, 6).tolist(), np.round(intercept, 6).tolist()
    ([[2.0]], [1.0])
    """

    def __init__(
        self, X: ArrayLike, y: ArrayLike, alpha: float, fit_intercept: bool = True
    ) -> None:
        self.X, self.y = _check_regression_data(X, y)
        if not (np.isfinite(alpha) and alpha > 0):
            raise ValueError(f"alpha must be a positive number; got {alpha!r}.")
        self.alpha = float(alpha)
        self.fit_intercept = bool(fit_intercept)
        n, d = self.X.shape
        if self.fit_intercept:
            self._x_shift = self.X.mean(axis=0)
            self._y_shift = float(self.y.mean())
        else:
            self._x_shift = np.zeros(d)
            self._y_shift = 0.0
        self._Z = self.X - self._x_shift
        self._t = self.y - self._y_shift
        self._Zt = self._Z * self._t[:, None]
        # per-row outer products z z^T (flattened), when small enough to keep
        self._outer: NDArray[np.float64] | None = None
        if n * d * d <= _BLOCK_ELEMENTS:
            self._outer = (self._Z[:, :, None] * self._Z[:, None, :]).reshape(n, d * d)

    def _gram(self, W: NDArray[np.float64]) -> NDArray[np.float64]:
        """``sum_i w_bi z_i z_i^T`` for every row ``b`` of ``W``: shape (B, d, d)."""
        n, d = self._Z.shape
        if self._outer is not None:
            return (W @ self._outer).reshape(-1, d, d)
        G = np.empty((W.shape[0], d, d))
        for blk in blocks(W.shape[0], n * d):
            G[blk] = self._Z.T @ (W[blk, :, None] * self._Z)
        return G

    def fit(self, weights: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Coefficients (B, d) and intercepts (B,) of one fit per row of ``weights``."""
        W = check_weights(weights, self.X.shape[0])
        d = self.X.shape[1]
        N = W.sum(axis=1)
        G = self._gram(W)
        b = W @ self._Zt
        if self.fit_intercept:
            mu = (W @ self._Z) / N[:, None]
            tbar = (W @ self._t) / N
            G -= N[:, None, None] * mu[:, :, None] * mu[:, None, :]
            b -= (N * tbar)[:, None] * mu
        G[:, np.arange(d), np.arange(d)] += self.alpha
        coef = np.linalg.solve(G, b[:, :, None])[:, :, 0]
        if self.fit_intercept:
            intercept = self._y_shift + tbar - np.einsum("bd,bd->b", self._x_shift + mu, coef)
        else:
            intercept = np.zeros(W.shape[0])
        return coef, intercept

    def fit_predict(
        self, weights: NDArray[np.float64], X_eval: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Predictions (B, m) on ``X_eval`` of the ridge fit of each row of ``weights``."""
        Xe = check_eval(X_eval, self.X.shape[1])
        coef, intercept = self.fit(weights)
        return _predict(coef, intercept, Xe)


# ---------------------------------------------------------------------- least squares
class LeastSquaresTrainer:
    """Batched ordinary least squares: scikit-learn's ``LinearRegression`` per subset.

    Each fit is the minimum-norm solution of the weighted least-squares problem, centred with
    the sample-weighted means when fitting an intercept (the intercept is outside the norm), as
    scikit-learn computes with :func:`scipy.linalg.lstsq`. For every subset the rows with
    positive weight are gathered (padded with zero-weight rows to a common length ``r``), scaled
    by ``sqrt(w)``, and the stacked ``(B, r, d)`` matrices go through one
    :func:`numpy.linalg.svd`; singular values ``s <= cond * s.max()`` are treated as zero,
    the cutoff of LAPACK's ``gelsd`` that ``lstsq`` uses.

    For full-rank subsets the answer equals scikit-learn's to rounding (``~1e-12`` relative on
    predictions for well-conditioned data). For rank-deficient subsets (fewer rows than features,
    a feature constant on the subset, collinear columns) both return the minimum-norm solution,
    but that solution is defined by the discarded singular directions, which both computations
    only know to rounding; the coefficients therefore agree to about
    ``eps * s_max / s_min_kept`` relative rather than ``eps`` (tested at ``1e-6``), and a
    singular value lying right at the cutoff could be kept by one and dropped by the other.

    Parameters
    ----------
    X : ndarray of shape (n_train, d)
    y : ndarray of shape (n_train,)
    fit_intercept : bool, default=True
    cond : float, optional
        Relative cutoff for small singular values; ``None`` means machine epsilon (scipy's
        default). scikit-learn >= 1.9 passes ``LinearRegression.tol`` (default ``1e-6``).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])  # two identical columns
    >>> y = np.array([2.0, 4.0, 6.0])
    >>> coef, intercept = LeastSquaresTrainer(X, y).fit(np.ones((1, 3)))
    >>> np.round(coef, 6).tolist(), np.round(intercept, 6).tolist()  # minimum norm: split 1-1
    ([[1.0, 1.0]], [0.0])
    """

    def __init__(
        self,
        X: ArrayLike,
        y: ArrayLike,
        fit_intercept: bool = True,
        cond: float | None = None,
    ) -> None:
        self.X, self.y = _check_regression_data(X, y)
        self.fit_intercept = bool(fit_intercept)
        if cond is None:
            cond = float(np.finfo(np.float64).eps)
        if not (np.isfinite(cond) and cond >= 0):
            raise ValueError(f"cond must be a non-negative number; got {cond!r}.")
        self.cond = float(cond)

    def fit(self, weights: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Coefficients (B, d) and intercepts (B,) of one fit per row of ``weights``."""
        W = check_weights(weights, self.X.shape[0])
        B, d = W.shape[0], self.X.shape[1]
        coef = np.zeros((B, d))
        intercept = np.zeros(B)
        for blk, idx, w in compact_blocks(W, 4 * d):
            Xb = self.X[idx]  # (b, r, d)
            yb = self.y[idx]  # (b, r)
            if self.fit_intercept:
                N = w.sum(axis=1)
                mu = (w[:, None, :] @ Xb)[:, 0, :] / N[:, None]
                ybar = np.einsum("br,br->b", w, yb) / N
                Xb = Xb - mu[:, None, :]
                yb = yb - ybar[:, None]
            sw = np.sqrt(w)
            A = sw[:, :, None] * Xb
            t = sw * yb
            U, s, Vt = np.linalg.svd(A, full_matrices=False)
            keep = s > self.cond * s[:, :1]
            inv = np.divide(1.0, s, out=np.zeros_like(s), where=keep)
            Uty = np.einsum("brk,br->bk", U, t)
            cb = np.einsum("bkd,bk->bd", Vt, inv * Uty)
            coef[blk] = cb
            if self.fit_intercept:
                intercept[blk] = ybar - np.einsum("bd,bd->b", mu, cb)
        return coef, intercept

    def fit_predict(
        self, weights: NDArray[np.float64], X_eval: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Predictions (B, m) on ``X_eval`` of the least-squares fit of each row of ``weights``."""
        Xe = check_eval(X_eval, self.X.shape[1])
        coef, intercept = self.fit(weights)
        return _predict(coef, intercept, Xe)


# ---------------------------------------------------------------------- factories
def make_ridge_trainer(model: Any, X: ArrayLike, y: ArrayLike, n_classes: int) -> RidgeTrainer:
    """A :class:`RidgeTrainer` for a scikit-learn ``Ridge``, or :class:`Unsupported`.

    Unsupported: ``positive=True``, ``solver="lbfgs"`` (scikit-learn refuses it without
    ``positive``), ``alpha`` given as an array, an invalid ``alpha``, multi-output ``y``, and
    ``alpha == 0``: scikit-learn's ``Ridge(alpha=0)`` runs a Cholesky solve on a singular system
    for rank-deficient subsets (small subsets always are), whose answer is an artefact of
    rounding; use ``LinearRegression`` (batched, minimum-norm) instead.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> make_ridge_trainer(Ridge(alpha=0.0), np.zeros((3, 2)), np.zeros(3), 0)
    Traceback (most recent call last):
    ...
    dataworth.utility.batched.Unsupported: Ridge(alpha=0) is not batched ...
    """
    params = model.get_params(deep=False)
    if params.get("positive", False):
        raise Unsupported("Ridge(positive=True) is not batched (it needs a constrained solver)")
    if params.get("solver", "auto") == "lbfgs":
        raise Unsupported("Ridge(solver='lbfgs') is only valid with positive=True")
    alpha = params.get("alpha", 1.0)
    if np.ndim(alpha) != 0:
        raise Unsupported("Ridge with alpha given per target (an array) is not batched")
    try:
        alpha = float(alpha)
    except (TypeError, ValueError):
        raise Unsupported(f"Ridge alpha {alpha!r} is not a number") from None
    if not np.isfinite(alpha) or alpha < 0:
        raise Unsupported(f"Ridge alpha must be a non-negative number; got {alpha!r}")
    if alpha == 0:
        raise Unsupported(
            "Ridge(alpha=0) is not batched (scikit-learn's answer on rank-deficient subsets is a "
            "rounding artefact); use LinearRegression, whose minimum-norm fit is batched"
        )
    return RidgeTrainer(X, y, alpha, fit_intercept=bool(params.get("fit_intercept", True)))


def make_ols_trainer(model: Any, X: ArrayLike, y: ArrayLike, n_classes: int) -> LeastSquaresTrainer:
    """A :class:`LeastSquaresTrainer` for a scikit-learn ``LinearRegression``, or Unsupported.

    Unsupported: ``positive=True`` (non-negative least squares) and multi-output ``y``. The
    singular-value cutoff follows the installed scikit-learn: ``tol`` from version 1.9 on,
    scipy's default (machine epsilon) before.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [2.0, 3.0]])
    >>> t = make_ols_trainer(LinearRegression(), X, X @ [1.0, -1.0] + 2.0, 0)
    >>> np.round(t.fit_predict(np.ones((2, 4)), X[:2]), 6).tolist()
    [[1.0, 3.0], [1.0, 3.0]]
    """
    params = model.get_params(deep=False)
    if params.get("positive", False):
        raise Unsupported("LinearRegression(positive=True) is not batched (non-negative LS)")
    cond: float | None = None
    if _sklearn_version() >= (1, 9) and params.get("tol") is not None:
        cond = float(params["tol"])
    return LeastSquaresTrainer(
        X, y, fit_intercept=bool(params.get("fit_intercept", True)), cond=cond
    )
