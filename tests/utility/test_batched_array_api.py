"""One batched logistic solver on every array back end: numpy arrays and torch tensors (CPU) give
scikit-learn's optimum, and agree with each other, for binary and multiclass problems.

Tolerances come from the solver's stopping rule. A fit stops when every entry of its gradient is
at most ``tol * min(C * sum(w), max(1, max|theta|))``, and on these subsets (20 rows or more,
``C=1``) the second scale is the smaller one. The objective's curvature is at least ``LAMBDA``
along every direction (1 along the coefficients from the L2 term; along the unpenalised
intercepts ``C * sum(w * p * (1 - p))``, which ``test_curvature_bound_holds`` checks), so a
stopped fit is within ``sqrt(p) * tol * max(1, max|theta|) / LAMBDA`` of the optimum (Euclidean
norm, ``p`` parameters). In float64 (``tol=1e-10``) that is the bound; in float32 the solver stops
at ``tol=1e-5`` or earlier at float32's rounding limit, where the gradient is known only to about
``n * eps`` (200 rows x 1.2e-7 = 2.4e-5) of its scale, so the bound uses the larger of the two.
scikit-learn's newton-cholesky at ``tol=1e-12`` (on the gradient divided by ``C * sum(w)``) is
well inside the float64 bound. Two back ends are within twice the bound of each other. No
comparison is bit-exact: different BLAS libraries round differently.
"""

from __future__ import annotations

import math
import warnings
from functools import cache
from importlib.util import find_spec

import array_api_compat
import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from dataworth.utility.batched.logistic import LogisticFit, make_trainer

Array = NDArray[np.float64]
needs_torch = pytest.mark.skipif(find_spec("torch") is None, reason="torch is not installed")

#: Lower bound on the objective's curvature on these subsets (see the module docstring).
LAMBDA = 0.25
#: Where each dtype's fit stops: its ``tol``, or float32's rounding limit (n * eps).
STOP = {"float64": 1e-10, "float32": max(1e-5, 200 * float(np.finfo(np.float32).eps))}

BACK_ENDS = [
    pytest.param("numpy", "float64", id="numpy-float64"),
    pytest.param("numpy", "float32", id="numpy-float32"),
    pytest.param("cpu", "float64", id="torch-float64", marks=needs_torch),
    pytest.param("cpu", "float32", id="torch-float32", marks=needs_torch),
]


@cache
def _problem(name: str) -> tuple[Array, NDArray[np.intp], Array]:
    """Standardised features, class codes and 8 subsets of at least 20 rows (0/1 weights); for
    wine, the first three on two of its three classes (binary fits within a multiclass problem)."""
    loader = {"breast_cancer": load_breast_cancer, "wine": load_wine}[name]
    X, y = loader(return_X_y=True)
    X, y = X[:200], np.asarray(y[:200], dtype=np.intp)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    rng = np.random.default_rng(0)
    W = (rng.random((8, y.size)) < rng.uniform(0.15, 0.9, size=(8, 1))).astype(np.float64)
    if name == "wine":
        W[:3] *= y[None, :] != np.array([0, 1, 2])[:, None]
    assert (W.sum(axis=1) >= 20).all()
    return X, y, W


@cache
def _sklearn(name: str, b: int) -> tuple[Array, Array]:
    """scikit-learn's coefficients and intercepts on subset ``b`` (tightly converged)."""
    X, y, W = _problem(name)
    rows = W[b] > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = LogisticRegression(solver="newton-cholesky", tol=1e-12, max_iter=1000)
        ref.fit(X[rows], y[rows])
    return ref.coef_, ref.intercept_


def _theta(coef: Array, intercept: Array) -> Array:
    """Coefficients and intercepts as one vector, intercepts centred over the classes (a
    multinomial model is defined up to a common shift of its intercepts)."""
    if intercept.size > 1:
        intercept = intercept - intercept.mean()
    return np.column_stack([coef, intercept]).ravel()


def _distance(ours: Array, theirs: Array) -> float:
    """Euclidean distance relative to ``max(1, max|theta|)``, as the stopping rule scales it."""
    return float(np.linalg.norm(ours - theirs)) / max(1.0, float(np.abs(theirs).max()))


def _bound(theta: Array, dtype: str) -> float:
    return math.sqrt(theta.size) * STOP[dtype] / LAMBDA


def _fit(name: str, device: str, dtype: str) -> tuple[LogisticFit, NDArray[np.intp]]:
    X, y, W = _problem(name)
    trainer = make_trainer(LogisticRegression(), X, y, int(y.max()) + 1, device, dtype=dtype)
    on_torch = array_api_compat.is_torch_namespace(trainer._data().backend.xp)
    assert on_torch == (device != "numpy")
    return trainer.fit(W), trainer.fit_predict(W, X)


@pytest.mark.parametrize(("device", "dtype"), BACK_ENDS)
@pytest.mark.parametrize("name", ["breast_cancer", "wine"])
def test_each_back_end_finds_sklearns_optimum(name: str, device: str, dtype: str) -> None:
    X, y, W = _problem(name)
    fit, pred = _fit(name, device, dtype)
    assert fit.binary.tolist() == [np.unique(y[w > 0]).size == 2 for w in W]
    if dtype == "float64":
        assert fit.converged.all()
    for b in range(W.shape[0]):
        theirs = _theta(*_sklearn(name, b))
        ours = _theta(*fit.sklearn_coef(b))
        assert _distance(ours, theirs) <= _bound(theirs, dtype), b
    np.testing.assert_array_equal(pred, fit.predict(X))


@needs_torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ["breast_cancer", "wine"])
def test_numpy_and_torch_agree(name: str, dtype: str) -> None:
    X, _, W = _problem(name)
    (on_numpy, pred_numpy), (on_torch, pred_torch) = (
        _fit(name, d, dtype) for d in ("numpy", "cpu")
    )
    assert on_numpy.present.tolist() == on_torch.present.tolist()
    assert on_numpy.binary.tolist() == on_torch.binary.tolist()
    for b in range(W.shape[0]):
        a, t = _theta(*on_numpy.sklearn_coef(b)), _theta(*on_torch.sklearn_coef(b))
        assert _distance(t, a) <= 2 * _bound(a, dtype), b
    # the same predictions but for points within rounding of a decision boundary
    scores = on_numpy.decision_function(X)
    top2 = np.sort(scores, axis=2)[:, :, -2:]
    margin = top2[:, :, 1] - top2[:, :, 0]
    limit = 1e-6 if dtype == "float64" else 1e-2
    assert np.all(margin[pred_numpy != pred_torch] < limit)


@pytest.mark.parametrize("name", ["breast_cancer", "wine"])
def test_curvature_bound_holds(name: str) -> None:
    """The objective's smallest curvature at scikit-learn's optimum is at least ``LAMBDA`` on
    each subset (binary fits: the Hessian's smallest eigenvalue; multinomial fits: the same on
    the subspace orthogonal to the common shift of the intercepts)."""
    X, y, W = _problem(name)
    A = np.column_stack([X, np.ones(y.size)])
    for b, w in enumerate(W):
        coef, intercept = _sklearn(name, b)
        rows = w > 0
        Z = A[rows] @ np.column_stack([coef, intercept]).T
        if coef.shape[0] == 1:
            p = 1.0 / (1.0 + np.exp(-Z[:, 0]))
            H = (A[rows].T * (p * (1.0 - p))) @ A[rows]
        else:
            P = np.exp(Z - Z.max(axis=1, keepdims=True))
            P /= P.sum(axis=1, keepdims=True)
            K = P.shape[1]
            blocks = np.einsum("ik,kl->ikl", P, np.eye(K)) - P[:, :, None] * P[:, None, :]
            H = np.einsum("ikl,ij,im->kjlm", blocks, A[rows], A[rows]).reshape(K * A.shape[1], -1)
            shift = np.zeros((K, A.shape[1]))
            shift[:, -1] = 1.0 / math.sqrt(K)
            H += np.outer(shift.ravel(), shift.ravel())  # the shift does not count
        pen = np.tile(np.r_[np.ones(X.shape[1]), 0.0], coef.shape[0])
        assert np.linalg.eigvalsh(H + np.diag(pen)).min() >= LAMBDA, b
