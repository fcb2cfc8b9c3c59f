"""Data markets: provider values, replication-robust values, arrival-order values and payouts.

Providers (the distinct values of ``Dataset.groups``) are the players. Four tools:

- :func:`payouts` splits a budget in proportion to positive value, in whole cents that sum
  exactly to the budget (largest-remainder rounding), and states the rule it used.
- :func:`replication_robust_values` penalises each provider's value by its similarity to the
  other providers' data (Agarwal, Dahleh & Sarkar 2019): ``psi_m = phi_m * exp(-lam * sum_{j != m}
  s_mj)``, so that entering the market again under a second name with a copy (or a lightly
  perturbed copy) of one's data does not pay. ``s_mj`` is the cosine similarity of the two
  providers' data in the feature space of a Gaussian kernel (:func:`provider_similarity`).
- :func:`federated_shapley` values data that arrives in rounds (Wang et al. 2020): in each round,
  the exact Shapley value of that round's participants given everything that arrived before,
  summed over rounds. :func:`federated_values` does this for a dataset with a round per row.
- :func:`market_payouts` runs the whole pipeline behind ``dataworth market``.

Examples
--------
>>> table = payouts([3.0, 1.0, -2.0], 100, providers=["a", "b", "c"])
>>> [str(a) for a in table.amounts]
['75.00', '25.00', '0.00']
>>> table = payouts([1.0, 1.0, 1.0], 100)
>>> [str(a) for a in table.amounts]
['33.34', '33.33', '33.33']
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dataworth.data import Dataset, is_categorical
from dataworth.errors import DataworthError
from dataworth.result import ValuationResult

__all__ = [
    "IF_NO_VALUE",
    "MAX_BUDGET_CENTS",
    "FederatedShapley",
    "MarketResult",
    "Payouts",
    "ProviderSimilarity",
    "RobustValues",
    "budget_cents",
    "dedupe_within_providers",
    "federated_shapley",
    "federated_values",
    "market_payouts",
    "payouts",
    "provider_similarity",
    "replication_robust_values",
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


# ================================================================================== payouts
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
        """``(provider, value, payout)`` rows as written to CSV (value with 17 digits)."""
        return [
            (str(p), f"{v:.17g}", _fmt_cents(int(c)))
            for p, v, c in zip(self.providers.tolist(), self.values, self.cents, strict=True)
        ]

    def to_csv(self, path: str | Path) -> Path:
        """Write ``provider,value,payout`` rows to ``path``."""
        out = Path(path)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("w", newline="", encoding="utf-8") as fh:
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


# ============================================================================ similarity
def _encode(a: NDArray[Any]) -> tuple[NDArray[Any], NDArray[np.intp]]:
    names, codes = np.unique(np.asarray(a), return_inverse=True)
    return names, codes.astype(np.intp).reshape(-1)


def _standardise(X: NDArray[np.float64]) -> NDArray[np.float64]:
    std = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)


def _features_and_labels(
    X: NDArray[np.float64], y: NDArray[Any] | None
) -> tuple[NDArray[np.float64], NDArray[np.intp] | None]:
    """Standardised features (plus a real target as a column) and class codes (or None)."""
    Z = _standardise(np.asarray(X, dtype=np.float64))
    if y is None:
        return Z, None
    y = np.asarray(y)
    if is_categorical(y):
        return Z, _encode(y)[1]
    return np.column_stack([Z, _standardise(y.astype(np.float64).reshape(-1, 1))]), None


#: Default kernel bandwidth, as a fraction of the typical nearest-neighbour distance.
BANDWIDTH_RELATIVE = 0.25


def _default_bandwidth(Z: NDArray[np.float64], codes: NDArray[np.intp]) -> float:
    """``BANDWIDTH_RELATIVE`` x the median distance from a row to the nearest distinct row of
    the same provider (pooled rows when no provider has two distinct rows; 1 as a last resort).

    Measured within providers, a second identity with copied rows leaves it (almost) unchanged.
    """
    from sklearn.neighbors import NearestNeighbors

    def nn(rows: NDArray[np.float64]) -> NDArray[np.float64]:
        distinct = np.unique(rows + 0.0, axis=0)
        if distinct.shape[0] < 2:
            return np.empty(0)
        dist, _ = NearestNeighbors(n_neighbors=2).fit(distinct).kneighbors(distinct)
        return np.asarray(dist[:, 1])

    dists = [nn(Z[codes == c]) for c in np.unique(codes)]
    within = np.concatenate(dists) if dists else np.empty(0)
    if within.size == 0:
        within = nn(Z)
    h = BANDWIDTH_RELATIVE * float(np.median(within)) if within.size else 1.0
    return h if h > 0 else 1.0


@dataclass(frozen=True, eq=False)
class ProviderSimilarity:
    """Pairwise similarity of providers' data.

    Attributes
    ----------
    providers : ndarray
        Provider names (sorted, as ``np.unique`` orders them).
    matrix : ndarray of shape (n_providers, n_providers)
        Cosine similarities in [0, 1]; 1 on the diagonal.
    bandwidth : float
        Gaussian kernel bandwidth, in standard deviations of the pooled features.
    """

    providers: NDArray[Any]
    matrix: NDArray[np.float64]
    bandwidth: float

    def summed(self) -> NDArray[np.float64]:
        """Each provider's summed similarity to the other providers."""
        return np.asarray(self.matrix.sum(axis=1) - np.diag(self.matrix), dtype=np.float64)


def provider_similarity(
    X: ArrayLike,
    groups: ArrayLike,
    *,
    y: ArrayLike | None = None,
    bandwidth: float | None = None,
    max_block: int = 2_000_000,
) -> ProviderSimilarity:
    """Cosine similarity of providers' data as Gaussian-kernel mean embeddings.

    Provider ``m``'s data (rows ``A_m``, features standardised on the pooled data) is the vector
    ``mu_m = sum_{a in A_m} k(a, .)`` in the feature space of ``k(a, b) = exp(-|a - b|^2 / (2
    h^2))``, times ``[y_a = y_b]`` when ``y`` holds class labels (a real-valued ``y`` joins the
    features). The similarity is the cosine ``<mu_m, mu_j> / (|mu_m| |mu_j|)``, computed from
    kernel sums: 1 for an exact copy, close to 1 for a copy perturbed by much less than ``h``,
    close to 0 for independent samples when ``h`` is small compared with the spacing of the
    rows, never negative. (A linear kernel would compare the providers' mean rows, which every
    sample of the same population shares.)

    Parameters
    ----------
    X : array-like of shape (n, d)
    groups : array-like of shape (n,)
        Provider of each row.
    y : array-like of shape (n,), optional
    bandwidth : float, optional
        ``h`` in pooled standard deviations; default 0.25 times the median distance from a row
        to the nearest distinct row of the same provider, so that rows closer than a typical
        pair of neighbours (copies, light perturbations) count fully and independent samples
        barely at all.
    max_block : int, default=2_000_000
        Kernel entries held in memory at once (rows are processed in blocks).

    Examples
    --------
    >>> X = [[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [1.0, 0.0], [5.0, 5.0], [6.0, 4.0]]
    >>> s = provider_similarity(X, ["a", "a", "b", "b", "c", "c"], bandwidth=0.1)
    >>> s.matrix.round(3).tolist()
    [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    Xa = np.asarray(X, dtype=np.float64)
    if Xa.ndim != 2:
        raise DataworthError(f"X must be a 2-D array of features; got shape {Xa.shape}.")
    n = Xa.shape[0]
    g = np.asarray(groups)
    if g.shape != (n,):
        raise DataworthError(f"groups must have one entry per row ({n}); got shape {g.shape}.")
    if y is not None and np.asarray(y).shape != (n,):
        raise DataworthError(f"y must have one entry per row ({n}).")
    if n == 0:
        raise DataworthError("provider_similarity needs at least one row.")
    Z, classes = _features_and_labels(Xa, None if y is None else np.asarray(y))
    names, codes = _encode(g)
    if bandwidth is None:
        h = _default_bandwidth(Z, codes)
    else:
        if not (math.isfinite(bandwidth) and bandwidth > 0):
            raise DataworthError(f"bandwidth must be a finite number > 0; got {bandwidth!r}.")
        h = float(bandwidth)
    P = names.size
    onehot = np.zeros((n, P))
    onehot[np.arange(n), codes] = 1.0
    sq = np.einsum("ij,ij->i", Z, Z)
    K = np.zeros((P, P))
    step = max(1, int(max_block) // max(n, 1))
    for start in range(0, n, step):
        rows = slice(start, min(n, start + step))
        d2 = np.maximum(sq[rows, None] + sq[None, :] - 2.0 * Z[rows] @ Z.T, 0.0)
        block = np.exp(-d2 / (2.0 * h * h))
        if classes is not None:
            block *= classes[rows, None] == classes[None, :]
        K += onehot[rows].T @ (block @ onehot)
    K = (K + K.T) / 2.0
    norms = np.sqrt(np.diag(K))
    S = np.clip(K / np.outer(norms, norms), 0.0, 1.0)
    np.fill_diagonal(S, 1.0)
    S.setflags(write=False)
    return ProviderSimilarity(providers=names, matrix=S, bandwidth=h)


# ======================================================================= robust values
@dataclass(frozen=True, eq=False)
class RobustValues:
    """Replication-robust values (Agarwal, Dahleh & Sarkar 2019).

    Attributes
    ----------
    providers : ndarray
    values : ndarray of float
        ``psi_m = phi_m * penalty_m`` for ``phi_m > 0``; ``phi_m`` itself otherwise.
    base : ndarray of float
        The values ``phi_m`` before the penalty.
    penalty : ndarray of float
        ``exp(-lam * sum_{j != m} s_mj)``.
    similarity : ProviderSimilarity
    lam : float
    """

    providers: NDArray[Any]
    values: NDArray[np.float64]
    base: NDArray[np.float64]
    penalty: NDArray[np.float64]
    similarity: ProviderSimilarity
    lam: float

    def describe(self) -> str:
        """The penalty rule, in words."""
        return (
            f"value = base value x exp(-{self.lam:g} x summed similarity to the other "
            "providers) for base values > 0 (Agarwal, Dahleh & Sarkar 2019); similarity = "
            "cosine of the providers' Gaussian-kernel mean embeddings (bandwidth "
            f"{self.similarity.bandwidth:.4g} pooled standard deviations)"
        )


def _align(values: ValuationResult | ArrayLike, names: NDArray[Any]) -> NDArray[np.float64]:
    """Values in the order of ``names`` (by label for a group result, else as given)."""
    if isinstance(values, ValuationResult):
        v = np.asarray(values.values, dtype=np.float64)
        if values.kind == "group":
            labels = values.labels.tolist()
            if sorted(map(str, labels)) != sorted(map(str, names.tolist())) or len(labels) != len(
                names
            ):
                raise DataworthError(
                    "the result's groups do not match the providers of the data; value the same "
                    "dataset by group."
                )
            pos = {str(lab): i for i, lab in enumerate(labels)}
            v = v[[pos[str(p)] for p in names.tolist()]]
    else:
        v = np.asarray(values, dtype=np.float64)
    if v.shape != names.shape:
        raise DataworthError(
            f"got {v.size} values for {names.size} providers; give one value per provider, in "
            "sorted provider order."
        )
    return v


def replication_robust_values(
    values: ValuationResult | ArrayLike,
    X: Dataset | ArrayLike,
    groups: ArrayLike | None = None,
    *,
    y: ArrayLike | None = None,
    lam: float = 1.0,
    bandwidth: float | None = None,
) -> RobustValues:
    """Penalise each provider's value by its similarity to the other providers' data.

    ``psi_m = phi_m * exp(-lam * sum_{j != m} s_mj)`` for ``phi_m > 0`` (values ``<= 0`` earn
    nothing and are left as they are), with ``s_mj`` from :func:`provider_similarity`. A
    provider that enters again under ``r - 1`` more names with exact copies of its data has
    ``s = 1`` with each copy, so each of its identities carries an extra factor
    ``exp(-lam (r - 1))``. Example: among ``k`` providers whose data are perfect substitutes,
    plain Shapley pays the ``r`` identities ``r / (k + r - 1)`` of the budget instead of
    ``1 / k``; with the penalty they get ``r e^{-lam (r-1)} / (r e^{-lam (r-1)} + k - 1)``, at
    most ``1 / k`` for every ``r`` when ``lam >= ln 2``. The default ``lam = 1`` leaves a margin
    for perturbed copies (similarity a little below 1). This is an argument on one game, not a
    proof for every utility; the tests check it on real valuations.

    Parameters
    ----------
    values : ValuationResult or array-like
        One value per provider: a group result (aligned by label) or an array in sorted
        provider order.
    X : Dataset or array-like of shape (n, d)
        The providers' data; a Dataset also gives ``groups`` and ``y`` (unless passed).
    groups : array-like of shape (n,), optional
        Provider of each row (required when ``X`` is an array).
    y : array-like, optional
        Targets; class labels make rows of different classes dissimilar.
    lam : float, default=1.0
        Strength of the penalty, ``>= 0`` (0: no penalty).
    bandwidth : float, optional
        See :func:`provider_similarity`.

    Examples
    --------
    >>> X = [[0.0], [1.0], [0.0], [1.0], [5.0], [6.0]]
    >>> r = replication_robust_values([2.0, 2.0, 3.0], X, list("aabbcc"), bandwidth=0.1)
    >>> r.penalty.round(3).tolist(), r.values.round(3).tolist()
    ([0.368, 0.368, 1.0], [0.736, 0.736, 3.0])
    """
    if isinstance(X, Dataset):
        data = X
        groups = data.groups if groups is None else groups
        y = data.y if y is None else y
        Xa: ArrayLike = data.X
    else:
        Xa = X
    if groups is None:
        raise DataworthError("groups (the provider of each row) is required.")
    if not (isinstance(lam, (int, float, np.number)) and math.isfinite(lam) and lam >= 0):
        raise DataworthError(f"lam must be a finite number >= 0; got {lam!r}.")
    sim = provider_similarity(Xa, groups, y=y, bandwidth=bandwidth)
    base = _align(values, sim.providers)
    penalty = np.exp(-float(lam) * sim.summed())
    robust = np.where(base > 0, base * penalty, base)
    return RobustValues(
        providers=sim.providers,
        values=robust,
        base=base,
        penalty=penalty,
        similarity=sim,
        lam=float(lam),
    )


def dedupe_within_providers(
    data: Dataset, *, order: ArrayLike | None = None
) -> tuple[Dataset, NDArray[np.intp]]:
    """Keep one row of every set of identical rows (same features and target) of one provider.

    A provider that copies its own rows adds no information, yet plain values can change (the
    model weighs the copied rows twice); after this step the copies cannot change anything.
    Identical rows of *different* providers are kept (that is what the similarity penalty is
    for).

    Parameters
    ----------
    data : Dataset
        With ``groups`` (the providers).
    order : array-like of shape (n,), optional
        Which copy to keep: the one with the smallest key (e.g. the arrival round), ties by
        position; default the first.

    Returns
    -------
    kept : Dataset
        The rows kept, in their original order.
    rows : ndarray of int
        Their positions in ``data``.

    Examples
    --------
    >>> ds = Dataset.from_arrays([[0.0], [0.0], [0.0], [1.0]], [1, 1, 1, 0], groups=list("aabb"))
    >>> dedupe_within_providers(ds)[1].tolist()
    [0, 2, 3]
    """
    if data.groups is None:
        raise DataworthError("the data needs a provider (group) column.")
    n = data.n_samples
    keys = np.column_stack([_encode(data.groups)[1], _encode(data.y)[1], data.X + 0.0]).astype(
        np.float64
    )
    key = np.zeros(n) if order is None else _encode(np.asarray(order))[1].astype(np.float64)
    if key.shape != (n,):
        raise DataworthError(f"order must have one entry per row ({n}).")
    ranked = np.lexsort((np.arange(n), key))
    _, first = np.unique(keys[ranked], axis=0, return_index=True)
    rows = np.sort(ranked[first]).astype(np.intp)
    return (data if rows.size == n else data.take(rows)), rows


# ======================================================================= federated Shapley
@dataclass(frozen=True, eq=False)
class FederatedShapley:
    """Per-player federated Shapley values (Wang et al. 2020).

    Attributes
    ----------
    values : ndarray of float, shape (n_players,)
        Shapley value of each player within its round, given all earlier rounds.
    round_of : ndarray of int, shape (n_players,)
        Round (0-based position in ``rounds``) of each player.
    start, gains : float, ndarray of float
        ``u(empty)`` and, per round, ``u(everything so far) - u(everything before)``; the
        values of round ``t`` sum to ``gains[t]`` and all values to ``u(all) - u(empty)``.
    n_evaluations, n_failures : int
    """

    values: NDArray[np.float64]
    round_of: NDArray[np.intp]
    start: float
    gains: NDArray[np.float64]
    n_evaluations: int
    n_failures: int = 0


def _evaluate_masks(utility: Any, masks: NDArray[np.bool_]) -> NDArray[np.float64]:
    return np.asarray(utility.evaluate_many(masks), dtype=np.float64)


def federated_shapley(
    rounds: Sequence[ArrayLike],
    utility: Any,
    *,
    n_jobs: int | None = 1,
    chunk_size: int = 256,
) -> FederatedShapley:
    """Exact federated Shapley values: Shapley within each round, given the earlier rounds.

    Round ``t`` has participants ``I_t`` (players of ``utility``) and background ``B_t`` (the
    union of the earlier rounds). Its game is ``U_t(S) = u(B_t + S)`` for ``S`` in ``I_t``, and
    each participant gets its exact Shapley value in that game (all ``2^|I_t|`` subsets). A
    player's federated value is the sum over the rounds it takes part in (Wang et al. 2020,
    "A Principled Approach to Data Valuation for Federated Learning"); here each player is one
    provider's data in one round, so it belongs to exactly one round. Late data that repeats
    what arrived earlier is worth little, unlike plain Shapley, which ignores arrival order.

    Parameters
    ----------
    rounds : sequence of array-like of int
        Player indices arriving in each round, in arrival order; together they must cover every
        player exactly once. At most 20 players per round.
    utility : Utility
        Any utility over players (``n_players``, ``evaluate_many`` of boolean masks).
    n_jobs : int, default=1
        Parallel workers for the evaluations (joblib).

    Examples
    --------
    >>> from dataworth.testing.games import AdditiveGame
    >>> fs = federated_shapley([[2], [0, 1]], AdditiveGame([1.0, 2.0, 3.0]))
    >>> fs.values.round(12).tolist(), fs.gains.round(12).tolist()
    ([1.0, 2.0, 3.0], [3.0, 3.0])
    """
    from dataworth.engine.runner import counting_failures, run_tasks
    from dataworth.methods.exact import MAX_PLAYERS, exact_semivalue
    from dataworth.methods.weights import shapley_log_weights

    n = int(utility.n_players)
    round_of = np.full(n, -1, dtype=np.intp)
    members: list[NDArray[np.intp]] = []
    for t, r in enumerate(rounds):
        idx = np.asarray(r, dtype=np.intp).reshape(-1)
        if idx.size == 0:
            raise DataworthError(f"round {t} has no participants; drop empty rounds.")
        if idx.min() < 0 or idx.max() >= n:
            raise DataworthError(f"round {t} names players outside 0..{n - 1}.")
        if np.unique(idx).size != idx.size or (round_of[idx] >= 0).any():
            raise DataworthError(
                f"round {t} repeats a player; each player (one provider's data in one round) "
                "must arrive exactly once."
            )
        if idx.size > MAX_PLAYERS:
            raise DataworthError(
                f"round {t} has {idx.size} participants; exact per-round Shapley values enumerate "
                f"2^k subsets and are limited to {MAX_PLAYERS} per round."
            )
        round_of[idx] = t
        members.append(idx)
    if not members:
        raise DataworthError("rounds is empty; give at least one round.")
    if (round_of < 0).any():
        missing = np.flatnonzero(round_of < 0)[:5].tolist()
        raise DataworthError(f"players {missing} arrive in no round; every player must arrive.")
    values = np.zeros(n)
    gains = np.empty(len(members))
    background = np.zeros(n, dtype=bool)
    start = math.nan
    n_eval = n_fail = 0
    for t, idx in enumerate(members):
        k = idx.size
        codes = np.arange(2**k, dtype=np.int64)
        bits = ((codes[:, None] >> np.arange(k)) & 1).astype(bool)
        masks = np.repeat(background[None, :], codes.size, axis=0)
        masks[:, idx] = bits
        chunks = [masks[s : s + chunk_size] for s in range(0, codes.size, chunk_size)]
        parts = run_tasks(
            counting_failures(_evaluate_masks),
            chunks,
            n_jobs=n_jobs,
            progress=False,
            desc=f"round {t}",
            extra=(utility,),
        )
        u = np.concatenate([p[0] for p in parts])
        n_fail += sum(p[1] for p in parts)
        n_eval += int(u.size)
        values[idx] = exact_semivalue(u, shapley_log_weights(k))
        gains[t] = u[-1] - u[0]
        if t == 0:
            start = float(u[0])
        background[idx] = True
    return FederatedShapley(
        values=values,
        round_of=round_of,
        start=start,
        gains=gains,
        n_evaluations=n_eval,
        n_failures=n_fail,
    )


def federated_values(
    train: Dataset,
    valid: Dataset,
    rounds: ArrayLike,
    *,
    model: Any = None,
    scoring: Any = None,
    default_score: float = 0.0,
    catch_errors: bool = False,
    batched: bool | None = None,
    n_jobs: int | None = 1,
) -> ValuationResult:
    """Arrival-order-aware provider values for data that comes in rounds (Wang et al. 2020).

    The utility of a set of rows is the score on ``valid`` of ``model`` trained on them. Round
    ``t`` (rounds taken in increasing order of ``rounds``) is valued given all rows of the
    earlier rounds; a provider's value is the sum of its per-round Shapley values (see
    :func:`federated_shapley`). The values sum to ``u(all rows) - u(no rows)``.

    Parameters
    ----------
    train : Dataset
        With ``groups`` = provider of each row.
    valid : Dataset
    rounds : array-like of shape (n_rows,)
        Round of each training row (numbers or sortable labels).
    model, scoring, default_score, catch_errors, batched
        See :func:`dataworth.api.make_utility`; ``batched`` defaults to one scikit-learn fit at
        a time, as for the exact methods.

    Returns
    -------
    ValuationResult
        ``kind="group"``, labelled by provider; ``metadata["per_round"][m][t]`` is provider
        ``m``'s value in round ``t`` (``metadata["rounds"]`` lists the round ids).

    Examples
    --------
    >>> from dataworth.datasets import load_dataset
    >>> tr, va = load_dataset("iris").split(0.5, random_state=0)
    >>> tr = tr.replace(groups=np.arange(tr.n_samples) % 3)
    >>> r = federated_values(tr, va, rounds=np.arange(tr.n_samples) % 2)
    >>> r.kind, len(r), bool(abs(r.values.sum() - r.metadata["total_gain"]) < 1e-12)
    ('group', 3, True)
    """
    from dataworth.api import make_utility

    if train.groups is None:
        raise DataworthError("federated values need a provider (group) for every row.")
    r = np.asarray(rounds)
    if r.shape != (train.n_samples,):
        raise DataworthError(
            f"rounds must have one entry per training row ({train.n_samples}); got {r.shape}."
        )
    providers, p_code = _encode(train.groups)
    if r.dtype.kind == "f" and np.all(np.isfinite(r)) and np.all(r == np.round(r)):
        r = r.astype(np.int64)  # rounds read from a CSV as 1.0, 2.0 are shown as 1, 2
    round_ids, r_code = _encode(r)
    T = round_ids.size
    player_code = p_code * T + r_code
    utility = make_utility(
        train.replace(groups=player_code),
        valid,
        model=model,
        scoring=scoring,
        by_group=True,
        default_score=default_score,
        catch_errors=catch_errors,
        batched=False if batched is None else batched,
    )
    codes = np.asarray(utility.player_names, dtype=np.int64)
    player_provider, player_round = np.divmod(codes, T)
    rounds_players = [np.flatnonzero(player_round == t) for t in range(T)]
    fs = federated_shapley(rounds_players, utility, n_jobs=n_jobs)
    per_round = np.zeros((providers.size, T))
    per_round[player_provider, player_round] = fs.values
    values = per_round.sum(axis=1)
    return ValuationResult(
        values=values,
        stderr=np.zeros(providers.size),
        counts=np.bincount(player_provider, minlength=providers.size).astype(np.int64),
        labels=providers,
        method="federated-shapley",
        params={},
        metadata={
            "rounds": round_ids.tolist(),
            "per_round": per_round.tolist(),
            "round_gains": fs.gains.tolist(),
            "start_score": fs.start,
            "total_gain": float(fs.gains.sum()),
            "n_evaluations": fs.n_evaluations,
            "n_failures": fs.n_failures,
            "fingerprint": utility.fingerprint(),
        },
        kind="group",
    )


# ============================================================================== pipeline
@dataclass(frozen=True, eq=False)
class MarketResult:
    """What :func:`market_payouts` computed.

    Attributes
    ----------
    table : Payouts
        Provider, value (after the penalty when robust), payout.
    base : ndarray of float
        Values before the penalty (plain group values, or federated values with rounds).
    penalty : ndarray of float or None
        ``exp(-lam * summed similarity)`` when robust.
    valuation : ValuationResult
        The group valuation behind ``base``.
    robust : RobustValues or None
    removed_duplicates : dict
        Provider -> rows dropped as copies of its own rows (robust only).
    rule : str
        How values and payouts were computed, in words.
    """

    table: Payouts
    base: NDArray[np.float64]
    penalty: NDArray[np.float64] | None
    valuation: ValuationResult
    robust: RobustValues | None
    removed_duplicates: dict[str, int] = field(default_factory=dict)
    rule: str = ""


def market_payouts(
    train: Dataset,
    valid: Dataset,
    budget: Any,
    *,
    method: str = "exact-shapley",
    model: Any = None,
    scoring: Any = None,
    robust: bool = True,
    lam: float = 1.0,
    bandwidth: float | None = None,
    rounds: ArrayLike | None = None,
    if_no_value: str = "refuse",
    random_state: int | None = None,
    n_jobs: int | None = 1,
    batched: bool | None = None,
    method_params: dict[str, Any] | None = None,
) -> MarketResult:
    """Value each provider of ``train`` and split ``budget`` among them.

    Steps: with ``robust`` (the default), rows a provider repeats within its own data are
    dropped (:func:`dedupe_within_providers`); the providers are valued as players, with
    ``method`` (default exact Shapley over groups) or, with ``rounds``, by arrival-order-aware
    federated Shapley (:func:`federated_values`); with ``robust``, the values are penalised by
    similarity (:func:`replication_robust_values`); :func:`payouts` splits the budget.

    Parameters
    ----------
    train : Dataset
        With ``groups`` = provider of each row.
    valid : Dataset
        The buyer's valuation data.
    budget : number or str
        Whole cents, ``>= 0``.
    method : str, default="exact-shapley"
        A registered method that can value groups (ignored with ``rounds``).
    robust : bool, default=True
    lam, bandwidth
        See :func:`replication_robust_values`.
    rounds : array-like of shape (n_rows,), optional
        Arrival round of each training row.
    if_no_value : {"refuse", "equal"}
        See :func:`payouts`.
    method_params : dict, optional
        The method's own parameters (e.g. ``{"budget": 200}`` permutations for a Monte Carlo
        method; not to be confused with the money ``budget``).

    Examples
    --------
    >>> from dataworth.datasets import load_dataset
    >>> tr, va = load_dataset("iris").split(0.5, random_state=0)
    >>> tr = tr.replace(groups=np.array(list("abc"))[np.arange(tr.n_samples) % 3])
    >>> m = market_payouts(tr, va, 900)
    >>> sum(m.table.amounts) == 900, m.table.providers.tolist()
    (True, ['a', 'b', 'c'])
    """
    from dataworth.api import value
    from dataworth.methods import get_method, parameters_of

    if train.groups is None:
        raise DataworthError("a market needs the provider of every row (a group column).")
    budget_cents(budget)  # fail before any work
    if if_no_value not in IF_NO_VALUE:
        raise DataworthError(f"if_no_value must be one of {IF_NO_VALUE}; got {if_no_value!r}.")
    r = None if rounds is None else np.asarray(rounds)
    if r is not None and r.shape != (train.n_samples,):
        raise DataworthError(f"rounds must have one entry per training row ({train.n_samples}).")
    removed: dict[str, int] = {}
    data = train
    if robust:
        data, kept = dedupe_within_providers(train, order=r)
        if kept.size < train.n_samples:
            dropped = np.ones(train.n_samples, dtype=bool)
            dropped[kept] = False
            names, counts = np.unique(np.asarray(train.groups)[dropped], return_counts=True)
            removed = {str(k): int(c) for k, c in zip(names.tolist(), counts, strict=True)}
        if r is not None:
            r = r[kept]
    if r is not None:
        valuation = federated_values(
            data, valid, r, model=model, scoring=scoring, batched=batched, n_jobs=n_jobs
        )
        how = (
            "federated Shapley value (Wang et al. 2020): in each round, exact "
            "Shapley value among that round's providers given all earlier rounds, summed over "
            f"{len(valuation.metadata['rounds'])} rounds"
        )
    else:
        params = dict(method_params or {})
        accepted = parameters_of(get_method(method))
        if "n_jobs" in accepted:
            params.setdefault("n_jobs", n_jobs)
        valuation = value(
            method,
            data,
            valid,
            model=model,
            scoring=scoring,
            by_group=True,
            batched=batched,
            random_state=random_state,
            **params,
        )
        how = f"{method} value of each provider (providers are the players)"
    providers = np.unique(np.asarray(data.groups))
    base = _align(valuation, providers)
    rv: RobustValues | None = None
    final = base
    if robust:
        rv = replication_robust_values(base, data, lam=lam, bandwidth=bandwidth)
        final = rv.values
        how = f"base value = {how}; {rv.describe()}"
        if removed:
            how += (
                f"; {sum(removed.values())} row(s) repeating a row of the same provider were "
                "dropped before valuing"
            )
    else:
        how = f"value = {how}"
    table = payouts(final, budget, providers=providers, if_no_value=if_no_value)
    return MarketResult(
        table=table,
        base=base,
        penalty=None if rv is None else rv.penalty,
        valuation=valuation,
        robust=rv,
        removed_duplicates=removed,
        rule=f"{how}.\n{table.rule[0].upper()}{table.rule[1:]}",
    )
