"""The one-call façade: ``dataworth.value(method, train, ...)`` returns a ValuationResult.

Everything that values goes through here (the command line and the experiments do; the
applications in :mod:`dataworth.apps` never do: they take the results). :func:`value` values
with one method, :func:`value_many` with several (one result per method),
:func:`federated_values` values the providers of data arriving in rounds, and :func:`prepare`
returns the method and the utility :func:`value` fits it on.

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

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from dataworth import models
from dataworth.data import Dataset
from dataworth.errors import DataworthError
from dataworth.methods import get_method, parameters_of
from dataworth.models import check_target
from dataworth.result import ValuationResult
from dataworth.utility.model import ModelUtility

if TYPE_CHECKING:
    from dataworth.base import Valuation

__all__ = [
    "check_target",
    "check_values",
    "default_model",
    "federated_values",
    "make_utility",
    "prepare",
    "value",
    "value_many",
    "valuer",
]


def default_model(train: Dataset, random_state: int | None = None) -> Any:
    """The model for ``train``'s target when none is given
    (:func:`dataworth.models.default_model`)."""
    return models.default_model(train.y, random_state=random_state)


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


def _checked_params(method: str, params: Mapping[str, Any]) -> type:
    """The class of ``method``, after refusing parameters it does not take."""
    cls = get_method(method)
    accepted = parameters_of(cls)
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise DataworthError(
            f"{method} does not take parameter(s) {', '.join(unknown)}; it takes: "
            f"{', '.join(sorted(accepted)) or 'none'}."
        )
    return cls


def prepare(
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
) -> tuple[Valuation, ModelUtility]:
    """The method, built with ``params``, and the utility :func:`value` fits it on.

    Every check happens here, before any work (the method's parameters, the model's, the
    scoring). ``batched=None`` trains many subsets at once when the model allows it, except for
    the methods that fit exactly (``exact_fits``: loo, exact-shapley, least-core), which fit one
    scikit-learn model at a time. See :func:`value` for the parameters.
    """
    cls = _checked_params(method, params)
    if valid is None:
        train, valid = train.split(valid_fraction, random_state=random_state)
    if "random_state" in parameters_of(cls):
        params["random_state"] = random_state
    utility = make_utility(
        train,
        valid,
        model=model,
        scoring=scoring,
        by_group=by_group,
        default_score=default_score,
        catch_errors=catch_errors,
        batched=(False if cls.exact_fits else None) if batched is None else batched,  # type: ignore[attr-defined]
        device=device,
    )
    estimator: Valuation = cls(**params)
    return estimator, utility


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
        See :func:`make_utility`; ``batched=None`` is one fit at a time for the methods that
        fit exactly (see :func:`prepare`).
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
    estimator, utility = prepare(
        method,
        train,
        valid,
        model=model,
        scoring=scoring,
        by_group=by_group,
        default_score=default_score,
        catch_errors=catch_errors,
        batched=batched,
        device=device,
        valid_fraction=valid_fraction,
        random_state=random_state,
        **params,
    )
    return check_values(estimator.fit(utility).result_)


def value_many(
    methods: Sequence[str],
    train: Dataset,
    valid: Dataset | None = None,
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    model: Any = None,
    scoring: Any = None,
    by_group: bool = False,
    default_score: float = 0.0,
    catch_errors: bool = False,
    batched: bool | None = None,
    device: str = "auto",
    valid_fraction: float = 0.2,
    random_state: int | None = None,
    **shared: Any,
) -> dict[str, ValuationResult]:
    """Value ``train`` with each of ``methods``: one result per method, in the order given.

    The same data, model, utility settings and seed for every method (:func:`value` for each).
    Without ``valid``, the valuation set is split off once, as :func:`value` does.

    Parameters
    ----------
    methods : sequence of str
        Registered method names, each once.
    params : dict of str to dict, optional
        Each method's own parameters (``{"tmc-shapley": {"budget": 50}}``); a parameter the
        method does not take is an error, as in :func:`value`.
    **shared
        Parameters for every method that takes them (``n_jobs``, ``progress``, ``budget``, ...);
        the others do without. ``params`` wins over them.
    model, scoring, by_group, default_score, catch_errors, batched, device, valid_fraction, \
random_state
        As for :func:`value`.

    Returns
    -------
    dict of str to ValuationResult
        Each result's ``metadata["seconds"]`` holds its wall time.

    Raises
    ------
    DataworthError
        Before any work: no method, a method named twice or unknown, ``params`` for a method
        not in ``methods`` or with a parameter the method does not take. Then as :func:`value`.

    Examples
    --------
    >>> from dataworth.datasets import load_dataset
    >>> train, valid = load_dataset("iris").split(0.3, random_state=0)
    >>> results = value_many(["knn-shapley", "loo"], train, valid, params={"knn-shapley": {"k": 3}})
    >>> list(results), [len(r) for r in results.values()]
    (['knn-shapley', 'loo'], [105, 105])
    """
    names = [str(m) for m in methods]
    if not names:
        raise DataworthError("methods is empty; give at least one valuation method.")
    twice = sorted({m for m in names if names.count(m) > 1})
    if twice:
        raise DataworthError(f"method(s) {', '.join(twice)} named more than once.")
    own = {str(k): dict(v) for k, v in (params or {}).items()}
    stray = sorted(set(own) - set(names))
    if stray:
        raise DataworthError(
            f"params for {', '.join(stray)}, which is not among the methods ({', '.join(names)})."
        )
    run: dict[str, dict[str, Any]] = {}
    for name in names:
        accepted = parameters_of(get_method(name))
        chosen = {k: v for k, v in shared.items() if k in accepted}
        chosen.update(own.get(name, {}))
        _checked_params(name, chosen)
        run[name] = chosen
    if valid is None:
        train, valid = train.split(valid_fraction, random_state=random_state)
    out: dict[str, ValuationResult] = {}
    for name in names:
        started = time.perf_counter()
        result = value(
            name,
            train,
            valid,
            model=model,
            scoring=scoring,
            by_group=by_group,
            default_score=default_score,
            catch_errors=catch_errors,
            batched=batched,
            device=device,
            random_state=random_state,
            **run[name],
        )
        seconds = time.perf_counter() - started
        out[name] = replace(result, metadata={**result.metadata, "seconds": seconds})
    return out


def valuer(
    method: str, *, model: Any = None, **params: Any
) -> Callable[[Dataset, Dataset], ValuationResult]:
    """A function ``(train, valid) -> ValuationResult`` that values with ``method``, ``model``
    and ``params``, for an application that values many small sets of one dataset: the folds
    of the shapley-regression strategy of active learning
    (:class:`dataworth.apps.select.ShapleyRegression`).

    The method's parameters are checked here, once. Each call fits the method on a
    :class:`~dataworth.utility.model.ModelUtility` of its two sets (the model defaults to the
    target's, as in :func:`value`); unlike :func:`value` it does not refuse a set whose rows
    all carry one class (a fold of a rare class leaves one): the caller checks the model
    against the whole data.

    Examples
    --------
    >>> from dataworth.datasets import load_dataset
    >>> train, valid = load_dataset("iris").split(0.3, random_state=0)
    >>> knn = valuer("knn-shapley", k=3)
    >>> len(knn(train, valid)) == train.n_samples
    True
    """
    cls = _checked_params(method, params)
    batched = False if cls.exact_fits else None  # type: ignore[attr-defined]

    def run(train: Dataset, valid: Dataset) -> ValuationResult:
        chosen = models.default_model(train.y) if model is None else model
        utility = ModelUtility(chosen, train, valid, batched=batched)
        estimator: Valuation = cls(**params)
        return check_values(estimator.fit(utility).result_)

    return run


def federated_values(
    train: Dataset,
    valid: Dataset,
    rounds: ArrayLike,
    *,
    model: Any = None,
    scoring: Any = None,
    default_score: float = 0.0,
    catch_errors: bool = False,
    batched: bool | None = None,
    n_jobs: int | None = 1,
) -> ValuationResult:
    """Arrival-order-aware provider values for data that comes in rounds (Wang et al. 2020).

    The utility of a set of rows is the score on ``valid`` of ``model`` trained on them. Round
    ``t`` (rounds taken in increasing order of ``rounds``) is valued given all rows of the
    earlier rounds; a provider's value is the sum of its per-round Shapley values (see
    :func:`dataworth.methods.federated.federated_shapley`). The values sum to
    ``u(all rows) - u(no rows)``.

    Parameters
    ----------
    train : Dataset
        With ``groups`` = provider of each row.
    valid : Dataset
    rounds : array-like of shape (n_rows,)
        Round of each training row (numbers or sortable labels).
    model, scoring, default_score, catch_errors, batched
        See :func:`make_utility`; ``batched`` defaults to one scikit-learn fit at a time, as for
        the exact methods.
    n_jobs : int, default=1
        Parallel workers for the evaluations.

    Returns
    -------
    ValuationResult
        ``kind="group"``, labelled by provider; ``metadata["per_round"][m][t]`` is provider
        ``m``'s value in round ``t`` (``metadata["rounds"]`` lists the round ids).

    Examples
    --------
    >>> from dataworth.datasets import load_dataset
    >>> tr, va = load_dataset("iris").split(0.5, random_state=0)
    >>> tr = tr.replace(groups=np.arange(tr.n_samples) % 3)
    >>> r = federated_values(tr, va, rounds=np.arange(tr.n_samples) % 2)
    >>> r.kind, len(r), bool(abs(r.values.sum() - r.metadata["total_gain"]) < 1e-12)
    ('group', 3, True)
    """
    from dataworth.methods.federated import federated_shapley

    if train.groups is None:
        raise DataworthError("federated values need a provider (group) for every row.")
    r = np.asarray(rounds)
    if r.shape != (train.n_samples,):
        raise DataworthError(
            f"rounds must have one entry per training row ({train.n_samples}); got {r.shape}."
        )
    if r.dtype.kind == "f" and not np.all(np.isfinite(r)):
        bad = np.flatnonzero(~np.isfinite(r))
        raise DataworthError(
            f"rounds has {bad.size} missing or infinite value(s) (first at row {int(bad[0])}); "
            "give every row the round it arrived in."
        )
    providers, p_code = np.unique(np.asarray(train.groups), return_inverse=True)
    if r.dtype.kind == "f" and np.all(r == np.round(r)):
        r = r.astype(np.int64)  # rounds read from a CSV as 1.0, 2.0 are shown as 1, 2
    round_ids, r_code = np.unique(r, return_inverse=True)
    p_code, r_code = p_code.reshape(-1), r_code.reshape(-1)
    T = round_ids.size
    player_code = p_code * T + r_code
    utility = make_utility(
        train.replace(groups=player_code),
        valid,
        model=model,
        scoring=scoring,
        by_group=True,
        default_score=default_score,
        catch_errors=catch_errors,
        batched=False if batched is None else batched,
    )
    codes = np.asarray(utility.player_names, dtype=np.int64)
    player_provider, player_round = np.divmod(codes, T)
    rounds_players = [np.flatnonzero(player_round == t) for t in range(T)]
    fs = federated_shapley(rounds_players, utility, n_jobs=n_jobs)
    per_round = np.zeros((providers.size, T))
    per_round[player_provider, player_round] = fs.values
    values = per_round.sum(axis=1)
    return ValuationResult(
        values=values,
        stderr=np.zeros(providers.size),
        counts=np.bincount(player_provider, minlength=providers.size).astype(np.int64),
        labels=providers,
        method="federated-shapley",
        params={},
        metadata={
            "rounds": round_ids.tolist(),
            "per_round": per_round.tolist(),
            "round_gains": fs.gains.tolist(),
            "start_score": fs.start,
            "total_gain": float(fs.gains.sum()),
            "n_evaluations": fs.n_evaluations,
            "n_failures": fs.n_failures,
            "fingerprint": utility.fingerprint(),
        },
        kind="group",
    )
