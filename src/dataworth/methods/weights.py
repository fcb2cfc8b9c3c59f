"""Semivalue weights w(k) for coalitions of size k among n players (docs/conventions.md).

The weights satisfy ``sum_k C(n-1, k) w(k) = 1``. Everything is computed in log space.

Examples
--------
>>> import numpy as np
>>> np.allclose(permutation_importance(beta_log_weights(5, 1.0, 1.0)), 1.0)
True
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.special import betaln, gammaln

from dataworth.errors import DataworthError

__all__ = [
    "banzhaf_log_weights",
    "beta_log_weights",
    "log_binomial",
    "permutation_importance",
    "shapley_log_weights",
]


def log_binomial(n: int, k: NDArray[np.float64]) -> NDArray[np.float64]:
    """log C(n, k), elementwise."""
    return np.asarray(gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1), dtype=np.float64)


def shapley_log_weights(n: int) -> NDArray[np.float64]:
    """log w(k) = log(k! (n-k-1)! / n!) for k = 0..n-1."""
    k = np.arange(n, dtype=np.float64)
    return np.asarray(gammaln(k + 1) + gammaln(n - k) - gammaln(n + 1), dtype=np.float64)


def banzhaf_log_weights(n: int) -> NDArray[np.float64]:
    """log w(k) = -(n-1) log 2 for k = 0..n-1."""
    return np.full(n, -(n - 1) * np.log(2.0))


def beta_log_weights(n: int, alpha: float, beta: float) -> NDArray[np.float64]:
    """log w(k) = log B(k + beta, n - 1 - k + alpha) - log B(alpha, beta) (Kwon & Zou 2022).

    ``alpha`` sits on the (1 - t) factor, so Beta(16, 1) favours small coalitions; Beta(1, 1) is
    Shapley.
    """
    if not (alpha > 0 and beta > 0):
        raise DataworthError(f"alpha and beta must be positive; got alpha={alpha}, beta={beta}.")
    k = np.arange(n, dtype=np.float64)
    return np.asarray(betaln(k + beta, n - 1 - k + alpha) - betaln(alpha, beta), dtype=np.float64)


def permutation_importance(log_weights: NDArray[np.float64]) -> NDArray[np.float64]:
    """Weight of a marginal at position k of a uniform permutation: w(k) n C(n-1, k).

    A uniform permutation puts a player after k others with probability 1/n for each k, so this
    importance weight makes the permutation estimate unbiased for the semivalue (1 for Shapley).
    """
    n = log_weights.shape[0]
    k = np.arange(n, dtype=np.float64)
    return np.exp(log_weights + np.log(n) + log_binomial(n - 1, k))
