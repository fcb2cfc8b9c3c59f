"""Mergeable moments: exact merging, masks, the vectorized indicator update, estimators."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dataworth.engine.moments import Moments, merge_states
from dataworth.estimators.reducers import REDUCERS as ESTIMATORS
from dataworth.estimators.reducers import reduce_state as estimate

RTOL = 1e-9

values = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


def matrices(min_rows: int = 0, max_rows: int = 12, max_cols: int = 4) -> st.SearchStrategy:
    shapes = st.tuples(st.integers(min_rows, max_rows), st.integers(1, max_cols))
    return shapes.flatmap(lambda s: hnp.arrays(np.float64, s, elements=values))


def assert_moments_close(a: Moments, b: Moments, scale: float = 1e3) -> None:
    np.testing.assert_array_equal(a.count, b.count)
    np.testing.assert_allclose(a.mean, b.mean, rtol=RTOL, atol=RTOL * scale)
    np.testing.assert_allclose(a.m2, b.m2, rtol=RTOL, atol=RTOL * scale**2)


def test_docstring_example() -> None:
    a = Moments.from_samples(np.array([[1.0], [2.0]]))
    m = a.merge(Moments.from_samples(np.array([[3.0]])))
    assert m.count.tolist() == [3]
    assert m.mean.tolist() == [2.0]
    assert m.m2.tolist() == [2.0]
    assert m.variance.tolist() == [1.0]


def test_from_samples_known() -> None:
    m = Moments.from_samples(np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 13.0]]))
    assert m.count.tolist() == [3, 3]
    np.testing.assert_allclose(m.mean, [3.0, 11.0])
    np.testing.assert_allclose(m.m2, [8.0, 6.0])
    np.testing.assert_allclose(m.variance, [4.0, 3.0])
    np.testing.assert_allclose(m.stderr, np.sqrt([4.0 / 3, 1.0]))


def test_zeros_and_empty_samples() -> None:
    z = Moments.zeros(3)
    assert z.count.tolist() == [0, 0, 0]
    e = Moments.from_samples(np.empty((0, 3)))
    assert_moments_close(z, e)
    x = Moments.from_samples(np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 5.0]]))
    assert_moments_close(z.merge(x), x)
    assert_moments_close(x.merge(z), x)


def test_stderr_nan_below_two_samples() -> None:
    m = Moments(np.array([0, 1, 2]), np.array([0.0, 4.0, 1.0]), np.array([0.0, 0.0, 2.0]))
    se = m.stderr
    assert np.isnan(se[0]) and np.isnan(se[1])
    assert se[2] == pytest.approx(1.0)
    assert np.isnan(m.variance[:2]).all()


@settings(max_examples=150, deadline=None)
@given(matrices(), st.data())
def test_merge_of_split_equals_whole(samples, data) -> None:
    cut = data.draw(st.integers(0, samples.shape[0]))
    whole = Moments.from_samples(samples)
    merged = Moments.from_samples(samples[:cut]).merge(Moments.from_samples(samples[cut:]))
    assert_moments_close(merged, whole)


@settings(max_examples=150, deadline=None)
@given(matrices(), st.data())
def test_merge_is_associative(samples, data) -> None:
    m = samples.shape[0]
    i = data.draw(st.integers(0, m))
    j = data.draw(st.integers(i, m))
    a, b, c = (Moments.from_samples(part) for part in (samples[:i], samples[i:j], samples[j:]))
    assert_moments_close(a.merge(b).merge(c), a.merge(b.merge(c)))


@settings(max_examples=100, deadline=None)
@given(matrices(), st.data())
def test_merge_with_random_masks_equals_whole(samples, data) -> None:
    mask = data.draw(hnp.arrays(np.bool_, samples.shape))
    cut = data.draw(st.integers(0, samples.shape[0]))
    whole = Moments.from_samples(samples, mask)
    merged = Moments.from_samples(samples[:cut], mask[:cut]).merge(
        Moments.from_samples(samples[cut:], mask[cut:])
    )
    assert_moments_close(merged, whole)


@settings(max_examples=150, deadline=None)
@given(matrices(), st.data())
def test_masked_equals_selected_entries(samples, data) -> None:
    mask = data.draw(hnp.arrays(np.bool_, samples.shape))
    masked = Moments.from_samples(samples, mask)
    for j in range(samples.shape[1]):
        col = Moments.from_samples(samples[mask[:, j], j][:, None])
        assert masked.count[j] == col.count[0]
        assert masked.mean[j] == pytest.approx(col.mean[0], rel=RTOL, abs=RTOL * 1e3)
        assert masked.m2[j] == pytest.approx(col.m2[0], rel=RTOL, abs=RTOL * 1e6)


@settings(max_examples=150, deadline=None)
@given(
    st.tuples(st.integers(0, 12), st.integers(1, 5)).flatmap(
        lambda s: st.tuples(
            hnp.arrays(np.bool_, s), hnp.arrays(np.float64, (s[0],), elements=values)
        )
    )
)
def test_from_indicator_equals_masked_broadcast(pair) -> None:
    indicator, vals = pair
    broadcast = np.broadcast_to(vals[:, None], indicator.shape)
    expected = Moments.from_samples(broadcast, indicator)
    got = Moments.from_indicator(indicator, vals)
    np.testing.assert_array_equal(got.count, expected.count)
    np.testing.assert_allclose(got.mean, expected.mean, rtol=RTOL, atol=RTOL * 1e3)
    # the shifted one-pass m2 loses a little more than the two-pass one near zero
    np.testing.assert_allclose(got.m2, expected.m2, rtol=1e-8, atol=1e-6)


def test_from_indicator_empty() -> None:
    m = Moments.from_indicator(np.zeros((0, 3), dtype=bool), np.zeros(0))
    assert m.count.tolist() == [0, 0, 0]


def test_merge_states_requires_same_keys() -> None:
    a = {"marginal": Moments.zeros(2)}
    with pytest.raises(ValueError, match="keys"):
        merge_states(a, {"in": Moments.zeros(2)})


def test_estimate_mean() -> None:
    state = {
        "marginal": Moments.from_samples(
            np.array([[1.0, 2.0], [3.0, 2.0]]), np.array([[True, False], [True, False]])
        )
    }
    vals, se, counts = estimate("mean", state)
    assert vals[0] == 2.0 and np.isnan(vals[1])
    assert se[0] == pytest.approx(1.0)
    assert counts.tolist() == [2, 0]


def test_estimate_difference_known() -> None:
    state = {
        # player 0: in-samples 2, 4; out-samples 1, 1 -> 3 - 1 = 2, stderr sqrt(2/2 + 0/2) = 1
        # player 1: never out -> NaN
        "in": Moments(np.array([2, 3]), np.array([3.0, 5.0]), np.array([2.0, 8.0])),
        "out": Moments(np.array([2, 0]), np.array([1.0, 0.0]), np.array([0.0, 0.0])),
    }
    vals, se, counts = estimate("difference", state)
    assert vals[0] == 2.0 and np.isnan(vals[1])
    assert se[0] == pytest.approx(1.0)
    assert counts.tolist() == [4, 3]


def test_difference_from_indicator_matches_definition() -> None:
    rng = np.random.default_rng(0)
    ind = rng.random((200, 4)) < 0.5
    u = rng.normal(size=200)
    state = {"in": Moments.from_indicator(ind, u), "out": Moments.from_indicator(~ind, u)}
    vals, _, counts = estimate("difference", state)
    expected = [u[ind[:, i]].mean() - u[~ind[:, i]].mean() for i in range(4)]
    np.testing.assert_allclose(vals, expected, rtol=1e-12)
    assert counts.tolist() == [200] * 4


def test_estimators_registry() -> None:
    assert set(ESTIMATORS) >= {"mean", "difference"}
