"""LAVA: values from the sensitivity of an optimal-transport distance, no model (Just et al. 2023).

The training set ``{(x_i, y_i)}`` (``N`` rows, mass ``a_i = 1/N`` each) and the valuation set
``{(x'_j, y'_j)}`` (``M`` rows, mass ``b_j = 1/M``) are compared by optimal transport with a
label-aware ground cost (the OTDD cost of Alvarez-Melis & Fusi 2020, with ``p = 2``):

    C_ij = ||x_i - x'_j||^2 + label_weight * W_c(y_i, y'_j),
    W_c(k, l) = exact W_2^2 between the training rows of class k and the valuation rows of
                class l (uniform weights, squared Euclidean cost),

so a training row is close to a valuation row when their features are close *and* their classes
are distributed alike. The outer problem is entropic optimal transport,

    OT_eps(a, b) = min_{P >= 0, P 1 = a, P^T 1 = b}  <P, C> + reg * sum_ij P_ij log P_ij,
    reg = epsilon * mean(C),

solved by L-BFGS on its semi-dual (default) or by POT's Sinkhorn. Its dual potential ``f`` is
the gradient of ``OT_eps`` with respect to the training masses, defined up to a constant; the
*calibrated* gradient of Just et al. is the derivative along moving mass onto row ``i`` from all
the others equally,

    g_i = f_i - sum_{j != i} f_j / (N - 1),

which removes the constant. A large ``g_i`` means adding mass to row ``i`` moves the training
distribution away from the valuation distribution, so the value is ``-g_i`` (low = harmful,
e.g. a wrong label: its class distance makes its cost to valuation rows of its feature-neighbours'
class large).
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.spatial.distance import cdist

from dataworth.base import Valuation
from dataworth.data import is_categorical
from dataworth.errors import DataworthError
from dataworth.memory import check_memory, format_bytes
from dataworth.params import Constraint, Interval, Options
from dataworth.result import ValuationResult

__all__ = ["LAVA", "calibrated_gradient", "class_distances", "ground_cost"]

#: Above this ratio of the largest cost to the regularisation, exp(-C / reg) may underflow and
#: Sinkhorn runs in the log domain (slower, always stable).
_LOG_DOMAIN_RATIO = 200.0


def _import_ot() -> Any:
    try:
        import ot
    except ImportError:
        raise DataworthError(
            'lava needs the POT optimal-transport library: pip install "dataworth[ot]"'
        ) from None
    return ot


def standardize_pair(
    X_train: NDArray[np.float64], X_valid: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Centre and scale both sets with the training rows' mean and standard deviation.

    Constant training features are centred only (scale 1).
    """
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (X_train - mean) / std, (X_valid - mean) / std


def class_distances(
    X_train: NDArray[np.float64],
    codes_train: NDArray[np.intp],
    X_valid: NDArray[np.float64],
    codes_valid: NDArray[np.intp],
) -> NDArray[np.float64]:
    """Exact squared 2-Wasserstein distances between class-conditional empirical distributions.

    Entry ``[k, l]`` is the optimal-transport cost, with squared Euclidean ground cost and
    uniform weights, between the training rows of class code ``k`` and the valuation rows of
    class code ``l`` (codes ``0 .. K-1``; a class absent from one side gets a row or column of
    zeros, which is never used).

    Examples
    --------
    >>> import numpy as np
    >>> Xt = np.array([[0.0], [2.0]]); Xv = np.array([[1.0], [5.0]])
    >>> class_distances(Xt, np.array([0, 0]), Xv, np.array([0, 0])).tolist()  # (1 + 9) / 2
    [[5.0]]
    """
    ot = _import_ot()
    k_train = int(codes_train.max()) + 1 if codes_train.size else 0
    k_valid = int(codes_valid.max()) + 1 if codes_valid.size else 0
    out = np.zeros((k_train, k_valid))
    for k in range(k_train):
        A = X_train[codes_train == k]
        if A.shape[0] == 0:
            continue
        for j in range(k_valid):
            B = X_valid[codes_valid == j]
            if B.shape[0] == 0:
                continue
            cost = cdist(A, B, "sqeuclidean")
            a = np.full(A.shape[0], 1.0 / A.shape[0])
            b = np.full(B.shape[0], 1.0 / B.shape[0])
            out[k, j] = float(ot.emd2(a, b, cost, numItermax=max(100_000, 50 * cost.size)))
    return out


def ground_cost(
    X_train: NDArray[np.float64],
    codes_train: NDArray[np.intp],
    X_valid: NDArray[np.float64],
    codes_valid: NDArray[np.intp],
    label_weight: float = 1.0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The label-aware cost ``C_ij = ||x_i - x'_j||^2 + label_weight * W_c(y_i, y'_j)``.

    Returns the ``N x M`` cost matrix and the class-to-class distances ``W_c``.
    """
    W = class_distances(X_train, codes_train, X_valid, codes_valid)
    C = cdist(X_train, X_valid, "sqeuclidean")
    if label_weight:
        C += label_weight * W[codes_train][:, codes_valid]
    return C, W


def calibrated_gradient(f: NDArray[np.float64]) -> NDArray[np.float64]:
    """``g_i = f_i - sum_{j != i} f_j / (N - 1)``: the derivative of the OT distance along
    moving mass onto row ``i`` from the other rows equally; unchanged by adding a constant to f.

    Examples
    --------
    >>> import numpy as np
    >>> calibrated_gradient(np.array([1.0, 2.0, 6.0])).tolist()
    [-3.0, -1.5, 4.5]
    """
    n = f.shape[0]
    return f * (n / (n - 1)) - f.sum() / (n - 1)


def _marginal_error(
    P: NDArray[np.float64], a: NDArray[np.float64], b: NDArray[np.float64]
) -> float:
    """Largest relative violation ``||P 1 - a|| / ||a||``, ``||P^T 1 - b|| / ||b||``."""
    rows = np.linalg.norm(P.sum(axis=1) - a) / np.linalg.norm(a)
    cols = np.linalg.norm(P.sum(axis=0) - b) / np.linalg.norm(b)
    return float(max(rows, cols))


def _semidual_potential(
    C: NDArray[np.float64], reg: float, max_iter: int, tol: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], dict[str, Any]]:
    """Entropic OT between uniform masses by L-BFGS on the semi-dual (log domain, scipy).

    Maximises ``S(g) = <g, b> + <f(g), a>`` with the c-transform
    ``f_i(g) = -reg log sum_j b_j exp((g_j - C_ij) / reg)``; ``grad S = b - P^T 1`` with
    ``P_ij = a_i b_j exp((f_i + g_j - C_ij) / reg)``, whose rows sum to ``a`` exactly. A
    quasi-Newton method does not slow down, as Sinkhorn's alternating scalings do, when the
    plan is nearly block-diagonal (well-separated classes in different proportions on the two
    sides).
    """
    n, m = C.shape
    a = np.full(n, 1.0 / n)
    b = np.full(m, 1.0 / m)
    log_b = np.log(b)

    def transform(g: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        z = log_b[None, :] + (g[None, :] - C) / reg
        top = z.max(axis=1, keepdims=True)
        e = np.exp(z - top)
        total = e.sum(axis=1, keepdims=True)
        f = -reg * (top[:, 0] + np.log(total[:, 0]))
        return f, e / total  # rows: the conditional plan P_ij / a_i

    def negative(g: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        f, cond = transform(g)
        return -float(g @ b + f @ a), (a @ cond) - b

    res = minimize(
        negative,
        np.zeros(m),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "gtol": tol * b.min(), "ftol": 0.0, "maxcor": 20},
    )
    g, newton_steps = _newton_polish(transform, res.x, a, b, reg, tol)
    f, cond = transform(g)
    P = a[:, None] * cond
    info = {
        "solver": "lbfgs",
        "iterations": int(res.nit),
        "newton_steps": newton_steps,
        "marginal_error": _marginal_error(P, a, b),
    }
    return f, P, info


def _newton_polish(
    transform: Any,
    g: NDArray[np.float64],
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    reg: float,
    tol: float,
    max_steps: int = 10,
) -> tuple[NDArray[np.float64], int]:
    """Newton steps on the semi-dual from L-BFGS's answer, until the marginal error is
    below ``tol / 10``; returns the potential and the number of steps taken.

    Near the optimum the objective changes by less than its rounding error, so L-BFGS's line
    search can stop early, at a point that depends on the rounding of the BLAS kernel.
    Newton's method uses the gradient ``r = P^T 1 - b`` only (a step is kept when it lowers
    ``||r||``) and converges quadratically. The Hessian of the negated semi-dual is
    ``(diag(P^T 1) - P^T diag(1/a) P) / reg``, positive semi-definite with the constants as its
    null space (which every gradient is orthogonal to); its products cost ``O(N M)`` and the
    Newton system is solved by Jacobi-preconditioned conjugate gradients on the complement of
    the constants, so no ``M x M`` matrix is formed.
    """
    norm_b = float(np.linalg.norm(b))

    def residual(g: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        _, cond = transform(g)
        P = a[:, None] * cond
        return P, P.sum(axis=0) - b

    P, r = residual(g)
    error = float(np.linalg.norm(r)) / norm_b
    steps = 0
    while steps < max_steps and error > tol / 10:
        cols = P.sum(axis=0)

        def hvp(v: NDArray[np.float64], P: Any = P, cols: Any = cols) -> NDArray[np.float64]:
            out: NDArray[np.float64] = (cols * v - P.T @ ((P @ v) / a)) / reg
            return out - out.mean()

        diag = (cols - np.einsum("ij,ij->j", P, P / a[:, None])) / reg
        diag = np.where(diag > 0, diag, max(float(diag.max()), 1e-300))
        d = _conjugate_gradient(hvp, r - r.mean(), diag, rtol=1e-3)
        step = 1.0
        for _ in range(30):  # halve the step until the residual falls
            P_new, r_new = residual(g - step * d)
            new_error = float(np.linalg.norm(r_new)) / norm_b
            if new_error < error:
                break
            step /= 2
        else:
            break  # no progress: at the limit of rounding
        g, P, r, error = g - step * d, P_new, r_new, new_error
        steps += 1
    return g, steps


def _conjugate_gradient(
    hvp: Any,
    r: NDArray[np.float64],
    diag: NDArray[np.float64],
    rtol: float,
    max_iter: int = 100,
) -> NDArray[np.float64]:
    """Approximate solution ``x`` of ``H x = r`` on the complement of the constants
    (preconditioned CG; stops at ``||r - H x|| <= rtol ||r||``)."""
    x = np.zeros_like(r)
    res = r.copy()
    z = res / diag
    z -= z.mean()
    d = z.copy()
    rz = float(res @ z)
    target = rtol * float(np.linalg.norm(r))
    for _ in range(max_iter):
        if float(np.linalg.norm(res)) <= target or rz <= 0:
            break
        Hd = hvp(d)
        curvature = float(d @ Hd)
        if not curvature > 0:
            break
        alpha = rz / curvature
        x += alpha * d
        res -= alpha * Hd
        z = res / diag
        z -= z.mean()
        rz, rz_old = float(res @ z), rz
        d = z + (rz / rz_old) * d
    return x


def _sinkhorn_potential(
    C: NDArray[np.float64], reg: float, max_iter: int, tol: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], dict[str, Any]]:
    """Entropic OT between uniform masses by POT's Sinkhorn (log domain for large C / reg)."""
    ot = _import_ot()
    n, m = C.shape
    a = np.full(n, 1.0 / n)
    b = np.full(m, 1.0 / m)
    method = "sinkhorn" if C.max() / reg <= _LOG_DOMAIN_RATIO else "sinkhorn_log"
    scale = float(np.linalg.norm(b))  # POT's stopThr bounds ||P^T 1 - b||_2: make it relative
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # POT's own non-convergence warning: ours is below
        P, log = ot.sinkhorn(
            a, b, C, reg, method=method, numItermax=max_iter, stopThr=tol * scale, log=True
        )
    P = np.asarray(P, dtype=np.float64)
    with np.errstate(divide="ignore"):
        log_u = log["log_u"] if "log_u" in log else np.log(log["u"])
    info = {
        "solver": method,
        "iterations": int(log.get("niter", max_iter)),
        "marginal_error": _marginal_error(P, a, b),
    }
    return reg * np.asarray(log_u, dtype=np.float64), P, info


_SOLVERS = {"lbfgs": _semidual_potential, "sinkhorn": _sinkhorn_potential}


class LAVA(Valuation):
    """LAVA values (Just et al. 2023): optimal transport to the valuation set, no model trained.

    The value of a training row is minus the calibrated gradient of the entropic optimal
    transport distance between the training and valuation sets with respect to the row's mass
    (see the module docstring for the formulas): rows whose mass pulls the training
    distribution away from the valuation distribution, such as mislabelled ones, get low
    values. The utility's ``model`` and ``scoring`` are not used, only its training and
    valuation data; the values are exact for the given entropic problem, up to the solver's
    tolerance (``stderr`` is 0).

    Needs the POT library (``pip install "dataworth[ot]"``): its exact network-simplex solver
    gives the class-to-class distances, and ``solver="sinkhorn"`` uses its Sinkhorn.

    Parameters
    ----------
    epsilon : float, default=0.05
        Entropic regularisation, **relative** to the mean of the ground-cost matrix: the
        problem is solved with ``reg = epsilon * mean(C)`` (recorded as ``metadata["reg"]``), so
        the setting does not depend on the scale of the features. Smaller is closer to exact
        optimal transport and harder to solve; the original uses 0.1 on its own scale.
    label_weight : float, default=1.0
        Weight of the class-to-class distance in the ground cost (0: features only).
    standardize : bool, default=True
        Centre and scale the features with the training rows' mean and standard deviation
        before computing distances (both sets, the same transformation), so that no feature
        dominates the cost by its units alone.
    solver : {"lbfgs", "sinkhorn"}, default="lbfgs"
        How the entropic problem is solved. ``"lbfgs"``: L-BFGS on the semi-dual (scipy, log
        domain); it converges in tens to hundreds of iterations even when Sinkhorn crawls
        (well-separated classes in different proportions in the two sets make the plan nearly
        block-diagonal, and Sinkhorn then needs 10^4 - 10^5 iterations); Newton steps then
        polish its answer to ``tol / 10`` (``metadata["newton_steps"]``), since near the
        optimum the objective changes by less than its rounding and L-BFGS's line search can
        stop early. ``"sinkhorn"``: POT's Sinkhorn, as in the original (log domain when
        ``max(C) / reg > 200``). Both give the same potentials up to ``tol``.
    max_iter : int, default=10000
        Most solver iterations; a run that stops there without reaching ``tol`` warns.
    tol : float, default=1e-6
        Target relative marginal violation of the plan, ``||P 1 - a|| / ||a||`` and
        ``||P^T 1 - b|| / ||b||`` (Euclidean norms; reported as
        ``metadata["marginal_error"]``).

    Notes
    -----
    Classification only: the class-to-class distance needs class labels. Memory and time are
    dominated by the ``N x M`` cost matrix (a few times ``8 N M`` bytes) and by the exact
    class-to-class problems (one per pair of training and valuation classes).

    With ``by_group=True`` the value of a group is the **sum of its rows' values**
    (``metadata["group_aggregation"]``): to first order, the change of the distance when the
    group's rows all gain mass together.

    Examples
    --------
    >>> from dataworth.datasets import load_dataset
    >>> from dataworth.utility import ModelUtility
    >>> from sklearn.linear_model import LogisticRegression
    >>> train, valid = load_dataset("iris").split(0.3, random_state=0)
    >>> u = ModelUtility(LogisticRegression(), train, valid)
    >>> res = LAVA(epsilon=0.05).fit(u).result_
    >>> len(res) == train.n_samples, bool(abs(res.values.sum()) < 1e-8)
    (True, True)
    """

    name: ClassVar[str] = "lava"
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        **Valuation._parameter_constraints,
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "label_weight": [Interval(Real, 0, None)],
        "standardize": [Options([True, False])],
        "solver": [Options(_SOLVERS)],
        "max_iter": [Interval(Integral, 1, None)],
        "tol": [Interval(Real, 0, None, closed="neither")],
    }
    # no model is fitted: build the plain utility rather than a batched one
    exact_fits: ClassVar[bool] = True
    #: Calibrated gradients sum to zero by construction: a value's sign says above or below the
    #: average row, not helps or hurts, so the values rank rows only.
    baseline: ClassVar[float | None] = None

    def __init__(
        self,
        epsilon: float = 0.05,
        *,
        label_weight: float = 1.0,
        standardize: bool = True,
        solver: str = "lbfgs",
        max_iter: int = 10_000,
        tol: float = 1e-6,
    ) -> None:
        self.epsilon = epsilon
        self.label_weight = label_weight
        self.standardize = standardize
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol

    def _check(self, utility: Any) -> None:
        if not all(hasattr(utility, a) for a in ("train", "valid", "player_of_row")):
            raise DataworthError(
                "lava needs a data utility with training and valuation data "
                f"(a ModelUtility); got {type(utility).__name__}."
            )
        train, valid = utility.train, utility.valid
        if train.n_samples < 2 or valid.n_samples < 1:
            raise DataworthError(
                "lava needs at least two training rows and one valuation row; got "
                f"{train.n_samples} and {valid.n_samples}."
            )
        if not (is_categorical(train.y) and is_categorical(valid.y)):
            raise DataworthError(
                "lava needs class labels: its ground cost compares the feature distributions of "
                f"classes, but target {train.target_name!r} has real values. Use a method that "
                "supports regression (e.g. data-oob, tmc-shapley)."
            )

    def _fit(self, utility: Any) -> ValuationResult:
        self._check(utility)
        _import_ot()
        train, valid = utility.train, utility.valid
        X_train = np.asarray(train.X, dtype=np.float64)
        X_valid = np.asarray(valid.X, dtype=np.float64)
        if self.standardize:
            X_train, X_valid = standardize_pair(X_train, X_valid)
        n, m = X_train.shape[0], X_valid.shape[0]
        check_memory(
            6 * 8.0 * n * m,  # the cost matrix, the plan and the solver's temporaries
            f"lava needs the {n} x {m} cost matrix (training x valuation rows) of "
            f"{format_bytes(8.0 * n * m)}, 6 copies at once",
            "use fewer valuation rows (a smaller --valid-fraction or --valid file) or training "
            "rows, or --method knn-shapley (memory linear in the rows).",
        )
        classes_train, codes_train = np.unique(train.y, return_inverse=True)
        classes_valid, codes_valid = np.unique(valid.y, return_inverse=True)
        C, W = ground_cost(
            X_train,
            codes_train.ravel().astype(np.intp),
            X_valid,
            codes_valid.ravel().astype(np.intp),
            float(self.label_weight),
        )
        mean_cost = float(C.mean())
        # all costs 0 (identical points and classes): nothing to transport, any reg works
        reg = float(self.epsilon) * (mean_cost if mean_cost > 0 else 1.0)
        f, plan, info = _SOLVERS[self.solver](C, reg, int(self.max_iter), float(self.tol))
        if not np.isfinite(f).all():
            raise DataworthError(
                "lava: the OT solver produced non-finite potentials (regularisation too small for "
                f"the costs); raise epsilon (now {self.epsilon})."
            )
        converged = info["marginal_error"] <= self.tol
        if not converged:
            warnings.warn(
                f"lava: the {info['solver']} solver stopped after {info['iterations']} "
                f"iterations with relative marginal error {info['marginal_error']:.3g} > "
                f"tol={self.tol:g}; the values may be inaccurate. Raise max_iter or epsilon.",
                UserWarning,
                stacklevel=3,
            )
        row_values = -calibrated_gradient(f)
        metadata: dict[str, Any] = {
            "reg": reg,
            "ot_cost": float((plan * C).sum()),
            "converged": bool(converged),
            "n_valuation_points": int(valid.n_samples),
            "standardized": bool(self.standardize),
            **info,
            "notes": [
                "lava uses only the features and labels of the training and valuation rows: "
                "the model and the scoring are not used."
            ],
        }
        if W.size <= 400:
            metadata["label_distances"] = W.tolist()
            metadata["classes_train"] = classes_train.tolist()
            metadata["classes_valid"] = classes_valid.tolist()
        values: NDArray[np.float64]
        if getattr(utility, "by_group", False):
            values = np.bincount(
                utility.player_of_row, weights=row_values, minlength=utility.n_players
            ).astype(np.float64)
            metadata["group_aggregation"] = "sum of row values"
        else:
            values = row_values
        return self._result(
            utility,
            values=values,
            stderr=np.zeros(utility.n_players),
            counts=np.full(utility.n_players, valid.n_samples, dtype=np.int64),
            metadata=metadata,
        )
