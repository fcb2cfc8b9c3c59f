"""Semivalues estimated from permutations: Shapley, truncated Monte Carlo Shapley, Beta Shapley.

One sample is a uniform permutation; all its prefixes are evaluated in one call to the utility's
``evaluate_prefixes`` (batched utilities make that one batched fit), and the marginal of the
player at position k is weighted by ``w(k) n C(n-1, k)`` (1 for Shapley), which makes the mean
over permutations an unbiased estimate of any semivalue (see docs/conventions.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from dataworth.base import MonteCarloValuation
from dataworth.engine.moments import Estimate, Moments, State
from dataworth.engine.runner import ROUND_SIZE
from dataworth.engine.stopping import Stopping
from dataworth.estimators import ESTIMATORS, plan_semivalue
from dataworth.estimators.plan import Plan
from dataworth.estimators.reducers import reduce_state
from dataworth.estimators.semivalues import Semivalue
from dataworth.methods.weights import beta_log_weights, permutation_importance
from dataworth.params import Constraint, Interval, Options
from dataworth.samplers import draw_antithetic_permutations, draw_permutations

__all__ = ["BetaShapley", "PermutationJob", "PermutationShapley", "TMCShapley"]


@dataclass
class PermutationJob:
    """Weighted marginals along uniform permutations.

    Parameters
    ----------
    importance : ndarray or None
        Weight of the marginal at each position (None: all 1, i.e. Shapley).
    truncate_below : float or None
        TMC: stop scanning a permutation once ``|total - u(prefix)| < truncate_below``.
    total : float or None
        u(N), needed for truncation.
    antithetic : bool
        Draw permutations in antithetic pairs.
    """

    importance: NDArray[np.float64] | None = None
    truncate_below: float | None = None
    total: float | None = None
    antithetic: bool = False
    estimator: str = "mean"
    state_keys: tuple[str, ...] = ("marginal",)
    chunk_size: int = 4

    def estimate(self, state: State) -> Estimate:
        return reduce_state(self.estimator, state)

    def draw(self, rng: np.random.Generator, size: int, n_players: int) -> list[Any]:
        sampler = draw_antithetic_permutations if self.antithetic else draw_permutations
        return list(sampler(rng, size, n_players))

    def process(self, utility: Any, samples: Sequence[Any]) -> State:
        n = utility.n_players
        orders = np.asarray(samples, dtype=np.intp).reshape(len(samples), n)
        # every permutation's prefixes in one batched call (batched utilities train them together)
        steps = np.diff(
            utility.evaluate_prefixes(orders, truncate_below=self.truncate_below, total=self.total),
            axis=1,
        )
        if self.importance is not None:
            steps = steps * self.importance
        marginals = np.empty((len(samples), n))
        marginals[np.arange(len(samples))[:, None], orders] = steps
        return {"marginal": Moments.from_samples(marginals)}


class PermutationShapley(MonteCarloValuation):
    """Data Shapley by permutation sampling (Castro et al. 2009; Ghorbani & Zou 2019).

    Parameters
    ----------
    budget : int or None, default=100
        Number of permutations (each costs n + 1 utility evaluations).
    antithetic : bool, default=False
        Sample permutations in antithetic pairs (a permutation and its reverse).
    stop, random_state, n_jobs, progress, checkpoint, resume
        See :class:`~dataworth.base.MonteCarloValuation`.

    Examples
    --------
    >>> from dataworth.testing.games import AdditiveGame
    >>> game = AdditiveGame([1.0, 2.0, 3.0])
    >>> PermutationShapley(budget=5, random_state=0).fit(game).result_.values.round(6).tolist()
    [1.0, 2.0, 3.0]
    """

    name = "permutation-shapley"
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        **MonteCarloValuation._parameter_constraints,
        "antithetic": [Options([True, False])],
    }

    def __init__(
        self,
        budget: int | None = 100,
        *,
        antithetic: bool = False,
        stop: Stopping | None = None,
        random_state: int | None = None,
        n_jobs: int | None = 1,
        round_size: int = ROUND_SIZE,
        progress: bool | None = None,
        checkpoint: str | Path | None = None,
        resume: bool = False,
    ) -> None:
        self.budget = budget
        self.antithetic = antithetic
        self.stop = stop
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.round_size = round_size
        self.progress = progress
        self.checkpoint = checkpoint
        self.resume = resume

    def _job(self, utility: Any) -> PermutationJob:
        return PermutationJob(antithetic=self.antithetic)


class TMCShapley(MonteCarloValuation):
    """Truncated Monte Carlo Shapley (Ghorbani & Zou 2019).

    While scanning a permutation, once ``|u(N) - u(prefix)| < tolerance * |u(N)|`` the remaining
    marginals are set to 0 without evaluating them. This saves fits but biases values towards 0
    for points late in permutations; the bias is recorded in the result's notes.

    Parameters
    ----------
    budget : int or None, default=100
        Number of permutations.
    tolerance : float, default=0.01
        Relative truncation tolerance.
    stop, random_state, n_jobs, progress, checkpoint, resume
        See :class:`~dataworth.base.MonteCarloValuation`.

    Examples
    --------
    >>> from dataworth.testing.games import AdditiveGame
    >>> r = TMCShapley(budget=4, random_state=0).fit(AdditiveGame([1.0, 1.0])).result_
    >>> r.values.tolist()
    [1.0, 1.0]
    """

    name = "tmc-shapley"
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        **MonteCarloValuation._parameter_constraints,
        "tolerance": [Interval(Real, 0, None)],
    }

    def __init__(
        self,
        budget: int | None = 100,
        *,
        tolerance: float = 0.01,
        stop: Stopping | None = None,
        random_state: int | None = None,
        n_jobs: int | None = 1,
        round_size: int = ROUND_SIZE,
        progress: bool | None = None,
        checkpoint: str | Path | None = None,
        resume: bool = False,
    ) -> None:
        self.budget = budget
        self.tolerance = tolerance
        self.stop = stop
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.round_size = round_size
        self.progress = progress
        self.checkpoint = checkpoint
        self.resume = resume

    def _job(self, utility: Any) -> PermutationJob:
        total = float(utility(np.ones(utility.n_players, dtype=bool)))
        return PermutationJob(truncate_below=self.tolerance * abs(total), total=total)

    def _notes(self) -> list[str]:
        return ["truncation biases values towards 0 for points scanned after the score saturates"]


class BetaShapley(MonteCarloValuation):
    """Beta Shapley (Kwon & Zou 2022) from importance-weighted permutation marginals.

    Weights follow docs/conventions.md: ``w(k) = B(k + beta, n - 1 - k + alpha) / B(alpha, beta)``;
    the default Beta(16, 1) emphasises small coalitions, Beta(1, 1) is Shapley.

    Parameters
    ----------
    budget : int or None, default=100
        Number of permutations with the default estimator; utility evaluations with any other.
    alpha, beta : float, default=16, 1
    estimator : str, default="permutation"
        Importance-weighted permutations, or another of :data:`dataworth.estimators.ESTIMATORS`
        supporting Beta semivalues (``msr`` and ``regression-msr`` draw coalition sizes from
        the semivalue's own weights instead).
    stop, random_state, n_jobs, progress, checkpoint, resume
        See :class:`~dataworth.base.MonteCarloValuation`.

    Examples
    --------
    >>> from dataworth.testing.games import AdditiveGame
    >>> r = BetaShapley(budget=400, random_state=0).fit(AdditiveGame([2.0, 2.0])).result_
    >>> bool(abs(r.values - 2.0).max() < 4 * r.stderr.max())  # unbiased, with honest error bars
    True
    """

    name = "beta-shapley"
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        **MonteCarloValuation._parameter_constraints,
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "beta": [Interval(Real, 0, None, closed="neither")],
        "estimator": [Options(ESTIMATORS)],
    }

    def __init__(
        self,
        budget: int | None = 100,
        *,
        alpha: float = 16.0,
        beta: float = 1.0,
        estimator: str = "permutation",
        stop: Stopping | None = None,
        random_state: int | None = None,
        n_jobs: int | None = 1,
        round_size: int = ROUND_SIZE,
        progress: bool | None = None,
        checkpoint: str | Path | None = None,
        resume: bool = False,
    ) -> None:
        self.budget = budget
        self.alpha = alpha
        self.beta = beta
        self.estimator = estimator
        self.stop = stop
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.round_size = round_size
        self.progress = progress
        self.checkpoint = checkpoint
        self.resume = resume

    def _job(self, utility: Any) -> PermutationJob:
        importance = permutation_importance(
            beta_log_weights(utility.n_players, float(self.alpha), float(self.beta))
        )
        return PermutationJob(importance=importance)

    def _plan(self, utility: Any) -> Plan:
        if self.estimator == "permutation":  # the classic: the budget counts permutations
            return super()._plan(utility)
        return plan_semivalue(
            self.estimator,
            utility,
            Semivalue.beta_shapley(self.alpha, self.beta),
            budget=self.budget,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )
