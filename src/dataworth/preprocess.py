"""Feature preprocessing for tables: choose the feature columns, encode text, fill blanks.

One job: turn a table's named columns (as :func:`dataworth.data.read_table` returns them) into
the float feature matrix every valuation method takes. :class:`FeaturePreprocessor` is fitted on
the training rows only and applied unchanged to every other table (a valuation file, a test
file), so that no statistic of the held-out rows leaks into the features.

- **Columns**: ``features`` (only these), ``drop`` (all but these) and ``id_column`` (a row
  identifier, never a feature).
- **Text features** (``encode``): ``onehot`` (one 0/1 column per category seen in training),
  ``ordinal`` (one column of category codes) or ``refuse``.
- **Missing feature values** (``impute``): ``median`` (numbers; the most frequent text for text
  columns), ``most-frequent`` or ``refuse``.

Every choice that changed something is reported in :attr:`FeaturePreprocessor.notes`, as is a
numeric feature that looks like a row identifier (unique whole numbers, monotone or
consecutive), which distorts distance- and model-based values.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dataworth.data import is_missing
from dataworth.errors import DataworthError

__all__ = [
    "ENCODINGS",
    "IMPUTATIONS",
    "TASKS",
    "Choices",
    "FeaturePreprocessor",
    "apply_task",
    "feature_columns",
]

ENCODINGS = ("onehot", "ordinal", "refuse")
IMPUTATIONS = ("median", "most-frequent", "refuse")
TASKS = ("classification", "regression")

#: Fewest rows for which unique whole numbers are taken to look like an identifier.
_ID_MIN_ROWS = 10


@dataclass(frozen=True)
class Choices:
    """What the user chose: columns, encoding of text features, filling of blanks, task."""

    features: tuple[str, ...] | None = None
    drop: tuple[str, ...] = ()
    id_column: str | None = None
    encode: str = "onehot"
    impute: str = "median"
    task: str | None = None

    def __post_init__(self) -> None:
        if self.encode not in ENCODINGS:
            raise DataworthError(
                f"encode must be one of {', '.join(ENCODINGS)}; got {self.encode!r}."
            )
        if self.impute not in IMPUTATIONS:
            raise DataworthError(
                f"impute must be one of {', '.join(IMPUTATIONS)}; got {self.impute!r}."
            )
        if self.task is not None and self.task not in TASKS:
            raise DataworthError(f"task must be one of {', '.join(TASKS)}; got {self.task!r}.")


def feature_columns(
    names: Sequence[str], target: str, group: str | None, choices: Choices, source: str
) -> list[str]:
    """The feature columns of a table with columns ``names``: ``choices.features`` (in that
    order) or every column but the target, the group, the id and ``choices.drop``.

    Raises
    ------
    DataworthError
        When the target, the id, or a column named in ``features``/``drop`` is not in the
        table (all unknown names in one message), or no feature column is left.
    """
    available = ", ".join(map(repr, names))
    if target not in names:
        raise DataworthError(
            f"target column {target!r} not found in {source}; available columns: {available}."
        )
    if group is not None and group not in names:
        raise DataworthError(
            f"group column {group!r} not found in {source}; available columns: {available}."
        )
    unknown: list[str] = []
    for flag, given in (
        ("--features", choices.features or ()),
        ("--drop", choices.drop),
        ("--id", () if choices.id_column is None else (choices.id_column,)),
    ):
        missing = [c for c in given if c not in names]
        if missing:
            unknown.append(f"{flag} {', '.join(map(repr, missing))}")
    if unknown:
        raise DataworthError(
            f"{'; '.join(unknown)}: not column(s) of {source}; available columns: {available}."
        )
    reserved = {target: "the target", group: "the group", choices.id_column: "the id"}
    if choices.features is not None:
        clash = [f"{c!r} ({reserved[c]})" for c in choices.features if c in reserved]
        if clash:
            raise DataworthError(f"--features names {', '.join(clash)}; it cannot be a feature.")
        chosen = [c for c in dict.fromkeys(choices.features) if c not in choices.drop]
    else:
        chosen = [c for c in names if c not in reserved and c not in choices.drop]
    if not chosen:
        raise DataworthError(f"no feature columns are left in {source} after --features/--drop.")
    return chosen


def apply_task(y: NDArray[Any], task: str | None, target: str) -> NDArray[Any]:
    """``y`` as class labels (``classification``) or real values (``regression``); ``None``
    keeps the default rule (whole numbers and text are classes, other numbers are values)."""
    if task is None:
        return y
    numeric = y.dtype.kind in "biuf"
    if task == "regression":
        if not numeric:
            example = next(str(v) for v in y.tolist())
            raise DataworthError(
                f"--task regression needs a numeric target; {target!r} holds text (e.g. "
                f"{example[:40]!r})."
            )
        return y.astype(np.float64)
    if numeric and y.dtype.kind == "f":
        whole = np.isfinite(y) & (y == np.round(y))
        if not whole.all():
            bad = int(np.flatnonzero(~whole)[0])
            raise DataworthError(
                f"--task classification needs class labels; {target!r} holds {y[bad]:g} at row "
                f"{bad}: use whole numbers or text for classes, or --task regression."
            )
        return y.astype(np.int64)
    return y


def _is_text(col: NDArray[Any]) -> bool:
    return col.dtype.kind not in "biuf"


def _describe_order(values: NDArray[np.float64]) -> str | None:
    """Why a numeric column looks like an identifier, or None."""
    finite = values[np.isfinite(values)]
    if finite.size < _ID_MIN_ROWS or finite.size != values.size:
        return None
    if not np.all(finite == np.round(finite)) or np.unique(finite).size != finite.size:
        return None
    diffs = np.diff(finite)
    if np.all(diffs > 0):
        return "unique whole numbers, increasing"
    if np.all(diffs < 0):
        return "unique whole numbers, decreasing"
    if float(finite.max() - finite.min()) + 1 == finite.size:
        return "unique whole numbers, consecutive"
    return None


class FeaturePreprocessor:
    """Fit on training columns, then turn any table with those columns into a float matrix.

    Parameters
    ----------
    choices : Choices
    names : sequence of str
        The feature columns (:func:`feature_columns`).

    Examples
    --------
    >>> cols = {"size": np.array([1.0, np.nan, 3.0]), "colour": np.array(["red", "blue", "red"])}
    >>> pre = FeaturePreprocessor(Choices(), ["size", "colour"]).fit(cols, "train.csv")
    >>> X, names = pre.transform(cols, "train.csv")
    >>> names
    ('size', 'colour=blue', 'colour=red')
    >>> X.tolist()
    [[1.0, 0.0, 1.0], [2.0, 1.0, 0.0], [3.0, 0.0, 1.0]]
    """

    def __init__(self, choices: Choices, names: Sequence[str]) -> None:
        self.choices = choices
        self.names = list(names)
        self.notes: list[str] = []
        self._fill: dict[str, Any] = {}
        self._categories: dict[str, list[str]] = {}
        self._encoders: dict[str, Any] = {}
        self._source = ""
        self._rows: NDArray[Any] | None = None

    def _file_row(self, i: int) -> int:
        """The row of the file of the ``i``-th training row."""
        return i if self._rows is None else int(self._rows[i])

    def _encoder(self) -> Any:
        """A scikit-learn encoder for one text column, as ``choices.encode`` asks."""
        from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

        if self.choices.encode == "ordinal":
            return OrdinalEncoder(
                handle_unknown="use_encoded_value", unknown_value=-1, dtype=np.float64
            )
        return OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float64)

    # ------------------------------------------------------------------ fitting
    def fit(
        self, columns: Mapping[str, NDArray[Any]], source: str, rows: NDArray[Any] | None = None
    ) -> FeaturePreprocessor:
        """Learn fills and categories from ``rows`` (default all) of ``columns``."""
        self._source = source
        self._rows = None if rows is None else np.asarray(rows)
        text_cols: list[str] = []
        filled: list[str] = []
        for name in self.names:
            col = np.asarray(columns[name])
            if rows is not None:
                col = col[rows]
            if _is_text(col):
                cells = [str(v).strip() for v in col.tolist()]
                missing = np.array([is_missing(v) for v in cells], dtype=bool)
                present = [c for c, m in zip(cells, missing, strict=True) if not m]
                self._check_text(name, cells, missing)
                if not present:
                    raise DataworthError(
                        f"feature column {name!r} in {source} has no values in the training "
                        "rows; drop it (--drop)."
                    )
                values, counts = np.unique(np.array(present), return_counts=True)
                self._fill[name] = str(values[int(np.argmax(counts))])
                if missing.any():
                    self._refuse_missing(name, missing)
                    filled.append(name)
                self._categories[name] = [str(v) for v in values]
                self._encoders[name] = self._encoder().fit(np.array(present, dtype=object)[:, None])
                text_cols.append(name)
                if len(values) == len(present) >= _ID_MIN_ROWS:
                    self.notes.append(
                        f"feature {name!r} looks like an identifier (a different text in every "
                        f"row); pass --id {name} to keep it as the row label, or --drop {name}."
                    )
                continue
            values = col.astype(np.float64)
            nan = np.isnan(values)
            if nan.all():
                raise DataworthError(
                    f"feature column {name!r} in {source} has no values in the training rows; "
                    "drop it (--drop)."
                )
            present_values = values[~nan]
            if self.choices.impute == "most-frequent":
                uniq, counts = np.unique(present_values, return_counts=True)
                self._fill[name] = float(uniq[int(np.argmax(counts))])
            else:
                self._fill[name] = float(np.median(present_values))
            if nan.any():
                self._refuse_missing(name, nan)
                filled.append(name)
            why = _describe_order(values)
            if why is not None and name != self.choices.id_column:
                self.notes.append(
                    f"feature {name!r} looks like an identifier ({why}); as a feature it "
                    f"distorts the values: pass --id {name} to keep it as the row label only, "
                    f"or --drop {name}."
                )
        if text_cols and self.choices.encode == "refuse":
            name = text_cols[0]
            raise DataworthError(
                f"feature column {name!r} in {source} is not numeric (e.g. "
                f"{self._categories[name][0][:40]!r}); encode it as numbers or drop it, or pass "
                "--encode onehot|ordinal."
            )
        if text_cols:
            how = (
                "one-hot encoded (one 0/1 column per category)"
                if self.choices.encode == "onehot"
                else "ordinal encoded (one column of category codes)"
            )
            shown = ", ".join(f"{c!r} ({len(self._categories[c])} categories)" for c in text_cols)
            self.notes.append(
                f"text feature(s) {shown} {how}, categories from the training rows; "
                "--encode onehot|ordinal|refuse to choose."
            )
        if filled:
            kinds = {name in self._categories for name in filled}
            how = (
                "most frequent value"
                if self.choices.impute == "most-frequent" or kinds == {True}
                else "median"
                if kinds == {False}
                else "median (numbers) or most frequent value (text)"
            )
            self.notes.append(
                f"missing values in {', '.join(map(repr, filled))} filled with the training "
                f"rows' {how}; --impute median|most-frequent|refuse to choose."
            )
        return self

    def _check_text(self, name: str, cells: list[str], missing: NDArray[np.bool_]) -> None:
        """Refuse a column of numbers with a few stray texts: encoding it would be wrong."""
        numbers = 0
        first_bad: int | None = None
        for i, (cell, m) in enumerate(zip(cells, missing, strict=True)):
            if m:
                continue
            try:
                float(cell)
                numbers += 1
            except ValueError:
                if first_bad is None:
                    first_bad = i
        present = int((~missing).sum())
        if first_bad is not None and numbers >= max(1, present // 2):
            raise DataworthError(
                f"feature column {name!r} in {self._source} is not numeric: it holds numbers "
                f"but also {cells[first_bad][:40]!r} (first at row {self._file_row(first_bad)}); "
                "fix those cells, or leave them blank to have them filled (--impute)."
            )

    def _refuse_missing(
        self, name: str, missing: NDArray[np.bool_], source: str | None = None
    ) -> None:
        """Refuse missing values (in the training rows, or in the table ``source``) when the
        user asked for ``--impute refuse``."""
        if self.choices.impute != "refuse":
            return
        first = int(np.flatnonzero(missing)[0])
        row = first if source is not None else self._file_row(first)
        raise DataworthError(
            f"feature {name!r} in {source or self._source} has {int(missing.sum())} missing "
            f"value(s) (first at row {row}); fill or drop those rows, or pass "
            "--impute median|most-frequent."
        )

    # ------------------------------------------------------------------ applying
    def transform(
        self, columns: Mapping[str, NDArray[Any]], source: str
    ) -> tuple[NDArray[np.float64], tuple[str, ...]]:
        """The feature matrix of ``columns`` and its column names."""
        n = len(next(iter(columns.values())))
        blocks: list[NDArray[np.float64]] = []
        names: list[str] = []
        unseen: list[str] = []
        for name in self.names:
            col = np.asarray(columns[name])
            if name in self._categories:
                blank = np.array([is_missing(str(v)) for v in col.tolist()], dtype=bool)
                if blank.any():
                    self._refuse_missing(name, blank, source)
                cells = np.array(
                    [self._fill[name] if b else str(v).strip()
                     for v, b in zip(col.tolist(), blank, strict=True)],
                    dtype=object,
                )  # fmt: skip
                with warnings.catch_warnings():  # unseen categories: said in one note
                    warnings.simplefilter("ignore")
                    encoded = self._encoders[name].transform(cells[:, None])
                if self.choices.encode == "ordinal":
                    if (encoded < 0).any():
                        unseen.append(name)
                    names.append(name)
                else:
                    if (encoded.sum(axis=1) == 0).any():
                        unseen.append(name)
                    names.extend(f"{name}={c}" for c in self._categories[name])
                blocks.append(np.asarray(encoded, dtype=np.float64))
                continue
            if _is_text(col):
                raise DataworthError(
                    f"feature column {name!r} in {source} holds text, but numbers in the "
                    "training rows; use the same kind of values in both."
                )
            values = col.astype(np.float64).copy()
            nan = np.isnan(values)
            if nan.any():
                self._refuse_missing(name, nan, source)
                values[nan] = self._fill[name]
            blocks.append(values.reshape(-1, 1))
            names.append(name)
        if unseen:
            what = "all-zero one-hot columns" if self.choices.encode == "onehot" else "code -1"
            self.notes.append(
                f"{source}: categories not seen in the training rows in "
                f"{', '.join(map(repr, unseen))} are encoded as {what}."
            )
        X = np.column_stack(blocks) if blocks else np.empty((n, 0))
        return X, tuple(names)
