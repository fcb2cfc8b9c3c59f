"""Unbiased Kernel SHAP (Covert & Lee 2021), with paired sampling.

Kernel SHAP (:mod:`~dataworth.estimators.kernel_shap`) solves the constrained least-squares
problem with a sampled matrix ``A = E[z z^T]``; for coalitions drawn from the Shapley kernel that
matrix is known exactly, ``A = a I + c 1 1^T`` with ``a = 1/2 - c`` and
``c = P(i, j both in S) = sum_s q_s s (s - 1) / (n (n - 1))``. With the exact ``A`` the solution
is linear in ``b = E[z (u(S) - u(empty))]``:

    phi = (b - mean(b) 1) / a + (u(N) - u(empty)) / n,

so replacing ``b`` by a sample mean gives an unbiased estimate. A pair ``(S, N \\ S)``
contributes ``(z - |S| / n) (u(S) - u(N \\ S)) / (2 a) + (u(N) - u(empty)) / n`` (``u(empty)``
cancels); values are the mean of these vectors and the standard error is that of a mean of
independent samples (reducer ``"mean"``), honest for any game. The state is ``O(n)``.

Examples
--------
>>> from dataworth.testing.games import AdditiveGame
>>> from dataworth.methods import get_method
>>> r = get_method("shapley")(budget=400, estimator="unbiased-kernel-shap",
...                           random_state=0).fit(AdditiveGame([1.0, 2.0, 3.0])).result_
>>> bool(abs(r.values.sum() - 6.0) < 1e-9)  # efficient by construction
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from dataworth.engine.moments import Estimate, Moments, State
from dataworth.estimators.kernel_shap import kernel_sizes
from dataworth.estimators.msr import ends
from dataworth.estimators.plan import Plan
from dataworth.estimators.reducers import reduce_state
from dataworth.estimators.semivalues import Semivalue
from dataworth.estimators.sizes import SizeSampler

__all__ = ["UnbiasedKernelJob", "UnbiasedKernelSHAP"]


@dataclass
class UnbiasedKernelJob:
    """Pairs from the Shapley kernel; one unbiased value vector per pair (see the module)."""

    sampler: SizeSampler
    a: float
    share: float  # (u(N) - u(empty)) / n
    estimator: str = "mean"
    state_keys: tuple[str, ...] = ("marginal",)
    chunk_size: int = 32

    def estimate(self, state: State) -> Estimate:
        return reduce_state(self.estimator, state)

    def draw(self, rng: np.random.Generator, size: int, n_players: int) -> list[Any]:
        return list(self.sampler.draw(rng, size))

    def process(self, utility: Any, samples: Sequence[Any]) -> State:
        T = np.asarray(samples, dtype=bool)
        m, n = T.shape
        u = np.asarray(utility.evaluate_many(np.concatenate([T, ~T])), dtype=np.float64)
        diff = u[:m] - u[m:]
        centred = T - T.sum(axis=1, keepdims=True) / n
        vectors = centred * (diff / (2.0 * self.a))[:, None] + self.share
        return {"marginal": Moments.from_samples(vectors)}


class UnbiasedKernelSHAP:
    """Unbiased Kernel SHAP with paired sampling: the exact kernel Gram matrix, a sampled
    right-hand side; ``O(n)`` state (see the module)."""

    name: ClassVar[str] = "unbiased-kernel-shap"

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
        sampler = kernel_sizes(n)
        s = np.arange(n + 1, dtype=np.float64)
        c = float((np.exp(sampler.log_q) * s * (s - 1)).sum() / (n * (n - 1)))
        u_empty, u_full = ends(utility)
        job = UnbiasedKernelJob(sampler, 0.5 - c, (u_full - u_empty) / n)
        return Plan(job, cost_per_sample=2, fixed_cost=2)
