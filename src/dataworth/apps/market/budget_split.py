"""Splitting a money budget among providers in proportion to value, in whole cents.

:func:`payouts` gives each provider with a positive value its share of the budget, rounded to
whole cents by the largest-remainder rule so that the payouts sum exactly to the budget, and
states the rule it used in words; :func:`budget_cents` reads and checks a budget.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dataworth.errors import DataworthError
from dataworth.fileio import atomic_output, spreadsheet_safe
from dataworth.result import ValuationResult

__all__ = [
    "IF_NO_VALUE",
    "MAX_BUDGET_CENTS",
    "Payouts",
    "budget_cents",
    "payouts",
]


#: Largest budget, in cents (payouts are held in 64-bit integers).
MAX_BUDGET_CENTS = 10**18

#: What :func:`payouts` does when no provider has a positive value.
IF_NO_VALUE: tuple[str, ...] = ("refuse", "equal")

_ROUNDING = (
    "each amount is rounded down to whole cents and the cents left over go one each to the "
    "largest remainders (ties: larger value first, then the order of the providers), so the "
    "payouts sum exactly to the budget"
)


def budget_cents(budget: Any) -> int:
    """The budget as a whole number of cents; refuses negative, non-finite or sub-cent budgets.

    Examples
    --------
    >>> budget_cents(10000), budget_cents("0.07"), budget_cents(12.5)
    (1000000, 7, 1250)
    """
    if isinstance(budget, bool):
        raise DataworthError(f"budget must be an amount of money; got {budget!r}.")
    try:
        amount = Decimal(budget) if isinstance(budget, (int, Decimal)) else Decimal(str(budget))
    except (InvalidOperation, ValueError, TypeError):
        raise DataworthError(
            f"budget must be a number such as 10000 or 2500.50; got {budget!r}."
        ) from None
    if not amount.is_finite() or amount < 0:
        raise DataworthError(f"budget must be a finite amount >= 0; got {budget!r}.")
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise DataworthError(
            f"budget must be a whole number of cents (at most 2 decimals); got {budget!r}."
        )
    if cents > MAX_BUDGET_CENTS:
        raise DataworthError(
            f"budget must be at most {MAX_BUDGET_CENTS // 100} (whole cents are counted in 64-bit "
            f"integers); got {budget!r}."
        )
    return int(cents)


def _fmt_cents(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


@dataclass(frozen=True, eq=False)
class Payouts:
    """A payout table: one row per provider with its value and its payout in cents.

    Attributes
    ----------
    providers : ndarray
        Provider names, in the order given.
    values : ndarray of float
        The values the budget was split by.
    cents : ndarray of int
        Payouts in whole cents; they sum exactly to ``budget_cents``.
    budget_cents : int
    rule : str
        The splitting rule, in words.
    """

    providers: NDArray[Any]
    values: NDArray[np.float64]
    cents: NDArray[np.int64]
    budget_cents: int
    rule: str

    def __len__(self) -> int:
        return int(self.cents.shape[0])

    @property
    def amounts(self) -> list[Decimal]:
        """Payouts as exact decimal amounts (two decimals)."""
        return [Decimal(_fmt_cents(int(c))) for c in self.cents]

    @property
    def payouts(self) -> NDArray[np.float64]:
        """Payouts as floats (``cents / 100``); use :attr:`amounts` or :attr:`cents` to add up."""
        return np.asarray(self.cents, dtype=np.float64) / 100.0

    @property
    def budget(self) -> Decimal:
        """The budget as an exact decimal amount."""
        return Decimal(_fmt_cents(self.budget_cents))

    def rows(self) -> list[tuple[str, str, str]]:
        """``(provider, value, payout)`` rows as written to CSV (value with 17 digits; a provider
        name that a spreadsheet would run as a formula starts with ``'``, see
        :func:`dataworth.fileio.spreadsheet_safe`)."""
        return [
            (spreadsheet_safe(str(p)), f"{v:.17g}", _fmt_cents(int(c)))
            for p, v, c in zip(self.providers.tolist(), self.values, self.cents, strict=True)
        ]

    def to_csv(self, path: str | Path) -> Path:
        """Write ``provider,value,payout`` rows to ``path``."""
        out = Path(path)
        try:
            with atomic_output(out, newline="") as fh:
                writer = csv.writer(fh, lineterminator="\n")
                writer.writerow(["provider", "value", "payout"])
                writer.writerows(self.rows())
        except OSError as exc:
            raise DataworthError(f"cannot write {path}: {exc.strerror or exc}") from None
        return out

    def to_frame(self) -> Any:
        """A pandas DataFrame with columns provider, value, payout (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise DataworthError('to_frame needs pandas: pip install "dataworth[pandas]"') from None
        return pd.DataFrame(
            {"provider": self.providers, "value": self.values, "payout": self.payouts}
        )


def _largest_remainder(
    weights: Sequence[Fraction], total_cents: int, tie_values: Sequence[float]
) -> list[int]:
    """Split ``total_cents`` in proportion to positive ``weights`` (exact rational arithmetic)."""
    total = sum(weights, Fraction(0))
    quotas = [total_cents * w / total for w in weights]
    floors = [q.numerator // q.denominator for q in quotas]
    left = total_cents - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - floors[i]), -tie_values[i], i))
    for i in order[:left]:
        floors[i] += 1
    return floors


def payouts(
    values: ValuationResult | ArrayLike,
    budget: Any,
    *,
    providers: ArrayLike | None = None,
    if_no_value: str = "refuse",
) -> Payouts:
    """Split ``budget`` among providers in proportion to their positive values, in whole cents.

    Rule: provider ``m`` with ``v_m > 0`` gets ``budget * v_m / sum of positive values``;
    providers with ``v_m <= 0`` get 0. Each amount is rounded down to whole cents and the cents
    left over (fewer than the number of paid providers) go one each to the largest remainders;
    ties go to the larger value, then to the provider that comes first. The arithmetic is exact
    (rationals), so the payouts are non-negative and sum exactly to the budget.

    Parameters
    ----------
    values : ValuationResult or array-like of float
        One finite value per provider.
    budget : number or str
        Amount to split, ``>= 0``, in whole cents (``10000``, ``"2500.50"``).
    providers : array-like, optional
        Provider names; default the result's labels, or ``0..n-1`` for a plain array.
    if_no_value : {"refuse", "equal"}, default="refuse"
        When no provider has a positive value: ``"refuse"`` raises a :class:`DataworthError`
        (nobody's data helped, so there is nothing to pay for), ``"equal"`` splits the budget
        equally (the same largest-remainder rounding, extra cents to the first providers).

    Returns
    -------
    Payouts

    Examples
    --------
    >>> t = payouts([2.0, 1.0, 0.0], "10.00", providers=["x", "y", "z"])
    >>> t.rows()
    [('x', '2', '6.67'), ('y', '1', '3.33'), ('z', '0', '0.00')]
    """
    if isinstance(values, ValuationResult):
        names = values.labels if providers is None else np.asarray(providers)
        v = np.asarray(values.values, dtype=np.float64)
    else:
        v = np.asarray(values, dtype=np.float64)
        names = np.arange(v.size) if providers is None else np.asarray(providers)
    if v.ndim != 1 or v.size == 0:
        raise DataworthError(f"values must be a non-empty 1-D array; got shape {v.shape}.")
    if names.shape != v.shape:
        raise DataworthError(f"providers has {names.size} names for {v.size} values.")
    if not np.all(np.isfinite(v)):
        bad = names[~np.isfinite(v)].tolist()
        raise DataworthError(
            f"values must be finite; provider(s) {', '.join(map(str, bad[:5]))} have NaN or "
            "infinite values."
        )
    if if_no_value not in IF_NO_VALUE:
        raise DataworthError(f"if_no_value must be one of {IF_NO_VALUE}; got {if_no_value!r}.")
    total = budget_cents(budget)
    cents = np.zeros(v.size, dtype=np.int64)
    positive = np.flatnonzero(v > 0)
    if positive.size:
        shares = _largest_remainder(
            [Fraction(float(x)) for x in v[positive]], total, v[positive].tolist()
        )
        cents[positive] = shares
        rule = (
            "payout = budget x value / (sum of positive values) for each provider with value "
            f"> 0; providers with value <= 0 get 0; {_ROUNDING}."
        )
    elif if_no_value == "equal":
        cents[:] = _largest_remainder([Fraction(1)] * v.size, total, [0.0] * v.size)
        rule = (
            "no provider has a positive value, so the budget is split equally (if_no_value="
            f"'equal'); {_ROUNDING}."
        )
    else:
        raise DataworthError(
            f"no provider has a positive value (largest: {float(v.max()):.4g}), so there is "
            "nothing to pay for; check the valuation set and model, or split equally "
            "(if_no_value='equal', --if-no-value equal)."
        )
    assert int(cents.sum()) == total and (cents >= 0).all()
    return Payouts(providers=names, values=v, cents=cents, budget_cents=total, rule=rule)
