"""Shapley values by the estimator of your choice; the budget counts utility evaluations.

``get_method("shapley")`` picks among the estimators of :mod:`dataworth.estimators`
(``estimator=``, default ``"auto"``: see :func:`auto_estimator`). Every subset scored counts
against the budget, the empty and full sets and a pilot included, and a run never scores more.
It uses only the utility's ``__call__``, ``evaluate_many`` and ``evaluate_prefixes``, so it
runs on any :class:`~dataworth.utility.base.UtilityBase`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from dataworth.base import MonteCarloValuation
from dataworth.engine.runner import ROUND_SIZE
from dataworth.engine.stopping import Stopping
from dataworth.estimators import ESTIMATORS, plan_semivalue
from dataworth.estimators.plan import Plan
from dataworth.estimators.semivalues import Semivalue
from dataworth.params import Constraint, Options

__all__ = ["DEFAULT_ESTIMATOR", "Shapley", "auto_estimator"]

#: The estimator ``shapley`` uses unless told otherwise: chosen by :func:`auto_estimator`.
DEFAULT_ESTIMATOR = "auto"

#: Up to this many players ``auto`` takes ``regression-msr``, above it ``unbiased-kernel-shap``.
AUTO_SMALL_GAME = 32


def auto_estimator(n_players: int) -> str:
    """The estimator ``estimator="auto"`` takes for a game of ``n_players``.

    From the two benchmarks: on exact games of 12-18 players (groups of rows),
    ``regression-msr`` has the lowest error from 50 n evaluations on
    (``benchmarks/estimators.md``); on real utilities of 200 and 1,000 rows at equal wall
    time, ``unbiased-kernel-shap`` detects flipped labels best among the estimators and agrees
    best between seeds, while ``regression-msr``'s surrogate does not pay
    (``benchmarks/estimators_real.md``). The switch at 32 players lies between the measured
    sizes; it is not itself measured.

    Examples
    --------
    >>> auto_estimator(16), auto_estimator(200)
    ('regression-msr', 'unbiased-kernel-shap')
    """
    return "regression-msr" if n_players <= AUTO_SMALL_GAME else "unbiased-kernel-shap"


class Shapley(MonteCarloValuation):
    """Shapley values with a state-of-the-art estimator; ``budget`` counts utility evaluations.

    Parameters
    ----------
    budget : int or None, default=5000
        Most utility evaluations (every subset scored counts, the empty and full sets too).
    estimator : str, default="auto"
        One of :data:`dataworth.estimators.ESTIMATORS` (``dataworth methods`` lists them), or
        ``"auto"``: :func:`auto_estimator` by the number of players (recorded in
        ``metadata["estimator"]``).
    stop, random_state, n_jobs, progress, checkpoint, resume
        See :class:`~dataworth.base.MonteCarloValuation`.

    Examples
    --------
    >>> from dataworth.testing.games import AdditiveGame
    >>> r = Shapley(budget=200, random_state=0).fit(AdditiveGame([1.0, 2.0, 3.0])).result_
    >>> r.values.round(6).tolist(), r.metadata["n_evaluations"] <= 200
    ([1.0, 2.0, 3.0], True)
    """

    name = "shapley"
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        **MonteCarloValuation._parameter_constraints,
        "estimator": [Options(["auto", *ESTIMATORS])],
    }

    def __init__(
        self,
        budget: int | None = 5000,
        *,
        estimator: str = DEFAULT_ESTIMATOR,
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

    def _plan(self, utility: Any) -> Plan:
        estimator = self.estimator
        if estimator == "auto":
            estimator = auto_estimator(utility.n_players)
        plan = plan_semivalue(
            estimator,
            utility,
            Semivalue.shapley(),
            budget=self.budget,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )
        plan.metadata["estimator"] = estimator
        return plan
