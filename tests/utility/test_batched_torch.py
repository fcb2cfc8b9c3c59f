"""The torch back end of batched logistic regression: the numpy trainer's answers, on any device."""

from __future__ import annotations

import pickle
import subprocess
import sys
from functools import cache

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from numpy.typing import NDArray  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_iris, load_wine  # noqa: E402
from sklearn.linear_model import LogisticRegression, Ridge  # noqa: E402

import dataworth.utility.batched as batched  # noqa: E402
from dataworth.datasets import load_dataset  # noqa: E402
from dataworth.errors import DataworthError  # noqa: E402
from dataworth.utility.batched import BatchedUtility, Unsupported, resolve_device  # noqa: E402
from dataworth.utility.batched.logistic import LogisticTrainer, make_trainer  # noqa: E402

Array = NDArray[np.float64]
LOADERS = {"breast_cancer": load_breast_cancer, "iris": load_iris, "wine": load_wine}


@cache
def _data(name: str) -> tuple[Array, NDArray[np.intp]]:
    """Standardised features and class codes (the first 200 breast-cancer rows)."""
    X, y = LOADERS[name](return_X_y=True)
    if name == "breast_cancer":
        X, y = X[:200], y[:200]
    std = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0), np.asarray(y, dtype=np.intp)


def _weights(y: NDArray[np.intp], seed: int, n: int = 80, *, bootstrap: bool = False) -> Array:
    """Random subsets (or bootstrap counts) of many sizes; for three or more classes a third of
    them on two classes only. Rows with fewer than two classes are dropped."""
    rng = np.random.default_rng(seed)
    K = int(y.max()) + 1
    if bootstrap:
        sizes = rng.integers(4, y.size + 1, size=n)
        W = np.array([np.bincount(rng.integers(0, y.size, s), minlength=y.size) for s in sizes])
    else:
        W = rng.random((n, y.size)) < rng.uniform(0.03, 0.95, size=(n, 1))
    W = W.astype(np.float64)
    if K >= 3:  # two present classes: fitted as binary models
        drop = rng.integers(0, K, size=n // 3)
        W[: n // 3] *= y[None, :] != drop[:, None]
    W[0] = 0.0  # the smallest subset: one row of each of two classes
    W[0, [np.flatnonzero(y == 0)[0], np.flatnonzero(y == 1)[0]]] = 1.0
    present = (W @ np.eye(K)[y]) > 0
    return W[present.sum(axis=1) >= 2]


@pytest.mark.parametrize("bootstrap", [False, True])
@pytest.mark.parametrize("name", ["breast_cancer", "iris", "wine"])
def test_torch_trainer_agrees_with_numpy(name: str, bootstrap: bool) -> None:
    X, y = _data(name)
    K = int(y.max()) + 1
    W = _weights(y, seed=len(name) + bootstrap, bootstrap=bootstrap)
    model = LogisticRegression()
    ref = make_trainer(model, X, y, K).fit(W)
    trainer = make_trainer(model, X, y, K, "cpu")
    fit = trainer.fit(W)
    assert fit.binary.tolist() == ref.binary.tolist()
    assert (K < 3) or 0 < fit.binary.sum() < fit.binary.size  # both solvers were exercised
    assert fit.present.tolist() == ref.present.tolist()
    assert fit.converged.all() and ref.converged.all()
    np.testing.assert_allclose(fit.coef, ref.coef, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(fit.intercept, ref.intercept, rtol=1e-7, atol=1e-9)
    pred = trainer.fit_predict(W, X)
    assert pred.dtype == np.intp and pred.shape == (W.shape[0], X.shape[0])
    assert np.mean(pred == ref.predict(X)) >= 0.999  # but for exact decision ties
    np.testing.assert_array_equal(pred, fit.predict(X))


@pytest.mark.parametrize("name", ["breast_cancer", "wine"])
def test_float32_is_close(name: str) -> None:
    X, y = _data(name)
    K = int(y.max()) + 1
    W = _weights(y, seed=7, n=60)
    ref = make_trainer(LogisticRegression(), X, y, K).fit(W)
    fit = make_trainer(LogisticRegression(), X, y, K, "cpu", dtype="float32").fit(W)
    scale = np.abs(ref.coef).max()
    assert np.abs(fit.coef - ref.coef).max() <= 1e-3 * scale
    assert np.mean(fit.predict(X) == ref.predict(X)) >= 0.99


def test_settings_are_those_of_the_numpy_trainer() -> None:
    X, y = _data("iris")
    trainer = make_trainer(LogisticRegression(C=0.3, fit_intercept=False), X, y, 3, "cpu")
    assert (trainer.C, trainer.fit_intercept, trainer.binary_c_factor) == (0.3, False, 1.0)
    W = _weights(y, seed=3, n=40)
    ref = make_trainer(LogisticRegression(C=0.3, fit_intercept=False), X, y, 3).fit(W)
    np.testing.assert_allclose(trainer.fit(W).coef, ref.coef, rtol=1e-7, atol=1e-9)
    with pytest.raises(Unsupported, match="class_weight"):
        make_trainer(LogisticRegression(class_weight="balanced"), X, y, 3, "cpu")
    with pytest.raises(Unsupported, match="penalty"):
        make_trainer(LogisticRegression(penalty="l1", solver="saga"), X, y, 3, "cpu")
    with pytest.raises(ValueError, match="dtype"):
        make_trainer(LogisticRegression(), X, y, 3, "cpu", dtype="float16")


def test_refuses_single_class_rows_and_bad_shapes() -> None:
    X, y = _data("breast_cancer")
    trainer = LogisticTrainer(X, y, 2, device="cpu")
    with pytest.raises(ValueError, match="two classes"):
        trainer.fit_predict((y == 0)[None, :].astype(float), X)
    with pytest.raises(ValueError, match="shape"):
        trainer.fit(np.ones((2, 3)))


def test_small_blocks_and_pickling_give_the_same_answers() -> None:
    X, y = _data("wine")
    W = _weights(y, seed=11, n=50)
    trainer = make_trainer(LogisticRegression(), X, y, 3, "cpu")
    pred = trainer.fit_predict(W, X)
    tiny = LogisticTrainer(X, y, 3, device="cpu")
    tiny.block_bytes = 5 * tiny._bytes_per_row(is_binary=False)  # blocks of 5 or more subsets
    np.testing.assert_array_equal(tiny.fit_predict(W, X), pred)
    clone = pickle.loads(pickle.dumps(trainer))
    assert clone._dev is None and clone._warm.keys() == trainer._warm.keys()  # numpy warm starts
    np.testing.assert_array_equal(clone.fit_predict(W, X), pred)


def test_importing_dataworth_never_imports_torch() -> None:
    code = (
        "import sys, dataworth, dataworth.utility.batched.logistic\n"
        "from dataworth.utility.batched import BatchedUtility\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------------- devices
@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.usefixtures("no_cuda")
def test_device_resolution_without_cuda() -> None:
    lr = LogisticRegression()
    assert resolve_device("auto", lr) == "numpy"
    assert resolve_device("numpy", lr) == resolve_device("CPU", lr) == "numpy"
    assert resolve_device("torch", lr) == "torch"
    for device in ("cuda", "cuda:0"):
        with pytest.raises(DataworthError, match=r'CUDA.*pip install "dataworth\[torch\]"'):
            resolve_device(device, lr)
    with pytest.raises(DataworthError, match="device must be"):
        resolve_device("gpu", lr)
    assert resolve_device("auto", Ridge()) == "numpy"  # no torch trainer: numpy
    with pytest.raises(DataworthError, match="only LogisticRegression"):
        resolve_device("torch", Ridge())


def test_device_resolution_with_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    lr = LogisticRegression()
    assert resolve_device("auto", lr) == resolve_device("cuda", lr) == "cuda:0"
    assert resolve_device("cuda:1", lr) == "cuda:1"
    with pytest.raises(DataworthError, match="2 CUDA device"):
        resolve_device("cuda:2", lr)
    assert resolve_device("auto", Ridge()) == "numpy"


def test_device_resolution_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batched, "_import_torch", lambda: None)
    lr = LogisticRegression()
    assert resolve_device("auto", lr) == "numpy"
    with pytest.raises(DataworthError, match=r'needs PyTorch: pip install "dataworth\[torch\]"'):
        resolve_device("torch", lr)


def _standardised(name: str, n_train: int = 120):
    train, valid = load_dataset(name).split(0.3, random_state=0)
    train = train.take(np.arange(min(n_train, train.n_samples)))
    mean, std = train.X.mean(axis=0), train.X.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return train.replace(X=(train.X - mean) / std), valid.replace(X=(valid.X - mean) / std)


@pytest.mark.usefixtures("no_cuda")
@pytest.mark.parametrize("name", ["breast_cancer", "wine"])
def test_batched_utility_scores_equal_on_torch_and_numpy(name: str) -> None:
    train, valid = _standardised(name)
    model = LogisticRegression(max_iter=1000)
    on_torch = BatchedUtility(model, train, valid, device="torch")
    on_numpy = BatchedUtility(model, train, valid, device="numpy")
    assert BatchedUtility(model, train, valid).device == "numpy"  # auto, without CUDA
    assert on_torch.device == "torch" and isinstance(on_torch.trainer, LogisticTrainer)
    assert on_torch.trainer.device == "cpu" and on_numpy.trainer.device == "numpy"
    assert on_torch.fingerprint_parts() == on_numpy.fingerprint_parts()
    rng = np.random.default_rng(0)
    masks = rng.random((120, train.n_samples)) < rng.uniform(0.02, 0.95, size=(120, 1))
    masks[0] = False
    a, b = on_torch.evaluate_many(masks), on_numpy.evaluate_many(masks)
    assert np.mean(np.abs(a - b) < 1e-12) >= 0.99  # equal but for rare exact ties
    assert np.max(np.abs(a - b)) <= 2.0 / valid.n_samples + 1e-12
    order = rng.permutation(train.n_samples)
    pa, pb = on_torch.evaluate_prefixes(order), on_numpy.evaluate_prefixes(order)
    assert np.mean(np.abs(pa - pb) < 1e-12) >= 0.99
