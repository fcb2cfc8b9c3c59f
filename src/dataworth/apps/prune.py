"""Prune superfluous data: redundant rows (near-zero value, near-duplicates) versus harmful ones.

Three tools, each taking a :class:`~dataworth.result.ValuationResult` or a plain array of values:

- :func:`classify_rows` sorts every row into one category, **harmful** (value below
  ``baseline - zero_tol``), **duplicate** (a near-copy, same label, of a row that is kept as the
  representative of its group), **near-zero** (``|value - baseline| <= zero_tol``), **useful**
  (the rest) or **unvalued** (NaN value). *Redundant* = duplicate + near-zero; harmful rows are
  reported apart. The ``baseline`` is the value of a row that neither helps nor hurts, declared
  by each method (``dataworth.methods.get_method(name).baseline``: 0 for the marginal-contribution
  methods; the caller passes it);
  methods without one (data-oob, lava, cgs, least-core) only rank rows, so they get no
  harmful / near-zero split.
- :func:`prune` keeps a fraction of the rows by a strategy: ``"value"`` (drop harmful, then
  duplicates, then near-zero rows; fill what is left class by class with rows spread evenly over
  the value ranks), ``"highest"`` (the highest-valued rows; known to fail at small fractions),
  ``"random"`` (class-stratified at random).
- :func:`prune_by_curve` ends the workflow of Schoch, Mishra & Ji (2023) on values of a cheap
  proxy model: it estimates the removal index from the proxy's held-out removal curve and
  returns the rows to keep for training the target model. The whole workflow (a feature
  function embeds the data, the proxy values it, optionally on small random subsets whose values
  are averaged) is :func:`dataworth.experiments.transfer_prune`.

Examples
--------
>>> import numpy as np
>>> X = np.array([[0.0], [0.0], [1.0], [5.0]])
>>> rows = classify_rows([0.3, 0.2, -0.4, 0.001], X, y=[0, 0, 0, 0], duplicate_tol=0.0)
>>> rows.category.tolist()
['useful', 'duplicate', 'harmful', 'near-zero']
>>> prune([0.3, 0.2, -0.4, 0.001], 0.5, strategy="highest").tolist()
[0, 1]
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import cdist

from dataworth.data import Dataset, is_categorical
from dataworth.errors import DataworthError
from dataworth.ranking import as_values, removal_order
from dataworth.result import ValuationResult

__all__ = [
    "CATEGORIES",
    "STRATEGIES",
    "RowClasses",
    "TransferPruneResult",
    "class_quotas",
    "classify_rows",
    "estimate_removal_index",
    "label_groups",
    "n_to_keep",
    "near_duplicates",
    "prune",
    "prune_by_curve",
]

#: Row categories, from most to least worth keeping.
CATEGORIES: tuple[str, ...] = ("useful", "unvalued", "near-zero", "duplicate", "harmful")
#: Strategies of :func:`prune` (``"craig"`` lives in :mod:`dataworth.apps.craig`).
STRATEGIES: tuple[str, ...] = ("value", "highest", "random")

#: Default relative tolerances (see :func:`classify_rows`).
ZERO_TOL_RELATIVE = 0.05
DUPLICATE_TOL_RELATIVE = 0.1


# ---------------------------------------------------------------------------- near-duplicates
def _nearest_neighbours(
    X: NDArray[np.float64], chunk_size: int
) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """Distance to and index of each row's nearest other row (ties: lowest index).

    Distances come from ``cdist`` in blocks of ``chunk_size`` rows, so memory stays at
    ``chunk_size * n`` floats and identical rows are at distance exactly 0.
    """
    n = X.shape[0]
    dist = np.full(n, np.inf)
    nearest = np.full(n, -1, dtype=np.intp)
    if n < 2:
        return dist, nearest
    block = np.empty((min(chunk_size, n), n))
    for lo in range(0, n, chunk_size):
        hi = min(lo + chunk_size, n)
        d = cdist(X[lo:hi], X, "sqeuclidean", out=block[: hi - lo])
        d[np.arange(hi - lo), np.arange(lo, hi)] = np.inf
        j = np.argmin(d, axis=1)
        nearest[lo:hi] = j
        dist[lo:hi] = np.sqrt(d[np.arange(hi - lo), j])
    return dist, nearest


def label_groups(y: ArrayLike | None, n: int) -> list[NDArray[np.intp]]:
    """Row positions per class for class labels; one group of all rows otherwise."""
    if y is None:
        return [np.arange(n, dtype=np.intp)]
    labels = np.asarray(y)
    if labels.shape != (n,):
        raise DataworthError(f"y must have one label per row ({n}); got shape {labels.shape}.")
    if not is_categorical(labels):
        return [np.arange(n, dtype=np.intp)]
    _, codes = np.unique(labels, return_inverse=True)
    order = np.argsort(codes, kind="stable")
    cuts = np.flatnonzero(np.diff(codes[order])) + 1
    return [g.astype(np.intp) for g in np.split(order, cuts)]


def near_duplicates(
    X: ArrayLike,
    y: ArrayLike | None = None,
    *,
    tol: float | None = None,
    priority: ArrayLike | None = None,
    chunk_size: int = 256,
) -> tuple[NDArray[np.intp], float]:
    """Find near-duplicate rows: for each, the row kept as representative of its group.

    Two rows (of the same class when ``y`` holds class labels) are linked when one is the
    other's nearest neighbour at Euclidean distance ``<= tol``; linked rows form groups
    (connected components). In each group the row of highest ``priority`` (ties: lowest index)
    is the representative; every other member is a near-duplicate of it. Nearest neighbours are
    found in blocks of ``chunk_size`` rows, never with an ``n x n`` matrix.

    Parameters
    ----------
    X : array-like of shape (n, d)
    y : array-like of shape (n,), optional
        Class labels: only rows of the same class can be duplicates. Real-valued targets are
        ignored (features alone decide).
    tol : float, optional
        Distance at or below which two rows are near-duplicates; ``0`` finds exact copies only.
        Default: ``0.1`` times the median positive nearest-neighbour distance, i.e. ten times
        closer than a typical pair of neighbours.
    priority : array-like of shape (n,), optional
        Which member of a group to keep (highest first, NaN lowest); default: the first row.
    chunk_size : int, default=256

    Returns
    -------
    duplicate_of : ndarray of int, shape (n,)
        The representative of each near-duplicate row, -1 for every other row.
    tol : float
        The tolerance used.

    Examples
    --------
    >>> dup, tol = near_duplicates([[0.0], [3.0], [0.0], [3.01]], tol=0.05)
    >>> dup.tolist(), tol
    ([-1, -1, 0, 1], 0.05)
    """
    Xa = np.asarray(X, dtype=np.float64)
    if Xa.ndim != 2:
        raise DataworthError(f"X must be a 2-D array of features; got shape {Xa.shape}.")
    n = Xa.shape[0]
    if not (isinstance(chunk_size, (int, np.integer)) and chunk_size >= 1):
        raise DataworthError(f"chunk_size must be a positive whole number; got {chunk_size!r}.")
    if tol is not None and not (math.isfinite(tol) and tol >= 0):
        raise DataworthError(f"duplicate_tol must be a finite number >= 0; got {tol}.")
    prio = np.zeros(n) if priority is None else np.asarray(priority, dtype=np.float64)
    if prio.shape != (n,):
        raise DataworthError(f"priority must have one entry per row ({n}).")
    dist = np.full(n, np.inf)
    nearest = np.full(n, -1, dtype=np.intp)
    for rows in label_groups(y, n):
        d, j = _nearest_neighbours(Xa[rows], int(chunk_size))
        dist[rows] = d
        nearest[rows] = np.where(j >= 0, rows[np.maximum(j, 0)], -1)
    if tol is None:
        positive = dist[np.isfinite(dist) & (dist > 0)]
        tol = float(DUPLICATE_TOL_RELATIVE * np.median(positive)) if positive.size else 0.0
    tol = float(tol)
    duplicate_of = np.full(n, -1, dtype=np.intp)
    linked = np.flatnonzero(dist <= tol)
    if linked.size == 0:
        return duplicate_of, tol
    graph = coo_matrix((np.ones(linked.size), (linked, nearest[linked])), shape=(n, n)).tocsr()
    _, comp = connected_components(graph, directed=False)
    sizes = np.bincount(comp)
    in_group = sizes[comp] > 1
    members = np.flatnonzero(in_group)
    # Representative: highest priority (NaN lowest), ties by lowest index.
    key = np.where(np.isnan(prio[members]), -np.inf, prio[members])
    order = np.lexsort((members, -key, comp[members]))
    sorted_members = members[order]
    first = np.ones(sorted_members.size, dtype=bool)
    first[1:] = comp[sorted_members[1:]] != comp[sorted_members[:-1]]
    rep_of_comp = np.full(sizes.size, -1, dtype=np.intp)
    rep_of_comp[comp[sorted_members[first]]] = sorted_members[first]
    duplicate_of[members] = rep_of_comp[comp[members]]
    duplicate_of[duplicate_of == np.arange(n)] = -1
    return duplicate_of, tol


# ---------------------------------------------------------------------------- classification
@dataclass(frozen=True, eq=False)
class RowClasses:
    """What :func:`classify_rows` found: one category per row and the tolerances used.

    Attributes
    ----------
    values : ndarray of float, shape (n,)
    category : ndarray of str, shape (n,)
        One of :data:`CATEGORIES` per row. Precedence when several apply: harmful, duplicate,
        near-zero, unvalued (NaN), useful.
    duplicate_of : ndarray of int, shape (n,)
        Representative of each near-duplicate row (whatever its category), -1 otherwise.
    zero_tol : float
    duplicate_tol : float or None
        None when no features were given (no duplicate check).
    labels : ndarray
        Row labels (from the ValuationResult), or positions.
    baseline : float or None
        The value of a row that neither helps nor hurts; None: no harmful / near-zero split.
    method : str
        The method whose values these are (for messages), possibly empty.
    """

    values: NDArray[np.float64]
    category: NDArray[np.str_]
    duplicate_of: NDArray[np.intp]
    zero_tol: float
    duplicate_tol: float | None
    labels: NDArray[Any] = field(default_factory=lambda: np.empty(0))
    baseline: float | None = 0.0
    method: str = ""

    def __post_init__(self) -> None:
        if np.asarray(self.labels).size == 0:
            object.__setattr__(self, "labels", np.arange(self.values.size))

    def rows(self, category: str) -> NDArray[np.intp]:
        """Positions of the rows in ``category``, lowest value first (ties by index)."""
        if category not in CATEGORIES:
            raise DataworthError(
                f"category must be one of {', '.join(CATEGORIES)}; got {category!r}."
            )
        idx = np.flatnonzero(self.category == category)
        return idx[removal_order(self.values[idx])]

    @property
    def harmful(self) -> NDArray[np.intp]:
        """Rows with a value below ``-zero_tol``, most harmful first."""
        return self.rows("harmful")

    @property
    def duplicates(self) -> NDArray[np.intp]:
        """Near-duplicates of a representative that is kept (and that are not harmful)."""
        return self.rows("duplicate")

    @property
    def near_zero(self) -> NDArray[np.intp]:
        """Rows with ``|value| <= zero_tol`` (and not a duplicate or harmful)."""
        return self.rows("near-zero")

    @property
    def redundant(self) -> NDArray[np.intp]:
        """Duplicates and near-zero rows, in index order."""
        return np.flatnonzero(np.isin(self.category, ("duplicate", "near-zero"))).astype(np.intp)

    def counts(self) -> dict[str, int]:
        """Number of rows in each category (every category present, zeros included)."""
        return {c: int(np.count_nonzero(self.category == c)) for c in CATEGORIES}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: tolerances, counts and row labels per category."""
        out: dict[str, Any] = {
            "baseline": self.baseline,
            "zero_tol": self.zero_tol,
            "duplicate_tol": self.duplicate_tol,
            "counts": self.counts(),
        }
        for name in ("harmful", "duplicate", "near-zero", "unvalued"):
            out[name] = self.labels[self.rows(name)].tolist()
        dups = np.flatnonzero(self.duplicate_of >= 0)
        out["duplicate_of"] = {
            str(self.labels[i].item()): self.labels[self.duplicate_of[i]].item() for i in dups
        }
        return out

    def summary(self) -> str:
        """A few lines: how many rows are harmful, redundant (and why), useful."""
        c = self.counts()
        n = self.values.size
        pct = (lambda k: f"{100 * k / n:.1f}%") if n else (lambda k: "0%")
        dup = (
            f"distance <= {self.duplicate_tol:.4g}, same label"
            if self.duplicate_tol is not None
            else "not checked: no features"
        )
        redundant = c["duplicate"] + c["near-zero"]
        b, tol = self.baseline, self.zero_tol
        if b is None:
            who = f"{self.method} values" if self.method else "the values"
            rows = [
                ("near-duplicate", c["duplicate"], dup),
                ("other", c["useful"], ""),
            ]
            if c["unvalued"]:
                rows.append(("unvalued", c["unvalued"], "value is NaN"))
            width = len(str(n))
            lines = [
                f"{name:<16} {k:>{width}}  {pct(k):>6}  {why}".rstrip() for name, k, why in rows
            ]
            lines.append(
                f"harmful / near-zero: not split: {who} have no baseline (no value means "
                "'neither helps nor hurts'); they rank rows only"
            )
            return "\n".join(lines)
        harmful = f"value < -{tol:.4g}" if b == 0 else f"value < {b - tol:.4g} (baseline {b:.4g})"
        near = f"|value| <= {tol:.4g}" if b == 0 else f"|value - {b:.4g}| <= {tol:.4g}"
        rows = [
            ("harmful", c["harmful"], harmful),
            ("redundant", redundant, ""),
            ("  near-duplicate", c["duplicate"], dup),
            ("  near-zero", c["near-zero"], near),
            ("useful", c["useful"], ""),
        ]
        if c["unvalued"]:
            rows.append(("unvalued", c["unvalued"], "value is NaN"))
        width = len(str(n))
        lines = [f"{name:<16} {k:>{width}}  {pct(k):>6}  {why}".rstrip() for name, k, why in rows]
        return "\n".join(lines)


def _labels_of(values: ValuationResult | Any, n: int) -> NDArray[Any]:
    if isinstance(values, ValuationResult):
        return np.asarray(values.labels)
    return np.arange(n)


def classify_rows(
    values: ValuationResult | ArrayLike,
    X: ArrayLike | None = None,
    *,
    y: ArrayLike | None = None,
    zero_tol: float | None = None,
    duplicate_tol: float | None = None,
    chunk_size: int = 256,
    baseline: float | None = 0.0,
) -> RowClasses:
    """Sort rows into harmful, redundant (near-duplicate or near-zero), useful and unvalued.

    Parameters
    ----------
    values : ValuationResult or array-like of shape (n,)
    X : array-like of shape (n, d), optional
        Features (or embeddings) for the near-duplicate check; without them it is skipped.
    y : array-like of shape (n,), optional
        Class labels: only rows of the same class count as duplicates.
    zero_tol : float, optional
        ``|value - baseline| <= zero_tol`` is near zero and ``value < baseline - zero_tol``
        harmful. Default: ``0.05 * max |value - baseline|`` (values are on different scales for
        different methods).
    duplicate_tol : float, optional
        See :func:`near_duplicates` (default: a tenth of the median nearest-neighbour distance).
    chunk_size : int, default=256
        Rows per block of the nearest-neighbour search.
    baseline : float or None, default=0.0
        The value of a row that neither helps nor hurts: the method's own
        (``dataworth.methods.get_method(name).baseline``). None (data-oob, lava, cgs,
        least-core: values that only rank rows): no row is harmful or near-zero; duplicates and
        unvalued rows are still found, every other row is ``"useful"``, and ``zero_tol`` must
        not be given.

    Returns
    -------
    RowClasses

    Examples
    --------
    >>> r = classify_rows([1.0, -0.5, 0.02, float("nan")])
    >>> r.counts()
    {'useful': 1, 'unvalued': 1, 'near-zero': 1, 'duplicate': 0, 'harmful': 1}
    >>> r.harmful.tolist(), r.zero_tol
    ([1], 0.05)
    """
    v = as_values(values)
    n = v.size
    finite = np.isfinite(v)
    if baseline is not None and not math.isfinite(baseline):
        raise DataworthError(f"baseline must be a finite number or None; got {baseline!r}.")
    if baseline is None and zero_tol is not None:
        raise DataworthError(
            "zero_tol needs a baseline: values without one only rank rows, none is near zero."
        )
    centred = v - (0.0 if baseline is None else float(baseline))
    if zero_tol is None:
        zero_tol = (
            float(ZERO_TOL_RELATIVE * np.abs(centred[finite]).max())
            if finite.any() and baseline is not None
            else 0.0
        )
    elif not (math.isfinite(zero_tol) and zero_tol >= 0):
        raise DataworthError(f"zero_tol must be a finite number >= 0; got {zero_tol}.")
    zero_tol = float(zero_tol)
    duplicate_of = np.full(n, -1, dtype=np.intp)
    used_dup_tol: float | None = None
    if X is not None:
        Xa = np.asarray(X, dtype=np.float64)
        if Xa.ndim != 2 or Xa.shape[0] != n:
            raise DataworthError(
                f"X must have one row per value ({n} rows, 2-D); got shape {Xa.shape}."
            )
        duplicate_of, used_dup_tol = near_duplicates(
            Xa, y, tol=duplicate_tol, priority=v, chunk_size=chunk_size
        )
    category = np.full(n, "useful", dtype="<U9")
    category[~finite] = "unvalued"
    if baseline is not None:
        category[finite & (np.abs(centred) <= zero_tol)] = "near-zero"
    category[duplicate_of >= 0] = "duplicate"
    if baseline is not None:
        category[finite & (centred < -zero_tol)] = "harmful"
    return RowClasses(
        values=v,
        category=category,
        duplicate_of=duplicate_of,
        zero_tol=zero_tol,
        duplicate_tol=used_dup_tol,
        labels=_labels_of(values, n),
        baseline=None if baseline is None else float(baseline),
        method=values.method if isinstance(values, ValuationResult) else "",
    )


# ---------------------------------------------------------------------------- pruning
def n_to_keep(n: int, keep_fraction: float) -> int:
    """Rows kept out of ``n`` for ``keep_fraction`` (rounded half up, at least 1).

    Examples
    --------
    >>> n_to_keep(10, 0.25), n_to_keep(10, 0.01), n_to_keep(10, 1.0)
    (3, 1, 10)
    """
    if not (isinstance(keep_fraction, (int, float)) and 0.0 < keep_fraction <= 1.0):
        raise DataworthError(f"keep_fraction must be in (0, 1]; got {keep_fraction!r}.")
    return max(1, min(n, math.floor(keep_fraction * n + 0.5)))


def class_quotas(counts: ArrayLike, n_keep: int) -> NDArray[np.intp]:
    """Split ``n_keep`` over classes in proportion to ``counts`` (largest remainder).

    Every class gets at least one row when ``n_keep`` allows, and never more than it has.

    Examples
    --------
    >>> class_quotas([50, 30, 20], 10).tolist()
    [5, 3, 2]
    >>> class_quotas([97, 2, 1], 5).tolist()
    [3, 1, 1]
    """
    c = np.asarray(counts, dtype=np.int64)
    total = int(c.sum())
    if not 0 <= n_keep <= total:
        raise DataworthError(f"cannot keep {n_keep} of {total} rows.")
    exact = n_keep * c / total if total else np.zeros(c.size)
    q = np.floor(exact).astype(np.int64)
    if n_keep >= c.size:
        q = np.maximum(q, np.minimum(1, c))
    while q.sum() > n_keep:  # the minimum of one per class overshot: take it back elsewhere
        q[np.argmax(np.where(q > 1, q - exact, -np.inf))] -= 1
    rest = n_keep - int(q.sum())
    if rest:
        room = q < c
        key = np.where(room, exact - q, -np.inf)
        order = np.lexsort((np.arange(c.size), -key))
        while rest:  # one more row each, largest remainder first (a loop over classes)
            for i in order:
                if rest and q[i] < c[i]:
                    q[i] += 1
                    rest -= 1
    return q.astype(np.intp)


def _spread(m: int, q: int) -> NDArray[np.intp]:
    """``q`` positions out of ``0..m-1``, evenly spaced and always including 0."""
    if q <= 0:
        return np.empty(0, dtype=np.intp)
    if q == 1:
        return np.zeros(1, dtype=np.intp)
    return np.floor(np.linspace(0, m - 1, q) + 0.5).astype(np.intp)


def _value_select(
    k: int, v: NDArray[np.float64], tier: NDArray[np.intp], y: ArrayLike | None
) -> NDArray[np.intp]:
    """Keep ``k`` rows: whole tiers in order of worth; the tier that only partly fits is filled
    with rows spread evenly over the value ranks of each class (useful rows, class quotas in
    proportion to their class counts) or with its highest values (every other tier)."""
    kept: list[NDArray[np.intp]] = []
    left = k
    for t in range(len(CATEGORIES)):
        if left == 0:
            break
        members = np.flatnonzero(tier == t).astype(np.intp)
        if members.size <= left:
            kept.append(members)
            left -= members.size
            continue
        if t == 0:
            groups = label_groups(None if y is None else np.asarray(y)[members], members.size)
            quotas = class_quotas([g.size for g in groups], left)
            for g, q in zip(groups, quotas, strict=True):  # a loop over classes
                desc = members[g][removal_order(v[members[g]], lowest_first=False)]
                kept.append(desc[_spread(desc.size, int(q))])
        else:
            kept.append(members[removal_order(v[members], lowest_first=False)][:left])
        left = 0
    return np.sort(np.concatenate(kept)).astype(np.intp)


def prune(
    values: ValuationResult | ArrayLike,
    keep_fraction: float,
    *,
    strategy: str = "value",
    y: ArrayLike | None = None,
    X: ArrayLike | None = None,
    classes: RowClasses | None = None,
    zero_tol: float | None = None,
    duplicate_tol: float | None = None,
    random_state: int | np.random.Generator | None = None,
    baseline: float | None = 0.0,
) -> NDArray[np.intp]:
    """Rows to keep (sorted positions) when keeping ``keep_fraction`` of them.

    Parameters
    ----------
    values : ValuationResult or array-like of shape (n,)
    keep_fraction : float in (0, 1]
        ``round(keep_fraction * n)`` rows are kept (at least one).
    strategy : {"value", "highest", "random"}, default="value"
        ``"value"``: drop harmful rows first, then near-duplicates, then near-zero rows (see
        :func:`classify_rows`; lowest values first within each); if more must go, keep in each
        class (quotas in proportion to its useful rows) useful rows spread evenly over the
        value ranks, so that the kept set still covers every kind of row and not only the most
        typical ones. ``"highest"``: the
        highest-valued rows, no stratification (fails at small fractions: the top rows crowd
        in the easiest regions). ``"random"``: uniformly at random within each class.
    y : array-like of shape (n,), optional
        Class labels for the class quotas of ``"value"`` and ``"random"`` and for duplicates.
    X : array-like of shape (n, d), optional
        Features for the near-duplicate check of ``"value"`` (ignored when ``classes`` given).
    classes : RowClasses, optional
        A precomputed :func:`classify_rows` result.
    zero_tol, duplicate_tol : float, optional
        See :func:`classify_rows`.
    random_state : int or Generator, optional
        For ``"random"``.
    baseline : float or None, default=0.0
        See :func:`classify_rows`. ``"value"`` drops harmful and near-zero rows first, so it
        refuses values without a baseline (use ``"highest"``, which only ranks).

    Examples
    --------
    >>> v = [0.5, 0.4, 0.3, 0.2, 0.1, -0.3]
    >>> prune(v, 0.5, strategy="highest").tolist()
    [0, 1, 2]
    >>> prune(v, 0.5, strategy="value", zero_tol=0.0).tolist()
    [0, 2, 4]
    >>> prune(v, 0.5, strategy="random", random_state=0).size
    3
    """
    v = as_values(values)
    n = v.size
    if n == 0:
        raise DataworthError("values is empty; there is nothing to prune.")
    if strategy not in STRATEGIES:
        hint = " (CRAIG: dataworth.apps.craig.craig)" if strategy == "craig" else ""
        raise DataworthError(
            f"strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}{hint}."
        )
    k = n_to_keep(n, keep_fraction)
    if y is not None and np.shape(y) != (n,):
        raise DataworthError(f"y must have one label per value ({n}); got shape {np.shape(y)}.")
    if strategy == "highest":
        return np.sort(removal_order(v, lowest_first=False)[:k])
    if strategy == "random":
        groups = label_groups(y, n)
        quotas = class_quotas([g.size for g in groups], k)
        rng = np.random.default_rng(random_state)
        picked = [rng.permutation(g)[:q] for g, q in zip(groups, quotas, strict=True)]
        return np.sort(np.concatenate(picked)).astype(np.intp)
    if classes is None:
        classes = classify_rows(
            v, X, y=y, zero_tol=zero_tol, duplicate_tol=duplicate_tol, baseline=baseline
        )
    elif classes.values.size != n:
        raise DataworthError(f"classes describes {classes.values.size} rows but there are {n}.")
    if classes.baseline is None:
        who = f"{classes.method} values" if classes.method else "values without a baseline"
        raise DataworthError(
            f"strategy 'value' drops harmful, then near-zero rows, but {who} have no baseline "
            "(no value means 'neither helps nor hurts'); use strategy 'highest' (keeps the "
            "highest-ranked rows), 'random', or a method with a baseline such as knn-shapley."
        )
    tier = np.zeros(n, dtype=np.intp)
    for t, name in enumerate(CATEGORIES):
        tier[classes.category == name] = t
    return _value_select(k, v, tier, y)


# ---------------------------------------------------------------------------- transfer workflow
def estimate_removal_index(
    fractions: ArrayLike, scores: ArrayLike, *, tolerance: float = 0.0
) -> int:
    """Position in ``fractions`` of the estimated removal index.

    The removal index is the largest removal fraction whose held-out proxy score is within
    ``tolerance`` of the best score on the curve: the most low-valued rows that can go while the
    proxy stays at its best (on a plateau, its far end: pruning aims at less data).

    Examples
    --------
    >>> estimate_removal_index([0, 0.1, 0.2, 0.3], [0.80, 0.84, 0.84, 0.79])
    2
    >>> estimate_removal_index([0, 0.1, 0.2, 0.3], [0.80, 0.84, 0.835, 0.79], tolerance=0.01)
    2
    """
    f = np.asarray(fractions, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    if f.shape != s.shape or f.ndim != 1 or f.size == 0:
        raise DataworthError("fractions and scores must be 1-D arrays of the same, nonzero length.")
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise DataworthError(f"tolerance must be a finite number >= 0; got {tolerance}.")
    ok = np.flatnonzero(s >= np.nanmax(s) - tolerance)
    return int(ok[np.argmax(f[ok])])


@dataclass(frozen=True, eq=False)
class TransferPruneResult:
    """The outcome of :func:`prune_by_curve` (and :func:`dataworth.experiments.transfer_prune`).

    Attributes
    ----------
    values : ValuationResult
        Proxy values of the training rows (on the embeddings).
    classes : RowClasses
        Harmful / redundant / useful rows by those values (duplicates on the embeddings).
    fractions, scores : ndarray
        The proxy's held-out removal curve: score after removing each fraction, lowest first.
    removal_fraction : float
        The estimated removal index as a fraction (see :func:`estimate_removal_index`).
    removed : ndarray of int
        Rows removed, lowest value first.
    kept : ndarray of int
        Rows kept (sorted): train the target model on these.
    embeddings : ndarray of shape (n, d)
        The training rows' features from the feature function.
    metadata : dict
        Method, proxy, subset settings and the seconds spent on each step.
    """

    values: ValuationResult
    classes: RowClasses
    fractions: NDArray[np.float64]
    scores: NDArray[np.float64]
    removal_fraction: float
    removed: NDArray[np.intp]
    kept: NDArray[np.intp]
    embeddings: NDArray[np.float64]
    metadata: dict[str, Any] = field(default_factory=dict)

    def curve_table(self) -> str:
        """The removal curve as aligned text, the chosen fraction marked with ``*``."""
        lines = ["removed  proxy score"]
        for f, s in zip(self.fractions.tolist(), self.scores.tolist(), strict=True):
            mark = " *" if math.isclose(f, self.removal_fraction) else ""
            lines.append(f"{f:>7.0%}  {s:.4f}{mark}")
        return "\n".join(lines)


def prune_by_curve(
    values: ValuationResult | ArrayLike,
    train: Dataset,
    held_out: Dataset,
    model: Any = None,
    *,
    max_remove: float = 0.5,
    step: float = 0.05,
    tolerance: float = 0.0,
    zero_tol: float | None = None,
    duplicate_tol: float | None = None,
    baseline: float | None = 0.0,
) -> TransferPruneResult:
    """Steps 4 and 5 of Schoch, Mishra & Ji (2023), given the values: the removal curve, the
    removal index, and the rows to keep.

    The lowest-valued ``0, step, .., max_remove`` of the rows of ``train`` are removed, ``model``
    (the proxy; default logistic regression or linear regression by target) is refitted on the
    rest and scored on ``held_out`` (:class:`~dataworth.utility.model.FitAndScore`; not the set
    that produced the values). The removal index is the largest fraction scoring within
    ``tolerance`` of the curve's best (:func:`estimate_removal_index`); the rows below it are
    removed. ``result.classes`` sorts the rows by the values around ``baseline``
    (:func:`classify_rows`; near-duplicates on ``train``'s features).
    :func:`dataworth.experiments.transfer_prune` runs the whole workflow (embedding and valuing
    included).

    Examples
    --------
    >>> from dataworth import value
    >>> from dataworth.datasets import load_dataset
    >>> train, valid = load_dataset("iris").split(0.4, random_state=0)
    >>> valid, held_out = valid.split(0.5, random_state=0)
    >>> values = value("knn-shapley", train, valid, k=3)
    >>> res = prune_by_curve(values, train, held_out, max_remove=0.2, step=0.1)
    >>> res.fractions.tolist(), res.kept.size + res.removed.size == train.n_samples
    ([0.0, 0.1, 0.2], True)
    """
    from dataworth.models import default_model
    from dataworth.utility.model import FitAndScore

    if not (0.0 <= max_remove < 1.0):
        raise DataworthError(f"max_remove must be in [0, 1); got {max_remove}.")
    if not (0.0 < step <= 1.0):
        raise DataworthError(f"step must be in (0, 1]; got {step}.")
    if held_out.n_features != train.n_features:
        raise DataworthError(
            f"train has {train.n_features} features but held_out has {held_out.n_features}."
        )
    n = train.n_samples
    result = values if isinstance(values, ValuationResult) else None
    v = as_values(values, n=n)
    if result is None:
        result = ValuationResult(values=v, labels=train.row_labels)
    model = default_model(train.y) if model is None else model
    started = time.perf_counter()
    fractions = np.round(np.arange(0.0, max_remove + 1e-9, step), 10)
    order = removal_order(v)
    proxy = FitAndScore(model, train)
    scores = np.array(
        [proxy(np.sort(order[math.floor(f * n + 0.5) :]), [held_out])[0] for f in fractions]
    )
    seconds = time.perf_counter() - started
    best = estimate_removal_index(fractions, scores, tolerance=tolerance)
    n_removed = math.floor(fractions[best] * n + 0.5)
    classes = classify_rows(
        result,
        train.X,
        y=train.y,
        zero_tol=zero_tol,
        duplicate_tol=duplicate_tol,
        baseline=baseline,
    )
    return TransferPruneResult(
        values=result,
        classes=classes,
        fractions=fractions,
        scores=scores,
        removal_fraction=float(fractions[best]),
        removed=order[:n_removed].astype(np.intp),
        kept=np.sort(order[n_removed:]).astype(np.intp),
        embeddings=train.X,
        metadata={
            "proxy": type(model).__name__,
            "n_curve_rows": held_out.n_samples,
            "curve_s": seconds,
        },
    )
