"""Least core (Yan & Procaccia 2021): the allocation that needs the smallest subsidy to be stable.

The least core of a game ``u`` over players ``N`` is the set of allocations ``x`` solving the
linear program

    minimise e   subject to   sum_{i in S} x_i + e >= u(S)   for every coalition S,
                              sum_{i in N} x_i = u(N).

The coalitions are the non-empty proper subsets ``S`` (the empty set only bounds ``e`` from below
by ``u(empty)``, and ``S = N`` by the equality, so neither is a coalition constraint). Exact least
core enumerates all ``2^n - 2`` of them; Monte Carlo least core keeps only the coalitions of a
sample of uniformly random subsets. The optimal ``x`` need not be unique, so a second, strictly
convex program picks the optimal allocation of least Euclidean norm.

Examples
--------
>>> import numpy as np
>>> from dataworth.utility.base import UtilityBase
>>> class Majority(UtilityBase):
...     def __init__(self):
...         self.n_players, self.player_names = 3, np.arange(3)
...     def __call__(self, subset):
...         return float(self.mask_of(subset).sum() >= 2)
>>> lc = LeastCore().fit(Majority())
>>> np.round(lc.result_.values, 6).tolist(), round(lc.result_.metadata["subsidy"], 6)
([0.333333, 0.333333, 0.333333], 0.333333)
"""

from __future__ import annotations

import time
from numbers import Integral
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.optimize import OptimizeResult, linprog, minimize, nnls

from dataworth.base import Valuation
from dataworth.engine.runner import run_tasks
from dataworth.errors import DataworthError
from dataworth.methods.sklearn_check import sklearn_difference
from dataworth.params import Constraint, Interval
from dataworth.result import ValuationResult

__all__ = ["LeastCore"]

#: Exact least core enumerates 2^n subsets; beyond this many players it samples coalitions.
MAX_EXACT_PLAYERS = 16


def default_budget(n: int) -> int:
    """Sampled coalitions used when no budget is given for more than 16 players: max(1000, 10 n)."""
    return max(1000, 10 * n)


#: Subsets per parallel task; fixed, so the work split never depends on ``n_jobs``.
CHUNK_SIZE = 128
#: Largest dense constraint matrix (entries) the least-norm step builds.
MAX_DENSE_ENTRIES = 50_000_000
#: Largest problems handed to SLSQP, the second-choice solver (it is slow beyond them).
MAX_SLSQP_ENTRIES = 1_100_000
MAX_SLSQP_PLAYERS = 24
#: Largest accepted duality gap of the least-norm program, relative to its scale squared.
GAP_TOL = 1e-10
#: Relative slack on the subsidy allowed in the least-norm program (numerical headroom).
RELAX = 1e-9


def _evaluate_chunk(utility: Any, masks: NDArray[np.bool_]) -> tuple[NDArray[np.float64], int]:
    """Utilities of a chunk of subsets (rows of ``masks``), and the fit failures they caused."""
    before = getattr(utility, "n_failures", 0)
    values = np.asarray(utility.evaluate_many(list(masks)), dtype=np.float64)
    return values, getattr(utility, "n_failures", 0) - before


def _all_masks(n: int) -> NDArray[np.bool_]:
    """Masks of all non-empty proper subsets of ``n`` players, in binary counting order."""
    codes = np.arange(1, 2**n - 1, dtype=np.int64)
    return ((codes[:, None] >> np.arange(n)) & 1).astype(bool)


def _sampled_masks(n: int, budget: int, rng: np.random.Generator) -> NDArray[np.bool_]:
    """``budget`` uniform random subsets, minus empty/full ones and repeats (first kept)."""
    masks = rng.random((budget, n)) < 0.5
    size = masks.sum(axis=1)
    masks = masks[(size > 0) & (size < n)]
    if masks.shape[0] == 0:
        return masks
    _, first = np.unique(np.packbits(masks, axis=1), axis=0, return_index=True)
    return masks[np.sort(first)]


# ---------------------------------------------------------------------------------------- LP
def _solve_lp(A: sp.csr_array, b: NDArray[np.float64], total: float) -> NDArray[np.float64]:
    """An optimal allocation of the least-core LP (HiGHS), projected onto ``sum x = total``."""
    m, n = A.shape
    c = np.zeros(n + 1)
    c[-1] = 1.0
    A_ub = sp.hstack([-A, -np.ones((m, 1))], format="csc")
    A_eq = np.ones((1, n + 1))
    A_eq[0, -1] = 0.0
    res = linprog(
        c, A_ub=A_ub, b_ub=-b, A_eq=A_eq, b_eq=[total], bounds=(None, None), method="highs"
    )
    if res.status == 3:
        raise DataworthError(
            f"the {m} sampled coalitions do not bound the subsidy (the linear program is "
            "unbounded); raise the budget so that more coalitions are sampled."
        )
    if res.status != 0 or res.x is None:
        raise DataworthError(f"the least-core linear program failed: {res.message}")
    x = np.asarray(res.x[:n], dtype=np.float64)
    return x + (total - x.sum()) / n


def _subsidy(A: sp.csr_array, b: NDArray[np.float64], x: NDArray[np.float64]) -> float:
    """The least ``e`` with ``A x + e >= b``."""
    return float(np.max(b - A @ x))


# ---------------------------------------------------------------------------------------- QP
class _Hyperplane:
    """Orthonormal coordinates ``y`` on ``{x : sum x = total}``: ``x = x0 + Z y``.

    ``x0 = total / n`` (the point of least norm of the hyperplane, orthogonal to it), and ``Z``
    is formed by the last ``n - 1`` columns of the Householder reflection ``H`` mapping the
    all-ones direction to the first axis, so ``||x||^2 = ||x0||^2 + ||y||^2`` and the least-norm
    program loses its equality constraint. ``H`` is applied implicitly, never formed.
    """

    def __init__(self, n: int, total: float) -> None:
        self.n = n
        self.x0 = np.full(n, total / n)
        self.w = np.ones(n)
        self.w[0] += np.sqrt(n)
        self.ww = float(self.w @ self.w)

    def to_x(self, y: NDArray[np.float64]) -> NDArray[np.float64]:
        z = np.concatenate([[0.0], y])
        return self.x0 + z - self.w * (2.0 * (self.w @ z) / self.ww)

    def to_y(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        d = x - self.x0
        return (d - self.w * (2.0 * (self.w @ d) / self.ww))[1:]

    def restrict(self, A_dense: NDArray[np.float64]) -> NDArray[np.float64]:
        """The constraint matrix in ``y`` coordinates: ``A Z``."""
        return (A_dense - np.outer(A_dense @ self.w, self.w * (2.0 / self.ww)))[:, 1:]


def _ldp_nnls(
    G: NDArray[np.float64],
    h: NDArray[np.float64],
    y_start: NDArray[np.float64],
) -> NDArray[np.float64] | None:
    """Least-distance program ``min ||y|| s.t. G y >= h`` by Lawson & Hanson's reduction to NNLS.

    Solve ``min ||E u - f||, u >= 0`` with ``E = [G^T; h^T]`` and ``f`` the last unit vector;
    then ``y = -r[:-1] / r[-1]`` for the residual ``r = E u - f``. The problem is first scaled
    by the norm of a known feasible point so that ``||y|| <= 1`` and ``r[-1]`` stays near -1.
    """
    scale = float(np.linalg.norm(y_start))
    if scale == 0.0:
        return y_start
    E = np.vstack([G.T, h[None, :] / scale])
    f = np.zeros(E.shape[0])
    f[-1] = 1.0
    u, _ = nnls(E, f, maxiter=max(100, 5 * E.shape[1]))
    r = E @ u - f
    if not np.all(np.isfinite(r)) or r[-1] > -1e-8:
        return None
    y = -r[:-1] / r[-1] * scale
    # Optimality certificate: y = G^T lam with lam >= 0, so the duality gap of the program is
    # lam^T (G y - h); ||y - y_opt||^2 <= 2 * gap. Refuse the answer if the gap is not tiny.
    lam = u * (-scale / r[-1])
    gap = float(lam @ (G @ y - h))
    if abs(gap) > GAP_TOL * scale**2:
        return None
    return y


def _slsqp(
    G: NDArray[np.float64],
    h: NDArray[np.float64],
    y_start: NDArray[np.float64],
) -> NDArray[np.float64] | None:
    """``min ||y||^2 / 2 s.t. G y >= h`` with SLSQP, analytic gradients, from a feasible start."""
    res: OptimizeResult = minimize(
        lambda y: 0.5 * float(y @ y),
        y_start,
        jac=lambda y: y,
        method="SLSQP",
        constraints=[{"type": "ineq", "fun": lambda y: G @ y - h, "jac": lambda y: G}],
        options={"maxiter": 200, "ftol": 1e-14},
    )
    return np.asarray(res.x, dtype=np.float64) if res.success else None


def _least_norm(
    A: sp.csr_array,
    b: NDArray[np.float64],
    total: float,
    subsidy: float,
    x_lp: NDArray[np.float64],
    tol: float,
) -> tuple[NDArray[np.float64], str, str | None]:
    """The allocation of least norm with ``A x + subsidy + tol >= b`` and ``sum x = total``.

    Returns ``(x, solver, warning)``; ``warning`` is set when every solver failed and the LP
    allocation ``x_lp`` is returned instead.
    """
    m, n = A.shape
    plane = _Hyperplane(n, total)
    bound = b - subsidy - tol

    def acceptable(x: NDArray[np.float64] | None) -> bool:
        if x is None or not np.all(np.isfinite(x)):
            return False
        feasible = float(np.min(A @ x - bound)) >= -tol
        return feasible and float(x @ x) <= float(x_lp @ x_lp) * (1 + 1e-9) + tol

    if acceptable(plane.x0):  # the equal split is stable: nothing to optimise
        return plane.x0, "equal-split", None
    if m * n > MAX_DENSE_ENTRIES:
        return (
            x_lp,
            "lp",
            (
                f"least-norm step skipped: {m} constraints x {n} players is too large for the "
                "dense solver; the values are one optimal allocation of the LP, not the "
                "least-norm one."
            ),
        )
    G = plane.restrict(A.toarray().astype(np.float64))
    h = bound - A @ plane.x0
    y_lp = plane.to_y(x_lp)
    errors: list[str] = []
    solvers = [("ldp-nnls", _ldp_nnls)]
    if m * n <= MAX_SLSQP_ENTRIES and n <= MAX_SLSQP_PLAYERS:
        solvers.append(("slsqp", _slsqp))
    for name, solver in solvers:
        try:
            y = solver(G, h, y_lp)
        except Exception as exc:  # a numerical failure: try the next solver
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        x = None if y is None else plane.to_x(y)
        if acceptable(x):
            assert x is not None
            return x, name, None
        errors.append(f"{name}: no acceptable solution")
    return (
        x_lp,
        "lp",
        (
            "the least-norm program failed (" + "; ".join(errors) + "); the values are one optimal "
            "allocation of the LP, not the least-norm one."
        ),
    )


# ---------------------------------------------------------------------------------------- method
class LeastCore(Valuation):
    """Least-core values: the least-norm allocation among those needing the least subsidy.

    Solves ``min e s.t. sum_{i in S} x_i + e >= u(S)`` for every non-empty proper coalition
    ``S`` and ``sum_i x_i = u(N)`` with HiGHS, then, among the optimal allocations
    (``e <= e* + 1e-9 * scale``), the one of least Euclidean norm. The least-norm program is a
    least-distance program: after the efficiency equality is eliminated (orthonormal coordinates
    on the hyperplane ``sum x = u(N)``), it is solved exactly (active set, finitely many steps,
    no step sizes or Hessian approximations) by Lawson & Hanson's reduction to non-negative least
    squares, whose multipliers certify the answer (it is kept only if the duality gap is ~0).
    SLSQP with analytic gradients is the second choice on small problems; if both fail, the LP
    allocation is kept and a warning is stored in ``metadata["warnings"]``.

    Parameters
    ----------
    budget : int, optional
        ``None`` (default): exact least core over all ``2^n - 2`` coalitions for at most 16
        players, and Monte Carlo least core with :func:`default_budget` coalitions beyond
        (said in ``metadata["notes"]``). An integer: Monte Carlo least core over the coalitions
        of ``budget`` uniformly random subsets (each player in with probability 1/2; empty,
        full and repeated subsets are dropped, so there may be fewer constraints than
        ``budget``).
    random_state : int, optional
        Seed of the subset sampler (Monte Carlo only).
    n_jobs : int, default=1
        Parallel workers for the utility evaluations (the values do not depend on it).
    progress : bool or None, default=None
        Show a progress bar over the evaluations; ``None``: when interactive (a terminal or a
        notebook).
    checkpoint : str or Path, optional
        Save the finished chunks of utilities here (atomically, every few seconds), so that a
        killed run can resume.
    resume : bool, default=False
        Continue from ``checkpoint`` if it exists: its chunks are not evaluated again.

    Notes
    -----
    * ``result_.metadata["subsidy"]`` is the least subsidy ``e*`` (negative when the core is
      non-empty with room to spare), as needed by the returned allocation: every constraint
      holds for it, and it is within ``2e-9 * max(1, max |u|)`` of the LP optimum.
      ``metadata["n_constraints"]`` counts the coalition constraints plus the efficiency
      equality; ``metadata["least_norm_solver"]`` says which solver gave the values.
    * ``stderr`` is 0 for the exact least core and NaN for the Monte Carlo one (the solution of a
      sampled LP comes with no error estimate).
    * ``counts`` is the number of constraints each player appears in (the equality included).
    * Values are efficient: they sum to ``u(N)``.
    """

    name: ClassVar[str] = "least-core"
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        **Valuation._parameter_constraints,
        "budget": [Interval(Integral, 1, None), None],
        "random_state": [Interval(Integral, 0, None), None],
    }
    #: An allocation of the total score ``u(N)`` that keeps every coalition stable, not a
    #: marginal effect: a row that neither helps nor hurts need not get 0 (its share is bounded
    #: by the subsidy and its own score), so the values rank rows only.
    baseline: ClassVar[float | None] = None

    def __init__(
        self,
        budget: int | None = None,
        *,
        random_state: int | None = None,
        n_jobs: int | None = 1,
        progress: bool | None = None,
        checkpoint: str | Path | None = None,
        resume: bool = False,
    ) -> None:
        self.budget = budget
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.progress = progress
        self.checkpoint = checkpoint
        self.resume = resume

    def _check(self, n: int) -> None:
        if n < 2:
            raise DataworthError(
                f"least core needs at least two players; got {n} (a single player's value is "
                "just u(N))."
            )

    def _fit(self, utility: Any) -> ValuationResult:
        n = int(utility.n_players)
        self._check(n)
        started = time.monotonic()
        exact = self.budget is None and n <= MAX_EXACT_PLAYERS
        notes: list[str] = []
        if exact:
            masks = _all_masks(n)
        else:
            budget = default_budget(n) if self.budget is None else int(self.budget)
            if self.budget is None:
                notes.append(
                    f"{n} players are too many for the exact least core (at most "
                    f"{MAX_EXACT_PLAYERS}); sampled {budget} coalitions (set --budget / budget=)."
                )
            rng = np.random.default_rng(self.random_state)
            masks = _sampled_masks(n, budget, rng)
        if masks.shape[0] == 0:
            raise DataworthError(
                f"no coalition was sampled (budget={self.budget} gave only empty or full "
                "subsets); raise the budget."
            )
        todo = np.vstack([masks, np.ones((1, n), dtype=bool)])
        chunks = [todo[i : i + CHUNK_SIZE] for i in range(0, todo.shape[0], CHUNK_SIZE)]
        parts = run_tasks(
            _evaluate_chunk,
            chunks,
            n_jobs=self.n_jobs,
            progress=self.progress,
            desc=self.name,
            extra=(utility,),
            checkpoint=self._task_checkpoint(utility, len(chunks)),
            resume=self.resume,
        )
        values = np.concatenate([p[0] for p in parts]) if parts else np.empty(0)
        n_failures = int(sum(p[1] for p in parts))
        b, total = values[:-1], float(values[-1])
        if not np.all(np.isfinite(values)):
            raise DataworthError(
                "the utility returned a non-finite value; least core needs finite utilities."
            )
        rows, cols = np.nonzero(masks)
        A = sp.csr_array((np.ones(rows.size), (rows, cols)), shape=masks.shape)

        x_lp = _solve_lp(A, b, total)
        subsidy = _subsidy(A, b, x_lp)
        tol = RELAX * max(1.0, float(np.max(np.abs(values))))
        x, solver, warning = _least_norm(A, b, total, subsidy, x_lp, tol)
        # the subsidy the returned allocation needs: within tol of the LP optimum, and every
        # constraint sum_{i in S} x_i + subsidy >= u(S) holds for it exactly
        subsidy = max(subsidy, _subsidy(A, b, x))

        metadata: dict[str, Any] = {
            "subsidy": subsidy,
            "n_constraints": int(masks.shape[0]) + 1,
            "n_evaluations": int(todo.shape[0]),
            "exact": exact,
            "least_norm_solver": solver,
            "n_failures": n_failures,
            "seconds": round(time.monotonic() - started, 3),
        }
        if warning is not None:
            metadata["warnings"] = [warning]
        checked, more = sklearn_difference(
            utility, masks, b, full=np.ones(n, dtype=bool), full_utility=total
        )
        metadata.update(checked)
        notes.extend(more)
        if notes:
            metadata["notes"] = notes
        counts = np.asarray(masks.sum(axis=0), dtype=np.int64) + 1
        stderr = np.zeros(n) if exact else np.full(n, np.nan)
        return self._result(utility, values=x, stderr=stderr, counts=counts, metadata=metadata)
