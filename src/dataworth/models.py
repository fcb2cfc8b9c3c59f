"""Models by name, as the command line and ``dataworth.value`` accept them.

Examples
--------
>>> make_model("logistic-regression").max_iter
1000
>>> type(make_model("sklearn.svm.SVC", {"C": 2.0})).__name__
'SVC'
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

from dataworth.errors import DataworthError

__all__ = ["MODELS", "make_model"]


def _sk(path: str, **defaults: Any) -> Callable[..., Any]:
    module, cls = path.rsplit(".", 1)

    def factory(**params: Any) -> Any:
        return getattr(import_module(module), cls)(**{**defaults, **params})

    factory.__doc__ = path
    return factory


#: name -> factory(**params)
MODELS: dict[str, Callable[..., Any]] = {
    "logistic-regression": _sk("sklearn.linear_model.LogisticRegression", max_iter=1000),
    "knn": _sk("sklearn.neighbors.KNeighborsClassifier"),
    "decision-tree": _sk("sklearn.tree.DecisionTreeClassifier"),
    "random-forest": _sk("sklearn.ensemble.RandomForestClassifier"),
    "gaussian-nb": _sk("sklearn.naive_bayes.GaussianNB"),
    "ridge": _sk("sklearn.linear_model.Ridge"),
    "linear-regression": _sk("sklearn.linear_model.LinearRegression"),
}


def make_model(
    name: str, params: dict[str, Any] | None = None, *, random_state: int | None = None
) -> Any:
    """Build an estimator from a registered name or a dotted class path.

    ``random_state`` is passed to models that accept one (unless ``params`` sets it), so that
    randomised models (trees, forests) are reproducible with the run's seed.
    """
    params = dict(params or {})
    if name in MODELS:
        factory = MODELS[name]
    elif "." in name:
        module, _, cls = name.rpartition(".")
        try:
            factory = getattr(import_module(module), cls)
        except (ImportError, AttributeError):
            raise DataworthError(
                f"cannot import model class {name!r}; check the dotted path "
                "(e.g. sklearn.svm.SVC) and that its package is installed."
            ) from None
        if not callable(factory):
            raise DataworthError(f"{name!r} is not a class.")
    else:
        raise DataworthError(
            f"unknown model {name!r}; choose one of: {', '.join(MODELS)}, "
            "or give a dotted class path such as sklearn.svm.SVC."
        )
    try:
        model = factory(**params)
    except TypeError as exc:
        raise DataworthError(f"invalid parameters for model {name!r}: {exc}") from None
    if not (hasattr(model, "fit") and hasattr(model, "predict")):
        raise DataworthError(f"{name!r} is not an estimator with fit and predict.")
    if (
        random_state is not None
        and "random_state" not in params
        and "random_state" in getattr(model, "get_params", dict)()
    ):
        model.set_params(random_state=random_state)
    return model
