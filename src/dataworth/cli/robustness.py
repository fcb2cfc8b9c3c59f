"""``dataworth robustness``: can dropping a few rows flip a regression conclusion (AMIP)?

Rows with a missing value in any column the command uses (target, features, instruments) are
dropped with a note; every row index the command prints or writes is a 0-based data row of the
input file (header excluded), whether or not rows were dropped for missing values.
"""

from __future__ import annotations

import json
import math
from typing import Any

import click
import numpy as np
from numpy.typing import NDArray

from dataworth.apps.robustness import (
    COV_TYPES,
    DEFAULT_MAX_FRACTION,
    MODELS,
    MODES,
    RobustnessResult,
    amip,
    parse_change,
)
from dataworth.cli._common import INPUT_FILE, OUTPUT_FILE, Notes, check_positive, write_text
from dataworth.data import LARGEST_VALUE, read_table
from dataworth.errors import DataworthError

__all__ = ["robustness"]

#: Most row indices printed in the table; --json has them all.
_SHOW_ROWS = 30


def _column_list(text: str | None, option: str) -> list[str]:
    if text is None:
        return []
    names = [c.strip() for c in text.split(",")]
    if any(not c for c in names):
        raise DataworthError(
            f"{option} must be comma-separated column names without empty entries; got {text!r}."
        )
    seen: set[str] = set()
    for c in names:
        if c in seen:
            raise DataworthError(f"{option} lists the column {c!r} twice.")
        seen.add(c)
    return names


def _numeric(name: str, col: NDArray[Any], source: str) -> NDArray[np.float64]:
    """The column as floats (empty cells: NaN); a non-numeric cell is a user error."""
    arr = np.asarray(col)
    if arr.dtype.kind in "biuf":
        return arr.astype(np.float64)
    out = np.empty(arr.shape[0], dtype=np.float64)
    for i, v in enumerate(arr.tolist()):
        if v is None or (isinstance(v, str) and v.strip() == ""):
            out[i] = math.nan
            continue
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            raise DataworthError(
                f"column {name!r} in {source} is not numeric (data row {i} holds "
                f"{str(v)[:40]!r}); encode it as numbers or leave it out."
            ) from None
    return out


def _fmt(x: float) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.6g}"


def _table(res: RobustnessResult, rows: list[int], source: str) -> str:
    level = f"{100 * (1 - res.alpha):g}% CI"
    se_name = {"classical": "classical", "hc0": "HC0", "hc1": "HC1"}[res.se]
    lines = [
        f"robustness of {res.coef!r} to dropping rows ({res.model}, {se_name} SE, "
        f"mode {res.mode}, alpha {res.alpha:g})",
        f"target        {res.target}",
        f"rows to drop  {res.n_dropped} of {res.n_samples} ({100 * res.fraction_dropped:.2f}%; "
        f"at most {100 * res.max_fraction:g}% allowed)",
        "achieved      "
        + ("yes (the refit without these rows reaches the target)" if res.achieved else "no"),
        "",
        f"{'':<11}{'estimate':>12}{'SE':>12}   {level}",
    ]
    for label, est, se, ci in (
        ("original", res.original_estimate, res.original_se, res.original_ci),
        ("predicted", res.predicted_estimate, res.predicted_se, res.predicted_ci),
        ("refitted", res.refit_estimate, res.refit_se, res.refit_ci),
    ):
        lines.append(f"{label:<11}{_fmt(est):>12}{_fmt(se):>12}   [{_fmt(ci[0])}, {_fmt(ci[1])}]")
    lines.append("")
    lines.append(f"how: {res.message}")
    if rows:
        shown = " ".join(str(r) for r in rows[:_SHOW_ROWS])
        more = ""
        if len(rows) > _SHOW_ROWS:
            more = f" ... ({len(rows)} in all; --json lists every one)"
        lines.append(f"rows to drop (0-based data rows of {source}): {shown}{more}")
    return "\n".join(lines)


@click.command()
@click.argument("data", type=INPUT_FILE)
@click.option("--target", required=True, help="Outcome column (0/1 for --model logit).")
@click.option(
    "--features",
    required=True,
    help="Comma-separated regressor columns; an intercept is added.",
)
@click.option(
    "--coef",
    required=True,
    help="Coefficient to test: one of --features, or 'intercept' (alias 'const').",
)
@click.option(
    "--change",
    required=True,
    help="sign | significance | opposite-significance | DELTA (move the coefficient by DELTA, "
    "signed; write --change=-0.5 for a negative move).",
)
@click.option(
    "--model", type=click.Choice(MODELS), default="ols", show_default=True, help="Estimator."
)
@click.option(
    "--se",
    type=click.Choice(COV_TYPES),
    default="classical",
    show_default=True,
    help="Standard errors: classical, or heteroskedasticity-robust hc0/hc1 (OLS, 2SLS).",
)
@click.option(
    "--alpha",
    type=float,
    default=0.05,
    show_default=True,
    help="Level for significance targets (normal critical value).",
)
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="first-order",
    show_default=True,
    help="first-order (AMIP), greedy (refit after each drop) or newton (one-step refits).",
)
@click.option(
    "--endog", default=None, help="2SLS: comma-separated endogenous columns of --features."
)
@click.option(
    "--instruments", default=None, help="2SLS: comma-separated excluded instrument columns."
)
@click.option(
    "--max-fraction",
    type=float,
    default=DEFAULT_MAX_FRACTION,
    show_default=True,
    help="Largest share of rows that may be dropped.",
)
@click.option(
    "--refit-every",
    type=int,
    default=None,
    help="Greedy mode: rows dropped between refits (default 1, or max rows / 100 when larger).",
)
@click.option(
    "--json",
    "json_path",
    type=OUTPUT_FILE,
    default=None,
    help="Also write the full result as JSON here.",
)
def robustness(
    data: str,
    target: str,
    features: str,
    coef: str,
    change: str,
    model: str,
    se: str,
    alpha: float,
    mode: str,
    endog: str | None,
    instruments: str | None,
    max_fraction: float,
    refit_every: int | None,
    json_path: str | None,
) -> None:
    """How many rows of DATA must be dropped to change a regression conclusion?

    Fits the model with an intercept, ranks the rows by their influence on the coefficient (or
    on its confidence interval) and finds an approximately minimal set whose removal flips its
    sign, removes or reverses its significance, or moves it by DELTA; then refits without the set
    to check (Broderick, Giordano & Meager's Approximate Maximum Influence Perturbation).
    """
    parse_change(change)  # bad strings fail before the data are read
    if not 0.0 < alpha < 1.0:
        raise DataworthError(f"--alpha must be strictly between 0 and 1; got {alpha:g}.")
    if not 0.0 < max_fraction < 1.0:
        raise DataworthError(
            f"--max-fraction must be strictly between 0 and 1; got {max_fraction:g}."
        )
    check_positive(refit_every, "--refit-every")
    feats = _column_list(features, "--features")
    endo = _column_list(endog, "--endog")
    insts = _column_list(instruments, "--instruments")
    if model != "2sls" and (endo or insts):
        raise DataworthError("--endog and --instruments apply only to --model 2sls.")
    if model == "2sls" and not (endo and insts):
        raise DataworthError(
            "--model 2sls needs --endog (endogenous columns among --features) and --instruments "
            "(excluded instruments)."
        )
    if target in feats:
        raise DataworthError(f"the target {target!r} is also listed in --features.")
    for name in endo:
        if name not in feats:
            raise DataworthError(f"--endog column {name!r} is not one of --features.")
    for name in insts:
        if name in feats or name == target:
            raise DataworthError(
                f"--instruments column {name!r} is also the target or a feature; excluded "
                "instruments must be other columns."
            )
    if se != "classical" and model == "logit":
        raise DataworthError(
            "--model logit supports only --se classical (the inverse Fisher information)."
        )

    columns = read_table(data)
    used = [target, *feats, *insts]
    for name in used:
        if name not in columns:
            available = ", ".join(map(repr, list(columns)[:20]))
            more = ", ..." if len(columns) > 20 else ""
            raise DataworthError(
                f"column {name!r} not found in {data}; available columns: {available}{more}."
            )
    values = {name: _numeric(name, columns[name], data) for name in used}
    n_file = len(values[target])
    for name, col in values.items():
        if np.isinf(col).any():
            row = int(np.flatnonzero(np.isinf(col))[0])
            raise DataworthError(f"column {name!r} has an infinite value at data row {row}.")
        big = np.abs(np.nan_to_num(col)) > LARGEST_VALUE
        if big.any():
            row = int(np.flatnonzero(big)[0])
            raise DataworthError(
                f"column {name!r} has a value beyond {LARGEST_VALUE:.0e} at data row {row}; "
                "its square overflows in the fit: rescale it."
            )
    missing = np.zeros(n_file, dtype=bool)
    for col in values.values():
        missing |= np.isnan(col)
    rows_used = np.flatnonzero(~missing)
    notes = Notes()
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        if rows_used.size == 0:
            raise DataworthError(f"every row of {data} has a missing value in the used columns.")
        notes.append(
            f"dropped {int(missing.sum())} row(s) with missing values in the used columns (first "
            f"at data row {first}); the model uses {rows_used.size} rows, and row indices still "
            f"refer to the data rows of {data}."
        )

    intercept = next(
        (c for c in ("intercept", "const", "(intercept)") if c not in feats), "(intercept)"
    )
    names = [intercept, *feats]
    if coef in feats:
        coef_name = coef
    elif coef.lower() in ("intercept", "const", "(intercept)"):
        coef_name = intercept
    else:
        raise DataworthError(
            f"--coef {coef!r} is not a coefficient; choose one of "
            f"{', '.join(map(repr, ['intercept', *feats]))}."
        )
    X = np.column_stack([np.ones(rows_used.size)] + [values[c][rows_used] for c in feats])
    y = values[target][rows_used]
    W = np.column_stack([values[c][rows_used] for c in insts]) if insts else None
    result = amip(
        X,
        y,
        coef_name,
        change,
        model=model,
        se=se,
        alpha=alpha,
        mode=mode,
        instruments=W,
        endog=endo or None,
        max_fraction=max_fraction,
        feature_names=names,
        instrument_names=insts or None,
        refit_every=refit_every,
    )
    file_rows = [int(rows_used[i]) for i in result.indices]
    if json_path is not None:
        payload = result.to_dict()
        payload["indices"] = file_rows
        payload.update(
            {
                "indices_refer_to": f"0-based data rows of {data} (header excluded)",
                "data": data,
                "outcome_column": target,
                "features": feats,
                "endog": endo,
                "instruments": insts,
                "n_rows_in_file": n_file,
                "rows_dropped_for_missing_values": np.flatnonzero(missing).tolist(),
            }
        )
        write_text(json_path, json.dumps(payload, indent=2) + "\n")
    click.echo(_table(result, file_rows, data))
    if json_path is not None:
        notes.append(f"result written to {json_path}.")
    notes.flush()
