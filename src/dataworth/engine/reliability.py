"""How much to trust a Monte Carlo result: noise, split-half agreement, the budget it needs.

After every Monte Carlo run the result records (in its metadata) and says (in its notes):

* ``share_near_zero``: the share of finite values indistinguishable from zero, ``|value| <
  2 stderr`` (about a 95% interval that holds 0);
* ``split_half_spearman``: Spearman's correlation between the values estimated from each of two
  independent halves of the samples (pairs of consecutive samples alternate; see
  :mod:`dataworth.engine.runner`);
* when that correlation is below :data:`UNRELIABLE` (0.5: the two halves share less than a
  quarter of their rank variance, so a ranking of the rows is mostly noise), a
  ``suggested_budget``: the budget at which two halves would agree at :data:`TARGET` (0.9).

The suggestion extrapolates with the Spearman-Brown formula: when two halves of ``m`` samples
each correlate ``r``, halves ``k`` times as long correlate ``r_k = k r / (1 + (k - 1) r)``,
so reaching ``T`` takes ``k = T (1 - r) / (r (1 - T))`` times the samples. It assumes that the
values' noise shrinks as one over the samples, as for a mean, and is a rough guide: a rerun
with ``--rank-stable 0.9`` stops once the halves do agree.

Examples
--------
>>> round(spearman_brown_factor(0.5, 0.9), 6)
9.0
>>> share_near_zero([0.1, 1.0, -2.0, float("nan")], [0.1, 0.1, 0.5, 0.1])
0.3333333333333333
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from dataworth.engine.stopping import RankStable

__all__ = [
    "TARGET",
    "UNRELIABLE",
    "reliability",
    "reliability_notes",
    "share_near_zero",
    "spearman_brown_factor",
]

#: Below this split-half Spearman correlation a ranking is called unreliable.
UNRELIABLE = 0.5
#: The split-half correlation a suggested budget aims at.
TARGET = 0.9


def share_near_zero(values: ArrayLike, stderr: ArrayLike) -> float | None:
    """The share of values within two standard errors of zero, among those with a finite value
    and standard error (None when there are none)."""
    v = np.asarray(values, dtype=np.float64)
    se = np.asarray(stderr, dtype=np.float64)
    ok = np.isfinite(v) & np.isfinite(se)
    if not ok.any():
        return None
    return float(np.mean(np.abs(v[ok]) < 2 * se[ok]))


def spearman_brown_factor(r: float, target: float = TARGET) -> float:
    """How many times the samples two halves correlating ``r`` need to correlate ``target``
    (infinite for ``r <= 0``)."""
    if r >= target:
        return 1.0
    if r <= 0:
        return math.inf
    return target * (1 - r) / (r * (1 - target))


def reliability(
    values: ArrayLike,
    stderr: ArrayLike,
    halves: tuple[ArrayLike, ArrayLike] | None,
    budget_used: int,
) -> dict[str, Any]:
    """The metadata entries described in the module docstring.

    ``halves`` are the values of the two halves (None: not known); ``budget_used`` is the run's
    budget spent, in the unit of its ``budget`` (samples or utility evaluations).
    """
    out: dict[str, Any] = {}
    share = share_near_zero(values, stderr)
    if share is not None:
        out["share_near_zero"] = round(share, 4)
    if halves is None or np.asarray(values).size < 3:
        return out
    a, b = (np.asarray(h, dtype=np.float64) for h in halves)
    if (np.isfinite(a) & np.isfinite(b)).sum() < 3:
        return out
    r = RankStable.correlation(a, b)
    out["split_half_spearman"] = round(r, 4)
    if r < UNRELIABLE:
        factor = spearman_brown_factor(r)
        if math.isfinite(factor):
            out["suggested_budget"] = int(math.ceil(factor * max(budget_used, 1)))
    return out


def reliability_notes(metadata: dict[str, Any], what: str = "values") -> list[str]:
    """The notes a result's reliability entries call for (see :func:`reliability`)."""
    notes = []
    share = metadata.get("share_near_zero")
    if share is not None:
        notes.append(
            f"{100 * share:.1f}% of the {what} are indistinguishable from zero "
            "(|value| < 2 standard errors)."
        )
    r = metadata.get("split_half_spearman")
    if r is None:
        return notes
    line = f"split-half reliability: the two halves of the samples rank the {what} with "
    line += f"Spearman correlation {r:.2f}"
    if r >= UNRELIABLE:
        notes.append(line + ".")
        return notes
    line += f", below {UNRELIABLE:g}: the ranking is mostly noise; "
    budget = metadata.get("suggested_budget")
    if budget is not None:
        line += (
            f"a budget of about {budget} would bring it to {TARGET:g} (Spearman-Brown "
            "extrapolation, a rough guide: rows of nearly equal value never rank stably; "
            f"`dataworth value --rank-stable {TARGET:g}` stops once the halves agree)."
        )
    else:
        line += (
            "the halves do not agree at all, so no budget can be extrapolated: raise the "
            "budget tenfold, or try another method."
        )
    notes.append(line)
    return notes
