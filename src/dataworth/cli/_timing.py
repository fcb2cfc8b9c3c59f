"""Where a command's wall time goes: start-up, loading, set-up, valuation, writing (``--verbose``).

Examples
--------
>>> watch = Stopwatch(started=0.0)
>>> watch.lap("load", now=0.5)
>>> watch.lap("valuation", now=2.0)
>>> watch.summary()
'time: load 0.50 s, valuation 1.50 s; 2.00 s in all'
"""

from __future__ import annotations

import time

__all__ = ["IMPORTED_AT", "Stopwatch"]

#: When the ``dataworth`` command module was imported: the start of a command's own work.
IMPORTED_AT = time.monotonic()


class Stopwatch:
    """Laps of wall time, each from the end of the previous one (the first from ``started``)."""

    def __init__(self, started: float | None = None) -> None:
        self._last = time.monotonic() if started is None else started
        self._first = self._last
        self.laps: list[tuple[str, float]] = []

    def lap(self, name: str, now: float | None = None) -> None:
        """End the lap called ``name`` now."""
        now = time.monotonic() if now is None else now
        self.laps.append((name, now - self._last))
        self._last = now

    def summary(self) -> str:
        """One line: each lap and the total."""
        parts = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in self.laps)
        return f"time: {parts}; {self._last - self._first:.2f} s in all"
