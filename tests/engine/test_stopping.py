"""Stopping rules: checks, completion, caps on remaining samples and composition."""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from dataworth.engine.stopping import (
    MaxTime,
    MaxUpdates,
    RankStable,
    Status,
    StderrBelow,
    Stopping,
)
from dataworth.errors import DataworthError
from dataworth.methods import get_method
from dataworth.utility.base import UtilityBase


def status(
    n_updates: int = 0,
    *,
    values=None,
    stderr=None,
    counts=None,
    elapsed: float = 0.0,
    halves=None,
) -> Status:
    n = 4
    return Status(
        n_updates=n_updates,
        values=np.zeros(n) if values is None else np.asarray(values, dtype=float),
        stderr=np.full(n, np.nan) if stderr is None else np.asarray(stderr, dtype=float),
        counts=np.full(n, n_updates) if counts is None else np.asarray(counts),
        started=time.monotonic() - elapsed,
        halves=None if halves is None else tuple(np.asarray(h, dtype=float) for h in halves),
    )


# --------------------------------------------------------------------------- single rules
def test_max_updates() -> None:
    stop = MaxUpdates(10)
    assert not stop(status(0))
    assert not stop.check(status(9))
    assert stop.check(status(10))
    assert stop.check(status(12))
    assert stop.completion(status(5)) == 0.5
    assert stop.completion(status(15)) == 1.0
    assert stop.max_remaining(status(3)) == 7
    assert stop.max_remaining(status(12)) == 0
    assert repr(stop) == "MaxUpdates(10)"
    assert MaxUpdates(np.int64(3)).n == 3


def test_max_time() -> None:
    stop = MaxTime(2)
    assert not stop.check(status(elapsed=0.0))
    assert stop.check(status(elapsed=5.0))
    assert stop.completion(status(elapsed=1.0)) == pytest.approx(0.5, abs=0.01)
    assert stop.completion(status(elapsed=10.0)) == 1.0
    assert stop.max_remaining(status(elapsed=1.0)) is None
    assert stop.seconds_left(status(elapsed=0.5)) == pytest.approx(1.5, abs=0.01)
    assert stop.seconds_left(status(elapsed=5.0)) == 0.0
    assert MaxUpdates(3).seconds_left(status()) is None
    assert repr(stop) == "MaxTime(2)"


def test_status_elapsed() -> None:
    s = status(elapsed=3.0)
    assert 3.0 <= s.elapsed < 4.0


def test_stderr_below() -> None:
    stop = StderrBelow(0.1, min_count=5)
    # too few samples: not trusted, whatever the stderr says
    few = status(4, stderr=[0.01] * 4)
    assert not stop.check(few)
    assert stop.completion(few) == 0.0
    assert stop.check(status(5, stderr=[0.05, 0.01, 0.09, 0.0]))
    assert not stop.check(status(5, stderr=[0.05, 0.01, 0.2, 0.0]))
    assert stop.completion(status(5, stderr=[0.05, 0.2, 0.0, 0.0])) == pytest.approx(0.25)
    assert stop.completion(status(5, stderr=[0.01] * 4)) == 1.0
    # one player below min_count keeps it going
    assert not stop.check(status(9, stderr=[0.01] * 4, counts=[9, 9, 9, 4]))
    # no finite stderr at all: never done
    nan = status(9, stderr=[np.nan] * 4)
    assert not stop.check(nan)
    assert stop.completion(nan) == 0.0
    assert stop.max_remaining(nan) is None
    assert repr(stop) == "StderrBelow(0.1)"


UP = [1.0, 2.0, 3.0, 4.0]
SAME = [1.1, 2.1, 3.1, 4.1]  # the same ranking as UP
DOWN = [4.0, 3.0, 2.0, 1.0]  # reversed


def test_rank_stable_compares_the_two_halves() -> None:
    stop = RankStable(0.99, patience=2)
    agree, disagree = status(2, values=UP, halves=(UP, SAME)), status(2, halves=(UP, DOWN))
    assert stop.needs_halves and not MaxUpdates(3).needs_halves
    assert not stop.check(disagree)
    assert stop.completion(disagree) == 0.0
    assert not stop.check(agree)  # one round of agreement; patience 2
    assert stop.completion(agree) == 1.0
    assert stop.check(agree)
    assert not stop.check(disagree)  # streak broken
    stop.reset()
    assert not stop.check(agree) and stop.check(agree)
    assert stop.max_remaining(agree) is None
    assert repr(stop) == "RankStable(0.99, patience=2)"
    # Spearman, not Pearson: a monotone but non-linear relation agrees perfectly
    assert RankStable(1.0).check(status(halves=(UP, np.exp(UP))))


def test_rank_stable_constant_and_nan_values() -> None:
    flat = [0.0, 0.0, 0.0, 0.0]
    assert RankStable(1.0).check(status(halves=(flat, flat)))  # identical: agree
    assert not RankStable(0.5).check(status(halves=(flat, UP)))  # constant vs varying
    # NaN in either half: left out of the correlation
    assert RankStable(1.0).check(status(halves=([np.nan, 2.0, 3.0, 4.0], [9.0, 5.0, 6.0, 7.0])))
    assert not RankStable(0.5).check(status(halves=([np.nan] * 3 + [1.0], UP)))  # < 2 finite


def test_rank_stable_needs_halves_and_composes() -> None:
    with pytest.raises(DataworthError, match="halves"):
        RankStable(0.9).check(status(values=UP))
    assert (MaxUpdates(3) | RankStable(0.9)).needs_halves
    assert (RankStable(0.9) & MaxTime(3)).needs_halves
    assert not (MaxUpdates(3) | MaxTime(3)).needs_halves


def test_base_class_is_abstract() -> None:
    with pytest.raises(NotImplementedError):
        Stopping().check(status())
    with pytest.raises(NotImplementedError):
        Stopping().completion(status())
    assert Stopping().max_remaining(status()) is None
    assert Stopping().seconds_left(status()) is None


# --------------------------------------------------------------------------- composition
def test_or() -> None:
    stop = MaxUpdates(10) | MaxUpdates(4)
    assert not stop.check(status(3))
    assert stop.check(status(4))
    assert stop.completion(status(2)) == 0.5
    assert stop.max_remaining(status(1)) == 3
    assert repr(stop) == "MaxUpdates(10) | MaxUpdates(4)"
    with_time = MaxUpdates(10) | MaxTime(100)
    assert with_time.max_remaining(status(4)) == 6
    assert with_time.check(status(3, elapsed=200.0))
    assert with_time.completion(status(5, elapsed=90.0)) == pytest.approx(0.9, abs=0.01)
    assert (MaxTime(5) | StderrBelow(0.1)).max_remaining(status(1)) is None
    # the run ends at the first time limit, whatever the other rule says
    assert (MaxTime(5) | StderrBelow(0.1)).seconds_left(status()) == pytest.approx(5, abs=0.01)
    assert (MaxTime(5) | MaxTime(3)).seconds_left(status()) == pytest.approx(3, abs=0.01)
    assert (MaxUpdates(5) | StderrBelow(0.1)).seconds_left(status()) is None


def test_and() -> None:
    stop = MaxUpdates(10) & MaxUpdates(4)
    assert not stop.check(status(4))
    assert stop.check(status(10))
    assert stop.completion(status(2)) == 0.2
    assert stop.max_remaining(status(1)) == 9
    assert repr(stop) == "(MaxUpdates(10)) & (MaxUpdates(4))"
    # a rule without a cap lifts the cap: the run may have to go past MaxUpdates
    assert (MaxUpdates(10) & MaxTime(100)).max_remaining(status(4)) is None
    assert not (MaxUpdates(10) & MaxTime(100)).check(status(20, elapsed=1.0))
    # a time limit ends the run only when the other rule is a time limit too
    assert (MaxUpdates(10) & MaxTime(100)).seconds_left(status()) is None
    assert (MaxTime(5) & MaxTime(3)).seconds_left(status()) == pytest.approx(5, abs=0.01)


def test_nested_composition() -> None:
    stop = (MaxUpdates(100) & StderrBelow(0.1, min_count=1)) | MaxUpdates(1000)
    # the & has no cap (StderrBelow has none), so only the outer MaxUpdates(1000) caps
    assert stop.max_remaining(status(50)) == 950
    assert not stop.check(status(150, stderr=[0.5] * 4))
    assert stop.check(status(150, stderr=[0.05] * 4))
    assert stop.check(status(1000, stderr=[0.5] * 4))
    capped = (MaxUpdates(100) & MaxUpdates(300)) | MaxUpdates(200)
    assert capped.max_remaining(status(0)) == 200
    assert capped.completion(status(100)) == pytest.approx(0.5)


def test_or_checks_both_sides_every_round() -> None:
    rank = RankStable(0.99, patience=2)
    stop = MaxUpdates(1) | rank
    s = status(5, values=UP, halves=(UP, SAME))
    assert stop.check(s)  # MaxUpdates already says stop...
    assert rank._streak == 1  # ...but RankStable saw the round
    assert stop.check(s)
    assert rank._streak == 2
    stop.reset()
    assert rank.completion(s) == 0.0


def test_and_checks_both_sides_every_round() -> None:
    rank = RankStable(0.99, patience=1)
    stop = MaxUpdates(100) & rank
    s = status(5, values=UP, halves=(UP, SAME))
    assert not stop.check(s)  # MaxUpdates says go on; RankStable saw the round
    assert rank.completion(s) == 1.0 and rank._streak == 1


# --------------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize(
    "make",
    [
        lambda: MaxUpdates(0),
        lambda: MaxUpdates(-5),
        lambda: MaxUpdates(2.5),
        lambda: MaxUpdates(True),
        lambda: MaxUpdates("10"),
        lambda: MaxTime(0),
        lambda: MaxTime(-1.0),
        lambda: MaxTime(math.inf),
        lambda: MaxTime(math.nan),
        lambda: MaxTime("60"),
        lambda: StderrBelow(0),
        lambda: StderrBelow(-0.1),
        lambda: StderrBelow(math.nan),
        lambda: StderrBelow("0.1"),
        lambda: RankStable(0.0),
        lambda: RankStable(1.5),
        lambda: RankStable(math.nan),
    ],
)
def test_bad_arguments(make) -> None:
    with pytest.raises(DataworthError):
        make()


@pytest.mark.parametrize("patience", [0, -1])
def test_rank_stable_bad_patience(patience) -> None:
    with pytest.raises(DataworthError):
        RankStable(0.99, patience=patience)


# ------------------------------------------------------------------ time limits within a round
class SlowSquareGame(UtilityBase):
    """``u(S) = |S|**2``, sleeping ``delay`` seconds per evaluation.

    A player's marginal depends on its position, so values depend on the permutations drawn;
    no prefix comes within 1% of ``u(N)``, so TMC never truncates (every permutation costs
    ``n + 1`` evaluations).
    """

    def __init__(self, n: int, delay: float) -> None:
        self.n_players, self.player_names, self.delay = n, np.arange(n), delay

    def __call__(self, subset) -> float:
        time.sleep(self.delay)
        return float(self.mask_of(subset).sum()) ** 2


class SleepyClassifier(ClassifierMixin, BaseEstimator):
    """Predicts the majority class; every fit sleeps ``delay`` seconds."""

    def __init__(self, delay: float = 0.1) -> None:
        self.delay = delay

    def fit(self, X, y):
        time.sleep(self.delay)
        self.classes_, counts = np.unique(y, return_counts=True)
        self.majority_ = self.classes_[np.argmax(counts)]
        return self

    def predict(self, X):
        return np.full(len(X), self.majority_)


LIMIT = 2.0


@pytest.mark.parametrize("method", ["permutation-shapley", "tmc-shapley"])
def test_time_limit_is_checked_within_a_round_permutations(method) -> None:
    """A permutation takes 1.3 s, a round of 8 about 10 s: the run used to end after the first
    round (5x the limit); it now ends at the first permutation boundary past the limit."""
    game = SlowSquareGame(12, delay=0.1)
    started = time.monotonic()
    result = get_method(method)(budget=None, stop=MaxTime(LIMIT), random_state=0).fit(game)
    wall = time.monotonic() - started
    assert wall < 2 * LIMIT, f"{wall:.1f} s for a limit of {LIMIT} s (one chunk: 1.3 s)"
    assert 1 <= result.result_.metadata["n_updates"] < 8


def test_time_limit_is_checked_within_a_round_data_oob() -> None:
    """A fit takes 0.15 s: the old first round of 64 bags (chunks of 16) took about 10 s; the
    chunks are now cut from the first bag's time (one bag each) and the run ends past 2 s."""
    from dataworth.api import make_utility
    from dataworth.data import Dataset

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)), np.tile([0, 1], 30)
    train, valid = Dataset.from_arrays(X[:40], y[:40]), Dataset.from_arrays(X[40:], y[40:])
    utility = make_utility(train, valid, model=SleepyClassifier(delay=0.15))
    started = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # points never out of bag in so few bags: NaN
        result = get_method("data-oob")(budget=None, stop=MaxTime(LIMIT), random_state=0)
        n_updates = result.fit(utility).result_.metadata["n_updates"]
    wall = time.monotonic() - started
    assert wall < 2 * LIMIT, f"{wall:.1f} s for a limit of {LIMIT} s (one chunk: 0.15 s)"
    assert 1 <= n_updates < 64


def test_a_timed_run_equals_the_run_with_its_budget(tmp_path) -> None:
    """Cut short in the middle of a round on two workers, a run has the values (up to
    rounding) of the run (on one worker) whose budget is the number of samples it included, and
    its checkpoint holds the generator as that run leaves it (rewound past the draws it did
    not include)."""
    from dataworth.engine.checkpoint import Checkpoint
    from dataworth.engine.runner import run_monte_carlo
    from dataworth.estimators.reducers import reduce_state as estimate
    from dataworth.methods.semivalue import PermutationJob

    def run(stop: Stopping, n_jobs: int, delay: float, checkpoint=None):
        game = SlowSquareGame(12, delay=delay)
        return run_monte_carlo(PermutationJob(), game, 12, stop=stop, random_state=5,
                               n_jobs=n_jobs, checkpoint=checkpoint)  # fmt: skip

    run(MaxUpdates(2), n_jobs=2, delay=0.0)  # start the workers, so that the limit is not spent
    checkpoint = Checkpoint(tmp_path / "c.npz", {"run": "timed"})
    timed = run(MaxTime(1.0), n_jobs=2, delay=0.05, checkpoint=checkpoint)  # a round: 2.6 s
    k = timed.n_updates
    assert 1 <= k < 8, k  # cut within the first round
    budget = run(MaxUpdates(k), n_jobs=1, delay=0.0)
    # other chunks, so other merges: equal up to rounding
    for a, b in zip(estimate("mean", timed.state), estimate("mean", budget.state), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    rng = np.random.default_rng(5)
    PermutationJob().draw(rng, k, 12)
    assert checkpoint.load().rng_state == rng.bit_generator.state


# ------------------------------------------------------------------ split-half ranking rule
def test_rank_stable_run_stops_when_halves_agree_and_keeps_the_values() -> None:
    """End to end: the runner keeps two halves; the run stops once they rank alike; its values
    equal those of the same run with that budget and no rule; and they are the same for any
    n_jobs."""
    from dataworth.testing.games import AirportGame

    game = AirportGame(np.arange(1.0, 13.0))
    method = get_method("shapley")
    big = 10**6  # a cap the rule stops well before (the plan depends on the budget)
    runs = [
        method(budget=big, estimator="msr", stop=RankStable(0.9), random_state=3, n_jobs=j)
        .fit(game)
        .result_
        for j in (1, 2)
    ]
    np.testing.assert_array_equal(runs[0].values, runs[1].values)
    result = runs[0]
    assert result.metadata["n_evaluations"] < big
    k = result.metadata["n_updates"]
    plain = method(budget=big, stop=MaxUpdates(k), estimator="msr", random_state=3)
    plain = plain.fit(game).result_
    assert plain.metadata["n_updates"] == k
    # the runner always keeps the halves, so the values are those of the rule-free run exactly
    np.testing.assert_array_equal(result.values, plain.values)
    # halves that agree at 0.9 rank the players much like the exact values
    exact = game.shapley_values()
    assert RankStable.correlation(result.values, exact) > 0.5
