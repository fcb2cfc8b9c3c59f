"""The marketplace of Agarwal, Dahleh & Sarkar (2019): split-robust values and the mechanism.

Oracles: real exact-Shapley valuations of a constructed wine market under attack (a copy, a
noisy copy, rows split across identities), the current replication-robust penalty as the
baseline, brute-force expected revenue over the price grid, a fine numerical integral for
Myerson's payment, the utility over a grid of bids, and exact cent arithmetic.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine

from cli_runner import run_cli
from dataworth import value
from dataworth.apps.market import (
    Marketplace,
    market_payouts,
    payouts,
    prepare_market,
    replica_similarity,
    simulate_market,
    split_revenue,
    split_robust_values,
)
from dataworth.data import Dataset
from dataworth.errors import DataworthError


# ------------------------------------------------------------------ split-robust values
@pytest.fixture(scope="module")
def wine() -> tuple[np.ndarray, np.ndarray, np.ndarray, Dataset]:
    """60 standardised wine rows from 4 providers (15 each) and a 59-row valuation set."""
    d = load_wine()
    X = (d.data - d.data.mean(0)) / d.data.std(0)
    idx = np.random.default_rng(0).permutation(len(X))
    valid = Dataset.from_arrays(X[idx[:59]], d.target[idx[:59]])
    rows = idx[59:119]
    groups = np.array(list("ABCD"), dtype="<U4")[np.arange(60) % 4]
    return X[rows], d.target[rows], groups, valid


def _shares(train: Dataset, valid: Dataset, who: list[str]) -> dict[str, Fraction]:
    """A's identities' share of 10,000 under plain Shapley, the current penalty and the new."""
    rows = prepare_market(train, robust=True)
    v = value("exact-shapley", rows.data, valid, by_group=True, n_jobs=1)
    tables = {
        "plain": payouts(v, 10000),
        "current": market_payouts(v, rows, 10000, robust=True, lam=1.0).table,
    }
    new = split_robust_values(v, rows.data, lam=1.0)
    tables["new"] = payouts(new.values, 10000, providers=new.providers)
    out = {}
    for mode, t in tables.items():
        names = t.providers.tolist()
        out[mode] = Fraction(sum(int(t.cents[names.index(w)]) for w in who), t.budget_cents)
    return out


def _copy(X: np.ndarray, y: np.ndarray, g: np.ndarray, noise: float) -> Dataset:
    a = np.flatnonzero(g == "A")
    Xc = X[a] + noise * np.random.default_rng(7).normal(size=X[a].shape)
    return Dataset.from_arrays(np.vstack([X, Xc]), np.r_[y, y[a]], groups=np.r_[g, ["A2"] * a.size])


def _split(X: np.ndarray, y: np.ndarray, g: np.ndarray, parts: int) -> Dataset:
    a = np.flatnonzero(g == "A")
    g = g.copy()
    for k in range(1, parts):
        g[a[k::parts]] = f"A{k + 1}"
    return Dataset.from_arrays(X, y, groups=g)


@pytest.fixture(scope="module")
def honest(wine: tuple[np.ndarray, np.ndarray, np.ndarray, Dataset]) -> dict[str, Fraction]:
    X, y, g, valid = wine
    return _shares(Dataset.from_arrays(X, y, groups=g), valid, ["A"])


@pytest.mark.parametrize("noise", [0.0, 0.2])
def test_replicas_lose_more_than_under_the_current_penalty(
    wine: tuple[np.ndarray, np.ndarray, np.ndarray, Dataset],
    honest: dict[str, Fraction],
    noise: float,
) -> None:
    """A enters again as A2 with a copy (exact, or with 20% noise): it loses share, and its gain
    is lower than under the current penalty."""
    X, y, g, valid = wine
    after = _shares(_copy(X, y, g, noise), valid, ["A", "A2"])
    assert after["plain"] > honest["plain"]  # the attack pays under plain Shapley
    gain_new = after["new"] - honest["new"]
    gain_current = after["current"] - honest["current"]
    assert gain_new < 0, float(gain_new)
    assert gain_new < gain_current, (float(gain_new), float(gain_current))


@pytest.mark.parametrize("parts", [2, 3])
def test_splitting_across_identities_no_longer_pays(
    wine: tuple[np.ndarray, np.ndarray, np.ndarray, Dataset],
    honest: dict[str, Fraction],
    parts: int,
) -> None:
    X, y, g, valid = wine
    who = ["A"] + [f"A{k + 1}" for k in range(1, parts)]
    after = _shares(_split(X, y, g, parts), valid, who)
    assert after["current"] > honest["current"]  # the current penalty does not stop it
    assert after["new"] <= honest["new"], (float(honest["new"]), float(after["new"]))


def test_split_robust_values_on_a_hand_built_market() -> None:
    """Two providers from one distribution share per row; a copy counts no rows."""
    X = np.array([[0.0], [1.0], [2.0], [3.0], [0.5], [1.5], [2.5], [3.5]])
    g = np.array(["a", "a", "a", "a", "b", "b", "c", "c"])
    r = split_robust_values([1.0, 3.0, 3.0], X, g, bandwidth=100.0, lam=0.0, ratio=0.1)
    assert np.allclose(r.rows, [4, 2, 2])  # no replicas at this ratio
    # one distribution: the pooled value 7 is shared per row (4 : 2 : 2)
    assert np.allclose(r.pooled, [3.5, 1.75, 1.75], atol=1e-3)
    assert np.isclose(r.values.sum(), 7.0, atol=1e-3)
    # a non-positive value keeps its value and stays out of the pool
    r = split_robust_values([-1.0, 3.0, 3.0], X, g, bandwidth=100.0, lam=0.0, ratio=0.1)
    assert r.values[0] == -1.0 and np.allclose(r.values[1:], 3.0, atol=1e-3)
    # an exact copy under a second name: its rows count half, and the penalty applies
    Xc = np.vstack([X, X[:4]])
    gc = np.r_[g, ["a2"] * 4]
    names, C = replica_similarity(Xc, gc, ratio=0.1)
    assert names.tolist() == ["a", "a2", "b", "c"] and C[0, 1] == 1.0
    r = split_robust_values([1.0, 1.0, 3.0, 3.0], Xc, gc, bandwidth=100.0, lam=1.0, ratio=0.1)
    assert np.allclose(r.rows, [2.0, 2.0, 2.0, 2.0])
    assert np.allclose(r.penalty, [np.exp(-1.0), np.exp(-1.0), 1.0, 1.0])


def test_split_robust_values_refuses_bad_input() -> None:
    X = np.zeros((4, 1))
    with pytest.raises(DataworthError, match="lam"):
        split_robust_values([1.0, 1.0], X, list("aabb"), lam=-1.0)
    with pytest.raises(DataworthError, match="groups"):
        split_robust_values([1.0, 1.0], X)
    with pytest.raises(DataworthError, match="bandwidth"):
        split_robust_values([1.0, 1.0], X, list("aabb"), bandwidth=0.0)
    with pytest.raises(DataworthError, match="2 providers"):
        split_robust_values([1.0], X, list("aabb"))


# ------------------------------------------------------------------ the mechanism
def _smooth_gain(X0: np.ndarray):  # type: ignore[no-untyped-def]
    """Gain 1 / (1 + mean |noise|): strictly decreasing in the gap."""

    def gain(Xd: np.ndarray, task: object) -> float:
        return 1.0 / (1.0 + float(np.abs(Xd - X0).mean()))

    return gain


def test_payment_is_myersons_integral() -> None:
    X = np.random.default_rng(0).normal(size=(30, 3))
    mk = Marketplace(X, _smooth_gain(X), price_grid=[0.4, 0.8, 1.2], noise_scale=2.0)
    for p in (0.4, 0.8, 1.2, 1.5):
        for b in (0.0, 0.3, 0.8, 1.1, 2.0):
            z = np.linspace(0.0, b, 20001)
            G = np.array([mk.gain_at(p, zz) for zz in z])
            integral = float(np.sum((G[1:] + G[:-1]) / 2 * np.diff(z))) if b > 0 else 0.0
            want = max(0.0, b * mk.gain_at(p, b) - integral)
            assert mk.payment(p, b) == pytest.approx(want, abs=1e-6)
            assert 0.0 <= mk.payment(p, b) <= b * mk.gain_at(p, b) + 1e-12


@pytest.mark.parametrize("true_value", [0.3, 0.7, 1.2])
def test_truthful_bid_maximises_utility(true_value: float) -> None:
    X = np.random.default_rng(1).normal(size=(30, 3))
    mk = Marketplace(X, _smooth_gain(X), price_grid=np.linspace(0.2, 1.6, 8), noise_scale=2.0)
    bids = np.round(np.linspace(0.0, 2.0, 41), 6)
    for price in mk.price_grid:
        util = np.array([mk.utility(true_value, b, price) for b in bids])
        best = util.max()
        assert mk.utility(true_value, true_value, price) >= best - 1e-12
        # strictly worse to shade far below the price when the price is above the value
        if price > true_value + 0.2:
            assert util[0] < best


def test_truthfulness_with_a_real_model(
    wine: tuple[np.ndarray, np.ndarray, np.ndarray, Dataset],
) -> None:
    """Gain = accuracy of logistic regression trained on the degraded features."""
    from sklearn.linear_model import LogisticRegression

    X, y, _, valid = wine

    def gain(Xd: np.ndarray, task: object) -> float:
        model = LogisticRegression(max_iter=300).fit(Xd, y)
        return float(model.score(valid.X, valid.y))

    mk = Marketplace(X, gain, price_grid=[0.5, 1.0, 1.5], noise_scale=4.0, gap_points=11)
    bids = np.round(np.linspace(0.0, 1.5, 31), 6)
    util = [mk.utility(0.6, b, 1.0) for b in bids]
    assert mk.utility(0.6, 0.6, 1.0) >= max(util) - 1e-12


def test_price_update_converges_to_the_revenue_maximising_price() -> None:
    X = np.random.default_rng(2).normal(size=(20, 2))
    grid = np.round(np.linspace(0.2, 2.0, 10), 6)
    mk = Marketplace(X, _smooth_gain(X), price_grid=grid, noise_scale=3.0, seed=3)
    support = np.array([0.2, 0.6, 1.0, 1.4])
    probs = np.array([0.4, 0.3, 0.2, 0.1])
    expected = np.array(
        [sum(q * mk.payment(p, b) for b, q in zip(support, probs, strict=True)) for p in grid]
    )
    best = grid[int(np.argmax(expected))]
    assert np.sort(expected)[-1] > np.sort(expected)[-2] + 1e-3  # a unique best price
    bids = np.random.default_rng(4).choice(support, size=3000, p=probs)
    sim = mk.simulate(bids, eta=1.0)
    assert sim.best_price() == best
    assert sim.weights[-1].max() > 0.9
    assert np.mean(sim.prices[-500:] == best) > 0.9
    assert np.all(sim.payments >= 0) and np.isclose(sim.payments.sum(), sim.total_revenue)


def test_revenue_split_sums_exactly_to_the_revenue() -> None:
    X = np.random.default_rng(5).normal(size=(10, 2))
    sim = simulate_market(
        X, np.random.default_rng(6).uniform(0, 3, 200), _smooth_gain(X), price_grid=[0.5, 1, 2]
    )
    cents = sim.revenue_cents()
    assert cents > 0
    rng = np.random.default_rng(7)
    for _ in range(200):
        v = rng.normal(size=rng.integers(1, 8))
        if not (v > 0).any():
            v[0] = 1.0
        c = int(rng.integers(0, 10**7)) if _ else cents
        t = split_revenue(v, c)
        assert int(t.cents.sum()) == c and (t.cents >= 0).all()
        assert t.cents.dtype.kind == "i"
        assert all(int(x) == 0 for x, vv in zip(t.cents, v, strict=True) if vv <= 0)


def test_mechanism_refuses_bad_input() -> None:
    X = np.zeros((3, 1))
    with pytest.raises(DataworthError, match="price_grid"):
        Marketplace(X, _smooth_gain(X), price_grid=[0.0, 1.0])
    with pytest.raises(DataworthError, match="bids"):
        simulate_market(X, [-1.0], _smooth_gain(X), price_grid=[1.0])
    with pytest.raises(DataworthError, match="revenue"):
        split_revenue([1.0], -5)


# ------------------------------------------------------------------ the CLI
@pytest.fixture(scope="module")
def buyer_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("marketplace")
    d = load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"})
    d = d.sample(frac=1.0, random_state=0).reset_index(drop=True)
    valid, sellers = d.iloc[:50], d.iloc[50:110].reset_index(drop=True)
    # provider IDs are exact text: "007" and "7" are two providers
    sellers = sellers.assign(provider=np.array(["007", "7", "e", "w"])[np.arange(60) % 4])
    paths = {k: root / f"{k}.csv" for k in ("sellers", "valid", "buyers", "bad", "other")}
    sellers.to_csv(paths["sellers"], index=False)
    valid.to_csv(paths["valid"], index=False)
    bids = [900, 200, 500, 700, 100, 600, 800, 300]
    names = ["001", "1", "c", "d", "e", "f", "g", "h"]
    pd.DataFrame({"buyer": names, "bid": bids}).to_csv(paths["buyers"], index=False)
    pd.DataFrame({"bid": [100, -5]}).to_csv(paths["bad"], index=False)
    pd.DataFrame({"bid": [100], "target": ["alcohol"]}).to_csv(paths["other"], index=False)
    return paths


POOLED = "pooled among providers with similar data distributions"
HEAD = ["buyer", "bid", "price", "gain", "payment"]


def _market(files: dict[str, Path], *extra: object) -> list[object]:
    return [
        "market",
        files["sellers"],
        "--target",
        "cultivar",
        "--group",
        "provider",
        "--valid",
        files["valid"],
        "--standardize",
        *extra,
    ]


def test_cli_buyers_prints_each_buyer_and_splits_the_revenue(
    capsys: pytest.CaptureFixture[str], buyer_files: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "pay.csv"
    code, stdout, err = run_cli(
        capsys, *_market(buyer_files, "--buyers", buyer_files["buyers"], "--out", out)
    )
    assert code == 0, err
    lines = stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.split()[:5] == HEAD)
    rows = [line.split() for line in lines[head + 1 : head + 10]]
    assert [r[0] for r in rows[:8]] == ["001", "1", "c", "d", "e", "f", "g", "h"]
    paid = [Decimal(r[4]) for r in rows[:8]]
    assert rows[8][0] == "total" and Decimal(rows[8][-1]) == sum(paid)
    revenue = sum(paid)
    assert revenue > 0
    for r in rows[:8]:  # the payment never exceeds bid x gain
        assert Decimal(r[4]) <= Decimal(r[1]) * Decimal(r[3]) + Decimal("0.01")
    with out.open() as fh:
        table = list(csv.reader(fh))
    assert table[0] == ["provider", "value", "payout"]
    assert sorted(r[0] for r in table[1:]) == ["007", "7", "e", "w"]
    assert sum(Decimal(r[2]) for r in table[1:]) == revenue
    assert f"revenue {revenue}" in stdout and POOLED in " ".join(stdout.split())


def test_cli_buyers_errors(
    capsys: pytest.CaptureFixture[str], buyer_files: dict[str, Path]
) -> None:
    cases = [
        ((), "either --budget"),
        (("--budget", "10", "--buyers", buyer_files["buyers"]), "either --budget"),
        (("--buyers", buyer_files["bad"]), "finite number >= 0"),
        (("--buyers", buyer_files["other"]), "Run one market per target"),
        (("--buyers", buyer_files["valid"]), "'bid' column"),
        (("--buyers", buyer_files["buyers"], "--prices", "0"), "--prices"),
    ]
    for extra, needle in cases:
        code, _out, err = run_cli(capsys, *_market(buyer_files, *extra))
        assert code != 0 and needle in err, (extra, err)
        assert "Traceback" not in err


def test_cli_budget_with_split_penalty(
    capsys: pytest.CaptureFixture[str], buyer_files: dict[str, Path]
) -> None:
    code, stdout, err = run_cli(
        capsys, *_market(buyer_files, "--budget", "1000", "--penalty", "split")
    )
    assert code == 0, err
    assert POOLED in " ".join(stdout.split()) and "1000.00" in stdout
