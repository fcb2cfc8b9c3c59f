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
prediction and features, sortable by clicking a column header and filtered by typing; and, when
given, the cells a data repair changed and one repair's explanation (``dataworth repairs``).

This module checks the arguments, assembles the page and writes it; its parts live beside it:
:mod:`~dataworth.report.sections` (each section's HTML), :mod:`~dataworth.report.tables` (the
tables), :mod:`~dataworth.report.svg` (the charts), :mod:`~dataworth.report.thumbnails` (PNG
thumbnails), :mod:`~dataworth.report.assets` (style sheet, script and Content-Security-Policy),
:mod:`~dataworth.report.text` (escaping, JSON and number text), :mod:`~dataworth.report.inputs`
(the values and image shape made uniform) and :mod:`~dataworth.report.predictions` (out-of-fold
predictions).

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

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from dataworth.data import Dataset, is_categorical
from dataworth.errors import DataworthError
from dataworth.fileio import atomic_output
from dataworth.jsonable import json_ready
from dataworth.report.assets import CSP, PAGE_SCRIPT, PAGE_STYLE
from dataworth.report.inputs import resolve_shape, value_dict
from dataworth.report.plots import curve_dict
from dataworth.report.predictions import out_of_fold_predictions
from dataworth.report.sections import (
    curves_section,
    group_sections,
    repairs_section,
    row_sections,
)
from dataworth.report.text import esc, safe_json
from dataworth.report.thumbnails import image_shape_of, png_gray
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
    repairs: Mapping[str, ArrayLike] | None = None,
    repair_explanation: Mapping[str, ArrayLike] | None = None,
    repair_cell: str | None = None,
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
    repairs : dict of str to array, optional
        Cells a data repair changed (``row``, ``column``, ``before``, ``after``, as
        ``dataworth repairs --out`` lists them): adds a "Data repairs" section
        (:func:`~dataworth.report.sections.repairs_section`).
    repair_explanation : dict of str to array, optional
        With ``repairs``: the Shapley values behind one repaired cell (``value`` with ``row``,
        ``column`` or both), shown as a bar chart and table of the largest by ``|value|``.
    repair_cell : str, optional
        The cell ``repair_explanation`` explains, for its caption.

    Returns
    -------
    str
    """
    vals_in = value_dict(values)
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
    curve_data = None if curves is None else curve_dict(curves)
    if repair_explanation is not None and repairs is None:
        raise DataworthError("repair_explanation explains a repair: give repairs too.")
    repairs_html = (
        None if repairs is None else repairs_section(repairs, repair_explanation, cell=repair_cell)
    )
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
        per_source, body = group_sections(data, vals_in, pred, n_extreme, categorical, notes)
        info["per_source"] = per_source
        sections += body
    else:
        shape = resolve_shape(data, image_shape)
        summary, body = row_sections(
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
        sections.insert(1, ("curves", "Removal curves", curves_section(curve_data)))
    if repairs_html is not None:
        assert repairs is not None
        info["repairs"] = {"changed_cells": len(np.asarray(dict(repairs)["row"]))}
        sections.append(("repairs", "Data repairs", repairs_html))
    info["notes"] = notes
    return _page(title, data, vals_in, info, settings or {}, notes, sections)


def write_report(path: str | Path, data: Dataset, values: Any, **kwargs: Any) -> Path:
    """Build the page (:func:`build_report`) and write it to ``path`` (atomically)."""
    text = build_report(data, values, **kwargs)
    out = Path(path)
    try:
        with atomic_output(out, encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise DataworthError(f"cannot write {path}: {exc.strerror or exc}") from None
    return out


def _settings_table(settings: Mapping[str, Any]) -> str:
    rows = []
    for k, v in settings.items():
        text = v if isinstance(v, str) else json.dumps(json_ready(v), ensure_ascii=False)
        rows.append(f"<tr><td>{esc(k)}</td><td>{esc(text)}</td></tr>")
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
    nav = "".join(f'<a href="#{sid}">{esc(head)}</a>' for sid, head, _ in sections)
    note_html = (
        '<ul class="notes">' + "".join(f"<li>{esc(x)}</li>" for x in notes) + "</ul>"
        if notes
        else ""
    )
    body = "".join(
        f'<section id="{sid}"><h2>{esc(head)}</h2>{content}</section>'
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
        f"<title>{esc(title)}</title><style>{PAGE_STYLE}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p><nav>"
        f'<a href="#settings">Settings</a>{nav}</nav></header><main>'
        f'<section id="settings"><h2>Settings</h2>{_settings_table(all_settings)}{note_html}'
        f"</section>{body}</main>"
        f"<footer>Written by dataworth {esc(__version__)}. This page is self-contained and makes "
        "no network requests.</footer>"
        f'<script type="application/json" id="dataworth-data">{safe_json(info)}</script>'
        f"<script>{PAGE_SCRIPT}</script></body></html>\n"
    )
