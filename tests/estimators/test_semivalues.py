"""Monte Carlo and exact semivalues against closed-form games and brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from dataworth import value
from dataworth.data import Dataset
from dataworth.datasets import load_dataset
from dataworth.engine.stopping import MaxUpdates, StderrBelow
from dataworth.errors import DataworthError
from dataworth.methods import get_method
from dataworth.methods.exact import all_subset_utilities, exact_semivalue
from dataworth.methods.weights import beta_log_weights
from dataworth.testing import (
    AdditiveGame,
    AirportGame,
    GloveGame,
    SymmetricVotingGame,
    beta_weight,
)
from dataworth.utility import ModelUtility

GAMES = [
    AirportGame([1.0, 2.0, 2.0, 4.0, 7.0, 9.0]),
    SymmetricVotingGame(6),
    GloveGame(3, 4),
]

# With the estimator's reported standard error, a z-bound of 5 is broken with probability
# about 6e-7 per point under the CLT (and at most 1/25 by Chebyshev): with fixed seeds these
# tests are deterministic, and a wrong estimator fails them by many standard errors.
Z = 5.0


def assert_within_stderr(result, truth) -> None:
    err = np.abs(result.values - truth)
    bound = Z * result.stderr + 1e-12
    assert np.all(np.isfinite(result.stderr))
    assert np.all(err <= bound), f"errors {err} exceed {Z} stderr {result.stderr}"


@pytest.mark.parametrize("game", GAMES, ids=repr)
def test_exact_shapley_equals_closed_form(game) -> None:
    result = get_method("exact-shapley")().fit(game).result_
    np.testing.assert_allclose(result.values, game.shapley_values(), atol=1e-12)
    assert math.isclose(result.values.sum(), game(np.arange(game.n_players)), abs_tol=1e-12)


@pytest.mark.parametrize("game", GAMES, ids=repr)
def test_exact_semivalue_banzhaf_and_beta(game) -> None:
    u, _ = all_subset_utilities(game)
    n = game.n_players
    np.testing.assert_allclose(
        exact_semivalue(u, np.full(n, -(n - 1) * np.log(2.0))), game.banzhaf_values(), atol=1e-12
    )
    np.testing.assert_allclose(
        exact_semivalue(u, beta_log_weights(n, 16.0, 1.0)),
        game.semivalues(beta_weight(16.0, 1.0)),
        atol=1e-12,
    )


@pytest.mark.parametrize("game", GAMES, ids=repr)
@pytest.mark.parametrize("antithetic", [False, True])
def test_permutation_shapley_within_stderr(game, antithetic) -> None:
    result = (
        get_method("permutation-shapley")(budget=400, antithetic=antithetic, random_state=3)
        .fit(game)
        .result_
    )
    assert_within_stderr(result, game.shapley_values())
    assert result.counts.tolist() == [400] * game.n_players
    # every permutation's marginals sum to u(N) - u(empty): efficiency holds exactly
    assert math.isclose(result.values.sum(), game(np.arange(game.n_players)), abs_tol=1e-9)


@pytest.mark.parametrize("game", GAMES, ids=repr)
def test_beta_shapley_within_stderr(game) -> None:
    result = get_method("beta-shapley")(budget=600, random_state=5).fit(game).result_
    assert_within_stderr(result, game.semivalues(beta_weight(16.0, 1.0)))
    r11 = get_method("beta-shapley")(budget=300, alpha=1, beta=1, random_state=5).fit(game)
    assert_within_stderr(r11.result_, game.shapley_values())


@pytest.mark.parametrize("game", GAMES, ids=repr)
def test_msr_banzhaf_within_stderr(game) -> None:
    result = get_method("banzhaf")(budget=4000, random_state=11).fit(game).result_
    assert_within_stderr(result, game.banzhaf_values())
    assert result.counts.tolist() == [4000] * game.n_players


def test_monte_carlo_error_shrinks_with_budget() -> None:
    game = AirportGame(np.arange(1.0, 9.0))
    small = get_method("permutation-shapley")(budget=50, random_state=0).fit(game).result_
    large = get_method("permutation-shapley")(budget=800, random_state=0).fit(game).result_
    ratio = small.stderr.mean() / large.stderr.mean()
    assert 2.5 < ratio < 6.0  # ~ sqrt(16) = 4
    truth = game.shapley_values()
    assert np.abs(large.values - truth).max() < np.abs(small.values - truth).max()


def test_tmc_without_truncation_is_permutation_shapley() -> None:
    game = GloveGame(3, 3)
    tmc = get_method("tmc-shapley")(budget=40, tolerance=0.0, random_state=1).fit(game).result_
    perm = get_method("permutation-shapley")(budget=40, random_state=1).fit(game).result_
    np.testing.assert_array_equal(tmc.values, perm.values)
    assert "notes" in tmc.metadata


def test_tmc_truncation_saves_evaluations_and_is_exact_on_saturating_game() -> None:
    # u(S) = min(|S|, 2): saturates after two players; the truncated marginals are truly 0
    class Saturating(AdditiveGame):
        def __call__(self, subset):
            return float(min(self.mask_of(subset).sum(), 2))

    game = Saturating(np.ones(6))
    calls = []
    original = game.__class__.__call__

    def counting(self, subset):
        calls.append(1)
        return original(self, subset)

    game.__class__.__call__ = counting  # type: ignore[method-assign]
    result = get_method("tmc-shapley")(budget=20, tolerance=0.01, random_state=0).fit(game).result_
    assert len(calls) < 20 * 7  # far fewer than n + 1 per permutation
    assert_within_stderr(result, np.full(6, 2.0 / 6))


@pytest.mark.parametrize("name", ["permutation-shapley", "tmc-shapley", "beta-shapley", "banzhaf"])
def test_identical_for_any_n_jobs(name) -> None:
    game = AirportGame([1.0, 3.0, 3.0, 5.0, 8.0])
    one = get_method(name)(budget=37, random_state=42, n_jobs=1).fit(game).result_
    two = get_method(name)(budget=37, random_state=42, n_jobs=2).fit(game).result_
    np.testing.assert_array_equal(one.values, two.values)
    np.testing.assert_array_equal(one.stderr, two.stderr)


@pytest.mark.parametrize("name", ["permutation-shapley", "beta-shapley", "banzhaf"])
def test_resume_equals_uninterrupted(tmp_path, name) -> None:
    game = GloveGame(2, 3)
    path = tmp_path / "run.ckpt"
    cls = get_method(name)
    cls(budget=256, random_state=7, checkpoint=path).fit(game)  # an interrupted first part
    resumed = cls(budget=640, random_state=7, checkpoint=path, resume=True).fit(game).result_
    fresh = cls(budget=640, random_state=7).fit(game).result_
    np.testing.assert_array_equal(resumed.values, fresh.values)
    np.testing.assert_array_equal(resumed.stderr, fresh.stderr)
    assert resumed.metadata["resumed_from"] == 256
    assert resumed.metadata["n_updates"] == 640


def test_partial_results_merge_exactly() -> None:
    game = AirportGame([1.0, 2.0, 4.0])
    a = get_method("permutation-shapley")(budget=30, random_state=1).fit(game).result_
    b = get_method("permutation-shapley")(budget=50, random_state=2).fit(game).result_
    merged = a + b
    assert merged.counts.tolist() == [80, 80, 80]
    np.testing.assert_allclose(merged.values, (30 * a.values + 50 * b.values) / 80, rtol=1e-12)


def test_stopping_by_stderr() -> None:
    game = AirportGame([1.0, 2.0, 4.0])
    stop = StderrBelow(0.05)
    result = get_method("permutation-shapley")(budget=None, stop=stop, random_state=0).fit(game)
    assert np.nanmax(result.result_.stderr) < 0.05
    assert result.result_.metadata["n_updates"] < 10_000


def test_budget_is_met_exactly() -> None:
    game = AirportGame([1.0, 2.0])
    result = get_method("banzhaf")(budget=None, stop=MaxUpdates(301), random_state=0).fit(game)
    assert result.result_.metadata["n_updates"] == 301


@pytest.mark.parametrize("budget", [0, -3, 2.5, True])
def test_bad_budget(budget) -> None:
    with pytest.raises(DataworthError, match="budget"):
        get_method("permutation-shapley")(budget=budget).fit(AirportGame([1.0, 2.0]))


def test_exact_refuses_more_than_20_players() -> None:
    with pytest.raises(DataworthError, match="20"):
        get_method("exact-shapley")().fit(AdditiveGame(np.ones(21)))


# ---------------------------------------------------------------------------- real tiny data
def tiny_iris(n_train: int = 7) -> tuple[Dataset, Dataset]:
    ds = load_dataset("iris")
    rng = np.random.default_rng(0)
    rows = rng.permutation(ds.n_samples)
    return ds.take(np.sort(rows[:n_train])), ds.take(rows[n_train : n_train + 30])


def brute_force_shapley(train: Dataset, valid: Dataset) -> np.ndarray:
    """Independent enumeration under the conventions of docs/conventions.md (default_score 0)."""
    n = train.n_samples

    def u(rows: tuple[int, ...]) -> float:
        if not rows:
            return 0.0
        y = train.y[list(rows)]
        if np.all(y == y[0]):
            return float(np.mean(valid.y == y[0]))
        model = LogisticRegression(max_iter=1000).fit(train.X[list(rows)], y)
        return float(np.mean(model.predict(valid.X) == valid.y))

    cache = {s: u(s) for k in range(n + 1) for s in itertools.combinations(range(n), k)}
    phi = np.zeros(n)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for k in range(n):
            w = math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n)
            for s in itertools.combinations(others, k):
                phi[i] += w * (cache[tuple(sorted((*s, i)))] - cache[s])
    return phi


def test_exact_shapley_on_tiny_real_data_matches_enumeration() -> None:
    # one scikit-learn fit at a time (batched=False): the enumeration is checked against an
    # independent one with the same fits, bit for bit
    train, valid = tiny_iris()
    model = LogisticRegression(max_iter=1000)
    result = value("exact-shapley", train, valid, model=model, batched=False)
    np.testing.assert_allclose(result.values, brute_force_shapley(train, valid), atol=1e-9)
    assert "batched_vs_sklearn_max_diff" not in result.metadata


def test_exact_methods_are_batched_and_record_the_difference_from_sklearn() -> None:
    # by default the exact methods train in batches (issue 15, item 10); the largest utility
    # difference from scikit-learn's own fits on a sample of the evaluated subsets is recorded,
    # with a note when it is above rounding (here lbfgs stops short of the optimum on a subset)
    train, valid = tiny_iris()
    model = LogisticRegression(max_iter=1000)
    result = value("exact-shapley", train, valid, model=model)
    assert (
        result.metadata["fingerprint"]
        != value("exact-shapley", train, valid, model=model, batched=False).metadata["fingerprint"]
    )  # a BatchedUtility, not one fit at a time
    diff = result.metadata["batched_vs_sklearn_max_diff"]
    assert result.metadata["batched_vs_sklearn_subsets"] == 17  # the full set and 16 random ones
    assert 0.0 <= diff <= 1.0
    notes = result.metadata.get("notes", [])
    assert (diff > 1e-6) == any("--no-batch" in note for note in notes)
    # the values stay close to scikit-learn's (a handful of predictions at a decision boundary)
    np.testing.assert_allclose(result.values, brute_force_shapley(train, valid), atol=5e-3)
    for method in ("loo", "least-core"):
        other = value(method, train, valid, model=model)
        assert "batched_vs_sklearn_max_diff" in other.metadata, method


def test_loo_on_tiny_real_data_is_exact() -> None:
    train, valid = tiny_iris(9)
    model = LogisticRegression(max_iter=1000)
    # scikit-learn's fits on both sides (batched=False), so the values agree to rounding
    result = value("loo", train, valid, model=model, batched=False)
    u = ModelUtility(model, train, valid, batched=False)
    everything = u(np.arange(9))
    expected = [everything - u(np.delete(np.arange(9), i)) for i in range(9)]
    np.testing.assert_allclose(result.values, expected, atol=1e-12)


def test_groups_are_players() -> None:
    train, valid = tiny_iris(12)
    groups = np.repeat(["a", "b", "c", "d"], 3)
    train = train.replace(groups=groups)
    result = value("exact-shapley", train, valid, by_group=True)
    assert result.kind == "group" and result.labels.tolist() == ["a", "b", "c", "d"]
    # the group game: brute force over the 4 groups with the rows of each
    u = ModelUtility(LogisticRegression(max_iter=1000), train, valid, by_group=True)
    assert math.isclose(result.values.sum(), u(np.arange(4)), abs_tol=1e-12)
    merged = Dataset.from_arrays(train.X, train.y)
    row_u = ModelUtility(LogisticRegression(max_iter=1000), merged, valid)
    assert math.isclose(u([0, 2]), row_u(np.r_[0:3, 6:9]), abs_tol=1e-12)


@pytest.mark.parametrize("n_jobs", [0, 1.5, True])
def test_bad_n_jobs(n_jobs) -> None:
    with pytest.raises(DataworthError, match="n_jobs"):
        get_method("permutation-shapley")(budget=2, n_jobs=n_jobs).fit(AirportGame([1.0, 2.0]))
    with pytest.raises(DataworthError, match="n_jobs"):
        get_method("loo")(n_jobs=n_jobs).fit(AirportGame([1.0, 2.0]))
