"""Arrival-order-aware values: federated Shapley over rounds of data (Wang et al. 2020).

:func:`federated_shapley` values the players of any utility that arrive in rounds: exact Shapley
values within each round, given every earlier round. :func:`dataworth.api.federated_values` does
this for a dataset with a provider and a round per row (``dataworth market --rounds``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dataworth.engine.runner import counting_failures, run_tasks
from dataworth.errors import DataworthError
from dataworth.methods.exact import MAX_PLAYERS, exact_semivalue
from dataworth.methods.weights import shapley_log_weights

__all__ = ["FederatedShapley", "federated_shapley"]


@dataclass(frozen=True, eq=False)
class FederatedShapley:
    """Per-player federated Shapley values (Wang et al. 2020).

    Attributes
    ----------
    values : ndarray of float, shape (n_players,)
        Shapley value of each player within its round, given all earlier rounds.
    round_of : ndarray of int, shape (n_players,)
        Round (0-based position in ``rounds``) of each player.
    start, gains : float, ndarray of float
        ``u(empty)`` and, per round, ``u(everything so far) - u(everything before)``; the
        values of round ``t`` sum to ``gains[t]`` and all values to ``u(all) - u(empty)``.
    n_evaluations, n_failures : int
    """

    values: NDArray[np.float64]
    round_of: NDArray[np.intp]
    start: float
    gains: NDArray[np.float64]
    n_evaluations: int
    n_failures: int = 0


def _evaluate_masks(utility: Any, masks: NDArray[np.bool_]) -> NDArray[np.float64]:
    return np.asarray(utility.evaluate_many(masks), dtype=np.float64)


def federated_shapley(
    rounds: Sequence[ArrayLike],
    utility: Any,
    *,
    n_jobs: int | None = 1,
    chunk_size: int = 256,
) -> FederatedShapley:
    """Exact federated Shapley values: Shapley within each round, given the earlier rounds.

    Round ``t`` has participants ``I_t`` (players of ``utility``) and background ``B_t`` (the
    union of the earlier rounds). Its game is ``U_t(S) = u(B_t + S)`` for ``S`` in ``I_t``, and
    each participant gets its exact Shapley value in that game (all ``2^|I_t|`` subsets). A
    player's federated value is the sum over the rounds it takes part in (Wang et al. 2020,
    "A Principled Approach to Data Valuation for Federated Learning"); here each player is one
    provider's data in one round, so it belongs to exactly one round. Late data that repeats
    what arrived earlier is worth little, unlike plain Shapley, which ignores arrival order.

    Parameters
    ----------
    rounds : sequence of array-like of int
        Player indices arriving in each round, in arrival order; together they must cover every
        player exactly once. At most 20 players per round.
    utility : Utility
        Any utility over players (``n_players``, ``evaluate_many`` of boolean masks).
    n_jobs : int, default=1
        Parallel workers for the evaluations (joblib).

    Examples
    --------
    >>> from dataworth.testing.games import AdditiveGame
    >>> fs = federated_shapley([[2], [0, 1]], AdditiveGame([1.0, 2.0, 3.0]))
    >>> fs.values.round(12).tolist(), fs.gains.round(12).tolist()
    ([1.0, 2.0, 3.0], [3.0, 3.0])
    """
    n = int(utility.n_players)
    round_of = np.full(n, -1, dtype=np.intp)
    members: list[NDArray[np.intp]] = []
    for t, r in enumerate(rounds):
        idx = np.asarray(r, dtype=np.intp).reshape(-1)
        if idx.size == 0:
            raise DataworthError(f"round {t} has no participants; drop empty rounds.")
        if idx.min() < 0 or idx.max() >= n:
            raise DataworthError(f"round {t} names players outside 0..{n - 1}.")
        if np.unique(idx).size != idx.size or (round_of[idx] >= 0).any():
            raise DataworthError(
                f"round {t} repeats a player; each player (one provider's data in one round) "
                "must arrive exactly once."
            )
        if idx.size > MAX_PLAYERS:
            raise DataworthError(
                f"round {t} has {idx.size} participants; exact per-round Shapley values enumerate "
                f"2^k subsets and are limited to {MAX_PLAYERS} per round."
            )
        round_of[idx] = t
        members.append(idx)
    if not members:
        raise DataworthError("rounds is empty; give at least one round.")
    if (round_of < 0).any():
        missing = np.flatnonzero(round_of < 0)[:5].tolist()
        raise DataworthError(f"players {missing} arrive in no round; every player must arrive.")
    values = np.zeros(n)
    gains = np.empty(len(members))
    background = np.zeros(n, dtype=bool)
    start = math.nan
    n_eval = n_fail = 0
    for t, idx in enumerate(members):
        k = idx.size
        codes = np.arange(2**k, dtype=np.int64)
        bits = ((codes[:, None] >> np.arange(k)) & 1).astype(bool)
        masks = np.repeat(background[None, :], codes.size, axis=0)
        masks[:, idx] = bits
        chunks = [masks[s : s + chunk_size] for s in range(0, codes.size, chunk_size)]
        parts = run_tasks(
            counting_failures(_evaluate_masks),
            chunks,
            n_jobs=n_jobs,
            progress=False,
            desc=f"round {t}",
            extra=(utility,),
        )
        u = np.concatenate([p[0] for p in parts])
        n_fail += sum(p[1] for p in parts)
        n_eval += int(u.size)
        values[idx] = exact_semivalue(u, shapley_log_weights(k))
        gains[t] = u[-1] - u[0]
        if t == 0:
            start = float(u[0])
        background[idx] = True
    return FederatedShapley(
        values=values,
        round_of=round_of,
        start=start,
        gains=gains,
        n_evaluations=n_eval,
        n_failures=n_fail,
    )
