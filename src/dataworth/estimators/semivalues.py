"""Semivalues as weight functions, and what estimators need from them.

A semivalue gives player ``i`` the value ``phi_i = sum_{S not containing i} w(|S|) (u(S + i) -
u(S))`` with ``sum_k C(n-1, k) w(k) = 1`` (docs/conventions.md). Shapley:
``w(k) = 1 / (n C(n-1, k))``; Banzhaf: ``w(k) = 2^-(n-1)``; Beta(alpha, beta): see
:func:`~dataworth.methods.weights.beta_log_weights`.

Examples
--------
>>> import numpy as np
>>> s = Semivalue.shapley()
>>> np.exp(s.log_weights(3)).round(4).tolist()
[0.3333, 0.1667, 0.3333]
>>> round(s.value_of_size_function(np.array([0.0, 1.0, 3.0, 6.0])), 6)  # h(n) / n
2.0
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dataworth.methods.weights import (
    banzhaf_log_weights,
    beta_log_weights,
    log_binomial,
    shapley_log_weights,
)

__all__ = ["Semivalue"]


@dataclass(frozen=True)
class Semivalue:
    """A semivalue by name: ``"shapley"``, ``"banzhaf"`` or ``"beta"`` with ``alpha``, ``beta``."""

    name: str
    alpha: float = 1.0
    beta: float = 1.0

    @classmethod
    def shapley(cls) -> Semivalue:
        return cls("shapley")

    @classmethod
    def banzhaf(cls) -> Semivalue:
        return cls("banzhaf")

    @classmethod
    def beta_shapley(cls, alpha: float, beta: float) -> Semivalue:
        return cls("beta", float(alpha), float(beta))

    def log_weights(self, n: int) -> NDArray[np.float64]:
        """``log w(k)`` for ``k = 0..n-1``."""
        if self.name == "shapley":
            return shapley_log_weights(n)
        if self.name == "banzhaf":
            return banzhaf_log_weights(n)
        return beta_log_weights(n, self.alpha, self.beta)

    def size_mass(self, n: int) -> NDArray[np.float64]:
        """``C(n-1, k) w(k)`` for ``k = 0..n-1``: the share of a player's value that comes from
        coalitions of size ``k`` (it sums to 1)."""
        k = np.arange(n, dtype=np.float64)
        return np.exp(self.log_weights(n) + log_binomial(n - 1, k))

    def value_of_size_function(self, h: NDArray[np.float64]) -> float:
        """Every player's value in the game ``u(S) = h(|S|)`` (``h`` has ``n + 1`` entries):
        ``sum_k C(n-1, k) w(k) (h(k+1) - h(k))``."""
        n = h.shape[0] - 1
        return float(self.size_mass(n) @ np.diff(h))

    def __str__(self) -> str:
        return f"beta({self.alpha:g},{self.beta:g})" if self.name == "beta" else self.name
