"""Helpers shared by the commands: their common options, loading, notes and writing output."""

from __future__ import annotations

import csv
import functools
import json
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TextIO, TypeVar, cast

import click
import numpy as np
from click.core import ParameterSource

from dataworth.cli._files import INPUT_FILE, OUTPUT_FILE, RESUME_FILE, FileRole, guard_files
from dataworth.data import Dataset, detect_separator, read_table
from dataworth.engine.cluster import on_cluster_backend
from dataworth.engine.runner import check_n_jobs
from dataworth.errors import DataworthError
from dataworth.fileio import atomic_output
from dataworth.jsonable import json_ready
from dataworth.models import default_model, make_model
from dataworth.preprocess import (
    ENCODINGS,
    IMPUTATIONS,
    TASKS,
    Choices,
    FeaturePreprocessor,
    apply_task,
    feature_columns,
)
from dataworth.result import ValuationResult

__all__ = [
    "INPUT_FILE",
    "OUTPUT_FILE",
    "RESUME_FILE",
    "FileRole",
    "Notes",
    "Reading",
    "budget_option",
    "build_model",
    "catch_write_errors",
    "check_address",
    "check_n_jobs",
    "check_positive",
    "check_row",
    "check_same_columns",
    "check_same_target_kind",
    "cluster_options",
    "column_difference",
    "current_reading",
    "data_options",
    "format_cell",
    "format_table",
    "guard_files",
    "is_number",
    "json_object",
    "k_option",
    "load_file",
    "load_pair",
    "load_train_test",
    "method_params_option",
    "model_options",
    "n_jobs_option",
    "on_backend",
    "one_line",
    "open_output",
    "progress_bar",
    "progress_setting",
    "quiet_option",
    "read_rows_as_text",
    "runs_on_cluster",
    "scaled_by_train",
    "scoring_option",
    "seed_option",
    "standardize_option",
    "standardized",
    "target_option",
    "valid_file_option",
    "valid_fraction_option",
    "valid_options",
    "write_json",
    "write_text",
    "write_values",
]

F = TypeVar("F", bound=Callable[..., Any])


# ---------------------------------------------------------------------------------- options
def target_option(f: F) -> F:
    """Add ``--target``, the required name of the label column."""
    return click.option("--target", required=True, help="Name of the target (label) column.")(f)


def _column_names(text: str | None, flag: str) -> tuple[str, ...] | None:
    """``a,b,c`` as column names (spaces around each trimmed); None when not given."""
    if text is None:
        return None
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise DataworthError(f"{flag} needs column names separated by commas, e.g. {flag} a,b.")
    return names


def _separator(text: str | None) -> str | None:
    """``--sep``: one character, or ``tab`` / ``\\t`` for a tab; None detects it."""
    if text is None:
        return None
    if text.lower() in {"tab", "\\t", "\t"}:
        return "\t"
    if len(text) != 1 or text in '"\r\n':
        raise DataworthError(f"--sep must be one character (or 'tab'); got {text!r}.")
    return text


class Reading:
    """How the running command reads its data files (:func:`data_options`), and the feature
    preprocessing fitted on the first file it reads: its training rows.

    Outside a command decorated with :func:`data_options` the old rules hold: every column but
    the target and the group is a feature, and text or missing feature values are refused.
    """

    def __init__(
        self,
        choices: Choices | None = None,
        sep: str | None = None,
        id_labels: bool = False,
    ) -> None:
        self.choices = choices or Choices(encode="refuse", impute="refuse")
        self.sep = sep
        self.id_labels = id_labels
        self.preprocessor: FeaturePreprocessor | None = None
        self.train_source = ""
        self.notes = Notes()

    def read(self, path: str, group: str | None = None) -> dict[str, np.ndarray]:
        """The columns of ``path`` (group and id columns as exact text)."""
        text = [c for c in (group, self.choices.id_column) if c is not None]
        return read_table(path, text_columns=text, sep=self.sep)

    def training_rows(
        self,
        columns: dict[str, np.ndarray],
        target: str,
        valid_fraction: float,
        seed: int,
        source: str,
    ) -> np.ndarray:
        """The rows :meth:`Dataset.split` keeps for training (it depends on the target only)."""
        if target not in columns:
            feature_columns(list(columns), target, None, self.choices, source)  # raises
        labels = Dataset.from_columns(
            {"\x00": np.zeros(len(columns[target])), target: columns[target]},
            target,
            source=source,
        )
        labels = labels.replace(y=apply_task(labels.y, self.choices.task, target))
        train, _ = labels.split(valid_fraction, random_state=seed)
        return np.asarray(train.row_labels, dtype=np.intp)

    def dataset(
        self,
        columns: dict[str, np.ndarray],
        target: str,
        group: str | None,
        source: str,
        fit_rows: np.ndarray | None = None,
    ) -> Dataset:
        """``columns`` as a dataset; the first table read fits the preprocessing (on
        ``fit_rows``, default all rows), every later one is transformed the same way."""
        choices = self.choices
        names = list(columns)
        if self.preprocessor is None:
            features = feature_columns(names, target, group, choices, source)
            self.preprocessor = FeaturePreprocessor(choices, features).fit(
                columns, source, fit_rows
            )
            self.train_source = source
        else:
            if target not in columns:
                feature_columns(names, target, None, choices, source)  # raises
            features = self.preprocessor.names
            if choices.features is None:
                present = [
                    c
                    for c in names
                    if c not in (target, group, choices.id_column) and c not in choices.drop
                ]
            else:
                present = [c for c in features if c in columns]
            if present != features:
                detail = column_difference(present, features)
                raise DataworthError(
                    f"{source} must have the same columns as {self.train_source} ({detail})."
                )
        X, feature_names = self.preprocessor.transform(columns, source)
        self.notes.extend(self.preprocessor.notes)
        table = dict(zip(feature_names, X.T, strict=True))
        table[target] = columns[target]
        if group is not None and group in columns:
            table[group] = columns[group]
        labels = None
        id_col = choices.id_column
        if id_col is not None and id_col in columns:
            if self.id_labels:
                labels = np.asarray(columns[id_col]).astype(str)
                uniq, first, counts = np.unique(labels, return_index=True, return_counts=True)
                if (counts > 1).any():
                    dup = int(np.argmax(counts > 1))
                    raise DataworthError(
                        f"--id column {id_col!r} in {source} holds {str(uniq[dup])[:40]!r} "
                        f"{int(counts[dup])} times (first at row {int(first[dup])}); an id "
                        "names one row."
                    )
            else:
                self.notes.append(
                    f"--id {id_col!r} is kept out of the features; this command names rows by "
                    "their 0-based position in the file."
                )
        data = Dataset.from_columns(
            table, target, group=group if group in table else None, row_labels=labels,
            source=source,
        )  # fmt: skip
        if choices.task is not None:
            data = data.replace(y=apply_task(data.y, choices.task, target))
        return data


_READING: ContextVar[Reading | None] = ContextVar("dataworth_reading", default=None)


def current_reading() -> Reading:
    """The :class:`Reading` of the running command (a refusing default outside one)."""
    reading = _READING.get()
    return Reading() if reading is None else reading


def data_options(id_labels: bool = False) -> Callable[[F], F]:
    """Add the options that say how data files are read: ``--features``, ``--drop``, ``--id``,
    ``--encode``, ``--impute``, ``--sep`` and ``--task`` (see :mod:`dataworth.preprocess`).

    The command runs with a :class:`Reading` in place, which :func:`load_file`,
    :func:`load_pair` and :func:`load_train_test` use; its notes are printed after the
    command's own. With ``id_labels`` the ``--id`` column names the rows in the outputs.
    """

    def decorator(f: F) -> F:
        @functools.wraps(f)
        def command(
            *args: Any,
            features: str | None,
            drop: str | None,
            id_column: str | None,
            encode: str,
            impute: str,
            sep: str | None,
            task: str | None,
            **kwargs: Any,
        ) -> Any:
            choices = Choices(
                features=_column_names(features, "--features"),
                drop=_column_names(drop, "--drop") or (),
                id_column=id_column,
                encode=encode,
                impute=impute,
                task=task,
            )
            reading = Reading(choices, _separator(sep), id_labels)
            token = _READING.set(reading)
            try:
                rv = f(*args, **kwargs)
            finally:
                _READING.reset(token)
            reading.notes.flush()
            return rv

        options = [
            click.option(
                "--features",
                default=None,
                help="Feature columns to use, comma-separated (default: all but the target, "
                "group, --id and --drop columns).",
            ),
            click.option("--drop", default=None, help="Columns not to use, comma-separated."),
            click.option(
                "--id",
                "id_column",
                default=None,
                help="A row identifier column: never a feature"
                + ("; it names the rows in the output." if id_labels else "."),
            ),
            click.option(
                "--encode",
                type=click.Choice(ENCODINGS),
                default="onehot",
                show_default=True,
                help="Text feature columns: one 0/1 column per category, one column of "
                "category codes, or refuse them (categories from the training rows).",
            ),
            click.option(
                "--impute",
                type=click.Choice(IMPUTATIONS),
                default="median",
                show_default=True,
                help="Missing feature values: the training rows' median (most frequent text for "
                "text columns), most frequent value, or refuse them.",
            ),
            click.option(
                "--sep",
                default=None,
                help="CSV separator, e.g. ';' or tab (default: detected from the header).",
            ),
            click.option(
                "--task",
                type=click.Choice(TASKS),
                default=None,
                help="Treat the target as class labels or as real values (default: text and "
                "whole numbers are classes, other numbers real values).",
            ),
        ]
        wrapped = cast(F, command)
        for option in reversed(options):
            wrapped = option(wrapped)
        return wrapped

    return decorator


_PROGRESS: ContextVar[bool] = ContextVar("dataworth_progress", default=False)


def progress_setting() -> bool:
    """Whether the running command shows progress bars: standard error is a terminal and
    ``--quiet`` was not given (:func:`quiet_option`); False outside such a command."""
    return _PROGRESS.get()


def progress_bar(iterable: Iterable[Any], *, desc: str, total: int | None = None) -> Any:
    """``iterable`` with a tqdm bar on standard error when :func:`progress_setting` allows it."""
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, disable=not progress_setting(), leave=False)


def quiet_option(f: F) -> F:
    """Add ``--quiet``: no progress bars. Without it the command shows them when standard error
    is a terminal; :func:`progress_setting` says which, and
    :meth:`dataworth.cli._pipeline.Run.params` passes it on as the method's ``progress``."""

    @functools.wraps(f)
    def command(*args: Any, quiet: bool, **kwargs: Any) -> Any:
        token = _PROGRESS.set(not quiet and sys.stderr.isatty())
        try:
            return f(*args, **kwargs)
        finally:
            _PROGRESS.reset(token)

    return click.option(
        "--quiet",
        is_flag=True,
        help="No progress bars (shown by default when standard error is a terminal).",
    )(cast(F, command))


def valid_file_option(f: F) -> F:
    """Add ``--valid`` (parameter ``valid_path``): a valuation file with the same columns."""
    return click.option(
        "--valid",
        "valid_path",
        type=INPUT_FILE,
        default=None,
        help="Valuation set: a file with the same columns.",
    )(f)


def valid_fraction_option(data: str = "TRAIN") -> Callable[[F], F]:
    """Add ``--valid-fraction`` (default 0.2): the share of the argument ``data`` split off as
    valuation set when ``--valid`` is not given."""
    return click.option(
        "--valid-fraction",
        default=0.2,
        show_default=True,
        type=float,
        help=f"Without --valid: fraction of {data} split off (with --seed) as valuation set.",
    )


def valid_options(f: F) -> F:
    """Add ``--valid`` and ``--valid-fraction`` (of TRAIN), in that order."""
    return valid_file_option(valid_fraction_option()(f))


def model_options(model_help: str) -> Callable[[F], F]:
    """Add ``--model`` (parameter ``model_name``, help ``model_help``) and ``--model-params``,
    the two arguments of :func:`build_model`."""

    def decorator(f: F) -> F:
        f = click.option("--model-params", default=None, help="JSON object of model parameters.")(f)
        help_text = model_help
        if "runs" not in help_text:
            help_text += " A dotted class path imports its module, which runs that module's code."
        return click.option("--model", "model_name", default=None, help=help_text)(f)

    return decorator


def scoring_option(f: F) -> F:
    """Add ``--scoring``: a scikit-learn scorer name (default chosen by the utility)."""
    return click.option(
        "--scoring",
        default=None,
        help="scikit-learn scorer name (default: accuracy, or r2 for regression).",
    )(f)


def k_option(f: F) -> F:
    """Add ``--k``: the neighbours of knn-shapley."""
    return click.option(
        "--k",
        type=click.IntRange(max=2**31 - 1),
        default=None,
        help="Neighbours for knn-shapley (default 5).",
    )(f)


def budget_option(f: F) -> F:
    """Add ``--budget``: the samples of a Monte Carlo valuation method."""
    return click.option(
        "--budget",
        type=click.IntRange(max=2**62),
        default=None,
        help="Utility evaluations (shapley, and banzhaf or beta-shapley with a non-default "
        "--estimator), permutations (other permutation methods), subsets (banzhaf, least-core) "
        "or bags (data-oob).",
    )(f)


#: What ``--standardize`` does, in every command that has it.
STANDARDIZE_HELP = (
    "Standardise every feature with the mean and standard deviation of the training rows (the "
    "rows valued or learnt from: TRAIN; for select, the labelled and pool rows); valuation and "
    "test rows are scaled the same way, and the rows shown or written keep their original values."
)


def standardize_option(f: F | None = None, *, default: bool = False) -> Any:
    """Add ``--standardize/--no-standardize`` (:data:`STANDARDIZE_HELP`; off unless ``default``,
    which the help then says). The one definition of the option: use it bare
    (``@standardize_option``) or with a default (``@standardize_option(default=True)``); the
    scaling itself is :func:`standardized`."""
    help_text = STANDARDIZE_HELP + (" On by default for this command." if default else "")
    option = click.option(
        "--standardize/--no-standardize", default=default, show_default=True, help=help_text
    )
    return option if f is None else option(f)


def seed_option(f: F) -> F:
    """Add ``--seed`` (default 0): a whole number from 0 to 2**32 - 1, as numpy seeds take."""
    return click.option(
        "--seed",
        type=click.IntRange(0, 2**32 - 1),
        default=0,
        show_default=True,
        help="Random seed (0 to 4294967295).",
    )(f)


def n_jobs_option(f: F) -> F:
    """Add ``--n-jobs`` (default 1); checked by :func:`dataworth.engine.runner.check_n_jobs`
    (through :func:`runs_on_cluster`, or the command's own call)."""
    return click.option(
        "--n-jobs", type=int, default=1, show_default=True, help="Parallel workers."
    )(f)


def cluster_options(f: F) -> F:
    """Add ``--backend loky|ray|dask`` and ``--address`` (see :func:`on_backend`)."""
    f = click.option(
        "--address",
        default=None,
        help="With --backend ray|dask: the cluster to use (ray: auto, ray://HEAD:10001 or "
        "HEAD:6379; dask: tcp://SCHEDULER:8786). Without it a local cluster of --n-jobs "
        "workers is started for the run.",
    )(f)
    return click.option(
        "--backend",
        type=click.Choice(["loky", "ray", "dask"]),
        default="loky",
        show_default=True,
        help="Where parallel work runs: local processes (loky), a Ray cluster or a Dask "
        "cluster. The values are the same for all three with the same --seed.",
    )(f)


def check_address(backend: str, address: str | None) -> None:
    """Refuse ``--address`` without a cluster back end."""
    if address is not None and backend == "loky":
        raise DataworthError("--address needs --backend ray or --backend dask.")


def on_backend(backend: str, address: str | None, n_jobs: int) -> AbstractContextManager[None]:
    """The context in which parallel work runs on ``--backend`` (nothing to do for loky)."""
    check_address(backend, address)
    if backend == "loky":
        return nullcontext()
    return on_cluster_backend(backend, address, n_jobs)


def runs_on_cluster(f: F) -> F:
    """Add :func:`cluster_options` to a command with ``--n-jobs`` and run it on that back end.

    With ``--backend ray|dask`` and ``--n-jobs`` not given, every worker of the cluster is used.
    """

    @functools.wraps(f)
    def command(*args: Any, backend: str, address: str | None, **kwargs: Any) -> Any:
        check_n_jobs(kwargs["n_jobs"], "--n-jobs")  # before a cluster is started for nothing
        ctx = click.get_current_context()
        given = ctx.get_parameter_source("n_jobs") is not ParameterSource.DEFAULT
        if backend != "loky" and not given:
            kwargs["n_jobs"] = -1
        with on_backend(backend, address, kwargs["n_jobs"]):
            return f(*args, **kwargs)

    return cluster_options(cast(F, command))


# ---------------------------------------------------------------------------------- checks
def check_positive(value: int | None, flag: str) -> None:
    """Refuse a whole number below 1 given for ``flag`` (None, not given, passes)."""
    if value is not None and value < 1:
        raise DataworthError(f"{flag} must be a positive whole number; got {value}.")


def check_row(row: int, path: str, n_rows: int) -> None:
    """Refuse a row (0-based, negative from the end) outside the ``n_rows`` rows of ``path``."""
    if not -n_rows <= row < n_rows:
        raise DataworthError(f"--row {row} is out of range: {path} has {n_rows} rows (0-based).")


# ---------------------------------------------------------------------------------- notes
def one_line(message: object) -> str:
    r"""``message`` as one line: every run of whitespace, line breaks included, becomes a space.

    Examples
    --------
    >>> one_line("lbfgs failed to converge (status=1):\nSTOP: TOTAL NO. OF ITERATIONS.\n\nIncrease")
    'lbfgs failed to converge (status=1): STOP: TOTAL NO. OF ITERATIONS. Increase'
    """
    return " ".join(str(message).split())


class Notes(list[str]):
    """Notes collected during a command and printed once it has succeeded, so that a failing
    command prints exactly one line; a note already there is not added again.

    Examples
    --------
    >>> import warnings
    >>> notes = Notes(["split off 20%"])
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     for _ in range(3):
    ...         warnings.warn("3 points were never out of bag")
    >>> notes.add_warnings(caught, prefix="bootstrap: ")
    >>> list(notes)
    ['split off 20%', 'bootstrap: 3 points were never out of bag']
    """

    def append(self, message: str) -> None:
        """Add ``message``, whole but on one line (:func:`one_line`), unless it is already there.

        Warnings such as scikit-learn's ``ConvergenceWarning`` span several lines, the useful
        part after the first one; a note keeps all of it, so the terminal and the HTML report
        never show a message cut at its first line break.
        """
        message = one_line(message)
        if message not in self:
            super().append(message)

    def extend(self, messages: Iterable[str]) -> None:
        """Add each message not already there."""
        for message in messages:
            self.append(message)

    def add_warnings(self, caught: list[warnings.WarningMessage], prefix: str = "") -> None:
        """Add the user warnings recorded while a command ran, as one line each."""
        for w in caught:
            if issubclass(w.category, UserWarning):
                self.append(prefix + one_line(w.message))

    def flush(self) -> None:
        """Print every note as one ``note:`` line on standard error, then forget them."""
        for message in self:
            click.echo(f"note: {message}", err=True)
        self.clear()


# ---------------------------------------------------------------------------------- loading
def load_pair(
    notes: Notes,
    train_path: str,
    valid_path: str | None,
    target: str,
    group: str | None,
    valid_fraction: float,
    seed: int,
) -> tuple[Dataset, Dataset]:
    """The rows to value and the valuation set: ``valid_path``, or ``valid_fraction`` of the
    training file split off with ``seed`` (said in a note). With ``group``, the valuation file
    may leave the group column out."""
    reading = current_reading()
    columns = reading.read(train_path, group)
    rows = None
    if valid_path is None:
        rows = reading.training_rows(columns, target, valid_fraction, seed, train_path)
    data = reading.dataset(columns, target, group, train_path, fit_rows=rows)
    announce_whole_number_classes(notes, data)
    if valid_path is None:
        train, valid = data.split(valid_fraction, random_state=seed)
        notes.append(
            f"valuation set: {valid.n_samples} rows ({valid_fraction:g}) split off {train_path} "
            f"with seed {seed}; {train.n_samples} rows are valued."
        )
        return train, valid
    columns = reading.read(valid_path)  # the valuation set needs no group column: not valued
    valid = reading.dataset(columns, target, group if group in columns else None, valid_path)
    check_same_columns(valid, data, valid_path, train_path)
    check_same_target_kind(data, valid, train_path, valid_path)
    return data, valid


def load_file(path: str, target: str, group: str | None = None) -> Dataset:
    """The data file ``path`` read as the command's options say (:func:`data_options`); the
    first file a command reads is its training file, on which the preprocessing is fitted."""
    reading = current_reading()
    return reading.dataset(reading.read(path, group), target, group, path)


def read_rows_as_text(
    path: str, cell: Callable[[Any], str] = str
) -> tuple[list[str], list[list[str]]]:
    """The header and data rows of the table file ``path`` as text: a CSV's cells as written
    (blank lines skipped, as when reading data), a Parquet file's values through ``cell``."""
    source = Path(path)
    if source.suffix.lower() in {".parquet", ".pq"}:
        columns = read_table(source)
        header = list(columns)
        n_rows = len(next(iter(columns.values())))
        return header, [[cell(columns[c][i]) for c in header] for i in range(n_rows)]
    sep = current_reading().sep or detect_separator(source)
    with source.open(newline="", encoding="utf-8-sig") as fh:
        rows = [r for r in csv.reader(fh, delimiter=sep) if r]
    return rows[0], rows[1:]


def load_train_test(
    train_path: str, test_path: str, target: str, group: str | None = None
) -> tuple[Dataset, Dataset]:
    """The training file and a test file with the same feature columns."""
    train = load_file(train_path, target, group)
    test = load_file(test_path, target, group)
    if test.feature_names != train.feature_names:
        raise DataworthError(f"{test_path} must have the same feature columns as {train_path}.")
    return train, test


def column_difference(names: Sequence[str], reference: Sequence[str]) -> str:
    """How the columns ``names`` differ from ``reference``: the missing and the extra ones, or
    the same ones in a different order.

    Examples
    --------
    >>> column_difference(["a", "c"], ["a", "b"])
    "missing 'b'; extra 'c'"
    >>> column_difference(["b", "a"], ["a", "b"])
    'same columns in a different order'
    """
    missing = sorted(set(reference) - set(names))
    extra = sorted(set(names) - set(reference))
    parts = [
        f"missing {', '.join(map(repr, missing))}" if missing else "",
        f"extra {', '.join(map(repr, extra))}" if extra else "",
        "same columns in a different order" if not (missing or extra) else "",
    ]
    return "; ".join(p for p in parts if p)


def check_same_columns(data: Dataset, reference: Dataset, path: str, reference_path: str) -> None:
    """Refuse ``data`` (read from ``path``) unless its feature columns are those of
    ``reference``, in the same order."""
    if data.feature_names != reference.feature_names:
        detail = column_difference(data.feature_names, reference.feature_names)
        raise DataworthError(f"{path} must have the same columns as {reference_path} ({detail}).")


#: Distinct whole-number targets beyond which treating them as classes is announced.
MANY_CLASSES = 20


def announce_whole_number_classes(notes: Notes, data: Dataset) -> None:
    """Say so when a whole-number target with many distinct values is taken as class labels.

    Whole numbers are class labels by convention (``Dataset``), which is right for codes such as
    0-9 and wrong for counts or scores; with more than :data:`MANY_CLASSES` values the choice is
    announced with the way out.
    """
    if np.asarray(data.y).dtype.kind not in "iu" or current_reading().choices.task is not None:
        return
    n_classes = int(np.unique(data.y).size)
    if n_classes > MANY_CLASSES:
        ctx = click.get_current_context(silent=True)
        model = None if ctx is None else ctx.params.get("model_name")
        fitted_by = "the default model (logistic-regression)" if model is None else None
        if model is not None:
            from sklearn.base import is_classifier

            try:
                classifier = is_classifier(make_model(model, {}))
            except Exception:  # an unknown model is refused later, with its own message
                classifier = True
            fitted_by = f"--model {model}" if classifier else None
        users = (
            f"classifiers ({fitted_by}) and class-based methods"
            if fitted_by is not None
            else f"class-based methods (--model {model} fits them as numbers)"
        )
        notes.append(
            f"target {data.target_name!r} holds whole numbers with {n_classes} distinct values, "
            f"taken as {n_classes} class labels by {users}; if they are quantities, pass "
            "--task regression."
        )


def check_same_target_kind(
    train: Dataset, other: Dataset, train_path: str, other_path: str
) -> None:
    """Refuse a target holding numbers in one file and text in the other (nothing would match).

    A user error, not a model question: e.g. ``0/1`` labels for training and ``yes/no`` for
    validation would score every prediction as wrong without a word.
    """
    numeric = [np.asarray(d.y).dtype.kind in "biuf" for d in (train, other)]
    if numeric[0] == numeric[1]:
        return
    text = other if numeric[0] else train
    example = next((v for v in text.y.tolist() if not is_number(v)), text.y[0])
    kinds = ("numbers", "text") if numeric[0] else ("text", "numbers")
    raise DataworthError(
        f"the target {train.target_name!r} holds {kinds[0]} in {train_path} but {kinds[1]} in "
        f"{other_path} (e.g. {str(example)[:40]!r}); use the same kind of labels in both files."
    )


def is_number(value: Any) -> bool:
    """Whether ``value`` reads as a number (``float(value)`` succeeds)."""
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def scaled_by_train(train: Dataset, *others: Dataset) -> tuple[Dataset, ...]:
    """``train`` and ``others`` with features standardised by the training rows' mean and
    standard deviation (constant features are only centred)."""
    mean = train.X.mean(axis=0)
    std = train.X.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return tuple(ds.replace(X=(ds.X - mean) / std) for ds in (train, *others))


def standardized(notes: Notes, train: Dataset, *others: Dataset) -> tuple[Dataset, ...]:
    """What ``--standardize`` does (:data:`STANDARDIZE_HELP`): :func:`scaled_by_train`, said in
    a note."""
    notes.append(
        "features standardised with the training rows' mean and standard deviation (the rows "
        "shown and the files written keep their original values)."
    )
    return scaled_by_train(train, *others)


# ---------------------------------------------------------------------------------- models
def build_model(name: str | None, params: str | None, y: np.ndarray, seed: int) -> Any:
    """The estimator for ``--model`` and ``--model-params`` (JSON); the default follows ``y``."""
    parsed = json_object(params, "--model-params", '{"C": 0.5}')
    if name is None:
        return default_model(y, parsed, random_state=seed)
    return make_model(name, parsed, random_state=seed)


def json_object(text: str | None, flag: str, example: str) -> dict[str, Any]:
    """The JSON object given to ``flag`` (empty when not given); one-line errors otherwise."""
    if not text:
        return {}
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataworthError(f"{flag} is not valid JSON: {exc.msg}.") from None
    if not isinstance(parsed, dict):
        raise DataworthError(f"{flag} must be a JSON object, e.g. '{example}'.")
    return parsed


def method_params_option(f: F) -> F:
    """Add ``--method-params``: any constructor parameter of the method, as a JSON object
    (:meth:`dataworth.cli._pipeline.Run.params` reads it)."""
    return click.option(
        "--method-params",
        "method_params_json",
        default=None,
        help="JSON object of the method's parameters (see its docstring), e.g. "
        '\'{"budget": 500, "round_size": 16}\'; a dedicated flag such as --budget wins over it.',
    )(f)


# ---------------------------------------------------------------------------------- output
@contextmanager
def catch_write_errors(path: str) -> Iterator[None]:
    """Turn an ``OSError`` raised inside the block into the one-line user error
    ``cannot write PATH: REASON``."""
    try:
        yield
    except OSError as exc:
        raise DataworthError(f"cannot write {path}: {exc.strerror or exc}") from None


@contextmanager
def open_output(path: str, encoding: str | None = None) -> Iterator[TextIO]:
    """Open ``path`` for writing text (``newline=""``, for :mod:`csv`), creating its folder;
    written atomically (:func:`dataworth.fileio.atomic_output`); errors as in
    :func:`catch_write_errors`."""
    with catch_write_errors(path), atomic_output(path, newline="", encoding=encoding) as fh:
        yield cast(TextIO, fh)


def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path``, creating its folder; errors as in
    :func:`catch_write_errors`."""
    with catch_write_errors(path), atomic_output(path) as fh:
        fh.write(text)


def write_json(path: str, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented strict JSON (:func:`dataworth.jsonable.json_ready`)."""
    write_text(path, json.dumps(json_ready(payload), indent=2))


def write_values(path: str | None, result: ValuationResult) -> None:
    """:meth:`ValuationResult.to_csv` to ``path``, or to standard output when it is None."""
    result.to_csv(sys.stdout if path is None else path)


# ---------------------------------------------------------------------------------- tables
def format_cell(value: Any) -> str:
    """A table cell: floats with 4 significant digits (``nan`` for non-finite), numpy scalars
    as their Python value."""
    if isinstance(value, (float, np.floating)):
        return "nan" if not np.isfinite(value) else f"{value:.4g}"
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value)


def format_table(
    header: list[str], rows: list[list[str]], align: str | None = None, indent: str = ""
) -> str:
    """Columns padded to a common width; ``align`` has one ``l`` or ``r`` per column (default
    all right-aligned); every line starts with ``indent``.

    Examples
    --------
    >>> print(format_table(["row", "value"], [["3", "0.5"], ["12", "-1"]]))
    row  value
      3    0.5
     12     -1
    """
    align = align or "r" * len(header)
    widths = [max([len(h)] + [len(r[k]) for r in rows]) for k, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        parts = [
            c.ljust(w) if a == "l" else c.rjust(w)
            for c, w, a in zip(cells, widths, align, strict=True)
        ]
        return indent + "  ".join(parts).rstrip()

    return "\n".join([line(header), *(line(r) for r in rows)])
