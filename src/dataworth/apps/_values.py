"""What every application accepts as values: a ValuationResult or a plain array."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from dataworth.errors import DataworthError
from dataworth.result import ValuationResult

__all__ = ["as_values", "removal_order"]


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
    """Row indices in removal order; ties keep index order and NaN values come last.

    Examples
    --------
    >>> removal_order([0.2, -1.0, 0.2, float("nan")]).tolist()
    [1, 0, 2, 3]
    >>> removal_order([0.2, -1.0, 0.2], lowest_first=False).tolist()
    [0, 2, 1]
    """
    v = as_values(values)
    key = v if lowest_first else -v
    key = np.where(np.isnan(key), np.inf, key)
    return np.argsort(key, kind="stable").astype(np.intp)
