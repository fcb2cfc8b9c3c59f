"""Batched L2 logistic regression: many weighted subsets fitted at once by damped Newton steps.

scikit-learn's ``LogisticRegression`` (lbfgs, newton-cg, newton-cholesky, sag and saga solvers,
L2 penalty) minimises, for sample weights ``w``,

    0.5 * ||W||^2 + C * sum_i w_i * loss_i(W, b)

(``W`` the coefficients, never the intercept ``b``; recent versions minimise this divided by
``C * sum(w)``, which has the same minimiser). The loss is the logistic loss for two classes and
the multinomial (softmax) loss for three or more. Each subset is fitted on the classes *present*
in it (positive weight): two present classes give a binary model whose positive class is the
larger code, three or more a multinomial over those classes only (absent classes are never
predicted). This module reproduces that for a whole batch of weight vectors: rows with two present
classes go to a batched binary solver, rows with three or more to a batched multinomial solver in
which absent classes are masked out (their logits are ``-inf`` and their coefficients stay 0, so
the objective is exactly that of the multinomial on the present classes).

The solver is Newton's method with an Armijo backtracking line search, vectorised over the batch:
Hessians are weighted Gram matrices ``X^T diag(h_b) X`` computed for all subsets with one matrix
product against precomputed products of feature pairs, and the stacked systems are solved at once
(a pseudo-inverse when one of them is singular). Each subset starts from the best (lowest
objective) of the fit on all training rows of its classes (computed once), the intercept-only
model and a blend of the two, and stops when its gradient is below ``tol`` relative to the
smaller of ``C * sum(w)`` (scikit-learn's scaling) and the size of its coefficients, or when its
line search meets the floating-point limit; stopped subsets leave the working set. That is the
exact optimum, which scikit-learn's default lbfgs (``tol=1e-4``) only approaches: predictions
then differ from a one-at-a-time fit for a few subsets on standardised features, and for many on
unscaled ones (where lbfgs stops far from the optimum); with a tight ``tol`` they agree but for
exact ties.

The solver is written once, against the Python array API standard (through ``array_api_compat``;
beyond the standard it relies only on the integer-array indexing that numpy and torch share), and
runs on numpy arrays (``device="numpy"``, the default) or on torch tensors on the CPU or a GPU
(``device="cpu"``, ``"cuda"``, ``"cuda:N"``; ``pip install "dataworth[torch]"``). Weights and
features go in, and class codes or a :class:`LogisticFit` come out, as numpy arrays: on a GPU
only those cross the bus. In float64 (the default) every back end finds the same optimum to
rounding, so predictions differ only at exact decision ties; float32 (faster on most GPUs) stops
at its own limit, the optimum to about 1e-5 relative. Torch is imported only for a torch device.

Examples
--------
>>> import numpy as np
>>> from sklearn.linear_model import LogisticRegression
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(40, 3))
>>> y = (X[:, 0] + 0.5 * rng.normal(size=40) > 0).astype(int)
>>> trainer = make_trainer(LogisticRegression(C=0.5), X, y, 2)
>>> weights = (rng.random((4, 40)) < 0.5).astype(float)
>>> trainer.fit_predict(weights, X[:5]).shape
(4, 5)
>>> fit = trainer.fit(weights[:1])
>>> keep = weights[0] > 0
>>> ref = LogisticRegression(C=0.5, tol=1e-10).fit(X[keep], y[keep])
>>> coef, intercept = fit.sklearn_coef(0)
>>> bool(np.allclose(coef, ref.coef_, atol=1e-6) and np.allclose(intercept, ref.intercept_))
True
>>> on_torch = make_trainer(LogisticRegression(C=0.5), X, y, 2, "cpu")  # doctest: +SKIP
>>> on_torch.fit_predict(weights, X[:5]).shape  # on torch's CPU  # doctest: +SKIP
(4, 5)
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import array_api_compat
import array_api_compat.numpy as npx
import numpy as np
from numpy.typing import NDArray

from dataworth.utility.batched import Unsupported

__all__ = ["MAX_PARAMS", "LogisticFit", "LogisticTrainer", "make_trainer"]

#: Largest number of parameters per fit (``K * (d + 1)`` for a multinomial, ``d + 1`` binary)
#: for which full Newton steps are used; larger problems raise :class:`Unsupported`.
MAX_PARAMS = 300

#: Solvers whose L2 optimum is the one computed here (liblinear penalises the intercept).
_SOLVERS = ("lbfgs", "newton-cg", "newton-cholesky", "sag", "saga")

#: Working memory aimed at per block of subsets (on a CPU, on a GPU), and the cap for the
#: precomputed feature products.
_BLOCK_BYTES_CPU = 64 * 2**20
_BLOCK_BYTES_GPU = 2**30
_PAIR_BYTES = 256 * 2**20

_F64 = NDArray[np.float64]
#: An array of the trainer's namespace: a numpy array or a torch tensor.
Array = Any
_Cache = tuple[Array, ...]


# ---------------------------------------------------------------------------------- factory
def _sklearn_version() -> tuple[int, ...]:
    import sklearn

    return tuple(int(part) for part in re.findall(r"\d+", sklearn.__version__)[:2])


def make_trainer(
    model: Any,
    X: NDArray[np.float64],
    y: NDArray[Any],
    n_classes: int,
    device: Any = "numpy",
    *,
    dtype: Any = "float64",
) -> LogisticTrainer:
    """A :class:`LogisticTrainer` for a scikit-learn ``LogisticRegression``, or Unsupported.

    Parameters
    ----------
    model : sklearn.linear_model.LogisticRegression
        Its settings are read (``C``, ``fit_intercept``, ``penalty``/``l1_ratio``, ``solver``,
        ``class_weight``, ``multi_class`` where it exists); it is never fitted.
    X : ndarray of shape (n_train, d)
        Training features.
    y : ndarray of shape (n_train,)
        Class codes ``0..n_classes-1``.
    n_classes : int
        Number of classes in the whole training set.
    device : str or torch.device, default="numpy"
        Where the fits run: ``"numpy"``, or a torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``,
        a ``torch.device``); see :class:`LogisticTrainer`.
    dtype : {"float64", "float32"}, default="float64"

    Raises
    ------
    Unsupported
        For settings without a batched equivalent: a penalty other than L2 (or none, ``C=inf``),
        ``class_weight``, the liblinear solver (it penalises the intercept), ``dual=True``,
        one-vs-rest multiclass, or more than :data:`MAX_PARAMS` parameters per fit. The
        stopping settings (``max_iter``, ``tol``) are not read: the trainer always solves to the
        optimum; :func:`dataworth.utility.batched.batched_reason` refuses settings that ask
        scikit-learn to stop early.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = np.eye(3), np.array([0, 1, 2])
    >>> make_trainer(LogisticRegression(), X, y, 3).n_classes
    3
    >>> make_trainer(LogisticRegression(class_weight="balanced"), X, y, 3)
    Traceback (most recent call last):
    ...
    dataworth.utility.batched.Unsupported: class_weight='balanced' is not batched (only None)
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    settings = _settings(model, X.shape[1], n_classes)
    return LogisticTrainer(X, y, n_classes, device=device, dtype=dtype, **settings)


def _settings(model: Any, n_features: int, n_classes: int) -> dict[str, Any]:
    """``C``, ``fit_intercept`` and ``binary_c_factor`` for ``model``, or Unsupported (see
    :func:`make_trainer`)."""
    params = model.get_params(deep=False)
    C = params.get("C", 1.0)
    try:
        C = float(C)
    except (TypeError, ValueError):
        raise Unsupported(f"C={C!r} is not a number") from None
    if not (C > 0 and math.isfinite(C)):
        raise Unsupported(f"C={C!r}: only a finite positive C (an L2 penalty) is batched")
    penalty = params.get("penalty", "l2")
    l1_ratio = params.get("l1_ratio")
    if penalty == "deprecated":  # scikit-learn >= 1.8: the penalty is set by l1_ratio and C
        if l1_ratio not in (0, 0.0, None):
            raise Unsupported(f"l1_ratio={l1_ratio!r}: only the L2 penalty (l1_ratio=0) is batched")
    elif penalty != "l2":
        raise Unsupported(f"penalty={penalty!r}: only the L2 penalty is batched")
    if params.get("class_weight") is not None:
        raise Unsupported(f"class_weight={params['class_weight']!r} is not batched (only None)")
    solver = params.get("solver", "lbfgs")
    if solver not in _SOLVERS:
        raise Unsupported(
            f"solver={solver!r} is not batched ({', '.join(_SOLVERS)} are; liblinear "
            "penalises the intercept)"
        )
    fit_intercept = params.get("fit_intercept", True)
    if not isinstance(fit_intercept, bool | np.bool_):
        raise Unsupported(f"fit_intercept={fit_intercept!r} is not a boolean")
    if params.get("dual", False):
        raise Unsupported("dual=True is not batched (only liblinear solves the dual problem)")
    # Older scikit-learn: multi_class='multinomial' fits two present classes as a two-class
    # softmax, whose optimum is the binary one with twice the C; 'ovr' fits one-vs-rest.
    multi_class = params.get("multi_class", "auto")
    binary_c_factor = 1.0
    if multi_class == "multinomial":
        binary_c_factor = 2.0
    elif multi_class == "ovr" and n_classes >= 3:
        raise Unsupported("multi_class='ovr' (one-vs-rest) is not batched")
    elif multi_class not in ("auto", "ovr", "deprecated", None):
        raise Unsupported(f"multi_class={multi_class!r} is not batched")
    if solver == "newton-cholesky" and n_classes >= 3 and _sklearn_version() < (1, 6):
        raise Unsupported("solver='newton-cholesky' fits one-vs-rest before scikit-learn 1.6")
    n_params = (n_features + int(fit_intercept)) * (n_classes if n_classes >= 3 else 1)
    if n_params > MAX_PARAMS:
        raise Unsupported(
            f"{n_params} parameters per fit (more than {MAX_PARAMS}): full Newton steps "
            "would be slower than scikit-learn"
        )
    return {"C": C, "fit_intercept": bool(fit_intercept), "binary_c_factor": binary_c_factor}


# ---------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class LogisticFit:
    """Fitted models of a batch, in one frame over all ``K`` classes (numpy arrays).

    Row ``b``'s decision function for class ``k`` is ``X @ coef[b, k] + intercept[b, k]``, and
    ``-inf`` for classes not present in subset ``b``; predictions are its argmax (the smallest
    code on ties, as scikit-learn). A binary subset (two present classes ``lo < hi``) stores its
    scikit-learn coefficients in row ``hi`` and zeros in row ``lo``, which gives the same
    predictions (``hi`` exactly when the binary decision is positive). Multinomial subsets store
    their coefficients in the rows of their present classes, intercepts centred to sum to zero
    over them (as scikit-learn's solvers started from zero return them).

    Attributes
    ----------
    coef : ndarray of shape (B, K, d)
    intercept : ndarray of shape (B, K)
    present : ndarray of bool, shape (B, K)
        Classes with positive weight in each subset.
    binary : ndarray of bool, shape (B,)
        Subsets fitted as binary logistic regressions.
    n_iter : ndarray of int, shape (B,)
        Newton iterations used.
    converged : ndarray of bool, shape (B,)
        Whether the gradient tolerance was reached (else the line search stalled or the
        iteration limit was hit).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> fit = LogisticTrainer(X, np.array([0, 0, 1, 1]), 2).fit(np.ones((1, 4)))
    >>> fit.predict(X).tolist(), bool(fit.converged[0]), fit.sklearn_coef(0)[0].shape
    ([[0, 0, 1, 1]], True, (1, 1))
    """

    coef: _F64
    intercept: _F64
    present: NDArray[np.bool_]
    binary: NDArray[np.bool_]
    n_iter: NDArray[np.int64]
    converged: NDArray[np.bool_]

    def decision_function(self, X: NDArray[np.float64]) -> _F64:
        """Decision values of shape (B, m, K) (``-inf`` for absent classes)."""
        X = np.asarray(X, dtype=np.float64)
        return _scores(npx, self.coef, self.intercept, self.present, X).transpose(1, 0, 2)

    def predict(self, X: NDArray[np.float64]) -> NDArray[np.intp]:
        """Predicted class codes of shape (B, m)."""
        return np.argmax(self.decision_function(X), axis=2)

    def sklearn_coef(self, b: int) -> tuple[_F64, _F64]:
        """``(coef_, intercept_)`` of subset ``b`` in scikit-learn's layout.

        Shapes ``(1, d), (1,)`` for a binary subset and ``(K', d), (K',)`` over the ``K'``
        present classes (in code order) for a multinomial one.
        """
        classes = np.flatnonzero(self.present[b])
        if self.binary[b]:
            hi = classes[-1]
            return self.coef[b, hi][None, :].copy(), self.intercept[b, hi : hi + 1].copy()
        return self.coef[b, classes].copy(), self.intercept[b, classes].copy()


def _scores(xp: Any, coef: Array, intercept: Array, present: Array, X: Array) -> Array:
    """Decision values (m, B, K) of models in the frame of :class:`LogisticFit` on ``X`` (m, d),
    ``-inf`` for absent classes, in namespace ``xp`` (classes last: a fast argmax)."""
    B, K, d = coef.shape
    scores = xp.reshape(X @ xp.reshape(coef, (B * K, d)).T, (-1, B, K))
    return xp.where(present, scores + intercept, -xp.inf)


# ---------------------------------------------------------------------------------- back ends
@dataclass(frozen=True)
class _Backend:
    """Where a trainer's arrays live: an array namespace, a device of it and a float dtype."""

    xp: Any
    device: Any
    dtype: Any

    def asarray(self, a: Any, dtype: Any = None) -> Array:
        """``a`` (numpy) on the device, as ``dtype`` (default: the float dtype); a read-only
        ``a`` is copied (torch tensors cannot share its memory)."""
        a = np.asarray(a)
        if not a.flags.writeable:
            a = a.copy()
        return self.xp.asarray(a, dtype=self.dtype if dtype is None else dtype, device=self.device)

    def index(self, a: Any) -> Array:
        """Integer index array ``a`` (numpy) on the device."""
        return self.asarray(a, self.xp.int64)

    @staticmethod
    def numpy(a: Array) -> NDArray[Any]:
        """``a`` back as a numpy array."""
        return np.asarray(array_api_compat.to_device(a, "cpu"))


def _backend(device: Any, dtype: str) -> _Backend:
    """The back end of ``device`` (``"numpy"`` or a torch device) for the float ``dtype``."""
    if device == "numpy":
        return _Backend(npx, "cpu", getattr(npx, dtype))
    import array_api_compat.torch as tx
    import torch

    return _Backend(tx, torch.device(device), getattr(tx, dtype))


def _dtype_name(dtype: Any) -> str:
    """``"float64"`` or ``"float32"`` for a name or a numpy or torch dtype, else ValueError."""
    try:
        name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    except TypeError:
        name = str(dtype).removeprefix("torch.")
    if name not in ("float64", "float32"):
        raise ValueError(f"dtype must be float64 or float32; got {dtype!r}")
    return name


# ---------------------------------------------------------------------------------- algebra
class _Gram:
    """Weighted Gram matrices ``A^T diag(s) A`` for many weight vectors ``s`` at once."""

    def __init__(self, A: Array) -> None:
        self.xp = xp = array_api_compat.array_namespace(A)
        dev = array_api_compat.device(A)
        self.A = A
        n, p = A.shape
        iu, ju = np.triu_indices(p)
        self.n_tri = iu.size
        tri = np.empty((p, p), dtype=np.intp)
        tri[iu, ju] = tri[ju, iu] = np.arange(self.n_tri)
        self.tri = tri  # (j, m) -> position of the pair in the upper triangle (numpy)
        self._tri = xp.asarray(tri.ravel(), device=dev)
        self._upper = xp.asarray(iu * p + ju, device=dev)  # flat positions of the triangle
        # Products of feature pairs (upper triangle): one GEMM then gives all Gram matrices.
        self.pairs: Array | None = None
        if n * self.n_tri * xp.finfo(A.dtype).bits // 8 <= _PAIR_BYTES:
            iu_t, ju_t = xp.asarray(iu, device=dev), xp.asarray(ju, device=dev)
            self.pairs = xp.take(A, iu_t, axis=1) * xp.take(A, ju_t, axis=1)

    def take(self, rows: Array) -> _Gram:
        """The same for a subset of the rows of ``A``."""
        out = copy.copy(self)
        out.A = self.xp.take(self.A, rows, axis=0)
        out.pairs = None if self.pairs is None else self.xp.take(self.pairs, rows, axis=0)
        return out

    def upper(self, S: Array) -> Array:
        """``S`` (M, n) -> upper triangles (M, p (p + 1) / 2) of the Gram matrices."""
        if self.pairs is not None:
            return S @ self.pairs
        p = self.A.shape[1]
        G = (S[:, None, :] * self.A.T[None, :, :]) @ self.A  # batched matmul, (M, p, p)
        return self.xp.take(self.xp.reshape(G, (-1, p * p)), self._upper, axis=1)

    def __call__(self, S: Array) -> Array:
        """``S`` (M, n) -> (M, p, p) Gram matrices."""
        p = self.A.shape[1]
        return self.xp.reshape(self.xp.take(self.upper(S), self._tri, axis=1), (-1, p, p))


class _Problem:
    """One batched convex problem: objective, gradient and Hessian for some of its rows.

    ``rows`` (an index array) pick rows of the batch; ``theta`` holds their parameters, (a, p).
    """

    xp: Any
    C: float
    sw: Array  # (B,) weight sums

    def value(self, theta: Array, rows: Array) -> tuple[Array, _Cache]:
        """Objective (a,) and a cache for :meth:`grad` and :meth:`hess`."""
        raise NotImplementedError

    def grad(self, theta: Array, cache: _Cache, rows: Array) -> Array:
        """Gradient (a, p) at ``theta`` from :meth:`value`'s cache."""
        raise NotImplementedError

    def hess(self, theta: Array, cache: _Cache, rows: Array) -> Array:
        """Hessian (a, p, p) at ``theta`` from :meth:`value`'s cache (positive definite)."""
        raise NotImplementedError


def _solve(xp: Any, H: Array, g: Array) -> Array:
    """Solve the stacked systems ``H s = g`` (by pseudo-inverses, all of them, when one of the
    matrices is singular)."""
    singular: type[Exception] = np.linalg.LinAlgError
    if array_api_compat.is_torch_namespace(xp):
        import torch

        singular = torch.linalg.LinAlgError
    try:
        return xp.linalg.solve(H, g[:, :, None])[:, :, 0]
    except singular:
        return (xp.linalg.pinv(H) @ g[:, :, None])[:, :, 0]


def _take(cache: _Cache, keep: Array) -> _Cache:
    return tuple(c[keep] for c in cache)


def _put(cache: _Cache, where: Array, new: _Cache) -> None:
    for c, v in zip(cache, new, strict=True):
        c[where] = v


def _newton(
    problem: _Problem, starts: list[Array], *, tol: float, max_iter: int
) -> tuple[Array, Array, Array]:
    """Damped Newton on all rows from the best (lowest objective) of ``starts``, each (B, p).

    Returns ``(theta, n_iter, converged)``. A row stops when every entry of its gradient is at
    most ``tol * min(C * sum(w), max(1, max|theta|))`` (scikit-learn's criterion, the gradient
    of the objective divided by ``C * sum(w)``, when that is the smaller scale; else relative to
    the parameters), when its line search cannot make progress any more (the floating-point
    limit), or after ``max_iter`` steps. Rows that stop leave the working set, whose size is the
    only quantity read back from a GPU (a few times per iteration).
    """
    xp = problem.xp
    theta = xp.asarray(starts[0], copy=True)
    B, dev = theta.shape[0], array_api_compat.device(theta)
    n_iter = xp.zeros(B, dtype=xp.int64, device=dev)
    converged = xp.zeros(B, dtype=xp.bool, device=dev)
    rows = xp.arange(B, device=dev)
    f, cache = problem.value(theta, rows)
    for other in starts[1:]:
        f2, cache2 = problem.value(other, rows)
        better = f2 < f
        theta = xp.where(better[:, None], other, theta)
        f = xp.where(better, f2, f)
        cache = tuple(
            xp.where(xp.reshape(better, (-1,) + (1,) * (c.ndim - 1)), c2, c)
            for c, c2 in zip(cache, cache2, strict=True)
        )
    eps = xp.finfo(theta.dtype).eps
    for _ in range(max_iter + 1):
        th = theta[rows]
        g = problem.grad(th, cache, rows)
        gmax = xp.max(xp.abs(g), axis=1)
        size = xp.clip(xp.max(xp.abs(th), axis=1), min=1.0)
        done = gmax <= tol * xp.minimum(problem.C * problem.sw[rows], size)
        converged[rows] = done
        go = ~done & (n_iter[rows] < max_iter)
        n_go = int(xp.count_nonzero(go))
        if n_go < rows.shape[0]:
            rows, th, g, gmax, f = rows[go], th[go], g[go], gmax[go], f[go]
            cache = _take(cache, go)
        if n_go == 0:
            break
        n_iter[rows] += 1
        step = _solve(xp, problem.hess(th, cache, rows), -g)
        slope = xp.vecdot(g, step, axis=1)
        t = xp.ones_like(slope)
        f_new, cache_new = problem.value(th + step, rows)
        ok = f_new <= f + 1e-4 * slope
        # Near the optimum the change of the objective can be below its rounding error: there,
        # the full Newton step is kept if it halves the gradient (it does, converging
        # quadratically), else the row has reached the floating-point limit and stops.
        noise = xp.abs(f_new - f) <= 1e3 * eps * xp.abs(f)
        stop = xp.zeros_like(ok)
        at = xp.nonzero(noise)[0]
        if at.shape[0]:
            g_new = problem.grad(th[at] + step[at], _take(cache_new, at), rows[at])
            halved = xp.max(xp.abs(g_new), axis=1) <= 0.5 * gmax[at]
            ok[at], stop[at] = halved, ~halved
        for _ls in range(30):
            bad = xp.nonzero(~ok & ~stop)[0]
            if bad.shape[0] == 0:
                break
            t[bad] *= 0.5
            f_bad, cache_bad = problem.value(th[bad] + t[bad, None] * step[bad], rows[bad])
            f_new[bad] = f_bad
            _put(cache_new, bad, cache_bad)
            ok[bad] = f_bad <= f[bad] + 1e-4 * t[bad] * slope[bad]
        theta[rows] = xp.where(ok[:, None], th + t[:, None] * step, th)
        # A row whose line search failed is at the floating-point limit: it stops where it is.
        rows, f, cache = rows[ok], f_new[ok], _take(cache_new, ok)
        if rows.shape[0] == 0:
            break
    return theta, n_iter, converged


class _Binary(_Problem):
    """Binary logistic loss; ``target`` (B, n) is 1 for the positive class, else 0."""

    def __init__(self, gram: _Gram, W: Array, target: Array, C: float, pen: Array) -> None:
        xp = self.xp = gram.xp
        self.gram, self.W, self.C, self.pen = gram, W, C, pen
        self.sign = 1.0 - 2.0 * target  # loss = softplus(sign * z), computed without cancelling
        self.sw = xp.sum(W, axis=1)
        self.diag = xp.arange(gram.A.shape[1], device=array_api_compat.device(W))
        # float32: exp(-|z|) kept above float32's smallest normal number (exp(-87) = 1.6e-38), as
        # subnormal numbers are slow on CPUs; float64 keeps the exact values.
        self.floor = -87.0 if W.dtype == xp.float32 else None

    def value(self, theta: Array, rows: Array) -> tuple[Array, _Cache]:
        xp = self.xp
        z = theta @ self.gram.A.T
        e = xp.exp(-xp.abs(z) if self.floor is None else xp.clip(-xp.abs(z), min=self.floor))
        loss = xp.clip(self.sign[rows] * z, min=0.0) + xp.log1p(e)
        f = 0.5 * (theta**2) @ self.pen + self.C * xp.vecdot(self.W[rows], loss, axis=1)
        return f, (z, e)

    def grad(self, theta: Array, cache: _Cache, rows: Array) -> Array:
        z, e = cache
        # d loss / dz = sign * sigmoid(sign * z), computed without cancelling
        sign = self.sign[rows]
        r = sign * self.xp.where(sign * z >= 0.0, 1.0, e) / (1.0 + e)
        return self.pen * theta + self.C * ((self.W[rows] * r) @ self.gram.A)

    def hess(self, theta: Array, cache: _Cache, rows: Array) -> Array:
        e = cache[1]
        H = self.gram(self.C * self.W[rows] * (e / (1.0 + e) ** 2))  # sigma (1 - sigma)
        H[:, self.diag, self.diag] += self.pen
        return H


class _Multinomial(_Problem):
    """Multinomial loss over the present classes (``present`` (B, K)); ``theta`` is (K, p)."""

    def __init__(
        self,
        gram: _Gram,
        W: Array,
        y: Array,
        present: Array,
        C: float,
        pen: Array,
        fit_intercept: bool,
    ) -> None:
        xp = self.xp = gram.xp
        dev = array_api_compat.device(W)
        self.gram, self.W, self.y, self.present, self.C = gram, W, y, present, C
        self.fit_intercept = fit_intercept
        self.K = K = present.shape[1]
        self.d1 = d1 = gram.A.shape[1]
        self.sw = xp.sum(W, axis=1)
        self.onehot = xp.astype(xp.arange(K, device=dev)[:, None] == y[None, :], W.dtype)
        self.offlabel = 1.0 - self.onehot
        self.pen_full = xp.tile(pen, (K,))
        pk, pl = np.triu_indices(K)
        self.pk, self.pl = xp.asarray(pk, device=dev), xp.asarray(pl, device=dev)
        self.same = xp.asarray(np.flatnonzero(pk == pl), device=dev)  # the pairs (k, k)
        # Flat position in (pair of classes, pair of features) of each Hessian entry.
        pair = np.empty((K, K), dtype=np.intp)
        pair[pk, pl] = pair[pl, pk] = np.arange(pk.size)
        layout = pair[:, None, :, None] * gram.n_tri + gram.tri[None, :, None, :]
        self.layout = xp.asarray(layout.ravel(), device=dev)  # order (k, j, l, m)
        self.diag = xp.arange(K * d1, device=dev)
        self.icpt = xp.asarray(np.arange(K) * d1 + d1 - 1, device=dev)

    def value(self, theta: Array, rows: Array) -> tuple[Array, _Cache]:
        xp = self.xp
        a, K, n = rows.shape[0], self.K, self.y.shape[0]
        Z = xp.reshape(xp.reshape(theta, (a * K, self.d1)) @ self.gram.A.T, (a, K, n))
        Zy = xp.take_along_axis(Z, self.y[None, None, :], axis=1)[:, 0, :]
        Z = xp.where(self.present[rows][:, :, None], Z, -xp.inf)
        top = xp.max(Z, axis=1)
        E = xp.exp(Z - top[:, None, :])
        # logsumexp(Z) - Z_y = (top - Z_y) + log1p(rest), rest = the sum of exp(Z_k - top) over
        # all but one top class, summed without cancelling (for precise objectives at large C)
        below = E < 1.0
        ties = xp.sum(xp.astype(~below, E.dtype), axis=1) - 1.0
        rest = xp.sum(xp.where(below, E, 0.0), axis=1) + ties
        loss = (top - Zy) + xp.log1p(rest)
        E /= (1.0 + rest)[:, None, :]
        f = 0.5 * (theta**2) @ self.pen_full + self.C * xp.vecdot(self.W[rows], loss, axis=1)
        return f, (E,)

    def grad(self, theta: Array, cache: _Cache, rows: Array) -> Array:
        (P,) = cache
        xp, a, K = self.xp, rows.shape[0], self.K
        # P - onehot, with P_y - 1 computed as minus the sum of the other P_k (no cancelling)
        R = P * self.offlabel
        R -= self.onehot * xp.sum(R, axis=1)[:, None, :]
        R *= self.W[rows][:, None, :]
        G = xp.reshape(xp.reshape(R, (a * K, -1)) @ self.gram.A, (a, -1))
        return self.pen_full * theta + self.C * G

    def hess(self, theta: Array, cache: _Cache, rows: Array) -> Array:
        (P,) = cache
        xp, a, p = self.xp, rows.shape[0], self.K * self.d1
        # Blocks (k, l), k <= l: sum_i w_i (P_ik [k == l] - P_ik P_il) x_i x_i^T, each symmetric;
        # one GEMM gives their upper triangles, one gather lays them out as the full Hessian.
        S = -xp.take(P, self.pk, axis=1) * xp.take(P, self.pl, axis=1)
        S[:, self.same, :] += P
        S *= self.C * self.W[rows][:, None, :]
        G = xp.reshape(self.gram.upper(xp.reshape(S, (a * self.pk.shape[0], -1))), (a, -1))
        H = xp.reshape(xp.take(G, self.layout, axis=1), (a, p, p))
        H[:, self.diag, self.diag] += self.pen_full
        if self.fit_intercept:
            # Absent classes: unit curvature on their (unpenalised) intercepts and zero gradient,
            # so they stay at 0. Present classes: their intercepts can shift together without
            # changing the loss; adding u u^T along that direction (orthogonal to the gradient)
            # makes H invertible without changing the step in the identifiable subspace.
            present = xp.astype(self.present[rows], H.dtype)
            icpt = self.icpt
            H[:, icpt, icpt] += 1.0 - present
            u = present / xp.sqrt(xp.sum(present, axis=1, keepdims=True))
            H[:, icpt[:, None], icpt[None, :]] += u[:, :, None] * u[:, None, :]
        return H


# ---------------------------------------------------------------------------------- trainer
@dataclass(frozen=True)
class _Data:
    """A trainer's training data on its device."""

    backend: _Backend
    gram: _Gram
    y: Array
    pen: Array  # 1 on coefficients, 0 on the intercept


class LogisticTrainer:
    """Fits scikit-learn's L2 logistic regression on many weighted subsets at once.

    Parameters
    ----------
    X : ndarray of shape (n_train, d)
        Training features.
    y : ndarray of shape (n_train,)
        Class codes ``0..n_classes-1``.
    n_classes : int
        Number of classes overall (2: binary; 3 or more: multinomial).
    C : float, default=1.0
        Inverse regularisation strength, as scikit-learn's.
    fit_intercept : bool, default=True
    binary_c_factor : float, default=1.0
        Multiplies ``C`` for subsets fitted as binary models (2.0 reproduces the two-class
        softmax of old scikit-learn's ``multi_class='multinomial'``).
    tol : float or None, default=None
        Stop a subset when the largest entry of its gradient is at most
        ``tol * min(C * sum(w), max(1, max|coefficients|))``; None: 1e-10 in float64, 1e-5 in
        float32.
    max_iter : int, default=100
        Newton iterations at most.
    device : str or torch.device, default="numpy"
        Where the arrays live and the work runs: ``"numpy"`` (numpy arrays), or a torch device
        (``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device``; torch is imported then).
    dtype : {"float64", "float32"} or a numpy or torch float dtype, default="float64"
    block_bytes : int or None, default=None
        Working memory aimed at per block of subsets; None: 64 MiB on a CPU, 1 GiB on a GPU.

    The fit on all training rows (every subset's warm start) is computed on construction and
    kept, as any later ones, in numpy; the arrays on the device are not pickled (a trainer sent
    to another process rebuilds them there, on first use).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> trainer = LogisticTrainer(X, np.array([0, 0, 1, 1]), 2, C=10.0)
    >>> trainer.fit_predict(np.array([[1.0, 1, 1, 1], [1, 0, 0, 1]]), X).tolist()
    [[0, 0, 1, 1], [0, 0, 1, 1]]
    >>> LogisticTrainer(X, np.array([0, 0, 1, 1]), 2, dtype="float32").tol
    1e-05
    """

    def __init__(
        self,
        X: NDArray[np.float64],
        y: NDArray[Any],
        n_classes: int,
        *,
        C: float = 1.0,
        fit_intercept: bool = True,
        binary_c_factor: float = 1.0,
        tol: float | None = None,
        max_iter: int = 100,
        device: Any = "numpy",
        dtype: Any = "float64",
        block_bytes: int | None = None,
    ) -> None:
        self.X = np.ascontiguousarray(X, dtype=np.float64)
        self.n_features = self.X.shape[1]
        self.y = np.asarray(y, dtype=np.intp)
        self.n_classes = int(n_classes)
        self.C = float(C)
        self.fit_intercept = bool(fit_intercept)
        self.binary_c_factor = float(binary_c_factor)
        self.dtype = _dtype_name(dtype)
        self.tol = float(tol) if tol is not None else (1e-10 if self.dtype == "float64" else 1e-5)
        self.max_iter = int(max_iter)
        self.device = device
        self._K = max(self.n_classes, 2)
        self._onehot = np.eye(self._K)[self.y]
        self._warm: dict[bytes, NDArray[Any]] = {}
        self._dev: _Data | None = None
        if block_bytes is None:
            on_gpu = getattr(self._data().backend.device, "type", "cpu") != "cpu"
            block_bytes = _BLOCK_BYTES_GPU if on_gpu else _BLOCK_BYTES_CPU
        self.block_bytes = int(block_bytes)
        # The fit on all rows is every subset's warm start: computed here, once, so that the
        # copies sent to parallel workers carry it instead of each task recomputing it.
        present = np.bincount(self.y, minlength=self._K)[None, :] > 0
        if present.sum() >= 2:
            self._warm_start(present, is_binary=bool(present.sum() == 2))

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_dev": None}

    # ------------------------------------------------------------------ public
    def fit_predict(
        self, weights: NDArray[np.float64], X_eval: NDArray[np.float64]
    ) -> NDArray[np.intp]:
        """Fit one model per row of ``weights`` (B, n_train); class codes (B, m) on ``X_eval``."""
        W, counts, present = self._classes(weights)
        backend = self._data().backend
        xp = backend.xp
        Xe = backend.asarray(np.asarray(X_eval, dtype=np.float64))
        pred = np.empty((W.shape[0], Xe.shape[0]), dtype=np.intp)
        for idx, is_binary, (theta, _, _) in self._blocks(W, counts, present):
            coef, intercept = self._frame(theta, present[idx], is_binary)
            scores = _scores(xp, coef, intercept, backend.asarray(present[idx], xp.bool), Xe)
            pred[idx] = backend.numpy(xp.argmax(scores, axis=2)).T
        return pred

    def fit(self, weights: NDArray[np.float64]) -> LogisticFit:
        """Fit one model per row of ``weights`` (B, n_train), each on at least two classes."""
        W, counts, present = self._classes(weights)
        B, K, d = W.shape[0], self._K, self.n_features
        coef = np.zeros((B, K, d))
        intercept = np.zeros((B, K))
        n_iter = np.zeros(B, dtype=np.int64)
        converged = np.zeros(B, dtype=bool)
        numpy = _Backend.numpy
        for idx, is_binary, (theta, it, conv) in self._blocks(W, counts, present):
            c, b = self._frame(theta, present[idx], is_binary)
            coef[idx], intercept[idx], n_iter[idx], converged[idx] = map(numpy, (c, b, it, conv))
        return LogisticFit(coef, intercept, present, present.sum(axis=1) == 2, n_iter, converged)

    # ------------------------------------------------------------------ internals
    def _data(self) -> _Data:
        """The training data on the device (built on first use)."""
        if self._dev is None:
            backend = _backend(self.device, self.dtype)
            A, pen = self.X, np.ones(self.n_features + int(self.fit_intercept))
            if self.fit_intercept:
                A, pen[-1] = np.hstack([A, np.ones((A.shape[0], 1))]), 0.0
            gram = _Gram(backend.asarray(A))
            self._dev = _Data(backend, gram, backend.index(self.y), backend.asarray(pen))
        return self._dev

    def _classes(self, weights: NDArray[np.float64]) -> tuple[_F64, _F64, NDArray[np.bool_]]:
        """Weights (B, n_train) as float64, their sums per class (B, K) and the classes present."""
        W = np.asarray(weights, dtype=np.float64)
        if W.ndim != 2 or W.shape[1] != self.y.size:
            raise ValueError(f"weights must have shape (B, {self.y.size}); got {W.shape}")
        counts = W @ self._onehot
        present = counts > 0
        if (present.sum(axis=1) < 2).any():
            raise ValueError("every row of weights needs positive weight on two classes")
        return W, counts, present

    def _blocks(
        self, W: _F64, counts: _F64, present: NDArray[np.bool_]
    ) -> Iterator[tuple[NDArray[np.intp], bool, tuple[Array, Array, Array]]]:
        """Yield ``(idx, is_binary, (theta, n_iter, converged))`` block by block."""
        binary = present.sum(axis=1) == 2
        for is_binary in (True, False):
            sel = np.flatnonzero(binary == is_binary)
            size = max(1, self.block_bytes // self._bytes_per_row(is_binary))
            for start in range(0, sel.size, size):
                idx = sel[start : start + size]
                yield idx, is_binary, self._fit_block(W[idx], present[idx], counts[idx], is_binary)

    def _bytes_per_row(self, is_binary: bool) -> int:
        """Working memory of one subset in a block (the arrays of the largest Newton step)."""
        n, K, d1 = self.y.size, self._K, self.n_features + int(self.fit_intercept)
        tri, size = d1 * (d1 + 1) // 2, 8 if self.dtype == "float64" else 4
        if is_binary:
            return size * (10 * n + tri + 4 * d1 * d1)
        npair = K * (K + 1) // 2
        return size * (10 * K * n + npair * (n + tri + 2 * d1 * d1) + 4 * (K * d1) ** 2)

    def _hi(self, present: NDArray[np.bool_]) -> NDArray[np.intp]:
        """The largest present class of each row: the positive class of a binary fit."""
        return self._K - 1 - np.argmax(present[:, ::-1], axis=1)

    def _frame(
        self, theta: Array, present: NDArray[np.bool_], is_binary: bool
    ) -> tuple[Array, Array]:
        """Solutions ``theta`` (a, p) of a block as coefficients (a, K, d) and intercepts (a, K)
        in the frame of :class:`LogisticFit`, on the device."""
        backend = self._data().backend
        xp, a, d = backend.xp, theta.shape[0], self.n_features
        zeros = xp.zeros((a, self._K), dtype=theta.dtype, device=array_api_compat.device(theta))
        if is_binary:  # the model in row ``hi``, zeros in the other rows
            at_hi = backend.asarray(np.arange(self._K) == self._hi(present)[:, None], xp.bool)
            coef = xp.where(at_hi[:, :, None], theta[:, None, :d], 0.0)
            return coef, xp.where(at_hi, theta[:, d:], 0.0) if self.fit_intercept else zeros
        th3 = xp.reshape(theta, (a, self._K, -1))
        if not self.fit_intercept:
            return th3[:, :, :d], zeros
        pres = backend.asarray(present)
        b = th3[:, :, d] * pres
        b -= (xp.sum(b, axis=1) / xp.sum(pres, axis=1))[:, None]
        return th3[:, :, :d], b * pres

    def _problem(self, W: _F64, present: NDArray[np.bool_], is_binary: bool) -> _Problem:
        """The batched problem for weights ``W`` (restricted to the rows in use)."""
        data = self._data()
        backend, gram, y = data.backend, data.gram, data.y
        used = np.flatnonzero(W.any(axis=0))
        if used.size < 0.8 * W.shape[1]:  # drop rows with zero weight everywhere in the block
            used_t = backend.index(used)
            gram, y, W = gram.take(used_t), y[used_t], W[:, used]
        W_t = backend.asarray(W)
        if is_binary:
            hi = backend.index(self._hi(present))
            target = backend.xp.astype(y[None, :] == hi[:, None], backend.dtype)
            return _Binary(gram, W_t, target, self.C * self.binary_c_factor, data.pen)
        pres = backend.asarray(present, backend.xp.bool)
        return _Multinomial(gram, W_t, y, pres, self.C, data.pen, self.fit_intercept)

    def _cold_start(self, present: NDArray[np.bool_], counts: _F64, is_binary: bool) -> Array:
        """Coefficients 0 and the intercepts that are optimal for them."""
        B, K, d1 = present.shape[0], self._K, self.n_features + int(self.fit_intercept)
        theta = np.zeros((B, d1) if is_binary else (B, K, d1))
        if self.fit_intercept and is_binary:
            rows = np.arange(B)
            theta[:, -1] = np.log(
                counts[rows, self._hi(present)] / counts[rows, np.argmax(present, axis=1)]
            )
        elif self.fit_intercept:
            logc = np.log(np.where(present, counts, 1.0))
            logc -= (logc.sum(axis=1) / present.sum(axis=1))[:, None]
            theta[:, :, -1] = logc * present
        return self._data().backend.asarray(theta.reshape(B, -1))

    def _warm_start(self, present: NDArray[np.bool_], is_binary: bool) -> Array:
        """The fit on all training rows of each row's present classes (computed once each, kept
        in numpy)."""
        patterns, inverse = np.unique(present, axis=0, return_inverse=True)
        keys = [bytes(np.packbits(pat)) for pat in patterns]
        missing = [i for i, key in enumerate(keys) if key not in self._warm]
        if missing:
            pats = patterns[missing]
            W = pats[:, self.y].astype(np.float64)
            counts = W @ self._onehot
            problem = self._problem(W, pats, is_binary)
            start = self._cold_start(pats, counts, is_binary)
            theta, _, _ = _newton(problem, [start], tol=self.tol, max_iter=self.max_iter)
            if len(self._warm) + len(missing) > 4096:
                self._warm.clear()
            for i, th in zip(missing, _Backend.numpy(theta), strict=True):
                self._warm[keys[i]] = th
        stacked = np.stack([self._warm[key] for key in keys])[inverse.ravel()]
        return self._data().backend.asarray(stacked)

    def _fit_block(
        self, W: _F64, present: NDArray[np.bool_], counts: _F64, is_binary: bool
    ) -> tuple[Array, Array, Array]:
        """Solutions (rows, p), Newton iterations and convergence flags for one block."""
        problem = self._problem(W, present, is_binary)
        warm = self._warm_start(present, is_binary)
        cold = self._cold_start(present, counts, is_binary)
        # Starts: the fit on all rows (best for large subsets), the intercept-only model (for
        # tiny ones) and a blend by subset size; each row starts from the lowest objective.
        xp = problem.xp
        share = xp.sqrt(xp.clip(problem.sw / W.shape[1], max=1.0))[:, None]
        starts = [warm, cold, share * warm + (1.0 - share) * cold]
        return _newton(problem, starts, tol=self.tol, max_iter=self.max_iter)
