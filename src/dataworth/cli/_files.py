"""Files a command reads and writes: their parameter types, and the check run before it starts.

Kept apart from :mod:`dataworth.cli._common` so that wrapping a command imports nothing heavy.
"""

from __future__ import annotations

import functools
from typing import Any

import click

from dataworth.fileio import check_output_paths

__all__ = ["INPUT_FILE", "OUTPUT_FILE", "RESUME_FILE", "FileRole", "guard_files"]


class FileRole(click.ParamType):
    """The type of an argument or option naming a file the command reads (``"input"``) or
    writes (``"output"``); the value stays the text given. :func:`guard_files` uses the roles.
    """

    name = "path"

    def __init__(self, role: str, same_as: str | None = None) -> None:
        self.role = role
        self.same_as = same_as  # an output parameter allowed to name the same file

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return value


#: Files a command reads, and files it writes.
INPUT_FILE = FileRole("input")
OUTPUT_FILE = FileRole("output")
#: ``--resume``: a checkpoint read and written again, which ``--checkpoint`` may also name.
RESUME_FILE = FileRole("output", same_as="checkpoint")


def guard_files(command: click.Command) -> click.Command:
    """Make ``command`` check its :data:`OUTPUT_FILE` paths before it starts: none may be one of
    its :data:`INPUT_FILE` paths (the same file, however named), a folder, another output, or in
    a folder that cannot be written (:func:`dataworth.fileio.check_output_paths`)."""
    callback = command.callback
    if callback is None:
        return command
    roles = [
        (p.name, p.type, (p.opts or [str(p.name)])[-1])
        for p in command.params
        if isinstance(p.type, FileRole) and p.name is not None
    ]
    if not roles:
        return command

    @functools.wraps(callback)
    def checked(*args: Any, **kwargs: Any) -> Any:
        inputs: list[str | None] = []
        outputs: dict[str, str | None] = {}
        for name, role, flag in roles:
            given = kwargs.get(name)
            if role.same_as is not None and given == kwargs.get(role.same_as):
                continue  # checked as that parameter
            if role.role == "output":
                outputs[flag] = given
            else:
                inputs.extend(given if isinstance(given, (list, tuple)) else [given])
        check_output_paths(outputs, inputs)
        return callback(*args, **kwargs)

    command.callback = checked
    return command
