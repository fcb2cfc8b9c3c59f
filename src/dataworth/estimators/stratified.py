"""Stratified marginal sampling with Neyman allocation across coalition sizes.

After Maleki et al. 2013 and Castro et al. 2017: player ``i``'s value is
``sum_l C(n-1, l) w(l) E[u(S + i) - u(S)]`` over uniform ``S`` of size ``l`` without ``i``, and
each ``(i, l)`` is a stratum whose mean is estimated from sampled marginals (a sample is one
marginal, two evaluations, scored in blocks with ``S`` and ``S + i`` in one call).

**Exact ends.** When the budget allows, the strata ``l = 0`` and ``l = n - 1`` (one coalition
each) are scored exactly: ``2n + 2`` evaluations.

**Allocation (decided in** ``plan`` **, so that it is deterministic given the seed and
independent of** ``n_jobs`` **).** A pilot of a few marginals per sampled size (at most a fifth
of the budget, 4 per size at most, from a seed of its own) estimates the standard deviation
``sigma_l`` of the marginals of each size, pooled over players (per-player pilots would cost
``n^2`` strata). Samples are then allocated to size ``l`` in proportion to
``C(n-1, l) w(l) (sigma_l + 0.1 mean(sigma))`` (Neyman, with a floor so that no size starves
on a noisy pilot) and equally across players. The pilot's marginals are not reused, so the
allocation never depends on the samples it weighs. Each sample's stratum ``(player, size)`` is
drawn independently with those probabilities, and its coalition is uniform within the stratum.

**One row of uniforms per sample.** Sample ``j`` of a draw comes from row ``j`` of ``n + 1``
uniforms alone (its stratum by inverse CDF of the first, ``S`` from the order of the rest), so
that drawing ``k`` then ``m`` samples gives those of drawing ``k + m``: the runner cuts rounds
at other places after a resume, under a budget cap or a time limit, and must see the same
samples. Strata are therefore not visited systematically across a round (a spread with one
offset per round would depend on the round's length); the allocation holds in expectation,
each stratum mean stays unbiased, and only the counts vary a little more.

Each stratum mean is unbiased when sampled; the standard error is
``sqrt(sum_l weight_l^2 var_{i,l} / count_{i,l})``. Strata with fewer than two samples or none
(small budgets: ``n (n - 2)`` strata) are handled as :mod:`dataworth.estimators.strata` says.

Examples
--------
>>> from dataworth.testing.games import AdditiveGame
>>> from dataworth.estimators.semivalues import Semivalue
>>> plan = Stratified().plan(AdditiveGame([1.0, 2.0, 3.0, 4.0]), Semivalue.shapley(),
...                          budget=200, random_state=0, n_jobs=1)
>>> plan.cost_per_sample, plan.fixed_cost
(2, 26)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import joblib
import numpy as np
from numpy.typing import NDArray

from dataworth.engine.moments import Estimate, Moments, State
from dataworth.estimators.plan import Plan
from dataworth.estimators.semivalues import Semivalue
from dataworth.estimators.strata import constant_moments, reduce_strata
from dataworth.samplers import choose_by_uniform, subsets_by_keys

__all__ = ["MarginalJob", "Stratified"]

#: Most pilot marginals per sampled size.
PILOT_PER_SIZE = 4
#: Most share of the budget the pilot may take.
PILOT_SHARE = 0.2


def draw_marginals(
    keys: NDArray[np.float64], players: NDArray[np.int64], sizes: NDArray[np.int64]
) -> NDArray[np.bool_]:
    """Rows ``[S, i one-hot]`` (``2n`` columns): ``S`` the ``sizes[j]`` players other than
    ``players[j]`` with the smallest uniform ``keys[j]``, so uniform of its size without ``i``."""
    m, n = keys.shape
    keys = keys.copy()
    keys[np.arange(m), players] = 2.0  # i ranks last, never in S
    S = subsets_by_keys(keys, sizes)
    one_hot = np.zeros((m, n), bool)
    one_hot[np.arange(m), players] = True
    return np.concatenate([S, one_hot], axis=1)


def marginals(utility: Any, rows: NDArray[np.bool_]) -> NDArray[np.float64]:
    """``u(S + i) - u(S)`` of rows from :func:`draw_marginals`, in one call."""
    n = rows.shape[1] // 2
    S, one_hot = rows[:, :n], rows[:, n:]
    u = np.asarray(utility.evaluate_many(np.concatenate([S, S | one_hot])), dtype=np.float64)
    out: NDArray[np.float64] = u[S.shape[0] :] - u[: S.shape[0]]
    return out


@dataclass
class MarginalJob:
    """Marginals by (player, size) stratum, allocated by ``alloc`` (see the module)."""

    sizes: NDArray[np.int64]  # sampled sizes l
    alloc: NDArray[np.float64]  # probability of each size
    mass: NDArray[np.float64]
    exact: NDArray[np.float64]
    estimator: str = "strata"
    state_keys: tuple[str, ...] = ()
    chunk_size: int = 64

    def __post_init__(self) -> None:
        self.state_keys = ("mass", "exact", *(f"marginal:{k}" for k in self.sizes))

    def estimate(self, state: State) -> Estimate:
        return reduce_strata(state)

    def draw(self, rng: np.random.Generator, size: int, n_players: int) -> list[Any]:
        n = n_players
        # one row per sample (see the module): its stratum, then the order of the players
        uniforms = rng.random((size, n + 1))
        strata = choose_by_uniform(np.repeat(self.alloc / n, n), uniforms[:, 0])
        sizes, players = self.sizes[strata // n], strata % n
        return list(draw_marginals(uniforms[:, 1:], players, sizes))

    def process(self, utility: Any, samples: Sequence[Any]) -> State:
        rows = np.asarray(samples, dtype=bool)
        n = rows.shape[1] // 2
        d = marginals(utility, rows)
        size_of = rows[:, :n].sum(axis=1)
        one_hot = rows[:, n:]
        m = rows.shape[0]
        state: State = {
            "mass": constant_moments(self.mass, m),
            "exact": constant_moments(self.exact, m),
        }
        for k in self.sizes:
            sel = size_of == k
            state[f"marginal:{k}"] = Moments.from_indicator(one_hot[sel], d[sel])
        return state


class Stratified:
    """Stratified marginals by player and size, Neyman allocation across sizes from a pilot
    (see the module)."""

    name: ClassVar[str] = "stratified"

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
        mass = semivalue.size_mass(n)
        exact_ends = n >= 3 and (budget is None or int(budget) >= 2 * n + 2 + 2 * (n - 2))
        if exact_ends:
            sizes = np.arange(1, n - 1, dtype=np.int64)
            eye = np.eye(n, dtype=bool)
            masks = np.concatenate([np.zeros((1, n), bool), np.ones((1, n), bool), eye, ~eye])
            u = np.asarray(utility.evaluate_many(masks), dtype=np.float64)
            exact = mass[0] * (u[2 : n + 2] - u[0]) + mass[n - 1] * (u[1] - u[n + 2 :])
            fixed = 2 * n + 2
        else:
            sizes = np.arange(n, dtype=np.int64)
            exact = np.zeros(n)
            fixed = 0
        per_size = PILOT_PER_SIZE
        if budget is not None:
            per_size = min(per_size, int(PILOT_SHARE * (int(budget) - fixed)) // (2 * sizes.size))
        weight = mass[sizes]
        pilot: dict[str, Any] = {"pilot_per_size": 0}
        if per_size >= 2:
            rng = np.random.default_rng(np.random.SeedSequence(random_state).spawn(1)[0])
            pilot_sizes = np.repeat(sizes, per_size)
            players = rng.integers(0, n, pilot_sizes.size)
            keys = rng.random((pilot_sizes.size, n))
            d = marginals(utility, draw_marginals(keys, players, pilot_sizes))
            sigma = d.reshape(sizes.size, per_size).std(axis=1, ddof=1)
            alloc = weight * (sigma + 0.1 * sigma.mean() + 1e-300)
            fixed += 2 * pilot_sizes.size
            pilot = {"pilot_per_size": per_size, "pilot_sigma": sigma.round(6).tolist()}
        else:
            alloc = weight.copy()
        alloc = alloc / alloc.sum()
        job = MarginalJob(sizes, alloc, mass, exact)
        return Plan(
            job,
            cost_per_sample=2,
            fixed_cost=fixed,
            identity=joblib.hash((alloc, exact_ends)),
            metadata={"allocation": alloc.round(6).tolist(), **pilot},
        )
