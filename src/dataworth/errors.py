"""Exceptions raised by dataworth for problems the user can fix.

Every error raised for bad input derives from :class:`DataworthError` (a ``ValueError``), so the
command-line interface can show it as one line and exit with code 2 instead of a traceback.
"""

from __future__ import annotations

__all__ = ["CheckpointError", "DataworthError", "UtilityError"]


class DataworthError(ValueError):
    """Invalid input or settings; the message says what was wrong and how to fix it."""


class UtilityError(DataworthError):
    """Fitting or scoring the model on a subset failed."""


class CheckpointError(DataworthError):
    """A checkpoint cannot be written, read, or does not belong to this run."""
