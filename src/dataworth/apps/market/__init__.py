"""Data markets: provider values, replication-robust values, arrival-order values and payouts.

Providers (the distinct values of ``Dataset.groups``) are the players. Four tools:

- :func:`payouts` splits a budget in proportion to positive value, in whole cents that sum
  exactly to the budget (largest-remainder rounding), and states the rule it used.
- :func:`replication_robust_values` penalises each provider's value by its similarity to the
  other providers' data (Agarwal, Dahleh & Sarkar 2019): ``psi_m = phi_m * exp(-lam * sum_{j != m}
  s_mj)``, so that entering the market again under a second name with a copy (or a lightly
  perturbed copy) of one's data does not pay. ``s_mj`` is the cosine similarity of the two
  providers' data in the feature space of a Gaussian kernel (:func:`provider_similarity`).
- :func:`prepare_market` and :func:`market_payouts` are the pipeline behind ``dataworth market``:
  drop the rows a provider repeats, then (after the caller's valuation) penalise and pay.

Values come from the caller: :func:`dataworth.value` (or :func:`dataworth.api.value_many`) with
``by_group=True`` values the providers, and :func:`dataworth.api.federated_values` values data
that arrives in rounds (Wang et al. 2020: in each round, the exact Shapley value of that round's
participants given everything that arrived before, summed over rounds).

What is where (every public name below is importable from this package):

- :mod:`~dataworth.apps.market.budget_split`: splitting a budget into whole-cent payouts --
  :func:`payouts`, :class:`Payouts`, :func:`budget_cents`, ``MAX_BUDGET_CENTS``,
  ``IF_NO_VALUE``.
- :mod:`~dataworth.apps.market.similarity`: how alike providers' data are --
  :func:`provider_similarity`, :class:`ProviderSimilarity` (and ``BANDWIDTH_RELATIVE``, the
  default kernel bandwidth).
- :mod:`~dataworth.apps.market.replication`: values penalised by similarity --
  :func:`replication_robust_values`, :class:`RobustValues`.
- :mod:`~dataworth.apps.market.dedupe`: dropping rows a provider repeats within its own data --
  :func:`dedupe_within_providers`.
- :mod:`~dataworth.apps.market.pipeline`: the pipeline -- :func:`prepare_market`,
  :class:`MarketData`, :func:`market_payouts`, :class:`MarketResult`.
- :mod:`~dataworth.apps.market.robust`: values robust to noisy replicas and split identities --
  :func:`split_robust_values`, :class:`SplitRobustValues`, :func:`replica_similarity`.
- :mod:`~dataworth.apps.market.mechanism`: the marketplace of Agarwal, Dahleh & Sarkar (2019)
  as a simulation (online price, degraded data, Myerson payments, revenue split) --
  :class:`Marketplace`, :func:`simulate_market`, :class:`MarketSimulation`,
  :func:`split_revenue`.
- :mod:`~dataworth.apps.market._labels`: private helpers shared by the modules above (labels
  as integer codes, values in provider order).

Examples
--------
>>> table = payouts([3.0, 1.0, -2.0], 100, providers=["a", "b", "c"])
>>> [str(a) for a in table.amounts]
['75.00', '25.00', '0.00']
>>> table = payouts([1.0, 1.0, 1.0], 100)
>>> [str(a) for a in table.amounts]
['33.34', '33.33', '33.33']
"""

from __future__ import annotations

from dataworth.apps.market.budget_split import (
    IF_NO_VALUE,
    MAX_BUDGET_CENTS,
    Payouts,
    budget_cents,
    payouts,
)
from dataworth.apps.market.dedupe import dedupe_within_providers
from dataworth.apps.market.mechanism import (
    Marketplace,
    MarketSimulation,
    simulate_market,
    split_revenue,
)
from dataworth.apps.market.pipeline import (
    PENALTIES,
    MarketData,
    MarketResult,
    market_payouts,
    prepare_market,
)
from dataworth.apps.market.replication import RobustValues, replication_robust_values
from dataworth.apps.market.robust import (
    SplitRobustValues,
    replica_similarity,
    split_robust_values,
)
from dataworth.apps.market.similarity import ProviderSimilarity, provider_similarity

__all__ = [
    "IF_NO_VALUE",
    "MAX_BUDGET_CENTS",
    "PENALTIES",
    "MarketData",
    "MarketResult",
    "MarketSimulation",
    "Marketplace",
    "Payouts",
    "ProviderSimilarity",
    "RobustValues",
    "SplitRobustValues",
    "budget_cents",
    "dedupe_within_providers",
    "market_payouts",
    "payouts",
    "prepare_market",
    "provider_similarity",
    "replica_similarity",
    "replication_robust_values",
    "simulate_market",
    "split_revenue",
    "split_robust_values",
]
