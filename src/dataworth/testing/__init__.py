"""Test oracles: cooperative games with closed-form values and a brute-force semivalue.

The games are :class:`~dataworth.utility.base.UtilityBase` subclasses, so every valuation
method can be run on them and compared against the exact answer.

Examples
--------
>>> from dataworth.testing import AirportGame, exact_semivalue_bruteforce, shapley_weight
>>> game = AirportGame([1.0, 2.0, 4.0])
>>> game.shapley_values().tolist()
[0.3333333333333333, 0.8333333333333333, 2.833333333333333]
>>> brute = exact_semivalue_bruteforce(game, shapley_weight)
>>> bool(abs(brute - game.shapley_values()).max() < 1e-12)
True
"""

from dataworth.testing.games import (
    AdditiveGame,
    AirportGame,
    GloveGame,
    SymmetricVotingGame,
    banzhaf_weight,
    beta_weight,
    exact_semivalue_bruteforce,
    shapley_weight,
)

__all__ = [
    "AdditiveGame",
    "AirportGame",
    "GloveGame",
    "SymmetricVotingGame",
    "banzhaf_weight",
    "beta_weight",
    "exact_semivalue_bruteforce",
    "shapley_weight",
]
