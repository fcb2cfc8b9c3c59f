"""Robustness to dropping a little data: the Approximate Maximum Influence Perturbation (AMIP).

:func:`amip` finds an approximately minimal set of rows whose removal flips the sign of a
regression coefficient, removes (or reverses) its significance, or moves it by a given amount,
and verifies the set by refitting. The weighted estimators (OLS, logit, 2SLS) and their
closed-form influence live in :mod:`~dataworth.apps.robustness.estimators`; the search in
:mod:`~dataworth.apps.robustness.amip`.
"""

from dataworth.apps.robustness.amip import (
    CHANGES,
    DEFAULT_MAX_FRACTION,
    MODELS,
    MODES,
    RobustnessResult,
    amip,
    make_estimator,
    parse_change,
)
from dataworth.apps.robustness.estimators import (
    COV_TYPES,
    OLS,
    EstimationError,
    Estimator,
    Fit,
    Logit,
    SingularDesignError,
    TwoSLS,
    add_intercept,
)

__all__ = [
    "CHANGES",
    "COV_TYPES",
    "DEFAULT_MAX_FRACTION",
    "MODELS",
    "MODES",
    "OLS",
    "EstimationError",
    "Estimator",
    "Fit",
    "Logit",
    "RobustnessResult",
    "SingularDesignError",
    "TwoSLS",
    "add_intercept",
    "amip",
    "make_estimator",
    "parse_change",
]
