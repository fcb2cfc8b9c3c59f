"""Mergeable per-player moments (count, mean, sum of squared deviations).

Partial statistics from workers merge exactly (Chan et al.'s pairwise update), so a run split
into rounds, chunks or resumed from a checkpoint gives the same numbers as one long run when the
merge order is fixed.

Examples
--------
>>> import numpy as np
>>> a = Moments.from_samples(np.array([[1.0], [2.0]]))
>>> b = Moments.from_samples(np.array([[3.0]]))
>>> m = a.merge(b)
>>> float(m.mean[0]), float(m.variance[0])
(2.0, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["Estimate", "Moments", "State", "merge_states"]


@dataclass(frozen=True)
class Moments:
    """Per-player sample count, mean and sum of squared deviations from the mean (``m2``)."""

    count: NDArray[np.int64]
    mean: NDArray[np.float64]
    m2: NDArray[np.float64]

    @classmethod
    def zeros(cls, n: int) -> Moments:
        """Moments of no samples for ``n`` players."""
        return cls(np.zeros(n, np.int64), np.zeros(n), np.zeros(n))

    @classmethod
    def from_samples(
        cls, samples: NDArray[np.float64], mask: NDArray[np.bool_] | None = None
    ) -> Moments:
        """Moments of the rows of ``samples`` (shape (m, n)); ``mask`` selects entries."""
        samples = np.asarray(samples, dtype=np.float64)
        if mask is None:
            count = np.full(samples.shape[1], samples.shape[0], dtype=np.int64)
            mean = samples.mean(axis=0) if samples.shape[0] else np.zeros(samples.shape[1])
            m2 = ((samples - mean) ** 2).sum(axis=0)
            return cls(count, mean, m2)
        w = mask.astype(np.float64)
        count = mask.sum(axis=0).astype(np.int64)
        safe = np.maximum(count, 1)
        mean = np.where(count > 0, (np.where(mask, samples, 0.0)).sum(axis=0) / safe, 0.0)
        m2 = (w * np.where(mask, samples - mean, 0.0) ** 2).sum(axis=0)
        return cls(count, mean, m2)

    @classmethod
    def from_indicator(cls, indicator: NDArray[np.bool_], values: NDArray[np.float64]) -> Moments:
        """Moments of ``values[j]`` over the samples ``j`` where ``indicator[j, i]`` is true.

        One matrix product for all players: the vectorized update of the maximum-sample-reuse
        estimator (every sample updates every player).
        """
        values = np.asarray(values, dtype=np.float64)
        if values.size == 0:
            return cls.zeros(indicator.shape[1])
        centre = float(values.mean())
        v = values - centre
        w = indicator.astype(np.float64)
        count = indicator.sum(axis=0).astype(np.int64)
        safe = np.maximum(count, 1)
        shifted_mean = (v @ w) / safe
        m2 = np.maximum((v**2) @ w - count * shifted_mean**2, 0.0)
        mean = np.where(count > 0, shifted_mean + centre, 0.0)
        return cls(count, mean, m2)

    def merge(self, other: Moments) -> Moments:
        """Exact combination of two sets of moments (order matters only at rounding level)."""
        n = self.count + other.count
        safe = np.maximum(n, 1)
        delta = other.mean - self.mean
        mean = np.where(n > 0, self.mean + delta * other.count / safe, 0.0)
        m2 = self.m2 + other.m2 + delta**2 * self.count * other.count / safe
        return Moments(n, mean, m2)

    @property
    def variance(self) -> NDArray[np.float64]:
        """Unbiased sample variance (NaN where fewer than two samples)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 1, self.m2 / np.maximum(self.count - 1, 1), np.nan)

    @property
    def stderr(self) -> NDArray[np.float64]:
        """Standard error of the mean (NaN where fewer than two samples)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sqrt(self.variance / np.maximum(self.count, 1))


State = dict[str, Moments]
Estimate = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]


def merge_states(a: State, b: State) -> State:
    """Merge two estimator states key by key."""
    if a.keys() != b.keys():
        raise ValueError(f"cannot merge states with keys {sorted(a)} and {sorted(b)}")
    return {k: a[k].merge(b[k]) for k in a}
