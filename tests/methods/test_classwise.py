"""Class-wise Shapley: exact brute force on tiny data, parallel reproducibility, noisy labels."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.naive_bayes import GaussianNB
from threadpoolctl import threadpool_limits

from dataworth.data import Dataset
from dataworth.datasets import flip_labels, load_dataset
from dataworth.errors import DataworthError
from dataworth.methods import METHODS, get_method
from dataworth.methods.classwise import ClasswiseShapley
from dataworth.utility import ModelUtility
from dataworth.utility.base import UtilityBase


def tiny(n_per_class: tuple[int, ...], seed: int = 0) -> tuple[Dataset, Dataset]:
    """Overlapping Gaussian blobs, one per class: a small training set and a valuation set."""
    rng = np.random.default_rng(seed)
    k = len(n_per_class)
    centres = np.array([[np.cos(2 * np.pi * c / k), np.sin(2 * np.pi * c / k)] for c in range(k)])
    y = np.repeat(np.arange(k), n_per_class)
    X = centres[y] + rng.normal(scale=0.9, size=(y.size, 2))
    yv = np.repeat(np.arange(k), 8)
    Xv = centres[yv] + rng.normal(scale=0.9, size=(yv.size, 2))
    return Dataset.from_arrays(X, y), Dataset.from_arrays(Xv, yv)


def brute_force(
    model: Any,
    train: Dataset,
    valid: Dataset,
    default_score: float = 0.0,
) -> NDArray[np.float64]:
    """E over all contexts S_-c (uniform) of the exact in-class Shapley value, from scratch."""
    X, y, Xv, yv = train.X, train.y, valid.X, valid.y
    cache: dict[tuple[int, ...], NDArray[Any] | None] = {}

    def predictions(rows: tuple[int, ...]) -> NDArray[Any] | None:
        if rows not in cache:
            labels = set(y[list(rows)].tolist())
            if not rows:
                cache[rows] = None
            elif len(labels) == 1:
                cache[rows] = np.full(yv.size, labels.pop())
            else:
                cache[rows] = clone(model).fit(X[list(rows)], y[list(rows)]).predict(Xv)
        return cache[rows]

    def u(c: Any, rows: set[int]) -> float:
        pred = predictions(tuple(sorted(rows)))
        if pred is None:
            return default_score
        a_in = np.mean(pred[yv == c] == c)
        a_out = np.mean(pred[yv != c] == yv[yv != c])
        return float(a_in * math.exp(a_out))

    values = np.zeros(train.n_samples)
    with threadpool_limits(limits=1):
        for c in np.unique(y):
            inside = [int(i) for i in np.flatnonzero(y == c)]
            others = [int(i) for i in np.flatnonzero(y != c)]
            m = len(inside)
            for k_ctx in range(len(others) + 1):
                for ctx in itertools.combinations(others, k_ctx):
                    for i in inside:
                        rest = [j for j in inside if j != i]
                        shapley = 0.0
                        for k in range(m):
                            w = math.factorial(k) * math.factorial(m - k - 1) / math.factorial(m)
                            for T in itertools.combinations(rest, k):
                                base = set(ctx) | set(T)
                                shapley += w * (u(c, base | {i}) - u(c, base))
                        values[i] += shapley / 2 ** len(others)
    return values


def fit(utility: Any, **kwargs: Any) -> Any:
    est = ClasswiseShapley(**kwargs)
    est.fit(utility)
    return est.result_


# ----------------------------------------------------------------------------- correctness
def test_monte_carlo_matches_brute_force_two_classes() -> None:
    train, valid = tiny((4, 4), seed=1)
    model = LogisticRegression()
    exact = brute_force(model, train, valid)
    r = fit(ModelUtility(model, train, valid), budget=200, random_state=0)
    assert np.ptp(exact) > 0.05  # a non-trivial game
    np.testing.assert_array_equal(r.counts, 200)
    assert np.all(r.stderr > 0)
    assert np.all(np.abs(r.values - exact) <= 4 * r.stderr + 1e-9), (r.values, exact, r.stderr)


def test_estimate_replays_its_draws_with_the_exp_utility() -> None:
    """The estimate equals the mean marginal of ``a_c * exp(a_-c)`` over the very contexts and
    permutations it drew, computed here from scratch; the same draws scored with another link
    (``a_c * (1 + a_-c)``) give other values, so the formula itself is pinned, not only within
    Monte Carlo error."""
    train, valid = tiny((3, 3), seed=2)
    model = LogisticRegression()
    utility = ModelUtility(model, train, valid)
    budget, seed = 6, 4
    result = fit(utility, budget=budget, random_state=seed)
    job = ClasswiseShapley(budget=budget, random_state=seed)._job(utility)
    samples = job.draw(np.random.default_rng(seed), budget, train.n_samples)

    def replay(link: Any) -> NDArray[np.float64]:
        marginals = np.zeros((budget, train.n_samples))
        for j, sample in enumerate(samples):
            for c, (context, order) in zip(np.unique(train.y), sample, strict=True):
                u = []
                for k in range(order.size + 1):
                    rows = np.sort(np.concatenate([context, order[:k]])).astype(int)
                    if rows.size == 0:
                        u.append(0.0)
                        continue
                    labels = np.unique(train.y[rows])
                    if labels.size == 1:
                        pred = np.full(valid.n_samples, labels[0])
                    else:
                        pred = clone(model).fit(train.X[rows], train.y[rows]).predict(valid.X)
                    a_in = np.mean(pred[valid.y == c] == c)
                    a_out = np.mean(pred[valid.y != c] == valid.y[valid.y != c])
                    u.append(a_in * link(a_out))
                marginals[j, order] = np.diff(u)
        return marginals.mean(axis=0)

    np.testing.assert_allclose(result.values, replay(math.exp), rtol=0, atol=1e-12)
    assert np.abs(replay(lambda a: 1 + a) - result.values).max() > 0.01


def test_monte_carlo_matches_brute_force_three_classes_and_default_score() -> None:
    train, valid = tiny((2, 2, 2), seed=3)
    model = GaussianNB()
    exact = brute_force(model, train, valid, default_score=0.5)
    utility = ModelUtility(model, train, valid, default_score=0.5)
    r = fit(utility, budget=300, random_state=1)
    assert np.all(np.abs(r.values - exact) <= 4 * r.stderr + 1e-9), (r.values, exact, r.stderr)
    # the empty-set convention matters here: with default 0 the answer differs
    assert not np.allclose(exact, brute_force(model, train, valid, default_score=0.0))


def test_identical_for_any_n_jobs() -> None:
    train, valid = tiny((4, 4), seed=1)
    utility = ModelUtility(LogisticRegression(), train, valid)
    a = fit(utility, budget=24, random_state=5, n_jobs=1)
    b = fit(utility, budget=24, random_state=5, n_jobs=2)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.stderr, b.stderr)
    c = fit(utility, budget=24, random_state=6)
    assert not np.array_equal(a.values, c.values)


def test_resume_continues_the_same_stream(tmp_path: Path) -> None:
    train, valid = tiny((3, 3), seed=2)
    utility = ModelUtility(GaussianNB(), train, valid)
    path = tmp_path / "cs.ckpt"
    fit(utility, budget=10, random_state=4, checkpoint=path)
    resumed = fit(utility, budget=40, random_state=4, checkpoint=path, resume=True)
    straight = fit(utility, budget=40, random_state=4)
    np.testing.assert_allclose(resumed.values, straight.values, atol=1e-12)
    assert resumed.metadata["resumed_from"] == 10


def test_mislabelled_points_get_low_values() -> None:
    ds = load_dataset("breast_cancer")
    rows = np.random.default_rng(0).choice(ds.n_samples, size=100, replace=False)
    X = ds.X[rows]
    ds = Dataset.from_arrays((X - X.mean(0)) / X.std(0), ds.y[rows])
    train, valid = ds.split(0.4, random_state=0)
    noisy, flipped = flip_labels(train, 0.1, random_state=0)
    utility = ModelUtility(LogisticRegression(), noisy, valid)
    r = fit(utility, budget=20, random_state=0)
    assert train.n_samples == 60 and flipped.size == 6
    clean = np.setdiff1d(np.arange(60), flipped)
    assert r.values[flipped].mean() < r.values[clean].mean()
    assert np.isin(flipped, r.bottom(12)).sum() >= 4


# ----------------------------------------------------------------------------- refusals
def test_groups_refused() -> None:
    train, valid = tiny((4, 4))
    grouped = train.replace(groups=np.array([0, 0, 1, 1, 2, 2, 3, 3]))
    utility = ModelUtility(LogisticRegression(), grouped, valid, by_group=True)
    with pytest.raises(DataworthError, match="rows, not groups"):
        fit(utility, budget=5)


def test_regression_refused() -> None:
    rng = np.random.default_rng(0)
    train = Dataset.from_arrays(rng.normal(size=(10, 2)), rng.normal(size=10))
    valid = Dataset.from_arrays(rng.normal(size=(5, 2)), rng.normal(size=5))
    with pytest.raises(DataworthError, match="classif"):
        fit(ModelUtility(LinearRegression(), train, valid), budget=5)


def test_closed_form_game_refused() -> None:
    class Count(UtilityBase):
        n_players, player_names = 3, np.arange(3)

        def __call__(self, subset: Any) -> float:
            return float(self.mask_of(subset).sum())

    with pytest.raises(DataworthError, match="ModelUtility"):
        fit(Count(), budget=5)


def test_class_missing_from_valuation_set_refused() -> None:
    train, valid = tiny((3, 3))
    only_zero = valid.take(np.flatnonzero(valid.y == 0))
    with pytest.raises(DataworthError, match="valuation set"):
        fit(ModelUtility(LogisticRegression(), train, only_zero), budget=5)


@pytest.mark.parametrize("budget", [0, -1, 1.5])
def test_invalid_budget(budget: Any) -> None:
    train, valid = tiny((3, 3))
    with pytest.raises(DataworthError, match="budget"):
        fit(ModelUtility(GaussianNB(), train, valid), budget=budget)


# ----------------------------------------------------------------------------- metadata
def test_registry_params_and_notes() -> None:
    assert get_method("class-wise-shapley") is ClasswiseShapley
    train, valid = tiny((3, 3))
    utility = ModelUtility(GaussianNB(), train, valid, scoring="f1_macro")
    r = fit(utility, budget=4, random_state=0)
    assert r.method == "class-wise-shapley"
    assert r.estimator == "mean" and r.state is not None
    assert any("not normalised" in n for n in r.metadata["notes"])
    assert any("f1_macro" in n for n in r.metadata["notes"])
    assert r.params["budget"] == 4
    assert METHODS["class-wise-shapley"].reference.startswith("Schoch, Xu & Ji 2022")
