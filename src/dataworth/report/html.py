"""The review page: one self-contained HTML file of values, plots and a sortable table.

:func:`build_report` returns the page as a string and :func:`write_report` writes it. The page
needs nothing but a browser: plots are hand-written inline SVG, thumbnails of image rows are
``data:`` PNGs, the sorter/filter is a few lines of inline vanilla JavaScript, and a strict
Content-Security-Policy (``default-src 'none'``; the one script and the one style sheet allowed
by their SHA-256 hashes; images only from ``data:``) forbids every network request. Everything
that comes from the data set (column names, labels, sources, method names, settings) is escaped
with :func:`html.escape`; the JSON summary embedded for machines is escaped so that ``</script>``
or ``<!--`` in the data cannot end its block. The output is deterministic: the same inputs give
the same bytes.

The page shows, in order: the settings; value histograms per class (and per source); removal
curves when given; the lowest- and highest-valued rows (by the first method), with thumbnails
when rows are square images (e.g. digits' 64 pixels in [0, 16] are 8x8); per-class and
per-source summaries; and every row with its value, standard error, label, out-of-fold
prediction and features, sortable by clicking a column header and filtered by typing.

Examples
--------
>>> import numpy as np
>>> from dataworth.data import Dataset
>>> data = Dataset.from_arrays([[0.0], [1.0], [2.0]], ["a", "b", "a"], feature_names=["x"])
>>> page = build_report(data, {"loo": np.array([0.1, -0.2, 0.3])}, title="<demo>")
>>> "<title>&lt;demo&gt;</title>" in page, "http://" in page
(True, False)
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import os
import struct
import tempfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dataworth.apps._values import as_values, removal_order
from dataworth.data import Dataset, is_categorical
from dataworth.errors import DataworthError
from dataworth.report.plots import PALETTE, _curve_dict, categories, histogram_edges
from dataworth.result import ValuationResult

__all__ = [
    "CSP",
    "build_report",
    "image_shape_of",
    "out_of_fold_predictions",
    "png_gray",
    "safe_json",
    "write_report",
]

_F64 = NDArray[np.float64]
_BAND = "#9a9a9a"


# ------------------------------------------------------------------------------ escaping
def _e(value: Any) -> str:
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
    text = json.dumps(_jsonable(obj), ensure_ascii=True, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


def _num(v: float) -> str:
    return "nan" if not math.isfinite(v) else f"{v:.4g}"


def _key(v: float) -> str:
    return "" if not math.isfinite(v) else repr(float(v))


def _label_text(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        return _num(float(v))
    return str(v.item() if isinstance(v, np.generic) else v)


# ------------------------------------------------------------------------------ predictions
def out_of_fold_predictions(
    model: Any,
    data: Dataset,
    *,
    cv: int = 5,
    random_state: int | None = 0,
    n_jobs: int | None = 1,
) -> NDArray[Any]:
    """Each row's prediction by a clone of ``model`` fitted on the other folds, so that a row's
    own label never votes for its prediction (stratified folds for class labels when every class
    has ``cv`` rows, shuffled with ``random_state``).

    Examples
    --------
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> data = Dataset.from_arrays([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]], [0, 0, 1, 1, 1, 1])
    >>> out_of_fold_predictions(KNeighborsClassifier(1), data, cv=3).tolist()
    [0, 0, 0, 1, 1, 1]
    """
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict

    if cv < 2:
        raise DataworthError(f"cv must be at least 2; got {cv}.")
    if data.n_samples < cv:
        raise DataworthError(f"cv={cv} needs at least {cv} rows; the data has {data.n_samples}.")
    splitter: Any = KFold(cv, shuffle=True, random_state=random_state)
    if is_categorical(data.y) and np.unique(data.y, return_counts=True)[1].min() >= cv:
        splitter = StratifiedKFold(cv, shuffle=True, random_state=random_state)
    return np.asarray(cross_val_predict(model, data.X, data.y, cv=splitter, n_jobs=n_jobs))


# ------------------------------------------------------------------------------ thumbnails
def png_gray(pixels: NDArray[np.uint8]) -> bytes:
    """An 8-bit greyscale PNG of a 2-D uint8 array (no dependency but zlib).

    Examples
    --------
    >>> png_gray(np.zeros((2, 3), dtype=np.uint8))[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    img = np.asarray(pixels)
    if img.ndim != 2 or img.dtype != np.uint8:
        raise DataworthError(f"pixels must be a 2-D uint8 array; got {img.dtype} {img.shape}.")
    h, w = img.shape
    raw = np.concatenate([np.zeros((h, 1), dtype=np.uint8), img], axis=1).tobytes()

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def image_shape_of(X: ArrayLike) -> tuple[int, int] | None:
    """(side, side) when the rows look like square greyscale images, else None.

    Rule: a square number of features with side >= 8, every value in [0, 255] and not all zero
    (digits: 64 features in [0, 16] -> 8x8).

    Examples
    --------
    >>> image_shape_of(np.full((2, 64), 3.0)), image_shape_of(np.ones((2, 30)))
    ((8, 8), None)
    """
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2 or arr.size == 0:
        return None
    side = math.isqrt(arr.shape[1])
    if side < 8 or side * side != arr.shape[1]:
        return None
    if arr.min() < 0 or arr.max() > 255 or arr.max() == 0:
        return None
    return side, side


def _thumbnails(X: _F64, shape: tuple[int, int]) -> list[str]:
    """data: URIs of each row as a greyscale image, ink (large values) dark."""
    top = float(X.max()) or 1.0
    gray = np.rint(255.0 * (1.0 - np.clip(X, 0.0, top) / top)).astype(np.uint8)
    gray = gray.reshape(X.shape[0], *shape)
    return [
        "data:image/png;base64," + base64.b64encode(png_gray(img)).decode("ascii") for img in gray
    ]


# ------------------------------------------------------------------------------ SVG charts
def _ticks(lo: float, hi: float, n: int = 6) -> tuple[_F64, int]:
    """Round tick positions covering [lo, hi] and the decimals to print them with."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        centre = lo if math.isfinite(lo) else 0.0
        half = max(abs(centre) * 0.1, 1e-12) if centre else 1.0
        lo, hi = centre - half, centre + half
    raw = (hi - lo) / n
    mag = 10.0 ** math.floor(math.log10(raw))
    step = mag
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        step = m * mag
        if (hi - lo) / step <= n:
            break
    steps = np.arange(math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9) + 1)
    ticks = np.asarray(steps * step, dtype=np.float64)
    decimals = next((d for d in range(7) if abs(round(step, d) - step) <= 1e-9 * step), 7)
    return ticks, decimals


def _tick_text(t: float, decimals: int) -> str:
    if decimals > 6:
        return f"{t:.2g}"
    text = f"{t:.{decimals}f}"
    return "0" if float(text) == 0 else text


class _Chart:
    """A plot area with axes, ticks and a legend on the right, drawn as SVG elements."""

    def __init__(
        self,
        xlim: tuple[float, float],
        ylim: tuple[float, float],
        *,
        width: int = 560,
        height: int = 260,
        legend: int = 190,
        left: int = 58,
    ) -> None:
        self.xt, self.xd = _ticks(*xlim)
        self.yt, self.yd = _ticks(*ylim)
        self.x0, self.x1 = min(xlim[0], self.xt[0]), max(xlim[1], self.xt[-1])
        self.y0, self.y1 = min(ylim[0], self.yt[0]), max(ylim[1], self.yt[-1])
        if self.x1 <= self.x0:
            self.x0, self.x1 = self.x0 - 1, self.x1 + 1
        if self.y1 <= self.y0:
            self.y0, self.y1 = self.y0 - 1, self.y1 + 1
        self.left, self.top, self.w, self.h = left, 10, width, height
        self.width, self.height = left + width + 12 + legend, 10 + height + 44
        self.legend_chars = max(8, (legend - 24) // 6)
        self.parts: list[str] = []
        self.legend: list[str] = []

    def x(self, v: Any) -> Any:
        return self.left + (np.asarray(v) - self.x0) / (self.x1 - self.x0) * self.w

    def y(self, v: Any) -> Any:
        return self.top + (1 - (np.asarray(v) - self.y0) / (self.y1 - self.y0)) * self.h

    def add_legend(self, label: str, color: str, kind: str = "box") -> None:
        i = len(self.legend)
        lx, ly = self.left + self.w + 16, self.top + 8 + 18 * i
        if kind == "title":
            self.legend.append(f'<text class="lt" x="{lx}" y="{ly + 4}">{_e(label)}</text>')
            return
        if kind == "box":
            mark = f'<rect x="{lx}" y="{ly - 5}" width="12" height="10" fill="{color}"/>'
        else:
            dash = ' stroke-dasharray="5 3"' if kind == "dash" else ""
            mark = (
                f'<line x1="{lx}" y1="{ly}" x2="{lx + 14}" y2="{ly}" stroke="{color}" '
                f'stroke-width="2"{dash}/>'
            )
        k = self.legend_chars
        short = label if len(label) <= k else label[: k - 1] + "…"
        self.legend.append(
            f'{mark}<text x="{lx + 19}" y="{ly + 4}"><title>{_e(label)}</title>{_e(short)}</text>'
        )

    def svg(self, xlabel: str, ylabel: str, title: str) -> str:
        f = self.left, self.top, self.w, self.h
        grid, labels = [], []
        for t in self.yt:
            py = float(self.y(t))
            grid.append(
                f'<line class="grid" x1="{f[0]}" y1="{py:.1f}" x2="{f[0] + f[2]}" y2="{py:.1f}"/>'
            )
            labels.append(
                f'<text x="{f[0] - 6}" y="{py + 4:.1f}" text-anchor="end">'
                f"{_tick_text(float(t), self.yd)}</text>"
            )
        for t in self.xt:
            px = float(self.x(t))
            labels.append(
                f'<line class="axis" x1="{px:.1f}" y1="{f[1] + f[3]}" x2="{px:.1f}" '
                f'y2="{f[1] + f[3] + 4}"/>'
            )
            labels.append(
                f'<text x="{px:.1f}" y="{f[1] + f[3] + 17}" text-anchor="middle">'
                f"{_tick_text(float(t), self.xd)}</text>"
            )
        cx, cy = f[0] + f[2] / 2, f[1] + f[3] / 2
        labels.append(
            f'<text x="{cx:.1f}" y="{f[1] + f[3] + 36}" text-anchor="middle">{_e(xlabel)}</text>'
        )
        labels.append(
            f'<text x="14" y="{cy:.1f}" text-anchor="middle" '
            f'transform="rotate(-90 14 {cy:.1f})">{_e(ylabel)}</text>'
        )
        frame = (
            f'<rect class="frame" x="{f[0]}" y="{f[1]}" width="{f[2]}" height="{f[3]}" '
            'fill="none"/>'
        )
        body = "".join(grid + self.parts + [frame] + labels + self.legend)
        return (
            f'<svg class="chart" viewBox="0 0 {self.width} {self.height}" width="{self.width}" '
            f'height="{self.height}" role="img" aria-label="{_e(title)}"><title>{_e(title)}'
            f"</title>{body}</svg>"
        )


def _svg_histogram(
    values: _F64, by: ArrayLike | None, title: str, legend_title: str, bins: int = 30
) -> str:
    finite = np.isfinite(values)
    v = values[finite]
    edges = histogram_edges(v, min(bins, max(v.size, 1)))
    if by is None:
        names, codes = ["all rows"], np.zeros(values.size, dtype=np.intp)
    else:
        names, codes = categories(by)
    counts = np.vstack(
        [np.histogram(values[finite & (codes == c)], edges)[0] for c in range(len(names))]
    )
    top = float(counts.sum(axis=0).max())
    chart = _Chart(
        (float(edges[0]), float(edges[-1])), (0.0, 1.05 * top), width=380, height=210, legend=120
    )
    base = np.zeros(edges.size - 1)
    if by is not None and legend_title:
        chart.add_legend(legend_title, "", "title")
    for c, name in enumerate(names):
        color = PALETTE[c % len(PALETTE)]
        for j in np.flatnonzero(counts[c]).tolist():
            x0, x1 = float(chart.x(edges[j])), float(chart.x(edges[j + 1]))
            y0, y1 = float(chart.y(base[j])), float(chart.y(base[j] + counts[c, j]))
            chart.parts.append(
                f'<rect x="{x0:.2f}" y="{y1:.2f}" width="{max(x1 - x0 - 0.5, 0.5):.2f}" '
                f'height="{y0 - y1:.2f}" fill="{color}"><title>{_e(name)}: {counts[c, j]} in '
                f"[{edges[j]:.4g}, {edges[j + 1]:.4g}{']' if j == edges.size - 2 else ')'}"
                "</title></rect>"
            )
        base += counts[c]
        if by is not None:
            chart.add_legend(name, color)
    n_bad = int((~finite).sum())
    if n_bad:
        chart.parts.append(
            f'<text x="{chart.left + chart.w - 4}" y="{chart.top + 14}" '
            f'text-anchor="end">{n_bad} not finite, not shown</text>'
        )
    return chart.svg("value", "rows", title)


def _svg_curves(curves: dict[str, Any], title: str) -> str:
    x = 100 * np.asarray(curves["fractions"], dtype=np.float64)
    lowest = {m: np.asarray(c, dtype=np.float64) for m, c in curves["lowest_first"].items()}
    highest = {
        m: np.asarray(c, dtype=np.float64) for m, c in (curves.get("highest_first") or {}).items()
    }
    rnd = curves.get("random") or {}
    mean = np.asarray(rnd.get("mean", []), dtype=np.float64)
    std = np.asarray(rnd.get("std", np.zeros(mean.size)), dtype=np.float64)
    ys = [*lowest.values(), *highest.values()]
    if mean.size:
        ys += [mean - std, mean + std]
    allv = np.concatenate(ys) if ys else np.zeros(1)
    allv = allv[np.isfinite(allv)]
    lo, hi = (float(allv.min()), float(allv.max())) if allv.size else (0.0, 1.0)
    pad = 0.04 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    chart = _Chart((float(x.min()), float(x.max())), (lo, hi), width=520, height=280, legend=230)
    px = chart.x(x)
    if mean.size:
        upper = [f"{a:.2f},{b:.2f}" for a, b in zip(px, chart.y(mean + std), strict=True)]
        lower = [f"{a:.2f},{b:.2f}" for a, b in zip(px, chart.y(mean - std), strict=True)]
        chart.parts.append(
            f'<polygon points="{" ".join(upper + lower[::-1])}" fill="{_BAND}" fill-opacity="0.3"/>'
        )
        chart.parts.append(_polyline(px, chart.y(mean), _BAND, "2 3", "random"))
        chart.add_legend("random (mean ± 1 sd)", _BAND, "dash")
    for i, m in enumerate(lowest):
        color = PALETTE[i % len(PALETTE)]
        chart.parts.append(_polyline(px, chart.y(lowest[m]), color, None, f"{m}, lowest first"))
        chart.parts.extend(
            f'<circle cx="{a:.2f}" cy="{b:.2f}" r="2.5" fill="{color}"/>'
            for a, b in zip(px, chart.y(lowest[m]), strict=True)
            if math.isfinite(b)
        )
        chart.add_legend(f"{m}, lowest first", color, "line")
        if m in highest:
            chart.parts.append(
                _polyline(px, chart.y(highest[m]), color, "5 3", f"{m}, highest first")
            )
            chart.add_legend(f"{m}, highest first", color, "dash")
    return chart.svg(
        "training rows removed (%)", f"held-out {curves.get('metric', 'score')}", title
    )


def _polyline(px: Any, py: Any, color: str, dash: str | None, label: str) -> str:
    points = " ".join(f"{a:.2f},{b:.2f}" for a, b in zip(px, py, strict=True) if math.isfinite(b))
    d = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"{d}>'
        f"<title>{_e(label)}</title></polyline>"
    )


def _svg_bars(names: list[str], values: _F64, errors: _F64, title: str) -> str:
    """Horizontal bars, highest value at the top (NaN drawn as nothing)."""
    order = np.argsort(np.where(np.isnan(values), -np.inf, -values), kind="stable")
    fin = np.isfinite(values)
    err = np.where(np.isfinite(errors), errors, 0.0)
    lo = float(min(0.0, (values - err)[fin].min())) if fin.any() else 0.0
    hi = float(max(0.0, (values + err)[fin].max())) if fin.any() else 1.0
    height = max(60, 18 * len(names))
    chart = _Chart((lo, hi), (0.0, 1.0), height=height, left=150, legend=10)
    chart.yt = np.empty(0)
    step = height / max(len(names), 1)
    zero = float(chart.x(0.0))
    for r, i in enumerate(order.tolist()):
        yc = chart.top + (r + 0.5) * step
        name = names[i]
        short = name if len(name) <= 22 else name[:21] + "…"
        chart.parts.append(
            f'<text x="{chart.left - 6}" y="{yc + 4:.1f}" text-anchor="end">'
            f"<title>{_e(name)}</title>{_e(short)}</text>"
        )
        if not fin[i]:
            continue
        xv = float(chart.x(values[i]))
        color = PALETTE[3] if values[i] < 0 else PALETTE[0]
        chart.parts.append(
            f'<rect x="{min(zero, xv):.2f}" y="{yc - step * 0.35:.2f}" '
            f'width="{abs(xv - zero):.2f}" height="{step * 0.7:.2f}" fill="{color}">'
            f"<title>{_e(name)}: {_num(float(values[i]))} ± {_num(float(err[i]))}</title></rect>"
        )
        if err[i] > 0:
            a, b = float(chart.x(values[i] - err[i])), float(chart.x(values[i] + err[i]))
            chart.parts.append(
                f'<line class="axis" x1="{a:.2f}" y1="{yc:.2f}" x2="{b:.2f}" y2="{yc:.2f}"/>'
            )
    chart.parts.append(
        f'<line class="axis" x1="{zero:.2f}" y1="{chart.top}" x2="{zero:.2f}" '
        f'y2="{chart.top + height}"/>'
    )
    return chart.svg("value", "", title)


# ------------------------------------------------------------------------------ tables
@dataclass
class _Column:
    """One column: a header, display HTML per row (escaped) and, for numbers, sort keys."""

    name: str
    kind: str  # "num", "text" or "img"
    cells: list[str]
    keys: list[str] | None = None
    title: str = ""


def _num_column(name: str, values: ArrayLike, title: str = "") -> _Column:
    v = np.asarray(values, dtype=np.float64).tolist()
    return _Column(name, "num", [_num(x) for x in v], [_key(x) for x in v], title)


def _auto_column(name: str, values: ArrayLike, title: str = "") -> _Column:
    arr = np.asarray(values)
    if arr.dtype.kind in "iuf":
        return _num_column(name, arr, title)
    return _Column(name, "text", [_e(_label_text(x)) for x in arr.tolist()], None, title)


def _img_column(name: str, uris: list[str], alts: list[str], size: int) -> _Column:
    cells = [
        f'<img class="thumb" src="{_e(u)}" width="{size}" height="{size}" alt="{_e(a)}">'
        for u, a in zip(uris, alts, strict=True)
    ]
    return _Column(name, "img", cells)


def _table(
    table_id: str,
    columns: list[_Column],
    rows: Sequence[int] | NDArray[np.intp],
    *,
    caption: str,
    sorted_by: int | None = None,
    searchable: bool = True,
) -> str:
    head = []
    for c, col in enumerate(columns):
        sort = ' aria-sort="ascending"' if c == sorted_by else ""
        tip = f' title="{_e(col.title)}"' if col.title else ""
        if col.kind == "img":
            head.append(f'<th data-type="none"{tip}>{_e(col.name)}</th>')
        else:
            head.append(
                f'<th data-type="{col.kind}"{sort}{tip}><button type="button">'
                f"{_e(col.name)}</button></th>"
            )
    body = []
    for r in np.asarray(rows, dtype=np.intp).tolist():
        cells = []
        for col in columns:
            if col.keys is not None:
                cells.append(f'<td data-v="{col.keys[r]}">{col.cells[r]}</td>')
            else:
                cells.append(f"<td>{col.cells[r]}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    n = len(body)
    search = (
        f'<div class="tools"><input type="search" class="filter" data-table="{table_id}" '
        f'placeholder="Filter rows (any column)…" aria-label="Filter {_e(caption)}"> '
        f'<span class="count" data-count-for="{table_id}">{n} of {n} rows</span></div>'
        if searchable
        else ""
    )
    return (
        f'{search}<div class="scroll"><table id="{table_id}" class="data sortable">'
        f"<caption>{_e(caption)}</caption><thead><tr>{''.join(head)}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


# ------------------------------------------------------------------------------ inputs
def _value_dict(values: Any) -> dict[str, ValuationResult | _F64]:
    if isinstance(values, Mapping):
        items = dict(values)
    elif isinstance(values, ValuationResult):
        items = {values.method or "values": values}
    else:
        items = {"values": values}
    if not items:
        raise DataworthError("values is empty; give at least one method's values.")
    return {str(k): v for k, v in items.items()}


def _group_key(v: Any) -> str:
    """Group names compared as text (1.0 and "1" are the same source)."""
    if isinstance(v, (float, np.floating)) and math.isfinite(v) and float(v).is_integer():
        return str(int(v))
    return str(v.item() if isinstance(v, np.generic) else v)


def _per_group(
    data: Dataset, values: dict[str, ValuationResult | _F64]
) -> tuple[list[str], dict[str, _F64], dict[str, _F64], dict[str, _F64], NDArray[np.intp]]:
    """Group names, values/stderr/counts per method aligned to them, and each row's group."""
    if data.groups is None:
        raise DataworthError(
            "the values are per group (data source) but the data has no groups; load it with "
            "the group column (--group COL)."
        )
    keys = np.array([_group_key(g) for g in data.groups.tolist()], dtype=object)
    names = sorted(set(keys.tolist()))
    pos = {g: i for i, g in enumerate(names)}
    row_group = np.array([pos[k] for k in keys.tolist()], dtype=np.intp)
    vals: dict[str, _F64] = {}
    errs: dict[str, _F64] = {}
    cnts: dict[str, _F64] = {}
    for m, res in values.items():
        if not isinstance(res, ValuationResult):
            raise DataworthError(f"values of {m!r}: per-group values must be a ValuationResult.")
        v, s, c = (np.full(len(names), np.nan) for _ in range(3))
        unknown = []
        for label, a, b, k in zip(
            res.labels.tolist(), res.values, res.stderr, res.counts, strict=True
        ):
            g = _group_key(label)
            if g not in pos:
                unknown.append(g)
                continue
            v[pos[g]], s[pos[g]], c[pos[g]] = a, b, k
        if unknown:
            raise DataworthError(
                f"values of {m!r} name source(s) not in the data's groups: "
                f"{', '.join(map(repr, unknown[:5]))}."
            )
        vals[m], errs[m], cnts[m] = v, s, c
    return names, vals, errs, cnts, row_group


def _class_mix(y: NDArray[Any], rows: NDArray[np.bool_], top: int = 3) -> str:
    labels, counts = np.unique(y[rows], return_counts=True)
    order = np.argsort(-counts, kind="stable")[:top]
    text = ", ".join(f"{_label_text(labels[i])}: {counts[i]}" for i in order.tolist())
    return text + (", …" if labels.size > top else "")


# ------------------------------------------------------------------------------ the page
_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d1d1f;
background:#fafafa}
header{background:#16324f;color:#fff;padding:14px 24px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;opacity:.85}nav{margin-top:8px}nav a{color:#cfe3ff;margin-right:14px}
main{padding:8px 24px 40px;max-width:1400px}section{margin:22px 0}
h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:12px 0 4px}
.notes li{color:#6b4e00}.charts{display:flex;flex-wrap:wrap;gap:16px}
figure{margin:0;background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:8px}
figcaption{font-weight:600;margin:0 0 4px 4px}
.chart{max-width:100%;height:auto}.chart text{font:11px system-ui,sans-serif;fill:#333}
.chart .lt{font-weight:600}.chart .grid{stroke:#eee}.chart .axis{stroke:#555}
.chart .frame{stroke:#888}
.scroll{overflow:auto;max-height:640px;border:1px solid #e3e3e3;background:#fff}
table.data{border-collapse:collapse;font-size:13px;white-space:nowrap}
table.data caption{text-align:left;padding:4px 6px;color:#555}
table.data th{position:sticky;top:0;background:#eef2f6;text-align:left;padding:0}
table.data th button{font:inherit;font-weight:600;border:0;background:none;padding:5px 8px;
cursor:pointer;width:100%;text-align:left}
table.data th[data-type=none]{padding:5px 8px}
table.data th[aria-sort=ascending] button::after{content:" ▲"}
table.data th[aria-sort=descending] button::after{content:" ▼"}
table.data td{padding:3px 8px;border-top:1px solid #f0f0f0}table.data td[data-v]{text-align:right}
table.data tbody tr:nth-child(even){background:#fbfbfd}
table.kv td:first-child{font-weight:600;color:#444}
.tools{margin:6px 0}.tools input{font:inherit;padding:4px 8px;width:280px}
.count{color:#666;margin-left:8px}
img.thumb{image-rendering:pixelated;border:1px solid #ccc;vertical-align:middle;background:#fff}
footer{color:#777;padding:0 24px 24px}
"""

_SCRIPT = """
(function () {
  "use strict";
  var collator = new Intl.Collator(undefined, {numeric: true, sensitivity: "base"});
  function setup(table) {
    var tbody = table.tBodies[0];
    var rows = Array.prototype.slice.call(tbody.rows);
    var texts = rows.map(function (r) { return r.textContent.toLowerCase(); });
    var heads = table.tHead.rows[0].cells;
    var state = {col: -1, dir: 1};
    for (var i = 0; i < heads.length; i++) {
      if (heads[i].getAttribute("aria-sort") === "ascending") { state.col = i; }
      var button = heads[i].querySelector("button");
      if (button) { button.addEventListener("click", sortBy.bind(null, i)); }
    }
    function key(row, i, numeric) {
      var cell = row.cells[i];
      if (!numeric) { return cell.textContent; }
      var v = cell.getAttribute("data-v");
      return v === null || v === "" ? NaN : parseFloat(v);
    }
    function sortBy(i) {
      var numeric = heads[i].getAttribute("data-type") === "num";
      var dir = state.col === i ? -state.dir : 1;
      state = {col: i, dir: dir};
      var items = rows.map(function (r, k) { return [key(r, i, numeric), k]; });
      items.sort(function (a, b) {
        var x = a[0], y = b[0], c;
        if (numeric) {
          var xn = isNaN(x), yn = isNaN(y);
          if (xn || yn) { c = xn === yn ? 0 : (xn ? 1 : -1); return c || a[1] - b[1]; }
          c = x < y ? -dir : (x > y ? dir : 0);
        } else {
          c = collator.compare(x, y) * dir;
        }
        return c || a[1] - b[1];
      });
      var frag = document.createDocumentFragment();
      items.forEach(function (it) { frag.appendChild(rows[it[1]]); });
      tbody.appendChild(frag);
      for (var h = 0; h < heads.length; h++) {
        if (h === i) {
          heads[h].setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
        } else {
          heads[h].removeAttribute("aria-sort");
        }
      }
    }
    var input = document.querySelector('input.filter[data-table="' + table.id + '"]');
    var count = document.querySelector('[data-count-for="' + table.id + '"]');
    if (input) {
      input.addEventListener("input", function () {
        var q = input.value.trim().toLowerCase(), shown = 0;
        rows.forEach(function (r, k) {
          var hide = q !== "" && texts[k].indexOf(q) < 0;
          r.hidden = hide;
          if (!hide) { shown++; }
        });
        if (count) { count.textContent = shown + " of " + rows.length + " rows"; }
      });
    }
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), setup);
})();
"""


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


#: The page's Content-Security-Policy: nothing from the network; only its own script and style.
CSP = (
    f"default-src 'none'; script-src {_sha256(_SCRIPT)}; style-src {_sha256(_STYLE)}; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)


def build_report(
    data: Dataset,
    values: Mapping[str, ValuationResult | ArrayLike] | ValuationResult | ArrayLike,
    *,
    predictions: ArrayLike | None = None,
    curves: Any = None,
    settings: Mapping[str, Any] | None = None,
    extra_columns: Mapping[str, ArrayLike] | None = None,
    notes: Sequence[str] = (),
    title: str = "dataworth report",
    image_shape: tuple[int, int] | str | None = "auto",
    n_extreme: int = 10,
    max_rows: int = 10_000,
    max_features: int = 40,
) -> str:
    """The review page as one self-contained HTML string.

    Parameters
    ----------
    data : Dataset
        The valued rows (row labels are shown as ``index``); with per-group values, all rows of
        the sources and ``data.groups`` set.
    values : dict of str to ValuationResult or array, or a single one
        Per method: one value per row of ``data`` (a ValuationResult or a plain array), or a
        per-group :class:`~dataworth.result.ValuationResult` (``kind="group"``) whose labels are
        the sources. The first method orders the page (lowest first).
    predictions : array of shape (n_rows,), optional
        A prediction per row, ideally out-of-fold so that a row's label does not vote for itself.
    curves : RemovalCurves or dict, optional
        Removal curves (:func:`dataworth.apps.removal.removal_curves` or its ``to_dict()``).
    settings : dict, optional
        The run's settings, shown as a table at the top.
    extra_columns : dict of str to array, optional
        More per-row columns for the tables (e.g. a known-corrupted flag).
    notes : sequence of str
        Shown under the settings.
    title : str
    image_shape : (height, width), "auto" or None
        Show rows as greyscale thumbnails; "auto" detects square images (:func:`image_shape_of`).
    n_extreme : int, default=10
        Rows (or sources) listed in the lowest- and highest-valued sections.
    max_rows : int, default=10000
        Largest table: beyond it, the lowest and the highest half of ``max_rows`` by the first
        method are listed (and a note says so).
    max_features : int, default=40
        Feature columns shown in the table (the first ones; a note says how many are hidden).

    Returns
    -------
    str
    """
    vals_in = _value_dict(values)
    group_mode = any(isinstance(v, ValuationResult) and v.kind == "group" for v in vals_in.values())
    if group_mode and not all(
        isinstance(v, ValuationResult) and v.kind == "group" for v in vals_in.values()
    ):
        raise DataworthError("values mix per-row and per-group results; give one kind.")
    notes = list(notes)
    n = data.n_samples
    pred = None if predictions is None else np.asarray(predictions)
    if pred is not None and pred.shape != (n,):
        raise DataworthError(f"predictions must have one entry per row ({n}); got {pred.shape}.")
    extras = {str(k): np.asarray(v) for k, v in (extra_columns or {}).items()}
    for k, v in extras.items():
        if v.shape != (n,):
            raise DataworthError(f"extra column {k!r} must have one entry per row ({n}).")
    if n_extreme < 1 or max_rows < 2 or max_features < 0:
        raise DataworthError("n_extreme and max_rows must be positive, max_features >= 0.")
    curve_data = None if curves is None else _curve_dict(curves)
    categorical = is_categorical(data.y)

    info: dict[str, Any] = {
        "title": title,
        "target": data.target_name,
        "n_rows": n,
        "n_features": data.n_features,
        "methods": list(vals_in),
        "level": "group" if group_mode else "row",
        "settings": dict(settings or {}),
    }
    sections: list[tuple[str, str, str]] = []  # (id, heading, html)
    if group_mode:
        per_source, body = _group_sections(data, vals_in, pred, n_extreme, categorical, notes)
        info["per_source"] = per_source
        sections += body
    else:
        shape = _resolve_shape(data, image_shape)
        summary, body = _row_sections(
            data,
            vals_in,
            pred,
            extras,
            shape,
            n_extreme,
            max_rows,
            max_features,
            categorical,
            notes,
        )
        info.update(summary)
        sections += body
    if curve_data is not None:
        info["curves"] = curve_data
        sections.insert(1, ("curves", "Removal curves", _curves_section(curve_data)))
    info["notes"] = notes
    return _page(title, data, vals_in, info, settings or {}, notes, sections)


def write_report(path: str | Path, data: Dataset, values: Any, **kwargs: Any) -> Path:
    """Build the page (:func:`build_report`) and write it to ``path`` (atomically)."""
    text = build_report(data, values, **kwargs)
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, out)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise DataworthError(f"cannot write {path}: {exc.strerror or exc}") from None
    return out


def _resolve_shape(data: Dataset, image_shape: tuple[int, int] | str | None) -> Any:
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


def _stat_columns(vals: dict[str, _F64], errs: dict[str, _F64], single: bool) -> list[_Column]:
    cols = []
    for m in vals:
        cols.append(_num_column("value" if single else f"{m} value", vals[m], f"value by {m}"))
        if np.isfinite(errs[m]).any():
            cols.append(
                _num_column("stderr" if single else f"{m} stderr", errs[m], f"standard error ({m})")
            )
    return cols


def _row_sections(
    data: Dataset,
    vals_in: dict[str, ValuationResult | _F64],
    pred: NDArray[Any] | None,
    extras: dict[str, NDArray[Any]],
    shape: tuple[int, int] | None,
    n_extreme: int,
    max_rows: int,
    max_features: int,
    categorical: bool,
    notes: list[str],
) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
    n = data.n_samples
    vals: dict[str, _F64] = {}
    errs: dict[str, _F64] = {}
    for m, v in vals_in.items():
        try:
            vals[m] = as_values(v, n=n)
        except DataworthError as exc:
            raise DataworthError(f"values of {m!r}: {exc}") from None
        errs[m] = (
            np.asarray(v.stderr, dtype=np.float64)
            if isinstance(v, ValuationResult)
            else np.full(n, np.nan)
        )
    methods = list(vals)
    first = methods[0]
    single = len(methods) == 1
    agree = None if pred is None or not categorical else pred == data.y

    # ---- columns shared by the tables
    index_col = _auto_column("index", data.row_labels, "row label (0-based row in the data file)")
    thumbs_big = thumbs = None
    if shape is not None:
        uris = _thumbnails(data.X, shape)
        alts = [
            f"row {_label_text(r)} as a {shape[0]}x{shape[1]} image"
            for r in data.row_labels.tolist()
        ]
        thumbs = _img_column("image", uris, alts, 3 * max(shape))
        thumbs_big = _img_column("image", uris, alts, 8 * max(shape))
        notes.append(
            f"the {data.n_features} features look like {shape[0]}x{shape[1]} greyscale images: "
            "rows are shown as thumbnails (dark = large values) instead of pixel columns."
        )
    label_col = _auto_column(f"label ({data.target_name})", data.y, f"target {data.target_name}")
    lead: list[_Column] = [index_col, *([] if thumbs is None else [thumbs])]
    tail: list[_Column] = [label_col]
    if pred is not None:
        tail.append(_auto_column("prediction", pred, "out-of-fold prediction"))
    if agree is not None:
        tail.append(_auto_column("agrees", agree, "prediction equals the label"))
    tail += [_auto_column(k, v) for k, v in extras.items()]
    if data.groups is not None:
        tail.append(_auto_column("source", data.groups, "data source (group)"))
    stat_cols = _stat_columns(vals, errs, single)

    # ---- lowest and highest
    order = removal_order(vals[first])
    finite_order = order[np.isfinite(vals[first][order])]
    k = min(n_extreme, finite_order.size)
    small_lead = [index_col, *([] if thumbs_big is None else [thumbs_big])]
    extreme_cols = small_lead + stat_cols + tail
    low = finite_order[:k]
    high_order = removal_order(vals[first], lowest_first=False)  # ties: index order
    high = high_order[np.isfinite(vals[first][high_order])][:k]
    sections: list[tuple[str, str, str]] = []
    extreme_html = (
        f"<p>Ordered by <b>{_e(first)}</b>"
        + ("" if single else " (the first values file)")
        + ". Review the lowest-valued rows for wrong labels or bad data; the highest are what "
        "the model relies on most.</p>"
        + f"<h3>Lowest {k}</h3>"
        + _table(
            "lowest",
            extreme_cols,
            low,
            caption=f"lowest {k} by {first}",
            sorted_by=None,
            searchable=False,
        )
        + f"<h3>Highest {k}</h3>"
        + _table("highest", extreme_cols, high, caption=f"highest {k} by {first}", searchable=False)
    )

    # ---- charts
    charts = []
    for m in methods:
        by = data.y if categorical else None
        charts.append(
            _figure(
                f"{m}: values by class" if categorical else f"{m}: values",
                _svg_histogram(
                    vals[m], by, f"Histogram of {m} values", "class" if by is not None else ""
                ),
            )
        )
        if data.groups is not None:
            charts.append(
                _figure(
                    f"{m}: values by source",
                    _svg_histogram(
                        vals[m], data.groups, f"Histogram of {m} values by source", "source"
                    ),
                )
            )
    charts_html = f'<div class="charts">{"".join(charts)}</div>'
    sections.append(("values", "Value distributions", charts_html))
    sections.append(("extremes", "Lowest- and highest-valued rows", extreme_html))

    # ---- summaries
    summary: dict[str, Any] = {}
    n_low = int(np.floor(0.1 * n + 0.5 + 1e-9))
    low_sets = {m: removal_order(vals[m])[:n_low] for m in methods}
    if categorical:
        per_class, cls_html = _class_summary(data, vals, low_sets, n_low, agree)
        summary["per_class"] = per_class
        sections.append(("classes", "Per class", cls_html))
    else:
        notes.append("the target is real-valued: no per-class summary.")
    if data.groups is not None:
        per_source, src_html = _source_summary(data, vals, agree)
        summary["per_source"] = per_source
        sections.append(("sources", "Per source", src_html))

    # ---- all rows
    if shape is None:
        shown = min(data.n_features, max_features)
        feats = [
            _num_column(name, data.X[:, j]) for j, name in enumerate(data.feature_names[:shown])
        ]
        if shown < data.n_features:
            notes.append(
                f"the table shows the first {shown} of {data.n_features} features "
                f"(max_features={max_features})."
            )
    else:
        feats = []
    columns = lead + stat_cols + tail + feats
    rows = order
    if n > max_rows:
        half = max_rows // 2
        rows = np.concatenate([order[:half], order[n - (max_rows - half) :]])
        notes.append(
            f"the table lists the {half} lowest- and {max_rows - half} highest-valued of {n} rows "
            f"by {first} (max_rows={max_rows})."
        )
    sorted_by = len(lead)  # the first method's value column
    sections.append(
        (
            "rows",
            "All rows" if rows.size == n else "Rows",
            "<p>Click a column header to sort (again to reverse); type to filter.</p>"
            + _table(
                "rows",
                columns,
                rows,
                caption=f"{rows.size} rows, lowest {first} value first",
                sorted_by=sorted_by,
            ),
        )
    )
    return summary, sections


def _figure(caption: str, svg: str) -> str:
    return f"<figure><figcaption>{_e(caption)}</figcaption>{svg}</figure>"


def _class_summary(
    data: Dataset,
    vals: dict[str, _F64],
    low_sets: dict[str, NDArray[np.intp]],
    n_low: int,
    agree: NDArray[np.bool_] | None,
) -> tuple[list[dict[str, Any]], str]:
    classes, codes = np.unique(data.y, return_inverse=True)
    n = data.n_samples
    records: list[dict[str, Any]] = []
    for c, label in enumerate(classes.tolist()):
        sel = codes == c
        rec: dict[str, Any] = {"class": _label_text(label), "rows": int(sel.sum())}
        if agree is not None:
            rec["agreement"] = float(agree[sel].mean())
        for m, v in vals.items():
            vc = v[sel]
            fin = vc[np.isfinite(vc)]
            rec[f"{m} mean"] = float(fin.mean()) if fin.size else math.nan
            rec[f"{m} median"] = float(np.median(fin)) if fin.size else math.nan
            rec[f"{m} in lowest 10%"] = int(np.isin(low_sets[m], np.flatnonzero(sel)).sum())
        records.append(rec)
    cols = [
        _auto_column("class", [r["class"] for r in records]),
        _num_column("rows", [r["rows"] for r in records]),
    ]
    if agree is not None:
        cols.append(
            _num_column(
                "prediction agrees",
                [r["agreement"] for r in records],
                "share of rows whose out-of-fold prediction equals the label",
            )
        )
    for m in vals:
        cols += [
            _num_column(f"{m} mean", [r[f"{m} mean"] for r in records]),
            _num_column(f"{m} median", [r[f"{m} median"] for r in records]),
            _num_column(
                f"{m} in lowest 10%",
                [r[f"{m} in lowest 10%"] for r in records],
                f"rows of the class among the {n_low} lowest-valued by {m}",
            ),
        ]
    text = (
        f"<p>{n} rows in {classes.size} classes; “in lowest 10%” counts the class's rows among "
        f"the {n_low} lowest-valued by each method.</p>"
        + _table(
            "per-class",
            cols,
            np.arange(len(records)),
            caption="per-class summary",
            searchable=False,
        )
    )
    return records, text


def _source_summary(
    data: Dataset, vals: dict[str, _F64], agree: NDArray[np.bool_] | None
) -> tuple[list[dict[str, Any]], str]:
    assert data.groups is not None
    keys = np.array([_group_key(g) for g in data.groups.tolist()], dtype=object)
    names = sorted(set(keys.tolist()))
    records: list[dict[str, Any]] = []
    for g in names:
        sel = keys == g
        rec: dict[str, Any] = {
            "source": g,
            "rows": int(sel.sum()),
            "classes": _class_mix(data.y, sel),
        }
        if agree is not None:
            rec["agreement"] = float(agree[sel].mean())
        for m, v in vals.items():
            fin = v[sel][np.isfinite(v[sel])]
            rec[f"{m} total"] = float(fin.sum()) if fin.size else math.nan
            rec[f"{m} mean"] = float(fin.mean()) if fin.size else math.nan
        records.append(rec)
    cols = [
        _auto_column("source", [r["source"] for r in records]),
        _num_column("rows", [r["rows"] for r in records]),
        _auto_column("classes", [r["classes"] for r in records]),
    ]
    if agree is not None:
        cols.append(_num_column("prediction agrees", [r["agreement"] for r in records]))
    for m in vals:
        cols += [
            _num_column(
                f"{m} total",
                [r[f"{m} total"] for r in records],
                f"sum of the source's row values by {m}",
            ),
            _num_column(f"{m} mean", [r[f"{m} mean"] for r in records]),
        ]
    text = "<p>Row values summed and averaged per data source.</p>" + _table(
        "per-source", cols, np.arange(len(records)), caption="per-source summary"
    )
    return records, text


def _group_sections(
    data: Dataset,
    vals_in: dict[str, ValuationResult | _F64],
    pred: NDArray[Any] | None,
    n_extreme: int,
    categorical: bool,
    notes: list[str],
) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]]]:
    names, vals, errs, _, row_group = _per_group(data, vals_in)
    methods = list(vals)
    first = methods[0]
    g = len(names)
    rows_per = np.bincount(row_group, minlength=g)
    agree = None if pred is None or not categorical else pred == data.y
    records: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        sel = row_group == i
        rec: dict[str, Any] = {
            "source": name,
            "rows": int(rows_per[i]),
            "classes": _class_mix(data.y, sel) if categorical else "",
        }
        if agree is not None:
            rec["agreement"] = float(agree[sel].mean())
        for m in methods:
            rec[f"{m} value"] = float(vals[m][i])
            rec[f"{m} stderr"] = float(errs[m][i])
        records.append(rec)
    cols = [
        _auto_column("source", names),
        *_stat_columns(vals, errs, len(methods) == 1),
        _num_column("rows", rows_per),
    ]
    if categorical:
        cols.append(_auto_column("classes", [r["classes"] for r in records]))
    if agree is not None:
        cols.append(
            _num_column(
                "prediction agrees",
                [r["agreement"] for r in records],
                "share of the source's rows whose out-of-fold prediction equals the label",
            )
        )
    order = removal_order(vals[first])
    charts = [
        _figure(f"{m}: value per source", _svg_bars(names, vals[m], errs[m], f"{m} per source"))
        for m in methods
    ]
    if g >= 10:
        charts += [
            _figure(
                f"{m}: distribution over sources",
                _svg_histogram(vals[m], None, f"Histogram of {m}", ""),
            )
            for m in methods
        ]
    fin = order[np.isfinite(vals[first][order])]
    high_order = removal_order(vals[first], lowest_first=False)
    high = high_order[np.isfinite(vals[first][high_order])]
    k = min(n_extreme, fin.size)
    extremes = (
        f"<p>Ordered by <b>{_e(first)}</b>.</p><h3>Lowest {k}</h3>"
        + _table("lowest", cols, fin[:k], caption=f"lowest {k} sources", searchable=False)
        + f"<h3>Highest {k}</h3>"
        + _table("highest", cols, high[:k], caption=f"highest {k} sources", searchable=False)
    )
    notes.append(f"values are per data source ({g} sources, {data.n_samples} rows).")
    sections = [
        ("values", "Values per source", f'<div class="charts">{"".join(charts)}</div>'),
        ("extremes", "Lowest- and highest-valued sources", extremes),
        (
            "rows",
            "All sources",
            "<p>Click a column header to sort (again to reverse); type to filter.</p>"
            + _table(
                "rows", cols, order, caption=f"{g} sources, lowest {first} value first", sorted_by=1
            ),
        ),
    ]
    return records, sections


def _curves_section(curves: dict[str, Any]) -> str:
    fr = np.asarray(curves["fractions"], dtype=np.float64)
    methods = list(curves["lowest_first"])
    rnd = curves.get("random") or {}
    cols = [_num_column("removed (%)", 100 * fr)]
    if "n_removed" in curves:
        cols.append(_num_column("rows removed", curves["n_removed"]))
    for m in methods:
        cols.append(_num_column(f"{m} lowest first", curves["lowest_first"][m]))
        if m in curves.get("highest_first", {}):
            cols.append(_num_column(f"{m} highest first", curves["highest_first"][m]))
    if rnd:
        cols.append(_num_column("random mean", rnd["mean"]))
        cols.append(_num_column("random sd", rnd["std"]))
    metric = curves.get("metric", "score")
    sizes = ""
    if curves.get("n_test"):
        sizes = (
            f" Retrained on {curves.get('n_train', '?')} rows, scored on "
            f"{curves['n_test']} held-out test rows (not the valuation set)."
        )
    return (
        f"<p>Held-out {_e(metric)} after removing training rows lowest-valued first (solid), "
        "highest-valued first (dashed) and at random (grey band: mean ± 1 sd over seeds). Good "
        f"values lift the solid line above the band and sink the dashed one.{_e(sizes)}</p>"
        + _figure("removal curves", _svg_curves(curves, "Removal curves"))
        + _table(
            "curves-table", cols, np.arange(fr.size), caption="removal curves", searchable=False
        )
    )


def _settings_table(settings: Mapping[str, Any]) -> str:
    rows = []
    for k, v in settings.items():
        text = v if isinstance(v, str) else json.dumps(_jsonable(v), ensure_ascii=False)
        rows.append(f"<tr><td>{_e(k)}</td><td>{_e(text)}</td></tr>")
    return f'<table class="data kv"><tbody>{"".join(rows)}</tbody></table>'


def _page(
    title: str,
    data: Dataset,
    vals_in: Mapping[str, Any],
    info: dict[str, Any],
    settings: Mapping[str, Any],
    notes: list[str],
    sections: list[tuple[str, str, str]],
) -> str:
    from dataworth import __version__

    base = {
        "rows": data.n_samples,
        "features": data.n_features,
        "target": data.target_name,
        "methods": ", ".join(vals_in),
    }
    all_settings = {**base, **settings}
    nav = "".join(f'<a href="#{sid}">{_e(head)}</a>' for sid, head, _ in sections)
    note_html = (
        '<ul class="notes">' + "".join(f"<li>{_e(x)}</li>" for x in notes) + "</ul>"
        if notes
        else ""
    )
    body = "".join(
        f'<section id="{sid}"><h2>{_e(head)}</h2>{content}</section>'
        for sid, head, content in sections
    )
    subtitle = (
        f"{data.n_samples} rows, target {data.target_name}, "
        f"{len(vals_in)} method{'s' if len(vals_in) != 1 else ''}: {', '.join(vals_in)}"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>{_e(title)}</h1><p>{_e(subtitle)}</p><nav>"
        f'<a href="#settings">Settings</a>{nav}</nav></header><main>'
        f'<section id="settings"><h2>Settings</h2>{_settings_table(all_settings)}{note_html}'
        f"</section>{body}</main>"
        f"<footer>Written by dataworth {_e(__version__)}. This page is self-contained and makes "
        "no network requests.</footer>"
        f'<script type="application/json" id="dataworth-data">{safe_json(info)}</script>'
        f"<script>{_SCRIPT}</script></body></html>\n"
    )
