"""Tree-ensemble surrogates for regression-msr: exact semivalues of trees, unbiasedness, budget."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.ensemble import ExtraTreesRegressor, GradientBoostingRegressor, RandomForestRegressor
from sklearn.tree import DecisionTreeRegressor

from dataworth.errors import DataworthError
from dataworth.estimators.msr import Surrogate
from dataworth.estimators.regression_msr import RegressionMSR
from dataworth.estimators.semivalues import Semivalue
from dataworth.estimators.tree_surrogate import (
    LeafTable,
    TreeSurrogate,
    fit_tree_surrogate,
    leaves_of_model,
)
from dataworth.methods import get_method
from dataworth.testing.games import (
    banzhaf_weight,
    beta_weight,
    exact_semivalue_bruteforce,
    shapley_weight,
)
from dataworth.utility.base import UtilityBase

SEMIVALUES = [
    (Semivalue.shapley(), shapley_weight),
    (Semivalue.banzhaf(), banzhaf_weight),
    (Semivalue.beta_shapley(4.0, 1.0), beta_weight(4.0, 1.0)),
    (Semivalue.beta_shapley(1.0, 16.0), beta_weight(1.0, 16.0)),
]


class MaskGame(UtilityBase):
    """A game given by a function of boolean masks (rows)."""

    def __init__(self, n: int, f):  # type: ignore[no-untyped-def]
        self.n_players, self.player_names, self.f = n, np.arange(n), f

    def __call__(self, subset):  # type: ignore[no-untyped-def]
        return float(self.f(self.mask_of(subset)[None, :])[0])

    def evaluate_many(self, subsets):  # type: ignore[no-untyped-def]
        return np.asarray(self.f(np.asarray(list(subsets), dtype=bool)), dtype=np.float64)


def all_masks(n: int) -> np.ndarray:
    codes = np.arange(1 << n)
    return ((codes[:, None] >> np.arange(n)) & 1).astype(bool)


class TestLeafGame:
    @pytest.mark.parametrize(("semivalue", "weight"), SEMIVALUES, ids=lambda x: str(x)[:12])
    @pytest.mark.parametrize("n", [1, 2, 5, 7])
    def test_single_leaves_match_bruteforce(self, semivalue, weight, n):
        rng = np.random.default_rng(n)
        for _ in range(12):
            roles = rng.integers(0, 3, size=n)  # 0 free, 1 in P, 2 in Q
            P, Q = np.flatnonzero(roles == 1), np.flatnonzero(roles == 2)
            lo, hi = sorted(rng.integers(0, n + 1, size=2)) if rng.random() < 0.5 else (0, n)
            c = float(rng.normal())
            table = LeafTable.from_paths(n, [(P, Q, lo, hi, c)], const=0.3)
            game = MaskGame(n, table)
            exact = exact_semivalue_bruteforce(game, weight)
            np.testing.assert_allclose(table.values(semivalue), exact, atol=1e-12)
            truth = (
                np.all(all_masks(n)[:, P], axis=1)
                & ~np.any(all_masks(n)[:, Q], axis=1)
                & (all_masks(n).sum(axis=1) >= lo)
                & (all_masks(n).sum(axis=1) <= hi)
            )
            np.testing.assert_allclose(table(all_masks(n)), 0.3 + c * truth)

    def test_shapley_closed_form(self):
        # (p-1)! q! / (p+q)! for P, -p! (q-1)! / (p+q)! for Q, 0 for the others
        table = LeafTable.from_paths(6, [([0, 1], [2, 3, 4], 0, 6, 1.0)])
        phi = table.values(Semivalue.shapley())
        np.testing.assert_allclose(phi[:2], 1 * 6 / 120)
        np.testing.assert_allclose(phi[2:5], -2 * 2 / 120)
        assert phi[5] == 0.0

    def test_contradictory_and_empty_leaves_are_dropped(self):
        table = LeafTable.from_paths(4, [([0], [0], 0, 4, 1.0), ([1], [], 3, 2, 1.0)])
        assert table.c.size == 0
        assert table.values(Semivalue.shapley()).tolist() == [0.0] * 4

    def test_many_leaves_large_n_are_finite(self):
        rng = np.random.default_rng(0)
        paths = [(rng.choice(500, 3, replace=False)[:2], [int(rng.integers(500))], 0, 500, 1.0)
                 for _ in range(50)]  # fmt: skip
        for semivalue, _ in SEMIVALUES:
            assert np.all(np.isfinite(LeafTable.from_paths(500, paths).values(semivalue)))


def interaction_utility(n: int, seed: int):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.2, 1.5, n)
    pairs = rng.integers(0, n, size=(n, 2))
    strength = rng.normal(0, 0.5, n)

    def f(masks: np.ndarray) -> np.ndarray:
        m = np.asarray(masks, dtype=bool)
        s = m @ w
        inter = (m[:, pairs[:, 0]] & m[:, pairs[:, 1]]) @ strength
        return 0.5 + 0.45 * (1 - np.exp(-s / 3)) + 0.2 * inter

    return f


class TestFittedTrees:
    @pytest.mark.parametrize(
        "model",
        [
            DecisionTreeRegressor(max_depth=4, random_state=0),
            GradientBoostingRegressor(n_estimators=20, max_depth=3, random_state=0),
            RandomForestRegressor(n_estimators=5, max_depth=4, random_state=0),
            ExtraTreesRegressor(n_estimators=5, max_depth=4, random_state=0),
        ],
        ids=lambda m: type(m).__name__,
    )
    @pytest.mark.parametrize("use_size", [False, True])
    def test_model_semivalue_matches_bruteforce(self, model, use_size):
        n = 8
        f = interaction_utility(n, 1)
        rng = np.random.default_rng(0)
        masks = rng.random((300, n)) < rng.random((300, 1))
        X = masks.astype(float)
        if use_size:
            X = np.hstack([X, masks.sum(axis=1, keepdims=True)])
        model.fit(X, f(masks), sample_weight=rng.uniform(0.5, 2.0, 300))
        table = leaves_of_model(model, n)
        grid = all_masks(n)
        Xg = grid.astype(float)
        if use_size:
            Xg = np.hstack([Xg, grid.sum(axis=1, keepdims=True)])
        np.testing.assert_allclose(table(grid), model.predict(Xg), atol=1e-10)
        game = MaskGame(n, lambda m: model.predict(
            np.hstack([m, m.sum(axis=1, keepdims=True)]) if use_size else m.astype(float)
        ))  # fmt: skip
        for semivalue, weight in SEMIVALUES:
            exact = exact_semivalue_bruteforce(game, weight)
            np.testing.assert_allclose(table.values(semivalue), exact, atol=1e-10)

    def test_combined_surrogate_is_picklable_and_exact(self):
        n = 8
        f = interaction_utility(n, 2)
        rng = np.random.default_rng(1)
        masks = rng.random((400, n)) < rng.random((400, 1))
        linear = Surrogate(np.linspace(0, 1, n + 1), rng.normal(size=n))
        g, info = fit_tree_surrogate(masks, f(masks), np.ones(400), linear=linear)
        assert isinstance(g, TreeSurrogate) and info["fit_seconds"] >= 0
        g2 = pickle.loads(pickle.dumps(g))
        for semivalue, weight in SEMIVALUES:
            exact = exact_semivalue_bruteforce(MaskGame(n, g2), weight)
            np.testing.assert_allclose(g2.values(semivalue), exact, atol=1e-10)


def relative_error(values: np.ndarray, exact: np.ndarray) -> float:
    return float(((values - exact) ** 2).sum() / (exact**2).sum())


def run_shapley(monkeypatch, game, budget, seed, surrogate):  # type: ignore[no-untyped-def]
    """``shapley`` with estimator regression-msr and the given surrogate."""
    from dataworth.estimators import regression_msr

    class WithSurrogate(RegressionMSR):
        def __init__(self) -> None:
            super().__init__(surrogate=surrogate)

    monkeypatch.setattr(regression_msr, "RegressionMSR", WithSurrogate)
    method = get_method("shapley")(budget=budget, estimator="regression-msr", random_state=seed)
    return method.fit(game).result_


class TestRegressionMSRTrees:
    @pytest.mark.parametrize("surrogate", ["trees", "linear+trees"])
    def test_unbiased(self, monkeypatch, surrogate):
        n = 8
        game = MaskGame(n, interaction_utility(n, 3))
        exact = exact_semivalue_bruteforce(game, shapley_weight)
        runs, zs = [], []
        for seed in range(60):
            res = run_shapley(monkeypatch, game, 10 * n, seed, surrogate)
            assert res.metadata["n_evaluations"] <= 10 * n
            runs.append(res.values)
            zs.append((res.values - exact) / np.maximum(res.stderr, 1e-12))
        runs_ = np.array(runs)
        mean, se = runs_.mean(axis=0), runs_.std(axis=0, ddof=1) / np.sqrt(len(runs))
        assert np.all(np.abs(mean - exact) <= 4 * se + 1e-9)
        assert np.mean(np.abs(np.array(zs)) > 3) < 0.05

    @pytest.mark.parametrize("surrogate", ["linear", "trees", "linear+trees"])
    @pytest.mark.parametrize("budget", [22, 31, 100, 257])
    def test_budget_never_exceeded(self, monkeypatch, surrogate, budget):
        game = MaskGame(9, interaction_utility(9, 4))
        res = run_shapley(monkeypatch, game, budget, 0, surrogate)
        assert res.metadata["n_evaluations"] <= budget
        assert np.all(np.isfinite(res.values))

    def test_unknown_surrogate(self):
        with pytest.raises(DataworthError, match="surrogate must be one of"):
            RegressionMSR(surrogate="forest")

    def test_plan_identity_is_deterministic_and_fit_time_recorded(self):
        game = MaskGame(8, interaction_utility(8, 5))
        plans = [
            RegressionMSR(surrogate="linear+trees").plan(
                game, Semivalue.shapley(), budget=400, random_state=0, n_jobs=1
            )
            for _ in range(2)
        ]
        assert plans[0].identity == plans[1].identity
        meta = plans[0].metadata["surrogate"]
        assert meta["kind"] == "linear+trees" and meta["fit_seconds"] >= 0
        assert meta["trees"]["weighted_r2"] >= meta["weighted_r2"] - 1e-9
