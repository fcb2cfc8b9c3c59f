"""Stratified SVARM: semivalues without marginal contributions (Kolpaczki et al., AAAI 2024).

Player ``i``'s value splits into strata by coalition size ``l``:

    phi_i = sum_l C(n-1, l) w(l) (E[u(S + i)] - E[u(S)]),   S uniform of size l without i

(``C(n-1, l) w(l) = 1/n`` for Shapley). The "plus" stratum ``(i, l)`` is the mean of ``u`` over
coalitions of size ``l + 1`` that contain ``i``, the "minus" stratum ``(i, l)`` that over
coalitions of size ``l`` that do not. One evaluated coalition ``A`` of size ``s`` therefore
updates the plus stratum ``(i, s - 1)`` of every ``i`` in ``A`` and the minus stratum ``(i, s)``
of every ``i`` outside it: every evaluation updates every player.

**Warm-up.** When the budget allows (``2n + 2`` evaluations and one per sampled size after),
the coalitions of sizes 0, 1, n-1 and n are scored exactly, which fixes the strata of sizes
0, 1, n-2 and n-1 (``plus``: 0, n-2, n-1; ``minus``: 0, 1, n-1); the rest of the budget samples
sizes ``2..n-2``. Otherwise only the empty and full coalitions are exact and sizes
``1..n-1`` are sampled. Sizes are drawn from the paper's distribution (proportional to
``1/min(s, n-s)``, with its special middle size for even ``n``), scaled for a semivalue
other than Shapley by the weight ``C(n-1, s-1) w(s-1) + C(n-1, s) w(s)`` its two strata carry;
a coalition is then uniform among those of its size.

**One row of uniforms per coalition.** Coalition ``j`` of a draw comes from row ``j`` of
``n + 1`` uniforms alone (its size by inverse CDF of the first, its players from the order of
the rest), so that drawing ``k`` then ``m`` coalitions gives those of drawing ``k + m``: the
runner cuts rounds at other places after a resume, under a budget cap or a time limit, and
must see the same samples. Sizes are therefore independent draws, not spread systematically
over a round (one uniform offset per round would tie every size of a round to the round's
length); each stratum mean stays unbiased, only its count varies a little more.

Each stratum mean is unbiased whenever it has a sample; the standard error is that of a sum of
independent stratum means, ``sqrt(sum_l weight_l^2 var_{i,l} / count_{i,l})``. Strata with
fewer than two samples, or none, are handled as :mod:`dataworth.estimators.strata` says (pooled
variance; pooled mean, biased, only where a player has no sample in a stratum).

Examples
--------
>>> from dataworth.testing.games import AdditiveGame
>>> from dataworth.estimators.semivalues import Semivalue
>>> plan = StratifiedSVARM().plan(AdditiveGame([1.0, 2.0, 3.0, 4.0, 5.0]), Semivalue.shapley(),
...                               budget=40, random_state=0, n_jobs=1)
>>> plan.fixed_cost, plan.cost_per_sample
(12, 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from dataworth.engine.moments import Estimate, Moments, State
from dataworth.estimators.plan import Plan
from dataworth.estimators.semivalues import Semivalue
from dataworth.estimators.strata import constant_moments, reduce_strata
from dataworth.samplers import choose_by_uniform, subsets_by_keys

__all__ = ["SVARMJob", "StratifiedSVARM", "svarm_size_distribution"]


def svarm_size_distribution(n: int, sizes: NDArray[np.int64]) -> NDArray[np.float64]:
    """The paper's probabilities of coalition sizes, restricted to ``sizes`` and normalised.

    Proportional to ``1 / min(s, n - s)``; for even ``n`` the middle size gets
    ``1 / (n log n)`` against ``(n log n - 1) / (2 s n log n (H_{n/2-1} - 1))`` for the others
    (as in the paper; for ``n < 6`` the harmonic term vanishes and all sizes get ``1/min``).
    """
    s = sizes.astype(np.float64)
    p = 1.0 / np.minimum(s, n - s)
    if n % 2 == 0 and n >= 6:
        harmonic = float(np.sum(1.0 / np.arange(1, n // 2)))
        nlogn = n * np.log(n)
        p = (nlogn - 1.0) / (2.0 * np.minimum(s, n - s) * nlogn * (harmonic - 1.0))
        p[sizes == n // 2] = 1.0 / nlogn
    out: NDArray[np.float64] = p / p.sum()
    return out


@dataclass
class SVARMJob:
    """Coalitions by size; each updates the plus and minus strata of every player."""

    sizes: NDArray[np.int64]  # the sampled coalition sizes
    p: NDArray[np.float64]  # their probabilities
    mass: NDArray[np.float64]  # C(n-1, l) w(l), l = 0..n-1
    exact: NDArray[np.float64]  # the exact strata's part of every value
    estimator: str = "strata"
    state_keys: tuple[str, ...] = ()
    chunk_size: int = 128

    def __post_init__(self) -> None:
        keys = [f"plus:{s - 1}" for s in self.sizes] + [f"minus:{s}" for s in self.sizes]
        self.state_keys = ("mass", "exact", *keys)

    def estimate(self, state: State) -> Estimate:
        return reduce_strata(state)

    def draw(self, rng: np.random.Generator, size: int, n_players: int) -> list[Any]:
        # one row per coalition (see the module): its size, then its players
        uniforms = rng.random((size, n_players + 1))
        sizes = self.sizes[choose_by_uniform(self.p, uniforms[:, 0])]
        return list(subsets_by_keys(uniforms[:, 1:], sizes))

    def process(self, utility: Any, samples: Sequence[Any]) -> State:
        A = np.asarray(samples, dtype=bool)
        u = np.asarray(utility.evaluate_many(A), dtype=np.float64)
        m = A.shape[0]
        size_of = A.sum(axis=1)
        state: State = {
            "mass": constant_moments(self.mass, m),
            "exact": constant_moments(self.exact, m),
        }
        for s in self.sizes:
            rows = size_of == s
            state[f"plus:{s - 1}"] = Moments.from_indicator(A[rows], u[rows])
            state[f"minus:{s}"] = Moments.from_indicator(~A[rows], u[rows])
        return state


def warm_up(utility: Any, mass: NDArray[np.float64]) -> NDArray[np.float64]:
    """Score the coalitions of sizes 0, 1, n-1 and n (``2n + 2``) in one call; the weighted
    exact strata (plus: 0, n-2, n-1; minus: 0, 1, n-1) of every player."""
    n = utility.n_players
    eye = np.eye(n, dtype=bool)
    masks = np.concatenate([np.zeros((1, n), bool), np.ones((1, n), bool), eye, ~eye])
    u = np.asarray(utility.evaluate_many(masks), dtype=np.float64)
    empty, full, single, but_one = u[0], u[1], u[2 : n + 2], u[n + 2 :]
    plus_0, minus_0 = single, empty
    plus_last, minus_last = full, but_one
    plus_n2 = (but_one.sum() - but_one) / (n - 1)  # N \ {j}, j != i: size n - 1, with i
    minus_1 = (single.sum() - single) / (n - 1)  # {j}, j != i: size 1, without i
    out: NDArray[np.float64] = (
        mass[0] * (plus_0 - minus_0)
        + mass[n - 1] * (plus_last - minus_last)
        + mass[n - 2] * plus_n2
        - mass[1] * minus_1
    )
    return out


class StratifiedSVARM:
    """Stratified SVARM: strata by player and size, every evaluation updates every player
    (see the module)."""

    name: ClassVar[str] = "stratified-svarm"

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
        warm = n >= 4 and (budget is None or int(budget) >= 2 * n + 2 + (n - 3))
        if warm:
            sizes = np.arange(2, n - 1, dtype=np.int64)
            exact = warm_up(utility, mass)
            fixed = 2 * n + 2
        else:
            sizes = np.arange(1, n, dtype=np.int64)
            ends = np.array([np.zeros(n, bool), np.ones(n, bool)])
            u = np.asarray(utility.evaluate_many(ends), dtype=np.float64)
            exact = np.full(n, mass[n - 1] * u[1] - mass[0] * u[0])
            fixed = 2
        p = svarm_size_distribution(n, sizes)
        if semivalue.name != "shapley":
            p = p * (mass[sizes - 1] + mass[sizes])
            p = p / p.sum()
        job = SVARMJob(sizes, p, mass, exact)
        return Plan(
            job,
            cost_per_sample=1,
            fixed_cost=fixed,
            identity="warm" if warm else "cold",
            metadata={"warm_up": bool(warm)},
        )
