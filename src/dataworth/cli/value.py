"""``dataworth value``, ``dataworth methods`` and ``dataworth models``."""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import click

from dataworth.api import check_values, prepare
from dataworth.cli._common import (
    INPUT_FILE,
    OUTPUT_FILE,
    RESUME_FILE,
    budget_option,
    catch_write_errors,
    check_address,
    check_n_jobs,
    check_positive,
    cluster_options,
    data_options,
    k_option,
    method_params_option,
    on_backend,
    scoring_option,
    target_option,
    valid_options,
    write_values,
)
from dataworth.cli._pipeline import Run, model_steps
from dataworth.cli._resume import checkpointing
from dataworth.cli._timing import IMPORTED_AT, Stopwatch
from dataworth.engine.stopping import MaxTime, RankStable, StderrBelow, Stopping
from dataworth.errors import DataworthError
from dataworth.estimators import get_estimator
from dataworth.methods import get_method, parameters_of

__all__ = ["value"]


@click.command()
@click.argument("train", type=INPUT_FILE)
@target_option
@data_options(id_labels=True)
@click.option(
    "--method",
    default="tmc-shapley",
    show_default=True,
    help="Valuation method (see `dataworth methods`).",
)
@click.option(
    "--out", "out", type=OUTPUT_FILE, default=None, help="Output CSV (default: standard output)."
)
@method_params_option
@valid_options
@model_steps(
    "logistic-regression (default for labels), knn, decision-tree, random-forest, "
    "gaussian-nb, ridge, linear-regression (default for real targets), or a dotted "
    "estimator class path such as sklearn.svm.SVC (this imports its module, which runs that "
    "module's code: name only modules you trust)."
)
@scoring_option
@k_option
@budget_option
@click.option(
    "--stderr-below",
    type=float,
    default=None,
    help="Stop once every standard error is below this. With a stop target (this, "
    "--time-limit or --rank-stable) and no --budget the budget is unlimited; a run that ends on "
    "a limit before its target says so.",
)
@click.option(
    "--time-limit",
    type=float,
    default=None,
    help="Stop after this many seconds. A run overruns it by at most one chunk of samples (the "
    "chunks under way, one per worker; the first sample is timed and chunks are cut to take "
    "about 5% of the limit, but never less than one sample), plus the start of the workers and "
    "an estimator's pilot.",
)
@click.option(
    "--n-jobs",
    type=int,
    default=None,
    help="Parallel workers (default: 1 with loky, every worker of the cluster with ray/dask).",
)
@click.option(
    "--round-size",
    type=click.IntRange(min=1),
    default=None,
    help="Sampling methods: tasks per round (default 64, enough for 64 workers). The values "
    "depend on it, never on --n-jobs; stopping rules are checked and --checkpoint written once "
    "a round. Workers start only when the measured work pays for them.",
)
@cluster_options
@click.option("--group", default=None, help="Column of data sources: value groups, not rows.")
@click.option(
    "--default-score",
    type=float,
    default=0.0,
    show_default=True,
    help="Score of the empty set (and of failed fits with --catch-errors).",
)
@click.option(
    "--catch-errors",
    is_flag=True,
    help="Score failed fits as --default-score (counted) instead of stopping.",
)
@click.option(
    "--batch/--no-batch",
    default=None,
    help="Train many subsets at once (logistic regression, ridge, linear regression, Gaussian "
    "naive Bayes), or one scikit-learn fit at a time (--no-batch: scikit-learn's solver bit for "
    "bit). Default: batched whenever the model allows it; the exact methods (loo, exact-shapley, "
    "least-core) then record the largest difference from scikit-learn's own fits on a sample "
    "of subsets.",
)
@click.option(
    "--device",
    default="auto",
    show_default=True,
    help="Batched logistic regression on: auto (a GPU via PyTorch when present, else numpy), "
    "numpy, torch (CPU) or cuda[:N].",
)
@click.option(
    "--estimator",
    default=None,
    help="How shapley, banzhaf and beta-shapley turn sampled coalitions into values (see "
    "`dataworth methods`; default: auto for shapley (regression-msr up to 32 rows or groups, "
    "unbiased-kernel-shap above), msr for banzhaf, permutation "
    "for beta-shapley). With shapley, or another estimator than the default, --budget counts "
    "utility evaluations.",
)
@click.option(
    "--rank-stable",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=None,
    help="Stop once two independent halves of the samples rank the rows alike (Spearman "
    "correlation at least this, e.g. 0.9).",
)
@click.option("--alpha", type=float, default=None, help="beta-shapley alpha (default 16).")
@click.option("--beta", type=float, default=None, help="beta-shapley beta (default 1).")
@click.option(
    "--tolerance",
    type=float,
    default=None,
    help="tmc-shapley relative truncation tolerance (default 0.01).",
)
@click.option(
    "--checkpoint",
    type=OUTPUT_FILE,
    default=None,
    help="Write an atomic checkpoint here every round.",
)
@click.option(
    "--resume",
    type=RESUME_FILE,
    default=None,
    help="Resume from this checkpoint (and keep writing it).",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar (default: when standard error is a terminal).",
)
@click.option(
    "--save-result",
    type=OUTPUT_FILE,
    default=None,
    help="Also save the full result (npz with JSON header) for merging and reports.",
)
@click.option(
    "--verbose",
    is_flag=True,
    help="Also say where the time went: imports (from the start of the command), loading the "
    "data, set-up (model and utility), valuation and writing.",
)
def value(
    train: str,
    target: str,
    method: str,
    out: str | None,
    method_params_json: str | None,
    valid_path: str | None,
    valid_fraction: float,
    scoring: str | None,
    k: int | None,
    budget: int | None,
    stderr_below: float | None,
    time_limit: float | None,
    n_jobs: int | None,
    round_size: int | None,
    backend: str,
    address: str | None,
    group: str | None,
    default_score: float,
    catch_errors: bool,
    batch: bool | None,
    device: str,
    estimator: str | None,
    rank_stable: float | None,
    alpha: float | None,
    beta: float | None,
    tolerance: float | None,
    checkpoint: str | None,
    resume: str | None,
    progress: bool | None,
    save_result: str | None,
    verbose: bool,
    run: Run,
) -> None:
    """Value every row (or group) of TRAIN and write index,value,stderr,count."""
    watch = Stopwatch(IMPORTED_AT)
    watch.lap("imports")
    cls = get_method(method)
    check_positive(budget, "--budget")
    check_positive(k, "--k")
    check_n_jobs(n_jobs, "--n-jobs")
    check_address(backend, address)
    if checkpoint and resume and Path(checkpoint) != Path(resume):
        raise DataworthError("give either --checkpoint or --resume (which keeps writing there).")
    stop: Stopping | None = None
    if stderr_below is not None:
        stop = StderrBelow(stderr_below)
    if time_limit is not None:
        stop = MaxTime(time_limit) if stop is None else stop | MaxTime(time_limit)
    if rank_stable is not None:
        stop = RankStable(rank_stable) if stop is None else stop | RankStable(rank_stable)
    if estimator is not None and "estimator" in parameters_of(cls):
        get_estimator(estimator)  # an unknown name: refused before any work
    notes = run.notes
    data = run.load_pair(train, valid_path, target, group, valid_fraction)
    watch.lap("load")
    model = run.model(data.train.y)
    accepted = parameters_of(cls)
    on_cluster = backend != "loky" and "n_jobs" in accepted
    if backend != "loky" and not on_cluster:
        notes.append(f"--backend {backend} does not apply to {method} (it runs in this process).")
    run.use_methods([method])
    run.method_json = method_params_json
    run.flags = {
        "budget": (budget, "--budget"),
        "k": (k, "--k"),
        "estimator": (estimator, "--estimator"),
        "alpha": (alpha, "--alpha"),
        "beta": (beta, "--beta"),
        "tolerance": (tolerance, "--tolerance"),
        "round_size": (round_size, "--round-size"),
    }
    run.stop, run.checkpoint, run.resume = stop, checkpoint, resume
    run.n_jobs = (-1 if on_cluster else 1) if n_jobs is None else n_jobs
    run.progress = sys.stderr.isatty() if progress is None else progress
    params = dict(run.params()[method])
    if "checkpoint" in accepted:  # what an interruption says about resuming, also without one
        checkpointing(resume or checkpoint, resumed=resume is not None)
    if stop is not None and budget is None and "stop" in accepted and "budget" in accepted:
        params["budget"] = None  # a stop target, not the method's default budget, ends the run
    valuation, utility = prepare(
        method,
        data.train,
        data.valid,
        model=model,
        scoring=scoring,
        by_group=group is not None,
        default_score=default_score,
        catch_errors=catch_errors,
        batched=batch,
        device=device,
        random_state=run.seed,
        **params,
    )
    watch.lap("set-up")
    started = time.monotonic()
    with (
        on_backend(backend if on_cluster else "loky", address if on_cluster else None, run.n_jobs),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        result = check_values(valuation.fit(utility).result_)
    notes.add_warnings(caught)
    watch.lap("valuation")
    write_values(out, result)
    if save_result:
        with catch_write_errors(save_result):
            result.save(save_result)
    watch.lap("writing")
    what = f"{len(result)} {'groups' if result.kind == 'group' else 'rows'}"
    extra = ""
    if "n_updates" in result.metadata:
        extra = f", {result.metadata['n_updates']} samples"
    failed = result.metadata.get("n_failures", 0)
    if failed:
        extra += f", {failed} failed fit(s) scored {default_score:g}"
    click.echo(
        f"valued {what} with {method} in {time.monotonic() - started:.1f} s{extra}"
        + (f" -> {out}" if out else ""),
        err=True,
    )
    resumed_from = result.metadata.get("resumed_from")
    if resumed_from:
        total = result.metadata.get("n_updates", resumed_from)
        notes.append(
            f"resumed from {resume}: {resumed_from} of the {total} samples came from the "
            f"checkpoint, {total - resumed_from} were drawn now."
        )
    notes.extend(result.metadata.get("notes", []))
    notes.flush()
    if verbose:
        click.echo(watch.summary(), err=True)
