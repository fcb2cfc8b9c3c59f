"""Permutation sampling for any semivalue (Castro et al. 2009; importance weights for others).

One sample is a uniform permutation whose ``n + 1`` prefixes are scored in one call to
``evaluate_prefixes``; see :class:`~dataworth.methods.semivalue.PermutationJob`.

Examples
--------
>>> from dataworth.testing.games import AdditiveGame
>>> from dataworth.estimators.semivalues import Semivalue
>>> Permutation().plan(AdditiveGame([1.0, 2.0]), Semivalue.shapley(), budget=9,
...                    random_state=0, n_jobs=1).samples_within(9)
3
"""

from __future__ import annotations

from typing import Any, ClassVar

from dataworth.estimators.plan import Plan
from dataworth.estimators.semivalues import Semivalue
from dataworth.methods.weights import permutation_importance

__all__ = ["Permutation"]


class Permutation:
    """Uniform permutations, every prefix scored; marginals importance-weighted for
    semivalues other than Shapley."""

    name: ClassVar[str] = "permutation"

    def plan(
        self,
        utility: Any,
        semivalue: Semivalue,
        *,
        budget: int | None,
        random_state: int | None,
        n_jobs: int | None,
    ) -> Plan:
        from dataworth.methods.semivalue import PermutationJob

        n = utility.n_players
        importance = None
        if semivalue.name != "shapley":
            importance = permutation_importance(semivalue.log_weights(n))
        return Plan(PermutationJob(importance=importance), cost_per_sample=n + 1)
