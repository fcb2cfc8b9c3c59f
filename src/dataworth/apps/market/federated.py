"""Arrival-order-aware values: federated Shapley over rounds of data (Wang et al. 2020).

:func:`federated_shapley` values the players of any utility that arrive in rounds;
:func:`federated_values` does this for a dataset with a provider and a round per row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dataworth.apps.market._labels import encode_labels
from dataworth.data import Dataset
from dataworth.errors import DataworthError
from dataworth.result import ValuationResult

__all__ = [
    "FederatedShapley",
    "federated_shapley",
    "federated_values",
]


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
    from dataworth.engine.runner import counting_failures, run_tasks
    from dataworth.methods.exact import MAX_PLAYERS, exact_semivalue
    from dataworth.methods.weights import shapley_log_weights

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
    :func:`federated_shapley`). The values sum to ``u(all rows) - u(no rows)``.

    Parameters
    ----------
    train : Dataset
        With ``groups`` = provider of each row.
    valid : Dataset
    rounds : array-like of shape (n_rows,)
        Round of each training row (numbers or sortable labels).
    model, scoring, default_score, catch_errors, batched
        See :func:`dataworth.api.make_utility`; ``batched`` defaults to one scikit-learn fit at
        a time, as for the exact methods.

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
    from dataworth.api import make_utility

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
    providers, p_code = encode_labels(train.groups)
    if r.dtype.kind == "f" and np.all(np.isfinite(r)) and np.all(r == np.round(r)):
        r = r.astype(np.int64)  # rounds read from a CSV as 1.0, 2.0 are shown as 1, 2
    round_ids, r_code = encode_labels(r)
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
