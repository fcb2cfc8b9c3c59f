"""``dataworth clean``: removal curves, a suggested cut, a review list and labels to fix first."""

from __future__ import annotations

import csv
import json
import math
import warnings
from typing import Any

import click
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from dataworth.apps.clean import (
    CUT_WARNING,
    DEFAULT_METHOD_PARAMS,
    LabelsToFix,
    ReviewList,
    labels_to_fix,
    out_of_fold_predictions,
    review_list,
)
from dataworth.apps.removal import CutSuggestion, RemovalCurves, removal_curves, suggest_cut
from dataworth.cli._common import (
    INPUT_FILE,
    OUTPUT_FILE,
    Notes,
    check_positive,
    check_same_columns,
    check_same_target_kind,
    current_reading,
    data_options,
    load_file,
    open_output,
    progress_setting,
    read_rows_as_text,
    scoring_option,
    target_option,
    valid_file_option,
    valid_fraction_option,
    write_text,
)
from dataworth.cli._pipeline import Run, model_steps, valuation_steps
from dataworth.data import Dataset, is_categorical
from dataworth.errors import DataworthError
from dataworth.experiments import NoisyValuationComparison, noisy_valuation_comparison
from dataworth.jsonable import json_ready, plain

__all__ = ["clean"]

_MAX_SHOWN_FEATURES = 6


# ---------------------------------------------------------------------------------- formatting
def _fmt(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value)


def _table(header: list[list[str]], rows: list[list[str]], left: int = 0) -> str:
    """Right-aligned columns (the first ``left`` left-aligned); several header lines allowed."""
    n_cols = max(len(r) for r in header + rows)
    widths = [
        max((len(r[c]) for r in header + rows if c < len(r)), default=0) for c in range(n_cols)
    ]

    def line(r: list[str]) -> str:
        cells = [
            (cell.ljust(w) if c < left else cell.rjust(w))
            for c, (cell, w) in enumerate(zip(r, widths, strict=False))
        ]
        return "  ".join(cells).rstrip()

    return "\n".join(line(r) for r in header + rows)


def _pct(f: float) -> str:
    return f"{100 * f:.4g}%"


# ---------------------------------------------------------------------------------- loading
def _load(
    notes: Notes,
    train_path: str,
    valid_path: str | None,
    test_path: str | None,
    target: str,
    valid_fraction: float,
    test_fraction: float,
    seed: int,
) -> tuple[Dataset, Dataset, Dataset, str]:
    """(train, valid, test, description of where each came from)."""
    for name, f in (("--valid-fraction", valid_fraction), ("--test-fraction", test_fraction)):
        if not 0 < f < 1:
            raise DataworthError(f"{name} must lie strictly between 0 and 1; got {f}.")
    data = _read_training_file(train_path, target, valid_path, test_path, valid_fraction,
                               test_fraction, seed)  # fmt: skip
    split_off: list[str] = []
    if test_path is not None:
        test = load_file(test_path, target)
        check_same_columns(test, data, test_path, train_path)
        check_same_target_kind(data, test, train_path, test_path)
    else:
        data, test = data.split(test_fraction, random_state=seed)
        split_off.append(f"{test.n_samples} held-out test rows ({test_fraction:g})")
    if valid_path is not None:
        valid = load_file(valid_path, target)
        check_same_columns(valid, data, valid_path, train_path)
    else:
        total = data.n_samples + (0 if test_path is not None else test.n_samples)
        share = valid_fraction * total / data.n_samples
        if not 0 < share < 1:
            raise DataworthError(
                f"--valid-fraction {valid_fraction:g} leaves no training rows after the "
                f"--test-fraction split; lower one of them."
            )
        data, valid = data.split(share, random_state=seed)
        split_off.append(f"{valid.n_samples} valuation rows ({valid_fraction:g})")
    if split_off:
        notes.append(
            f"split {train_path} with seed {seed} into {data.n_samples} training rows (valued), "
            + " and ".join(split_off)
            + "; pass --valid/--test to use your own files."
        )
    where = (
        f"{data.n_samples} training rows valued, {valid.n_samples} valuation rows"
        f"{'' if valid_path is None else f' ({valid_path})'}, {test.n_samples} held-out test "
        f"rows{'' if test_path is None else f' ({test_path})'}"
    )
    return data, valid, test, where


def _read_training_file(
    train_path: str,
    target: str,
    valid_path: str | None,
    test_path: str | None,
    valid_fraction: float,
    test_fraction: float,
    seed: int,
) -> Dataset:
    """TRAIN as a dataset, its feature preprocessing (--encode/--impute) fitted on the rows
    :func:`_load`'s splits leave for training only (the splits depend on the target alone)."""
    reading = current_reading()
    columns = reading.read(train_path)
    n_rows = len(next(iter(columns.values()))) if columns else 0
    rows = np.arange(n_rows)
    if test_path is None:
        rows = reading.training_rows(columns, target, test_fraction, seed, train_path)
    share = valid_fraction * n_rows / max(rows.size, 1)
    if valid_path is None and 0 < share < 1:
        kept = {name: column[rows] for name, column in columns.items()}
        rows = rows[reading.training_rows(kept, target, share, seed, train_path)]
    return reading.dataset(columns, target, None, train_path, fit_rows=rows)


def _fractions(step: float, max_fraction: float) -> tuple[float, ...]:
    if not 0 < max_fraction < 1:
        raise DataworthError(
            f"--max-fraction must lie strictly between 0 and 1; got {max_fraction}."
        )
    if not 0 < step <= max_fraction:
        raise DataworthError(f"--step must lie in (0, --max-fraction]; got {step}.")
    count = int(math.floor(max_fraction / step + 1e-9))
    return tuple(round(step * i, 10) for i in range(count + 1))


# ---------------------------------------------------------------------------------- output
def _curves_text(curves: RemovalCurves) -> str:
    methods = curves.methods
    n_seeds = curves.random.shape[0]
    head1 = ["", "", *[x for m in methods for x in (m, "")], "random"]
    head2 = [
        "removed",
        "rows",
        *[x for _ in methods for x in ("lowest", "highest")],
        f"mean ± sd ({n_seeds} seed{'s' if n_seeds > 1 else ''})",
    ]
    rows = []
    for j, (f, k) in enumerate(zip(curves.fractions, curves.n_removed, strict=True)):
        cells = [_pct(float(f)), str(int(k))]
        for m in methods:
            cells += [f"{curves.lowest[m][j]:.4f}", f"{curves.highest[m][j]:.4f}"]
        cells.append(f"{curves.random_mean[j]:.4f} ± {curves.random_std[j]:.4f}")
        rows.append(cells)
    return _table([head1, head2], rows)


def _cut_text(cut: CutSuggestion, curves: RemovalCurves) -> str:
    metric = curves.metric
    sig = cut.significance
    cand = sig.get("candidate", {})
    lines: list[str] = []
    if cut.n_removed > 0:
        lines.append(
            f"suggested cut: remove the {_pct(cut.fraction)} lowest-valued rows by {cut.method} "
            f"({cut.n_removed} rows)"
        )
        if sig:
            lines.append(
                f"  why: on the valuation set it gains {sig['gain']:+.4f} {metric} over no "
                f"removal, more than its noise {sig['noise']:.4f} ({sig['test']})"
            )
    elif sig:
        lines.append(
            f"suggested cut: remove nothing: the best cut on the valuation set (the "
            f"{_pct(cand['fraction'])} lowest-valued rows by {cand['method']}, "
            f"{cand['n_removed']} rows) gains only {sig['gain']:+.4f} {metric} over no removal, "
            f"within its noise {sig['noise']:.4f} ({sig['test']})"
        )
    else:
        lines.append(
            "suggested cut: remove nothing (no cut raised the valuation-set "
            f"{metric} above {cut.valid_baseline:.4f})"
        )
    lines += [
        f"  held-out test {metric}: {cut.test_score:.4f} (no removal {cut.test_baseline:.4f}; "
        f"removing {cut.n_removed} rows at random {cut.random_mean:.4f} ± "
        f"{cut.random_std:.4f})",
        f"  valuation-set {metric} at the cut: {cut.valid_score:.4f} (no removal "
        f"{cut.valid_baseline:.4f}); optimistic, the cut was chosen on it",
    ]
    if cut.held_out_disagrees:
        lines.append(
            f"held-out split disagrees: the cut scores {cut.test_score:.4f} {metric} on the "
            f"held-out test rows, below {cut.test_baseline:.4f} with no removal."
        )
    lines.append(f"warning: {CUT_WARNING}")
    return "\n".join(lines)


def _review_text(review: ReviewList, raw: Dataset) -> str:
    shown = list(raw.feature_names[:_MAX_SHOWN_FEATURES])
    more = raw.n_features - len(shown)
    header = ["side", "row", "value", "given", "predicted", "", *shown]
    rows = [
        [
            str(review.side[i]),
            _fmt(review.row_labels[i]),
            f"{review.values[i]:.4g}",
            _fmt(review.given[i]),
            _fmt(review.predicted[i]),
            "<- differs" if review.differs[i] else "",
            *(_fmt(v) for v in raw.X[review.positions[i], : len(shown)]),
        ]
        for i in range(len(review))
    ]
    extra = f" (+{more} more features in --json)" if more > 0 else ""
    differs = (
        ""
        if review.differs_tol is None
        else f"; differs = |given - predicted| > {review.differs_tol:.4g} (twice the root mean "
        "square out-of-fold residual)"
    )
    return (
        f"{_table([header], rows, left=1)}\n"
        f"predicted = the model's {review.prediction} prediction, so a row's own label does not "
        f"vote for itself{differs}{extra}"
    )


def _share(f: float) -> str:
    """A share as a percentage with 2 significant digits at least, never a bare 0.0%."""
    pct = 100 * float(f)
    if pct == 0 or not math.isfinite(pct):
        return f"{pct:g}%"
    decimals = max(1, 1 - math.floor(math.log10(abs(pct))))
    return f"{pct:.{decimals}f}%"


def _fix_text(fix: LabelsToFix, model_name: str) -> str:
    n_wrong = fix.misclassified.size
    if n_wrong == 0:
        return f"{model_name} misclassifies none of the {fix.n_valid} valuation rows."
    if len(fix) == 0:
        return "no training row raises the loss of the misclassified valuation rows."
    header = ["priority", "row", "score", "share", "votes", "given", "predicted"]
    rows = [
        [
            str(i + 1),
            _fmt(fix.row_labels[i]),
            f"{fix.scores[i]:.4g}",
            _share(fix.share[i]),
            f"{fix.votes[i]}/{n_wrong}",
            _fmt(fix.given[i]),
            _fmt(fix.predicted[i]),
        ]
        for i in range(len(fix))
    ]
    return (
        f"{n_wrong} of {fix.n_valid} valuation rows are misclassified by {model_name}; training "
        "rows whose influence most raises their loss:\n"
        f"{_table([header], rows)}\n"
        "score = summed positive influence I(row, loss) over the misclassified valuation rows "
        f"(Koh & Liang 2017); votes = of those rows, how many have this row among their "
        f"{fix.per_point} most harmful; predicted = {_prediction_name(fix.prediction)}"
    )


def _prediction_name(how: str) -> str:
    return f"the model's {how} prediction" + (
        ", as in the review list" if how != "in-sample" else ""
    )


def _noisy_text(cmp: NoisyValuationComparison) -> str:
    header = [
        "method",
        "valuation set",
        f"held-out {cmp.metric} after removing {_pct(cmp.fraction)}",
        "random removal",
        "rank corr. with clean",
        "values changed",
    ]
    rows = [
        [
            r["method"],
            "as given" if r["valid"] == "clean" else f"{_pct(cmp.valid_noise)} labels flipped",
            f"{r['score_after_cut']:.4f}",
            f"{r['random_after_cut']:.4f}",
            f"{r['rank_correlation']:.3f}",
            "" if r["valid"] == "clean" else ("yes" if r["changed"] else "no"),
        ]
        for r in cmp.rows
    ]
    return (
        f"{_table([header], rows, left=2)}\n"
        "data-oob never uses the valuation set (out-of-bag scores on the training rows), so its "
        "values cannot change; utility-based methods inherit the valuation set's errors."
    )


def _write_cleaned(path: str, train_path: str, removed_rows: set[int]) -> int:
    """Write TRAIN without ``removed_rows`` (0-based data rows); returns rows written."""
    header, body = read_rows_as_text(train_path, cell=_cell)
    kept = [r for i, r in enumerate(body) if i not in removed_rows]
    with open_output(path, encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(kept)
    return len(kept)


def _cell(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return "" if math.isnan(v) else repr(float(v))
    return str(plain(v))


def _write_curves(path: str, curves: RemovalCurves) -> None:
    columns = ["method", "order", "fraction", "n_removed", "split", "score", "std"]
    with open_output(path) as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for rec in curves.records():
            writer.writerow({**rec, "score": f"{rec['score']:.17g}", "std": f"{rec['std']:.17g}"})


# ---------------------------------------------------------------------------------- command
@click.command()
@click.argument("train", type=INPUT_FILE)
@target_option
@data_options()
@valid_file_option
@click.option(
    "--test",
    "test_path",
    type=INPUT_FILE,
    default=None,
    help="Held-out test set (same columns), used only to measure the curves.",
)
@valid_fraction_option()
@click.option(
    "--test-fraction",
    default=0.2,
    show_default=True,
    type=float,
    help="Without --test: share of TRAIN split off (with --seed) as held-out test set.",
)
@valuation_steps(
    many=True,
    method_help="Comma-separated valuation methods (default: knn-shapley,data-oob for class "
    "labels, data-oob otherwise); e.g. knn-shapley,data-oob,tmc-shapley.",
    budget_help="Bags (data-oob, default 100) or permutations (tmc-shapley, default 20).",
)
@model_steps(
    "Model retrained after each removal (see `dataworth models`); default logistic "
    "regression for labels, linear regression otherwise.",
    standardize_default=True,
)
@scoring_option
@click.option(
    "--max-fraction",
    default=0.5,
    show_default=True,
    type=float,
    help="Largest fraction of training rows removed on the curves.",
)
@click.option(
    "--step", default=0.05, show_default=True, type=float, help="Step between removed fractions."
)
@click.option("--n-random", default=5, show_default=True, type=int, help="Seeds of random removal.")
@click.option(
    "--review",
    default=5,
    show_default=True,
    type=int,
    help="Rows listed on each side of the review list (0: no list).",
)
@click.option(
    "--fix",
    "n_fix",
    default=10,
    show_default=True,
    type=int,
    help="Rows in the labels-to-fix list (0: no list).",
)
@click.option(
    "--valid-noise",
    default=None,
    type=float,
    help="Also flip this share of the valuation labels and compare every method on both "
    "valuation sets (data-oob does not use it).",
)
@click.option(
    "--out",
    "out",
    type=OUTPUT_FILE,
    default=None,
    help="Write TRAIN without the removed rows here (CSV); not when the held-out split says "
    "the suggested cut hurts, unless --force.",
)
@click.option(
    "--force",
    is_flag=True,
    default=False,
    help="Write --out even when the held-out test split disagrees with the suggested cut.",
)
@click.option(
    "--curves",
    "curves_path",
    type=OUTPUT_FILE,
    default=None,
    help="Write the removal curves here (CSV).",
)
@click.option(
    "--json",
    "json_path",
    type=OUTPUT_FILE,
    default=None,
    help="Write everything shown here (JSON).",
)
def clean(
    train: str,
    target: str,
    valid_path: str | None,
    test_path: str | None,
    valid_fraction: float,
    test_fraction: float,
    scoring: str | None,
    max_fraction: float,
    step: float,
    n_random: int,
    review: int,
    n_fix: int,
    valid_noise: float | None,
    out: str | None,
    force: bool,
    curves_path: str | None,
    json_path: str | None,
    run: Run,
) -> None:
    """Find rows of TRAIN that hurt the model: removal curves on a held-out test split, a
    suggested cut, a review list for experts and the labels to fix first."""
    check_positive(n_random, "--n-random")
    if review < 0 or n_fix < 0:
        raise DataworthError("--review and --fix must be whole numbers >= 0.")
    if valid_noise is not None and not 0 < valid_noise <= 1:
        raise DataworthError(f"--valid-noise must lie in (0, 1]; got {valid_noise}.")
    fractions = _fractions(step, max_fraction)
    notes, seed, n_jobs = run.notes, run.seed, run.n_jobs
    raw_tr, raw_va, raw_te, where = _load(
        notes, train, valid_path, test_path, target, valid_fraction, test_fraction, seed
    )
    classes = is_categorical(raw_tr.y)
    if valid_noise is not None and not classes:
        raise DataworthError("--valid-noise flips valuation labels: it needs class labels.")
    if not run.methods:
        run.use_methods(["knn-shapley", "data-oob"] if classes else ["data-oob"])
    method_list = run.methods
    run.defaults = DEFAULT_METHOD_PARAMS
    params = run.params()
    tr, va, te = run.scale(raw_tr, raw_va, raw_te)
    model = run.model(tr.y)
    values = run.value(tr, va, model, scoring=scoring, ignore=(ConvergenceWarning,))
    curves = removal_curves(
        values,
        tr,
        te,
        model,
        valid=va,
        fractions=fractions,
        n_random=n_random,
        scoring=scoring,
        random_state=seed,
        n_jobs=n_jobs,
        progress=progress_setting(),
    )
    cut = suggest_cut(curves)
    model_label = type(model).__name__
    timing = ", ".join(f"{m} {values[m].metadata['seconds']:.1f} s" for m in method_list)
    click.echo(f"data: {where}")
    click.echo(f"model: {model_label}; metric: {curves.metric}; values: {timing}")
    click.echo(
        f"\nremoval curves: held-out test {curves.metric} ({te.n_samples} rows, not the "
        "valuation set) after removing training rows and retraining"
    )
    click.echo(_curves_text(curves))
    click.echo("")
    click.echo(_cut_text(cut, curves))

    review_obj: ReviewList | None = None
    predictions = None
    if review > 0 or (n_fix > 0 and classes):
        # one prediction per row for both lists: out-of-fold, so a row's label does not vote
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            predictions = out_of_fold_predictions(model, tr, 5, seed)
        notes.add_warnings(caught, prefix="while predicting: ")
    if review > 0:
        review_obj = review_list(
            values[cut.method],
            tr,
            model,
            review,
            features=raw_tr.X,
            random_state=seed,
            predictions=predictions,
        )
        click.echo(
            f"\nreview list: the {review} lowest- and {review} highest-valued rows by {cut.method}"
            " (row = 0-based data row of the file)"
        )
        click.echo(_review_text(review_obj, raw_tr))

    fix_obj: LabelsToFix | None = None
    if n_fix > 0:
        if not classes:
            notes.append("labels to fix needs class labels; skipped for a real-valued target.")
        else:
            fix_obj, fix_model = _labels_to_fix(notes, tr, va, model, n_fix, seed, predictions)
            click.echo("\nlabels to fix first:")
            click.echo(_fix_text(fix_obj, type(fix_model).__name__))

    noisy: NoisyValuationComparison | None = None
    if valid_noise is not None:  # two more valuations of each method: not checkpointed
        without_saving = {
            m: {k: v for k, v in p.items() if k not in ("checkpoint", "resume")}
            for m, p in params.items()
        }
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            noisy = noisy_valuation_comparison(
                tr,
                va,
                te,
                model,
                methods=method_list,
                params=without_saving,
                valid_noise=valid_noise,
                fraction=0.1,
                n_random=n_random,
                scoring=scoring,
                random_state=seed,
                n_jobs=n_jobs,
            )
        notes.add_warnings(caught)
        click.echo(
            f"\nnoisy valuation set: {_pct(valid_noise)} of the valuation labels flipped "
            f"(seed {seed}); held-out test {curves.metric} after removing the lowest 10%"
        )
        click.echo(_noisy_text(noisy))

    removed_rows = sorted(int(r) for r in tr.row_labels[cut.removed].tolist())
    written = False
    if out and cut.held_out_disagrees and not force:
        click.echo(
            f"\nnot writing {out}: the held-out split disagrees with the cut; pass --force to "
            "write it anyway."
        )
    elif out:
        n_written = _write_cleaned(out, train, set(removed_rows))
        written = True
        split_parts = [
            part
            for part, given in (("valuation", valid_path), ("test", test_path))
            if given is None
        ]
        kept_note = (
            f" (the {' and '.join(split_parts)} rows split off it are kept: they were not valued)"
            if split_parts
            else ""
        )
        forced = " (--force: the held-out split disagrees)" if cut.held_out_disagrees else ""
        click.echo(
            f"\nwrote {out}: {n_written} rows of {train} with the original columns, "
            f"{len(removed_rows)} removed{kept_note}{forced}"
        )
    if curves_path:
        _write_curves(curves_path, curves)
    if json_path:
        payload = {
            "train": train,
            "target": target,
            "data": where,
            "model": model_label,
            "methods": {
                m: {"params": values[m].params, "seconds": values[m].metadata["seconds"]}
                for m in method_list
            },
            "values": {m: values[m].values.tolist() for m in method_list},
            "row_labels": tr.row_labels.tolist(),
            "curves": curves.to_dict(),
            "cut": {**cut.to_dict(), "removed_rows": removed_rows, "out_written": written},
            "review": None if review_obj is None else review_obj.to_dict(),
            "labels_to_fix": None if fix_obj is None else fix_obj.to_dict(),
            "noisy_valuation": None if noisy is None else noisy.to_dict(),
        }
        write_text(json_path, json.dumps(json_ready(payload), indent=2))
    notes.flush()


def _labels_to_fix(
    notes: Notes,
    tr: Dataset,
    va: Dataset,
    model: Any,
    top: int,
    seed: int,
    predictions: tuple[Any, str] | None,
) -> tuple[LabelsToFix, Any]:
    """Labels to fix with ``model`` when it is a logistic regression, else the default one;
    the ``predicted`` column is ``predictions`` (the review list's)."""
    from sklearn.linear_model import LogisticRegression

    from dataworth.models import default_model

    if isinstance(model, LogisticRegression):
        return labels_to_fix(tr, va, model, top=top, predictions=predictions), model
    fallback = default_model(tr.y, random_state=seed)
    notes.append(
        f"labels to fix uses closed-form influence of a logistic regression; "
        f"{type(model).__name__} is not one, so LogisticRegression(max_iter=1000) was used."
    )
    return labels_to_fix(tr, va, fallback, top=top, predictions=predictions), fallback
