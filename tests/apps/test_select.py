"""Batch active learning: strategies, k-center greedy, the simulated loop, labels saved, CLI.

Oracles: a brute-force k-center; hand-computed margins and entropies from a model with known
probabilities; known mislabelled rows and a known junk region; a finite-difference refit for the
influence score; hand-computed crossings and intervals for ``labels_to_reach``; a spy strategy
that proves the loop never shows an unbought label. Data are small 2-D blobs and iris.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from cli_runner import run_cli
from dataworth import value
from dataworth.api import valuer
from dataworth.apps.active_loop import (
    LearningCurve,
    Oracle,
    active_learning_curve,
    compare_strategies,
    format_reach_table,
    labels_to_reach,
    summarize_curves,
)
from dataworth.apps.select import (
    STRATEGIES,
    EntropySampling,
    InfluenceSampling,
    Selection,
    ShapleyRegression,
    Strategy,
    UncertaintySampling,
    k_center_greedy,
    make_strategy,
    pseudo_label_influence,
    select_batch,
    within_class_ranks,
)
from dataworth.data import Dataset
from dataworth.errors import DataworthError

#: The paper's valuation of the labelled rows, as `dataworth select` passes it (--k 3).
KNN = valuer("knn-shapley", k=3)
#: Constructor parameters a strategy needs: shapley-regression takes its valuer.
NEEDS = {"shapley-regression": {"valuer": KNN}}


def built(name: str) -> Strategy:
    return make_strategy(name, **NEEDS.get(name, {}))


# ------------------------------------------------------------------------------------ data
def blobs_with_junk(seed: int, n_clean: int = 120, n_junk: int = 60) -> dict[str, Any]:
    """Two clean classes at x=-3 and x=+3; a junk cloud at (0, 6) with random labels.

    The junk sits on the decision boundary (x=0), so a model is uncertain there.
    """
    rng = np.random.default_rng(seed)
    y_clean = np.arange(n_clean) % 2
    X_clean = rng.normal(size=(n_clean, 2)) + np.column_stack([6.0 * y_clean - 3.0, 0 * y_clean])
    X_junk = rng.normal(scale=0.8, size=(n_junk, 2)) + np.array([0.0, 6.0])
    y_junk = rng.integers(2, size=n_junk)
    X = np.vstack([X_clean, X_junk])
    y = np.concatenate([y_clean, y_junk])
    junk = np.r_[np.zeros(n_clean, bool), np.ones(n_junk, bool)]
    order = rng.permutation(y.size)
    return {"X": X[order], "y": y[order], "junk": junk[order]}


class FixedProba(ClassifierMixin, BaseEstimator):
    """A 'model' whose class probabilities are the first columns of X (for exact oracles)."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> FixedProba:
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        P = np.asarray(X)[:, : self.classes_.size]
        return P / P.sum(axis=1, keepdims=True)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


# ------------------------------------------------------------------------- k-center greedy
def brute_k_center(X: np.ndarray, n: int, centers: np.ndarray) -> list[int]:
    chosen: list[int] = []
    for _ in range(n):
        best, best_d = -1, -1.0
        for i in range(X.shape[0]):
            if i in chosen:
                continue
            covering = [*centers, *X[chosen]]
            d = min(float(((X[i] - c) ** 2).sum()) for c in covering)
            if d > best_d:
                best, best_d = i, d
        chosen.append(best)
    return chosen


def test_k_center_greedy_matches_brute_force_and_any_chunk_size():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3))
    C = rng.normal(size=(5, 3))
    expected = brute_k_center(X, 8, C)
    for chunk in (1, 3, 1024):
        assert k_center_greedy(X, 8, centers=C, chunk_size=chunk).tolist() == expected


def test_k_center_greedy_never_repeats_duplicates_and_validates():
    X = np.zeros((5, 2))
    picked = k_center_greedy(X, 5, centers=np.zeros((1, 2)))
    assert sorted(picked.tolist()) == [0, 1, 2, 3, 4]
    assert k_center_greedy(X, 0).size == 0
    with pytest.raises(DataworthError, match="n must be"):
        k_center_greedy(X, 6)
    with pytest.raises(DataworthError, match="chunk_size"):
        k_center_greedy(X, 2, chunk_size=0)


# ------------------------------------------------------------------------------ strategies
def test_margin_and_entropy_scores_are_hand_computed():
    probs = np.array([[0.5, 0.3, 0.2], [0.34, 0.33, 0.33], [0.9, 0.05, 0.05], [0.45, 0.45, 0.1]])
    labeled = Dataset.from_arrays(np.full((3, 3), 1 / 3), [0, 1, 2])
    margin = UncertaintySampling().select(labeled, probs, 2, model=FixedProba())
    np.testing.assert_allclose(margin.scores, [0.8, 0.99, 0.15, 1.0])
    assert margin.indices.tolist() == [3, 1]
    ent = EntropySampling().select(labeled, probs, 4, model=FixedProba())
    expected = -(probs * np.log(probs)).sum(axis=1)
    np.testing.assert_allclose(ent.scores, expected)
    assert ent.indices.tolist() == np.argsort(-expected, kind="stable").tolist()


def test_random_is_reproducible_distinct_and_needs_no_model():
    lab = Dataset.from_arrays(np.zeros((2, 1)), [0, 0])  # one class is fine for random
    a = select_batch("random", lab, np.zeros((30, 1)), 10, random_state=3)
    b = select_batch("random", lab, np.zeros((30, 1)), 10, random_state=3)
    assert a.tolist() == b.tolist() and len(set(a.tolist())) == 10


def test_shapley_regression_values_are_the_librarys_knn_shapley_cross_fitted():
    d = blobs_with_junk(0)
    lab = Dataset.from_arrays(d["X"][:30], d["y"][:30])
    strat = ShapleyRegression(valuer=KNN, n_folds=2)
    got = strat.labeled_values(lab, random_state=7)
    # the same two folds, valued through the public API
    from dataworth.apps.select import _folds

    fold_a, fold_b = _folds(lab.y, 2, np.random.default_rng(7))
    expected = np.empty(30)
    for valued, valid in ((fold_b, fold_a), (fold_a, fold_b)):
        res = value("knn-shapley", lab.take(valued), lab.take(valid), k=3)
        expected[valued] = res.values
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_mislabelled_labelled_rows_get_the_lowest_values():
    rng = np.random.default_rng(0)
    y = np.arange(60) % 2
    X = rng.normal(scale=0.7, size=(60, 2)) + np.column_stack([4.0 * y - 2.0, 0 * y])
    flipped = [4, 17, 33]
    y_bad = y.copy()
    y_bad[flipped] = 1 - y_bad[flipped]
    strat = ShapleyRegression(valuer=KNN, n_folds=3)
    values = strat.labeled_values(Dataset.from_arrays(X, y_bad), 0)
    assert sorted(np.argsort(values)[:3].tolist()) == flipped


@pytest.mark.parametrize("acquisition", ["margin", None])
def test_shapley_regression_avoids_the_junk_region_that_uncertainty_is_drawn_to(acquisition):
    d = blobs_with_junk(1, n_clean=200, n_junk=100)
    lab_rows = np.arange(60)
    pool = np.arange(60, d["y"].size)
    lab = Dataset.from_arrays(d["X"][lab_rows], d["y"][lab_rows])
    assert d["junk"][lab_rows].sum() >= 10  # the labelled set saw the junk region
    junk_pool = d["junk"][pool]
    # k=5 as in the paper: on this 2-class toy (random labels in a cloud on the boundary) the
    # default k=3, chosen on 5-class digits and breast cancer, ranks labelled junk worse
    knn5 = valuer("knn-shapley", k=5)
    strat = ShapleyRegression(valuer=knn5, n_folds=5, acquisition=acquisition)
    sr = strat.select(lab, d["X"][pool], 15, random_state=0)
    unc = UncertaintySampling().select(lab, d["X"][pool], 15, random_state=0)
    assert junk_pool[sr.indices].sum() == 0
    assert junk_pool[unc.indices].mean() > 0.5
    # the batch comes from the kept rows, which are the top predicted values
    kept = sr.details["kept"]
    assert set(sr.indices.tolist()) <= set(kept.tolist())
    assert sr.scores[kept].min() >= np.delete(sr.scores, kept).max()
    assert kept.size == int(np.ceil(0.5 * pool.size))
    assert strat.uses_model == (acquisition is not None)
    if acquisition is None:
        plain = ShapleyRegression(valuer=knn5, n_folds=5, acquisition=None, diversity=False)
        top = plain.select(lab, d["X"][pool], 15, random_state=0)
        assert top.indices.tolist() == kept[:15].tolist()


def test_within_class_ranks_are_hand_computed():
    got = within_class_ranks([0.3, 0.1, 0.9, 0.2, 0.2, -1.0], ["a", "a", "b", "b", "b", "c"])
    np.testing.assert_allclose(got, [3 / 4, 1 / 4, 5 / 6, 2 / 6, 2 / 6, 1 / 2])
    with pytest.raises(DataworthError, match="same length"):
        within_class_ranks([0.1, 0.2], [0])


def test_shapley_regression_fits_within_class_ranks_and_keeps_a_rare_class():
    # two overlapping classes; class 1 is rare among the labelled rows, so its raw KNN-Shapley
    # values are low (its valuation points have neighbours of class 0) and a filter on raw
    # values drops its region of the pool; ranks within each class keep it
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(40, int), np.ones(6, int)]
    X = rng.normal(size=(46, 2)) + np.where(y[:, None] == 1, [1.5, 0.0], [-1.5, 0.0])
    pool_y = np.r_[np.zeros(100, int), np.ones(100, int)]
    pool = rng.normal(size=(200, 2)) + np.where(pool_y[:, None] == 1, [1.5, 0.0], [-1.5, 0.0])
    lab = Dataset.from_arrays(X, y)
    raw = ShapleyRegression(valuer=KNN, within_class=False).select(lab, pool, 10, random_state=0)
    ranked = ShapleyRegression(valuer=KNN).select(lab, pool, 10, random_state=0)
    values = ranked.details["labeled_values"]
    assert values[y == 1].mean() < values[y == 0].mean()
    np.testing.assert_allclose(ranked.details["targets"], within_class_ranks(values, y))
    np.testing.assert_array_equal(raw.details["targets"], values)
    assert (pool_y[raw.details["kept"]] == 1).sum() < 20
    assert (pool_y[ranked.details["kept"]] == 1).sum() >= 40
    assert ranked.score_name == "predicted within-class value rank"


def test_shapley_regression_acquisition_narrows_the_kept_rows_to_the_most_uncertain():
    d = blobs_with_junk(2, n_clean=150, n_junk=50)
    lab = Dataset.from_arrays(d["X"][:50], d["y"][:50])
    P = d["X"][50:]
    model = LogisticRegression(max_iter=1000)
    for acquisition, plain in (("margin", UncertaintySampling()), ("entropy", EntropySampling())):
        strat = ShapleyRegression(valuer=KNN, acquisition=acquisition, candidates=2)
        sel = strat.select(lab, P, 6, model=model, random_state=4)
        kept = sel.details["kept"]
        # the same kept rows, ranked by the plain strategy's score: the 12 most uncertain
        unc = plain.select(lab, P[kept], 12, model=model).indices
        candidates = kept[unc]
        assert sel.details["n_candidates"] == 12
        expected = candidates[brute_k_center(P[candidates], 6, lab.X)]
        assert sel.indices.tolist() == expected.tolist()
        top = ShapleyRegression(valuer=KNN, acquisition=acquisition, diversity=False)
        assert top.select(lab, P, 6, model=model, random_state=4).indices.tolist() == (
            kept[unc[:6]].tolist()
        )


def test_influence_score_matches_a_finite_difference_refit():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 2))
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.7, size=80) > 0).astype(int)
    Xtr, ytr, Xref, yref = X[:50], y[:50], X[50:], y[50:]
    pool = np.array([[2.0, 1.0], [-1.5, 2.0], [0.3, -2.0]])
    model = LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-12, max_iter=1000)
    scores = pseudo_label_influence(model, Xtr, ytr, Xref, yref, pool)
    base = model.fit(Xtr, ytr)
    pseudo = base.predict(pool)

    def ref_loss(weight: float, i: int) -> float:
        Xa = np.vstack([Xtr, pool[i : i + 1]])
        ya = np.concatenate([ytr, pseudo[i : i + 1]])
        w = np.r_[np.ones(50), weight]
        fitted = LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-12).fit(
            Xa, ya, sample_weight=w
        )
        p = fitted.predict_proba(Xref)[np.arange(yref.size), yref]
        return float(-np.log(p).mean())

    eps = 1e-3
    for i in range(pool.shape[0]):
        slope = (ref_loss(eps, i) - ref_loss(-eps, i)) / (2 * eps)
        # weight w in scikit-learn's objective is w / n in the mean-loss objective
        np.testing.assert_allclose(-slope * 50, scores[i], rtol=2e-3, atol=1e-6)


def test_influence_strategy_is_the_fold_mean_and_top_scores():
    d = blobs_with_junk(2)
    lab = Dataset.from_arrays(d["X"][:40], d["y"][:40])
    sel = InfluenceSampling(n_folds=2).select(lab, d["X"][40:], 5, random_state=0)
    assert sel.details["n_folds_used"] == 2
    assert sel.indices.tolist() == np.argsort(-sel.scores, kind="stable")[:5].tolist()


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_strategy_returns_distinct_pool_rows(name):
    d = blobs_with_junk(3)
    lab = Dataset.from_arrays(d["X"][:30], d["y"][:30])
    sel = built(name).select(lab, d["X"][30:], 7, random_state=0)
    assert isinstance(sel, Selection) and sel.scores.shape == (d["y"].size - 30,)
    assert len(set(sel.indices.tolist())) == 7
    assert sel.indices.min() >= 0 and sel.indices.max() < d["y"].size - 30
    again = select_batch(name, lab, d["X"][30:], 7, random_state=0, **NEEDS.get(name, {}))
    assert again.tolist() == sel.indices.tolist()


def test_bad_input_is_refused_with_clear_messages():
    lab = Dataset.from_arrays(np.zeros((4, 2)), [0, 0, 1, 1])
    pool = np.zeros((10, 2))
    with pytest.raises(DataworthError, match="unknown strategy"):
        select_batch("nope", lab, pool, 2)
    with pytest.raises(DataworthError, match="batch must be"):
        select_batch("random", lab, pool, 0)
    with pytest.raises(DataworthError, match="larger than the pool"):
        select_batch("random", lab, pool, 11)
    with pytest.raises(DataworthError, match="feature columns"):
        select_batch("random", lab, np.zeros((10, 3)), 2)
    with pytest.raises(DataworthError, match="two classes"):
        select_batch("uncertainty", lab.take([0, 1]), pool, 2)
    with pytest.raises(DataworthError, match="keep_fraction"):
        select_batch("shapley-regression", lab, pool, 2, keep_fraction=0.0)
    with pytest.raises(DataworthError, match="acquisition must be"):
        select_batch("shapley-regression", lab, pool, 2, acquisition="coreset")
    with pytest.raises(DataworthError, match="candidates must be"):
        select_batch("shapley-regression", lab, pool, 2, candidates=0)
    with pytest.raises(DataworthError, match="does not take"):
        make_strategy("random", k=3)
    with pytest.raises(DataworthError, match="valuer"):
        select_batch("shapley-regression", lab, pool, 2)
    with pytest.raises(DataworthError, match="classifier"):
        from sklearn.linear_model import Ridge

        select_batch("uncertainty", lab, pool, 2, model=Ridge())


# ---------------------------------------------------------------------------------- the loop
class Spy(Strategy):
    """Records what the loop shows it; picks the first rows of the pool it is given."""

    name = "spy"
    needs_model = False

    def __init__(self) -> None:
        self.seen: list[tuple[Dataset, np.ndarray]] = []

    def _select(self, labeled, X, batch, model, rng):
        self.seen.append((labeled, X.copy()))
        return Selection(np.arange(batch), np.zeros(X.shape[0]), self.name, "none")


def test_loop_reveals_only_bought_labels_and_scores_the_bought_rows():
    d = blobs_with_junk(4)
    X, y = d["X"], d["y"]
    spy = Spy()
    curve = active_learning_curve(
        spy, X[:100], y[:100], X[100:], y[100:], initial=10, batch=5, rounds=3, random_state=0
    )
    assert curve.n_labels.tolist() == [10, 15, 20, 25]
    assert len(set(curve.bought.tolist())) == 25
    for r, (labeled, pool_X) in enumerate(spy.seen):
        bought = curve.bought[: 10 + 5 * r]
        np.testing.assert_array_equal(labeled.X, X[:100][bought])
        np.testing.assert_array_equal(labeled.y, y[:100][bought])  # exactly the bought labels
        assert pool_X.shape[0] == 100 - bought.size  # the rest: features only
    for j, n in enumerate(curve.n_labels.tolist()):
        rows = curve.bought[:n]
        fitted = LogisticRegression(max_iter=1000, random_state=0).fit(X[rows], y[rows])
        assert curve.accuracy[j] == pytest.approx(np.mean(fitted.predict(X[100:]) == y[100:]))


def test_oracle_sells_each_label_once():
    oracle = Oracle([3, 4, 5])
    assert oracle.reveal([1]).tolist() == [4]
    with pytest.raises(DataworthError, match="only once"):
        oracle.reveal([1])
    with pytest.raises(DataworthError, match="lie in"):
        oracle.reveal([3])


def test_same_seed_same_initial_rows_and_reproducible_runs():
    d = blobs_with_junk(5)
    args = (d["X"][:120], d["y"][:120], d["X"][120:], d["y"][120:])
    curves = compare_strategies(
        ["random", "uncertainty"], *args, seeds=[0, 1], initial=8, batch=4, rounds=2
    )
    for a, b in zip(curves["random"], curves["uncertainty"], strict=True):
        assert a.bought[:8].tolist() == b.bought[:8].tolist()
    assert curves["random"][0].bought[:8].tolist() != curves["random"][1].bought[:8].tolist()
    again = active_learning_curve(
        "uncertainty", *args, initial=8, batch=4, rounds=2, random_state=1
    )
    assert again.bought.tolist() == curves["uncertainty"][1].bought.tolist()
    with pytest.raises(DataworthError, match="more than the pool"):
        active_learning_curve("random", *args, initial=100, batch=10, rounds=5)


def test_polluted_pool_shapley_regression_buys_less_junk_than_random_and_uncertainty():
    d = blobs_with_junk(6, n_clean=240, n_junk=160)
    X, y, junk = d["X"], d["y"], d["junk"]
    rng = np.random.default_rng(0)
    y_test = np.arange(200) % 2  # a clean test split
    X_test = rng.normal(size=(200, 2)) + np.column_stack([6.0 * y_test - 3.0, 0 * y_test])
    curves = compare_strategies(
        ["random", "uncertainty", built("shapley-regression")],
        X,
        y,
        X_test,
        y_test,
        seeds=[0, 1, 2],
        initial=30,
        batch=10,
        rounds=4,
    )
    share = {k: np.mean([junk[c.bought[30:]].mean() for c in v]) for k, v in curves.items()}
    assert share["shapley-regression"] < 0.1 < share["random"] < share["uncertainty"]


# ------------------------------------------------------------------------ labels to reach
def _curve(name: str, seed: int, acc: list[float], grid=(10, 20, 30)) -> LearningCurve:
    return LearningCurve(name, seed, np.array(grid), np.array(acc), np.arange(30), grid[0], 0.0)


def test_labels_to_reach_interpolates_pairs_and_marks_censoring():
    curves = {
        "random": [_curve("random", 0, [0.5, 0.7, 0.9]), _curve("random", 1, [0.5, 0.6, 0.7])],
        "smart": [_curve("smart", 0, [0.5, 0.9, 0.95]), _curve("smart", 1, [0.85, 0.9, 0.9])],
    }
    rows = labels_to_reach(curves, 0.8)
    rnd, smart = rows
    assert rnd.labels.tolist() == [25.0, float("inf")]
    assert rnd.n_reached == 1 and rnd.censored
    assert smart.labels.tolist() == [17.5, 10.0]
    np.testing.assert_allclose(smart.saved, [7.5, 20.0])  # random's miss counts as 30 labels
    half = stats.t.ppf(0.975, 1) * np.std([7.5, 20.0], ddof=1) / np.sqrt(2)
    assert smart.saved_mean == pytest.approx(13.75)
    assert smart.saved_low == pytest.approx(13.75 - half)
    table = format_reach_table(rows)
    assert ">=27.5" in table and "1/2" in table and "~+13.8" in table
    boot = labels_to_reach(curves, 0.8, method="bootstrap")[1]
    assert 7.5 <= boot.saved_low <= boot.saved_high <= 20.0
    assert rnd.to_dict()["labels"] == [25.0, None]


def test_labels_to_reach_and_summaries_refuse_mismatched_runs():
    curves = {"random": [_curve("random", 0, [0.5, 0.7, 0.9])], "x": [_curve("x", 1, [0.5] * 3)]}
    with pytest.raises(DataworthError, match="paired by seed"):
        labels_to_reach(curves, 0.8)
    with pytest.raises(DataworthError, match="baseline"):
        labels_to_reach({"x": curves["x"]}, 0.8)
    with pytest.raises(DataworthError, match="method"):
        labels_to_reach(curves, 0.8, method="normal")
    s = summarize_curves(
        {"random": [_curve("random", s, [0.5, 0.7, a]) for s, a in enumerate([0.8, 0.9, 1.0])]}
    )["random"]
    half = stats.t.ppf(0.975, 2) * 0.1 / np.sqrt(3)
    assert s.mean[-1] == pytest.approx(0.9) and s.high[-1] == pytest.approx(0.9 + half)


# ------------------------------------------------------------------------------------ CLI


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = blobs_with_junk(7, n_clean=160, n_junk=80)
    root = tmp_path_factory.mktemp("select")

    def write(name: str, X: np.ndarray, y: np.ndarray | None) -> Path:
        path = root / name
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["a", "b", "label"])
            for i, x in enumerate(X):
                w.writerow([repr(float(x[0])), repr(float(x[1])), "" if y is None else int(y[i])])
        return path

    X, y = d["X"], d["y"]
    return {
        "labeled": write("labeled.csv", X[:40], y[:40]),
        "pool": write("pool.csv", X[40:200], None),
        "oracle": write("oracle.csv", X[40:200], y[40:200]),
        "test": write("test.csv", X[200:], y[200:]),
        "X": X,
        "y": y,
    }


@pytest.mark.parametrize("strategy", ["shapley-regression", "uncertainty", "influence"])
def test_cli_select_prints_and_writes_the_api_choice(files, capsys, tmp_path, strategy):
    out = tmp_path / "next.csv"
    common = ["select", files["pool"], "--labeled", files["labeled"], "--target", "label"]
    options = f"--batch 6 --strategy {strategy} --seed 3 --out".split()
    code, stdout, err = run_cli(capsys, *common, *options, out)
    assert code == 0, err
    lab = Dataset.from_arrays(files["X"][:40], files["y"][:40])
    expected = built(strategy).select(
        lab,
        files["X"][40:200],
        6,
        model=LogisticRegression(max_iter=1000, random_state=3),
        random_state=3,
    )
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["index"]) for r in rows] == expected.indices.tolist()
    assert [int(r["rank"]) for r in rows] == list(range(1, 7))
    np.testing.assert_allclose([float(r["score"]) for r in rows], expected.scores[expected.indices])
    np.testing.assert_array_equal(
        [[float(r["a"]), float(r["b"])] for r in rows], files["X"][40:200][expected.indices]
    )
    assert f"6 of 160 rows of {files['pool']}" in stdout
    if strategy == "shapley-regression":
        assert "the 12 most uncertain of them (margin) went to k-center greedy" in stdout
    lines = stdout.splitlines()
    first = lines[next(i for i, s in enumerate(lines) if s.lstrip().startswith("rank")) + 1]
    assert first.split()[:2] == ["1", str(expected.indices[0])]
    assert "Traceback" not in err and "chose 6 rows" in err


def test_cli_select_user_errors_are_one_line(files, capsys, tmp_path):
    pool = ["select", files["pool"], "--labeled", files["labeled"], "--target", "label"]
    extra = tmp_path / "extra.csv"
    extra.write_text("a,b,c\n1,2,3\n4,5,6\n")
    cases = [
        ([*pool[:1], files["oracle"], *pool[2:]], "must be unlabelled"),
        ([*pool[:1], extra, *pool[2:]], "extra 'c'"),
        ([*pool, "--strategy", "best"], "unknown strategy"),
        (["select", files["pool"], "--target", "label"], "--labeled is required"),
        ([*pool, "--batch", 1000], "larger than the pool"),
        (["select", files["oracle"], "--target", "label", "--simulate"], "--test"),
    ]
    for args, needle in cases:
        code, _, err = run_cli(capsys, *args)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), err
        assert needle in lines[0]


def test_cli_select_accepts_a_pool_without_target_column_and_standardises(files, capsys, tmp_path):
    bare = tmp_path / "bare.csv"
    X = files["X"][40:200]
    bare.write_text(
        "b,a\n" + "".join(f"{float(x[1])!r},{float(x[0])!r}\n" for x in X)
    )  # columns reordered
    common = ["select", bare, "--labeled", files["labeled"], "--target", "label"]
    code, stdout, err = run_cli(capsys, *common, "--batch", 4, "--strategy", "entropy")
    assert code == 0, err
    lab = Dataset.from_arrays(files["X"][:40], files["y"][:40])
    expected = select_batch("entropy", lab, X, 4, model=LogisticRegression(max_iter=1000))
    shown = [line.split()[1] for line in stdout.splitlines()[3:7]]
    assert shown == [str(i) for i in expected.tolist()]
    code, _, err = run_cli(capsys, *common, "--batch", 4, "--standardize", "--k", 3)
    assert code == 0 and "note: features standardised" in err, err


def test_cli_simulate_prints_curves_and_labels_saved(files, capsys, tmp_path):
    out = tmp_path / "curves.csv"
    options = "--strategy uncertainty,shapley-regression --initial 20 --batch 10 --rounds 2"
    code, stdout, err = run_cli(
        capsys,
        *["select", files["oracle"], "--target", "label", "--simulate", "--test", files["test"]],
        *options.split(),
        *["--seeds", 2, "--out", out],
    )
    assert code == 0, err
    assert "random was added" in err
    assert "labels to reach accuracy" in stdout and "| shapley-regression |" in stdout
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 * 2 * 3  # strategies x seeds x measurements
    assert {r["n_labels"] for r in rows} == {"20", "30", "40"}
