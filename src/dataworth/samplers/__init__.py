"""Samplers draw subsets of players in the driver process, reproducibly from one generator.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> draw_permutations(rng, 2, 4).shape, draw_uniform_subsets(rng, 3, 4).dtype
((2, 4), dtype('bool'))
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "choose_by_uniform",
    "draw_antithetic_permutations",
    "draw_permutations",
    "draw_uniform_subsets",
    "subsets_by_keys",
]


def draw_permutations(rng: np.random.Generator, size: int, n: int) -> NDArray[np.intp]:
    """``size`` independent uniform permutations of ``n`` players, one per row."""
    return np.argsort(rng.random((size, n)), axis=1, kind="stable").astype(np.intp)


def draw_antithetic_permutations(rng: np.random.Generator, size: int, n: int) -> NDArray[np.intp]:
    """Uniform permutations in antithetic pairs (each followed by its reverse).

    Pairs are negatively correlated for many utilities, which lowers the variance of permutation
    estimates; an odd ``size`` ends with an unpaired permutation.
    """
    half = draw_permutations(rng, (size + 1) // 2, n)
    out = np.empty((2 * half.shape[0], n), dtype=np.intp)
    out[0::2], out[1::2] = half, half[:, ::-1]
    return out[:size]


def draw_uniform_subsets(rng: np.random.Generator, size: int, n: int) -> NDArray[np.bool_]:
    """``size`` subsets as boolean rows, each player in with probability 1/2."""
    return rng.random((size, n)) < 0.5


def choose_by_uniform(p: NDArray[np.float64], u: NDArray[np.float64]) -> NDArray[np.int64]:
    """Indices into ``p`` (probabilities, up to a constant) by inverse CDF of the uniforms
    ``u``: index ``k`` with probability ``p_k``, never one with ``p_k = 0``.

    Each index depends on its own uniform only, so a job that draws one row of uniforms per
    sample draws the same samples however its rounds are cut.
    """
    cdf = np.cumsum(p)
    picks = np.searchsorted(cdf, np.asarray(u) * cdf[-1], side="right")
    positive = np.flatnonzero(np.asarray(p) > 0)
    out: NDArray[np.int64] = np.clip(picks, positive[0], positive[-1]).astype(np.int64)
    return out


def subsets_by_keys(keys: NDArray[np.float64], sizes: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Row ``j``: the ``sizes[j]`` players with the smallest ``keys[j]``; uniform keys give a
    uniform subset of that size."""
    ranks = np.argsort(np.argsort(keys, axis=1), axis=1)
    out: NDArray[np.bool_] = ranks < np.asarray(sizes)[:, None]
    return out
