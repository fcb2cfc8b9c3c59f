"""The ``dataworth`` command: value | merge | methods | models | demo | influencers | ... .

Each command lives in its own module and is added to the group here. Every user mistake ends in
one line on standard error and exit code 2, never a traceback.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import click

from dataworth.cli._common import guard_files, write_values
from dataworth.cli._resume import interrupted_hint
from dataworth.cli.clean import clean
from dataworth.cli.debug import debug
from dataworth.cli.demo import demo
from dataworth.cli.explain import explain
from dataworth.cli.influencers import influencers
from dataworth.cli.market import market
from dataworth.cli.merge import merge
from dataworth.cli.prune import prune
from dataworth.cli.report import report
from dataworth.cli.robustness import robustness
from dataworth.cli.select import select
from dataworth.cli.value import methods, models, value
from dataworth.errors import DataworthError

__all__ = ["cli", "main", "write_values"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dataworth")
def cli() -> None:
    """Data valuation: what each training row (or data source) is worth to a model."""


for _command in (
    value,
    merge,
    methods,
    models,
    demo,
    influencers,
    robustness,
    clean,
    explain,
    debug,
    prune,
    select,
    market,
    report,
):
    cli.add_command(guard_files(_command))


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line and exit code 2.

    Exit codes: 0 success; 2 a user error (bad input or settings), shown as one ``error:``
    line; 130 interrupted (Ctrl-C) and 143 terminated (SIGTERM), with a hint to resume; 1 an
    unexpected internal error, also shown as one ``error:`` line that asks for a bug report
    (set ``DATAWORTH_DEBUG=1`` to see the traceback instead).
    Python warnings raised by a command are shown once each as one ``warning:`` line after it
    succeeds, and not at all when it fails, so that a failing command prints exactly one line.
    """
    with warnings.catch_warnings(record=True) as caught, _sigterm_as_interrupt():
        warnings.simplefilter("default")
        code = _run(argv)
    if code == 0:
        seen: set[str] = set()
        for w in caught:
            line = f"warning: {w.category.__name__}: {_one_line(w.message)}"
            if line not in seen:
                seen.add(line)
                click.echo(line, err=True)
    if code:
        sys.exit(code)


def _run(argv: list[str] | None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    ctx: click.Context | None = None
    try:
        # make_context + invoke rather than cli.main, whose Ctrl-C handler prints a blank line
        with cli.make_context("dataworth", args) as ctx:
            cli.invoke(ctx)
    except click.exceptions.Exit as exc:  # --help, --version
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        # on a terminal, end the line that holds the echoed ^C first; mention checkpoints only
        # where the command writes one, or could (see dataworth.cli._resume)
        click.echo(("\n" if sys.stderr.isatty() else "") + _stopped("interrupted", ctx), err=True)
        return 130
    except _Terminated:
        click.echo(_stopped("terminated", ctx), err=True)
        return 143
    except click.ClickException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `dataworth`: the help, as click does
            click.echo(exc.format_message(), err=True)
            return 2
        message = exc.format_message().replace("\n", " ")
        click.echo(f"error: {message} (see `dataworth --help`)", err=True)
        return 2
    except (DataworthError, OSError) as exc:
        click.echo(f"error: {_one_line(exc)}", err=True)
        return 2
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        click.echo(f"error: {_one_line(str(exc.code))}", err=True)
        return 1
    except Exception as exc:
        if os.environ.get("DATAWORTH_DEBUG"):
            raise
        click.echo(
            f"error: internal error ({type(exc).__name__}: {_one_line(exc)[:300]}); this is a "
            "bug in dataworth: please report it with the command that caused it (set "
            "DATAWORTH_DEBUG=1 to see the traceback).",
            err=True,
        )
        return 1
    return 0


def _stopped(how: str, ctx: click.Context | None) -> str:
    """``interrupted.``, or ``interrupted;`` and what the command saved and how to continue."""
    hint = interrupted_hint(None if ctx is None else ctx.meta)
    return f"{how};{hint}" if hint else f"{how}."


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that clean-up (local clusters, files) runs."""


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into :class:`_Terminated` while a command runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(_signum: int, _frame: object) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _one_line(exc: BaseException | str) -> str:
    text = str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return " ".join(text.split()) or type(exc).__name__
