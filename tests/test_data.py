"""Dataset construction, file loading, validation errors, splitting and the demo datasets."""

from __future__ import annotations

import csv
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dataworth.data import Dataset, read_table
from dataworth.datasets import (
    DATASETS,
    add_feature_noise,
    duplicate_rows,
    flip_labels,
    load_dataset,
)
from dataworth.errors import DataworthError


def write_csv(path: Path, header: list[str], rows: Sequence[Sequence[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "f1": [0.5, 1.5, 2.5, 3.5, 4.5, 5.5],
            "source": ["a", "a", "b", "b", "c", "c"],
            "f2": [1, 2, 3, 4, 5, 6],
            "label": ["cat", "dog", "cat", "dog", "cat", "dog"],
        },
        index=[f"r{i}" for i in range(6)],
    )


# --------------------------------------------------------------------------- construction
def test_from_arrays_defaults() -> None:
    X = np.arange(12.0).reshape(4, 3)
    ds = Dataset.from_arrays(X, [0, 1, 1, 0])
    assert (ds.n_samples, ds.n_features, len(ds)) == (4, 3, 4)
    assert ds.feature_names == ("x0", "x1", "x2")
    assert ds.row_labels.tolist() == [0, 1, 2, 3]
    assert ds.groups is None
    np.testing.assert_array_equal(ds.X, X)
    with pytest.raises(ValueError):
        ds.X[0, 0] = 1.0
    with pytest.raises(ValueError):
        ds.y[0] = 5


def test_from_arrays_copies_target() -> None:
    y = np.array([0, 1, 1])
    ds = Dataset.from_arrays(np.eye(3), y)
    y[0] = 7
    assert ds.y.tolist() == [0, 1, 1]


def test_from_arrays_shape_errors() -> None:
    with pytest.raises(DataworthError, match="one entry per row"):
        Dataset.from_arrays(np.eye(3), [0, 1])
    with pytest.raises(DataworthError, match="feature_names"):
        Dataset.from_arrays(np.eye(3), [0, 1, 1], feature_names=["a", "b"])
    with pytest.raises(DataworthError, match="groups"):
        Dataset.from_arrays(np.eye(3), [0, 1, 1], groups=[1, 2])
    with pytest.raises(DataworthError, match="numbers"):
        Dataset.from_arrays(np.array([["a", "b"]], dtype=object), [0])


def test_from_frame_keeps_index_and_excludes_target_and_group(frame) -> None:
    ds = Dataset.from_frame(frame, "label", group="source")
    assert ds.feature_names == ("f1", "f2")
    assert ds.target_name == "label"
    assert ds.row_labels.tolist() == [f"r{i}" for i in range(6)]
    assert ds.groups is not None and ds.groups.tolist() == ["a", "a", "b", "b", "c", "c"]
    np.testing.assert_array_equal(ds.X, frame[["f1", "f2"]].to_numpy(dtype=float))
    assert ds.y.tolist() == ["cat", "dog", "cat", "dog", "cat", "dog"]


def test_from_frame_without_group_uses_every_other_column(frame) -> None:
    ds = Dataset.from_frame(frame.drop(columns="source"), "label")
    assert ds.feature_names == ("f1", "f2")
    assert ds.groups is None


def test_from_csv(tmp_path, frame) -> None:
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    ds = Dataset.from_file(path, "label", group="source")
    assert ds.feature_names == ("f1", "f2")
    assert ds.row_labels.tolist() == list(range(6))
    assert ds.groups is not None and ds.groups.tolist() == ["a", "a", "b", "b", "c", "c"]
    np.testing.assert_array_equal(ds.X, frame[["f1", "f2"]].to_numpy(dtype=float))
    assert ds.y.tolist() == frame["label"].tolist()


def test_from_parquet(tmp_path, frame) -> None:
    path = tmp_path / "data.parquet"
    frame.to_parquet(path, index=False)
    ds = Dataset.from_file(path, "label", group="source")
    assert ds.feature_names == ("f1", "f2")
    assert ds.groups is not None and ds.groups.tolist() == ["a", "a", "b", "b", "c", "c"]
    np.testing.assert_array_equal(ds.X, frame[["f1", "f2"]].to_numpy(dtype=float))
    assert ds.y.tolist() == frame["label"].tolist()


def test_string_labels_kept(tmp_path) -> None:
    path = write_csv(tmp_path / "s.csv", ["x", "y"], [[1, "setosa"], [2, "virginica"], [3, "10"]])
    ds = Dataset.from_file(path, "y")
    assert ds.y.tolist() == ["setosa", "virginica", "10"]
    assert ds.y.dtype.kind == "U"


def test_numeric_labels_become_integers(tmp_path) -> None:
    path = write_csv(tmp_path / "n.csv", ["x", "y"], [[1, "1"], [2, "0"], [3, "2.0"]])
    ds = Dataset.from_file(path, "y")
    assert ds.y.dtype.kind == "i"
    assert ds.y.tolist() == [1, 0, 2]


def test_real_valued_target_kept(tmp_path) -> None:
    path = write_csv(tmp_path / "r.csv", ["x", "y"], [[1, "0.5"], [2, "-1.25"]])
    assert Dataset.from_file(path, "y").y.tolist() == [0.5, -1.25]


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
def test_large_integral_target_not_corrupted(tmp_path) -> None:
    path = write_csv(tmp_path / "big.csv", ["x", "y"], [[1, "1e20"], [2, "2e20"]])
    ds = Dataset.from_file(path, "y")
    assert ds.y.tolist() == [1e20, 2e20]


# --------------------------------------------------------------------------- file errors
def test_missing_file(tmp_path) -> None:
    with pytest.raises(DataworthError, match="not found"):
        Dataset.from_file(tmp_path / "nope.csv", "y")


def test_directory_instead_of_file(tmp_path) -> None:
    with pytest.raises(DataworthError, match="directory"):
        read_table(tmp_path)


def test_empty_file(tmp_path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataworthError, match="empty"):
        Dataset.from_file(path, "y")


def test_header_only(tmp_path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("a,b,y\n")
    with pytest.raises(DataworthError, match="no data rows"):
        Dataset.from_file(path, "y")


def test_ragged_row(tmp_path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("a,b,y\n1,2,0\n3,4\n")
    with pytest.raises(DataworthError, match="row 1 has 2 fields"):
        Dataset.from_file(path, "y")


def test_duplicate_column_names_csv(tmp_path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("a,a,y\n1,2,0\n")
    with pytest.raises(DataworthError, match="'a'"):
        Dataset.from_file(path, "y")


def test_duplicate_column_names_frame() -> None:
    df = pd.DataFrame([[1, 2, 0]], columns=["a", "a", "y"])
    with pytest.raises(DataworthError, match="duplicate"):
        Dataset.from_frame(df, "y")


def test_corrupt_parquet(tmp_path) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataworthError, match="Parquet"):
        Dataset.from_file(path, "y")


def test_not_utf8(tmp_path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("a,y\n\xe9t\xe9,1\n".encode("latin-1"))
    with pytest.raises(DataworthError, match="UTF-8"):
        Dataset.from_file(path, "y")


@pytest.mark.parametrize(
    ("cell", "pattern"),
    [
        ("", "missing"),
        ("nan", "missing"),
        ("NaN", "missing"),
        ("inf", "infinite"),
        ("-inf", "infinite"),
        ("1e999", "infinite"),
        ("abc", "not numeric"),
        ("1,5", "not numeric"),
    ],
)
def test_bad_feature_cell_names_column(tmp_path, cell, pattern) -> None:
    path = write_csv(
        tmp_path / "bad.csv", ["good", "weight kg", "y"], [[1, 2, 0], [3, cell, 1], [5, 6, 0]]
    )
    with pytest.raises(DataworthError, match=pattern) as info:
        Dataset.from_file(path, "y")
    assert "'weight kg'" in str(info.value)


@pytest.mark.parametrize(
    ("column", "pattern"),
    [
        ([1.0, np.nan, 3.0], "missing"),
        ([1.0, np.inf, 3.0], "infinite"),
        (["1", "x", "3"], "not numeric"),
    ],
)
def test_bad_feature_in_frame_names_column(column, pattern) -> None:
    df = pd.DataFrame({"ok": [1.0, 2.0, 3.0], "height": column, "y": [0, 1, 0]})
    with pytest.raises(DataworthError, match=pattern) as info:
        Dataset.from_frame(df, "y")
    assert "'height'" in str(info.value)


def test_bad_feature_in_arrays_names_column() -> None:
    X = np.array([[1.0, 2.0], [3.0, np.nan]])
    with pytest.raises(DataworthError, match="'b'"):
        Dataset.from_arrays(X, [0, 1], feature_names=["a", "b"])


def test_unknown_target_column(tmp_path) -> None:
    path = write_csv(tmp_path / "t.csv", ["a", "label"], [[1, 0], [2, 1]])
    with pytest.raises(DataworthError, match="'target'") as info:
        Dataset.from_file(path, "target")
    assert "'label'" in str(info.value)  # lists what is available


def test_unknown_group_column(frame) -> None:
    with pytest.raises(DataworthError, match="'batch'"):
        Dataset.from_frame(frame, "label", group="batch")


@pytest.mark.parametrize("values", [["0", "", "1"], ["cat", "", "dog"], ["0", "nan", "1"]])
def test_missing_target_value(tmp_path, values) -> None:
    path = write_csv(tmp_path / "t.csv", ["a", "outcome"], [[i, v] for i, v in enumerate(values)])
    with pytest.raises(DataworthError, match="'outcome'") as info:
        Dataset.from_file(path, "outcome")
    assert "missing" in str(info.value)


def test_missing_target_in_frame() -> None:
    df = pd.DataFrame({"a": [1.0, 2.0], "y": ["u", None]})
    with pytest.raises(DataworthError, match="'y'"):
        Dataset.from_frame(df, "y")


def test_no_feature_columns(tmp_path) -> None:
    path = write_csv(tmp_path / "t.csv", ["y"], [[0], [1]])
    with pytest.raises(DataworthError, match="no feature"):
        Dataset.from_file(path, "y")


# --------------------------------------------------------------------------- take / split
def test_take_keeps_names_labels_groups(frame) -> None:
    ds = Dataset.from_frame(frame, "label", group="source")
    sub = ds.take([4, 1])
    assert sub.row_labels.tolist() == ["r4", "r1"]
    assert sub.groups is not None and sub.groups.tolist() == ["c", "a"]
    assert sub.y.tolist() == ["cat", "dog"]
    assert sub.feature_names == ds.feature_names
    np.testing.assert_array_equal(sub.X, ds.X[[4, 1]])


@pytest.mark.parametrize(("n", "fraction"), [(10, 0.2), (150, 0.25), (7, 0.5), (3, 0.1)])
def test_split_sizes_disjoint_sorted(n, fraction) -> None:
    rng = np.random.default_rng(0)
    ds = Dataset.from_arrays(rng.normal(size=(n, 2)), rng.normal(size=n))
    train, valid = ds.split(fraction, random_state=1)
    n_valid = math.ceil(fraction * n)
    assert (len(train), len(valid)) == (n - n_valid, n_valid)
    tr, va = train.row_labels.tolist(), valid.row_labels.tolist()
    assert tr == sorted(tr) and va == sorted(va)
    assert not set(tr) & set(va)
    assert sorted(tr + va) == list(range(n))
    np.testing.assert_array_equal(train.X, ds.X[tr])


def test_split_is_stratified() -> None:
    y = np.repeat(["a", "b", "c"], [60, 30, 10])
    ds = Dataset.from_arrays(np.arange(100.0)[:, None], y)
    for seed in range(5):
        _, valid = ds.split(0.2, random_state=seed)
        labels, counts = np.unique(valid.y, return_counts=True)
        assert dict(zip(labels.tolist(), counts.tolist(), strict=True)) == {"a": 12, "b": 6, "c": 2}


def test_split_reproducible_and_seed_dependent() -> None:
    ds = load_dataset("iris")
    a = ds.split(0.3, random_state=3)[1].row_labels
    b = ds.split(0.3, random_state=3)[1].row_labels
    c = ds.split(0.3, random_state=4)[1].row_labels
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_split_bad_fraction(fraction) -> None:
    with pytest.raises(DataworthError, match="valid_fraction"):
        load_dataset("iris").split(fraction)


def test_split_too_small() -> None:
    with pytest.raises(DataworthError, match="cannot split"):
        Dataset.from_arrays([[1.0]], [0]).split(0.5)


# --------------------------------------------------------------------------- demo datasets
EXPECTED_SHAPES = {
    "breast_cancer": (569, 30),
    "digits": (1797, 64),
    "wine": (178, 13),
    "iris": (150, 4),
    "diabetes": (442, 10),
}


def test_every_dataset_listed() -> None:
    assert set(DATASETS) == set(EXPECTED_SHAPES)


@pytest.mark.parametrize("name", sorted(EXPECTED_SHAPES))
def test_load_dataset(name) -> None:
    ds = load_dataset(name)
    assert (ds.n_samples, ds.n_features) == EXPECTED_SHAPES[name]
    assert len(ds.feature_names) == ds.n_features
    assert np.all(np.isfinite(ds.X))
    if name == "diabetes":
        assert ds.y.dtype.kind == "f"
    else:
        assert ds.y.dtype.kind in "iu"


def test_load_dataset_name_variants() -> None:
    assert load_dataset("Breast-Cancer").n_samples == 569


def test_unknown_dataset() -> None:
    with pytest.raises(DataworthError, match="'mnist'") as info:
        load_dataset("mnist")
    assert "iris" in str(info.value)


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.25, 0.5, 1.0])
@pytest.mark.parametrize("name", ["iris", "breast_cancer"])
def test_flip_labels(name, fraction) -> None:
    ds = load_dataset(name)
    noisy, flipped = flip_labels(ds, fraction, random_state=7)
    assert flipped.size == round(fraction * ds.n_samples)
    assert flipped.tolist() == sorted(set(flipped.tolist()))
    assert np.all(noisy.y[flipped] != ds.y[flipped])
    assert set(np.unique(noisy.y)) <= set(np.unique(ds.y))
    untouched = np.setdiff1d(np.arange(ds.n_samples), flipped)
    np.testing.assert_array_equal(noisy.y[untouched], ds.y[untouched])
    np.testing.assert_array_equal(noisy.X, ds.X)


def test_flip_labels_string_classes() -> None:
    ds = Dataset.from_arrays(np.zeros((20, 1)), ["yes", "no"] * 10)
    noisy, flipped = flip_labels(ds, 0.5, random_state=0)
    assert flipped.size == 10
    assert np.all(noisy.y[flipped] != ds.y[flipped])


def test_flip_labels_errors() -> None:
    with pytest.raises(DataworthError, match="two classes"):
        flip_labels(Dataset.from_arrays(np.zeros((3, 1)), [1, 1, 1]), 0.5)
    with pytest.raises(DataworthError, match="fraction"):
        flip_labels(load_dataset("iris"), 1.5)


def test_add_feature_noise() -> None:
    ds = load_dataset("wine")
    noisy, idx = add_feature_noise(ds, 0.2, random_state=1)
    assert idx.size == round(0.2 * ds.n_samples)
    untouched = np.setdiff1d(np.arange(ds.n_samples), idx)
    np.testing.assert_array_equal(noisy.X[untouched], ds.X[untouched])
    assert np.all(np.any(noisy.X[idx] != ds.X[idx], axis=1))
    np.testing.assert_array_equal(noisy.y, ds.y)
    with pytest.raises(DataworthError):
        add_feature_noise(ds, -0.1)


def test_duplicate_rows() -> None:
    X = np.arange(40.0).reshape(20, 2)  # unique rows
    ds = Dataset.from_arrays(X, np.arange(20) % 3, groups=np.arange(20) // 5)
    out, copies = duplicate_rows(ds, 0.25, random_state=3)
    k = round(0.25 * 20)
    assert copies.tolist() == list(range(20, 20 + k))
    assert out.n_samples == 20 + k
    np.testing.assert_array_equal(out.X[:20], X)
    for c in copies:
        original = np.flatnonzero(np.all(out.X[c] == X, axis=1))
        assert original.size == 1
        assert out.y[c] == ds.y[original[0]]
        assert out.groups is not None and out.groups[c] == ds.groups[original[0]]
    assert len(set(out.row_labels.tolist())) == out.n_samples


def test_duplicate_rows_string_labels(frame) -> None:
    ds = Dataset.from_frame(frame, "label", group="source")
    out, copies = duplicate_rows(ds, 0.5, random_state=0)
    assert copies.size == 3
    assert out.row_labels[:6].tolist() == ds.row_labels.tolist()
    assert len(set(out.row_labels.tolist())) == out.n_samples


def test_csv_nul_in_number_cell_is_not_a_number(tmp_path) -> None:
    path = write_csv(tmp_path / "nul.csv", ["x0", "target"], [["1\x00", 0], ["2", 1]])
    with pytest.raises(DataworthError, match="NUL"):
        Dataset.from_file(path, "target")


# --------------------------------------------------------------------------- property tests
# Magnitudes beyond LARGEST_VALUE (1e150) are refused: see test_huge_values_are_refused.
finite = st.floats(-1e150, 1e150, allow_nan=False, allow_infinity=False, width=64)
# y magnitudes stay below 2**53: larger integral floats hit the int64 overflow bug pinned by
# test_large_integral_target_not_corrupted.
targets = st.one_of(
    st.integers(-(10**6), 10**6).map(float),
    st.floats(-1e15, 1e15, allow_nan=False, allow_infinity=False),
)


@st.composite
def tables(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n_rows = draw(st.integers(1, 6))
    n_feat = draw(st.integers(1, 3))
    X = np.array(
        [[draw(finite) for _ in range(n_feat)] for _ in range(n_rows)], dtype=np.float64
    ).reshape(n_rows, n_feat)
    y = np.array([draw(targets) for _ in range(n_rows)], dtype=np.float64)
    return X, y


def _table_to_csv(path: Path, X: np.ndarray, y: np.ndarray) -> None:
    header = [f"x{j}" for j in range(X.shape[1])] + ["target"]
    rows = [[repr(float(v)) for v in row] + [repr(float(t))] for row, t in zip(X, y, strict=True)]
    write_csv(path, header, rows)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_csv_round_trip(table) -> None:
    X, y = table
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.csv"
        _table_to_csv(path, X, y)
        ds = Dataset.from_file(path, "target")
    np.testing.assert_array_equal(ds.X, X)
    assert ds.y.tolist() == y.tolist()
    assert ds.feature_names == tuple(f"x{j}" for j in range(X.shape[1]))


def _parses_to_finite(text: str) -> bool:
    try:
        return math.isfinite(float(text.strip()))
    except ValueError:
        return False


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tables(),
    # NUL is left out here: its bug is pinned by test_csv_nul_in_number_cell_is_not_a_number.
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12),
    st.data(),
)
def test_csv_garbage_feature_cell(table, garbage, data) -> None:
    assume(not _parses_to_finite(garbage))
    X, y = table
    row = data.draw(st.integers(0, X.shape[0] - 1))
    col = data.draw(st.integers(0, X.shape[1] - 1))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.csv"
        header = [f"x{j}" for j in range(X.shape[1])] + ["target"]
        rows: list[list[str]] = [
            [repr(float(v)) for v in r] + [repr(float(t))] for r, t in zip(X, y, strict=True)
        ]
        rows[row][col] = garbage
        write_csv(path, header, rows)
        with pytest.raises(DataworthError) as info:
            Dataset.from_file(path, "target")
    assert f"x{col}" in str(info.value)


def test_labels_with_nul_characters_are_refused() -> None:
    """numpy's text arrays drop trailing NULs, so "a\\x00" would silently become "a" (found by the
    long hostile-input run on Parquet files)."""
    with pytest.raises(DataworthError, match=r"holds a NUL character \(first at row 1\)"):
        Dataset.from_columns(
            {"f": np.array([0.0, 1.0, 2.0]), "y": np.array(["a", "a\x00", "b"], dtype=object)},
            "y",
        )
