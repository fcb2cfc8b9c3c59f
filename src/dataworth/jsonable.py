"""Turning results into JSON: numpy values to Python, NaN and infinities to null.

:func:`json_ready` is the one way dataworth makes values JSON-safe: for the strict JSON it
writes (``--json`` files, ``to_dict`` methods, the report) and, with ``strict=False``, for the
headers of its own npz files, which keep NaN as Python's :mod:`json` writes it.

Examples
--------
>>> import json, numpy as np
>>> json.dumps(json_ready({"values": np.array([0.5, np.nan]), 3: (np.int64(2), float("inf"))}))
'{"values": [0.5, null], "3": [2, null]}'
>>> json_ready([np.float64("nan"), {1, 2}], strict=False, other=repr)
[nan, '{1, 2}']
>>> plain(np.int64(3)), plain("a")
(3, 'a')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = ["json_ready", "plain"]


def json_ready(obj: Any, *, strict: bool = True, other: Callable[[Any], str] = str) -> Any:
    """``obj`` as plain JSON values: mappings (keys as text), lists, numbers, text, null.

    numpy arrays and scalars become lists and Python numbers, tuples become lists, non-finite
    floats become ``None`` (strict JSON has no NaN; with ``strict=False`` they are kept, for
    ``json.dumps``' ``NaN`` and ``Infinity``), and anything else ``other(obj)`` (its ``str``).
    """
    if isinstance(obj, Mapping):
        return {str(k): json_ready(v, strict=strict, other=other) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v, strict=strict, other=other) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_ready(obj.tolist(), strict=strict, other=other)
    if isinstance(obj, np.generic):
        return json_ready(obj.item(), strict=strict, other=other)
    if isinstance(obj, float) and strict and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return other(obj)


def plain(x: Any) -> Any:
    """A numpy scalar as its Python value; anything else unchanged."""
    return x.item() if isinstance(x, np.generic) else x
