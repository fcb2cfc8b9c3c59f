"""``dataworth.apps.debug`` and ``dataworth debug``: one class at a time, and one wrong row.

Oracles: the class-restricted values equal a direct valuation against the class's rows; the
KNN-Shapley closed form never gives a row of another class a positive value; planted
mislabelled copies of another class's rows (ground truth) are flagged; a hand-built 1-NN case for
the confident-learning check; influencers equal :mod:`dataworth.influence` and removing the most
harmful (helpful) row really lowers (raises) the test row's loss on refit.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.neighbors import KNeighborsClassifier

from cli_runner import run_cli
from dataworth import value
from dataworth.apps.debug import (
    RowTable,
    class_debug,
    class_valuation_set,
    explain_misclassified,
    misclassified_rows,
)
from dataworth.data import Dataset
from dataworth.errors import DataworthError
from dataworth.influence import LinearInfluence, influence_matrix


# ------------------------------------------------------------------------------------ data
def blobs(seed: int, n: int = 40, sep: float = 1.0, noise: float = 0.2) -> Dataset:
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal([sep, 0], 1, size=(n, 2)), rng.normal([-sep, 0], 1, size=(n, 2))])
    y = np.r_[np.zeros(n, int), np.ones(n, int)]
    flip = rng.random(2 * n) < noise
    return Dataset.from_arrays(X, np.where(flip, 1 - y, y), feature_names=["u", "v"])


def planted(seed: int, n_plant: int = 5, sep: float = 2.0) -> tuple[Dataset, Dataset, np.ndarray]:
    """Two classes; copies of the most typical class-1 rows, relabelled 0, are appended."""
    rng = np.random.default_rng(seed)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        X = np.vstack([rng.normal([sep, 0], 1, size=(n, 2)), rng.normal([-sep, 0], 1, size=(n, 2))])
        return X, np.r_[np.zeros(n, int), np.ones(n, int)]

    X, y = draw(40)
    Xv, yv = draw(60)
    ones = np.arange(40, 80)
    typical = ones[np.argsort(np.linalg.norm(X[ones] - [-sep, 0], axis=1))[:n_plant]]
    train = Dataset.from_arrays(np.vstack([X, X[typical]]), np.r_[y, np.zeros(n_plant, int)])
    return train, Dataset.from_arrays(Xv, yv), np.arange(80, 80 + n_plant)


# ---------------------------------------------------------------------------- class_debug
def debug_values(method, train, valid, cls, model=None, *, top=10, random_state=None, **params):
    """What `dataworth debug --class` does: value against the class's valuation rows, then
    class_debug on those values."""
    against = class_valuation_set(valid, cls)
    values = value(method, train, against, model=model, random_state=random_state, **params)
    return class_debug(values, train, valid, cls, model, top=top, random_state=random_state)


def test_class_values_are_the_valuation_against_that_class_only():
    train, valid = blobs(0), blobs(1)
    res = debug_values("knn-shapley", train, valid, 1, top=6, k=3)
    direct = value("knn-shapley", train, valid.take(np.flatnonzero(valid.y == 1)), k=3).values
    assert np.array_equal(res.values.values, direct)
    assert res.n_valid == int(np.sum(valid.y == 1))
    order = np.argsort(-direct, kind="stable")
    assert res.helpers["position"].tolist() == [i for i in order[:6] if direct[i] > 0]
    low = np.argsort(direct, kind="stable")
    assert res.hurters["position"].tolist() == [i for i in low[:6] if direct[i] < 0]
    assert np.array_equal(res.helpers["value"], direct[res.helpers["position"]])
    assert np.array_equal(res.helpers["u"], train.X[res.helpers["position"], 0])
    fitted = LogisticRegression(max_iter=1000).fit(train.X, train.y)
    class_rows = valid.y == 1
    assert res.recall == pytest.approx(np.mean(fitted.predict(valid.X[class_rows]) == 1))


def test_knn_shapley_never_values_a_row_of_another_class_positively():
    # closed form: for a valuation row of class c, every row labelled otherwise gets s <= 0
    train, valid = blobs(2, noise=0.3), blobs(3)
    for cls in (0, 1):
        res = debug_values("knn-shapley", train, valid, cls, top=80, k=5)
        other = train.y != cls
        assert res.values.values[other].max() <= 1e-12
        assert not np.isin(res.helpers["position"], np.flatnonzero(other)).any()
        flagged = res.confounders["position"]
        assert np.all(train.y[flagged] == cls)  # only "looks like" flags are possible


def test_planted_mislabelled_copies_are_flagged():
    hits = total = false_flags = 0
    for seed in range(3):
        train, valid, plant = planted(seed)
        res = debug_values("banzhaf", train, valid, 0, top=10, random_state=0, budget=1000)
        flagged = res.confounders["position"]
        reasons = dict(zip(flagged.tolist(), res.confounders["reason"], strict=True))
        hits += np.isin(plant, flagged).sum()
        total += plant.size
        labelled_c = [i for i in flagged if train.y[i] == 0]
        false_flags += len(set(labelled_c) - set(plant.tolist()))
        for i in plant[np.isin(plant, flagged)]:
            assert reasons[i].startswith("labelled 0 but looks like 1")
            assert res.looks_like[i] == 1 and res.p_label[i] < 0.5
        # bookkeeping: the flags are exactly the helpers labelled otherwise or looking otherwise
        helpers = res.helpers["position"]
        expected = [i for i in helpers if train.y[i] != 0 or res.looks_like[i] != 0]
        assert flagged.tolist() == expected
        for i in flagged:
            if train.y[i] != 0:
                assert reasons[i] == "labelled 1, not 0"
    assert hits >= 12 and total == 15  # measured: 13 of 15
    assert false_flags <= 1


def test_confident_learning_check_by_hand():
    # 1-NN probabilities are 0/1: every genuine row's neighbour shares its label, so the class
    # thresholds are 1 and only the row at 25.0 labelled 0 (amid class 1) looks like class 1
    X = np.r_[np.arange(10.0), np.arange(20.0, 30.0), 25.0].reshape(-1, 1)
    y = np.r_[np.zeros(10, int), np.ones(10, int), 0]
    train = Dataset.from_arrays(X, y)
    res = debug_values(
        "loo", train, train, 0, KNeighborsClassifier(n_neighbors=1), top=21, random_state=0
    )
    expected = y.copy()
    expected[20] = 1
    assert res.looks_like.tolist() == expected.tolist()
    assert res.p_label[20] == 0.0 and np.all(res.p_label[:20] == 1.0)


def test_class_is_matched_as_text_and_bad_input_is_refused():
    names = np.array(["cat", "dog"])
    ds = blobs(4)
    train = ds.replace(y=names[ds.y])
    res = debug_values("knn-shapley", train, train, "dog", top=3)
    assert res.cls == "dog"
    numeric = blobs(5)
    assert debug_values("knn-shapley", numeric, numeric, "1", top=3).cls == 1
    with pytest.raises(DataworthError, match=r"class .bird. does not occur.*cat, dog"):
        debug_values("knn-shapley", train, train, "bird")
    real = Dataset.from_arrays(ds.X, ds.X[:, 0])
    with pytest.raises(DataworthError, match="class labels"):
        class_debug(np.zeros(real.n_samples), real, real, 1)
    with pytest.raises(DataworthError, match="top"):
        class_debug(np.zeros(train.n_samples), train, train, "dog", top=0)
    with pytest.raises(DataworthError, match="one value per training row"):
        class_debug(value("loo", train.take([0, 1, 2, 40, 41]), train), train, train, "dog")


def test_row_table_is_frame_like():
    t = RowTable({"a": np.array([1, 2]), "b": np.array([0.5, np.nan])})
    assert len(t) == 2 and t.names == ["a", "b"]
    assert t.to_records()[0] == {"a": 1, "b": 0.5}
    frame = t.to_frame()
    assert list(frame.columns) == ["a", "b"] and frame["a"].tolist() == [1, 2]
    with pytest.raises(DataworthError):
        RowTable({"a": np.arange(2), "b": np.arange(3)})


# --------------------------------------------------------------------- one misclassified row
@pytest.fixture(scope="module")
def wrong_case() -> tuple[Dataset, Dataset, int]:
    train, test = blobs(6, n=50, noise=0.1), blobs(7, n=20, noise=0.0)
    wrong = misclassified_rows(train, test)
    fitted = LogisticRegression(max_iter=1000).fit(train.X, train.y)
    assert wrong.tolist() == np.flatnonzero(fitted.predict(test.X) != test.y).tolist()
    assert wrong.size > 0
    return train, test, int(wrong[0])


def _loss_without(train: Dataset, test: Dataset, row: int, drop: int) -> float:
    keep = np.delete(np.arange(train.n_samples), drop)
    model = LogisticRegression(max_iter=1000, tol=1e-10).fit(train.X[keep], train.y[keep])
    proba = model.predict_proba(test.X[row : row + 1])
    return float(log_loss(test.y[row : row + 1], proba, labels=[0, 1]))


def test_misclassified_influencers_match_the_influence_module_and_a_refit(wrong_case):
    train, test, row = wrong_case
    ex = explain_misclassified(train, test, row, top=4)
    assert ex.misclassified and ex.predicted != ex.label
    inf = LinearInfluence(LogisticRegression(max_iter=1000), train.X, train.y)
    scores = influence_matrix(inf, test.X[row : row + 1], test.y[row : row + 1])[:, 0]
    assert np.allclose(ex.influence, scores)
    order = np.argsort(scores, kind="stable")
    assert ex.harmful["position"].tolist() == order[::-1][:4].tolist()
    assert ex.helpful["position"].tolist() == order[:4].tolist()
    assert np.allclose(ex.harmful["loss_change_if_removed"], -scores[order[::-1][:4]] / 100)
    assert np.array_equal(ex.harmful["u"], train.X[order[::-1][:4], 0])
    # ground truth by refitting: removing the most harmful row lowers the loss, the most
    # helpful raises it
    base = _loss_without(train, test, row, drop=np.array([], dtype=int))
    assert _loss_without(train, test, row, ex.harmful["position"][0]) < base
    assert _loss_without(train, test, row, ex.helpful["position"][0]) > base
    json.dumps(ex.to_dict())


def test_explain_misclassified_refuses_bad_input(wrong_case):
    train, test, _ = wrong_case
    with pytest.raises(DataworthError, match="row"):
        explain_misclassified(train, test, test.n_samples)
    with pytest.raises(DataworthError, match="top"):
        explain_misclassified(train, test, 0, top=0)


# ------------------------------------------------------------------------------------- CLI
def _write(path: Path, ds: Dataset) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([*ds.feature_names, "label"])
        w.writerows([*map(float, x), int(t)] for x, t in zip(ds.X, ds.y, strict=True))
    return path


def test_cli_class_mode_lists_helpers_hurters_and_confounders(tmp_path, capsys):
    train, valid, plant = planted(0)
    tr = _write(tmp_path / "train.csv", train.replace(feature_names=("u", "v")))
    va = _write(tmp_path / "valid.csv", valid.replace(feature_names=("u", "v")))
    out_json = tmp_path / "debug.json"
    code, out, err = run_cli(
        capsys, "debug", tr, "--target", "label", "--class", "0", "--valid", va,
        "--budget", "1000", "--json", out_json,
    )  # fmt: skip
    assert code == 0, err
    assert "rows that most HELP class 0" in out and "rows that most HURT class 0" in out
    assert "possible confounders" in out
    payload = json.loads(out_json.read_text())
    api = debug_values(
        "banzhaf", Dataset.from_file(tr, "label"), Dataset.from_file(va, "label"), 0,
        LogisticRegression(max_iter=1000), top=10, random_state=0, budget=1000,
    )  # fmt: skip
    assert [r["position"] for r in payload["helpers"]] == api.helpers["position"].tolist()
    flagged = [r["row"] for r in payload["confounders"]]
    assert flagged == api.confounders["row"].tolist()
    assert np.isin(plant, flagged).sum() >= 3


def test_cli_row_mode_lists_wrong_rows_and_influencers(tmp_path, capsys, wrong_case):
    train, test, row = wrong_case
    tr, te = _write(tmp_path / "train.csv", train), _write(tmp_path / "test.csv", test)
    code, out, err = run_cli(capsys, "debug", tr, "--target", "label", "--test", te)
    assert code == 0, err
    assert f"add --row {row}" in out
    out_json = tmp_path / "row.json"
    code, out, err = run_cli(
        capsys, "debug", tr, "--target", "label", "--test", te, "--row", row, "--top", "3",
        "--json", out_json,
    )  # fmt: skip
    assert code == 0, err
    assert "MISCLASSIFIED" in out and "most RAISE" in out and "most LOWER" in out
    payload = json.loads(out_json.read_text())
    ex = explain_misclassified(train, test, row, top=3)
    assert [r["position"] for r in payload["harmful"]] == ex.harmful["position"].tolist()
    assert np.allclose(payload["influence"], ex.influence)


def test_cli_group_column_is_shown_not_used_as_a_feature(tmp_path, capsys):
    train, valid = blobs(9, n=20), blobs(10, n=15)
    for name, ds in (("train", train), ("valid", valid)):
        with (tmp_path / f"{name}.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["u", "v", "source", "label"])
            for i in range(ds.n_samples):
                w.writerow([*map(float, ds.X[i]), f"s{i % 3}", int(ds.y[i])])
    out_json = tmp_path / "g.json"
    code, out, err = run_cli(
        capsys, "debug", tmp_path / "train.csv", "--target", "label", "--class", "1",
        "--valid", tmp_path / "valid.csv", "--group", "source", "--method", "knn-shapley",
        "--json", out_json,
    )  # fmt: skip
    assert code == 0, err
    assert "source" in out.split("HELP")[1].splitlines()[1]
    helpers = json.loads(out_json.read_text())["helpers"]
    assert all(r["group"] == f"s{r['position'] % 3}" for r in helpers)
    direct = value("knn-shapley", train, valid.take(np.flatnonzero(valid.y == 1)))
    assert [r["value"] for r in helpers] == pytest.approx(direct.values[direct.top(len(helpers))])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ([], "either --class"),
        (["--class", "0", "--test", "X"], "either --class"),
        (["--class", "0", "--row", "1"], "--row needs --test"),
        (["--class", "7"], "class '7' does not occur"),
        (["--class", "0", "--top", "0"], "--top"),
    ],
)
def test_cli_user_errors_are_one_line(tmp_path, capsys, args, needle):
    tr = _write(tmp_path / "train.csv", blobs(8, n=15))
    code, _out, err = run_cli(capsys, "debug", tr, "--target", "label", *args)
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("error:") and needle in lines[-1], err
    assert sum(line.startswith("error:") for line in lines) == 1
    assert "Traceback" not in err
