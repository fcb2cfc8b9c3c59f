"""Text for the review page: HTML escaping, JSON that is safe inside ``<script>``, and numbers
and labels as table text.

Everything that comes from the data set reaches the page through :func:`esc` (:func:`html.escape`,
quotes included); :func:`safe_json` writes the JSON summary embedded for machines.
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

import numpy as np

from dataworth.jsonable import json_ready, plain


def esc(value: Any) -> str:
    """Escape anything for HTML text or a quoted attribute."""
    return html.escape(str(value), quote=True)


def safe_json(obj: Any) -> str:
    """JSON that can sit inside a ``<script>`` block: ``<``, ``>`` and ``&`` are ``\\u``-escaped,
    so neither ``</script>`` nor ``<!--`` can occur; non-finite floats become ``null``.

    Examples
    --------
    >>> safe_json({"a": "</script><!--", "b": float("nan")})
    '{"a": "\\\\u003c/script\\\\u003e\\\\u003c!--", "b": null}'
    """
    text = json.dumps(json_ready(obj), ensure_ascii=True, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def num_text(v: float) -> str:
    return "nan" if math.isnan(v) else f"{v:.4g}"  # inf and -inf as such


def sort_key(v: float) -> str:
    """Sort key of a number for the page's script (``parseFloat``): NaN sorts last."""
    if math.isnan(v):
        return ""
    return repr(float(v)) if math.isfinite(v) else ("Infinity" if v > 0 else "-Infinity")


def label_text(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        return num_text(float(v))
    return str(plain(v))
