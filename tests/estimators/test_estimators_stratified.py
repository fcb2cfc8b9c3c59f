"""Stratified estimators of ``shapley``: stratified-svarm and stratified (Neyman allocation)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dataworth.engine.stopping import MaxUpdates
from dataworth.errors import DataworthError
from dataworth.methods import get_method
from dataworth.result import ValuationResult
from dataworth.testing.games import (
    AdditiveGame,
    AirportGame,
    GloveGame,
    SymmetricVotingGame,
    exact_semivalue_bruteforce,
    shapley_weight,
)
from dataworth.utility.base import UtilityBase

ESTIMATORS = ["stratified-svarm", "stratified"]


class TableGame(UtilityBase):
    """A random game on few players, stored as a table of all ``2^n`` coalitions."""

    def __init__(self, n: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.n_players = n
        self.player_names = np.arange(n)
        w = rng.uniform(-0.5, 1.5, n)
        idx = np.arange(2**n)
        masks = ((idx[:, None] >> np.arange(n)) & 1).astype(bool)
        self.table = 1 - np.exp(-(masks @ w) / 3) + 0.05 * rng.normal(size=idx.size)
        self.pw = 2 ** np.arange(n)

    def __call__(self, subset: Any) -> float:
        return float(self.table[self.mask_of(subset) @ self.pw])

    def evaluate_many(self, subsets: Any) -> np.ndarray:
        m = np.asarray(list(subsets), dtype=bool)
        return np.asarray(self.table[m @ self.pw])


def _fit(game: Any, estimator: str, budget: int, seed: int = 0, **kw: Any) -> ValuationResult:
    method = get_method("shapley")(budget=budget, estimator=estimator, random_state=seed, **kw)
    return method.fit(game).result_


GAMES = [
    AdditiveGame(np.linspace(-1.0, 3.0, 7)),
    SymmetricVotingGame(8),
    AirportGame(np.linspace(1.0, 4.0, 9)),
    GloveGame(3, 4),
]


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("game", GAMES, ids=lambda g: type(g).__name__)
def test_converges_on_closed_form_games(estimator: str, game: Any) -> None:
    exact = game.shapley_values()
    r = _fit(game, estimator, budget=8000, seed=1)
    assert np.all(np.isfinite(r.values)) and np.all(np.isfinite(r.stderr))
    err = np.abs(r.values - exact)
    assert err.max() < 0.06 * max(1.0, np.abs(exact).max())
    assert np.all(err <= 4 * r.stderr + 1e-9)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_error_shrinks_with_budget(estimator: str) -> None:
    game = TableGame(8, 3)
    exact = exact_semivalue_bruteforce(game, shapley_weight)
    mse = [
        np.mean([((_fit(game, estimator, b, s).values - exact) ** 2).sum() for s in range(6)])
        for b in (200, 4000)
    ]
    assert mse[1] < mse[0] / 5


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_stderr_is_calibrated(estimator: str) -> None:
    game = TableGame(7, 0)
    exact = exact_semivalue_bruteforce(game, shapley_weight)
    z = np.array(
        [(r.values - exact) / r.stderr for r in (_fit(game, estimator, 600, s) for s in range(60))]
    ).ravel()
    assert np.all(np.isfinite(z))
    assert np.mean(np.abs(z) > 3) < 0.02
    assert abs(z.mean()) < 0.15  # unbiased once every stratum is sampled
    assert 0.6 < z.std() < 1.4


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("budget", [3, 5, 17, 40, 123, 1001])
def test_never_exceeds_budget(estimator: str, budget: int) -> None:
    game = TableGame(8, 1)
    try:
        r = _fit(game, estimator, budget)
    except DataworthError as exc:
        assert "needs at least" in str(exc)
        minimum = int(str(exc).split("at least")[1].strip(" ."))
        assert minimum > budget
        assert _fit(game, estimator, minimum).metadata["n_evaluations"] <= minimum
        return
    assert r.metadata["n_evaluations"] <= budget
    assert np.all(np.isfinite(r.values))  # sparse strata are imputed, never NaN


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_too_small_budget_names_the_minimum(estimator: str) -> None:
    with pytest.raises(DataworthError, match="needs at least"):
        _fit(TableGame(6, 0), estimator, 1)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_same_values_for_any_n_jobs(estimator: str) -> None:
    game = AirportGame(np.linspace(1.0, 4.0, 9))
    a = _fit(game, estimator, 1500, seed=5, n_jobs=1)
    b = _fit(game, estimator, 1500, seed=5, n_jobs=2)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.stderr, b.stderr)


@pytest.mark.parametrize(
    ("estimator", "first", "total", "round_size"),
    # one round of draws, then the rest (n = 8: warm-up 18; stratified adds its pilot of 48 and
    # spends 2 evaluations a sample): the resume is at a round end of the uninterrupted run,
    # where checkpoints are (elsewhere the chunking differs, so the merge order does too)
    [
        ("stratified-svarm", 18 + 512, 18 + 3 * 512, 512),
        ("stratified", 66 + 2 * 256, 66 + 2 * 3 * 256, 256),
    ],
)
def test_resume_from_checkpoint_is_identical(
    estimator: str, first: int, total: int, round_size: int, tmp_path: Any
) -> None:
    game = TableGame(8, 2)
    path = tmp_path / "run.ckpt"
    _fit(game, estimator, first, seed=7, checkpoint=path)
    resumed = _fit(game, estimator, total, seed=7, checkpoint=path, resume=True)
    straight = _fit(game, estimator, total, seed=7)
    assert resumed.metadata["resumed_from"] == round_size
    np.testing.assert_array_equal(resumed.values, straight.values)
    np.testing.assert_array_equal(resumed.stderr, straight.stderr)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_resume_mid_round_sees_the_same_samples(estimator: str, tmp_path: Any) -> None:
    """Stopped after 300 samples (mid-round), then resumed: the samples of an uninterrupted run,
    so the same values up to rounding (the chunks, hence the merge order, differ)."""
    game = TableGame(8, 2)
    path = tmp_path / "run.ckpt"
    budget = 1600  # the same budget in all three runs: the same pilot for stratified
    _fit(game, estimator, budget, seed=7, stop=MaxUpdates(300), checkpoint=path)
    resumed = _fit(game, estimator, budget, seed=7, checkpoint=path, resume=True)
    straight = _fit(game, estimator, budget, seed=7)
    assert resumed.metadata["resumed_from"] == 300
    np.testing.assert_allclose(resumed.values, straight.values, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_results_merge_save_and_load(estimator: str, tmp_path: Any) -> None:
    game = TableGame(6, 4)
    a, b = _fit(game, estimator, 400, seed=1), _fit(game, estimator, 400, seed=2)
    merged = a + b
    assert np.all(np.isfinite(merged.values))
    assert np.all(merged.counts == a.counts + b.counts)
    path = a.save(tmp_path / "r")
    np.testing.assert_array_equal(ValuationResult.load(path).values, a.values)


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("n", [2, 3, 4])
def test_tiny_games(estimator: str, n: int) -> None:
    game = TableGame(n, 5)
    exact = exact_semivalue_bruteforce(game, shapley_weight)
    r = _fit(game, estimator, 3000)
    np.testing.assert_allclose(r.values, exact, atol=0.05)


def test_svarm_exact_when_every_stratum_is_exact() -> None:
    # symmetric game: every coalition of a size has the same worth, so one sample per stratum
    # is exact and the standard error is 0
    game = SymmetricVotingGame(6)
    r = _fit(game, "stratified-svarm", 200)
    np.testing.assert_allclose(r.values, game.shapley_values(), atol=1e-12)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_other_semivalues_by_plan(estimator: str) -> None:
    from dataworth.estimators import get_estimator
    from dataworth.estimators.semivalues import Semivalue
    from dataworth.testing.games import banzhaf_weight

    game = TableGame(6, 6)
    exact = exact_semivalue_bruteforce(game, banzhaf_weight)
    plan = get_estimator(estimator)().plan(
        game, Semivalue.banzhaf(), budget=None, random_state=0, n_jobs=1
    )
    from dataworth.engine.runner import run_monte_carlo
    from dataworth.engine.stopping import MaxUpdates

    out = run_monte_carlo(plan.job, game, 6, stop=MaxUpdates(4000), random_state=0)
    values, stderr, _ = plan.job.estimate(out.state)
    assert np.all(np.abs(values - exact) <= 4 * stderr + 1e-9)
