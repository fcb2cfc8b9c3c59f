"""Datasets: immutable features, target, optional groups and row labels.

A :class:`Dataset` is what every other part of dataworth consumes. It is built from numpy arrays,
a pandas DataFrame, or a CSV/Parquet file, and validated at the boundary: missing values,
infinite values and non-numeric features are refused with a message that names the column.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import math
import re
import warnings
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dataworth.errors import DataworthError

__all__ = ["Dataset", "detect_separator", "read_table"]


def _as_label_array(values: ArrayLike) -> NDArray[Any]:
    """Return labels as a numeric array when every entry is numeric, else as strings."""
    arr = np.asarray(values)
    if arr.dtype.kind in "biuf":
        if (
            arr.dtype.kind == "f"
            and np.all(np.isfinite(arr))
            and np.all(arr == np.round(arr))
            and np.all(np.abs(arr) <= 2**53)
        ):
            return arr.astype(np.int64) if arr.size else arr
        return arr
    try:
        as_float = np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError):
        return arr.astype(str)
    return _as_label_array(as_float)


@dataclass(frozen=True, eq=False)
class Dataset:
    """Features ``X``, target ``y`` and optional ``groups``, with names and row labels.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Finite numeric features (converted to float64).
    y : ndarray of shape (n_samples,)
        Target: class labels (numbers or strings) or real values.
    feature_names : tuple of str, optional
        Defaults to ``x0, x1, ...``.
    target_name : str, default="y"
    groups : ndarray of shape (n_samples,), optional
        Data source of each row, for valuing groups instead of rows.
    row_labels : ndarray of shape (n_samples,), optional
        Labels kept through to results; defaults to the row positions ``0..n-1``.

    Examples
    --------
    >>> import numpy as np
    >>> ds = Dataset.from_arrays(np.eye(3), [0, 1, 1])
    >>> ds.n_samples, ds.n_features
    (3, 3)
    >>> ds.take([2, 0]).row_labels.tolist()
    [2, 0]
    """

    X: NDArray[np.float64]
    y: NDArray[Any]
    feature_names: tuple[str, ...] = ()
    target_name: str = "y"
    groups: NDArray[Any] | None = None
    row_labels: NDArray[Any] = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def __post_init__(self) -> None:
        X = np.asarray(self.X)
        if X.ndim == 1:
            X = X.reshape(-1, 1)
        if X.ndim != 2:
            raise DataworthError(f"X must be a 2-D array of features; got {X.ndim} dimensions.")
        try:
            X = np.ascontiguousarray(X, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise DataworthError(
                "X must contain numbers only; encode categorical features first."
            ) from exc
        n = X.shape[0]
        y = np.asarray(self.y)
        if y.ndim != 1 or y.shape[0] != n:
            raise DataworthError(
                f"y must be a 1-D array with one entry per row of X ({n}); got shape {y.shape}."
            )
        names = tuple(str(c) for c in self.feature_names) or tuple(
            f"x{j}" for j in range(X.shape[1])
        )
        if len(names) != X.shape[1]:
            raise DataworthError(
                f"feature_names has {len(names)} names for {X.shape[1]} feature columns."
            )
        bad = ~np.isfinite(X)
        if bad.any():
            col = int(np.flatnonzero(bad.any(axis=0))[0])
            rows = np.flatnonzero(bad[:, col])
            kind = "missing (NaN)" if np.isnan(X[rows[0], col]) else "infinite"
            raise DataworthError(
                f"feature {names[col]!r} has {rows.size} {kind} value(s) (first at row "
                f"{int(rows[0])}); fill or drop those rows before valuing."
            )
        if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
            rows = np.flatnonzero(~np.isfinite(y))
            raise DataworthError(
                f"target {self.target_name!r} has {rows.size} missing or infinite value(s) "
                f"(first at row {int(rows[0])}); drop those rows before valuing."
            )
        _check_magnitude(X, names, y, self.target_name)
        groups = None if self.groups is None else np.asarray(self.groups)
        if groups is not None and groups.shape != (n,):
            raise DataworthError(f"groups must have one entry per row ({n}); got {groups.shape}.")
        labels = np.asarray(self.row_labels)
        if labels.size == 0:
            labels = np.arange(n)
        if labels.shape != (n,):
            raise DataworthError(f"row_labels must have one entry per row ({n}).")
        X.setflags(write=False)
        y = y.copy()
        y.setflags(write=False)
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "feature_names", names)
        object.__setattr__(self, "groups", groups)
        object.__setattr__(self, "row_labels", labels)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_arrays(
        cls,
        X: ArrayLike,
        y: ArrayLike,
        *,
        groups: ArrayLike | None = None,
        feature_names: Sequence[str] | None = None,
        target_name: str = "y",
        row_labels: ArrayLike | None = None,
    ) -> Dataset:
        """Build a dataset from array-likes."""
        return cls(
            X=np.asarray(X),
            y=np.asarray(y),
            feature_names=tuple(feature_names or ()),
            target_name=target_name,
            groups=None if groups is None else np.asarray(groups),
            row_labels=np.empty(0) if row_labels is None else np.asarray(row_labels),
        )

    @classmethod
    def from_columns(
        cls,
        columns: dict[str, NDArray[Any]],
        target: str,
        *,
        group: str | None = None,
        row_labels: ArrayLike | None = None,
        source: str = "the data",
    ) -> Dataset:
        """Build a dataset from named columns; every column but target and group is a feature."""
        if not columns:
            raise DataworthError(f"{source} has no columns.")
        for name, what in ((target, "target"), (group, "group")):
            if name is not None and name not in columns:
                raise DataworthError(
                    f"{what} column {name!r} not found in {source}; "
                    f"available columns: {', '.join(map(repr, columns))}."
                )
        feature_cols = [c for c in columns if c not in (target, group)]
        if not feature_cols:
            raise DataworthError(f"{source} has no feature columns besides the target.")
        n = len(columns[target])
        if n == 0:
            raise DataworthError(f"{source} has no rows.")
        feats = []
        for name in feature_cols:
            col = np.asarray(columns[name])
            if col.dtype.kind not in "biuf":
                try:
                    col = _parse_numbers(col)
                except ValueError as exc:
                    raise DataworthError(
                        f"feature column {name!r} in {source} is not numeric ({exc}); "
                        "encode it as numbers or drop it."
                    ) from None
            feats.append(col.astype(np.float64))
        y_raw = _scalar_column(columns[target], f"target {target!r}", source)
        if y_raw.dtype.kind not in "biuf":
            _check_text_column(y_raw, f"target {target!r}", source)
            _check_label_spellings(y_raw, target, source)
        groups = None
        if group is not None:
            groups = _scalar_column(columns[group], f"group column {group!r}", source)
            if groups.dtype.kind in "fc" and np.isnan(groups).any():
                _check_text_column(groups.astype(object), f"group column {group!r}", source)
            elif groups.dtype.kind not in "biuf":
                _check_text_column(groups, f"group column {group!r}", source)
                groups = groups.astype(str)
        return cls(
            X=np.column_stack(feats),
            y=_as_label_array(y_raw),
            feature_names=tuple(feature_cols),
            target_name=target,
            groups=groups,
            row_labels=np.empty(0) if row_labels is None else np.asarray(row_labels),
        )

    @classmethod
    def from_frame(cls, frame: Any, target: str, *, group: str | None = None) -> Dataset:
        """Build a dataset from a pandas DataFrame; the frame's index becomes the row labels."""
        columns = {str(c): frame[c].to_numpy() for c in frame.columns}
        if len(columns) != len(frame.columns):
            raise DataworthError("the DataFrame has duplicate column names; rename them.")
        return cls.from_columns(
            columns, target, group=group, row_labels=frame.index.to_numpy(), source="the frame"
        )

    @classmethod
    def from_file(cls, path: str | Path, target: str, *, group: str | None = None) -> Dataset:
        """Read a CSV or Parquet file (by extension); row labels are 0-based row positions.

        The ``group`` column is read as exact text (see :func:`read_table`).
        """
        columns = read_table(path, text_columns=() if group is None else (group,))
        return cls.from_columns(columns, target, group=group, source=str(path))

    # ------------------------------------------------------------------ views
    @property
    def n_samples(self) -> int:
        """Number of rows."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """Number of feature columns."""
        return int(self.X.shape[1])

    def __len__(self) -> int:
        return self.n_samples

    def take(self, rows: ArrayLike) -> Dataset:
        """Return the dataset restricted to ``rows`` (positions), keeping names and labels."""
        idx = np.asarray(rows, dtype=np.intp)
        return Dataset(
            X=self.X[idx],
            y=self.y[idx],
            feature_names=self.feature_names,
            target_name=self.target_name,
            groups=None if self.groups is None else self.groups[idx],
            row_labels=self.row_labels[idx],
        )

    def replace(self, **changes: Any) -> Dataset:
        """Return a copy with some fields replaced (e.g. corrupted labels)."""
        fields: dict[str, Any] = {
            "X": self.X,
            "y": self.y,
            "feature_names": self.feature_names,
            "target_name": self.target_name,
            "groups": self.groups,
            "row_labels": self.row_labels,
        }
        fields.update(changes)
        return Dataset(**fields)

    def split(
        self, valid_fraction: float = 0.2, *, random_state: int | None = 0, stratify: bool = True
    ) -> tuple[Dataset, Dataset]:
        """Split into (train, valid), stratified by class when the target looks categorical.

        Each part keeps its original order (sorted row positions), so values come back in
        input order.
        """
        if not 0.0 < valid_fraction < 1.0:
            raise DataworthError(
                f"valid_fraction must be strictly between 0 and 1; got {valid_fraction}."
            )
        n = self.n_samples
        n_valid = int(math.ceil(valid_fraction * n))
        if n_valid < 1 or n - n_valid < 1:
            raise DataworthError(
                f"cannot split {n} row(s) into training and valuation parts; "
                "provide more rows or a separate valuation file."
            )
        from sklearn.model_selection import train_test_split

        idx = np.arange(n)
        strat = self.y if stratify and is_categorical(self.y) else None
        if strat is not None:
            _, counts = np.unique(strat, return_counts=True)
            if counts.min() < 2 or n_valid < counts.size or n - n_valid < counts.size:
                strat = None
        train_idx, valid_idx = train_test_split(
            idx, test_size=n_valid, random_state=random_state, stratify=strat
        )
        return self.take(np.sort(train_idx)), self.take(np.sort(valid_idx))


def _scalar_column(values: ArrayLike, what: str, source: str) -> NDArray[Any]:
    """``values`` as a 1-D array of single numbers or texts; lists, arrays or mappings in a
    cell (a Parquet list or struct column, a frame of lists) are refused."""
    col = np.asarray(values)
    if col.dtype.kind == "O":
        scalar = (str, bytes, int, float, bool, np.generic, Decimal, type(None))
        bad = [i for i, v in enumerate(col.tolist()) if not isinstance(v, scalar)]
        if bad:
            example = col[bad[0]]
            raise DataworthError(
                f"{what} in {source} holds a {type(example).__name__} in a cell (first at row "
                f"{bad[0]}); every cell must hold one number or one text."
            )
    if col.ndim != 1:
        raise DataworthError(f"{what} in {source} must hold one number or one text per row.")
    return col


def _check_text_column(col: NDArray[Any], what: str, source: str) -> None:
    """Refuse missing cells (:func:`is_missing`) and NUL characters in a text column."""
    cells = col.tolist()
    missing = np.array([is_missing(v) for v in cells], dtype=bool)
    if missing.any():
        raise DataworthError(
            f"{what} in {source} has {int(missing.sum())} missing value(s) (first at row "
            f"{int(np.flatnonzero(missing)[0])}: {str(cells[int(np.flatnonzero(missing)[0])])!r});"
            " drop or fill those rows (missing means an empty cell or one of "
            "NA, N/A, NaN, NULL, None and the other markers pandas reads as missing)."
        )
    # numpy's text arrays drop trailing NUL characters ("a\x00" would become "a")
    nul = np.array(["\x00" in str(v) for v in cells], dtype=bool)
    if nul.any():
        raise DataworthError(
            f"{what} in {source} holds a NUL character (first at row "
            f"{int(np.flatnonzero(nul)[0])}); it must be plain text."
        )


def _check_label_spellings(y: NDArray[Any], target: str, source: str) -> None:
    """Refuse a text label column in which two spellings of one number (``1`` and ``1.0``)
    would become two classes; warn when numbers and words are mixed (``1`` and ``zero``)."""
    numbers: dict[float, str] = {}
    words = None
    for v in (str(x).strip() for x in np.unique(y.astype(str))):
        try:
            key = float(v)
        except ValueError:
            words = words or v
            continue
        if key in numbers and numbers[key] != v:
            raise DataworthError(
                f"target {target!r} in {source} spells one number two ways "
                f"({numbers[key]!r} and {v!r}), which would make two classes; write each label "
                "one way."
            )
        numbers.setdefault(key, v)
    if numbers and words is not None:
        shown = ", ".join(repr(v) for v in list(numbers.values())[:3])
        warnings.warn(
            f"target {target!r} in {source} mixes numbers ({shown}) and words ({words!r}); "
            "each distinct text is taken as its own class.",
            UserWarning,
            stacklevel=3,
        )


#: Largest magnitude accepted in a feature or a real target: squares of larger numbers, summed
#: over many rows, overflow float64 (squared distances, Gram matrices, squared errors).
LARGEST_VALUE = 1e150


def _check_magnitude(X: NDArray[np.float64], names: tuple[str, ...], y: NDArray[Any],
                     target_name: str) -> None:  # fmt: skip
    """Refuse values whose squares would overflow (they are finite, but no fit survives them)."""
    if X.size:
        big = np.abs(X) > LARGEST_VALUE
        if big.any():
            col = int(np.flatnonzero(big.any(axis=0))[0])
            row = int(np.flatnonzero(big[:, col])[0])
            raise DataworthError(
                f"feature {names[col]!r} has values as large as "
                f"{float(np.max(np.abs(X[:, col]))):.3g} (first at row {row}); beyond "
                f"{LARGEST_VALUE:.0e} squared distances and model fits overflow: rescale it."
            )
    if y.dtype.kind == "f" and y.size and float(np.max(np.abs(y))) > LARGEST_VALUE:
        raise DataworthError(
            f"target {target_name!r} has values as large as {float(np.max(np.abs(y))):.3g}; "
            f"beyond {LARGEST_VALUE:.0e} squared errors overflow: rescale it."
        )


def is_categorical(y: NDArray[Any]) -> bool:
    """True when labels are strings, booleans or integers."""
    return np.asarray(y).dtype.kind in "USObiu"


#: Cells read as missing, in features, targets and group columns alike (after trimming
#: surrounding spaces): an empty cell and pandas' default missing markers.
MISSING_TEXT = frozenset(
    {"", "NA", "N/A", "n/a", "NaN", "nan", "-NaN", "-nan", "NULL", "null", "None", "<NA>",
     "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "1.#IND", "1.#QNAN"}
)  # fmt: skip


def is_missing(value: Any) -> bool:
    """Whether a cell is missing: None, a float NaN, or a text in :data:`MISSING_TEXT`.

    Examples
    --------
    >>> [is_missing(v) for v in ("", " NA ", "n/a", float("nan"), None, "0", "none")]
    [True, True, True, True, True, False, False]
    """
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and value.strip() in MISSING_TEXT


def _parse_numbers(col: NDArray[Any]) -> NDArray[np.float64]:
    """Parse a column of strings/objects as floats; empty cells become NaN."""
    out = np.empty(col.shape[0], dtype=np.float64)
    for i, v in enumerate(col.tolist()):
        if is_missing(v):
            out[i] = np.nan
            continue
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"row {i} holds {str(v)[:40]!r}") from None
    return out


def read_table(
    path: str | Path, text_columns: Collection[str] = (), sep: str | None = None
) -> dict[str, NDArray[Any]]:
    """Read a CSV or Parquet file into named columns (numeric where every cell parses).

    Columns named in ``text_columns`` are identifiers (groups, providers): they are read as
    exact text, so that ``007`` and ``7``, or two 17-digit numbers, stay distinct. A CSV's
    separator is ``sep``, or detected from its header (:func:`detect_separator`); with ``;`` or
    a tab, a column of decimal-comma numbers (``1,5``) is read as numbers. A CSV file is split
    into cells as :mod:`csv` splits it (blank lines skipped); pandas' C parser does the work
    where pandas is installed and splits the file the same way.

    Raises
    ------
    DataworthError
        For a missing, empty or malformed file, or duplicate column names.
    """
    path = Path(path)
    if not path.exists():
        raise DataworthError(f"file not found: {path}")
    if path.is_dir():
        raise DataworthError(f"{path} is a directory; pass a CSV or Parquet file.")
    if path.suffix.lower() in {".parquet", ".pq"}:
        return _read_parquet(path, set(text_columns))
    return _read_csv(path, set(text_columns), sep)


#: Separators :func:`detect_separator` tells apart, preferred in this order on a tie.
SEPARATORS = (",", ";", "\t")


def detect_separator(path: str | Path) -> str:
    """The separator of the CSV file ``path``: of comma, semicolon and tab, the one that splits
    its first non-blank line (the header) into the most fields; comma when none splits it."""
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as fh:
            header = next((line for line in fh if line.strip()), "")
    except (OSError, UnicodeDecodeError):
        return ","
    counts = {}
    for sep in SEPARATORS:
        try:
            counts[sep] = len(next(csv.reader([header], delimiter=sep), []))
        except csv.Error:
            counts[sep] = 0
    best = max(SEPARATORS, key=lambda s: counts[s])  # first of the best: comma on a tie
    return best if counts[best] > 1 else ","


def _read_parquet(path: Path, text_columns: set[str]) -> dict[str, NDArray[Any]]:
    try:
        import pyarrow.parquet as pq
        import pyarrow.types as pa_types
    except ImportError:
        raise DataworthError(
            'reading Parquet needs pyarrow: pip install "dataworth[parquet]"'
        ) from None
    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise DataworthError(f"cannot read {path} as Parquet: {exc}") from None
    names = [str(n) for n in table.column_names]
    _check_names(names, path)
    for name, field_ in zip(names, table.schema, strict=True):
        if pa_types.is_nested(field_.type):
            raise DataworthError(
                f"column {name!r} in {path} has the Parquet type {field_.type}; every cell must "
                "hold one number or one text: flatten or drop that column."
            )
    columns: dict[str, NDArray[Any]] = {}
    for i, name in enumerate(names):
        column = table.column(i)
        if name in text_columns:
            columns[name] = np.array(
                [None if v is None else str(v) for v in column.to_pylist()], dtype=object
            )
        else:
            columns[name] = column.to_numpy(zero_copy_only=False)
    return columns


def _check_names(names: list[str], path: Path) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataworthError(f"{path} has the column name {name!r} twice; rename one.")
        seen.add(name)


def _read_csv(path: Path, text_columns: set[str], sep: str | None) -> dict[str, NDArray[Any]]:
    """The columns of the CSV file ``path``, as :func:`read_table` describes them.

    The cells are split by pandas' C parser when pandas is installed and :func:`_csv_layout`
    has checked that the file is one :mod:`csv` reads without complaint (pandas then splits it
    the same way); any other file goes through :func:`_read_csv_exact`, whose result and error
    messages are the reference.
    """
    sep = sep or detect_separator(path)
    columns = _read_csv_pandas(path, text_columns, sep)
    return _read_csv_exact(path, text_columns, sep) if columns is None else columns


def _read_csv_exact(path: Path, text_columns: set[str], sep: str) -> dict[str, NDArray[Any]]:
    """The columns of ``path`` read by :mod:`csv` (every cell a Python string), or the error
    that says what is wrong with the file."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh, delimiter=sep))
    except UnicodeDecodeError:
        raise DataworthError(f"{path} is not UTF-8 text; save it as a UTF-8 CSV.") from None
    except csv.Error as exc:
        raise DataworthError(f"{path} is not a valid CSV file: {exc}") from None
    rows = [r for r in rows if r]
    if any("\x00" in cell for row in rows for cell in row):
        raise DataworthError(f"{path} contains NUL bytes; it is not a text CSV file.")
    if not rows:
        raise DataworthError(f"{path} is empty; it needs a header row and data rows.")
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    _check_header(header, len(body), path)
    for i, row in enumerate(body):
        if len(row) != len(header):
            raise DataworthError(
                f"{path}: data row {i} has {len(row)} fields but the header has {len(header)}."
            )
    return {
        name: _text_column(
            np.array([row[j].strip() for row in body], dtype=object), name in text_columns, sep
        )
        for j, name in enumerate(header)
    }


def _check_header(header: list[str], n_rows: int, path: Path) -> None:
    """Refuse duplicate or empty column names (``header`` is stripped) and a file without
    data rows (``n_rows`` of them)."""
    _check_names(header, path)
    if any(h == "" for h in header):
        raise DataworthError(f"{path} has an empty column name in its header; name every column.")
    if n_rows == 0:
        raise DataworthError(f"{path} has a header but no data rows.")


def _text_column(cells: NDArray[Any], text: bool, sep: str) -> NDArray[Any]:
    """The column of the stripped CSV cells ``cells`` (an object array of str).

    Kept as they are when ``text`` (an identifier column); else numbers when every cell parses
    (:func:`_parse_numbers`), also with decimal commas (``1,5``) when ``sep`` is not a comma
    and no cell holds a ``.``; else a str array.
    """
    if text:
        return cells
    with contextlib.suppress(ValueError):
        return _parse_numbers(cells)
    if sep != "," and not any("." in v for v in cells.tolist()):
        # decimal commas, as in files that use ';' or a tab between fields
        with contextlib.suppress(ValueError):
            return _parse_numbers(
                np.array([v.replace(",", ".", 1) for v in cells.tolist()], dtype=object)
            )
    return cells.astype(str)


#: Bytes of a CSV file :func:`_csv_layout` looks at in one go.
_LAYOUT_CHUNK = 1 << 20
_QUOTE, _LF, _CR, _MINUS, _ZERO = b'"\n\r-0'
#: Bytes after ``-0`` that make it no integer zero (``-01``, ``-0.5``, ``-0e1``).
_NOT_ZERO = np.frombuffer(b"123456789.eE", dtype=np.uint8)
#: Bytes before a number that pandas' integer parser reads: a separator is added.
_BEFORE_NUMBER = b'\n\r" \t\x0b\x0c'


class _Layout(NamedTuple):
    """What :func:`_csv_layout` finds out about a CSV file."""

    records: int  # non-blank records (lines, or more where a quoted field spans lines)
    separators: int  # separators outside quoted fields
    minus_zero: bool  # whether a -0 (or -00) may be a number: pandas' integer parser reads 0


def _csv_layout(path: Path, sep: str) -> _Layout | None:
    """How many records and separators :mod:`csv` finds in ``path``; None when it would
    complain about the file or pandas might split it differently.

    The file is read in chunks of bytes and checked with numpy: valid UTF-8 (a leading
    byte-order mark allowed), no NUL byte, no field longer than :func:`csv.field_size_limit`,
    every quote either opening a field or closing a quoted one (so that the separators and line
    ends inside quoted fields are the ones after an odd number of quotes), and no blank line
    ended by a lone CR (pandas drops the first field after it). A file that fails any of that
    is read by :func:`_read_csv_exact`, which words the error or reads what pandas might read
    differently.
    """
    if len(sep) != 1 or not sep.isascii() or sep in '"\r\n\x00':
        return None
    sep_byte = sep.encode()[0]
    delimiters = np.array([sep_byte, _LF, _CR, _QUOTE], dtype=np.uint8)  # may surround a quote
    limit = csv.field_size_limit()
    decoder = codecs.getincrementaldecoder("utf-8")()
    n_quotes = 0  # quotes before the chunk: an odd count means it starts in a quoted field
    before = _LF  # the byte before the chunk: the start of the file is the start of a line
    closing_last = minus_zero = False  # closing_last: the chunk before ended with a closing quote
    last_break = last_end = -1  # the last separator or line end / line end outside quotes
    tail = b""  # the last two bytes of the chunk before
    records = separators = offset = 0
    with path.open("rb") as fh:
        if fh.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8:
            offset = len(codecs.BOM_UTF8)
            last_break = last_end = offset - 1
        else:
            fh.seek(0)
        while chunk := fh.read(_LAYOUT_CHUNK):
            if chunk.find(0) >= 0:
                return None
            if not chunk.isascii() or decoder.getstate()[0]:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    return None
            data = np.frombuffer(chunk, dtype=np.uint8)
            if closing_last and data[0] not in delimiters:
                return None
            closing_last = False
            ends = np.flatnonzero((data == _LF) | (data == _CR) if b"\r" in chunk else data == _LF)
            if b'"' in chunk or n_quotes % 2:
                quotes = np.flatnonzero(data == _QUOTE)
                # the bytes around each quote (the one after the chunk is checked with the next)
                edges = np.array([before, _LF], dtype=np.uint8)
                neighbours = np.concatenate((edges[:1], data, edges[1:]))
                opening = (np.arange(quotes.size) + n_quotes) % 2 == 0
                if not (
                    np.isin(neighbours[quotes[opening]], delimiters).all()
                    and np.isin(neighbours[quotes[~opening] + 2], delimiters).all()
                ):
                    return None
                flips = np.zeros(data.size + 1, dtype=np.uint8)
                flips[0], flips[quotes + 1] = n_quotes % 2, 1
                inside = np.bitwise_xor.accumulate(flips)[1:].view(bool)
                is_sep = (data == sep_byte) & ~inside
                ends = ends[~inside[ends]]
                n_seps = int(np.count_nonzero(is_sep))
                last_sep = data.size - 1 - int(np.argmax(is_sep[::-1])) if n_seps else -1
                closing_last = bool(quotes.size and quotes[-1] == data.size - 1 and not opening[-1])
                n_quotes += quotes.size
            else:
                is_sep = data == sep_byte
                n_seps, last_sep = int(np.count_nonzero(is_sep)), chunk.rfind(sep_byte)
            separators += n_seps
            before = int(data[-1])
            if b"-" in chunk or b"-" in tail:
                minus_zero = minus_zero or _minus_zero(tail + chunk, sep_byte)
            tail = (tail + chunk[-2:])[-2:]
            if ends.size:
                lengths = np.diff(ends + offset, prepend=last_end) - 1
                blank = lengths == 0
                # pandas drops the first field of the line after a blank line ended by a lone CR
                lone = ends[blank & (data[ends] == _CR)]
                if lone.size and (np.append(data, _CR)[lone + 1] != _LF).any():
                    return None
                records += int(ends.size - np.count_nonzero(blank))
                longest = max(int(lengths.max()), data.size - 1 - int(ends[-1]))
                last_end = int(ends[-1]) + offset
            else:
                longest = offset + data.size - 1 - last_end
            if longest > limit:  # a line this long may hold a field beyond the limit
                breaks = np.union1d(np.flatnonzero(is_sep), ends) + offset
                if int(np.diff(breaks, prepend=last_break).max(initial=0)) - 1 > limit:
                    return None
            last = max(last_sep, int(ends[-1]) if ends.size else -1)
            last_break = offset + last if last >= 0 else last_break
            offset += data.size
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return None
    if n_quotes % 2 or offset - last_break - 1 > limit:
        return None
    if offset - last_end - 1 > 0:  # a last line without a line end
        records += 1
    return _Layout(records, separators, minus_zero or _minus_zero(tail + b"\n\n", sep_byte))


def _minus_zero(window: bytes, sep_byte: int) -> bool:
    """Whether ``window`` may hold the integer ``-0`` (or ``-00``) in a field of numbers: a
    ``-0`` at the start of the window or after a separator, a line end, a quote or a space, and
    followed by neither a digit from 1 to 9, nor ``.``, ``e`` or ``E``. The last two bytes are
    left for the next window (which starts with them)."""
    data = np.frombuffer(window, dtype=np.uint8)
    minus = np.flatnonzero(data[:-2] == _MINUS)
    minus = minus[data[minus + 1] == _ZERO]
    minus = minus[~np.isin(data[minus + 2], _NOT_ZERO)]
    before = data[np.maximum(minus - 1, 0)]
    return bool(np.any((minus == 0) | np.isin(before, [sep_byte, *_BEFORE_NUMBER])))


#: Data rows pandas reads first, to tell the columns of numbers (parsed by pandas from then on)
#: from the others (whose cells are read as text and parsed by :func:`_text_column`).
_SAMPLE_ROWS = 1000


def _read_csv_pandas(
    path: Path, text_columns: set[str], sep: str
) -> dict[str, NDArray[Any]] | None:
    """The columns of ``path`` read through pandas' C parser, as :func:`_read_csv_exact` reads
    them; None when pandas is not installed or the file is not one it reads the same way.

    A column whose first :data:`_SAMPLE_ROWS` rows pandas reads as numbers is parsed by pandas
    (its missing cells are exactly :data:`MISSING_TEXT`, its numbers those of ``float``); when
    one holds something else further down, every column is read again as text. Every other
    column is read as text and parsed as :func:`_read_csv_exact` parses it; so is every column
    of a file that may hold a ``-0`` (pandas' integer parser reads it as ``0``).

    The fields per record are checked by pandas, which refuses a record with more fields than
    the header (the first one by taking the extra field for an index), and by the number of
    separators: with none over, none is short.
    """
    try:
        import pandas as pd
    except ImportError:
        return None
    layout = _csv_layout(path, sep)
    if layout is None:
        return None
    if layout.records == 0:
        raise DataworthError(f"{path} is empty; it needs a header row and data rows.")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        header = [h.strip() for h in next(row for row in csv.reader(fh, delimiter=sep) if row)]
    n_rows, n_fields = layout.records - 1, len(header)
    if layout.separators != (n_fields - 1) * layout.records:
        return None  # a record with another number of fields than the header
    _check_header(header, n_rows, path)
    text = {j for j, name in enumerate(header) if name in text_columns}
    numbers: set[int] = set()
    if not layout.minus_zero:
        others = set(range(n_fields)) - text
        sample = _pandas_frame(path, sep, n_fields, dict.fromkeys(text, str), others, _SAMPLE_ROWS)
        if sample is None:
            return None
        numbers = {j for j in others if sample[j].dtype.kind in "iuf"}
    dtypes = {j: str for j in range(n_fields) if j not in numbers}
    frame = _pandas_frame(path, sep, n_fields, dtypes, numbers)
    if frame is not None and any(frame[j].dtype.kind not in "iuf" for j in numbers):
        numbers = set()  # a column of numbers in the first rows holds text further down
        frame = _pandas_frame(path, sep, n_fields, dict.fromkeys(range(n_fields), str), numbers)
    if (
        frame is None
        or frame.shape != (n_rows, n_fields)
        or not frame.index.equals(pd.RangeIndex(n_rows))
    ):
        return None
    columns: dict[str, NDArray[Any]] = {}
    for j, name in enumerate(header):
        if j in numbers:
            columns[name] = frame[j].to_numpy(dtype=np.float64)
        else:
            cells = frame[j].to_numpy(dtype=object).tolist()
            raw = np.array([v.strip() for v in cells], dtype=object)
            columns[name] = _text_column(raw, j in text, sep)
    return columns


def _pandas_frame(
    path: Path,
    sep: str,
    n_fields: int,
    dtypes: dict[int, Any],
    missing: set[int],
    nrows: int | None = None,
) -> Any:
    """The data rows of ``path`` read by pandas' C parser (a DataFrame whose ``n_fields``
    columns are named by position), or None when pandas refuses the file.

    Column ``j`` is read as ``dtypes[j]`` (inferred when absent); the missing cells of the
    columns ``missing`` are exactly :data:`MISSING_TEXT`, the other columns have none.
    """
    import pandas as pd

    version = re.match(r"(\d+)\.(\d+)", pd.__version__)
    correctly_rounded = version is not None and (int(version[1]), int(version[2])) >= (3, 1)
    with warnings.catch_warnings():
        # a column typed differently in two blocks of rows is read again, as text
        warnings.simplefilter("ignore", pd.errors.DtypeWarning)
        try:
            return pd.read_csv(
                path,
                sep=sep,
                header=0,
                names=list(range(n_fields)),
                dtype=dtypes,
                na_values=dict.fromkeys(missing, sorted(MISSING_TEXT)),
                keep_default_na=False,
                quotechar='"',
                doublequote=True,
                escapechar=None,
                comment=None,
                encoding="utf-8-sig",
                compression=None,  # text, whatever the file's name ends with
                engine="c",
                nrows=nrows,
                # before pandas 3.1 only this float parser is correctly rounded
                **({} if correctly_rounded else {"float_precision": "round_trip"}),
            )
        except ValueError:  # pandas' ParserError, and a float64 column holding text
            return None
