"""Data markets: payouts in cents, replication-robust values, federated Shapley, the CLI.

Oracles: exact rational arithmetic and the defining property of largest-remainder rounding
(several hundred random cases), hand-computed splits and games, brute force over all orders of
each round's players, plain exact Shapley over providers (a single round must reproduce it),
direct kernel sums for the similarity, and real replication attacks on real valuations: a
provider entering again under a second name with a copy (or a lightly perturbed copy) of its
data, and a provider copying rows inside its own data.
"""

from __future__ import annotations

import csv
import itertools
import math
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine

from cli_runner import run_cli
from dataworth import value
from dataworth.api import federated_values
from dataworth.apps.market import (
    budget_cents,
    dedupe_within_providers,
    market_payouts,
    payouts,
    prepare_market,
    provider_similarity,
    replication_robust_values,
)
from dataworth.data import Dataset
from dataworth.errors import DataworthError
from dataworth.methods.federated import federated_shapley
from dataworth.models import make_model
from dataworth.result import ValuationResult
from dataworth.testing.games import AdditiveGame
from dataworth.utility.base import UtilityBase


# ------------------------------------------------------------------------------ payouts
def pay(train, valid, budget, *, robust=True, model=None, method="exact-shapley", **kwargs):
    """What `dataworth market` does: drop repeated rows, value the providers, pay."""
    rows = prepare_market(train, robust=robust)
    valuation = value(method, rows.data, valid, model=model, by_group=True)
    return market_payouts(valuation, rows, budget, robust=robust, **kwargs)


def _check_split(values: np.ndarray, budget: str, cents: np.ndarray) -> None:
    """Non-negative, exact sum, zero for non-positive values, and largest-remainder optimal."""
    total = budget_cents(budget)
    assert cents.dtype.kind == "i"
    assert (cents >= 0).all()
    assert int(cents.sum()) == total
    pos = values > 0
    assert (cents[~pos] == 0).all()
    if not pos.any():
        return
    V = sum(Fraction(float(v)) for v in values[pos])
    quotas = [total * Fraction(float(v)) / V for v in values[pos]]
    floors = [q.numerator // q.denominator for q in quotas]
    got = cents[pos].tolist()
    # every payout is its quota rounded down or up by one cent
    assert all(g in (f, f + 1) for g, f in zip(got, floors, strict=True))
    # the cents rounded up went to the largest remainders
    up = [q - f for q, f, g in zip(quotas, floors, got, strict=True) if g == f + 1]
    down = [q - f for q, f, g in zip(quotas, floors, got, strict=True) if g == f and q != f]
    if up and down:
        assert min(up) >= max(down)
    # a larger value never gets less; equal values differ by at most one cent
    vp, gp = values[pos], np.asarray(got)
    assert (np.diff(gp[np.lexsort((gp, vp))]) >= 0).all()
    for v in np.unique(vp):
        assert np.ptp(gp[vp == v]) <= 1


def test_payouts_random_cases_sum_exactly_to_the_budget() -> None:
    rng = np.random.default_rng(20240601)
    awkward = ["0", "0.01", "0.07", "1", "2.5", "99.99", "100", "333.33", "10000", "1000000000.01"]
    for case in range(400):
        n = int(rng.choice([1, 2, 3, 7, 30, 150, 400]))
        kind = case % 5
        if kind == 0:  # smooth values, some negative
            v = rng.normal(size=n)
        elif kind == 1:  # many exact ties
            v = rng.integers(-2, 4, size=n).astype(float)
        elif kind == 2:  # magnitudes over many orders
            v = rng.choice([-1.0, 1.0], size=n) * 10.0 ** rng.uniform(-12, 12, size=n)
        elif kind == 3:  # tiny positive values
            v = rng.uniform(0, 1e-300, size=n)
        else:  # thirds and sevenths (non-terminating shares)
            v = rng.choice([1.0, 1 / 3, 1 / 7, 2 / 3, 0.0], size=n)
        if not (v > 0).any():
            v[0] = 1.0
        budget = (
            awkward[case % len(awkward)]
            if case % 2
            else f"{rng.integers(0, 10**9)}.{rng.integers(0, 100):02d}"
        )
        t = payouts(v, budget)
        _check_split(v, budget, t.cents)
        assert sum(t.amounts) == Decimal(budget).quantize(Decimal("0.01"))


def test_payouts_hand_computed() -> None:
    t = payouts([3.0, 1.0, -2.0, 0.0], 100, providers=["a", "b", "c", "d"])
    assert t.cents.tolist() == [7500, 2500, 0, 0]
    # equal remainders: the earlier provider gets the cent
    assert payouts([1.0, 1.0, 1.0], 100).cents.tolist() == [3334, 3333, 3333]
    # equal remainders (0.5 and 0.5 cents), different values: the larger value gets the cent
    assert payouts([1.0, 3.0], "0.02").cents.tolist() == [0, 2]
    # quotas 0.25, 0.25, 0.5 cents: the one cent goes to the largest remainder
    assert payouts([1.0, 1.0, 2.0], "0.01").cents.tolist() == [0, 0, 1]
    assert payouts([2.0, 1.0], 0).cents.tolist() == [0, 0]
    assert "largest remainders" in t.rule and "value <= 0 get 0" in t.rule
    assert t.rows()[0] == ("a", "3", "75.00")
    assert t.budget == Decimal("100.00")


def test_payouts_takes_a_result_and_its_labels() -> None:
    r = ValuationResult(values=np.array([0.1, 0.3]), labels=np.array(["x", "y"]), kind="group")
    t = payouts(r, "4.00")
    assert t.providers.tolist() == ["x", "y"] and t.cents.tolist() == [100, 300]


def test_no_positive_value_refuses_or_splits_equally() -> None:
    with pytest.raises(DataworthError, match="no provider has a positive value"):
        payouts([-1.0, 0.0, -3.0], 100)
    t = payouts([-1.0, 0.0, -3.0], 100, if_no_value="equal")
    assert t.cents.tolist() == [3334, 3333, 3333] and "split equally" in t.rule


@pytest.mark.parametrize(
    ("budget", "needle"),
    [
        (-5, ">= 0"),
        ("abc", "number"),
        (float("nan"), "finite"),
        ("0.001", "whole number of cents"),
        (True, "amount"),
        (float("inf"), "finite"),
        ("1e17", "at most"),
    ],
)
def test_bad_budgets(budget: object, needle: str) -> None:
    with pytest.raises(DataworthError, match=needle):
        payouts([1.0], budget)


def test_bad_values() -> None:
    with pytest.raises(DataworthError, match="finite"):
        payouts([1.0, float("nan")], 10)
    with pytest.raises(DataworthError, match="names for"):
        payouts([1.0, 2.0], 10, providers=["a"])
    with pytest.raises(DataworthError, match="if_no_value"):
        payouts([1.0], 10, if_no_value="maybe")


# ------------------------------------------------------------------------------ similarity


def _kernel_cosine_bruteforce(Z: np.ndarray, g: np.ndarray, y: np.ndarray, h: float) -> np.ndarray:
    names = np.unique(g)
    K = np.zeros((names.size, names.size))
    for a, b in itertools.product(range(Z.shape[0]), repeat=2):
        k = math.exp(-float(np.sum((Z[a] - Z[b]) ** 2)) / (2 * h * h)) * (y[a] == y[b])
        K[np.searchsorted(names, g[a]), np.searchsorted(names, g[b])] += k
    d = np.sqrt(np.diag(K))
    return K / np.outer(d, d)


def test_similarity_matches_direct_kernel_sums() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(14, 3)) * [1.0, 5.0, 0.1]
    g = np.array(list("aaaabbbbbcccdd"))
    y = rng.integers(0, 2, size=14)
    s = provider_similarity(X, g, y=y, bandwidth=0.7, max_block=20)  # several blocks
    Z = (X - X.mean(0)) / X.std(0)
    assert np.allclose(s.matrix, _kernel_cosine_bruteforce(Z, g, y, 0.7), atol=1e-12)
    assert s.providers.tolist() == ["a", "b", "c", "d"]


def test_similarity_of_copies_perturbations_and_other_labels() -> None:
    rng = np.random.default_rng(4)
    A = rng.normal(size=(20, 4))
    B = rng.normal(size=(20, 4))
    X = np.vstack([A, B, A, A + 0.01 * rng.normal(size=A.shape), A])
    y = np.r_[np.zeros(20), np.zeros(20), np.zeros(20), np.zeros(20), np.ones(20)]
    g = np.repeat(["a", "b", "copy", "perturbed", "relabelled"], 20)
    s = provider_similarity(X, g, y=y.astype(int))
    m = s.matrix
    assert m[0, 2] == pytest.approx(1.0, abs=1e-12)  # an exact copy
    assert m[0, 3] > 0.9  # 1% noise: much less than the spacing of the rows
    assert m[0, 1] < 0.1  # an independent sample of the same population
    assert m[0, 4] == 0.0  # same features, other labels: different data
    assert ((m >= 0) & (m <= 1)).all() and np.allclose(m, m.T)


def test_robust_values_formula() -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(30, 2))
    g = np.repeat(["a", "b", "c"], 10)
    base = np.array([0.5, -0.2, 0.3])
    r = replication_robust_values(base, X, g, lam=0.7, bandwidth=0.5)
    S = r.similarity.matrix
    penalty = np.exp(-0.7 * (S.sum(1) - 1.0))
    assert np.allclose(r.penalty, penalty)
    assert np.allclose(r.values, [0.5 * penalty[0], -0.2, 0.3 * penalty[2]])  # <= 0 unchanged
    assert np.array_equal(replication_robust_values(base, X, g, lam=0.0).values, base)
    # a group result is aligned by label, whatever its order
    res = ValuationResult(values=base[::-1], labels=np.array(["c", "b", "a"]), kind="group")
    assert np.allclose(replication_robust_values(res, X, g, bandwidth=0.5).base, base)
    with pytest.raises(DataworthError, match="lam"):
        replication_robust_values(base, X, g, lam=-1.0)
    with pytest.raises(DataworthError, match="3 providers"):
        replication_robust_values([1.0, 2.0], X, g)


def test_dedupe_within_providers_keeps_copies_across_providers() -> None:
    X = [[0.0], [0.0], [1.0], [0.0], [0.0], [0.0]]
    ds = Dataset.from_arrays(X, [1, 1, 1, 1, 0, 1], groups=list("aaabbb"))
    kept, rows = dedupe_within_providers(ds)
    assert rows.tolist() == [0, 2, 3, 4]  # b's row 5 repeats row 3; row 4 has another label
    assert kept.n_samples == 4
    # with an order (arrival round), the earliest copy is kept
    assert dedupe_within_providers(ds, order=[2, 1, 0, 0, 0, 0])[1].tolist() == [1, 2, 3, 4]


# ------------------------------------------------------------------------------ replication


@pytest.fixture(scope="module")
def wine() -> tuple[np.ndarray, np.ndarray, np.ndarray, Dataset]:
    """60 standardised wine rows from 4 providers (15 each) and a 59-row valuation set."""
    d = load_wine()
    X = (d.data - d.data.mean(0)) / d.data.std(0)
    idx = np.random.default_rng(0).permutation(len(X))
    valid = Dataset.from_arrays(X[idx[:59]], d.target[idx[:59]])
    rows = idx[59:119]
    groups = np.array(list("ABCD"))[np.arange(60) % 4]
    return X[rows], d.target[rows], groups, valid


def _share(m: object, *who: str) -> Fraction:
    table = m.table  # type: ignore[attr-defined]
    names = table.providers.tolist()
    return Fraction(sum(int(table.cents[names.index(w)]) for w in who), table.budget_cents)


def _with_rows(
    X: np.ndarray, y: np.ndarray, g: np.ndarray, extra: np.ndarray, name: str, noise: float = 0.0
) -> Dataset:
    rng = np.random.default_rng(7)
    Xe = X[extra] + noise * rng.normal(size=X[extra].shape)
    return Dataset.from_arrays(
        np.vstack([X, Xe]), np.r_[y, y[extra]], groups=np.r_[g, [name] * extra.size]
    )


@pytest.mark.parametrize(("noise", "copies"), [(0.0, 1), (0.01, 1), (0.0, 2)])
def test_second_identity_with_a_copy_pays_under_shapley_but_not_robust(
    wine: tuple[np.ndarray, np.ndarray, np.ndarray, Dataset], noise: float, copies: int
) -> None:
    """The replication attack: A enters again as A2 (and A3) with a (perturbed) copy."""
    X, y, g, valid = wine
    honest = Dataset.from_arrays(X, y, groups=g)
    a_rows = np.flatnonzero(g == "A")
    attack = honest
    names = ["A"]
    for c in range(copies):
        attack = _with_rows(attack.X, attack.y, attack.groups, a_rows, f"A{c + 2}", noise)
        names.append(f"A{c + 2}")
    for robust in (False, True):
        before = _share(pay(honest, valid, 10000, robust=robust), "A")
        after = _share(pay(attack, valid, 10000, robust=robust), *names)
        if robust:
            assert after <= before, (float(before), float(after))
        else:
            assert after > before * Fraction(5, 4), (float(before), float(after))


def test_copying_rows_inside_ones_own_data(
    wine: tuple[np.ndarray, np.ndarray, np.ndarray, Dataset],
) -> None:
    """A duplicates its rows inside its own data: with KNN, plain Shapley pays A more."""
    X, y, g, valid = wine
    honest = Dataset.from_arrays(X, y, groups=g)
    padded = _with_rows(X, y, g, np.flatnonzero(g == "A"), "A")
    knn = make_model("knn")
    plain = [_share(pay(d, valid, 10000, robust=False, model=knn), "A") for d in (honest, padded)]
    assert plain[1] > plain[0] + Fraction(1, 50)  # more than 2 points of the budget
    robust = [pay(d, valid, 10000, model=knn) for d in (honest, padded)]
    assert np.array_equal(robust[0].table.cents, robust[1].table.cents)
    assert robust[1].removed_duplicates == {"A": 15}


def test_market_without_robust_is_plain_exact_shapley(
    wine: tuple[np.ndarray, np.ndarray, np.ndarray, Dataset],
) -> None:
    X, y, g, valid = wine
    ds = Dataset.from_arrays(X, y, groups=g)
    m = pay(ds, valid, "1234.57", robust=False)
    ref = value("exact-shapley", ds, valid, by_group=True)
    assert np.allclose(m.table.values, ref.values, atol=1e-12)
    assert m.penalty is None and m.rule.startswith("value = exact-shapley")
    _check_split(m.table.values, "1234.57", m.table.cents)


# ------------------------------------------------------------------------------ federated


class TableGame(UtilityBase):
    """A game given by a table of u(S) over bit codes."""

    def __init__(self, table: np.ndarray) -> None:
        self.table = np.asarray(table, dtype=float)
        self.n_players = int(round(math.log2(self.table.size)))
        self.player_names = np.arange(self.n_players)

    def __call__(self, subset: object) -> float:
        mask = self.mask_of(subset)  # type: ignore[arg-type]
        return float(self.table[int(np.sum(mask * (1 << np.arange(self.n_players))))])


def _federated_bruteforce(game: TableGame, rounds: list[list[int]]) -> np.ndarray:
    """Average marginal contribution over every order of each round, after the earlier rounds."""
    out = np.zeros(game.n_players)
    background: list[int] = []
    for members in rounds:
        perms = list(itertools.permutations(members))
        for perm in perms:
            coalition = list(background)
            for p in perm:
                out[p] += (game([*coalition, p]) - game(coalition)) / len(perms)
                coalition.append(p)
        background += members
    return out


def test_federated_additive_game_gives_the_weights() -> None:
    w = [1.5, -2.0, 0.25, 4.0]
    fs = federated_shapley([[3], [0, 2], [1]], AdditiveGame(w))
    assert np.allclose(fs.values, w, atol=1e-12)
    assert fs.round_of.tolist() == [1, 2, 1, 0]
    assert np.allclose(fs.gains, [4.0, 1.75, -2.0])


def test_federated_substitutes_first_comer_takes_it_all() -> None:
    """u(S) = 1 for any non-empty S: whoever arrives first is worth 1, later copies 0."""
    game = TableGame(np.r_[0.0, np.ones(7)])
    fs = federated_shapley([[0], [1, 2]], game)
    assert np.allclose(fs.values, [1.0, 0.0, 0.0])
    fs = federated_shapley([[1, 2], [0]], game)
    assert np.allclose(fs.values, [0.0, 0.5, 0.5])
    fs = federated_shapley([[0, 1, 2]], game)  # one round: plain Shapley
    assert np.allclose(fs.values, [1 / 3] * 3)


@pytest.mark.parametrize("seed", range(4))
def test_federated_matches_bruteforce_on_random_games(seed: int) -> None:
    rng = np.random.default_rng(seed)
    game = TableGame(rng.normal(size=2**6))
    order = rng.permutation(6).tolist()
    cuts = sorted(rng.choice(np.arange(1, 6), size=2, replace=False).tolist())
    rounds = [order[: cuts[0]], order[cuts[0] : cuts[1]], order[cuts[1] :]]
    fs = federated_shapley(rounds, game)
    assert np.allclose(fs.values, _federated_bruteforce(game, rounds), atol=1e-12)
    assert fs.values.sum() == pytest.approx(game.table[-1] - game.table[0])
    assert fs.n_evaluations == sum(2 ** len(r) for r in rounds)


def test_federated_rejects_bad_rounds() -> None:
    game = AdditiveGame([1.0, 2.0, 3.0])
    for rounds, needle in [
        ([[0, 1], [1, 2]], "exactly once"),
        ([[0, 1]], "arrive in no round"),
        ([[0, 1, 2], []], "no participants"),
        ([[0, 5]], "outside"),
        ([], "empty"),
    ]:
        with pytest.raises(DataworthError, match=needle):
            federated_shapley(rounds, game)
    with pytest.raises(DataworthError, match="limited to 20"):
        federated_shapley([list(range(21))], AdditiveGame(np.ones(21)))


def test_federated_values_on_data(wine: tuple[np.ndarray, np.ndarray, np.ndarray, Dataset]) -> None:
    X, y, g, valid = wine
    ds = Dataset.from_arrays(X[:40], y[:40], groups=g[:40])
    # one round: plain exact Shapley over providers
    one = federated_values(ds, valid, np.zeros(40))
    ref = value("exact-shapley", ds, valid, by_group=True)
    assert np.allclose(one.values, ref.values, atol=1e-12)
    # two rounds: values sum to u(all) - u(none); per-round values add up
    rounds = np.where(np.arange(40) < 20, 1.0, 2.0)
    two = federated_values(ds, valid, rounds)
    full = make_model("logistic-regression").fit(X[:40], y[:40]).score(valid.X, valid.y)
    assert two.values.sum() == pytest.approx(full, abs=1e-12)
    assert two.metadata["rounds"] == [1, 2]
    assert np.allclose(np.sum(two.metadata["per_round"], axis=1), two.values)
    assert not np.allclose(two.values, ref.values)  # arrival order matters


def test_federated_values_refuse_missing_rounds(
    wine: tuple[np.ndarray, np.ndarray, np.ndarray, Dataset],
) -> None:
    """A NaN round used to become one extra, last round without a word."""
    X, y, g, valid = wine
    ds = Dataset.from_arrays(X[:40], y[:40], groups=g[:40])
    rounds = np.where(np.arange(40) < 20, 1.0, 2.0)
    rounds[25] = np.nan
    with pytest.raises(
        DataworthError, match=r"1 missing or infinite value\(s\) \(first at row 25\)"
    ):
        federated_values(ds, valid, rounds)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"lam": -1.0}, "lam must be"),
        ({"lam": True}, "lam must be"),
        ({"lam": float("nan")}, "lam must be"),
        ({"bandwidth": 0.0}, "bandwidth must be"),
        ({"bandwidth": False}, "bandwidth must be"),
    ],
)
def test_market_payouts_check_the_penalty(
    wine: tuple[np.ndarray, np.ndarray, np.ndarray, Dataset], kwargs, needle
) -> None:
    """market_payouts takes the values; `dataworth market` checks --lam and --bandwidth before
    it values (the refusals of the CLI tests below)."""
    X, y, g, _valid = wine
    ds = Dataset.from_arrays(X[:40], y[:40], groups=g[:40])
    n_providers = np.unique(g[:40]).size
    with pytest.raises(DataworthError, match=needle):
        market_payouts(np.ones(n_providers), ds, budget=100.0, **kwargs)


# ------------------------------------------------------------------------------ CLI


@pytest.fixture(scope="module")
def market_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("market")
    d = load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"})
    d = d.sample(frac=1.0, random_state=0).reset_index(drop=True)
    buyer, sellers = d.iloc[:50], d.iloc[50:110].reset_index(drop=True)
    sellers = sellers.assign(provider=np.array(["n", "s", "e", "w"])[np.arange(60) % 4])
    paths = {
        "sellers": root / "sellers.csv",
        "buyer": root / "buyer.csv",
        "rounds": root / "rounds.csv",
    }
    sellers.to_csv(paths["sellers"], index=False)
    sellers.assign(round=np.where(np.arange(60) < 30, 1, 2)).to_csv(paths["rounds"], index=False)
    buyer.assign(provider="buyer").to_csv(paths["buyer"], index=False)  # extra column: dropped
    many = d.iloc[:63].assign(provider=np.arange(63) % 21)
    paths["many"] = root / "many.csv"
    many.to_csv(paths["many"], index=False)
    return paths


def _base(files: dict[str, Path], data: str = "sellers") -> list[object]:
    return [
        "market",
        files[data],
        "--target",
        "cultivar",
        "--group",
        "provider",
        "--valid",
        files["buyer"],
        "--standardize",
    ]


def test_cli_contract(
    capsys: pytest.CaptureFixture[str], market_files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "pay.csv"
    code, stdout, err = run_cli(capsys, *_base(market_files), "--budget", "10000.07", "--out", out)
    assert code == 0, err
    with out.open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["provider", "value", "payout"]
    assert sorted(r[0] for r in rows[1:]) == ["e", "n", "s", "w"]
    assert sum(Decimal(r[2]) for r in rows[1:]) == Decimal("10000.07")
    assert all(
        Decimal(r[2]) >= 0 and Decimal(r[2]) == Decimal(r[2]).quantize(Decimal("0.01"))
        for r in rows[1:]
    )
    assert "rule:" in stdout and "largest remainders" in stdout and "exp(-1" in stdout
    for name, _v, pay in rows[1:]:
        assert any(
            line.split()[0] == name and line.split()[-1] == pay
            for line in stdout.splitlines()
            if line.strip()
        )
    assert "Traceback" not in err


def test_cli_no_robust_equals_exact_shapley_by_group(
    capsys: pytest.CaptureFixture[str], market_files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "plain.csv"
    code, stdout, err = run_cli(
        capsys, *_base(market_files), "--budget", "500", "--no-robust", "--out", out
    )
    assert code == 0, err
    got = pd.read_csv(out)
    train = pd.read_csv(market_files["sellers"])
    feats = [c for c in train.columns if c not in ("cultivar", "provider")]
    buyer = pd.read_csv(market_files["buyer"])
    mu, sd = train[feats].mean(), train[feats].std(ddof=0)
    tr = Dataset.from_arrays((train[feats] - mu) / sd, train["cultivar"], groups=train["provider"])
    va = Dataset.from_arrays((buyer[feats] - mu) / sd, buyer["cultivar"])
    ref = value("exact-shapley", tr, va, by_group=True)
    assert got["provider"].tolist() == ref.labels.tolist()
    assert np.allclose(got["value"], ref.values, atol=1e-12)
    assert "penalty" not in stdout


def test_cli_monte_carlo_method_takes_its_own_budget(
    capsys: pytest.CaptureFixture[str], market_files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "tmc.csv"
    code, stdout, err = run_cli(
        capsys,
        *_base(market_files),
        "--budget",
        "99.99",
        "--method",
        "tmc-shapley",
        "--method-budget",
        "4",
        "--out",
        out,
    )
    assert code == 0, err
    assert "tmc-shapley" in stdout
    assert sum(Decimal(p) for p in pd.read_csv(out, dtype=str)["payout"]) == Decimal("99.99")


def test_cli_rounds(
    capsys: pytest.CaptureFixture[str], market_files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "rounds.csv"
    code, stdout, err = run_cli(
        capsys,
        *_base(market_files, "rounds"),
        "--budget",
        "100",
        "--rounds",
        "round",
        "--out",
        out,
        "--no-robust",
    )
    assert code == 0, err
    assert "round 1" in stdout and "round 2" in stdout and "Wang et al. 2020" in stdout
    assert "increasing order of 'round': 1, 2" in err
    assert sum(Decimal(p) for p in pd.read_csv(out, dtype=str)["payout"]) == Decimal("100.00")


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--budget", "abc"], "budget must be a number"),
        (["--budget", "-3"], ">= 0"),
        (["--budget", "10.001"], "whole number of cents"),
        (["--budget", "10", "--method", "no-such-method"], "unknown method"),
        (["--budget", "10", "--rounds", "missing"], "rounds column 'missing'"),
        (["--budget", "10", "--rounds", "provider"], "other than the target"),
        (["--budget", "10", "--rounds", "round", "--method", "loo"], "takes no --method"),
        (["--budget", "10", "--lam", "-1"], "--lam"),
        (["--budget", "10", "--bandwidth", "0"], "--bandwidth"),
        (["--budget", "10", "--scoring", "neg_log_loss"], "no provider has a positive value"),
    ],
)
def test_cli_errors_are_one_line(
    capsys: pytest.CaptureFixture[str],
    market_files: dict[str, Path],
    extra: list[str],
    needle: str,
) -> None:
    code, _stdout, err = run_cli(capsys, *_base(market_files), *extra)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert needle.lower() in lines[0].lower(), lines[0]


def test_cli_other_errors_and_equal_split(
    capsys: pytest.CaptureFixture[str], market_files: dict[str, Path], tmp_path: Path
) -> None:
    code, _, err = run_cli(
        capsys,
        "market",
        market_files["sellers"],
        "--target",
        "cultivar",
        "--group",
        "seller",
        "--budget",
        "10",
    )
    assert code == 2 and "provider column 'seller'" in err and err.count("\n") == 1
    code, _, err = run_cli(
        capsys,
        "market",
        market_files["many"],
        "--target",
        "cultivar",
        "--group",
        "provider",
        "--budget",
        "10",
    )
    assert code == 2 and "21 providers" in err and "tmc-shapley" in err
    for missing in ("", None):
        frame = pd.read_csv(market_files["sellers"])
        frame.loc[5, "provider"] = missing
        if missing is None:
            frame["provider"] = frame["provider"].map({"n": 1, "s": 2, "e": 3, "w": 4})
        frame.to_csv(tmp_path / "holes.csv", index=False)
        code, _, err = run_cli(
            capsys,
            "market",
            tmp_path / "holes.csv",
            "--target",
            "cultivar",
            "--group",
            "provider",
            "--budget",
            "10",
        )
        assert code == 2 and "1 missing value(s) (first at row 5" in err, err
    code, _, err = run_cli(
        capsys, "market", market_files["sellers"], "--target", "cultivar", "--budget", "10"
    )
    assert code == 2 and err.startswith("error:") and "--group" in err
    out = tmp_path / "equal.csv"
    code, stdout, err = run_cli(
        capsys,
        *_base(market_files),
        "--budget",
        "10",
        "--scoring",
        "neg_log_loss",
        "--if-no-value",
        "equal",
        "--out",
        out,
    )
    assert code == 0, err
    assert pd.read_csv(out, dtype=str)["payout"].tolist() == ["2.50"] * 4
    assert "split equally" in stdout


def test_cli_reads_a_users_own_file(
    capsys: pytest.CaptureFixture[str], market_files: dict[str, Path], tmp_path: Path
) -> None:
    """market takes the data options of every command: a semicolon file with a text column, a
    blank cell and an id column is read with --drop and default encoding/imputation, and pays
    the same providers as the clean file."""
    sellers = pd.read_csv(market_files["sellers"])
    messy = sellers.assign(
        region=np.array(["hill", "valley", "coast"])[np.arange(len(sellers)) % 3],
        sample_id=np.arange(len(sellers)),
    )
    messy.loc[3, "alcohol"] = np.nan
    path = tmp_path / "messy.csv"
    messy.to_csv(path, index=False, sep=";")
    buyer = pd.read_csv(market_files["buyer"]).assign(region="hill", sample_id=np.arange(50) + 1000)
    bpath = tmp_path / "buyer.csv"
    buyer.to_csv(bpath, index=False, sep=";")
    out = tmp_path / "pay.csv"
    code, _, err = run_cli(
        capsys, "market", path, "--target", "cultivar", "--group", "provider", "--valid",
        bpath, "--drop", "sample_id", "--budget", "100", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    assert sorted(pd.read_csv(out)["provider"]) == ["e", "n", "s", "w"]
    code, _, err = run_cli(capsys, "market", path, "--target", "cultivar", "--group", "provider",
                        "--valid", bpath, "--features", "nope", "--budget", "100")  # fmt: skip
    assert code == 2 and "nope" in err


def test_cli_checkpoints_and_resumes_its_valuation(
    capsys: pytest.CaptureFixture[str], market_files: dict[str, Path], tmp_path: Path
) -> None:
    ckpt = tmp_path / "m.ckpt"
    base = [*_base(market_files), "--method", "tmc-shapley", "--method-budget", 4,
            "--budget", "100"]  # fmt: skip
    code, first, err = run_cli(capsys, *base, "--checkpoint", ckpt)
    assert code == 0 and ckpt.exists(), err
    code, again, err = run_cli(capsys, *base, "--resume", ckpt)
    assert code == 0, err
    strip = [line for line in first.splitlines() if " s" not in line]
    assert strip == [line for line in again.splitlines() if " s" not in line]
