"""Batched GaussianNB against scikit-learn's own fit on the selected (or repeated) rows.

Tolerances: class means and priors to 1e-12 relative, variances to 1e-9 relative (observed
~1e-15); predicted classes equal, except where scikit-learn's two best joint log-likelihoods
are tied to 1e-9 relative (an exact tie up to rounding; none occurs in these tests); accuracy
of BatchedUtility exactly equal to ModelUtility's on the same masks.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.naive_bayes import GaussianNB

from dataworth.datasets import load_dataset
from dataworth.utility import ModelUtility
from dataworth.utility.batched import BatchedUtility, Unsupported
from dataworth.utility.batched.naive_bayes import GaussianNBTrainer, make_trainer

LOADERS = {"iris": load_iris, "wine": load_wine, "breast_cancer": load_breast_cancer}


def data(name: str, standardise: bool) -> tuple[np.ndarray, ...]:
    X, y = LOADERS[name](return_X_y=True)
    if standardise:
        X = (X - X.mean(axis=0)) / X.std(axis=0)
    perm = np.random.default_rng(0).permutation(len(y))
    cut = int(0.7 * len(y))
    return X[perm[:cut]], y[perm[:cut]], X[perm[cut:]]


def two_class_masks(rng, y: np.ndarray, B: int, lo: int, hi: int) -> np.ndarray:
    """B random 0/1 subset masks, sizes in [lo, hi], each with at least two classes."""
    W = np.zeros((B, len(y)))
    for b in range(B):
        while True:
            rows = rng.choice(len(y), size=int(rng.integers(lo, hi + 1)), replace=False)
            if np.unique(y[rows]).size >= 2:
                break
        W[b, rows] = 1.0
    return W


def repeated_rows(w: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(w.size), w.astype(int))


def check_against_sklearn(trainer, model, X, y, W, X_eval) -> int:
    """Compare parameters and predictions fit by fit; returns the number of tied predictions."""
    fit = trainer.fit(W)
    pred = trainer.fit_predict(W, X_eval)
    ties = 0
    for b, w in enumerate(W):
        rows = repeated_rows(w)
        ref = model.fit(X[rows], y[rows])
        cls = ref.classes_
        np.testing.assert_array_equal(np.flatnonzero(fit.present[b]), cls)
        np.testing.assert_allclose(fit.theta[b, cls], ref.theta_, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(fit.var[b, cls], ref.var_, rtol=1e-9)
        np.testing.assert_allclose(np.exp(fit.log_prior[b, cls]), ref.class_prior_, rtol=1e-12)
        np.testing.assert_allclose(fit.epsilon[b], ref.epsilon_, rtol=1e-9, atol=1e-300)
        expected = ref.predict(X_eval)
        differ = np.flatnonzero(pred[b] != expected)
        if differ.size:
            jll = np.sort(ref.predict_joint_log_proba(X_eval[differ]), axis=1)
            gap = jll[:, -1] - jll[:, -2]
            assert np.all(gap <= 1e-9 * np.abs(jll[:, -1])), "a prediction differs without a tie"
            ties += differ.size
        assert set(np.unique(pred[b])) <= set(cls.tolist())
    return ties


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer"])
@pytest.mark.parametrize("standardise", [True, False])
def test_subsets_match_sklearn(name, standardise) -> None:
    X, y, X_eval = data(name, standardise)
    rng = np.random.default_rng(1)
    W = np.vstack([two_class_masks(rng, y, 40, 2, 8), two_class_masks(rng, y, 40, 2, len(y))])
    model = GaussianNB()
    ties = check_against_sklearn(make_trainer(model, X, y, 3), model, X, y, W, X_eval)
    assert ties <= 2


@pytest.mark.parametrize("var_smoothing", [1e-12, 1e-3, 0.5])
def test_var_smoothing(var_smoothing) -> None:
    X, y, X_eval = data("wine", False)
    W = two_class_masks(np.random.default_rng(2), y, 40, 2, len(y))
    model = GaussianNB(var_smoothing=var_smoothing)
    assert check_against_sklearn(make_trainer(model, X, y, 3), model, X, y, W, X_eval) <= 2


def test_bootstrap_counts_match_repeated_rows() -> None:
    X, y, X_eval = data("breast_cancer", True)
    rng = np.random.default_rng(3)
    n = len(y)
    W = np.vstack(
        [
            rng.multinomial(n, np.full(n, 1.0 / n), size=30),
            rng.multinomial(6, np.full(n, 1.0 / n), size=30),
        ]
    ).astype(float)
    W = W[[np.unique(y[w > 0]).size == 2 for w in W]]
    model = GaussianNB()
    assert check_against_sklearn(make_trainer(model, X, y, 2), model, X, y, W, X_eval) <= 2


def test_absent_classes_are_never_predicted() -> None:
    X, y, X_eval = data("iris", True)
    W = np.zeros((3, len(y)))
    for b, missing in enumerate(range(3)):
        W[b, y != missing] = 1.0
    pred = make_trainer(GaussianNB(), X, y, 3).fit_predict(W, X_eval)
    for b, missing in enumerate(range(3)):
        assert missing not in pred[b]
        ref = GaussianNB().fit(X[W[b] > 0], y[W[b] > 0]).predict(X_eval)
        np.testing.assert_array_equal(pred[b], ref)


def test_blocks_equal_one_batch(monkeypatch) -> None:
    """Subsets processed in small memory blocks give the same answers as in one block.

    Not bit for bit: a block pads its subsets to its largest one, so the batched products
    that sum a class's rows run over other lengths and batch shapes, and the BLAS kernel may
    block and order the additions differently (17 of 1,170 variances differed by 1 ULP with
    OpenBLAS's Haswell kernels). Each variance is a sum of at most n non-negative terms
    ``w (x - mean)^2`` divided by the class count; any summation order is within about
    ``n * eps`` of the exact sum relative to it, so two orders agree to ``2 n eps`` (with the
    two-pass deviations' own rounding, 4 n eps). Predicted classes are the argmax of
    likelihoods that far apart; they differ only at a tie within rounding, of which these
    data have none (the test compares them exactly).
    """
    from dataworth.utility.batched import linear

    X, y, X_eval = data("wine", True)
    W = two_class_masks(np.random.default_rng(4), y, 30, 2, len(y))
    trainer = make_trainer(GaussianNB(), X, y, 3)
    one = trainer.fit_predict(W, X_eval)
    full = trainer.fit(W)
    monkeypatch.setattr(linear, "_BLOCK_ELEMENTS", 1000)
    np.testing.assert_array_equal(trainer.fit_predict(W, X_eval), one)
    blocked = trainer.fit(W)
    rtol = 4 * len(y) * np.finfo(np.float64).eps
    np.testing.assert_allclose(blocked.var, full.var, rtol=rtol, atol=0)
    np.testing.assert_allclose(blocked.theta, full.theta, rtol=0, atol=rtol * np.abs(X).max())


def test_identical_rows_with_different_labels_follow_sklearn() -> None:
    """epsilon is 0 when the subset's rows are identical: scikit-learn's nan scores, same argmax."""
    X = np.array([[1.0, 2.0], [1.0, 2.0], [3.0, 0.0]])
    y = np.array([1, 0, 1])
    W = np.array([[1.0, 1.0, 0.0]])
    X_eval = np.array([[1.0, 2.0], [0.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = GaussianNB().fit(X[:2], y[:2]).predict(X_eval)
        pred = make_trainer(GaussianNB(), X, y, 2).fit_predict(W, X_eval)
    np.testing.assert_array_equal(pred[0], ref)


@pytest.mark.parametrize("name", ["iris", "wine"])
def test_fast_argmax_equals_term_by_term_argmax(name) -> None:
    """Predictions (fast path plus recomputation) equal the argmax of the exact likelihoods."""
    X, y, X_eval = data(name, False)
    rng = np.random.default_rng(6)
    W = np.vstack([two_class_masks(rng, y, 60, 2, 5), two_class_masks(rng, y, 20, 2, len(y))])
    trainer = make_trainer(GaussianNB(), X, y, 3)
    fit = trainer.fit(W)
    exact = np.argmax(trainer.joint_log_likelihood(fit, X_eval), axis=1)
    np.testing.assert_array_equal(trainer.predict(fit, X_eval), exact)
    best, sure = trainer._fast_argmax(fit, X_eval)
    np.testing.assert_array_equal(best[sure], exact[sure])
    assert sure.mean() > 0.99


def test_exact_ties_are_recomputed_and_broken_like_sklearn() -> None:
    """Equidistant points tie exactly: not certified, recomputed, the first class wins."""
    X = np.array([[-3.0], [-1.0], [1.0], [3.0], [2.0], [4.0]])  # means -2, 2, 3; variances 1
    y = np.array([0, 0, 1, 1, 2, 2])
    W = np.array([[1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1]], dtype=float)
    X_eval = np.array([[0.0], [10.0], [-10.0], [2.5]])
    trainer = make_trainer(GaussianNB(), X, y, 3)
    fit = trainer.fit(W)
    _, sure = trainer._fast_argmax(fit, X_eval)
    pred = trainer.predict(fit, X_eval)
    for b, w in enumerate(W):
        ref = GaussianNB().fit(X[w > 0], y[w > 0]).predict(X_eval)
        np.testing.assert_array_equal(pred[b], ref)
    assert not sure[0, 0] and not sure[1, 3]  # the ties: 0 between -2 and 2, 2.5 between 2 and 3
    assert pred[0, 0] == 0 and pred[1, 3] == 1  # the first of the tied classes, as np.argmax


def test_unsupported_settings() -> None:
    X, y, _ = data("iris", True)
    with pytest.raises(Unsupported, match="priors"):
        make_trainer(GaussianNB(priors=[0.2, 0.3, 0.5]), X, y, 3)
    with pytest.raises(Unsupported, match="var_smoothing"):
        make_trainer(GaussianNB(var_smoothing=0.0), X, y, 3)


def test_invalid_inputs() -> None:
    X, y, X_eval = data("iris", True)
    with pytest.raises(ValueError, match="codes"):
        GaussianNBTrainer(X, y, 2)
    trainer = GaussianNBTrainer(X, y, 3)
    with pytest.raises(ValueError, match="positive total"):
        trainer.fit_predict(np.zeros((1, len(y))), X_eval)
    with pytest.raises(ValueError, match="shape"):
        trainer.fit_predict(np.ones((1, 3)), X_eval)


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer"])
def test_batched_utility_equals_model_utility(name) -> None:
    train, valid = load_dataset(name).split(0.3, random_state=0)
    batched = BatchedUtility(GaussianNB(), train, valid)
    single = ModelUtility(GaussianNB(), train, valid, batched=False)
    rng = np.random.default_rng(5)
    n = train.n_samples
    sizes = np.concatenate([rng.integers(1, 10, size=30), rng.integers(10, n + 1, size=30)])
    masks = np.zeros((sizes.size + 1, n), dtype=bool)
    for i, size in enumerate(sizes):
        masks[i, rng.choice(n, size=size, replace=False)] = True
    scores = batched.evaluate_many(masks)
    np.testing.assert_array_equal(scores, [single(m) for m in masks])
