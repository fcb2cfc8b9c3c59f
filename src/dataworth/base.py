"""The valuation contract: scikit-learn style estimators whose answer is ``result_``.

``__init__`` stores parameters only; ``fit(utility)`` validates, computes and returns ``self``;
the values are in ``result_`` (a :class:`~dataworth.result.ValuationResult`).
"""

from __future__ import annotations

import inspect
import time
import warnings
from numbers import Integral
from pathlib import Path
from typing import Any, ClassVar, Self

import joblib
import numpy as np

from dataworth.engine.checkpoint import Checkpoint
from dataworth.engine.reliability import reliability, reliability_notes
from dataworth.engine.runner import ROUND_SIZE, MonteCarloJob, RunOutput, run_monte_carlo
from dataworth.engine.stopping import MaxTime, MaxUpdates, RankStable, StderrBelow, Stopping
from dataworth.engine.task_checkpoint import TaskCheckpoint
from dataworth.errors import CheckpointError, DataworthError
from dataworth.estimators.plan import Plan
from dataworth.jsonable import json_ready
from dataworth.methods import RUN_CONTROL, STOPPING
from dataworth.params import Constraint, InstanceOf, Interval, Options, validate_params
from dataworth.result import ValuationResult

__all__ = ["MonteCarloValuation", "Valuation"]


class Valuation:
    """Base class of valuation methods.

    Subclasses set ``name`` and implement ``_fit``; their summary and reference live in the
    registry (:data:`dataworth.methods.METHODS`).
    """

    name: ClassVar[str] = ""
    #: The value of a row that neither helps nor hurts, or None when the values have no such
    #: point (they only rank rows). Marginal-contribution methods (leave-one-out, the Shapley
    #: and Banzhaf family, class-wise Shapley, knn-shapley, influence) give such a row 0;
    #: ``dataworth prune`` splits harmful from near-zero rows around it.
    baseline: ClassVar[float | None] = 0.0
    #: Methods that need the plain one-fit-at-a-time utility (they fit no model on subsets:
    #: lava, cgs, influence) set this; every other method, the exact ones (loo, exact-shapley,
    #: least-core) included, trains in batches by default when the model allows it. The exact
    #: methods record the largest utility difference from scikit-learn's own fits on a sample
    #: of their subsets (``metadata["batched_vs_sklearn_max_diff"]``).
    exact_fits: ClassVar[bool] = False
    result_: ValuationResult

    #: What each constructor parameter may be (:mod:`dataworth.params`), checked by ``fit``;
    #: subclasses extend this dict. These are the parameters that say how to run.
    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "n_jobs": [Interval(Integral, 1, None), Interval(Integral, None, -1), None],
        "progress": [Options([True, False]), None],
        "checkpoint": [InstanceOf((str, Path), "a path"), None],
        "resume": [Options([True, False])],
    }

    def fit(self, utility: Any) -> Self:
        """Compute the values of the utility's players; the answer is ``self.result_``."""
        validate_params(
            type(self).__name__, self.get_params(deep=False), self._parameter_constraints
        )
        self.result_ = self._fit(utility)
        return self

    def _fit(self, utility: Any) -> ValuationResult:
        raise NotImplementedError

    def _run_params(self) -> dict[str, Any]:
        """The parameters that make the run, not those that only say how to run it (workers,
        progress, checkpointing) or when to stop it (budget, stop)."""
        return {
            k: v
            for k, v in self.get_params().items()
            if k not in RUN_CONTROL + STOPPING
        }

    def _checkpoint_identity(self, utility: Any, extra: str = "") -> dict[str, str]:
        """What a checkpoint of this run must match: the utility's fingerprint parts and a hash
        of the method and its parameters (not those that only say how to run it)."""
        identity = dict(utility.fingerprint_parts())
        key: tuple[Any, ...] = (self.name, repr(sorted(self._run_params().items())))
        identity["method"] = str(joblib.hash(key + ((extra,) if extra else ())))
        return identity

    def _task_checkpoint(self, utility: Any, n_tasks: int) -> Any:
        """The :class:`~dataworth.engine.task_checkpoint.TaskCheckpoint` of an exact method's
        chunks (its ``checkpoint``/``resume`` parameters), or None."""
        path: str | Path | None = getattr(self, "checkpoint", None)
        resume = bool(getattr(self, "resume", False))
        if path is None:
            if resume:
                raise CheckpointError("resume=True needs a checkpoint path.")
            return None
        # the budget decides which subsets a sampled exact method evaluates: part of the run
        identity = self._checkpoint_identity(utility, f"budget={getattr(self, 'budget', None)!r}")
        ckpt = TaskCheckpoint(path, identity, n_tasks)
        if resume and not ckpt.exists():
            warnings.warn(
                f"no checkpoint at {path} yet; starting from the beginning.", stacklevel=4
            )
        return ckpt

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters, as scikit-learn's ``get_params`` (so that
        ``sklearn.base.clone`` copies a method); with ``deep``, also ``name__param`` for each
        parameter that has parameters of its own."""
        sig = inspect.signature(type(self).__init__)
        params = {p: getattr(self, p) for p in sig.parameters if p != "self"}
        if deep:
            for name, value in list(params.items()):
                if hasattr(value, "get_params") and not isinstance(value, type):
                    params.update({f"{name}__{k}": v for k, v in value.get_params().items()})
        return params

    def set_params(self, **params: Any) -> Self:
        """Set constructor parameters (checked by the next ``fit``), as scikit-learn's."""
        valid = self.get_params(deep=False)
        for name, value in params.items():
            if name not in valid:
                raise DataworthError(
                    f"{type(self).__name__} has no parameter {name!r}; it has: {', '.join(valid)}."
                )
            setattr(self, name, value)
        return self

    def _result(self, utility: Any, **fields: Any) -> ValuationResult:
        """Build a result with the common fields filled in."""
        params = {
            k: json_ready(v, strict=False, other=repr)
            for k, v in self.get_params().items()
            if k not in RUN_CONTROL
        }
        metadata = {"fingerprint": utility.fingerprint(), **fields.pop("metadata", {})}
        return ValuationResult(
            labels=utility.player_names,
            method=self.name,
            params=params,
            metadata=metadata,
            kind="group" if getattr(utility, "by_group", False) else "row",
            **fields,
        )

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


class MonteCarloValuation(Valuation):
    """Shared machinery of sampling methods: budget, stopping, seeds, jobs, checkpoints.

    Subclasses implement ``_job(utility)`` returning a
    :class:`~dataworth.engine.runner.MonteCarloJob` and may override ``_notes`` to record
    caveats (e.g. bias) in the metadata.

    Parameters common to all of them
    --------------------------------
    budget : int or None
        Maximum number of samples (permutations, subsets or bags).
    stop : Stopping, optional
        Extra stopping rule (e.g. ``StderrBelow(0.01) | MaxTime(60)``), combined with the budget
        by ``|``.
    random_state : int, optional
        Seed; with the same seed the values are identical for any ``n_jobs``.
    n_jobs : int, default=1
        Parallel workers (joblib; ``-1`` for all cores). Used only where they pay: a run whose
        measured work is smaller than what starting them costs stays in this process.
    round_size : int, default=64
        Tasks per round (each a chunk of samples): enough to keep this many workers busy. The
        values depend on it, never on ``n_jobs``; the stopping rules are checked, and the
        checkpoint written, once per round.
    progress : bool or None, default=None
        Show a progress bar; ``None``: when interactive (a terminal or a notebook).
    checkpoint : str or Path, optional
        Write an atomic checkpoint after every round.
    resume : bool, default=False
        Continue from ``checkpoint`` if it exists.
    """

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        **Valuation._parameter_constraints,
        "budget": [Interval(Integral, 1, None), None],
        "stop": [InstanceOf(Stopping, "a Stopping rule"), None],
        "random_state": [Interval(Integral, 0, None), None],
        "round_size": [Interval(Integral, 1, None)],
    }

    def _job(self, utility: Any) -> MonteCarloJob:
        raise NotImplementedError

    def _notes(self) -> list[str]:
        return []

    def _plan(self, utility: Any) -> Plan:
        """The job and what its samples cost; by default a sample is one unit of the budget."""
        return Plan(self._job(utility), cost_per_sample=1, unit="samples")

    def _stop(self, plan: Plan | None = None) -> Stopping:
        budget: int | None = getattr(self, "budget", None)
        stop: Stopping | None = getattr(self, "stop", None)
        if budget is None and stop is None:
            raise DataworthError("give a budget or a stopping rule, or the run never ends.")
        if stop is not None and not isinstance(stop, Stopping):
            raise DataworthError(f"stop must be a Stopping rule; got {type(stop).__name__}.")
        if budget is None:
            assert stop is not None
            return stop
        cap = MaxUpdates(budget if plan is None else plan.samples_within(budget) or 1)
        return cap if stop is None else stop | cap

    def _fit(self, utility: Any) -> ValuationResult:
        self._stop()  # refuse a run that never ends before any work
        started = time.monotonic()  # a time limit counts the planning (e.g. a pilot) too
        plan = self._plan(utility)
        job = plan.job
        if plan.unit == "evaluations":
            plan.check_budget(getattr(self, "budget", None), str(getattr(self, "estimator", "")))
        stop = self._stop(plan)
        checkpoint = None
        path: str | Path | None = getattr(self, "checkpoint", None)
        resume = bool(getattr(self, "resume", False))
        if resume and path is None:
            raise CheckpointError("resume=True needs a checkpoint path.")
        if path is not None:
            identity = self._checkpoint_identity(utility, plan.identity)
            params = self._run_params()
            readable = {"method": self.name, **json_ready(params, strict=False, other=repr)}
            checkpoint = Checkpoint(path, identity, readable)
            if resume and not checkpoint.exists():
                warnings.warn(
                    f"no checkpoint at {path} yet; starting from the beginning.", stacklevel=3
                )
        out = run_monte_carlo(
            job,
            utility,
            utility.n_players,
            stop=stop,
            random_state=getattr(self, "random_state", None),
            n_jobs=getattr(self, "n_jobs", 1),
            round_size=getattr(self, "round_size", ROUND_SIZE),
            checkpoint=checkpoint,
            resume=resume,
            progress=getattr(self, "progress", None),
            desc=self.name,
            started=started,
            initial=plan.initial,
        )
        metadata: dict[str, Any] = {
            "n_updates": out.n_updates,
            "seconds": round(out.seconds, 3),
            "n_failures": out.n_failures,
            "stopped_by": repr(stop),
            # which data, model and settings: partial runs merge only over the same data
            "fingerprint_parts": dict(utility.fingerprint_parts()),
        }
        if plan.unit == "evaluations":
            metadata["n_evaluations"] = plan.evaluations(out.n_updates)
        metadata.update(plan.metadata)
        if out.resumed_from:
            metadata["resumed_from"] = out.resumed_from
        values, stderr, counts = job.estimate(out.state)
        metadata["ended_by"] = [repr(rule) for rule in out.ended_by]
        notes = self._notes()
        if missed := _missed_targets(stop, out, getattr(self, "budget", None), plan.unit):
            notes.append(missed)
        metadata.update(self._reliability(job, out, values, stderr, plan))
        notes.extend(reliability_notes(metadata, "groups" if _by_group(utility) else "values"))
        if notes:
            metadata["notes"] = notes
        return self._result(
            utility,
            values=values,
            stderr=stderr,
            counts=counts,
            state=out.state,
            estimator=job.estimator,
            metadata=metadata,
        )

    @staticmethod
    def _reliability(
        job: MonteCarloJob, out: RunOutput, values: Any, stderr: Any, plan: Plan
    ) -> dict[str, Any]:
        """:func:`~dataworth.engine.reliability.reliability` of a finished run; the budget the
        halves stand for is counted in the unit of the method's budget."""
        halves = None
        if out.halves is not None and out.n_halved >= 4:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")  # a half may leave a player without samples
                halves = (job.estimate(out.halves[0])[0], job.estimate(out.halves[1])[0])
        used = out.n_halved
        if plan.unit == "evaluations":
            used = plan.cost_per_sample * out.n_halved + plan.fixed_cost
        entries = reliability(values, stderr, halves, used)
        if halves is not None:
            entries["split_half_samples"] = out.n_halved
        return entries


def _by_group(utility: Any) -> bool:
    return bool(getattr(utility, "by_group", False))


def _missed_targets(stop: Stopping, out: RunOutput, budget: int | None, unit: str) -> str:
    """A note when the run ended on a limit (budget, time) before a target (a standard error,
    split-half agreement) it was given was met; empty otherwise."""
    rules = stop.leaves()
    targets = [r for r in rules if isinstance(r, (StderrBelow, RankStable))]
    if not targets or out.final is None or any(r in out.ended_by for r in targets):
        return ""
    limits = []
    for rule in out.ended_by:
        if isinstance(rule, MaxUpdates):
            amount = f"{rule.n} samples"
            if unit == "evaluations":
                amount = f"{budget} utility evaluations"
            limits.append(f"its budget ({amount})")
        elif isinstance(rule, MaxTime):
            limits.append(f"its time limit ({rule.seconds:g} s)")
    missed = []
    for rule in targets:
        if isinstance(rule, StderrBelow):
            se = out.final.stderr[np.isfinite(out.final.stderr)]
            low = out.final.counts.size and out.final.counts.min() < rule.min_count
            now = (
                f"some have fewer than {rule.min_count} samples"
                if low or not se.size
                else f"the largest is {float(se.max()):.3g}"
            )
            missed.append(f"every standard error below {rule.threshold:g} ({now})")
        else:
            missed.append(
                f"split-half agreement {rule.min_correlation:g} (the halves' Spearman "
                f"correlation is {rule.last_correlation:.2f})"
            )
    ended = " and ".join(limits) or "its budget"
    advice = []
    if any(isinstance(rule, MaxTime) for rule in out.ended_by):
        advice.append("raise the time limit")
    if not advice or any(isinstance(rule, MaxUpdates) for rule in out.ended_by):
        advice.append("raise the budget or leave it out to run until the target is met")
    return (
        f"the run ended on {ended} before reaching its target: {'; '.join(missed)}; "
        f"{', or '.join(advice)}."
    )
