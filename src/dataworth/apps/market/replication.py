"""Replication-robust values: each provider's value penalised by its similarity to the others.

Agarwal, Dahleh & Sarkar (2019): ``psi_m = phi_m * exp(-lam * sum_{j != m} s_mj)``, so that
entering the market again under a second name with a copy of one's data does not pay.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dataworth.apps.market._labels import align_to_providers
from dataworth.apps.market.similarity import ProviderSimilarity, provider_similarity
from dataworth.data import Dataset
from dataworth.errors import DataworthError
from dataworth.result import ValuationResult

__all__ = [
    "RobustValues",
    "check_lam",
    "replication_robust_values",
]


@dataclass(frozen=True, eq=False)
class RobustValues:
    """Replication-robust values (Agarwal, Dahleh & Sarkar 2019).

    Attributes
    ----------
    providers : ndarray
    values : ndarray of float
        ``psi_m = phi_m * penalty_m`` for ``phi_m > 0``; ``phi_m`` itself otherwise.
    base : ndarray of float
        The values ``phi_m`` before the penalty.
    penalty : ndarray of float
        ``exp(-lam * sum_{j != m} s_mj)``.
    similarity : ProviderSimilarity
    lam : float
    """

    providers: NDArray[Any]
    values: NDArray[np.float64]
    base: NDArray[np.float64]
    penalty: NDArray[np.float64]
    similarity: ProviderSimilarity
    lam: float

    def describe(self) -> str:
        """The penalty rule, in words."""
        return (
            f"value = base value x exp(-{self.lam:g} x summed similarity to the other "
            "providers) for base values > 0 (Agarwal, Dahleh & Sarkar 2019); similarity = "
            "cosine of the providers' Gaussian-kernel mean embeddings (bandwidth "
            f"{self.similarity.bandwidth:.4g} pooled standard deviations)"
        )


def check_lam(lam: float) -> None:
    """Refuse a similarity penalty that is not a finite number >= 0 (booleans included)."""
    number = isinstance(lam, (int, float, np.number)) and not isinstance(lam, (bool, np.bool_))
    if not (number and math.isfinite(lam) and lam >= 0):
        raise DataworthError(f"lam must be a finite number >= 0; got {lam!r}.")


def replication_robust_values(
    values: ValuationResult | ArrayLike,
    X: Dataset | ArrayLike,
    groups: ArrayLike | None = None,
    *,
    y: ArrayLike | None = None,
    lam: float = 1.0,
    bandwidth: float | None = None,
) -> RobustValues:
    """Penalise each provider's value by its similarity to the other providers' data.

    ``psi_m = phi_m * exp(-lam * sum_{j != m} s_mj)`` for ``phi_m > 0`` (values ``<= 0`` earn
    nothing and are left as they are), with ``s_mj`` from :func:`provider_similarity`. A
    provider that enters again under ``r - 1`` more names with exact copies of its data has
    ``s = 1`` with each copy, so each of its identities carries an extra factor
    ``exp(-lam (r - 1))``. Example: among ``k`` providers whose data are perfect substitutes,
    plain Shapley pays the ``r`` identities ``r / (k + r - 1)`` of the budget instead of
    ``1 / k``; with the penalty they get ``r e^{-lam (r-1)} / (r e^{-lam (r-1)} + k - 1)``, at
    most ``1 / k`` for every ``r`` when ``lam >= ln 2``. The default ``lam = 1`` leaves a margin
    for perturbed copies (similarity a little below 1). This is an argument on one game, not a
    proof for every utility; the tests check it on real valuations.

    Parameters
    ----------
    values : ValuationResult or array-like
        One value per provider: a group result (aligned by label) or an array in sorted
        provider order.
    X : Dataset or array-like of shape (n, d)
        The providers' data; a Dataset also gives ``groups`` and ``y`` (unless passed).
    groups : array-like of shape (n,), optional
        Provider of each row (required when ``X`` is an array).
    y : array-like, optional
        Targets; class labels make rows of different classes dissimilar.
    lam : float, default=1.0
        Strength of the penalty, ``>= 0`` (0: no penalty).
    bandwidth : float, optional
        See :func:`provider_similarity`.

    Examples
    --------
    >>> X = [[0.0], [1.0], [0.0], [1.0], [5.0], [6.0]]
    >>> r = replication_robust_values([2.0, 2.0, 3.0], X, list("aabbcc"), bandwidth=0.1)
    >>> r.penalty.round(3).tolist(), r.values.round(3).tolist()
    ([0.368, 0.368, 1.0], [0.736, 0.736, 3.0])
    """
    if isinstance(X, Dataset):
        data = X
        groups = data.groups if groups is None else groups
        y = data.y if y is None else y
        Xa: ArrayLike = data.X
    else:
        Xa = X
    if groups is None:
        raise DataworthError("groups (the provider of each row) is required.")
    check_lam(lam)
    sim = provider_similarity(Xa, groups, y=y, bandwidth=bandwidth)
    base = align_to_providers(values, sim.providers)
    penalty = np.exp(-float(lam) * sim.summed())
    robust = np.where(base > 0, base * penalty, base)
    return RobustValues(
        providers=sim.providers,
        values=robust,
        base=base,
        penalty=penalty,
        similarity=sim,
        lam=float(lam),
    )
