"""BatchedUtility: chosen automatically, same answers as one scikit-learn fit at a time."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.svm import SVC

from dataworth import make_utility
from dataworth.datasets import load_dataset
from dataworth.errors import DataworthError
from dataworth.methods import get_method
from dataworth.utility import ModelUtility
from dataworth.utility.batched import BatchedUtility


def standardised(name: str, n_train: int = 120):
    train, valid = load_dataset(name).split(0.3, random_state=0)
    train = train.take(np.arange(min(n_train, train.n_samples)))
    mean, std = train.X.mean(axis=0), train.X.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return train.replace(X=(train.X - mean) / std), valid.replace(X=(valid.X - mean) / std)


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (LogisticRegression(max_iter=1000), "breast_cancer"),
        (LogisticRegression(max_iter=1000), "wine"),
        (GaussianNB(), "iris"),
        (Ridge(alpha=1.0), "diabetes"),
        (LinearRegression(), "diabetes"),
    ],
)
def test_chosen_automatically_and_agrees_with_one_fit_at_a_time(model, data) -> None:
    train, valid = standardised(data)
    batched = make_utility(train, valid, model=model)
    single = make_utility(train, valid, model=model, batched=False)
    assert isinstance(batched, BatchedUtility)
    assert type(single) is ModelUtility
    rng = np.random.default_rng(0)
    masks = rng.random((40, train.n_samples)) < rng.uniform(0.05, 0.9, size=(40, 1))
    masks[0] = False  # empty subset
    a, b = batched.evaluate_many(masks), single.evaluate_many(masks)
    if model.__class__.__name__ in ("Ridge", "LinearRegression"):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)
    else:  # accuracy: equal but for rare exact decision-boundary ties
        assert np.mean(np.abs(a - b) < 1e-12) >= 0.95
        assert np.max(np.abs(a - b)) <= 2.0 / valid.n_samples + 1e-12


def test_prefixes_with_truncation_match_sequential_scan() -> None:
    train, valid = standardised("breast_cancer", 80)
    model = LogisticRegression(max_iter=1000)
    batched = make_utility(train, valid, model=model)
    single = make_utility(train, valid, model=model, batched=False)
    order = np.random.default_rng(1).permutation(train.n_samples)
    total = single(np.arange(train.n_samples))
    for tol in (None, 0.02 * total):
        a = batched.evaluate_prefixes(order, truncate_below=tol, total=total)
        b = single.evaluate_prefixes(order, truncate_below=tol, total=total)
        assert np.mean(np.abs(a - b) < 1e-12) >= 0.95


def test_unsupported_falls_back_or_refuses() -> None:
    train, valid = standardised("breast_cancer", 60)
    assert type(make_utility(train, valid, model=SVC())) is ModelUtility
    scored = make_utility(train, valid, model=LogisticRegression(), scoring="f1")
    assert type(scored) is ModelUtility
    with pytest.raises(DataworthError, match="batched"):
        make_utility(train, valid, model=SVC(), batched=True)


def test_tmc_values_agree_between_paths() -> None:
    train, valid = standardised("breast_cancer", 60)
    model = LogisticRegression(max_iter=1000)
    runs = [
        get_method("tmc-shapley")(budget=10, random_state=3)
        .fit(make_utility(train, valid, model=model, batched=b))
        .result_
        for b in (None, False)
    ]
    assert np.corrcoef(runs[0].values, runs[1].values)[0, 1] > 0.99
    assert runs[0].metadata["fingerprint"] != runs[1].metadata["fingerprint"]


# ------------------------------------------- issue 15, item 9: the natural construction batches
def test_model_utility_itself_is_batched_when_the_model_allows_it() -> None:
    from sklearn.tree import DecisionTreeClassifier

    train, valid = standardised("breast_cancer")
    u = ModelUtility(LogisticRegression(), train, valid)
    assert isinstance(u, BatchedUtility) and isinstance(u, ModelUtility)
    assert type(ModelUtility(LogisticRegression(), train, valid, batched=False)) is ModelUtility
    assert type(ModelUtility(DecisionTreeClassifier(), train, valid)) is ModelUtility
    with pytest.raises(DataworthError, match="batched training is not available"):
        ModelUtility(DecisionTreeClassifier(), train, valid, batched=True)
    with pytest.raises(DataworthError, match="device"):
        ModelUtility(LogisticRegression(), train, valid, device="tpu")
    # a scoring computed in batch only for accuracy: one fit at a time for f1
    assert type(ModelUtility(LogisticRegression(), train, valid, scoring="f1")) is ModelUtility

    # subclasses are constructed as written, and a batched utility survives the trip to workers
    class Counting(ModelUtility):
        pass

    assert type(Counting(LogisticRegression(), train, valid)) is Counting
    loo = get_method("loo")
    np.testing.assert_array_equal(
        loo(n_jobs=2).fit(u).result_.values, loo(n_jobs=1).fit(u).result_.values
    )


def test_progress_none_means_when_interactive(monkeypatch) -> None:
    import io
    import sys
    import types

    from dataworth.progress import interactive, show_progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not interactive() and show_progress(True) and not show_progress(None)
    monkeypatch.setattr(sys, "stderr", Tty())
    assert show_progress(None) and not show_progress(False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: object()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake)
    assert show_progress(None)
    # every method's progress defaults to None (shown when interactive)
    from dataworth.methods import METHODS

    for name in METHODS:
        params = get_method(name)().get_params()
        if "progress" in params:
            assert params["progress"] is None, name


def test_prefixes_of_many_permutations_in_one_call_equal_each_alone():
    """Several permutations' prefixes are trained together (one call for the lot), and give
    each permutation's own prefix utilities; with truncation each stops on its own."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    from dataworth.api import make_utility
    from dataworth.data import Dataset

    X, y = make_classification(60, 4, random_state=1)
    train, valid = Dataset.from_arrays(X[:40], y[:40]), Dataset.from_arrays(X[40:], y[40:])
    utility = make_utility(train, valid, model=LogisticRegression(), device="numpy")
    rng = np.random.default_rng(0)
    orders = np.array([rng.permutation(40) for _ in range(5)])
    total = utility(np.ones(40, dtype=bool))
    for tol in (None, 0.05):
        kw = {"truncate_below": tol, "total": None if tol is None else total}
        many = utility.evaluate_prefixes(orders, **kw)
        assert many.shape == (5, 41)
        alone = np.array([utility.evaluate_prefixes(o, **kw) for o in orders])
        np.testing.assert_allclose(many, alone, rtol=0, atol=1e-9)
