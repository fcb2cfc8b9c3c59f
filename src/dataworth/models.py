"""Models by name, as the command line and ``dataworth.value`` accept them.

Examples
--------
>>> make_model("logistic-regression").max_iter
1000
>>> type(make_model("sklearn.svm.SVC", {"C": 2.0})).__name__
'SVC'
>>> type(default_model([0.5, 1.5])).__name__, default_model_name([0, 1, 1])
('LinearRegression', 'logistic-regression')
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

from dataworth.errors import DataworthError

__all__ = [
    "MODELS",
    "check_params",
    "check_target",
    "default_model",
    "default_model_name",
    "make_model",
]


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


def check_params(model: Any) -> None:
    """Validate ``model``'s parameters as scikit-learn does when fitting, before any work.

    scikit-learn estimators check their parameters only in ``fit``; the batched utilities never
    call it, so an invalid value (``max_iter=2.5``, ``C=-1``) would be accepted on one path and
    refused on the other. Nested estimators (pipeline steps, meta-estimators' ``estimator``) are
    checked too; estimators without scikit-learn's parameter constraints are left alone.

    Raises
    ------
    DataworthError
        Naming the estimator and the parameter.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> check_params(LogisticRegression(max_iter=2.5))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    dataworth.errors.DataworthError: invalid parameters for model LogisticRegression: ...2.5...
    """
    try:
        nested = list(model.get_params(deep=True).values())
    except Exception:  # not scikit-learn-like: nothing to check
        return
    for est in [model, *nested]:
        validate = getattr(est, "_validate_params", None)
        if (
            isinstance(est, type)
            or getattr(est, "_parameter_constraints", None) is None
            or not callable(validate)
        ):
            continue
        try:
            validate()
        except (TypeError, ValueError) as exc:
            raise DataworthError(
                f"invalid parameters for model {type(est).__name__}: {exc}"
            ) from None


def make_model(
    name: str, params: dict[str, Any] | None = None, *, random_state: int | None = None
) -> Any:
    """Build an estimator from a registered name or a dotted class path.

    A dotted path (``sklearn.svm.SVC``, ``mypackage.models.MyClassifier``) imports the named
    module, which runs that module's code, as any Python import does: give only modules you
    trust. The named object must be an estimator class (a class with ``fit`` and ``predict``);
    anything else (a function such as ``os.system``, a module) is refused before it is called.
    ``params`` are then checked as scikit-learn checks them when fitting (:func:`check_params`).

    ``random_state`` is passed to models that accept one (unless ``params`` sets it), so that
    randomised models (trees, forests) are reproducible with the run's seed.

    Raises
    ------
    DataworthError
        For an unknown name, a path that does not import or names no estimator class, and
        invalid parameters.
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
        if not (
            isinstance(factory, type)
            and callable(getattr(factory, "fit", None))
            and callable(getattr(factory, "predict", None))
        ):
            raise DataworthError(
                f"{name!r} is not an estimator class (a class with fit and predict, such as "
                "sklearn.svm.SVC); it was not called."
            )
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
    check_params(model)
    return model


def default_model_name(y: Any = None) -> str:
    """The model used when none is given: ``logistic-regression`` for class labels ``y`` (and
    when ``y`` is None, for callers that need a classifier), ``linear-regression`` for real
    targets."""
    if y is None:
        return "logistic-regression"
    from dataworth.data import is_categorical

    return "logistic-regression" if is_categorical(y) else "linear-regression"


def default_model(
    y: Any = None, params: dict[str, Any] | None = None, *, random_state: int | None = None
) -> Any:
    """The estimator used when none is given (:func:`default_model_name`), built by
    :func:`make_model` with ``params``: ``LogisticRegression(max_iter=1000)`` for class labels,
    ``LinearRegression()`` for real targets."""
    return make_model(default_model_name(y), params, random_state=random_state)


def check_target(model: Any, train: Any) -> None:
    """Refuse a classifier on real-valued targets, or on a single class (``train``: a
    :class:`~dataworth.data.Dataset`)."""
    import numpy as np
    from sklearn.base import is_classifier

    from dataworth.data import is_categorical

    if not is_classifier(model):
        return
    if not is_categorical(train.y):
        raise DataworthError(
            f"target {train.target_name!r} has non-integer values but "
            f"{type(model).__name__} is a classifier; use a regression model "
            "(ridge, linear-regression) or class labels."
        )
    classes = np.unique(train.y)
    if classes.size < 2:
        raise DataworthError(
            f"the training data has a single class ({classes[0].item()!r}) in "
            f"{train.target_name!r}; a classifier needs at least two classes."
        )
