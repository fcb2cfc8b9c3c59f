"""What carries value, and can the values be trusted: data collection from data values.

Three questions a data collector asks of a set of values (TransferLab, "Applications of data
valuation", section 1.4):

* **Which features, which regions of feature space carry value?**
  :func:`explain_values` fits an interpretable model from the features to the values: a shallow
  regression tree, whose leaves are readable regions (rules with their mean value and size).
  Features are ranked by the tree's importance (the share of the value variance its splits
  explain); the direction of each effect is read from the tree's partial dependence (or, for a
  feature the tree does not use, from a significant Spearman rank correlation), and the Spearman
  correlation, its p-value and a standardised linear coefficient are reported alongside. A
  cross-validated R^2 says whether the regions hold beyond these rows.
* **Which categories or sources carry value?** :func:`value_by` summarises the values of each
  class or data source: rows, mean, sum, share of negative values, and a two-sided Mann-Whitney
  U test of the group against all other rows.
* **Is "collect more like these" supported by the data?** :func:`bootstrap_stability` takes the
  values recomputed (by the caller) on bootstrap resamples of the training rows
  (:func:`bootstrap_draws`; the valuation set stays fixed) and reports the Spearman rank correlation
  of the values between every pair of resamples, on the rows the two share. Each resample keeps the
  *distinct* rows of a bootstrap draw (about 63% of the rows): copies of one row would share its
  credit and lower its value, an artefact of the resampling rather than instability. The verdict
  says "stable" when the mean correlation is at least :data:`STABLE_AT` (0.7, a strong rank
  correlation), "unstable" below :data:`UNSTABLE_BELOW` (0.4), "partly stable" in between.
  :func:`collection_verdict` answers the question: yes only when the values are stable *and* the
  features predict them (cross-validated R^2 at least :data:`R2_AT`).

Examples
--------
>>> import numpy as np
>>> from dataworth.data import Dataset
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(200, 3))
>>> values = np.where(X[:, 2] > 0.5, -1.0, 1.0) + 0.1 * rng.normal(size=200)
>>> train = Dataset.from_arrays(X, np.zeros(200))
>>> ex = explain_values(values, train, max_depth=1, random_state=0)
>>> ex.features[0].name, ex.features[0].direction
('x2', '-')
>>> [(r.rule, r.count) for r in ex.regions]
[('x2 <= 0.4916', 138), ('x2 > 0.4916', 62)]
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import scipy.stats
from numpy.typing import ArrayLike, NDArray

from dataworth.data import Dataset
from dataworth.errors import DataworthError
from dataworth.jsonable import json_ready, plain
from dataworth.ranking import as_values
from dataworth.result import ValuationResult

__all__ = [
    "MIN_IMPORTANCE",
    "R2_AT",
    "STABLE_AT",
    "UNSTABLE_BELOW",
    "BootstrapDraws",
    "FeatureEffect",
    "GroupSummary",
    "Region",
    "StabilityResult",
    "ValueExplanation",
    "bootstrap_draws",
    "bootstrap_stability",
    "collection_verdict",
    "explain_values",
    "value_by",
]

_F64 = NDArray[np.float64]

#: Mean rank correlation between resamples at or above which the values are called stable.
STABLE_AT = 0.7
#: Mean rank correlation below which the values are called unstable.
UNSTABLE_BELOW = 0.4
#: Tree importance from which a feature's direction is read from the tree (else from Spearman).
MIN_IMPORTANCE = 0.05
#: Cross-validated R^2 of the value tree from which the features are said to predict the values.
R2_AT = 0.1


# ------------------------------------------------------------------------------ results
@dataclass(frozen=True)
class FeatureEffect:
    """How one feature relates to the values.

    Attributes
    ----------
    name : str
    importance : float
        Share of the value variance explained by the tree's splits on this feature (the tree's
        impurity importance; the importances sum to 1 when the tree splits at all, else 0).
    spearman : float
        Spearman rank correlation between the feature and the values (NaN for a constant
        feature).
    p_value : float
        Two-sided p-value of that correlation.
    coef : float
        Standardised linear coefficient: change of the value, in standard deviations of the
        values, per standard deviation of the feature, the other features held fixed.
    change : float
        Change of the tree's partial dependence (Friedman 2001: the mean predicted value with
        the feature set to ``t`` for every row) from the feature's smallest to its largest
        value, in units of the values; 0 for a feature the tree does not use.
    direction : {"+", "-", "non-monotone", "none"}
        For a feature with importance at least :data:`MIN_IMPORTANCE`, read from the tree's
        partial dependence over the feature's range: ``"+"`` (rows with higher
        values of the feature are worth more) when it ends higher than it starts by at least
        two thirds of its full range (max - min), ``"-"`` when it ends lower by as much,
        ``"non-monotone"`` otherwise (the effect depends on the region, e.g. a peak). For any
        other feature: the sign of the Spearman correlation when significant at level
        ``alpha``, else ``"none"``.
    """

    name: str
    importance: float
    spearman: float
    p_value: float
    coef: float
    change: float
    direction: str

    @property
    def description(self) -> str:
        """The direction in words."""
        return {
            "+": "higher values are worth more",
            "-": "lower values are worth more",
            "non-monotone": "matters by region, not monotone",
            "none": "no clear effect",
        }[self.direction]


@dataclass(frozen=True)
class Region:
    """One leaf of the value tree: a box of feature space, as a readable rule.

    Attributes
    ----------
    rule : str
        Conditions joined by ``and`` (``"all rows"`` for a tree without splits); each feature
        appears once, as ``x <= b``, ``x > a`` or ``a < x <= b``.
    conditions : tuple of (str, float, float)
        ``(feature, lower, upper)`` meaning ``lower < feature <= upper`` (infinite when open).
    mean_value, std_value : float
        Mean and standard deviation of the values of the rows in the region.
    share_negative : float
        Share of the region's rows with a negative value.
    count : int
        Rows in the region.
    share : float
        ``count`` over all rows explained.
    rows : ndarray of int
        Positions of those rows in the dataset.
    """

    rule: str
    conditions: tuple[tuple[str, float, float], ...]
    mean_value: float
    std_value: float
    share_negative: float
    count: int
    share: float
    rows: NDArray[np.intp] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (infinite bounds as ``null``)."""
        return {
            "rule": self.rule,
            "conditions": [
                {"feature": f, "lower": json_ready(lo), "upper": json_ready(hi)}
                for f, lo, hi in self.conditions
            ],
            "mean_value": self.mean_value,
            "std_value": self.std_value,
            "share_negative": self.share_negative,
            "count": self.count,
            "share": self.share,
            "rows": [int(r) for r in self.rows],
        }


@dataclass(frozen=True)
class ValueExplanation:
    """The answer of :func:`explain_values`.

    Attributes
    ----------
    features : tuple of FeatureEffect
        Every feature, most important first.
    regions : tuple of Region
        The tree's leaves, highest mean value first.
    r2_tree : float
        In-sample R^2 of the tree (how much of the value variance the regions describe).
    r2_tree_cv : float
        5-fold cross-validated R^2 of the same tree (NaN below 10 rows): how far the regions
        generalise beyond these rows. Near or below 0: the features do not predict the values.
    r2_linear : float
        In-sample R^2 of the linear model behind the coefficients.
    n_rows : int
        Rows explained (rows with a NaN value are left out and counted in ``n_dropped``).
    n_dropped : int
    max_depth, min_samples_leaf : int
        The tree's settings.
    notes : tuple of str
        Anything the caller should be told (dropped rows).
    """

    features: tuple[FeatureEffect, ...]
    regions: tuple[Region, ...]
    r2_tree: float
    r2_tree_cv: float
    r2_linear: float
    n_rows: int
    n_dropped: int
    max_depth: int
    min_samples_leaf: int
    notes: tuple[str, ...] = ()

    def top_features(self, k: int = 5) -> tuple[FeatureEffect, ...]:
        """The ``k`` most important features."""
        return self.features[: max(int(k), 0)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "features": [json_ready(asdict(f)) for f in self.features],
            "regions": [r.to_dict() for r in self.regions],
            "r2_tree": json_ready(self.r2_tree),
            "r2_tree_cv": json_ready(self.r2_tree_cv),
            "r2_linear": json_ready(self.r2_linear),
            "n_rows": self.n_rows,
            "n_dropped": self.n_dropped,
            "max_depth": self.max_depth,
            "min_samples_leaf": self.min_samples_leaf,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class GroupSummary:
    """Summary of the values of one class or source (see :func:`value_by`).

    Attributes
    ----------
    group : label
    count : int
        Rows with a value (NaN values are counted in ``n_missing`` instead).
    mean, sum : float
    share_negative : float
        Share of the rows with a negative value.
    p_value : float
        Two-sided Mann-Whitney U test of this group's values against all other rows' (NaN with a
        single group). Small: the group's values differ from the rest.
    n_missing : int
        Rows of the group whose value is NaN.
    """

    group: Any
    count: int
    mean: float
    sum: float
    share_negative: float
    p_value: float
    n_missing: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        out: dict[str, Any] = json_ready(asdict(self))
        return out


@dataclass(frozen=True)
class StabilityResult:
    """The answer of :func:`bootstrap_stability`.

    Attributes
    ----------
    method : str
    n_bootstrap : int
    rows : tuple of ndarray of int
        Positions (in the training set) of the distinct rows of each resample, sorted.
    values : ndarray of shape (n_bootstrap, n_rows)
        Each resample's values, NaN for rows it did not draw.
    pairwise : ndarray of shape (n_bootstrap, n_bootstrap)
        Spearman rank correlation between resamples ``a`` and ``b`` on the rows both drew (and
        both valued, not NaN); 1 on the diagonal; NaN where one side is constant.
    shared : ndarray of shape (n_bootstrap, n_bootstrap)
        Number of rows each pair of resamples shares.
    mean, std, min, max : float
        Of the correlations of the distinct pairs (NaN pairs left out).
    verdict : str
        The conclusion in words, with the thresholds used.
    stable : bool
        ``mean >= STABLE_AT``.
    seeds : tuple of int
        The ``random_state`` each resample's valuation ran with.
    """

    method: str
    n_bootstrap: int
    rows: tuple[NDArray[np.intp], ...] = field(repr=False)
    values: _F64 = field(repr=False)
    pairwise: _F64 = field(repr=False)
    shared: NDArray[np.int64] = field(repr=False)
    mean: float
    std: float
    min: float
    max: float
    verdict: str
    stable: bool
    seeds: tuple[int, ...] = ()

    @property
    def mean_values(self) -> _F64:
        """Each row's mean value over the resamples that drew it (NaN if none did)."""
        drawn = ~np.isnan(self.values)
        total = np.where(drawn, self.values, 0.0).sum(axis=0)
        count = drawn.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), np.nan)

    def summary(self) -> str:
        """One line: the correlations and the verdict."""
        return (
            f"Spearman rank correlation of values between {self.n_bootstrap} bootstrap resamples "
            f"(on shared rows): mean {_fmt(self.mean)}, sd {_fmt(self.std)}, "
            f"min {_fmt(self.min)}, max {_fmt(self.max)}; {self.verdict}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (without the per-resample values)."""
        off = ~np.eye(self.n_bootstrap, dtype=bool)
        return {
            "method": self.method,
            "n_bootstrap": self.n_bootstrap,
            "mean": json_ready(self.mean),
            "std": json_ready(self.std),
            "min": json_ready(self.min),
            "max": json_ready(self.max),
            "mean_shared_rows": float(self.shared[off].mean()),
            "stable_at": STABLE_AT,
            "unstable_below": UNSTABLE_BELOW,
            "stable": self.stable,
            "verdict": self.verdict,
            "pairwise": [[json_ready(float(v)) for v in row] for row in self.pairwise],
            "seeds": list(self.seeds),
        }


# ------------------------------------------------------------------------------ helpers
def _fmt(x: float) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.3f}"


def _threshold(x: float) -> str:
    return f"{x:.4g}"


def _features(
    train: Dataset | ArrayLike, feature_names: Sequence[str] | None
) -> tuple[_F64, tuple[str, ...]]:
    if isinstance(train, Dataset):
        return train.X, train.feature_names
    X = np.asarray(train, dtype=np.float64)
    if X.ndim != 2:
        raise DataworthError(
            f"train must be a Dataset or a 2-D feature array; got shape {X.shape}."
        )
    names = tuple(feature_names) if feature_names else tuple(f"x{j}" for j in range(X.shape[1]))
    if len(names) != X.shape[1]:
        raise DataworthError(f"feature_names has {len(names)} names for {X.shape[1]} features.")
    return X, names


def _spearman(a: _F64, b: _F64) -> tuple[float, float]:
    """Spearman's rho and its p-value; NaN when either side is constant."""
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan, math.nan
    res = scipy.stats.spearmanr(a, b)
    return float(res.statistic), float(res.pvalue)


def _leaf_rules(
    tree: Any, names: tuple[str, ...], unit: _F64
) -> dict[int, tuple[tuple[str, float, float], ...]]:
    """Leaf node id -> merged conditions ``(feature, lower, upper)`` along its path.

    ``unit[j]`` converts the tree's thresholds on feature ``j`` back to the data's units.
    """
    t = tree.tree_
    out: dict[int, tuple[tuple[str, float, float], ...]] = {}
    stack: list[tuple[int, dict[int, tuple[float, float]]]] = [(0, {})]
    while stack:
        node, bounds = stack.pop()
        left, right = int(t.children_left[node]), int(t.children_right[node])
        if left == right:  # a leaf
            out[node] = tuple((names[j], lo, hi) for j, (lo, hi) in sorted(bounds.items()))
            continue
        j = int(t.feature[node])
        thr = float(t.threshold[node]) * float(unit[j])
        lo, hi = bounds.get(j, (-math.inf, math.inf))
        stack.append((left, {**bounds, j: (lo, min(hi, thr))}))
        stack.append((right, {**bounds, j: (max(lo, thr), hi)}))
    return out


def _rule_text(conditions: tuple[tuple[str, float, float], ...]) -> str:
    parts = []
    for name, lo, hi in conditions:
        if math.isinf(lo):
            parts.append(f"{name} <= {_threshold(hi)}")
        elif math.isinf(hi):
            parts.append(f"{name} > {_threshold(lo)}")
        else:
            parts.append(f"{_threshold(lo)} < {name} <= {_threshold(hi)}")
    return " and ".join(parts) or "all rows"


def _power_of_two_units(X: _F64) -> _F64:
    """Per column, the power of two just above its largest magnitude (1 for a zero column)."""
    _, exponent = np.frexp(np.abs(X).max(axis=0, initial=0.0))
    return np.ldexp(1.0, np.where(np.abs(X).max(axis=0, initial=0.0) > 0, exponent, 0))


def _partial_dependence(tree: Any, X: _F64, j: int) -> _F64:
    """The tree's partial dependence on feature ``j`` from its smallest to its largest value."""
    from sklearn.inspection import partial_dependence

    if np.ptp(X[:, j]) == 0:
        return np.zeros(1)
    pd = partial_dependence(
        tree, X, [j], percentiles=(0.0, 1.0), grid_resolution=50, method="recursion"
    )
    return np.asarray(pd["average"][0], dtype=np.float64)


def _direction(rho: float, p: float, importance: float, pd: _F64, alpha: float) -> str:
    if importance >= MIN_IMPORTANCE:
        net, span = float(pd[-1] - pd[0]), float(np.ptp(pd))
        if span > 0:
            if abs(net) >= 2 / 3 * span:
                return "+" if net > 0 else "-"
            return "non-monotone"
    if math.isfinite(p) and p < alpha and rho != 0:
        return "+" if rho > 0 else "-"
    return "none"


# ------------------------------------------------------------------------------ explain
def explain_values(
    values: ValuationResult | ArrayLike,
    train: Dataset | ArrayLike,
    *,
    max_depth: int = 3,
    min_samples_leaf: int | None = None,
    alpha: float = 0.05,
    feature_names: Sequence[str] | None = None,
    random_state: int | None = None,
) -> ValueExplanation:
    """Which features and which regions of feature space carry value.

    Parameters
    ----------
    values : ValuationResult or array of shape (n_rows,)
        One value per training row (not per group).
    train : Dataset or array of shape (n_rows, n_features)
        The rows the values belong to, in the same order. Rules use these features as given
        (standardise for the valuation if you like, but pass the raw features here for readable
        thresholds).
    max_depth : int, default=3
        Depth of the regression tree (at most ``2**max_depth`` regions).
    min_samples_leaf : int, optional
        Smallest region; default ``max(5, n_rows // 20)``, so that no region rests on a handful
        of rows.
    alpha : float, default=0.05
        Significance level for calling a rank correlation a direction.
    feature_names : sequence of str, optional
        Names for an array ``train`` (a Dataset has its own).
    random_state : int, optional
        Seed for the tree's tie-breaking and the cross-validation folds.

    Returns
    -------
    ValueExplanation

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> X = rng.normal(size=(100, 2))
    >>> ex = explain_values(X[:, 1] + 0.05 * rng.normal(size=100), X, random_state=0)
    >>> [(f.name, f.direction) for f in ex.features]
    [('x1', '+'), ('x0', 'none')]
    """
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.tree import DecisionTreeRegressor

    X_all, names = _features(train, feature_names)
    v_all = as_values(values, X_all.shape[0])
    if isinstance(values, ValuationResult) and values.kind == "group":
        raise DataworthError(
            "explain_values needs one value per row; these are group values. Value the rows "
            "(without by_group) and summarise sources with value_by."
        )
    if not isinstance(max_depth, (int, np.integer)) or max_depth < 1:
        raise DataworthError(f"max_depth must be a positive whole number; got {max_depth!r}.")
    if not 0 < alpha < 1:
        raise DataworthError(f"alpha must be strictly between 0 and 1; got {alpha!r}.")
    keep = np.flatnonzero(~np.isnan(v_all))
    notes: list[str] = []
    n_dropped = int(v_all.size - keep.size)
    if n_dropped:
        notes.append(f"{n_dropped} row(s) with a NaN value left out of the explanation.")
    X, v = X_all[keep], v_all[keep]
    n = v.size
    if n < 2:
        raise DataworthError(f"explain_values needs at least 2 rows with a value; got {n}.")
    if min_samples_leaf is None:
        min_samples_leaf = max(5, n // 20)
    if not isinstance(min_samples_leaf, (int, np.integer)) or min_samples_leaf < 1:
        raise DataworthError(
            f"min_samples_leaf must be a positive whole number; got {min_samples_leaf!r}."
        )
    min_leaf = int(min(min_samples_leaf, max(1, n // 2)))

    def make_tree() -> Any:
        return DecisionTreeRegressor(
            max_depth=int(max_depth), min_samples_leaf=min_leaf, random_state=random_state
        )

    # scikit-learn's trees work in float32: scale each column by a power of two (exact) so that
    # its largest magnitude lies in [0.5, 1), then neither 1e100 overflows nor 1e-300 vanishes
    unit = _power_of_two_units(X)
    X_tree = X / unit
    tree = make_tree().fit(X_tree, v)
    total_var = float(v.var())
    r2_tree = float(tree.score(X_tree, v)) if total_var > 0 else math.nan
    r2_cv = math.nan
    if n >= 10 and total_var > 0:
        cv = KFold(5, shuffle=True, random_state=random_state)
        r2_cv = float(np.mean(cross_val_score(make_tree(), X_tree, v, cv=cv, scoring="r2")))

    # standardised linear effects
    sx = X.std(axis=0)
    varying = sx > 0
    coef = np.zeros(X.shape[1])
    r2_lin = math.nan
    if total_var > 0 and varying.any():
        Z = (X[:, varying] - X[:, varying].mean(axis=0)) / sx[varying]
        lin = LinearRegression().fit(Z, (v - v.mean()) / math.sqrt(total_var))
        coef[varying] = lin.coef_
        r2_lin = float(lin.score(Z, (v - v.mean()) / math.sqrt(total_var)))

    importance = np.asarray(tree.feature_importances_, dtype=np.float64)
    effects = []
    for j, name in enumerate(names):
        rho, p = _spearman(X[:, j], v)
        pd = _partial_dependence(tree, X_tree, j) if importance[j] > 0 else np.zeros(1)
        effects.append(
            FeatureEffect(
                name=name,
                importance=float(importance[j]),
                spearman=rho,
                p_value=p,
                coef=float(coef[j]),
                change=float(pd[-1] - pd[0]),
                direction=_direction(rho, p, float(importance[j]), pd, alpha),
            )
        )
    order = sorted(
        range(len(effects)),
        key=lambda j: (
            -effects[j].importance,
            -(abs(effects[j].spearman) if math.isfinite(effects[j].spearman) else -1.0),
            j,
        ),
    )

    leaf_of = tree.apply(X_tree)
    rules = _leaf_rules(tree, names, unit)
    regions = []
    for leaf, conditions in rules.items():
        members = np.flatnonzero(leaf_of == leaf)
        if members.size == 0:
            continue
        vals = v[members]
        regions.append(
            Region(
                rule=_rule_text(conditions),
                conditions=conditions,
                mean_value=float(vals.mean()),
                std_value=float(vals.std()),
                share_negative=float(np.mean(vals < 0)),
                count=int(members.size),
                share=float(members.size / n),
                rows=keep[members].astype(np.intp),
            )
        )
    regions.sort(key=lambda r: (-r.mean_value, r.rule))
    return ValueExplanation(
        features=tuple(effects[j] for j in order),
        regions=tuple(regions),
        r2_tree=r2_tree,
        r2_tree_cv=r2_cv,
        r2_linear=r2_lin,
        n_rows=n,
        n_dropped=n_dropped,
        max_depth=int(max_depth),
        min_samples_leaf=min_leaf,
        notes=tuple(notes),
    )


# ------------------------------------------------------------------------------ value by
def value_by(
    values: ValuationResult | ArrayLike, labels_or_groups: ArrayLike
) -> list[GroupSummary]:
    """Summarise the values by class or data source, highest mean first.

    Parameters
    ----------
    values : ValuationResult or array of shape (n_rows,)
    labels_or_groups : array of shape (n_rows,)
        The class or source of each row (e.g. ``train.y`` or ``train.groups``).

    Returns
    -------
    list of GroupSummary
        One per distinct group; ties in the mean keep the groups' sorted order. Rows with a NaN
        value count in ``n_missing`` only.

    Examples
    --------
    >>> s = value_by([1.0, 3.0, -1.0, -2.0, 0.5], ["a", "a", "b", "b", "b"])
    >>> [(g.group, g.count, g.mean, g.sum, round(g.share_negative, 3)) for g in s]
    [('a', 2, 2.0, 4.0, 0.0), ('b', 3, -0.8333333333333334, -2.5, 0.667)]
    """
    g = np.asarray(labels_or_groups)
    v = as_values(values, g.shape[0] if g.ndim == 1 else None)
    if g.ndim != 1:
        raise DataworthError(
            f"labels_or_groups must be one-dimensional (one entry per row); got shape {g.shape}."
        )
    if v.size == 0:
        raise DataworthError("value_by needs at least one row.")
    names, codes = np.unique(g, return_inverse=True)
    codes = codes.reshape(-1)
    finite = ~np.isnan(v)
    out = []
    for c, name in enumerate(names):
        member = codes == c
        mine = v[member & finite]
        rest = v[~member & finite]
        p = math.nan
        if mine.size and rest.size:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                p = float(scipy.stats.mannwhitneyu(mine, rest, alternative="two-sided").pvalue)
        out.append(
            GroupSummary(
                group=plain(name),
                count=int(mine.size),
                mean=float(mine.mean()) if mine.size else math.nan,
                sum=float(mine.sum()),
                share_negative=float(np.mean(mine < 0)) if mine.size else math.nan,
                p_value=p,
                n_missing=int(np.sum(member & ~finite)),
            )
        )
    out.sort(key=lambda s: -s.mean if math.isfinite(s.mean) else math.inf)
    return out


# ------------------------------------------------------------------------------ stability
def _verdict(mean: float) -> tuple[str, bool]:
    if not math.isfinite(mean):
        return "unknown: no pair of resamples had varying values to correlate", False
    if mean >= STABLE_AT:
        return (
            f"stable (mean >= {STABLE_AT}): the ranking of rows largely reproduces on other "
            "samples of the data",
            True,
        )
    if mean >= UNSTABLE_BELOW:
        return (
            f"partly stable ({UNSTABLE_BELOW} <= mean < {STABLE_AT}): trust coarse patterns "
            "(classes, sources, regions) more than the ranks of single rows",
            False,
        )
    return (
        f"unstable (mean < {UNSTABLE_BELOW}): the values do not reproduce on other samples of "
        "the data; do not base collection decisions on them",
        False,
    )


@dataclass(frozen=True, eq=False)
class BootstrapDraws:
    """The resamples of :func:`bootstrap_stability`: each one's distinct rows and the seed its
    valuation runs with (from :func:`bootstrap_draws`).

    Attributes
    ----------
    n_rows : int
        Rows of the training set the draws come from.
    rows : tuple of ndarray of int
        Positions of the distinct rows of each bootstrap draw, sorted.
    seeds : tuple of int
        The ``random_state`` for each resample's valuation.
    """

    n_rows: int
    rows: tuple[NDArray[np.intp], ...] = field(repr=False)
    seeds: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.rows)


def bootstrap_draws(
    n_rows: int, n_bootstrap: int = 10, random_state: int | None = None
) -> BootstrapDraws:
    """``n_bootstrap`` bootstrap draws of ``n_rows`` rows, each kept as its distinct rows (see
    the module notes), and a seed per draw for its valuation.

    Value ``train.take(draws.rows[b])`` against the same valuation set with
    ``random_state=draws.seeds[b]`` for every ``b``, then pass the values to
    :func:`bootstrap_stability`.

    Examples
    --------
    >>> draws = bootstrap_draws(50, 3, random_state=0)
    >>> len(draws), all(0 < r.size < 50 for r in draws.rows), len(set(draws.seeds))
    (3, True, 3)
    """
    if not isinstance(n_bootstrap, (int, np.integer)) or n_bootstrap < 2:
        raise DataworthError(f"n_bootstrap must be a whole number >= 2; got {n_bootstrap!r}.")
    if not isinstance(n_rows, (int, np.integer)) or n_rows < 1:
        raise DataworthError(f"n_rows must be a positive whole number; got {n_rows!r}.")
    n = int(n_rows)
    rng = np.random.default_rng(random_state)
    seeds = tuple(int(s) for s in rng.integers(0, 2**31 - 1, size=int(n_bootstrap)))
    rows = tuple(
        np.unique(rng.integers(0, n, size=n)).astype(np.intp) for _ in range(int(n_bootstrap))
    )
    return BootstrapDraws(n_rows=n, rows=rows, seeds=seeds)


def bootstrap_stability(
    values: Sequence[ValuationResult | ArrayLike], draws: BootstrapDraws, *, method: str = ""
) -> StabilityResult:
    """How well the ranks of the values agree across bootstrap resamples.

    ``values[b]`` holds the values of the rows ``draws.rows[b]`` (in that order), computed on
    that resample alone against a fixed valuation set (see :func:`bootstrap_draws`). For each
    pair of resamples the Spearman rank correlation of their values is taken over the rows both
    contain.

    Parameters
    ----------
    values : sequence of ValuationResult or array
        One per draw.
    draws : BootstrapDraws
    method : str, optional
        The method's name, for the result (default: that of the first ValuationResult).

    Returns
    -------
    StabilityResult

    Examples
    --------
    >>> from dataworth import value
    >>> from dataworth.datasets import load_dataset
    >>> train, valid = load_dataset("iris").split(0.3, random_state=0)
    >>> draws = bootstrap_draws(train.n_samples, 3, random_state=0)
    >>> values = [value("knn-shapley", train.take(rows), valid, random_state=seed, k=5)
    ...           for rows, seed in zip(draws.rows, draws.seeds)]
    >>> st = bootstrap_stability(values, draws)
    >>> st.pairwise.shape, bool(-1 <= st.mean <= 1), st.method
    ((3, 3), True, 'knn-shapley')
    """
    if not isinstance(draws, BootstrapDraws):
        raise DataworthError("draws must come from bootstrap_draws.")
    if len(values) != len(draws):
        raise DataworthError(f"got {len(values)} sets of values for {len(draws)} resamples.")
    B, n = len(draws), draws.n_rows
    table = np.full((B, n), np.nan)
    for b, (vals, drawn) in enumerate(zip(values, draws.rows, strict=True)):
        if isinstance(vals, ValuationResult) and vals.kind != "row":
            raise DataworthError("bootstrap_stability needs one value per row, not per group.")
        v = np.asarray(vals.values if isinstance(vals, ValuationResult) else vals, np.float64)
        if v.shape != (drawn.size,):
            raise DataworthError(
                f"resample {b} has {drawn.size} rows but {v.size} values; bootstrap_stability "
                "needs one value per row."
            )
        table[b, drawn] = v
    if not method:
        method = next((r.method for r in values if isinstance(r, ValuationResult)), "")
    pairwise = np.eye(B)
    shared = np.zeros((B, B), dtype=np.int64)
    valued = ~np.isnan(table)
    for a in range(B):
        shared[a, a] = int(valued[a].sum())
        for b in range(a + 1, B):
            both = valued[a] & valued[b]
            shared[a, b] = shared[b, a] = int(both.sum())
            rho, _ = _spearman(table[a, both], table[b, both])
            pairwise[a, b] = pairwise[b, a] = rho
    off = pairwise[np.triu_indices(B, k=1)]
    off = off[np.isfinite(off)]
    mean = float(off.mean()) if off.size else math.nan
    verdict, stable = _verdict(mean)
    return StabilityResult(
        method=method,
        n_bootstrap=B,
        rows=draws.rows,
        values=table,
        pairwise=pairwise,
        shared=shared,
        mean=mean,
        std=float(off.std()) if off.size else math.nan,
        min=float(off.min()) if off.size else math.nan,
        max=float(off.max()) if off.size else math.nan,
        verdict=verdict,
        stable=stable,
        seeds=draws.seeds,
    )


def collection_verdict(
    explanation: ValueExplanation, stability: StabilityResult
) -> tuple[bool, str]:
    """Is "collect more like the most valuable rows" supported? Both conditions must hold.

    The values must reproduce across resamples (mean rank correlation at least
    :data:`STABLE_AT`) *and* the features must predict them out of sample (cross-validated
    R^2 of the value tree at least :data:`R2_AT`): values can be perfectly reproducible yet
    carry no feature pattern (KNN-Shapley on random labels is both), and then "rows like these"
    cannot be described, let alone collected.

    Returns
    -------
    (bool, str)
        Whether it is supported, and why, with the figures and thresholds.

    Examples
    --------
    >>> from dataworth.datasets import load_dataset
    >>> train, valid = load_dataset("iris").split(0.3, random_state=0)
    >>> from dataworth import value
    >>> draws = bootstrap_draws(train.n_samples, 3, random_state=0)
    >>> st = bootstrap_stability(
    ...     [value("knn-shapley", train.take(r), valid) for r in draws.rows], draws)
    >>> ex = explain_values(value("knn-shapley", train, valid), train, random_state=0)
    >>> ok, why = collection_verdict(ex, st)
    >>> ok, why.split(":")[0]
    (False, 'not supported')
    """
    rho, r2 = stability.mean, explanation.r2_tree_cv
    if not (math.isfinite(rho) and rho >= STABLE_AT):
        return False, (
            f"not supported: the values do not reproduce well across resamples (mean rank "
            f"correlation {_fmt(rho)} < {STABLE_AT})"
        )
    if not (math.isfinite(r2) and r2 >= R2_AT):
        return False, (
            f"not supported in feature terms: the values reproduce (mean rank correlation "
            f"{_fmt(rho)} >= {STABLE_AT}) but the features do not predict them (cross-validated "
            f"R^2 {_fmt(r2)} < {R2_AT}); look at classes, sources or single rows instead"
        )
    return True, (
        f"supported: the values reproduce (mean rank correlation {_fmt(rho)} >= {STABLE_AT}) "
        f"and the features predict them (cross-validated R^2 {_fmt(r2)} >= {R2_AT}); the "
        "highest-valued regions describe rows worth collecting more of"
    )
