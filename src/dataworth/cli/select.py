"""``dataworth select``: the pool rows to label next, or a simulated comparison of strategies.

Choosing (the default)::

    dataworth select POOL.csv --labeled LABELED.csv --target label --batch 50 \\
        --strategy shapley-regression --out next.csv

POOL has the feature columns of LABELED (the target column absent or empty). The chosen rows are
printed (0-based pool row, score, a few features) and written to ``--out`` as CSV with columns
``rank,index,score`` and every feature.

Simulating (POOL's target column holds the labels an oracle would give)::

    dataworth select POOL.csv --target label --simulate --test TEST.csv \\
        --strategy random,uncertainty,shapley-regression --batch 20 --rounds 10 --seeds 5

prints mean learning curves with 95% intervals and the labels each strategy needs to reach
``--accuracy`` (default: random's final mean accuracy) and saves versus random.
"""

from __future__ import annotations

import csv
import time
from typing import Any

import click
import numpy as np

from dataworth.apps.select import STRATEGIES, make_strategy
from dataworth.cli._common import (
    INPUT_FILE,
    OUTPUT_FILE,
    Notes,
    check_positive,
    current_reading,
    data_options,
    load_file,
    open_output,
    progress_setting,
    quiet_option,
    target_option,
)
from dataworth.cli._pipeline import Run, model_steps
from dataworth.data import Dataset
from dataworth.errors import DataworthError

__all__ = ["select"]

_SHOWN_FEATURES = 4


def _fmt(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[k]) for r in rows)) if rows else len(h) for k, h in enumerate(header)
    ]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def _load_pool(path: str, labeled: Dataset, target: str) -> Dataset:
    """POOL's feature columns (those of LABELED, in LABELED's order); the target must be empty."""
    columns = current_reading().read(path)
    if target in columns:
        col = columns.pop(target)
        filled = (
            np.flatnonzero(~np.isnan(col))
            if col.dtype.kind == "f"
            else np.flatnonzero(np.char.strip(col.astype(str)) != "")
        )
        if filled.size:
            raise DataworthError(
                f"{path}: target column {target!r} has values in {filled.size} row(s) (first "
                f"at row {int(filled[0])}); the pool must be unlabelled: leave the column empty, "
                "drop it, or move labelled rows to --labeled (use --simulate to treat the "
                "labels as an oracle)."
            )
    reading = current_reading()
    fitted = reading.preprocessor
    names = list(labeled.feature_names if fitted is None else fitted.names)
    missing = [n for n in names if n not in columns]
    extra = [n for n in columns if n not in names]
    if missing or extra:
        detail = "; ".join(
            p
            for p in (
                f"missing {', '.join(map(repr, missing))}" if missing else "",
                f"extra {', '.join(map(repr, extra))}" if extra else "",
            )
            if p
        )
        raise DataworthError(
            f"{path} must have the feature columns of the labelled file ({detail})."
        )
    ordered = {n: columns[n] for n in names}
    ordered[target] = np.zeros(len(columns[names[0]]))
    return reading.dataset(ordered, target, None, path)


def _strategy_params(
    notes: Notes, names: list[str], k: int | None, keep_fraction: float | None
) -> dict[str, dict[str, Any]]:
    """Each strategy's parameters; shapley-regression values the labelled rows with the paper's
    KNN-Shapley (``--k`` neighbours, default 3), through :func:`dataworth.api.valuer`."""
    from sklearn.neighbors import KNeighborsClassifier

    from dataworth.api import valuer

    params: dict[str, dict[str, Any]] = {}
    for name in names:
        params[name] = {}
        if name == "shapley-regression":
            knn = 3 if k is None else k
            params[name]["valuer"] = valuer(
                "knn-shapley", model=KNeighborsClassifier(n_neighbors=knn), k=knn
            )
            if keep_fraction is not None:
                params[name]["keep_fraction"] = keep_fraction
    if "shapley-regression" not in names:
        for value, flag in ((k, "--k"), (keep_fraction, "--keep-fraction")):
            if value is not None:
                notes.append(f"{flag} applies to shapley-regression only and is ignored.")
    return params


def _write_rows(path: str, pool: Dataset, indices: np.ndarray, scores: np.ndarray) -> None:
    with open_output(path) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["rank", "index", "score", *pool.feature_names])
        for rank, i in enumerate(indices.tolist(), start=1):
            writer.writerow([rank, i, repr(float(scores[i])), *(repr(float(v)) for v in pool.X[i])])


@click.command()
@click.argument("pool", type=INPUT_FILE)
@target_option
@data_options()
@click.option(
    "--labeled",
    "labeled_path",
    type=INPUT_FILE,
    default=None,
    help="The rows labelled so far: the pool's features plus the target.",
)
@click.option("--batch", type=int, default=50, show_default=True, help="Rows to choose per round.")
@click.option(
    "--strategy",
    default="shapley-regression",
    show_default=True,
    help=f"One of: {', '.join(STRATEGIES)} (with --simulate: a comma-separated list, or 'all').",
)
@model_steps(
    "The classifier being trained: logistic-regression (default; the only one influence "
    "supports), knn, random-forest, gaussian-nb, ... or a dotted class path."
)
@click.option("--k", type=int, default=None, help="shapley-regression: KNN-Shapley neighbours (3).")
@click.option(
    "--keep-fraction",
    type=float,
    default=None,
    help="shapley-regression: share of the pool kept by the value filter (0.5).",
)
@click.option(
    "--out",
    "out",
    type=OUTPUT_FILE,
    default=None,
    help="Write the chosen rows (or curves) as CSV here.",
)
@click.option("--show", type=int, default=20, show_default=True, help="Chosen rows printed.")
@click.option(
    "--simulate",
    is_flag=True,
    help="Simulate active learning: POOL's target column is the oracle; needs --test.",
)
@click.option(
    "--test",
    "test_path",
    type=INPUT_FILE,
    default=None,
    help="--simulate: test split (same columns).",
)
@click.option("--initial", type=int, default=20, show_default=True, help="--simulate: first rows.")
@click.option("--rounds", type=int, default=10, show_default=True, help="--simulate: rounds.")
@click.option(
    "--seeds",
    type=int,
    default=5,
    show_default=True,
    help="--simulate: number of seeds (--seed, --seed + 1, ...).",
)
@click.option(
    "--accuracy",
    type=float,
    default=None,
    help="--simulate: target accuracy for 'labels to reach' (default: random's final mean).",
)
@click.option("--n-jobs", type=int, default=1, show_default=True, help="--simulate: workers.")
@quiet_option
def select(
    pool: str,
    target: str,
    labeled_path: str | None,
    batch: int,
    strategy: str,
    k: int | None,
    keep_fraction: float | None,
    out: str | None,
    show: int,
    simulate: bool,
    test_path: str | None,
    initial: int,
    rounds: int,
    seeds: int,
    accuracy: float | None,
    n_jobs: int,
    run: Run,
) -> None:
    """Choose the rows of POOL to label next (batch active learning).

    Strategies: random; uncertainty (margin) and entropy of the model fitted on the labelled
    rows; shapley-regression (KNN-Shapley values of the labelled rows -> regressor -> keep the
    pool rows of highest predicted value -> the most uncertain of them -> k-center greedy);
    influence (predicted effect of
    each pool row, with its predicted label, on the loss of held-out labelled rows).
    """
    check_positive(batch, "--batch")
    if show < 0:
        raise DataworthError(f"--show must be >= 0; got {show}.")
    notes, seed = run.notes, run.seed
    if simulate:
        _simulate(
            run,
            pool,
            target,
            labeled_path,
            batch,
            strategy,
            k,
            keep_fraction,
            out,
            test_path,
            initial,
            rounds,
            seeds,
            accuracy,
            n_jobs,
        )
        notes.flush()
        return
    if labeled_path is None:
        raise DataworthError(
            "--labeled is required: the rows labelled so far (or use --simulate with a "
            "labelled POOL and --test)."
        )
    if strategy not in STRATEGIES:
        raise DataworthError(
            f"unknown strategy {strategy!r}; choose one of: {', '.join(STRATEGIES)}."
        )
    labeled = load_file(labeled_path, target)
    pool_ds = _load_pool(pool, labeled, target)
    # the training rows of active learning: the labelled rows and the pool they come from
    stacked = np.vstack([labeled.X, pool_ds.X])
    every = Dataset.from_arrays(stacked, np.zeros(stacked.shape[0]))
    _, scaled_lab, scaled_pool = run.scale(every, labeled, pool_ds)
    params = _strategy_params(notes, [strategy], k, keep_fraction)[strategy]
    strat = make_strategy(strategy, **params)
    model = run.model(labeled.y) if strat.uses_model else None
    started = time.monotonic()
    chosen = strat.select(scaled_lab, scaled_pool.X, batch, model=model, random_state=seed)
    elapsed = time.monotonic() - started
    classes = np.unique(labeled.y)
    click.echo(
        f"{len(chosen)} of {pool_ds.n_samples} rows of {pool} to label next, by {strategy} "
        f"({labeled.n_samples} labelled rows, {classes.size} classes"
        + (f", model {type(model).__name__}" if model is not None else "")
        + ")."
    )
    if strategy == "shapley-regression":
        d = chosen.details
        narrowed = (
            f"the {d['n_candidates']} most uncertain of them ({d['acquisition']}) went to "
            "k-center greedy, which chose the batch"
            if d["acquisition"] is not None
            else "k-center greedy chose the batch among them"
        )
        click.echo(
            f"value filter: kept the {d['n_kept']} pool rows of highest predicted KNN-Shapley "
            f"value (score >= {d['value_threshold']:.4g}); {narrowed}. Labelled values "
            f"({d['n_folds']}-fold cross-fitted): median {np.median(d['labeled_values']):.4g}."
        )
    shown = list(pool_ds.feature_names[:_SHOWN_FEATURES])
    more = pool_ds.n_features - len(shown)
    rows = [
        [
            str(rank),
            str(int(i)),
            f"{chosen.scores[i]:.4g}",
            *(_fmt(v) for v in pool_ds.X[i, : len(shown)]),
        ]
        for rank, i in enumerate(chosen.indices[:show].tolist(), start=1)
    ]
    click.echo(f"score = {chosen.score_name} (higher = preferred); index = 0-based row of POOL.")
    click.echo(_table(["rank", "index", "score", *shown], rows))
    hidden = len(chosen) - len(rows)
    if hidden > 0 or more > 0:
        click.echo(
            "("
            + ", ".join(
                p
                for p in (
                    f"{hidden} more rows" if hidden > 0 else "",
                    f"{more} more features" if more > 0 else "",
                )
                if p
            )
            + (f" in {out})" if out else "; write them all with --out)")
        )
    if out:
        _write_rows(out, pool_ds, chosen.indices, chosen.scores)
    click.echo(
        f"chose {len(chosen)} rows with {strategy} in {elapsed:.1f} s"
        + (f" -> {out}" if out else ""),
        err=True,
    )
    notes.flush()


def _simulate(
    run: Run,
    pool: str,
    target: str,
    labeled_path: str | None,
    batch: int,
    strategy: str,
    k: int | None,
    keep_fraction: float | None,
    out: str | None,
    test_path: str | None,
    initial: int,
    rounds: int,
    seeds: int,
    accuracy: float | None,
    n_jobs: int,
) -> None:
    from dataworth.apps.active_loop import (
        compare_strategies,
        format_reach_table,
        labels_to_reach,
        summarize_curves,
    )

    notes, seed = run.notes, run.seed
    if test_path is None:
        raise DataworthError("--simulate needs --test: a labelled test split to measure accuracy.")
    if labeled_path is not None:
        raise DataworthError(
            "--simulate draws the first --initial rows from POOL; do not pass --labeled."
        )
    check_positive(seeds, "--seeds")
    check_positive(rounds, "--rounds")
    names = list(STRATEGIES) if strategy == "all" else [s.strip() for s in strategy.split(",")]
    unknown = [s for s in names if s not in STRATEGIES]
    if unknown or not names:
        raise DataworthError(
            f"unknown strategy {', '.join(map(repr, unknown))}; choose from: "
            f"{', '.join(STRATEGIES)} (comma-separated) or 'all'."
        )
    if "random" not in names:
        names.insert(0, "random")
        notes.append("random was added: labels saved are measured against it.")
    pool_ds = load_file(pool, target)
    test = load_file(test_path, target)
    if test.feature_names != pool_ds.feature_names:
        raise DataworthError(f"{test_path} must have the same columns as {pool}.")
    scaled_pool, scaled_test = run.scale(pool_ds, test)  # the pool: every row bought comes from it
    pool_X, test_X = scaled_pool.X, scaled_test.X
    params = _strategy_params(notes, names, k, keep_fraction)
    model = run.model(pool_ds.y)
    strategies = {name: make_strategy(name, **params[name]) for name in names}
    started = time.monotonic()
    curves = compare_strategies(
        strategies,
        pool_X,
        pool_ds.y,
        test_X,
        test.y,
        seeds=[seed + s for s in range(seeds)],
        initial=initial,
        batch=batch,
        rounds=rounds,
        model=model,
        n_jobs=n_jobs,
        progress=progress_setting(),
    )
    summary = summarize_curves(curves)
    grid = summary["random"].n_labels
    click.echo(
        f"simulated {len(names)} strategies x {seeds} seeds on {pool} ({pool_ds.n_samples} rows; "
        f"labels revealed only when bought), test accuracy on {test_path} ({test.n_samples} rows)"
    )
    click.echo("mean test accuracy [95% t interval over seeds] by labels bought:")
    step = max(1, (grid.size + 5) // 6)
    cols = sorted(set(range(0, grid.size, step)) | {grid.size - 1})
    rows = [
        [name] + [f"{s.mean[j]:.3f} [{s.low[j]:.3f}, {s.high[j]:.3f}]" for j in cols]
        for name, s in summary.items()
    ]
    click.echo(_table(["strategy", *(str(int(grid[j])) for j in cols)], rows))
    target_acc = float(summary["random"].mean[-1]) if accuracy is None else accuracy
    why = "random's final mean accuracy" if accuracy is None else "--accuracy"
    click.echo(f"\nlabels to reach accuracy {target_acc:.4f} ({why}); saved = random - strategy:")
    click.echo(format_reach_table(labels_to_reach(curves, target_acc)))
    if out:
        with open_output(out) as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["strategy", "seed", "n_labels", "accuracy"])
            for name, runs in curves.items():
                for c in runs:
                    for n, a in zip(c.n_labels.tolist(), c.accuracy.tolist(), strict=True):
                        writer.writerow([name, c.seed, n, repr(a)])
    click.echo(
        f"simulated in {time.monotonic() - started:.1f} s" + (f" -> {out}" if out else ""),
        err=True,
    )
