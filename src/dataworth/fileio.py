"""Writing output files safely: atomically, with the user's umask, never over an input.

Every file dataworth writes (CSV, JSON, HTML, npz, checkpoints) goes through
:func:`atomic_output`: it is written to a temporary file in the destination's folder and renamed
into place only once complete, so that a full disk, a file-size limit or a kill leaves the
previous file as it was. New files get the permissions ``0o666`` less the user's umask (as
``open`` gives). :func:`check_output_paths` refuses, before any work, an output that is an
input, a folder, or in a folder that cannot be written. :func:`spreadsheet_safe` neutralises
cells that a spreadsheet would run as a formula. :func:`atomic_savez` writes an npz archive
through :func:`atomic_output` (a result's values CSV is
:meth:`dataworth.result.ValuationResult.to_csv`).

Examples
--------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> with atomic_output(folder / "values.csv") as fh:
...     _ = fh.write("index,value\\n")
>>> (folder / "values.csv").read_text()
'index,value\\n'
>>> spreadsheet_safe("=cmd|' /C calc'!A0"), spreadsheet_safe("-2"), spreadsheet_safe("a")
("'=cmd|' /C calc'!A0", '-2', 'a')
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from dataworth.errors import DataworthError

__all__ = [
    "atomic_output",
    "atomic_savez",
    "check_output_paths",
    "spreadsheet_safe",
]


@contextmanager
def atomic_output(
    path: str | Path, mode: str = "w", *, encoding: str | None = None, newline: str | None = None
) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on success rename it to ``path``.

    The folder of ``path`` is created when missing. On any error (or interruption) inside the
    block the temporary file is removed and ``path`` keeps its previous content. The new file's
    permissions follow the umask. An existing ``path`` that is not a regular file (a device
    such as ``/dev/stdout``, a pipe) is written directly.

    Parameters
    ----------
    path : str or Path
        Destination.
    mode : {"w", "wb"}, default="w"
        Text or binary.
    encoding, newline : str, optional
        As for :func:`open` (text mode; ``encoding`` defaults to UTF-8).
    """
    out = Path(path)
    if out.exists() and not out.is_file():  # a device or a pipe (/dev/stdout): no rename there
        with open(out, mode, encoding=None if "b" in mode else encoding or "utf-8",
                  newline=newline) as direct:  # fmt: skip
            yield direct
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    try:
        if "b" in mode:
            fh: IO[Any] = os.fdopen(fd, mode)
        else:
            fh = os.fdopen(fd, mode, encoding=encoding or "utf-8", newline=newline)
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(out.parent)


def atomic_savez(path: str | Path, arrays: Mapping[str, NDArray[Any]]) -> None:
    """Write the npz archive of ``arrays`` to ``path`` atomically (:func:`atomic_output`)."""
    with atomic_output(path, "wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the platform allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_output_paths(
    outputs: Mapping[str, str | Path | None], inputs: Sequence[str | Path | None]
) -> None:
    """Refuse, before any work, output paths that would destroy an input or cannot be written.

    Parameters
    ----------
    outputs : mapping of str to path or None
        Option name (``--out``) to the path it names; None (not given) is skipped.
    inputs : sequence of path or None
        The files the command reads; an output naming the same file (compared with
        :func:`os.path.samefile`, so links and other spellings count) is refused.

    Raises
    ------
    DataworthError
        For an output that is an input, a folder, the same file as another output, or in a
        folder that cannot be written.
    """
    given = {flag: Path(p) for flag, p in outputs.items() if p is not None}
    sources = [Path(p) for p in inputs if p is not None]
    for flag, out in given.items():
        if out.is_dir():
            raise DataworthError(f"{flag} {out} is a directory; name a file in it.")
        for source in sources:
            if _same_file(out, source):
                raise DataworthError(
                    f"{flag} {out} is the input file {source}; writing it would destroy the input:"
                    " choose another path."
                )
        _check_writable(flag, out)
    flags = list(given)
    for i, first in enumerate(flags):
        for second in flags[i + 1 :]:
            if _same_file(given[first], given[second]):
                raise DataworthError(
                    f"{first} and {second} name the same file {given[first]}; give each its own."
                )


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _check_writable(flag: str, out: Path) -> None:
    """The nearest existing folder above ``out`` must be a writable folder (a device or pipe
    such as ``/dev/stdout`` must itself be writable)."""
    if out.exists() and not out.is_file():
        if not os.access(out, os.W_OK):
            raise DataworthError(f"cannot write {flag} {out}: permission denied.")
        return
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise DataworthError(f"cannot write {flag} {out}: {parent} is a file, not a directory.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DataworthError(f"cannot write {flag} {out}: the directory {parent} is not writable.")


#: A plain number (``-2``, ``+1.5e3``): a spreadsheet reads it as a number, never as a formula.
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    """``cell`` with a leading ``'`` when a spreadsheet would run it as a formula.

    OWASP's rule for CSV injection: a text beginning with ``=``, ``+``, ``-``, ``@``, a tab or a
    carriage return is prefixed with a single quote. Plain numbers such as ``-2`` are kept.
    """
    if cell.startswith(_FORMULA_START) and not _NUMBER.fullmatch(cell):
        return "'" + cell
    return cell
