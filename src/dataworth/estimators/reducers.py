"""How a Monte Carlo state becomes values, standard errors and counts.

A result names its reducer (``ValuationResult.estimator``), so that two partial results can be
merged state by state and reduced again.

Examples
--------
>>> import numpy as np
>>> from dataworth.engine.moments import Moments
>>> state = {"marginal": Moments.from_samples(np.array([[1.0], [3.0]]))}
>>> reduce_state("mean", state)[0].tolist()
[2.0]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dataworth.engine.moments import Estimate, State
from dataworth.estimators.strata import reduce_strata

__all__ = ["REDUCERS", "reduce_state"]


def _mean(state: State) -> Estimate:
    m = state["marginal"]
    values = np.where(m.count > 0, m.mean, np.nan)
    return values, m.stderr, m.count


def _difference(state: State) -> Estimate:
    inside, outside = state["in"], state["out"]
    ok = (inside.count > 0) & (outside.count > 0)
    values = np.where(ok, inside.mean - outside.mean, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = inside.variance / np.maximum(inside.count, 1) + outside.variance / np.maximum(
            outside.count, 1
        )
    return values, np.sqrt(var), inside.count + outside.count


def _kernel_regression(state: State) -> Estimate:
    from dataworth.estimators.kernel_shap import kernel_regression_estimate  # imports this

    return kernel_regression_estimate(state)


#: "mean": the mean of per-sample value vectors (weighted marginals, or any unbiased per-sample
#: estimate); "difference": the mean utility of samples with each player minus that of samples
#: without it (MSR Banzhaf); "strata": per-player strata by coalition size
#: (:mod:`dataworth.estimators.strata`); "kernel-regression": Kernel SHAP's regression from
#: grouped Gram moments (:mod:`dataworth.estimators.kernel_shap`).
REDUCERS: dict[str, Callable[[State], Estimate]] = {
    "mean": _mean,
    "difference": _difference,
    "strata": reduce_strata,
    "kernel-regression": _kernel_regression,
}


def reduce_state(reducer: str, state: State) -> Estimate:
    """Values, standard errors and counts from a state, by the reducer named ``reducer``."""
    return REDUCERS[reducer](state)
