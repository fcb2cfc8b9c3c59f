"""ValuationResult: ranking, immutability, persistence without pickle, exact merging."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dataworth.engine.moments import Moments
from dataworth.errors import DataworthError
from dataworth.result import ValuationResult

# --------------------------------------------------------------------------- ranking


def test_docstring_example() -> None:
    r = ValuationResult(values=np.array([0.2, -0.1, 0.5]), method="demo")
    assert r.top(1).tolist() == [2]
    assert r.bottom(1).tolist() == [1]
    assert r.rank().tolist() == [2, 3, 1]


def test_rank_ties_stable_and_nan_last() -> None:
    r = ValuationResult(values=np.array([1.0, 3.0, 3.0, np.nan, 0.0, 1.0]))
    assert r.rank().tolist() == [3, 1, 2, 6, 5, 4]
    assert r.top(3).tolist() == [1, 2, 0]
    assert r.top(6).tolist() == [1, 2, 0, 5, 4, 3]
    assert r.bottom(6).tolist() == [4, 0, 5, 1, 2, 3]
    assert r.bottom(2).tolist() == [4, 0]


def test_all_nan_ranked_by_position() -> None:
    r = ValuationResult(values=np.full(3, np.nan))
    assert r.rank().tolist() == [1, 2, 3]
    assert r.top(2).tolist() == [0, 1]
    assert r.bottom(2).tolist() == [0, 1]


def test_top_bottom_k_bounds() -> None:
    r = ValuationResult(values=np.array([1.0, 2.0]))
    assert r.top(0).tolist() == []
    assert r.top(10).tolist() == [1, 0]
    assert r.bottom(np.int64(1)).tolist() == [0]
    for bad in (-1, 1.5, "2"):
        with pytest.raises(DataworthError, match="k must"):
            r.top(bad)
        with pytest.raises(DataworthError, match="k must"):
            r.bottom(bad)


# --------------------------------------------------------------------------- construction


def test_defaults_and_validation() -> None:
    r = ValuationResult(values=[1.0, 2.0])
    assert np.isnan(r.stderr).all()
    assert r.counts.tolist() == [0, 0]
    assert r.labels.tolist() == [0, 1]
    assert len(r) == 2
    with pytest.raises(DataworthError, match="one-dimensional"):
        ValuationResult(values=np.zeros((2, 2)))
    with pytest.raises(DataworthError, match="stderr"):
        ValuationResult(values=[1.0, 2.0], stderr=[0.1])
    with pytest.raises(DataworthError, match="labels"):
        ValuationResult(values=[1.0, 2.0], labels=["a", "b", "c"])
    with pytest.raises(DataworthError, match="kind"):
        ValuationResult(values=[1.0], kind="column")


def test_immutable() -> None:
    source = np.array([1.0, 2.0])
    r = ValuationResult(values=source, stderr=[0.1, 0.2], counts=[1, 2], labels=["a", "b"])
    source[0] = 99.0
    assert r.values[0] == 1.0
    for arr in (r.values, r.stderr, r.counts, r.labels):
        with pytest.raises(ValueError):
            arr[0] = arr[1]
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.values = np.zeros(2)


def test_to_frame() -> None:
    r = ValuationResult(values=[1.0, 2.0], stderr=[0.1, 0.2], counts=[3, 4], labels=["a", "b"])
    df = r.to_frame()
    assert list(df.columns) == ["label", "value", "stderr", "count"]
    assert df["label"].tolist() == ["a", "b"]
    assert df["value"].tolist() == [1.0, 2.0]
    assert df["count"].tolist() == [3, 4]


# --------------------------------------------------------------------------- persistence


def _state(rng: np.random.Generator, m: int = 5, n: int = 3) -> dict[str, Moments]:
    mask = rng.random((m, n)) < 0.7
    return {"marginal": Moments.from_samples(rng.normal(size=(m, n)), mask)}


def assert_same(a: ValuationResult, b: ValuationResult, *, labels: bool = True) -> None:
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.stderr, b.stderr)
    np.testing.assert_array_equal(a.counts, b.counts)
    if labels:
        assert a.labels.tolist() == b.labels.tolist()
    assert (a.method, a.kind, a.estimator) == (b.method, b.kind, b.estimator)
    assert a.params == b.params
    assert a.metadata == b.metadata
    assert (a.state is None) == (b.state is None)
    if a.state is not None and b.state is not None:
        assert a.state.keys() == b.state.keys()
        for key in a.state:
            for part in ("count", "mean", "m2"):
                np.testing.assert_array_equal(
                    getattr(a.state[key], part), getattr(b.state[key], part)
                )


def _readable_without_pickle(path) -> None:
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            assert data[key].dtype != object


@pytest.mark.parametrize(
    "labels",
    [
        np.array([10, 20, 30]),
        np.array(["a", "bb", "ccc"]),
        np.array(["a", 2, None], dtype=object),
        np.array(["x", "y", "z"], dtype=object),
        np.array([True, False, True]),
    ],
    ids=["int", "str", "mixed-object", "str-object", "bool"],
)
@pytest.mark.parametrize("with_state", [False, True])
def test_save_load_round_trip(tmp_path, labels, with_state) -> None:
    rng = np.random.default_rng(0)
    if with_state:
        r = ValuationResult.from_state(
            _state(rng),
            "mean",
            labels=labels,
            method="permutation-shapley",
            params={"budget": 5, "random_state": 1},
            metadata={"n_updates": 5, "note": "ok"},
        )
    else:
        r = ValuationResult(
            values=[0.5, np.nan, -np.inf],
            stderr=[0.0, np.nan, 1.0],
            counts=[1, 0, 2],
            labels=labels,
            method="loo",
            params={"model": "logreg"},
            kind="group",
            metadata={"fingerprint": "abc", "np": np.int64(3)},
        )
    path = r.save(tmp_path / "sub" / "r.npz")
    _readable_without_pickle(path)
    back = ValuationResult.load(path)
    expected_labels = labels if labels.dtype != object else labels.astype(str)
    assert back.labels.tolist() == expected_labels.tolist()
    assert back.labels.dtype != object
    np.testing.assert_array_equal(back.values, r.values)
    np.testing.assert_array_equal(back.stderr, r.stderr)
    assert back.metadata == json.loads(json.dumps(r.metadata, default=int))
    if with_state:
        assert_same(r, back, labels=False)
    else:
        assert back.state is None and back.kind == "group"
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.npz"]  # no temp files left


def test_load_rejects_other_files(tmp_path) -> None:
    other = tmp_path / "other.npz"
    np.savez(other, values=np.zeros(2), header=np.array(json.dumps({"format": "x"})))
    with pytest.raises(DataworthError, match="not a dataworth result"):
        ValuationResult.load(other)
    with pytest.raises(DataworthError):
        ValuationResult.load(tmp_path / "missing.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"definitely not numpy")
    with pytest.raises(DataworthError):
        ValuationResult.load(garbage)


@pytest.mark.parametrize("damage", ["truncate", "empty", "flip-byte"])
def test_load_damaged_file(tmp_path, damage) -> None:
    path = ValuationResult(values=np.arange(50.0), method="m").save(tmp_path / "r.npz")
    raw = path.read_bytes()
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "empty":
        raw = b""
    else:
        raw = raw[:200] + bytes([raw[200] ^ 0xFF]) + raw[201:]
    path.write_bytes(raw)
    with pytest.raises(DataworthError):
        ValuationResult.load(path)


label_arrays = st.one_of(
    st.lists(st.integers(-(2**62), 2**62), unique=True),
    st.lists(
        st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=6),
        unique=True,
    ),
)
json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**9), 10**9),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)


@st.composite
def results(draw: st.DrawFn) -> ValuationResult:
    labels = draw(label_arrays)
    n = len(labels)
    floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
    values = draw(hnp.arrays(np.float64, (n,), elements=floats))
    stderr = draw(hnp.arrays(np.float64, (n,), elements=floats))
    counts = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, 2**40)))
    state = None
    estimator = None
    if draw(st.booleans()):
        moments = hnp.arrays(np.float64, (n,), elements=st.floats(-1e6, 1e6))
        m2 = np.where(counts > 0, np.abs(draw(moments)), 0.0)  # no samples, no spread
        state = {"marginal": Moments(counts, draw(moments), m2)}
        estimator = "mean"
    return ValuationResult(
        values=values,
        stderr=stderr,
        counts=counts,
        labels=np.array(labels),
        method=draw(st.text(max_size=12)),
        params=draw(st.dictionaries(st.text(max_size=5), json_values, max_size=3)),
        metadata=draw(st.dictionaries(st.text(max_size=5), json_values, max_size=3)),
        kind=draw(st.sampled_from(["row", "group"])),
        state=state,
        estimator=estimator,
    )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(results())
def test_round_trip_property(tmp_path, result) -> None:
    path = result.save(tmp_path / "r.npz")
    assert_same(result, ValuationResult.load(path))


# --------------------------------------------------------------------------- merging


def _partial(samples, mask, **fields) -> ValuationResult:
    fields.setdefault("method", "permutation-shapley")
    return ValuationResult.from_state(
        {"marginal": Moments.from_samples(samples, mask)}, "mean", **fields
    )


def test_add_equals_single_run() -> None:
    rng = np.random.default_rng(3)
    samples = rng.normal(size=(40, 6))
    mask = rng.random((40, 6)) < 0.8
    a = _partial(
        samples[:15],
        mask[:15],
        params={"budget": 15, "random_state": 1, "tol": 0.1},
        metadata={"n_updates": 15},
    )
    b = _partial(
        samples[15:],
        mask[15:],
        params={"budget": 25, "random_state": 2, "tol": 0.1},
        metadata={"n_updates": 25, "n_failures": 2},
    )
    whole = _partial(samples, mask)
    merged = a + b
    np.testing.assert_allclose(merged.values, whole.values, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(merged.stderr, whole.stderr, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(merged.counts, whole.counts)
    assert merged.state is not None and whole.state is not None
    np.testing.assert_allclose(
        merged.state["marginal"].m2, whole.state["marginal"].m2, rtol=1e-12, atol=1e-12
    )
    assert merged.metadata["n_updates"] == 40
    assert merged.metadata["n_failures"] == 2
    # inputs untouched
    assert a.metadata["n_updates"] == 15
    assert a.counts.sum() == mask[:15].sum()


def test_add_difference_estimator() -> None:
    rng = np.random.default_rng(4)
    ind = rng.random((60, 4)) < 0.5
    u = rng.normal(size=60)

    def part(sl: slice) -> ValuationResult:
        state = {
            "in": Moments.from_indicator(ind[sl], u[sl]),
            "out": Moments.from_indicator(~ind[sl], u[sl]),
        }
        return ValuationResult.from_state(state, "difference", method="msr-banzhaf")

    merged = part(slice(0, 20)) + part(slice(20, 60))
    whole = part(slice(0, 60))
    np.testing.assert_allclose(merged.values, whole.values, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(merged.stderr, whole.stderr, rtol=1e-10)


def test_add_refusals() -> None:
    rng = np.random.default_rng(5)
    s, m = rng.normal(size=(4, 3)), np.ones((4, 3), dtype=bool)
    base = _partial(s, m, params={"tol": 0.1})
    with pytest.raises(DataworthError, match="merge"):
        base + _partial(s, m, method="tmc-shapley", params={"tol": 0.1})
    with pytest.raises(DataworthError, match="parameters"):
        base + _partial(s, m, params={"tol": 0.2})
    with pytest.raises(DataworthError, match="state"):
        base + ValuationResult(
            values=np.zeros(3), method="permutation-shapley", params={"tol": 0.1}
        )
    with pytest.raises(DataworthError, match="state"):
        ValuationResult(values=np.zeros(3), method="exact-shapley") + ValuationResult(
            values=np.zeros(3), method="exact-shapley"
        )
    with pytest.raises(DataworthError, match="players"):
        base + _partial(s, m, params={"tol": 0.1}, labels=["a", "b", "c"])
    with pytest.raises(DataworthError, match="merge"):
        base + _partial(s, m, params={"tol": 0.1}, kind="group")
    with pytest.raises(TypeError):
        base + 1


# --------------------------------------------------------------------------- values files
def test_values_csv_round_trip_and_stream(tmp_path) -> None:
    import io

    r = ValuationResult(
        values=np.array([0.1, np.nan, -2.5]),
        stderr=np.array([0.01, np.nan, 0.0]),
        counts=np.array([3, 0, 7]),
        labels=np.array([4, 0, 9]),
    )
    r.to_csv(tmp_path / "v.csv")
    back = ValuationResult.read_csv(tmp_path / "v.csv", name="m")
    assert back.method == "m" and back.kind == "row"
    assert back.labels.tolist() == [4, 0, 9] and back.counts.tolist() == [3, 0, 7]
    np.testing.assert_array_equal(back.values, r.values)
    np.testing.assert_array_equal(back.stderr, r.stderr)
    stream = io.StringIO()
    r.to_csv(stream)
    assert stream.getvalue() == (tmp_path / "v.csv").read_text()
    groups = ValuationResult(np.array([1.0, 2.0]), labels=np.array(["007", "=a"]), kind="group")
    groups.to_csv(tmp_path / "g.csv")
    back = ValuationResult.read(tmp_path / "g.csv")
    assert back.kind == "group" and back.labels.tolist() == ["007", "'=a"]


def test_values_reader_takes_what_either_old_reader_took(tmp_path) -> None:
    """The report's reader wanted index|group first, stderr/count optional, whole numbers as
    index; prune's took the index column anywhere and float-written indices. Both, now."""
    cases = {
        "first.csv": "index,value\n0,1.5\n2,-1\n",
        "anywhere.csv": "value,stderr,index\n1.5,0.1,0.0\n-1,0.2,2.0\n",
        "extra.csv": "note,index,value,count\nx,0,1.5,4\ny,2,-1,\n",
        "ints.csv": "index,value\n0,1\n2,-1\n",
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        r = ValuationResult.read(tmp_path / name)
        assert r.labels.tolist() == [0, 2], name
        assert r.values.tolist() == [1.5, -1.0] or name == "ints.csv", name
    r = ValuationResult(np.array([0.5, 0.25]), labels=np.array([1, 3]), method="loo")
    r.save(tmp_path / "r.npz")
    assert ValuationResult.read(tmp_path / "r.npz").method == "loo"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("row,value\n0,1\n", "is not a values file"),
        ("index,score\n0,1\n", "is not a values file"),
        ("index,value\n0,high\n", "'value' must hold numbers"),
        ("index,value\n0.5,1\n", "row positions"),
        ("index,value\n-1,1\n", "row positions"),
        ("index,value\n,1\n", "row positions"),
        ("index,value\n1,1\n1,2\n", "index 1 appears more than once"),
        ("group,value\na,1\na,2\n", "group a appears more than once"),
    ],
)
def test_values_reader_refuses_clearly(tmp_path, text, message) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataworthError, match=message):
        ValuationResult.read(path)
