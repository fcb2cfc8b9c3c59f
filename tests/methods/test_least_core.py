"""Least core: closed-form games, an independent least-norm solver, Monte Carlo, real data."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from dataworth.datasets import load_dataset
from dataworth.errors import DataworthError
from dataworth.methods import METHODS, get_method
from dataworth.methods import least_core as lc_module
from dataworth.methods.least_core import LeastCore
from dataworth.utility import ModelUtility
from dataworth.utility.base import UtilityBase


class Game(UtilityBase):
    """A closed-form game given by a function of the subset mask; records what it evaluates."""

    def __init__(self, n: int, fn: Callable[[NDArray[np.bool_]], float]) -> None:
        self.n_players = n
        self.player_names = np.arange(n)
        self.fn = fn
        self.seen: list[NDArray[np.bool_]] = []

    def __call__(self, subset: Any) -> float:
        mask = self.mask_of(subset)
        self.seen.append(mask.copy())
        return float(self.fn(mask))

    def fingerprint_parts(self) -> dict[str, str]:
        return {"utility": f"game-{id(self)}"}  # fn is a lambda: not hashable by joblib


def all_masks(n: int) -> list[NDArray[np.bool_]]:
    return [np.array(bits, dtype=bool) for bits in itertools.product([0, 1], repeat=n)]


def assert_in_least_core(
    values: NDArray[np.float64],
    subsidy: float,
    game: Game,
    masks: list[NDArray[np.bool_]] | None = None,
) -> None:
    """Efficiency, and every coalition constraint sum_{i in S} x_i + e* >= u(S)."""
    n = game.n_players
    assert values.sum() == pytest.approx(game.fn(np.ones(n, dtype=bool)), abs=1e-9)
    for mask in all_masks(n) if masks is None else masks:
        if 0 < mask.sum() < n:
            assert values[mask].sum() + subsidy >= game.fn(mask) - 1e-7, mask


def brute_least_norm(game: Game, subsidy: float) -> NDArray[np.float64]:
    """The least-norm x with x(S) >= u(S) - e*, x(N) = u(N), by enumerating active sets (KKT)."""
    n = game.n_players
    coalitions = [m for m in all_masks(n) if 0 < m.sum() < n]
    G = np.array(coalitions, dtype=float)
    h = np.array([game.fn(m) for m in coalitions]) - subsidy - 1e-9
    total = game.fn(np.ones(n, dtype=bool))
    for k in range(n):
        for active in itertools.combinations(range(len(coalitions)), k):
            M = np.vstack([G[list(active)], np.ones((1, n))])
            if np.linalg.matrix_rank(M) < M.shape[0]:
                continue
            rhs = np.concatenate([h[list(active)], [total]])
            lam = np.linalg.solve(M @ M.T, rhs)  # x = M^T lam, least norm on the active face
            x = M.T @ lam
            if np.all(G @ x >= h - 1e-9) and np.all(lam[:-1] >= -1e-9):
                return x
    raise AssertionError("no KKT point found")


def fit(game: Game, **kwargs: Any) -> tuple[NDArray[np.float64], float, LeastCore]:
    lc = LeastCore(**kwargs)
    lc.fit(game)
    return np.asarray(lc.result_.values), float(lc.result_.metadata["subsidy"]), lc


# ------------------------------------------------------------------------- closed-form games
@pytest.mark.parametrize("f", [lambda k: k**2, np.sqrt, lambda k: float(k >= 2)])
def test_symmetric_game_equal_shares(f: Callable[[int], float]) -> None:
    n = 5
    game = Game(n, lambda m: f(int(m.sum())))
    values, subsidy, lc = fit(game)
    np.testing.assert_allclose(values, f(n) / n, atol=1e-8)
    expected = max(f(k) - k * f(n) / n for k in range(1, n))
    assert subsidy == pytest.approx(expected, abs=1e-8)
    assert_in_least_core(values, subsidy, game)
    r = lc.result_
    assert r.method == "least-core"
    np.testing.assert_array_equal(r.stderr, 0.0)
    np.testing.assert_array_equal(r.counts, 2 ** (n - 1))
    assert r.metadata["n_constraints"] == 2**n - 1
    assert r.metadata["exact"] is True


def test_glove_game_core_gives_all_to_scarce_side() -> None:
    left = np.array([1, 1, 0, 0, 0], dtype=bool)
    game = Game(5, lambda m: float(min((m & left).sum(), (m & ~left).sum())))
    values, subsidy, _ = fit(game)
    assert subsidy <= 1e-8  # the core is not empty
    np.testing.assert_allclose(values, [1, 1, 0, 0, 0], atol=1e-7)
    assert_in_least_core(values, subsidy, game)


def test_convex_game_has_negative_subsidy() -> None:
    game = Game(3, lambda m: float(m.sum()) ** 2)
    values, subsidy, _ = fit(game)
    assert subsidy == pytest.approx(-2.0, abs=1e-8)
    np.testing.assert_allclose(values, 3.0, atol=1e-8)
    assert_in_least_core(values, subsidy, game)


def test_least_norm_among_many_optima() -> None:
    # least core: x3 = 1/4 and x1 + x2 = 3/4 with x1, x2 in [1/4, 1/2]; least norm splits evenly
    def u(m: NDArray[np.bool_]) -> float:
        return 1.0 if m.all() else 0.5 if (m[0] and m[1] and not m[2]) else 0.0

    game = Game(3, u)
    values, subsidy, lc = fit(game)
    assert subsidy == pytest.approx(-0.25, abs=1e-8)
    np.testing.assert_allclose(values, [0.375, 0.375, 0.25], atol=1e-7)
    assert lc.result_.metadata["least_norm_solver"] in ("ldp-nnls", "slsqp")


@pytest.mark.parametrize("seed", range(12))
def test_matches_brute_force_least_norm(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 4
    table = {
        m.tobytes(): float(v)
        for m, v in zip(
            all_masks(n), np.round(rng.random(2**n) * 4) / 4 * np.arange(2**n) % 3, strict=True
        )
    }
    game = Game(n, lambda m: table[m.tobytes()])
    values, subsidy, _ = fit(game)
    assert_in_least_core(values, subsidy, game)
    np.testing.assert_allclose(values, brute_least_norm(game, subsidy), atol=1e-6)


def test_slsqp_second_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lc_module, "_ldp_nnls", lambda *args: None)
    game = Game(3, lambda m: 1.0 if m.all() else 0.5 if (m[0] and m[1] and not m[2]) else 0.0)
    values, _, lc = fit(game)
    assert lc.result_.metadata["least_norm_solver"] == "slsqp"
    np.testing.assert_allclose(values, [0.375, 0.375, 0.25], atol=1e-6)


def test_falls_back_to_lp_when_least_norm_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(lc_module, "_ldp_nnls", broken)
    monkeypatch.setattr(lc_module, "_slsqp", broken)
    game = Game(3, lambda m: 1.0 if m.all() else 0.5 if (m[0] and m[1] and not m[2]) else 0.0)
    values, subsidy, lc = fit(game)
    assert lc.result_.metadata["least_norm_solver"] == "lp"
    assert "boom" in lc.result_.metadata["warnings"][0]
    assert subsidy == pytest.approx(-0.25, abs=1e-8)
    assert_in_least_core(values, subsidy, game)


# ------------------------------------------------------------------------- Monte Carlo
def weighted_game(n: int, seed: int = 0) -> Game:
    w = np.random.default_rng(seed).random(n)
    return Game(n, lambda m: float(np.sqrt(w[m].sum())))


def test_monte_carlo_satisfies_its_sampled_constraints() -> None:
    game = weighted_game(12)
    values, subsidy, lc = fit(game, budget=300, random_state=3)
    sampled = [m for m in game.seen if 0 < m.sum() < game.n_players]
    distinct = {m.tobytes() for m in sampled}
    assert 0 < len(distinct) <= 300
    assert_in_least_core(values, subsidy, game, masks=sampled)
    r = lc.result_
    assert r.metadata["n_constraints"] == len(distinct) + 1
    assert r.metadata["exact"] is False
    assert np.isnan(r.stderr).all()
    unique = np.array([np.frombuffer(b, dtype=bool) for b in distinct])
    np.testing.assert_array_equal(r.counts, unique.sum(axis=0) + 1)
    # sampling fewer constraints can only lower the subsidy
    exact_subsidy = fit(weighted_game(12))[1]
    assert subsidy <= exact_subsidy + 1e-8


def test_monte_carlo_reproducible_and_independent_of_n_jobs() -> None:
    a = fit(weighted_game(10), budget=200, random_state=7)[0]
    b = fit(weighted_game(10), budget=200, random_state=7, n_jobs=2)[0]
    c = fit(weighted_game(10), budget=200, random_state=8)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_monte_carlo_too_few_coalitions_raises() -> None:
    with pytest.raises(DataworthError, match="budget"):
        LeastCore(budget=1, random_state=0).fit(weighted_game(6))


# ------------------------------------------------------------------------- validation
@pytest.mark.parametrize("budget", [0, -3, 2.5, True, "10"])
def test_invalid_budget(budget: Any) -> None:
    with pytest.raises(DataworthError, match="budget"):
        LeastCore(budget=budget).fit(weighted_game(4))


def test_many_players_without_budget_sample_coalitions() -> None:
    game = weighted_game(17)
    result = LeastCore(random_state=0).fit(game).result_
    assert result.metadata["exact"] is False
    assert "sampled 1000 coalitions" in result.metadata["notes"][0]
    assert len(game.seen) <= 1001  # sampled, not 2^17 evaluations
    np.testing.assert_allclose(result.values.sum(), game(np.arange(17)), atol=1e-9)


def test_single_player_refused() -> None:
    with pytest.raises(DataworthError, match="two players"):
        LeastCore().fit(Game(1, lambda m: 1.0))


def test_registry_and_params() -> None:
    assert get_method("least-core") is LeastCore
    lc = LeastCore(budget=50, random_state=1)
    assert lc.get_params() == {
        "budget": 50,
        "random_state": 1,
        "n_jobs": 1,
        "progress": None,
        "checkpoint": None,
        "resume": False,
    }
    assert METHODS["least-core"].reference.startswith("Yan & Procaccia 2021")


# ------------------------------------------------------------------------- real data
def test_exact_on_iris_rows() -> None:
    ds = load_dataset("iris")
    train = ds.take([0, 1, 2, 50, 51, 52, 100, 101])
    valid = ds.take(np.r_[10:20, 60:70, 110:120])
    utility = ModelUtility(LogisticRegression(max_iter=500), train, valid)
    lc = LeastCore().fit(utility)
    r = lc.result_
    values, subsidy = np.asarray(r.values), float(r.metadata["subsidy"])
    masks = all_masks(8)
    with threadpool_limits(limits=1):  # BLAS threads only slow down tiny fits
        u = {m.tobytes(): utility(m) for m in masks}
    assert values.sum() == pytest.approx(u[np.ones(8, dtype=bool).tobytes()], abs=1e-9)
    for m in masks:
        if 0 < m.sum() < 8:
            assert values[m].sum() + subsidy >= u[m.tobytes()] - 1e-7
    assert r.metadata["n_constraints"] == 2**8 - 1
    assert r.metadata["n_failures"] == 0
    assert r.labels.tolist() == train.row_labels.tolist()
