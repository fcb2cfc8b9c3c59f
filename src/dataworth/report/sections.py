"""The review page's sections as HTML, each an ``(id, heading, html)`` triple: for per-row values
the value histograms, the lowest- and highest-valued rows, the per-class and per-source summaries
and all rows; for per-group values the same per source; the removal curves; and the data
repairs (changed cells and one repair's explanation)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dataworth.data import Dataset
from dataworth.errors import DataworthError
from dataworth.ranking import as_values, removal_order
from dataworth.report.inputs import group_key, per_group
from dataworth.report.svg import svg_bars, svg_curves, svg_histogram
from dataworth.report.tables import Column, auto_column, img_column, num_column, table_html
from dataworth.report.text import esc, label_text
from dataworth.report.thumbnails import thumbnail_cells
from dataworth.result import ValuationResult

_F64 = NDArray[np.float64]


def _stat_columns(vals: dict[str, _F64], errs: dict[str, _F64], single: bool) -> list[Column]:
    cols = []
    for m in vals:
        cols.append(num_column("value" if single else f"{m} value", vals[m], f"value by {m}"))
        if np.isfinite(errs[m]).any():
            cols.append(
                num_column("stderr" if single else f"{m} stderr", errs[m], f"standard error ({m})")
            )
    return cols


def row_sections(
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
    index_col = auto_column("index", data.row_labels, "row label (0-based row in the data file)")
    thumbs_big = thumbs = None
    if shape is not None:
        uris = thumbnail_cells(data.X, shape)
        alts = [
            f"row {label_text(r)} as a {shape[0]}x{shape[1]} image"
            for r in data.row_labels.tolist()
        ]
        thumbs = img_column("image", uris, alts, 3 * max(shape))
        thumbs_big = img_column("image", uris, alts, 8 * max(shape))
        notes.append(
            f"the {data.n_features} features look like {shape[0]}x{shape[1]} greyscale images: "
            "rows are shown as thumbnails (dark = large values) instead of pixel columns."
        )
    label_col = auto_column(f"label ({data.target_name})", data.y, f"target {data.target_name}")
    lead: list[Column] = [index_col, *([] if thumbs is None else [thumbs])]
    tail: list[Column] = [label_col]
    if pred is not None:
        tail.append(auto_column("prediction", pred, "out-of-fold prediction"))
    if agree is not None:
        tail.append(auto_column("agrees", agree, "prediction equals the label"))
    tail += [auto_column(k, v) for k, v in extras.items()]
    if data.groups is not None:
        tail.append(auto_column("source", data.groups, "data source (group)"))
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
        f"<p>Ordered by <b>{esc(first)}</b>"
        + ("" if single else " (the first values file)")
        + ". Review the lowest-valued rows for wrong labels or bad data; the highest are what "
        "the model relies on most.</p>"
        + f"<h3>Lowest {k}</h3>"
        + table_html(
            "lowest",
            extreme_cols,
            low,
            caption=f"lowest {k} by {first}",
            sorted_by=None,
            searchable=False,
        )
        + f"<h3>Highest {k}</h3>"
        + table_html(
            "highest", extreme_cols, high, caption=f"highest {k} by {first}", searchable=False
        )
    )

    # ---- charts
    charts = []
    for m in methods:
        by = data.y if categorical else None
        charts.append(
            _figure(
                f"{m}: values by class" if categorical else f"{m}: values",
                svg_histogram(
                    vals[m], by, f"Histogram of {m} values", "class" if by is not None else ""
                ),
            )
        )
        if data.groups is not None:
            charts.append(
                _figure(
                    f"{m}: values by source",
                    svg_histogram(
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
            num_column(name, data.X[:, j]) for j, name in enumerate(data.feature_names[:shown])
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
            + table_html(
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
    return f"<figure><figcaption>{esc(caption)}</figcaption>{svg}</figure>"


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
        rec: dict[str, Any] = {"class": label_text(label), "rows": int(sel.sum())}
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
        auto_column("class", [r["class"] for r in records]),
        num_column("rows", [r["rows"] for r in records]),
    ]
    if agree is not None:
        cols.append(
            num_column(
                "prediction agrees",
                [r["agreement"] for r in records],
                "share of rows whose out-of-fold prediction equals the label",
            )
        )
    for m in vals:
        cols += [
            num_column(f"{m} mean", [r[f"{m} mean"] for r in records]),
            num_column(f"{m} median", [r[f"{m} median"] for r in records]),
            num_column(
                f"{m} in lowest 10%",
                [r[f"{m} in lowest 10%"] for r in records],
                f"rows of the class among the {n_low} lowest-valued by {m}",
            ),
        ]
    text = (
        f"<p>{n} rows in {classes.size} classes; “in lowest 10%” counts the class's rows among "
        f"the {n_low} lowest-valued by each method.</p>"
        + table_html(
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
    keys = np.array([group_key(g) for g in data.groups.tolist()], dtype=object)
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
        auto_column("source", [r["source"] for r in records]),
        num_column("rows", [r["rows"] for r in records]),
        auto_column("classes", [r["classes"] for r in records]),
    ]
    if agree is not None:
        cols.append(num_column("prediction agrees", [r["agreement"] for r in records]))
    for m in vals:
        cols += [
            num_column(
                f"{m} total",
                [r[f"{m} total"] for r in records],
                f"sum of the source's row values by {m}",
            ),
            num_column(f"{m} mean", [r[f"{m} mean"] for r in records]),
        ]
    text = "<p>Row values summed and averaged per data source.</p>" + table_html(
        "per-source", cols, np.arange(len(records)), caption="per-source summary"
    )
    return records, text


def _class_mix(y: NDArray[Any], rows: NDArray[np.bool_], top: int = 3) -> str:
    labels, counts = np.unique(y[rows], return_counts=True)
    order = np.argsort(-counts, kind="stable")[:top]
    text = ", ".join(f"{label_text(labels[i])}: {counts[i]}" for i in order.tolist())
    return text + (", …" if labels.size > top else "")


def group_sections(
    data: Dataset,
    vals_in: dict[str, ValuationResult | _F64],
    pred: NDArray[Any] | None,
    n_extreme: int,
    categorical: bool,
    notes: list[str],
) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]]]:
    names, vals, errs, row_group = per_group(data, vals_in)
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
        auto_column("source", names),
        *_stat_columns(vals, errs, len(methods) == 1),
        num_column("rows", rows_per),
    ]
    if categorical:
        cols.append(auto_column("classes", [r["classes"] for r in records]))
    if agree is not None:
        cols.append(
            num_column(
                "prediction agrees",
                [r["agreement"] for r in records],
                "share of the source's rows whose out-of-fold prediction equals the label",
            )
        )
    order = removal_order(vals[first])
    charts = [
        _figure(f"{m}: value per source", svg_bars(names, vals[m], errs[m], f"{m} per source"))
        for m in methods
    ]
    if g >= 10:
        charts += [
            _figure(
                f"{m}: distribution over sources",
                svg_histogram(vals[m], None, f"Histogram of {m}", ""),
            )
            for m in methods
        ]
    fin = order[np.isfinite(vals[first][order])]
    high_order = removal_order(vals[first], lowest_first=False)
    high = high_order[np.isfinite(vals[first][high_order])]
    k = min(n_extreme, fin.size)
    extremes = (
        f"<p>Ordered by <b>{esc(first)}</b>.</p><h3>Lowest {k}</h3>"
        + table_html("lowest", cols, fin[:k], caption=f"lowest {k} sources", searchable=False)
        + f"<h3>Highest {k}</h3>"
        + table_html("highest", cols, high[:k], caption=f"highest {k} sources", searchable=False)
    )
    notes.append(f"values are per data source ({g} sources, {data.n_samples} rows).")
    sections = [
        ("values", "Values per source", f'<div class="charts">{"".join(charts)}</div>'),
        ("extremes", "Lowest- and highest-valued sources", extremes),
        (
            "rows",
            "All sources",
            "<p>Click a column header to sort (again to reverse); type to filter.</p>"
            + table_html(
                "rows", cols, order, caption=f"{g} sources, lowest {first} value first", sorted_by=1
            ),
        ),
    ]
    return records, sections


def curves_section(curves: dict[str, Any]) -> str:
    fr = np.asarray(curves["fractions"], dtype=np.float64)
    methods = list(curves["lowest_first"])
    rnd = curves.get("random") or {}
    cols = [num_column("removed (%)", 100 * fr)]
    if "n_removed" in curves:
        cols.append(num_column("rows removed", curves["n_removed"]))
    for m in methods:
        cols.append(num_column(f"{m} lowest first", curves["lowest_first"][m]))
        if m in (curves.get("highest_first") or {}):
            cols.append(num_column(f"{m} highest first", curves["highest_first"][m]))
    if rnd:
        cols.append(num_column("random mean", rnd["mean"]))
        cols.append(num_column("random sd", rnd["std"]))
    metric = curves.get("metric", "score")
    sizes = ""
    if curves.get("n_test"):
        sizes = (
            f" Retrained on {curves.get('n_train', '?')} rows, scored on "
            f"{curves['n_test']} held-out test rows (not the valuation set)."
        )
    return (
        f"<p>Held-out {esc(metric)} after removing training rows lowest-valued first (solid), "
        "highest-valued first (dashed) and at random (grey band: mean ± 1 sd over seeds). Good "
        f"values lift the solid line above the band and sink the dashed one.{esc(sizes)}</p>"
        + _figure("removal curves", svg_curves(curves, "Removal curves"))
        + table_html(
            "curves-table", cols, np.arange(fr.size), caption="removal curves", searchable=False
        )
    )


def _cell_numbers(name: str, values: Any, what: str) -> _F64:
    """Numbers of a repairs column: floats, with an empty or missing cell as NaN."""
    out = []
    for v in np.asarray(values, dtype=object).tolist():
        if v is None or (isinstance(v, str) and v.strip() == ""):
            out.append(math.nan)
            continue
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            raise DataworthError(f"{what}: {name} {str(v)!r} is not a number.") from None
    return np.asarray(out, dtype=np.float64)


def _row_numbers(values: Any, what: str) -> NDArray[np.int64]:
    out = []
    for v in np.asarray(values, dtype=object).tolist():
        try:
            f = float(v)
        except (TypeError, ValueError):
            f = math.nan
        if not (math.isfinite(f) and f.is_integer() and f >= 0):
            raise DataworthError(f"{what}: row {str(v)!r} is not a 0-based row number.")
        out.append(int(f))
    return np.asarray(out, dtype=np.int64)


def _columns_of(table: Any, what: str, need: tuple[str, ...]) -> dict[str, list[Any]]:
    try:
        cols = {str(k): list(np.asarray(v, dtype=object).tolist()) for k, v in dict(table).items()}
    except (TypeError, ValueError):
        raise DataworthError(f"{what} must map column names to columns.") from None
    missing = [c for c in need if c not in cols]
    if missing:
        raise DataworthError(
            f"{what} needs the columns {', '.join(need)}; it lacks {', '.join(missing)}."
        )
    sizes = {len(cols[c]) for c in need}
    if len(sizes) > 1:
        raise DataworthError(f"{what}: the columns {', '.join(need)} differ in length.")
    return cols


def _missing_or_num(name: str, values: _F64, title: str) -> Column:
    col = num_column(name, values, title)
    col.cells = ["missing" if math.isnan(v) else c for v, c in zip(values, col.cells, strict=True)]
    return col


def repairs_section(
    changes: Any, explanations: Any = None, *, cell: str | None = None, top: int = 10
) -> str:
    """The changed cells of a data repair and, when given, the explanation of one repaired cell,
    as the review page's section HTML.

    Parameters
    ----------
    changes : mapping of column name to column
        ``row``, ``column``, ``before`` and ``after`` (the listing ``dataworth repairs --out``
        writes): 0-based rows, column names (exact text) and the values before and after; an empty
        cell or NaN is a missing value.
    explanations : mapping of column name to column, optional
        The Shapley values behind one repair (``dataworth repairs --cell ... --out``): ``value``
        with ``row`` (per input row), ``column`` (per input column) or both (per input cell).
    cell : str, optional
        Which repaired cell the explanation is about, for its caption.
    top : int, default=10
        Players listed and drawn: those with the largest ``|value|``.

    Everything from the files (column names above all) is escaped.

    Examples
    --------
    >>> html = repairs_section({"row": [0], "column": ["<b>"], "before": [""], "after": [1.5]})
    >>> "&lt;b&gt;" in html and "<b>" not in html
    True
    """
    if top < 1:
        raise DataworthError(f"top must be at least 1; got {top}.")
    what = "repairs"
    cols = _columns_of(changes, what, ("row", "column", "before", "after"))
    rows = _row_numbers(cols["row"], what)
    names = ["" if c is None else str(c) for c in cols["column"]]
    before = _cell_numbers("before", cols["before"], what)
    after = _cell_numbers("after", cols["after"], what)
    n = rows.size
    if n == 0:
        parts = ["<p>The repair changed no cell.</p>"]
    else:
        touched = len(set(rows.tolist()))
        filled = int((np.isnan(before) & ~np.isnan(after)).sum())
        table_cols = [
            num_column("row", rows, "0-based row of the input"),
            auto_column("column", np.array(names, dtype=object), "feature column"),
            _missing_or_num("before", before, "value before the repair"),
            _missing_or_num("after", after, "value after the repair"),
        ]
        parts = [
            f"<p>{n} cell{'s' if n != 1 else ''} changed in {touched} "
            f"row{'s' if touched != 1 else ''}; {filled} of them were missing and were filled "
            "in. Rows are 0-based, in input order.</p>",
            table_html("repairs", table_cols, np.arange(n), caption=f"{n} changed cells"),
        ]
    if explanations is not None:
        parts.append(_explanation_html(explanations, cell, top))
    return "".join(parts)


def _explanation_html(explanations: Any, cell: str | None, top: int) -> str:
    what = "repair explanation"
    raw = dict(explanations)
    by = (
        "cell"
        if {"row", "column"} <= set(raw)
        else "row"
        if "row" in raw
        else "column"
        if "column" in raw
        else ""
    )
    if not by:
        raise DataworthError(
            f"{what} needs the columns row,value, column,value or row,column,value."
        )
    need = {"cell": ("row", "column", "value"), "row": ("row", "value")}.get(
        by, ("column", "value")
    )
    cols = _columns_of(raw, what, need)
    values = _cell_numbers("value", cols["value"], what)
    rows = _row_numbers(cols["row"], what) if by != "column" else None
    names = None if by == "row" else ["" if c is None else str(c) for c in cols["column"]]
    if rows is not None and names is not None:
        labels = [f"row {r}, {c}" for r, c in zip(rows.tolist(), names, strict=True)]
    elif rows is not None:
        labels = [f"row {r}" for r in rows.tolist()]
    else:
        assert names is not None
        labels = names
    fin = np.flatnonzero(np.isfinite(values))
    total = float(values[fin].sum())
    fin = fin[values[fin] != 0]  # players that did not contribute are left out
    order = fin[np.argsort(-np.abs(values[fin]), kind="stable")][:top]
    about = f" of {cell}" if cell else ""
    head = f"<h3>Explanation of the repair{esc(about)}</h3>"
    if order.size == 0:
        return head + f"<p>No input {by} contributed to the repair (all values are 0).</p>"
    table_cols: list[Column] = []
    if rows is not None:
        table_cols.append(num_column("row", rows, "0-based input row"))
    if names is not None:
        table_cols.append(auto_column("column", np.array(names, dtype=object), "input column"))
    table_cols.append(num_column("value", values, "Shapley value"))
    shown = [labels[i] for i in order.tolist()]
    chart = _figure(
        f"top {order.size} input {by}s by |Shapley value|",
        svg_bars(shown, values[order], np.full(order.size, np.nan), f"Shapley value per {by}"),
    )
    return (
        head + f"<p>Shapley values of the input {by}s behind the repair{esc(about)} "
        f"(Deutch et al. 2021): they add up to {esc(f'{total:.4g}')}, the repaired value minus "
        f"the tool's output with every input masked. The {order.size} largest by |value| of "
        f"{fin.size} nonzero (of {values.size}):</p>"
        + f'<div class="charts">{chart}</div>'
        + table_html(
            "repair-explanation",
            table_cols,
            order,
            caption=f"top {order.size} input {by}s by |value|",
            searchable=False,
        )
    )
