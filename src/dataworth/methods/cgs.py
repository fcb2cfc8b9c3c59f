"""CGS: the complexity-gap score, data values without training (Nohyun, Choi & Chung 2023).

For a two-layer ReLU network ``f(x) = sum_r a_r relu(w_r . x) / sqrt(m)`` with the first layer
trained from a Gaussian initialisation, in the infinite-width limit and on unit-norm inputs, the
Gram matrix of the neural tangent kernel is (Du et al. 2019; Arora et al. 2019)

    H_ij = <x_i, x_j> (pi - arccos <x_i, x_j>) / (2 pi),      H_ii = 1/2,

and the *complexity* of labelled data ``(X, y)`` is ``y^T H^-1 y``: it bounds how far gradient
descent moves the weights and, through it, the generalisation gap. The complexity-gap score of
row ``i`` is how much the complexity drops when the row is removed,

    CG(i) = y^T H^-1 y - y_{-i}^T (H_{-i})^-1 y_{-i} = (H^-1 y)_i^2 / (H^-1)_{ii}  (>= 0),

the second form being the usual leave-one-out identity (one Cholesky factorisation gives every
score). A row whose label disagrees with its neighbours' makes the labels hard to fit and has a
large score; the value is ``-CG(i)``, so such rows get the lowest values.

Labels enter as ``+1 / -1`` of a binary problem. With ``K`` classes the score is computed
class-pair-wise: for every pair of classes ``(a, b)`` the rows of the two classes form one
binary problem (``+1`` for ``a``, ``-1`` for ``b``), and a row's score is the mean of its scores
over the ``K - 1`` problems that contain its class. (The authors' released code instead pits
each class against a balanced random sample of all other classes.)
"""

from __future__ import annotations

import itertools
from numbers import Real
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import LinAlgError, cho_factor, cho_solve

from dataworth.base import Valuation
from dataworth.data import is_categorical
from dataworth.errors import DataworthError
from dataworth.memory import check_memory, format_bytes
from dataworth.params import Constraint, Interval, Options
from dataworth.result import ValuationResult

__all__ = ["CGS", "arccos_gram", "complexity_gaps"]


def arccos_gram(X: NDArray[np.float64]) -> NDArray[np.float64]:
    """``H_ij = u (pi - arccos u) / (2 pi)`` with ``u = <x_i, x_j>`` for unit-norm rows of X.

    The infinite-width Gram matrix of a two-layer ReLU network whose first layer is trained;
    the diagonal is exactly 1/2.

    Examples
    --------
    >>> import numpy as np
    >>> s = np.sqrt(0.5)  # 45 degrees apart: u = s, arccos u = pi / 4
    >>> arccos_gram(np.array([[1.0, 0.0], [s, s]])).round(4).tolist()  # s * 3/8 off the diagonal
    [[0.5, 0.2652], [0.2652, 0.5]]
    """
    u = X @ X.T
    np.clip(u, -1.0, 1.0, out=u)
    H = np.arccos(u)  # in place from here on: two n x n arrays at most
    np.subtract(np.pi, H, out=H)
    H *= u
    H /= 2.0 * np.pi
    np.fill_diagonal(H, 0.5)
    return H


def complexity_gaps(
    H: NDArray[np.float64], y: NDArray[np.float64], ridge: float = 0.0
) -> tuple[NDArray[np.float64], float]:
    """Every leave-one-out drop of ``y^T (H + ridge I)^-1 y``, and the complexity itself.

    Uses ``gap_i = (A^-1 y)_i^2 / (A^-1)_ii`` with ``A = H + ridge I`` (one Cholesky
    factorisation); raises :class:`LinAlgError` when ``A`` is not positive definite, or so
    close to singular (a Cholesky pivot below ``1e-10`` times the largest) that the scores
    would be rounding noise.

    Examples
    --------
    >>> import numpy as np
    >>> gaps, c = complexity_gaps(np.eye(3), np.array([1.0, -1.0, 1.0]))
    >>> gaps.tolist(), c
    ([1.0, 1.0, 1.0], 3.0)
    """
    A = H.copy()
    if ridge:
        A[np.diag_indices_from(A)] += ridge
    factor = cho_factor(A, lower=True, overwrite_a=True, check_finite=False)  # in A's memory
    pivots = np.diag(factor[0]) ** 2
    if not pivots.min() > 1e-10 * pivots.max():
        raise LinAlgError("the Gram matrix is numerically singular")
    inverse = cho_solve(factor, np.eye(A.shape[0]), overwrite_b=True, check_finite=False)
    alpha = inverse @ y
    return alpha**2 / np.diag(inverse), float(y @ alpha)


def _scaled(statistic: Any, X: NDArray[np.float64], axis: int) -> NDArray[np.float64]:
    """``statistic(X, axis)`` (a norm or standard deviation, homogeneous of degree 1) computed
    on ``X`` divided by its largest magnitude along ``axis``, then scaled back.

    Computed directly, the squares of features near 1e-300 underflow to 0 (and those near
    1e300 overflow to inf), which would make a non-zero row or feature look all-zero.
    """
    top = np.max(np.abs(X), axis=axis, keepdims=True, initial=0.0)
    top = np.where(top > 0, top, 1.0)
    return np.asarray(statistic(X / top, axis=axis) * np.squeeze(top, axis=axis))


def _pair_sizes(codes: NDArray[np.intp], n_classes: int) -> int:
    """Rows of the largest pair of classes: the size of the largest Gram matrix."""
    counts = np.sort(np.bincount(codes, minlength=n_classes))
    return int(counts[-1] + counts[-2])


class CGS(Valuation):
    """Complexity-gap scores (Nohyun, Choi & Chung 2023): values without training a model.

    The value of a training row is minus its complexity-gap score, the drop in the complexity
    ``y^T H^-1 y`` of the (class-pair-wise, ``+1/-1``) labelled data when the row is removed, with
    ``H`` the infinite-width Gram matrix of a two-layer ReLU network on unit-norm inputs (see the
    module docstring for the formulas). Rows whose label is at odds with nearby rows of other
    classes (mislabelled or atypical rows) get the lowest values.

    Only the training rows are used: not the model, the scoring or the valuation set. The
    values are exact (``stderr`` is 0). Time is cubic in the size of the largest pair of
    classes, memory quadratic.

    Parameters
    ----------
    ridge : float, default=1e-6
        Added to the diagonal of ``H`` (whose diagonal is 1/2) before inverting: ``H`` is
        singular when two rows point the same way (duplicates), and ill-conditioned when they
        nearly do. ``0`` is the paper's definition and may fail on such data.
    standardize : bool, default=True
        Centre and scale every feature with the training rows' mean and standard deviation
        before normalising each row to unit length (so that no feature dominates the angles
        by its units alone). ``False``: normalise the raw rows, as the paper does for images.

    Notes
    -----
    Classification only. A row whose features are all zero (after centring, when
    ``standardize``) has no direction and is refused.

    With ``by_group=True`` the value of a group is the **sum of its rows' values**
    (``metadata["group_aggregation"]``), not the complexity gap of removing the whole group.

    Examples
    --------
    >>> from dataworth.datasets import load_dataset
    >>> from dataworth.utility import ModelUtility
    >>> from sklearn.linear_model import LogisticRegression
    >>> train, valid = load_dataset("iris").split(0.3, random_state=0)
    >>> res = CGS().fit(ModelUtility(LogisticRegression(), train, valid)).result_
    >>> len(res) == train.n_samples, bool((res.values <= 0).all())
    (True, True)
    """

    name: ClassVar[str] = "cgs"
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        **Valuation._parameter_constraints,
        "ridge": [Interval(Real, 0, None)],
        "standardize": [Options([True, False])],
    }
    # no model is fitted: build the plain utility rather than a batched one
    exact_fits: ClassVar[bool] = True
    #: Every value is minus a complexity gap, so at most 0; 0 is the best value, not a neutral
    #: one, and the values rank rows only.
    baseline: ClassVar[float | None] = None

    def __init__(self, ridge: float = 1e-6, *, standardize: bool = True) -> None:
        self.ridge = ridge
        self.standardize = standardize

    def _check(self, utility: Any) -> None:
        if not all(hasattr(utility, a) for a in ("train", "player_of_row")):
            raise DataworthError(
                "cgs needs a data utility with training data (a ModelUtility); got "
                f"{type(utility).__name__}."
            )
        train = utility.train
        if not is_categorical(train.y):
            raise DataworthError(
                "cgs needs class labels: it scores rows of binary (+1/-1) class problems, but "
                f"target {train.target_name!r} has real values. Use a method that supports "
                "regression (e.g. data-oob, tmc-shapley)."
            )
        if np.unique(train.y).size < 2:
            raise DataworthError("cgs needs at least two classes in the training data; got one.")

    def _unit_rows(self, train: Any) -> NDArray[np.float64]:
        X = np.asarray(train.X, dtype=np.float64)
        if self.standardize:
            X = X - X.mean(axis=0)
            std = _scaled(np.std, X, axis=0)
            X = X / np.where(std > 0, std, 1.0)
        if not np.all(np.isfinite(X)):
            raise DataworthError(
                "cgs: features so large that centring them overflows the float64 range; "
                "rescale them."
            )
        norms = _scaled(np.linalg.norm, X, axis=1)
        zero = np.flatnonzero(norms == 0)
        if zero.size:
            shown = ", ".join(map(str, train.row_labels[zero[:5]].tolist()))
            more = f" and {zero.size - 5} more" if zero.size > 5 else ""
            where = " after centring" if self.standardize else ""
            raise DataworthError(
                f"cgs normalises every row to unit length, but {zero.size} row(s) have all-zero "
                f"features{where} (rows {shown}{more}); drop them or change the features."
            )
        return X / norms[:, None]

    def _fit(self, utility: Any) -> ValuationResult:
        self._check(utility)
        train = utility.train
        X = self._unit_rows(train)
        classes, codes = np.unique(train.y, return_inverse=True)
        codes = codes.ravel()
        m = _pair_sizes(codes, classes.size)
        check_memory(
            3 * 8.0 * m * m,  # the Gram matrix, its Cholesky factor and the inverse
            f"cgs needs the {m} x {m} Gram matrix of the largest pair of classes "
            f"({format_bytes(8.0 * m * m)}), 3 copies at once",
            "value a random subsample of the training rows, or use --method knn-shapley "
            "(memory linear in the rows).",
        )
        n = train.n_samples
        total = np.zeros(n)
        n_problems = np.zeros(n, dtype=np.int64)
        complexities: list[list[Any]] = []
        for a, b in itertools.combinations(range(classes.size), 2):
            rows = np.flatnonzero((codes == a) | (codes == b))
            y = np.where(codes[rows] == a, 1.0, -1.0)
            try:
                gaps, complexity = complexity_gaps(arccos_gram(X[rows]), y, float(self.ridge))
            except LinAlgError:
                raise DataworthError(
                    f"cgs: the Gram matrix of classes {classes[a]!r} and {classes[b]!r} is "
                    f"singular with ridge={self.ridge:g} (rows pointing the same or nearly the "
                    "same way, e.g. duplicates); use a larger ridge such as 1e-6."
                ) from None
            total[rows] += gaps
            n_problems[rows] += 1
            complexities.append([classes.tolist()[a], classes.tolist()[b], complexity])
        row_values = -total / np.maximum(n_problems, 1)
        metadata: dict[str, Any] = {
            "score": "value = -(mean complexity-gap score over the class pairs of the row)",
            "notes": [
                "cgs uses only the training rows: the model, the scoring and the valuation "
                "set are not used."
            ],
            "standardized": bool(self.standardize),
        }
        if len(complexities) <= 100:
            metadata["complexities"] = complexities
        values: NDArray[np.float64]
        counts: NDArray[np.int64]
        if getattr(utility, "by_group", False):
            values = np.bincount(
                utility.player_of_row, weights=row_values, minlength=utility.n_players
            ).astype(np.float64)
            counts = np.bincount(
                utility.player_of_row, weights=n_problems, minlength=utility.n_players
            ).astype(np.int64)
            metadata["group_aggregation"] = "sum of row values"
        else:
            values, counts = row_values, n_problems
        return self._result(
            utility,
            values=values,
            stderr=np.zeros(utility.n_players),
            counts=counts,
            metadata=metadata,
        )
