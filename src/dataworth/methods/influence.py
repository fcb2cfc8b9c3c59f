"""Influence functions (Koh & Liang 2017): first-order leave-one-out, in closed form.

For a model fitted by minimising a regularised training objective
``R(theta) + c * sum_i loss_i(theta)``, removing training row ``i`` (down-weighting its loss by
1) moves the optimum by about ``c * H^-1 grad loss_i`` (``H`` the Hessian of the whole objective
at the optimum), so the mean valuation loss ``L_val`` rises by about

    value_i = c * grad L_val^T H^-1 grad loss_i.

That is ``-I(z_i, valuation loss)`` in the convention of ``ALGORITHMS.md``: a helpful row (whose
removal makes the valuation loss rise) gets a positive value. Objectives, in scikit-learn's own
scaling (``theta`` holds the coefficients and, with ``fit_intercept``, the intercept last; the
intercept is never penalised):

* ``LogisticRegression`` (binary, L2 or no penalty): ``0.5 * ||w||^2 + C * sum_i logloss_i``,
  so ``c = C`` and ``H = I_w + C * sum_i p_i (1 - p_i) x_i x_i^T``; the valuation loss is the
  mean log-loss.
* ``LinearRegression``: ``sum_i (y_i - x_i theta)^2``, so ``c = 1`` and ``H = 2 * sum_i x_i x_i^T``;
  the valuation loss is the mean squared error.
* ``Ridge``: ``alpha * ||w||^2 + sum_i (y_i - x_i theta)^2``, so ``c = 1`` and
  ``H = 2 * alpha * I_w + 2 * sum_i x_i x_i^T``.

``damping`` is added to every diagonal entry of ``H`` (in that scaling). When ``H`` is singular
(e.g. ordinary least squares with more parameters than rows, or collinear features) and no
damping is given, the minimum-norm least-squares solution (the pseudo-inverse) is used and the
metadata says so.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.linalg
import scipy.special
from numpy.typing import NDArray
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from dataworth.base import Valuation
from dataworth.errors import DataworthError
from dataworth.result import ValuationResult

__all__ = ["Influence"]

_F64 = NDArray[np.float64]

_SUPPORTED = (
    "scikit-learn LogisticRegression (binary, L2 or no penalty, not liblinear), "
    "LinearRegression and Ridge"
)


def _design(X: Any, fit_intercept: bool) -> _F64:
    X = np.asarray(X, dtype=np.float64)
    if fit_intercept:
        return np.column_stack([X, np.ones(X.shape[0])])
    return X


def _sigmoid(z: _F64) -> _F64:
    out: _F64 = scipy.special.expit(z)
    return out


def _logistic_l2_scale(model: Any) -> float:
    """The weight of ``0.5 * ||w||^2`` in the objective (0 for no penalty), checking the model."""
    params = model.get_params()
    C = params.get("C", 1.0)
    if not (isinstance(C, (int, float, np.floating)) and C > 0):
        raise DataworthError(f"C={C!r}: influence needs a positive C.")
    penalty = params.get("penalty", "l2")
    l1_ratio = params.get("l1_ratio")
    if penalty == "deprecated":  # scikit-learn >= 1.8: the penalty is set by l1_ratio and C
        if l1_ratio not in (0, 0.0, None):
            raise DataworthError(
                f"l1_ratio={l1_ratio!r}: influence supports only the L2 penalty (l1_ratio=0) "
                "or none for LogisticRegression."
            )
    elif penalty is None:
        return 0.0
    elif penalty != "l2":
        raise DataworthError(
            f"penalty={penalty!r}: influence supports only the L2 penalty (or none) for "
            "LogisticRegression; the L1 and elastic-net objectives are not twice differentiable."
        )
    if params.get("solver") == "liblinear":
        raise DataworthError(
            "solver='liblinear' penalises the intercept; influence supports the lbfgs, "
            "newton-cg, newton-cholesky, sag and saga solvers."
        )
    if params.get("class_weight") is not None:
        raise DataworthError(
            f"class_weight={params['class_weight']!r}: influence supports only class_weight=None."
        )
    return 0.0 if np.isinf(C) else 1.0


class Influence(Valuation):
    """Influence-function values: the first-order change in valuation loss when a row is removed.

    A closed form with the exact Hessian of the training objective, for scikit-learn's
    ``LogisticRegression`` (binary, L2 penalty), ``LinearRegression`` and ``Ridge``. The model
    is fitted once on all training rows; no refits. The values are a deterministic first-order
    approximation of leave-one-out on the valuation *loss* (mean log-loss for logistic
    regression, mean squared error for regression), whatever the utility's ``scoring``; a
    positive value means that removing the row would raise the valuation loss (the row helps).
    See the module docstring for the objectives and their scaling.

    With ``by_group=True`` the value of a group is the sum of its rows' values (the first-order
    effect of removing the whole group).

    Parameters
    ----------
    damping : float, default=0.0
        Added to every diagonal entry of the Hessian (Koh & Liang's damping term); it
        regularises a singular or ill-conditioned Hessian. Must be >= 0.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from dataworth import make_utility
    >>> from dataworth.data import Dataset
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 3))
    >>> y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=40)
    >>> y[0] += 8.0  # a corrupted target
    >>> train = Dataset.from_arrays(X[:25], y[:25])
    >>> valid = Dataset.from_arrays(X[25:], y[25:])
    >>> utility = make_utility(train, valid, model=Ridge(alpha=1.0), batched=False)
    >>> result = Influence().fit(utility).result_
    >>> int(np.argmin(result.values))  # the corrupted row is the most harmful
    0
    """

    name = "influence"
    exact_fits = True
    summary = "Influence functions: first-order change in valuation loss without each point."
    reference = "Koh & Liang 2017, Understanding black-box predictions via influence functions"

    def __init__(self, *, damping: float = 0.0) -> None:
        self.damping = damping

    # ------------------------------------------------------------------ model-specific parts
    def _logistic(self, fitted: Any, model: Any, utility: Any) -> tuple[_F64, _F64, _F64, float]:
        """(G, H, g_val, c) for binary L2 logistic regression."""
        classes = np.asarray(fitted.classes_)
        if classes.size != 2:
            raise DataworthError(
                f"influence supports binary LogisticRegression only; the training data has "
                f"{classes.size} classes. Supported: {_SUPPORTED}."
            )
        l2 = _logistic_l2_scale(model)
        C = float(model.get_params().get("C", 1.0))
        c = 1.0 if np.isinf(C) else C
        fit_intercept = bool(fitted.fit_intercept)
        theta = np.asarray(fitted.coef_, dtype=np.float64).ravel()
        if fit_intercept:
            theta = np.append(theta, float(np.ravel(fitted.intercept_)[0]))
        Xt = _design(utility.train.X, fit_intercept)
        yt = (np.asarray(utility.train.y) == classes[1]).astype(np.float64)
        Xv = _design(utility.valid.X, fit_intercept)
        yv = (np.asarray(utility.valid.y) == classes[1]).astype(np.float64)
        pt = _sigmoid(Xt @ theta)
        pv = _sigmoid(Xv @ theta)
        G = (pt - yt)[:, None] * Xt
        g_val = Xv.T @ (pv - yv) / Xv.shape[0]
        H = c * (Xt.T * (pt * (1.0 - pt))) @ Xt
        d = np.full(theta.size, l2)
        if fit_intercept:
            d[-1] = 0.0
        H[np.diag_indices_from(H)] += d
        return G, H, g_val, c

    def _squared(
        self, fitted: Any, model: Any, utility: Any, alpha: float
    ) -> tuple[_F64, _F64, _F64, float]:
        """(G, H, g_val, c) for least squares with penalty ``alpha * ||w||^2``."""
        if model.get_params().get("positive", False):
            raise DataworthError(
                "positive=True constrains the coefficients; influence supports only the "
                "unconstrained LinearRegression and Ridge."
            )
        yt = np.asarray(utility.train.y, dtype=np.float64)
        if yt.ndim != 1:
            raise DataworthError("influence supports a single regression target only.")
        fit_intercept = bool(fitted.fit_intercept)
        theta = np.asarray(fitted.coef_, dtype=np.float64).ravel()
        if fit_intercept:
            theta = np.append(theta, float(np.ravel(fitted.intercept_)[0]))
        Xt = _design(utility.train.X, fit_intercept)
        Xv = _design(utility.valid.X, fit_intercept)
        yv = np.asarray(utility.valid.y, dtype=np.float64)
        rt = Xt @ theta - yt
        rv = Xv @ theta - yv
        G = 2.0 * rt[:, None] * Xt
        g_val = 2.0 * Xv.T @ rv / Xv.shape[0]
        H = 2.0 * Xt.T @ Xt
        d = np.full(theta.size, 2.0 * alpha)
        if fit_intercept:
            d[-1] = 0.0
        H[np.diag_indices_from(H)] += d
        return G, H, g_val, 1.0

    # ------------------------------------------------------------------ the method
    def _fit(self, utility: Any) -> ValuationResult:
        damping = self.damping
        if not (isinstance(damping, (int, float, np.floating)) and np.isfinite(damping)):
            raise DataworthError(f"damping must be a finite number >= 0; got {damping!r}.")
        if damping < 0:
            raise DataworthError(f"damping must be >= 0; got {damping}.")
        if not all(hasattr(utility, a) for a in ("model", "train", "valid", "player_of_row")):
            raise DataworthError(
                "influence needs a model utility (make_utility(train, valid, model=...)) with a "
                f"model among: {_SUPPORTED}."
            )
        from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

        model = utility.model
        if isinstance(model, LogisticRegression):
            kind = "logistic"
            _logistic_l2_scale(model)  # check the settings before fitting
        elif isinstance(model, Ridge):
            kind = "ridge"
            alpha = model.get_params()["alpha"]
            if np.ndim(alpha) != 0:
                raise DataworthError("influence supports a single (scalar) Ridge alpha only.")
        elif isinstance(model, LinearRegression):
            kind = "ols"
        else:
            raise DataworthError(
                f"influence does not support {type(model).__name__}; supported: {_SUPPORTED}."
            )
        if kind == "logistic" and np.unique(utility.train.y).size != 2:
            raise DataworthError(
                "influence supports binary LogisticRegression only; the training data has "
                f"{np.unique(utility.train.y).size} classes. Supported: {_SUPPORTED}."
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fitted = clone(model).fit(utility.train.X, utility.train.y)
        if kind == "logistic":
            G, H, g_val, c = self._logistic(fitted, model, utility)
        else:
            alpha = float(model.get_params()["alpha"]) if kind == "ridge" else 0.0
            G, H, g_val, c = self._squared(fitted, model, utility, alpha)
        H[np.diag_indices_from(H)] += float(damping)
        hessian = "cholesky"
        try:
            h = scipy.linalg.cho_solve(scipy.linalg.cho_factor(H), g_val)
            if not np.all(np.isfinite(h)):
                raise np.linalg.LinAlgError
        except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
            hessian = "pseudo-inverse (singular Hessian; consider damping > 0)"
            h = np.linalg.lstsq(H, g_val, rcond=None)[0]
        row_values = c * (G @ h)
        values = np.bincount(
            np.asarray(utility.player_of_row), weights=row_values, minlength=utility.n_players
        ).astype(np.float64)
        n = values.size
        return self._result(
            utility,
            values=values,
            stderr=np.zeros(n),
            counts=np.ones(n, dtype=np.int64),
            metadata={
                "loss": "log-loss" if kind == "logistic" else "squared",
                "damping": float(damping),
                "hessian": hessian,
                "approximation": "first-order influence (Koh & Liang 2017)",
            },
        )
