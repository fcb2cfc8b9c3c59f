"""``dataworth prune``: redundant versus harmful rows, and a smaller training set to keep.

Every row index printed or written is a 0-based data row of TRAIN (header excluded), also when
a valuation set was split off it.
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
from numpy.typing import NDArray

from dataworth.apps.craig import SIMILARITIES, craig
from dataworth.apps.prune import (
    RowClasses,
    TransferPruneResult,
    classify_rows,
    prune_by_curve,
)
from dataworth.apps.prune import prune as prune_rows
from dataworth.apps.pruning_scores import METRICS, keep_order, pruning_scores
from dataworth.cli._common import (
    INPUT_FILE,
    OUTPUT_FILE,
    Notes,
    data_options,
    load_file,
    open_output,
    read_rows_as_text,
    target_option,
    valid_options,
    write_text,
)
from dataworth.cli._pipeline import Run, model_steps, valuation_steps
from dataworth.data import Dataset
from dataworth.errors import DataworthError
from dataworth.jsonable import json_ready
from dataworth.methods import get_method
from dataworth.result import ValuationResult

__all__ = ["prune"]

#: Row indices shown per category on the terminal; --json has them all.
_SHOW = 12


def _parse_keep(text: str) -> float | None:
    """A fraction in (0, 1], or None for ``auto``."""
    if text.strip().lower() == "auto":
        return None
    try:
        keep = float(text)
    except ValueError:
        keep = float("nan")
    if not 0.0 < keep <= 1.0:
        raise DataworthError(f"--keep must be a fraction in (0, 1] or 'auto'; got {text!r}.")
    return keep


def _parse_baseline(text: str) -> float | str | None:
    """``auto``, ``none`` (None) or a finite number."""
    word = text.strip().lower()
    if word in ("auto", "none"):
        return None if word == "none" else "auto"
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if not np.isfinite(number):
        raise DataworthError(f"--baseline must be 'auto', 'none' or a number; got {text!r}.")
    return number


def _read_values(path: str, train: Dataset) -> ValuationResult:
    """The values of a values file (:meth:`ValuationResult.read`), matched to TRAIN's rows by
    index: rows without a value are NaN, indices that are no row of TRAIN are ignored."""
    read = ValuationResult.read(path)
    if read.kind != "row":
        raise DataworthError(f"{path} holds values per group; prune needs values per row (index).")
    pos = {int(x): i for i, x in enumerate(read.labels.tolist())}
    hits = np.array([pos.get(int(x), -1) for x in train.row_labels.tolist()], dtype=np.intp)
    found = hits >= 0
    if not found.any():
        raise DataworthError(f"none of the indices in {path} are data rows of the training file.")
    out = np.full(train.n_samples, np.nan)
    out[found] = read.values[hits[found]]
    return ValuationResult(values=out, labels=train.row_labels, method=f"file:{Path(path).name}")


def _show(labels: NDArray[Any], rows: NDArray[np.intp]) -> str:
    shown = ", ".join(str(x) for x in labels[rows[:_SHOW]].tolist())
    more = rows.size - _SHOW
    return shown + (f", ... (+{more})" if more > 0 else "")


def _write_rows(src: str, positions: NDArray[np.intp], out: str) -> None:
    """Write the data rows ``positions`` of the file ``src`` (CSV text kept as it was)."""
    header, body = read_rows_as_text(src)
    _write_csv(out, header, [body[i] for i in positions.tolist()])


def _write_csv(out: str, header: list[str], body: list[list[str]]) -> None:
    with open_output(out) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(body)


def _summary(
    classes: RowClasses,
    labels: NDArray[Any],
    kept: NDArray[np.intp],
    strategy: str,
    out: str | None,
) -> str:
    n = classes.values.size
    lines = [classes.summary()]
    if classes.harmful.size:
        lines.append(f"harmful rows (most harmful first): {_show(labels, classes.harmful)}")
    dups = classes.duplicates
    if dups.size:
        pairs = [f"{labels[i]}->{labels[classes.duplicate_of[i]]}" for i in dups[:_SHOW].tolist()]
        more = f", ... (+{dups.size - _SHOW})" if dups.size > _SHOW else ""
        lines.append(f"near-duplicate rows (row->its representative): {', '.join(pairs)}{more}")
    if classes.near_zero.size:
        lines.append(f"near-zero rows: {_show(labels, classes.near_zero)}")
    removed = np.setdiff1d(np.arange(n), kept)
    cats = classes.category[removed]
    plain = "useful" if classes.baseline is not None else "other"  # no baseline: ranked only
    parts = [
        f"{int(np.count_nonzero(cats == c))} {plain if c == 'useful' else c}"
        for c in ("harmful", "duplicate", "near-zero", "unvalued", "useful")
        if np.count_nonzero(cats == c)
    ]
    lines.append(
        f"kept {kept.size} of {n} rows ({100 * kept.size / n:.1f}%) with strategy {strategy}"
        + (f" -> {out}" if out else "")
    )
    lines.append("removed: " + (", ".join(parts) if parts else "nothing"))
    return "\n".join(lines)


def _prune_by_difficulty(
    run: Run,
    train: str,
    target: str,
    values_path: str | None,
    keep_fraction: float | None,
    strategy: str,
    keep_hard: bool,
    out: str | None,
    weights_out: str | None,
    json_path: str | None,
) -> None:
    """``--strategy el2n|grand|forgetting|prototype``: score every row, keep per class."""
    if keep_fraction is None:
        raise DataworthError(f"--keep auto needs a valuation; give a fraction with {strategy}.")
    if values_path is not None:
        raise DataworthError(f"--strategy {strategy} scores the rows itself; drop --values.")
    given = [(run.method_json, "--method-params"), (run.checkpoint or run.resume, "--checkpoint")]
    ignored = [flag for value, flag in [*given, *run.flags.values()] if value is not None]
    if ignored:
        run.notes.append(
            f"{', '.join(ignored)} set(s) the valuation, which --strategy {strategy} does not "
            "run (it scores difficulty): ignored."
        )
    (tr,) = run.scale(load_file(train, target))
    mode = "hard" if keep_hard else "easy"
    started = time.monotonic()
    scores = pruning_scores(strategy, tr.X, tr.y, random_state=run.seed, n_jobs=run.n_jobs)
    kept = np.sort(keep_order(scores, keep_fraction, mode, y=tr.y, random_state=run.seed))
    labels, n = tr.row_labels, tr.n_samples
    click.echo(f"scored {n} rows with {strategy} in {time.monotonic() - started:.1f} s")
    click.echo(
        f"kept {kept.size} of {n} rows ({100 * kept.size / n:.1f}%) with strategy {strategy}, "
        f"the {'hardest' if keep_hard else 'easiest'} per class" + (f" -> {out}" if out else "")
    )
    if out:
        _write_rows(train, np.asarray(labels[kept], dtype=np.intp), out)
    if weights_out:
        run.notes.append(f"strategy {strategy} keeps rows unweighted: every weight is 1.")
        _write_csv(weights_out, ["index", "weight"], [[str(i), "1"] for i in labels[kept].tolist()])
    if json_path:
        report = {
            "train": train,
            "target": target,
            "strategy": strategy,
            "keep": mode,
            "keep_fraction": keep_fraction,
            "n_rows": n,
            "n_kept": int(kept.size),
            "kept": labels[kept].tolist(),
            "scores": scores.tolist(),
        }
        write_text(json_path, json.dumps(json_ready(report), indent=2) + "\n")
    sys.stdout.flush()
    run.notes.flush()


def _baseline(
    notes: Notes, given: float | str | None, method: str, values_path: str | None
) -> float | None:
    """The baseline to split around: ``--baseline``, else the method's declared one."""
    if given != "auto":
        return None if given is None else float(given)
    if values_path is not None:
        notes.append(
            f"values read from {values_path}: harmful and near-zero are taken around 0, the "
            "baseline of Shapley-type values; pass --baseline none for values that only rank rows "
            "(data-oob, lava, cgs, least-core)."
        )
        return 0.0
    return get_method(method).baseline


@click.command("prune")
@click.argument("train", type=INPUT_FILE)
@target_option
@data_options()
@valid_options
@model_steps("Proxy model for valuation and the removal curve (default logistic-regression).")
@valuation_steps(method="knn-shapley")
@click.option(
    "--values",
    "values_path",
    type=INPUT_FILE,
    default=None,
    help="Use these values (index,value CSV from `dataworth value`) instead of valuing; every "
    "row of TRAIN is then a candidate and no valuation set is needed.",
)
@click.option(
    "--keep",
    default="0.5",
    show_default=True,
    help="Fraction of rows to keep, or 'auto': one minus the removal index estimated from the "
    "proxy model's held-out removal curve (the transfer workflow).",
)
@click.option(
    "--strategy",
    type=click.Choice(["value", "craig", "random", "highest", *METRICS]),
    default="value",
    show_default=True,
    help="value: drop harmful, then redundant rows, then keep rows spread over the value ranks "
    "per class; craig: weighted coreset (facility location); random: per class; highest: the "
    "highest-valued rows. Difficulty scores, no valuation (Sorscher et al. 2022; see "
    "docs/pruning_metrics.md): el2n (error norm early in training), grand (gradient norm), "
    "forgetting (times a learned row is forgotten), prototype (distance to the nearest k-means "
    "centre); they keep the hardest rows per class, or the easiest with --keep-easy.",
)
@click.option(
    "--keep-hard/--keep-easy",
    "keep_hard",
    default=True,
    show_default=True,
    help="Difficulty strategies: keep the hardest rows (best with plenty of data) or the "
    "easiest (best when little is kept, or with noisy labels).",
)
@click.option(
    "--similarity",
    type=click.Choice(list(SIMILARITIES)),
    default="features",
    show_default=True,
    help="craig: distances between features or per-sample logistic-regression gradients.",
)
@click.option(
    "--baseline",
    "baseline_text",
    default="auto",
    show_default=True,
    help="The value of a row that neither helps nor hurts: harmful rows lie below it, near-zero "
    "rows around it. auto: the method's own (0 for Shapley-type methods, knn-shapley, loo, "
    "banzhaf, influence; none for data-oob, lava, cgs, least-core, whose values only rank rows; "
    "0 with --values); 'none': no harmful/near-zero split.",
)
@click.option(
    "--zero-tol", type=float, default=None, help="|value - baseline| <= this is near zero."
)
@click.option(
    "--duplicate-tol",
    type=float,
    default=None,
    help="Distance at or below which same-label rows are near-duplicates (0: exact copies).",
)
@click.option(
    "--out", "out", type=OUTPUT_FILE, default=None, help="Write the kept rows of TRAIN to this CSV."
)
@click.option(
    "--weights-out", default=None, help="Write index,weight of the kept rows (CRAIG weights)."
)
@click.option(
    "--json", "json_path", type=OUTPUT_FILE, default=None, help="Write the full report as JSON."
)
@click.option(
    "--max-remove",
    type=float,
    default=0.5,
    show_default=True,
    help="--keep auto: largest removal fraction tried.",
)
@click.option(
    "--step", type=float, default=0.05, show_default=True, help="--keep auto: fraction step."
)
def prune(
    train: str,
    target: str,
    valid_path: str | None,
    valid_fraction: float,
    values_path: str | None,
    keep: str,
    strategy: str,
    similarity: str,
    baseline_text: str,
    zero_tol: float | None,
    duplicate_tol: float | None,
    out: str | None,
    weights_out: str | None,
    json_path: str | None,
    max_remove: float,
    step: float,
    keep_hard: bool,
    run: Run,
) -> None:
    """Report redundant (near-zero, near-duplicate) versus harmful (negative) rows of TRAIN and
    keep a fraction of them."""
    keep_fraction = _parse_keep(keep)
    if strategy in METRICS:
        _prune_by_difficulty(
            run, train, target, values_path, keep_fraction, strategy, keep_hard, out,
            weights_out, json_path,
        )  # fmt: skip
        return
    if not keep_hard:
        run.notes.append("--keep-easy applies to the difficulty strategies only; ignored.")
    if values_path is not None and keep_fraction is None:
        raise DataworthError("--keep auto values the rows itself; drop --values or give a number.")
    notes, seed, method = run.notes, run.seed, run.method
    baseline = _baseline(notes, _parse_baseline(baseline_text), method, values_path)
    who = method if values_path is None else f"the values in {values_path}"
    if baseline is None and strategy == "value":
        raise DataworthError(
            f"--strategy value drops harmful, then near-zero rows, but {who} has no baseline "
            "(no value means 'neither helps nor hurts'; its values only rank rows); use "
            "--strategy highest (keeps the highest-ranked rows), random or craig, a method with "
            "a baseline such as knn-shapley, or --baseline NUMBER."
        )
    if baseline is None and zero_tol is not None:
        notes.append(f"--zero-tol ignored: {who} has no baseline, so no row is near zero.")
        zero_tol = None
    started = time.monotonic()
    curve: TransferPruneResult | None = None
    if values_path is not None:
        raw = load_file(train, target)
        if valid_path is not None:
            notes.append("--valid is not used with --values.")
        (tr,) = run.scale(raw)
        model = run.model(tr.y)
        result = _read_values(values_path, tr)
        missing = int(np.isnan(result.values).sum())
        if missing:
            notes.append(f"{missing} row(s) of {train} have no value in {values_path}: unvalued.")
        what = f"read values of {tr.n_samples} rows from {values_path}"
    else:
        data = run.load_pair(train, valid_path, target, None, valid_fraction)
        tr, va = data.train, data.valid
        assert va is not None
        model = run.model(tr.y)
        if keep_fraction is None:  # the transfer workflow: half the valuation set scores a curve
            valuing, held_out = va.split(0.5, random_state=seed)
            result = run.value_one(tr, valuing, model)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                curve = prune_by_curve(
                    result,
                    tr,
                    held_out,
                    model,
                    max_remove=max_remove,
                    step=step,
                    zero_tol=zero_tol,
                    duplicate_tol=duplicate_tol,
                    baseline=baseline,
                )
            notes.add_warnings(caught)
            keep_fraction = 1.0 - curve.removal_fraction
            notes.append(
                f"--keep auto: the valuation set was halved (seed {seed}): "
                f"{valuing.n_samples} rows value the training rows, "
                f"{held_out.n_samples} score the removal curve."
            )
        else:
            result = run.value_one(tr, va, model)
        what = f"valued {tr.n_samples} rows with {method}"
    assert keep_fraction is not None
    classes = classify_rows(
        result,
        tr.X,
        y=tr.y,
        zero_tol=zero_tol,
        duplicate_tol=duplicate_tol,
        baseline=baseline,
    )
    weights: NDArray[np.float64] | None = None
    if strategy == "craig":
        coreset = craig(
            tr.X,
            tr.y,
            keep_fraction=keep_fraction,
            similarity=similarity,
            model=model,
            random_state=seed,
            n_jobs=run.n_jobs,
        )
        kept, weights = coreset.indices, coreset.weights
    else:
        if similarity != "features":
            notes.append("--similarity applies to --strategy craig only; ignored.")
        kept = prune_rows(
            result, keep_fraction, strategy=strategy, y=tr.y, classes=classes, random_state=seed
        )
    labels = tr.row_labels
    click.echo(f"{what} in {time.monotonic() - started:.1f} s")
    if curve is not None:
        click.echo(curve.curve_table())
        click.echo(
            f"removal index: {curve.removal_fraction:.0%} (the largest removal at the best "
            "held-out proxy score)"
        )
    click.echo(_summary(classes, labels, kept, strategy, out))
    if out:
        _write_rows(train, np.asarray(labels[kept], dtype=np.intp), out)
    if weights_out:
        kept_w = weights if weights is not None else np.ones(kept.size)
        if weights is None:
            notes.append(f"strategy {strategy} keeps rows unweighted: every weight is 1.")
        _write_csv(
            weights_out,
            ["index", "weight"],
            [[str(i), f"{x:.17g}"] for i, x in zip(labels[kept].tolist(), kept_w, strict=True)],
        )
    if json_path:
        report: dict[str, Any] = {
            "train": train,
            "target": target,
            "method": result.method,
            "strategy": strategy,
            "keep_fraction": keep_fraction,
            "n_rows": int(classes.values.size),
            "n_kept": int(kept.size),
            "kept": labels[kept].tolist(),
            "weights": None if weights is None else weights.tolist(),
            "rows": classes.to_dict(),
        }
        if curve is not None:
            report["removal_curve"] = {
                "fractions": curve.fractions.tolist(),
                "scores": curve.scores.tolist(),
                "removal_fraction": curve.removal_fraction,
            }
        write_text(json_path, json.dumps(json_ready(report), indent=2) + "\n")
    sys.stdout.flush()
    notes.flush()
