"""Numeric edge cases inside the methods: constant and duplicated features, perfectly separable
classes, singular Hessians (with and without damping), and a single class in training.

Oracles: scikit-learn's own fits (the batched trainer must agree with them subset by subset),
the constant-predictor convention of docs/conventions.md for one-class subsets (hand-computed
share), efficiency of permutation Shapley (every permutation telescopes to ``u(N) - u(empty)``),
and the invariance of influence under a redundant parametrisation (a duplicated or constant column
changes the Hessian's rank but not one influence value).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

from dataworth.api import make_utility
from dataworth.data import Dataset
from dataworth.errors import DataworthError
from dataworth.influence import LinearInfluence, influence_values
from dataworth.methods import get_method
from dataworth.utility.batched import BatchedUtility
from dataworth.utility.model import ModelUtility

N_TRAIN, N_VALID = 24, 12


def _redundant(x: np.ndarray) -> np.ndarray:
    """Features: x, a constant, a copy of x, zeros."""
    return np.column_stack([x, np.full(x.size, 2.0), x, np.zeros(x.size)])


def _separable(seed: int = 1) -> tuple[Dataset, Dataset]:
    rng = np.random.default_rng(seed)
    x, xv = rng.normal(size=N_TRAIN), rng.normal(size=N_VALID)
    train = Dataset.from_arrays(_redundant(x), (x > 0).astype(int))
    valid = Dataset.from_arrays(_redundant(xv), (xv > 0).astype(int))
    return train, valid


def _subsets(labels: np.ndarray) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    n = labels.size
    out = [np.arange(n), np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)[:3]]
    out += [np.sort(rng.choice(n, k, replace=False)) for k in (2, 3, 5, 8, 12, 20)]
    return out


# ------------------------------------------------------------ constant, duplicated, separable
@pytest.mark.parametrize("C", [1.0, 1e8])
def test_batched_logistic_matches_sklearn_on_redundant_separable_data(C) -> None:
    """Constant, zero and duplicated columns (a singular Gram matrix) on perfectly separable
    classes, with an ordinary and an almost absent penalty (coefficients near infinity)."""
    train, valid = _separable()
    model = LogisticRegression(C=C, max_iter=5000)
    batched = BatchedUtility(model, train, valid, device="numpy")
    one_at_a_time = ModelUtility(model, train, valid, batched=False)
    for subset in _subsets(train.y):
        got = batched(subset)
        assert np.isfinite(got)
        assert got == pytest.approx(one_at_a_time(subset), abs=1e-12), subset
    assert batched(np.arange(N_TRAIN)) == 1.0  # separable: the full fit is perfect


@pytest.mark.parametrize("batched", [True, False])
def test_one_class_subsets_score_the_constant_predictor(batched) -> None:
    train, valid = _separable()
    utility = make_utility(train, valid, batched=batched, device="numpy")
    for label in (0, 1):
        rows = np.flatnonzero(train.y == label)[:4]
        assert utility(rows) == pytest.approx(np.mean(valid.y == label), abs=1e-15)


@pytest.mark.parametrize("batched", [True, False])
def test_permutation_shapley_is_efficient_on_degenerate_data(batched) -> None:
    """Every permutation telescopes: the values sum to u(N) - u(empty) (= u(N), default 0)."""
    train, valid = _separable()
    utility = make_utility(train, valid, batched=batched, device="numpy")
    result = get_method("permutation-shapley")(budget=3, random_state=0).fit(utility).result_
    assert np.all(np.isfinite(result.values))
    assert result.values.sum() == pytest.approx(utility(np.arange(N_TRAIN)), abs=1e-12)


def test_standardize_keeps_constant_features_finite(tmp_path, capsys) -> None:
    from dataworth.cli import main

    train, _ = _separable()
    path = tmp_path / "train.csv"
    rows = [",".join(["a", "const", "copy", "zero", "label"])]
    rows += [",".join([*map(repr, r.tolist()), str(t)]) for r, t in zip(train.X, train.y,
                                                                       strict=True)]  # fmt: skip
    path.write_text("\n".join(rows) + "\n")
    main(["value", str(path), "--target", "label", "--method", "knn-shapley", "--standardize"])
    out = capsys.readouterr().out.strip().splitlines()
    values = np.array([float(line.split(",")[1]) for line in out[1:]])
    assert values.size > 0 and np.all(np.isfinite(values))


# ------------------------------------------------------------------- singular Hessians
def _regression(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(40, 2))
    y = X @ np.array([1.0, -2.0]) + 0.3 * rng.normal(size=40)
    Xt = rng.normal(size=(10, 2))
    return X, y, Xt, Xt @ np.array([1.0, -2.0])


def _with_duplicate(X: np.ndarray) -> np.ndarray:
    return np.column_stack([X, X[:, 0]])


def _with_constant(X: np.ndarray) -> np.ndarray:
    return np.column_stack([X, np.full(X.shape[0], 3.0)])


@pytest.mark.parametrize("extend", [_with_duplicate, _with_constant], ids=["duplicate", "constant"])
@pytest.mark.parametrize("damping", [0.0, 1e-9])
def test_influence_is_invariant_to_redundant_columns(extend, damping) -> None:
    """A duplicated column (or a constant next to the intercept) makes ``H`` singular; the
    pseudo-inverse (or a tiny damping) must give the influence values of the reduced model."""
    X, y, Xt, yt = _regression()
    reduced = influence_values(LinearInfluence(LinearRegression(), X, y), Xt, yt).values
    model = LinearInfluence(LinearRegression(), extend(X), y, damping=damping)
    values = influence_values(model, extend(Xt), yt).values
    assert np.all(np.isfinite(values))
    scale = np.max(np.abs(reduced))
    tol = 1e-9 if damping == 0.0 else 1e-6
    np.testing.assert_allclose(values, reduced, rtol=0, atol=tol * scale)
    if damping > 0:
        assert model.hessian_method == "cholesky"


def test_duplicate_column_uses_the_pseudo_inverse_without_damping() -> None:
    X, y, _, _ = _regression()
    assert LinearInfluence(LinearRegression(), _with_duplicate(X), y).hessian_method.startswith(
        "pseudo-inverse"
    )
    damped = LinearInfluence(LinearRegression(), _with_duplicate(X), y, damping=0.1)
    assert damped.hessian_method == "cholesky"


def test_more_features_than_rows() -> None:
    """``n < d``: ``H`` has rank ``n``; ridge with a tiny alpha approaches the pseudo-inverse."""
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(5, 10)), rng.normal(size=5)
    Xt, yt = rng.normal(size=(3, 10)), rng.normal(size=3)
    plain = LinearInfluence(LinearRegression(), X, y)
    assert plain.hessian_method.startswith("pseudo-inverse")
    values = influence_values(plain, Xt, yt).values
    assert np.all(np.isfinite(values))
    ridge = influence_values(LinearInfluence(Ridge(alpha=1e-2), X, y, damping=0.0), Xt, yt)
    assert np.all(np.isfinite(ridge.values))


def _unpenalised() -> LogisticRegression:
    """No penalty, spelled the way the installed scikit-learn accepts without a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LogisticRegression(C=np.inf, max_iter=5000)


def test_logistic_influence_invariant_to_a_duplicated_column() -> None:
    """Without a penalty (which would split the weight between the copies) the duplicated
    column leaves every influence value unchanged."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(60, 2))
    y = (X[:, 0] + 0.8 * rng.normal(size=60) > 0).astype(int)
    Xt = rng.normal(size=(8, 2))
    yt = (Xt[:, 0] > 0).astype(int)
    model = _unpenalised()
    reduced = influence_values(LinearInfluence(model, X, y), Xt, yt).values
    values = influence_values(LinearInfluence(model, _with_duplicate(X), y), _with_duplicate(Xt),
                              yt).values  # fmt: skip
    np.testing.assert_allclose(values, reduced, rtol=0, atol=1e-7 * np.max(np.abs(reduced)))


def test_separable_classes_without_penalty_are_announced() -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(30, 2))
    y = (X[:, 0] > 0).astype(int)
    with pytest.warns(UserWarning, match="perfectly separable"):
        model = LinearInfluence(_unpenalised(), X, y)
    assert np.all(np.isfinite(influence_values(model, X[:5], y[:5]).values))
    with warnings.catch_warnings():  # with a penalty the optimum exists: no warning
        warnings.simplefilter("error", UserWarning)
        LinearInfluence(LogisticRegression(C=1.0), X, y)
    noisy = y.copy()
    noisy[:3] = 1 - noisy[:3]  # not separable any more: no warning either
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        LinearInfluence(_unpenalised(), X, noisy)


# ------------------------------------------------------------------- one class in training
def test_one_class_training_is_refused_with_a_clear_error() -> None:
    train, valid = _separable()
    one = train.replace(y=np.ones(N_TRAIN, dtype=int))
    with pytest.raises(DataworthError, match="single class"):
        make_utility(one, valid)
    with pytest.raises(DataworthError, match="at least two classes"):
        LinearInfluence(LogisticRegression(), one.X, one.y)


def test_data_oob_with_a_lone_minority_row() -> None:
    """Most bags hold one class only and predict it without fitting; values stay in [0, 1]."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=20)
    y = np.zeros(20, dtype=int)
    y[np.argmax(x)] = 1
    train = Dataset.from_arrays(x[:, None], y)
    valid = Dataset.from_arrays(x[:4, None], y[:4])
    utility = make_utility(train, valid, device="numpy")
    values = get_method("data-oob")(budget=64, random_state=0).fit(utility).result_.values
    seen = np.isfinite(values)
    assert seen.sum() >= 18
    assert np.all((values[seen] >= 0) & (values[seen] <= 1))
    # a bag without the minority row predicts class 0: every majority row is right whenever
    # it is out of such a bag, so the majority rows' values are high
    assert np.nanmean(values[y == 0]) > 0.9


def test_negative_scorer_with_empty_set_at_zero_is_announced_with_a_baseline() -> None:
    """u(empty) = default_score = 0 (docs/conventions.md) beats every model under a neg_ scorer: the
    utility says so and proposes the score of a constant predictor."""
    import warnings

    from dataworth.api import make_utility
    from dataworth.datasets import load_dataset

    train, valid = load_dataset("iris").split(0.3, random_state=0)
    with pytest.warns(UserWarning, match=r"default_score to a baseline, e\.g\. -1\.09"):
        make_utility(train, valid, scoring="neg_log_loss")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_utility(train, valid, scoring="neg_log_loss", default_score=-1.1)
        make_utility(train, valid, scoring="accuracy")
