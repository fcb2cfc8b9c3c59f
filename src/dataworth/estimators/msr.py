"""Unbiased semivalue estimates from paired coalitions sampled by size (maximum sample reuse).

Every sampled coalition updates every player: with ``T`` drawn by
:class:`~dataworth.estimators.sizes.SizeSampler` and ``r(T) = u(T) - g(T)`` the residual of a
surrogate ``g`` whose semivalue is known exactly (none: ``g = 0``), the vector

    psi_i(T) = r(T) (a_in[|T|] 1[i in T] - a_out[|T|] 1[i not in T])

is an unbiased estimate of the sampled sizes' part of ``phi_i(u - g)``. The empty and full
coalitions are scored once, exactly. A sample is the pair ``(T, N \\ T)`` (two evaluations) and
contributes the mean of its two vectors plus the exact terms and ``phi(g)``; values are the mean
over samples and the standard error is that of a mean of independent samples (Moments), so it
is honest whatever the surrogate. When the budget affords it (:func:`warm_up_pays`), the
coalitions of sizes 1 and ``n - 1`` are scored exactly too, and sampling covers ``2..n-2``.

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
from typing import Any, ClassVar, Protocol

import numpy as np
from numpy.typing import NDArray

from dataworth.engine.moments import Estimate, Moments, State
from dataworth.estimators.plan import Plan
from dataworth.estimators.reducers import reduce_state
from dataworth.estimators.semivalues import Semivalue
from dataworth.estimators.sizes import SizeSampler, coefficients

__all__ = ["PairedMSRJob", "SizeMSR", "Surrogate", "SurrogateLike", "exact_ends"]


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


def exact_ends(
    semivalue: Semivalue, n: int, u_empty: float, u_full: float, surrogate: SurrogateLike
) -> NDArray[np.float64]:
    """The exact contribution of the empty and full coalitions' residuals to every value."""
    w = np.exp(semivalue.log_weights(n))
    ones = np.ones((1, n), dtype=bool)
    r_empty = u_empty - float(surrogate(~ones)[0])
    r_full = u_full - float(surrogate(ones)[0])
    return np.full(n, w[n - 1] * r_full - w[0] * r_empty)


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
    round_size: int = 128
    chunk_size: int = 32

    def estimate(self, state: State) -> Estimate:
        return reduce_state(self.estimator, state)

    def draw(self, rng: np.random.Generator, size: int, n_players: int) -> list[Any]:
        return list(self.sampler.draw(rng, size))

    def process(self, utility: Any, samples: Sequence[Any]) -> State:
        T = np.asarray(samples, dtype=bool)
        both = np.concatenate([T, ~T])
        r = utility.evaluate_many(both) - self.surrogate(both)
        sizes = both.sum(axis=1)
        psi = r[:, None] * np.where(both, self.a_in[sizes][:, None], -self.a_out[sizes][:, None])
        m = T.shape[0]
        vectors = 0.5 * (psi[:m] + psi[m:]) + self.offset
        return {"marginal": Moments.from_samples(vectors)}


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


def singles_and_complements(n: int) -> NDArray[np.bool_]:
    """The ``2 n`` coalitions of sizes 1 and ``n - 1``."""
    eye = np.eye(n, dtype=bool)
    return np.concatenate([eye, ~eye])


def warm_up_pays(n: int, budget: int | None) -> bool:
    """Score sizes 1 and ``n - 1`` exactly (``2 n`` evaluations) when that is at most a tenth
    of the budget: those strata are the noisiest to sample (one player carries a whole
    coalition's weight), and the semivalues that favour small coalitions weigh them most."""
    return n >= 4 and (budget is None or 2 * n * 10 <= budget)


def paired_job(
    semivalue: Semivalue,
    n: int,
    u_empty: float,
    u_full: float,
    surrogate: SurrogateLike,
    known: tuple[NDArray[np.bool_], NDArray[np.float64]] | None = None,
) -> PairedMSRJob:
    """The job for ``u - surrogate`` sampled from the semivalue's own size distribution.

    With ``known`` (the coalitions of sizes 1 and ``n - 1`` and their utilities, see
    :func:`singles_and_complements`), those sizes enter exactly and are no longer sampled.
    """
    inner = 1 if known is None else 2
    sampler = SizeSampler.for_semivalue(semivalue, n, smallest=inner)
    a_in, a_out = coefficients(semivalue, sampler)
    offset = surrogate.values(semivalue) + exact_ends(semivalue, n, u_empty, u_full, surrogate)
    if known is not None:
        offset = offset + exact_part(semivalue, known[0], known[1], surrogate)
    return PairedMSRJob(sampler, a_in, a_out, offset, surrogate)


class SizeMSR:
    """Unbiased maximum-sample-reuse estimates from paired coalitions sampled by size.

    Every evaluation updates every player. Unbiased for any semivalue, but its variance grows
    with the utility's magnitude (no surrogate); ``regression-msr`` removes most of it.
    """

    name: ClassVar[str] = "msr"
    summary: ClassVar[str] = (
        "unbiased maximum sample reuse: paired coalitions drawn by size, each updates every point"
    )
    reference: ClassVar[str] = "Wang & Jia 2023; Witter et al. 2025 (MSR for any semivalue)"
    semivalues: ClassVar[frozenset[str] | None] = None

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
        known = None
        if warm_up_pays(n, budget):
            masks = singles_and_complements(n)
            known = (masks, np.asarray(utility.evaluate_many(masks), dtype=np.float64))
        job = paired_job(semivalue, n, u_empty, u_full, Surrogate.zero(n), known)
        return Plan(job, cost_per_sample=2, fixed_cost=2 + (0 if known is None else 2 * n))
