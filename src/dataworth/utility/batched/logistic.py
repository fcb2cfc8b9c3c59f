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
product against precomputed products of feature pairs, and the stacked systems are solved with
``numpy.linalg.solve``. Each subset starts from the best (lowest objective) of the fit on all
training rows of its classes (computed once), the intercept-only model and a blend of the two,
and stops when its gradient is below ``tol`` relative to the smaller of ``C * sum(w)``
(scikit-learn's scaling) and the size of its coefficients. That is the exact optimum, which
scikit-learn's default lbfgs (``tol=1e-4``) only approaches: predictions then differ from a
one-at-a-time fit for a few subsets on standardised features, and for many on unscaled ones (where
lbfgs stops far from the optimum); with a tight ``tol`` they agree but for exact ties.

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
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dataworth.utility.batched import Unsupported

__all__ = ["MAX_PARAMS", "LogisticFit", "LogisticTrainer", "make_trainer"]

#: Largest number of parameters per fit (``K * (d + 1)`` for a multinomial, ``d + 1`` binary)
#: for which full Newton steps are used; larger problems raise :class:`Unsupported`.
MAX_PARAMS = 300

#: Solvers whose L2 optimum is the one computed here (liblinear penalises the intercept).
_SOLVERS = ("lbfgs", "newton-cg", "newton-cholesky", "sag", "saga")

#: Working memory aimed at per block of subsets, and the cap for precomputed feature products.
_BLOCK_BYTES = 64 * 2**20
_PAIR_BYTES = 256 * 2**20

_F64 = NDArray[np.float64]


# ---------------------------------------------------------------------------------- factory
def _sklearn_version() -> tuple[int, ...]:
    import sklearn

    return tuple(int(part) for part in re.findall(r"\d+", sklearn.__version__)[:2])


def make_trainer(
    model: Any, X: NDArray[np.float64], y: NDArray[Any], n_classes: int
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
    return LogisticTrainer(X, y, n_classes, **_settings(model, X.shape[1], n_classes))


def _settings(model: Any, n_features: int, n_classes: int) -> dict[str, Any]:
    """``C``, ``fit_intercept`` and ``binary_c_factor`` for ``model``, or Unsupported (see
    :func:`make_trainer`); shared with the torch back end."""
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
    """Fitted models of a batch, in one frame over all ``K`` classes.

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
    """

    coef: _F64
    intercept: _F64
    present: NDArray[np.bool_]
    binary: NDArray[np.bool_]
    n_iter: NDArray[np.int64]
    converged: NDArray[np.bool_]

    def decision_function(self, X: NDArray[np.float64]) -> _F64:
        """Decision values of shape (B, m, K) (``-inf`` for absent classes)."""
        B, K, d = self.coef.shape
        X = np.asarray(X, dtype=np.float64)
        scores = (self.coef.reshape(B * K, d) @ X.T).reshape(B, K, -1)
        scores += self.intercept[:, :, None]
        scores[~self.present] = -np.inf
        return scores.transpose(0, 2, 1)

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


# ---------------------------------------------------------------------------------- algebra
class _Gram:
    """Weighted Gram matrices ``A^T diag(s) A`` for many weight vectors ``s`` at once."""

    def __init__(self, A: _F64) -> None:
        self.A = A
        n, p = A.shape
        self.iu, self.ju = np.triu_indices(p)
        self.n_tri = self.iu.size
        tri = np.empty((p, p), dtype=np.intp)
        tri[self.iu, self.ju] = np.arange(self.n_tri)
        tri[self.ju, self.iu] = np.arange(self.n_tri)
        self.tri = tri.ravel()  # (j, m) -> position of the pair in the upper triangle
        # Products of feature pairs (upper triangle): one GEMM then gives all Gram matrices.
        self.pairs: _F64 | None = None
        if n * self.n_tri * 8 <= _PAIR_BYTES:
            self.pairs = np.ascontiguousarray(A[:, self.iu] * A[:, self.ju])

    def take(self, rows: NDArray[np.intp]) -> _Gram:
        """The same for a subset of the rows of ``A``."""
        out = _Gram.__new__(_Gram)
        out.A = np.ascontiguousarray(self.A[rows])
        out.iu, out.ju, out.n_tri, out.tri = self.iu, self.ju, self.n_tri, self.tri
        out.pairs = None if self.pairs is None else np.ascontiguousarray(self.pairs[rows])
        return out

    def upper(self, S: _F64) -> _F64:
        """``S`` (M, n) -> upper triangles (M, p (p + 1) / 2) of the Gram matrices."""
        if self.pairs is not None:
            return S @ self.pairs
        return np.matmul(S[:, None, :] * self.A.T[None], self.A)[:, self.iu, self.ju]

    def __call__(self, S: _F64) -> _F64:
        """``S`` (M, n) -> (M, p, p) Gram matrices."""
        p = self.A.shape[1]
        return np.take(self.upper(S), self.tri, axis=1).reshape(-1, p, p)


def _solve(H: _F64, g: _F64) -> _F64:
    """Solve the stacked systems ``H s = g`` (pseudo-inverse for the rare singular ones)."""
    try:
        step = np.linalg.solve(H, g[:, :, None])[:, :, 0].astype(np.float64, copy=False)
    except np.linalg.LinAlgError:
        rows = [np.linalg.lstsq(h, r, rcond=None)[0] for h, r in zip(H, g, strict=True)]
        step = np.stack(rows).astype(np.float64)
    return step


class _Problem:
    """One batched convex problem: objective, gradient and Hessian for some of its rows.

    ``rows`` index the batch; ``theta`` holds the parameters of those rows, (a, p).
    """

    C: float
    sw: _F64  # (B,) weight sums

    def value(self, theta: _F64, rows: NDArray[np.intp]) -> tuple[_F64, tuple[_F64, ...]]:
        """Objective (a,) and a cache for :meth:`grad` and :meth:`hess`."""
        raise NotImplementedError

    def grad(self, theta: _F64, cache: tuple[_F64, ...], rows: NDArray[np.intp]) -> _F64:
        """Gradient (a, p) at ``theta`` from :meth:`value`'s cache."""
        raise NotImplementedError

    def hess(self, theta: _F64, cache: tuple[_F64, ...], rows: NDArray[np.intp]) -> _F64:
        """Hessian (a, p, p) at ``theta`` from :meth:`value`'s cache (positive definite)."""
        raise NotImplementedError


def _take(cache: tuple[_F64, ...], keep: NDArray[Any]) -> tuple[_F64, ...]:
    return tuple(c[keep] for c in cache)


def _put(cache: tuple[_F64, ...], where: NDArray[Any], new: tuple[_F64, ...]) -> None:
    for c, v in zip(cache, new, strict=True):
        c[where] = v


def _newton(
    problem: _Problem, starts: list[_F64], *, tol: float, max_iter: int
) -> tuple[_F64, NDArray[np.int64], NDArray[np.bool_]]:
    """Damped Newton on all rows from the best (lowest objective) of ``starts``, each (B, p).

    Returns ``(theta, n_iter, converged)``. A row stops when every entry of its gradient is at
    most ``tol * min(C * sum(w), max(1, max|theta|))`` (scikit-learn's criterion, the gradient
    of the objective divided by ``C * sum(w)``, when that is the smaller scale; else relative to
    the parameters), when its line search cannot make progress any more (the floating-point
    limit), or after ``max_iter`` steps.
    """
    B = starts[0].shape[0]
    n_iter = np.zeros(B, dtype=np.int64)
    converged = np.zeros(B, dtype=bool)
    rows = np.arange(B)
    theta = starts[0].copy()
    f, cache = problem.value(theta, rows)
    for other in starts[1:]:
        f2, cache2 = problem.value(other, rows)
        better = np.flatnonzero(f2 < f)
        theta[better], f[better] = other[better], f2[better]
        _put(cache, better, _take(cache2, better))
    eps = np.finfo(np.float64).eps
    for _ in range(max_iter + 1):
        th = theta[rows]
        g = problem.grad(th, cache, rows)
        gmax = np.abs(g).max(axis=1)
        scale = np.minimum(problem.C * problem.sw[rows], np.maximum(np.abs(th).max(axis=1), 1.0))
        done = gmax <= tol * scale
        converged[rows[done]] = True
        go = ~done & (n_iter[rows] < max_iter)
        if not go.all():
            rows, th, g, gmax, f = rows[go], th[go], g[go], gmax[go], f[go]
            cache = _take(cache, go)
        if rows.size == 0:
            break
        n_iter[rows] += 1
        step = _solve(problem.hess(th, cache, rows), -g)
        slope = np.einsum("ap,ap->a", g, step)
        t = np.ones(rows.size)
        f_new, cache_new = problem.value(th + step, rows)
        ok = f_new <= f + 1e-4 * slope
        # Near the optimum the change of the objective can be below its rounding error: there,
        # the full Newton step is kept if it halves the gradient (it does, converging
        # quadratically), else the row has reached the floating-point limit and stops.
        noise = np.abs(f_new - f) <= 1e3 * eps * np.abs(f)
        stop = np.zeros(rows.size, dtype=bool)
        if noise.any():
            at = np.flatnonzero(noise)
            g_new = problem.grad(th[at] + step[at], _take(cache_new, at), rows[at])
            halved = np.abs(g_new).max(axis=1) <= 0.5 * gmax[at]
            ok[at], stop[at] = halved, ~halved
        for _ls in range(30):
            bad = np.flatnonzero(~ok & ~stop)
            if bad.size == 0:
                break
            t[bad] *= 0.5
            f_bad, cache_bad = problem.value(th[bad] + t[bad, None] * step[bad], rows[bad])
            f_new[bad] = f_bad
            _put(cache_new, bad, cache_bad)
            ok[bad] = f_bad <= f[bad] + 1e-4 * t[bad] * slope[bad]
        moved = np.flatnonzero(ok)
        theta[rows[moved]] = th[moved] + t[moved, None] * step[moved]
        # A row whose line search failed is at the floating-point limit: it stops where it is.
        rows, f, cache = rows[ok], f_new[ok], _take(cache_new, ok)
        if rows.size == 0:
            break
    return theta, n_iter, converged


class _Binary(_Problem):
    """Binary logistic loss; ``target`` (B, n) is 1 for the positive class, else 0."""

    def __init__(self, gram: _Gram, W: _F64, target: _F64, C: float, pen: _F64) -> None:
        self.gram, self.W, self.C, self.pen = gram, W, C, pen
        self.target = target
        self.sign = 1.0 - 2.0 * target  # loss = softplus(sign * z), computed without cancelling
        self.sw = W.sum(axis=1)

    def value(self, theta: _F64, rows: NDArray[np.intp]) -> tuple[_F64, tuple[_F64, ...]]:
        z = theta @ self.gram.A.T
        e = np.exp(-np.abs(z))
        loss = np.maximum(self.sign[rows] * z, 0.0) + np.log1p(e)
        f = 0.5 * (theta**2) @ self.pen + self.C * np.einsum("an,an->a", self.W[rows], loss)
        return f, (z, e)

    def grad(self, theta: _F64, cache: tuple[_F64, ...], rows: NDArray[np.intp]) -> _F64:
        z, e = cache
        # d loss / dz = sign * sigmoid(sign * z), computed without cancelling
        sign = self.sign[rows]
        r = sign * np.where(sign * z >= 0.0, 1.0, e) / (1.0 + e)
        return self.pen * theta + self.C * ((self.W[rows] * r) @ self.gram.A)

    def hess(self, theta: _F64, cache: tuple[_F64, ...], rows: NDArray[np.intp]) -> _F64:
        e = cache[1]
        H = self.gram(self.C * self.W[rows] * (e / (1.0 + e) ** 2))  # sigma (1 - sigma)
        p = theta.shape[1]
        H.reshape(-1, p * p)[:, :: p + 1] += self.pen
        return H


class _Multinomial(_Problem):
    """Multinomial loss over the present classes (``present`` (B, K)); ``theta`` is (K, p)."""

    def __init__(
        self,
        gram: _Gram,
        W: _F64,
        y: NDArray[np.intp],
        present: NDArray[np.bool_],
        C: float,
        pen: _F64,
        fit_intercept: bool,
    ) -> None:
        self.gram, self.W, self.y, self.present, self.C = gram, W, y, present, C
        self.K = present.shape[1]
        self.d1 = gram.A.shape[1]
        self.sw = W.sum(axis=1)
        self.onehot = np.zeros((self.K, y.size))
        self.onehot[y, np.arange(y.size)] = 1.0
        self.offlabel = 1.0 - self.onehot
        self.pen_full = np.tile(pen, self.K)
        self.fit_intercept = fit_intercept
        self.pk, self.pl = np.triu_indices(self.K)
        # Flat position in (pair of classes, pair of features) of each Hessian entry.
        K, d1 = self.K, self.d1
        pair = np.empty((K, K), dtype=np.intp)
        pair[self.pk, self.pl] = pair[self.pl, self.pk] = np.arange(self.pk.size)
        tri = gram.tri.reshape(d1, d1)
        self.layout = (
            pair[:, None, :, None] * gram.n_tri + tri[None, :, None, :]
        ).ravel()  # order (k, j, l, m)

    def value(self, theta: _F64, rows: NDArray[np.intp]) -> tuple[_F64, tuple[_F64, ...]]:
        a, K, n = rows.size, self.K, self.y.size
        cols = np.arange(n)
        Z = (theta.reshape(a * K, self.d1) @ self.gram.A.T).reshape(a, K, n)
        Zy = Z[:, self.y, cols]
        Z[~self.present[rows]] = -np.inf
        top = Z.max(axis=1)
        E = np.exp(Z - top[:, None, :])
        # logsumexp(Z) - Z_y = (top - Z_y) + log1p(rest), rest = the sum of exp(Z_k - top) over
        # all but one top class, summed without cancelling (for precise objectives at large C)
        below = E < 1.0
        rest = np.where(below, E, 0.0).sum(axis=1) + ((~below).sum(axis=1) - 1)
        loss = (top - Zy) + np.log1p(rest)
        E /= (1.0 + rest)[:, None, :]
        f = 0.5 * (theta**2) @ self.pen_full + self.C * np.einsum("an,an->a", self.W[rows], loss)
        return f, (E,)

    def grad(self, theta: _F64, cache: tuple[_F64, ...], rows: NDArray[np.intp]) -> _F64:
        (P,) = cache
        a, K = rows.size, self.K
        # P - onehot, with P_y - 1 computed as minus the sum of the other P_k (no cancelling)
        R = P * self.offlabel
        R -= self.onehot * R.sum(axis=1)[:, None, :]
        R *= self.W[rows][:, None, :]
        return self.pen_full * theta + self.C * (R.reshape(a * K, -1) @ self.gram.A).reshape(a, -1)

    def hess(self, theta: _F64, cache: tuple[_F64, ...], rows: NDArray[np.intp]) -> _F64:
        (P,) = cache
        a, p = rows.size, self.K * self.d1
        # Blocks (k, l), k <= l: sum_i w_i (P_ik [k == l] - P_ik P_il) x_i x_i^T, each symmetric;
        # one GEMM gives their upper triangles, one gather lays them out as the full Hessian.
        S = -P[:, self.pk] * P[:, self.pl]
        S[:, self.pk == self.pl] += P
        S *= self.C * self.W[rows][:, None, :]
        G = self.gram.upper(S.reshape(a * self.pk.size, -1)).reshape(a, -1)
        H = np.take(G, self.layout, axis=1).reshape(a, p, p)
        H.reshape(a, p * p)[:, :: p + 1] += self.pen_full
        if self.fit_intercept:
            # Absent classes: unit curvature on their (unpenalised) intercepts and zero gradient,
            # so they stay at 0. Present classes: their intercepts can shift together without
            # changing the loss; adding u u^T along that direction (orthogonal to the gradient)
            # makes H invertible without changing the step in the identifiable subspace.
            absent = ~self.present[rows]
            icpt = np.arange(self.K) * self.d1 + self.d1 - 1
            H[:, icpt, icpt] += absent
            u = (~absent).astype(np.float64)
            u /= np.sqrt(u.sum(axis=1))[:, None]
            H[:, icpt[:, None], icpt[None, :]] += u[:, :, None] * u[:, None, :]
        return H


# ---------------------------------------------------------------------------------- trainer
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
    tol : float, default=1e-10
        Stop a subset when the largest entry of its gradient is at most
        ``tol * min(C * sum(w), max(1, max|coefficients|))``.
    max_iter : int, default=100
        Newton iterations at most.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> trainer = LogisticTrainer(X, np.array([0, 0, 1, 1]), 2, C=10.0)
    >>> trainer.fit_predict(np.array([[1.0, 1, 1, 1], [1, 0, 0, 1]]), X).tolist()
    [[0, 0, 1, 1], [0, 0, 1, 1]]
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
        tol: float = 1e-10,
        max_iter: int = 100,
    ) -> None:
        X = np.ascontiguousarray(X, dtype=np.float64)
        self.n_features = X.shape[1]
        self.y = np.asarray(y, dtype=np.intp)
        self.n_classes = int(n_classes)
        self.C = float(C)
        self.fit_intercept = bool(fit_intercept)
        self.binary_c_factor = float(binary_c_factor)
        self.tol = float(tol)
        self.max_iter = int(max_iter)
        A = np.hstack([X, np.ones((X.shape[0], 1))]) if self.fit_intercept else X
        self._gram = _Gram(A)
        self._K = max(self.n_classes, 2)
        self._onehot = np.zeros((self.y.size, self._K))
        self._onehot[np.arange(self.y.size), self.y] = 1.0
        self._warm: dict[bytes, _F64] = {}
        self._pen = np.ones(A.shape[1])
        if self.fit_intercept:
            self._pen[-1] = 0.0
        # The fit on all rows is every subset's warm start: computed here, once, so that the
        # copies sent to parallel workers carry it instead of each task recomputing it.
        present = np.bincount(self.y, minlength=self._K)[None, :] > 0
        if present.sum() >= 2:
            self._warm_start(present, is_binary=bool(present.sum() == 2))

    # ------------------------------------------------------------------ public
    def fit_predict(
        self, weights: NDArray[np.float64], X_eval: NDArray[np.float64]
    ) -> NDArray[np.intp]:
        """Fit one model per row of ``weights`` (B, n_train); class codes (B, m) on ``X_eval``."""
        return self.fit(weights).predict(X_eval)

    def fit(self, weights: NDArray[np.float64]) -> LogisticFit:
        """Fit one model per row of ``weights`` (B, n_train), each on at least two classes."""
        W = np.asarray(weights, dtype=np.float64)
        if W.ndim != 2 or W.shape[1] != self.y.size:
            raise ValueError(f"weights must have shape (B, {self.y.size}); got {W.shape}")
        B, K, d = W.shape[0], self._K, self.n_features
        coef = np.zeros((B, K, d))
        intercept = np.zeros((B, K))
        n_iter = np.zeros(B, dtype=np.int64)
        converged = np.zeros(B, dtype=bool)
        counts = W @ self._onehot
        present = counts > 0
        n_present = present.sum(axis=1)
        if (n_present < 2).any():
            raise ValueError("every row of weights needs positive weight on two classes")
        binary = n_present == 2
        for is_binary in (True, False):
            sel = np.flatnonzero(binary == is_binary)
            size = max(1, _BLOCK_BYTES // self._bytes_per_row(is_binary))
            for start in range(0, sel.size, size):
                idx = sel[start : start + size]
                th, it, conv = self._fit_block(W[idx], present[idx], counts[idx], is_binary)
                n_iter[idx], converged[idx] = it, conv
                self._unpack(th, present[idx], is_binary, coef, intercept, idx)
        return LogisticFit(coef, intercept, present, binary, n_iter, converged)

    # ------------------------------------------------------------------ internals
    def _bytes_per_row(self, is_binary: bool) -> int:
        n, K, d1, tri = self.y.size, self._K, self._gram.A.shape[1], self._gram.n_tri
        if is_binary:
            return 8 * (10 * n + tri + 4 * d1 * d1)
        npair = K * (K + 1) // 2
        return 8 * (10 * K * n + npair * (n + tri + 2 * d1 * d1) + 4 * (K * d1) ** 2)

    def _unpack(
        self,
        theta: _F64,
        present: NDArray[np.bool_],
        is_binary: bool,
        coef: _F64,
        intercept: _F64,
        idx: NDArray[np.intp],
    ) -> None:
        """Write solutions ``theta`` of batch rows ``idx`` into the all-classes frame."""
        d, K = self.n_features, self._K
        if is_binary:
            hi = K - 1 - np.argmax(present[:, ::-1], axis=1)
            coef[idx, hi] = theta[:, :d]
            if self.fit_intercept:
                intercept[idx, hi] = theta[:, d]
            return
        th3 = theta.reshape(idx.size, K, -1)
        coef[idx] = th3[:, :, :d]
        if self.fit_intercept:
            b = th3[:, :, d] * present
            b -= (b.sum(axis=1) / present.sum(axis=1))[:, None]
            intercept[idx] = b * present

    def _problem(self, W: _F64, present: NDArray[np.bool_], is_binary: bool) -> _Problem:
        """The batched problem for weights ``W`` (restricted to the rows in use)."""
        gram, y = self._gram, self.y
        used = np.flatnonzero(W.any(axis=0))
        if used.size < 0.8 * W.shape[1]:  # drop rows with zero weight everywhere in the block
            gram, y, W = gram.take(used), y[used], np.ascontiguousarray(W[:, used])
        if is_binary:
            hi = self._K - 1 - np.argmax(present[:, ::-1], axis=1)
            target = (y[None, :] == hi[:, None]).astype(np.float64)
            return _Binary(gram, W, target, self.C * self.binary_c_factor, self._pen)
        return _Multinomial(gram, W, y, present, self.C, self._pen, self.fit_intercept)

    def _cold_start(self, present: NDArray[np.bool_], counts: _F64, is_binary: bool) -> _F64:
        """Coefficients 0 and the intercepts that are optimal for them."""
        B, K, d1 = present.shape[0], self._K, self._gram.A.shape[1]
        if is_binary:
            theta = np.zeros((B, d1))
            if self.fit_intercept:
                rows = np.arange(B)
                hi = K - 1 - np.argmax(present[:, ::-1], axis=1)
                lo = np.argmax(present, axis=1)
                theta[:, -1] = np.log(counts[rows, hi] / counts[rows, lo])
            return theta
        theta3 = np.zeros((B, K, d1))
        if self.fit_intercept:
            logc = np.log(np.where(present, counts, 1.0))
            logc -= (logc.sum(axis=1) / present.sum(axis=1))[:, None]
            theta3[:, :, -1] = logc * present
        return theta3.reshape(B, K * d1)

    def _warm_start(self, present: NDArray[np.bool_], is_binary: bool) -> _F64:
        """The fit on all training rows of each row's present classes (computed once each)."""
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
            for i, th in zip(missing, theta, strict=True):
                self._warm[keys[i]] = th
        return np.stack([self._warm[key] for key in keys])[inverse.ravel()]

    def _fit_block(
        self, W: _F64, present: NDArray[np.bool_], counts: _F64, is_binary: bool
    ) -> tuple[_F64, NDArray[np.int64], NDArray[np.bool_]]:
        """Solutions (rows, p), Newton iterations and convergence flags for one block."""
        problem = self._problem(W, present, is_binary)
        warm = self._warm_start(present, is_binary)
        cold = self._cold_start(present, counts, is_binary)
        # Starts: the fit on all rows (best for large subsets), the intercept-only model (for
        # tiny ones) and a blend by subset size; each row starts from the lowest objective.
        share = np.sqrt(np.minimum(W.sum(axis=1) / W.shape[1], 1.0))[:, None]
        starts = [warm, cold, share * warm + (1.0 - share) * cold]
        return _newton(problem, starts, tol=self.tol, max_iter=self.max_iter)
