"""Closed-form influence for scikit-learn's linear and logistic regression (exact Hessian).

The model is fitted once with scikit-learn, then its parameters are polished to the exact optimum
of the objective by Newton steps (scikit-learn's solvers stop at a tolerance, and influence
functions assume a stationary point). Objectives, in the mean-loss scaling of
:mod:`dataworth.influence.base` (``theta`` holds, per output, the coefficients and then the
intercept, which is never penalised):

* ``LogisticRegression`` (L2 or no penalty), binary: ``(1/n) sum_i logloss_i +
  ||w||^2 / (2 n C)``; multiclass (multinomial softmax, one coefficient row per class):
  ``(1/n) sum_i cross-entropy_i + ||W||_F^2 / (2 n C)``. The softmax intercepts can all move by
  the same constant without changing a prediction, so ``H`` is singular along that direction;
  every loss gradient is orthogonal to it, and ``H^-1`` is taken on the complement.
* ``LinearRegression``: ``(1/n) sum_i (y_i - x_i theta)^2``.
* ``Ridge``: ``(1/n) sum_i (y_i - x_i theta)^2 + (alpha / n) ||w||^2``.

``damping`` is added to every diagonal entry of ``H``. A singular ``H`` without damping (ordinary
least squares with collinear features) falls back to the pseudo-inverse, and ``hessian_method``
says so.
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

from dataworth.errors import DataworthError
from dataworth.memory import check_memory, format_bytes

__all__ = ["SUPPORTED_LINEAR_MODELS", "LinearInfluence"]

_F64 = NDArray[np.float64]

SUPPORTED_LINEAR_MODELS = (
    "scikit-learn LogisticRegression (L2 or no penalty, not liblinear, no class_weight), "
    "LinearRegression and Ridge"
)


def _logistic_penalty(model: Any) -> float:
    """``1/C`` (0 for no penalty): the weight of ``0.5 ||w||^2`` relative to the summed loss."""
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
            "solver='liblinear' penalises the intercept and fits one-vs-rest; influence supports "
            "the lbfgs, newton-cg, newton-cholesky, sag and saga solvers."
        )
    if params.get("class_weight") is not None:
        raise DataworthError(
            f"class_weight={params['class_weight']!r}: influence supports only class_weight=None."
        )
    if params.get("multi_class") == "ovr":
        raise DataworthError("multi_class='ovr': influence supports the multinomial model only.")
    return 0.0 if np.isinf(C) else 1.0 / float(C)


def _kind_of(model: Any) -> str:
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

    if isinstance(model, LogisticRegression):
        _logistic_penalty(model)
        return "logistic"
    if isinstance(model, Ridge):
        if np.ndim(model.get_params()["alpha"]) != 0:
            raise DataworthError("influence supports a single (scalar) Ridge alpha only.")
        if model.get_params().get("positive", False):
            raise DataworthError("positive=True constrains the coefficients; not supported.")
        return "ridge"
    if isinstance(model, LinearRegression):
        if model.get_params().get("positive", False):
            raise DataworthError("positive=True constrains the coefficients; not supported.")
        return "ols"
    raise DataworthError(
        f"influence does not support {type(model).__name__}; supported: "
        f"{SUPPORTED_LINEAR_MODELS}. PyTorch models: dataworth.influence.TorchInfluence."
    )


#: Dense ``p x p`` float64 arrays alive at once at the peak: the Hessian, LAPACK's copy of it
#: (the Newton step's least squares, ``cho_factor``) and one temporary (the softmax null-direction
#: lift, or the stacked least-squares system of ridge).
_HESSIAN_COPIES = 3


def _check_hessian_memory(model: Any, kind: str, n_features: int, y: Any) -> None:
    """Refuse, before anything is fitted, a Hessian that does not fit in memory."""
    q = n_features + (1 if model.get_params().get("fit_intercept", True) else 0)
    n_classes = np.unique(y).size if kind == "logistic" else 1
    p = q * (n_classes if n_classes > 2 else 1)
    classes = f", {n_classes} classes" if n_classes > 2 else ""
    check_memory(
        _HESSIAN_COPIES * 8.0 * p * p,
        f"influence needs the exact {p} x {p} Hessian ({n_features} features{classes}) of "
        f"{format_bytes(8.0 * p * p)}, {_HESSIAN_COPIES} copies at once",
        "use fewer features (select or reduce them), --method knn-shapley (no Hessian), or "
        "an iterative inverse-Hessian solver (from Python: dataworth.influence.TorchInfluence "
        "with CGSolver or ArnoldiSolver).",
    )


class LinearInfluence:
    """A scikit-learn linear or logistic regression as an :class:`InfluenceModel`.

    Parameters
    ----------
    model : estimator
        An unfitted ``LogisticRegression``, ``LinearRegression`` or ``Ridge`` (its settings
        define the objective); a clone is fitted on ``X, y``.
    X : array-like of shape (n, d)
        Training features.
    y : array-like of shape (n,)
        Training labels or targets.
    damping : float, default=0.0
        Added to every diagonal entry of the Hessian (of the mean-loss objective).

    Attributes
    ----------
    theta : ndarray of shape (n_params,)
        The parameters at the optimum, per output coefficients then intercept.
    param_names : list of str
        ``"x3"``, ``"intercept"``, and for multiclass ``"class 2: x3"``.
    hessian_method : str
        ``"cholesky"`` or the pseudo-inverse fallback.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from dataworth.influence import LinearInfluence, influence_values
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 2)); y = (X[:, 0] > 0).astype(int)
    >>> y[5] = 1 - y[5]  # a flipped label
    >>> model = LinearInfluence(LogisticRegression(), X, y)
    >>> int(np.argmin(influence_values(model, X, y).values))
    5
    """

    def __init__(self, model: Any, X: Any, y: Any, *, damping: float = 0.0) -> None:
        if not (isinstance(damping, (int, float, np.floating)) and np.isfinite(damping)):
            raise DataworthError(f"damping must be a finite number >= 0; got {damping!r}.")
        if damping < 0:
            raise DataworthError(f"damping must be >= 0; got {damping}.")
        self.kind = _kind_of(model)
        self.damping = float(damping)
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y)
        if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
            raise DataworthError("influence needs X of shape (n, d) and y of shape (n,).")
        if not np.all(np.isfinite(X)):
            raise DataworthError("X has NaN or infinite values.")
        largest = float(np.max(np.abs(X), initial=0.0))
        if not np.isfinite(largest * largest * max(X.shape[0], 1)):
            raise DataworthError(
                f"features as large as {largest:.3g} overflow the Hessian (their squares "
                "exceed the float64 range); rescale them, e.g. standardise them."
            )
        self.n_train = X.shape[0]
        if self.kind == "logistic" and np.unique(y).size < 2:  # before scikit-learn refuses it
            raise DataworthError("influence needs at least two classes in the training data.")
        _check_hessian_memory(model, self.kind, X.shape[1], y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fitted = clone(model).fit(X, y)
        self.model_ = fitted
        self.fit_intercept = bool(fitted.fit_intercept)
        self._Xt = self._design(X)
        n = self._Xt.shape[0]
        if self.kind == "logistic":
            self.classes_ = np.asarray(fitted.classes_)
            if self.classes_.size < 2:
                raise DataworthError("influence needs at least two classes in the training data.")
            self.n_outputs = 1 if self.classes_.size == 2 else self.classes_.size
            self._yt = self._encode(y)
            lam = _logistic_penalty(model) / n
            W = np.asarray(fitted.coef_, dtype=np.float64)
            b = np.broadcast_to(np.asarray(fitted.intercept_, dtype=np.float64), (W.shape[0],))
            theta = np.column_stack([W, b]) if self.fit_intercept else W
            self._penalty = self._penalty_vector(lam)
            self.theta = self._newton(theta.ravel())
            if lam == 0.0 and self._separates():
                warnings.warn(
                    "the training classes are perfectly separable and the model has no penalty, "
                    "so the loss has no minimum (the coefficients grow without bound) and the "
                    "influence values depend on where the fit stopped; use an L2 penalty "
                    "(a finite C).",
                    UserWarning,
                    stacklevel=2,
                )
        else:
            yf = np.asarray(y, dtype=np.float64)
            if not np.all(np.isfinite(yf)):
                raise DataworthError("y has NaN or infinite values.")
            self.n_outputs = 1
            self._yt = yf
            alpha = float(model.get_params()["alpha"]) if self.kind == "ridge" else 0.0
            self._penalty = self._penalty_vector(alpha / n)
            # The exact optimum: least squares on X stacked over sqrt(alpha) I_w (no squared
            # condition number; minimum norm if singular).
            root = np.sqrt(alpha) * np.diag((self._penalty > 0).astype(np.float64))
            A = np.vstack([self._Xt, root])
            b = np.concatenate([yf, np.zeros(root.shape[0])])
            self.theta = np.linalg.lstsq(A, b, rcond=None)[0]
        self.n_params = self.theta.size
        names = [f"x{j}" for j in range(X.shape[1])] + (["intercept"] if self.fit_intercept else [])
        if self.n_outputs > 1:
            names = [f"class {c}: {nm}" for c in self.classes_.tolist() for nm in names]
        self.param_names = names
        self._factor: Any = None
        self.hessian_method = ""
        self._prepare_solver()

    # ------------------------------------------------------------------ building blocks
    def _design(self, X: Any) -> _F64:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise DataworthError("X must be two-dimensional.")
        if self.fit_intercept:
            return np.column_stack([X, np.ones(X.shape[0])])
        return X

    def _encode(self, y: Any) -> _F64:
        """Binary: 1.0 for the positive class; multiclass: one-hot rows (unknown labels error)."""
        y = np.asarray(y)
        pos = np.searchsorted(self.classes_, y)
        pos = np.clip(pos, 0, self.classes_.size - 1)
        if not np.all(self.classes_[pos] == y):
            unknown = sorted(set(np.asarray(y)[self.classes_[pos] != y].tolist()))[:3]
            raise DataworthError(f"labels {unknown} were not in the training data.")
        if self.n_outputs == 1:
            return (pos == 1).astype(np.float64)
        return np.eye(self.classes_.size)[pos]

    def _penalty_vector(self, lam: float) -> _F64:
        q = self._Xt.shape[1]
        per_output = np.full(q, 2.0 * lam if self.kind != "logistic" else lam)
        if self.fit_intercept:
            per_output[-1] = 0.0
        return np.tile(per_output, self.n_outputs)

    def _probabilities(self, Xd: _F64, theta: _F64) -> _F64:
        if self.n_outputs == 1:
            out: _F64 = scipy.special.expit(Xd @ theta)
            return out
        Z = Xd @ theta.reshape(self.n_outputs, -1).T
        return np.asarray(scipy.special.softmax(Z, axis=1), dtype=np.float64)

    def _gradient_rows(self, Xd: _F64, target: _F64, theta: _F64) -> _F64:
        """Per-row gradient of the loss at theta, shape (k, n_params)."""
        if self.kind != "logistic":
            return 2.0 * (Xd @ theta - target)[:, None] * Xd
        P = self._probabilities(Xd, theta)
        if self.n_outputs == 1:
            return (P - target)[:, None] * Xd
        R = P - target  # (k, K)
        return (R[:, :, None] * Xd[:, None, :]).reshape(Xd.shape[0], -1)

    def _hessian(self, theta: _F64) -> _F64:
        Xd = self._Xt
        n, q = Xd.shape
        if self.kind != "logistic":
            H = 2.0 * Xd.T @ Xd / n
        elif self.n_outputs == 1:
            p = self._probabilities(Xd, theta)
            H = (Xd.T * (p * (1.0 - p))) @ Xd / n
        else:
            P = self._probabilities(Xd, theta)
            K = self.n_outputs
            H = np.empty((K, q, K, q))
            weighted = Xd[:, None, :] * P[:, :, None]  # (n, K, q): p_k x
            for k in range(K):  # K blocks of (q, K*q); loops over classes, not rows
                H[k] = -np.einsum("ia,ilb->alb", weighted[:, k, :], weighted, optimize=True)
                H[k, :, k, :] += weighted[:, k, :].T @ Xd
            H = H.reshape(K * q, K * q) / n
        H[np.diag_indices_from(H)] += self._penalty
        return H

    def _newton(self, theta: _F64, max_iter: int = 50) -> _F64:
        """Polish scikit-learn's solution to the exact optimum (damped Newton, pseudo-inverse)."""
        n = self.n_train
        for _ in range(max_iter):
            g = self._gradient_rows(self._Xt, self._yt, theta).sum(0) / n + self._penalty * theta
            if np.max(np.abs(g)) < 1e-12:
                break
            step = np.linalg.lstsq(self._hessian(theta), g, rcond=None)[0]
            if not np.all(np.isfinite(step)):
                break
            theta = theta - step
        return theta

    def _separates(self) -> bool:
        """Whether ``theta`` classifies every training row correctly (no finite optimum then)."""
        P = self._probabilities(self._Xt, self.theta)
        if self.n_outputs == 1:
            return bool(np.all((P > 0.5) == (self._yt == 1.0)))
        return bool(np.all(np.argmax(P, axis=1) == np.argmax(self._yt, axis=1)))

    def _null_direction(self) -> _F64 | None:
        """The softmax intercept shift (multiclass with intercept), else None."""
        if self.kind != "logistic" or self.n_outputs == 1 or not self.fit_intercept:
            return None
        q = self._Xt.shape[1]
        v = np.zeros(self.n_outputs * q)
        v[q - 1 :: q] = 1.0 / np.sqrt(self.n_outputs)
        return v

    def _prepare_solver(self) -> None:
        H = self._hessian(self.theta)
        H[np.diag_indices_from(H)] += self.damping
        v = self._null_direction()
        if v is not None and self.damping == 0.0:
            # Lift the flat direction: (H + s v v^T)^-1 g = H^+ g for every g orthogonal to v.
            H = H + np.trace(H) / H.shape[0] * np.outer(v, v)
        try:
            self._factor = scipy.linalg.cho_factor(H)
            self.hessian_method = "cholesky"
        except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
            self._factor = None
            self._pinv = scipy.linalg.pinvh(H)
            self.hessian_method = "pseudo-inverse (singular Hessian; consider damping > 0)"

    # ------------------------------------------------------------------ the protocol
    def train_gradients(self, rows: NDArray[np.intp]) -> _F64:
        """Gradients of the training losses of ``rows``, shape ``(k, n_params)``."""
        rows = np.asarray(rows, dtype=np.intp)
        return self._gradient_rows(self._Xt[rows], self._yt[rows], self.theta)

    def test_gradients(self, X: Any, y: Any, target: str = "loss") -> _F64:
        """Gradients of the loss (``"loss"``) or the prediction (``"prediction"``) per row.

        The prediction is the predicted value for regression and the log-odds of the row's label
        for classifiers (the decision function, sign-adjusted, when binary).
        """
        Xd = self._design(X)
        if self.kind != "logistic":
            if target == "prediction":
                return Xd.copy()
            if target == "loss":
                return self._gradient_rows(Xd, np.asarray(y, dtype=np.float64), self.theta)
        else:
            Y = self._encode(y)
            if target == "loss":
                return self._gradient_rows(Xd, Y, self.theta)
            if target == "prediction":
                if self.n_outputs == 1:
                    return (2.0 * Y - 1.0)[:, None] * Xd
                P = self._probabilities(Xd, self.theta)
                p_label = (P * Y).sum(1, keepdims=True)
                R = (Y - P) / np.maximum(1.0 - p_label, 1e-300)
                return (R[:, :, None] * Xd[:, None, :]).reshape(Xd.shape[0], -1)
        raise DataworthError(f"target must be 'loss' or 'prediction'; got {target!r}.")

    def solve(self, V: Any) -> _F64:
        """``V @ H^-1`` for the rows of ``V``."""
        V = np.asarray(V, dtype=np.float64)
        if self._factor is not None:
            return np.asarray(scipy.linalg.cho_solve(self._factor, V.T).T)
        return np.asarray(V @ self._pinv)

    def to_numpy(self, a: Any) -> _F64:
        """``a`` as a float64 array."""
        return np.asarray(a, dtype=np.float64)
