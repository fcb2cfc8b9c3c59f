"""What an estimator hands the engine: a Monte Carlo job and what its samples cost.

Examples
--------
>>> from dataworth.methods.semivalue import PermutationJob
>>> plan = Plan(PermutationJob(), cost_per_sample=4, fixed_cost=0)
>>> plan.samples_within(10), plan.samples_within(None)
(2, None)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dataworth.engine.moments import State
from dataworth.errors import DataworthError

__all__ = ["Plan"]


@dataclass
class Plan:
    """A job for :func:`~dataworth.engine.runner.run_monte_carlo` and its cost in evaluations.

    Parameters
    ----------
    job : MonteCarloJob
        What the engine runs.
    cost_per_sample : int
        Utility evaluations per sample of ``job`` (a permutation: ``n + 1``; a pair of
        complementary coalitions: 2).
    fixed_cost : int
        Evaluations already spent while planning (the empty and full coalitions, a pilot).
    identity : str
        What, beyond the method's parameters, makes this run (e.g. a hash of a fitted
        surrogate); a checkpoint is resumed only by a run with the same identity.
    metadata : dict
        Recorded in the result (e.g. the surrogate's fit).
    initial : (State, int), optional
        Statistics of samples already scored while planning (their evaluations are in
        ``fixed_cost``), and their number: the run starts from them, and they count among its
        samples.
    unit : {"evaluations", "samples"}
        What the method's budget counts: utility evaluations (the estimators of ``shapley``)
        or samples (the classic methods, whose budgets count permutations, subsets or bags).
    """

    job: Any
    cost_per_sample: int
    fixed_cost: int = 0
    identity: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    unit: str = "evaluations"
    initial: tuple[State, int] | None = None

    def samples_within(self, budget: int | None) -> int | None:
        """The most samples a budget leaves (None: no budget)."""
        if budget is None:
            return None
        if self.unit == "samples":
            return int(budget)
        fresh = max(0, (int(budget) - self.fixed_cost) // self.cost_per_sample)
        return fresh + self.n_initial if fresh else 0

    @property
    def n_initial(self) -> int:
        return 0 if self.initial is None else self.initial[1]

    def evaluations(self, n_samples: int) -> int:
        """Evaluations spent by a run that counted ``n_samples`` samples (initial ones too)."""
        return self.fixed_cost + self.cost_per_sample * (int(n_samples) - self.n_initial)

    def check_budget(self, budget: int | None, estimator: str) -> None:
        """Refuse a budget that leaves no sample after the fixed cost."""
        if budget is not None and self.samples_within(budget) == 0:
            minimum = self.fixed_cost + self.cost_per_sample
            raise DataworthError(
                f"a budget of {budget} utility evaluations is too small for estimator "
                f"{estimator!r} on this game: it needs at least {minimum}."
            )
