"""The watermark-removal study (Jia et al., CVPR 2021): value a training set that carries a
trigger set, then remove the lowest-valued rows and see whether the watermark goes."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dataworth.apps.attacks import DEFAULT_WATERMARK_FRACTIONS, WatermarkStudy, watermark_removal
from dataworth.data import Dataset, is_categorical
from dataworth.errors import DataworthError
from dataworth.experiments._valuing import fast_values, self_influence_values
from dataworth.models import default_model
from dataworth.result import ValuationResult

__all__ = ["watermark_study"]


def watermark_study(
    train: Dataset,
    valid: Dataset,
    test: Dataset,
    trigger_indices: Any,
    values: Mapping[str, ValuationResult | Any] | None = None,
    *,
    methods: Sequence[str] = ("knn-shapley", "data-oob"),
    model: Any = None,
    influence_model: Any = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    self_influence: bool = True,
    fractions: Sequence[float] = DEFAULT_WATERMARK_FRACTIONS,
    n_random: int = 3,
    random_state: int | None = None,
    n_jobs: int | None = 1,
) -> WatermarkStudy:
    """How well low values flag a trigger set, and whether removing them removes the watermark.

    Values the rows (unless ``values`` are given) and measures with
    :func:`dataworth.apps.attacks.watermark_removal`: for every method, the AUROC of ``-value``
    as a detector of the trigger points; then, for each fraction, the lowest-valued rows are
    removed (ties in row order, NaN last), the model is retrained, and its accuracy on the
    trigger set (the watermark) and on the held-out ``test`` set is measured, next to removing
    as many rows at random. Jia et al. (CVPR 2021): a good method drives the trigger accuracy to
    chance at a small fraction while the test accuracy holds.

    Parameters
    ----------
    train : Dataset
        Training rows including the trigger set (from :func:`add_trigger_set`).
    valid : Dataset
        Clean valuation rows (no triggers).
    test : Dataset
        Clean held-out rows, for the clean accuracy.
    trigger_indices : array of int
        Positions of the trigger points in ``train``.
    values : dict of str to ValuationResult or array, optional
        Values of the rows of ``train``, computed any way; when given, ``methods`` is not run.
    methods : sequence of str, default=("knn-shapley", "data-oob")
        Registered methods run with :func:`dataworth.api.value_many` (the fast defaults of
        ``dataworth clean``).
    model : estimator, optional
        The watermarked model, retrained after every removal and used by the model-based
        methods. It should memorise its training data (1-nearest neighbour, a random forest, a
        wide network); default: ``KNeighborsClassifier(n_neighbors=1)``.
    influence_model : estimator, optional
        The logistic regression behind ``"influence"`` and the self-influence (default
        ``LogisticRegression(max_iter=1000)``): influence needs a twice-differentiable model.
    params : dict, optional
        Per-method parameters.
    self_influence : bool, default=True
        Also score ``-self_influence`` of ``influence_model`` (points the model can fit only by
        bending around them score high).
    fractions : sequence of float
        Increasing fractions in [0, 1) of the rows to remove.
    n_random : int, default=3
        Draws of the random-removal reference.
    random_state : int, optional
    n_jobs : int, default=1
        Passed to the valuation methods.
    """
    from sklearn.neighbors import KNeighborsClassifier

    if not is_categorical(train.y):
        raise DataworthError("watermark_study needs class labels.")
    for name, ds in (("valid", valid), ("test", test)):
        if ds.n_features != train.n_features:
            raise DataworthError(
                f"{name} has {ds.n_features} features; train has {train.n_features}."
            )
    model = KNeighborsClassifier(n_neighbors=1) if model is None else model
    influence_model = default_model(train.y) if influence_model is None else influence_model
    named: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    if values is not None:
        named.update(values)
        seconds.update((str(k), float("nan")) for k in values)
    else:
        if not methods:
            raise DataworthError("give values or at least one method.")
        common: dict[str, Any] = {"params": params, "random_state": random_state, "n_jobs": n_jobs}
        for name in methods:  # influence needs a differentiable model
            chosen = influence_model if name == "influence" else model
            result = fast_values([name], train, valid, chosen, **common)[name]
            named[name] = result
            seconds[name] = float(result.metadata.get("seconds", np.nan))
    if self_influence:
        t0 = time.perf_counter()
        named["self-influence"] = self_influence_values(influence_model, train)
        seconds["self-influence"] = time.perf_counter() - t0
    return watermark_removal(
        named,
        train,
        test,
        trigger_indices,
        model,
        fractions=fractions,
        n_random=n_random,
        random_state=random_state,
        seconds=seconds,
    )
