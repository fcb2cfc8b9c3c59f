"""Weighted estimators with first-order influence: OLS, logistic regression and 2SLS.

Each estimator is a function of row weights ``w`` in ``[0, 1]^n``: ``w = 1`` is the full fit and
``w_n = 0`` drops row ``n``. With 0/1 weights every quantity below (coefficients, covariance,
degrees of freedom) equals the one computed on the kept rows alone, so a weighted fit *is* the
refit without the dropped rows. The design matrices are used as given: add an intercept column
yourself (:func:`add_intercept`).

Conventions (statsmodels is the oracle; ``N = sum(w)``, ``p`` coefficients, ``M`` the inverse of
the Jacobian of the estimating equations):

* **OLS** ``beta = (X'WX)^-1 X'Wy``, ``e = y - X beta``, ``M = (X'WX)^-1``.
  ``classical``: ``s^2 M`` with ``s^2 = sum w e^2 / (N - p)`` (statsmodels ``OLS().fit()``);
  ``hc0``: ``M (sum w e^2 x x') M``; ``hc1``: ``hc0 * N / (N - p)`` (Stata's ``robust``).
* **Logit** maximum likelihood by Newton's method (unpenalised), covariance ``M``, the inverse
  Fisher information ``(sum w p (1 - p) x x')^-1`` (statsmodels ``Logit().fit()``). Perfect or
  quasi-perfect separation (no finite maximum) raises :class:`EstimationError`.
* **2SLS** with regressors ``X`` and instruments ``Z`` (the exogenous regressors, intercept
  included, are their own instruments): ``Pi = (Z'WZ)^-1 Z'WX``, ``Xhat = Z Pi``,
  ``beta = (Xhat'WXhat)^-1 Xhat'Wy``, structural residuals ``e = y - X beta`` (not
  ``y - Xhat beta``), ``M = (Xhat'WXhat)^-1``. ``classical``: ``s^2 M``, ``s^2 = sum w e^2 / (N -
  p)`` (statsmodels ``sandbox.regression.gmm.IV2SLS``, Stata ``ivreg2, small``); ``hc0``:
  ``M (sum w e^2 xhat xhat') M``; ``hc1``: ``hc0 * N / (N - p)`` (linearmodels'
  ``cov_type="robust", debiased=True``).

The influence of row ``n`` on a quantity ``phi`` is ``psi_n = d phi / d w_n`` at ``w = 1``;
dropping row ``n`` changes ``phi`` by about ``-psi_n``. :meth:`Estimator.influence` returns it for
a coefficient and for its standard error (whose derivative includes the change of the residuals,
the bread and the degrees of freedom), in closed form and vectorised over rows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import scipy.linalg
import scipy.special
from numpy.typing import ArrayLike, NDArray

from dataworth.errors import DataworthError

__all__ = [
    "COV_TYPES",
    "OLS",
    "EstimationError",
    "Estimator",
    "Fit",
    "Logit",
    "SingularDesignError",
    "TwoSLS",
    "add_intercept",
]

_F64 = NDArray[np.float64]

#: Standard-error conventions accepted by ``cov_type`` (logit: ``classical`` only).
COV_TYPES = ("classical", "hc0", "hc1")

_SINGULAR_WITHOUT = "the information matrix is singular without these rows"

#: Relative size below which a singular value of the column-scaled design counts as zero.
_RCOND = 1e-10


class EstimationError(DataworthError):
    """The model cannot be estimated on these rows (singular design, no finite maximum)."""


class SingularDesignError(EstimationError):
    """The columns of the design (or of the instruments) are linearly dependent."""


def add_intercept(X: ArrayLike) -> _F64:
    """Return ``X`` with a leading column of ones.

    Examples
    --------
    >>> add_intercept([[2.0], [3.0]]).tolist()
    [[1.0, 2.0], [1.0, 3.0]]
    """
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    return np.column_stack([np.ones(arr.shape[0]), arr])


@dataclass(frozen=True, eq=False)
class Fit:
    """One fitted estimator.

    Attributes
    ----------
    coef : ndarray of shape (p,)
    cov : ndarray of shape (p, p)
        Covariance of ``coef`` in the estimator's ``cov_type`` convention.
    nobs : float
        Sum of the weights (the number of rows used, for 0/1 weights).
    bread : ndarray of shape (p, p)
        ``M``: inverse Jacobian of the estimating equations (see the module notes).
    resid : ndarray of shape (n,)
        OLS and 2SLS: structural residuals ``y - X beta``; logit: ``y - p``.
    aux : dict
        Model-specific intermediate arrays reused by the influence computation.
    """

    coef: _F64
    cov: _F64
    nobs: float
    bread: _F64
    resid: _F64
    aux: dict[str, Any] = field(default_factory=dict)

    @property
    def se(self) -> _F64:
        """Standard errors, ``sqrt(diag(cov))``."""
        return np.sqrt(np.clip(np.diag(self.cov), 0.0, None))


def _as_matrix(X: ArrayLike, what: str) -> _F64:
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataworthError(f"{what} must contain numbers only.") from None
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise DataworthError(f"{what} must be a 2-D array; got {arr.ndim} dimensions.")
    if not np.all(np.isfinite(arr)):
        raise DataworthError(f"{what} has missing or infinite values; drop those rows first.")
    return np.ascontiguousarray(arr)


def _check_rank(R: _F64, names: Sequence[str], what: str, hint: str = "") -> None:
    """Raise :class:`SingularDesignError` when the (weighted) matrix with QR factor ``R`` has
    linearly dependent columns (judged after scaling every column to unit length)."""
    norms = np.linalg.norm(R, axis=0)
    zero = np.flatnonzero(norms == 0.0)
    if zero.size:
        raise SingularDesignError(
            f"{what} is singular: column {names[int(zero[0])]!r} is zero on every row used{hint}."
        )
    scaled = R / norms
    s = np.linalg.svd(scaled, compute_uv=False)
    if s[-1] > s[0] * _RCOND:
        return
    _, Rp, piv = scipy.linalg.qr(scaled, pivoting=True, mode="economic")
    d = np.abs(np.diag(Rp))
    rank = int(np.sum(d > d[0] * _RCOND))
    dependent = ", ".join(repr(names[int(i)]) for i in piv[rank:])
    raise SingularDesignError(
        f"{what} is singular (rank {rank} of {len(names)} columns): {dependent} is a linear "
        f"combination of the other columns (a duplicate, a second constant, or dummies that sum "
        f"to one?){hint}; drop it."
    )


def _check_gram(gram: _F64, names: Sequence[str]) -> None:
    """Raise :class:`SingularDesignError` for a (numerically) singular ``X'X``."""
    d = np.sqrt(np.clip(np.diag(gram), 0.0, None))
    if np.any(d == 0.0):
        raise SingularDesignError(
            "the design matrix is singular without these rows (a column is zero on every kept row)."
        )
    eig = np.linalg.eigvalsh(gram / np.outer(d, d))
    if eig[0] <= eig[-1] * _RCOND**2:
        raise SingularDesignError("the design matrix is singular without these rows.")


# numpy's LAPACK for the small dense algebra: scipy's triangular solves can spin their BLAS
# threads for milliseconds on 4 x 4 systems on a busy machine.
def _qr(A: _F64, B: _F64 | None = None) -> tuple[_F64, _F64]:
    """``(R, Q'B)`` for ``A = QR``, from one QR of ``[A, B]`` that never forms ``Q``."""
    p = A.shape[1]
    M = A if B is None else np.column_stack([A, B.reshape(A.shape[0], -1)])
    R: _F64 = np.asarray(np.linalg.qr(M, mode="r"), dtype=np.float64)
    return R[:p, :p], R[:p, p:]


def _solve_r(R: _F64, b: _F64) -> _F64:
    """Solve ``R x = b`` for a small, checked-nonsingular upper-triangular ``R``."""
    return np.asarray(np.linalg.solve(R, b), dtype=np.float64)


def _inverse_from_r(R: _F64) -> _F64:
    """``(R'R)^-1`` from an upper-triangular ``R``."""
    Rinv = np.linalg.inv(R)
    return Rinv @ Rinv.T


class Estimator(ABC):
    """A weighted estimator of ``p`` coefficients on ``n`` rows.

    Parameters
    ----------
    X : array-like of shape (n, p)
        Regressors, intercept column included if wanted.
    y : array-like of shape (n,)
    cov_type : {"classical", "hc0", "hc1"}, default="classical"
    names : sequence of str, optional
        Column names for messages; default ``x0, x1, ...``.
    """

    name: ClassVar[str] = ""
    cov_types: ClassVar[tuple[str, ...]] = COV_TYPES

    def __init__(
        self,
        X: ArrayLike,
        y: ArrayLike,
        *,
        cov_type: str = "classical",
        names: Sequence[str] | None = None,
    ) -> None:
        self.X = _as_matrix(X, "X")
        yy = np.asarray(y, dtype=np.float64)
        if yy.ndim != 1 or yy.shape[0] != self.X.shape[0]:
            raise DataworthError(
                f"y must be 1-D with one entry per row of X ({self.X.shape[0]}); got shape "
                f"{yy.shape}."
            )
        if not np.all(np.isfinite(yy)):
            raise DataworthError("y has missing or infinite values; drop those rows first.")
        self.y = yy
        if cov_type not in self.cov_types:
            raise DataworthError(
                f"se={cov_type!r} is not available for {self.name}; choose one of "
                f"{', '.join(map(repr, self.cov_types))}."
            )
        self.cov_type = cov_type
        p = self.X.shape[1]
        self.names = tuple(names) if names is not None else tuple(f"x{j}" for j in range(p))
        if len(self.names) != p:
            raise DataworthError(f"{len(self.names)} names given for {p} columns of X.")
        if self.X.shape[0] <= p:
            raise DataworthError(
                f"{self.X.shape[0]} rows for {p} coefficients: {self.name} needs more rows than "
                "coefficients."
            )

    @property
    def n(self) -> int:
        """Number of rows."""
        return int(self.X.shape[0])

    @property
    def p(self) -> int:
        """Number of coefficients."""
        return int(self.X.shape[1])

    def _weights(self, weights: ArrayLike | None) -> _F64:
        if weights is None:
            return np.ones(self.n)
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (self.n,) or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise DataworthError(f"weights must be {self.n} finite non-negative numbers.")
        if w.sum() <= self.p:
            raise EstimationError(
                f"{w.sum():g} rows (total weight) left for {self.p} coefficients: {self.name} "
                "needs more rows than coefficients."
            )
        return w

    def _dof(self, fit_nobs: float) -> float:
        return fit_nobs - self.p

    def _check_unit(self, fit: Fit) -> None:
        if fit.nobs != self.n or fit.resid.shape != (self.n,):
            raise ValueError("influence is evaluated at the full fit (all weights 1).")

    # ------------------------------------------------------------------ interface
    @abstractmethod
    def fit(self, weights: ArrayLike | None = None) -> Fit:
        """Fit with row weights (default: all 1)."""

    @abstractmethod
    def influence(self, fit: Fit, j: int) -> tuple[_F64, _F64]:
        """``(d coef_j / d w, d se_j / d w)`` at the full fit ``fit = self.fit()``."""

    @abstractmethod
    def leverage(self, fit: Fit) -> _F64:
        """Leverage ``h_n`` of every row at the full fit (used to correct first-order LOO)."""

    @abstractmethod
    def take(self, rows: ArrayLike) -> Estimator:
        """The same estimator on the given rows only."""

    def refit_without(self, drop: ArrayLike) -> Fit:
        """Exact refit with the rows ``drop`` removed (0/1 weights)."""
        w = np.ones(self.n)
        w[np.asarray(drop, dtype=np.intp)] = 0.0
        return self.fit(w)

    def one_step(self, fit: Fit, drop: ArrayLike) -> tuple[_F64, _F64]:
        """``(coef, se)`` without the rows ``drop``, by one Newton step from the full fit.

        The default is the exact refit (right for estimators that are closed-form linear algebra,
        such as 2SLS); subclasses override it with cheaper updates.
        """
        refit = self.refit_without(drop)
        return refit.coef, refit.se


class OLS(Estimator):
    """Weighted ordinary least squares with classical or heteroskedasticity-robust SE.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = add_intercept(rng.normal(size=(50, 1)))
    >>> y = X @ [1.0, 2.0] + rng.normal(size=50)
    >>> model = OLS(X, y, cov_type="hc1")
    >>> fit = model.fit()
    >>> bool(np.allclose(fit.coef, np.linalg.lstsq(X, y, rcond=None)[0]))
    True
    >>> loo = model.loo_change(fit)  # exact leave-one-out changes, no refits
    >>> bool(np.allclose(loo[7], model.refit_without([7]).coef - fit.coef))
    True
    """

    name = "OLS"

    def fit(self, weights: ArrayLike | None = None) -> Fit:
        w = self._weights(weights)
        sw = np.sqrt(w)
        R, qty = _qr(self.X * sw[:, None], self.y * sw)
        _check_rank(R, self.names, "the design matrix")
        coef = _solve_r(R, qty[:, 0])
        M = _inverse_from_r(R)
        e = self.y - self.X @ coef
        nobs = float(w.sum())
        df = self._dof(nobs)
        aux: dict[str, Any] = {}
        if self.cov_type == "classical":
            s2 = float(w @ (e * e)) / df
            cov = s2 * M
            aux["s2"] = s2
        else:
            meat = (self.X * (w * e * e)[:, None]).T @ self.X
            cov = M @ meat @ M
            if self.cov_type == "hc1":
                cov = cov * (nobs / df)
            aux["meat"] = meat
        return Fit(coef=coef, cov=cov, nobs=nobs, bread=M, resid=e, aux=aux)

    def influence(self, fit: Fit, j: int) -> tuple[_F64, _F64]:
        self._check_unit(fit)
        X, e, M = self.X, fit.resid, fit.bread
        q = X @ M  # row n: (M x_n)'
        u = q[:, j]
        a = M[:, j]
        psi_coef = u * e
        n, p = self.n, self.p
        df = n - p
        if self.cov_type == "classical":
            s2 = fit.aux["s2"]
            dvar = (e * e - s2) / df * M[j, j] - s2 * u * u
        else:
            meat = fit.aux["meat"]
            c = X.T @ (e * u * u)
            dvar0 = -2.0 * u * (q @ (meat @ a)) + (e * u) ** 2 - 2.0 * e * (q @ c)
            if self.cov_type == "hc1":
                var0 = float(a @ meat @ a)
                dvar = dvar0 * (n / df) - var0 * p / df**2
            else:
                dvar = dvar0
        se = float(fit.se[j])
        return psi_coef, dvar / (2.0 * se)

    def leverage(self, fit: Fit) -> _F64:
        return np.einsum("ij,ij->i", self.X @ fit.bread, self.X)

    def loo_change(self, fit: Fit) -> _F64:
        """Exact leave-one-out change of every coefficient, ``beta_(-n) - beta``, shape (n, p).

        Closed form ``-(X'X)^-1 x_n e_n / (1 - h_n)``; rows with leverage 1 (the fit cannot be
        made without them) get NaN.
        """
        self._check_unit(fit)
        q = self.X @ fit.bread
        h = np.einsum("ij,ij->i", q, self.X)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(h < 1.0 - 1e-10, fit.resid / (1.0 - h), np.nan)
        return -q * scale[:, None]

    def take(self, rows: ArrayLike) -> OLS:
        idx = np.asarray(rows, dtype=np.intp)
        return OLS(self.X[idx], self.y[idx], cov_type=self.cov_type, names=self.names)

    def one_step(self, fit: Fit, drop: ArrayLike) -> tuple[_F64, _F64]:
        """Exact: ``X'X`` and ``X'y`` downdated by the dropped rows (the Woodbury identity applied
        to ``(X'X)^-1``), then the standard errors from the kept rows' residuals."""
        self._check_unit(fit)
        S = np.asarray(drop, dtype=np.intp)
        if S.size == 0:
            return fit.coef, fit.se
        keep = np.ones(self.n, dtype=bool)
        keep[S] = False
        XS = self.X[S]
        gram = np.linalg.inv(fit.bread) - XS.T @ XS
        rhs = self.X.T @ self.y - XS.T @ self.y[S]
        _check_gram(gram, self.names)
        M = np.linalg.inv(gram)
        coef = M @ rhs
        nobs = self.n - S.size
        df = nobs - self.p
        if df <= 0:
            raise EstimationError("no rows left beyond the number of coefficients.")
        e = self.y[keep] - self.X[keep] @ coef
        if self.cov_type == "classical":
            cov_diag = float(e @ e) / df * np.diag(M)
        else:
            meat = (self.X[keep] * (e * e)[:, None]).T @ self.X[keep]
            cov_diag = np.diag(M @ meat @ M)
            if self.cov_type == "hc1":
                cov_diag = cov_diag * (nobs / df)
        return coef, np.sqrt(np.clip(cov_diag, 0.0, None))


class Logit(Estimator):
    """Weighted logistic regression by maximum likelihood (Newton's method, no penalty).

    ``y`` must hold 0/1. Standard errors are classical: the inverse Fisher information.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = add_intercept(rng.normal(size=(200, 1)))
    >>> y = (rng.random(200) < 1 / (1 + np.exp(-X @ [0.5, 1.0]))).astype(float)
    >>> fit = Logit(X, y).fit()
    >>> bool(np.all(np.abs(X.T @ (y - 1 / (1 + np.exp(-X @ fit.coef)))) < 1e-8))  # score = 0
    True
    """

    name = "logit"
    cov_types = ("classical",)
    max_iter: ClassVar[int] = 100
    #: a kept row with |x'beta| above this means the fit diverges towards separation
    max_abs_linear_predictor: ClassVar[float] = 50.0

    def __init__(
        self,
        X: ArrayLike,
        y: ArrayLike,
        *,
        cov_type: str = "classical",
        names: Sequence[str] | None = None,
    ) -> None:
        super().__init__(X, y, cov_type=cov_type, names=names)
        if not np.all((self.y == 0.0) | (self.y == 1.0)):
            bad = self.y[(self.y != 0.0) & (self.y != 1.0)][0]
            raise DataworthError(
                f"logit needs a 0/1 target; found the value {bad:g}. Recode the two classes as "
                "0 and 1."
            )

    def _separation(self, detail: str) -> EstimationError:
        return EstimationError(
            f"logistic regression has no finite maximum-likelihood estimate on these rows "
            f"({detail}): the classes are (quasi-)perfectly separated by the regressors."
        )

    def fit(self, weights: ArrayLike | None = None) -> Fit:
        w = self._weights(weights)
        X, y = self.X, self.y
        R, _ = _qr(X * np.sqrt(w)[:, None])
        _check_rank(R, self.names, "the design matrix")
        used = w > 0
        if np.all(y[used] == y[used][0]):
            raise EstimationError(
                f"every row used has the target {y[used][0]:g}; logit needs both classes."
            )

        def loglik(theta: _F64) -> float:
            eta = X @ theta
            return float(w @ (y * eta - np.logaddexp(0.0, eta)))

        theta = np.zeros(self.p)
        ll = loglik(theta)
        for _ in range(self.max_iter):
            eta = X @ theta
            prob = scipy.special.expit(eta)
            v = prob * (1.0 - prob)
            grad = X.T @ (w * (y - prob))
            H = (X * (w * v)[:, None]).T @ X
            try:
                step = np.linalg.solve(H, grad)
            except np.linalg.LinAlgError:
                raise self._separation("the information matrix became singular") from None
            t = 1.0
            while True:
                candidate = theta + t * step
                ll_new = loglik(candidate)
                if ll_new >= ll - 1e-12 * (1.0 + abs(ll)) or t < 1e-6:
                    break
                t *= 0.5
            theta, ll = candidate, ll_new
            if np.max(np.abs(X[used] @ theta)) > self.max_abs_linear_predictor:
                raise self._separation("the fitted probabilities reach 0 or 1")
            if np.max(np.abs(t * step)) <= 1e-10 * (1.0 + np.max(np.abs(theta))):
                break
        else:
            raise self._separation(f"Newton's method did not converge in {self.max_iter} steps")
        eta = X @ theta
        prob = scipy.special.expit(eta)
        v = prob * (1.0 - prob)
        Rh, _ = _qr(X * np.sqrt(w * v)[:, None])
        _check_rank(Rh, self.names, "the Fisher information", hint=" (quasi-separation?)")
        M = _inverse_from_r(Rh)
        return Fit(
            coef=theta,
            cov=M,
            nobs=float(w.sum()),
            bread=M,
            resid=y - prob,
            aux={"prob": prob, "v": v},
        )

    def influence(self, fit: Fit, j: int) -> tuple[_F64, _F64]:
        self._check_unit(fit)
        X, r, M = self.X, fit.resid, fit.bread
        prob, v = fit.aux["prob"], fit.aux["v"]
        q = X @ M
        u = q[:, j]
        psi_coef = u * r
        c = X.T @ (v * (1.0 - 2.0 * prob) * u * u)
        dvar = -(v * u * u + r * (q @ c))
        return psi_coef, dvar / (2.0 * float(fit.se[j]))

    def leverage(self, fit: Fit) -> _F64:
        return fit.aux["v"] * np.einsum("ij,ij->i", self.X @ fit.bread, self.X)

    def take(self, rows: ArrayLike) -> Logit:
        idx = np.asarray(rows, dtype=np.intp)
        return Logit(self.X[idx], self.y[idx], cov_type=self.cov_type, names=self.names)

    def one_step(self, fit: Fit, drop: ArrayLike) -> tuple[_F64, _F64]:
        """One Newton step from the full fit on the kept rows; SE from the information there."""
        self._check_unit(fit)
        S = np.asarray(drop, dtype=np.intp)
        if S.size == 0:
            return fit.coef, fit.se
        v = fit.aux["v"]
        XS = self.X[S]
        H_full = np.linalg.inv(fit.bread)
        H = H_full - (XS * v[S][:, None]).T @ XS
        grad = -(XS.T @ fit.resid[S])  # the full score is zero, so the kept score is minus this
        try:
            theta = fit.coef + np.linalg.solve(H, grad)
        except np.linalg.LinAlgError:
            raise self._separation(_SINGULAR_WITHOUT) from None
        keep = np.ones(self.n, dtype=bool)
        keep[S] = False
        prob = scipy.special.expit(self.X[keep] @ theta)
        vk = prob * (1.0 - prob)
        info = (self.X[keep] * vk[:, None]).T @ self.X[keep]
        try:
            cov_diag = np.diag(np.linalg.inv(info))
        except np.linalg.LinAlgError:
            raise self._separation(_SINGULAR_WITHOUT) from None
        return theta, np.sqrt(np.clip(cov_diag, 0.0, None))


class TwoSLS(Estimator):
    """Weighted two-stage least squares.

    Parameters
    ----------
    X : array-like of shape (n, p)
        All regressors: exogenous ones (intercept included) and endogenous ones.
    y : array-like of shape (n,)
    Z : array-like of shape (n, l), l >= p
        All instruments: the exogenous regressors (intercept included) and the excluded
        instruments, as statsmodels' ``IV2SLS(endog, exog, instrument)`` expects.
    cov_type : {"classical", "hc0", "hc1"}, default="classical"
    names, instrument_names : sequence of str, optional

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z, u = rng.normal(size=(2, 300))
    >>> x = z + u + rng.normal(size=300)        # endogenous: shares u with the error
    >>> y = 1.0 + 2.0 * x + u
    >>> fit = TwoSLS(add_intercept(x), y, add_intercept(z)).fit()
    >>> bool(abs(fit.coef[1] - 2.0) < 0.2)
    True
    """

    name = "2SLS"

    def __init__(
        self,
        X: ArrayLike,
        y: ArrayLike,
        Z: ArrayLike,
        *,
        cov_type: str = "classical",
        names: Sequence[str] | None = None,
        instrument_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__(X, y, cov_type=cov_type, names=names)
        self.Z = _as_matrix(Z, "the instrument matrix Z")
        if self.Z.shape[0] != self.n:
            raise DataworthError(
                f"the instrument matrix has {self.Z.shape[0]} rows; X has {self.n}."
            )
        if self.Z.shape[1] < self.p:
            raise DataworthError(
                f"2SLS is under-identified: {self.Z.shape[1]} instrument columns (exogenous "
                f"regressors included) for {self.p} coefficients; add excluded instruments."
            )
        zn = instrument_names
        self.instrument_names = (
            tuple(zn) if zn is not None else tuple(f"z{j}" for j in range(self.Z.shape[1]))
        )
        if len(self.instrument_names) != self.Z.shape[1]:
            raise DataworthError("instrument_names must name every column of Z.")

    def fit(self, weights: ArrayLike | None = None) -> Fit:
        w = self._weights(weights)
        sw = np.sqrt(w)
        X, Z, y = self.X, self.Z, self.y
        RZ, qzx = _qr(Z * sw[:, None], X * sw[:, None])
        _check_rank(RZ, self.instrument_names, "the instrument matrix")
        Pi = _solve_r(RZ, qzx)
        xhat = Z @ Pi
        R, qty = _qr(xhat * sw[:, None], y * sw)
        _check_rank(
            R,
            self.names,
            "the first-stage fitted regressors",
            hint=" (the instruments do not identify the endogenous regressors)",
        )
        coef = _solve_r(R, qty[:, 0])
        M = _inverse_from_r(R)
        A_inv = _inverse_from_r(RZ)
        e = y - X @ coef
        nobs = float(w.sum())
        df = self._dof(nobs)
        aux: dict[str, Any] = {"xhat": xhat, "A_inv": A_inv}
        # projection of the structural residuals on the instruments (zero when just identified)
        aux["ehat"] = Z @ (A_inv @ (Z.T @ (w * e)))
        if self.cov_type == "classical":
            s2 = float(w @ (e * e)) / df
            cov = s2 * M
            aux["s2"] = s2
        else:
            meat = (xhat * (w * e * e)[:, None]).T @ xhat
            cov = M @ meat @ M
            if self.cov_type == "hc1":
                cov = cov * (nobs / df)
            aux["meat"] = meat
        return Fit(coef=coef, cov=cov, nobs=nobs, bread=M, resid=e, aux=aux)

    def influence(self, fit: Fit, j: int) -> tuple[_F64, _F64]:
        self._check_unit(fit)
        X, Z, e, M = self.X, self.Z, fit.resid, fit.bread
        xhat, ehat = fit.aux["xhat"], fit.aux["ehat"]
        vres = X - xhat  # first-stage residuals
        a = M[:, j]
        # d beta / d w_n = M (xhat_n e_n + v_n ehat_n): the second term is the first stage moving
        g = xhat * e[:, None] + vres * ehat[:, None]
        dbeta = g @ M  # (n, p)
        psi_coef = dbeta[:, j]
        ah = xhat @ a
        av = vres @ a
        n, p = self.n, self.p
        df = n - p
        # d (Xhat'WXhat) / d w_n = v xhat' + xhat v' + xhat xhat'
        if self.cov_type == "classical":
            s2 = fit.aux["s2"]
            ds2 = (e * e - 2.0 * (dbeta @ (X.T @ e)) - s2) / df
            dM_jj = -(2.0 * av * ah + ah * ah)
            dvar = ds2 * M[j, j] + s2 * dM_jj
        else:
            meat = fit.aux["meat"]
            b = M @ (meat @ a)
            a_dQ_b = av * (xhat @ b) + ah * (vres @ b) + ah * (xhat @ b)
            c = X.T @ (e * ah * ah)
            d = fit.aux["A_inv"] @ (Z.T @ (e * e * ah))
            a_dB_a = (e * ah) ** 2 - 2.0 * (dbeta @ c) + 2.0 * av * (Z @ d)
            dvar0 = -2.0 * a_dQ_b + a_dB_a
            if self.cov_type == "hc1":
                var0 = float(a @ meat @ a)
                dvar = dvar0 * (n / df) - var0 * p / df**2
            else:
                dvar = dvar0
        return psi_coef, dvar / (2.0 * float(fit.se[j]))

    def leverage(self, fit: Fit) -> _F64:
        xhat = fit.aux["xhat"]
        return np.einsum("ij,ij->i", xhat @ fit.bread, xhat)

    def take(self, rows: ArrayLike) -> TwoSLS:
        idx = np.asarray(rows, dtype=np.intp)
        return TwoSLS(
            self.X[idx],
            self.y[idx],
            self.Z[idx],
            cov_type=self.cov_type,
            names=self.names,
            instrument_names=self.instrument_names,
        )
