"""What a noisy valuation set does to the methods that trust it (``dataworth clean --valid-noise``).

Utility-based methods score subsets on the valuation set and inherit its label errors; data-oob
never uses it. :func:`noisy_valuation_comparison` values the training rows twice, with the
valuation set as given and with a share of its labels flipped, and judges both on a held-out
split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dataworth.apps.clean import records_frame
from dataworth.apps.removal import removal_curves
from dataworth.data import Dataset, is_categorical
from dataworth.errors import DataworthError
from dataworth.experiments._valuing import fast_values
from dataworth.ranking import detection_auroc

__all__ = ["NoisyValuationComparison", "noisy_valuation_comparison"]


@dataclass(frozen=True, eq=False)
class NoisyValuationComparison:
    """Each method valued twice: with the valuation set as given and with noisy labels in it.

    Attributes
    ----------
    rows : list of dict
        Per (method, valuation set): ``method``, ``valid`` (``"clean"`` or ``"noisy"``),
        ``auroc`` (detection AUROC, NaN without ground truth), ``score_after_cut`` (held-out
        score after removing the lowest ``fraction``), ``random_after_cut`` (same number of rows
        removed at random, mean over seeds), ``rank_correlation`` (Spearman correlation with the
        same method's values on the clean valuation set; 1 for the clean rows) and ``changed``
        (whether the noisy valuation labels changed the values at all).
    valid_noise, fraction : float
    metric : str
    """

    rows: list[dict[str, Any]]
    valid_noise: float
    fraction: float
    metric: str
    noisy_valid_rows: NDArray[np.intp] = field(default_factory=lambda: np.empty(0, np.intp))

    def records(self) -> list[dict[str, Any]]:
        """The rows (copies)."""
        return [dict(r) for r in self.rows]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "valid_noise": self.valid_noise,
            "fraction": self.fraction,
            "metric": self.metric,
            "noisy_valid_rows": self.noisy_valid_rows.tolist(),
            "rows": self.records(),
        }

    def to_frame(self) -> Any:
        """A pandas DataFrame of the rows (needs pandas)."""
        return records_frame(self.records())


def noisy_valuation_comparison(
    train: Dataset,
    valid: Dataset,
    test: Dataset,
    model: Any = None,
    *,
    methods: Sequence[str] = ("knn-shapley", "data-oob"),
    params: Mapping[str, Mapping[str, Any]] | None = None,
    valid_noise: float = 0.2,
    corrupted: Any = None,
    fraction: float = 0.1,
    n_random: int = 5,
    scoring: Any = None,
    random_state: int | None = None,
    n_jobs: int | None = 1,
) -> NoisyValuationComparison:
    """Compare methods when the valuation set itself has wrong labels.

    Utility-based methods (knn-shapley, tmc-shapley, banzhaf, ...) score subsets on the
    valuation set and inherit its errors; data-oob scores each row on the bootstrap models that
    did not see it and never uses the valuation set. ``valid_noise`` of the valuation labels are
    flipped (:func:`dataworth.datasets.flip_labels`, seeded by ``random_state``), every method
    is run on both valuation sets, and each is judged on the held-out ``test`` split (and by
    detection AUROC against ``corrupted`` when given).

    Parameters
    ----------
    train, valid, test : Dataset
        Class labels; ``test`` is held out (neither trained on nor used for valuation).
    model : estimator, optional
    methods : sequence of str
    params : dict, optional
        Per-method parameters, over the fast defaults of ``dataworth clean``
        (:data:`~dataworth.apps.clean.DEFAULT_METHOD_PARAMS`).
    valid_noise : float, default=0.2
        Fraction of valuation labels flipped.
    corrupted : array, optional
        Ground-truth corrupted training rows, for the AUROC column.
    fraction : float, default=0.1
        Fraction removed (lowest-valued first) for the held-out score.
    n_random, scoring, random_state, n_jobs
        See :func:`~dataworth.apps.removal.removal_curves`.
    """
    from scipy.stats import spearmanr

    from dataworth.datasets import flip_labels

    if not is_categorical(valid.y):
        raise DataworthError(
            "noisy_valuation_comparison flips valuation labels: it needs class labels."
        )
    if not 0 < valid_noise <= 1:
        raise DataworthError(f"valid_noise must lie in (0, 1]; got {valid_noise}.")
    noisy_valid, flipped = flip_labels(valid, valid_noise, random_state=random_state)
    common: dict[str, Any] = {
        "params": params,
        "scoring": scoring,
        "random_state": random_state,
        "n_jobs": n_jobs,
    }
    clean_values = fast_values(methods, train, valid, model, **common)
    noisy_values = fast_values(methods, train, noisy_valid, model, **common)
    fractions = (0.0, float(fraction)) if fraction > 0 else (0.0,)
    named: dict[str, Any] = {}
    for m in methods:
        named[f"{m}|clean"] = clean_values[m]
        named[f"{m}|noisy"] = noisy_values[m]
    curves = removal_curves(
        named,
        train,
        test,
        model,
        fractions=fractions,
        n_random=n_random,
        scoring=scoring,
        random_state=random_state,
        n_jobs=n_jobs,
    )
    j = len(fractions) - 1
    rows: list[dict[str, Any]] = []
    for m in methods:
        a, b = clean_values[m].values, noisy_values[m].values
        changed = not np.array_equal(a, b, equal_nan=True)
        rho = float(spearmanr(a, b, nan_policy="omit").statistic) if changed else 1.0
        for which, vals, corr in (("clean", a, 1.0), ("noisy", b, rho)):
            rows.append(
                {
                    "method": m,
                    "valid": which,
                    "auroc": np.nan if corrupted is None else detection_auroc(vals, corrupted),
                    "score_after_cut": float(curves.lowest[f"{m}|{which}"][j]),
                    "random_after_cut": float(curves.random_mean[j]),
                    "rank_correlation": corr,
                    "changed": changed if which == "noisy" else False,
                }
            )
    return NoisyValuationComparison(
        rows=rows,
        valid_noise=float(valid_noise),
        fraction=float(fraction),
        metric=curves.metric,
        noisy_valid_rows=flipped,
    )
