"""Kernel regression estimators of Shapley values: kernel-shap, unbiased-kernel-shap,
leverage-shap (paired sampling; jackknife or mean-of-samples standard errors)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dataworth.engine.stopping import MaxUpdates
from dataworth.errors import DataworthError
from dataworth.estimators import ESTIMATORS
from dataworth.estimators.kernel_shap import KernelSHAP, constrained_solve
from dataworth.estimators.semivalues import Semivalue
from dataworth.methods import get_method
from dataworth.testing.games import (
    AdditiveGame,
    AirportGame,
    GloveGame,
    SymmetricVotingGame,
    exact_semivalue_bruteforce,
    shapley_weight,
)
from dataworth.utility.base import UtilityBase

KERNEL = ["kernel-shap", "unbiased-kernel-shap", "leverage-shap"]
REGRESSION = ["kernel-shap", "leverage-shap"]


class TableGame(UtilityBase):
    """A random saturating game on ``n`` players, tabulated (for brute-force values)."""

    def __init__(self, n: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.n_players = n
        self.player_names = np.arange(n)
        w = rng.uniform(-0.5, 1.5, n)
        idx = np.arange(2**n)
        masks = ((idx[:, None] >> np.arange(n)) & 1).astype(bool)
        self.table = 1 - np.exp(-(masks @ w) / 2) + 0.05 * rng.normal(size=idx.size)
        self.pw = 2 ** np.arange(n)

    def __call__(self, subset: Any) -> float:
        return float(self.table[self.mask_of(subset) @ self.pw])

    def evaluate_many(self, subsets: Any) -> np.ndarray:
        return self.table[np.asarray(list(subsets), bool) @ self.pw]


def _fit(game: Any, est: str, budget: int, seed: int = 0, **kw: Any) -> Any:
    return (
        get_method("shapley")(budget=budget, estimator=est, random_state=seed, **kw)
        .fit(game)
        .result_
    )


@pytest.mark.parametrize("est", REGRESSION)
def test_exact_on_additive_games(est) -> None:
    game = AdditiveGame([1.0, -2.0, 3.0, 0.5, 4.0, 2.5])
    r = _fit(game, est, budget=200)
    np.testing.assert_allclose(r.values, game.shapley_values(), atol=1e-9)
    np.testing.assert_allclose(r.stderr, 0.0, atol=1e-8)


def test_unbiased_is_efficient() -> None:
    game = AdditiveGame([1.0, -2.0, 3.0, 0.5, 4.0, 2.5])
    r = _fit(game, "unbiased-kernel-shap", budget=200)
    assert r.values.sum() == pytest.approx(game.shapley_values().sum(), abs=1e-9)


def test_constrained_solve_singular_system_is_efficient() -> None:
    A = np.full((3, 3), 0.25)  # one sample: every player always together
    phi = constrained_solve(A, np.array([0.5, 0.5, 0.5]), 3.0)
    np.testing.assert_allclose(phi, [1.0, 1.0, 1.0])


GAMES = [
    SymmetricVotingGame(6),
    AirportGame([1.0, 3.0, 3.0, 5.0, 8.0, 9.0]),
    GloveGame(2, 4),
]


@pytest.mark.parametrize("est", KERNEL)
@pytest.mark.parametrize("game", GAMES, ids=["voting", "airport", "glove"])
def test_converges_to_closed_form(est, game) -> None:
    exact = game.shapley_values()
    r = _fit(game, est, budget=6000, seed=1)
    scale = np.abs(exact).max()
    assert np.all(np.abs(r.values - exact) < 5 * r.stderr + 1e-9)
    # unbiased-kernel-shap pays for unbiasedness with variance (Covert & Lee 2021)
    assert np.abs(r.values - exact).max() < (0.3 if est.startswith("unbiased") else 0.1) * scale
    assert r.values.sum() == pytest.approx(exact.sum(), abs=1e-9)  # efficiency


@pytest.mark.parametrize("est", KERNEL)
def test_converges_on_random_game(est) -> None:
    game = TableGame(8, 3)
    exact = exact_semivalue_bruteforce(game, shapley_weight)
    small = _fit(game, est, budget=400, seed=2)
    large = _fit(game, est, budget=8000, seed=2)
    err_small = ((small.values - exact) ** 2).sum()
    err_large = ((large.values - exact) ** 2).sum()
    assert err_large < err_small
    assert np.all(np.abs(large.values - exact) < 5 * large.stderr + 1e-3)


def test_unbiased_over_seeds() -> None:
    game = TableGame(6, 1)
    exact = exact_semivalue_bruteforce(game, shapley_weight)
    runs = [_fit(game, "unbiased-kernel-shap", budget=42, seed=s) for s in range(60)]
    values = np.array([r.values for r in runs])
    se_of_mean = np.sqrt((np.array([r.stderr for r in runs]) ** 2).mean(axis=0) / len(runs))
    z = (values.mean(axis=0) - exact) / se_of_mean
    assert np.all(np.abs(z) < 4), z


@pytest.mark.parametrize("est", KERNEL)
def test_stderr_calibration(est) -> None:
    game = TableGame(8, 5)
    exact = exact_semivalue_bruteforce(game, shapley_weight)
    z = np.array(
        [(r.values - exact) / r.stderr for r in (_fit(game, est, 600, s) for s in range(25))]
    )
    assert np.mean(np.abs(z) > 3) < 0.08, np.mean(np.abs(z) > 3)
    assert 0.5 < np.sqrt(np.mean(z**2)) < 2.0  # neither far too small nor far too large


@pytest.mark.parametrize("est", KERNEL)
@pytest.mark.parametrize("budget", [4, 5, 37, 258, 1001])
def test_budget_never_exceeded(est, budget) -> None:
    r = _fit(TableGame(6, 0), est, budget=budget)
    assert r.metadata["n_evaluations"] <= budget


@pytest.mark.parametrize("est", KERNEL)
def test_tiny_budget_names_the_minimum(est) -> None:
    with pytest.raises(DataworthError, match="at least 4"):
        _fit(TableGame(6, 0), est, budget=3)


@pytest.mark.parametrize("est", KERNEL)
def test_identical_for_any_n_jobs(est) -> None:
    game = TableGame(7, 2)
    one = _fit(game, est, budget=700, seed=42, n_jobs=1)
    two = _fit(game, est, budget=700, seed=42, n_jobs=2)
    np.testing.assert_array_equal(one.values, two.values)
    np.testing.assert_array_equal(one.stderr, two.stderr)


@pytest.mark.parametrize("est", KERNEL)
def test_resume_equals_uninterrupted(tmp_path, est) -> None:
    game = TableGame(6, 4)
    path = tmp_path / "run.ckpt"
    _fit(game, est, budget=2 + 2 * 128, seed=7, checkpoint=path)  # one round, then stopped
    resumed = _fit(game, est, budget=2 + 2 * 384, seed=7, checkpoint=path, resume=True)
    fresh = _fit(game, est, budget=2 + 2 * 384, seed=7)
    np.testing.assert_array_equal(resumed.values, fresh.values)
    np.testing.assert_array_equal(resumed.stderr, fresh.stderr)
    assert resumed.metadata["resumed_from"] == 128


@pytest.mark.parametrize("est", KERNEL)
def test_resume_mid_round_sees_the_same_samples(tmp_path, est) -> None:
    """Stopped after 200 samples (mid-round), then resumed: the samples of an uninterrupted run,
    so the same values up to rounding (the chunks, hence the merge order, differ)."""
    game = TableGame(6, 4)
    path = tmp_path / "run.ckpt"
    _fit(game, est, budget=2 + 2 * 384, seed=7, stop=MaxUpdates(200), checkpoint=path)
    resumed = _fit(game, est, budget=2 + 2 * 384, seed=7, checkpoint=path, resume=True)
    fresh = _fit(game, est, budget=2 + 2 * 384, seed=7)
    assert resumed.metadata["resumed_from"] == 200
    np.testing.assert_allclose(resumed.values, fresh.values, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("est", REGRESSION)
def test_partial_results_merge(est) -> None:
    game = TableGame(6, 4)
    a, b = _fit(game, est, 402, seed=1), _fit(game, est, 402, seed=2)
    merged = a + b
    assert np.all(np.isfinite(merged.values)) and np.all(np.isfinite(merged.stderr))
    assert merged.values.sum() == pytest.approx(a.values.sum(), abs=1e-9)


class _Huge:
    n_players = 100_000

    def evaluate_many(self, masks: Any) -> np.ndarray:  # pragma: no cover - never reached
        raise AssertionError("no evaluation before the memory check")


def test_refuses_a_state_that_does_not_fit() -> None:
    with pytest.raises(DataworthError, match=r"Gram matrices.*unbiased-kernel-shap"):
        KernelSHAP().plan(_Huge(), Semivalue.shapley(), budget=10**6, random_state=0, n_jobs=1)


@pytest.mark.parametrize("est", KERNEL)
def test_only_shapley(est) -> None:
    assert ESTIMATORS[est].semivalues == frozenset({"shapley"})


def test_larger_n_runs() -> None:
    game = AdditiveGame(np.linspace(-1.0, 1.0, 300))
    r = _fit(game, "kernel-shap", budget=2 * 300 * 4 + 2)
    np.testing.assert_allclose(r.values, game.shapley_values(), atol=1e-8)
