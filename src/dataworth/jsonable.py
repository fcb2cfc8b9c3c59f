"""Turning results into strict JSON: numpy values to Python, NaN and infinities to null.

Examples
--------
>>> import json, numpy as np
>>> json.dumps(json_ready({"values": np.array([0.5, np.nan]), 3: (np.int64(2), float("inf"))}))
'{"values": [0.5, null], "3": [2, null]}'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["json_ready"]


def json_ready(obj: Any) -> Any:
    """``obj`` as plain JSON values: mappings (keys as text), lists, numbers, text, null.

    numpy arrays and scalars become lists and Python numbers, tuples become lists, non-finite
    floats become ``None`` (strict JSON has no NaN), and anything else its ``str``.
    """
    if isinstance(obj, Mapping):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_ready(obj.tolist())
    if isinstance(obj, np.generic):
        return json_ready(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)
