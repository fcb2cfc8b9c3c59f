"""Leverage SHAP (Musco & Witter 2025): Kernel SHAP's regression, sampled by leverage scores.

Projected onto the efficiency constraint, the Shapley kernel's weighted design matrix has
leverage scores ``C(n, |S|)^-1``: every size carries the same total leverage. Leverage SHAP
therefore draws the size uniformly from ``1..n-1`` (then a uniform subset of that size), in
complementary pairs, and reweights each coalition by ``k(S) / p(S)``, proportional to
``1 / (|S| (n - |S|))``, before the same constrained least-squares solve as
:mod:`~dataworth.estimators.kernel_shap` (same state, same jackknife standard errors).

Differences from the paper: samples are drawn with replacement (the runner streams
independent samples; the paper's Bernoulli sampling without replacement needs the whole
budget up front), so small sizes are not enumerated exhaustively when the budget would cover
them.

Examples
--------
>>> from dataworth.testing.games import AdditiveGame
>>> from dataworth.methods import get_method
>>> r = get_method("shapley")(budget=200, estimator="leverage-shap", random_state=0).fit(
...     AdditiveGame([1.0, 2.0, 3.0])).result_
>>> r.values.round(6).tolist()
[1.0, 2.0, 3.0]
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from dataworth.estimators.kernel_shap import kernel_sizes, regression_plan
from dataworth.estimators.plan import Plan
from dataworth.estimators.semivalues import Semivalue
from dataworth.estimators.sizes import SizeSampler

__all__ = ["LeverageSHAP"]


class LeverageSHAP:
    """Leverage SHAP: sizes drawn uniformly (the leverage scores), kernel-reweighted
    constrained least squares; jackknife standard errors."""

    name: ClassVar[str] = "leverage-shap"

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
        uniform = SizeSampler.for_semivalue(Semivalue.shapley(), n)  # every size equally likely
        weights = np.zeros(n + 1)
        inner = slice(1, n)
        weights[inner] = np.exp(kernel_sizes(n).log_q[inner] - uniform.log_q[inner])
        return regression_plan(self.name, utility, uniform, weights)
