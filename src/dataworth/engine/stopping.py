"""Stopping criteria, composable with ``|`` (either) and ``&`` (both).

Each criterion sees a :class:`Status` after every round, says whether to stop, reports its
completion in [0, 1] for the progress bar, may cap how many more samples to draw (so a
budget is met exactly, independently of the round size), and may say how many seconds are left
(so a time limit is also checked inside a round, between chunks).

Examples
--------
>>> stop = MaxUpdates(500) | StderrBelow(0.01)
>>> stop
MaxUpdates(500) | StderrBelow(0.01)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from numbers import Real

import numpy as np
from numpy.typing import NDArray

from dataworth.errors import DataworthError

__all__ = ["MaxTime", "MaxUpdates", "RankStable", "Status", "StderrBelow", "Stopping"]


@dataclass
class Status:
    """What the runner knows after a round."""

    n_updates: int
    values: NDArray[np.float64]
    stderr: NDArray[np.float64]
    counts: NDArray[np.int64]
    started: float = field(default_factory=time.monotonic)
    #: The values from each of two independent halves of the samples, when a rule asks for
    #: them (:attr:`Stopping.needs_halves`); None otherwise.
    halves: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None

    @property
    def elapsed(self) -> float:
        """Seconds since the run (or this resumed part of it) started."""
        return time.monotonic() - self.started


class Stopping:
    """Base class: subclasses implement :meth:`check` and :meth:`completion`."""

    #: Whether :meth:`check` reads :attr:`Status.halves` (the runner then keeps two halves).
    needs_halves: bool = False

    def reset(self) -> None:
        """Forget state from an earlier run."""

    def check(self, status: Status) -> bool:
        raise NotImplementedError

    def completion(self, status: Status) -> float:
        raise NotImplementedError

    def max_remaining(self, status: Status) -> int | None:
        """How many more samples may be drawn, or None for no cap."""
        return None

    def seconds_left(self, status: Status) -> float | None:
        """Seconds until this rule stops the run whatever the samples say, or None for never.

        The runner stops starting chunks once they are over, even within a round.
        """
        return None

    def met(self, status: Status) -> bool:
        """Whether this rule would stop the run at ``status``, without changing its state
        (asked once the run has ended, to say which rule ended it)."""
        return self.check(status)

    def leaves(self) -> list[Stopping]:
        """The rules that ``|`` combined into this one (itself, when it is not such a union)."""
        return [self]

    def __call__(self, status: Status) -> bool:
        return self.check(status)

    def __or__(self, other: Stopping) -> Stopping:
        return _Or(self, other)

    def __and__(self, other: Stopping) -> Stopping:
        return _And(self, other)


@dataclass(repr=False)
class _Or(Stopping):
    a: Stopping
    b: Stopping

    @property
    def needs_halves(self) -> bool:  # type: ignore[override]
        return self.a.needs_halves or self.b.needs_halves

    def reset(self) -> None:
        self.a.reset()
        self.b.reset()

    def check(self, status: Status) -> bool:
        # evaluate both so stateful criteria see every round
        ra, rb = self.a.check(status), self.b.check(status)
        return ra or rb

    def completion(self, status: Status) -> float:
        return max(self.a.completion(status), self.b.completion(status))

    def max_remaining(self, status: Status) -> int | None:
        caps = [
            c for c in (self.a.max_remaining(status), self.b.max_remaining(status)) if c is not None
        ]
        return min(caps) if caps else None

    def seconds_left(self, status: Status) -> float | None:
        left = [
            s for s in (self.a.seconds_left(status), self.b.seconds_left(status)) if s is not None
        ]
        return min(left) if left else None

    def met(self, status: Status) -> bool:
        return self.a.met(status) or self.b.met(status)

    def leaves(self) -> list[Stopping]:
        return [*self.a.leaves(), *self.b.leaves()]

    def __repr__(self) -> str:
        return f"{self.a!r} | {self.b!r}"


@dataclass(repr=False)
class _And(Stopping):
    a: Stopping
    b: Stopping

    @property
    def needs_halves(self) -> bool:  # type: ignore[override]
        return self.a.needs_halves or self.b.needs_halves

    def reset(self) -> None:
        self.a.reset()
        self.b.reset()

    def check(self, status: Status) -> bool:
        ra, rb = self.a.check(status), self.b.check(status)
        return ra and rb

    def completion(self, status: Status) -> float:
        return min(self.a.completion(status), self.b.completion(status))

    def max_remaining(self, status: Status) -> int | None:
        ca, cb = self.a.max_remaining(status), self.b.max_remaining(status)
        return None if ca is None or cb is None else max(ca, cb)

    def seconds_left(self, status: Status) -> float | None:
        sa, sb = self.a.seconds_left(status), self.b.seconds_left(status)
        return None if sa is None or sb is None else max(sa, sb)

    def met(self, status: Status) -> bool:
        return self.a.met(status) and self.b.met(status)

    def __repr__(self) -> str:
        return f"({self.a!r}) & ({self.b!r})"


class MaxUpdates(Stopping):
    """Stop after ``n`` samples (permutations, subsets or bags, depending on the method)."""

    def __init__(self, n: int) -> None:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise DataworthError(f"the budget must be a positive whole number; got {n!r}.")
        self.n = int(n)

    def check(self, status: Status) -> bool:
        return status.n_updates >= self.n

    def completion(self, status: Status) -> float:
        return min(1.0, status.n_updates / self.n)

    def max_remaining(self, status: Status) -> int | None:
        return max(0, self.n - status.n_updates)

    def __repr__(self) -> str:
        return f"MaxUpdates({self.n})"


class MaxTime(Stopping):
    """Stop after ``seconds`` of wall time; a run overruns it by at most one chunk.

    The runner checks the clock between chunks, also within a round: it starts no chunk once
    the time is up, and waits for the chunks under way (one per worker). It times the first
    sample and cuts chunks to take about 5% of the limit, so the overrun is small unless a
    single sample (one permutation, subset or bag) takes longer than that; the time it takes to
    start the workers counts too, and so does an estimator's planning (e.g. the pilot of
    ``regression-msr``), which is not interrupted. The values are those (up to rounding) of a
    run with a budget of the samples included, but that number, and so the values, depend on
    machine speed.
    """

    seconds: float

    def __init__(self, seconds: float) -> None:
        if not (isinstance(seconds, Real) and seconds > 0 and math.isfinite(seconds)):
            raise DataworthError(
                f"the time limit must be a positive number of seconds; got {seconds!r}."
            )
        self.seconds = float(seconds)

    def check(self, status: Status) -> bool:
        return status.elapsed >= self.seconds

    def completion(self, status: Status) -> float:
        return min(1.0, status.elapsed / self.seconds)

    def seconds_left(self, status: Status) -> float | None:
        return max(0.0, self.seconds - status.elapsed)

    def __repr__(self) -> str:
        return f"MaxTime({self.seconds:g})"


class StderrBelow(Stopping):
    """Stop when every player's standard error is below ``threshold``.

    Players need at least ``min_count`` samples each before their error is trusted.
    """

    threshold: float
    min_count: int

    def __init__(self, threshold: float, min_count: int = 5) -> None:
        if not (isinstance(threshold, Real) and threshold > 0 and math.isfinite(threshold)):
            raise DataworthError(
                f"the stderr threshold must be a positive number; got {threshold!r}."
            )
        self.threshold = float(threshold)
        self.min_count = int(min_count)

    def _worst(self, status: Status) -> float:
        if status.counts.size == 0 or status.counts.min() < self.min_count:
            return math.inf
        se = status.stderr[np.isfinite(status.stderr)]
        return float(se.max()) if se.size else math.inf

    def check(self, status: Status) -> bool:
        return self._worst(status) < self.threshold

    def completion(self, status: Status) -> float:
        worst = self._worst(status)
        return 0.0 if not math.isfinite(worst) else min(1.0, (self.threshold / worst) ** 2)

    def __repr__(self) -> str:
        return f"StderrBelow({self.threshold:g})"


class RankStable(Stopping):
    """Stop once two independent halves of the samples rank the players alike: their Spearman
    correlation is at least ``min_correlation`` after ``patience`` rounds in a row.

    The runner splits the samples into two halves by position (pairs of consecutive samples
    alternate, so that antithetic pairs stay together) and estimates the values from each;
    the run's values are those of all samples (the runner always keeps the halves, so they are
    those of a run without this rule). Values that are NaN in either half are left out of the
    correlation. Checkpoints hold the halves, so a resumed run stops where it would have (with
    a checkpoint written before they were kept, the halves hold the samples drawn since, and
    the rule stops no earlier than it would have).

    Examples
    --------
    >>> import numpy as np
    >>> rule = RankStable(0.9)
    >>> v = np.arange(5.0)
    >>> rule.check(Status(10, v, v, v.astype(int), halves=(v, v[::-1])))
    False
    >>> rule.check(Status(20, v, v, v.astype(int), halves=(v, v + 0.1)))
    True
    """

    needs_halves = True
    min_correlation: float
    patience: int

    def __init__(self, min_correlation: float = 0.9, patience: int = 1) -> None:
        if not (isinstance(min_correlation, Real) and 0.0 < float(min_correlation) <= 1.0):
            raise DataworthError(f"min_correlation must be in (0, 1]; got {min_correlation!r}.")
        if (
            not isinstance(patience, (int, np.integer))
            or isinstance(patience, bool)
            or patience < 1
        ):
            raise DataworthError(
                f"patience must be a whole number of rounds >= 1; got {patience!r}."
            )
        self.min_correlation = float(min_correlation)
        self.patience = int(patience)
        self.reset()

    def reset(self) -> None:
        self._streak = 0
        self._last = -1.0

    @staticmethod
    def correlation(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
        """Spearman's correlation of two value vectors over the entries finite in both."""
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() < 2:
            return -1.0
        a, b = a[ok], b[ok]
        if np.ptp(a) == 0 or np.ptp(b) == 0:
            return 1.0 if np.array_equal(a, b) else 0.0
        from scipy.stats import spearmanr  # scipy.stats takes half a second to import

        return float(spearmanr(a, b)[0])

    def check(self, status: Status) -> bool:
        if status.halves is None:
            raise DataworthError("RankStable needs the values of two halves of the samples.")
        if status.values.size < 2:  # one player: nothing to rank
            self._last = 1.0
            self._streak += 1
            return self._streak >= self.patience
        self._last = self.correlation(*status.halves)
        self._streak = self._streak + 1 if self._last >= self.min_correlation else 0
        return self._streak >= self.patience

    def met(self, status: Status) -> bool:
        return self._streak >= self.patience

    @property
    def last_correlation(self) -> float:
        """The halves' correlation at the last check (-1 before any)."""
        return self._last

    def completion(self, status: Status) -> float:
        return float(min(1.0, max(0.0, self._last) / self.min_correlation))

    def __repr__(self) -> str:
        return f"RankStable({self.min_correlation:g}, patience={self.patience})"
