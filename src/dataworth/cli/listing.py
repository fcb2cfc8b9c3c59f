"""``dataworth methods`` and ``dataworth models``: what can be chosen, read from the registries.

Listing imports no method, estimator or model: each registry entry holds its own summary.
"""

from __future__ import annotations

import click

from dataworth.estimators import ESTIMATORS
from dataworth.methods import METHODS
from dataworth.models import MODELS

__all__ = ["methods", "models"]


@click.command()
def methods() -> None:
    """List every valuation method, then every estimator, with one line and its reference."""
    width = max(len(n) for n in [*METHODS, *ESTIMATORS])
    for name, entry in METHODS.items():
        click.echo(f"{name:<{width}}  {entry.summary}  [{entry.reference}]")
    click.echo("\nestimators (--estimator; for shapley, banzhaf and beta-shapley):")
    for name, entry in ESTIMATORS.items():
        only = "" if entry.semivalues is None else f" ({', '.join(sorted(entry.semivalues))} only)"
        click.echo(f"{name:<{width}}  {entry.summary}{only}  [{entry.reference}]")


@click.command()
def models() -> None:
    """List the model names accepted by --model."""
    for name, factory in MODELS.items():
        click.echo(f"{name:<20} {factory.__doc__}")
    click.echo(
        f"{'a.dotted.Class':<20} any estimator class (with fit and predict), e.g. "
        "sklearn.svm.SVC; this imports its module, which runs that module's code"
    )
