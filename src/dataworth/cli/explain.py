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
import warnings
from typing import Any

import click
import numpy as np

from dataworth.api import value as value_rows
from dataworth.apps.explain import (
    R2_AT,
    GroupSummary,
    bootstrap_stability,
    collection_verdict,
    explain_values,
    value_by,
)
from dataworth.cli._common import (
    INPUT_FILE,
    OUTPUT_FILE,
    Notes,
    budget_option,
    build_model,
    check_n_jobs,
    check_positive,
    checkpoint_options,
    data_options,
    format_table,
    k_option,
    load_pair,
    model_options,
    n_jobs_option,
    progress_setting,
    quiet_option,
    runs_on_cluster,
    seed_option,
    standardize_features,
    target_option,
    valid_options,
    valuation_params,
    write_json,
)
from dataworth.data import is_categorical
from dataworth.errors import DataworthError
from dataworth.jsonable import json_ready
from dataworth.methods import RUN_CONTROL, get_method

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
@click.option(
    "--method",
    default="knn-shapley",
    show_default=True,
    help="Valuation method (see `dataworth methods`).",
)
@model_options("Model for model-based methods (see `dataworth models`); default by target type.")
@k_option
@budget_option
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
    "--standardize",
    is_flag=True,
    help="Standardise features for the valuation (rules stay in the original units).",
)
@seed_option
@n_jobs_option
@click.option(
    "--json",
    "json_path",
    type=OUTPUT_FILE,
    default=None,
    help="Also write everything as JSON here.",
)
@runs_on_cluster
@quiet_option
@checkpoint_options
def explain(
    train: str,
    target: str,
    valid_path: str | None,
    valid_fraction: float,
    method: str,
    model_name: str | None,
    model_params: str | None,
    k: int | None,
    budget: int | None,
    group: str | None,
    bootstrap: int,
    max_depth: int,
    top: int,
    standardize: bool,
    seed: int,
    n_jobs: int,
    json_path: str | None,
    checkpoint: str | None,
    resume: str | None,
) -> None:
    """Explain what carries value in TRAIN: features, regions, classes, sources, stability."""
    cls = get_method(method)
    if bootstrap < 0 or bootstrap == 1:
        raise DataworthError(f"--bootstrap must be 0 (skip) or at least 2; got {bootstrap}.")
    check_positive(max_depth, "--max-depth")
    check_positive(top, "--top")
    check_positive(budget, "--budget")
    check_positive(k, "--k")
    check_n_jobs(n_jobs, "--n-jobs")
    notes = Notes()
    raw_tr, raw_va = load_pair(notes, train, valid_path, target, group, valid_fraction, seed)
    tr, va = raw_tr, raw_va
    if standardize:
        tr, va = standardize_features(notes, tr, va)
    model = build_model(model_name, model_params, tr.y, seed)
    params = valuation_params(notes, cls, budget, k, n_jobs, checkpoint=checkpoint, resume=resume)
    saving = {k: params.pop(k) for k in ("checkpoint", "resume") if k in params}

    started = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = value_rows(method, tr, va, model=model, random_state=seed, **params, **saving)
    notes.add_warnings(caught)
    notes.extend(result.metadata.get("notes", []))
    values = np.asarray(result.values)
    ex = explain_values(values, raw_tr, max_depth=max_depth, random_state=seed)
    notes.extend(ex.notes)

    described = ", ".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in RUN_CONTROL)
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
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            stability = bootstrap_stability(
                method,
                tr,
                va,
                model,
                n_bootstrap=bootstrap,
                random_state=seed,
                progress_bar=progress_setting(),
                **{**params, "progress": False} if "progress" in params else params,
            )
        notes.add_warnings(caught, prefix="bootstrap: ")
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
            "params": {k: v for k, v in params.items() if k not in RUN_CONTROL},
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
