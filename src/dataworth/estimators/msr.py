"""Unbiased semivalue estimates from paired coalitions sampled by size (maximum sample reuse).

Every sampled coalition updates every player: with ``T`` drawn by
:class:`~dataworth.estimators.sizes.SizeSampler` and ``r(T) = u(T) - g(T)`` the residual of a
surrogate ``g`` whose semivalue is known exactly (none: ``g = 0``), the vector

    psi_i(T) = r(T) (a_in[|T|] 1[i in T] - a_out[|T|] 1[i not in T])

is an unbiased estimate of the sampled sizes' part of ``phi_i(u - g)``. The empty and full
coalitions are scored once, exactly. A sample is the pair ``(T, N \\ T)`` (two evaluations) and
contributes the mean of its two vectors plus the exact terms and ``phi(g)``; values are the mean
over samples and the standard error is that of a mean of independent samples (Moments), so it
is honest whatever the surrogate. Outer sizes that sampling would cover at least once over
(:func:`border_sizes`) are scored exactly, all their coalitions, and sampling covers the rest.

Examples
--------
>>> from dataworth.testing.games import AdditiveGame
>>> from dataworth.estimators.semivalues import Semivalue
>>> game = AdditiveGame([1.0, 2.0, 3.0])
>>> plan = SizeMSR().plan(game, Semivalue.shapley(), budget=20, random_state=0, n_jobs=1)
>>> plan.fixed_cost, plan.cost_per_sample
(2, 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any, ClassVar, Protocol

import numpy as np
from numpy.typing import NDArray
from scipy.special import comb

from dataworth.engine.moments import Estimate, Moments, State
from dataworth.estimators.plan import Plan
from dataworth.estimators.reducers import reduce_state
from dataworth.estimators.semivalues import Semivalue
from dataworth.estimators.sizes import SizeSampler, coefficients

__all__ = ["PairedMSRJob", "SizeMSR", "Surrogate", "SurrogateLike", "exact_part"]


class SurrogateLike(Protocol):
    """What the jobs need of a surrogate: predictions on boolean masks and an exact semivalue
    (:class:`Surrogate`; :class:`~dataworth.estimators.tree_surrogate.TreeSurrogate`)."""

    def __call__(self, masks: NDArray[np.bool_]) -> NDArray[np.float64]: ...

    def values(self, semivalue: Semivalue) -> NDArray[np.float64]: ...


@dataclass(frozen=True)
class Surrogate:
    """``g(T) = h(|T|) + beta . 1_T``: a size effect plus one additive effect per player."""

    h: NDArray[np.float64]
    beta: NDArray[np.float64]

    def __call__(self, masks: NDArray[np.bool_]) -> NDArray[np.float64]:
        out: NDArray[np.float64] = self.h[masks.sum(axis=1)] + masks @ self.beta
        return out

    def values(self, semivalue: Semivalue) -> NDArray[np.float64]:
        """The exact semivalue of ``g``: ``beta_i`` plus the size effect's equal share."""
        return self.beta + semivalue.value_of_size_function(self.h)

    @classmethod
    def zero(cls, n: int) -> Surrogate:
        return cls(np.zeros(n + 1), np.zeros(n))


@dataclass
class PairedMSRJob:
    """Pairs ``(T, N \\ T)`` by size; per-sample unbiased value vectors (see the module)."""

    sampler: SizeSampler
    a_in: NDArray[np.float64]
    a_out: NDArray[np.float64]
    offset: NDArray[np.float64]
    surrogate: SurrogateLike
    estimator: str = "mean"
    state_keys: tuple[str, ...] = ("marginal",)
    chunk_size: int = 32

    def estimate(self, state: State) -> Estimate:
        return reduce_state(self.estimator, state)

    def draw(self, rng: np.random.Generator, size: int, n_players: int) -> list[Any]:
        return list(self.sampler.draw(rng, size))

    def process(self, utility: Any, samples: Sequence[Any]) -> State:
        T = np.asarray(samples, dtype=bool)
        both = np.concatenate([T, ~T])
        return {"marginal": Moments.from_samples(self.vectors(T, utility.evaluate_many(both)))}

    def vectors(self, T: NDArray[np.bool_], u: NDArray[np.float64]) -> NDArray[np.float64]:
        """The samples' value vectors, from the coalitions ``T`` and the utilities of
        ``T`` then of their complements."""
        both = np.concatenate([T, ~T])
        r = u - self.surrogate(both)
        sizes = both.sum(axis=1)
        psi = r[:, None] * np.where(both, self.a_in[sizes][:, None], -self.a_out[sizes][:, None])
        m = T.shape[0]
        out: NDArray[np.float64] = 0.5 * (psi[:m] + psi[m:]) + self.offset
        return out


def ends(utility: Any) -> tuple[float, float]:
    """``u(empty)`` and ``u(N)`` in one call."""
    n = utility.n_players
    u = utility.evaluate_many(np.array([np.zeros(n, dtype=bool), np.ones(n, dtype=bool)]))
    return float(u[0]), float(u[1])


def exact_part(
    semivalue: Semivalue,
    masks: NDArray[np.bool_],
    u: NDArray[np.float64],
    surrogate: SurrogateLike,
) -> NDArray[np.float64]:
    """The exact contribution of fully scored coalitions' residuals to every value:
    ``sum_T r(T) (w(|T|-1) 1[i in T] - w(|T|) 1[i not in T])`` (``w(-1) = w(n) = 0``)."""
    n = masks.shape[1]
    w = np.concatenate([[0.0], np.exp(semivalue.log_weights(n)), [0.0]])  # w[k + 1] = w(k)
    r = u - surrogate(masks)
    sizes = masks.sum(axis=1)
    coef = np.where(masks, w[sizes][:, None], -w[sizes + 1][:, None])
    out: NDArray[np.float64] = r @ coef
    return out


def border_sizes(semivalue: Semivalue, n: int, budget: int | None) -> int:
    """How many outer pairs of sizes ``(1, n-1), (2, n-2), ...`` to score exactly.

    A pair of sizes is enumerated when sampling would spend on it at least as many
    evaluations as it has coalitions (``C(n, s) <= left * q_s``, the "border trick"): it is
    then cheaper to know it than to estimate it, and the remaining budget goes to the sizes in
    between. Without a budget, sizes 1 and ``n - 1`` (``2 n`` evaluations). At least one size
    is always left to sample, so ``n >= 4`` for any enumeration.

    Examples
    --------
    >>> from dataworth.estimators.semivalues import Semivalue
    >>> border_sizes(Semivalue.shapley(), 12, 120), border_sizes(Semivalue.shapley(), 12, 2400)
    (0, 3)
    """
    if n < 4:
        return 0
    if budget is None:
        return 1
    left, k = float(budget - 2), 0
    while n >= 2 * (k + 1) + 2:
        s = k + 1
        q_s = float(np.exp(SizeSampler.for_semivalue(semivalue, n, smallest=s).log_q[s]))
        count = float(comb(n, s, exact=True))
        if count > left * q_s or 2 * count > left - 2:
            break
        left -= 2 * count
        k = s
    return k


def evaluate_known(utility: Any, masks: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Utilities of ``masks`` (none: an empty array, without calling the utility)."""
    if masks.shape[0] == 0:
        return np.zeros(0)
    return np.asarray(utility.evaluate_many(masks), dtype=np.float64)


def border_coalitions(n: int, k: int) -> NDArray[np.bool_]:
    """Every coalition of sizes ``1..k`` and ``n-k..n-1``, as boolean rows."""
    parts = []
    for s in range(1, k + 1):
        members = np.array(list(combinations(range(n), s)), dtype=np.intp)
        masks = np.zeros((members.shape[0], n), dtype=bool)
        np.put_along_axis(masks, members, True, axis=1)
        parts += [masks, ~masks]
    return np.concatenate(parts) if parts else np.zeros((0, n), dtype=bool)


def paired_job(
    semivalue: Semivalue,
    n: int,
    u_empty: float,
    u_full: float,
    surrogate: SurrogateLike,
    known: tuple[NDArray[np.bool_], NDArray[np.float64]] | None = None,
) -> PairedMSRJob:
    """The job for ``u - surrogate`` sampled from the semivalue's own size distribution.

    With ``known`` (every coalition of the outer sizes, see :func:`border_coalitions`, and
    their utilities), those sizes enter exactly and are no longer sampled.
    """
    inner = 1  # the smallest sampled size: one past the enumerated border
    if known is not None and known[0].shape[0]:
        sizes = known[0].sum(axis=1)
        inner = int(np.minimum(sizes, n - sizes).max()) + 1
    sampler = SizeSampler.for_semivalue(semivalue, n, smallest=inner)
    a_in, a_out = coefficients(semivalue, sampler)
    ends_masks = np.array([np.zeros(n, dtype=bool), np.ones(n, dtype=bool)])
    offset = surrogate.values(semivalue) + exact_part(
        semivalue, ends_masks, np.array([u_empty, u_full]), surrogate
    )
    if known is not None:
        offset = offset + exact_part(semivalue, known[0], known[1], surrogate)
    return PairedMSRJob(sampler, a_in, a_out, offset, surrogate)


class SizeMSR:
    """Unbiased maximum-sample-reuse estimates from paired coalitions sampled by size.

    Every evaluation updates every player. Unbiased for any semivalue, but its variance grows
    with the utility's magnitude (no surrogate); ``regression-msr`` removes most of it.
    """

    name: ClassVar[str] = "msr"

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
        u_empty, u_full = ends(utility)
        masks = border_coalitions(n, border_sizes(semivalue, n, budget))
        known = (masks, evaluate_known(utility, masks))
        job = paired_job(semivalue, n, u_empty, u_full, Surrogate.zero(n), known)
        return Plan(job, cost_per_sample=2, fixed_cost=2 + masks.shape[0])
