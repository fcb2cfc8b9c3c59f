"""``dataworth repairs``: list the cells a data-repair tool changed, and explain why.

Three modes, each writing ``--out`` (rows and columns 0-based, in input order):

* listing (default): every changed cell as ``row,column,before,after`` (a missing value is an
  empty cell); with ``--explanations FILE``, every repaired cell explained as well, one line
  per (repaired cell, player);
* ``--cell ROW,COLUMN``: the Shapley values of the input cells behind that repair, one line per
  input row (``row,value``), column (``column,value``) or cell (``row,column,value``) with
  ``--by``;
* ``--effect``: the Shapley value of each repair (or group of repairs, ``--by``) on a model's
  validation score, one line per group (``row,value``, ``column,value`` or
  ``row,column,value``).

The games are those of :mod:`dataworth.apps.repairs` and :mod:`dataworth.apps.repair_effects`.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import click
import numpy as np
from numpy.typing import NDArray

from dataworth.apps.repair_effects import RepairEffects, repair_effects
from dataworth.apps.repairs import (
    EXACT_PLAYERS,
    GROUPINGS,
    TOOLS,
    Explanation,
    Repairs,
    explain_repairs,
    list_repairs,
    make_tool,
    run_tool,
)
from dataworth.cli._common import (
    INPUT_FILE,
    MANY_CLASSES,
    OUTPUT_FILE,
    Notes,
    build_model,
    format_cell,
    format_table,
    json_object,
    model_options,
    open_output,
    scoring_option,
    seed_option,
    target_option,
    valid_file_option,
    valid_fraction_option,
)
from dataworth.data import Dataset, read_table
from dataworth.errors import DataworthError
from dataworth.estimators import ESTIMATORS
from dataworth.fileio import spreadsheet_safe
from dataworth.preprocess import TASKS, apply_task
from dataworth.result import ValuationResult

__all__ = ["repairs"]

#: Groups shown in the printed summaries (the files have them all).
_SHOW = 10


# ---------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class Table:
    """Feature columns as floats (missing cells NaN), their names, and where they come from."""

    path: str
    names: list[str]
    X: NDArray[np.float64]


def _features(path: str, columns: dict[str, NDArray[Any]], names: list[str]) -> Table:
    """The columns ``names`` of the file ``path`` as a :class:`Table`."""
    return Table(path, names, np.column_stack([_numeric(columns[c], c, path) for c in names]))


def _numeric(col: NDArray[Any], name: str, path: str) -> NDArray[np.float64]:
    """A numeric column as floats; text or an infinite value is a user error."""
    if np.asarray(col).dtype.kind not in "biuf":
        example = next((str(v) for v in col.tolist() if str(v).strip()), "")
        raise DataworthError(
            f"column {name!r} in {path} is not numeric (it holds {example[:40]!r}); repair tools "
            "here work on numbers: --drop it or encode it as numbers."
        )
    values = np.asarray(col, dtype=np.float64)
    if np.isinf(values).any():
        row = int(np.flatnonzero(np.isinf(values))[0])
        raise DataworthError(f"column {name!r} in {path} has an infinite value at data row {row}.")
    return values


def _names(text: str | None, flag: str) -> list[str]:
    if text is None:
        return []
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise DataworthError(f"{flag} needs column names separated by commas, e.g. {flag} a,b.")
    return names


def _check_present(names: Sequence[str], columns: dict[str, Any], path: str, what: str) -> None:
    for name in names:
        if name not in columns:
            available = ", ".join(map(repr, list(columns)[:20]))
            more = ", ..." if len(columns) > 20 else ""
            raise DataworthError(
                f"{what} {name!r} not found in {path}; available columns: {available}{more}."
            )


def _feature_names(
    columns: dict[str, Any], target: str, features: str | None, drop: str | None, path: str
) -> list[str]:
    """The columns the tool sees: ``--features``, or all but the target and ``--drop``."""
    _check_present([target], columns, path, "target column")
    chosen, dropped = _names(features, "--features"), _names(drop, "--drop")
    if chosen and dropped:
        raise DataworthError("give --features (the columns to use) or --drop, not both.")
    _check_present(chosen + dropped, columns, path, "column")
    if target in chosen:
        raise DataworthError(f"the target {target!r} cannot be a feature: the tool never sees it.")
    names = chosen or [c for c in columns if c != target and c not in dropped]
    if not names:
        raise DataworthError(f"{path} has no feature column besides the target.")
    return names


def _repaired_table(path: str, raw: Table) -> Table:
    """``--repaired``: the same feature columns and number of rows as RAW."""
    columns = read_table(path)
    n_rows = len(next(iter(columns.values())))
    missing = [c for c in raw.names if c not in columns]
    if missing or n_rows != raw.X.shape[0]:
        detail = (
            f"lacks the column(s) {', '.join(map(repr, missing))}"
            if missing
            else (f"has {n_rows} rows")
        )
        raise DataworthError(
            f"--repaired {path} must have the shape of {raw.path} ({raw.X.shape[0]} rows and the "
            f"columns {', '.join(map(repr, raw.names))}) but {detail}."
        )
    return _features(path, columns, raw.names)


# ---------------------------------------------------------------------------------- writing
def _number(value: float) -> str:
    """A value exactly (shortest round trip); a missing value as an empty cell."""
    return "" if np.isnan(value) else repr(float(value))


def _write_rows(path: str, header: list[str], rows: Sequence[Sequence[str]]) -> None:
    with open_output(path) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _write_listing(path: str, repairs: Repairs, names: Sequence[str]) -> None:
    rows = [
        [str(r), spreadsheet_safe(names[c]), _number(b), _number(a)]
        for r, c, b, a in zip(
            repairs.rows.tolist(), repairs.columns.tolist(), repairs.before, repairs.after,
            strict=True,
        )
    ]  # fmt: skip
    _write_rows(path, ["row", "column", "before", "after"], rows)


def _write_explanation(
    path: str, ex: Explanation, shape: tuple[int, int], names: list[str]
) -> None:
    """One line per input row, column or cell (0 for those without a non-missing cell)."""
    by = ex.players.by
    if by == "cell":
        table = ex.by_cell(shape)
        rows = [
            [str(r), spreadsheet_safe(names[c]), _number(table[r, c])]
            for r in range(shape[0])
            for c in range(shape[1])
        ]
        _write_rows(path, ["row", "column", "value"], rows)
        return
    values = ex.by_group(shape[0] if by == "row" else shape[1])
    labels = (
        [str(r) for r in range(shape[0])] if by == "row" else list(map(spreadsheet_safe, names))
    )
    _write_rows(path, [by, "value"], [[g, _number(v)] for g, v in zip(labels, values, strict=True)])


def _player_cells(
    rows: NDArray[np.intp], columns: NDArray[np.intp], names: list[str]
) -> list[list[str]]:
    """Each player's row and/or column as output cells (a -1 part is left out)."""
    return [
        [str(r)] * (r >= 0) + [spreadsheet_safe(names[c])] * (c >= 0)
        for r, c in zip(rows.tolist(), columns.tolist(), strict=True)
    ]


def _write_all_explanations(path: str, explanations: list[Explanation], names: list[str]) -> None:
    """One line per (repaired cell, player): ``row,column,input_row|input_column,...,value``."""
    by = explanations[0].players.by
    inputs = {"row": ["input_row"], "column": ["input_column"],
              "cell": ["input_row", "input_column"]}[by]  # fmt: skip
    players = _player_cells(explanations[0].players.rows, explanations[0].players.columns, names)
    rows = [
        [str(ex.row), spreadsheet_safe(names[ex.column]), *player, _number(v)]
        for ex in explanations
        for player, v in zip(players, ex.result.values, strict=True)
    ]
    _write_rows(path, ["row", "column", *inputs, "value"], rows)


def _write_effects(path: str, fx: RepairEffects, names: list[str]) -> None:
    header = {"row": ["row"], "column": ["column"], "cell": ["row", "column"]}[fx.by]
    groups = _player_cells(fx.rows, fx.columns, names)
    rows = [[*g, _number(v)] for g, v in zip(groups, fx.result.values, strict=True)]
    _write_rows(path, [*header, "value"], rows)


# ---------------------------------------------------------------------------------- summaries
def _group_label(row: int, column: int, names: list[str]) -> str:
    """A row number, a column name, or both for a cell."""
    parts = ([str(row)] if row >= 0 else []) + ([names[column]] if column >= 0 else [])
    return ", ".join(parts)


@dataclass(frozen=True)
class Sampling:
    """How the games are valued beyond the exact limit, and the fallback of the tool's game."""

    budget: int | None
    estimator: str
    seed: int
    fallback: float

    def describe(self, n_players: int) -> str:
        """``exact``, or the estimator, budget and seed of a sampled valuation."""
        if n_players <= EXACT_PLAYERS:
            return "exact"
        return f"sampled: {self.estimator}, budget {self.budget or 2000}, seed {self.seed}"

    def options(self) -> dict[str, Any]:
        """The keyword arguments of the library's valuation functions."""
        return {"budget": self.budget, "seed": self.seed, "estimator": self.estimator}


def _listing_summary(repairs: Repairs, raw: Table, tool_name: str) -> str:
    n, d = raw.X.shape
    filled = int(np.isnan(repairs.before).sum())
    lines = [
        f"{tool_name} changed {len(repairs)} of {n * d} cells ({filled} were missing) in "
        f"{np.unique(repairs.rows).size} of {n} rows."
    ]
    if len(repairs):
        per_column = np.bincount(repairs.columns, minlength=d)
        table = [[raw.names[c], str(per_column[c])] for c in np.flatnonzero(per_column)]
        lines.append(format_table(["column", "changed"], table, "lr", indent="  "))
    return "\n".join(lines)


def _explanation_summary(ex: Explanation, raw: Table, how: str, before: float, notes: Notes) -> str:
    names = raw.names
    n_players = ex.players.n_players
    order = np.argsort(-np.abs(ex.result.values), kind="stable")[:_SHOW]
    table = [
        [_group_label(int(ex.players.rows[k]), int(ex.players.columns[k]), names),
         format_cell(ex.result.values[k])]
        for k in order
    ]  # fmt: skip
    was = "missing" if np.isnan(before) else format_cell(before)
    if ex.fallbacks:
        notes.append(
            f"{ex.fallbacks} coalition(s) could not be repaired at the cell by the tool (it "
            "failed, dropped a column or left the cell missing) and count as the fallback value."
        )
    return "\n".join([
        f"cell (row {ex.row}, column {names[ex.column]!r}): {was} -> "
        f"{format_cell(ex.repaired_value)}",
        f"Shapley values of {n_players} {ex.players.by} player(s) ({how}); they add up to "
        f"{format_cell(float(ex.result.values.sum()))} = repaired value "
        f"{format_cell(ex.repaired_value)} - empty coalition {format_cell(ex.empty_value)}.",
        format_table([ex.players.by, "value"], table, "lr", indent="  "),
    ])  # fmt: skip


def _effects_summary(fx: RepairEffects, names: list[str], how: str, n_valid: int) -> str:
    values = fx.result.values
    label = [_group_label(int(r), int(c), names) for r, c in zip(fx.rows, fx.columns, strict=True)]
    helped = [k for k in np.argsort(-values, kind="stable") if values[k] > 0][:_SHOW]
    hurt = [k for k in np.argsort(values, kind="stable") if values[k] < 0]
    lines = [
        f"{fx.scoring} on {n_valid} validation rows: raw data (missing cells: raw column means) "
        f"{format_cell(fx.raw_score)}; with every repair {format_cell(fx.repaired_score)}.",
        f"Shapley values of {values.size} group(s) of repairs by {fx.by} ({how}).",
    ]
    if helped:
        rows = [[label[k], format_cell(values[k])] for k in helped]
        lines += ["repairs that helped most:", format_table([fx.by, "value"], rows, "lr", "  ")]
    if hurt:
        rows = [[label[k], format_cell(values[k])] for k in hurt[:_SHOW]]
        more = f" ({len(hurt)}; the {_SHOW} worst shown)" if len(hurt) > _SHOW else ""
        lines += [f"repairs that hurt (negative value){more}:",
                  format_table([fx.by, "value"], rows, "lr", "  ")]  # fmt: skip
    else:
        lines.append("repairs that hurt (negative value): none.")
    return "\n".join(lines)


def _reliability(result: ValuationResult, notes: Notes) -> None:
    """For sampled values: the share indistinguishable from zero and the split-half rank
    agreement (see ``dataworth value``), with a budget that would make the ranking reliable."""
    share = result.metadata.get("share_near_zero")
    agreement = result.metadata.get("split_half_spearman")
    if share is None or agreement is None:
        return
    line = (
        f"sampled values: {100 * share:.1f}% are indistinguishable from zero (|value| < 2 "
        f"standard errors); the two halves of the samples rank them with Spearman {agreement:.2f}"
    )
    budget = result.metadata.get("suggested_budget")
    notes.append(line + (f"; about --budget {budget} would bring that to 0.9." if budget else "."))


# ---------------------------------------------------------------------------------- modes
def _parse_cell(text: str, raw: Table) -> tuple[int, int]:
    """``ROW,COLUMN`` as a row number and a column index of RAW."""
    row_text, sep, column = text.partition(",")
    try:
        row = int(row_text) if sep else None
    except ValueError:
        row = None
    if row is None:
        raise DataworthError(
            f"--cell must be ROW,COLUMN (a 0-based row and a column name); got {text!r}."
        )
    n = raw.X.shape[0]
    if not 0 <= row < n:
        raise DataworthError(
            f"--cell row {row} is out of range: {raw.path} has {n} rows (0-based)."
        )
    column = column.strip()
    if column not in raw.names:
        raise DataworthError(
            f"--cell column {column!r} is not a feature column of {raw.path}; they are: "
            f"{', '.join(map(repr, raw.names))}."
        )
    return row, raw.names.index(column)


def _check_repaired(cell: tuple[int, int], repairs: Repairs, raw: Table) -> None:
    hit = (repairs.rows == cell[0]) & (repairs.columns == cell[1])
    if hit.any():
        return
    shown = ", ".join(
        f"{r},{raw.names[c]}" for r, c in zip(repairs.rows[:5], repairs.columns[:5], strict=True)
    )
    more = f" (first of {len(repairs)}: {shown})" if len(repairs) else " (none was changed)"
    raise DataworthError(
        f"--cell {cell[0]},{raw.names[cell[1]]} is not a repaired cell: the tool did not change "
        f"it; explain one of the repaired cells{more}."
    )


def _labels(
    columns: dict[str, NDArray[Any]], target: str, path: str, task: str | None
) -> NDArray[Any]:
    """The target as the library reads labels (whole numbers and text are classes, unless
    ``task`` says otherwise); a missing label is a user error."""
    n = len(columns[target])
    data = Dataset.from_columns({"\x00": np.zeros(n), target: columns[target]}, target, source=path)
    return apply_task(data.y, task, target)


def _validation(
    raw: Table,
    y: NDArray[Any],
    split: tuple[str | None, float, str, str | None],
    seed: int,
    notes: Notes,
) -> tuple[NDArray[np.intp], NDArray[np.float64], NDArray[Any]]:
    """The training rows of RAW, and the validation features and target: ``--valid`` as given,
    or ``--valid-fraction`` of RAW's complete rows (no missing cell), as measured. Either way
    the validation rows do not depend on the tool whose repairs are valued."""
    valid_path, valid_fraction, target, task = split
    n = raw.X.shape[0]
    if valid_path is not None:
        columns = read_table(valid_path)
        _check_present([*raw.names, target], columns, valid_path, "column")
        valid = _features(valid_path, columns, raw.names)
        notes.append(
            f"validation rows: {valid_path} as given, its missing cells filled with the raw "
            "training column means."
        )
        return np.arange(n), valid.X, _labels(columns, target, valid_path, task)
    complete = np.flatnonzero(~np.isnan(raw.X).any(axis=1))
    if complete.size == 0:
        raise DataworthError(
            f"every row of {raw.path} has a missing cell, so none can be split off as a "
            "validation row: give --valid."
        )
    labels = Dataset.from_arrays(np.zeros((complete.size, 1)), y[complete], target_name=target)
    _, held_out = labels.split(valid_fraction, random_state=seed)
    valid_rows = complete[np.asarray(held_out.row_labels, dtype=np.intp)]
    rows = np.setdiff1d(np.arange(n), valid_rows)
    notes.append(
        f"validation rows: {valid_rows.size} of the {complete.size} complete rows of {raw.path} "
        f"({valid_fraction:g}, seed {seed}), as measured; the repairs of the other {rows.size} "
        "rows are valued."
    )
    return rows, raw.X[valid_rows], y[valid_rows]


def _check_options(
    tool: str | None,
    repaired_path: str | None,
    cell: str | None,
    explanations: str | None,
    effect: bool,
) -> None:
    """Refuse combinations of options that make no run, before any work."""
    if tool is None and repaired_path is None:
        raise DataworthError(
            "give --tool (a repair tool to run on RAW) or --repaired (an external tool's output)."
        )
    if effect and (cell is not None or explanations is not None):
        raise DataworthError("--effect values repairs; --cell and --explanations explain them: "
                             "choose one.")  # fmt: skip
    if cell is not None and explanations is not None:
        raise DataworthError("--explanations explains every repaired cell: leave out --cell.")
    if tool is None and (cell is not None or explanations is not None):
        raise DataworthError(
            "explaining a repair re-runs the tool on masked copies of RAW: give --tool (the tool "
            "that made --repaired)."
        )


def _cell_mode(
    raw: Table,
    repaired: Table,
    cell: tuple[int, int],
    tool: Any,
    by: str,
    how: Sampling,
    out: str,
    notes: Notes,
) -> None:
    [ex] = explain_repairs(raw.X, [cell], tool, by=by, feature_names=raw.names,
                           fallback=how.fallback, **how.options())  # fmt: skip
    _write_explanation(out, ex, raw.X.shape, raw.names)
    given = float(repaired.X[cell])
    if not np.isclose(ex.repaired_value, given, rtol=1e-9, atol=0.0):
        notes.append(
            f"the tool repairs the cell to {format_cell(ex.repaired_value)} on {raw.path}, but "
            f"{repaired.path} holds {format_cell(given)}; the values explain the tool's repair."
        )
    before = float(raw.X[cell])
    _reliability(ex.result, notes)
    click.echo(_explanation_summary(ex, raw, how.describe(ex.players.n_players), before, notes))


def _all_mode(raw: Table, found: Repairs, tool: Any, by: str, how: Sampling, path: str) -> None:
    cells = list(zip(found.rows.tolist(), found.columns.tolist(), strict=True))
    explained = explain_repairs(raw.X, cells, tool, by=by, feature_names=raw.names,
                                fallback=how.fallback, **how.options())  # fmt: skip
    _write_all_explanations(path, explained, raw.names)
    n_players = explained[0].players.n_players
    click.echo(
        f"explained {len(cells)} repaired cell(s) by {n_players} {by} player(s) "
        f"({how.describe(n_players)}); written to {path}."
    )


def _effect_mode(
    raw: Table,
    repaired: Table,
    columns: dict[str, NDArray[Any]],
    split: tuple[str | None, float, str, str | None],
    model_spec: tuple[str | None, str | None, str | None],
    by: str,
    how: Sampling,
    out: str,
    notes: Notes,
) -> None:
    target, task = split[2], split[3]
    model_name, model_params, scoring = model_spec
    y = _labels(columns, target, raw.path, task)
    if task is None and y.dtype.kind in "iu" and np.unique(y).size > MANY_CLASSES:
        notes.append(
            f"target {target!r} holds whole numbers with {np.unique(y).size} distinct values, "
            "taken as class labels; if they are quantities, pass --task regression."
        )
    rows, valid_X, valid_y = _validation(raw, y, split, how.seed, notes)
    model = build_model(model_name, model_params, y, how.seed)
    fx = repair_effects(raw.X[rows], repaired.X[rows], y[rows], valid_X, valid_y, model, by=by,
                        scoring=scoring, **how.options())  # fmt: skip
    _write_effects(out, fx, raw.names)
    _reliability(fx.result, notes)
    notes.append(
        "in every coalition, cells still missing are filled with their column's mean over the "
        "raw training rows."
    )
    click.echo(_effects_summary(fx, raw.names, how.describe(fx.rows.size), valid_y.size))


@click.command()
@click.argument("raw_path", metavar="RAW", type=INPUT_FILE)
@target_option
@click.option(
    "--tool",
    default=None,
    help=f"Repair tool: {', '.join(TOOLS)}, or a dotted path to a class with fit_transform "
    "(its module is imported, which runs its code). It sees the feature columns only.",
)
@click.option("--tool-params", default=None, help="JSON object of the tool's parameters.")
@click.option(
    "--repaired",
    "repaired_path",
    type=INPUT_FILE,
    default=None,
    help="The output of an external tool for RAW (same rows and feature columns); explaining a "
    "repair still needs --tool, to re-run it.",
)
@click.option("--features", default=None, help="Feature columns, comma-separated (default: all "
              "but the target and --drop).")  # fmt: skip
@click.option("--drop", default=None, help="Columns the tool does not see, comma-separated.")
@click.option("--out", type=OUTPUT_FILE, required=True, help="CSV to write (see the modes).")
@click.option("--cell", default=None, help="ROW,COLUMN: explain the repair of this cell.")
@click.option(
    "--by",
    type=click.Choice(GROUPINGS),
    default=None,
    help="Players: input rows, columns or cells (--cell, --explanations; default row), or "
    "repairs grouped by row, column or one by one (--effect; default column).",
)
@click.option(
    "--explanations",
    type=OUTPUT_FILE,
    default=None,
    help="Listing mode: also explain every repaired cell, one line per (cell, player).",
)
@click.option("--effect", is_flag=True, help="Value the repairs by their effect on a model.")
@model_options("Model for --effect (default: logistic regression for class labels, linear "
               "regression for real values), a name or a dotted class path.")  # fmt: skip
@valid_file_option
@valid_fraction_option("RAW's complete rows (no missing cell)")
@scoring_option
@click.option(
    "--budget",
    type=click.IntRange(min=1),
    default=None,
    help=f"Utility evaluations (tool runs or model fits) above {EXACT_PLAYERS} players "
    "(default 2000); fewer players are valued exactly.",
)
@click.option(
    "--estimator",
    type=click.Choice(list(ESTIMATORS)),
    default="permutation",
    show_default=True,
    help="Shapley estimator above the exact limit.",
)
@click.option(
    "--fallback",
    type=float,
    default=0.0,
    show_default=True,
    help="Value of a coalition the tool cannot repair (it fails, drops a column or leaves the "
    "cell missing), e.g. every cell masked.",
)
@click.option(
    "--task",
    type=click.Choice(TASKS),
    default=None,
    help="--effect: treat the target as class labels or as real values (default: text and whole "
    "numbers are classes, other numbers real values).",
)
@seed_option
def repairs(
    raw_path: str,
    target: str,
    tool: str | None,
    tool_params: str | None,
    repaired_path: str | None,
    features: str | None,
    drop: str | None,
    out: str,
    cell: str | None,
    by: str | None,
    explanations: str | None,
    effect: bool,
    model_name: str | None,
    model_params: str | None,
    valid_path: str | None,
    valid_fraction: float,
    scoring: str | None,
    budget: int | None,
    estimator: str,
    fallback: float,
    task: str | None,
    seed: int,
) -> None:
    """List the cells a data-repair tool changed in RAW, and explain them with Shapley values.

    Without --cell, --out lists every changed cell as row,column,before,after. With --cell
    ROW,COLUMN, --out holds the Shapley values of RAW's input cells (grouped --by row, column
    or cell) behind that repair: the game runs the tool on RAW with every cell outside a
    coalition masked as missing (Deutch, Frost, Gilad & Sheffer 2021). With --effect, --out
    values each repair (or group) by its effect on a model's validation score.
    """
    notes = Notes()
    _check_options(tool, repaired_path, cell, explanations, effect)
    if not effect:
        effect_only = {"--model": model_name, "--model-params": model_params,
                       "--valid": valid_path, "--scoring": scoring, "--task": task}  # fmt: skip
        for flag, given in effect_only.items():
            if given is not None:
                notes.append(f"{flag} applies only to --effect and is ignored.")
    columns = read_table(raw_path)
    raw = _features(raw_path, columns, _feature_names(columns, target, features, drop, raw_path))
    target_cell = _parse_cell(cell, raw) if cell is not None else None
    repair_tool: Any = None
    if tool is not None:
        params = json_object(tool_params, "--tool-params", '{"n_neighbors": 3}')
        repair_tool = make_tool(tool, params, random_state=seed)
    if repaired_path is not None:
        repaired = _repaired_table(repaired_path, raw)
    else:
        repaired = Table(f"the output of {tool}", raw.names, run_tool(repair_tool, raw.X))
    found = list_repairs(raw.X, repaired.X)
    how = Sampling(budget, estimator, seed, fallback)
    if effect:
        model = (model_name, model_params, scoring)
        split = (valid_path, valid_fraction, target, task)
        _effect_mode(raw, repaired, columns, split, model, by or "column", how, out, notes)
    elif target_cell is not None:
        _check_repaired(target_cell, found, raw)
        _cell_mode(raw, repaired, target_cell, repair_tool, by or "row", how, out, notes)
    else:
        _write_listing(out, found, raw.names)
        click.echo(_listing_summary(found, raw, tool or repaired_path or ""))
        if explanations is not None and len(found):
            _all_mode(raw, found, repair_tool, by or "row", how, explanations)
        elif explanations is not None:
            notes.append(f"no cell was changed: nothing to explain; {explanations} not written.")
    notes.flush()
