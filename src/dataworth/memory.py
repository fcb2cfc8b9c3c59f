"""Memory checks before large dense allocations.

Methods that build an ``n x n`` or ``p x p`` matrix call :func:`check_memory` first, so that a
problem too large for the machine stops at once with a :class:`DataworthError` giving the size
and the way out, instead of a ``MemoryError`` (or the kernel's out-of-memory killer) after
minutes of work.
"""

from __future__ import annotations

import os

from dataworth.errors import DataworthError

__all__ = ["available_memory", "check_memory", "format_bytes"]


def available_memory() -> int:
    """Bytes of memory this process can still allocate, as well as the system can tell.

    ``MemAvailable`` of ``/proc/meminfo`` (Linux: free memory plus reclaimable caches), else
    the physical memory (``sysconf``), else a generous 2^40 (1 TiB) when neither is known, so
    that an unknown system never refuses work that would fit.

    Examples
    --------
    >>> available_memory() > 0
    True
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return 1 << 40


def format_bytes(n: float) -> str:
    """``n`` bytes in the largest binary unit that keeps it at least 1, e.g. ``'18.6 GiB'``.

    Examples
    --------
    >>> format_bytes(20_000_800_008)
    '18.6 GiB'
    >>> format_bytes(512)
    '512 B'
    """
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        scale = float(1 << {"TiB": 40, "GiB": 30, "MiB": 20, "KiB": 10}[unit])
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def check_memory(needed: float, what: str, remedy: str, available: int | None = None) -> None:
    """Raise :class:`DataworthError` when ``needed`` bytes exceed the available memory.

    Parameters
    ----------
    needed : float
        Bytes the computation will hold at its peak (an estimate; a float so that
        ``n * n * 8`` never overflows).
    what : str
        What needs them, e.g. ``"influence needs the 50001 x 50001 Hessian"``.
    remedy : str
        What to do instead, one sentence.
    available : int, optional
        Bytes available (e.g. a GPU's free memory); default :func:`available_memory`.

    Examples
    --------
    >>> check_memory(1024, "a tiny array", "nothing")  # fits: returns None
    >>> try:
    ...     check_memory(2.0**80, "x needs 2^80 bytes", "use less.")
    ... except DataworthError as exc:
    ...     print(str(exc)[:31])
    x needs 2^80 bytes: about 10995
    """
    if available is None:
        available = available_memory()
    if needed > available:
        raise DataworthError(
            f"{what}: about {format_bytes(needed)}, more than the {format_bytes(available)} "
            f"available; {remedy}"
        )
