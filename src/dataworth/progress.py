"""When to show a progress bar: ``progress=None`` means "when someone is watching".

The bars are ``tqdm.auto`` bars (a widget in Jupyter, text on a terminal); ``None``, the
default of every method's ``progress``, shows them when standard error is a terminal or the code
runs in IPython or Jupyter, and hides them otherwise (scripts piped to a file, CI, tests).
"""

from __future__ import annotations

import sys

__all__ = ["interactive", "show_progress"]


def interactive() -> bool:
    """Whether standard error is a terminal, or the code runs in IPython or Jupyter."""
    ipython = sys.modules.get("IPython")  # only when already imported: never import it here
    if ipython is not None:
        try:
            if ipython.get_ipython() is not None:
                return True
        except Exception:  # an unusual IPython install: fall back to the terminal test
            pass
    try:
        return bool(sys.stderr is not None and sys.stderr.isatty())
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


def show_progress(progress: bool | None) -> bool:
    """``progress`` as a decision: ``None`` is :func:`interactive`.

    Examples
    --------
    >>> show_progress(True), show_progress(False)
    (True, False)
    """
    return interactive() if progress is None else bool(progress)
