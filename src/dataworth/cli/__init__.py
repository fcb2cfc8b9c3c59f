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
from importlib import import_module
from typing import Any

import click

from dataworth.cli._files import guard_files
from dataworth.cli._resume import interrupted_hint
from dataworth.cli._timing import IMPORTED_AT  # noqa: F401  (the command's start)
from dataworth.errors import DataworthError

__all__ = ["COMMANDS", "cli", "main", "write_values"]

#: command name -> ("module:function" under dataworth.cli, its line in ``dataworth --help``).
#: A command's module is imported only when it runs or shows its own help, so that
#: ``dataworth --help`` and ``dataworth methods`` start in a fraction of a second; the line
#: repeats the first sentence of the command's docstring (a test keeps the two equal).
COMMANDS: dict[str, tuple[str, str]] = {
    "value": (
        "value:value",
        "Value every row (or group) of TRAIN and write index,value,stderr,count.",
    ),
    "merge": (
        "merge:merge",
        "Merge partial runs (RESULTS: files saved with `dataworth value --save-result`) of the "
        "same method and data, run with different --seed, and write index,value,stderr,count.",
    ),
    "methods": (
        "listing:methods",
        "List every valuation method, then every estimator, with one line and its reference.",
    ),
    "models": ("listing:models", "List the model names accepted by --model."),
    "demo": (
        "demo:demo",
        "Flip 10% of breast-cancer training labels and see which methods find them; writes the "
        "values and a review page (report.html) to --out-dir.",
    ),
    "influencers": (
        "influencers:influencers",
        "List the rows of TRAIN that most raise and most lower the loss of row --row of --test.",
    ),
    "robustness": (
        "robustness:robustness",
        "How many rows of DATA must be dropped to change a regression conclusion?",
    ),
    "clean": (
        "clean:clean",
        "Find rows of TRAIN that hurt the model: removal curves on a held-out test split, a "
        "suggested cut, a review list for experts and the labels to fix first.",
    ),
    "explain": (
        "explain:explain",
        "Explain what carries value in TRAIN: features, regions, classes, sources, stability.",
    ),
    "debug": (
        "debug:debug",
        "Debug a model through its training rows: --class C, or --test FILE [--row I].",
    ),
    "prune": (
        "prune:prune",
        "Report redundant (near-zero, near-duplicate) versus harmful (negative) rows of TRAIN "
        "and keep a fraction of them.",
    ),
    "select": (
        "select:select",
        "Choose the rows of POOL to label next (batch active learning).",
    ),
    "market": (
        "market:market",
        "Value every provider (--group) of DATA and split --budget among them in proportion to "
        "positive value; print the payout table and the rule, and write provider,value,payout.",
    ),
    "repairs": (
        "repairs:repairs",
        "List the cells a data-repair tool changed in RAW, and explain them with Shapley values.",
    ),
    "report": (
        "report:report",
        "Write one self-contained HTML page to review the values in VALUES.csv (as written by "
        "`dataworth value`; several files compare methods) of the rows of --data.",
    ),
}


class _LazyGroup(click.Group):
    """A group whose commands are imported when used; ``--help`` lists them from COMMANDS."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        if cmd_name not in self.commands:
            module, name = COMMANDS[cmd_name][0].split(":")
            command = getattr(import_module(f"dataworth.cli.{module}"), name)
            self.add_command(guard_files(command), cmd_name)
        return self.commands[cmd_name]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(map(len, COMMANDS))
        # the shortening click applies to a loaded command's docstring
        rows = [
            (c, click.Command(c, help=line).get_short_help_str(limit))
            for c, (_, line) in COMMANDS.items()
        ]
        with formatter.section("Commands"):
            formatter.write_dl(sorted(rows))


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dataworth")
def cli() -> None:
    """Data valuation: what each training row (or data source) is worth to a model."""


def __getattr__(name: str) -> Any:
    # ``write_values`` was public here before the commands became lazy
    if name == "write_values":
        from dataworth.cli._common import write_values

        return write_values
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
