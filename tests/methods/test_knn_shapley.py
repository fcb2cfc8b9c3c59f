"""KNN-Shapley: the closed form against brute-force Shapley values of the KNN utility."""

from __future__ import annotations

import itertools
from math import factorial

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.neighbors import KNeighborsClassifier

from dataworth.data import Dataset
from dataworth.datasets import flip_labels, load_dataset
from dataworth.errors import DataworthError
from dataworth.methods import METHODS, get_method
from dataworth.methods.knn_shapley import KNNShapley
from dataworth.utility import ModelUtility

# ---------------------------------------------------------------------------- reference


def knn_utility(Xt, yt, Xv, yv, subset, k):
    """u(S) of docs/conventions.md, written directly: mean over valuation points of the share of the
    min(K, |S|) nearest rows of S (ties by training index) that carry the point's label."""
    subset = sorted(subset)
    if not subset:
        return 0.0
    total = 0.0
    for x, y in zip(Xv, yv, strict=True):
        d = {i: float(((Xt[i] - x) ** 2).sum()) for i in subset}
        nearest = sorted(subset, key=lambda i: (d[i], i))[: min(k, len(subset))]
        total += sum(yt[i] == y for i in nearest) / k
    return total / len(yv)


def brute_force_shapley(Xt, yt, Xv, yv, k):
    n = len(yt)
    u = {}
    for r in range(n + 1):
        for s in itertools.combinations(range(n), r):
            u[frozenset(s)] = knn_utility(Xt, yt, Xv, yv, s, k)
    phi = np.zeros(n)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for r in range(n):
            w = factorial(r) * factorial(n - r - 1) / factorial(n)
            for s in itertools.combinations(others, r):
                fs = frozenset(s)
                phi[i] += w * (u[fs | {i}] - u[fs])
    return phi, u[frozenset(range(n))]


def utility_of(Xt, yt, Xv, yv, k=3, **kw):
    return ModelUtility(
        KNeighborsClassifier(n_neighbors=k),
        Dataset.from_arrays(Xt, yt, **kw),
        Dataset.from_arrays(Xv, yv),
        by_group="groups" in kw,
    )


@pytest.fixture(scope="module")
def tiny_iris():
    """8 training rows and 5 valuation rows of iris; features x10 so distances are exact integers
    and ties between different points are real."""
    ds = load_dataset("iris")
    rng = np.random.default_rng(3)
    idx = rng.choice(ds.n_samples, size=13, replace=False)
    X = np.round(ds.X[idx] * 10)
    y = ds.y[idx]
    return X[:8], y[:8], X[8:], y[8:]


# ---------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("k", [1, 2, 3, 9])
def test_matches_brute_force_shapley(tiny_iris, k):
    Xt, yt, Xv, yv = tiny_iris
    expected, u_all = brute_force_shapley(Xt, yt, Xv, yv, k)
    res = KNNShapley(k=k, chunk_size=2).fit(utility_of(Xt, yt, Xv, yv, k=min(k, 8))).result_
    np.testing.assert_allclose(res.values, expected, rtol=0, atol=1e-10)
    assert res.values.sum() == pytest.approx(u_all, abs=1e-12)  # efficiency, u(empty) = 0


def test_matches_brute_force_with_real_valued_features_and_duplicates():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 3)) * 7.3 + 100.0  # far from the origin, non-representable sums
    y = rng.integers(0, 2, size=6)
    Xt = np.vstack([X, X[[1, 4]]])  # rows 6, 7 duplicate rows 1, 4 (same labels)
    yt = np.concatenate([y, y[[1, 4]]])
    Xv = rng.normal(size=(4, 3)) * 7.3 + 100.0
    Xv[0] = X[1]  # a valuation point sitting exactly on the duplicated pair
    yv = rng.integers(0, 2, size=4)
    for k in (1, 2, 3):
        expected, _ = brute_force_shapley(Xt, yt, Xv, yv, k)
        res = KNNShapley(k=k).fit(utility_of(Xt, yt, Xv, yv, k=k)).result_
        np.testing.assert_allclose(res.values, expected, rtol=0, atol=1e-10)
        # identical rows with identical labels tie exactly and are adjacent: equal values
        assert res.values[6] == res.values[1]
        assert res.values[7] == res.values[4]


def test_tie_broken_by_training_index():
    # two identical training rows with different labels; K=1: only the first (lower index)
    # is ever the nearest neighbour of the valuation point when both are present
    Xt = np.array([[0.1, 0.2], [0.1, 0.2], [5.0, 5.0]])
    yt = np.array([0, 1, 1])
    Xv, yv = np.array([[0.1, 0.2]]), np.array([1])
    res = KNNShapley(k=1).fit(utility_of(Xt, yt, Xv, yv, k=1)).result_
    expected, _ = brute_force_shapley(Xt, yt, Xv, yv, 1)
    np.testing.assert_allclose(res.values, expected, atol=1e-12)
    # swapping the rows swaps which one wins the tie
    res2 = KNNShapley(k=1).fit(utility_of(Xt[[1, 0, 2]], yt[[1, 0, 2]], Xv, yv, k=1)).result_
    expected2, _ = brute_force_shapley(Xt[[1, 0, 2]], yt[[1, 0, 2]], Xv, yv, 1)
    np.testing.assert_allclose(res2.values, expected2, atol=1e-12)
    assert not np.allclose(res.values, res2.values[[1, 0, 2]])


@pytest.mark.parametrize("k", [1, 3, 5])
def test_efficiency_on_iris(iris_split, k):
    train, valid = iris_split
    u = ModelUtility(KNeighborsClassifier(n_neighbors=k), train, valid)
    res = KNNShapley(k=k).fit(u).result_
    u_all = knn_utility(train.X, train.y, valid.X, valid.y, range(train.n_samples), k)
    assert res.values.sum() == pytest.approx(u_all, abs=1e-12)
    assert np.all(res.stderr == 0.0)
    assert np.all(res.counts == valid.n_samples)
    assert res.method == "knn-shapley" and res.kind == "row"
    np.testing.assert_array_equal(res.labels, train.row_labels)
    assert res.params == {"k": k, "chunk_size": 256}


def test_single_training_row_and_k_above_n():
    Xt, yt = np.array([[0.0]]), np.array([1])
    Xv, yv = np.array([[1.0], [2.0], [3.0]]), np.array([1, 1, 0])
    res = KNNShapley(k=4).fit(utility_of(Xt, yt, Xv, yv, k=1)).result_
    # u({0}) = (2/3) * (1/K): one neighbour, right for two of three points
    assert res.values[0] == pytest.approx(2 / 3 / 4, abs=1e-15)


# ---------------------------------------------------------------------------- invariances


def test_chunk_size_and_n_jobs_do_not_change_values(iris_split):
    train, valid = iris_split
    u = ModelUtility(KNeighborsClassifier(), train, valid)
    one = KNNShapley(k=5, chunk_size=1).fit(u).result_.values
    big = KNNShapley(k=5, chunk_size=1000).fit(u).result_.values
    np.testing.assert_allclose(one, big, rtol=0, atol=1e-14)
    seq = KNNShapley(k=5, chunk_size=7, n_jobs=1).fit(u).result_.values
    par = KNNShapley(k=5, chunk_size=7, n_jobs=2).fit(u).result_.values
    np.testing.assert_array_equal(seq, par)


def test_group_value_is_sum_of_row_values(iris_split):
    train, valid = iris_split
    groups = np.array(["a", "b", "c", "d"])[np.arange(train.n_samples) % 4]
    gtrain = train.replace(groups=groups)
    rows = KNNShapley(k=3).fit(ModelUtility(KNeighborsClassifier(3), gtrain, valid)).result_
    res = (
        KNNShapley(k=3)
        .fit(ModelUtility(KNeighborsClassifier(3), gtrain, valid, by_group=True))
        .result_
    )
    assert res.kind == "group"
    assert res.labels.tolist() == ["a", "b", "c", "d"]
    assert res.metadata["group_aggregation"] == "sum of row values"
    expected = [rows.values[groups == g].sum() for g in "abcd"]
    np.testing.assert_allclose(res.values, expected, rtol=0, atol=1e-14)


def test_string_labels():
    rng = np.random.default_rng(1)
    Xt, Xv = rng.normal(size=(7, 2)), rng.normal(size=(3, 2))
    codes_t, codes_v = rng.integers(0, 3, 7), rng.integers(0, 3, 3)
    names = np.array(["cat", "dog", "emu"])
    a = KNNShapley(k=2).fit(utility_of(Xt, names[codes_t], Xv, names[codes_v], k=2)).result_
    b = KNNShapley(k=2).fit(utility_of(Xt, codes_t, Xv, codes_v, k=2)).result_
    np.testing.assert_array_equal(a.values, b.values)


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3", None])
def test_bad_k(iris_split, bad):
    train, valid = iris_split
    u = ModelUtility(KNeighborsClassifier(), train, valid)
    with pytest.raises(DataworthError, match=r"k must be a positive whole number"):
        KNNShapley(k=bad).fit(u)


def test_bad_chunk_size(iris_split):
    train, valid = iris_split
    u = ModelUtility(KNeighborsClassifier(), train, valid)
    with pytest.raises(DataworthError, match="chunk_size"):
        KNNShapley(chunk_size=0).fit(u)


def test_regression_target_refused():
    train, valid = load_dataset("diabetes").split(0.2, random_state=0)
    u = ModelUtility(LinearRegression(), train, valid)
    with pytest.raises(DataworthError, match="class labels"):
        KNNShapley().fit(u)


def test_registry_and_params():
    assert get_method("knn-shapley") is KNNShapley
    est = KNNShapley(3, chunk_size=10, n_jobs=2)
    assert est.get_params() == {"k": 3, "chunk_size": 10, "n_jobs": 2, "progress": None}
    assert METHODS["knn-shapley"].reference.startswith("Jia et al. 2019")


# ---------------------------------------------------------------------------- usefulness


def test_flipped_labels_get_low_values():
    train, valid = load_dataset("breast_cancer").split(0.2, random_state=0)
    noisy, flipped = flip_labels(train, 0.1, random_state=0)
    res = KNNShapley(k=5).fit(ModelUtility(KNeighborsClassifier(), noisy, valid)).result_
    clean = np.setdiff1d(np.arange(noisy.n_samples), flipped)
    assert res.values[flipped].mean() < 0 < res.values[clean].mean()
    assert res.values[clean].mean() - res.values[flipped].mean() > 3 * res.values[clean].std() / 4


def test_chunks_shrink_to_the_available_memory(monkeypatch):
    import dataworth.memory

    rng = np.random.default_rng(0)
    Xt, Xv = rng.normal(size=(50, 2)), rng.normal(size=(20, 2))
    yt, yv = rng.integers(0, 2, 50), rng.integers(0, 2, 20)
    u = utility_of(Xt, yt, Xv, yv)
    ref = KNNShapley(k=3).fit(u).result_
    assert ref.metadata["chunk_size"] == 20
    # 41 bytes per (point, row): room for 4 points of 50 rows
    monkeypatch.setattr(dataworth.memory, "available_memory", lambda: 4 * 41 * 50 + 10)
    small = KNNShapley(k=3).fit(u).result_
    assert small.metadata["chunk_size"] == 4
    np.testing.assert_allclose(small.values, ref.values, rtol=0, atol=1e-15)  # summation order
    monkeypatch.setattr(dataworth.memory, "available_memory", lambda: 41 * 50 - 1)
    with pytest.raises(DataworthError, match="knn-shapley sorts the 50 training rows"):
        KNNShapley(k=3).fit(u)
