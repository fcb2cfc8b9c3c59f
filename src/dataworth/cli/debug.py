"""``dataworth debug``: which training rows help or hurt one class, and why one row is wrong.

Two modes (see :mod:`dataworth.apps.debug`):

* ``--class C``: value the rows of TRAIN against the valuation rows of class C only; list the
  rows that most help and most hurt that class, and flag possible confounders among the most
  helpful (rows labelled with another class, or labelled C but looking like another class).
* ``--test FILE [--row I]``: without ``--row``, list the rows of FILE the model gets wrong; with
  it, the training rows with the largest influence on row I's loss, with their features (the
  listing of ``dataworth influencers``, from the same :mod:`dataworth.influence` code).

``--group COL`` names a column of data sources, shown next to every listed row (it is not a
feature). Row numbers printed are 0-based data rows of the files (header excluded).
"""

from __future__ import annotations

import math
import time
import warnings

import click

from dataworth.apps.debug import (
    RowTable,
    class_debug,
    class_valuation_set,
    explain_misclassified,
    misclassified_rows,
)
from dataworth.cli._common import (
    INPUT_FILE,
    OUTPUT_FILE,
    check_positive,
    check_row,
    data_options,
    format_cell,
    format_table,
    target_option,
    valid_options,
    write_json,
)
from dataworth.cli._pipeline import Run, model_steps, valuation_steps
from dataworth.data import Dataset
from dataworth.errors import DataworthError
from dataworth.jsonable import json_ready

__all__ = ["debug"]

_MAX_SHOWN_FEATURES = 6
_SHOW_WRONG = 30


def _listing(table: RowTable, raw: Dataset, columns: list[tuple[str, str, str]], empty: str) -> str:
    """``columns``: (table column, header, format spec or '') then the first raw features."""
    if len(table) == 0:
        return f"  {empty}"
    names = list(raw.feature_names[:_MAX_SHOWN_FEATURES])
    positions = table["position"]
    body = []
    for i in range(len(table)):
        cells = []
        for col, _, spec in columns:
            v = table[col][i]
            cells.append(format(float(v), spec) if spec else format_cell(v))
        cells += [format_cell(raw.X[positions[i], j]) for j in range(len(names))]
        body.append(cells)
    header = [h for _, h, _ in columns] + names
    align = "r" * len(columns) + "r" * len(names)
    text = format_table(header, body, align, indent="  ")
    more = raw.n_features - len(names)
    return text + (f"\n  (+{more} more features; --json has them all)" if more > 0 else "")


@click.command()
@click.argument("train", type=INPUT_FILE)
@target_option
@data_options()
@click.option("--class", "cls", default=None, help="Class to debug (a value of --target).")
@valid_options
@click.option("--top", type=int, default=10, show_default=True, help="Rows listed per list.")
@model_steps(
    "Classifier (default logistic-regression); with --row: logistic-regression, ridge "
    "or linear-regression (closed-form influence)."
)
@valuation_steps(
    method="banzhaf", method_help="Valuation method for --class (see `dataworth methods`)."
)
@click.option(
    "--test",
    "test_path",
    type=INPUT_FILE,
    default=None,
    help="Test rows: list the misclassified ones, or --row.",
)
@click.option("--row", type=int, default=None, help="0-based row of --test to explain.")
@click.option(
    "--damping", type=float, default=0.0, show_default=True, help="--row: Hessian damping."
)
@click.option(
    "--group", default=None, help="Column of data sources, shown per row (not a feature)."
)
@click.option(
    "--json",
    "json_path",
    type=OUTPUT_FILE,
    default=None,
    help="Also write the full lists as JSON here.",
)
def debug(
    train: str,
    target: str,
    cls: str | None,
    valid_path: str | None,
    valid_fraction: float,
    top: int,
    test_path: str | None,
    row: int | None,
    damping: float,
    group: str | None,
    json_path: str | None,
    run: Run,
) -> None:
    """Debug a model through its training rows: --class C, or --test FILE [--row I]."""
    if (cls is None) == (test_path is None):
        raise DataworthError("give either --class C (debug one class) or --test FILE (one row).")
    if row is not None and test_path is None:
        raise DataworthError("--row needs --test FILE (the file the row belongs to).")
    check_positive(top, "--top")
    if test_path is not None:
        _row_mode(run, train, target, test_path, row, top, damping, group, json_path)
    else:
        assert cls is not None
        _class_mode(run, train, target, cls, valid_path, valid_fraction, top, group, json_path)


def _class_mode(
    run: Run,
    train: str,
    target: str,
    cls: str,
    valid_path: str | None,
    valid_fraction: float,
    top: int,
    group: str | None,
    json_path: str | None,
) -> None:
    data = run.load_pair(train, valid_path, target, group, valid_fraction)
    tr, va = data.train, data.valid
    assert va is not None
    model = run.model(tr.y)
    started = time.monotonic()
    values = run.value_one(tr, class_valuation_set(va, cls), model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = class_debug(values, tr, va, cls, model, top=top, random_state=run.seed)
    run.notes.add_warnings(caught)
    run.notes.extend(res.notes)
    label = format_cell(res.cls)
    described = run.described()
    method = run.method
    click.echo(
        f"class {label}: {res.n_valid} valuation rows; {type(model).__name__} fitted on all "
        f"{tr.n_samples} training rows gets {100 * res.recall:.0f}% of them right"
    )
    click.echo(
        f"values: {method}"
        + (f" ({described})" if described else "")
        + f" against those rows only, so a row's value is what it adds to the accuracy on "
        f"class {label}"
    )
    has_check = res.looks_like.size > 0
    check_cols = [("looks_like", "looks like", ""), ("p_label", "P(label)", ".2f")]
    cols = [("row", "row", ""), ("value", "value", "+.4g"), ("label", "label", "")]
    cols += check_cols if has_check else []
    cols += [("group", group, "")] if group is not None else []
    click.echo(f"\nrows that most HELP class {label} (highest value first):")
    click.echo(_listing(res.helpers, data.raw_train, cols, "none: no row has a positive value."))
    click.echo(f"\nrows that most HURT class {label} (lowest value first):")
    click.echo(_listing(res.hurters, data.raw_train, cols, "none: no row has a negative value."))
    n_conf = len(res.confounders)
    click.echo(f"\npossible confounders among the {len(res.helpers)} most helpful rows: {n_conf}")
    if n_conf:
        conf = res.confounders
        body = [
            [
                format_cell(conf["row"][i]),
                format(float(conf["value"][i]), "+.4g"),
                format_cell(conf["label"][i]),
                *([format_cell(conf["group"][i])] if group is not None else []),
                str(conf["reason"][i]),
            ]
            for i in range(n_conf)
        ]
        header = ["row", "value", "label", *([group] if group is not None else []), "reason"]
        click.echo(
            format_table(
                header, body, "rrr" + ("r" if group is not None else "") + "l", indent="  "
            )
        )
        click.echo(
            "  a row of another class, or one that looks like another class, should not be what "
            f"makes class {label} right: inspect these rows (shared backgrounds, sources, "
            "mislabels)."
        )
    if math.isfinite(res.other_share_top):
        click.echo(
            f"rows labelled with another class: {100 * res.other_share_top:.0f}% of the helpers, "
            f"{100 * res.other_share_all:.0f}% of all training rows"
        )
    if json_path:
        payload = res.to_dict()
        payload["rows"] = data.raw_train.row_labels.tolist()
        write_json(json_path, payload)
    click.echo(
        f"debugged class {label} in {time.monotonic() - started:.1f} s"
        + (f" -> {json_path}" if json_path else ""),
        err=True,
    )
    run.notes.flush()


def _row_mode(
    run: Run,
    train: str,
    target: str,
    test_path: str,
    row: int | None,
    top: int,
    damping: float,
    group: str | None,
    json_path: str | None,
) -> None:
    data = run.load_train_test(train, test_path, target, group)
    tr, te = data.train, data.test
    raw_tr, raw_te = data.raw_train, data.raw_test
    assert te is not None and raw_te is not None
    model = run.model(tr.y)
    if row is None:
        wrong = misclassified_rows(tr, te, model)
        shown = " ".join(str(int(r)) for r in raw_te.row_labels[wrong][:_SHOW_WRONG])
        more = f" ... ({wrong.size} in all)" if wrong.size > _SHOW_WRONG else ""
        click.echo(
            f"{type(model).__name__} fitted on {train} gets {wrong.size} of {te.n_samples} rows "
            f"of {test_path} wrong" + (f": {shown}{more}" if wrong.size else ".")
        )
        if wrong.size:
            click.echo(f"explain one: add --row {int(raw_te.row_labels[wrong[0]])} to this command")
        if json_path:
            write_json(json_path, {"misclassified": raw_te.row_labels[wrong].tolist()})
        run.notes.flush()
        return
    check_row(row, test_path, te.n_samples)
    ex = explain_misclassified(tr, te, row, model, top, damping=damping)
    features = ", ".join(
        f"{n}={format_cell(raw_te.X[ex.row, j])}"
        for j, n in enumerate(raw_te.feature_names[:_MAX_SHOWN_FEATURES])
    )
    if ex.misclassified is None:
        verdict = f"error {format_cell(ex.error)}"
    else:
        verdict = "MISCLASSIFIED" if ex.misclassified else "classified correctly"
    click.echo(
        f"test row {ex.row} of {test_path}: label {format_cell(ex.label)}, predicted "
        f"{format_cell(ex.predicted)} ({verdict}); {features}"
    )
    if ex.misclassified is False:
        run.notes.append(
            f"row {ex.row} is classified correctly; its influencers are listed anyway."
        )
    cols = [
        ("row", "row", ""),
        ("influence", "influence", "+.4g"),
        ("loss_change_if_removed", "loss change if removed", "+.3g"),
        ("label", "label", ""),
        ("predicted", "predicted", ""),
        *([("group", group, "")] if group is not None else []),
    ]
    click.echo(f"\ntraining rows that most RAISE this row's loss ({ex.model}; harmful):")
    click.echo(_listing(ex.harmful, raw_tr, cols, "none."))
    click.echo("\ntraining rows that most LOWER it (helpful):")
    click.echo(_listing(ex.helpful, raw_tr, cols, "none."))
    click.echo(
        "\ninfluence = -grad L(test)^T H^-1 grad L(row) (exact Hessian); removing a row changes "
        "the loss by about -influence / n. Same computation as `dataworth influencers`."
    )
    if json_path:
        payload = ex.to_dict()
        payload["influence"] = [float(v) for v in ex.influence]
        payload["harmful"] = json_ready(ex.harmful.to_records())
        payload["helpful"] = json_ready(ex.helpful.to_records())
        write_json(json_path, payload)
    run.notes.flush()
