"""The arguments of :func:`~dataworth.report.html.build_report` made uniform: the values as one
array or result per method, per-group values aligned to the data's sources, and the thumbnails'
image shape."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dataworth.data import Dataset
from dataworth.errors import DataworthError
from dataworth.jsonable import plain
from dataworth.report.thumbnails import image_shape_of
from dataworth.result import ValuationResult

_F64 = NDArray[np.float64]


def value_dict(values: Any) -> dict[str, ValuationResult | _F64]:
    if isinstance(values, Mapping):
        items = dict(values)
    elif isinstance(values, ValuationResult):
        items = {values.method or "values": values}
    else:
        items = {"values": values}
    if not items:
        raise DataworthError("values is empty; give at least one method's values.")
    return {str(k): v for k, v in items.items()}


def group_key(v: Any) -> str:
    """Group names compared as text (1.0 and "1" are the same source)."""
    if isinstance(v, (float, np.floating)) and math.isfinite(v) and float(v).is_integer():
        return str(int(v))
    return str(plain(v))


def per_group(
    data: Dataset, values: dict[str, ValuationResult | _F64]
) -> tuple[list[str], dict[str, _F64], dict[str, _F64], NDArray[np.intp]]:
    """Group names, values and stderr per method aligned to them, and each row's group."""
    if data.groups is None:
        raise DataworthError(
            "the values are per group (data source) but the data has no groups; load it with "
            "the group column (--group COL)."
        )
    keys = np.array([group_key(g) for g in data.groups.tolist()], dtype=object)
    names = sorted(set(keys.tolist()))
    pos = {g: i for i, g in enumerate(names)}
    row_group = np.array([pos[k] for k in keys.tolist()], dtype=np.intp)
    vals: dict[str, _F64] = {}
    errs: dict[str, _F64] = {}
    for m, res in values.items():
        if not isinstance(res, ValuationResult):
            raise DataworthError(f"values of {m!r}: per-group values must be a ValuationResult.")
        v, s = (np.full(len(names), np.nan) for _ in range(2))
        unknown = []
        for label, a, b in zip(res.labels.tolist(), res.values, res.stderr, strict=True):
            g = group_key(label)
            if g not in pos:
                unknown.append(g)
                continue
            v[pos[g]], s[pos[g]] = a, b
        if unknown:
            raise DataworthError(
                f"values of {m!r} name source(s) not in the data's groups: "
                f"{', '.join(map(repr, unknown[:5]))}."
            )
        vals[m], errs[m] = v, s
    return names, vals, errs, row_group


def resolve_shape(data: Dataset, image_shape: tuple[int, int] | str | None) -> Any:
    if image_shape is None:
        return None
    if isinstance(image_shape, str):
        if image_shape != "auto":
            raise DataworthError(
                f"image_shape must be (h, w), 'auto' or None; got {image_shape!r}."
            )
        return image_shape_of(data.X)
    h, w = (int(s) for s in image_shape)
    if h * w != data.n_features or h < 1:
        raise DataworthError(
            f"image_shape {h}x{w} needs {h * w} features; the data has {data.n_features}."
        )
    return h, w
