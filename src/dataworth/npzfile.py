"""Reading the npz files dataworth writes (results, checkpoints): without pickle, every field
verified, every problem one short reason.

Writing goes through :func:`dataworth.fileio.atomic_savez`; the engine's checkpoints and
:class:`~dataworth.result.ValuationResult` both read back with the functions here.

Examples
--------
>>> header_count({"n": 3}, "n")
3
>>> header_field({"n": True}, "n", int)
Traceback (most recent call last):
...
dataworth.errors.DataworthError: 'n' is a boolean (true), not a whole number
"""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dataworth.engine.moments import Moments
from dataworth.errors import DataworthError

__all__ = [
    "INT64_MAX",
    "NotAnArchive",
    "array_field",
    "checked_moments",
    "header_count",
    "header_field",
    "read_header",
    "read_npz",
]

#: The largest count a file may hold.
INT64_MAX = int(np.iinfo(np.int64).max)

#: What numpy and zipfile raise for a file that is not a readable npz archive.
_NPZ_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    EOFError,
    MemoryError,
    NotImplementedError,
    zipfile.BadZipFile,
    zlib.error,
)


class NotAnArchive(DataworthError):
    """A file given where dataworth expects one of its npz files is no archive at all."""


def read_npz(path: Path) -> dict[str, NDArray[Any]]:
    """Every array of the npz file at ``path``, read at once and without pickle.

    Raises
    ------
    OSError
        The file cannot be opened (missing, a directory, no permission).
    NotAnArchive
        The file is no zip archive at all (e.g. a CSV given by mistake): not a damaged file.
    DataworthError
        The file is not a readable npz archive; the message is a short reason.
    """
    if Path(path).is_file() and not zipfile.is_zipfile(path):
        raise NotAnArchive("not an npz archive")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise DataworthError("a single array, not an npz archive")
        with data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, DataworthError):
        raise
    except _NPZ_ERRORS as exc:
        raise DataworthError(f"{type(exc).__name__}: {_short(exc)}") from None
    for name, arr in arrays.items():
        if not isinstance(arr, np.ndarray):  # a member that is not an .npy file: its bytes
            raise DataworthError(f"{name!r} is not an array")
    return arrays


def read_header(arrays: dict[str, NDArray[Any]], fmt: str) -> dict[str, Any] | None:
    """The JSON header of a file written by dataworth, or None if it has another ``format``.

    Raises
    ------
    DataworthError
        The header is there but is not one JSON object (the message names the problem).
    """
    if "header" not in arrays:
        return None
    raw = arrays["header"]
    if raw.shape != () or raw.dtype.kind != "U":
        raise DataworthError(f"'header' is a {raw.dtype} array of shape {raw.shape}, not text")
    try:
        header = json.loads(str(raw))
    except (ValueError, RecursionError) as exc:
        raise DataworthError(f"'header' is not JSON ({_short(exc)})") from None
    if not isinstance(header, dict):
        raise DataworthError(f"'header' is {_json_type(header)}, not an object")
    return header if header.get("format") == fmt else None


def header_field(header: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    """``header[key]``, refused unless present and of type ``kind`` (bool is not an int)."""
    if key not in header:
        raise DataworthError(f"{key!r} is missing")
    value = header[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        raise DataworthError(f"{key!r} is {_json_type(value)}, not {_type_names(kinds)}")
    return value


def header_count(header: dict[str, Any], key: str) -> int:
    """``header[key]`` as a whole number from 0 to 2**63 - 1."""
    value: int = header_field(header, key, int)
    if not 0 <= value <= INT64_MAX:
        raise DataworthError(f"{key!r} is {value}, not a whole number from 0 to 2**63 - 1")
    return value


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:120] or type(exc).__name__


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    names.update({list: "a list", dict: "an object"})
    shown = json.dumps(value)[:40] if isinstance(value, (bool, int, float, str)) else ""
    return f"{names.get(type(value), type(value).__name__)}{f' ({shown})' if shown else ''}"


def _type_names(kinds: tuple[type, ...]) -> str:
    names = {int: "a whole number", str: "a string", dict: "an object", list: "a list"}
    names[type(None)] = "null"
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def array_field(
    arrays: dict[str, NDArray[Any]], key: str, kinds: str, n: int | None = None
) -> NDArray[Any]:
    """``arrays[key]``, refused unless present, one-dimensional (of length ``n`` if given) and
    of one of the numpy dtype ``kinds`` (e.g. ``"iu"``: whole numbers)."""
    if key not in arrays:
        raise DataworthError(f"{key!r} is missing")
    arr = arrays[key]
    if arr.ndim != 1 or (n is not None and arr.shape[0] != n):
        want = "one-dimensional" if n is None else f"of shape ({n},)"
        raise DataworthError(f"{key!r} has shape {arr.shape}, not {want}")
    if arr.dtype.kind not in kinds:
        raise DataworthError(f"{key!r} holds {arr.dtype} values")
    return arr


def checked_moments(arrays: dict[str, NDArray[Any]], prefix: str, n: int) -> Moments:
    """The moments stored as ``PREFIX.count``, ``PREFIX.mean`` and ``PREFIX.m2``, verified.

    Counts must be whole numbers >= 0, means and ``m2`` finite real numbers, ``m2`` >= 0 and
    0 for a player without samples, all of shape ``(n,)``.
    """
    count = array_field(arrays, f"{prefix}.count", "iu", n)
    if n and (count.min() < 0 or count.max() > INT64_MAX):
        raise DataworthError(f"'{prefix}.count' holds a count below 0 or above 2**63 - 1")
    parts = {}
    for part in ("mean", "m2"):
        arr = array_field(arrays, f"{prefix}.{part}", "iuf", n).astype(np.float64)
        bad = arr[~np.isfinite(arr)]
        if bad.size:
            raise DataworthError(f"'{prefix}.{part}' holds {bad[0]}")
        parts[part] = arr
    m2 = parts["m2"]
    if np.any(m2 < 0):
        raise DataworthError(f"'{prefix}.m2' holds a negative sum of squares")
    if np.any(m2[count == 0] != 0):
        raise DataworthError(f"'{prefix}.m2' is not 0 for a player without samples")
    return Moments(count.astype(np.int64), parts["mean"], m2)
