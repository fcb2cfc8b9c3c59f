"""The closed-form influence model and the block-wise functions built on the protocol."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

from dataworth.datasets import load_dataset
from dataworth.errors import DataworthError
from dataworth.influence import (
    InfluenceModel,
    LinearInfluence,
    influence_matrix,
    influence_on_parameters,
    influence_values,
    self_influence,
)


def _data(name: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    ds = load_dataset(name)
    idx = np.random.default_rng(seed).permutation(ds.n_samples)[:n]
    X = np.asarray(ds.X, dtype=float)[idx]
    X = (X - X.mean(0)) / X.std(0)
    return X, np.asarray(ds.y)[idx]


def _objective(model: LinearInfluence, theta: np.ndarray, C: float, alpha: float) -> float:
    """The mean training objective, written out independently of the library."""
    X = model._Xt
    n = X.shape[0]
    if model.kind == "logistic":
        q = X.shape[1]
        W = theta.reshape(model.n_outputs, q)
        w = W[:, :-1] if model.fit_intercept else W
        if model.n_outputs == 1:
            z = X @ theta
            y = model._yt
            loss = np.mean(np.logaddexp(0, z) - y * z)
        else:
            Z = X @ W.T
            loss = np.mean(scipy.special.logsumexp(Z, axis=1) - (Z * model._yt).sum(1))
        return float(loss + (w**2).sum() / (2 * n * C))
    r = X @ theta - model._yt
    w = theta[:-1] if model.fit_intercept else theta
    return float(np.mean(r**2) + alpha / n * (w**2).sum())


CASES = [
    ("breast_cancer", LogisticRegression(C=0.7, max_iter=5000), 0.7, 0.0),
    ("iris", LogisticRegression(C=2.0, max_iter=5000), 2.0, 0.0),
    ("wine", LogisticRegression(C=0.3, max_iter=5000), 0.3, 0.0),
    ("diabetes", Ridge(alpha=4.0), 1.0, 4.0),
    ("diabetes", LinearRegression(), 1.0, 0.0),
]


@pytest.mark.parametrize(("name", "estimator", "C", "alpha"), CASES)
def test_stationary_point_and_hessian(name, estimator, C, alpha):
    """Gradient of the objective is zero at theta; H equals the numerical Hessian."""
    X, y = _data(name, 70)
    model = LinearInfluence(estimator, X, y)
    assert isinstance(model, InfluenceModel)
    theta = model.theta
    eps = 1e-5

    def grad(t: np.ndarray) -> np.ndarray:
        e = np.eye(t.size) * eps
        return np.array(
            [
                (_objective(model, t + e[k], C, alpha) - _objective(model, t - e[k], C, alpha))
                / (2 * eps)
                for k in range(t.size)
            ]
        )

    assert np.max(np.abs(grad(theta))) < 1e-6
    # The mean of the library's per-row gradients plus the penalty's is that gradient too.
    numeric = grad(theta + 0.01)
    Gs = model._gradient_rows(model._Xt, model._yt, theta + 0.01).mean(0)
    analytic = Gs + model._penalty * (theta + 0.01)
    np.testing.assert_allclose(analytic, numeric, atol=1e-6)
    H = model._hessian(theta)
    numeric_H = np.array(
        [
            (
                model._gradient_rows(model._Xt, model._yt, theta + eps * e).mean(0)
                - model._gradient_rows(model._Xt, model._yt, theta - eps * e).mean(0)
            )
            / (2 * eps)
            for e in np.eye(theta.size)
        ]
    ) + np.diag(model._penalty)
    np.testing.assert_allclose(H, numeric_H, atol=1e-6)


@pytest.mark.parametrize(("name", "estimator", "C", "alpha"), CASES[:4])
def test_parameter_influence_is_the_weight_derivative(name, estimator, C, alpha):
    """influence_on_parameters = d theta / d eps_i of the re-optimised weighted objective."""
    X, y = _data(name, 60, seed=3)
    model = LinearInfluence(estimator, X, y)
    infl = influence_on_parameters(model, rows=[0, 11, 42])
    n = 60
    for k, i in enumerate((0, 11, 42)):
        # Objective with row i weighted (1 + eps): theta moves by eps/n * (-H^-1 g_i); one
        # exact Newton solve of the perturbed stationarity condition gives that derivative.
        eps = 1e-6
        g = model._gradient_rows(model._Xt[[i]], model._yt[[i]], model.theta)[0]
        H = model._hessian(model.theta)
        step = -np.linalg.lstsq(H, eps / n * g, rcond=None)[0]
        np.testing.assert_allclose(infl[k] * eps / n, step, rtol=1e-6, atol=1e-14)


def test_ols_leave_one_out_identity():
    """OLS: exact LOO change of theta = H^-1 g_i / n / (1 - h_i) (Sherman-Morrison), to 1e-8."""
    X, y = _data("diabetes", 80)
    model = LinearInfluence(LinearRegression(), X, y)
    Xd = model._Xt
    lev = np.einsum("ij,jk,ik->i", Xd, np.linalg.inv(Xd.T @ Xd), Xd)
    predicted = -influence_on_parameters(model) / 80 / (1 - lev)[:, None]
    for i in (0, 5, 79):
        keep = np.delete(np.arange(80), i)
        refit = np.linalg.lstsq(Xd[keep], y[keep].astype(float), rcond=None)[0]
        np.testing.assert_allclose(refit - model.theta, predicted[i], atol=1e-8)


def test_matrix_blocks_stream_and_aggregate(tmp_path):
    X, y = _data("wine", 90)
    model = LinearInfluence(LogisticRegression(C=1.0, max_iter=5000), X[:60], y[:60])
    full = influence_matrix(model, X[60:], y[60:])
    small = influence_matrix(model, X[60:], y[60:], block_size=7)
    np.testing.assert_allclose(small, full, rtol=1e-12, atol=1e-14)
    disk = influence_matrix(model, X[60:], y[60:], block_size=8, out=tmp_path / "m.npy")
    np.testing.assert_allclose(np.load(tmp_path / "m.npy"), full, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(disk, full, rtol=1e-12, atol=1e-14)
    # Explicit formula: I = -G_test H^-1 G_train^T.
    H = model._hessian(model.theta)
    v = model._null_direction()
    Hp = np.linalg.pinv(H)
    G = model.train_gradients(np.arange(60))
    T = model.test_gradients(X[60:], y[60:])
    np.testing.assert_allclose(full, -(G @ Hp @ T.T), rtol=1e-7, atol=1e-9)
    assert v is not None and np.allclose(G @ v, 0)
    values = influence_values(model, X[60:], y[60:], block_size=5).values
    np.testing.assert_allclose(values, -full.mean(1), rtol=1e-9, atol=1e-12)
    rows = np.array([3, 1, 40])
    np.testing.assert_allclose(influence_matrix(model, X[60:], y[60:], rows=rows), full[rows])
    si = self_influence(model, block_size=9)
    np.testing.assert_allclose(si, np.einsum("ij,jk,ik->i", G, Hp, G), rtol=1e-7)
    assert np.all(si > 0)


@pytest.mark.parametrize("name", ["breast_cancer", "iris"])
def test_prediction_target_is_the_log_odds_gradient(name):
    X, y = _data(name, 50)
    model = LinearInfluence(LogisticRegression(max_iter=5000), X, y)
    grad = model.test_gradients(X[:3], y[:3], target="prediction")

    def log_odds(theta: np.ndarray) -> np.ndarray:
        P = model._probabilities(model._design(X[:3]), theta)
        if model.n_outputs == 1:
            P = np.column_stack([1 - P, P])
        p = P[np.arange(3), np.searchsorted(model.classes_, y[:3])]
        return np.log(p) - np.log1p(-p)

    eps = 1e-6
    numeric = np.array(
        [
            (log_odds(model.theta + eps * e) - log_odds(model.theta - eps * e)) / (2 * eps)
            for e in np.eye(model.n_params)
        ]
    ).T
    np.testing.assert_allclose(grad, numeric, atol=1e-6)


def test_flipped_label_has_highest_self_influence():
    X, y = _data("breast_cancer", 120, seed=2)
    y = y.copy()
    flipped = [4, 50, 99]
    y[flipped] = 1 - y[flipped]
    si = self_influence(LinearInfluence(LogisticRegression(max_iter=5000), X, y))
    clean = np.setdiff1d(np.arange(120), flipped)
    auroc = np.mean(si[flipped][:, None] > si[clean][None, :])
    assert auroc > 0.95, auroc


def test_errors(tmp_path):
    X, y = _data("diabetes", 30)
    with pytest.raises(DataworthError, match="damping"):
        LinearInfluence(Ridge(), X, y, damping=-1)
    with pytest.raises(DataworthError, match="does not support"):
        LinearInfluence(object(), X, y)
    model = LinearInfluence(Ridge(), X, y)
    with pytest.raises(DataworthError, match="target"):
        model.test_gradients(X, y, target="nope")
    with pytest.raises(DataworthError, match="block_size"):
        influence_matrix(model, X, y, block_size=0)
    with pytest.raises(DataworthError, match=r"\.npy"):
        influence_matrix(model, X, y, out=tmp_path / "m.csv")
    with pytest.raises(DataworthError, match="rows"):
        influence_values(model, X, y, rows=[0, 30])
    Xc, yc = _data("iris", 30)
    clf = LinearInfluence(LogisticRegression(), Xc, yc)
    with pytest.raises(DataworthError, match="not in the training data"):
        clf.test_gradients(Xc[:2], np.array([0, 7]))


# ---------------------------------------------------------------------------- memory


def _memory(monkeypatch: pytest.MonkeyPatch, gib: float) -> None:
    """Pretend the machine has ``gib`` GiB available (the check must not depend on the host)."""
    import dataworth.memory

    monkeypatch.setattr(dataworth.memory, "available_memory", lambda: int(gib * 2**30))


def test_wide_data_is_refused_through_the_cli_before_any_allocation(
    tmp_path, capsys, monkeypatch
) -> None:
    """Issue 13: 40 rows x 50,000 features need an 18.6 GiB Hessian (three copies at once):
    one error line with the size and the way out, exit code 2, and no attempt to allocate."""
    import time

    import pandas as pd

    from dataworth.cli import main

    _memory(monkeypatch, 16.0)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(40, 50_000)).round(2))
    frame.columns = [f"f{j}" for j in range(frame.shape[1])]
    frame["label"] = np.arange(40) % 2
    path = tmp_path / "wide.csv"
    frame.to_csv(path, index=False)
    capsys.readouterr()
    started = time.monotonic()
    with pytest.raises(SystemExit) as exc:
        main(["value", str(path), "--target", "label", "--method", "influence"])
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    for needle in ("50001 x 50001 Hessian", "18.6 GiB", "16.0 GiB available", "knn-shapley"):
        assert needle in errors[0], errors[0]
    assert elapsed < 60  # reading the 2,000,000 cells; the check itself is immediate


def test_hessian_memory_is_checked_before_fitting(monkeypatch) -> None:
    _memory(monkeypatch, 0.5)  # 3 copies of 6001^2 floats: 0.8 GiB
    X = np.random.default_rng(1).normal(size=(10, 6000))
    y = np.arange(10) % 3
    with pytest.raises(DataworthError, match=r"18003 x 18003 Hessian \(6000 features, 3 classes\)"):
        LinearInfluence(LogisticRegression(), X, y)
    with pytest.raises(DataworthError, match="6001 x 6001 Hessian"):
        LinearInfluence(Ridge(), X, y.astype(float))
    _memory(monkeypatch, 0.001)  # 1 MiB: a 3 x 3 Hessian still fits
    LinearInfluence(Ridge(), X[:, :2], y.astype(float))


def test_influence_matrix_in_memory_is_checked(monkeypatch, tmp_path) -> None:
    X, y = _data("diabetes", 60)
    model = LinearInfluence(Ridge(), X, y)
    _memory(monkeypatch, 1e-6)  # about 1 KiB: 60 x 60 floats do not fit
    with pytest.raises(DataworthError, match=r"60 x 60 influence matrix.*out="):
        influence_matrix(model, X, y)
    streamed = influence_matrix(model, X, y, out=tmp_path / "m.npy")  # on disk: no check
    assert streamed.shape == (60, 60)
    with pytest.raises(DataworthError, match="parameter influences"):
        influence_on_parameters(model)
