"""The estimator layer: msr, regression-msr and permutation under ``shapley``, ``banzhaf`` and
``beta-shapley``, against exact values; budgets in utility evaluations; TMC truncation."""

from __future__ import annotations

import numpy as np
import pytest

from dataworth.engine.stopping import MaxUpdates
from dataworth.errors import DataworthError
from dataworth.estimators import ESTIMATORS, get_estimator
from dataworth.estimators.semivalues import Semivalue
from dataworth.estimators.sizes import SizeSampler, coefficients
from dataworth.methods import get_method
from dataworth.testing.games import (
    AdditiveGame,
    AirportGame,
    GloveGame,
    banzhaf_weight,
    beta_weight,
    exact_semivalue_bruteforce,
    shapley_weight,
)
from dataworth.utility.base import UtilityBase

MINE = ["permutation", "msr", "regression-msr"]


class RandomGame(UtilityBase):
    """A table of random utilities with a learning-curve trend; counts its evaluations."""

    def __init__(self, n: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.n_players, self.player_names = n, np.arange(n)
        idx = np.arange(2**n)
        masks = ((idx[:, None] >> np.arange(n)) & 1).astype(bool)
        w = rng.uniform(-0.5, 1.5, n)
        self.table = 1 - np.exp(-(masks @ w) / 3) + 0.05 * rng.normal(size=idx.size)
        self.powers = 2 ** np.arange(n)
        self.n_evaluations = 0

    def fingerprint_parts(self) -> dict[str, str]:
        import joblib

        return {"utility": str(joblib.hash(self.table))}  # not the evaluation counter

    def __call__(self, subset) -> float:
        self.n_evaluations += 1
        return float(self.table[self.mask_of(subset) @ self.powers])

    def evaluate_many(self, subsets):
        masks = np.asarray(list(subsets), dtype=bool).reshape(-1, self.n_players)
        self.n_evaluations += masks.shape[0]
        return self.table[masks @ self.powers]


SEMIVALUES = {
    "shapley": (Semivalue.shapley(), shapley_weight),
    "banzhaf": (Semivalue.banzhaf(), banzhaf_weight),
    "beta(16,1)": (Semivalue.beta_shapley(16, 1), beta_weight(16, 1)),
    "beta(4,2)": (Semivalue.beta_shapley(4, 2), beta_weight(4, 2)),
}


@pytest.mark.parametrize("smallest", [1, 2])
@pytest.mark.parametrize("name", list(SEMIVALUES))
def test_size_sampler_and_coefficients_reproduce_the_semivalue_exactly(name, smallest) -> None:
    """Summing u(T) * coefficient * P(T) over every coalition (not sampled) gives the exact
    semivalue: the importance weights are right; with ``smallest=2`` the sizes 1 and n - 1
    enter exactly (the warm-up) and the rest by the weights."""
    from dataworth.estimators.msr import Surrogate, border_coalitions, exact_part

    semivalue, weight = SEMIVALUES[name]
    game = RandomGame(7, seed=1)
    n = game.n_players
    sampler = SizeSampler.for_semivalue(semivalue, n, smallest=smallest)
    q = np.exp(sampler.log_q)
    assert q.sum() == pytest.approx(1.0) and q[0] == q[n] == 0
    np.testing.assert_allclose(q, q[::-1])  # symmetric: complements are drawn alike
    a_in, a_out = coefficients(semivalue, sampler)
    idx = np.arange(2**n)
    masks = ((idx[:, None] >> np.arange(n)) & 1).astype(bool)
    sizes = masks.sum(axis=1)
    u = game.table[idx]
    from scipy.special import comb

    prob = np.where((sizes > 0) & (sizes < n), q[sizes] / comb(n, sizes), 0.0)
    psi = u[:, None] * np.where(masks, a_in[sizes][:, None], -a_out[sizes][:, None])
    w = np.exp(semivalue.log_weights(n))
    ends = w[n - 1] * u[-1] - w[0] * u[0]
    if smallest == 2:
        assert q[1] == q[n - 1] == 0
        known = border_coalitions(n, 1)
        ends = ends + exact_part(semivalue, known, game.evaluate_many(known), Surrogate.zero(n))
    np.testing.assert_allclose(prob @ psi + ends, exact_semivalue_bruteforce(game, weight))


@pytest.mark.parametrize("estimator", ["msr", "regression-msr"])
@pytest.mark.parametrize("name", list(SEMIVALUES))
def test_unbiased_within_the_reported_stderr(estimator, name) -> None:
    """Over 40 seeds the mean estimate is within 4 standard errors of the mean of the exact
    values, and single runs are within 4 of their own stderr almost always (a standard error
    from ~50 heavy-tailed samples, as Beta(16, 1)'s, is itself noisy: up to 3% of runs)."""
    semivalue, weight = SEMIVALUES[name]
    game = RandomGame(8, seed=2)
    exact = exact_semivalue_bruteforce(game, weight)
    cls = get_estimator(estimator)
    # the correction's unbiasedness does not depend on the surrogate: the fast linear one here
    # (tests/test_estimators_trees.py checks the tree surrogate's)
    make = (lambda: cls(surrogate="linear")) if estimator == "regression-msr" else cls
    runs, errs = [], []
    for seed in range(40):
        plan = make().plan(game, semivalue, budget=200, random_state=seed, n_jobs=1)
        rng = np.random.default_rng(seed)
        samples = plan.job.draw(rng, plan.samples_within(200), game.n_players)
        values, stderr, _ = plan.job.estimate(plan.job.process(game, samples))
        runs.append(values)
        errs.append(stderr)
    runs_a, errs_a = np.array(runs), np.array(errs)
    z = (runs_a - exact) / errs_a
    assert np.mean(np.abs(z) > 4) < 0.03, np.abs(z).max()
    mean_se = runs_a.std(axis=0, ddof=1) / np.sqrt(len(runs))
    assert np.all(np.abs(runs_a.mean(axis=0) - exact) < 4 * mean_se + 1e-12)


@pytest.mark.parametrize("estimator", MINE)
def test_shapley_converges_on_closed_form_games(estimator) -> None:
    for game in (AirportGame(np.arange(1.0, 9.0)), GloveGame(3, 4), AdditiveGame([1.0, -2, 3])):
        r = get_method("shapley")(budget=6000, estimator=estimator, random_state=0)
        r = r.fit(game).result_
        err = np.abs(r.values - game.shapley_values())
        assert np.all(err <= 5 * r.stderr + 1e-9), (estimator, type(game).__name__, err)
        assert np.sum(err**2) / np.sum(game.shapley_values() ** 2) < 0.02


def test_regression_msr_is_exact_on_additive_and_size_games() -> None:
    """Its surrogate (size effect + additive) is exact on such games: zero residual, zero
    standard error, whatever the seed."""

    class SizePlusAdditive(RandomGame):
        def __init__(self) -> None:
            super().__init__(9)
            idx = np.arange(2**9)
            masks = ((idx[:, None] >> np.arange(9)) & 1).astype(bool)
            self.beta = np.linspace(-1, 1, 9)
            self.table = np.sqrt(masks.sum(axis=1)) + masks @ self.beta

    game = SizePlusAdditive()
    r = get_method("shapley")(budget=400, estimator="regression-msr", random_state=3)
    r = r.fit(game).result_
    exact = exact_semivalue_bruteforce(game, shapley_weight)
    np.testing.assert_allclose(r.values, exact, atol=1e-7)
    assert r.stderr.max() < 1e-7


@pytest.mark.parametrize("estimator", MINE)
@pytest.mark.parametrize("budget", [11, 37, 100, 1001])
def test_the_budget_counts_every_evaluation_and_is_never_exceeded(estimator, budget) -> None:
    game = RandomGame(9)
    r = get_method("shapley")(budget=budget, estimator=estimator, random_state=0).fit(game)
    used = r.result_.metadata["n_evaluations"]
    assert used <= budget and game.n_evaluations == used
    assert used > budget - (game.n_players + 1)  # nothing left that would buy a sample


@pytest.mark.parametrize("estimator", MINE)
def test_too_small_a_budget_names_the_minimum(estimator) -> None:
    with pytest.raises(DataworthError, match="at least"):
        get_method("shapley")(budget=3, estimator=estimator).fit(RandomGame(9))


@pytest.mark.parametrize("estimator", MINE)
def test_same_values_for_any_n_jobs_and_after_a_resume(tmp_path, estimator) -> None:
    game = RandomGame(8)
    method = get_method("shapley")
    one = method(budget=900, estimator=estimator, random_state=4).fit(game).result_
    two = method(budget=900, estimator=estimator, random_state=4, n_jobs=2).fit(game).result_
    np.testing.assert_array_equal(one.values, two.values)
    np.testing.assert_array_equal(one.stderr, two.stderr)
    path = tmp_path / "c.npz"
    # cut at a round boundary (where checkpoints are) by a rule, not by a smaller budget:
    # regression-msr's pilot follows the budget
    method(budget=900, stop=MaxUpdates(128), estimator=estimator, random_state=4,
           checkpoint=path).fit(game)  # fmt: skip
    resumed = method(budget=900, estimator=estimator, random_state=4, checkpoint=path,
                     resume=True).fit(game).result_  # fmt: skip
    np.testing.assert_array_equal(one.values, resumed.values)
    assert resumed.metadata["n_evaluations"] == one.metadata["n_evaluations"]


def test_one_player_is_valued_exactly() -> None:
    for estimator in ESTIMATORS:
        r = get_method("shapley")(budget=10, estimator=estimator, random_state=0)
        r = r.fit(AdditiveGame([2.5])).result_
        assert r.values.tolist() == [2.5], estimator


def test_unsupported_semivalue_and_unknown_estimator_are_refused() -> None:
    with pytest.raises(DataworthError, match="shapley values only"):
        get_method("banzhaf")(estimator="kernel-shap", budget=100).fit(RandomGame(5))
    with pytest.raises(DataworthError, match="estimator must be one of 'auto', 'permutation'"):
        get_method("shapley")(estimator="nope", budget=100).fit(RandomGame(5))


def test_beta_and_banzhaf_keep_their_budget_meaning_by_default() -> None:
    game = RandomGame(6)
    beta = get_method("beta-shapley")(budget=5, random_state=0).fit(game).result_
    assert beta.metadata["n_updates"] == 5 and "n_evaluations" not in beta.metadata
    banzhaf = get_method("banzhaf")(budget=64, random_state=0).fit(game).result_
    assert banzhaf.metadata["n_updates"] == 64
    sized = get_method("beta-shapley")(budget=300, estimator="regression-msr", random_state=0)
    assert sized.fit(game).result_.metadata["n_evaluations"] <= 300


# ------------------------------------------------------------------------- TMC truncation
class PlateauGame(UtilityBase):
    """``u(empty) = 0``; ``u(S) = 1 + 0.001 (|S| - 1)`` otherwise. With tolerance 0.01 every
    permutation is truncated after its first player (``|u(N) - u({i})| = 0.001 (n - 1)`` is
    below ``0.01 u(N)``), so TMC gives the first player 1 and every later one exactly 0 (the
    fill), although their true marginals are 0.001."""

    def __init__(self, n: int) -> None:
        self.n_players, self.player_names, self.calls = n, np.arange(n), 0

    def __call__(self, subset) -> float:
        self.calls += 1
        k = int(self.mask_of(subset).sum())
        return 0.0 if k == 0 else 1.0 + 0.001 * (k - 1)


def test_tmc_truncation_fills_zero_marginals_and_skips_their_fits() -> None:
    n, budget = 5, 40
    game = PlateauGame(n)
    r = get_method("tmc-shapley")(budget=budget, tolerance=0.01, random_state=0).fit(game)
    values = r.result_.values
    # each value is the share of permutations that player opened: multiples of 1/budget
    np.testing.assert_allclose(values * budget, np.round(values * budget), atol=1e-9)
    assert values.sum() == pytest.approx(1.0, abs=1e-12)  # untruncated: u(N) = 1.004
    assert game.calls == 1 + 2 * budget  # u(N) once; per permutation u(empty) and one prefix
    # the same permutations without truncation: the later players' 0.001 marginals come back
    full = get_method("permutation-shapley")(budget=budget, random_state=0).fit(game).result_
    np.testing.assert_allclose(full.values - values, 0.001 * (n - 1) / n, atol=0.001)


@pytest.mark.parametrize("estimator", list(ESTIMATORS))
def test_draws_do_not_depend_on_how_rounds_cut_them(estimator) -> None:
    """Drawing k then m samples gives the samples of drawing k + m: a resumed run, or a round
    cut short by a time limit and drawn again, sees the samples of an uninterrupted run."""
    plan = get_estimator(estimator)().plan(
        RandomGame(7), Semivalue.shapley(), budget=2000, random_state=0, n_jobs=1
    )
    a, b = np.random.default_rng(1), np.random.default_rng(1)
    whole = plan.job.draw(a, 50, 7)
    parts = plan.job.draw(b, 13, 7) + plan.job.draw(b, 37, 7)
    assert len(whole) == len(parts) == 50
    for x, y in zip(whole, parts, strict=True):
        x_parts, y_parts = (s if isinstance(s, tuple) else (s,) for s in (x, y))  # (group, mask)
        for p, q in zip(x_parts, y_parts, strict=True):
            np.testing.assert_array_equal(np.asarray(p), np.asarray(q))
    assert a.bit_generator.state == b.bit_generator.state  # a cut round rewinds to here


def test_every_estimator_result_saves_loads_and_merges_in_a_fresh_process(tmp_path) -> None:
    """Each estimator's reducer is listed in REDUCERS, not registered by importing its module."""
    import subprocess
    import sys

    paths = []
    for name in ESTIMATORS:
        r = get_method("shapley")(budget=400, estimator=name, random_state=0).fit(RandomGame(6))
        paths.append(str(r.result_.save(tmp_path / f"{name}.npz")))
    code = (
        "import sys; from dataworth.result import ValuationResult as V\n"
        "for p in sys.argv[1:]:\n"
        "    r = V.load(p); m = r + r\n"
        "    assert m.values.shape == r.values.shape, p\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------- an enumerated real game
@pytest.fixture(scope="module")
def real_game() -> RandomGame:
    """breast_cancer rows in 9 groups (two with flipped labels), logistic regression,
    accuracy: every coalition's utility enumerated through the batched utility, then looked
    up (so the estimators see a real data-valuation game with exact values)."""
    from sklearn.datasets import load_breast_cancer

    from dataworth.api import make_utility
    from dataworth.data import Dataset

    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    rng = np.random.default_rng(0)
    rows = rng.permutation(len(y))
    train, valid = rows[:72], rows[200:400]
    groups = np.arange(72) % 9
    yt = y[train].copy()
    yt[np.isin(groups, [2, 6])] ^= 1
    utility = make_utility(
        Dataset.from_arrays(X[train], yt, groups=groups.astype(str)),
        Dataset.from_arrays(X[valid], y[valid]),
        by_group=True,
    )
    n = utility.n_players
    game = RandomGame(n)
    idx = np.arange(2**n)
    masks = ((idx[:, None] >> np.arange(n)) & 1).astype(bool)
    order = np.argsort(utility.player_names.astype(int))  # group "0".."8" in bit order
    game.table = np.asarray(utility.evaluate_many(masks[:, np.argsort(order)]), dtype=float)
    return game


@pytest.mark.parametrize("estimator", list(ESTIMATORS))
def test_every_estimator_on_an_enumerated_real_game(estimator, real_game) -> None:
    """Over 20 seeds at 60 n evaluations: the budget holds, the error shrinks well below the
    values' scale, and the reported standard errors cover the error (|z| > 4 in under 3% of
    coordinates; kernel-shap and leverage-shap are consistent, not unbiased, so only their
    coverage is checked loosely)."""
    n = real_game.n_players
    exact = exact_semivalue_bruteforce(real_game, shapley_weight)
    budget = 60 * n
    runs, errs = [], []
    for seed in range(20):
        real_game.n_evaluations = 0
        r = get_method("shapley")(budget=budget, estimator=estimator, random_state=seed)
        r = r.fit(real_game).result_
        assert real_game.n_evaluations == r.metadata["n_evaluations"] <= budget
        runs.append(r.values)
        errs.append(r.stderr)
    runs_a, errs_a = np.array(runs), np.array(errs)
    rel_mse = np.mean(np.sum((runs_a - exact) ** 2, axis=1) / np.sum(exact**2))
    assert rel_mse < 0.25, rel_mse
    z = (runs_a - exact) / np.maximum(errs_a, 1e-12)
    assert np.mean(np.abs(z) > 4) < (0.1 if estimator in ("kernel-shap", "leverage-shap") else 0.03)


@pytest.mark.parametrize("estimator", list(ESTIMATORS))
def test_every_estimator_stops_on_a_stderr_target_and_a_time_limit(estimator) -> None:
    import time

    from dataworth.engine.stopping import MaxTime, StderrBelow

    game = RandomGame(8)
    method = get_method("shapley")
    r = method(budget=None, estimator=estimator, stop=StderrBelow(0.02) | MaxTime(60),
               random_state=0).fit(game).result_  # fmt: skip
    assert np.nanmax(r.stderr) < 0.02, estimator
    started = time.monotonic()
    r = method(budget=None, estimator=estimator, stop=MaxTime(1.0), random_state=0).fit(game)
    assert time.monotonic() - started < 6.0
    assert r.result_.metadata["n_updates"] > 0
