"""Leave-one-out: phi_i = u(N) - u(N minus i), exactly, with n + 1 utility evaluations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dataworth.base import Valuation
from dataworth.engine.runner import counting_failures, run_tasks
from dataworth.methods.sklearn_check import N_RANDOM, sklearn_difference
from dataworth.result import ValuationResult

__all__ = ["LeaveOneOut"]


def _without_masks(n: int, players: NDArray[np.intp]) -> NDArray[np.bool_]:
    """Masks over ``n`` players of the full set less each of ``players``."""
    masks = np.ones((players.size, n), dtype=bool)
    masks[np.arange(players.size), players] = False
    return masks


def _without(utility: Any, players: NDArray[np.intp]) -> NDArray[np.float64]:
    # one call for the chunk: a batched utility trains its subsets together
    masks = _without_masks(utility.n_players, players)
    return np.asarray(utility.evaluate_many(masks), dtype=np.float64)


class LeaveOneOut(Valuation):
    """Leave-one-out values: how much the score drops without each player.

    Parameters
    ----------
    n_jobs : int, default=1
        Parallel workers.
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
    >>> LeaveOneOut().fit(AdditiveGame([1.0, 2.0])).result_.values.tolist()
    [1.0, 2.0]
    """

    name = "loo"

    chunk_size = 16

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
        n = utility.n_players
        total = float(utility(np.ones(n, dtype=bool)))
        chunks = [np.arange(s, min(s + self.chunk_size, n)) for s in range(0, n, self.chunk_size)]
        parts = run_tasks(
            counting_failures(_without),
            chunks,
            n_jobs=self.n_jobs,
            progress=self.progress,
            desc=self.name,
            extra=(utility,),
            checkpoint=self._task_checkpoint(utility, len(chunks)),
            resume=self.resume,
        )
        without = np.concatenate([p[0] for p in parts])
        metadata: dict[str, Any] = {
            "total_utility": total,
            "n_failures": sum(p[1] for p in parts),
        }
        players = np.random.default_rng(0).choice(n, size=min(N_RANDOM, n), replace=False)
        checked, notes = sklearn_difference(
            utility,
            _without_masks(n, players),
            without[players],
            full=np.ones(n, dtype=bool),
            full_utility=total,
        )
        metadata.update(checked)
        if notes:
            metadata["notes"] = notes
        return self._result(
            utility,
            values=total - without,
            stderr=np.zeros(n),
            counts=np.ones(n, dtype=np.int64),
            metadata=metadata,
        )
