"""Influence functions: the closed form against real leave-one-out refits of the valuation loss."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.metrics import log_loss, mean_squared_error
from sklearn.svm import SVC

from dataworth import make_utility
from dataworth.data import Dataset
from dataworth.datasets import load_dataset
from dataworth.errors import DataworthError
from dataworth.methods.influence import Influence


def _standardised(name: str, n_train: int, n_valid: int, seed: int = 0) -> tuple[Dataset, Dataset]:
    ds = load_dataset(name)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(ds.n_samples)[: n_train + n_valid]
    X = np.asarray(ds.X, dtype=float)[idx]
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    y = np.asarray(ds.y)[idx]
    return (
        Dataset.from_arrays(X[:n_train], y[:n_train]),
        Dataset.from_arrays(X[n_train:], y[n_train:]),
    )


def _loo_loss_rise(model, train: Dataset, valid: Dataset, classifier: bool) -> np.ndarray:
    """(valuation loss without row i) - (valuation loss with all rows), by real refits."""

    def loss(rows: np.ndarray) -> float:
        fitted = clone(model).fit(train.X[rows], train.y[rows])
        if classifier:
            return float(log_loss(valid.y, fitted.predict_proba(valid.X), labels=fitted.classes_))
        return float(mean_squared_error(valid.y, fitted.predict(valid.X)))

    n = train.n_samples
    full = loss(np.arange(n))
    return np.array([loss(np.delete(np.arange(n), i)) for i in range(n)]) - full


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def test_logistic_matches_leave_one_out_refits():
    """Pearson >= 0.99 against 300 real leave-one-out refits of L2 logistic regression.

    Measured 0.992-0.999 over seeds 0-7 of this generator (0.9959 on seed 0). With few rows per
    parameter first order is cruder: 80 standardised breast-cancer rows with 30 features give
    0.87-0.99 depending on the split, because a few rows move a nearly separating fit a lot;
    test_values_are_the_exact_derivative checks the closed form itself tightly.
    """
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 3))
    y = (rng.random(500) < 1 / (1 + np.exp(-X @ np.array([1.0, -1.0, 0.5])))).astype(int)
    train = Dataset.from_arrays(X[:300], y[:300])
    valid = Dataset.from_arrays(X[300:], y[300:])
    model = LogisticRegression(C=1.0, tol=1e-10, max_iter=10000)
    utility = make_utility(train, valid, model=model, batched=False)
    result = Influence().fit(utility).result_
    loo = _loo_loss_rise(model, train, valid, classifier=True)
    r = _pearson(result.values, loo)
    assert r >= 0.99, r
    # value / n is the first-order loss change itself, not just correlated with it.
    slope = np.polyfit(result.values / 300, loo, 1)[0]
    assert 0.9 < slope < 1.1, slope
    assert result.metadata["loss"] == "log-loss"
    assert result.metadata["approximation"] == "first-order influence (Koh & Liang 2017)"
    assert np.all(result.stderr == 0) and np.all(result.counts == 1)


@pytest.mark.parametrize("model", [Ridge(alpha=1.0), LinearRegression()])
def test_squared_loss_matches_leave_one_out_refits(model):
    train, valid = _standardised("diabetes", 300, 142)
    utility = make_utility(train, valid, model=model, batched=False)
    result = Influence().fit(utility).result_
    loo = _loo_loss_rise(model, train, valid, classifier=False)
    r = _pearson(result.values, loo)
    assert r >= 0.99, r
    assert result.metadata["loss"] == "squared"
    assert result.metadata["hessian"] == "cholesky"


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("breast_cancer", LogisticRegression(C=0.5, tol=1e-12, max_iter=10000)),
        ("iris", LogisticRegression(C=0.5, tol=1e-12, max_iter=10000)),
        ("diabetes", Ridge(alpha=3.0)),
        ("diabetes", LinearRegression()),
    ],
)
def test_values_are_the_exact_derivative(name, model):
    """value_i / n = d/d(eps) of the valuation loss when row i's weight is 1 - eps, at eps = 0."""
    classifier = name in ("breast_cancer", "iris")
    train, valid = _standardised(name, 60, 40)
    utility = make_utility(train, valid, model=model, batched=False)
    values = Influence().fit(utility).result_.values

    def loss(weights: np.ndarray) -> float:
        fitted = clone(model).fit(train.X, train.y, sample_weight=weights)
        if classifier:
            return float(log_loss(valid.y, fitted.predict_proba(valid.X), labels=fitted.classes_))
        return float(mean_squared_error(valid.y, fitted.predict(valid.X)))

    eps = 1e-4
    base = loss(np.ones(60))
    for i in (0, 7, 31):
        w = np.ones(60)
        w[i] -= eps
        slope = (loss(w) - base) / eps
        assert slope * 60 == pytest.approx(values[i], rel=1e-2, abs=1e-6)


def test_flipped_labels_are_harmful():
    train, valid = _standardised("breast_cancer", 100, 80, seed=1)
    flipped = np.arange(0, 100, 20)
    y = train.y.copy()
    y[flipped] = 1 - y[flipped]
    train = train.replace(y=y)
    utility = make_utility(train, valid, model=LogisticRegression(max_iter=5000), batched=False)
    values = Influence().fit(utility).result_.values
    rest = np.setdiff1d(np.arange(100), flipped)
    assert values[flipped].mean() < 0
    assert values[flipped].mean() < values[rest].mean()


def test_groups_sum_their_rows():
    train, valid = _standardised("diabetes", 60, 40)
    groups = np.arange(60) % 7
    grouped = train.replace(groups=groups)
    rows = Influence().fit(make_utility(train, valid, model=Ridge(), batched=False)).result_
    by_group = (
        Influence()
        .fit(make_utility(grouped, valid, model=Ridge(), batched=False, by_group=True))
        .result_
    )
    expected = np.bincount(groups, weights=rows.values)
    np.testing.assert_allclose(by_group.values, expected, rtol=1e-10, atol=1e-12)


def test_singular_hessian_and_damping():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    X = np.column_stack([X, X[:, 0]])  # collinear column: X^T X is singular
    y = X[:, 0] + 0.1 * rng.normal(size=30)
    train = Dataset.from_arrays(X[:20], y[:20])
    valid = Dataset.from_arrays(X[20:], y[20:])
    utility = make_utility(train, valid, model=LinearRegression(), batched=False)
    plain = Influence().fit(utility).result_
    assert np.all(np.isfinite(plain.values))
    damped = Influence(damping=1.0).fit(utility).result_
    assert damped.metadata["hessian"] == "cholesky"
    assert damped.metadata["damping"] == 1.0


def test_errors():
    cancer_train, cancer_valid = _standardised("breast_cancer", 60, 30)
    with pytest.raises(DataworthError, match="does not support SVC"):
        Influence().fit(make_utility(cancer_train, cancer_valid, model=SVC(), batched=False))
    utility = make_utility(cancer_train, cancer_valid, model=LogisticRegression(), batched=False)
    with pytest.raises(DataworthError, match="damping"):
        Influence(damping=-1.0).fit(utility)
    l1 = LogisticRegression(l1_ratio=1.0, solver="saga")
    with pytest.raises(DataworthError, match="L2"):
        Influence().fit(make_utility(cancer_train, cancer_valid, model=l1, batched=False))
