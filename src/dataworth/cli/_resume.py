"""What an interrupted command says about resuming: only what is true of that command.

A command whose work can be checkpointed calls :func:`checkpointing` once it knows whether its
run writes a checkpoint (``--checkpoint``/``--resume`` given and honoured by the method) or
could (the method takes one, none was given). :func:`interrupted_hint` then words the line
printed on Ctrl-C or SIGTERM; a command that never called it (one without checkpoints, or a
method that ignores them) gets no hint about them.

Examples
--------
>>> interrupted_hint(None)
''
>>> interrupted_hint({_KEY: ("run.ckpt", False)})
' every finished round is saved in run.ckpt: rerun the command with --resume run.ckpt in place of --checkpoint run.ckpt to continue.'
"""  # noqa: E501

from __future__ import annotations

from typing import Any

import click

__all__ = ["checkpointing", "interrupted_hint"]

_KEY = "dataworth.checkpointing"


def checkpointing(path: str | None, *, resumed: bool = False) -> None:
    """Record, for the interruption message, that this command's run writes its checkpoint to
    ``path`` (``resumed``: it was given as ``--resume``), or with ``path`` None that it takes
    ``--checkpoint`` but none was given."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[_KEY] = (path, resumed)


def interrupted_hint(meta: dict[str, Any] | None) -> str:
    """The text after ``interrupted;``/``terminated;`` (empty: no hint) for a command whose
    context's ``meta`` is given (None: it never started)."""
    recorded = (meta or {}).get(_KEY)
    if recorded is None:
        return ""
    path, resumed = recorded
    if path is None:
        return (
            " nothing was saved: with --checkpoint PATH every finished round is saved, and "
            "--resume PATH continues the run."
        )
    if resumed:
        return f" every finished round is saved in {path}: rerun the same command to continue."
    return (
        f" every finished round is saved in {path}: rerun the command with --resume {path} in "
        f"place of --checkpoint {path} to continue."
    )
