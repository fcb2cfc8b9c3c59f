"""Coalitions drawn by size, with their sampling probabilities known exactly.

A coalition ``T`` of size ``s`` (``1 <= s <= n - 1``) is drawn with probability
``q_s / C(n, s)``: first the size from ``q``, then a uniform subset of that size. ``q`` is
symmetric (``q_s = q_{n-s}``), so the complement ``N \\ T`` has the same distribution as ``T``
and a pair ``(T, N \\ T)`` can be averaged without bias (paired, or antithetic, sampling).

Examples
--------
>>> import numpy as np
>>> from dataworth.estimators.semivalues import Semivalue
>>> sampler = SizeSampler.for_semivalue(Semivalue.shapley(), 4)
>>> np.exp(sampler.log_q[1:4]).round(3).tolist()  # Shapley: every size equally likely
[0.333, 0.333, 0.333]
>>> sampler.draw(np.random.default_rng(0), 2).shape
(2, 4)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import logsumexp

from dataworth.estimators.semivalues import Semivalue
from dataworth.methods.weights import log_binomial

__all__ = ["SizeSampler", "coefficients"]


@dataclass(frozen=True)
class SizeSampler:
    """Sizes ``1..n-1`` with log-probabilities ``log_q`` (``-inf`` at 0 and n)."""

    log_q: NDArray[np.float64]

    @property
    def n(self) -> int:
        return int(self.log_q.shape[0] - 1)

    @classmethod
    def for_semivalue(cls, semivalue: Semivalue, n: int, smallest: int = 1) -> SizeSampler:
        """``q_s`` proportional to the weight that coalitions of size ``s`` carry in the
        semivalue, ``C(n, s) (s w(s-1) + (n-s) w(s))``, averaged with its mirror ``q_{n-s}``.

        For Shapley every size is equally likely; for Banzhaf sizes are binomial (uniform
        coalitions); Beta(16, 1) favours small coalitions and, mirrored, their complements.
        Sizes below ``smallest`` or above ``n - smallest`` (scored exactly elsewhere) get 0.
        """
        if n < 2 * smallest:
            raise ValueError(f"no size from {smallest} to {n - smallest} to sample")
        lw = semivalue.log_weights(n)
        s = np.arange(1, n, dtype=np.float64)
        mass = np.logaddexp(np.log(s) + lw[:-1], np.log(n - s) + lw[1:]) + log_binomial(n, s)
        mass = np.logaddexp(mass, mass[::-1]) - np.log(2.0)
        mass[: smallest - 1] = -np.inf
        mass[n - smallest :] = -np.inf
        log_q = np.full(n + 1, -np.inf)
        log_q[1:n] = mass - logsumexp(mass)
        return cls(log_q)

    def draw(self, rng: np.random.Generator, size: int) -> NDArray[np.bool_]:
        """``size`` coalitions as boolean rows.

        One row of ``n + 1`` uniforms per coalition (its size by inverse CDF, then the order
        of its players), so drawing ``k`` then ``m`` coalitions gives the same coalitions as
        drawing ``k + m`` at once: a run cut into other rounds draws the same samples.
        """
        n = self.n
        uniforms = rng.random((size, n + 1))
        cdf = np.cumsum(np.exp(self.log_q))
        sizes = np.searchsorted(cdf, uniforms[:, 0] * cdf[-1], side="right")
        inner = np.flatnonzero(self.log_q > -np.inf)
        sizes = np.clip(sizes, inner[0], inner[-1])  # rounding at the ends of the CDF
        ranks = np.argsort(np.argsort(uniforms[:, 1:], axis=1), axis=1)
        return ranks < sizes[:, None]


def coefficients(
    semivalue: Semivalue, sampler: SizeSampler
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Importance-weighted coefficients of a sampled coalition of each size ``s``.

    ``phi_i = sum_T c_i(T) u(T)`` with ``c_i(T) = w(s - 1)`` when ``i`` is in ``T`` and
    ``-w(s)`` when not; dividing by the probability ``q_s / C(n, s)`` of drawing ``T`` gives
    ``a_in[s] = w(s-1) C(n, s) / q_s`` and ``a_out[s] = w(s) C(n, s) / q_s`` (0 where ``q_s``
    is 0), so that ``u(T) (a_in[s] 1[i in T] - a_out[s] 1[i not in T])`` is an unbiased
    estimate of the sampled sizes' share of ``phi_i``.
    """
    n = sampler.n
    lw = semivalue.log_weights(n)
    s = np.arange(n + 1, dtype=np.float64)
    a_in, a_out = np.zeros(n + 1), np.zeros(n + 1)
    inner = np.flatnonzero(sampler.log_q > -np.inf)  # the sampled sizes
    base = log_binomial(n, s[inner]) - sampler.log_q[inner]
    a_in[inner] = np.exp(lw[inner - 1] + base)
    a_out[inner] = np.exp(lw[inner] + base)
    return a_in, a_out
