"""The steps the valuing commands share, written once (issue 17, item 2).

Every command that values data reads it, standardises it, builds the model, chooses the method
and its parameters and values; each used to do all of this itself. Two decorators now add the
options of these steps and hand the command a :class:`Run` (the ``run`` argument):

* :func:`model_steps`: ``--model``/``--model-params``, ``--standardize`` and ``--seed``;
* :func:`valuation_steps`: ``--method`` (or ``--methods``), ``--method-params``, ``--budget``,
  ``--k``, ``--n-jobs`` with the cluster options, ``--quiet`` and ``--checkpoint``/``--resume``.

``run`` then loads the data (:meth:`Run.load_pair`, :meth:`Run.load_train_test`; standardised
when asked, the data as read kept beside), builds the model (:meth:`Run.model`), works out the
parameters of each method (:meth:`Run.params`: the dedicated flags over ``--method-params``, a
note for every flag a method does not take) and values (:meth:`Run.value`, through
:func:`dataworth.api.value_many`, warnings and the methods' own notes kept as notes). What is
left in a command is its own flags, one application call and the formatting of its answer.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from dataworth.cli._common import (
    OUTPUT_FILE,
    RESUME_FILE,
    Notes,
    budget_option,
    build_model,
    check_positive,
    check_same_target_kind,
    json_object,
    k_option,
    load_pair,
    load_train_test,
    method_params_option,
    model_options,
    n_jobs_option,
    progress_setting,
    quiet_option,
    runs_on_cluster,
    seed_option,
    standardize_option,
    standardized,
)
from dataworth.data import Dataset
from dataworth.engine.stopping import Stopping
from dataworth.errors import DataworthError
from dataworth.methods import RUN_CONTROL, get_method, parameters_of
from dataworth.result import ValuationResult

__all__ = ["Data", "Run", "method_checkpoint", "model_steps", "valuation_steps"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Data:
    """A command's data: as the model sees it (standardised with ``--standardize``) and as read
    (``raw_*``: what the command shows and writes)."""

    train: Dataset
    raw_train: Dataset
    valid: Dataset | None = None
    raw_valid: Dataset | None = None
    test: Dataset | None = None
    raw_test: Dataset | None = None


def method_checkpoint(path: str, method: str) -> str:
    """Each method's checkpoint beside ``path`` when a command values with several methods:
    ``run.ckpt`` -> ``run.tmc-shapley.ckpt``.

    >>> method_checkpoint("out/run.ckpt", "tmc-shapley")
    'out/run.tmc-shapley.ckpt'
    """
    p = Path(path)
    return str(p.with_name(f"{p.stem}.{method}{p.suffix}"))


class Run:
    """What the shared steps of one command know, and do (see the module notes)."""

    def __init__(self) -> None:
        self.notes = Notes()
        self.seed = 0
        self.standardize = False
        self.model_name: str | None = None
        self.model_json: str | None = None
        self.methods: list[str] = []
        self.method_json: str | None = None
        #: parameter name -> (value, flag): the dedicated flags for the methods
        self.flags: dict[str, tuple[Any, str]] = {}
        self.stop: Stopping | None = None
        self.n_jobs: int | None = 1
        #: the method's progress bar; None: as --quiet and the terminal say
        self.progress: bool | None = None
        self.checkpoint: str | None = None
        self.resume: str | None = None
        #: parameters a method gets when neither a flag nor --method-params sets them
        self.defaults: Mapping[str, Mapping[str, Any]] = {}
        self._params: dict[str, dict[str, Any]] | None = None

    # ------------------------------------------------------------------ data and model
    def scale(self, train: Dataset, *others: Dataset) -> tuple[Dataset, ...]:
        """``train`` and ``others`` standardised by ``train``'s statistics with
        ``--standardize`` (said in a note), else as given."""
        if not self.standardize:
            return (train, *others)
        return standardized(self.notes, train, *others)

    def load_pair(
        self,
        train_path: str,
        valid_path: str | None,
        target: str,
        group: str | None,
        valid_fraction: float,
    ) -> Data:
        """The rows to value and the valuation set (:func:`~dataworth.cli._common.load_pair`),
        then :meth:`scale`."""
        raw_train, raw_valid = load_pair(
            self.notes, train_path, valid_path, target, group, valid_fraction, self.seed
        )
        train, valid = self.scale(raw_train, raw_valid)
        return Data(train, raw_train, valid, raw_valid)

    def load_train_test(
        self, train_path: str, test_path: str, target: str, group: str | None = None
    ) -> Data:
        """The training file and a test file with the same feature columns and the same kind
        of labels, then :meth:`scale`."""
        raw_train, raw_test = load_train_test(train_path, test_path, target, group)
        check_same_target_kind(raw_train, raw_test, train_path, test_path)
        train, test = self.scale(raw_train, raw_test)
        return Data(train, raw_train, test=test, raw_test=raw_test)

    def model(self, y: Any) -> Any:
        """The estimator of ``--model`` and ``--model-params`` (the default follows ``y``)."""
        return build_model(self.model_name, self.model_json, y, self.seed)

    # ------------------------------------------------------------------ methods
    @property
    def method(self) -> str:
        """The one method of a command that values with one."""
        if len(self.methods) != 1:
            raise DataworthError("this command values with one method.")  # pragma: no cover
        return self.methods[0]

    def use_methods(self, names: Sequence[str]) -> None:
        """Value with ``names`` (a command that chooses its methods once it has read the
        data); unknown names are refused with the list of methods."""
        for name in names:
            get_method(name)
        self.methods = list(names)
        self._params = None

    def params(self) -> dict[str, dict[str, Any]]:
        """Each method's parameters: its defaults, then ``--method-params``, then the dedicated
        flags it takes, ``n_jobs``, ``progress`` and the checkpoint; worked out once.

        ``--method-params`` is a JSON object of parameters. With one method a name the method
        does not have is an error; with several (``--methods``), each parameter goes to the
        methods that have it (a name none has is an error), and a key naming one of the methods
        holds that method's own object. A flag a method does not take is a note.
        """
        if self._params is None:
            self._params = self._work_out_params()
        return self._params

    def _work_out_params(self) -> dict[str, dict[str, Any]]:
        from dataworth.cli._resume import checkpointing

        methods = self.methods
        many = len(methods) > 1
        accepted = {m: parameters_of(get_method(m)) for m in methods}
        given = json_object(self.method_json, "--method-params", '{"budget": 500}')
        own: dict[str, Any] = {}  # with several methods: a key naming one holds its own object
        if many:
            own = {k: given.pop(k) for k in list(given) if k in methods}
        for m in methods:
            mine = own.get(m, {}) if many else given
            if not isinstance(mine, dict):
                raise DataworthError(
                    f"--method-params: {m!r} names a method, so its value must be a JSON object "
                    f"of its parameters; got {mine!r}."
                )
            unknown = sorted(set(mine) - accepted[m])
            if unknown:
                raise DataworthError(
                    f"--method-params: {m} has no parameter {', '.join(map(repr, unknown))}; "
                    f"it has: {', '.join(sorted(accepted[m]))}."
                )
        stray = sorted(k for k in given if not any(k in accepted[m] for m in methods))
        if many and stray:
            raise DataworthError(
                f"--method-params: none of the methods {', '.join(methods)} has the parameter "
                f"{', '.join(map(repr, stray))}."
            )
        saving = self.resume or self.checkpoint
        flags = dict(self.flags)
        if saving:
            flags["checkpoint"] = (saving, "--checkpoint/--resume")
            flags["resume"] = (True if self.resume else None, "--resume")
        out: dict[str, dict[str, Any]] = {}
        used: set[str] = set()
        for m in methods:
            params = dict(self.defaults.get(m, {}))
            params.update({k: v for k, v in given.items() if k in accepted[m]})
            params.update(own.get(m, {}))
            for name, (value, flag) in flags.items():
                if value is None:
                    continue
                if name in accepted[m]:
                    saved = name == "checkpoint" and many
                    params[name] = method_checkpoint(value, m) if saved else value
                    used.add(flag)
                elif not many and name != "resume":
                    self.notes.append(f"{flag} does not apply to {m} and is ignored.")
            if self.stop is not None:
                if "stop" in accepted[m]:
                    params["stop"] = self.stop
                else:
                    self.notes.append(
                        f"--stderr-below/--time-limit/--rank-stable do not apply to {m}."
                    )
            if "n_jobs" in accepted[m] and self.n_jobs is not None:
                params["n_jobs"] = self.n_jobs
            if "progress" in accepted[m]:
                params["progress"] = progress_setting() if self.progress is None else self.progress
            out[m] = params
        if many:
            for name, (value, flag) in flags.items():
                if value is not None and flag not in used and name not in ("checkpoint", "resume"):
                    self.notes.append(
                        f"{flag} applies to none of the methods {', '.join(methods)}; ignored."
                    )
        if saving:
            kept = [m for m in methods if "checkpoint" in out[m]]
            if kept:
                checkpointing(saving, resumed=self.resume is not None)
                if many:
                    where = ", ".join(method_checkpoint(saving, m) for m in kept)
                    self.notes.append(f"checkpoints of the valuations: {where}.")
            elif many:
                self.notes.append(f"none of the methods {', '.join(methods)} checkpoints; ignored.")
        return out

    def described(self, method: str | None = None) -> str:
        """The parameters of ``method`` (default the one method) that say what it computes, as
        ``name=value`` pairs (the run control -- workers, progress, checkpoint -- left out)."""
        params = self.params()[method or self.method]
        return ", ".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in RUN_CONTROL)

    # ------------------------------------------------------------------ valuation
    def value(
        self,
        train: Dataset,
        valid: Dataset,
        model: Any = None,
        *,
        params: Mapping[str, Mapping[str, Any]] | None = None,
        seed: int | None = None,
        ignore: tuple[type[Warning], ...] = (),
        warning_prefix: str = "",
        own_notes: bool = True,
        **utility: Any,
    ) -> dict[str, ValuationResult]:
        """:func:`dataworth.api.value_many` of the methods with :meth:`params` (or ``params``)
        and ``seed`` (default ``--seed``) as ``random_state``; the user warnings raised (but
        those of the ``ignore`` classes, and prefixed with ``warning_prefix``) and, with
        ``own_notes``, each result's own notes become notes (prefixed with the method's name
        when there are several)."""
        from dataworth.api import value_many

        chosen = self.params() if params is None else params
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for category in ignore:
                warnings.simplefilter("ignore", category)
            results = value_many(
                self.methods,
                train,
                valid,
                params=chosen,
                model=model,
                random_state=self.seed if seed is None else seed,
                **utility,
            )
        self.notes.add_warnings(caught, prefix=warning_prefix)
        for name, result in results.items() if own_notes else ():
            lead = f"{name}: " if len(results) > 1 else ""
            self.notes.extend(f"{lead}{note}" for note in result.metadata.get("notes", []))
        return results

    def value_one(self, train: Dataset, valid: Dataset, model: Any = None, **kw: Any) -> Any:
        """:meth:`value` of the one method: its result."""
        return self.value(train, valid, model, **kw)[self.method]


def _run_of(kwargs: dict[str, Any]) -> Run:
    run = kwargs.pop("run", None)
    return run if isinstance(run, Run) else Run()


def model_steps(model_help: str, *, standardize_default: bool = False) -> Callable[[F], F]:
    """Add ``--model``/``--model-params`` (help ``model_help``), ``--standardize`` (on by
    default with ``standardize_default``) and ``--seed``; the command gets ``run``
    (:class:`Run`) with them."""

    def decorator(f: F) -> F:
        @functools.wraps(f)
        def command(
            *args: Any,
            model_name: str | None,
            model_params: str | None,
            standardize: bool,
            seed: int,
            **kwargs: Any,
        ) -> Any:
            run = _run_of(kwargs)
            run.model_name, run.model_json = model_name, model_params
            run.standardize, run.seed = standardize, seed
            return f(*args, run=run, **kwargs)

        wrapped = cast(F, command)
        for option in (seed_option, standardize_option(default=standardize_default)):
            wrapped = option(wrapped)
        return model_options(model_help)(wrapped)

    return decorator


def valuation_steps(
    *,
    method: str | None = "knn-shapley",
    many: bool = False,
    method_help: str = "Valuation method (see `dataworth methods`).",
    budget: tuple[str, str] = ("--budget", "budget"),
    budget_help: str | None = None,
    k: bool = True,
) -> Callable[[F], F]:
    """Add the options of the valuation: ``--method`` (default ``method``; ``--methods``, a
    comma-separated list, with ``many``), ``--method-params``, the budget (``budget``: its flag
    and parameter name, e.g. ``("--method-budget", "method_budget")``), ``--k`` (with ``k``),
    ``--n-jobs`` and the cluster options, ``--quiet`` and ``--checkpoint``/``--resume``. The
    command gets ``run`` (:class:`Run`) with them; an unknown method, a budget or ``--k`` below
    1, ``--n-jobs 0`` and two different checkpoint paths are refused before anything is read.
    """
    budget_flag, budget_name = budget

    def decorator(f: F) -> F:
        @functools.wraps(f)
        def command(*args: Any, **kwargs: Any) -> Any:
            run = _run_of(kwargs)
            chosen = kwargs.pop("methods" if many else "method")
            run.method_json = kwargs.pop("method_params_json")
            value_budget = kwargs.pop(budget_name)
            value_k = kwargs.pop("k") if k else None
            run.n_jobs = kwargs.pop("n_jobs")
            run.checkpoint, run.resume = kwargs.pop("checkpoint"), kwargs.pop("resume")
            check_positive(value_budget, budget_flag)
            check_positive(value_k, "--k")
            if run.checkpoint and run.resume and Path(run.checkpoint) != Path(run.resume):
                raise DataworthError(
                    "give either --checkpoint or --resume (which keeps writing there)."
                )
            run.flags = {"budget": (value_budget, budget_flag)}
            if k:
                run.flags["k"] = (value_k, "--k")
            if many:
                names = [] if chosen is None else [m.strip() for m in chosen.split(",")]
                names = [m for m in names if m]
                if chosen is not None and not names:
                    raise DataworthError("--methods is empty; name at least one method.")
                run.use_methods(names)
            elif chosen is not None:
                run.use_methods([chosen])
            return f(*args, run=run, **kwargs)

        wrapped: Any = command
        wrapped = click.option(
            "--checkpoint",
            type=OUTPUT_FILE,
            default=None,
            help="Write an atomic checkpoint of the valuation here as it goes"
            + (" (each method's beside it: PATH's stem.METHOD.suffix)." if many else "."),
        )(wrapped)
        wrapped = click.option(
            "--resume",
            type=RESUME_FILE,
            default=None,
            help="Resume the valuation from this checkpoint (and keep writing it).",
        )(wrapped)
        wrapped = quiet_option(runs_on_cluster(n_jobs_option(wrapped)))
        if k:
            wrapped = k_option(wrapped)
        if budget_help is None and budget_flag == "--budget":
            wrapped = budget_option(wrapped)
        else:
            wrapped = click.option(
                budget_flag,
                budget_name,
                type=click.IntRange(max=2**62),
                default=None,
                help=budget_help,
            )(wrapped)
        wrapped = method_params_option(wrapped)
        if many:
            wrapped = click.option("--methods", default=None, help=method_help)(wrapped)
        else:
            wrapped = click.option(
                "--method", default=method, show_default=method is not None, help=method_help
            )(wrapped)
        return cast(F, wrapped)

    return decorator
