"""``dataworth explain``: which features, regions, classes and sources carry value, and how stable.

Values every row of TRAIN (as ``dataworth value`` does), then prints what carries the value: the
features ranked by a shallow regression tree from features to values, with the direction of
their effect (Spearman rank correlation); the tree's leaves as readable regions; the values per
class and per source (``--group``); and, with ``--bootstrap N``, how well the ranking of rows
reproduces on bootstrap resamples (see :mod:`dataworth.apps.explain`).
"""

from __future__ import annotations

import math
import time
from typing import Any

import click
import numpy as np

from dataworth.apps.explain import (
    R2_AT,
    GroupSummary,
    bootstrap_draws,
    bootstrap_stability,
    collection_verdict,
    explain_values,
    value_by,
)
from dataworth.cli._common import (
    INPUT_FILE,
    OUTPUT_FILE,
    check_positive,
    data_options,
    format_table,
    progress_bar,
    target_option,
    valid_options,
    write_json,
)
from dataworth.cli._pipeline import Run, model_steps, valuation_steps
from dataworth.data import is_categorical
from dataworth.errors import DataworthError
from dataworth.jsonable import json_ready
from dataworth.methods import RUN_CONTROL
from dataworth.result import ValuationResult

__all__ = ["explain"]

#: Most groups listed per summary table; --json has them all.
_SHOW_GROUPS = 20


def _num(x: float, spec: str = ".3g") -> str:
    return "nan" if not math.isfinite(x) else format(x, spec)


def _p(x: float) -> str:
    if not math.isfinite(x):
        return "-"
    return "<1e-4" if x < 1e-4 else f"{x:.2g}"


def _group_table(summaries: list[GroupSummary], what: str) -> str:
    rows = [
        [
            str(s.group),
            str(s.count),
            _num(s.mean, "+.4g"),
            _num(s.sum, "+.4g"),
            f"{100 * s.share_negative:.0f}%" if math.isfinite(s.share_negative) else "-",
            _p(s.p_value),
        ]
        for s in summaries[:_SHOW_GROUPS]
    ]
    text = format_table(
        [what, "rows", "mean value", "sum", "negative", "p vs rest"], rows, "lrrrrr", indent="  "
    )
    if len(summaries) > _SHOW_GROUPS:
        text += f"\n  ... ({len(summaries)} in all; --json lists every one)"
    return text


@click.command()
@click.argument("train", type=INPUT_FILE)
@target_option
@data_options()
@valid_options
@model_steps("Model for model-based methods (see `dataworth models`); default by target type.")
@valuation_steps(method="knn-shapley")
@click.option(
    "--group",
    default=None,
    help="Column of data sources: summarise the row values per source (not a feature).",
)
@click.option(
    "--bootstrap",
    type=int,
    default=10,
    show_default=True,
    help="Resamples for the stability check (each costs one valuation); 0 to skip.",
)
@click.option(
    "--max-depth", type=int, default=3, show_default=True, help="Depth of the value tree."
)
@click.option("--top", type=int, default=5, show_default=True, help="Features listed.")
@click.option(
    "--json",
    "json_path",
    type=OUTPUT_FILE,
    default=None,
    help="Also write everything as JSON here.",
)
def explain(
    train: str,
    target: str,
    valid_path: str | None,
    valid_fraction: float,
    group: str | None,
    bootstrap: int,
    max_depth: int,
    top: int,
    json_path: str | None,
    run: Run,
) -> None:
    """Explain what carries value in TRAIN: features, regions, classes, sources, stability."""
    if bootstrap < 0 or bootstrap == 1:
        raise DataworthError(f"--bootstrap must be 0 (skip) or at least 2; got {bootstrap}.")
    check_positive(max_depth, "--max-depth")
    check_positive(top, "--top")
    notes, seed, method = run.notes, run.seed, run.method
    data = run.load_pair(train, valid_path, target, group, valid_fraction)
    tr, va, raw_tr = data.train, data.valid, data.raw_train
    assert va is not None
    model = run.model(tr.y)
    started = time.monotonic()
    result = run.value_one(tr, va, model)
    values = np.asarray(result.values)
    ex = explain_values(values, raw_tr, max_depth=max_depth, random_state=seed)
    notes.extend(ex.notes)

    described = run.described()
    finite = values[np.isfinite(values)]
    click.echo(
        f"{raw_tr.n_samples} rows of {train} valued with {method}"
        + (f" ({described})" if described else "")
        + f" against {va.n_samples} valuation rows: mean value "
        f"{_num(float(finite.mean()) if finite.size else math.nan, '+.4g')}, "
        f"{int(np.sum(finite < 0))} negative"
    )

    click.echo(
        f"\nwhat carries value: a regression tree of depth {ex.max_depth} from the features "
        f"to the values (R^2 {_num(ex.r2_tree, '.2f')} in sample, "
        f"{_num(ex.r2_tree_cv, '.2f')} cross-validated; linear R^2 {_num(ex.r2_linear, '.2f')})"
    )
    feature_rows = [
        [
            f.name,
            _num(f.importance, ".3f"),
            f.description,
            _num(f.change, "+.3g"),
            _num(f.spearman, "+.3f"),
            _p(f.p_value),
            _num(f.coef, "+.3f"),
        ]
        for f in ex.top_features(top)
    ]
    click.echo(
        format_table(
            ["feature", "importance", "direction", "change min-max", "spearman", "p", "std. coef"],
            feature_rows,
            "lrlrrrr",
            indent="  ",
        )
    )
    if len(ex.features) > top:
        click.echo(f"  ... ({len(ex.features)} features in all; --top or --json for more)")
    if not (math.isfinite(ex.r2_tree_cv) and ex.r2_tree_cv >= R2_AT):
        click.echo(
            f"  caution: the features predict the values poorly out of sample (cross-validated "
            f"R^2 {_num(ex.r2_tree_cv, '.2f')} < {R2_AT}); read the directions and regions as "
            "descriptions of these rows only."
        )

    click.echo("\nregions (leaves of the tree, highest mean value first):")
    region_rows = [
        [
            _num(r.mean_value, "+.4g"),
            str(r.count),
            f"{100 * r.share:.0f}%",
            f"{100 * r.share_negative:.0f}%",
            r.rule,
        ]
        for r in ex.regions
    ]
    click.echo(
        format_table(
            ["mean value", "rows", "share", "negative", "rule"], region_rows, "rrrrl", indent="  "
        )
    )

    by_class = None
    if is_categorical(raw_tr.y):
        by_class = value_by(values, raw_tr.y)
        click.echo(f"\nvalue by class ({target!r}, highest mean first):")
        click.echo(_group_table(by_class, "class"))
    else:
        notes.append(f"target {target!r} is real-valued: no summary by class.")
    by_group = None
    if group is not None and raw_tr.groups is not None:
        by_group = value_by(values, raw_tr.groups)
        click.echo(f"\nvalue by group ({group!r}, highest mean first):")
        click.echo(_group_table(by_group, "group"))

    stability = None
    collect: dict[str, Any] | None = None
    if bootstrap:
        stability = _stability(run, tr, va, model, bootstrap)
        click.echo(f"\nstability: {stability.summary()}")
        supported, why = collection_verdict(ex, stability)
        collect = {"supported": supported, "why": why}
        click.echo(f"collect more like the most valuable rows? {why}")
    else:
        notes.append("stability not checked (--bootstrap 0).")

    if json_path:
        explanation = ex.to_dict()
        for region in explanation["regions"]:  # positions -> row labels of the file
            region["rows"] = raw_tr.row_labels[np.asarray(region["rows"], dtype=np.intp)].tolist()
        payload: dict[str, Any] = {
            "train": train,
            "method": method,
            "params": {k: v for k, v in run.params()[method].items() if k not in RUN_CONTROL},
            "seed": seed,
            "n_valid": va.n_samples,
            "rows": [
                {"row": r, "value": json_ready(v)}
                for r, v in zip(raw_tr.row_labels.tolist(), values.tolist(), strict=True)
            ],
            "explanation": explanation,
            "by_class": None if by_class is None else [s.to_dict() for s in by_class],
            "by_group": None if by_group is None else [s.to_dict() for s in by_group],
            "stability": None if stability is None else stability.to_dict(),
            "collect_more": collect,
        }
        write_json(json_path, payload)
    click.echo(
        f"explained in {time.monotonic() - started:.1f} s"
        + (f" (with {bootstrap} bootstrap valuations)" if bootstrap else "")
        + (f" -> {json_path}" if json_path else ""),
        err=True,
    )
    notes.flush()


def _stability(run: Run, train: Any, valid: Any, model: Any, n_bootstrap: int) -> Any:
    """The method rerun on ``n_bootstrap`` resamples of the training rows (no checkpoint, no
    progress bar of its own: one bar over the resamples), then :func:`bootstrap_stability`."""
    draws = bootstrap_draws(train.n_samples, n_bootstrap, random_state=run.seed)
    params = {
        m: {k: v for k, v in p.items() if k not in ("checkpoint", "resume")}
        | ({"progress": False} if "progress" in p else {})
        for m, p in run.params().items()
    }
    results: list[ValuationResult] = []
    bar = progress_bar(
        zip(draws.rows, draws.seeds, strict=True), desc="bootstrap", total=len(draws)
    )
    for b, (rows, seed) in enumerate(bar):
        resample = train.take(rows)
        try:
            results.append(
                run.value_one(
                    resample,
                    valid,
                    model,
                    params=params,
                    seed=seed,
                    warning_prefix="bootstrap: ",
                    own_notes=False,
                )
            )
        except DataworthError as exc:
            raise DataworthError(f"bootstrap resample {b} ({rows.size} rows): {exc}") from None
    return bootstrap_stability(results, draws, method=run.method)
