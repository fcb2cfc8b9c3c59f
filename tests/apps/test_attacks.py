"""Attacks as robustness studies: trigger-set watermarks and influence-based poisoning.

Oracles: central finite differences of the *retrained* target loss (the perturbation influence
is its exact derivative) and of the up-weighting influence with the parameters held fixed; the
feasible box checked bit for bit; a random perturbation of the same budget as the baseline the
crafted poison must beat; ground-truth trigger and poison positions; and exact equalities
(removing exactly the trigger rows or the appended poison gives back the clean model).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier

from dataworth.apps.attacks import (
    add_trigger_set,
    craft_poison,
    perturbation_influence,
    target_loss,
    watermark_removal,
)
from dataworth.apps.poison import _loss_of
from dataworth.data import Dataset
from dataworth.datasets import load_dataset
from dataworth.errors import DataworthError
from dataworth.experiments import poisoning_study, watermark_study
from dataworth.influence import LinearInfluence


# ------------------------------------------------------------------------------------ data
def _standardized(ds: Dataset) -> Dataset:
    std = ds.X.std(axis=0)
    return ds.replace(X=(ds.X - ds.X.mean(axis=0)) / np.where(std > 0, std, 1.0))


@pytest.fixture(scope="module")
def cancer() -> tuple[Dataset, Dataset, Dataset, Dataset]:
    """Breast cancer, standardised: 150 train, 80 valid, 80 target, 150 test rows."""
    ds = _standardized(load_dataset("breast_cancer"))
    idx = np.random.default_rng(0).permutation(ds.n_samples)
    parts = np.split(idx[:460], [150, 230, 310])
    train, valid, target, test = (ds.take(np.sort(p)) for p in parts)
    return train, valid, target, test


def _problem(kind: str, seed: int = 0) -> tuple[object, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, 3))
    noise = 0.5 * rng.normal(size=60)
    if kind == "binary":
        return LogisticRegression(C=2.0), X, (X[:, 0] + noise > 0).astype(int)
    if kind == "multiclass":
        return LogisticRegression(C=2.0), X, np.digitize(X[:, 0] + noise, [-0.5, 0.5])
    return Ridge(alpha=1.0), X, X @ np.array([1.0, -1.0, 0.5]) + noise


# ------------------------------------------------------------------------------------ gradient
@pytest.mark.parametrize("kind", ["binary", "multiclass", "ridge"])
def test_perturbation_influence_is_the_derivative_of_the_retrained_loss(kind: str) -> None:
    model, X, y = _problem(kind)
    X_t, y_t, X_tr, y_tr = X[:20], y[:20], X[20:], y[20:]
    n = X_tr.shape[0]
    G = perturbation_influence(LinearInfluence(model, X_tr, y_tr), X_tr[:2], y_tr[:2], X_t, y_t)
    h = 1e-4
    fd = np.empty_like(G)
    for i in range(2):
        for j in range(3):
            up, down = X_tr.copy(), X_tr.copy()
            up[i, j] += h
            down[i, j] -= h
            diff = _loss_of(LinearInfluence(model, up, y_tr), X_t, y_t) - _loss_of(
                LinearInfluence(model, down, y_tr), X_t, y_t
            )
            fd[i, j] = n * diff / (2 * h)
    np.testing.assert_allclose(G, fd, rtol=1e-4, atol=1e-7 * np.abs(G).max())


@pytest.mark.parametrize("kind", ["binary", "multiclass", "ridge"])
def test_perturbation_influence_is_the_gradient_of_the_upweighting_influence(kind: str) -> None:
    """Parameters held fixed: d/dx [-g_t^T H^-1 grad_theta L(x, y)] by finite differences."""
    model, X, y = _problem(kind, seed=1)
    infl = LinearInfluence(model, X[15:], y[15:])
    g = infl.test_gradients(X[:15], y[:15]).mean(axis=0)
    v = infl.solve(g[None, :])[0]
    G = perturbation_influence(infl, X[15:20], y[15:20], X[:15], y[:15])
    h = 1e-6
    for i in range(5):
        row, label = X[15 + i], y[15 + i : 16 + i]
        for j in range(3):
            e = np.eye(3)[j] * h
            up = -(infl.test_gradients((row + e)[None], label) @ v)[0]
            down = -(infl.test_gradients((row - e)[None], label) @ v)[0]
            assert G[i, j] == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-8)


def test_binary_formula_by_hand() -> None:
    """p(1-p)(v.[x,1]) w + (p - y) v_w, negated, against the closed form written out."""
    model, X, y = _problem("binary", seed=2)
    infl = LinearInfluence(model, X[10:], y[10:])
    w, b = infl.theta[:3], infl.theta[3]
    v = infl.solve(infl.test_gradients(X[:10], y[:10]).mean(axis=0)[None, :])[0]
    x, label = X[10], y[10]
    p = 1 / (1 + np.exp(-(x @ w + b)))
    expected = -(p * (1 - p) * (v[:3] @ x + v[3]) * w + (p - label) * v[:3])
    got = perturbation_influence(infl, X[10:11], y[10:11], X[:10], y[:10])[0]
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_perturbation_influence_needs_a_linear_influence_model() -> None:
    with pytest.raises(DataworthError, match="LinearInfluence"):
        perturbation_influence(object(), np.zeros((1, 2)), [0], np.zeros((1, 2)), [0])


# ------------------------------------------------------------------------------------ poison
def test_poison_beats_a_random_perturbation_of_the_same_budget(cancer) -> None:
    train, _, target, _ = cancer
    clean = target_loss(train, target)
    poisoned, rows = craft_poison(train, target, 3, budget=1.0, steps=5, random_state=0)
    attacked = target_loss(poisoned, target)
    randoms = [
        target_loss(craft_poison(train, target, 3, 1.0, random_state=s, attack="random")[0], target)
        for s in range(5)
    ]
    assert rows.size == 3
    assert attacked > clean + 0.05
    assert attacked > max(randoms) + 0.05


def test_budget_is_respected_exactly(cancer) -> None:
    train, _, target, _ = cancer
    budget = np.linspace(0.1, 0.9, train.n_features)  # one budget per feature
    poisoned, rows = craft_poison(train, target, 6, budget=budget, steps=4, random_state=1)
    others = np.setdiff1d(np.arange(train.n_samples), rows)
    assert np.array_equal(poisoned.X[others], train.X[others])  # bit for bit
    assert np.array_equal(poisoned.y, train.y)  # labels kept
    x0, x = train.X[rows], poisoned.X[rows]
    assert np.all(x >= x0 - budget) and np.all(x <= x0 + budget)
    assert np.all(x >= train.X.min(axis=0)) and np.all(x <= train.X.max(axis=0))
    assert np.abs(x - x0).max() > 0  # it did move
    unchanged, _ = craft_poison(train, target, 6, budget=0.0, steps=3)
    assert np.array_equal(unchanged.X, train.X)


def test_random_attack_moves_to_a_corner_of_the_box(cancer) -> None:
    train, _, target, _ = cancer
    poisoned, rows = craft_poison(
        train, target, 4, 0.5, random_state=3, attack="random", bounds=None
    )
    np.testing.assert_allclose(np.abs(poisoned.X[rows] - train.X[rows]), 0.5)


def test_add_mode_appends_relabelled_copies_inside_the_budget(cancer) -> None:
    train, _, target, _ = cancer
    n = train.n_samples
    poisoned, rows = craft_poison(train, target, 3, budget=0.5, steps=4, mode="add", random_state=0)
    assert rows.tolist() == [n, n + 1, n + 2]
    assert np.array_equal(poisoned.X[:n], train.X) and np.array_equal(poisoned.y[:n], train.y)
    assert poisoned.row_labels[rows].tolist() == [n, n + 1, n + 2]
    # every poison row is within the budget of a training row with the other label
    x, x0 = poisoned.X[rows][:, None, :], train.X[None, :, :]
    inside = np.all((x >= x0 - 0.5) & (x <= x0 + 0.5), axis=2)
    other = poisoned.y[rows][:, None] != train.y[None, :]
    assert np.all((inside & other).any(axis=1))
    assert target_loss(poisoned, target) > target_loss(train, target) + 0.05


def test_targeted_attack_on_one_point(cancer) -> None:
    train, _, _, test = cancer
    point = (test.X[0], test.y[0])
    poisoned, _ = craft_poison(train, point, 2, budget=1.0, steps=5, random_state=0)
    assert target_loss(poisoned, point) > 2 * target_loss(train, point)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 0}, "k must be"),
        ({"k": 10_000}, "more than"),
        ({"budget": -1.0}, "budget"),
        ({"budget": [1.0, 2.0]}, "one number per feature"),
        ({"mode": "replace"}, "mode"),
        ({"attack": "gradient"}, "attack"),
        ({"steps": -1}, "steps"),
        ({"bounds": (5.0, 6.0)}, "outside the bounds"),
        ({"bounds": "range"}, "bounds"),
    ],
)
def test_craft_poison_rejects_bad_input(cancer, kwargs, match) -> None:
    train, _, target, _ = cancer
    args = {"k": 2, **kwargs}
    with pytest.raises(DataworthError, match=match):
        craft_poison(train, target, **args)


def test_poisoning_study_reports_error_detection_and_defence(cancer) -> None:
    train, valid, target, test = cancer
    study = poisoning_study(
        train,
        valid,
        target,
        test,
        fractions=(0.02,),
        steps=4,
        mode="add",
        methods=["knn-shapley"],
        n_random=2,
        random_state=0,
    )
    clean = study.attack_rows[0]
    assert clean["attack"] == "none" and clean["k"] == 0
    assert [r["attack"] for r in study.attack_rows[1:]] == ["influence", "random"]
    assert study.attack_rows[1]["target_loss"] > study.attack_rows[2]["target_loss"]
    rows = {r["method"]: r for r in study.detection_rows}
    assert set(rows) == {"knn-shapley", "self-influence", "remove-poison", "random"}
    # removing exactly the appended poison is the clean training set again
    assert rows["remove-poison"]["test_error_after"] == clean["test_error"]
    assert 0.5 < rows["self-influence"]["auroc"] <= 1.0
    assert "AUROC" in study.table() and study.to_dict()["mode"] == "add"


def test_poisoning_study_takes_values_from_a_valuer(cancer) -> None:
    train, valid, target, test = cancer
    n = train.n_samples

    def oracle(poisoned: Dataset, _valid: Dataset) -> dict[str, np.ndarray]:
        return {"oracle": -(np.arange(poisoned.n_samples) >= n).astype(float)}

    study = poisoning_study(
        train,
        valid,
        target,
        test,
        fractions=(0.02,),
        steps=2,
        mode="add",
        valuer=oracle,
        self_influence=False,
        random_baseline=False,
        random_state=0,
    )
    (row,) = [r for r in study.detection_rows if r["method"] == "oracle"]
    assert row["auroc"] == 1.0 and row["recall"] == 1.0


# ------------------------------------------------------------------------------------ trigger set
def test_add_trigger_set_appends_random_labels() -> None:
    iris = load_dataset("iris")
    marked, idx, trig = add_trigger_set(iris, 12, random_state=0)
    assert marked.n_samples == 162 and idx.tolist() == list(range(150, 162))
    assert np.array_equal(marked.X[:150], iris.X) and np.array_equal(trig.X, marked.X[idx])
    assert set(trig.y.tolist()) <= {0, 1, 2}
    lo, hi = iris.X.min(axis=0), iris.X.max(axis=0)
    assert np.all((trig.X - lo >= 0) & (hi - trig.X >= 0))
    assert marked.row_labels[idx].tolist() == list(range(150, 162))
    grouped = iris.replace(groups=np.arange(150) % 3)
    g_marked, _, _ = add_trigger_set(grouped, 4, random_state=0)
    assert g_marked.groups is not None and set(g_marked.groups[150:].tolist()) == {3}


def test_patch_triggers_carry_the_same_stamp_and_another_label() -> None:
    digits = load_dataset("digits")
    _, _, trig = add_trigger_set(digits, 20, random_state=1, pattern="patch")
    top = digits.X.max(axis=0)
    stamped = np.all(np.equal(trig.X, top), axis=0) & (top > digits.X.min(axis=0))
    assert stamped.sum() >= 6  # ~10% of the 61 non-constant pixels, identical on every trigger
    # the source row of each trigger is the nearest clean row off the stamp; its label differs
    off = ~stamped
    dist = ((trig.X[:, None, off] - digits.X[None, :, off]) ** 2).sum(axis=2)
    assert np.all(dist.min(axis=1) == 0)
    assert np.all(digits.y[dist.argmin(axis=1)] != trig.y)


def test_add_trigger_set_rejects_bad_input() -> None:
    iris = load_dataset("iris")
    with pytest.raises(DataworthError, match="class labels"):
        add_trigger_set(load_dataset("diabetes"), 3)
    with pytest.raises(DataworthError, match="positive whole number"):
        add_trigger_set(iris, 0)
    with pytest.raises(DataworthError, match="shape"):
        add_trigger_set(iris, 3, pattern=np.zeros((2, 4)))
    with pytest.raises(DataworthError, match="pattern"):
        add_trigger_set(iris, 3, pattern="stripes")


@pytest.fixture(scope="module")
def watermarked() -> tuple[Dataset, Dataset, Dataset, np.ndarray]:
    """450 digit rows to train on plus 25 noise triggers, 150 valid, 300 test."""
    ds = load_dataset("digits")
    ds = ds.replace(X=ds.X / 16.0)
    idx = np.random.default_rng(0).permutation(ds.n_samples)
    train, valid, test = (ds.take(np.sort(p)) for p in np.split(idx[:900], [450, 600]))
    marked, trig, _ = add_trigger_set(train, 25, random_state=0)
    return marked, valid, test, trig


def test_trigger_set_is_memorised_then_removed(watermarked) -> None:
    marked, valid, test, trig = watermarked
    study = watermark_study(
        marked,
        valid,
        test,
        trig,
        methods=["knn-shapley", "data-oob"],
        params={"data-oob": {"budget": 30}},
        model=KNeighborsClassifier(n_neighbors=1),
        fractions=(0.0, 0.1),
        self_influence=False,
        n_random=2,
        random_state=0,
    )
    for m in ("knn-shapley", "data-oob"):
        assert study.trigger_accuracy[m][0] == 1.0  # memorised: the watermark is there
        assert study.auroc[m] > 0.9
        assert study.recall[m][1] > 0.9
        # removed: trigger accuracy down near chance (1/10; a model never trained on them: 0)
        assert study.trigger_accuracy[m][1] <= 0.25
        assert study.test_accuracy[m][1] >= study.test_accuracy[m][0] - 0.02  # clean holds
    assert study.random_trigger_accuracy[1] > 0.7  # random removal leaves the watermark
    assert study.trigger_accuracy_without < 0.35
    assert "AUROC" in study.table() and set(study.to_dict()["methods"]) == set(study.methods)


def test_removing_exactly_the_triggers_is_the_model_without_them(watermarked) -> None:
    marked, _valid, test, trig = watermarked
    oracle = -np.isin(np.arange(marked.n_samples), trig).astype(float)
    f = trig.size / marked.n_samples
    study = watermark_removal(
        {"oracle": oracle},
        marked,
        test,
        trig,
        fractions=(0.0, f),
        n_random=1,
        random_state=0,
    )
    assert np.isnan(study.seconds["oracle"])
    assert study.auroc["oracle"] == 1.0 and study.recall["oracle"][1] == 1.0
    assert study.trigger_accuracy["oracle"][1] == study.trigger_accuracy_without
    assert study.test_accuracy["oracle"][1] == study.test_accuracy_without


def test_self_influence_flags_a_trigger_set() -> None:
    """Random labels on odd inputs are fitted only by bending the model: high self-influence."""
    iris = _standardized(load_dataset("iris"))
    train, test = iris.split(0.4, random_state=0)
    marked, trig, _ = add_trigger_set(train, 8, random_state=0)
    study = watermark_study(
        marked, test, test, trig, {}, fractions=(0.0,), n_random=1, random_state=0
    )
    assert study.methods == ["self-influence"]
    assert study.auroc["self-influence"] > 0.85


def test_watermark_study_rejects_bad_input(watermarked) -> None:
    marked, valid, test, trig = watermarked
    with pytest.raises(DataworthError, match="trigger_indices"):
        watermark_study(marked, valid, test, [marked.n_samples], {"v": np.zeros(marked.n_samples)})
    with pytest.raises(DataworthError, match="fractions"):
        watermark_study(
            marked,
            valid,
            test,
            trig,
            {"v": np.zeros(marked.n_samples)},
            fractions=(0.5, 0.2),
            self_influence=False,
        )
    with pytest.raises(DataworthError, match="values"):
        watermark_study(marked, valid, test, trig, {"v": np.zeros(3)}, self_influence=False)
