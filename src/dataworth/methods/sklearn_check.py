"""How far batched training is from scikit-learn's own fits, on a few subsets of a run.

The exact methods (leave-one-out, exact Shapley, least core) train in batches by default
(:class:`~dataworth.utility.batched.BatchedUtility`). Ridge, linear regression and naive Bayes
give scikit-learn's answers to rounding; logistic regression is solved to its optimum, while
scikit-learn's default lbfgs stops at ``tol=1e-4``, so a prediction at a decision boundary can
differ. :func:`sklearn_difference` refits a small sample of the subsets a run evaluated (the
full set and a few random ones) with scikit-learn and records the largest absolute utility
difference in the result's metadata, with a note when it is above :data:`TOLERANCE`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from dataworth.utility.batched import BatchedUtility
from dataworth.utility.model import ModelUtility

__all__ = ["N_RANDOM", "TOLERANCE", "sklearn_difference"]

#: Random subsets refitted with scikit-learn besides the full set.
N_RANDOM = 16

#: A utility difference above rounding: anything larger is a changed prediction (for accuracy,
#: at least one valuation row) or a solver stopped short of the optimum.
TOLERANCE = 1e-6


def sklearn_difference(
    utility: Any,
    masks: NDArray[np.bool_],
    utilities: NDArray[np.float64],
    *,
    full: NDArray[np.bool_] | None = None,
    full_utility: float | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Metadata and notes comparing a batched run with scikit-learn's fits.

    ``masks`` (k, n_players) are candidate subsets the run evaluated, with their batched
    ``utilities``; the full set (``full``, ``full_utility``) is always checked when given, and
    :data:`N_RANDOM` candidates drawn with a fixed seed (the run's values do not depend on it).
    Returns ``({}, [])`` for a utility that is not batched. The metadata holds
    ``batched_vs_sklearn_max_diff`` (the largest absolute difference) and
    ``batched_vs_sklearn_subsets`` (how many subsets were refitted); a note says when the
    difference is above :data:`TOLERANCE`. A subset scikit-learn fails on is skipped.
    """
    if not isinstance(utility, BatchedUtility):
        return {}, []
    checks: list[tuple[NDArray[np.bool_], float]] = []
    if full is not None and full_utility is not None:
        checks.append((full, float(full_utility)))
    if masks.shape[0]:
        rng = np.random.default_rng(0)
        picked = rng.choice(masks.shape[0], size=min(N_RANDOM, masks.shape[0]), replace=False)
        checks.extend((masks[i], float(utilities[i])) for i in sorted(picked))
    failures = utility.n_failures
    diffs = []
    for mask, batched in checks:
        try:
            reference = ModelUtility.__call__(utility, mask)  # one scikit-learn fit
        except Exception:  # a check, never a reason to lose the run
            continue
        if np.isfinite(reference) and np.isfinite(batched):
            diffs.append(abs(reference - batched))
    utility.n_failures = failures  # the check's own failures are not the run's
    if not diffs:
        return {}, []
    largest = float(max(diffs))
    metadata = {"batched_vs_sklearn_max_diff": largest, "batched_vs_sklearn_subsets": len(diffs)}
    notes = []
    if largest > TOLERANCE:
        notes.append(
            f"batched training differs from scikit-learn's own fits by up to {largest:.3g} in "
            f"utility on {len(diffs)} refitted subsets (it solves {type(utility.model).__name__} "
            "to the optimum; scikit-learn stops at its tolerance); use --no-batch "
            "(batched=False) for scikit-learn's fits bit for bit."
        )
    return metadata, notes
