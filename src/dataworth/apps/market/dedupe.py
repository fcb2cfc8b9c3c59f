"""Dropping rows a provider repeats within its own data (copies of rows of another provider
are kept: the similarity penalty of :mod:`~dataworth.apps.market.replication` handles those)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dataworth.apps.market._labels import encode_labels
from dataworth.data import Dataset
from dataworth.errors import DataworthError

__all__ = [
    "dedupe_within_providers",
]


def dedupe_within_providers(
    data: Dataset, *, order: ArrayLike | None = None
) -> tuple[Dataset, NDArray[np.intp]]:
    """Keep one row of every set of identical rows (same features and target) of one provider.

    A provider that copies its own rows adds no information, yet plain values can change (the
    model weighs the copied rows twice); after this step the copies cannot change anything.
    Identical rows of *different* providers are kept (that is what the similarity penalty is
    for).

    Parameters
    ----------
    data : Dataset
        With ``groups`` (the providers).
    order : array-like of shape (n,), optional
        Which copy to keep: the one with the smallest key (e.g. the arrival round), ties by
        position; default the first.

    Returns
    -------
    kept : Dataset
        The rows kept, in their original order.
    rows : ndarray of int
        Their positions in ``data``.

    Examples
    --------
    >>> ds = Dataset.from_arrays([[0.0], [0.0], [0.0], [1.0]], [1, 1, 1, 0], groups=list("aabb"))
    >>> dedupe_within_providers(ds)[1].tolist()
    [0, 2, 3]
    """
    if data.groups is None:
        raise DataworthError("the data needs a provider (group) column.")
    n = data.n_samples
    keys = np.column_stack(
        [encode_labels(data.groups)[1], encode_labels(data.y)[1], data.X + 0.0]
    ).astype(np.float64)
    key = np.zeros(n) if order is None else encode_labels(np.asarray(order))[1].astype(np.float64)
    if key.shape != (n,):
        raise DataworthError(f"order must have one entry per row ({n}).")
    ranked = np.lexsort((np.arange(n), key))
    _, first = np.unique(keys[ranked], axis=0, return_index=True)
    rows = np.sort(ranked[first]).astype(np.intp)
    return (data if rows.size == n else data.take(rows)), rows
