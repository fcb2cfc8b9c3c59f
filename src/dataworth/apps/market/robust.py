"""Values robust to noisy replicas and to splitting one's data across identities.

Two steps on top of the providers' values ``phi`` (Agarwal, Dahleh & Sarkar 2019, extended):

1. **Split-proof pooling.** Providers whose data come from the same distribution (similarity
   ``D_mj`` of Gaussian-kernel mean embeddings with a *wide* bandwidth, the median distance
   between rows) share their positive value in proportion to rows:
   ``pooled_m = n_m * sum_j D_mj phi_j^+ / sum_j D_mj n_j``. Dividing one's distinct rows among
   several names then changes nothing: the pool and one's rows are the same.
2. **Replica penalty.** ``psi_m = pooled_m * exp(-lam * sum_{j != m} C_mj)``, where ``C_mj`` is
   the share of rows of one provider that have a row of the other closer than ``ratio`` x their
   distance to their own nearest neighbour (both directions averaged). It is 1 for an exact or
   a noisy copy whose noise is small against the spacing of the provider's own rows, and near 0
   for an independent sample of the same population, whatever the absolute scale of the noise.

Providers with ``phi <= 0`` keep their value (they are paid nothing) and take no part in the
pool.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dataworth.apps.market._labels import align_to_providers, encode_labels
from dataworth.apps.market.replication import check_lam
from dataworth.apps.market.similarity import (
    check_bandwidth,
    features_and_labels,
    provider_similarity,
)
from dataworth.data import Dataset
from dataworth.errors import DataworthError
from dataworth.result import ValuationResult

__all__ = ["SplitRobustValues", "replica_similarity", "split_robust_values"]

#: a row counts as replicated by another provider when that provider has a row closer than this
#: fraction of the row's distance to its own provider's nearest other row
REPLICA_RATIO = 0.5

#: the distribution similarity's kernel bandwidth, in median distances between rows
WIDE_BANDWIDTH = 2.0


@dataclass(frozen=True, eq=False)
class SplitRobustValues:
    """Values robust to noisy replicas and split identities (:func:`split_robust_values`).

    Attributes
    ----------
    providers : ndarray
    values : ndarray of float
        ``psi_m`` (``phi_m`` itself when ``phi_m <= 0``).
    base : ndarray of float
        ``phi_m``.
    pooled : ndarray of float
        The values after split-proof pooling, before the replica penalty.
    penalty : ndarray of float
        ``exp(-lam * sum_{j != m} C_mj)``.
    distribution : ndarray
        ``D``, the distribution similarity used by the pool.
    replica : ndarray
        ``C``, the replica similarity used by the penalty.
    rows : ndarray of float
        Effective rows of each provider (a row replicated by ``c`` others counts ``1/(1+c)``).
    lam : float
    bandwidth : float
        Kernel bandwidth of ``distribution`` (pooled standard deviations).
    """

    providers: NDArray[Any]
    values: NDArray[np.float64]
    base: NDArray[np.float64]
    pooled: NDArray[np.float64]
    penalty: NDArray[np.float64]
    distribution: NDArray[np.float64]
    replica: NDArray[np.float64]
    rows: NDArray[np.float64]
    lam: float
    bandwidth: float

    def describe(self) -> str:
        """The rule, in words."""
        return (
            "positive base values pooled among providers with similar data distributions and "
            "shared per row (split-proof), then x exp(-"
            f"{self.lam:g} x summed replica similarity to the other providers) (Agarwal, Dahleh "
            "& Sarkar 2019); replica similarity = share of rows with a row of the other provider "
            f"closer than {REPLICA_RATIO:g} x their own nearest-neighbour distance"
        )


def _distances(
    A: NDArray[np.float64],
    B: NDArray[np.float64],
    ca: NDArray[np.intp] | None,
    cb: NDArray[np.intp] | None,
) -> NDArray[np.float64]:
    """Euclidean distances between the rows of ``A`` and ``B`` (infinite across classes)."""
    d2 = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * A @ B.T
    d = np.sqrt(np.maximum(d2, 0.0))
    if ca is not None and cb is not None:
        d[ca[:, None] != cb[None, :]] = np.inf
    return d


def _replica_stats(
    X: ArrayLike, groups: ArrayLike, y: ArrayLike | None, ratio: float
) -> tuple[NDArray[Any], NDArray[np.intp], NDArray[np.float64], NDArray[np.float64]]:
    """``(providers, codes, C, copies)``; ``copies[r]``: other providers replicating row ``r``."""
    Xa = np.asarray(X, dtype=np.float64)
    g = np.asarray(groups)
    if Xa.ndim != 2 or g.shape != (Xa.shape[0],):
        raise DataworthError("X must be 2-D with one group per row.")
    if not (math.isfinite(ratio) and ratio > 0):
        raise DataworthError(f"ratio must be a finite number > 0; got {ratio!r}.")
    Z, cls = features_and_labels(Xa, None if y is None else np.asarray(y))
    names, codes = encode_labels(g)
    P = names.size
    members = [np.flatnonzero(codes == c) for c in range(P)]
    own = np.full(Z.shape[0], np.inf)
    for idx in members:
        c = None if cls is None else cls[idx]
        d = _distances(Z[idx], Z[idx], c, c)
        d[d <= 1e-12] = np.inf  # the row itself (and exact repeats)
        own[idx] = d.min(axis=1)
    share = np.eye(P)
    copies = np.zeros(Z.shape[0])
    for m, im in enumerate(members):
        for j, ij in enumerate(members):
            if j == m:
                continue
            near = _distances(
                Z[im], Z[ij], None if cls is None else cls[im], None if cls is None else cls[ij]
            ).min(axis=1)
            hit = near < ratio * own[im]
            copies[im] += hit
            share[m, j] = float(np.mean(hit))
    C = (share + share.T) / 2.0
    np.fill_diagonal(C, 1.0)
    return names, codes, C, copies


def replica_similarity(
    X: ArrayLike, groups: ArrayLike, *, y: ArrayLike | None = None, ratio: float = REPLICA_RATIO
) -> tuple[NDArray[Any], NDArray[np.float64]]:
    """``(providers, C)``: ``C_mj`` is the share of rows of ``m`` that have a row of ``j`` (of the
    same class, when ``y`` holds classes) closer than ``ratio`` x their distance to the nearest
    distinct other row of ``m``, averaged with the same share from ``j`` to ``m``.

    Examples
    --------
    >>> X = [[0.0], [1.0], [0.01], [1.01], [5.0], [7.0]]
    >>> names, C = replica_similarity(X, list("aabbcc"))
    >>> C.round(2).tolist()
    [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    names, _, C, _ = _replica_stats(X, groups, y, ratio)
    return names, C


def _wide_bandwidth(Z: NDArray[np.float64]) -> float:
    """Median distance between rows (at most 500 rows sampled, fixed seed)."""
    rng = np.random.default_rng(0)
    S = Z[rng.choice(Z.shape[0], min(500, Z.shape[0]), replace=False)]
    d = _distances(S, S, None, None)
    h = float(np.median(d[np.triu_indices(S.shape[0], 1)])) if S.shape[0] > 1 else 1.0
    return h if h > 0 else 1.0


def split_robust_values(
    values: ValuationResult | ArrayLike,
    X: Dataset | ArrayLike,
    groups: ArrayLike | None = None,
    *,
    y: ArrayLike | None = None,
    lam: float = 1.0,
    bandwidth: float | None = None,
    ratio: float = REPLICA_RATIO,
) -> SplitRobustValues:
    """Values robust to exact and noisy replicas and to splitting data across identities.

    1. Effective rows: a row that ``c`` other providers replicate (:func:`replica_similarity`'s
       test) counts ``1 / (1 + c)``, so a copy under a second name adds no rows.
    2. Pool: ``pooled_m = r_m * sum_j D_mj phi_j^+ / sum_j D_mj r_j`` over the providers with
       ``phi > 0``, with ``r`` the effective rows and ``D`` the cosine similarity of the
       providers' Gaussian-kernel mean embeddings with a wide kernel (``bandwidth``, default
       WIDE_BANDWIDTH x the median distance between rows): providers drawing from the same
       distribution share their value per row, so splitting one's rows among names gains
       nothing; dissimilar providers keep their own value.
    3. Penalty (Agarwal, Dahleh & Sarkar 2019): ``psi_m = pooled_m * exp(-lam * sum_{j != m}
       C_mj)`` with ``C`` the replica similarity, so that replicas lose.

    Values ``<= 0`` are left as they are (they are paid nothing) and take no part in the pool.

    Examples
    --------
    >>> X = [[0.0], [1.0], [0.0], [1.0], [8.0], [9.0]]
    >>> r = split_robust_values([2.0, 2.0, 3.0], X, list("aabbcc"), bandwidth=0.2)
    >>> r.penalty.round(3).tolist(), r.values.round(3).tolist()
    ([0.368, 0.368, 1.0], [0.736, 0.736, 3.0])
    """
    if isinstance(X, Dataset):
        groups = X.groups if groups is None else groups
        y = X.y if y is None else y
        Xa = np.asarray(X.X, dtype=np.float64)
    else:
        Xa = np.asarray(X, dtype=np.float64)
    if groups is None:
        raise DataworthError("groups (the provider of each row) is required.")
    check_lam(lam)
    check_bandwidth(bandwidth)
    g = np.asarray(groups)
    names, codes, C, copies = _replica_stats(Xa, g, y, ratio)
    if bandwidth is None:
        Z, _ = features_and_labels(Xa, None if y is None else np.asarray(y))
        bandwidth = WIDE_BANDWIDTH * _wide_bandwidth(Z)
    dist = provider_similarity(Xa, g, y=y, bandwidth=bandwidth)
    base = align_to_providers(values, names)
    rows = np.asarray(
        np.bincount(codes, weights=1.0 / (1.0 + copies), minlength=names.size), dtype=np.float64
    )
    active = base > 0
    D = np.asarray(dist.matrix) * active[None, :]
    pos = np.where(active, base, 0.0)
    pooled = np.where(active, rows * (D @ pos) / np.maximum(D @ rows, 1e-300), base)
    penalty = np.exp(-float(lam) * (C.sum(axis=1) - 1.0))
    final = np.where(active, pooled * penalty, base)
    return SplitRobustValues(
        providers=names,
        values=final,
        base=base,
        pooled=pooled,
        penalty=penalty,
        distribution=np.asarray(dist.matrix),
        replica=C,
        rows=rows,
        lam=float(lam),
        bandwidth=float(bandwidth),
    )
