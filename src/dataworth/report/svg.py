"""The review page's charts, drawn as inline SVG with no dependency: a plot area with axes, ticks
and a legend (:class:`_Chart`), stacked value histograms, removal curves with the random band, and
horizontal per-source bars. Their classes (``grid``, ``axis``, ``frame``, ``lt``) are styled by
the page's style sheet (:mod:`dataworth.report.assets`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dataworth.report.plots import PALETTE, categories, histogram_edges
from dataworth.report.text import esc, num_text

_F64 = NDArray[np.float64]
_BAND = "#9a9a9a"


def _ticks(lo: float, hi: float, n: int = 6) -> tuple[_F64, int]:
    """Round tick positions covering [lo, hi] and the decimals to print them with."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo or hi - lo < 1e-300:
        centre = lo if math.isfinite(lo) else 0.0
        half = max(abs(centre) * 0.1, 1e-12) if centre else 1.0
        lo, hi = centre - half, centre + half
    raw = (hi - lo) / n if math.isfinite(hi - lo) else hi / n - lo / n  # a span beyond 1.8e308
    mag = 10.0 ** math.floor(math.log10(raw))
    step = mag
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        step = m * mag
        if hi / step - lo / step <= n * (1.0 + 1e-12):
            break
    steps = np.arange(math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9) + 1)
    ticks = np.asarray(steps * step, dtype=np.float64)
    decimals = next((d for d in range(7) if abs(round(step, d) - step) <= 1e-9 * step), 7)
    return ticks, decimals


def _tick_text(t: float, decimals: int) -> str:
    if decimals > 6 or abs(t) >= 1e6:
        return f"{t:.4g}" if abs(t) >= 1e6 else f"{t:.2g}"
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
            self.legend.append(f'<text class="lt" x="{lx}" y="{ly + 4}">{esc(label)}</text>')
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
            f'{mark}<text x="{lx + 19}" y="{ly + 4}"><title>{esc(label)}</title>{esc(short)}</text>'
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
            f'<text x="{cx:.1f}" y="{f[1] + f[3] + 36}" text-anchor="middle">{esc(xlabel)}</text>'
        )
        labels.append(
            f'<text x="14" y="{cy:.1f}" text-anchor="middle" '
            f'transform="rotate(-90 14 {cy:.1f})">{esc(ylabel)}</text>'
        )
        frame = (
            f'<rect class="frame" x="{f[0]}" y="{f[1]}" width="{f[2]}" height="{f[3]}" '
            'fill="none"/>'
        )
        body = "".join(grid + self.parts + [frame] + labels + self.legend)
        return (
            f'<svg class="chart" viewBox="0 0 {self.width} {self.height}" width="{self.width}" '
            f'height="{self.height}" role="img" aria-label="{esc(title)}"><title>{esc(title)}'
            f"</title>{body}</svg>"
        )


def svg_histogram(
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
                f'height="{y0 - y1:.2f}" fill="{color}"><title>{esc(name)}: {counts[c, j]} in '
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


def svg_curves(curves: dict[str, Any], title: str) -> str:
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
        upper = [
            f"{a:.2f},{b:.2f}"
            for a, b in zip(px, chart.y(mean + std), strict=True)
            if math.isfinite(b)
        ]
        lower = [
            f"{a:.2f},{b:.2f}"
            for a, b in zip(px, chart.y(mean - std), strict=True)
            if math.isfinite(b)
        ]
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
        f"<title>{esc(label)}</title></polyline>"
    )


def svg_bars(names: list[str], values: _F64, errors: _F64, title: str) -> str:
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
            f"<title>{esc(name)}</title>{esc(short)}</text>"
        )
        if not fin[i]:
            continue
        xv = float(chart.x(values[i]))
        color = PALETTE[3] if values[i] < 0 else PALETTE[0]
        chart.parts.append(
            f'<rect x="{min(zero, xv):.2f}" y="{yc - step * 0.35:.2f}" '
            f'width="{abs(xv - zero):.2f}" height="{step * 0.7:.2f}" fill="{color}">'
            f"<title>{esc(name)}: {num_text(float(values[i]))} ± "
            f"{num_text(float(err[i]))}</title></rect>"
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
