"""``dataworth report``: one self-contained HTML page to review values (see dataworth.report)."""

from __future__ import annotations

import csv
import functools
import math
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np
from numpy.typing import NDArray

from dataworth.cli._common import (
    INPUT_FILE,
    OUTPUT_FILE,
    Notes,
    build_model,
    check_n_jobs,
    data_options,
    load_file,
    model_options,
    n_jobs_option,
    one_line,
    progress_setting,
    quiet_option,
    scaled_by_train,
    seed_option,
    standardize_option,
    standardized,
    target_option,
)
from dataworth.data import Dataset, read_table
from dataworth.errors import DataworthError
from dataworth.result import ValuationResult

__all__ = ["read_curves_csv", "read_repairs_csv", "report"]


# ---------------------------------------------------------------------------------- values
def _unique_names(results: list[ValuationResult]) -> list[str]:
    names: list[str] = []
    for r in results:
        base, k = r.method, 2
        name = base
        while name in names:
            name, k = f"{base} ({k})", k + 1
        names.append(name)
    return names


# ---------------------------------------------------------------------------------- curves
def read_curves_csv(path: str) -> dict[str, Any]:
    """Removal curves written by ``dataworth clean --curves`` as the dict that
    :func:`dataworth.report.plots.plot_removal_curves` and the report take."""
    try:
        with Path(path).open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError:
        raise DataworthError(f"file not found: {path}") from None
    need = {"method", "order", "fraction", "n_removed", "split", "score", "std"}
    if not rows or not need <= set(rows[0]):
        raise DataworthError(
            f"{path} is not a curves file from `dataworth clean --curves` (columns "
            f"{', '.join(sorted(need))})."
        )
    try:
        fractions = sorted({float(r["fraction"]) for r in rows})
        col = {f: j for j, f in enumerate(fractions)}
        n_removed = [0] * len(fractions)
        lowest: dict[str, list[float]] = {}
        highest: dict[str, list[float]] = {}
        mean = [math.nan] * len(fractions)
        std = [math.nan] * len(fractions)
        for r in rows:
            j = col[float(r["fraction"])]
            n_removed[j] = int(r["n_removed"])
            score = float(r["score"]) if r["score"] != "" else math.nan
            if r["split"] != "test":
                continue
            if r["order"] == "random":
                mean[j], std[j] = score, float(r["std"] or "nan")
            else:
                target = lowest if r["order"] == "lowest" else highest
                target.setdefault(r["method"], [math.nan] * len(fractions))[j] = score
    except (KeyError, ValueError) as exc:
        raise DataworthError(f"{path}: malformed curves row ({exc}).") from None
    return {
        "metric": "score",
        "fractions": fractions,
        "n_removed": n_removed,
        "lowest_first": lowest,
        "highest_first": highest,
        "random": {"mean": mean, "std": std},
    }


# ---------------------------------------------------------------------------------- repairs
def read_repairs_csv(path: str, kind: str = "repairs") -> dict[str, NDArray[Any]]:
    """A file written by ``dataworth repairs --out``: the listing (``row,column,before,after``;
    ``kind="repairs"``) or one cell's explanation (``row,value``, ``column,value`` or
    ``row,column,value``; ``kind="explanation"``), every cell as exact text (the report parses
    and checks them). A listing with a header only (the tool changed nothing) is empty."""
    names = ["row", "column", "before", "after", "value"]
    try:
        table = read_table(path, text_columns=names)
    except DataworthError as exc:
        header = _header_only(path)
        if header is None:
            raise
        if kind != "repairs":
            raise DataworthError(f"{path} has a header but no data rows.") from exc
        table = {c: np.array([], dtype=object) for c in header}
    if kind == "repairs":
        need = ["row", "column", "before", "after"]
        if not set(need) <= set(table):
            raise DataworthError(
                f"{path} is not a repairs listing from `dataworth repairs --out` (columns "
                f"{','.join(need)})."
            )
    elif "value" not in table or not {"row", "column"} & set(table):
        raise DataworthError(
            f"{path} is not a repair explanation from `dataworth repairs --cell ... --out` "
            "(columns row,value, column,value or row,column,value)."
        )
    return table


def _header_only(path: str) -> list[str] | None:
    """The header of a CSV file that has no data row, else None."""
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as fh:
            lines = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return lines[0] if len(lines) == 1 else None


# ---------------------------------------------------------------------------------- command
def _image_shape(text: str) -> tuple[int, int] | str | None:
    t = text.strip().lower()
    if t in ("auto", "none"):
        return None if t == "none" else "auto"
    m = re.fullmatch(r"(\d+)x(\d+)", t)
    if not m:
        raise DataworthError(f"--image-shape must be HxW (e.g. 8x8), auto or none; got {text!r}.")
    return int(m.group(1)), int(m.group(2))


@click.command()
@click.argument(
    "values_files", type=INPUT_FILE, nargs=-1, required=True, metavar="VALUES.csv [MORE.csv ...]"
)
@click.option(
    "--data", "data_path", type=INPUT_FILE, required=True, help="The file that was valued (TRAIN)."
)
@target_option
@data_options()
@click.option(
    "-o",
    "--out",
    type=OUTPUT_FILE,
    default="report.html",
    show_default=True,
    help="Output HTML file.",
)
@click.option(
    "--group",
    default=None,
    help="Column of data sources: needed for per-group values; adds per-source summaries.",
)
@model_options(
    "Model for the out-of-fold predictions and the curves (see `dataworth models`); "
    "default logistic regression for labels, linear regression otherwise."
)
@standardize_option
@click.option(
    "--predictions/--no-predictions",
    default=True,
    show_default=True,
    help="Out-of-fold predictions (cross-validation) next to each label.",
)
@click.option("--cv", type=int, default=5, show_default=True, help="Folds for the predictions.")
@click.option(
    "--curves",
    is_flag=True,
    help="Compute removal curves (retrain after removing rows; score on a held-out test split).",
)
@click.option(
    "--test",
    "test_path",
    type=INPUT_FILE,
    default=None,
    help="With --curves: held-out test file (same columns). Default: --test-fraction of the "
    "valued rows is held out (with --seed).",
)
@click.option("--test-fraction", type=float, default=0.2, show_default=True)
@click.option(
    "--curves-csv", default=None, help="Show removal curves written by `dataworth clean --curves`."
)
@click.option(
    "--repairs",
    "repairs_path",
    type=INPUT_FILE,
    default=None,
    help="Add a data repairs section: the changed cells listed by `dataworth repairs --out`.",
)
@click.option(
    "--explanation",
    "explanation_path",
    type=INPUT_FILE,
    default=None,
    help="With --repairs: one repaired cell's explanation (`dataworth repairs --cell ... --out`).",
)
@click.option(
    "--explanation-cell",
    default=None,
    help="With --explanation: the cell it explains (ROW,COLUMN), for its caption.",
)
@seed_option
@n_jobs_option
@click.option("--title", default=None, help="Page title.")
@click.option(
    "--image-shape",
    default="auto",
    show_default=True,
    help="Show rows as HxW greyscale thumbnails (e.g. 8x8), auto-detect, or none.",
)
@click.option("--max-rows", type=int, default=10_000, show_default=True, help="Largest table.")
@quiet_option
def report(
    values_files: tuple[str, ...],
    data_path: str,
    target: str,
    out: str,
    group: str | None,
    model_name: str | None,
    model_params: str | None,
    standardize: bool,
    predictions: bool,
    cv: int,
    curves: bool,
    test_path: str | None,
    test_fraction: float,
    curves_csv: str | None,
    repairs_path: str | None,
    explanation_path: str | None,
    explanation_cell: str | None,
    seed: int,
    n_jobs: int,
    title: str | None,
    image_shape: str,
    max_rows: int,
) -> None:
    """Write one self-contained HTML page to review the values in VALUES.csv (as written by
    `dataworth value`; several files compare methods) of the rows of --data."""
    from dataworth.report.html import write_report

    if curves and curves_csv:
        raise DataworthError("give either --curves (compute) or --curves-csv (read), not both.")
    check_n_jobs(n_jobs, "--n-jobs")
    if predictions and cv < 2:
        raise DataworthError(f"--cv must be at least 2; got {cv}.")
    if max_rows < 2:
        raise DataworthError(f"--max-rows must be at least 2; got {max_rows}.")
    if explanation_path and not repairs_path:
        raise DataworthError("--explanation explains a repair: give --repairs too.")
    if explanation_cell and not explanation_path:
        raise DataworthError("--explanation-cell names the cell of --explanation: give it too.")
    shape = _image_shape(image_shape)
    repairs_data = None if repairs_path is None else read_repairs_csv(repairs_path)
    explanation = (
        None if explanation_path is None else read_repairs_csv(explanation_path, "explanation")
    )
    if repairs_data is not None:  # checked up front, each file named in its error
        from dataworth.report.sections import repairs_section

        checks: list[tuple[str | None, Any, Any]] = [(repairs_path, repairs_data, None)]
        if explanation is not None:
            empty = {c: np.array([], dtype=object) for c in ("row", "column", "before", "after")}
            checks.append((explanation_path, empty, explanation))
        for file, changes, why in checks:
            try:
                repairs_section(changes, why)
            except DataworthError as exc:
                raise DataworthError(f"{file}: {exc}") from None
    notes = Notes()
    results = [ValuationResult.read(p) for p in values_files]
    names = _unique_names(results)
    kinds = {r.kind for r in results}
    if len(kinds) > 1:
        raise DataworthError("the values files mix per-row (index) and per-group (group) values.")
    group_mode = kinds == {"group"}
    if group_mode and group is None:
        raise DataworthError(
            f"{values_files[0]} has values per group: pass --group COL, the data's source column."
        )
    full = load_file(data_path, target, group)
    settings: dict[str, Any] = {
        "data": data_path,
        "target": target,
        **{f"values: {n}": p for n, p in zip(names, values_files, strict=True)},
    }
    for n, r in zip(names, results, strict=True):
        if r.params:
            settings[f"{n} parameters"] = r.params

    model = build_model(model_name, model_params, full.y, seed)
    model_label = type(model).__name__
    fit_on = full  # what the model sees; the page shows the data as read
    scale_test: Callable[[Dataset], Dataset] | None = None
    if standardize:
        (fit_on,) = standardized(notes, full)
        model_label += " on standardised features"
        scale_test = functools.partial(_scaled_like, full)

    if group_mode:
        rows = np.arange(full.n_samples)
        values: dict[str, Any] = dict(zip(names, results, strict=True))
        data = full
    else:
        rows, values = _align_rows(notes, full, names, results, data_path, values_files)
        data = full.take(rows)

    pred = None
    if predictions:
        pred_all = _predict(notes, model, fit_on, cv, seed, n_jobs)
        if pred_all is not None:
            pred = pred_all[rows]
            settings["predictions"] = (
                f"{model_label}, out-of-fold ({cv}-fold cross-validation over all "
                f"{full.n_samples} rows of {Path(data_path).name}, seed {seed})"
            )

    curve_data: Any = None
    if repairs_path:
        settings["repairs"] = repairs_path
        if explanation_path:
            settings["repair explanation"] = explanation_path
    if curves_csv:
        if group_mode:
            raise DataworthError("--curves-csv needs per-row values (an index column).")
        curve_data = read_curves_csv(curves_csv)
        settings["removal curves"] = f"read from {curves_csv}"
    elif curves:
        if group_mode:
            raise DataworthError("--curves needs per-row values (an index column).")
        curve_data, how = _curves(
            notes,
            fit_on,
            scale_test,
            group,
            rows,
            values,
            model,
            test_path,
            test_fraction,
            target,
            data_path,
            seed,
            n_jobs,
        )
        settings["removal curves"] = f"{model_label}; {how}"

    page_title = title or f"dataworth report: {Path(data_path).name}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = write_report(
            out,
            data,
            values,
            predictions=pred,
            curves=curve_data,
            settings=settings,
            notes=list(notes),
            title=page_title,
            image_shape=shape,
            max_rows=max_rows,
            repairs=repairs_data,
            repair_explanation=explanation,
            repair_cell=explanation_cell,
        )
    for w in caught:
        notes.append(str(w.message))
    size = path.stat().st_size
    what = f"{data.n_samples} rows" if not group_mode else f"{len(results[0])} sources"
    click.echo(
        f"report: {what}, {len(names)} method{'s' if len(names) != 1 else ''}"
        f"{', removal curves' if curve_data is not None else ''}"
        f"{', data repairs' if repairs_data is not None else ''} -> {path} ({size / 1024:.0f} kB)"
    )
    notes.flush()


def _align_rows(
    notes: Notes,
    full: Dataset,
    names: list[str],
    results: list[ValuationResult],
    data_path: str,
    paths: tuple[str, ...],
) -> tuple[NDArray[np.intp], dict[str, ValuationResult]]:
    """The union of valued rows (positions in the data file) and each method's values on it."""
    n = full.n_samples
    for r, p in zip(results, paths, strict=True):
        idx = r.labels.astype(np.int64)
        outside = idx[(idx < 0) | (idx >= n)]
        if outside.size:
            raise DataworthError(
                f"{p} values row {int(outside[0])}, but {data_path} has only {n} rows "
                f"(0..{n - 1}); is it the file that was valued?"
            )
        valued, times = np.unique(idx, return_counts=True)
        if np.any(times > 1):
            raise DataworthError(f"{p} values row {int(valued[times > 1][0])} more than once.")
    rows = np.unique(np.concatenate([r.labels.astype(np.intp) for r in results]))
    pos = np.full(n, -1, dtype=np.intp)
    pos[rows] = np.arange(rows.size)
    aligned: dict[str, ValuationResult] = {}
    for name, r, p in zip(names, results, paths, strict=True):
        at = pos[r.labels.astype(np.intp)]
        v, s = np.full(rows.size, np.nan), np.full(rows.size, np.nan)
        c = np.zeros(rows.size, dtype=np.int64)
        v[at], s[at], c[at] = r.values, r.stderr, r.counts
        aligned[name] = ValuationResult(
            values=v, stderr=s, counts=c, labels=rows, method=name, params=r.params
        )
        if len(r) < rows.size:
            notes.append(
                f"{p} has no value for {rows.size - len(r)} of the {rows.size} rows "
                "valued in the other files; they show as nan."
            )
    if rows.size < n:
        notes.append(
            f"{rows.size} of the {n} rows of {data_path} have values; the other {n - rows.size} "
            "(without --valid, the valuation set `dataworth value` split off) are left out."
        )
    return rows, aligned


def _predict(
    notes: Notes, model: Any, data: Dataset, cv: int, seed: int, n_jobs: int
) -> NDArray[Any] | None:
    from dataworth.report.html import out_of_fold_predictions

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            pred = out_of_fold_predictions(model, data, cv=cv, random_state=seed, n_jobs=n_jobs)
        except DataworthError:
            raise
        except (ValueError, TypeError) as exc:
            notes.append(f"no predictions: the model could not be cross-validated ({exc}).")
            return None
    messages = sorted({one_line(w.message) for w in caught})
    if messages:
        notes.append(f"while predicting: {'; '.join(messages)}")
    return pred


def _scaled_like(reference: Dataset, data: Dataset) -> Dataset:
    """``data`` standardised with ``reference``'s statistics (``--standardize``)."""
    return scaled_by_train(reference, data)[1]


def _curves(
    notes: Notes,
    full: Dataset,
    scale_test: Callable[[Dataset], Dataset] | None,
    group: str | None,
    rows: NDArray[np.intp],
    values: dict[str, Any],
    model: Any,
    test_path: str | None,
    test_fraction: float,
    target: str,
    data_path: str,
    seed: int,
    n_jobs: int,
) -> tuple[dict[str, Any], str]:
    from dataworth.apps.removal import removal_curves

    valued = full.take(rows)
    if test_path is not None:
        test = load_file(test_path, target, group)
        if test.feature_names != full.feature_names:
            raise DataworthError(f"{test_path} must have the same columns as {data_path}.")
        if scale_test is not None:
            test = scale_test(test)
        train, keep = valued, np.arange(rows.size)
        how = f"retrained on the {rows.size} valued rows, scored on {test_path}"
    else:
        if not 0 < test_fraction < 1:
            raise DataworthError(
                f"--test-fraction must lie strictly between 0 and 1; got {test_fraction}."
            )
        positions = valued.replace(row_labels=np.arange(rows.size))
        tr, te = positions.split(test_fraction, random_state=seed)
        keep = tr.row_labels.astype(np.intp)
        train = valued.take(keep)
        test = valued.take(te.row_labels.astype(np.intp))
        how = (
            f"{test.n_samples} of the {rows.size} valued rows ({test_fraction:g}, seed {seed}) "
            f"held out as test, the other {train.n_samples} retrained"
        )
        notes.append(
            f"removal curves: {how}; the held-out rows are not the valuation set (pass --test to "
            "use a file kept aside instead)."
        )
    sub = {m: np.asarray(r.values, dtype=np.float64)[keep] for m, r in values.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        curves = removal_curves(
            sub, train, test, model, random_state=seed, n_jobs=n_jobs, progress=progress_setting()
        )
    return curves.to_dict(), how
