"""The ``dataworth`` command: value | methods | demo.

Every user mistake ends in one line on standard error and exit code 2, never a traceback.
"""

from __future__ import annotations

import csv
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import click
import numpy as np

from dataworth.api import make_utility
from dataworth.data import Dataset, is_categorical
from dataworth.engine.stopping import MaxTime, StderrBelow, Stopping
from dataworth.errors import DataworthError
from dataworth.methods import METHODS, get_method, parameters_of
from dataworth.models import MODELS, make_model
from dataworth.result import ValuationResult

__all__ = ["cli", "main"]


class _Notes(list[str]):
    """Notes collected during a command and printed once it has succeeded, so that a failing
    command prints exactly one line."""

    def flush(self) -> None:
        for message in self:
            click.echo(f"note: {message}", err=True)
        self.clear()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dataworth")
def cli() -> None:
    """Data valuation: what each training row (or data source) is worth to a model."""


# ---------------------------------------------------------------------------------------- value
def _load_pair(
    notes: _Notes,
    train_path: str,
    valid_path: str | None,
    target: str,
    group: str | None,
    valid_fraction: float,
    seed: int,
) -> tuple[Dataset, Dataset]:
    data = Dataset.from_file(train_path, target, group=group)
    if valid_path is None:
        train, valid = data.split(valid_fraction, random_state=seed)
        notes.append(
            f"valuation set: {valid.n_samples} rows ({valid_fraction:g}) split off {train_path} "
            f"with seed {seed}; {train.n_samples} rows are valued."
        )
        return train, valid
    valid = Dataset.from_file(valid_path, target, group=group)
    if valid.feature_names != data.feature_names:
        missing = sorted(set(data.feature_names) - set(valid.feature_names))
        extra = sorted(set(valid.feature_names) - set(data.feature_names))
        detail = "; ".join(
            p
            for p in (
                f"missing {', '.join(map(repr, missing))}" if missing else "",
                f"extra {', '.join(map(repr, extra))}" if extra else "",
                "same columns in a different order" if not (missing or extra) else "",
            )
            if p
        )
        raise DataworthError(f"{valid_path} must have the same columns as {train_path} ({detail}).")
    return data, valid


def _standardize(notes: _Notes, train: Dataset, valid: Dataset) -> tuple[Dataset, Dataset]:
    mean = train.X.mean(axis=0)
    std = train.X.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    notes.append("features standardised with the training rows' mean and standard deviation.")
    return train.replace(X=(train.X - mean) / std), valid.replace(X=(valid.X - mean) / std)


def _method_params(
    notes: _Notes, cls: type, given: dict[str, Any], stop: Stopping | None
) -> dict[str, Any]:
    accepted = parameters_of(cls)
    params: dict[str, Any] = {}
    for name, (value, flag) in given.items():
        if value is None:
            continue
        if name in accepted:
            params[name] = value
        else:
            notes.append(f"{flag} does not apply to {cls.name} and is ignored.")  # type: ignore[attr-defined]
    if stop is not None:
        if "stop" in accepted:
            params["stop"] = stop
        else:
            notes.append(f"--stderr-below/--time-limit do not apply to {cls.name} and are ignored.")  # type: ignore[attr-defined]
    return params


def write_values(path: str | None, result: ValuationResult) -> None:
    """Write ``index|group,value,stderr,count`` rows (to stdout when path is None)."""
    first = "group" if result.kind == "group" else "index"
    rows = (
        [str(label), f"{v:.17g}", f"{s:.17g}", str(int(c))]
        for label, v, s, c in zip(
            result.labels.tolist(), result.values, result.stderr, result.counts, strict=True
        )
    )
    if path is None:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([first, "value", "stderr", "count"])
        writer.writerows(rows)
        return
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow([first, "value", "stderr", "count"])
            writer.writerows(rows)
    except OSError as exc:
        raise DataworthError(f"cannot write {path}: {exc.strerror or exc}") from None


@cli.command()
@click.argument("train", type=str)
@click.option("--target", required=True, help="Name of the target (label) column.")
@click.option(
    "--method",
    default="tmc-shapley",
    show_default=True,
    help="Valuation method (see `dataworth methods`).",
)
@click.option("--out", "out", default=None, help="Output CSV (default: standard output).")
@click.option(
    "--valid", "valid_path", default=None, help="Valuation set: a file with the same columns."
)
@click.option(
    "--valid-fraction",
    default=0.2,
    show_default=True,
    type=float,
    help="Without --valid: fraction of TRAIN split off (with --seed) as valuation set.",
)
@click.option(
    "--model",
    "model_name",
    default=None,
    help="logistic-regression (default for labels), knn, decision-tree, random-forest, "
    "gaussian-nb, ridge, linear-regression (default for real targets), or a dotted "
    "class path such as sklearn.svm.SVC.",
)
@click.option("--model-params", default=None, help="JSON object of model parameters.")
@click.option(
    "--scoring",
    default=None,
    help="scikit-learn scorer name (default: accuracy, or r2 for regression).",
)
@click.option("--k", type=int, default=None, help="Neighbours for knn-shapley (default 5).")
@click.option(
    "--budget",
    type=int,
    default=None,
    help="Permutations (permutation methods), subsets (banzhaf, least-core) or bags (data-oob).",
)
@click.option(
    "--stderr-below", type=float, default=None, help="Stop once every standard error is below this."
)
@click.option("--time-limit", type=float, default=None, help="Stop after this many seconds.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--n-jobs", type=int, default=1, show_default=True, help="Parallel workers.")
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
    "naive Bayes), or one scikit-learn fit at a time. Default: batched for Monte Carlo methods, "
    "one at a time for exact ones (loo, exact-shapley, least-core).",
)
@click.option(
    "--device",
    default="auto",
    show_default=True,
    help="Batched logistic regression on: auto (a GPU via PyTorch when present, else numpy), "
    "numpy, torch (CPU) or cuda[:N].",
)
@click.option("--standardize", is_flag=True, help="Standardise features (training statistics).")
@click.option("--alpha", type=float, default=None, help="beta-shapley alpha (default 16).")
@click.option("--beta", type=float, default=None, help="beta-shapley beta (default 1).")
@click.option(
    "--tolerance",
    type=float,
    default=None,
    help="tmc-shapley relative truncation tolerance (default 0.01).",
)
@click.option("--checkpoint", default=None, help="Write an atomic checkpoint here every round.")
@click.option("--resume", default=None, help="Resume from this checkpoint (and keep writing it).")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar (default: when standard error is a terminal).",
)
@click.option(
    "--save-result",
    default=None,
    help="Also save the full result (npz with JSON header) for merging and reports.",
)
def value(
    train: str,
    target: str,
    method: str,
    out: str | None,
    valid_path: str | None,
    valid_fraction: float,
    model_name: str | None,
    model_params: str | None,
    scoring: str | None,
    k: int | None,
    budget: int | None,
    stderr_below: float | None,
    time_limit: float | None,
    seed: int,
    n_jobs: int,
    group: str | None,
    default_score: float,
    catch_errors: bool,
    batch: bool | None,
    device: str,
    standardize: bool,
    alpha: float | None,
    beta: float | None,
    tolerance: float | None,
    checkpoint: str | None,
    resume: str | None,
    progress: bool | None,
    save_result: str | None,
) -> None:
    """Value every row (or group) of TRAIN and write index,value,stderr,count."""
    cls = get_method(method)
    if budget is not None and budget < 1:
        raise DataworthError(f"--budget must be a positive whole number; got {budget}.")
    if k is not None and k < 1:
        raise DataworthError(f"--k must be a positive whole number; got {k}.")
    if n_jobs == 0:
        raise DataworthError("--n-jobs must be a positive number or -1 for all cores; got 0.")
    if checkpoint and resume and Path(checkpoint) != Path(resume):
        raise DataworthError("give either --checkpoint or --resume (which keeps writing there).")
    params_json: dict[str, Any] = {}
    if model_params:
        try:
            params_json = json.loads(model_params)
        except json.JSONDecodeError as exc:
            raise DataworthError(f"--model-params is not valid JSON: {exc.msg}.") from None
        if not isinstance(params_json, dict):
            raise DataworthError("--model-params must be a JSON object, e.g. '{\"C\": 0.5}'.")
    stop: Stopping | None = None
    if stderr_below is not None:
        stop = StderrBelow(stderr_below)
    if time_limit is not None:
        stop = MaxTime(time_limit) if stop is None else stop | MaxTime(time_limit)
    notes = _Notes()
    tr, va = _load_pair(notes, train, valid_path, target, group, valid_fraction, seed)
    if standardize:
        tr, va = _standardize(notes, tr, va)
    if model_name is None:
        model_name = "logistic-regression" if is_categorical(tr.y) else "linear-regression"
    model = make_model(model_name, params_json, random_state=seed)
    utility = make_utility(
        tr,
        va,
        model=model,
        scoring=scoring,
        by_group=group is not None,
        default_score=default_score,
        catch_errors=catch_errors,
        batched=(False if cls.exact_fits else None) if batch is None else batch,
        device=device,
    )
    if progress is None:
        progress = sys.stderr.isatty()
    given = {
        "budget": (budget, "--budget"),
        "k": (k, "--k"),
        "alpha": (alpha, "--alpha"),
        "beta": (beta, "--beta"),
        "tolerance": (tolerance, "--tolerance"),
        "checkpoint": (resume or checkpoint, "--checkpoint/--resume"),
        "resume": (True if resume else None, "--resume"),
    }
    params = _method_params(notes, cls, given, stop)
    accepted = parameters_of(cls)
    for name, val in (("random_state", seed), ("n_jobs", n_jobs), ("progress", progress)):
        if name in accepted:
            params[name] = val
    started = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = cls(**params).fit(utility).result_
    for w in caught:
        if issubclass(w.category, UserWarning):
            notes.append(str(w.message))
    write_values(out, result)
    if save_result:
        try:
            result.save(save_result)
        except OSError as exc:
            raise DataworthError(f"cannot write {save_result}: {exc.strerror or exc}") from None
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
    notes.extend(result.metadata.get("notes", []))
    notes.flush()


# -------------------------------------------------------------------------------------- methods
@cli.command()
def methods() -> None:
    """List every valuation method with one line and its reference."""
    width = max(len(n) for n in METHODS)
    for name in METHODS:
        cls = get_method(name)
        click.echo(f"{name:<{width}}  {cls.summary}  [{cls.reference}]")


@cli.command()
def models() -> None:
    """List the model names accepted by --model."""
    for name, factory in MODELS.items():
        click.echo(f"{name:<20} {factory.__doc__}")


# ----------------------------------------------------------------------------------------- demo
@cli.command()
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--n-jobs", type=int, default=2, show_default=True)
@click.option(
    "--out-dir",
    default="dataworth-demo",
    show_default=True,
    help="Where the demo writes its values.",
)
def demo(seed: int, n_jobs: int, out_dir: str) -> None:
    """Flip 10% of breast-cancer training labels and see which methods find them."""
    from dataworth.demo import run_demo

    run_demo(seed=seed, n_jobs=n_jobs, out_dir=Path(out_dir), echo=click.echo)


# ----------------------------------------------------------------------------------------- main
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


if __name__ == "__main__":  # pragma: no cover
    main()
