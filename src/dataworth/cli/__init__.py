"""The ``dataworth`` command: value | methods | models | demo | influencers | robustness.

Each command lives in its own module and is added to the group here. Every user mistake ends in
one line on standard error and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys

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
    """Entry point: user errors become one line and exit code 2."""
    try:
        cli.main(args=argv, prog_name="dataworth", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        message = exc.format_message().replace("\n", " ")
        click.echo(f"error: {message} (see `dataworth --help`)", err=True)
        sys.exit(2)
    except (DataworthError, OSError) as exc:
        click.echo(f"error: {_one_line(exc)}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted; with --checkpoint, rerun with --resume to continue.", err=True)
        sys.exit(130)


def _one_line(exc: BaseException) -> str:
    text = str(exc) if not isinstance(exc, OSError) else f"{exc.strerror}: {exc.filename}"
    return " ".join(text.split()) or type(exc).__name__
