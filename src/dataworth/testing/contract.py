"""The public contract every valuation method keeps, checked by :func:`check_valuation`.

Like scikit-learn's common checks: one function runs a method class through what users rely
on, whatever the method — declared parameter constraints, ``clone``, ``get_params`` /
``set_params``, refusal of bad parameters, reproducibility under ``random_state``, values that
do not depend on ``n_jobs``, a budget that is respected, and a result that survives a save and
load. A new method passes it before it is registered.

Examples
--------
>>> from dataworth.methods import get_method
>>> check_valuation(get_method("loo"))  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import tempfile
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np

from dataworth.errors import DataworthError
from dataworth.params import Interval, Options

__all__ = ["check_valuation", "contract_utility"]


def contract_utility() -> Any:
    """A small data utility every method accepts: 10 training rows of two classes, a logistic
    regression, 30 valuation rows (exact methods enumerate the 1,024 subsets quickly)."""
    from sklearn.linear_model import LogisticRegression

    from dataworth.api import make_utility
    from dataworth.data import Dataset

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] + 0.5 * rng.normal(size=40) > 0).astype(int)
    y[:10] = np.arange(10) % 2  # both classes among the training rows
    train, valid = Dataset.from_arrays(X[:10], y[:10]), Dataset.from_arrays(X[10:], y[10:])
    return make_utility(train, valid, model=LogisticRegression(), device="numpy")


def _bad_values(constraints: list[Any]) -> list[Any]:
    """Values each of ``constraints`` refuses (at least a text and a float NaN)."""
    bad: list[Any] = ["not-a-value", float("nan")]
    if None not in constraints:
        bad.append(None)
    for c in constraints:
        if isinstance(c, Interval) and c.left is not None and c.right is None:
            bad.append(c.left - 1)
        if isinstance(c, Interval) and c.kind is Integral:
            bad.append(1.5)
    if any(isinstance(c, Options) for c in constraints):
        bad.append(object())
    return [v for v in bad if not any(v is None if c is None else v in c for c in constraints)]


def _fit(cls: Any, utility: Any, **params: Any) -> Any:
    return cls(**params).fit(utility).result_


def check_valuation(cls: Any, utility: Any = None, *, budget: int = 64) -> None:
    """Run ``cls`` (a valuation class) through the public contract; AssertionError if broken.

    Parameters
    ----------
    cls : type
        A :class:`~dataworth.base.Valuation` subclass.
    utility : utility, optional
        What to value (default :func:`contract_utility`).
    budget : int, default=64
        The budget of sampling methods in the runs.
    """
    from sklearn.base import clone

    from dataworth.result import ValuationResult

    utility = contract_utility() if utility is None else utility
    names = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    constraints: dict[str, list[Any]] = cls._parameter_constraints
    missing = [n for n in names if n not in constraints]
    assert not missing, f"{cls.__name__}: parameters without constraints: {missing}"

    # clone, get_params and set_params, as scikit-learn's
    est = cls()
    twin = clone(est)
    assert type(twin) is cls and twin.get_params() == est.get_params(), cls.__name__
    assert twin.set_params(**est.get_params(deep=False)) is twin
    try:
        twin.set_params(no_such_parameter=1)
    except DataworthError:
        pass
    else:
        raise AssertionError(f"{cls.__name__}.set_params accepted an unknown parameter")

    # every constrained parameter refuses values outside its constraints, naming itself
    for name in names:
        for value in _bad_values(constraints[name]):
            try:
                cls(**{name: value}).fit(utility)
            except DataworthError as exc:
                assert name in str(exc), f"{cls.__name__}({name}={value!r}): {exc}"
            else:
                raise AssertionError(f"{cls.__name__} accepted {name}={value!r}")

    # reproducible, independent of n_jobs, within budget
    run: dict[str, Any] = {}
    if "budget" in names:
        run["budget"] = budget
    if "random_state" in names:
        run["random_state"] = 3
    first = _fit(cls, utility, **run)
    again = _fit(cls, utility, **run)
    np.testing.assert_array_equal(first.values, again.values, err_msg=f"{cls.__name__} seed")
    if "n_jobs" in names:
        two = _fit(cls, utility, **run, n_jobs=2)
        np.testing.assert_array_equal(first.values, two.values, err_msg=f"{cls.__name__} n_jobs")
    assert len(first.values) == utility.n_players
    spent = first.metadata.get("n_evaluations", first.metadata.get("n_updates"))
    if "budget" in names and spent is not None:
        assert spent <= budget, f"{cls.__name__} spent {spent} of a budget of {budget}"

    # the result survives a save and a load
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "result.npz"
        first.save(path)
        loaded = ValuationResult.load(path)
    np.testing.assert_array_equal(loaded.values, first.values)
    np.testing.assert_array_equal(loaded.stderr, first.stderr)
    assert loaded.method == first.method and loaded.params == first.params
