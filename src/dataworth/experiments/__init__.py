"""Experiment harnesses: studies that value data and measure an application, in one call.

The applications (:mod:`dataworth.apps`) take values computed by the caller; these studies are
such callers, kept apart from the library so that it stays a set of tools:

- :func:`noisy_valuation_comparison`: every method valued with the valuation set as given and
  with noisy labels in it, judged on a held-out split (``dataworth clean --valid-noise``);
- :func:`poisoning_study`: held-out error as influence-poisoned rows grow, and how well values
  flag and remove them (:mod:`dataworth.apps.poison`);
- :func:`watermark_study`: whether removing the lowest-valued rows removes a trigger-set
  watermark (:func:`dataworth.apps.attacks.watermark_removal`);
- :func:`transfer_prune`: the transfer-pruning workflow of Schoch, Mishra & Ji (2023): embed,
  value with a proxy, prune (:func:`dataworth.apps.prune.prune_by_curve`).

They value through :mod:`dataworth.api` (with ``dataworth clean``'s fast method defaults,
:data:`dataworth.apps.clean.DEFAULT_METHOD_PARAMS`, where a study runs several methods).
"""

from __future__ import annotations

from dataworth.experiments.noisy_valid import NoisyValuationComparison, noisy_valuation_comparison
from dataworth.experiments.poisoning import (
    DEFAULT_POISON_FRACTIONS,
    PoisoningStudy,
    poisoning_study,
)
from dataworth.experiments.transfer import transfer_prune
from dataworth.experiments.watermark import watermark_study

__all__ = [
    "DEFAULT_POISON_FRACTIONS",
    "NoisyValuationComparison",
    "PoisoningStudy",
    "noisy_valuation_comparison",
    "poisoning_study",
    "transfer_prune",
    "watermark_study",
]
