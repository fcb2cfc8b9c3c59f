"""Influence-function values (Koh & Liang 2017) for a model utility, in closed form.

The computation lives in :mod:`dataworth.influence`; this module is the valuation method that
``dataworth value --method influence`` and :func:`dataworth.value` run.
"""

from __future__ import annotations

from numbers import Real
from typing import Any, ClassVar

import numpy as np

from dataworth.base import Valuation
from dataworth.errors import DataworthError
from dataworth.influence.base import influence_values
from dataworth.influence.linear import SUPPORTED_LINEAR_MODELS, LinearInfluence
from dataworth.params import Constraint, Interval
from dataworth.result import ValuationResult

__all__ = ["Influence"]


class Influence(Valuation):
    """Influence-function values: ``-I(z, mean valuation loss)`` for every training row.

    A closed form with the exact Hessian of the training objective, for scikit-learn's
    ``LogisticRegression`` (binary or multinomial, L2 penalty), ``LinearRegression`` and
    ``Ridge`` (see :class:`dataworth.influence.LinearInfluence` for the objectives). The model is
    fitted once on all training rows; no refits. The valuation loss is the mean log-loss for
    logistic regression and the mean squared error for regression, whatever the utility's
    ``scoring``. A positive value means the row helps: removing it would raise the valuation
    loss by about ``value / n`` (first order). For PyTorch models use
    :class:`dataworth.influence.TorchInfluence` with :func:`dataworth.influence.influence_values`.

    With ``by_group=True`` the value of a group is the sum of its rows' values (the first-order
    effect of removing the whole group).

    Parameters
    ----------
    damping : float, default=0.0
        Added to every diagonal entry of the Hessian of the mean training objective (Koh &
        Liang's damping term); it regularises a singular or ill-conditioned Hessian.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from dataworth import make_utility
    >>> from dataworth.data import Dataset
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 3))
    >>> y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=40)
    >>> y[0] += 8.0  # a corrupted target
    >>> train = Dataset.from_arrays(X[:25], y[:25])
    >>> valid = Dataset.from_arrays(X[25:], y[25:])
    >>> utility = make_utility(train, valid, model=Ridge(alpha=1.0), batched=False)
    >>> result = Influence().fit(utility).result_
    >>> int(np.argmin(result.values))  # the corrupted row is the most harmful
    0
    """

    name = "influence"
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        **Valuation._parameter_constraints,
        "damping": [Interval(Real, 0, None)],
    }
    exact_fits = True

    def __init__(self, *, damping: float = 0.0) -> None:
        self.damping = damping

    def _fit(self, utility: Any) -> ValuationResult:
        if not all(hasattr(utility, a) for a in ("model", "train", "valid", "player_of_row")):
            raise DataworthError(
                "influence needs a model utility (make_utility(train, valid, model=...)) with a "
                f"model among: {SUPPORTED_LINEAR_MODELS}."
            )
        model = LinearInfluence(
            utility.model, utility.train.X, utility.train.y, damping=self.damping
        )
        row_values = influence_values(model, utility.valid.X, utility.valid.y).values
        values = np.bincount(
            np.asarray(utility.player_of_row), weights=row_values, minlength=utility.n_players
        ).astype(np.float64)
        n = values.size
        return self._result(
            utility,
            values=values,
            stderr=np.zeros(n),
            counts=np.ones(n, dtype=np.int64),
            metadata={
                "loss": "log-loss" if model.kind == "logistic" else "squared",
                "damping": float(self.damping),
                "hessian": model.hessian_method,
                "approximation": "first-order influence (Koh & Liang 2017)",
                "scale": "value = -I(z, mean valuation loss); removing z changes it by ~value/n",
            },
        )
