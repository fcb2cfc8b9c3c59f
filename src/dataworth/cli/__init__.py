"""The ``dataworth`` command: value | methods | models | demo | influencers | robustness.

Each command lives in its own module and is added to the group here. Every user mistake ends in
one line on standard error and exit code 2, never a traceback.
"""

from __future__ import annotations

import os
import sys
import warnings

import click

from dataworth.cli._common import write_values
from dataworth.cli.clean import clean
from dataworth.cli.debug import debug
from dataworth.cli.demo import demo
from dataworth.cli.explain import explain
from dataworth.cli.influencers import influencers
from dataworth.cli.market import market
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
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line and exit code 2.

    Exit codes: 0 success; 2 a user error (bad input or settings), shown as one ``error:``
    line; 130 interrupted; 1 an unexpected internal error, also shown as one ``error:`` line
    that asks for a bug report (set ``DATAWORTH_DEBUG=1`` to see the traceback instead).
    Python warnings raised by a command are shown once each as one ``warning:`` line after it
    succeeds, and not at all when it fails, so that a failing command prints exactly one line.
    """
    with warnings.catch_warnings(record=True) as caught:
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
    try:
        cli.main(args=argv, prog_name="dataworth", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted.", err=True)
        return 130
    except click.ClickException as exc:
        message = exc.format_message().replace("\n", " ")
        click.echo(f"error: {message} (see `dataworth --help`)", err=True)
        return 2
    except (DataworthError, OSError) as exc:
        click.echo(f"error: {_one_line(exc)}", err=True)
        return 2
    except KeyboardInterrupt:
        click.echo("interrupted; with --checkpoint, rerun with --resume to continue.", err=True)
        return 130
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


def _one_line(exc: BaseException | str) -> str:
    text = str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return " ".join(text.split()) or type(exc).__name__
