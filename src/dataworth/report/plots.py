"""Plots of values and of what they are used for, drawn with matplotlib's object-oriented API.

Every function takes ``ax=`` (a matplotlib Axes) and returns the Axes it drew on. Without
``ax`` a new :class:`matplotlib.figure.Figure` is made (not through ``pyplot``), so nothing here
touches pyplot's global state: call ``ax.figure.savefig(...)`` to save, or pass an Axes of your
own figure. matplotlib is imported only when a plot is drawn (``pip install "dataworth[report]"``).

Values are a :class:`~dataworth.result.ValuationResult` or a plain array, as everywhere else.

Examples
--------
>>> import numpy as np
>>> ax = plot_value_distribution(np.array([0.1, -0.2, 0.3, 0.0]), by=["a", "b", "a", "b"])
>>> ax.get_xlabel()
'value'
>>> ax.figure.savefig(__import__("io").BytesIO(), format="svg")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dataworth.errors import DataworthError
from dataworth.ranking import as_values

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "PALETTE",
    "histogram_edges",
    "plot_learning_curves",
    "plot_payouts",
    "plot_removal_curves",
    "plot_value_distribution",
    "plot_value_vs_feature",
]

#: matplotlib's "tab10" colours, shared with the HTML report (ten classes get ten colours).
PALETTE: tuple[str, ...] = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
_BAND = "#999999"


def _axes(ax: Axes | None, figsize: tuple[float, float] = (6.4, 4.0)) -> Axes:
    """``ax`` itself, or the Axes of a new Figure made without pyplot."""
    if ax is not None:
        return ax
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise DataworthError('plots need matplotlib: pip install "dataworth[report]"') from None
    fig = Figure(figsize=figsize, layout="constrained")
    return fig.add_subplot()


def categories(by: ArrayLike, max_categories: int = 10) -> tuple[list[str], NDArray[np.intp]]:
    """Category names and a code per entry, at most ``max_categories`` of them.

    With more categories, the ``max_categories - 1`` most frequent are kept (ties: the one that
    sorts first), listed in sorted order, and the rest pooled as ``"other"`` (last).

    Examples
    --------
    >>> names, codes = categories(["b", "a", "b", "c", "c", "c", "d"], max_categories=3)
    >>> names, codes.tolist()
    (['b', 'c', 'other'], [0, 2, 0, 1, 1, 1, 2])
    """
    arr = np.asarray(by)
    if arr.ndim != 1:
        raise DataworthError(f"by must be one-dimensional; got shape {arr.shape}.")
    uniq, inverse, counts = np.unique(arr, return_inverse=True, return_counts=True)
    names = [str(u) for u in uniq.tolist()]
    if len(names) <= max_categories:
        return names, inverse.astype(np.intp)
    keep = np.sort(np.argsort(-counts, kind="stable")[: max(max_categories - 1, 1)])
    new_code = np.full(len(names), keep.size, dtype=np.intp)
    new_code[keep] = np.arange(keep.size)
    return [names[k] for k in keep.tolist()] + ["other"], new_code[inverse]


def histogram_edges(values: ArrayLike, bins: int) -> NDArray[np.float64]:
    """``bins + 1`` equal-width bin edges over finite ``values``, safe at any magnitude.

    Unlike :func:`numpy.histogram_bin_edges`, equal values as large as 1e300 get a window of
    their own relative width (numpy's fixed +-0.5 vanishes there), and a range wider than the
    largest float is split without overflow.

    Examples
    --------
    >>> float(histogram_edges([1e300, 1e300], 2)[1])
    1e+300
    >>> histogram_edges([-1.7e308, 1.7e308], 2).tolist()
    [-1.7e+308, 0.0, 1.7e+308]
    >>> histogram_edges([], 1).tolist()
    [-0.5, 0.5]
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
    if lo == hi:
        half = max(0.5, abs(lo) * 1e-6)
        lo, hi = lo - half, hi + half
    t = np.linspace(0.0, 1.0, int(bins) + 1)
    return lo * (1.0 - t) + hi * t


def plot_value_distribution(
    values: Any,
    by: ArrayLike | None = None,
    *,
    bins: int = 30,
    max_categories: int = 10,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Histogram of values, stacked by class (or by data source) when ``by`` is given.

    Parameters
    ----------
    values : ValuationResult or array of shape (n,)
    by : array of shape (n,), optional
        Class label or data source of each value; beyond ``max_categories`` the rarest are
        pooled as "other" (:func:`categories`).
    bins : int, default=30
    max_categories : int, default=10
    title : str, optional
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
        The count of values that are not finite (not drawn) is written in the corner.

    Examples
    --------
    >>> ax = plot_value_distribution([0.1, 0.2, -0.4], by=[0, 1, 1], bins=4)
    >>> int(sum(p.get_height() for p in ax.patches))
    3
    """
    v = as_values(values)
    ax = _axes(ax)
    finite = np.isfinite(v)
    edges = histogram_edges(v[finite], bins)
    if by is None:
        ax.hist(v[finite], bins=edges.tolist(), color=PALETTE[0], label="all rows")
    else:
        names, codes = categories(by, max_categories)
        if codes.size != v.size:
            raise DataworthError(f"by has {codes.size} entries for {v.size} values.")
        groups = [v[finite & (codes == c)] for c in range(len(names))]
        colors = [PALETTE[c % len(PALETTE)] for c in range(len(names))]
        ax.hist(groups, bins=edges.tolist(), stacked=True, color=colors, label=names)
        ax.legend(fontsize="small")
    n_bad = int((~finite).sum())
    if n_bad:
        ax.text(
            0.99,
            0.98,
            f"{n_bad} not finite, not shown",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize="small",
        )
    ax.set_xlabel("value")
    ax.set_ylabel("rows")
    if title:
        ax.set_title(title)
    return ax


def curve_dict(curves: Any) -> dict[str, Any]:
    """A :class:`~dataworth.apps.removal.RemovalCurves` or its ``to_dict()`` as the dict form."""
    if hasattr(curves, "to_dict"):
        curves = curves.to_dict()
    if not (
        isinstance(curves, Mapping)
        and "fractions" in curves
        and isinstance(curves.get("lowest_first"), Mapping)
    ):
        raise DataworthError(
            "curves must be a RemovalCurves (dataworth.apps.removal.removal_curves) or its "
            f"to_dict() with fractions and lowest_first; got {type(curves).__name__}."
        )
    n = len(curves["fractions"])
    out = dict(curves)
    out["highest_first"] = dict(curves.get("highest_first") or {})
    for key in ("lowest_first", "highest_first"):
        for method, curve in out[key].items():
            if len(curve) != n:
                raise DataworthError(
                    f"curves[{key!r}][{method!r}] has {len(curve)} points for {n} fractions."
                )
    rnd = curves.get("random")
    if rnd:  # the random baseline: a mean, and a standard deviation (0 when not given)
        if "mean" not in rnd:
            raise DataworthError("curves['random'] needs a 'mean' (one score per fraction).")
        std = rnd.get("std")
        out["random"] = {"mean": rnd["mean"], "std": [0.0] * n if std is None else std}
        for part in ("mean", "std"):
            if len(out["random"][part]) != n:
                raise DataworthError(
                    f"curves['random'][{part!r}] has {len(out['random'][part])} points for "
                    f"{n} fractions."
                )
    else:
        out.pop("random", None)
    return out


def plot_removal_curves(
    curves: Any,
    *,
    order: str = "both",
    band: float = 1.0,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Held-out score against the share of training rows removed, per method, with the random
    baseline as mean +- ``band`` standard deviations.

    Parameters
    ----------
    curves : RemovalCurves or dict
        From :func:`dataworth.apps.removal.removal_curves` (or its ``to_dict()``).
    order : {"both", "lowest", "highest"}, default="both"
        Lowest-valued first (solid), highest-valued first (dashed), or both.
    band : float, default=1.0
        Half-width of the random band in standard deviations over the random seeds.
    title : str, optional
    ax : matplotlib Axes, optional

    Examples
    --------
    >>> c = {"fractions": [0, 0.1], "metric": "accuracy",
    ...      "lowest_first": {"knn": [0.8, 0.9]}, "highest_first": {"knn": [0.8, 0.6]},
    ...      "random": {"mean": [0.8, 0.79], "std": [0.0, 0.01]}}
    >>> ax = plot_removal_curves(c)
    >>> [line.get_label() for line in ax.get_lines()]
    ['knn, lowest first', 'knn, highest first', 'random (mean ± 1 sd)']
    """
    if order not in ("both", "lowest", "highest"):
        raise DataworthError(f"order must be 'both', 'lowest' or 'highest'; got {order!r}.")
    d = curve_dict(curves)
    x = 100 * np.asarray(d["fractions"], dtype=np.float64)
    ax = _axes(ax)
    for i, method in enumerate(d["lowest_first"]):
        color = PALETTE[i % len(PALETTE)]
        if order in ("both", "lowest"):
            ax.plot(
                x,
                d["lowest_first"][method],
                color=color,
                marker="o",
                markersize=3,
                label=f"{method}, lowest first",
            )
        if order in ("both", "highest") and method in d["highest_first"]:
            ax.plot(
                x,
                d["highest_first"][method],
                color=color,
                linestyle="--",
                label=f"{method}, highest first",
            )
    rnd = d.get("random")
    if rnd is not None:
        mean = np.asarray(rnd["mean"], dtype=np.float64)
        std = np.asarray(rnd["std"], dtype=np.float64)
        ax.plot(x, mean, color=_BAND, linestyle=":", label=f"random (mean ± {band:g} sd)")
        ax.fill_between(
            x, mean - band * std, mean + band * std, color=_BAND, alpha=0.25, linewidth=0
        )
    ax.set_xlabel("training rows removed (%)")
    ax.set_ylabel(f"held-out {d.get('metric', 'score')}")
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return ax


def plot_value_vs_feature(
    values: Any,
    feature: ArrayLike,
    *,
    feature_name: str = "feature",
    by: ArrayLike | None = None,
    max_categories: int = 10,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Scatter of each row's value against one of its features, coloured by ``by``.

    Examples
    --------
    >>> ax = plot_value_vs_feature([0.1, 0.3], [1.0, 2.0], feature_name="age")
    >>> ax.get_xlabel(), ax.collections[0].get_offsets().tolist()
    ('age', [[1.0, 0.1], [2.0, 0.3]])
    """
    v = as_values(values)
    f = np.asarray(feature, dtype=np.float64)
    if f.shape != v.shape:
        raise DataworthError(f"feature has shape {f.shape}; it needs one entry per value.")
    ax = _axes(ax)
    if by is None:
        ax.scatter(f, v, s=12, color=PALETTE[0], alpha=0.7)
    else:
        names, codes = categories(by, max_categories)
        if codes.size != v.size:
            raise DataworthError(f"by has {codes.size} entries for {v.size} values.")
        for c, name in enumerate(names):
            sel = codes == c
            ax.scatter(f[sel], v[sel], s=12, color=PALETTE[c % len(PALETTE)], alpha=0.7, label=name)
        ax.legend(fontsize="small")
    ax.axhline(0.0, color=_BAND, linewidth=0.8)
    ax.set_xlabel(feature_name)
    ax.set_ylabel("value")
    if title:
        ax.set_title(title)
    return ax


def plot_learning_curves(
    curves: Mapping[str, Any],
    *,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Active-learning curves: test accuracy against labels bought, one line per strategy.

    Parameters
    ----------
    curves : dict of str to CurveSummary, or to a list of LearningCurve
        :func:`dataworth.apps.active_loop.summarize_curves` output (mean with its confidence
        band), or :func:`~dataworth.apps.active_loop.compare_strategies` output (summarised here
        with 95% t intervals).

    Examples
    --------
    >>> from dataworth.apps.active_loop import CurveSummary
    >>> s = CurveSummary(np.array([10, 20]), np.array([0.6, 0.8]), np.array([0.5, 0.7]),
    ...                  np.array([0.7, 0.9]), 3)
    >>> ax = plot_learning_curves({"random": s})
    >>> ax.get_lines()[0].get_ydata().tolist()
    [0.6, 0.8]
    """
    if not isinstance(curves, Mapping) or not curves:
        raise DataworthError("curves must be a non-empty dict of strategy to curves.")
    first = next(iter(curves.values()))
    if not hasattr(first, "mean"):
        from dataworth.apps.active_loop import summarize_curves

        curves = summarize_curves(curves)
    ax = _axes(ax)
    for i, (name, s) in enumerate(curves.items()):
        color = PALETTE[i % len(PALETTE)]
        x = np.asarray(s.n_labels, dtype=np.float64)
        ax.plot(
            x,
            s.mean,
            color=color,
            marker="o",
            markersize=3,
            label=f"{name} ({s.n_seeds} seed{'s' if s.n_seeds != 1 else ''})",
        )
        if s.n_seeds > 1:
            ax.fill_between(x, s.low, s.high, color=color, alpha=0.2, linewidth=0)
    ax.set_xlabel("labels bought")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return ax


def plot_payouts(
    providers: Sequence[Any] | ArrayLike,
    payouts: ArrayLike,
    *,
    errors: ArrayLike | None = None,
    sort: bool = True,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Horizontal bars of each data provider's payout (or value), largest at the top.

    Parameters
    ----------
    providers : sequence of names
    payouts : array of shape (n_providers,)
    errors : array, optional
        Error bars (e.g. standard errors).
    sort : bool, default=True
        Order by payout; otherwise keep the given order (first at the top).

    Examples
    --------
    >>> ax = plot_payouts(["a", "b"], [1.0, 3.0])
    >>> [t.get_text() for t in ax.get_yticklabels()], [float(p.get_width()) for p in ax.patches]
    (['a', 'b'], [1.0, 3.0])
    """
    names = [str(p) for p in np.asarray(providers, dtype=object).tolist()]
    pay = np.asarray(payouts, dtype=np.float64)
    if pay.ndim != 1 or pay.size != len(names):
        raise DataworthError(f"payouts must have one entry per provider ({len(names)}).")
    err = None if errors is None else np.asarray(errors, dtype=np.float64)
    order = (
        np.argsort(np.where(np.isnan(pay), -np.inf, pay), kind="stable")
        if sort
        else (np.arange(pay.size)[::-1])
    )
    ax = _axes(ax, figsize=(6.4, max(2.0, 0.3 * pay.size + 1.0)))
    colors = [PALETTE[3] if p < 0 else PALETTE[0] for p in pay[order]]
    ax.barh(np.arange(pay.size), pay[order], color=colors, xerr=None if err is None else err[order])
    ax.set_yticks(np.arange(pay.size), [names[i] for i in order.tolist()])
    ax.axvline(0.0, color="#333333", linewidth=0.8)
    ax.set_xlabel("payout")
    if title:
        ax.set_title(title)
    return ax
