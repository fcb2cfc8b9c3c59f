"""Data-OOB against a direct out-of-bag computation written independently here."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from threadpoolctl import threadpool_limits

from dataworth.data import Dataset
from dataworth.datasets import flip_labels, load_dataset
from dataworth.errors import DataworthError, UtilityError
from dataworth.methods import METHODS, get_method
from dataworth.methods.data_oob import DataOOB
from dataworth.utility import ModelUtility


def reference_oob(model, X, y, budget, seed, *, classifier, groups=None):
    """Direct Data-OOB: the same bags as DataOOB (one rng.integers call per bag from one
    generator), training rows in row order with multiplicity, T averaged over a group's rows.
    One BLAS thread, as in the runner's workers, so that fits agree to the last bit."""
    with threadpool_limits(limits=1):
        return _reference_oob(model, X, y, budget, seed, classifier=classifier, groups=groups)


def _reference_oob(model, X, y, budget, seed, *, classifier, groups):
    if groups is None:
        names, player = np.arange(len(y)), np.arange(len(y))
    else:
        names, player = np.unique(groups, return_inverse=True)
    n_players = len(names)
    rng = np.random.default_rng(seed)
    total = np.zeros(n_players)
    count = np.zeros(n_players, dtype=int)
    for _ in range(budget):
        bag = rng.integers(0, n_players, size=n_players)
        in_bag = np.zeros(n_players, dtype=bool)
        in_bag[bag] = True
        times = np.array([(bag == p).sum() for p in range(n_players)])
        rows = np.concatenate([np.full(times[player[r]], r) for r in range(len(y))])
        oob_rows = np.array([r for r in range(len(y)) if not in_bag[player[r]]], dtype=int)
        if oob_rows.size == 0:
            continue
        if classifier and len(set(y[rows].tolist())) == 1:
            pred = np.repeat(y[rows][0], oob_rows.size)
        else:
            pred = clone(model).fit(X[rows], y[rows]).predict(X[oob_rows])
        t = (pred == y[oob_rows]).astype(float) if classifier else -((y[oob_rows] - pred) ** 2)
        for p in np.unique(player[oob_rows]):
            total[p] += t[player[oob_rows] == p].mean()
            count[p] += 1
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan), count


@pytest.fixture(scope="module")
def cancer():
    ds = load_dataset("breast_cancer")
    rng = np.random.default_rng(0)
    return ds.take(np.sort(rng.choice(ds.n_samples, 60, replace=False))).split(0.2, random_state=0)


def test_matches_direct_computation_classification(cancer):
    train, valid = cancer
    model = DecisionTreeClassifier(max_depth=3, random_state=0)
    res = DataOOB(budget=45, random_state=7).fit(ModelUtility(model, train, valid)).result_
    expected, count = reference_oob(model, train.X, train.y, 45, 7, classifier=True)
    np.testing.assert_allclose(res.values, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(res.counts, count)
    assert res.method == "data-oob" and res.kind == "row" and res.estimator == "mean"
    assert res.metadata["n_updates"] == 45 and res.metadata["n_never_oob"] == 0
    assert np.all((res.values >= 0) & (res.values <= 1))


def test_matches_direct_computation_regression():
    ds = load_dataset("diabetes")
    train, valid = ds.take(np.arange(80)).split(0.25, random_state=0)
    model = DecisionTreeRegressor(max_depth=3, random_state=0)
    res = DataOOB(budget=40, random_state=3).fit(ModelUtility(model, train, valid)).result_
    expected, count = reference_oob(model, train.X, train.y.astype(float), 40, 3, classifier=False)
    np.testing.assert_allclose(res.values, expected, rtol=1e-12, atol=1e-12)
    assert np.all(res.values <= 0)  # T = -(y - f)^2
    assert np.all(res.stderr[count > 1] >= 0)


def test_single_class_bags_predict_that_class():
    # 6 rows, one of class 1: many bags hold one class, where LogisticRegression cannot fit
    X = np.arange(12, dtype=float).reshape(6, 2)
    y = np.array([0, 0, 0, 0, 0, 1])
    u = ModelUtility(LogisticRegression(), Dataset.from_arrays(X, y), Dataset.from_arrays(X, y))
    res = DataOOB(budget=60, random_state=1).fit(u).result_
    expected, _ = reference_oob(LogisticRegression(), X, y, 60, 1, classifier=True)
    np.testing.assert_allclose(res.values, expected, rtol=1e-12, atol=1e-12)


def test_group_mode_matches_direct_computation(cancer):
    train, valid = cancer
    groups = np.array(["s1", "s2", "s3", "s4", "s5", "s6"])[np.arange(train.n_samples) % 6]
    gtrain = train.replace(groups=groups)
    model = DecisionTreeClassifier(max_depth=2, random_state=0)
    u = ModelUtility(model, gtrain, valid, by_group=True)
    res = DataOOB(budget=30, random_state=5).fit(u).result_
    expected, count = reference_oob(model, train.X, train.y, 30, 5, classifier=True, groups=groups)
    assert res.kind == "group"
    assert res.labels.tolist() == ["s1", "s2", "s3", "s4", "s5", "s6"]
    np.testing.assert_allclose(res.values, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(res.counts, count)


def test_never_out_of_bag_is_nan_with_warning(cancer):
    train, valid = cancer
    u = ModelUtility(DecisionTreeClassifier(random_state=0), train, valid)
    with pytest.warns(UserWarning, match="never out of bag"):
        res = DataOOB(budget=1, random_state=0).fit(u).result_
    never = np.isnan(res.values)
    assert 0 < never.sum() < len(res)
    assert res.metadata["n_never_oob"] == int(never.sum())
    assert np.all(res.counts[never] == 0) and np.all(res.counts[~never] == 1)


def test_no_warning_when_every_point_is_out_of_bag(cancer):
    train, valid = cancer
    u = ModelUtility(DecisionTreeClassifier(random_state=0), train, valid)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = DataOOB(budget=40, random_state=0).fit(u).result_
    assert not np.isnan(res.values).any()


def test_n_jobs_does_not_change_values(cancer):
    train, valid = cancer
    u = ModelUtility(DecisionTreeClassifier(max_depth=3, random_state=0), train, valid)
    one = DataOOB(budget=40, random_state=11, n_jobs=1).fit(u).result_
    two = DataOOB(budget=40, random_state=11, n_jobs=2).fit(u).result_
    np.testing.assert_array_equal(one.values, two.values)
    np.testing.assert_array_equal(one.stderr, two.stderr)
    np.testing.assert_array_equal(one.counts, two.counts)


def test_flipped_labels_get_lower_values():
    train, valid = load_dataset("breast_cancer").split(0.2, random_state=0)
    noisy, flipped = flip_labels(train, 0.1, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    res = DataOOB(budget=60, random_state=0).fit(ModelUtility(model, noisy, valid)).result_
    clean = np.setdiff1d(np.arange(noisy.n_samples), flipped)
    assert res.values[flipped].mean() < 0.5 < res.values[clean].mean()


class _Broken(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        raise RuntimeError("boom")

    def predict(self, X):  # pragma: no cover - never fitted
        return np.zeros(len(X))


def test_fit_failures_raise_or_are_counted(cancer):
    train, valid = cancer
    with pytest.raises(UtilityError, match="boom"):
        DataOOB(budget=4, random_state=0).fit(ModelUtility(_Broken(), train, valid))
    u = ModelUtility(_Broken(), train, valid, catch_errors=True)
    with pytest.warns(UserWarning, match="never out of bag"):
        res = DataOOB(budget=4, random_state=0).fit(u).result_
    assert np.isnan(res.values).all()
    assert res.metadata["n_failures"] == 4


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_bad_budget(cancer, bad):
    train, valid = cancer
    u = ModelUtility(DecisionTreeClassifier(), train, valid)
    with pytest.raises(DataworthError, match="budget"):
        DataOOB(budget=bad).fit(u)


def test_registry_and_params():
    assert get_method("data-oob") is DataOOB
    est = DataOOB(10, random_state=2)
    assert est.get_params()["budget"] == 10 and est.get_params()["random_state"] == 2
    assert METHODS["data-oob"].reference.startswith("Kwon & Zou 2023")


def test_resume_from_checkpoint_equals_one_run(cancer, tmp_path):
    train, valid = cancer
    u = ModelUtility(DecisionTreeClassifier(max_depth=3, random_state=0), train, valid)
    path = tmp_path / "oob.npz"
    DataOOB(budget=32, random_state=1, checkpoint=path).fit(u)
    resumed = DataOOB(budget=64, random_state=1, checkpoint=path, resume=True).fit(u).result_
    direct = DataOOB(budget=64, random_state=1).fit(u).result_
    assert resumed.metadata["resumed_from"] == 32
    np.testing.assert_array_equal(resumed.values, direct.values)
