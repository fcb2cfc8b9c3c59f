"""``dataworth.apps.explain`` and ``dataworth explain``: what carries value, and how stable it is.

Oracles: synthetic values where only one feature carries value, with a known direction; rules
re-evaluated by brute force on the rows; labels flipped in a known region and in a known bad
source (ground truth from the corruption); bootstrap values recomputed directly with
``dataworth.value`` and rank correlations recomputed with scipy.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from cli_runner import run_cli
from dataworth import value
from dataworth.apps.explain import (
    R2_AT,
    STABLE_AT,
    UNSTABLE_BELOW,
    bootstrap_draws,
    bootstrap_stability,
    collection_verdict,
    explain_values,
    value_by,
)
from dataworth.data import Dataset
from dataworth.errors import DataworthError
from dataworth.result import ValuationResult


# ------------------------------------------------------------------------------------ data
def only_x2_matters(sign: float, n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    return X, sign * X[:, 2] + 0.2 * rng.normal(size=n)


def flipped_region(seed: int = 0, n: int = 240) -> tuple[Dataset, Dataset, np.ndarray]:
    """Labels follow x0 > 0, except that they are flipped wherever x2 > 0.8 (ground truth)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] > 0).astype(int)
    bad = X[:, 2] > 0.8
    train = Dataset.from_arrays(X, np.where(bad, 1 - y, y), feature_names=["a", "b", "c"])
    Xv = rng.normal(size=(120, 3))
    valid = Dataset.from_arrays(Xv, (Xv[:, 0] > 0).astype(int), feature_names=["a", "b", "c"])
    return train, valid, bad


def noisy(n: int, seed: int, flip: float = 0.2) -> Dataset:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] > 0).astype(int)
    return Dataset.from_arrays(X, np.where(rng.random(n) < flip, 1 - y, y))


# --------------------------------------------------------------------------- explain_values
@pytest.mark.parametrize(("sign", "direction"), [(1.0, "+"), (-1.0, "-")])
def test_the_only_feature_carrying_value_comes_first_with_its_direction(sign, direction):
    X, values = only_x2_matters(sign)
    ex = explain_values(values, X, random_state=0)
    top = ex.features[0]
    assert top.name == "x2"
    assert top.direction == direction
    assert top.importance > 0.9
    assert math.copysign(1.0, top.spearman) == sign and abs(top.spearman) > 0.9
    assert math.copysign(1.0, top.coef) == sign and abs(top.coef) > 0.9
    assert top.spearman == pytest.approx(scipy.stats.spearmanr(X[:, 2], values).statistic)
    assert all(f.importance < 0.05 for f in ex.features[1:])
    assert ex.r2_tree_cv > 0.7 and ex.r2_linear > 0.9
    # the regions run along x2, in the direction of the effect
    assert all(name == "x2" for r in ex.regions for name, _, _ in r.conditions)
    best, worst = ex.regions[0], ex.regions[-1]
    assert (best.conditions[0][1] > worst.conditions[0][1]) == (sign > 0)


def test_regions_are_exactly_the_rows_their_rules_describe():
    X, values = only_x2_matters(1.0, n=200, seed=3)
    X = X[:, :3] + X[:, [2]] * np.array([0.0, 0.5, 0.0])  # give x1 some value too
    values = values + np.where(X[:, 0] > 1.0, -2.0, 0.0)
    ex = explain_values(values, X, max_depth=3, min_samples_leaf=7, random_state=0)
    seen = np.zeros(len(values), dtype=int)
    names = ["x0", "x1", "x2"]
    for region in ex.regions:
        inside = np.ones(len(values), dtype=bool)
        for name, lo, hi in region.conditions:  # brute force: evaluate the rule on every row
            col = X[:, names.index(name)]
            inside &= (col > lo) & (col <= hi)
        assert np.array_equal(np.flatnonzero(inside), np.sort(region.rows)), region.rule
        assert region.count == inside.sum() >= 7
        assert region.mean_value == pytest.approx(values[inside].mean())
        assert region.share_negative == pytest.approx(np.mean(values[inside] < 0))
        seen[inside] += 1
    assert np.all(seen == 1)  # the leaves partition the rows
    means = [r.mean_value for r in ex.regions]
    assert means == sorted(means, reverse=True)
    worst = {name: lo for name, lo, _ in ex.regions[-1].conditions}
    assert 0.8 < worst["x0"] <= 1.05  # the planted drop at x0 > 1


@pytest.mark.parametrize("scale", [1e100, 1e-300])
def test_features_at_any_magnitude_give_the_same_tree_with_scaled_thresholds(scale):
    """scikit-learn's trees work in float32 (1e100 overflows, 1e-300 vanishes): each column is
    scaled by a power of two before the tree, so only the thresholds change, by the scale."""
    X, values = only_x2_matters(1.0, n=120, seed=5)
    X = X[:, :3]
    big = X * np.array([1.0, 1.0, scale])
    a = explain_values(values, X, max_depth=3, random_state=0)
    b = explain_values(values, big, max_depth=3, random_state=0)
    assert [f.name for f in a.features] == [f.name for f in b.features]
    assert [f.importance for f in a.features] == pytest.approx([f.importance for f in b.features])
    assert len(a.regions) == len(b.regions) > 1
    for ra, rb in zip(a.regions, b.regions, strict=True):
        assert np.array_equal(ra.rows, rb.rows)
        for (na, lo_a, hi_a), (nb, lo_b, hi_b) in zip(ra.conditions, rb.conditions, strict=True):
            factor = scale if na == "x2" else 1.0
            assert na == nb
            assert lo_b == pytest.approx(lo_a * factor) and hi_b == pytest.approx(hi_a * factor)


def test_knn_shapley_values_point_at_the_region_with_flipped_labels():
    train, valid, bad = flipped_region()
    values = value("knn-shapley", train, valid, k=5)
    ex = explain_values(values, train, random_state=0)
    effects = {f.name: f for f in ex.features}
    assert effects["c"].direction == "-" and effects["c"].change < 0
    assert effects["c"].importance > 0.3
    assert effects["b"].direction == "none"  # b carries nothing
    # a (the label's own feature) matters by region: rows near the class boundary a = 0 are
    # worth less than rows far from it on either side
    assert effects["a"].direction == "non-monotone"
    worst = ex.regions[-1]
    bounds = {name: (lo, hi) for name, lo, hi in worst.conditions}
    assert "c" in bounds and 0.6 < bounds["c"][0] < 1.0  # the true edge is 0.8
    assert np.mean(bad[worst.rows]) > 0.8  # most of its rows really were flipped
    assert worst.mean_value < 0 < ex.regions[0].mean_value


def test_rows_without_a_value_are_left_out_and_announced():
    X, values = only_x2_matters(1.0, n=100)
    values[[4, 9]] = np.nan
    ex = explain_values(values, X, random_state=0)
    assert ex.n_rows == 98 and ex.n_dropped == 2
    assert "2 row(s)" in ex.notes[0]
    assert not np.isin([4, 9], np.concatenate([r.rows for r in ex.regions])).any()
    json.dumps(ex.to_dict())  # JSON-ready


def test_explain_values_refuses_bad_input():
    X, values = only_x2_matters(1.0, n=50)
    with pytest.raises(DataworthError, match="50 rows"):
        explain_values(values[:-1], X)
    group_result = ValuationResult(values=values, kind="group")
    with pytest.raises(DataworthError, match="group values"):
        explain_values(group_result, X)
    with pytest.raises(DataworthError, match="max_depth"):
        explain_values(values, X, max_depth=0)
    with pytest.raises(DataworthError, match="feature_names"):
        explain_values(values, X, feature_names=["a"])


# --------------------------------------------------------------------------------- value_by
def test_value_by_matches_hand_computation():
    values = np.array([1.0, 3.0, -1.0, -2.0, 0.5, np.nan])
    groups = np.array(["a", "a", "b", "b", "b", "b"])
    a, b = value_by(values, groups)
    assert (a.group, a.count, a.mean, a.sum, a.share_negative, a.n_missing) == (
        "a",
        2,
        2.0,
        4.0,
        0.0,
        0,
    )
    assert (b.group, b.count, b.sum, b.n_missing) == ("b", 3, -2.5, 1)
    assert b.mean == pytest.approx(-2.5 / 3) and b.share_negative == pytest.approx(2 / 3)
    expected = scipy.stats.mannwhitneyu([1.0, 3.0], [-1.0, -2.0, 0.5]).pvalue
    assert a.p_value == pytest.approx(expected) and b.p_value == pytest.approx(expected)


def test_value_by_puts_the_bad_source_last():
    rng = np.random.default_rng(1)
    n = 400
    X = rng.normal(size=(n, 2))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    source = np.array(["north", "south", "east", "west"])[rng.integers(0, 4, n)]
    flipped = (source == "east") & (rng.random(n) < 0.4)  # the known bad source
    train = Dataset.from_arrays(X, np.where(flipped, 1 - y, y), groups=source)
    Xv = rng.normal(size=(150, 2))
    valid = Dataset.from_arrays(Xv, (Xv[:, 0] + Xv[:, 1] > 0).astype(int))
    summary = value_by(value("knn-shapley", train, valid, k=5), train.groups)
    assert [s.group for s in summary][-1] == "east"
    east = summary[-1]
    assert east.share_negative == max(s.share_negative for s in summary)
    assert east.p_value < 1e-6
    assert all(s.p_value > 1e-3 or s.mean > east.mean for s in summary[:-1])
    assert sum(s.count for s in summary) == n


# ------------------------------------------------------------------------------ stability
def stability(method, train, valid, *, n_bootstrap=10, random_state=None, **params):
    """What `dataworth explain --bootstrap N` does: value each resample, then compare."""
    draws = bootstrap_draws(train.n_samples, n_bootstrap, random_state)
    values = [
        value(method, train.take(rows), valid, random_state=seed, **params)
        for rows, seed in zip(draws.rows, draws.seeds, strict=True)
    ]
    return bootstrap_stability(values, draws)


def test_bootstrap_values_and_correlations_equal_direct_computations():
    train, valid = noisy(80, seed=0), noisy(40, seed=1, flip=0.0)
    st = stability("knn-shapley", train, valid, n_bootstrap=4, random_state=7, k=3)
    for b, rows in enumerate(st.rows):
        assert np.array_equal(rows, np.unique(rows)) and 0.5 * 80 < rows.size < 0.75 * 80
        direct = value("knn-shapley", train.take(rows), valid, k=3).values
        assert np.array_equal(st.values[b, rows], direct)  # the resample's own valuation
        assert np.isnan(np.delete(st.values[b], rows)).all()
    pairs = []
    for a in range(4):
        for b in range(a + 1, 4):
            shared = np.intersect1d(st.rows[a], st.rows[b])
            assert st.shared[a, b] == shared.size
            rho = scipy.stats.spearmanr(st.values[a, shared], st.values[b, shared]).statistic
            assert st.pairwise[a, b] == pytest.approx(rho, abs=1e-12)
            pairs.append(rho)
    assert st.mean == pytest.approx(np.mean(pairs))
    assert st.std == pytest.approx(np.std(pairs))
    assert st.min == pytest.approx(min(pairs)) and st.max == pytest.approx(max(pairs))
    again = stability("knn-shapley", train, valid, n_bootstrap=4, random_state=7, k=3)
    assert np.array_equal(again.values, st.values, equal_nan=True)  # deterministic


def test_stable_on_structured_data_unstable_for_one_permutation_estimates():
    train, valid = noisy(120, seed=2), noisy(60, seed=3, flip=0.0)
    easy = stability("knn-shapley", train, valid, n_bootstrap=5, random_state=0, k=5)
    assert easy.stable and easy.mean >= STABLE_AT
    assert easy.verdict.startswith("stable")
    # one permutation of Monte Carlo Shapley: the ranks are mostly noise
    rough = stability("tmc-shapley", train, valid, n_bootstrap=4, random_state=0, budget=1)
    assert not rough.stable and rough.mean < UNSTABLE_BELOW
    assert rough.verdict.startswith("unstable")


def test_collection_needs_stable_values_that_the_features_predict():
    train, valid, _ = flipped_region(seed=4, n=200)
    st = stability("knn-shapley", train, valid, n_bootstrap=4, random_state=0, k=5)
    ex = explain_values(value("knn-shapley", train, valid, k=5), train, random_state=0)
    assert st.stable and ex.r2_tree_cv >= R2_AT
    assert collection_verdict(ex, st)[0]
    # random labels: KNN-Shapley values reproduce, yet no feature pattern describes them
    rng = np.random.default_rng(5)
    rand = Dataset.from_arrays(rng.normal(size=(200, 3)), rng.integers(0, 2, 200))
    rand_valid = Dataset.from_arrays(rng.normal(size=(100, 3)), rng.integers(0, 2, 100))
    st_r = stability("knn-shapley", rand, rand_valid, n_bootstrap=4, random_state=0)
    ex_r = explain_values(value("knn-shapley", rand, rand_valid), rand, random_state=0)
    ok, why = collection_verdict(ex_r, st_r)
    assert st_r.stable and ex_r.r2_tree_cv < R2_AT
    assert not ok and "do not predict" in why


def test_bootstrap_stability_refuses_bad_input():
    train, valid = noisy(30, seed=0), noisy(20, seed=1)
    with pytest.raises(DataworthError, match="n_bootstrap"):
        bootstrap_draws(train.n_samples, 1)
    draws = bootstrap_draws(train.n_samples, 2, random_state=0)
    one = value("knn-shapley", train.take(draws.rows[0]), valid)
    with pytest.raises(DataworthError, match="1 sets of values for 2 resamples"):
        bootstrap_stability([one], draws)
    with pytest.raises(DataworthError, match="one value per row"):
        bootstrap_stability([one, one.values[:3]], draws)
    with pytest.raises(DataworthError, match="bootstrap_draws"):
        bootstrap_stability([one, one], [draws.rows[0], draws.rows[0]])  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------- CLI
def _write(path: Path, X: np.ndarray, y: np.ndarray, source: np.ndarray | None = None) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["a", "b", "c", *(["source"] if source is not None else []), "label"])
        for i in range(len(y)):
            extra = [source[i]] if source is not None else []
            w.writerow([*map(float, X[i]), *extra, int(y[i])])
    return path


def test_cli_prints_features_regions_classes_groups_and_stability(tmp_path, capsys):
    train, valid, _ = flipped_region(seed=0, n=160)
    source = np.where(np.arange(160) % 2 == 0, "x", "y")
    tr = _write(tmp_path / "train.csv", train.X, train.y, source)
    va = _write(tmp_path / "valid.csv", valid.X, valid.y, np.full(valid.n_samples, "x"))
    out_json = tmp_path / "explain.json"
    code, out, err = run_cli(
        capsys, "explain", tr, "--target", "label", "--valid", va, "--group", "source",
        "--bootstrap", "3", "--k", "5", "--json", out_json,
    )  # fmt: skip
    assert code == 0, err
    for section in ("what carries value", "regions", "value by class", "value by group",
                    "stability:", "collect more like"):  # fmt: skip
        assert section in out
    listed = [line.split()[0] for line in out.split("std. coef\n")[1].splitlines()[:3]]
    assert sorted(listed) == ["a", "b", "c"] and listed[-1] == "b"
    payload = json.loads(out_json.read_text())
    # the JSON values are the direct valuation of the file's rows
    direct = value("knn-shapley", Dataset.from_file(tr, "label", group="source"),
                   Dataset.from_file(va, "label", group="source"), k=5, random_state=0)  # fmt: skip
    assert np.allclose([r["value"] for r in payload["rows"]], direct.values)
    groups = {g["group"]: g for g in payload["by_group"]}
    for s in value_by(direct, source):
        assert groups[s.group]["mean"] == pytest.approx(s.mean)
    assert payload["stability"]["n_bootstrap"] == 3
    assert [f["name"] for f in payload["explanation"]["features"]] == listed


def test_cli_user_errors_are_one_line(tmp_path, capsys):
    train, _valid, _ = flipped_region(seed=0, n=40)
    tr = _write(tmp_path / "train.csv", train.X, train.y)
    for args, needle in (
        (["--bootstrap", "1"], "--bootstrap"),
        (["--max-depth", "0"], "--max-depth"),
        (["--method", "nope"], "unknown method"),
        (["--group", "nope"], "group column"),
    ):
        code, _out, err = run_cli(capsys, "explain", tr, "--target", "label", *args)
        assert code == 2, err
        lines = [line for line in err.splitlines() if line.strip()]
        assert lines[-1].startswith("error:") and needle in lines[-1]
        assert sum(line.startswith("error:") for line in lines) == 1
        assert "Traceback" not in err
