"""Exact semivalues by enumerating every subset (at most 20 players: 2^20 evaluations)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dataworth.base import Valuation
from dataworth.engine.runner import counting_failures, run_tasks
from dataworth.errors import DataworthError
from dataworth.methods.sklearn_check import N_RANDOM, sklearn_difference
from dataworth.methods.weights import shapley_log_weights
from dataworth.result import ValuationResult

__all__ = ["MAX_PLAYERS", "ExactShapley", "all_subset_utilities", "exact_semivalue"]

#: Largest number of players enumerated exactly.
MAX_PLAYERS = 20


def _masks(codes: NDArray[np.int64], n: int) -> NDArray[np.bool_]:
    """Masks over ``n`` players of subset bit codes (bit i set = player i in the subset)."""
    return ((codes[:, None] >> np.arange(n, dtype=np.int64)) & 1).astype(bool)


def _evaluate_codes(utility: Any, codes: NDArray[np.int64]) -> NDArray[np.float64]:
    return np.asarray(utility.evaluate_many(_masks(codes, utility.n_players)), dtype=np.float64)


def all_subset_utilities(
    utility: Any,
    *,
    n_jobs: int | None = 1,
    progress: bool | None = None,
    chunk_size: int = 256,
    checkpoint: Any = None,
    resume: bool = False,
) -> tuple[NDArray[np.float64], int]:
    """u(S) for every subset S, indexed by the bit code of S (bit i set = player i in S).

    Returns the utilities and the number of failed fits (scored ``default_score``).
    """
    n = utility.n_players
    if n > MAX_PLAYERS:
        raise DataworthError(
            f"exact enumeration needs 2^n utility evaluations and is limited to {MAX_PLAYERS} "
            f"players; this has {n}. Use a Monte Carlo method (permutation-shapley, tmc-shapley) "
            "or value groups with --group."
        )
    codes = np.arange(2**n, dtype=np.int64)
    chunks = [codes[s : s + chunk_size] for s in range(0, codes.size, chunk_size)]
    parts = run_tasks(
        counting_failures(_evaluate_codes),
        chunks,
        n_jobs=n_jobs,
        progress=progress,
        desc="all subsets",
        extra=(utility,),
        checkpoint=checkpoint(len(chunks)) if callable(checkpoint) else checkpoint,
        resume=resume,
    )
    return np.concatenate([p[0] for p in parts]), sum(p[1] for p in parts)


def exact_semivalue(
    u: NDArray[np.float64], log_weights: NDArray[np.float64]
) -> NDArray[np.float64]:
    """phi_i = sum_{S not containing i} w(|S|) (u(S + i) - u(S)) from all subset utilities.

    ``u`` is indexed by subset bit code (length 2^n); ``log_weights[k]`` is log w(k).
    """
    n = int(np.log2(u.size))
    codes = np.arange(u.size, dtype=np.int64)
    sizes = np.zeros(u.size, dtype=np.int64)
    for b in range(n):
        sizes += (codes >> b) & 1
    w = np.exp(log_weights)
    values = np.empty(n)
    for i in range(n):
        without = codes[((codes >> i) & 1) == 0]
        values[i] = np.dot(w[sizes[without]], u[without | (1 << i)] - u[without])
    return values


class ExactShapley(Valuation):
    """Exact Shapley values by enumerating all 2^n subsets (n <= 20 players).

    Parameters
    ----------
    n_jobs : int, default=1
        Parallel workers for the 2^n evaluations.
    progress : bool or None, default=None
        Show a progress bar; ``None``: when interactive (a terminal or a notebook).
    checkpoint : str or Path, optional
        Save the finished chunks of utilities here (atomically, every few seconds), so that a
        killed run can resume.
    resume : bool, default=False
        Continue from ``checkpoint`` if it exists: its chunks are not evaluated again.

    Examples
    --------
    >>> from dataworth.testing.games import AdditiveGame
    >>> ExactShapley().fit(AdditiveGame([1.0, 2.0, 3.0])).result_.values.round(12).tolist()
    [1.0, 2.0, 3.0]
    """

    name = "exact-shapley"

    def __init__(
        self,
        *,
        n_jobs: int | None = 1,
        progress: bool | None = None,
        checkpoint: str | Path | None = None,
        resume: bool = False,
    ) -> None:
        self.n_jobs = n_jobs
        self.progress = progress
        self.checkpoint = checkpoint
        self.resume = resume

    def _fit(self, utility: Any) -> ValuationResult:
        u, n_failures = all_subset_utilities(
            utility,
            n_jobs=self.n_jobs,
            progress=self.progress,
            checkpoint=lambda n_tasks: self._task_checkpoint(utility, n_tasks),
            resume=self.resume,
        )
        n = utility.n_players
        values = exact_semivalue(u, shapley_log_weights(n))
        metadata: dict[str, Any] = {"n_evaluations": int(u.size), "n_failures": n_failures}
        # a few proper subsets (codes 1 .. 2^n - 2), drawn without building all 2^n masks
        rng = np.random.default_rng(0)
        codes = rng.choice(u.size - 2, size=min(N_RANDOM, u.size - 2), replace=False) + 1
        checked, notes = sklearn_difference(
            utility,
            _masks(codes.astype(np.int64), n),
            u[codes],
            full=np.ones(n, dtype=bool),
            full_utility=float(u[-1]),
        )
        metadata.update(checked)
        if notes:
            metadata["notes"] = notes
        return self._result(
            utility,
            values=values,
            stderr=np.zeros(n),
            counts=np.full(n, 2 ** (n - 1), dtype=np.int64),
            metadata=metadata,
        )
