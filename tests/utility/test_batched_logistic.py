"""Batched logistic regression: scikit-learn's optimum on many weighted subsets at once."""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from sklearn.base import clone
from sklearn.datasets import (
    load_breast_cancer,
    load_digits,
    load_iris,
    load_wine,
    make_classification,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from dataworth.datasets import load_dataset
from dataworth.utility import ModelUtility
from dataworth.utility.batched import BatchedUtility, Unsupported
from dataworth.utility.batched.logistic import LogisticFit, LogisticTrainer, make_trainer

Array = NDArray[np.float64]


def _standardise(X: Array) -> Array:
    std = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)


@cache
def _data(name: str) -> tuple[Array, NDArray[np.intp]]:
    """Standardised features and class codes (200 breast-cancer rows; four synthetic classes)."""
    if name == "four":
        X, y = make_classification(
            n_samples=160, n_features=5, n_informative=4, n_redundant=0, n_classes=4,
            n_clusters_per_class=1, class_sep=1.5, random_state=0,
        )  # fmt: skip
    else:
        loader = {"breast_cancer": load_breast_cancer, "iris": load_iris, "wine": load_wine}
        X, y = loader[name](return_X_y=True)
        if name == "breast_cancer":
            X, y = X[:200], y[:200]
    return _standardise(np.asarray(X, dtype=np.float64)), np.asarray(y, dtype=np.intp)


def _weights(
    y: NDArray[np.intp],
    rng: np.random.Generator,
    n_subsets: int,
    *,
    n_present: int | None = None,
    bootstrap: bool = False,
) -> Array:
    """Random 0/1 subsets (or bootstrap counts) with at least two classes, tiny ones included.

    ``n_present`` fixes the number of classes present; the first subsets have one row of each.
    """
    n, K = y.size, int(y.max()) + 1
    rows: list[Array] = []
    while len(rows) < n_subsets:
        k = n_present or int(rng.integers(2, K + 1))
        classes = rng.choice(K, size=k, replace=False)
        pool = np.flatnonzero(np.isin(y, classes))
        if len(rows) < 2:  # the smallest subsets: one row of each class
            picked = np.array([rng.choice(np.flatnonzero(y == c)) for c in classes])
        else:
            size = int(rng.integers(k, pool.size + 1))
            picked = rng.choice(pool, size=size, replace=bootstrap)
        w = np.bincount(picked, minlength=n).astype(np.float64)
        if np.unique(y[w > 0]).size == k:
            rows.append(w if bootstrap else np.minimum(w, 1.0))
    return np.array(rows)


def _sklearn_fit(X: Array, y: NDArray[np.intp], w: Array, **params: object) -> LogisticRegression:
    """scikit-learn fitted on the rows repeated by their weights (tight tolerance)."""
    rows = np.repeat(np.arange(y.size), w.astype(int))
    params = {"tol": 1e-10, "max_iter": 10000, **params}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression(**params).fit(X[rows], y[rows])


def _centred(model_coef: Array, intercept: Array) -> Array:
    """Coefficients with the intercepts, these centred over classes for a multinomial model."""
    if intercept.size > 1:
        intercept = intercept - intercept.mean()
    return np.column_stack([model_coef, intercept])


def _margin(ref: LogisticRegression, X: Array) -> Array:
    """How far each point is from a tie of scikit-learn's decision (0 at a tie)."""
    scores = ref.decision_function(X)
    if scores.ndim == 1:
        return np.abs(scores)
    top2 = np.sort(scores, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def _compare(
    X: Array,
    y: NDArray[np.intp],
    W: Array,
    fit: LogisticFit,
    *,
    rtol: float,
    **params: object,
) -> None:
    """Coefficients within ``rtol`` of scikit-learn's (relative to their norm), same classes
    and the same predictions but at exact decision-boundary ties."""
    pred = fit.predict(X)
    for b, w in enumerate(W):
        ref = _sklearn_fit(X, y, w, **params)
        present = np.unique(y[w > 0])
        np.testing.assert_array_equal(np.flatnonzero(fit.present[b]), present)
        assert fit.binary[b] == (present.size == 2)
        coef, intercept = fit.sklearn_coef(b)
        assert coef.shape == ref.coef_.shape
        ours, theirs = _centred(coef, intercept), _centred(ref.coef_, ref.intercept_)
        err = float(np.linalg.norm(ours - theirs)) / max(float(np.linalg.norm(theirs)), 1e-12)
        assert err <= rtol, (b, int(w.sum()), err)
        differ = pred[b] != ref.predict(X)
        assert np.all(_margin(ref, X)[differ] < 1e-6)


# ---------------------------------------------------------------------------------- optimum
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("C", [0.05, 1.0, 100.0])
def test_binary_matches_sklearn(C: float, fit_intercept: bool) -> None:
    X, y = _data("breast_cancer")
    W = _weights(y, np.random.default_rng(0), 24)
    model = LogisticRegression(C=C, fit_intercept=fit_intercept)
    fit = make_trainer(model, X, y, 2).fit(W)
    assert fit.converged.all() and fit.binary.all()
    params = {"C": C, "fit_intercept": fit_intercept, "solver": "newton-cholesky", "tol": 1e-12}
    _compare(X, y, W, fit, rtol=1e-7, **params)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("C", [0.1, 10.0])
@pytest.mark.parametrize(("name", "n_present"), [("iris", 2), ("iris", 3), ("wine", None),
                                                 ("four", 3), ("four", None)])  # fmt: skip
def test_multiclass_matches_sklearn_on_present_classes(
    name: str, n_present: int | None, C: float, fit_intercept: bool
) -> None:
    """Two present classes: a binary fit; three or more: a multinomial over those only."""
    X, y = _data(name)
    K = int(y.max()) + 1
    W = _weights(y, np.random.default_rng(1), 16, n_present=n_present)
    fit = make_trainer(LogisticRegression(C=C, fit_intercept=fit_intercept), X, y, K).fit(W)
    assert fit.converged.all()
    if n_present is not None:
        assert (fit.present.sum(axis=1) == n_present).all()
    params = {"C": C, "fit_intercept": fit_intercept, "solver": "newton-cholesky", "tol": 1e-12}
    _compare(X, y, W, fit, rtol=1e-7, **params)


@pytest.mark.parametrize("name", ["breast_cancer", "wine", "four"])
def test_default_lbfgs_agrees_within_its_tolerance(name: str) -> None:
    """Against scikit-learn's default solver (lbfgs) at tol=1e-10, the brief's reference."""
    X, y = _data(name)
    W = _weights(y, np.random.default_rng(2), 12)
    fit = make_trainer(LogisticRegression(), X, y, int(y.max()) + 1).fit(W)
    _compare(X, y, W, fit, rtol=1e-5)


@pytest.mark.parametrize("name", ["breast_cancer", "iris", "four"])
def test_bootstrap_counts_equal_repeated_rows(name: str) -> None:
    X, y = _data(name)
    W = _weights(y, np.random.default_rng(3), 12, bootstrap=True)
    assert W.max() > 1
    fit = make_trainer(LogisticRegression(C=2.0), X, y, int(y.max()) + 1).fit(W)
    _compare(X, y, W, fit, rtol=1e-7, C=2.0, solver="newton-cholesky", tol=1e-12)


def _objective(
    X: Array, y: NDArray[np.intp], w: Array, coef: Array, icpt: Array, C: float
) -> float:
    """scikit-learn's objective 0.5 ||coef||^2 + C sum_i w_i loss_i on the present classes."""
    keep = w > 0
    X, y, w = X[keep], y[keep], w[keep]
    classes = np.unique(y)
    if classes.size == 2:
        z = X @ coef[0] + icpt[0]
        m = np.where(y == classes[1], -z, z)
        loss = np.logaddexp(0.0, m)
    else:
        Z = X @ coef.T + icpt
        loss = np.logaddexp.reduce(Z, axis=1) - Z[np.arange(y.size), np.searchsorted(classes, y)]
    return float(0.5 * np.sum(coef**2) + C * np.sum(w * loss))


@pytest.mark.parametrize("C", [1e4, 1e7])
def test_tiny_separable_subsets_with_huge_C_converge(C: float) -> None:
    """Two to five rows, nearly no penalty: still converged, and no worse than scikit-learn."""
    for name in ("breast_cancer", "iris"):
        X, y = _data(name)
        rng = np.random.default_rng(4)
        W = np.zeros((16, y.size))
        for w in W:
            while np.unique(y[w > 0]).size < 2:
                w[:] = 0.0
                w[rng.choice(y.size, size=int(rng.integers(2, 6)), replace=False)] = 1.0
        fit = make_trainer(LogisticRegression(C=C), X, y, int(y.max()) + 1).fit(W)
        assert fit.converged.all()
        assert fit.n_iter.max() < 60
        for b, w in enumerate(W):
            ref = _sklearn_fit(X, y, w, C=C, solver="newton-cholesky", tol=1e-12)
            coef, intercept = fit.sklearn_coef(b)
            ours = _objective(X, y, w, coef, intercept, C)
            theirs = _objective(X, y, w, ref.coef_, ref.intercept_, C)
            assert ours <= theirs + 1e-9 * abs(theirs)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_classes=st.integers(2, 4),
    log_C=st.floats(-2.0, 3.0),
    fit_intercept=st.booleans(),
)
def test_gradient_vanishes_at_solution(
    seed: int, n_classes: int, log_C: float, fit_intercept: bool
) -> None:
    """Optimality without scikit-learn: the objective's gradient (present classes) is ~0."""
    rng = np.random.default_rng(seed)
    n, d = 30, 3
    X = rng.normal(size=(n, d)) * rng.uniform(0.1, 3.0, size=d)
    y = rng.integers(0, n_classes, size=n)
    y[:n_classes] = np.arange(n_classes)
    W = rng.integers(0, 3, size=(6, n)).astype(np.float64)
    W[:, :2] = np.maximum(W[:, :2], 1.0)  # classes 0 and 1 always present
    C = 10.0**log_C
    fit = make_trainer(LogisticRegression(C=C, fit_intercept=fit_intercept), X, y, n_classes).fit(W)
    for b, w in enumerate(W):
        coef, icpt = fit.sklearn_coef(b)
        classes = np.flatnonzero(fit.present[b])
        Z = X @ coef.T + icpt
        if classes.size == 2:
            R = (1.0 / (1.0 + np.exp(-Z[:, 0])) - (y == classes[1]))[:, None]
        else:
            P = np.exp(Z - Z.max(axis=1, keepdims=True))
            P /= P.sum(axis=1, keepdims=True)
            R = P - (y[:, None] == classes[None, :])
        R *= w[:, None]
        grad = np.column_stack([coef + C * R.T @ X, C * R.sum(axis=0)])
        if not fit_intercept:
            grad = grad[:, :-1]
            assert np.all(icpt == 0.0)
        assert np.abs(grad).max() <= 1e-8 * max(1.0, C * w.sum())


# ---------------------------------------------------------------------------------- batch
def test_each_row_is_independent_of_the_rest_of_its_batch() -> None:
    X, y = _data("four")
    W = _weights(y, np.random.default_rng(5), 20)
    trainer = make_trainer(LogisticRegression(), X, y, 4)
    whole = trainer.fit(W)
    for b in (0, 7, 19):
        alone = trainer.fit(W[b : b + 1])
        np.testing.assert_allclose(alone.coef[0], whole.coef[b], atol=1e-9)
        np.testing.assert_allclose(alone.intercept[0], whole.intercept[b], atol=1e-9)
    pred = trainer.fit_predict(W, X[:7])
    assert pred.shape == (20, 7) and pred.dtype.kind == "i"
    absent = ~whole.present
    assert not np.any(absent[np.arange(20)[:, None], pred])  # absent classes never predicted


def test_rows_needing_no_fit_are_refused_and_shapes_checked() -> None:
    X, y = _data("iris")
    trainer = make_trainer(LogisticRegression(), X, y, 3)
    one_class = (y == 0).astype(np.float64)[None, :]
    with pytest.raises(ValueError, match="two classes"):
        trainer.fit(one_class)
    with pytest.raises(ValueError, match="shape"):
        trainer.fit(np.ones((2, y.size + 1)))


def test_trainer_constructed_directly() -> None:
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    trainer = LogisticTrainer(X, np.array([0, 0, 1, 1]), 2, C=1.0)
    fit = trainer.fit(np.ones((1, 4)))
    ref = LogisticRegression(tol=1e-12, solver="newton-cholesky").fit(X, [0, 0, 1, 1])
    np.testing.assert_allclose(fit.sklearn_coef(0)[0], ref.coef_, rtol=1e-8)


# ---------------------------------------------------------------------------------- settings
def _model(**params: object) -> LogisticRegression:
    """A LogisticRegression with these settings (skip when this scikit-learn lacks one)."""
    missing = set(params) - set(LogisticRegression().get_params())
    if missing:
        pytest.skip(f"this scikit-learn has no {sorted(missing)}")
    return LogisticRegression(**params)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"l1_ratio": 1.0, "solver": "saga"}, "l1_ratio|penalty"),
        ({"l1_ratio": 0.5, "solver": "saga"}, "l1_ratio|penalty"),
        ({"C": np.inf}, "C="),
        ({"class_weight": "balanced"}, "class_weight"),
        ({"class_weight": {0: 1.0, 1: 2.0}}, "class_weight"),
        ({"solver": "liblinear"}, "liblinear"),
        ({"penalty": "l1", "solver": "saga"}, "penalty"),
        ({"penalty": None}, "penalty|C="),
    ],
)
def test_unsupported_settings(params: dict[str, object], match: str) -> None:
    X, y = _data("breast_cancer")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = _model(**params)
        with pytest.raises(Unsupported, match=match):
            make_trainer(model, X, y, 2)


def test_one_vs_rest_unsupported_where_it_exists() -> None:
    X, y = _data("iris")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = _model(multi_class="ovr")
        with pytest.raises(Unsupported, match="ovr"):
            make_trainer(model, X, y, 3)


def test_too_many_parameters_unsupported() -> None:
    """digits: 10 classes x (64 + 1) parameters, too many for full Newton steps."""
    X, y = load_digits(return_X_y=True)
    with pytest.raises(Unsupported, match="parameters"):
        make_trainer(LogisticRegression(), X.astype(np.float64), y, 10)
    binary = y < 2  # 65 parameters: fine
    make_trainer(LogisticRegression(), X[binary].astype(np.float64), y[binary], 2)


@pytest.mark.parametrize(
    "params",
    [
        {"solver": "newton-cg"},
        {"solver": "newton-cholesky"},
        {"solver": "sag"},
        {"solver": "saga"},
        {"penalty": "l2"},
        {"warm_start": True, "intercept_scaling": 5.0, "max_iter": 3},
    ],
)
def test_supported_settings_share_one_optimum(params: dict[str, object]) -> None:
    X, y = _data("wine")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = _model(**params)
    trainer = make_trainer(model, X, y, 3)
    assert isinstance(trainer, LogisticTrainer) and trainer.C == 1.0


# ---------------------------------------------------------------------------------- end to end
@pytest.mark.parametrize(
    ("name", "solver"),
    [("breast_cancer", "newton-cholesky"), ("wine", "newton-cholesky"), ("iris", "lbfgs")],
)
def test_batched_utility_scores_as_model_utility(name: str, solver: str) -> None:
    """Same masks, same scores, but where scikit-learn's decision is within 1e-6 of a tie.

    (lbfgs at ``tol=1e-10`` is slow on breast_cancer; its coefficients are compared above.)
    """
    train, valid = load_dataset(name).split(0.3, random_state=0)
    train = train.take(np.arange(min(120, train.n_samples)))
    mean, std = train.X.mean(axis=0), train.X.std(axis=0)
    train = train.replace(X=(train.X - mean) / std)
    valid = valid.replace(X=(valid.X - mean) / std)
    model = LogisticRegression(solver=solver, tol=1e-10, max_iter=10000)
    batched = BatchedUtility(model, train, valid)
    single = ModelUtility(model, train, valid, batched=False)
    rng = np.random.default_rng(6)
    masks = rng.random((100, train.n_samples)) < rng.uniform(0.02, 0.9, size=(100, 1))
    masks[0] = False
    masks[1] = True
    a = batched.evaluate_many(masks)
    b = np.array([single(m) for m in masks])
    same = np.abs(a - b) < 1e-12
    assert same.mean() >= 0.99
    classes = single.classes
    assert classes is not None
    for i in np.flatnonzero(~same):
        rows = single.rows_of(masks[i])
        ref = clone(model).fit(train.X[rows], train.y[rows])
        ours = batched.trainer.fit_predict(masks[i][None, :].astype(float), valid.X)[0]
        differ = ours != np.searchsorted(classes, ref.predict(valid.X))
        assert np.all(_margin(ref, valid.X)[differ] < 1e-6)
