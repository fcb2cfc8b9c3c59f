"""Removal curves: held-out score after removing training rows lowest-valued first, and a cut.

The standard figure of data valuation (Ghorbani & Zou 2019): remove 0, 5, ..., 50% of the
training rows in order of value (lowest first, highest first) and at random, retrain the model
each time and score it on a **held-out test split that is not the valuation set**. Good values
make the lowest-first curve rise above the random band (harmful rows go first) and the
highest-first curve fall below it.

Conventions (``docs/conventions.md``, "Applications"): removing a fraction ``f`` of ``n`` rows
removes ``round(f * n)`` rows (halves round up); ties in value keep index order and NaN values
are removed last (:func:`~dataworth.ranking.removal_order`); a training subset with a single
class is scored by the constant predictor of that class, like the utilities do.

:func:`suggest_cut` picks a cut on the **valuation** curve and reports its score on the held-out
test split. A cut chosen on the valuation set overfits that set (it also produced the values), so
the valuation score at the cut is optimistic; only the held-out figure is an honest estimate. Do
not choose the cut by looking at the held-out curve either, or it stops being held out.

A cut is suggested only when it beats no removal on the valuation set by more than its noise:
``removal_curves(..., valid=...)`` also scores every lowest-first fit on ``n_boot`` paired
bootstrap resamples of the valuation rows (the same resamples for every fit), and
:func:`suggest_cut` keeps the cut only when its gain over no removal exceeds the 95th percentile
of the largest chance gain over all the cuts it chose among (a simultaneous bound, so trying many
cuts does not make one look good by luck); otherwise it suggests removing nothing.

Examples
--------
>>> from sklearn.linear_model import LogisticRegression
>>> from dataworth import value
>>> from dataworth.datasets import load_dataset, flip_labels
>>> data = load_dataset("breast_cancer")
>>> data = data.replace(X=(data.X - data.X.mean(0)) / data.X.std(0))  # standardised
>>> rest, test = data.split(0.3, random_state=0)
>>> train, valid = rest.split(0.3, random_state=0)
>>> noisy, flipped = flip_labels(train, 0.1, random_state=0)
>>> values = {"knn-shapley": value("knn-shapley", noisy, valid)}
>>> curves = removal_curves(values, noisy, test, LogisticRegression(),
...                         valid=valid, fractions=(0, 0.1), n_random=2, random_state=0)
>>> curves.lowest["knn-shapley"].shape, curves.random.shape
((2,), (2, 2))
>>> cut = suggest_cut(curves)
>>> cut.method, 0 <= cut.fraction <= 0.1
('knn-shapley', True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import joblib
import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from dataworth.data import Dataset
from dataworth.errors import DataworthError
from dataworth.progress import show_progress
from dataworth.ranking import as_values, removal_order
from dataworth.result import ValuationResult
from dataworth.utility.model import FitAndScore

__all__ = [
    "CUT_WARNING",
    "DEFAULT_FRACTIONS",
    "CutSuggestion",
    "RemovalCurves",
    "n_removed",
    "removal_curves",
    "suggest_cut",
]

#: 0, 5, 10, ..., 50 %.
DEFAULT_FRACTIONS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(11))

#: Printed with every suggested cut (CLI, docs, :class:`CutSuggestion`).
CUT_WARNING = (
    "the cut was chosen on the valuation set, which also produced the values, so the valuation "
    "score at the cut is optimistic (choosing a cut on the valuation set overfits it); trust the "
    "held-out test score, and do not pick a cut by looking at the held-out curve, or it stops "
    "being held out."
)

_F64 = NDArray[np.float64]


def n_removed(fraction: float, n: int) -> int:
    """Rows removed for ``fraction`` of ``n`` rows: ``round(fraction * n)``, halves rounding up.

    Examples
    --------
    >>> n_removed(0.05, 30), n_removed(0.1, 25), n_removed(0.5, 7)
    (2, 3, 4)
    """
    return int(np.floor(fraction * n + 0.5 + 1e-9))


@dataclass(frozen=True, eq=False)
class RemovalCurves:
    """Held-out scores after removing training rows in order of value, per method.

    Attributes
    ----------
    fractions : ndarray of shape (F,)
        Fractions of training rows removed.
    n_removed : ndarray of shape (F,)
        Rows removed at each fraction.
    lowest, highest : dict of str to ndarray of shape (F,)
        Held-out test score per method, removing the lowest- (highest-) valued rows first.
    random : ndarray of shape (n_random, F)
        Held-out test score removing rows at random, one row per seed (shared by all methods).
    orders : dict of str to ndarray of int
        Each method's removal order (training positions, lowest value first).
    valid_lowest : dict of str to ndarray of shape (F,)
        Valuation-set score of the same lowest-first fits (empty without ``valid``); this is what
        :func:`suggest_cut` chooses on.
    metric : str
        Scorer name (``"accuracy"``, ``"r2"``, ...).
    n_train, n_test, n_valid : int
        Sizes of the three splits (``n_valid`` is 0 without ``valid``).
    valid_boot : dict of str to ndarray of shape (n_boot, F)
        Valuation-set score of the lowest-first fits on each paired bootstrap resample of the
        valuation rows (row ``b`` is the same resample for every fit and method); empty without
        ``valid`` or with ``n_boot=0``.
    """

    fractions: _F64
    n_removed: NDArray[np.int64]
    lowest: dict[str, _F64]
    highest: dict[str, _F64]
    random: _F64
    orders: dict[str, NDArray[np.intp]]
    valid_lowest: dict[str, _F64] = field(default_factory=dict)
    metric: str = "accuracy"
    n_train: int = 0
    n_test: int = 0
    n_valid: int = 0
    valid_boot: dict[str, _F64] = field(default_factory=dict)

    @property
    def methods(self) -> list[str]:
        """Method names, in the order given."""
        return list(self.lowest)

    @property
    def random_mean(self) -> _F64:
        """Mean held-out score of random removal over the seeds."""
        return np.asarray(self.random.mean(axis=0), dtype=np.float64)

    @property
    def random_std(self) -> _F64:
        """Standard deviation over the seeds (0 with a single seed): the band is mean +- std."""
        if self.random.shape[0] < 2:
            return np.zeros(self.fractions.size)
        return np.asarray(self.random.std(axis=0, ddof=1), dtype=np.float64)

    def at(self, fraction: float) -> int:
        """Column of ``fraction`` in the curves (a :class:`DataworthError` if it is not there)."""
        hits = np.flatnonzero(np.isclose(self.fractions, fraction, rtol=0, atol=1e-9))
        if hits.size == 0:
            raise DataworthError(
                f"fraction {fraction:g} is not on the curves; they have "
                f"{', '.join(f'{f:g}' for f in self.fractions)}."
            )
        return int(hits[0])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: fractions, counts, curves per method, random mean/std/per seed."""
        return {
            "metric": self.metric,
            "split": "held-out test (not the valuation set)",
            "n_train": self.n_train,
            "n_test": self.n_test,
            "n_valid": self.n_valid,
            "fractions": self.fractions.tolist(),
            "n_removed": self.n_removed.tolist(),
            "lowest_first": {m: c.tolist() for m, c in self.lowest.items()},
            "highest_first": {m: c.tolist() for m, c in self.highest.items()},
            "random": {
                "mean": self.random_mean.tolist(),
                "std": self.random_std.tolist(),
                "per_seed": self.random.tolist(),
            },
            "valid_lowest_first": {m: c.tolist() for m, c in self.valid_lowest.items()},
        }

    def records(self) -> list[dict[str, Any]]:
        """One record per (curve, fraction): method, order, fraction, n_removed, split, score,
        std (std is 0 except for random removal)."""
        out: list[dict[str, Any]] = []
        for j, (f, k) in enumerate(
            zip(self.fractions.tolist(), self.n_removed.tolist(), strict=True)
        ):
            for method in self.methods:
                for order, curve in (("lowest", self.lowest), ("highest", self.highest)):
                    out.append(_record(method, order, f, k, "test", curve[method][j], 0.0))
                if method in self.valid_lowest:
                    out.append(
                        _record(method, "lowest", f, k, "valid", self.valid_lowest[method][j], 0.0)
                    )
            out.append(
                _record("random", "random", f, k, "test", self.random_mean[j], self.random_std[j])
            )
        return out

    def to_frame(self) -> Any:
        """A pandas DataFrame of :meth:`records` (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise DataworthError('to_frame needs pandas: pip install "dataworth[pandas]"') from None
        return pd.DataFrame.from_records(
            self.records(),
            columns=["method", "order", "fraction", "n_removed", "split", "score", "std"],
        )


def _record(
    method: str, order: str, f: float, k: int, split: str, score: float, std: float
) -> dict[str, Any]:
    return {
        "method": method,
        "order": order,
        "fraction": float(f),
        "n_removed": int(k),
        "split": split,
        "score": float(score),
        "std": float(std),
    }


def _fit_and_score(
    scorer: FitAndScore, rows: NDArray[np.intp], evals: Sequence[Dataset], boot: _F64 | None
) -> tuple[list[float], _F64 | None]:
    """One fit scored on every evaluation set, and on the bootstrap resamples (``boot``, row
    weights) of the last one."""
    fitted = scorer.fit(rows)
    scores = [scorer.score(fitted, data) for data in evals]
    return scores, None if boot is None else scorer.score_resamples(fitted, evals[-1], boot)


def _check_fractions(fractions: Sequence[float], n: int) -> _F64:
    f = np.asarray(fractions, dtype=np.float64)
    if f.ndim != 1 or f.size == 0 or not np.all(np.isfinite(f)):
        raise DataworthError(f"fractions must be a non-empty list of numbers; got {fractions!r}.")
    if f.min() < 0 or f.max() >= 1:
        raise DataworthError(f"fractions must lie in [0, 1); got {f.min():g}..{f.max():g}.")
    if np.any(np.diff(f) <= 0):
        raise DataworthError("fractions must be strictly increasing.")
    if n_removed(float(f.max()), n) >= n:
        raise DataworthError(
            f"removing {f.max():g} of {n} rows leaves none to train on; lower the largest fraction."
        )
    return f


def _as_value_dict(
    values_by_method: Mapping[str, ValuationResult | Any] | ValuationResult | Any, n: int
) -> dict[str, _F64]:
    if isinstance(values_by_method, Mapping):
        items = dict(values_by_method)
    elif isinstance(values_by_method, ValuationResult):
        items = {values_by_method.method or "values": values_by_method}
    else:
        items = {"values": values_by_method}
    if not items:
        raise DataworthError("values_by_method is empty; give at least one method's values.")
    out: dict[str, _F64] = {}
    for name, vals in items.items():
        try:
            out[str(name)] = as_values(vals, n=n)
        except DataworthError as exc:
            raise DataworthError(f"values of {name!r}: {exc}") from None
    return out


def removal_curves(
    values_by_method: Mapping[str, ValuationResult | Any] | ValuationResult | Any,
    train: Dataset,
    test: Dataset,
    model: Any = None,
    *,
    valid: Dataset | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    n_random: int = 5,
    scoring: Any = None,
    random_state: int | None = None,
    n_jobs: int | None = 1,
    n_boot: int = 1000,
    progress: bool | None = False,
) -> RemovalCurves:
    """Held-out score after removing rows lowest-valued first, highest first and at random.

    Parameters
    ----------
    values_by_method : dict of str to ValuationResult or array, or a single one
        One value per row of ``train`` for each method (a plain array is called ``"values"``).
    train : Dataset
        The training rows that were valued.
    test : Dataset
        Held-out rows used for nothing else: **not** the valuation set.
    model : estimator, optional
        Retrained (a clone) after each removal; defaults to logistic regression for class
        labels, linear regression otherwise.
    valid : Dataset, optional
        The valuation set. When given, the lowest-first fits are also scored on it
        (``valid_lowest``) so that :func:`suggest_cut` can choose a cut without touching
        ``test``.
    fractions : sequence of float, default=(0, 0.05, ..., 0.5)
        Fractions of training rows to remove, increasing, each in [0, 1).
    n_random : int, default=5
        Seeds of random removal (the band is mean +- standard deviation over them).
    scoring : str or callable, optional
        scikit-learn scorer; accuracy for classifiers, r2 for regressors by default.
    random_state : int, optional
        Seed of the random removal orders: ``rng = np.random.default_rng(random_state)`` and
        seed ``r`` removes rows in the order of the ``r``-th ``rng.permutation(n)``.
    n_jobs : int, default=1
        Parallel fits (joblib). The curves do not depend on it.
    n_boot : int, default=1000
        With ``valid``: paired bootstrap resamples of the valuation rows on which every
        lowest-first fit is also scored (``valid_boot``), so that :func:`suggest_cut` can tell a
        real gain from noise; drawn from ``random_state`` after the random removal orders.
        Scorers other than accuracy and r2 are called once per resample (fewer may do).
    progress : bool or None, default=False
        A progress bar over the fits; ``None``: when interactive (a terminal or a notebook).

    Returns
    -------
    RemovalCurves
    """
    from dataworth.models import default_model

    if train.n_features != test.n_features:
        raise DataworthError(
            f"train has {train.n_features} features but test has {test.n_features}."
        )
    if valid is not None and valid.n_features != train.n_features:
        raise DataworthError(
            f"train has {train.n_features} features but valid has {valid.n_features}."
        )
    if not isinstance(n_random, (int, np.integer)) or n_random < 1:
        raise DataworthError(f"n_random must be a positive whole number; got {n_random!r}.")
    n = train.n_samples
    values = _as_value_dict(values_by_method, n)
    f = _check_fractions(fractions, n)
    ks = np.array([n_removed(float(x), n) for x in f], dtype=np.int64)
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise DataworthError(f"n_boot must be a whole number >= 0; got {n_boot!r}.")
    model = default_model(train.y) if model is None else model
    evals = [test] if valid is None else [test, valid]

    orders = {m: removal_order(v) for m, v in values.items()}
    rng = np.random.default_rng(random_state)
    random_orders = [rng.permutation(n).astype(np.intp) for _ in range(int(n_random))]
    boot: _F64 | None = None
    if valid is not None and n_boot > 0:
        m_valid = valid.n_samples
        counts = rng.multinomial(m_valid, np.full(m_valid, 1.0 / m_valid), size=int(n_boot))
        boot = counts.astype(np.float64)
    scorer = FitAndScore(model, train, scoring)
    all_orders: list[NDArray[np.intp]] = []
    for m in values:
        all_orders += [orders[m], removal_order(values[m], lowest_first=False)]
    all_orders += random_orders

    # Every distinct kept set is fitted once (0% removal is shared by all curves).
    tasks: dict[bytes, NDArray[np.intp]] = {}
    want_boot: set[bytes] = set()
    keys = np.empty((len(all_orders), ks.size), dtype=object)
    for o, order in enumerate(all_orders):
        for j, k in enumerate(ks.tolist()):
            keep = np.sort(order[k:])
            key = keep.tobytes()
            tasks.setdefault(key, keep)
            keys[o, j] = key
            if o < 2 * len(values) and o % 2 == 0:  # lowest-first: the cut is chosen on these
                want_boot.add(key)
    task_keys = list(tasks)
    bar = tqdm(total=len(task_keys), desc="removal curves", leave=False,
               disable=not show_progress(progress))  # fmt: skip
    with threadpool_limits(limits=1):  # many tiny fits: BLAS threads only contend
        scores = []
        for score in joblib.Parallel(n_jobs=n_jobs, return_as="generator")(
            joblib.delayed(_fit_and_score)(
                scorer, tasks[k], evals, boot if k in want_boot else None
            )
            for k in task_keys
        ):
            scores.append(score)
            bar.update(1)
    bar.close()
    by_key = {k: s for k, (s, _) in zip(task_keys, scores, strict=True)}
    boot_by_key = {k: b for k, (_, b) in zip(task_keys, scores, strict=True) if b is not None}

    def curve(o: int, split: int = 0) -> _F64:
        return np.array([by_key[keys[o, j]][split] for j in range(ks.size)], dtype=np.float64)

    lowest: dict[str, _F64] = {}
    highest: dict[str, _F64] = {}
    valid_lowest: dict[str, _F64] = {}
    valid_boot: dict[str, _F64] = {}
    for i, m in enumerate(values):
        lowest[m] = curve(2 * i)
        highest[m] = curve(2 * i + 1)
        if valid is not None:
            valid_lowest[m] = curve(2 * i, split=1)
        if boot_by_key:
            cols = [boot_by_key[keys[2 * i, j]] for j in range(ks.size)]
            valid_boot[m] = np.column_stack(cols).astype(np.float64)
    base = 2 * len(values)
    random = np.vstack([curve(base + r) for r in range(int(n_random))])
    return RemovalCurves(
        fractions=f,
        n_removed=ks,
        lowest=lowest,
        highest=highest,
        random=random,
        orders=orders,
        valid_lowest=valid_lowest,
        metric=scorer.metric,
        n_train=n,
        n_test=test.n_samples,
        n_valid=0 if valid is None else valid.n_samples,
        valid_boot=valid_boot,
    )


# ---------------------------------------------------------------------------------- the cut
@dataclass(frozen=True, eq=False)
class CutSuggestion:
    """A suggested cut: remove the ``n_removed`` lowest-valued rows by ``method``.

    Attributes
    ----------
    method : str
    fraction : float
    n_removed : int
    removed : ndarray of int
        Training positions to remove, lowest value first.
    keep : ndarray of int
        Training positions kept, in dataset order.
    valid_score, valid_baseline : float
        Valuation-set score at the cut and without removal. Optimistic: the cut was chosen on it.
    test_score, test_baseline : float
        Held-out test score at the cut and without removal: the honest figures.
    random_mean, random_std : float
        Held-out score of removing the same number of rows at random.
    metric : str
    warning : str
        :data:`CUT_WARNING`.
    significance : dict
        How the cut was tested against noise (empty when the curves have no bootstrap):
        ``test`` (the rule, in words), ``n_boot``, ``n_valid``, ``n_candidates`` (cuts chosen
        among), ``gain`` (valuation score of the best cut minus no removal), ``noise`` (the
        95th percentile of the largest chance gain over the candidates), ``significant``, and
        ``candidate`` (the best valuation cut, kept or not: method, fraction, n_removed,
        valid_score, test_score).
    """

    method: str
    fraction: float
    n_removed: int
    removed: NDArray[np.intp]
    keep: NDArray[np.intp]
    valid_score: float
    valid_baseline: float
    test_score: float
    test_baseline: float
    random_mean: float
    random_std: float
    metric: str
    warning: str = CUT_WARNING
    significance: dict[str, Any] = field(default_factory=dict)

    @property
    def held_out_disagrees(self) -> bool:
        """The cut removes rows but scores below no removal on the held-out test split."""
        return bool(self.n_removed > 0 and self.test_score < self.test_baseline)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (positions of the removed rows included)."""
        return {
            "method": self.method,
            "fraction": self.fraction,
            "n_removed": self.n_removed,
            "removed": self.removed.tolist(),
            "metric": self.metric,
            "valid_score": self.valid_score,
            "valid_baseline": self.valid_baseline,
            "test_score": self.test_score,
            "test_baseline": self.test_baseline,
            "random_mean": self.random_mean,
            "random_std": self.random_std,
            "warning": self.warning,
            "significance": dict(self.significance),
            "held_out_disagrees": self.held_out_disagrees,
        }


def suggest_cut(
    curves: RemovalCurves,
    *,
    method: str | None = None,
    max_fraction: float | None = None,
    tolerance: float = 0.0,
    level: float = 0.95,
) -> CutSuggestion:
    """Choose a cut on the valuation-set curve and report its held-out test score.

    Rule: among the methods (``method``, or all of them) and the fractions up to
    ``max_fraction``, take the best valuation-set score ``s*`` of lowest-first removal; the cut
    is the **smallest** fraction whose valuation score is at least ``s* - tolerance`` (ties: the
    higher valuation score, then the method listed first). The held-out test split plays no part
    in the choice, so its score at the cut is an honest estimate; the valuation score is not
    (see :data:`CUT_WARNING`).

    When the curves carry paired bootstrap scores (``valid_boot``, from
    ``removal_curves(..., valid=..., n_boot=...)``), the cut is kept only if it beats no
    removal by more than its noise: its valuation gain ``G(c*) = s(c*) - s(0)`` must exceed
    ``q``, the ``level`` quantile over resamples ``b`` of ``max_c [g_b(c) - G(c)]``, the largest
    chance deviation of any candidate cut ``c`` (every method and fraction > 0 considered). This
    is a simultaneous bound: picking the best of many cuts does not make noise look like a gain.
    Otherwise the suggestion is to remove nothing, and ``significance`` says why.

    Parameters
    ----------
    curves : RemovalCurves
        Computed with ``valid=`` (a :class:`DataworthError` otherwise).
    method : str, optional
        Restrict the choice to one method.
    max_fraction : float, optional
        Largest fraction considered (default: all on the curves).
    tolerance : float, default=0.0
        Prefer smaller cuts that score within ``tolerance`` of the best.
    level : float, default=0.95
        Confidence of the noise bound.
    """
    if not curves.valid_lowest:
        raise DataworthError(
            "suggest_cut chooses on the valuation set: compute the curves with valid=<valuation "
            "set>. Choosing on the held-out test curve would make its score optimistic."
        )
    if method is not None and method not in curves.valid_lowest:
        raise DataworthError(
            f"method {method!r} is not on the curves; they have: {', '.join(curves.methods)}."
        )
    if not (np.isfinite(tolerance) and tolerance >= 0):
        raise DataworthError(f"tolerance must be a number >= 0; got {tolerance!r}.")
    methods = [method] if method is not None else curves.methods
    limit = np.inf if max_fraction is None else float(max_fraction)
    cols = np.flatnonzero(curves.fractions <= limit + 1e-12)
    if cols.size == 0:
        raise DataworthError(
            f"max_fraction {max_fraction} is below every fraction on the curves "
            f"(smallest {curves.fractions[0]:g})."
        )
    best = max(float(np.nanmax(curves.valid_lowest[m][cols])) for m in methods)
    choice: tuple[int, float, int] | None = None  # (column, -valid score, method position)
    for pos, m in enumerate(methods):
        scores = curves.valid_lowest[m]
        for j in cols.tolist():
            if scores[j] >= best - tolerance - 1e-12:
                key = (j, -float(scores[j]), pos)
                if choice is None or key < choice:
                    choice = key
    assert choice is not None
    j, _, pos = choice
    m = methods[pos]
    significance: dict[str, Any] = {}
    if curves.valid_boot and curves.n_removed[0] == 0 and int(curves.n_removed[j]) > 0:
        significance = _significance(curves, methods, cols, m, j, level)
        if not significance["significant"]:
            j = 0  # remove nothing
    k = int(curves.n_removed[j])
    order = curves.orders[m]
    return CutSuggestion(
        method=m,
        fraction=float(curves.fractions[j]),
        n_removed=k,
        removed=order[:k].copy(),
        keep=np.sort(order[k:]),
        valid_score=float(curves.valid_lowest[m][j]),
        valid_baseline=float(curves.valid_lowest[m][0]) if curves.n_removed[0] == 0 else np.nan,
        test_score=float(curves.lowest[m][j]),
        test_baseline=float(curves.lowest[m][0]) if curves.n_removed[0] == 0 else np.nan,
        random_mean=float(curves.random_mean[j]),
        random_std=float(curves.random_std[j]),
        metric=curves.metric,
        significance=significance,
    )


def _significance(
    curves: RemovalCurves, methods: list[str], cols: NDArray[np.intp], m: str, j: int, level: float
) -> dict[str, Any]:
    """Paired bootstrap test of the cut (method ``m``, column ``j``) against no removal."""
    if not 0 < level < 1:
        raise DataworthError(f"level must lie strictly between 0 and 1; got {level!r}.")
    cand = [c for c in cols.tolist() if curves.n_removed[c] > 0]
    gains, noise = [], []
    for name in methods:
        boot = curves.valid_boot[name]  # (B, F), column 0 = no removal
        g_boot = boot[:, cand] - boot[:, [0]]
        g = curves.valid_lowest[name][cand] - curves.valid_lowest[name][0]
        gains.append(g)
        noise.append(g_boot - g[None, :])
    deviations = np.concatenate(noise, axis=1)
    worst = np.nanmax(deviations, axis=1)  # the largest chance gain on each resample
    q = float(np.nanquantile(worst, level))
    gain = float(curves.valid_lowest[m][j] - curves.valid_lowest[m][0])
    n_boot = int(curves.valid_boot[m].shape[0])
    n_candidates = len(methods) * len(cand)
    return {
        "test": (
            f"paired bootstrap over the {curves.n_valid} valuation rows, {n_boot} resamples; "
            f"noise = the {level:.0%} quantile of the largest chance gain among the "
            f"{n_candidates} cuts tried"
        ),
        "n_boot": n_boot,
        "n_valid": curves.n_valid,
        "n_candidates": n_candidates,
        "level": level,
        "gain": gain,
        "noise": q,
        "significant": bool(gain > q),
        "candidate": {
            "method": m,
            "fraction": float(curves.fractions[j]),
            "n_removed": int(curves.n_removed[j]),
            "valid_score": float(curves.valid_lowest[m][j]),
            "test_score": float(curves.lowest[m][j]),
        },
    }
