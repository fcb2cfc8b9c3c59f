"""LAVA: hand-computed cases, exact OT by linear programming, finite differences of an
independently written entropic OT, and noisy-label detection."""

from __future__ import annotations

import itertools
import sys

import numpy as np
import pytest
from scipy.optimize import linprog
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from dataworth import value
from dataworth.data import Dataset
from dataworth.datasets import flip_labels, load_dataset
from dataworth.errors import DataworthError
from dataworth.methods import get_method
from dataworth.methods.lava import LAVA, calibrated_gradient, class_distances
from dataworth.utility import ModelUtility

pytest.importorskip("ot")

# ---------------------------------------------------------------------------- references


def exact_ot_lp(C: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """min <P, C> over couplings of a and b, by scipy's linear programming (no POT)."""
    n, m = C.shape
    rows = np.kron(np.eye(n), np.ones(m))  # sum_j P_ij = a_i
    cols = np.kron(np.ones(n), np.eye(m))  # sum_i P_ij = b_j
    res = linprog(
        C.ravel(), A_eq=np.vstack([rows, cols]), b_eq=np.concatenate([a, b]), method="highs"
    )
    assert res.status == 0
    return float(res.fun)


def label_aware_cost(Xt, yt, Xv, yv, label_weight=1.0):
    """The ground cost of docs/conventions.md written directly, class distances by linprog."""
    W = {}
    for k in np.unique(yt):
        for j in np.unique(yv):
            A, B = Xt[yt == k], Xv[yv == j]
            cost = ((A[:, None, :] - B[None, :, :]) ** 2).sum(-1)
            W[k, j] = exact_ot_lp(cost, np.full(len(A), 1 / len(A)), np.full(len(B), 1 / len(B)))
    C = ((Xt[:, None, :] - Xv[None, :, :]) ** 2).sum(-1)
    return C + label_weight * np.array([[W[k, j] for j in yv] for k in yt])


def entropic_ot(C: np.ndarray, a: np.ndarray, b: np.ndarray, reg: float) -> float:
    """min <P, C> + reg * sum P (log P - 1) over couplings of a and b: log-domain Sinkhorn
    iterated to machine precision, then the primal objective of its plan."""

    def lse(z, axis):
        top = z.max(axis=axis, keepdims=True)
        return (top + np.log(np.exp(z - top).sum(axis=axis, keepdims=True))).squeeze(axis)

    f, g = np.zeros(len(a)), np.zeros(len(b))
    for _ in range(100_000):
        f = reg * np.log(a) - reg * lse((g[None, :] - C) / reg, axis=1)
        g = reg * np.log(b) - reg * lse((f[:, None] - C) / reg, axis=0)
        P = np.exp((f[:, None] + g[None, :] - C) / reg)
        if np.abs(P.sum(1) - a).max() < 1e-14 * a.max():
            break
    assert np.abs(P.sum(1) - a).max() < 1e-13 * a.max()
    return float((P * C).sum() + reg * (P * (np.log(P) - 1)).sum())


def utility_of(Xt, yt, Xv, yv, **kw):
    return ModelUtility(
        LogisticRegression(),
        Dataset.from_arrays(Xt, yt, **kw),
        Dataset.from_arrays(Xv, yv),
        by_group="groups" in kw,
    )


@pytest.fixture(scope="module")
def tiny():
    """6 training rows (2 classes, one of them with 4 rows) and 4 valuation rows, 2 features."""
    rng = np.random.default_rng(7)
    Xt = rng.normal(size=(6, 2)) + np.array([[0, 0], [0, 0], [0, 0], [0, 0], [2, 1], [2, 1]])
    yt = np.array([0, 0, 0, 1, 1, 1])
    Xv = rng.normal(size=(4, 2)) + np.array([[0, 0], [0, 0], [2, 1], [2, 1]])
    yv = np.array([0, 0, 1, 1])
    return Xt, yt, Xv, yv


# ---------------------------------------------------------------------------- hand-computed


@pytest.mark.parametrize("epsilon", [0.01, 0.05, 1.0])
def test_two_training_rows_one_valuation_row_by_hand(epsilon):
    """With one valuation row the plan is forced (P_i1 = a_i), so f_i = C_i1 + const and the
    calibrated gradient for N = 2 is f_1 - f_2 = C_11 - C_21, whatever epsilon.

    x1 = 0 (class 0), x2 = 3 (class 1), x' = 1 (class 0): the class distances are the single
    squared gaps, so C_11 = 1 + 1 = 2 and C_21 = 4 + 4 = 8: values (8 - 2, 2 - 8)."""
    u = utility_of([[0.0, 0.0], [3.0, 0.0]], [0, 1], [[1.0, 0.0]], [0])
    res = LAVA(epsilon=epsilon, standardize=False, tol=1e-12).fit(u).result_
    np.testing.assert_allclose(res.values, [6.0, -6.0], rtol=0, atol=1e-9)
    assert res.metadata["label_distances"] == [[1.0], [4.0]]
    assert res.metadata["classes_train"] == [0, 1] and res.metadata["classes_valid"] == [0]
    # features only: C_11 = 1, C_21 = 4
    res0 = LAVA(epsilon=epsilon, label_weight=0, standardize=False).fit(u).result_
    np.testing.assert_allclose(res0.values, [3.0, -3.0], rtol=0, atol=1e-9)


def test_class_distance_by_hand():
    # {0, 2} -> {1, 5}: pairing 0-1, 2-5 costs (1 + 9) / 2 = 5; the other pairing (25 + 1) / 2
    W = class_distances(np.array([[0.0], [2.0]]), np.array([0, 0]), np.array([[1.0], [5.0]]),
                        np.array([0, 0]))  # fmt: skip
    assert W.tolist() == [[5.0]]


def test_class_distances_match_brute_force_and_linear_programming():
    rng = np.random.default_rng(1)
    Xt, Xv = rng.normal(size=(7, 3)), rng.normal(size=(6, 3))
    ct, cv = np.array([0, 0, 0, 1, 1, 1, 1]), np.array([0, 0, 0, 1, 1, 1])
    W = class_distances(Xt, ct, Xv, cv)
    # equal sizes (3 and 3): uniform OT is an assignment; try every permutation
    A, B = Xt[:3], Xv[:3]
    best = min(
        sum(((A[i] - B[p[i]]) ** 2).sum() for i in range(3)) / 3
        for p in itertools.permutations(range(3))
    )
    assert W[0, 0] == pytest.approx(best, rel=1e-12)
    for k, j in itertools.product(range(2), range(2)):
        A, B = Xt[ct == k], Xv[cv == j]
        cost = ((A[:, None] - B[None]) ** 2).sum(-1)
        lp = exact_ot_lp(cost, np.full(len(A), 1 / len(A)), np.full(len(B), 1 / len(B)))
        assert W[k, j] == pytest.approx(lp, rel=1e-9, abs=1e-12)


def test_calibrated_gradient_formula():
    f = np.array([0.3, -1.0, 2.5, 0.0])
    expected = [f[i] - np.delete(f, i).sum() / 3 for i in range(4)]
    np.testing.assert_allclose(calibrated_gradient(f), expected, atol=1e-15)
    np.testing.assert_allclose(calibrated_gradient(f + 7.0), expected, atol=1e-13)


# ---------------------------------------------------------------------------- the OT itself


@pytest.mark.parametrize("solver", ["lbfgs", "sinkhorn"])
@pytest.mark.parametrize("epsilon", [0.3, 0.02])
def test_values_are_minus_the_directional_derivative_of_entropic_ot(tiny, solver, epsilon):
    """Oracle: finite differences of an independently computed entropic OT value along moving
    mass onto row i from the other rows equally (the calibrated direction)."""
    Xt, yt, Xv, yv = tiny
    res = LAVA(epsilon=epsilon, standardize=False, solver=solver, tol=1e-9, max_iter=200_000)
    res = res.fit(utility_of(Xt, yt, Xv, yv)).result_
    assert res.metadata["converged"] and res.metadata["marginal_error"] <= 1e-9
    C = label_aware_cost(Xt, yt, Xv, yv)
    reg = epsilon * C.mean()
    assert res.metadata["reg"] == pytest.approx(reg, rel=1e-12)
    n, m = C.shape
    a, b = np.full(n, 1 / n), np.full(m, 1 / m)
    h = 1e-4 / n
    for i in range(n):
        d = np.full(n, -1 / (n - 1))
        d[i] = 1.0
        deriv = (entropic_ot(C, a + h * d, b, reg) - entropic_ot(C, a - h * d, b, reg)) / (2 * h)
        assert -res.values[i] == pytest.approx(deriv, rel=1e-5, abs=1e-7 * np.abs(C).max())
    assert res.metadata["solver"] == ("lbfgs" if solver == "lbfgs" else "sinkhorn")


@pytest.mark.parametrize("max_iter", [1, 3])
def test_newton_polish_converges_when_lbfgs_stops_early(tiny, max_iter):
    """Issue 13/17: L-BFGS's line search may stop short of 1e-9 near the optimum (it did with
    OpenBLAS's Haswell kernels), where the objective changes by less than its rounding. The
    Newton polish uses gradients only; here L-BFGS is stopped early on purpose, on any BLAS."""
    Xt, yt, Xv, yv = tiny
    u = utility_of(Xt, yt, Xv, yv)
    res = LAVA(epsilon=0.02, standardize=False, tol=1e-9, max_iter=max_iter).fit(u).result_
    assert res.metadata["iterations"] <= max_iter and res.metadata["newton_steps"] >= 1
    assert res.metadata["converged"] and res.metadata["marginal_error"] <= 1e-10
    ref = LAVA(epsilon=0.02, standardize=False, tol=1e-12, max_iter=10**6, solver="sinkhorn")
    ref = ref.fit(u).result_
    np.testing.assert_allclose(res.values, ref.values, rtol=1e-8, atol=1e-10)


def test_cost_matrix_memory_is_checked_before_allocating(tiny, monkeypatch):
    import dataworth.memory

    monkeypatch.setattr(dataworth.memory, "available_memory", lambda: 1000)
    Xt, yt, Xv, yv = tiny
    with pytest.raises(DataworthError, match=r"6 x 4 cost matrix .*192 B.*knn-shapley"):
        LAVA().fit(utility_of(Xt, yt, Xv, yv))


def test_log_domain_sinkhorn_agrees_with_lbfgs(tiny, monkeypatch):
    import dataworth.methods.lava as lava_module

    Xt, yt, Xv, yv = tiny
    u = utility_of(Xt, yt, Xv, yv)
    ref = LAVA(epsilon=0.02, standardize=False, tol=1e-9).fit(u).result_
    monkeypatch.setattr(lava_module, "_LOG_DOMAIN_RATIO", 0.0)
    res = LAVA(epsilon=0.02, standardize=False, solver="sinkhorn", tol=1e-12, max_iter=10**6)
    res = res.fit(u).result_
    assert res.metadata["solver"] == "sinkhorn_log" and res.metadata["converged"]
    np.testing.assert_allclose(res.values, ref.values, rtol=1e-6, atol=1e-8)


def test_small_epsilon_plan_cost_approaches_exact_ot(tiny):
    Xt, yt, Xv, yv = tiny
    C = label_aware_cost(Xt, yt, Xv, yv)
    n, m = C.shape
    exact = exact_ot_lp(C, np.full(n, 1 / n), np.full(m, 1 / m))
    res = LAVA(epsilon=0.002, standardize=False, tol=1e-9).fit(utility_of(Xt, yt, Xv, yv))
    cost, reg = res.result_.metadata["ot_cost"], res.result_.metadata["reg"]
    assert res.result_.metadata["converged"]
    # the entropic plan is within reg * log(n m) of the optimum in <P, C>
    assert exact - 1e-9 <= cost <= exact + reg * np.log(n * m)


# ---------------------------------------------------------------------------- properties


def test_values_sum_to_zero_and_translation_invariance(tiny):
    Xt, yt, Xv, yv = tiny
    r1 = LAVA(standardize=False).fit(utility_of(Xt, yt, Xv, yv)).result_
    assert abs(r1.values.sum()) < 1e-10
    r2 = LAVA(standardize=False).fit(utility_of(Xt + 5.0, yt, Xv + 5.0, yv)).result_
    np.testing.assert_allclose(r1.values, r2.values, rtol=1e-7, atol=1e-9)
    assert np.all(r1.stderr == 0) and np.all(r1.counts == 4)
    assert r1.method == "lava" and r1.params["epsilon"] == 0.05


def test_standardize_makes_values_independent_of_feature_units(tiny):
    Xt, yt, Xv, yv = tiny
    scale = np.array([1000.0, 0.01])
    r1 = LAVA().fit(utility_of(Xt, yt, Xv, yv)).result_
    r2 = LAVA().fit(utility_of(Xt * scale, yt, Xv * scale, yv)).result_
    np.testing.assert_allclose(r1.values, r2.values, rtol=1e-6, atol=1e-9)


def test_by_group_sums_row_values(tiny):
    Xt, yt, Xv, yv = tiny
    groups = np.array(["b", "a", "b", "c", "a", "c"])
    rows = LAVA().fit(utility_of(Xt, yt, Xv, yv)).result_
    res = LAVA().fit(utility_of(Xt, yt, Xv, yv, groups=groups)).result_
    assert res.kind == "group" and res.labels.tolist() == ["a", "b", "c"]
    expected = [rows.values[groups == g].sum() for g in ("a", "b", "c")]
    np.testing.assert_allclose(res.values, expected, atol=1e-12)
    assert res.metadata["group_aggregation"] == "sum of row values"


def test_string_labels_and_classes_missing_from_one_side():
    # valuation set lacks class "c"; training lacks class "d": costs still defined
    Xt = np.array([[0.0], [0.2], [3.0], [3.1], [6.0]])
    yt = np.array(["a", "a", "b", "b", "c"])
    Xv = np.array([[0.1], [3.05], [9.0]])
    yv = np.array(["a", "b", "d"])
    res = LAVA(standardize=False).fit(utility_of(Xt, yt, Xv, yv)).result_
    assert np.isfinite(res.values).all()
    assert res.metadata["classes_valid"] == ["a", "b", "d"]


# ---------------------------------------------------------------------------- errors


def test_bad_parameters_and_data():
    u = utility_of([[0.0], [1.0]], [0, 1], [[0.5]], [0])
    for kw in ({"epsilon": 0}, {"epsilon": -1.0}, {"tol": 0}, {"label_weight": -1},
               {"max_iter": 0}, {"epsilon": True}, {"solver": "newton"}):  # fmt: skip
        with pytest.raises(DataworthError, match=next(iter(kw))):
            LAVA(**kw).fit(u)
    with pytest.raises(DataworthError, match="at least two training rows"):
        LAVA().fit(utility_of([[0.0]], [0], [[0.5]], [0]))
    reg = ModelUtility(
        LogisticRegression(),
        Dataset.from_arrays([[0.0], [1.0]], [0.5, 1.5]),
        Dataset.from_arrays([[0.5]], [0.7]),
    )
    with pytest.raises(DataworthError, match="class labels"):
        LAVA().fit(reg)


def test_missing_pot_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ot", None)  # makes `import ot` raise ImportError
    u = utility_of([[0.0], [1.0]], [0, 1], [[0.5]], [0])
    with pytest.raises(DataworthError, match=r'pip install "dataworth\[ot\]"'):
        LAVA().fit(u)


@pytest.mark.parametrize(
    ("solver", "max_iter", "tol"),
    [("sinkhorn", 1, 1e-14), ("lbfgs", 1, 1e-18)],  # L-BFGS + Newton: 1e-18 is below rounding
)
def test_warns_when_the_solver_does_not_converge(tiny, solver, max_iter, tol):
    Xt, yt, Xv, yv = tiny
    with pytest.warns(UserWarning, match="solver stopped after"):
        res = LAVA(solver=solver, max_iter=max_iter, tol=tol)
        res = res.fit(utility_of(Xt, yt, Xv, yv)).result_
    assert res.metadata["converged"] is False


# ---------------------------------------------------------------------------- applications


def test_registry_and_facade():
    assert get_method("lava") is LAVA
    train, valid = load_dataset("iris").split(0.3, random_state=0)
    res = value("lava", train, valid, epsilon=0.1)  # Sinkhorn needs ~10^5 iterations here
    assert len(res) == train.n_samples and res.params["epsilon"] == 0.1
    assert res.metadata["converged"] and res.metadata["iterations"] < 1000


@pytest.mark.parametrize(("name", "threshold"), [("breast_cancer", 0.8), ("wine", 0.85)])
def test_detects_flipped_labels(name, threshold):
    """10% flipped labels; measured AUROC 0.85-0.91 (breast cancer) and 0.90-0.95 (wine)."""
    train, valid = load_dataset(name).split(0.2, random_state=0)
    noisy, flipped = flip_labels(train, 0.1, random_state=1)
    res = value("lava", noisy, valid)
    is_flipped = np.isin(np.arange(noisy.n_samples), flipped)
    assert roc_auc_score(is_flipped, -res.values) >= threshold
