"""The whole market pipeline behind ``dataworth market``: dedupe, value, penalise, pay."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dataworth.apps.market._labels import align_to_providers
from dataworth.apps.market.budget_split import IF_NO_VALUE, Payouts, budget_cents, payouts
from dataworth.apps.market.dedupe import dedupe_within_providers
from dataworth.apps.market.replication import RobustValues, check_lam, replication_robust_values
from dataworth.apps.market.similarity import check_bandwidth
from dataworth.data import Dataset
from dataworth.errors import DataworthError
from dataworth.result import ValuationResult

__all__ = [
    "MarketResult",
    "market_payouts",
]


@dataclass(frozen=True, eq=False)
class MarketResult:
    """What :func:`market_payouts` computed.

    Attributes
    ----------
    table : Payouts
        Provider, value (after the penalty when robust), payout.
    base : ndarray of float
        Values before the penalty (plain group values, or federated values with rounds).
    penalty : ndarray of float or None
        ``exp(-lam * summed similarity)`` when robust.
    valuation : ValuationResult
        The group valuation behind ``base``.
    robust : RobustValues or None
    removed_duplicates : dict
        Provider -> rows dropped as copies of its own rows (robust only).
    rule : str
        How values and payouts were computed, in words.
    """

    table: Payouts
    base: NDArray[np.float64]
    penalty: NDArray[np.float64] | None
    valuation: ValuationResult
    robust: RobustValues | None
    removed_duplicates: dict[str, int] = field(default_factory=dict)
    rule: str = ""


def market_payouts(
    train: Dataset,
    valid: Dataset,
    budget: Any,
    *,
    method: str = "exact-shapley",
    model: Any = None,
    scoring: Any = None,
    robust: bool = True,
    lam: float = 1.0,
    bandwidth: float | None = None,
    rounds: ArrayLike | None = None,
    if_no_value: str = "refuse",
    random_state: int | None = None,
    n_jobs: int | None = 1,
    batched: bool | None = None,
    method_params: dict[str, Any] | None = None,
) -> MarketResult:
    """Value each provider of ``train`` and split ``budget`` among them.

    Steps: with ``robust`` (the default), rows a provider repeats within its own data are
    dropped (:func:`dedupe_within_providers`); the providers are valued as players, with
    ``method`` (default exact Shapley over groups) or, with ``rounds``, by arrival-order-aware
    federated Shapley (:func:`federated_values`); with ``robust``, the values are penalised by
    similarity (:func:`replication_robust_values`); :func:`payouts` splits the budget.

    Parameters
    ----------
    train : Dataset
        With ``groups`` = provider of each row.
    valid : Dataset
        The buyer's valuation data.
    budget : number or str
        Whole cents, ``>= 0``.
    method : str, default="exact-shapley"
        A registered method that can value groups (ignored with ``rounds``).
    robust : bool, default=True
    lam, bandwidth
        See :func:`replication_robust_values`.
    rounds : array-like of shape (n_rows,), optional
        Arrival round of each training row.
    if_no_value : {"refuse", "equal"}
        See :func:`payouts`.
    method_params : dict, optional
        The method's own parameters (e.g. ``{"budget": 200}`` permutations for a Monte Carlo
        method; not to be confused with the money ``budget``).

    Examples
    --------
    >>> from dataworth.datasets import load_dataset
    >>> tr, va = load_dataset("iris").split(0.5, random_state=0)
    >>> tr = tr.replace(groups=np.array(list("abc"))[np.arange(tr.n_samples) % 3])
    >>> m = market_payouts(tr, va, 900)
    >>> sum(m.table.amounts) == 900, m.table.providers.tolist()
    (True, ['a', 'b', 'c'])
    """
    from dataworth.api import federated_values, value
    from dataworth.methods import get_method, parameters_of

    if train.groups is None:
        raise DataworthError("a market needs the provider of every row (a group column).")
    budget_cents(budget)  # fail before any work
    if robust:
        check_lam(lam)
        check_bandwidth(bandwidth)
    if if_no_value not in IF_NO_VALUE:
        raise DataworthError(f"if_no_value must be one of {IF_NO_VALUE}; got {if_no_value!r}.")
    r = None if rounds is None else np.asarray(rounds)
    if r is not None and r.shape != (train.n_samples,):
        raise DataworthError(f"rounds must have one entry per training row ({train.n_samples}).")
    removed: dict[str, int] = {}
    data = train
    if robust:
        data, kept = dedupe_within_providers(train, order=r)
        if kept.size < train.n_samples:
            dropped = np.ones(train.n_samples, dtype=bool)
            dropped[kept] = False
            names, counts = np.unique(np.asarray(train.groups)[dropped], return_counts=True)
            removed = {str(k): int(c) for k, c in zip(names.tolist(), counts, strict=True)}
        if r is not None:
            r = r[kept]
    if r is not None:
        valuation = federated_values(
            data, valid, r, model=model, scoring=scoring, batched=batched, n_jobs=n_jobs
        )
        how = (
            "federated Shapley value (Wang et al. 2020): in each round, exact "
            "Shapley value among that round's providers given all earlier rounds, summed over "
            f"{len(valuation.metadata['rounds'])} rounds"
        )
    else:
        params = dict(method_params or {})
        accepted = parameters_of(get_method(method))
        if "n_jobs" in accepted:
            params.setdefault("n_jobs", n_jobs)
        valuation = value(
            method,
            data,
            valid,
            model=model,
            scoring=scoring,
            by_group=True,
            batched=batched,
            random_state=random_state,
            **params,
        )
        how = f"{method} value of each provider (providers are the players)"
    providers = np.unique(np.asarray(data.groups))
    base = align_to_providers(valuation, providers)
    rv: RobustValues | None = None
    final = base
    if robust:
        rv = replication_robust_values(base, data, lam=lam, bandwidth=bandwidth)
        final = rv.values
        how = f"base value = {how}; {rv.describe()}"
        if removed:
            how += (
                f"; {sum(removed.values())} row(s) repeating a row of the same provider were "
                "dropped before valuing"
            )
    else:
        how = f"value = {how}"
    table = payouts(final, budget, providers=providers, if_no_value=if_no_value)
    return MarketResult(
        table=table,
        base=base,
        penalty=None if rv is None else rv.penalty,
        valuation=valuation,
        robust=rv,
        removed_duplicates=removed,
        rule=f"{how}.\n{table.rule[0].upper()}{table.rule[1:]}",
    )
