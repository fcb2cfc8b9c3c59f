"""``dataworth market``: value each data provider and split a budget among them, in cents."""

from __future__ import annotations

import textwrap
import time
import warnings

import click
import numpy as np

from dataworth.api import federated_values
from dataworth.apps.market import (
    IF_NO_VALUE,
    MarketResult,
    budget_cents,
    market_payouts,
    prepare_market,
)
from dataworth.cli._common import (
    INPUT_FILE,
    OUTPUT_FILE,
    Notes,
    column_difference,
    current_reading,
    data_options,
    format_table,
    scoring_option,
    target_option,
    valid_fraction_option,
)
from dataworth.cli._pipeline import Run, model_steps, valuation_steps
from dataworth.data import Dataset
from dataworth.errors import DataworthError
from dataworth.methods.exact import MAX_PLAYERS

__all__ = ["market"]

_WIDTH = 100


# ---------------------------------------------------------------------------------- loading
def _load(
    notes: Notes,
    path: str,
    valid_path: str | None,
    target: str,
    group: str,
    rounds_col: str | None,
    valid_fraction: float,
    seed: int,
) -> tuple[Dataset, Dataset, np.ndarray | None]:
    """(train, valid, round of each training row or None)."""
    reading = current_reading()  # --features/--drop/--encode/--impute/--sep/--task
    columns = reading.read(path, group)  # provider names are exact text
    if group not in columns:
        raise DataworthError(
            f"provider column {group!r} (--group) not found in {path}; available columns: "
            f"{', '.join(map(repr, columns))}."
        )
    rounds: np.ndarray | None = None
    if rounds_col is not None:
        if rounds_col in (target, group):
            raise DataworthError(
                f"--rounds must name a column other than the target and the provider; got "
                f"{rounds_col!r}."
            )
        if rounds_col not in columns:
            raise DataworthError(
                f"rounds column {rounds_col!r} (--rounds) not found in {path}; available "
                f"columns: {', '.join(map(repr, columns))}."
            )
        rounds = np.asarray(columns.pop(rounds_col))
        if rounds.dtype.kind == "f" and np.isnan(rounds).any():
            raise DataworthError(
                f"rounds column {rounds_col!r} has {int(np.isnan(rounds).sum())} empty cell(s); "
                "give every row a round."
            )
    if valid_path is None and not 0 < valid_fraction < 1:
        raise DataworthError(
            f"--valid-fraction must lie strictly between 0 and 1; got {valid_fraction}."
        )
    rows = None  # the preprocessing is fitted on the rows that are paid for
    if valid_path is None:
        rows = reading.training_rows(columns, target, valid_fraction, seed, path)
    data = reading.dataset(columns, target, group, path, fit_rows=rows)
    if valid_path is None:
        train, valid = data.split(valid_fraction, random_state=seed)
        notes.append(
            f"valuation set: {valid.n_samples} rows ({valid_fraction:g}) split off {path} with "
            f"seed {seed}, so they are not paid for; pass --valid with the buyer's own data."
        )
        if rounds is not None:
            rounds = rounds[np.asarray(train.row_labels, dtype=np.intp)]
        return train, valid, rounds
    vcols = reading.read(valid_path)
    for extra in (group, rounds_col):
        if extra is not None and extra in vcols:
            vcols.pop(extra)
    valid = reading.dataset(vcols, target, None, valid_path)
    if valid.feature_names != data.feature_names:
        detail = column_difference(valid.feature_names, data.feature_names)
        raise DataworthError(f"{valid_path} must have the feature columns of {path} ({detail}).")
    return data, valid, rounds


# ---------------------------------------------------------------------------------- output
def _num(x: float) -> str:
    return f"{x:.4g}"


def _report(m: MarketResult) -> str:
    t = m.table
    total_cents = t.budget_cents
    federated = m.valuation.method == "federated-shapley"
    per_round = m.valuation.metadata.get("per_round") if federated else None
    round_ids = m.valuation.metadata.get("rounds", []) if per_round is not None else []
    show_rounds = per_round is not None and len(round_ids) <= 6
    head = ["provider"]
    if show_rounds:
        head += [f"round {r}" for r in round_ids]
    if m.robust is not None:
        head += ["base value", "penalty"]
    head += ["value", "share", "payout"]
    rows = [head]
    order = {str(p): i for i, p in enumerate(m.robust.providers.tolist())} if m.robust else {}
    for i, (p, v, c) in enumerate(zip(t.providers.tolist(), t.values, t.cents, strict=True)):
        cells = [str(p)]
        if show_rounds:
            assert per_round is not None
            cells += [_num(x) for x in per_round[i]]
        if m.robust is not None:
            j = order[str(p)]
            cells += [_num(float(m.base[i])), f"{float(m.robust.penalty[j]):.3f}"]
        share = 100.0 * int(c) / total_cents if total_cents else 0.0
        cells += [_num(float(v)), f"{share:.2f}%", f"{int(c) // 100}.{int(c) % 100:02d}"]
        rows.append(cells)
    blanks = [""] * (len(head) - 3)
    rows.append(["total", *blanks[1:], "", "100.00%" if total_cents else "0.00%", str(t.budget)])
    rule_lines: list[str] = []
    for k, para in enumerate(m.rule.split("\n")):
        rule_lines += textwrap.wrap(
            para,
            _WIDTH,
            initial_indent="rule: " if k == 0 else "      ",
            subsequent_indent="      ",
        )
    table = format_table(rows[0], rows[1:], "l" + "r" * (len(head) - 1))
    return table + "\n" + "\n".join(rule_lines)


# ---------------------------------------------------------------------------------- command
@click.command()
@click.argument("data", type=INPUT_FILE)
@target_option
@click.option("--group", required=True, help="Column naming the provider of each row.")
@click.option(
    "--budget",
    "budget",
    required=True,
    type=str,
    help="Amount to split among providers, in whole cents (e.g. 10000 or 2500.50).",
)
@click.option(
    "--out",
    "out",
    type=OUTPUT_FILE,
    default=None,
    help="Write provider,value,payout rows here (CSV).",
)
@click.option(
    "--valid",
    "valid_path",
    type=INPUT_FILE,
    default=None,
    help="The buyer's valuation set (same feature columns).",
)
@valid_fraction_option("DATA")
@valuation_steps(
    method=None,
    method_help="Valuation method over providers (default exact-shapley: every coalition of "
    f"providers, at most {MAX_PLAYERS}; for more use e.g. tmc-shapley).",
    budget=("--method-budget", "method_budget"),
    budget_help="Samples for a Monte Carlo --method (permutations, subsets or bags).",
    k=False,
)
@model_steps(
    "Model (see `dataworth models`); default logistic regression for labels, linear "
    "regression otherwise."
)
@scoring_option
@click.option(
    "--robust/--no-robust",
    default=True,
    show_default=True,
    help="Replication-robust values (Agarwal, Dahleh & Sarkar 2019): drop rows a provider "
    "repeats within its own data, and penalise similarity to the other providers' data.",
)
@click.option(
    "--lam",
    type=float,
    default=1.0,
    show_default=True,
    help="Strength of the similarity penalty exp(-lam x summed similarity).",
)
@click.option(
    "--bandwidth",
    type=float,
    default=None,
    help="Kernel bandwidth of the similarity, in pooled standard deviations (default 0.25 x "
    "the median distance between neighbouring rows of a provider).",
)
@click.option(
    "--rounds",
    "rounds_col",
    default=None,
    help="Column with the arrival round of each row: federated Shapley values (Wang et al. "
    "2020), each round valued given the earlier ones (increasing order of the column).",
)
@click.option(
    "--if-no-value",
    type=click.Choice(IF_NO_VALUE),
    default="refuse",
    show_default=True,
    help="When no provider has a positive value: stop with an error, or split equally.",
)
@data_options()
def market(
    data: str,
    target: str,
    group: str,
    budget: str,
    out: str | None,
    valid_path: str | None,
    valid_fraction: float,
    scoring: str | None,
    robust: bool,
    lam: float,
    bandwidth: float | None,
    rounds_col: str | None,
    if_no_value: str,
    run: Run,
) -> None:
    """Value every provider (--group) of DATA and split --budget among them in proportion to
    positive value; print the payout table and the rule, and write provider,value,payout."""
    cents = budget_cents(budget)
    if not np.isfinite(lam) or lam < 0:
        raise DataworthError(f"--lam must be a finite number >= 0; got {lam}.")
    if bandwidth is not None and not (np.isfinite(bandwidth) and bandwidth > 0):
        raise DataworthError(f"--bandwidth must be a finite number > 0; got {bandwidth}.")
    if rounds_col is not None and run.methods:
        raise DataworthError(
            "--rounds computes exact per-round Shapley values (Wang et al. 2020) and takes no "
            f"--method; drop --method {run.method} or --rounds."
        )
    notes, seed = run.notes, run.seed
    if not robust and (bandwidth is not None or lam != 1.0):
        notes.append("--lam and --bandwidth apply only with --robust and are ignored.")
    if not run.methods:
        run.use_methods(["exact-shapley"])
    method = run.method
    raw_tr, raw_va, rounds = _load(
        notes, data, valid_path, target, group, rounds_col, valid_fraction, seed
    )
    n_providers = int(np.unique(np.asarray(raw_tr.groups)).size)
    if rounds is None and method == "exact-shapley" and n_providers > MAX_PLAYERS:
        raise DataworthError(
            f"{n_providers} providers: exact-shapley enumerates all 2^n coalitions and is limited "
            f"to {MAX_PLAYERS}; use a Monte Carlo method, e.g. --method tmc-shapley "
            "--method-budget 200."
        )
    tr, va = run.scale(raw_tr, raw_va)
    model = run.model(tr.y)
    started = time.monotonic()
    rows = prepare_market(tr, rounds=rounds, robust=robust)
    if rounds is None:
        valuation = run.value_one(rows.data, va, model, scoring=scoring, by_group=True)
    else:
        for value, flag in run.flags.values():
            if value is not None:
                notes.append(f"{flag} does not apply to --rounds (exact per round); ignored.")
        if run.method_json:
            notes.append("--method-params does not apply to --rounds (exact per round); ignored.")
        if run.checkpoint or run.resume:
            notes.append("--checkpoint/--resume do not apply to --rounds; ignored.")
        assert rows.rounds is not None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            valuation = federated_values(
                rows.data, va, rows.rounds, model=model, scoring=scoring, n_jobs=run.n_jobs
            )
        notes.add_warnings(caught)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = market_payouts(
            valuation,
            rows,
            budget,
            robust=robust,
            lam=lam,
            bandwidth=bandwidth,
            if_no_value=if_no_value,
        )
    notes.add_warnings(caught)
    assert int(result.table.cents.sum()) == cents
    if result.removed_duplicates:
        detail = ", ".join(f"{k}: {v}" for k, v in result.removed_duplicates.items())
        notes.append(
            f"dropped {sum(result.removed_duplicates.values())} row(s) that repeat a row of the "
            f"same provider ({detail}); copies of one's own data earn nothing (--no-robust "
            "keeps them)."
        )
    if rounds is not None:
        ids = result.valuation.metadata["rounds"]
        notes.append(
            f"rounds taken in increasing order of {rounds_col!r}: "
            f"{', '.join(map(str, ids[:10]))}{' ...' if len(ids) > 10 else ''}."
        )
    how = "federated-shapley" if rounds is not None else method
    metric = "r2" if scoring is None and tr.y.dtype.kind == "f" else (scoring or "accuracy")
    click.echo(
        f"market: {n_providers} providers, {tr.n_samples} rows valued with {how} "
        f"({type(model).__name__}, {metric} on {va.n_samples} valuation rows), budget "
        f"{result.table.budget}"
    )
    click.echo(_report(result))
    if out:
        result.table.to_csv(out)
    failed = result.valuation.metadata.get("n_failures", 0)
    extra = f", {failed} failed fit(s)" if failed else ""
    click.echo(
        f"valued {n_providers} providers in {time.monotonic() - started:.1f} s{extra}"
        + (f" -> {out}" if out else ""),
        err=True,
    )
    notes.flush()
