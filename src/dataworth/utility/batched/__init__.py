"""Batched utilities: train one model on many subsets at once.

For scikit-learn ``LogisticRegression`` (L2), ``Ridge``, ``LinearRegression`` and ``GaussianNB``
the fits of a whole batch of subsets are computed together (vectorized Newton steps, normal
equations or closed-form moments), and scored with vectorized metrics, instead of one
scikit-learn fit at a time. Ridge, linear regression and naive Bayes give scikit-learn's answers
to rounding. Logistic regression is solved to its optimum (gradient ~1e-12), which scikit-learn's
tightly converging solvers (newton-cholesky, or any solver with a small ``tol``) also reach; its
default lbfgs stops at ``tol=1e-4`` and, on unscaled features, can stop far from the optimum, so
a few subset scores differ from one-fit-at-a-time (standardise features, or use
``batched=False`` / ``--no-batch`` for bit-compatibility). Anything unsupported falls back to
:class:`ModelUtility`, never to a different model.

Logistic regression can also be fitted with PyTorch (``pip install "dataworth[torch]"``), on a GPU
when one is available (``device="auto"``, the default) or on demand (``device="torch"`` for the
CPU, ``"cuda"``/``"cuda:N"``); torch is imported only then, never by ``import dataworth``.

Examples
--------
>>> from sklearn.linear_model import LogisticRegression
>>> from dataworth.datasets import load_dataset
>>> train, valid = load_dataset("breast_cancer").split(0.3, random_state=0)
>>> u = BatchedUtility(LogisticRegression(max_iter=1000), train, valid)
>>> scores = u.evaluate_many(np.random.default_rng(0).random((8, u.n_players)) < 0.5)
>>> scores.shape
(8,)
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable
from importlib import import_module
from importlib.util import find_spec
from numbers import Real
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import is_classifier

from dataworth.data import Dataset
from dataworth.errors import DataworthError, UtilityError
from dataworth.models import check_params
from dataworth.utility.model import ModelUtility, Scorer

__all__ = [
    "BatchedUtility",
    "Trainer",
    "Unsupported",
    "batched_reason",
    "make_trainer",
    "resolve_device",
]


class Unsupported(Exception):
    """The model or its settings have no batched trainer; the message says why."""


class Trainer(Protocol):
    """Fits one model per row of a weight matrix and predicts.

    ``weights`` has shape (B, n_train): sample weights (0/1 for subsets, counts for bootstrap
    bags). For classifiers, every row has at least two distinct classes among its weighted rows
    and predictions are class codes ``0..K-1``; for regressors they are real values.
    """

    def fit_predict(
        self, weights: NDArray[np.float64], X_eval: NDArray[np.float64]
    ) -> NDArray[Any]: ...


#: scikit-learn class name -> "module:factory" under dataworth.utility.batched
_TRAINERS: dict[str, str] = {
    "LogisticRegression": "logistic:make_trainer",
    "Ridge": "linear:make_ridge_trainer",
    "LinearRegression": "linear:make_ols_trainer",
    "GaussianNB": "naive_bayes:make_trainer",
}


def make_trainer(model: Any, X: NDArray[np.float64], y: NDArray[Any], n_classes: int) -> Trainer:
    """A batched trainer for ``model`` (``y`` as class codes for classifiers), or Unsupported."""
    name = type(model).__name__
    if name not in _TRAINERS or type(model).__module__.split(".")[0] != "sklearn":
        raise Unsupported(f"no batched trainer for {name}")
    module, factory = _TRAINERS[name].split(":")
    make: Any = getattr(import_module(f"dataworth.utility.batched.{module}"), factory)
    return make(model, X, y, n_classes)


#: Models with a torch trainer: scikit-learn class name -> "module:factory", as _TRAINERS
_TORCH_TRAINERS: dict[str, str] = {"LogisticRegression": "logistic:make_trainer"}

_TORCH_HINT = 'pip install "dataworth[torch]"'


def _import_torch() -> Any:
    """The torch module, or None when it is not installed or fails to import."""
    try:
        return None if find_spec("torch") is None else import_module("torch")
    except Exception:  # a broken install (missing CUDA libraries, ...) counts as absent
        return None


def _gpu_visible() -> bool:
    """Whether an NVIDIA GPU may be present, checked without importing torch (which costs a
    second or two and ~180 MiB): torch already imported, or the NVIDIA driver's device files."""
    if "torch" in sys.modules:
        return True
    return any(os.path.exists(p) for p in ("/proc/driver/nvidia/version", "/dev/nvidia0"))


def resolve_device(device: str, model: Any) -> str:
    """The back end ``device`` selects for ``model``: ``"numpy"``, ``"torch"`` or ``"cuda:N"``.

    ``"auto"``: ``"cuda:N"`` (the current GPU) when ``model`` has a torch trainer, torch imports
    and ``torch.cuda.is_available()``, else ``"numpy"``; ``"numpy"`` or ``"cpu"``: numpy;
    ``"torch"``: torch on the CPU; ``"cuda"``, ``"cuda:N"``: torch on that GPU. An explicit torch
    device for a model without a torch trainer, without torch, or without CUDA is a
    :class:`DataworthError`.
    """
    key = device.strip().lower() if isinstance(device, str) else ""
    if key in ("numpy", "cpu"):
        return "numpy"
    module = type(model).__module__.split(".")[0]
    has_torch_trainer = type(model).__name__ in _TORCH_TRAINERS and module == "sklearn"
    if key == "auto":
        if not has_torch_trainer or not _gpu_visible():
            return "numpy"
        torch = _import_torch()
        if torch is None or not torch.cuda.is_available():
            return "numpy"
        return f"cuda:{torch.cuda.current_device()}"
    if key != "torch" and not re.fullmatch(r"cuda(:\d+)?", key):
        raise DataworthError(
            f"device must be 'auto', 'numpy' (or 'cpu'), 'torch' or 'cuda[:N]'; got {device!r}."
        )
    if not has_torch_trainer:
        raise DataworthError(
            f"device={device!r}: only {', '.join(_TORCH_TRAINERS)} has a torch trainer; "
            f"{type(model).__name__} is batched with numpy (device='auto' or 'numpy')."
        )
    torch = _import_torch()
    if torch is None:
        raise DataworthError(f"device={device!r} needs PyTorch: {_TORCH_HINT}.")
    if key == "torch":
        return "torch"
    if not torch.cuda.is_available():
        raise DataworthError(
            f"device={device!r}: CUDA is not available to PyTorch {torch.__version__} (no GPU, "
            f"or a CPU-only build; on a machine with an NVIDIA GPU, {_TORCH_HINT}); use "
            "device='torch' (CPU) or 'numpy'."
        )
    index = int(key[5:]) if ":" in key else int(torch.cuda.current_device())
    if index >= torch.cuda.device_count():
        raise DataworthError(
            f"device={device!r}: there are {torch.cuda.device_count()} CUDA device(s)."
        )
    return f"cuda:{index}"


def _make_torch_trainer(
    model: Any, X: NDArray[np.float64], y: NDArray[Any], n_classes: int, device: str
) -> Trainer:
    """A torch trainer for ``model`` on a resolved ``device`` ("torch" is the CPU)."""
    module, factory = _TORCH_TRAINERS[type(model).__name__].split(":")
    make: Any = getattr(import_module(f"dataworth.utility.batched.{module}"), factory)
    return make(model, X, y, n_classes, "cpu" if device == "torch" else device)


def _r2(pred: NDArray[Any], y: NDArray[Any]) -> NDArray[np.float64]:
    """r2 per row, with scikit-learn's convention for a constant target (1 if exact, else 0)."""
    residual = ((pred - y) ** 2).sum(axis=1)
    total = float(((y - y.mean()) ** 2).sum())
    if total == 0.0:
        return np.where(residual == 0.0, 1.0, 0.0)
    return 1.0 - residual / total


Score = Callable[[NDArray[Any], NDArray[Any]], NDArray[np.float64]]

#: Scorers computed in batch from predictions, f(pred (B, m), y (m,)) -> (B,), by task.
_CLASSIFICATION_SCORERS: dict[str, Score] = {"accuracy": lambda p, y: np.mean(p == y, axis=1)}
_REGRESSION_SCORERS: dict[str, Score] = {
    "r2": _r2,
    "neg_mean_squared_error": lambda p, y: -np.mean((p - y) ** 2, axis=1),
    "neg_mean_absolute_error": lambda p, y: -np.mean(np.abs(p - y), axis=1),
}


def _scorers(model: Any) -> dict[str, Score]:
    return _CLASSIFICATION_SCORERS if is_classifier(model) else _REGRESSION_SCORERS


#: Stopping settings of iterative scikit-learn solvers: (class name, parameter) -> (default,
#: whether a value stops earlier than the default). The batched trainers always reach the
#: optimum, so a setting that stops earlier is trained one fit at a time, never ignored.
_EARLY_STOP: dict[tuple[str, str], tuple[float | None, Callable[[Any], bool]]] = {
    ("LogisticRegression", "max_iter"): (100, lambda v: v < 100),
    ("LogisticRegression", "tol"): (1e-4, lambda v: v > 1e-4),
    ("Ridge", "max_iter"): (None, lambda v: v is not None),
    ("Ridge", "tol"): (1e-4, lambda v: v > 1e-4),
}

#: Ridge solvers that iterate (the others solve exactly and ignore max_iter and tol).
_ITERATIVE_RIDGE_SOLVERS = ("sag", "saga", "lsqr", "sparse_cg")


def _stops_early(model: Any) -> str | None:
    """Why ``model``'s stopping settings differ from the optimum the trainers compute, or None."""
    name = type(model).__name__
    params = model.get_params(deep=False)
    if name == "Ridge" and params.get("solver", "auto") not in _ITERATIVE_RIDGE_SOLVERS:
        return None
    for (cls, key), (default, early) in _EARLY_STOP.items():
        setting = params.get(key, default)
        if cls == name and (setting is None or isinstance(setting, Real)) and early(setting):
            return (
                f"{key}={setting!r} may stop {name}'s {params.get('solver')} solver before the "
                f"optimum (scikit-learn's default: {default!r}), and the batched trainer, which "
                "solves to the optimum, cannot reproduce that"
            )
    return None


def batched_reason(model: Any, scoring: str | Scorer | None) -> str | None:
    """Why ``model`` with ``scoring`` cannot be batched (None if it can).

    Beyond the trainers' own checks (:func:`make_trainer`), a model told to stop its solver
    early (``LogisticRegression`` with ``max_iter`` below 100 or ``tol`` above 1e-4, an
    iterative ``Ridge`` solver with a ``max_iter`` or a ``tol`` above 1e-4) is not batched, as
    the batched trainers always reach the optimum.
    """
    name = type(model).__name__
    if name not in _TRAINERS:
        return f"no batched trainer for {name}"
    if (early := _stops_early(model)) is not None:
        return early
    allowed = _scorers(model)
    if scoring is not None and (callable(scoring) or scoring not in allowed):
        return f"scoring {scoring!r} is not computed in batch (batched: {', '.join(allowed)})"
    return None


class BatchedUtility(ModelUtility):
    """A :class:`ModelUtility` whose evaluations train many subsets at once.

    Parameters
    ----------
    model, train, valid, scoring, default_score, catch_errors, by_group
        As for :class:`ModelUtility`; with ``catch_errors`` a failed batch scores
        ``default_score`` for each of its subsets (counted).
    batch_size : int, default=256
        Subsets trained together (memory grows with it).
    device : str, default="auto"
        Where logistic regression is trained: ``"auto"`` (PyTorch on the GPU when torch is
        installed and CUDA is available, else numpy), ``"numpy"`` (or ``"cpu"``), ``"torch"``
        (PyTorch on the CPU), ``"cuda"`` or ``"cuda:N"`` (PyTorch on that GPU). The values are
        the same to rounding on every device (so the fingerprint does not depend on it). Other
        models are always trained with numpy: ``"auto"`` chooses numpy for them, and an explicit
        torch device is refused.

    Attributes
    ----------
    device : str
        The back end in use: ``"numpy"``, ``"torch"`` (CPU) or ``"cuda:N"``.

    Raises
    ------
    Unsupported
        When the model, its settings or the scoring have no batched implementation.
    DataworthError
        For an unknown ``device``, or a torch device that is unavailable (torch or CUDA missing)
        or not applicable (a model without a torch trainer).
    """

    def __init__(
        self,
        model: Any,
        train: Dataset,
        valid: Dataset,
        *,
        scoring: str | Scorer | None = None,
        default_score: float = 0.0,
        catch_errors: bool = False,
        by_group: bool = False,
        batch_size: int = 256,
        device: str = "auto",
    ) -> None:
        check_params(model)  # an invalid setting is an error on either path, never a fallback
        reason = batched_reason(model, scoring)
        if reason is not None:
            raise Unsupported(reason)
        super().__init__(
            model, train, valid, scoring=scoring, default_score=default_score,
            catch_errors=catch_errors, by_group=by_group,
        )  # fmt: skip
        if not isinstance(batch_size, int) or batch_size < 1:
            raise DataworthError(f"batch_size must be a positive whole number; got {batch_size!r}.")
        self.batch_size = batch_size
        self._score_fn = _scorers(model)[self.scoring_name]
        if self.classes is not None:
            self._y_train = np.searchsorted(self.classes, train.y)
            pos = np.searchsorted(self.classes, valid.y).clip(0, self.classes.size - 1)
            self._y_valid: NDArray[Any] = np.where(self.classes[pos] == valid.y, pos, -1)
            n_classes = int(self.classes.size)
            self._one_hot = np.eye(n_classes)[self._y_train]
        else:
            self._y_train = np.asarray(train.y, dtype=np.float64)
            self._y_valid = np.asarray(valid.y, dtype=np.float64)
            n_classes = 0
        self.device = resolve_device(device, model)
        if self.device == "numpy":
            self.trainer = make_trainer(model, train.X, self._y_train, n_classes)
        else:
            self.trainer = _make_torch_trainer(
                model, train.X, self._y_train, n_classes, self.device
            )

    # ------------------------------------------------------------------ evaluation
    def __call__(self, subset: ArrayLike) -> float:
        return float(self.evaluate_many([self.mask_of(subset)])[0])

    def evaluate_many(self, subsets: Iterable[ArrayLike]) -> NDArray[np.float64]:
        """Utilities of many subsets, trained ``batch_size`` at a time."""
        if isinstance(subsets, np.ndarray) and subsets.dtype == bool and subsets.ndim == 2:
            if subsets.shape[1] != self.n_players:
                raise DataworthError(
                    f"subset masks must have {self.n_players} columns; got {subsets.shape[1]}."
                )
            masks = subsets
        else:
            masks = np.array([self.mask_of(s) for s in subsets], dtype=bool)
            masks = masks.reshape(-1, self.n_players)
        out = np.empty(masks.shape[0])
        for start in range(0, masks.shape[0], self.batch_size):
            block = masks[start : start + self.batch_size]
            out[start : start + block.shape[0]] = self._evaluate_block(block)
        return out

    def classes_present(self, weights: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Which classes have positive weight in each row of ``weights`` (B, n_train) -> (B, K)."""
        return (weights @ self._one_hot) > 0

    def _evaluate_block(self, masks: NDArray[np.bool_]) -> NDArray[np.float64]:
        weights = masks[:, self.player_of_row].astype(np.float64)
        scores = np.full(masks.shape[0], self.default_score)
        sizes = weights.sum(axis=1)
        todo = sizes > 0
        if self.classes is not None:
            present = self.classes_present(weights)
            single = todo & (present.sum(axis=1) == 1)
            for b in np.flatnonzero(single):
                scores[b] = self._constant_score(self.classes[np.argmax(present[b])])
            todo &= ~single
        if todo.any():
            try:
                pred = self.trainer.fit_predict(weights[todo], self.valid.X)
            except Exception as exc:
                if not self.catch_errors:
                    raise UtilityError(
                        f"batched {type(self.model).__name__} failed on {int(todo.sum())} "
                        f"subsets: {type(exc).__name__}: {exc}. Use one fit at a time "
                        "(batched=False, --no-batch) or opt in to scoring failures as "
                        "default_score (catch_errors=True, --catch-errors)."
                    ) from exc
                self.n_failures += int(todo.sum())
                return scores
            scores[todo] = self._score_fn(pred, self._y_valid)
        return scores

    def evaluate_prefixes(
        self,
        order: NDArray[np.intp],
        *,
        truncate_below: float | None = None,
        total: float | None = None,
    ) -> NDArray[np.float64]:
        """Utilities of all prefixes of ``order`` (one permutation, or one per row), batched.

        The prefixes of every permutation go to the trainer together, ``batch_size`` subsets a
        call; when truncating, blocks of 32 prefixes of each permutation still running.
        """
        orders = np.atleast_2d(np.asarray(order, dtype=np.intp))
        m, n = orders.shape
        out = np.empty((m, n + 1))
        out[:, 0] = self.default_score
        rank = np.empty((m, self.n_players), dtype=np.intp)
        rank[np.arange(m)[:, None], orders] = np.arange(n)
        truncating = truncate_below is not None and total is not None
        step = (min(self.batch_size, 32) if truncating else n) or 1
        running = np.arange(m)
        for start in range(1, n + 1, step):
            ks = np.arange(start, min(start + step, n + 1))
            masks = rank[running][:, None, :] < ks[None, :, None]
            u = self.evaluate_many(masks.reshape(-1, self.n_players)).reshape(running.size, -1)
            out[running[:, None], ks[None, :]] = u
            if truncating:
                assert total is not None and truncate_below is not None
                close = np.abs(total - u) < truncate_below
                for row in np.flatnonzero(close.any(axis=1)):
                    k = int(ks[np.argmax(close[row])])
                    out[running[row], k + 1 :] = out[running[row], k]
                running = running[~close.any(axis=1)]
                if running.size == 0:
                    break
        return out if np.ndim(order) == 2 else out[0]
