"""Values as every application accepts them, their removal order, and detection of known-bad rows.

Values are a :class:`~dataworth.result.ValuationResult` or a plain array of one value per row.
A NaN value is *no evidence* about its row (a method that could not value it, e.g. a Data-OOB
row never out of bag): such a row is removed last (:func:`removal_order`), and
:func:`detection_auroc` counts every comparison involving it as a coin flip (see
``docs/conventions.md``, "Applications").

Examples
--------
>>> removal_order([0.2, -1.0, 0.2, float("nan")]).tolist()
[1, 0, 2, 3]
>>> detection_auroc([0.3, -0.2, 0.1, 0.5], [1])
1.0
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from dataworth.errors import DataworthError
from dataworth.result import ValuationResult, value_order

__all__ = ["as_values", "corrupted_mask", "detection_auroc", "removal_order"]


def as_values(values: ValuationResult | Any, n: int | None = None) -> NDArray[np.float64]:
    """The values as a float64 array, checked against the number of rows ``n`` when given.

    Examples
    --------
    >>> as_values([0.5, -1.0], n=2).tolist()
    [0.5, -1.0]
    """
    array = values.values if isinstance(values, ValuationResult) else values
    out = np.asarray(array, dtype=np.float64)
    if out.ndim != 1:
        raise DataworthError(f"values must be one-dimensional; got shape {out.shape}.")
    if n is not None and out.size != n:
        raise DataworthError(f"got {out.size} values for {n} rows; they must match one to one.")
    return out


def removal_order(values: ValuationResult | Any, *, lowest_first: bool = True) -> NDArray[np.intp]:
    """Row indices in removal order: the order of :meth:`ValuationResult.bottom` (or
    :meth:`~ValuationResult.top` with ``lowest_first=False``); ties keep index order and NaN
    values come last either way.

    Examples
    --------
    >>> removal_order([0.2, -1.0, 0.2, float("nan")]).tolist()
    [1, 0, 2, 3]
    >>> removal_order([0.2, -1.0, 0.2], lowest_first=False).tolist()
    [0, 2, 1]
    """
    return value_order(as_values(values), ascending=lowest_first)


def corrupted_mask(corrupted: Any, n: int) -> NDArray[np.bool_]:
    """The known-bad rows as a boolean mask of ``n`` entries, from positions or a mask.

    Examples
    --------
    >>> corrupted_mask([2, 0], 4).tolist()
    [True, False, True, False]
    """
    idx = np.asarray(corrupted)
    if idx.size == 0:
        idx = idx.astype(np.intp)
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise DataworthError(f"corrupted as a mask must have {n} entries; got {idx.shape}.")
        return idx
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise DataworthError("corrupted must be row positions (integers) or a boolean mask.")
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise DataworthError(
            f"corrupted positions must lie in [0, {n}); got {idx.min()}..{idx.max()}."
        )
    mask = np.zeros(n, dtype=bool)
    mask[idx] = True
    return mask


def detection_auroc(values: ValuationResult | Any, corrupted: Any) -> float:
    """Area under the ROC curve of ``-value`` as a detector of the ``corrupted`` rows.

    1.0: every corrupted row is valued below every clean row; 0.5: no better than chance.
    It is the share of (corrupted, clean) pairs in which the corrupted row has the lower value,
    a tie counting one half (Mann-Whitney). A NaN value is no evidence either way: every pair
    with a NaN row counts one half, the midpoint of ranking the NaN rows least suspicious and
    most suspicious (and not the removal order's "NaN last", which is a choice of what to
    remove, nor the median value, which would be evidence).

    Parameters
    ----------
    values : ValuationResult or array of shape (n,)
    corrupted : array of int (positions) or bool mask of shape (n,)
        The ground truth, e.g. from :func:`dataworth.datasets.flip_labels`.

    Raises
    ------
    DataworthError
        When there are no corrupted rows or no clean rows.

    Examples
    --------
    >>> detection_auroc([0.3, -0.2, 0.1, 0.5], [1])
    1.0
    >>> detection_auroc([0.3, -0.2, 0.1, 0.5], [0, 3])
    0.0
    >>> detection_auroc([0.0, 0.0], [0])
    0.5
    >>> detection_auroc([-1.0, float("nan"), 1.0], [0])  # 1 pair won, 1 a coin flip, of 2
    0.75
    """
    from scipy.stats import rankdata

    v = as_values(values)
    mask = corrupted_mask(corrupted, v.size)
    n_pos = int(mask.sum())
    n_neg = v.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise DataworthError(
            "detection_auroc needs both corrupted and clean rows; "
            f"got {n_pos} corrupted of {v.size}."
        )
    known = ~np.isnan(v)
    pos_known = int((mask & known).sum())
    neg_known = int((~mask & known).sum())
    ranks = rankdata(-v[known])  # average ranks for ties: the suspicion of the valued rows
    won = ranks[mask[known]].sum() - pos_known * (pos_known + 1) / 2
    unknown_pairs = n_pos * n_neg - pos_known * neg_known
    return float((won + 0.5 * unknown_pairs) / (n_pos * n_neg))
