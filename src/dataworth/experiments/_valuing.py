"""How the experiments value: :func:`dataworth.api.value_many` with the fast defaults of
``dataworth clean`` (:data:`dataworth.apps.clean.DEFAULT_METHOD_PARAMS`), convergence warnings
of the many small fits silenced."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.exceptions import ConvergenceWarning

from dataworth.api import value_many
from dataworth.apps.clean import DEFAULT_METHOD_PARAMS
from dataworth.data import Dataset
from dataworth.result import ValuationResult

__all__ = ["fast_values", "self_influence_values"]


def fast_values(
    methods: Sequence[str],
    train: Dataset,
    valid: Dataset,
    model: Any = None,
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    scoring: Any = None,
    random_state: int | None = None,
    n_jobs: int | None = 1,
) -> dict[str, ValuationResult]:
    """Each method's values of ``train`` on ``valid`` (``params`` over the fast defaults;
    ``n_jobs`` for the methods that take it); ``metadata["seconds"]`` is each one's wall time."""
    own = {m: {**DEFAULT_METHOD_PARAMS.get(m, {}), **(params or {}).get(m, {})} for m in methods}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return value_many(
            list(methods),
            train,
            valid,
            params=own,
            model=model,
            scoring=scoring,
            random_state=random_state,
            n_jobs=n_jobs,
        )


def self_influence_values(model: Any, train: Dataset) -> NDArray[np.float64]:
    """``-self_influence`` of ``model`` (a closed-form influence model: logistic regression,
    ridge, least squares) fitted on ``train``: points the model fits only by bending around them
    score low."""
    from dataworth.influence import LinearInfluence, self_influence

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return np.asarray(-self_influence(LinearInfluence(model, train.X, train.y)), np.float64)
