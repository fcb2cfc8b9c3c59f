"""Data-OOB against a direct out-of-bag computation written independently here: one
scikit-learn fit per bag, on the bag's rows copied by their counts."""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import pytest
from joblib import parallel_config, register_parallel_backend
from joblib._parallel_backends import ThreadingBackend
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier
from threadpoolctl import threadpool_limits

from dataworth.data import Dataset
from dataworth.datasets import flip_labels, load_dataset
from dataworth.engine.stopping import MaxTime
from dataworth.errors import DataworthError, UtilityError
from dataworth.methods import METHODS, data_oob, get_method
from dataworth.methods.data_oob import DataOOB, counts_are_weights
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


@pytest.mark.parametrize("n_jobs", [1, 2])  # 2: the trees' threads write the checkpoint too
def test_resume_from_checkpoint_equals_one_run(cancer, tmp_path, n_jobs):
    train, valid = cancer
    u = ModelUtility(DecisionTreeClassifier(max_depth=3, random_state=0), train, valid)
    path = tmp_path / "oob.npz"
    DataOOB(budget=32, random_state=1, checkpoint=path, n_jobs=n_jobs).fit(u)
    resumed = DataOOB(budget=64, random_state=1, checkpoint=path, resume=True).fit(u).result_
    direct = DataOOB(budget=64, random_state=1).fit(u).result_
    assert resumed.metadata["resumed_from"] == 32
    np.testing.assert_array_equal(resumed.values, direct.values)


# ------------------------------------------------------------------ scikit-learn decision trees
@pytest.fixture(scope="module")
def digits():
    """120 digits rows: integer pixels (0-16), so many splits tie and the trees' random feature
    order decides them; a fit that differs from scikit-learn's in anything shows."""
    X, y = load_digits(return_X_y=True)
    return Dataset.from_arrays(X[:120], y[:120]), Dataset.from_arrays(X[120:160], y[120:160])


TREES = [
    (DecisionTreeClassifier(random_state=0), True),
    (DecisionTreeClassifier(criterion="entropy", max_features="sqrt", random_state=1), True),
    (DecisionTreeClassifier(criterion="log_loss", max_depth=4, random_state=2), True),
    (DecisionTreeClassifier(max_leaf_nodes=6, random_state=0), True),
    (DecisionTreeClassifier(ccp_alpha=0.01, random_state=0), True),
    (ExtraTreeClassifier(random_state=0), True),
    # rules that count rows, and class weights computed from them: the rows are copied
    (DecisionTreeClassifier(min_samples_leaf=3, random_state=0), False),
    (DecisionTreeClassifier(min_samples_split=5, random_state=0), False),
    (DecisionTreeClassifier(class_weight="balanced", random_state=0), False),
]


@pytest.mark.parametrize("n_jobs", [1, 2])
@pytest.mark.parametrize(("model", "weighted"), TREES, ids=repr)
def test_trees_equal_one_sklearn_fit_per_bag(digits, model, weighted, n_jobs):
    train, valid = digits
    assert counts_are_weights(model, train.X) is weighted
    u = ModelUtility(model, train, valid)
    res = DataOOB(budget=30, random_state=4, n_jobs=n_jobs).fit(u).result_
    expected, count = reference_oob(model, train.X, train.y, 30, 4, classifier=True)
    # one prediction changed would move a value by at least 1/30
    np.testing.assert_allclose(res.values, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(res.counts, count)


@pytest.mark.parametrize("cls", [DecisionTreeClassifier, ExtraTreeClassifier])
def test_counts_as_weights_build_the_trees_of_copied_rows(digits, cls):
    """What the weighted fits rest on, node by node: the same splits, thresholds and class
    shares as scikit-learn's fit on the rows copied by their bootstrap counts."""
    X, y = digits[0].X, digits[0].y
    rng = np.random.default_rng(0)
    for _ in range(10):
        counts = np.bincount(rng.integers(0, len(y), len(y)), minlength=len(y))
        rows = np.repeat(np.arange(len(y)), counts)
        copied = cls(random_state=3).fit(X[rows], y[rows]).tree_
        weighted = cls(random_state=3).fit(X, y, sample_weight=counts.astype(float)).tree_
        for field in ("children_left", "feature", "threshold", "weighted_n_node_samples"):
            np.testing.assert_array_equal(getattr(copied, field), getattr(weighted, field))
        present = np.isin(np.unique(y), y[rows])  # classes absent from the bag: shares of 0
        np.testing.assert_array_equal(copied.value, weighted.value[:, :, present])


def test_missing_values_and_other_models_copy_rows():
    X = np.array([[0.0, 1.0], [np.nan, 2.0]])
    assert not counts_are_weights(DecisionTreeClassifier(), X)
    assert not counts_are_weights(DecisionTreeRegressor(), X[:1])
    assert not counts_are_weights(LogisticRegression(), X[:1])


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_regression_trees_with_threads_match_direct_computation(n_jobs):
    ds = load_dataset("diabetes")
    train, valid = ds.take(np.arange(80)).split(0.25, random_state=0)
    model = DecisionTreeRegressor(random_state=0)
    res = DataOOB(budget=30, random_state=3, n_jobs=n_jobs).fit(ModelUtility(model, train, valid))
    expected, _ = reference_oob(model, train.X, train.y.astype(float), 30, 3, classifier=False)
    np.testing.assert_allclose(res.result_.values, expected, rtol=1e-12, atol=1e-12)


def test_tree_workers_are_threads_of_this_process(digits, monkeypatch):
    seen = []
    score_bags = data_oob._score_bags

    def spy(utility, bags, threads):
        seen.append((os.getpid(), threads))
        return score_bags(utility, bags, threads)

    monkeypatch.setattr(data_oob, "_score_bags", spy)
    u = ModelUtility(DecisionTreeClassifier(random_state=0), *digits)
    with parallel_config(backend="loky"):
        DataOOB(budget=20, random_state=0, n_jobs=2).fit(u)
    assert seen and set(seen) == {(os.getpid(), 2)}


class _Remote(ThreadingBackend):
    """Stands for a cluster backend (Ray, Dask): not one dataworth knows to be local."""


def test_trees_keep_the_engine_workers_on_other_backends(digits):
    u = ModelUtility(DecisionTreeClassifier(random_state=0), *digits)
    assert data_oob._tree_threads(u, 2) == 2
    assert data_oob._tree_threads(u, 1) == 1
    register_parallel_backend("dataworth-test-remote", _Remote)
    with parallel_config(backend="dataworth-test-remote"):
        assert data_oob._tree_threads(u, 2) == 1
    lr = ModelUtility(LogisticRegression(), *digits, batched=False)
    assert data_oob._tree_threads(lr, 2) == 1


class _FailsOnRowZero(DecisionTreeClassifier):
    """A tree (so fitted in threads) whose fit fails on the bags holding training row 0."""

    def fit(self, X, y, sample_weight=None, check_input=True):
        if (X[:, 0] == -1.0).any():
            raise RuntimeError("row 0")
        return super().fit(X, y, sample_weight=sample_weight, check_input=check_input)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_failed_tree_fits_in_threads_raise_or_are_counted(digits, n_jobs):
    train, valid = digits
    X = train.X.copy()
    X[0, 0] = -1.0
    train = train.replace(X=X)
    model = _FailsOnRowZero(random_state=0)
    assert not counts_are_weights(model, X)  # a subclass: copied rows, which fit sees
    with pytest.raises(UtilityError, match="row 0"):
        DataOOB(budget=8, random_state=0, n_jobs=n_jobs).fit(ModelUtility(model, train, valid))
    u = ModelUtility(model, train, valid, catch_errors=True)
    res = DataOOB(budget=40, random_state=0, n_jobs=n_jobs).fit(u).result_
    rng = np.random.default_rng(0)
    holding = sum(0 in rng.integers(0, train.n_samples, train.n_samples) for _ in range(40))
    assert 0 < res.metadata["n_failures"] == holding < 40
    assert res.counts[0] == 40 - holding  # out of bag exactly in the bags that fitted


class _SlowTree(DecisionTreeClassifier):
    """A tree whose fit takes 0.1 s more (sleeping, as tree building, releases the GIL)."""

    def fit(self, X, y, sample_weight=None, check_input=True):
        time.sleep(0.1)
        return super().fit(X, y, sample_weight=sample_weight, check_input=check_input)


def test_time_limit_with_tree_threads(digits):
    u = ModelUtility(_SlowTree(random_state=0), *digits)
    started = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # points never out of bag in so few bags: NaN
        res = DataOOB(budget=None, stop=MaxTime(1.0), random_state=0, n_jobs=2).fit(u).result_
    assert time.monotonic() - started < 2.0
    assert 1 <= res.metadata["n_updates"] < 40
