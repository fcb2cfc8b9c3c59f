"""ValuationResult: one value per player (row or group), in dataset order, with error bars.

Examples
--------
>>> import numpy as np
>>> r = ValuationResult(values=np.array([0.2, -0.1, 0.5]), method="demo")
>>> r.top(1).tolist(), r.bottom(1).tolist(), r.rank().tolist()
([2], [1], [2, 3, 1])
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dataworth.engine.moments import Moments, State, estimate, merge_states
from dataworth.errors import DataworthError

__all__ = ["ValuationResult"]

_FORMAT = "dataworth.ValuationResult/1"


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
        How ``state`` becomes values (see :data:`dataworth.engine.moments.ESTIMATORS`).
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
        values, stderr, counts = estimate(estimator, state)
        return cls(
            values=values, stderr=stderr, counts=counts, state=state, estimator=estimator, **fields
        )

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return int(self.values.shape[0])

    def _order(self, ascending: bool) -> NDArray[np.intp]:
        key = self.values if ascending else -self.values
        key = np.where(np.isnan(key), np.inf, key)  # NaN last either way
        return np.argsort(key, kind="stable")

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
        values, stderr, counts = estimate(self.estimator, state)
        metadata = dict(self.metadata)
        for key in ("n_updates", "n_failures"):
            if key in self.metadata or key in other.metadata:
                metadata[key] = self.metadata.get(key, 0) + other.metadata.get(key, 0)
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
            "header": np.array(json.dumps(header, default=_json_default)),
        }
        for key, mom in (self.state or {}).items():
            arrays[f"state.{key}.count"] = mom.count
            arrays[f"state.{key}.mean"] = mom.mean
            arrays[f"state.{key}.m2"] = mom.m2
        atomic_savez(path, arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> ValuationResult:
        """Read a result written by :meth:`save`."""
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                header = json.loads(str(data["header"]))
                if header.get("format") != _FORMAT:
                    raise DataworthError(f"{path} is not a dataworth result file.")
                state = {
                    k: Moments(
                        data[f"state.{k}.count"], data[f"state.{k}.mean"], data[f"state.{k}.m2"]
                    )
                    for k in header["state_keys"]
                } or None
                return cls(
                    values=data["values"],
                    stderr=data["stderr"],
                    counts=data["counts"],
                    labels=data["labels"],
                    method=header["method"],
                    params=header["params"],
                    metadata=header["metadata"],
                    kind=header["kind"],
                    state=state,
                    estimator=header["estimator"],
                )
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            if isinstance(exc, DataworthError):
                raise
            raise DataworthError(
                f"cannot read a result from {path}: damaged or not a dataworth result file "
                f"({type(exc).__name__})."
            ) from None

    def __repr__(self) -> str:
        return f"ValuationResult(method={self.method!r}, n={len(self)}, kind={self.kind!r})"


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return repr(obj)


def atomic_savez(path: Path, arrays: dict[str, NDArray[Any]]) -> None:
    """Write an npz file atomically (temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
