"""Declarative parameter constraints and the one validator that checks them.

A class lists, in ``_parameter_constraints``, what each constructor parameter may be (as
scikit-learn does): a list of :class:`Interval`, :class:`Options`, :class:`InstanceOf`, or
``None`` (the value None is allowed). :func:`validate_params` checks every parameter against its
list and refuses the first that matches none, saying what was expected.

Examples
--------
>>> from numbers import Integral, Real
>>> constraints = {"k": [Interval(Integral, 1, None)], "tol": [Interval(Real, 0, 1), None]}
>>> validate_params("demo", {"k": 3, "tol": None}, constraints)
>>> validate_params("demo", {"k": 0, "tol": None}, constraints)
Traceback (most recent call last):
...
dataworth.errors.DataworthError: k must be a positive whole number; got 0.
>>> str(Interval(Real, 0, 1, closed="neither"))
'a number in (0, 1)'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from numbers import Integral, Real
from typing import Any, Literal

from dataworth.errors import DataworthError

__all__ = ["Constraint", "InstanceOf", "Interval", "Options", "validate_params"]


class Interval:
    """Whole numbers (``Integral``) or real numbers (``Real``) between ``left`` and ``right``.

    ``None`` for a bound leaves that side open-ended; ``closed`` says which bounds belong.
    Booleans are never numbers here, and NaN is in no interval.
    """

    def __init__(
        self,
        kind: type,
        left: float | None,
        right: float | None,
        *,
        closed: Literal["both", "left", "right", "neither"] = "both",
    ) -> None:
        if kind not in (Integral, Real):
            raise TypeError("kind must be numbers.Integral or numbers.Real")
        self.kind, self.left, self.right, self.closed = kind, left, right, closed

    def __contains__(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, self.kind):
            return False
        x = float(value)
        lo, hi = self.left, self.right
        below = lo is not None and (x < lo or (x == lo and self.closed in ("right", "neither")))
        above = hi is not None and (x > hi or (x == hi and self.closed in ("left", "neither")))
        return not (math.isnan(x) or below or above)

    def __str__(self) -> str:
        whole = self.kind is Integral
        noun = "whole number" if whole else "number"
        lo, hi = self.left, self.right
        if hi is None and lo is not None:
            if (whole and lo == 1) or (not whole and lo == 0 and self.closed == "neither"):
                return f"a positive {noun}"
            if lo == 0 and self.closed in ("both", "left"):
                return f"a non-negative {noun}"
            return f"a {noun} {'>=' if self.closed in ('both', 'left') else '>'} {lo:g}"
        if lo is None and hi is not None:
            return f"a {noun} {'<=' if self.closed in ('both', 'right') else '<'} {hi:g}"
        if lo is None and hi is None:
            return f"a {noun}"
        opening = "[" if self.closed in ("both", "left") else "("
        closing = "]" if self.closed in ("both", "right") else ")"
        return f"a {noun} in {opening}{lo:g}, {hi:g}{closing}"


class Options:
    """One of the given values (compared with ``==``; booleans and numbers kept apart)."""

    def __init__(self, values: Iterable[Any]) -> None:
        self.values = tuple(values)

    def __contains__(self, value: object) -> bool:
        return any(type(value) is type(v) and value == v for v in self.values)

    def __str__(self) -> str:
        return f"one of {', '.join(map(repr, self.values))}"


class InstanceOf:
    """An instance of any of the given types, described by ``what``."""

    def __init__(self, types: type | tuple[type, ...], what: str) -> None:
        self.types, self.what = types, what

    def __contains__(self, value: object) -> bool:
        return isinstance(value, self.types)

    def __str__(self) -> str:
        return self.what


Constraint = Interval | Options | InstanceOf | None


def _allowed(value: Any, constraints: Sequence[Constraint]) -> bool:
    return any(value is None if c is None else value in c for c in constraints)


def validate_params(
    owner: str, params: Mapping[str, Any], constraints: Mapping[str, Sequence[Constraint]]
) -> None:
    """Refuse the first parameter of ``params`` allowed by none of its ``constraints``.

    Only the parameters ``params`` holds are checked (a base class may constrain parameters
    that not every subclass has); ``owner`` names the class.

    Raises
    ------
    DataworthError
        ``NAME must be WHAT [or WHAT...]; got VALUE.``
    """
    for name, allowed in constraints.items():
        if name not in params:
            continue
        value = params[name]
        if not _allowed(value, allowed):
            what = [str(c) for c in allowed if c is not None] + ["None"] * (None in allowed)
            raise DataworthError(f"{name} must be {' or '.join(what)}; got {value!r}.")
