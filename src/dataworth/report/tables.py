"""The review page's tables: columns of escaped cells, numbers with their sort keys
(``data-v``), and the ``<table>`` markup that the page's sorter and filter work on
(:mod:`dataworth.report.assets`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dataworth.report.text import esc, label_text, num_text, sort_key


@dataclass
class Column:
    """One column: a header, display HTML per row (escaped) and, for numbers, sort keys."""

    name: str
    kind: str  # "num", "text" or "img"
    cells: list[str]
    keys: list[str] | None = None
    title: str = ""


def num_column(name: str, values: ArrayLike, title: str = "") -> Column:
    v = np.asarray(values, dtype=np.float64).tolist()
    return Column(name, "num", [num_text(x) for x in v], [sort_key(x) for x in v], title)


def auto_column(name: str, values: ArrayLike, title: str = "") -> Column:
    arr = np.asarray(values)
    if arr.dtype.kind in "iuf":
        return num_column(name, arr, title)
    return Column(name, "text", [esc(label_text(x)) for x in arr.tolist()], None, title)


def img_column(name: str, uris: list[str], alts: list[str], size: int) -> Column:
    cells = [
        f'<img class="thumb" src="{esc(u)}" width="{size}" height="{size}" alt="{esc(a)}">'
        for u, a in zip(uris, alts, strict=True)
    ]
    return Column(name, "img", cells)


def table_html(
    table_id: str,
    columns: list[Column],
    rows: Sequence[int] | NDArray[np.intp],
    *,
    caption: str,
    sorted_by: int | None = None,
    searchable: bool = True,
) -> str:
    head = []
    for c, col in enumerate(columns):
        sort = ' aria-sort="ascending"' if c == sorted_by else ""
        tip = f' title="{esc(col.title)}"' if col.title else ""
        if col.kind == "img":
            head.append(f'<th data-type="none"{tip}>{esc(col.name)}</th>')
        else:
            head.append(
                f'<th data-type="{col.kind}"{sort}{tip}><button type="button">'
                f"{esc(col.name)}</button></th>"
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
        f'placeholder="Filter rows (any column)…" aria-label="Filter {esc(caption)}"> '
        f'<span class="count" data-count-for="{table_id}">{n} of {n} rows</span></div>'
        if searchable
        else ""
    )
    return (
        f'{search}<div class="scroll"><table id="{table_id}" class="data sortable">'
        f"<caption>{esc(caption)}</caption><thead><tr>{''.join(head)}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )
