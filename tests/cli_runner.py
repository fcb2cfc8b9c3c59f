"""The one way tests run the ``dataworth`` command: in this process (fast), or as a real one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

from dataworth.cli import main


class Outcome(NamedTuple):
    """Exit code, standard output and standard error of one command."""

    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        """The non-blank lines of standard error."""
        return [line for line in self.err.splitlines() if line.strip()]


def run_cli(capsys: Any, *args: object) -> Outcome:
    """Run ``dataworth ARGS`` in this process through ``main``; what it printed, via ``capsys``
    (anything printed before is dropped)."""
    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def run_subprocess(*args: object, cwd: Path, timeout: float = 120, **kwargs: Any) -> Outcome:
    """Run ``python -m dataworth.cli ARGS`` as a real process in ``cwd``."""
    proc = subprocess.run(
        [sys.executable, "-m", "dataworth.cli", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, timeout=timeout, **kwargs,
    )  # fmt: skip
    return Outcome(proc.returncode, proc.stdout, proc.stderr)
