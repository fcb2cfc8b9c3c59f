"""Simulated pool-based active learning: learning curves and labels saved versus random.

:func:`active_learning_curve` runs one loop: an :class:`Oracle` holds the pool's labels and
reveals a label only when its row is bought; each round the model is fitted on the rows bought
so far and scored on a test split, then the strategy (see :mod:`dataworth.apps.select`), which
sees the bought rows and the *features* of the rest, chooses the next batch.
:func:`compare_strategies` runs several strategies over several seeds (the same initial rows for
every strategy of one seed, so comparisons are paired); :func:`summarize_curves` gives mean
learning curves with confidence intervals; :func:`labels_to_reach` the labels each strategy needs
to reach a target accuracy and the labels it saves versus the baseline (``random``), with t or
bootstrap confidence intervals over seeds.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(300, 2)); y = (X[:, 0] + X[:, 1] > 0).astype(int)
>>> curves = compare_strategies(["random", "uncertainty"], X[:200], y[:200], X[200:], y[200:],
...                             seeds=[0, 1], initial=6, batch=4, rounds=3)
>>> [c.n_labels.tolist() for c in curves["random"]]
[[6, 10, 14, 18], [6, 10, 14, 18]]
>>> rows = labels_to_reach(curves, 0.8)
>>> [r.strategy for r in rows]
['random', 'uncertainty']
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from numpy.typing import ArrayLike, NDArray
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from dataworth.apps.select import Strategy, make_strategy
from dataworth.data import Dataset
from dataworth.errors import DataworthError
from dataworth.utility.model import fit_and_score

__all__ = [
    "CurveSummary",
    "LearningCurve",
    "Oracle",
    "Reach",
    "active_learning_curve",
    "compare_strategies",
    "format_reach_table",
    "labels_to_reach",
    "summarize_curves",
]

_F64 = NDArray[np.float64]
_IDX = NDArray[np.intp]


class Oracle:
    """The pool's labels, revealed only for rows that are bought (each row at most once).

    Examples
    --------
    >>> oracle = Oracle(["a", "b", "c"])
    >>> oracle.reveal([2]).tolist(), oracle.n_bought
    (['c'], 1)
    """

    def __init__(self, y: ArrayLike) -> None:
        self._y = np.asarray(y)
        if self._y.ndim != 1:
            raise DataworthError("the oracle's labels must be one-dimensional.")
        self._bought = np.zeros(self._y.shape[0], dtype=bool)

    @property
    def n_bought(self) -> int:
        """Number of labels revealed so far."""
        return int(self._bought.sum())

    @property
    def bought(self) -> NDArray[np.bool_]:
        """Mask of the rows whose label has been revealed (a copy)."""
        return self._bought.copy()

    def reveal(self, rows: ArrayLike) -> NDArray[Any]:
        """Buy the labels of ``rows``; buying a row twice is an error."""
        idx = np.asarray(rows, dtype=np.intp)
        if idx.size and (idx.min() < 0 or idx.max() >= self._y.shape[0]):
            raise DataworthError(f"rows must lie in [0, {self._y.shape[0]}).")
        if np.unique(idx).size != idx.size or self._bought[idx].any():
            raise DataworthError("a row's label can be bought only once.")
        self._bought[idx] = True
        return self._y[idx].copy()


@dataclass(frozen=True)
class LearningCurve:
    """Test accuracy after each round of one simulated active-learning run.

    Attributes
    ----------
    strategy : str
    seed : int or None
        The run's ``random_state``.
    n_labels : ndarray of int, shape (rounds + 1,)
        Labels bought when each accuracy was measured (the initial rows, then one batch more
        each round).
    accuracy : ndarray of float, shape (rounds + 1,)
        Test accuracy of the model fitted on those labels.
    bought : ndarray of int
        Pool rows in the order their labels were bought (the initial rows first).
    n_initial : int
    select_seconds : float
        Time spent choosing batches.
    """

    strategy: str
    seed: int | None
    n_labels: NDArray[np.int64]
    accuracy: _F64
    bought: _IDX
    n_initial: int
    select_seconds: float


def _whole(value: Any, name: str, minimum: int) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise DataworthError(f"{name} must be a whole number >= {minimum}; got {value!r}.")
    return int(value)


def _arrays(
    X_pool: ArrayLike, y_pool: ArrayLike, X_test: ArrayLike, y_test: ArrayLike
) -> tuple[_F64, NDArray[Any], _F64, NDArray[Any]]:
    Xp = np.asarray(X_pool, dtype=np.float64)
    Xt = np.asarray(X_test, dtype=np.float64)
    yp, yt = np.asarray(y_pool), np.asarray(y_test)
    if Xp.ndim != 2 or yp.shape != (Xp.shape[0],):
        raise DataworthError("X_pool must be 2-D and y_pool_oracle must have one label per row.")
    if Xt.ndim != 2 or yt.shape != (Xt.shape[0],) or Xt.shape[1] != Xp.shape[1]:
        raise DataworthError(
            "X_test must be 2-D with the pool's features and y_test one label per row."
        )
    if Xt.shape[0] == 0:
        raise DataworthError("the test split is empty.")
    return Xp, yp, Xt, yt


def active_learning_curve(
    strategy: str | Strategy,
    X_pool: ArrayLike,
    y_pool_oracle: ArrayLike,
    X_test: ArrayLike,
    y_test: ArrayLike,
    *,
    initial: int | ArrayLike = 20,
    batch: int = 20,
    rounds: int = 10,
    model: Any = None,
    random_state: int | None = None,
    **params: Any,
) -> LearningCurve:
    """Simulate pool-based active learning with one strategy and return its learning curve.

    Parameters
    ----------
    strategy : str or Strategy
        A name from :data:`~dataworth.apps.select.STRATEGIES` (``params`` go to it) or an
        instance.
    X_pool, y_pool_oracle : array-like
        Pool features, and the labels the oracle reveals when a row is bought (these may be
        wrong: a polluted pool). The strategy never sees a label it has not bought.
    X_test, y_test : array-like
        Held-out split used only to measure accuracy, never to choose rows.
    initial : int or array of int, default=20
        Number of initial rows drawn uniformly from the pool (with ``random_state``), or their
        pool positions.
    batch, rounds : int
        Rows bought per round, and number of rounds.
    model : estimator, optional
        The classifier trained (cloned) each round; default logistic regression.
    random_state : int, optional
        Seeds the initial draw and the strategy: the same seed gives every strategy the same
        initial rows.

    Returns
    -------
    LearningCurve
    """
    strat = make_strategy(strategy, **params)
    Xp, yp, Xt, yt = _arrays(X_pool, y_pool_oracle, X_test, y_test)
    test = Dataset.from_arrays(Xt, yt)
    batch = _whole(batch, "batch", 1)
    rounds = _whole(rounds, "rounds", 0)
    n_pool = Xp.shape[0]
    init_ss, strat_ss = np.random.SeedSequence(random_state).spawn(2)
    if isinstance(initial, (int, np.integer)) and not isinstance(initial, bool):
        n_init = _whole(initial, "initial", 1)
        if n_init > n_pool:
            raise DataworthError(f"initial ({n_init}) is larger than the pool ({n_pool} rows).")
        first = np.random.default_rng(init_ss).choice(n_pool, size=n_init, replace=False)
    else:
        first = np.asarray(initial)
        if first.ndim != 1 or first.size == 0 or not np.issubdtype(first.dtype, np.integer):
            raise DataworthError("initial must be a count or a 1-D array of pool row positions.")
    first = first.astype(np.intp)
    if first.size + batch * rounds > n_pool:
        raise DataworthError(
            f"initial + batch * rounds = {first.size + batch * rounds} labels, more than the "
            f"pool's {n_pool} rows."
        )
    if model is None:
        from dataworth.models import default_model

        model = default_model(random_state=random_state)  # a classifier
    oracle = Oracle(yp)
    bought = [first]
    labels = [oracle.reveal(first)]
    strat_rng = np.random.default_rng(strat_ss)
    n_labels: list[int] = []
    accuracy: list[float] = []
    spent = 0.0
    for r in range(rounds + 1):
        rows = np.concatenate(bought)
        y_lab = np.concatenate(labels)
        n_labels.append(rows.size)
        accuracy.append(fit_and_score(model, Dataset.from_arrays(Xp[rows], y_lab), None, [test])[0])
        if r == rounds:
            break
        unlabelled = np.flatnonzero(~oracle.bought)
        started = time.perf_counter()
        chosen = strat.select(
            Dataset.from_arrays(Xp[rows], y_lab),
            Xp[unlabelled],
            batch,
            model=model,
            random_state=int(strat_rng.integers(2**31 - 1)),
        )
        spent += time.perf_counter() - started
        new = unlabelled[chosen.indices]
        bought.append(new)
        labels.append(oracle.reveal(new))
    return LearningCurve(
        strategy=strat.name,
        seed=random_state,
        n_labels=np.asarray(n_labels, dtype=np.int64),
        accuracy=np.asarray(accuracy),
        bought=np.concatenate(bought),
        n_initial=int(first.size),
        select_seconds=spent,
    )


def _one_run(strategy: Any, seed: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    with threadpool_limits(1):
        return active_learning_curve(strategy, *args, random_state=seed, **kwargs)


def compare_strategies(
    strategies: Sequence[str | Strategy] | Mapping[str, str | Strategy],
    X_pool: ArrayLike,
    y_pool_oracle: ArrayLike,
    X_test: ArrayLike,
    y_test: ArrayLike,
    *,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    initial: int = 20,
    batch: int = 20,
    rounds: int = 10,
    model: Any = None,
    n_jobs: int | None = 1,
    progress: bool = False,
) -> dict[str, list[LearningCurve]]:
    """Learning curves of several strategies over several seeds (paired by seed).

    ``strategies`` is a list of names/instances (keyed by strategy name) or a mapping from a
    display name to a name/instance. Runs are spread over ``n_jobs`` joblib workers (one BLAS
    thread each); results do not depend on ``n_jobs``. ``progress`` shows a bar over the runs.

    Returns
    -------
    dict
        Display name -> one :class:`LearningCurve` per seed, in seed order.
    """
    if isinstance(strategies, Mapping):
        named = {str(k): v for k, v in strategies.items()}
    else:
        named = {}
        for s in strategies:
            key = make_strategy(s).name
            if key in named:
                raise DataworthError(
                    f"strategy {key!r} is listed twice; pass a mapping to name variants."
                )
            named[key] = s
    seed_list = [int(s) for s in seeds]
    if not seed_list or len(set(seed_list)) != len(seed_list):
        raise DataworthError("seeds must be a non-empty list of distinct integers.")
    args = _arrays(X_pool, y_pool_oracle, X_test, y_test)
    kwargs = {"initial": initial, "batch": batch, "rounds": rounds, "model": model}
    jobs = [(name, seed) for name in named for seed in seed_list]
    curves = Parallel(n_jobs=n_jobs)(
        delayed(_one_run)(named[name], seed, args, kwargs)
        for name, seed in tqdm(jobs, desc="simulating", disable=not progress, leave=False)
    )
    out: dict[str, list[LearningCurve]] = {name: [] for name in named}
    for (name, _), curve in zip(jobs, curves, strict=True):
        out[name].append(curve)
    return out


# ---------------------------------------------------------------------------- statistics
def _mean_ci(
    x: _F64, confidence: float, method: str, rng: np.random.Generator, n_boot: int
) -> tuple[float, float, float]:
    """Mean and a two-sided confidence interval over seeds (``t`` or percentile bootstrap)."""
    n = x.size
    mean = float(x.mean())
    if n < 2:
        return mean, float("nan"), float("nan")
    if method == "t":
        from scipy import stats

        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * float(x.std(ddof=1)) / np.sqrt(n)
        return mean, mean - half, mean + half
    means = x[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    low, high = np.quantile(means, [0.5 - confidence / 2, 0.5 + confidence / 2])
    return mean, float(low), float(high)


def _check_ci(confidence: float, method: str) -> None:
    if not 0 < confidence < 1:
        raise DataworthError(f"confidence must be in (0, 1); got {confidence!r}.")
    if method not in ("t", "bootstrap"):
        raise DataworthError(f"method must be 't' or 'bootstrap'; got {method!r}.")


def _grid(runs: Sequence[LearningCurve], name: str) -> NDArray[np.int64]:
    if not runs:
        raise DataworthError(f"no learning curves for {name!r}.")
    grid = runs[0].n_labels
    if any(not np.array_equal(c.n_labels, grid) for c in runs):
        raise DataworthError(f"the curves of {name!r} were measured at different label counts.")
    return grid


@dataclass(frozen=True)
class CurveSummary:
    """Mean learning curve over seeds with a pointwise confidence interval."""

    n_labels: NDArray[np.int64]
    mean: _F64
    low: _F64
    high: _F64
    n_seeds: int


def summarize_curves(
    curves: Mapping[str, Sequence[LearningCurve]],
    *,
    confidence: float = 0.95,
    method: str = "t",
    n_boot: int = 2000,
    random_state: int | None = 0,
) -> dict[str, CurveSummary]:
    """Mean accuracy per label count over seeds, with a ``confidence`` interval (t or bootstrap).

    Examples
    --------
    >>> import numpy as np
    >>> c = [LearningCurve("random", s, np.array([5, 10]), np.array([0.5, a]), np.arange(10), 5,
    ...                    0.0) for s, a in enumerate([0.6, 0.8])]
    >>> s = summarize_curves({"random": c})["random"]
    >>> s.mean.round(2).tolist()
    [0.5, 0.7]
    """
    _check_ci(confidence, method)
    rng = np.random.default_rng(random_state)
    out = {}
    for name, runs in curves.items():
        grid = _grid(runs, name)
        acc = np.vstack([c.accuracy for c in runs])
        stats = np.array(
            [_mean_ci(acc[:, j], confidence, method, rng, n_boot) for j in range(grid.size)]
        )
        out[name] = CurveSummary(grid, stats[:, 0], stats[:, 1], stats[:, 2], len(runs))
    return out


def _labels_at(n_labels: NDArray[np.int64], accuracy: _F64, target: float) -> float:
    """Labels at which the curve first reaches ``target`` (linear interpolation; inf if never)."""
    hit = np.flatnonzero(accuracy >= target)
    if hit.size == 0:
        return float("inf")
    j = int(hit[0])
    if j == 0:
        return float(n_labels[0])
    a0, a1 = accuracy[j - 1], accuracy[j]
    n0, n1 = float(n_labels[j - 1]), float(n_labels[j])
    return n0 + (target - a0) / (a1 - a0) * (n1 - n0)


@dataclass(frozen=True)
class Reach:
    """Labels a strategy needs to reach a target accuracy, and labels saved versus the baseline.

    ``labels`` holds one entry per seed (``inf`` where the run never reached the target). For
    the means and intervals a run that never reached it counts as the final label count
    (``budget``): the figures are then bounds (labels needed at least that, and ``censored`` is
    true). ``saved = baseline labels - strategy labels`` per seed (paired: same initial rows),
    positive when the strategy needs fewer labels.
    """

    strategy: str
    target: float
    seeds: tuple[int | None, ...]
    labels: _F64
    n_reached: int
    budget: int
    mean: float
    low: float
    high: float
    saved: _F64
    saved_mean: float
    saved_low: float
    saved_high: float
    censored: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``inf`` becomes ``None``)."""

        def clean(v: Any) -> Any:
            if isinstance(v, np.ndarray):
                return [clean(x) for x in v.tolist()]
            if isinstance(v, float) and not np.isfinite(v):
                return None
            return v

        return {k: clean(getattr(self, k)) for k in self.__dataclass_fields__} | {
            "seeds": list(self.seeds)
        }


def labels_to_reach(
    curves: Mapping[str, Sequence[LearningCurve]],
    accuracy: float,
    *,
    baseline: str = "random",
    confidence: float = 0.95,
    method: str = "t",
    n_boot: int = 2000,
    random_state: int | None = 0,
) -> list[Reach]:
    """Labels each strategy needs to reach ``accuracy``, and labels saved versus ``baseline``.

    For each run, the label count at which its learning curve first reaches ``accuracy``
    (linear interpolation between the two measurements around the crossing); over seeds, the
    mean with a ``confidence`` interval (``method="t"``: Student t; ``"bootstrap"``: percentile
    bootstrap over seeds). Labels saved are paired by seed.

    Examples
    --------
    >>> import numpy as np
    >>> grid = np.array([10, 20, 30])
    >>> mk = lambda name, seed, acc: LearningCurve(name, seed, grid, np.array(acc),
    ...                                            np.arange(30), 10, 0.0)
    >>> curves = {"random": [mk("random", 0, [0.5, 0.7, 0.9]), mk("random", 1, [0.5, 0.8, 0.9])],
    ...           "smart": [mk("smart", 0, [0.5, 0.9, 0.9]), mk("smart", 1, [0.5, 0.9, 0.95])]}
    >>> rows = labels_to_reach(curves, 0.8)
    >>> rows[0].labels.tolist(), rows[1].labels.tolist(), rows[1].saved.tolist()
    ([25.0, 20.0], [17.5, 17.5], [7.5, 2.5])
    """
    _check_ci(confidence, method)
    target = float(accuracy)
    if baseline not in curves:
        raise DataworthError(
            f"baseline {baseline!r} is not among the strategies ({', '.join(curves)})."
        )
    rng = np.random.default_rng(random_state)
    base_runs = curves[baseline]
    base_seeds = tuple(c.seed for c in base_runs)
    base_grid = _grid(base_runs, baseline)
    base = np.array([_labels_at(c.n_labels, c.accuracy, target) for c in base_runs])
    out = []
    for name, runs in curves.items():
        grid = _grid(runs, name)
        seeds = tuple(c.seed for c in runs)
        if seeds != base_seeds:
            raise DataworthError(
                f"{name!r} was run with seeds {list(seeds)} but {baseline!r} with "
                f"{list(base_seeds)}; labels saved are paired by seed."
            )
        labels = np.array([_labels_at(c.n_labels, c.accuracy, target) for c in runs])
        budget = int(grid[-1])
        capped = np.minimum(labels, budget)
        base_capped = np.minimum(base, int(base_grid[-1]))
        mean, low, high = _mean_ci(capped, confidence, method, rng, n_boot)
        saved = base_capped - capped
        s_mean, s_low, s_high = _mean_ci(saved, confidence, method, rng, n_boot)
        out.append(
            Reach(
                strategy=name,
                target=target,
                seeds=seeds,
                labels=labels,
                n_reached=int(np.isfinite(labels).sum()),
                budget=budget,
                mean=mean,
                low=low,
                high=high,
                saved=saved,
                saved_mean=s_mean,
                saved_low=s_low,
                saved_high=s_high,
                censored=bool(not np.isfinite(labels).all() or not np.isfinite(base).all()),
            )
        )
    return out


def format_reach_table(rows: Sequence[Reach], *, confidence: float = 0.95) -> str:
    """A Markdown table of :func:`labels_to_reach` rows (``>=`` marks censored figures).

    Examples
    --------
    >>> import numpy as np
    >>> r = Reach("random", 0.8, (0, 1), np.array([20.0, 30.0]), 2, 40, 25.0, 20.0, 30.0,
    ...           np.zeros(2), 0.0, 0.0, 0.0, False)
    >>> print(format_reach_table([r]).splitlines()[2])
    | random | 0.8 | 2/2 | 25.0 [20.0, 30.0] | +0.0 [+0.0, +0.0] |
    """
    pct = f"{confidence:.0%}"
    lines = [
        f"| strategy | target accuracy | runs reaching it | labels needed (mean [{pct} CI]) "
        f"| labels saved vs baseline (mean [{pct} CI]) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        mark = ">=" if r.n_reached < r.labels.size else ""
        smark = "~" if r.censored else ""
        lines.append(
            f"| {r.strategy} | {r.target:.4g} | {r.n_reached}/{r.labels.size} "
            f"| {mark}{r.mean:.1f} [{r.low:.1f}, {r.high:.1f}] "
            f"| {smark}{r.saved_mean:+.1f} [{r.saved_low:+.1f}, {r.saved_high:+.1f}] |"
        )
    return "\n".join(lines)
