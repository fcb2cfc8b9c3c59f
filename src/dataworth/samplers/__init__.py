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

__all__ = ["draw_antithetic_permutations", "draw_permutations", "draw_uniform_subsets"]


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
