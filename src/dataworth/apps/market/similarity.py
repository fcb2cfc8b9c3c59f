"""How alike providers' data are: cosine similarity of Gaussian-kernel mean embeddings."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dataworth.apps.market._labels import encode_labels
from dataworth.data import is_categorical
from dataworth.errors import DataworthError

__all__ = [
    "BANDWIDTH_RELATIVE",
    "ProviderSimilarity",
    "check_bandwidth",
    "features_and_labels",
    "provider_similarity",
]


def _standardise(X: NDArray[np.float64]) -> NDArray[np.float64]:
    std = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)


def features_and_labels(
    X: NDArray[np.float64], y: NDArray[Any] | None
) -> tuple[NDArray[np.float64], NDArray[np.intp] | None]:
    """Standardised features (plus a real target as a column) and class codes (or None)."""
    Z = _standardise(np.asarray(X, dtype=np.float64))
    if y is None:
        return Z, None
    y = np.asarray(y)
    if is_categorical(y):
        return Z, encode_labels(y)[1]
    return np.column_stack([Z, _standardise(y.astype(np.float64).reshape(-1, 1))]), None


#: Default kernel bandwidth, as a fraction of the typical nearest-neighbour distance.
BANDWIDTH_RELATIVE = 0.25


def _default_bandwidth(Z: NDArray[np.float64], codes: NDArray[np.intp]) -> float:
    """``BANDWIDTH_RELATIVE`` x the median distance from a row to the nearest distinct row of
    the same provider (pooled rows when no provider has two distinct rows; 1 as a last resort).

    Measured within providers, a second identity with copied rows leaves it (almost) unchanged.
    """
    from sklearn.neighbors import NearestNeighbors

    def nn(rows: NDArray[np.float64]) -> NDArray[np.float64]:
        distinct = np.unique(rows + 0.0, axis=0)
        if distinct.shape[0] < 2:
            return np.empty(0)
        dist, _ = NearestNeighbors(n_neighbors=2).fit(distinct).kneighbors(distinct)
        return np.asarray(dist[:, 1])

    dists = [nn(Z[codes == c]) for c in np.unique(codes)]
    within = np.concatenate(dists) if dists else np.empty(0)
    if within.size == 0:
        within = nn(Z)
    h = BANDWIDTH_RELATIVE * float(np.median(within)) if within.size else 1.0
    return h if h > 0 else 1.0


@dataclass(frozen=True, eq=False)
class ProviderSimilarity:
    """Pairwise similarity of providers' data.

    Attributes
    ----------
    providers : ndarray
        Provider names (sorted, as ``np.unique`` orders them).
    matrix : ndarray of shape (n_providers, n_providers)
        Cosine similarities in [0, 1]; 1 on the diagonal.
    bandwidth : float
        Gaussian kernel bandwidth, in standard deviations of the pooled features.
    """

    providers: NDArray[Any]
    matrix: NDArray[np.float64]
    bandwidth: float

    def summed(self) -> NDArray[np.float64]:
        """Each provider's summed similarity to the other providers."""
        return np.asarray(self.matrix.sum(axis=1) - np.diag(self.matrix), dtype=np.float64)


def check_bandwidth(bandwidth: float | None) -> None:
    """Refuse a kernel bandwidth that is neither None (automatic) nor a finite number > 0."""
    if bandwidth is None:
        return
    number = isinstance(bandwidth, (int, float, np.number)) and not isinstance(
        bandwidth, (bool, np.bool_)
    )
    if not (number and math.isfinite(bandwidth) and bandwidth > 0):
        raise DataworthError(f"bandwidth must be a finite number > 0; got {bandwidth!r}.")


def provider_similarity(
    X: ArrayLike,
    groups: ArrayLike,
    *,
    y: ArrayLike | None = None,
    bandwidth: float | None = None,
    max_block: int = 2_000_000,
) -> ProviderSimilarity:
    """Cosine similarity of providers' data as Gaussian-kernel mean embeddings.

    Provider ``m``'s data (rows ``A_m``, features standardised on the pooled data) is the vector
    ``mu_m = sum_{a in A_m} k(a, .)`` in the feature space of ``k(a, b) = exp(-|a - b|^2 / (2
    h^2))``, times ``[y_a = y_b]`` when ``y`` holds class labels (a real-valued ``y`` joins the
    features). The similarity is the cosine ``<mu_m, mu_j> / (|mu_m| |mu_j|)``, computed from
    kernel sums: 1 for an exact copy, close to 1 for a copy perturbed by much less than ``h``,
    close to 0 for independent samples when ``h`` is small compared with the spacing of the
    rows, never negative. (A linear kernel would compare the providers' mean rows, which every
    sample of the same population shares.)

    Parameters
    ----------
    X : array-like of shape (n, d)
    groups : array-like of shape (n,)
        Provider of each row.
    y : array-like of shape (n,), optional
    bandwidth : float, optional
        ``h`` in pooled standard deviations; default 0.25 times the median distance from a row
        to the nearest distinct row of the same provider, so that rows closer than a typical
        pair of neighbours (copies, light perturbations) count fully and independent samples
        barely at all.
    max_block : int, default=2_000_000
        Kernel entries held in memory at once (rows are processed in blocks).

    Examples
    --------
    >>> X = [[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [1.0, 0.0], [5.0, 5.0], [6.0, 4.0]]
    >>> s = provider_similarity(X, ["a", "a", "b", "b", "c", "c"], bandwidth=0.1)
    >>> s.matrix.round(3).tolist()
    [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    Xa = np.asarray(X, dtype=np.float64)
    if Xa.ndim != 2:
        raise DataworthError(f"X must be a 2-D array of features; got shape {Xa.shape}.")
    n = Xa.shape[0]
    g = np.asarray(groups)
    if g.shape != (n,):
        raise DataworthError(f"groups must have one entry per row ({n}); got shape {g.shape}.")
    if y is not None and np.asarray(y).shape != (n,):
        raise DataworthError(f"y must have one entry per row ({n}).")
    if n == 0:
        raise DataworthError("provider_similarity needs at least one row.")
    Z, classes = features_and_labels(Xa, None if y is None else np.asarray(y))
    names, codes = encode_labels(g)
    check_bandwidth(bandwidth)
    h = _default_bandwidth(Z, codes) if bandwidth is None else float(bandwidth)
    P = names.size
    onehot = np.zeros((n, P))
    onehot[np.arange(n), codes] = 1.0
    sq = np.einsum("ij,ij->i", Z, Z)
    K = np.zeros((P, P))
    step = max(1, int(max_block) // max(n, 1))
    for start in range(0, n, step):
        rows = slice(start, min(n, start + step))
        d2 = np.maximum(sq[rows, None] + sq[None, :] - 2.0 * Z[rows] @ Z.T, 0.0)
        block = np.exp(-d2 / (2.0 * h * h))
        if classes is not None:
            block *= classes[rows, None] == classes[None, :]
        K += onehot[rows].T @ (block @ onehot)
    K = (K + K.T) / 2.0
    norms = np.sqrt(np.diag(K))
    S = np.clip(K / np.outer(norms, norms), 0.0, 1.0)
    np.fill_diagonal(S, 1.0)
    S.setflags(write=False)
    return ProviderSimilarity(providers=names, matrix=S, bandwidth=h)
