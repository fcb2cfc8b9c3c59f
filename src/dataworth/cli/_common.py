"""Helpers shared by the commands: notes printed on success, loading, writing values."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import click
import numpy as np

from dataworth.data import Dataset, is_categorical
from dataworth.engine.stopping import Stopping
from dataworth.errors import DataworthError
from dataworth.methods import parameters_of
from dataworth.models import make_model
from dataworth.result import ValuationResult

__all__ = [
    "Notes",
    "build_model",
    "format_cell",
    "format_table",
    "load_pair",
    "method_params",
    "standardize_features",
    "write_values",
]


class Notes(list[str]):
    """Notes collected during a command and printed once it has succeeded, so that a failing
    command prints exactly one line."""

    def flush(self) -> None:
        for message in self:
            click.echo(f"note: {message}", err=True)
        self.clear()


def load_pair(
    notes: Notes,
    train_path: str,
    valid_path: str | None,
    target: str,
    group: str | None,
    valid_fraction: float,
    seed: int,
) -> tuple[Dataset, Dataset]:
    data = Dataset.from_file(train_path, target, group=group)
    announce_whole_number_classes(notes, data)
    if valid_path is None:
        train, valid = data.split(valid_fraction, random_state=seed)
        notes.append(
            f"valuation set: {valid.n_samples} rows ({valid_fraction:g}) split off {train_path} "
            f"with seed {seed}; {train.n_samples} rows are valued."
        )
        return train, valid
    valid = Dataset.from_file(valid_path, target, group=group)
    if valid.feature_names != data.feature_names:
        missing = sorted(set(data.feature_names) - set(valid.feature_names))
        extra = sorted(set(valid.feature_names) - set(data.feature_names))
        detail = "; ".join(
            p
            for p in (
                f"missing {', '.join(map(repr, missing))}" if missing else "",
                f"extra {', '.join(map(repr, extra))}" if extra else "",
                "same columns in a different order" if not (missing or extra) else "",
            )
            if p
        )
        raise DataworthError(f"{valid_path} must have the same columns as {train_path} ({detail}).")
    check_same_target_kind(data, valid, train_path, valid_path)
    return data, valid


#: Distinct whole-number targets beyond which treating them as classes is announced.
MANY_CLASSES = 20


def announce_whole_number_classes(notes: Notes, data: Dataset) -> None:
    """Say so when a whole-number target with many distinct values is taken as class labels.

    Whole numbers are class labels by convention (``Dataset``), which is right for codes such as
    0-9 and wrong for counts or scores; with more than :data:`MANY_CLASSES` values the choice is
    announced with the way out.
    """
    if np.asarray(data.y).dtype.kind not in "iu":
        return
    n_classes = int(np.unique(data.y).size)
    if n_classes > MANY_CLASSES:
        notes.append(
            f"target {data.target_name!r} holds whole numbers with {n_classes} distinct values, "
            f"taken as {n_classes} class labels by classifiers (the default model) and by "
            "class-based methods; if they are quantities, use a regression model "
            "(--model ridge or linear-regression)."
        )


def check_same_target_kind(
    train: Dataset, other: Dataset, train_path: str, other_path: str
) -> None:
    """Refuse a target holding numbers in one file and text in the other (nothing would match).

    A user error, not a model question: e.g. ``0/1`` labels for training and ``yes/no`` for
    validation would score every prediction as wrong without a word.
    """
    numeric = [np.asarray(d.y).dtype.kind in "biuf" for d in (train, other)]
    if numeric[0] == numeric[1]:
        return
    text = other if numeric[0] else train
    example = next((v for v in text.y.tolist() if not _is_number(v)), text.y[0])
    kinds = ("numbers", "text") if numeric[0] else ("text", "numbers")
    raise DataworthError(
        f"the target {train.target_name!r} holds {kinds[0]} in {train_path} but {kinds[1]} in "
        f"{other_path} (e.g. {str(example)[:40]!r}); use the same kind of labels in both files."
    )


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def standardize_features(notes: Notes, train: Dataset, valid: Dataset) -> tuple[Dataset, Dataset]:
    mean = train.X.mean(axis=0)
    std = train.X.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    notes.append("features standardised with the training rows' mean and standard deviation.")
    return train.replace(X=(train.X - mean) / std), valid.replace(X=(valid.X - mean) / std)


def method_params(
    notes: Notes, cls: type, given: dict[str, Any], stop: Stopping | None
) -> dict[str, Any]:
    accepted = parameters_of(cls)
    params: dict[str, Any] = {}
    for name, (value, flag) in given.items():
        if value is None:
            continue
        if name in accepted:
            params[name] = value
        else:
            notes.append(f"{flag} does not apply to {cls.name} and is ignored.")  # type: ignore[attr-defined]
    if stop is not None:
        if "stop" in accepted:
            params["stop"] = stop
        else:
            notes.append(f"--stderr-below/--time-limit do not apply to {cls.name} and are ignored.")  # type: ignore[attr-defined]
    return params


def write_values(path: str | None, result: ValuationResult) -> None:
    """Write ``index|group,value,stderr,count`` rows (to stdout when path is None)."""
    first = "group" if result.kind == "group" else "index"
    rows = (
        [str(label), f"{v:.17g}", f"{s:.17g}", str(int(c))]
        for label, v, s, c in zip(
            result.labels.tolist(), result.values, result.stderr, result.counts, strict=True
        )
    )
    if path is None:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([first, "value", "stderr", "count"])
        writer.writerows(rows)
        return
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow([first, "value", "stderr", "count"])
            writer.writerows(rows)
    except OSError as exc:
        raise DataworthError(f"cannot write {path}: {exc.strerror or exc}") from None


def build_model(name: str | None, params: str | None, y: np.ndarray, seed: int) -> Any:
    """The estimator for ``--model`` and ``--model-params`` (JSON); the default follows ``y``."""
    parsed: dict[str, Any] = {}
    if params:
        try:
            parsed = json.loads(params)
        except json.JSONDecodeError as exc:
            raise DataworthError(f"--model-params is not valid JSON: {exc.msg}.") from None
        if not isinstance(parsed, dict):
            raise DataworthError("--model-params must be a JSON object, e.g. '{\"C\": 0.5}'.")
    if name is None:
        name = "logistic-regression" if is_categorical(y) else "linear-regression"
    return make_model(name, parsed, random_state=seed)


def format_cell(value: Any) -> str:
    """A table cell: floats with 4 significant digits (``nan`` for non-finite), numpy scalars
    as their Python value."""
    if isinstance(value, (float, np.floating)):
        return "nan" if not np.isfinite(value) else f"{value:.4g}"
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value)


def format_table(
    header: list[str], rows: list[list[str]], align: str | None = None, indent: str = ""
) -> str:
    """Columns padded to a common width; ``align`` has one ``l`` or ``r`` per column (default
    all right-aligned); every line starts with ``indent``.

    Examples
    --------
    >>> print(format_table(["row", "value"], [["3", "0.5"], ["12", "-1"]]))
    row  value
      3    0.5
     12     -1
    """
    align = align or "r" * len(header)
    widths = [max([len(h)] + [len(r[k]) for r in rows]) for k, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        parts = [
            c.ljust(w) if a == "l" else c.rjust(w)
            for c, w, a in zip(cells, widths, align, strict=True)
        ]
        return indent + "  ".join(parts).rstrip()

    return "\n".join([line(header), *(line(r) for r in rows)])
