"""The market pipeline behind ``dataworth market``: dedupe (:func:`prepare_market`), value (the
caller), penalise and pay (:func:`market_payouts`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dataworth.apps.market._labels import align_to_providers
from dataworth.apps.market.budget_split import IF_NO_VALUE, Payouts, budget_cents, payouts
from dataworth.apps.market.dedupe import dedupe_within_providers
from dataworth.apps.market.replication import RobustValues, check_lam, replication_robust_values
from dataworth.apps.market.robust import SplitRobustValues, split_robust_values
from dataworth.apps.market.similarity import check_bandwidth
from dataworth.data import Dataset
from dataworth.errors import DataworthError
from dataworth.result import ValuationResult

__all__ = [
    "PENALTIES",
    "MarketData",
    "MarketResult",
    "market_payouts",
    "prepare_market",
]


#: The robust values :func:`market_payouts` can use: ``"replication"``
#: (:func:`replication_robust_values`) or ``"split"`` (:func:`split_robust_values`).
PENALTIES: tuple[str, ...] = ("replication", "split")


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
    robust : RobustValues, SplitRobustValues or None
    removed_duplicates : dict
        Provider -> rows dropped as copies of its own rows (robust only).
    rule : str
        How values and payouts were computed, in words.
    """

    table: Payouts
    base: NDArray[np.float64]
    penalty: NDArray[np.float64] | None
    valuation: ValuationResult
    robust: RobustValues | SplitRobustValues | None
    removed_duplicates: dict[str, int] = field(default_factory=dict)
    rule: str = ""


@dataclass(frozen=True, eq=False)
class MarketData:
    """The rows a market values (:func:`prepare_market`).

    Attributes
    ----------
    data : Dataset
        The training rows, with ``groups`` = provider; with ``robust``, rows a provider repeats
        within its own data are dropped.
    rounds : ndarray or None
        Arrival round of each row of ``data`` (None without rounds).
    removed_duplicates : dict
        Provider -> rows dropped as copies of its own rows.
    """

    data: Dataset
    rounds: NDArray[Any] | None = None
    removed_duplicates: dict[str, int] = field(default_factory=dict)


def prepare_market(
    train: Dataset, *, rounds: ArrayLike | None = None, robust: bool = True
) -> MarketData:
    """The rows to value before :func:`market_payouts`: with ``robust`` (the default), rows a
    provider repeats within its own data are dropped (:func:`dedupe_within_providers`, the
    earliest round's copy kept); ``rounds`` follow the rows kept.

    Examples
    --------
    >>> from dataworth.datasets import load_dataset
    >>> tr, _ = load_dataset("iris").split(0.5, random_state=0)
    >>> tr = tr.replace(groups=np.array(list("abc"))[np.arange(tr.n_samples) % 3])
    >>> prepare_market(tr).data.n_samples <= tr.n_samples
    True
    """
    if train.groups is None:
        raise DataworthError("a market needs the provider of every row (a group column).")
    r = None if rounds is None else np.asarray(rounds)
    if r is not None and r.shape != (train.n_samples,):
        raise DataworthError(f"rounds must have one entry per training row ({train.n_samples}).")
    if not robust:
        return MarketData(train, r)
    data, kept = dedupe_within_providers(train, order=r)
    removed: dict[str, int] = {}
    if kept.size < train.n_samples:
        dropped = np.ones(train.n_samples, dtype=bool)
        dropped[kept] = False
        names, counts = np.unique(np.asarray(train.groups)[dropped], return_counts=True)
        removed = {str(k): int(c) for k, c in zip(names.tolist(), counts, strict=True)}
    return MarketData(data, None if r is None else r[kept], removed)


def market_payouts(
    valuation: ValuationResult | ArrayLike,
    data: Dataset | MarketData,
    budget: Any,
    *,
    robust: bool = True,
    lam: float = 1.0,
    bandwidth: float | None = None,
    if_no_value: str = "refuse",
    penalty: str = "replication",
) -> MarketResult:
    """Split ``budget`` among the providers of ``data`` by their values.

    Steps: the providers' values (``valuation``, computed by the caller on the rows of ``data``
    with providers as players: ``dataworth.value(method, data, valid, by_group=True)``, or
    :func:`dataworth.api.federated_values` for data arriving in rounds); with ``robust``, the
    values are penalised by similarity (:func:`replication_robust_values`); :func:`payouts`
    splits the budget. ``dataworth market`` runs :func:`prepare_market`, the valuation and this.

    Parameters
    ----------
    valuation : ValuationResult or array-like
        One value per provider: a group result (matched by provider name), or values in sorted
        provider order.
    data : Dataset or MarketData
        The rows that were valued, with ``groups`` = provider of each row; a
        :class:`MarketData` (from :func:`prepare_market`) also says which duplicates were
        dropped.
    budget : number or str
        Whole cents, ``>= 0``.
    robust : bool, default=True
    lam, bandwidth
        See :func:`replication_robust_values`.
    if_no_value : {"refuse", "equal"}
        See :func:`payouts`.
    penalty : {"replication", "split"}, default="replication"
        With ``robust``: :func:`replication_robust_values` (exact and lightly perturbed copies)
        or :func:`split_robust_values` (also noisy copies and data split across identities;
        ``bandwidth`` is then its wide distribution kernel).

    Examples
    --------
    >>> from dataworth import value
    >>> from dataworth.datasets import load_dataset
    >>> tr, va = load_dataset("iris").split(0.5, random_state=0)
    >>> tr = tr.replace(groups=np.array(list("abc"))[np.arange(tr.n_samples) % 3])
    >>> rows = prepare_market(tr)
    >>> m = market_payouts(value("exact-shapley", rows.data, va, by_group=True), rows, 900)
    >>> sum(m.table.amounts) == 900, m.table.providers.tolist()
    (True, ['a', 'b', 'c'])
    """
    market = data if isinstance(data, MarketData) else MarketData(data)
    rows = market.data
    if rows.groups is None:
        raise DataworthError("a market needs the provider of every row (a group column).")
    budget_cents(budget)  # fail before any work
    if robust:
        check_lam(lam)
        check_bandwidth(bandwidth)
    if penalty not in PENALTIES:
        raise DataworthError(f"penalty must be one of {PENALTIES}; got {penalty!r}.")
    if if_no_value not in IF_NO_VALUE:
        raise DataworthError(f"if_no_value must be one of {IF_NO_VALUE}; got {if_no_value!r}.")
    providers = np.unique(np.asarray(rows.groups))
    base = align_to_providers(valuation, providers)
    result = (
        valuation
        if isinstance(valuation, ValuationResult)
        else ValuationResult(values=base, labels=providers, kind="group")
    )
    if result.method == "federated-shapley":
        how = (
            "federated Shapley value (Wang et al. 2020): in each round, exact "
            "Shapley value among that round's providers given all earlier rounds, summed over "
            f"{len(result.metadata.get('rounds', []))} rounds"
        )
    else:
        how = f"{result.method or 'the'} value of each provider (providers are the players)"
    removed = dict(market.removed_duplicates)
    rv: RobustValues | SplitRobustValues | None = None
    final = base
    if robust:
        if penalty == "split":
            rv = split_robust_values(base, rows, lam=lam, bandwidth=bandwidth)
        else:
            rv = replication_robust_values(base, rows, lam=lam, bandwidth=bandwidth)
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
        valuation=result,
        robust=rv,
        removed_duplicates=removed,
        rule=f"{how}.\n{table.rule[0].upper()}{table.rule[1:]}",
    )
