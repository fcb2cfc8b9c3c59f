"""The one-call façade: ``dataworth.value(method, train, ...)`` returns a ValuationResult.

Examples
--------
>>> from dataworth import value
>>> from dataworth.datasets import load_dataset
>>> train, valid = load_dataset("iris").split(0.3, random_state=0)
>>> r = value("knn-shapley", train, valid, k=5)
>>> len(r) == train.n_samples
True
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import is_classifier

from dataworth import models
from dataworth.data import Dataset, is_categorical
from dataworth.errors import DataworthError
from dataworth.methods import get_method, parameters_of
from dataworth.result import ValuationResult
from dataworth.utility.model import ModelUtility

__all__ = ["check_values", "default_model", "make_utility", "value"]


def default_model(train: Dataset, random_state: int | None = None) -> Any:
    """The model for ``train``'s target when none is given
    (:func:`dataworth.models.default_model`)."""
    return models.default_model(train.y, random_state=random_state)


def check_target(model: Any, train: Dataset) -> None:
    """Refuse a classifier on real-valued targets, or on a single class."""
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


def check_values(result: ValuationResult) -> ValuationResult:
    """Apply the NaN rule to a finished valuation, and return ``result`` unchanged.

    A run whose values are all NaN is an error; in a partly NaN run a warning (a ``note:`` line
    on the command line) says how many values are NaN. Data-OOB's own warning about points never
    out of bag already counts its NaNs, so it is not repeated.

    Raises
    ------
    DataworthError
        When every value is NaN.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = check_values(ValuationResult(np.array([1.0, np.nan, 0.5])))
    >>> str(caught[0].message)[:27]
    '1 of 3 values are NaN (writ'
    """
    nan = int(np.isnan(result.values).sum())
    n = len(result)
    what = "groups" if result.kind == "group" else "rows"
    method = result.method or "the method"
    if n and nan == n:
        never_oob = result.metadata.get("n_never_oob") == n
        why = (
            "no point was ever out of bag; raise the budget (more bootstrap bags)"
            if never_oob
            else "the scores of the trained models on the valuation set were NaN; check that "
            "the scoring is defined on the valuation set and on the model's predictions"
        )
        raise DataworthError(f"every value is NaN ({method} on {n} {what}): {why}.")
    if nan and result.metadata.get("n_never_oob") != nan:
        warnings.warn(
            f"{nan} of {n} values are NaN (written as nan, ranked last): {method} could not "
            "estimate them (NaN scores on the valuation set, or too few samples).",
            UserWarning,
            stacklevel=2,
        )
    return result


def make_utility(
    train: Dataset,
    valid: Dataset,
    *,
    model: Any = None,
    scoring: Any = None,
    by_group: bool = False,
    default_score: float = 0.0,
    catch_errors: bool = False,
    batched: bool | None = None,
    device: str = "auto",
) -> ModelUtility:
    """A utility for ``model`` on ``train``/``valid``, after checking the model suits the target.

    Parameters
    ----------
    batched : bool or None, default=None
        ``None``: train many subsets at once (:class:`BatchedUtility`) when the model and scoring
        allow it (logistic regression, ridge, linear regression, Gaussian naive Bayes), else one
        scikit-learn fit at a time. ``False``: always one fit at a time. ``True``: batched, or a
        :class:`DataworthError` saying why it is not possible.
    device : str, default="auto"
        Where batched logistic regression trains: ``"auto"`` (a GPU through PyTorch when one is
        available, else numpy), ``"numpy"``, ``"torch"`` (CPU) or ``"cuda[:N]"``; see
        :class:`~dataworth.utility.batched.BatchedUtility`.
    """
    model = models.default_model(train.y) if model is None else model
    check_target(model, train)
    kwargs: dict[str, Any] = {
        "scoring": scoring,
        "default_score": default_score,
        "catch_errors": catch_errors,
        "by_group": by_group,
    }
    # ModelUtility itself chooses the batched trainer (a BatchedUtility) when it can
    utility: ModelUtility = ModelUtility(
        model, train, valid, batched=batched, device=device, **kwargs
    )
    return utility


def value(
    method: str,
    train: Dataset,
    valid: Dataset | None = None,
    *,
    model: Any = None,
    scoring: Any = None,
    by_group: bool = False,
    default_score: float = 0.0,
    catch_errors: bool = False,
    batched: bool | None = None,
    device: str = "auto",
    valid_fraction: float = 0.2,
    random_state: int | None = None,
    **params: Any,
) -> ValuationResult:
    """Value the rows (or groups) of ``train`` with a registered method.

    Parameters
    ----------
    method : str
        A name from ``dataworth.methods.METHODS`` (e.g. ``"tmc-shapley"``).
    train, valid : Dataset
        Training data and valuation data; without ``valid``, ``valid_fraction`` of ``train`` is
        split off (stratified, with ``random_state``) and only the rest is valued.
    model : estimator, optional
        Defaults to logistic regression for class labels, linear regression otherwise.
    scoring, by_group, default_score, catch_errors
        See :class:`~dataworth.utility.model.ModelUtility`.
    batched, device
        See :func:`make_utility`.
    random_state : int, optional
        Seed for the split and the method.
    **params
        The method's own parameters (e.g. ``budget``, ``k``, ``n_jobs``).

    Raises
    ------
    DataworthError
        For invalid settings (checked before any work: the method's parameters, the model's, a
        scoring undefined on the valuation set), and when every value is NaN
        (:func:`check_values`; a partly NaN result comes with a warning counting them).
    """
    cls = get_method(method)
    accepted = parameters_of(cls)
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise DataworthError(
            f"{method} does not take parameter(s) {', '.join(unknown)}; it takes: "
            f"{', '.join(sorted(accepted)) or 'none'}."
        )
    if valid is None:
        train, valid = train.split(valid_fraction, random_state=random_state)
    if "random_state" in accepted:
        params["random_state"] = random_state
    utility = make_utility(
        train,
        valid,
        model=model,
        scoring=scoring,
        by_group=by_group,
        default_score=default_score,
        catch_errors=catch_errors,
        batched=(False if cls.exact_fits else None) if batched is None else batched,
        device=device,
    )
    return check_values(cls(**params).fit(utility).result_)
