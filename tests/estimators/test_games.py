"""The closed-form oracle games against brute-force enumeration, and the semivalue weights."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dataworth.errors import DataworthError
from dataworth.testing import (
    AdditiveGame,
    AirportGame,
    GloveGame,
    SymmetricVotingGame,
    banzhaf_weight,
    beta_weight,
    exact_semivalue_bruteforce,
    shapley_weight,
)
from dataworth.utility.base import UtilityBase

TOL = 1e-10


def _games() -> list[UtilityBase]:
    rng = np.random.default_rng(12345)
    games: list[UtilityBase] = []
    for n in (1, 2, 5, 9):
        games.append(AdditiveGame(rng.normal(size=n)))
    for n in (2, 4, 6, 10):
        games.append(SymmetricVotingGame(n))
    for n in (1, 3, 6, 10):
        games.append(AirportGame(rng.uniform(0, 10, size=n)))
    games.append(AirportGame([2.0, 1.0, 2.0, 0.0, 5.0, 1.0]))  # ties and a zero cost
    for left, right in ((1, 1), (1, 2), (3, 2), (4, 4), (2, 7), (0, 3), (5, 0), (6, 5)):
        games.append(GloveGame(left, right))
    return games


GAMES = _games()
IDS = [repr(g) for g in GAMES]


@pytest.mark.parametrize("game", GAMES, ids=IDS)
def test_shapley_closed_form_matches_bruteforce(game) -> None:
    brute = exact_semivalue_bruteforce(game, shapley_weight)
    np.testing.assert_allclose(game.shapley_values(), brute, rtol=0, atol=TOL)


@pytest.mark.parametrize("game", GAMES, ids=IDS)
def test_banzhaf_closed_form_matches_bruteforce(game) -> None:
    brute = exact_semivalue_bruteforce(game, banzhaf_weight)
    np.testing.assert_allclose(game.banzhaf_values(), brute, rtol=0, atol=TOL)


@pytest.mark.parametrize(
    "weight", [beta_weight(16, 1), beta_weight(4, 1), beta_weight(1, 4)], ids=repr
)
@pytest.mark.parametrize("game", GAMES[::3], ids=IDS[::3])
def test_general_semivalues_match_bruteforce(game, weight) -> None:
    brute = exact_semivalue_bruteforce(game, weight)
    np.testing.assert_allclose(game.semivalues(weight), brute, rtol=0, atol=TOL)


@pytest.mark.parametrize("game", GAMES, ids=IDS)
def test_shapley_efficiency(game) -> None:
    n = game.n_players
    grand = game(np.ones(n, dtype=bool)) - game(np.zeros(n, dtype=bool))
    assert math.isclose(float(np.sum(game.shapley_values())), grand, abs_tol=TOL)


def test_bruteforce_on_largest_allowed_game() -> None:
    game = GloveGame(8, 8)
    np.testing.assert_allclose(
        exact_semivalue_bruteforce(game, shapley_weight), game.shapley_values(), atol=TOL
    )
    with pytest.raises(DataworthError, match="16"):
        exact_semivalue_bruteforce(AdditiveGame(np.ones(17)), shapley_weight)


def test_known_values() -> None:
    np.testing.assert_allclose(SymmetricVotingGame(6).shapley_values(), np.full(6, 1 / 6))
    np.testing.assert_allclose(SymmetricVotingGame(6).banzhaf_values(), np.full(6, 10 / 32))
    # Littlechild–Owen on costs 1, 2, 4: 1/3, 1/3 + 1/2, 1/3 + 1/2 + 2
    np.testing.assert_allclose(AirportGame([4, 1, 2]).shapley_values(), [17 / 6, 1 / 3, 5 / 6])
    np.testing.assert_allclose(GloveGame(1, 2).shapley_values(), [2 / 3, 1 / 6, 1 / 6])
    np.testing.assert_allclose(GloveGame(3, 3).shapley_values(), np.full(6, 0.5))
    assert AdditiveGame([1.0, -2.0]).banzhaf_values().tolist() == [1.0, -2.0]


def test_games_accept_indices_and_masks() -> None:
    game = GloveGame(2, 3)
    assert game([0, 2, 3]) == 1.0
    assert game(np.array([True, True, True, True, False])) == 2.0
    assert game([]) == 0.0
    assert AirportGame([1.0, 3.0])([]) == 0.0


def test_fingerprints_follow_parameters() -> None:
    assert (
        AirportGame([1, 2]).fingerprint_parts()["utility"]
        == AirportGame([1.0, 2.0]).fingerprint_parts()["utility"]
    )
    assert AirportGame([1, 2]).fingerprint() != AirportGame([1, 3]).fingerprint()
    assert GloveGame(2, 3).fingerprint() != GloveGame(3, 2).fingerprint()
    assert AdditiveGame([1.0, 2.0]).fingerprint() != AirportGame([1.0, 2.0]).fingerprint()


@pytest.mark.parametrize(
    "make",
    [
        lambda: SymmetricVotingGame(3),
        lambda: SymmetricVotingGame(0),
        lambda: AirportGame([1.0, -1.0]),
        lambda: AirportGame([]),
        lambda: AdditiveGame([1.0, np.nan]),
        lambda: GloveGame(0, 0),
        lambda: GloveGame(-1, 2),
        lambda: beta_weight(0, 1),
        lambda: beta_weight(1, -2),
        lambda: shapley_weight(3, 3),
    ],
)
def test_bad_game_arguments(make) -> None:
    with pytest.raises(DataworthError):
        make()


# --------------------------------------------------------------------------- weights
def test_beta_one_one_is_shapley() -> None:
    w = beta_weight(1, 1)
    for n in (1, 2, 5, 20, 200):
        for k in range(n):
            assert math.isclose(w(k, n), shapley_weight(k, n), rel_tol=1e-12)


def test_shapley_weight_formula() -> None:
    for n in (1, 4, 9):
        for k in range(n):
            exact = math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n)
            assert math.isclose(shapley_weight(k, n), exact, rel_tol=1e-12)


@pytest.mark.parametrize(
    "weight",
    [shapley_weight, banzhaf_weight, beta_weight(16, 1), beta_weight(4, 1), beta_weight(1, 4)],
    ids=lambda w: getattr(w, "__name__", repr(w)),
)
@pytest.mark.parametrize("n", [1, 2, 3, 10, 50, 300])
def test_weights_are_normalised(weight, n) -> None:
    total = math.fsum(math.comb(n - 1, k) * weight(k, n) for k in range(n))
    assert math.isclose(total, 1.0, rel_tol=1e-10)


@pytest.mark.parametrize("n", [2, 5, 30])
def test_beta_16_1_favours_small_coalitions(n) -> None:
    w = beta_weight(16, 1)
    assert w(0, n) > w(n - 1, n)
    # and the reverse parameters favour large coalitions (alpha sits on the (1 - t) factor)
    w_rev = beta_weight(1, 16)
    assert w_rev(0, n) < w_rev(n - 1, n)


def test_beta_weight_formula() -> None:
    # B(k + beta, n - 1 - k + alpha) / B(alpha, beta) with alpha = 4, beta = 1, n = 3, k = 0:
    # B(1, 6) / B(4, 1) = (1/6) / (1/4)
    assert math.isclose(beta_weight(4, 1)(0, 3), 4 / 6, rel_tol=1e-12)


def test_large_games_do_not_underflow() -> None:
    # weights such as 2**-(n-1) underflow to 0 for n > 1075; the sums run in log space
    glove = GloveGame(150, 200)
    assert math.isclose(float(glove.shapley_values().sum()), 150.0, rel_tol=1e-10)
    voting = SymmetricVotingGame(2000)
    np.testing.assert_allclose(
        voting.semivalues(banzhaf_weight), voting.banzhaf_values(), rtol=1e-10
    )
    np.testing.assert_allclose(
        voting.semivalues(shapley_weight), voting.shapley_values(), rtol=1e-10
    )
    airport = AirportGame(np.random.default_rng(0).uniform(0, 5, size=1200))
    np.testing.assert_allclose(
        airport.semivalues(banzhaf_weight), airport.banzhaf_values(), rtol=1e-9, atol=1e-12
    )
    np.testing.assert_allclose(
        airport.semivalues(shapley_weight), airport.shapley_values(), rtol=1e-9
    )
    additive = AdditiveGame(np.linspace(-1, 1, 1500))
    np.testing.assert_allclose(
        additive.semivalues(beta_weight(16, 1)), additive.weights, rtol=1e-9, atol=1e-12
    )
