"""Data Banzhaf by maximum sample reuse (Wang & Jia 2023).

Each sample is one subset with every player in with probability 1/2 and costs one utility
evaluation; it updates every player at once: phi_i = mean(u(S) : i in S) - mean(u(S) : i not in S).
The update is one matrix product per chunk of samples, never a Python loop over players.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from dataworth.base import MonteCarloValuation
from dataworth.engine.moments import Estimate, Moments, State
from dataworth.engine.runner import ROUND_SIZE
from dataworth.engine.stopping import Stopping
from dataworth.estimators import ESTIMATORS, plan_semivalue
from dataworth.estimators.plan import Plan
from dataworth.estimators.reducers import reduce_state
from dataworth.estimators.semivalues import Semivalue
from dataworth.params import Constraint, Options
from dataworth.result import ValuationResult
from dataworth.samplers import draw_uniform_subsets

__all__ = ["MSRBanzhaf", "MSRJob"]


@dataclass
class MSRJob:
    """Uniform subsets; moments of u over samples with and without each player."""

    estimator: str = "difference"
    state_keys: tuple[str, ...] = ("in", "out")
    chunk_size: int = 32

    def estimate(self, state: State) -> Estimate:
        return reduce_state(self.estimator, state)

    def draw(self, rng: np.random.Generator, size: int, n_players: int) -> list[Any]:
        return list(draw_uniform_subsets(rng, size, n_players))

    def process(self, utility: Any, samples: Sequence[Any]) -> State:
        masks = np.asarray(samples, dtype=bool)
        u = utility.evaluate_many(masks)
        return {"in": Moments.from_indicator(masks, u), "out": Moments.from_indicator(~masks, u)}


class MSRBanzhaf(MonteCarloValuation):
    """Data Banzhaf values with the maximum-sample-reuse estimator.

    Parameters
    ----------
    budget : int or None, default=1000
        Utility evaluations (with the default estimator, one sampled subset each).
    estimator : str, default="msr"
        ``"msr"``: uniform subsets, the difference of the mean utility with and without each
        point (Wang & Jia). Or another of :data:`dataworth.estimators.ESTIMATORS`, e.g.
        ``"regression-msr"`` (a fitted surrogate's exact Banzhaf values, corrected without bias).
    stop, random_state, n_jobs, progress, checkpoint, resume
        See :class:`~dataworth.base.MonteCarloValuation`.

    Examples
    --------
    >>> from dataworth.testing.games import AdditiveGame
    >>> r = MSRBanzhaf(budget=200, random_state=0).fit(AdditiveGame([1.0, 0.0])).result_
    >>> bool(abs(r.values[0] - 1.0) < 4 * r.stderr[0] + 1e-9)
    True
    """

    name = "banzhaf"
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        **MonteCarloValuation._parameter_constraints,
        "estimator": [Options(ESTIMATORS)],
    }

    def __init__(
        self,
        budget: int | None = 1000,
        *,
        estimator: str = "msr",
        stop: Stopping | None = None,
        random_state: int | None = None,
        n_jobs: int | None = 1,
        round_size: int = ROUND_SIZE,
        progress: bool | None = None,
        checkpoint: str | Path | None = None,
        resume: bool = False,
    ) -> None:
        self.budget = budget
        self.estimator = estimator
        self.stop = stop
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.round_size = round_size
        self.progress = progress
        self.checkpoint = checkpoint
        self.resume = resume

    def _job(self, utility: Any) -> MSRJob:
        return MSRJob()

    def _plan(self, utility: Any) -> Plan:
        if self.estimator == "msr":  # the classic: one subset per evaluation
            return super()._plan(utility)
        return plan_semivalue(
            self.estimator,
            utility,
            Semivalue.banzhaf(),
            budget=self.budget,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )

    def _fit(self, utility: Any) -> ValuationResult:
        result = super()._fit(utility)
        n_nan = int(np.isnan(result.values).sum())
        if n_nan:  # a point in every sampled subset, or in none: no difference to estimate
            what = "groups" if result.kind == "group" else "points"
            warnings.warn(
                f"banzhaf: {n_nan} of {len(result)} {what} were in every sampled subset or in "
                f"none of the {result.metadata.get('n_updates')}; their value is NaN. Raise the "
                "budget.",
                stacklevel=3,
            )
        return result
