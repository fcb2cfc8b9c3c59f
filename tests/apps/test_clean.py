"""Repairing corrupt data: removal curves, the cut, review list, labels to fix, ``dataworth clean``.

Oracles: brute-force refits for every point of the curves, hand-made curves for the cut rule,
scikit-learn's ROC AUC for the detection score, a direct influence matrix for the labels-to-fix
aggregation, and known flipped labels for the end-to-end checks.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from threadpoolctl import threadpool_limits

from cli_runner import run_cli
from dataworth.api import value_many
from dataworth.apps.clean import (
    DEFAULT_METHOD_PARAMS,
    detection_auroc,
    detection_recall,
    labels_to_fix,
    review_list,
)
from dataworth.apps.removal import (
    CUT_WARNING,
    RemovalCurves,
    n_removed,
    removal_curves,
    suggest_cut,
)
from dataworth.data import Dataset
from dataworth.datasets import flip_labels, load_dataset
from dataworth.errors import DataworthError
from dataworth.experiments import noisy_valuation_comparison
from dataworth.influence import LinearInfluence, influence_matrix
from dataworth.result import ValuationResult


# ------------------------------------------------------------------------------------ data
def _standardized(name: str) -> Dataset:
    ds = load_dataset(name)
    std = ds.X.std(axis=0)
    return ds.replace(X=(ds.X - ds.X.mean(axis=0)) / np.where(std > 0, std, 1.0))


@pytest.fixture(scope="module")
def small() -> tuple[Dataset, Dataset]:
    """60 iris rows to train on, 40 to test on."""
    ds = _standardized("iris")
    idx = np.random.default_rng(0).permutation(ds.n_samples)
    return ds.take(np.sort(idx[:60])), ds.take(np.sort(idx[60:100]))


@pytest.fixture(scope="module")
def corrupted() -> dict[str, object]:
    """Breast cancer (standardised): train / valuation / test, 10% of training labels flipped."""
    ds = _standardized("breast_cancer")
    rest, test = ds.split(0.3, random_state=0)
    train, valid = rest.split(0.3, random_state=0)
    noisy, flipped = flip_labels(train, 0.1, random_state=0)
    methods = ["knn-shapley", "data-oob"]
    params = {m: DEFAULT_METHOD_PARAMS[m] for m in methods}
    values = value_many(methods, noisy, valid, params=params, random_state=0)
    return {"train": noisy, "valid": valid, "test": test, "flipped": flipped, "values": values}


def _accuracy(model: LogisticRegression, train: Dataset, rows: np.ndarray, test: Dataset) -> float:
    with threadpool_limits(1):  # tiny fits: BLAS threads only contend
        fitted = clone(model).fit(train.X[rows], train.y[rows])
    return float(np.mean(fitted.predict(test.X) == test.y))


# ------------------------------------------------------------------------------ removal curves
def test_n_removed_rounds_half_up() -> None:
    assert [n_removed(f, 20) for f in (0, 0.05, 0.1, 0.5)] == [0, 1, 2, 10]
    assert n_removed(0.05, 30) == 2  # 1.5 rounds up
    assert n_removed(0.1, 25) == 3  # 2.5 rounds up


def test_curves_match_brute_force_refits(small: tuple[Dataset, Dataset]) -> None:
    train, test = small
    model = LogisticRegression()
    values = np.random.default_rng(1).normal(size=train.n_samples)
    fractions = (0.0, 0.1, 0.3)
    curves = removal_curves(
        {"v": values}, train, test, model, fractions=fractions, n_random=3, random_state=7
    )
    assert curves.n_removed.tolist() == [0, 6, 18]
    low_order = np.argsort(values, kind="stable")
    high_order = np.argsort(-values, kind="stable")
    rng = np.random.default_rng(7)
    perms = [rng.permutation(train.n_samples) for _ in range(3)]
    for j, k in enumerate(curves.n_removed.tolist()):
        assert curves.lowest["v"][j] == _accuracy(model, train, low_order[k:], test)
        assert curves.highest["v"][j] == _accuracy(model, train, high_order[k:], test)
        for r in range(3):
            assert curves.random[r, j] == _accuracy(model, train, perms[r][k:], test)
    np.testing.assert_allclose(curves.random_mean, curves.random.mean(axis=0))
    np.testing.assert_allclose(curves.random_std, curves.random.std(axis=0, ddof=1))
    assert curves.valid_lowest == {}
    assert curves.metric == "accuracy" and curves.n_test == test.n_samples


def test_curves_ties_keep_index_order_and_accept_results(small: tuple[Dataset, Dataset]) -> None:
    train, test = small
    flat = ValuationResult(values=np.zeros(train.n_samples), method="flat")
    curves = removal_curves(flat, train, test, fractions=(0, 0.2), n_random=1, random_state=0)
    assert curves.methods == ["flat"]  # a single result is named by its method
    # all values tie: both orders remove the first rows by index
    assert curves.orders["flat"].tolist() == list(range(train.n_samples))
    np.testing.assert_array_equal(curves.lowest["flat"], curves.highest["flat"])
    k = curves.n_removed[1]
    expected = _accuracy(
        LogisticRegression(max_iter=1000), train, np.arange(k, train.n_samples), test
    )
    assert curves.lowest["flat"][1] == expected


def test_curves_score_valid_too_and_do_not_depend_on_n_jobs(small: tuple[Dataset, Dataset]) -> None:
    train, test = small
    valid = test.take(np.arange(20))
    values = {"a": np.arange(train.n_samples, dtype=float), "b": -np.arange(train.n_samples)}
    kwargs = {"valid": valid, "fractions": (0, 0.25), "n_random": 2, "random_state": 3}
    one = removal_curves(values, train, test, LogisticRegression(), n_jobs=1, **kwargs)
    with joblib.parallel_config(backend="threading"):  # the same code path without spawning
        two = removal_curves(values, train, test, LogisticRegression(), n_jobs=2, **kwargs)
    for m in ("a", "b"):
        np.testing.assert_array_equal(one.lowest[m], two.lowest[m])
        np.testing.assert_array_equal(one.valid_lowest[m], two.valid_lowest[m])
    np.testing.assert_array_equal(one.random, two.random)
    k = int(one.n_removed[1])
    fitted = LogisticRegression().fit(train.X[k:], train.y[k:])  # "a" removes rows 0..k-1
    assert one.valid_lowest["a"][1] == np.mean(fitted.predict(valid.X) == valid.y)
    # "a" lowest-first removes what "b" removes highest-first
    np.testing.assert_array_equal(one.lowest["a"], one.highest["b"])


def test_single_class_subset_scores_the_constant_predictor() -> None:
    X = np.arange(10, dtype=float).reshape(-1, 1)
    train = Dataset.from_arrays(X, [0] * 5 + [1] * 5)
    test = Dataset.from_arrays(X[:4], [1, 1, 1, 0])
    values = np.r_[np.zeros(5), np.ones(5)]  # lowest first removes all of class 0
    curves = removal_curves({"v": values}, train, test, fractions=(0, 0.5), n_random=1)
    assert curves.lowest["v"][1] == 0.75  # constant predictor of class 1


def test_curves_frames_and_dicts(small: tuple[Dataset, Dataset]) -> None:
    train, test = small
    curves = removal_curves(
        {"v": np.arange(60.0)}, train, test, valid=test, fractions=(0, 0.1), n_random=2
    )
    frame = curves.to_frame()
    assert list(frame.columns) == [
        "method",
        "order",
        "fraction",
        "n_removed",
        "split",
        "score",
        "std",
    ]
    # per fraction: v lowest/highest on test, v lowest on valid, random
    assert len(frame) == 2 * 4
    random_rows = frame[frame.order == "random"]
    np.testing.assert_allclose(random_rows.score, curves.random_mean)
    payload = json.loads(json.dumps(curves.to_dict()))
    assert payload["lowest_first"]["v"] == curves.lowest["v"].tolist()
    assert payload["split"].startswith("held-out test")


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"fractions": (0, 1.0)}, "[0, 1)"),
        ({"fractions": (0.2, 0.1)}, "increasing"),
        ({"fractions": ()}, "non-empty"),
        ({"n_random": 0}, "n_random"),
    ],
)
def test_curves_reject_bad_input(small: tuple[Dataset, Dataset], kwargs, needle) -> None:
    train, test = small
    with pytest.raises(DataworthError, match=needle.replace("[", r"\[").replace(")", r"\)")):
        removal_curves({"v": np.zeros(60)}, train, test, **kwargs)


def test_curves_reject_wrong_number_of_values(small: tuple[Dataset, Dataset]) -> None:
    train, test = small
    with pytest.raises(DataworthError, match=r"values of 'v'.*59 values for 60 rows"):
        removal_curves({"v": np.zeros(59)}, train, test)


# ------------------------------------------------------------------------------------ the cut
def _curves(valid: dict[str, list[float]], test: dict[str, list[float]]) -> RemovalCurves:
    f = np.array([0.0, 0.1, 0.2, 0.3])
    return RemovalCurves(
        fractions=f,
        n_removed=np.array([0, 1, 2, 3]),
        lowest={m: np.array(v) for m, v in test.items()},
        highest={m: np.zeros(4) for m in test},
        random=np.array([[0.5, 0.5, 0.4, 0.6], [0.5, 0.7, 0.6, 0.4]]),
        orders={m: np.array([4, 2, 0, 1, 3, 5, 6, 7, 8, 9]) for m in test},
        valid_lowest={m: np.array(v) for m, v in valid.items()},
        n_train=10,
    )


def test_cut_is_the_smallest_fraction_with_the_best_valuation_score() -> None:
    curves = _curves(
        valid={"a": [0.5, 0.6, 0.8, 0.8], "b": [0.5, 0.7, 0.7, 0.8]},
        test={"a": [0.50, 0.55, 0.65, 0.6], "b": [0.5, 0.9, 0.9, 0.9]},
    )
    cut = suggest_cut(curves)
    # best valuation score 0.8: "a" reaches it at 20%, "b" only at 30%; the held-out curve
    # (where "b" looks better) plays no part
    assert (cut.method, cut.fraction, cut.n_removed) == ("a", 0.2, 2)
    assert cut.removed.tolist() == [4, 2]
    assert cut.keep.tolist() == [0, 1, 3, 5, 6, 7, 8, 9]
    assert (cut.valid_score, cut.valid_baseline) == (0.8, 0.5)
    assert (cut.test_score, cut.test_baseline) == (0.65, 0.5)
    assert cut.random_mean == 0.5 and cut.random_std == pytest.approx(np.std([0.4, 0.6], ddof=1))
    assert cut.warning == CUT_WARNING and "overfits" in CUT_WARNING
    # tolerance prefers a smaller cut; ties in fraction go to the higher valuation score
    tolerant = suggest_cut(curves, tolerance=0.1)
    assert (tolerant.method, tolerant.fraction) == ("b", 0.1)
    assert suggest_cut(curves, method="b").fraction == 0.3
    assert suggest_cut(curves, max_fraction=0.1).method == "b"
    assert json.loads(json.dumps(cut.to_dict()))["removed"] == [4, 2]


def test_cut_keeps_everything_when_nothing_helps() -> None:
    curves = _curves(valid={"a": [0.9, 0.8, 0.9, 0.7]}, test={"a": [0.9, 0.8, 0.7, 0.6]})
    cut = suggest_cut(curves)
    assert cut.n_removed == 0 and cut.removed.size == 0 and cut.keep.size == 10


def test_cut_needs_valuation_curves(small: tuple[Dataset, Dataset]) -> None:
    train, test = small
    curves = removal_curves({"v": np.zeros(60)}, train, test, fractions=(0, 0.1), n_random=1)
    with pytest.raises(DataworthError, match="valid="):
        suggest_cut(curves)
    with pytest.raises(DataworthError, match="not on the curves"):
        suggest_cut(_curves(valid={"a": [0.5] * 4}, test={"a": [0.5] * 4}), method="zz")


# ------------------------------------------------------------------------------ detection
def test_auroc_matches_scikit_learn_with_ties() -> None:
    rng = np.random.default_rng(0)
    values = rng.integers(0, 5, size=200).astype(float)  # many ties
    corrupt = rng.choice(200, 30, replace=False)
    truth = np.zeros(200, dtype=bool)
    truth[corrupt] = True
    assert detection_auroc(values, corrupt) == pytest.approx(roc_auc_score(truth, -values))
    assert detection_auroc(values, truth) == pytest.approx(roc_auc_score(truth, -values))


def test_auroc_hand_cases_and_nan() -> None:
    assert detection_auroc([1.0, -1.0, 0.5, 2.0], [1]) == 1.0
    assert detection_auroc([1.0, -1.0, 0.5, 2.0], [3]) == 0.0
    # NaN is no evidence: every pair with a NaN row counts one half
    assert detection_auroc([np.nan, 0.0, 1.0], [0]) == 0.5
    assert detection_auroc([-1.0, np.nan, 0.0, 1.0], [0, 1]) == 0.75  # (1 + 1 + 1/2 + 1/2) / 4
    with pytest.raises(DataworthError, match="both corrupted and clean"):
        detection_auroc([1.0, 2.0], [])
    with pytest.raises(DataworthError, match=r"\[0, 2\)"):
        detection_auroc([1.0, 2.0], [5])


def test_auroc_nan_is_no_evidence_one_function_for_all() -> None:
    """One detection AUROC (demo, clean, attacks and poison use dataworth.ranking's). A NaN
    value is no evidence: each pair with a NaN row counts one half, which is the midpoint of
    ranking the NaN rows least suspicious and most suspicious; without NaN the AUROC is
    scikit-learn's ROC AUC of -value."""
    from sklearn.metrics import roc_auc_score

    import dataworth.apps.clean as clean
    import dataworth.demo as demo
    import dataworth.ranking as ranking

    assert demo.detection_auroc is clean.detection_auroc is ranking.detection_auroc
    v = np.array([0.3, np.nan, -0.2, 0.1, np.nan, 0.5, 0.0])
    bad = np.array([1, 2, 5])
    nan = np.isnan(v)
    least = detection_auroc(np.where(nan, 10.0, v), bad)  # NaN rows valued above all: kept
    most = detection_auroc(np.where(nan, -10.0, v), bad)  # NaN rows valued below all: removed
    assert least != most
    assert detection_auroc(v, bad) == pytest.approx((least + most) / 2)
    # by hand: 3 bad x 4 clean = 12 pairs; 2 x 3 finite pairs scored by value, 6 coin flips
    mask = np.isin(np.arange(v.size), bad)
    finite_auc = roc_auc_score(mask[~nan], -v[~nan])
    assert detection_auroc(v, bad) == pytest.approx((finite_auc * 6 + 0.5 * 6) / 12)
    filled = np.where(nan, 0.7, v)
    assert detection_auroc(filled, bad) == pytest.approx(roc_auc_score(mask, -filled))
    assert detection_auroc([np.nan, np.nan], [0]) == 0.5


def test_recall_hand_case() -> None:
    values = [0.3, -0.2, 0.1, 0.5, 0.0, 0.9, 0.8, 0.7, 0.6, 0.4]
    assert detection_recall(values, [1, 4], fraction=0.1) == 0.5  # lowest 1 row: row 1
    assert detection_recall(values, [1, 4], fraction=0.2) == 1.0


def test_known_corruption_lowest_beat_random(corrupted) -> None:
    train, valid, test = corrupted["train"], corrupted["valid"], corrupted["test"]
    values = corrupted["values"]
    for name, result in values.items():
        assert detection_auroc(result, corrupted["flipped"]) > 0.9, name
        assert result.metadata["seconds"] >= 0
    curves = removal_curves(
        values, train, test, valid=valid, fractions=(0, 0.1), n_random=5, random_state=0
    )
    for name in values:
        # removing the lowest-valued 10% beats random removal on the held-out split
        assert curves.lowest[name][1] > curves.random_mean[1], name
        # and removing the highest-valued 10% does worse than removing the lowest
        assert curves.highest[name][1] < curves.lowest[name][1], name


# ------------------------------------------------------------------------------ review list
def test_review_list_rows_and_out_of_fold_predictions(corrupted) -> None:
    train, values = corrupted["train"], corrupted["values"]["knn-shapley"]
    raw = train.X * 2.0 + 1.0  # features shown as given
    review = review_list(values, train, LogisticRegression(), k=4, features=raw, random_state=3)
    v = values.values
    assert review.positions[:4].tolist() == np.argsort(v, kind="stable")[:4].tolist()
    assert review.positions[4:].tolist() == np.argsort(-v, kind="stable")[:4].tolist()
    assert review.side.tolist() == ["lowest"] * 4 + ["highest"] * 4
    np.testing.assert_array_equal(review.given, train.y[review.positions])
    np.testing.assert_array_equal(review.features, raw[review.positions])
    oof = cross_val_predict(
        LogisticRegression(), train.X, train.y, cv=StratifiedKFold(5, shuffle=True, random_state=3)
    )
    np.testing.assert_array_equal(review.predicted, oof[review.positions])
    assert review.prediction == "5-fold out-of-fold"
    # the lowest-valued rows are flipped labels the model disagrees with
    flipped = set(corrupted["flipped"].tolist())
    assert all(p in flipped for p in review.positions[:4].tolist())
    assert (review.predicted[:4] != review.given[:4]).all()
    frame = review.to_frame()
    assert list(frame.columns[:5]) == ["side", "row", "value", "given", "predicted"]
    json.dumps(review.to_dict())


def test_review_list_lists_each_row_once() -> None:
    ds = Dataset.from_arrays(np.arange(10.0).reshape(5, 2), [0, 1, 0, 1, 0])
    review = review_list([5.0, 1.0, 3.0, 2.0, 4.0], ds, k=4)
    assert sorted(review.positions.tolist()) == [0, 1, 2, 3, 4]
    assert review.prediction == "2-fold out-of-fold"  # capped by the smallest class
    with pytest.raises(DataworthError, match="k must be"):
        review_list([1.0] * 5, ds, k=0)


# ------------------------------------------------------------------------------ labels to fix
def test_labels_to_fix_aggregation_matches_the_influence_matrix(corrupted) -> None:
    train, valid = corrupted["train"], corrupted["valid"]
    model = LogisticRegression()
    fix = labels_to_fix(train, valid, model, per_point=5)
    infl = LinearInfluence(model, train.X, train.y)
    wrong = np.flatnonzero(infl.model_.predict(valid.X) != valid.y)
    assert wrong.size > 0
    assert fix.misclassified.tolist() == valid.row_labels[wrong].tolist()
    matrix = influence_matrix(infl, valid.X[wrong], valid.y[wrong])
    score = np.maximum(matrix, 0).sum(axis=1)
    votes = np.zeros(train.n_samples, dtype=int)
    for j in range(wrong.size):
        for i in np.argsort(-matrix[:, j], kind="stable")[:5]:
            votes[i] += matrix[i, j] > 0
    expected = [i for i in np.argsort(-score, kind="stable") if score[i] > 0]
    assert fix.positions.tolist() == expected
    np.testing.assert_allclose(fix.scores, score[expected])
    np.testing.assert_array_equal(fix.votes, votes[expected])
    np.testing.assert_allclose(fix.share.sum(), 1.0)
    # the top of the list is mostly flipped labels (10% of the rows are flipped)
    top = fix.positions[:10]
    assert np.isin(top, corrupted["flipped"]).sum() >= 7
    json.dumps(fix.to_dict())
    assert len(labels_to_fix(train, valid, model, top=3)) == 3


def test_labels_to_fix_when_nothing_is_misclassified() -> None:
    X = np.array([[-2.0], [-1.0], [1.0], [2.0]])
    ds = Dataset.from_arrays(X, [0, 0, 1, 1])
    fix = labels_to_fix(ds, ds, LogisticRegression())
    assert len(fix) == 0 and fix.misclassified.size == 0


def test_labels_to_fix_needs_classes_and_a_linear_model() -> None:
    X = np.random.default_rng(0).normal(size=(20, 2))
    reg = Dataset.from_arrays(X, X[:, 0] + 0.5)
    with pytest.raises(DataworthError, match="class labels"):
        labels_to_fix(reg, reg, Ridge())
    cls = Dataset.from_arrays(X, (X[:, 0] > 0).astype(int))
    from sklearn.neighbors import KNeighborsClassifier

    with pytest.raises(DataworthError, match="does not support KNeighborsClassifier"):
        labels_to_fix(cls, cls, KNeighborsClassifier())


# ------------------------------------------------------------------------------ noisy valid
def test_noisy_valuation_set_moves_utility_methods_not_data_oob(corrupted) -> None:
    cmp = noisy_valuation_comparison(
        corrupted["train"],
        corrupted["valid"],
        corrupted["test"],
        methods=["knn-shapley", "data-oob"],
        params={"data-oob": {"budget": 50}},
        valid_noise=0.3,
        corrupted=corrupted["flipped"],
        n_random=2,
        random_state=0,
    )
    rows = {(r["method"], r["valid"]): r for r in cmp.rows}
    assert set(rows) == {(m, v) for m in ("knn-shapley", "data-oob") for v in ("clean", "noisy")}
    oob_clean, oob_noisy = rows["data-oob", "clean"], rows["data-oob", "noisy"]
    assert not oob_noisy["changed"] and oob_noisy["rank_correlation"] == 1.0
    assert oob_noisy["auroc"] == oob_clean["auroc"]
    assert oob_noisy["score_after_cut"] == oob_clean["score_after_cut"]
    knn_clean, knn_noisy = rows["knn-shapley", "clean"], rows["knn-shapley", "noisy"]
    assert knn_noisy["changed"] and knn_noisy["rank_correlation"] < 0.99
    assert knn_noisy["auroc"] < knn_clean["auroc"]
    assert cmp.noisy_valid_rows.size == round(0.3 * corrupted["valid"].n_samples)
    assert len(cmp.to_frame()) == 4
    json.dumps(cmp.to_dict())


def test_value_many_refuses_before_any_work(small: tuple[Dataset, Dataset]) -> None:
    train, test = small
    with pytest.raises(DataworthError, match="unknown method 'nope'"):
        value_many(["nope"], train, test)
    with pytest.raises(DataworthError, match="methods is empty"):
        value_many([], train, test)
    with pytest.raises(DataworthError, match="named more than once"):
        value_many(["loo", "loo"], train, test)
    with pytest.raises(DataworthError, match="params for tmc-shapley, which is not among"):
        value_many(["loo"], train, test, params={"tmc-shapley": {"budget": 3}})
    with pytest.raises(DataworthError, match="loo does not take parameter"):
        value_many(["knn-shapley", "loo"], train, test, params={"loo": {"k": 3}})


def test_value_many_is_value_per_method(small: tuple[Dataset, Dataset]) -> None:
    """One result per method, each equal to dataworth.value with the same settings; shared
    parameters go to the methods that take them (k to knn-shapley, not to loo)."""
    from dataworth import value

    train, test = small
    got = value_many(["knn-shapley", "loo"], train, test, random_state=3, k=3)
    assert list(got) == ["knn-shapley", "loo"]
    assert got["knn-shapley"].params["k"] == 3 and got["knn-shapley"].metadata["seconds"] >= 0
    np.testing.assert_array_equal(got["loo"].values, value("loo", train, test).values)
    again = value("knn-shapley", train, test, random_state=3, k=3)
    np.testing.assert_array_equal(got["knn-shapley"].values, again.values)


# ------------------------------------------------------------------------------------ CLI
def _write_csv(path: Path, ds: Dataset, y: np.ndarray, names: list[str]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*names, "label"])
        writer.writerows([*(f"{v:.6g}" for v in x), int(t)] for x, t in zip(ds.X, y, strict=True))


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    ds = load_dataset("breast_cancer")
    ds = ds.take(np.sort(np.random.default_rng(2).choice(ds.n_samples, 200, replace=False)))
    ds = Dataset.from_arrays(ds.X[:, :8], ds.y)
    noisy, flipped = flip_labels(ds, 0.1, random_state=2)
    names = [f"f{j}" for j in range(8)]
    root = tmp_path_factory.mktemp("clean")
    _write_csv(root / "all.csv", ds, noisy.y, names)
    _write_csv(root / "train.csv", ds.take(np.arange(120)), noisy.y[:120], names)
    _write_csv(root / "valid.csv", ds.take(np.arange(120, 160)), ds.y[120:160], names)
    _write_csv(root / "test.csv", ds.take(np.arange(160, 200)), ds.y[160:200], names)
    return {"root": root, "flipped": flipped}


def test_cli_splits_prints_every_section_and_writes_files(cli_files, capsys, tmp_path) -> None:
    root = cli_files["root"]
    cleaned, curves_csv, report = tmp_path / "c.csv", tmp_path / "curves.csv", tmp_path / "r.json"
    code, out, err = run_cli(
        capsys,
        "clean",
        root / "all.csv",
        "--target",
        "label",
        "--budget",
        "30",
        "--max-fraction",
        "0.2",
        "--n-random",
        "2",
        "--review",
        "3",
        "--fix",
        "4",
        "--out",
        cleaned,
        "--curves",
        curves_csv,
        "--json",
        report,
    )
    assert code == 0, err
    assert "Traceback" not in err
    assert "split" in err and "seed 0" in err  # the split is announced
    for needle in (
        "removal curves: held-out test accuracy",
        "knn-shapley",
        "data-oob",
        "mean ± sd (2 seeds)",
        "suggested cut:",
        "held-out test accuracy:",
        "warning: the cut was chosen on the valuation set",
        "review list: the 3 lowest- and 3 highest-valued rows",
        "labels to fix first:",
    ):
        assert needle in out, needle
    payload = json.loads(report.read_text())
    assert payload["curves"]["fractions"] == [0.0, 0.05, 0.1, 0.15, 0.2]
    removed = payload["cut"]["removed_rows"]
    # the cleaned file is the input minus exactly the removed rows, lines unchanged
    original = (root / "all.csv").read_text().splitlines()
    kept = cleaned.read_text().splitlines()
    assert kept[0] == original[0]
    assert kept[1:] == [line for i, line in enumerate(original[1:]) if i not in set(removed)]
    assert len(payload["review"]["rows"]) == 6
    assert len(payload["labels_to_fix"]["rows"]) <= 4
    header = curves_csv.read_text().splitlines()[0]
    assert header == "method,order,fraction,n_removed,split,score,std"


def test_cli_with_files_and_noisy_valuation_check(cli_files, capsys, tmp_path) -> None:
    root = cli_files["root"]
    report = tmp_path / "r.json"
    code, out, err = run_cli(
        capsys,
        "clean",
        root / "train.csv",
        "--target",
        "label",
        "--valid",
        root / "valid.csv",
        "--test",
        root / "test.csv",
        "--methods",
        "knn-shapley,data-oob",
        "--budget",
        "30",
        "--max-fraction",
        "0.1",
        "--n-random",
        "2",
        "--review",
        "2",
        "--fix",
        "0",
        "--valid-noise",
        "0.25",
        "--json",
        report,
    )
    assert code == 0, err
    assert "with seed" not in err and "split off" not in err  # nothing split off
    assert "data: 120 training rows valued, 40 valuation rows" in out
    assert "noisy valuation set: 25% of the valuation labels flipped" in out
    assert "labels to fix" not in out
    rows = json.loads(report.read_text())["noisy_valuation"]["rows"]
    oob = [r for r in rows if r["method"] == "data-oob" and r["valid"] == "noisy"]
    assert oob[0]["changed"] is False
    # lowest values point at the flipped rows of the training file (rows 0..119)
    values = np.array(json.loads(report.read_text())["values"]["knn-shapley"])
    flipped = cli_files["flipped"][cli_files["flipped"] < 120]
    assert detection_auroc(values, flipped) > 0.8


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--methods", "knn-shapley,nope"], "unknown method 'nope'"),
        (["--max-fraction", "1.5"], "--max-fraction"),
        (["--step", "0"], "--step"),
        (["--budget", "0"], "--budget"),
        (["--valid-noise", "2"], "--valid-noise"),
        (["--test", "missing.csv"], "file not found"),
    ],
)
def test_cli_user_errors_are_one_line(cli_files, capsys, extra, needle) -> None:
    root = cli_files["root"]
    code, _, err = run_cli(capsys, "clean", root / "all.csv", "--target", "label", *extra)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert needle in lines[0], lines[0]


def test_cli_turns_warnings_into_notes(cli_files, capsys) -> None:
    code, out, err = run_cli(
        capsys,
        "clean",
        cli_files["root"] / "all.csv",
        "--target",
        "label",
        "--methods",
        "data-oob",
        "--budget",
        "2",
        "--max-fraction",
        "0.1",
        "--n-random",
        "1",
        "--review",
        "0",
        "--fix",
        "0",
    )
    assert code == 0, err
    assert "review list" not in out
    lines = [line for line in err.splitlines() if line.strip()]
    assert all(line.startswith("note:") for line in lines), err
    assert any("never out of bag" in line for line in lines), err


def test_cli_regression_target(tmp_path, capsys) -> None:
    ds = load_dataset("diabetes")
    path = tmp_path / "diabetes.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*ds.feature_names, "progression"])
        rows = zip(ds.X[:150], ds.y[:150] / 7.0, strict=True)  # real-valued target
        writer.writerows([*map(float, x), float(t)] for x, t in rows)
    code, out, err = run_cli(
        capsys, "clean", path, "--target", "progression", "--budget", "20", "--n-random", "1"
    )
    assert code == 0, err
    assert "held-out test r2" in out and "data-oob" in out and "knn-shapley" not in out
    assert "labels to fix needs class labels" in err
    code, _, err = run_cli(capsys, "clean", path, "--target", "progression", "--valid-noise", "0.2")
    assert code == 2 and "needs class labels" in err


def test_cli_wrong_target(cli_files, capsys) -> None:
    code, _, err = run_cli(capsys, "clean", cli_files["root"] / "all.csv", "--target", "nope")
    assert code == 2 and err.startswith("error:") and "'nope'" in err
