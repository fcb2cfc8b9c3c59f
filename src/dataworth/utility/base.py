"""The utility contract shared by model-based utilities and closed-form test games."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import joblib
import numpy as np
from numpy.typing import ArrayLike, NDArray

from dataworth.errors import DataworthError

__all__ = ["UtilityBase"]


class UtilityBase:
    """A cooperative game over ``n_players`` players: ``u(subset) -> float``.

    Subclasses set ``n_players`` and ``player_names`` and implement :meth:`__call__`; the batch
    methods default to loops over it and are where faster utilities plug in.

    Examples
    --------
    >>> class Count(UtilityBase):
    ...     def __init__(self, n):
    ...         self.n_players, self.player_names = n, np.arange(n)
    ...     def __call__(self, subset):
    ...         return float(self.mask_of(subset).sum())
    >>> Count(3).evaluate_prefixes(np.array([2, 0, 1])).tolist()
    [0.0, 1.0, 2.0, 3.0]
    """

    n_players: int
    player_names: NDArray[Any]
    n_failures: int = 0

    def __call__(self, subset: ArrayLike) -> float:
        raise NotImplementedError

    def mask_of(self, subset: ArrayLike) -> NDArray[np.bool_]:
        """Boolean mask over players for ``subset`` (player indices or a mask)."""
        arr = np.asarray(subset)
        if arr.dtype == bool:
            if arr.shape != (self.n_players,):
                raise DataworthError(f"a subset mask must have {self.n_players} entries.")
            return arr
        mask = np.zeros(self.n_players, dtype=bool)
        mask[arr.astype(np.intp, copy=False)] = True
        return mask

    def evaluate_many(self, subsets: Iterable[ArrayLike]) -> NDArray[np.float64]:
        """Utilities of several subsets."""
        return np.array([self(s) for s in subsets], dtype=np.float64)

    def evaluate_prefixes(
        self,
        order: NDArray[np.intp],
        *,
        truncate_below: float | None = None,
        total: float | None = None,
    ) -> NDArray[np.float64]:
        """Utilities of the prefixes ``order[:k]`` for ``k = 0..len(order)``; for a 2-D ``order``
        (one permutation per row), those of each row.

        With ``truncate_below`` (TMC), once ``|total - u(prefix)| < truncate_below`` the remaining
        prefixes are given the last computed utility without evaluating them. Batched utilities
        train the prefixes of all rows together.
        """
        if np.ndim(order) == 2:
            return np.array(
                [self.evaluate_prefixes(row, truncate_below=truncate_below, total=total)
                 for row in np.asarray(order)]
            ).reshape(len(order), -1)  # fmt: skip
        out = np.empty(order.shape[0] + 1)
        mask = np.zeros(self.n_players, dtype=bool)
        out[0] = self(mask)
        for k, player in enumerate(order, start=1):
            mask[player] = True
            out[k] = self(mask)
            if (
                truncate_below is not None
                and total is not None
                and abs(total - out[k]) < truncate_below
            ):
                out[k + 1 :] = out[k]
                break
        return out

    def fingerprint_parts(self) -> dict[str, str]:
        """Content hashes naming what the utility is made of."""
        try:
            return {"utility": str(joblib.hash(self.__dict__))}
        except Exception:  # unpicklable attributes (lambdas): fall back to their text
            state = sorted((k, repr(v)) for k, v in self.__dict__.items())
            return {"utility": str(joblib.hash((type(self).__qualname__, state)))}

    def fingerprint(self) -> str:
        """A stable content hash of the utility."""
        return str(joblib.hash(sorted(self.fingerprint_parts().items())))
