"""Batched Ridge and LinearRegression against scikit-learn's own fit on the selected rows.

Tolerances (relative to the largest absolute scikit-learn prediction of the fit):

* Ridge, any subset or bootstrap bag: 1e-8 (observed ~1e-14);
* LinearRegression, full-rank subsets: 1e-8 (observed ~1e-14);
* LinearRegression, rank-deficient subsets (minimum-norm solution): 1e-6 (observed ~1e-13);
  the minimum-norm answer depends on the discarded singular directions, which both sides only
  know to rounding, so the error bound scales with ``eps * s_max / s_min_kept``;
* end to end, r2 of BatchedUtility vs ModelUtility on the same masks: 1e-9.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression, Ridge

from dataworth.datasets import load_dataset
from dataworth.utility import ModelUtility
from dataworth.utility.batched import BatchedUtility, Unsupported
from dataworth.utility.batched.linear import (
    LeastSquaresTrainer,
    RidgeTrainer,
    _sklearn_version,
    make_ols_trainer,
    make_ridge_trainer,
)

N_TRAIN = 200


@pytest.fixture(scope="module")
def diabetes() -> dict[str, np.ndarray]:
    X, y = load_diabetes(return_X_y=True)
    Xs = (X - X.mean(axis=0)) / X.std(axis=0)
    return {"raw": X, "std": Xs, "y": y}


def split(data: dict[str, np.ndarray], kind: str) -> tuple[np.ndarray, ...]:
    X, y = data[kind], data["y"]
    return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:]


def subset_masks(rng: np.random.Generator, n: int, B: int, lo: int, hi: int) -> np.ndarray:
    """B random 0/1 subset masks with sizes uniform in [lo, hi]."""
    W = np.zeros((B, n))
    for b, size in enumerate(rng.integers(lo, hi + 1, size=B)):
        W[b, rng.choice(n, size=size, replace=False)] = 1.0
    return W


def bootstrap_counts(rng: np.random.Generator, n: int, B: int, bag: int | None = None):
    return rng.multinomial(bag or n, np.full(n, 1.0 / n), size=B).astype(float)


def sklearn_predictions(model, X, y, W, X_eval) -> np.ndarray:
    """scikit-learn fit on the rows repeated by their (integer) weights, one row of W at a time."""
    out = []
    for w in W:
        rows = np.repeat(np.arange(len(y)), w.astype(int))
        out.append(model.fit(X[rows], y[rows]).predict(X_eval))
    return np.array(out)


def relative_errors(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return np.abs(pred - ref).max(axis=1) / np.abs(ref).max(axis=1)


# ---------------------------------------------------------------------- ridge
@pytest.mark.parametrize("kind", ["std", "raw"])
@pytest.mark.parametrize(
    "model",
    [
        Ridge(alpha=1.0),
        Ridge(alpha=0.01),
        Ridge(alpha=10.0, fit_intercept=False),
        Ridge(alpha=0.1, solver="svd"),
    ],
    ids=str,
)
def test_ridge_subsets_match_sklearn(diabetes, kind, model) -> None:
    X, y, X_eval = split(diabetes, kind)
    rng = np.random.default_rng(0)
    W = np.vstack(
        [subset_masks(rng, N_TRAIN, 40, 2, 12), subset_masks(rng, N_TRAIN, 40, 2, N_TRAIN)]
    )
    pred = make_ridge_trainer(model, X, y, 0).fit_predict(W, X_eval)
    ref = sklearn_predictions(model, X, y, W, X_eval)
    assert pred.shape == (W.shape[0], X_eval.shape[0])
    assert relative_errors(pred, ref).max() < 1e-8


def test_ridge_coefficients_and_bootstrap_counts(diabetes) -> None:
    X, y, X_eval = split(diabetes, "std")
    rng = np.random.default_rng(1)
    W = bootstrap_counts(rng, N_TRAIN, 30)
    model = Ridge(alpha=3.0)
    trainer = make_ridge_trainer(model, X, y, 0)
    coef, intercept = trainer.fit(W)
    for b, w in enumerate(W):
        rows = np.repeat(np.arange(N_TRAIN), w.astype(int))
        ref = Ridge(alpha=3.0).fit(X[rows], y[rows])
        np.testing.assert_allclose(coef[b], ref.coef_, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(intercept[b], ref.intercept_, rtol=1e-12)
        # the same as scikit-learn's sample_weight
        weighted = Ridge(alpha=3.0).fit(X, y, sample_weight=w)
        np.testing.assert_allclose(coef[b], weighted.coef_, rtol=1e-9, atol=1e-9)
    pred = trainer.fit_predict(W, X_eval)
    assert relative_errors(pred, sklearn_predictions(model, X, y, W, X_eval)).max() < 1e-8


def test_ridge_large_data_path_equals_outer_product_path(diabetes, monkeypatch) -> None:
    """Gram matrices built block by block (large n * d^2) equal the one-product path."""
    from dataworth.utility.batched import linear

    X, y, X_eval = split(diabetes, "std")
    W = subset_masks(np.random.default_rng(2), N_TRAIN, 25, 2, N_TRAIN)
    fast = RidgeTrainer(X, y, alpha=1.0).fit_predict(W, X_eval)
    monkeypatch.setattr(linear, "_BLOCK_ELEMENTS", 4 * N_TRAIN * X.shape[1])
    blocked = RidgeTrainer(X, y, alpha=1.0)
    assert blocked._outer is None
    np.testing.assert_allclose(blocked.fit_predict(W, X_eval), fast, rtol=1e-12)


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (Ridge(positive=True), "positive"),
        (Ridge(solver="lbfgs"), "lbfgs"),
        (Ridge(alpha=np.array([1.0])), "array"),
        (Ridge(alpha=0.0), "alpha=0"),
        (Ridge(alpha=-1.0), "non-negative"),
    ],
    ids=["positive", "lbfgs", "alpha-array", "alpha-zero", "alpha-negative"],
)
def test_ridge_unsupported(diabetes, model, match) -> None:
    X, y, _ = split(diabetes, "std")
    with pytest.raises(Unsupported, match=match):
        make_ridge_trainer(model, X, y, 0)


def test_multi_output_unsupported(diabetes) -> None:
    X, y, _ = split(diabetes, "std")
    Y = np.column_stack([y, y])
    with pytest.raises(Unsupported, match="single-output"):
        make_ridge_trainer(Ridge(), X, Y, 0)
    with pytest.raises(Unsupported, match="single-output"):
        make_ols_trainer(LinearRegression(), X, Y, 0)


def test_invalid_weights_are_refused(diabetes) -> None:
    X, y, X_eval = split(diabetes, "std")
    for trainer in (RidgeTrainer(X, y, 1.0), LeastSquaresTrainer(X, y)):
        with pytest.raises(ValueError, match="shape"):
            trainer.fit_predict(np.ones((2, N_TRAIN + 1)), X_eval)
        with pytest.raises(ValueError, match="non-negative"):
            trainer.fit_predict(-np.ones((2, N_TRAIN)), X_eval)
        with pytest.raises(ValueError, match="positive total"):
            trainer.fit_predict(np.zeros((2, N_TRAIN)), X_eval)
        with pytest.raises(ValueError, match="features"):
            trainer.fit_predict(np.ones((2, N_TRAIN)), X_eval[:, :3])


# ---------------------------------------------------------------------- least squares
def full_rank(X: np.ndarray, w: np.ndarray, intercept: bool) -> bool:
    rows = X[w > 0]
    if intercept:
        rows = rows - rows.mean(axis=0)
    return bool(np.linalg.matrix_rank(rows) == X.shape[1])


@pytest.mark.parametrize("kind", ["std", "raw"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_ols_full_rank_subsets_match_sklearn(diabetes, kind, fit_intercept) -> None:
    X, y, X_eval = split(diabetes, kind)
    rng = np.random.default_rng(3)
    W = subset_masks(rng, N_TRAIN, 80, 15, N_TRAIN)
    W = W[[full_rank(X, w, fit_intercept) for w in W]]
    assert W.shape[0] > 60
    model = LinearRegression(fit_intercept=fit_intercept)
    pred = make_ols_trainer(model, X, y, 0).fit_predict(W, X_eval)
    ref = sklearn_predictions(model, X, y, W, X_eval)
    assert relative_errors(pred, ref).max() < 1e-8


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_ols_rank_deficient_subsets_match_sklearn(diabetes, fit_intercept) -> None:
    """Minimum-norm solutions: subsets with fewer rows than features, and collinear columns."""
    X, y, X_eval = split(diabetes, "std")
    rng = np.random.default_rng(4)
    model = LinearRegression(fit_intercept=fit_intercept)
    # fewer rows than features (counting the intercept)
    W = subset_masks(rng, N_TRAIN, 60, 1, X.shape[1] - (not fit_intercept))
    # a duplicated and a collinear column: rank deficient whatever the subset
    Xd = np.column_stack([X, X[:, 0], X[:, 1] - 2.0 * X[:, 2]])
    Xd_eval = np.column_stack([X_eval, X_eval[:, 0], X_eval[:, 1] - 2.0 * X_eval[:, 2]])
    Wd = subset_masks(rng, N_TRAIN, 40, 1, N_TRAIN)
    for XX, XE, WW in ((X, X_eval, W), (Xd, Xd_eval, Wd)):
        assert not any(full_rank(XX, w, fit_intercept) for w in WW)
        pred = make_ols_trainer(model, XX, y, 0).fit_predict(WW, XE)
        ref = sklearn_predictions(model, XX, y, WW, XE)
        assert relative_errors(pred, ref).max() < 1e-6
    # the minimum-norm property itself: equal weight on the duplicated column
    coef, _ = make_ols_trainer(model, Xd, y, 0).fit(Wd)
    np.testing.assert_allclose(coef[:, 0], coef[:, X.shape[1]], rtol=1e-8)


def test_ols_bootstrap_counts_match_repeated_rows(diabetes) -> None:
    X, y, X_eval = split(diabetes, "raw")
    rng = np.random.default_rng(5)
    W = np.vstack([bootstrap_counts(rng, N_TRAIN, 20), bootstrap_counts(rng, N_TRAIN, 20, bag=8)])
    model = LinearRegression()
    pred = make_ols_trainer(model, X, y, 0).fit_predict(W, X_eval)
    ref = sklearn_predictions(model, X, y, W, X_eval)
    assert relative_errors(pred[:20], ref[:20]).max() < 1e-8  # full rank
    assert relative_errors(pred[20:], ref[20:]).max() < 1e-6  # 8 draws: rank deficient


@pytest.mark.skipif(_sklearn_version() < (1, 9), reason="LinearRegression.tol as cond from 1.9")
@pytest.mark.parametrize("tol", [1e-6, 1e-12])
def test_ols_cutoff_follows_sklearn_tol(tol) -> None:
    """A singular value between the two cutoffs is dropped with tol=1e-6, kept with 1e-12."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(60, 3))
    X = np.column_stack([X, X[:, 0] + 1e-9 * rng.normal(size=60)])
    y = X[:, :3] @ [1.0, -2.0, 0.5] + 1e-3 * X[:, 3] + rng.normal(size=60)
    X_eval = rng.normal(size=(20, 4))
    W = subset_masks(rng, 60, 10, 20, 60)
    model = LinearRegression(tol=tol)
    pred = make_ols_trainer(model, X, y, 0).fit_predict(W, X_eval)
    ref = sklearn_predictions(model, X, y, W, X_eval)
    assert relative_errors(pred, ref).max() < 1e-6


def test_ols_unsupported() -> None:
    with pytest.raises(Unsupported, match="positive"):
        make_ols_trainer(LinearRegression(positive=True), np.eye(3), np.ones(3), 0)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 12),
    d=st.integers(1, 6),
    fit_intercept=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_ols_and_ridge_property(n, d, fit_intercept, seed) -> None:
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(n, d)), rng.normal(size=n)
    W = rng.integers(0, 3, size=(4, n)).astype(float)
    W[:, 0] += 1.0
    X_eval = rng.normal(size=(5, d))
    for model, tol in ((LinearRegression(fit_intercept=fit_intercept), 1e-6),
                       (Ridge(alpha=0.5, fit_intercept=fit_intercept), 1e-8)):  # fmt: skip
        factory = make_ols_trainer if isinstance(model, LinearRegression) else make_ridge_trainer
        pred = factory(model, X, y, 0).fit_predict(W, X_eval)
        ref = sklearn_predictions(model, X, y, W, X_eval)
        scale = np.maximum(np.abs(ref).max(axis=1), 1.0)
        assert (np.abs(pred - ref).max(axis=1) / scale).max() < tol


# ---------------------------------------------------------------------- end to end
@pytest.mark.parametrize(
    "model",
    [Ridge(alpha=1.0), Ridge(alpha=0.05, fit_intercept=False), LinearRegression()],
    ids=str,
)
def test_batched_utility_equals_model_utility(model) -> None:
    train, valid = load_dataset("diabetes").split(0.3, random_state=0)
    batched = BatchedUtility(model, train, valid)
    single = ModelUtility(model, train, valid, batched=False)
    rng = np.random.default_rng(7)
    n = train.n_samples
    masks = np.vstack(
        [subset_masks(rng, n, 30, 1, 15), subset_masks(rng, n, 30, 16, n), np.zeros((1, n))]
    ).astype(bool)
    a = batched.evaluate_many(masks)
    b = np.array([single(m) for m in masks])
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
    assert batched(masks[3]) == pytest.approx(single(masks[3]), rel=1e-9, abs=1e-9)
