"""ValuationResult: one value per player (row or group), in dataset order, with error bars.

Examples
--------
>>> import numpy as np
>>> r = ValuationResult(values=np.array([0.2, -0.1, 0.5]), method="demo")
>>> r.top(1).tolist(), r.bottom(1).tolist(), r.rank().tolist()
([2], [1], [2, 3, 1])
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from dataworth.engine.moments import State, merge_states
from dataworth.errors import DataworthError
from dataworth.estimators.reducers import REDUCERS, reduce_state
from dataworth.fileio import atomic_output, atomic_savez, spreadsheet_safe
from dataworth.jsonable import json_ready
from dataworth.npzfile import (
    INT64_MAX,
    array_field,
    checked_moments,
    header_field,
    read_header,
    read_npz,
)

__all__ = ["ValuationResult", "value_order"]

_FORMAT = "dataworth.ValuationResult/1"

#: Metadata of one run that a merged result drops: how that run ended and how reliable its
#: samples were (:mod:`dataworth.engine.reliability`); the merged result keeps the first's others.
_PER_RUN = (
    "notes",
    "ended_by",
    "resumed_from",
    "seconds",
    "share_near_zero",
    "split_half_spearman",
    "split_half_samples",
    "suggested_budget",
)


def value_order(values: NDArray[np.float64], *, ascending: bool = True) -> NDArray[np.intp]:
    """Positions sorted by value (lowest first unless ``ascending`` is False); ties keep
    position order and NaN values come last either way. The order of :meth:`ValuationResult.top`,
    :meth:`~ValuationResult.bottom` and :meth:`~ValuationResult.rank`.

    Examples
    --------
    >>> value_order(np.array([0.2, np.nan, -1.0, 0.2]), ascending=False).tolist()
    [0, 3, 2, 1]
    """
    key = values if ascending else -values
    key = np.where(np.isnan(key), np.inf, key)
    return np.argsort(key, kind="stable").astype(np.intp)


def _frozen(a: Any, dtype: Any = None) -> NDArray[Any]:
    arr = np.array(a, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class ValuationResult:
    """Values of the players of one valuation run, in dataset order.

    Attributes
    ----------
    values, stderr : ndarray of float
        Estimated value and its standard error (0 for exact methods, NaN where unknown).
    counts : ndarray of int
        Number of samples (or evaluations) that updated each player's value.
    labels : ndarray
        Row labels (or group names when ``kind == "group"``).
    method : str
        Registry name of the method.
    params : dict
        The method's parameters (JSON-serialisable).
    metadata : dict
        Anything else worth keeping: budget used, failed fits, warnings, fingerprints.
    kind : {"row", "group"}
    state : dict of Moments, optional
        Monte Carlo statistics behind the values; lets ``+`` merge partial runs exactly.
    estimator : str, optional
        How ``state`` becomes values (see :data:`dataworth.estimators.reducers.REDUCERS`).
    """

    values: NDArray[np.float64]
    stderr: NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    counts: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    labels: NDArray[Any] = field(default_factory=lambda: np.empty(0))
    method: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    kind: str = "row"
    state: State | None = None
    estimator: str | None = None

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=np.float64)
        if values.ndim != 1:
            raise DataworthError("values must be one-dimensional.")
        n = values.shape[0]
        stderr = np.asarray(self.stderr, dtype=np.float64)
        counts = np.asarray(self.counts, dtype=np.int64)
        labels = np.asarray(self.labels)
        if stderr.size == 0:
            stderr = np.full(n, np.nan)
        if counts.size == 0:
            counts = np.zeros(n, dtype=np.int64)
        if labels.size == 0:
            labels = np.arange(n)
        for name, arr in (("stderr", stderr), ("counts", counts), ("labels", labels)):
            if arr.shape != (n,):
                raise DataworthError(f"{name} must have one entry per value ({n}).")
        if self.kind not in ("row", "group"):
            raise DataworthError(f"kind must be 'row' or 'group'; got {self.kind!r}.")
        object.__setattr__(self, "values", _frozen(values))
        object.__setattr__(self, "stderr", _frozen(stderr))
        object.__setattr__(self, "counts", _frozen(counts))
        object.__setattr__(self, "labels", _frozen(labels))
        object.__setattr__(self, "params", dict(self.params))
        object.__setattr__(self, "metadata", dict(self.metadata))

    @classmethod
    def from_state(cls, state: State, estimator: str, **fields: Any) -> ValuationResult:
        """Build a result from Monte Carlo statistics."""
        values, stderr, counts = reduce_state(estimator, state)
        return cls(
            values=values, stderr=stderr, counts=counts, state=state, estimator=estimator, **fields
        )

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return int(self.values.shape[0])

    def _order(self, ascending: bool) -> NDArray[np.intp]:
        return value_order(self.values, ascending=ascending)

    def rank(self) -> NDArray[np.int64]:
        """Rank of each player, 1 = most valuable; ties broken by position, NaN ranked last."""
        ranks = np.empty(len(self), dtype=np.int64)
        ranks[self._order(ascending=False)] = np.arange(1, len(self) + 1)
        return ranks

    def top(self, k: int) -> NDArray[np.intp]:
        """Positions of the ``k`` highest-valued players, highest first."""
        return self._order(ascending=False)[: self._check_k(k)]

    def bottom(self, k: int) -> NDArray[np.intp]:
        """Positions of the ``k`` lowest-valued players, lowest first."""
        return self._order(ascending=True)[: self._check_k(k)]

    def _check_k(self, k: int) -> int:
        if not isinstance(k, (int, np.integer)) or k < 0:
            raise DataworthError(f"k must be a non-negative whole number; got {k!r}.")
        return min(int(k), len(self))

    def to_frame(self) -> Any:
        """A pandas DataFrame with columns label, value, stderr, count (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise DataworthError('to_frame needs pandas: pip install "dataworth[pandas]"') from None
        return pd.DataFrame(
            {
                "label": self.labels,
                "value": self.values,
                "stderr": self.stderr,
                "count": self.counts,
            }
        )

    # ------------------------------------------------------------------ merging
    def __add__(self, other: object) -> ValuationResult:
        """Merge two partial Monte Carlo results of the same run exactly."""
        if not isinstance(other, ValuationResult):
            return NotImplemented
        if self.state is None or other.state is None or self.estimator is None:
            raise DataworthError("only Monte Carlo results (with a state) can be merged with +.")
        if (self.method, self.estimator, self.kind) != (other.method, other.estimator, other.kind):
            raise DataworthError(
                f"cannot merge a {self.method!r} result with a {other.method!r} result."
            )
        if len(self) != len(other) or not np.array_equal(self.labels, other.labels):
            raise DataworthError("cannot merge results over different players.")
        mine = {k: v for k, v in self.params.items() if k not in ("budget", "random_state")}
        theirs = {k: v for k, v in other.params.items() if k not in ("budget", "random_state")}
        if mine != theirs:
            raise DataworthError("cannot merge results computed with different parameters.")
        state = merge_states(self.state, other.state)
        values, stderr, counts = reduce_state(self.estimator, state)
        metadata = dict(self.metadata)
        for key in ("n_updates", "n_failures", "n_evaluations"):
            if key in self.metadata or key in other.metadata:
                metadata[key] = self.metadata.get(key, 0) + other.metadata.get(key, 0)
        # what described one run's samples no longer holds for the merged ones
        for key in _PER_RUN:
            metadata.pop(key, None)
        shared = [n for n in self.metadata.get("notes", []) if n in other.metadata.get("notes", [])]
        if shared:  # the method's caveats, which both runs noted
            metadata["notes"] = shared
        return replace(
            self, values=values, stderr=stderr, counts=counts, state=state, metadata=metadata
        )

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write to ``path`` (npz arrays plus a JSON header; readable without pickle).

        The file is written atomically: a reader never sees a half-written result.
        """
        path = Path(path)
        labels = self.labels if self.labels.dtype.kind in "biufU" else self.labels.astype(str)
        header = {
            "format": _FORMAT,
            "method": self.method,
            "params": self.params,
            "metadata": self.metadata,
            "kind": self.kind,
            "estimator": self.estimator,
            "state_keys": sorted(self.state) if self.state else [],
        }
        arrays: dict[str, NDArray[Any]] = {
            "values": self.values,
            "stderr": self.stderr,
            "counts": self.counts,
            "labels": labels,
            "header": np.array(json.dumps(json_ready(header, strict=False, other=repr))),
        }
        for key, mom in (self.state or {}).items():
            arrays[f"state.{key}.count"] = mom.count
            arrays[f"state.{key}.mean"] = mom.mean
            arrays[f"state.{key}.m2"] = mom.m2
        atomic_savez(path, arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> ValuationResult:
        """Read a result written by :meth:`save`, verifying every field.

        Raises
        ------
        DataworthError
            One line naming the file and, for a damaged file, the field that is wrong: a file
            that is not a readable npz archive, not a dataworth result, or whose header or
            arrays are not what :meth:`save` writes (types, lengths, counts, state).
        """
        path = Path(path)
        try:
            arrays = read_npz(path)
        except OSError as exc:
            raise DataworthError(
                f"cannot read a result from {path}: {exc.strerror or exc}."
            ) from None
        except DataworthError as exc:
            raise DataworthError(
                f"cannot read a result from {path}: damaged or not a dataworth result file ({exc})."
            ) from None
        try:
            header = read_header(arrays, _FORMAT)
            result = None if header is None else _result_from_arrays(cls, header, arrays)
        except DataworthError as exc:
            raise DataworthError(f"result file {path} is damaged: {exc}.") from None
        if result is None:
            raise DataworthError(f"{path} is not a dataworth result file.")
        return result

    # ------------------------------------------------------------------ values files
    def to_csv(self, path: str | Path | IO[str]) -> None:
        """Write ``index|group,value,stderr,count`` rows to ``path`` (atomically) or to an open
        text stream: the values file of ``dataworth value``, read back by :meth:`read_csv`.

        Values are written with 17 significant digits (they read back exactly); labels that a
        spreadsheet would run as a formula start with ``'``
        (:func:`~dataworth.fileio.spreadsheet_safe`).

        Raises
        ------
        DataworthError
            ``cannot write PATH: REASON`` when the file cannot be written.
        """
        first = "group" if self.kind == "group" else "index"
        rows = (
            [spreadsheet_safe(str(label)), f"{v:.17g}", f"{s:.17g}", str(int(c))]
            for label, v, s, c in zip(
                self.labels.tolist(), self.values, self.stderr, self.counts, strict=True
            )
        )
        if not isinstance(path, (str, Path)):
            writer = csv.writer(path, lineterminator="\n")
            writer.writerow([first, "value", "stderr", "count"])
            writer.writerows(rows)
            return
        try:
            with atomic_output(path, newline="") as fh:
                writer = csv.writer(fh, lineterminator="\n")
                writer.writerow([first, "value", "stderr", "count"])
                writer.writerows(rows)
        except OSError as exc:
            raise DataworthError(f"cannot write {path}: {exc.strerror or exc}") from None

    @classmethod
    def read_csv(cls, path: str | Path, name: str | None = None) -> ValuationResult:
        """Read a values file: the CSV (or Parquet) table :meth:`to_csv` writes.

        The table needs a ``value`` column and a label column: ``index`` (row positions, whole
        numbers >= 0; per-row values) or ``group`` (group names, read as exact text; per-group
        values). The label column is the first column when that is ``index`` or ``group``, else
        the ``index`` column, else the ``group`` column, wherever it stands. ``stderr`` and
        ``count`` are optional (NaN and 0 when absent), other columns are ignored; an empty
        value cell is NaN. ``method`` is ``name``, default the file's stem.

        Raises
        ------
        DataworthError
            One line naming the file: no ``value`` or label column, a cell that is not a number,
            an index that is not a row position, a label given twice.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "v.csv"
        >>> ValuationResult(np.array([0.5, -1.0]), labels=np.array([3, 7])).to_csv(path)
        >>> back = ValuationResult.read_csv(path)
        >>> back.labels.tolist(), back.values.tolist(), back.method
        ([3, 7], [0.5, -1.0], 'v')
        """
        from dataworth.data import read_table

        p = Path(path)
        columns = read_table(p, text_columns=("group",))  # group names are exact text
        header = list(columns)
        if header and header[0] in ("index", "group"):
            first = header[0]
        else:
            first = next((c for c in ("index", "group") if c in columns), "")
        if not first or "value" not in columns:
            raise DataworthError(
                f"{path} is not a values file: its header must have the columns index,value or "
                f"group,value (as `dataworth value` writes); got {','.join(header[:4])}."
            )
        values = _numbers(columns["value"], path, "value")
        n = values.size
        stderr = np.full(n, np.nan)
        raw_counts = np.zeros(n)
        if "stderr" in columns:
            stderr = _numbers(columns["stderr"], path, "stderr")
        if "count" in columns:
            raw_counts = _numbers(columns["count"], path, "count")
        counts = np.where(np.isfinite(raw_counts), raw_counts, 0).astype(np.int64)
        labels: NDArray[Any] = columns[first]
        if first == "index":
            idx = _numbers(labels, path, "index")
            if not np.all(np.isfinite(idx)) or np.any(idx != np.round(idx)) or np.any(idx < 0):
                raise DataworthError(
                    f"{path}: the index column must hold row positions (whole numbers >= 0) in "
                    "every row."
                )
            labels = idx.astype(np.int64)
        _no_duplicates(labels, path, first)
        return cls(
            values=values,
            stderr=stderr,
            counts=counts,
            labels=labels,
            method=name or p.stem,
            kind="row" if first == "index" else "group",
        )

    @classmethod
    def read(cls, path: str | Path, name: str | None = None) -> ValuationResult:
        """Read values from a file: the npz of :meth:`save` (``.npz``), else a values table
        (:meth:`read_csv`). Per-row values must be labelled by row position and no label may
        appear twice, in either format; ``name`` (or the file's stem, for a result without a
        method) becomes the method."""
        p = Path(path)
        if p.suffix.lower() != ".npz":
            return cls.read_csv(p, name)
        result = cls.load(p)
        if name is not None or not result.method:
            result = replace(result, method=name or p.stem)
        if result.kind == "row" and result.labels.dtype.kind not in "iu":
            raise DataworthError(
                f"{path}: per-row values must be labelled by row position; got "
                f"{result.labels.dtype} labels."
            )
        if result.kind == "row" and np.any(result.labels < 0):
            raise DataworthError(
                f"{path}: per-row values must be labelled by row position (whole numbers >= 0); "
                f"found {int(result.labels.min())}."
            )
        _no_duplicates(result.labels, path, "index" if result.kind == "row" else "group")
        return result

    def __repr__(self) -> str:
        return f"ValuationResult(method={self.method!r}, n={len(self)}, kind={self.kind!r})"


# ------------------------------------------------------------------ reading files back
def _numbers(col: NDArray[Any], path: str | Path, name: str) -> NDArray[np.float64]:
    """A column of a values file as numbers (a one-line error naming a cell that is not)."""
    if col.dtype.kind not in "biuf":
        bad = next((str(v) for v in col.tolist() if not _is_number(v)), str(col[0]))
        raise DataworthError(f"{path}: column {name!r} must hold numbers; found {bad[:40]!r}.")
    return np.asarray(col, dtype=np.float64)


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _no_duplicates(labels: NDArray[Any], path: str | Path, what: str) -> None:
    seen: set[str] = set()
    for key in (str(v) for v in labels.tolist()):
        if key in seen:
            raise DataworthError(f"{path}: {what} {key} appears more than once.")
        seen.add(key)


def _result_from_arrays(
    cls: type[ValuationResult], header: dict[str, Any], arrays: dict[str, NDArray[Any]]
) -> ValuationResult:
    """The result a verified header and arrays describe (see :meth:`ValuationResult.load`).

    Raises
    ------
    DataworthError
        Naming the first field that :meth:`ValuationResult.save` could not have written.
    """
    kind = header_field(header, "kind", str)
    if kind not in ("row", "group"):
        raise DataworthError(f"'kind' is {kind[:20]!r}, not 'row' or 'group'")
    estimator = header_field(header, "estimator", (str, type(None)))
    if estimator is not None and estimator not in REDUCERS:
        raise DataworthError(f"'estimator' is {estimator[:20]!r}, not one of {sorted(REDUCERS)}")
    state_keys = header_field(header, "state_keys", list)
    if not all(isinstance(k, str) for k in state_keys) or len(set(state_keys)) < len(state_keys):
        raise DataworthError("'state_keys' is not a list of distinct names")
    values = array_field(arrays, "values", "iuf")
    n = values.shape[0]
    stderr = array_field(arrays, "stderr", "iuf", n)
    counts = array_field(arrays, "counts", "iu", n)
    if n and (counts.min() < 0 or counts.max() > INT64_MAX):
        raise DataworthError("'counts' holds a number of samples below 0 or above 2**63 - 1")
    labels = array_field(arrays, "labels", "biufU", n)
    state = {k: checked_moments(arrays, f"state.{k}", n) for k in state_keys} or None
    if state is not None:
        if estimator is None:
            raise DataworthError("'estimator' is null, but the file holds a state")
        try:
            reduce_state(estimator, state)
        except KeyError as exc:
            raise DataworthError(f"'state_keys' lacks {exc} for estimator {estimator!r}") from None
    return cls(
        values=values.astype(np.float64),
        stderr=stderr.astype(np.float64),
        counts=counts.astype(np.int64),
        labels=labels,
        method=header_field(header, "method", str),
        params=header_field(header, "params", dict),
        metadata=header_field(header, "metadata", dict),
        kind=kind,
        state=state,
        estimator=estimator,
    )
