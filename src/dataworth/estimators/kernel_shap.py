"""Kernel SHAP: Shapley values as a constrained weighted least-squares fit (Lundberg & Lee 2017).

The Shapley values are the solution of

    min_phi  sum_{0 < |S| < n} k(S) (u(S) - u(empty) - 1_S . phi)^2
    subject to  sum phi = u(N) - u(empty)

with the Shapley kernel ``k(S) = (n - 1) / (C(n, |S|) |S| (n - |S|))``. Kernel SHAP samples
coalitions ``S`` with probability proportional to ``k(S)`` (the size ``s`` with probability
proportional to ``1 / (s (n - s))``, then a uniform subset of that size), here in complementary
pairs ``(S, N \\ S)`` (Covert & Lee 2021), and solves the problem with the sample moments

    A = mean of w z z^T,    b = mean of w z (u(S) - u(empty))

(``z = 1_S``; a pair contributes the mean of its two terms; ``w`` an importance weight, 1 here,
``k(S) / p(S)`` up to a constant for other samplers, see :mod:`~dataworth.estimators.
leverage_shap`). The constrained solution is written ``phi = v / n 1 + P beta`` (``P`` the
projection orthogonal to ``1``, ``v = u(N) - u(empty)``) with ``P A P beta = P (b - A 1 v / n)``,
the least-squares solution where ``A`` is singular (few samples). It is exact for an additive
game once the sampled coalitions determine the system, and consistent but biased in general.

State: the moments are mergeable sums kept per random group (``G = 8``; each sample's group is
drawn with it, from its own uniform): key ``gram:g:j`` holds row ``j`` of group ``g``'s ``A`` (a
Moments of length ``n``), ``b:g`` its ``b``, and ``ends`` holds ``u(empty), u(N)`` in its first
two entries, so the state alone gives the values (reducer ``"kernel-regression"``). The
estimate is a nonlinear function of the means; its standard error is the **delete-one-group
jackknife**
``sqrt((G' - 1) / G' sum_g (phi_(-g) - mean phi_(-g))^2)`` over the ``G'`` non-empty groups
(``G' - 1`` degrees of freedom: a t distribution with 7, so ``|z| > 3`` about 2% of the time).
The state is ``O(G n^2)`` numbers (about ``192 n^2`` bytes); a run refuses, with a clear error,
when it would not fit in memory.

**One row of uniforms per sample.** Pair ``j`` of a draw comes from row ``j`` of ``n + 2``
uniforms alone (the size of ``S`` by inverse CDF of the first, its players from the order of
the next ``n``, its group from the last), and samples stay in draw order, so that drawing ``k``
then ``m`` samples gives those of drawing ``k + m``: the runner cuts rounds at other places
after a resume, under a budget cap or a time limit, and must see the same samples. Hence the
groups are not sorted within a round (sorting depends on the round's length), and a chunk
holds samples of every group.

Examples
--------
>>> from dataworth.testing.games import AdditiveGame
>>> from dataworth.methods import get_method
>>> r = get_method("shapley")(budget=200, estimator="kernel-shap", random_state=0).fit(
...     AdditiveGame([1.0, 2.0, 3.0])).result_
>>> r.values.round(6).tolist()
[1.0, 2.0, 3.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.linalg
from numpy.typing import NDArray

from dataworth.engine.moments import Estimate, Moments, State
from dataworth.estimators.msr import ends
from dataworth.estimators.plan import Plan
from dataworth.estimators.semivalues import Semivalue
from dataworth.estimators.sizes import SizeSampler
from dataworth.memory import check_memory
from dataworth.samplers import choose_by_uniform, subsets_by_keys

__all__ = [
    "GROUPS",
    "KernelRegressionJob",
    "KernelSHAP",
    "constrained_solve",
    "kernel_regression_estimate",
    "kernel_sizes",
    "regression_plan",
]

#: Random groups of samples for the jackknife standard error.
GROUPS = 8

#: Name of the reducer (:data:`dataworth.estimators.reducers.REDUCERS`) of these states.
REDUCER = "kernel-regression"


def kernel_sizes(n: int) -> SizeSampler:
    """Sizes drawn as the Shapley kernel weighs them: ``q_s`` proportional to
    ``1 / (s (n - s))``."""
    s = np.arange(1, n, dtype=np.float64)
    log_mass = -np.log(s * (n - s))
    log_q = np.full(n + 1, -np.inf)
    log_q[1:n] = log_mass - np.logaddexp.reduce(log_mass)
    return SizeSampler(log_q)


def constrained_solve(
    A: NDArray[np.float64], b: NDArray[np.float64], v: float
) -> NDArray[np.float64]:
    """``argmin phi^T A phi - 2 b^T phi`` subject to ``sum phi = v`` (least squares if singular).

    Solved as ``phi = v / n 1 + beta`` with ``beta`` orthogonal to ``1``:
    ``(P A P + tau 1 1^T / n) beta = P (b - A 1 v / n)``; the added term only pins the
    component along ``1`` (to zero, since the right-hand side is orthogonal to it).
    """
    n = b.shape[0]
    row = A.mean(axis=0)
    PAP = A - row[None, :] - row[:, None] + row.mean()
    rhs = b - A.sum(axis=1) * (v / n)
    rhs = rhs - rhs.mean()
    tau = max(float(np.trace(A)) / n, 1e-300)
    M = PAP + tau / n
    try:
        factor = scipy.linalg.cho_factor(M, check_finite=False)
        beta = scipy.linalg.cho_solve(factor, rhs, check_finite=False)
        residual = float(np.linalg.norm(M @ beta - rhs))
        ok = bool(np.all(np.isfinite(beta))) and residual <= 1e-6 * float(np.linalg.norm(rhs))
    except (np.linalg.LinAlgError, ValueError):
        ok = False
    if not ok:  # singular on 1^perp: the minimum-norm least-squares solution
        vals, vecs = np.linalg.eigh(M)
        keep = vals > vals.max() * n * np.finfo(float).eps
        beta = vecs[:, keep] @ ((vecs[:, keep].T @ rhs) / vals[keep])
    beta = beta - beta.mean()
    out: NDArray[np.float64] = beta + v / n
    return out


def _groups(state: State) -> list[int]:
    return sorted(int(k[2:]) for k in state if k.startswith("b:"))


def _gram(state: State, g: int, n: int) -> NDArray[np.float64]:
    return np.stack([state[f"gram:{g}:{j}"].mean for j in range(n)])


def kernel_regression_estimate(state: State) -> Estimate:
    """Values (the constrained fit on all samples), jackknife standard errors and counts."""
    ends_m = state["ends"]
    n = ends_m.mean.shape[0]
    u_empty, u_full = float(ends_m.mean[0]), float(ends_m.mean[1])
    v = u_full - u_empty
    counts = ends_m.count.astype(np.int64)
    groups = [g for g in _groups(state) if state[f"b:{g}"].count[0] > 0]
    total = int(sum(int(state[f"b:{g}"].count[0]) for g in groups))
    if total == 0:
        nan = np.full(n, np.nan)
        return nan, nan.copy(), counts
    SA = np.zeros((n, n))
    Sb = np.zeros(n)
    for g in groups:
        c = float(state[f"b:{g}"].count[0])
        SA += c * _gram(state, g, n)
        Sb += c * state[f"b:{g}"].mean
    values = constrained_solve(SA / total, Sb / total, v)
    stderr = np.full(n, np.nan)
    if len(groups) >= 2:
        leave_out = []
        for g in groups:
            c = float(state[f"b:{g}"].count[0])
            rest = total - c
            A = (SA - c * _gram(state, g, n)) / rest
            b = (Sb - c * state[f"b:{g}"].mean) / rest
            leave_out.append(constrained_solve(A, b, v))
        jk = np.asarray(leave_out)
        k = jk.shape[0]
        stderr = np.sqrt((k - 1) / k * ((jk - jk.mean(axis=0)) ** 2).sum(axis=0))
    return values, stderr, counts


@dataclass
class KernelRegressionJob:
    """Pairs ``(S, N \\ S)`` with sizes from ``sampler``, each with a random group; the per-group
    moments of the weighted regression (see the module)."""

    sampler: SizeSampler
    weights: NDArray[np.float64]  # importance weight of a coalition of each size
    u_empty: float
    u_full: float
    groups: int = GROUPS
    estimator: str = REDUCER
    state_keys: tuple[str, ...] = ()
    chunk_size: int = 16

    def __post_init__(self) -> None:
        n = self.sampler.n
        keys = ["ends"]
        for g in range(self.groups):
            keys.append(f"b:{g}")
            keys.extend(f"gram:{g}:{j}" for j in range(n))
        self.state_keys = tuple(keys)

    def estimate(self, state: State) -> Estimate:
        return kernel_regression_estimate(state)

    def draw(self, rng: np.random.Generator, size: int, n_players: int) -> list[Any]:
        # one row per sample, in draw order (see the module): size, players' order, group
        n = self.sampler.n
        uniforms = rng.random((size, n + 2))
        sizes = choose_by_uniform(np.exp(self.sampler.log_q), uniforms[:, 0])
        T = subsets_by_keys(uniforms[:, 1 : n + 1], sizes)
        group = np.minimum((uniforms[:, n + 1] * self.groups).astype(np.int64), self.groups - 1)
        return [(int(g), t) for g, t in zip(group, T, strict=True)]

    def process(self, utility: Any, samples: Sequence[Any]) -> State:
        n = self.sampler.n
        group = np.array([s[0] for s in samples], dtype=np.int64)
        T = np.asarray([s[1] for s in samples], dtype=bool)
        m = T.shape[0]
        u = np.asarray(utility.evaluate_many(np.concatenate([T, ~T])), dtype=np.float64)
        y_in, y_out = u[:m] - self.u_empty, u[m:] - self.u_empty
        w = self.weights[T.sum(axis=1)]
        X = 2.0 * T - 1.0
        # a pair's term of b: w (z y(S) + (1 - z) y(N \ S)) / 2
        bvec = 0.5 * w[:, None] * np.where(T, y_in[:, None], y_out[:, None])
        ends_mean = np.zeros(n)
        ends_mean[:2] = self.u_empty, self.u_full
        state: State = {"ends": Moments(np.full(n, m, np.int64), ends_mean, np.zeros(n))}
        zero = Moments.zeros(n)  # one shared object: absent groups cost nothing to ship
        for g in range(self.groups):
            rows = np.flatnonzero(group == g)
            if rows.size == 0:
                state[f"b:{g}"] = zero
                state.update({f"gram:{g}:{j}": zero for j in range(n)})
                continue
            Xg, wg = X[rows], w[rows]
            # a pair's term of A: w (z z^T + (1-z)(1-z)^T) / 2 = w (1 + x x^T) / 4, x = 2z - 1;
            # its square is w^2 (1 + x x^T) / 8 (x_i x_j = +-1)
            sum_e = (wg.sum() + (Xg.T * wg) @ Xg) / 4.0
            sum_e2 = (float((wg**2).sum()) + (Xg.T * wg**2) @ Xg) / 8.0
            c = rows.size
            mean = sum_e / c
            m2 = np.maximum(sum_e2 - c * mean**2, 0.0)
            count = np.full(n, c, np.int64)
            state[f"b:{g}"] = Moments.from_samples(bvec[rows])
            for j in range(n):
                state[f"gram:{g}:{j}"] = Moments(count, mean[j].copy(), m2[j].copy())
        return state


def state_bytes(n: int, groups: int = GROUPS) -> float:
    """Bytes of one state: ``groups (n + 1) + 1`` Moments of three length-``n`` arrays."""
    return 24.0 * n * (groups * (n + 1) + 1)


def regression_plan(
    name: str,
    utility: Any,
    sampler: SizeSampler,
    weights: NDArray[np.float64],
) -> Plan:
    """The plan of a kernel-regression estimator; refuses when its state cannot fit."""
    n = utility.n_players
    # the run's state, a merge's copy, and a round of GROUPS chunk states (each holding every
    # group: samples stay in draw order)
    check_memory(
        (GROUPS + 2.0) * state_bytes(n),
        f"estimator {name!r} keeps {GROUPS} {n} x {n} Gram matrices (with their merges)",
        "use estimator='unbiased-kernel-shap' or 'regression-msr', whose state is O(n).",
    )
    u_empty, u_full = ends(utility)
    job = KernelRegressionJob(sampler, weights, u_empty, u_full, chunk_size=max(16, -(-n // 2)))
    return Plan(job, cost_per_sample=2, fixed_cost=2, metadata={"jackknife_groups": GROUPS})


class KernelSHAP:
    """Kernel SHAP with paired sampling: the constrained least-squares fit on coalitions drawn
    from the Shapley kernel (see the module); jackknife standard errors."""

    name: ClassVar[str] = "kernel-shap"

    def plan(
        self,
        utility: Any,
        semivalue: Semivalue,
        *,
        budget: int | None,
        random_state: int | None,
        n_jobs: int | None,
    ) -> Plan:
        n = utility.n_players
        return regression_plan(self.name, utility, kernel_sizes(n), np.ones(n + 1))
