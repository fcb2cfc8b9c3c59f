"""``dataworth influencers``: the training rows that most raise and lower one test row's loss."""

from __future__ import annotations

import json

import click
import numpy as np

from dataworth.cli._common import (
    INPUT_FILE,
    OUTPUT_FILE,
    Notes,
    build_model,
    check_positive,
    check_row,
    data_options,
    format_cell,
    format_table,
    load_train_test,
    model_options,
    seed_option,
    standardize_option,
    standardized,
    target_option,
    write_text,
)
from dataworth.influence import LinearInfluence, influence_matrix

__all__ = ["influencers"]

_MAX_SHOWN_FEATURES = 6


@click.command()
@click.argument("train", type=INPUT_FILE)
@target_option
@data_options()
@click.option(
    "--test",
    "test_path",
    type=INPUT_FILE,
    required=True,
    help="File with the test rows (same columns).",
)
@click.option("--row", "row", required=True, type=int, help="0-based row of TEST to explain.")
@click.option(
    "--top", type=int, default=5, show_default=True, help="Training rows listed on each side."
)
@model_options(
    "logistic-regression (default for labels), ridge or linear-regression (default for "
    "real targets); closed-form influence with the exact Hessian."
)
@click.option(
    "--damping", type=float, default=0.0, show_default=True, help="Added to the Hessian diagonal."
)
@standardize_option
@seed_option
@click.option(
    "--json",
    "json_path",
    type=OUTPUT_FILE,
    default=None,
    help="Also write the full lists as JSON here.",
)
def influencers(
    train: str,
    target: str,
    test_path: str,
    row: int,
    top: int,
    model_name: str | None,
    model_params: str | None,
    damping: float,
    standardize: bool,
    seed: int,
    json_path: str | None,
) -> None:
    """List the rows of TRAIN that most raise and most lower the loss of row --row of --test.

    Influence I(z, test loss) = -grad L(test)^T H^-1 grad L(z) (Koh & Liang 2017): up-weighting
    a training row with positive influence raises the test row's loss; removing it would lower
    the loss by about I / n.
    """
    check_positive(top, "--top")
    notes = Notes()
    tr, te = load_train_test(train, test_path, target)
    check_row(row, test_path, te.n_samples)
    row %= te.n_samples
    raw_train, raw_test = tr.X, te.X  # shown as given, even when standardised for the fit
    if standardize:
        tr, te = standardized(notes, tr, te)
    model = build_model(model_name, model_params, tr.y, seed)
    influence = LinearInfluence(model, tr.X, tr.y, damping=damping)
    x_test, y_test = te.X[row : row + 1], te.y[row : row + 1]
    scores = influence_matrix(influence, x_test, y_test)[:, 0]
    order = np.argsort(scores, kind="stable")
    k = min(top, tr.n_samples)
    raise_rows = order[::-1][:k]
    lower_rows = order[:k]
    fitted = influence.model_
    predicted = fitted.predict(x_test)[0]
    loss_grad_name = "log-loss" if influence.kind == "logistic" else "squared error"
    shown = list(tr.feature_names[:_MAX_SHOWN_FEATURES])
    more = len(tr.feature_names) - len(shown)

    def listing(rows: np.ndarray) -> str:
        body = [
            [
                str(int(tr.row_labels[i])),
                f"{scores[i]:+.4g}",
                f"{-scores[i] / tr.n_samples:+.3g}",
                format_cell(tr.y[i]),
                format_cell(fitted.predict(tr.X[i : i + 1])[0]),
                *(format_cell(v) for v in raw_train[i, : len(shown)]),
            ]
            for i in rows
        ]
        header = ["row", "influence", "loss change if removed", "label", "predicted", *shown]
        return format_table(header, body)

    test_features = ", ".join(
        f"{n}={format_cell(v)}" for n, v in zip(shown, raw_test[row, : len(shown)], strict=True)
    )
    click.echo(
        f"test row {row} of {test_path}: label {format_cell(te.y[row])}, "
        f"predicted {format_cell(predicted)}"
        f"; {test_features}{f' (+{more} more features)' if more > 0 else ''}"
    )
    click.echo(
        f"model: {type(fitted).__name__}, loss: {loss_grad_name}, {tr.n_samples} training rows, "
        f"damping {damping:g}, Hessian: {influence.hessian_method}"
    )
    click.echo(f"\nrows of {train} that most RAISE this loss (harmful to this prediction):")
    click.echo(listing(raise_rows))
    click.echo(f"\nrows of {train} that most LOWER this loss (helpful to this prediction):")
    click.echo(listing(lower_rows))
    click.echo(
        "\ninfluence = -grad L(test)^T H^-1 grad L(row); 'loss change if removed' is the "
        "first-order estimate -influence / n. Rows are 0-based data rows of the file."
    )
    if json_path:
        payload = {
            "test_file": test_path,
            "test_row": row,
            "test_label": format_cell(te.y[row]),
            "predicted": format_cell(predicted),
            "model": type(fitted).__name__,
            "damping": damping,
            "n_train": tr.n_samples,
            "raise_loss": [
                {"row": int(tr.row_labels[i]), "influence": float(scores[i])} for i in raise_rows
            ],
            "lower_loss": [
                {"row": int(tr.row_labels[i]), "influence": float(scores[i])} for i in lower_rows
            ],
            "influence": [float(v) for v in scores],
        }
        write_text(json_path, json.dumps(payload, indent=2))
    notes.flush()
