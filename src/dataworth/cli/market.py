"""``dataworth market``: value each data provider and split a budget among them, in cents."""

from __future__ import annotations

import textwrap
import time
import warnings
from typing import Any

import click
import numpy as np

from dataworth.api import federated_values
from dataworth.apps.market import (
    IF_NO_VALUE,
    PENALTIES,
    Marketplace,
    MarketResult,
    MarketSimulation,
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
from dataworth.data import Dataset, read_table
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


# ---------------------------------------------------------------------------------- buyers
def _read_buyers(path: str, target: str) -> tuple[list[str], np.ndarray]:
    """(buyer names, bids) from a CSV with a ``bid`` column (optional ``buyer``, ``target``)."""
    cols = read_table(path, text_columns=("buyer", "target", "task"))
    if "bid" not in cols:
        raise DataworthError(
            f"{path} needs a 'bid' column (one buyer per row); available columns: "
            f"{', '.join(map(repr, cols))}."
        )
    raw = cols["bid"]
    n = len(raw)
    if n == 0:
        raise DataworthError(f"{path} has no buyers.")
    try:
        bids = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataworthError(f"{path}: every bid must be a number >= 0.") from None
    bad = ~np.isfinite(bids) | (bids < 0)
    if bad.any():
        raise DataworthError(
            f"{path}: every bid must be a finite number >= 0; row {int(np.flatnonzero(bad)[0]) + 2}"
            " is not."
        )
    for col in ("target", "task"):
        if col in cols:
            other = sorted({str(t) for t in cols[col] if str(t) not in ("", target)})
            if other:
                raise DataworthError(
                    f"{path}: every buyer's {col} must be {target!r} (--target) or empty; got "
                    f"{', '.join(map(repr, other[:5]))}. Run one market per target."
                )
    names = [str(b) for b in cols["buyer"]] if "buyer" in cols else [str(i + 1) for i in range(n)]
    return names, bids


def _gain_function(model: Any, train: Dataset, valid: Dataset, metric: str) -> Any:
    """gain(X_degraded, task): the buyer's score of ``model`` trained on the degraded rows
    (at least 0)."""
    from sklearn.base import clone
    from sklearn.metrics import get_scorer

    scorer = get_scorer(metric)

    def gain(Xd: np.ndarray, task: object) -> float:
        try:
            fitted = clone(model).fit(Xd, train.y)
            return max(0.0, float(scorer(fitted, valid.X, valid.y)))
        except ValueError as exc:
            raise DataworthError(f"cannot fit the buyer's model on the sold data: {exc}") from None

    return gain


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _buyer_report(names: list[str], sim: MarketSimulation) -> str:
    rows = []
    paid = sim.payment_cents().tolist()
    for name, b, p, g, c in zip(names, sim.bids, sim.prices, sim.gains, paid, strict=True):
        rows.append([name, _num(float(b)), _num(float(p)), _num(float(g)), _money(c)])
    total = sim.revenue_cents()
    rows.append(["total", "", "", "", _money(total)])
    return format_table(["buyer", "bid", "price", "gain", "payment"], rows, "lrrrr")


# ---------------------------------------------------------------------------------- command
@click.command()
@click.argument("data", type=INPUT_FILE)
@target_option
@click.option("--group", required=True, help="Column naming the provider of each row.")
@click.option(
    "--budget",
    "budget",
    default=None,
    type=str,
    help="Amount to split among providers, in whole cents (e.g. 10000 or 2500.50); required "
    "unless --buyers (then the buyers' payments are split).",
)
@click.option(
    "--buyers",
    "buyers_path",
    type=INPUT_FILE,
    default=None,
    help="CSV of buyers, one per row, in arrival order: column 'bid' (money per unit of gain), "
    "optional 'buyer' (name) and 'target'. Simulates the marketplace of Agarwal, Dahleh & "
    "Sarkar (2019) and splits the revenue among providers.",
)
@click.option(
    "--prices",
    "n_prices",
    type=int,
    default=20,
    show_default=True,
    help="With --buyers: number of prices in the grid (price-max/N, ..., price-max).",
)
@click.option(
    "--price-max",
    type=float,
    default=None,
    help="With --buyers: the largest price (default 2 x the largest bid).",
)
@click.option(
    "--noise",
    type=float,
    default=4.0,
    show_default=True,
    help="With --buyers: noise added to the features, in standard deviations, when the gap "
    "price - bid is the largest price (proportional below).",
)
@click.option(
    "--eta",
    type=float,
    default=None,
    help="With --buyers: learning rate of the price update (default sqrt(8 ln K / buyers)).",
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
    "--penalty",
    type=click.Choice(PENALTIES),
    default=None,
    help="Robust values: 'replication' (copies; the default with --budget) or 'split' (also "
    "noisy copies and data split across identities; the default with --buyers).",
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
    budget: str | None,
    buyers_path: str | None,
    n_prices: int,
    price_max: float | None,
    noise: float,
    eta: float | None,
    out: str | None,
    valid_path: str | None,
    valid_fraction: float,
    scoring: str | None,
    robust: bool,
    lam: float,
    bandwidth: float | None,
    penalty: str | None,
    rounds_col: str | None,
    if_no_value: str,
    run: Run,
) -> None:
    """Value every provider (--group) of DATA and split --budget among them in proportion to
    positive value; print the payout table and the rule, and write provider,value,payout.

    With --buyers, simulate the buyers in order (price, gain and payment of each) and split the
    revenue instead of a budget."""
    if (budget is None) == (buyers_path is None):
        raise DataworthError(
            "give either --budget (an amount to split) or --buyers (split the buyers' payments)."
        )
    if buyers_path is not None:
        if n_prices < 1:
            raise DataworthError(f"--prices must be at least 1; got {n_prices}.")
        if price_max is not None and not (np.isfinite(price_max) and price_max > 0):
            raise DataworthError(f"--price-max must be a finite number > 0; got {price_max}.")
        if not (np.isfinite(noise) and noise >= 0):
            raise DataworthError(f"--noise must be a finite number >= 0; got {noise}.")
        if eta is not None and not (np.isfinite(eta) and eta > 0):
            raise DataworthError(f"--eta must be a finite number > 0; got {eta}.")
        buyer_names, bids = _read_buyers(buyers_path, target)
        cents = 0
    else:
        cents = budget_cents(budget)
    if penalty is None:
        penalty = "split" if buyers_path is not None else "replication"
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
    metric = "r2" if scoring is None and tr.y.dtype.kind == "f" else (scoring or "accuracy")
    sim: MarketSimulation | None = None
    if buyers_path is not None:
        top = float(price_max) if price_max is not None else 2.0 * float(bids.max())
        if top <= 0:
            raise DataworthError("every bid is 0; give --price-max.")
        grid = np.linspace(top / n_prices, top, n_prices)
        place = Marketplace(
            rows.data.X,
            _gain_function(model, rows.data, va, metric),
            price_grid=grid,
            noise_scale=float(noise) / top,
            seed=seed,
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sim = place.simulate(bids, eta=eta)
        notes.add_warnings(caught)
        cents = sim.revenue_cents()
        budget = _money(cents)
    assert budget is not None
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
            penalty=penalty,
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
    click.echo(
        f"market: {n_providers} providers, {tr.n_samples} rows valued with {how} "
        f"({type(model).__name__}, {metric} on {va.n_samples} valuation rows), "
        f"{'revenue' if sim is not None else 'budget'} {result.table.budget}"
    )
    if sim is not None:
        click.echo(
            f"buyers: {sim.bids.size} from {buyers_path}; price grid {sim.price_grid.size} prices "
            f"up to {_num(float(sim.price_grid[-1]))}; data degraded by noise of {_num(noise)} "
            "standard deviations x (price - bid) / largest price; payment = bid x gain - "
            "integral of the gain over bids below (Myerson); price drawn from multiplicative "
            "weights over the grid, updated by each price's revenue (Agarwal, Dahleh & Sarkar "
            "2019)."
        )
        click.echo(_buyer_report(buyer_names, sim))
        click.echo(
            f"revenue {result.table.budget}; final price distribution peaks at "
            f"{_num(sim.best_price())}. Revenue split:"
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
