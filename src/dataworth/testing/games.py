"""Cooperative games whose Shapley and Banzhaf values are known in closed form.

They are the oracles of the test suite: run any valuation method on a game and compare with
:meth:`shapley_values` / :meth:`banzhaf_values`, derived analytically (never by enumerating
subsets). :func:`exact_semivalue_bruteforce` enumerates all subsets of a small game for any
semivalue weight and checks the closed forms themselves.

Semivalue weights follow docs/conventions.md: ``phi_i = sum_{S subset N minus i} w(|S|) (u(S + i) -
u(S))`` with ``sum_k C(n-1, k) w(k) = 1``. A weight function is called as ``weight(k, n)``.

Examples
--------
>>> game = SymmetricVotingGame(4)
>>> game.shapley_values().tolist()
[0.25, 0.25, 0.25, 0.25]
>>> game.banzhaf_values().tolist()
[0.375, 0.375, 0.375, 0.375]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import joblib
import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import betaln, gammaln

from dataworth.errors import DataworthError
from dataworth.utility.base import UtilityBase

__all__ = [
    "AdditiveGame",
    "AirportGame",
    "GloveGame",
    "SymmetricVotingGame",
    "Weight",
    "banzhaf_weight",
    "beta_weight",
    "exact_semivalue_bruteforce",
    "shapley_weight",
]

#: A semivalue weight ``w(k, n)``: the weight of a coalition of ``k`` others out of ``n`` players.
Weight = Callable[[int, int], float]

#: Largest game :func:`exact_semivalue_bruteforce` enumerates (2**16 utility calls).
MAX_BRUTEFORCE_PLAYERS = 16


# --------------------------------------------------------------------------- weights
def _check_size(k: int, n: int) -> None:
    if n < 1 or not 0 <= k <= n - 1:
        raise DataworthError(
            f"a semivalue weight needs 0 <= k <= n - 1 and n >= 1; got k={k}, n={n}."
        )


def shapley_weight(k: int, n: int) -> float:
    """Shapley weight ``k! (n-k-1)! / n!``, computed in log space.

    Examples
    --------
    >>> round(shapley_weight(1, 3), 12)
    0.166666666667
    """
    _check_size(k, n)
    return float(np.exp(gammaln(k + 1) + gammaln(n - k) - gammaln(n + 1)))


def banzhaf_weight(k: int, n: int) -> float:
    """Banzhaf weight ``1 / 2**(n-1)`` (the same for every coalition size).

    Examples
    --------
    >>> banzhaf_weight(0, 3)
    0.25
    """
    _check_size(k, n)
    return math.ldexp(1.0, -(n - 1))


@dataclass(frozen=True)
class _BetaWeight:
    alpha: float
    beta: float

    def __call__(self, k: int, n: int) -> float:
        _check_size(k, n)
        return float(
            np.exp(betaln(k + self.beta, n - 1 - k + self.alpha) - betaln(self.alpha, self.beta))
        )

    def __repr__(self) -> str:
        return f"beta_weight({self.alpha:g}, {self.beta:g})"


def beta_weight(alpha: float, beta: float) -> Weight:
    """Beta(alpha, beta) semivalue weight (Kwon & Zou 2022), as in docs/conventions.md.

    ``w(k) = B(k + beta, n - 1 - k + alpha) / B(alpha, beta)``; ``alpha`` sits on the
    ``(1 - t)`` factor, so ``beta_weight(16, 1)`` favours small coalitions and
    ``beta_weight(1, 1)`` is Shapley.

    Examples
    --------
    >>> w = beta_weight(16, 1)
    >>> w(0, 5) > w(4, 5)
    True
    >>> abs(beta_weight(1, 1)(2, 5) - shapley_weight(2, 5)) < 1e-15
    True
    """
    for name, value in (("alpha", alpha), ("beta", beta)):
        if not (
            isinstance(value, (int, float, np.integer, np.floating))
            and math.isfinite(value)
            and value > 0
        ):
            raise DataworthError(f"Beta semivalue {name} must be a positive number; got {value!r}.")
    return _BetaWeight(float(alpha), float(beta))


def _weight_table(weight: Weight, n: int) -> NDArray[np.float64]:
    return np.array([weight(k, n) for k in range(n)], dtype=np.float64)


def _log_weight_table(weight: Weight, n: int) -> NDArray[np.float64]:
    """``log w(k)`` for ``k = 0..n-1``; exact in log space for the built-in weights, whose
    values underflow for large ``n``; other weights are evaluated and logged."""
    k = np.arange(n, dtype=np.float64)
    if weight is shapley_weight:
        return np.asarray(gammaln(k + 1) + gammaln(n - k) - gammaln(n + 1))
    if weight is banzhaf_weight:
        return np.full(n, -(n - 1) * math.log(2.0))
    if isinstance(weight, _BetaWeight):
        return np.asarray(
            betaln(k + weight.beta, n - 1 - k + weight.alpha) - betaln(weight.alpha, weight.beta)
        )
    with np.errstate(divide="ignore"):
        return np.log(_weight_table(weight, n))


def _log_comb(n: ArrayLike, k: ArrayLike) -> NDArray[np.float64]:
    n_ = np.asarray(n, dtype=np.float64)
    k_ = np.asarray(k, dtype=np.float64)
    return np.asarray(gammaln(n_ + 1) - gammaln(k_ + 1) - gammaln(n_ - k_ + 1))


def _comb_times(m: int, log_w: NDArray[np.float64]) -> NDArray[np.float64]:
    """``C(m, k) * w[k]`` for ``k = 0..len(log_w)-1``, from ``log w`` (no overflow)."""
    k = np.arange(log_w.size)
    return np.asarray(np.exp(_log_comb(m, k) + log_w))


def exact_semivalue_bruteforce(game: UtilityBase, weight: Weight) -> NDArray[np.float64]:
    """Semivalues of a small game by enumerating all ``2**n`` subsets (``n <= 16``).

    Parameters
    ----------
    game : UtilityBase
        Any game; it is called once per subset with a boolean mask.
    weight : callable
        ``weight(k, n)``, e.g. :func:`shapley_weight`, :func:`banzhaf_weight` or
        ``beta_weight(16, 1)``.

    Returns
    -------
    ndarray of shape (n,)

    Examples
    --------
    >>> exact_semivalue_bruteforce(AdditiveGame([1.0, 2.0]), shapley_weight).tolist()
    [1.0, 2.0]
    """
    n = int(game.n_players)
    if n > MAX_BRUTEFORCE_PLAYERS:
        raise DataworthError(
            f"brute-force enumeration is limited to {MAX_BRUTEFORCE_PLAYERS} players; got {n}."
        )
    if n == 0:
        return np.zeros(0)
    codes = np.arange(1 << n, dtype=np.int64)
    bits = ((codes[:, None] >> np.arange(n)) & 1).astype(bool)
    utilities = np.array([game(bits[c]) for c in range(codes.size)], dtype=np.float64)
    sizes = bits.sum(axis=1)
    w = _weight_table(weight, n)
    values = np.empty(n)
    for i in range(n):
        without = codes[~bits[:, i]]
        marginals = utilities[without | (1 << i)] - utilities[without]
        values[i] = math.fsum((w[sizes[without]] * marginals).tolist())
    return values


# --------------------------------------------------------------------------- games
class _ClosedFormGame(UtilityBase):
    """Shared plumbing: player names, fingerprint, semivalues from the closed forms."""

    def _params(self) -> dict[str, Any]:
        raise NotImplementedError

    def fingerprint_parts(self) -> dict[str, str]:
        """Content hash of the game's class and parameters (for checkpoints)."""
        return {"utility": str(joblib.hash((type(self).__name__, self._params())))}

    def semivalues(self, weight: Weight) -> NDArray[np.float64]:
        """Semivalues for any weight, by a combinatorial formula (no subset enumeration)."""
        raise NotImplementedError

    def shapley_values(self) -> NDArray[np.float64]:
        """Exact Shapley values."""
        raise NotImplementedError

    def banzhaf_values(self) -> NDArray[np.float64]:
        """Exact Banzhaf values."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"


def _as_vector(values: ArrayLike, what: str) -> NDArray[np.float64]:
    try:
        arr = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataworthError(f"{what} must be numbers.") from None
    if arr.ndim != 1 or arr.size == 0:
        raise DataworthError(f"{what} must be a non-empty 1-D sequence; got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise DataworthError(f"{what} must be finite.")
    arr.setflags(write=False)
    return arr


class AdditiveGame(_ClosedFormGame):
    """``u(S) = sum of weights[i] for i in S``; every semivalue equals the weights.

    Parameters
    ----------
    weights : array-like of shape (n,)
        Finite contribution of each player (may be negative).

    Examples
    --------
    >>> game = AdditiveGame([0.5, -1.0, 2.0])
    >>> game([0, 2])
    2.5
    >>> game.shapley_values().tolist()
    [0.5, -1.0, 2.0]
    """

    def __init__(self, weights: ArrayLike) -> None:
        self.weights = _as_vector(weights, "weights")
        self.n_players = int(self.weights.size)
        self.player_names = np.arange(self.n_players)

    def _params(self) -> dict[str, Any]:
        return {"weights": self.weights.tolist()}

    def __call__(self, subset: ArrayLike) -> float:
        return float(self.weights[self.mask_of(subset)].sum())

    def semivalues(self, weight: Weight) -> NDArray[np.float64]:
        """``weights * sum_k C(n-1, k) w(k)``, i.e. the weights for a normalised weight."""
        n = self.n_players
        total = math.fsum(_comb_times(n - 1, _log_weight_table(weight, n)).tolist())
        return self.weights * total

    def shapley_values(self) -> NDArray[np.float64]:
        """The weights."""
        return self.weights.copy()

    def banzhaf_values(self) -> NDArray[np.float64]:
        """The weights."""
        return self.weights.copy()


class SymmetricVotingGame(_ClosedFormGame):
    """Majority vote of ``n`` (even) players: ``u(S) = 1`` if ``|S| > n/2`` else 0.

    A player is pivotal exactly when it joins a coalition of ``n/2`` others, so its semivalue is
    ``C(n-1, n/2) w(n/2)``: Shapley ``1/n``, Banzhaf ``C(n-1, n/2) / 2**(n-1)``.

    Parameters
    ----------
    n : int
        Even number of players, at least 2.

    Examples
    --------
    >>> SymmetricVotingGame(6).banzhaf_values().tolist() == [10 / 32] * 6
    True
    """

    def __init__(self, n: int) -> None:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 2 or n % 2:
            raise DataworthError(f"SymmetricVotingGame needs an even number n >= 2; got {n!r}.")
        self.n = int(n)
        self.n_players = self.n
        self.player_names = np.arange(self.n)

    def _params(self) -> dict[str, Any]:
        return {"n": self.n}

    def __call__(self, subset: ArrayLike) -> float:
        return 1.0 if 2 * int(self.mask_of(subset).sum()) > self.n else 0.0

    def semivalues(self, weight: Weight) -> NDArray[np.float64]:
        """``C(n-1, n/2) w(n/2)`` for every player."""
        half = self.n // 2
        value = _comb_times(self.n - 1, _log_weight_table(weight, self.n))[half]
        return np.full(self.n, float(value))

    def shapley_values(self) -> NDArray[np.float64]:
        """``1/n`` each (symmetry and efficiency, u(N) = 1)."""
        return np.full(self.n, 1.0 / self.n)

    def banzhaf_values(self) -> NDArray[np.float64]:
        """``C(n-1, n/2) / 2**(n-1)`` each (exact integer ratio, correctly rounded)."""
        return np.full(self.n, math.comb(self.n - 1, self.n // 2) / 2 ** (self.n - 1))


class AirportGame(_ClosedFormGame):
    """Airport game: ``u(S) = max(costs[i] for i in S)``, ``u(empty) = 0``.

    The runway that serves the largest plane in ``S`` serves everyone in ``S``. With the costs
    sorted, ``c_(1) <= ... <= c_(n)`` and ``c_(0) = 0``, the game is a sum of the games
    "some player of rank >= l is present" scaled by ``c_(l) - c_(l-1)``, which gives

    * Shapley (Littlechild & Owen 1973): ``phi_(j) = sum_{l<=j} (c_(l) - c_(l-1)) / (n - l + 1)``;
    * Banzhaf: ``phi_(j) = sum_{l<=j} (c_(l) - c_(l-1)) / 2**(n - l)``.

    Parameters
    ----------
    costs : array-like of shape (n,)
        Non-negative finite costs. Ties are allowed (tied players get equal values).

    Examples
    --------
    >>> AirportGame([2.0, 1.0]).shapley_values().tolist()
    [1.5, 0.5]
    >>> AirportGame([2.0, 1.0]).banzhaf_values().tolist()
    [1.5, 0.5]
    """

    def __init__(self, costs: ArrayLike) -> None:
        self.costs = _as_vector(costs, "costs")
        if np.any(self.costs < 0):
            raise DataworthError("AirportGame costs must be non-negative.")
        self.n_players = int(self.costs.size)
        self.player_names = np.arange(self.n_players)

    def _params(self) -> dict[str, Any]:
        return {"costs": self.costs.tolist()}

    def __call__(self, subset: ArrayLike) -> float:
        mask = self.mask_of(subset)
        return float(self.costs[mask].max()) if mask.any() else 0.0

    def _combine(self, level_factor: NDArray[np.float64]) -> NDArray[np.float64]:
        """``phi_(j) = sum_{l<=j} (c_(l) - c_(l-1)) * level_factor[l-1]``."""
        order = np.argsort(self.costs, kind="stable")
        sorted_costs = self.costs[order]
        delta = np.diff(sorted_costs, prepend=0.0)
        out = np.empty(self.n_players)
        out[order] = np.cumsum(delta * level_factor)
        return out

    def semivalues(self, weight: Weight) -> NDArray[np.float64]:
        """Level ``l`` contributes ``sum_{k<l} C(l-1, k) w(k)`` per unit of cost increment."""
        n = self.n_players
        log_w = _log_weight_table(weight, n)
        factor = np.empty(n)
        for level in range(1, n + 1):
            factor[level - 1] = math.fsum(_comb_times(level - 1, log_w[:level]).tolist())
        return self._combine(factor)

    def shapley_values(self) -> NDArray[np.float64]:
        """Littlechild–Owen formula."""
        n = self.n_players
        return self._combine(1.0 / (n - np.arange(n, dtype=np.float64)))

    def banzhaf_values(self) -> NDArray[np.float64]:
        """Each level ``l`` is shared with factor ``2**-(n - l)``."""
        n = self.n_players
        return self._combine(np.ldexp(1.0, np.arange(1, n + 1) - n))


class GloveGame(_ClosedFormGame):
    """Glove market: ``u(S) = min(#left gloves in S, #right gloves in S)``.

    Players ``0 .. n_left-1`` hold left gloves, ``n_left .. n-1`` right gloves. A left player
    adds 1 to a coalition of ``a`` other left and ``b`` right players exactly when ``b > a``, so
    its semivalue is ``sum_{a, b > a} C(n_left-1, a) C(n_right, b) w(a + b)`` (an O(n^2) sum
    over counts; for Shapley it is the mean over positions of a hypergeometric tail). Banzhaf
    has a closed form: complementing the left coalition turns ``b > a`` into "at least
    ``n_left`` of ``n-1`` players", so a left player's Banzhaf value is
    ``P(Binomial(n-1, 1/2) >= n_left)`` and a right player's ``P(Binomial(n-1, 1/2) >= n_right)``.

    Parameters
    ----------
    n_left, n_right : int
        Numbers of left- and right-glove holders (non-negative, at least one player).

    Examples
    --------
    >>> GloveGame(1, 1).shapley_values().tolist()
    [0.5, 0.5]
    >>> GloveGame(1, 2).shapley_values().round(10).tolist()
    [0.6666666667, 0.1666666667, 0.1666666667]
    """

    def __init__(self, n_left: int, n_right: int) -> None:
        for name, value in (("n_left", n_left), ("n_right", n_right)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
                raise DataworthError(f"{name} must be a non-negative whole number; got {value!r}.")
        if n_left + n_right < 1:
            raise DataworthError("GloveGame needs at least one player.")
        self.n_left = int(n_left)
        self.n_right = int(n_right)
        self.n_players = self.n_left + self.n_right
        self.player_names = np.arange(self.n_players)

    def _params(self) -> dict[str, Any]:
        return {"n_left": self.n_left, "n_right": self.n_right}

    def __call__(self, subset: ArrayLike) -> float:
        mask = self.mask_of(subset)
        return float(min(int(mask[: self.n_left].sum()), int(mask[self.n_left :].sum())))

    def _side(self, own: int, other: int, log_w: NDArray[np.float64]) -> float:
        """Semivalue of a player whose side has ``own`` players against ``other``."""
        if own == 0:
            return 0.0
        a = np.arange(own)[:, None]  # others on the player's side
        b = np.arange(other + 1)[None, :]  # players on the other side
        log_terms = _log_comb(own - 1, a) + _log_comb(other, b) + log_w[a + b]
        return math.fsum(np.where(b > a, np.exp(log_terms), 0.0).ravel().tolist())

    def _assemble(self, left: float, right: float) -> NDArray[np.float64]:
        return np.concatenate([np.full(self.n_left, left), np.full(self.n_right, right)])

    def semivalues(self, weight: Weight) -> NDArray[np.float64]:
        """The O(n^2) sum over coalition counts."""
        log_w = _log_weight_table(weight, self.n_players)
        return self._assemble(
            self._side(self.n_left, self.n_right, log_w),
            self._side(self.n_right, self.n_left, log_w),
        )

    def shapley_values(self) -> NDArray[np.float64]:
        """Sum over counts with ``w(k) = 1 / (n C(n-1, k))``; equal sides give 1/2 each."""
        if self.n_left == self.n_right:
            return np.full(self.n_players, 0.5)
        return self.semivalues(shapley_weight)

    def banzhaf_values(self) -> NDArray[np.float64]:
        """Binomial tails ``P(Bin(n-1, 1/2) >= n_left)`` and ``P(Bin(n-1, 1/2) >= n_right)``."""
        m = self.n_players - 1

        def tail(t: int) -> float:
            return sum(math.comb(m, j) for j in range(t, m + 1)) / 2**m

        return self._assemble(tail(self.n_left), tail(self.n_right))
