"""The marketplace mechanism of Agarwal, Dahleh & Sarkar (EC 2019), as a simulation.

Buyers arrive one at a time, each with a prediction task and a bid ``b`` (money per unit of
prediction gain). The market posts a price ``p`` from a grid:

* **Allocation.** The buyer receives the providers' features degraded by Gaussian noise of
  ``noise_scale x max(0, p - b)`` standard deviations per feature (one fixed noise pattern, so
  that the gain is a function of the gap alone). The gain ``G(p, b)`` is the caller's ``gain``
  function of the degraded features and the buyer's task, made non-increasing in the gap (running
  minimum over a grid of gaps, linear in between): the allocation must be monotone in the bid.
* **Payment (Myerson).** ``RF(p, b) = b G(p, b) - int_0^b G(p, z) dz``. A buyer whose true value
  is ``mu`` has utility ``mu G(p, b) - RF(p, b)``, whose derivative in ``b`` is
  ``(mu - b) dG/db``: bidding ``mu`` is optimal (truthful).
* **Price update.** Multiplicative weights (Hedge) over the price grid with full information:
  after each buyer, every grid price's weight is multiplied by ``exp(eta x RF(p_i, b) / scale)``,
  so the posted price converges to the revenue-maximising grid price for the bid distribution.
  Each buyer's price is drawn from the current weights (seeded).
* **Revenue split.** :func:`split_revenue` divides the revenue among providers by their (robust)
  values, in whole cents that sum exactly to the revenue (:func:`~dataworth.apps.market.payouts`).

This module takes arrays and a gain function; it never values data itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dataworth.apps.market.budget_split import Payouts, payouts
from dataworth.errors import DataworthError
from dataworth.result import ValuationResult

__all__ = ["MarketSimulation", "Marketplace", "simulate_market", "split_revenue"]

GainFn = Callable[[NDArray[np.float64], Any], float]


@dataclass(frozen=True, eq=False)
class MarketSimulation:
    """What :meth:`Marketplace.simulate` did, one entry per buyer in arrival order.

    Attributes
    ----------
    bids, prices, gains, payments : ndarray of float
        The buyer's bid, the posted price, the gain it received, what it paid (``RF``).
    tasks : list
    weights : ndarray of shape (n_buyers + 1, n_grid)
        The price distribution before each buyer (last row: after the last).
    price_grid : ndarray
    """

    bids: NDArray[np.float64]
    prices: NDArray[np.float64]
    gains: NDArray[np.float64]
    payments: NDArray[np.float64]
    tasks: list[Any]
    weights: NDArray[np.float64]
    price_grid: NDArray[np.float64]

    @property
    def total_revenue(self) -> float:
        return float(self.payments.sum())

    def payment_cents(self) -> NDArray[np.int64]:
        """Each payment in whole cents (rounded half-even)."""
        return np.array(
            [
                int(Decimal(repr(float(p))).scaleb(2).quantize(Decimal(1), ROUND_HALF_EVEN))
                for p in self.payments
            ],
            dtype=np.int64,
        )

    def revenue_cents(self) -> int:
        """Total revenue in whole cents: the payments in cents, summed."""
        return int(self.payment_cents().sum())

    def best_price(self) -> float:
        """The grid price with the largest final weight."""
        return float(self.price_grid[int(np.argmax(self.weights[-1]))])


class Marketplace:
    """Allocation, payment and price update of the mechanism (see the module docstring).

    Parameters
    ----------
    X : array-like of shape (n, d)
        The providers' features, as sold.
    gain : callable ``gain(X_degraded, task) -> float``
        The prediction gain a buyer with ``task`` gets from features ``X_degraded`` (e.g. the
        accuracy of a model trained on them, on the buyer's data). Called at most
        ``gap_points`` times per distinct task (results are cached).
    price_grid : array-like of float
        The prices the market can post (``> 0``).
    noise_scale : float, default=1.0
        Standard deviations of noise per unit of ``price - bid``.
    gap_points : int, default=21
        Grid of gaps ``0 .. max(price_grid)`` on which ``gain`` is evaluated.
    seed : int, default=0
        Seeds the noise pattern and the price draws.

    Examples
    --------
    >>> X = np.zeros((4, 1))
    >>> mk = Marketplace(X, lambda Xd, t: 1.0, price_grid=[0.5, 1.0])
    >>> round(mk.payment(0.5, 0.8, None), 6), round(mk.utility(0.8, 0.8, 0.5, None), 6)
    (0.0, 0.8)
    """

    def __init__(
        self,
        X: ArrayLike,
        gain: GainFn,
        *,
        price_grid: ArrayLike,
        noise_scale: float = 1.0,
        gap_points: int = 21,
        seed: int = 0,
    ) -> None:
        self.X = np.asarray(X, dtype=np.float64)
        if self.X.ndim != 2 or self.X.shape[0] == 0:
            raise DataworthError("X must be a non-empty 2-D array of features.")
        grid = np.asarray(price_grid, dtype=np.float64).reshape(-1)
        if grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(grid <= 0):
            raise DataworthError("price_grid must hold finite prices > 0.")
        if not (math.isfinite(noise_scale) and noise_scale >= 0):
            raise DataworthError(f"noise_scale must be a finite number >= 0; got {noise_scale}.")
        if gap_points < 2:
            raise DataworthError("gap_points must be at least 2.")
        self.price_grid = np.sort(grid)
        self.gain_fn = gain
        self.noise_scale = float(noise_scale)
        self.seed = int(seed)
        self.gaps = np.linspace(0.0, float(self.price_grid[-1]), int(gap_points))
        std = self.X.std(axis=0)
        self._std = np.where(std > 0, std, 1.0)
        self._noise = np.random.default_rng(self.seed).normal(size=self.X.shape)
        self._curves: dict[Hashable, NDArray[np.float64]] = {}

    # -------------------------------------------------------------- allocation
    def degrade(self, price: float, bid: float) -> NDArray[np.float64]:
        """The features a buyer bidding ``bid`` receives at ``price``."""
        gap = max(0.0, float(price) - float(bid))
        return self.X + gap * self.noise_scale * self._std * self._noise

    def _curve(self, task: Any) -> NDArray[np.float64]:
        key = task if isinstance(task, Hashable) else repr(task)
        if key not in self._curves:
            g = np.array(
                [float(self.gain_fn(self.degrade(float(gap), 0.0), task)) for gap in self.gaps]
            )
            if not np.all(np.isfinite(g)):
                raise DataworthError(f"the gain function returned a non-finite gain for {task!r}.")
            self._curves[key] = np.minimum.accumulate(g)  # non-increasing in the gap
        return self._curves[key]

    def gain_at(self, price: float, bid: float, task: Any = None) -> float:
        """``G(p, b)``: the (monotone) gain at gap ``max(0, p - b)``."""
        gap = min(max(0.0, float(price) - float(bid)), float(self.gaps[-1]))
        return float(np.interp(gap, self.gaps, self._curve(task)))

    # -------------------------------------------------------------- payment
    def payment(self, price: float, bid: float, task: Any = None) -> float:
        """Myerson's payment ``b G(p, b) - int_0^b G(p, z) dz`` (exact for the piecewise-linear
        gain)."""
        b = max(0.0, float(bid))
        p = float(price)
        curve = self._curve(task)
        # z in [0, min(b, p)]: gap p - z runs over [lo, p]; beyond p the gain is G(gap 0)
        top = float(self.gaps[-1])
        lo, hi = p - min(b, p), min(p, top)
        integral = max(0.0, p - max(lo, top)) * float(curve[-1])  # gaps beyond the grid
        if hi > lo:
            knots = self.gaps[(self.gaps > lo) & (self.gaps < hi)]
            pts = np.concatenate([[lo], knots, [hi]])
            vals = np.interp(pts, self.gaps, curve)
            integral += float(np.sum((vals[1:] + vals[:-1]) / 2.0 * np.diff(pts)))
        integral += max(0.0, b - p) * float(curve[0])
        return max(0.0, b * self.gain_at(p, b, task) - integral)  # >= 0 up to rounding

    def utility(self, value: float, bid: float, price: float, task: Any = None) -> float:
        """A buyer's utility: ``value x G(p, bid) - RF(p, bid)``."""
        return float(value) * self.gain_at(price, bid, task) - self.payment(price, bid, task)

    # -------------------------------------------------------------- price update
    def simulate(
        self,
        bids: ArrayLike,
        tasks: Sequence[Any] | None = None,
        *,
        eta: float | None = None,
    ) -> MarketSimulation:
        """Run the buyers in order: post a price drawn from the weights, allocate, charge,
        then update every grid price's weight by the revenue it would have earned."""
        b = np.asarray(bids, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(b)) or np.any(b < 0):
            raise DataworthError("bids must be finite numbers >= 0.")
        t = [None] * b.size if tasks is None else list(tasks)
        if len(t) != b.size:
            raise DataworthError(f"got {len(t)} tasks for {b.size} bids.")
        K = self.price_grid.size
        scale = float(self.price_grid[-1]) * max(1.0, float(np.max(np.abs(b), initial=0.0)))
        if eta is None:
            eta = math.sqrt(8.0 * math.log(max(K, 2)) / max(b.size, 1))
        rng = np.random.default_rng(self.seed + 1)
        logw = np.zeros(K)
        history = np.empty((b.size + 1, K))
        prices = np.empty(b.size)
        gains = np.empty(b.size)
        pays = np.empty(b.size)
        for n in range(b.size):
            w = np.exp(logw - logw.max())
            w /= w.sum()
            history[n] = w
            prices[n] = self.price_grid[rng.choice(K, p=w)]
            gains[n] = self.gain_at(prices[n], b[n], t[n])
            pays[n] = self.payment(prices[n], b[n], t[n])
            rewards = np.array([self.payment(p, b[n], t[n]) for p in self.price_grid])
            logw += float(eta) * rewards / scale
        w = np.exp(logw - logw.max())
        history[b.size] = w / w.sum()
        return MarketSimulation(
            bids=b,
            prices=prices,
            gains=gains,
            payments=pays,
            tasks=t,
            weights=history,
            price_grid=self.price_grid,
        )


def simulate_market(
    X: ArrayLike,
    bids: ArrayLike,
    gain: GainFn,
    *,
    price_grid: ArrayLike,
    tasks: Sequence[Any] | None = None,
    noise_scale: float = 1.0,
    gap_points: int = 21,
    eta: float | None = None,
    seed: int = 0,
) -> MarketSimulation:
    """:class:`Marketplace` ``(X, gain, ...)`` ``.simulate(bids, tasks, eta=eta)``.

    Examples
    --------
    >>> sim = simulate_market(np.zeros((3, 1)), [1.0, 1.0], lambda X, t: 1.0, price_grid=[0.5])
    >>> sim.prices.tolist(), sim.payments.tolist()
    ([0.5, 0.5], [0.0, 0.0])
    """
    return Marketplace(
        X, gain, price_grid=price_grid, noise_scale=noise_scale, gap_points=gap_points, seed=seed
    ).simulate(bids, tasks, eta=eta)


def split_revenue(
    values: ValuationResult | ArrayLike,
    revenue_cents: int,
    *,
    providers: ArrayLike | None = None,
    if_no_value: str = "refuse",
) -> Payouts:
    """Divide ``revenue_cents`` (whole cents) among providers in proportion to positive value,
    in whole cents summing exactly to the revenue (:func:`payouts`).

    Examples
    --------
    >>> t = split_revenue([2.0, 1.0], 1001, providers=["a", "b"])
    >>> [str(a) for a in t.amounts], int(t.cents.sum())
    (['6.67', '3.34'], 1001)
    """
    cents = int(revenue_cents)
    if cents < 0:
        raise DataworthError(f"revenue must be >= 0 cents; got {cents}.")
    return payouts(
        values, f"{cents // 100}.{cents % 100:02d}", providers=providers, if_no_value=if_no_value
    )
