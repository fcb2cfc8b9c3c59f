"""Influence-based data poisoning as a robustness study, and how valuation flags the poison.

Koh & Liang (2017, section 5.2) perturb the *features* of a few training points to raise the loss
on a target: moving training point ``z_i = (x_i, y_i)`` by ``delta`` (and retraining) changes the
mean target loss by about ``delta . I_pert(z_i) / n``, with

    I_pert(z_i) = grad_x I_up(z_i) = - grad_x [ grad L_target^T H^-1 grad_theta L(x, y_i) ]

taken at ``x = x_i`` with the parameters held fixed (:func:`perturbation_influence`; the implicit
function theorem makes this the exact derivative of the retrained loss, not an approximation).
For binary logistic regression with ``p = sigmoid(theta . [x, 1])``, ``grad_theta L = (p - y)
[x, 1]`` and, with ``v = H^-1 grad L_target``,

    grad_x (v . grad_theta L) = p (1 - p) (v . [x, 1]) w + (p - y) v_w,

``w`` and ``v_w`` the coefficient parts (no intercept). :func:`craft_poison` takes projected
sign-gradient steps on those features inside a box (an L-infinity ball of radius ``budget``
around the original point, intersected with the features' range), retraining after every round
(Madry et al.'s PGD on the influence objective), and keeps the iterate of highest target loss.
``mode="add"`` is the stronger attack in the spirit of Koh, Steinhardt & Liang (2022): the
attacker inserts ``k`` new rows, copies of training rows with another label, and moves them the
same way.

:func:`dataworth.experiments.poisoning_study` is the robustness study: held-out error as the
number of poisoned rows grows (next to a random perturbation of the same budget), how well each
valuation method and the self-influence flag the poison (AUROC), and what removing the flagged
rows gives back (the defence). It is meant to measure a model's fragility and a defence, not as
a weapon: it needs white-box access to the model, the training data and the target.

Examples
--------
>>> import numpy as np
>>> from dataworth.data import Dataset
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(120, 3)); y = (X[:, 0] + 0.3 * rng.normal(size=120) > 0).astype(int)
>>> train, target = Dataset.from_arrays(X[:80], y[:80]), Dataset.from_arrays(X[80:], y[80:])
>>> poisoned, rows = craft_poison(train, target, 4, budget=0.5, steps=5, random_state=0)
>>> rows.size, float(np.abs(poisoned.X - train.X).max().round(9))
(4, 0.5)
>>> target_loss(poisoned, target) > target_loss(train, target)
True
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.special
from numpy.typing import NDArray
from sklearn.exceptions import ConvergenceWarning

from dataworth.data import Dataset, is_categorical
from dataworth.errors import DataworthError

__all__ = ["craft_poison", "perturbation_influence", "target_loss"]

_F64 = NDArray[np.float64]

_MODES = ("modify", "add")
_ATTACKS = ("influence", "random")


# ---------------------------------------------------------------------------------- gradients
def _encode(model: Any, y: Any) -> _F64:
    """Targets in the model's loss: 0/1 (binary), one-hot (multiclass), floats (regression)."""
    y = np.asarray(y)
    if model.kind != "logistic":
        return np.asarray(y, dtype=np.float64)
    classes = model.classes_
    pos = np.clip(np.searchsorted(classes, y), 0, classes.size - 1)
    if not np.all(classes[pos] == y):
        unknown = sorted(set(y[classes[pos] != y].tolist()))[:3]
        raise DataworthError(f"labels {unknown} were not in the training data.")
    if model.n_outputs == 1:
        return (pos == 1).astype(np.float64)
    return np.asarray(np.eye(classes.size)[pos], dtype=np.float64)


def _design(model: Any, X: _F64) -> _F64:
    return np.column_stack([X, np.ones(X.shape[0])]) if model.fit_intercept else X


def _target_direction(model: Any, X_target: Any, y_target: Any) -> _F64:
    """``v = H^-1 grad L_target``, with ``L_target`` the mean loss over the target rows."""
    g = model.to_numpy(model.test_gradients(X_target, y_target, "loss")).mean(axis=0)
    return np.asarray(model.solve(g[None, :])[0], dtype=np.float64)


def _pert(model: Any, X: _F64, y: Any, v: _F64) -> _F64:
    """``I_pert`` of the rows ``(X, y)`` given ``v = H^-1 grad L_target`` (shape ``(k, d)``)."""
    d = X.shape[1]
    Xd = _design(model, X)
    t = _encode(model, y)
    theta = np.asarray(model.theta, dtype=np.float64)
    if model.kind != "logistic":  # loss (x.theta - y)^2, grad_theta = 2 r [x, 1]
        r = Xd @ theta - t
        s = Xd @ v
        grad = 2.0 * (s[:, None] * theta[None, :d] + r[:, None] * v[None, :d])
    elif model.n_outputs == 1:
        p = scipy.special.expit(Xd @ theta)
        s = Xd @ v
        grad = (p * (1.0 - p) * s)[:, None] * theta[None, :d] + (p - t)[:, None] * v[None, :d]
    else:  # softmax: d p_k / d x = p_k (W_k - sum_j p_j W_j)
        K = model.n_outputs
        Theta = theta.reshape(K, -1)
        V = v.reshape(K, -1)
        P = scipy.special.softmax(Xd @ Theta.T, axis=1)
        SP = (Xd @ V.T) * P
        W = Theta[:, :d]
        grad = (P - t) @ V[:, :d] + SP @ W - SP.sum(axis=1, keepdims=True) * (P @ W)
    return np.asarray(-grad, dtype=np.float64)


def _as_xy(data: Any, name: str) -> tuple[_F64, NDArray[Any]]:
    if isinstance(data, Dataset):
        return data.X, data.y
    try:
        X, y = data
    except (TypeError, ValueError):
        raise DataworthError(f"{name} must be a Dataset or a pair (X, y).") from None
    X = np.asarray(X, dtype=np.float64)
    y = np.atleast_1d(np.asarray(y))
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2 or X.shape[0] != y.shape[0] or X.shape[0] == 0:
        raise DataworthError(
            f"{name} must hold one or more rows: X of shape (m, d) and y of shape (m,); "
            f"got {X.shape} and {y.shape}."
        )
    return X, y


def perturbation_influence(model: Any, X: Any, y: Any, X_target: Any, y_target: Any) -> _F64:
    """``I_pert(z, target)``: how moving each training point's features changes the target loss.

    The gradient, with respect to the features ``x`` of a training point ``z = (x, y)``, of its
    up-weighting influence ``I_up(z) = -grad L_target^T H^-1 grad_theta L(x, y)`` on the mean
    loss over the target rows (Koh & Liang 2017, eq. for training-set attacks), parameters held
    fixed. Retraining with ``x_i`` moved by a small ``delta`` changes the mean target loss by
    ``delta . I_pert(z_i) / n`` to first order (``n`` training rows; exact as a derivative).

    Parameters
    ----------
    model : LinearInfluence
        The fitted closed-form influence model (logistic regression, binary or multinomial;
        ridge or least squares).
    X, y : array-like of shape (k, d) and (k,)
        The training points (rows of the data the model was fitted on).
    X_target, y_target : array-like
        The target rows whose mean loss is the attacked quantity (one row for a targeted attack).

    Returns
    -------
    ndarray of shape (k, d)
        ``n`` times the derivative of the retrained mean target loss with respect to each
        point's features.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from dataworth.influence import LinearInfluence
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(50, 2)); y = (X[:, 0] > 0).astype(int)
    >>> model = LinearInfluence(LogisticRegression(), X, y)
    >>> perturbation_influence(model, X[:3], y[:3], X[40:], y[40:]).shape
    (3, 2)
    """
    if not all(hasattr(model, a) for a in ("theta", "kind", "fit_intercept", "solve")):
        raise DataworthError(
            "perturbation_influence needs a dataworth.influence.LinearInfluence model; got "
            f"{type(model).__name__}."
        )
    X_arr = np.asarray(X, dtype=np.float64)
    if X_arr.ndim != 2 or X_arr.shape[1] != model.theta.size // model.n_outputs - int(
        model.fit_intercept
    ):
        raise DataworthError(f"X must be (k, n_features) for the model; got shape {X_arr.shape}.")
    v = _target_direction(model, X_target, y_target)
    return _pert(model, X_arr, y, v)


def _fit_influence(model: Any, X: _F64, y: NDArray[Any]) -> Any:
    from dataworth.influence import LinearInfluence

    return LinearInfluence(model, X, y)


def _loss_of(model: Any, X: _F64, y: Any) -> float:
    """Mean loss of the fitted influence model's exact optimum on ``(X, y)``."""
    Xd = _design(model, X)
    t = _encode(model, y)
    theta = np.asarray(model.theta, dtype=np.float64)
    if model.kind != "logistic":
        return float(np.mean((Xd @ theta - t) ** 2))
    if model.n_outputs == 1:
        z = Xd @ theta
        return float(np.mean(np.logaddexp(0.0, z) - t * z))
    Z = Xd @ theta.reshape(model.n_outputs, -1).T
    return float(np.mean(scipy.special.logsumexp(Z, axis=1) - (Z * t).sum(axis=1)))


def _model_or_default(train: Dataset, model: Any) -> Any:
    if model is not None:
        return model
    from dataworth.models import default_model

    return default_model(train.y)


def target_loss(train: Dataset, target: Any, model: Any = None) -> float:
    """Mean loss on ``target`` of ``model`` trained (to its exact optimum) on ``train``.

    Log-loss for logistic regression, squared error for ridge and least squares; ``model``
    defaults to logistic regression for class labels.

    Examples
    --------
    >>> import numpy as np
    >>> from dataworth.data import Dataset
    >>> ds = Dataset.from_arrays([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    >>> round(target_loss(ds, ds), 3)
    0.348
    """
    X_t, y_t = _as_xy(target, "target")
    fitted = _fit_influence(_model_or_default(train, model), train.X, train.y)
    return _loss_of(fitted, X_t, y_t)


# ---------------------------------------------------------------------------------- crafting
def _check_budget(budget: Any, d: int) -> _F64:
    b = np.asarray(budget, dtype=np.float64)
    if b.ndim > 1 or (b.ndim == 1 and b.size != d):
        raise DataworthError(
            f"budget must be a number or one number per feature ({d}); got shape {b.shape}."
        )
    if not np.all(np.isfinite(b)) or np.any(b < 0):
        raise DataworthError(f"budget must be finite and >= 0; got {budget!r}.")
    return np.broadcast_to(b, (d,)).astype(np.float64)


def _check_bounds(bounds: Any, train: Dataset) -> tuple[_F64, _F64]:
    d = train.n_features
    if bounds is None:
        return np.full(d, -np.inf), np.full(d, np.inf)
    if isinstance(bounds, str):
        if bounds != "data":
            raise DataworthError(f"bounds must be 'data', None or (low, high); got {bounds!r}.")
        return train.X.min(axis=0), train.X.max(axis=0)
    try:
        lo, hi = bounds
    except (TypeError, ValueError):
        raise DataworthError("bounds must be 'data', None or a pair (low, high).") from None
    lo_a = np.broadcast_to(np.asarray(lo, dtype=np.float64), (d,)).copy()
    hi_a = np.broadcast_to(np.asarray(hi, dtype=np.float64), (d,)).copy()
    if np.any(lo_a > hi_a) or np.any(np.isnan(lo_a)) or np.any(np.isnan(hi_a)):
        raise DataworthError("bounds: every low must be <= its high.")
    return lo_a, hi_a


def _box(x0: _F64, budget: _F64, lo: _F64, hi: _F64, rows: NDArray[np.intp]) -> tuple[_F64, _F64]:
    """The feasible box of each poisoned row: ``[x0 - budget, x0 + budget]`` within bounds."""
    lower = np.maximum(x0 - budget, lo)
    upper = np.minimum(x0 + budget, hi)
    bad = np.flatnonzero((lower > upper).any(axis=1))
    if bad.size:
        raise DataworthError(
            f"training row {int(rows[bad[0]])} lies outside the bounds by more than the budget; "
            "widen the bounds or use bounds='data'."
        )
    return lower, upper


def _flipped_labels(model: Any, X: _F64, y: NDArray[Any], v: _F64) -> tuple[NDArray[Any], _F64]:
    """For each row the other label whose copy most raises the target loss, and that ``I_up``."""
    classes = np.asarray(model.classes_)
    best_label = np.empty(y.shape[0], dtype=classes.dtype)
    best = np.full(y.shape[0], -np.inf)
    for c in classes.tolist():  # a loop over classes, not rows
        labels = np.full(y.shape[0], c, dtype=classes.dtype)
        up = -model.to_numpy(model.test_gradients(X, labels, "loss")) @ v
        better = (y != c) & (up > best)
        best = np.where(better, up, best)
        best_label = np.where(better, labels, best_label)
    return best_label, best


def _gain(G: _F64, x: _F64, lower: _F64, upper: _F64) -> _F64:
    """First-order gain of the best move of each row inside its box (``n`` x loss change)."""
    return np.asarray(
        np.maximum(G * (upper - x), G * (lower - x)).clip(min=0.0).sum(axis=1), dtype=np.float64
    )


def craft_poison(
    train: Dataset,
    target: Any,
    k: int,
    budget: float | Any = 1.0,
    steps: int = 10,
    random_state: int | None = None,
    *,
    mode: str = "modify",
    attack: str = "influence",
    step_size: float | None = None,
    bounds: Any = "data",
    model: Any = None,
) -> tuple[Dataset, NDArray[np.intp]]:
    """Poison ``k`` training rows to raise the loss on ``target`` (Koh & Liang 2017, 5.2).

    ``attack="influence"``: choose the ``k`` rows whose best move inside their box gives the
    largest first-order rise of the target loss (``mode="add"``: the largest rise from adding a
    relabelled copy and moving it), then ``steps`` rounds of ``x <- clip(x + step_size *
    sign(I_pert(x)))`` on their features, retraining the model after every round; the iterate
    with the highest retrained target loss is returned. ``attack="random"`` is the baseline of
    the same size: ``k`` random rows moved to a random corner of their box (every feature by
    ``+-budget``, within the bounds), with the same relabelling in ``mode="add"``.

    Parameters
    ----------
    train : Dataset
        Clean training data (features in the units the budget is given in; standardise first to
        give the budget in standard deviations).
    target : Dataset or (X, y)
        The rows whose mean loss the attacker raises: one row for a targeted attack, a sample of
        the data distribution for an indiscriminate one.
    k : int
        Number of poisoned rows (``mode="modify"``: at most ``n``).
    budget : float or array of shape (n_features,), default=1.0
        Largest change of each feature of a poisoned row (an L-infinity ball around the row it
        started from).
    steps : int, default=10
        Rounds of gradient steps (one retraining each).
    random_state : int, optional
        Seed for ``attack="random"`` and for ties in the choice of rows.
    mode : {"modify", "add"}, default="modify"
        ``"modify"``: perturb ``k`` existing rows, labels kept (Koh & Liang). ``"add"``: append
        ``k`` copies of training rows, each with the other label that most raises the target
        loss, and perturb them (Koh, Steinhardt & Liang 2022 style).
    attack : {"influence", "random"}, default="influence"
    step_size : float, optional
        Size of a sign step; default ``2.5 * budget / steps``.
    bounds : "data", None or (low, high), default="data"
        Allowed feature range: the per-feature minimum and maximum of ``train`` (``"data"``),
        unbounded (``None``) or given.
    model : estimator, optional
        scikit-learn ``LogisticRegression`` (default), ``Ridge`` or ``LinearRegression``.

    Returns
    -------
    (Dataset, ndarray of int)
        The poisoned training set (``mode="add"``: ``n + k`` rows, the new ones at the end with
        row labels ``n..n+k-1`` or ``"poison<i>"``) and the sorted positions of the poisoned rows.

    Examples
    --------
    >>> import numpy as np
    >>> from dataworth.data import Dataset
    >>> rng = np.random.default_rng(1)
    >>> X = rng.normal(size=(60, 2)); y = (X[:, 0] > 0).astype(int)
    >>> train = Dataset.from_arrays(X[:40], y[:40])
    >>> poisoned, rows = craft_poison(train, (X[40:], y[40:]), 2, budget=0.3, mode="add")
    >>> poisoned.n_samples, rows.tolist()
    (42, [40, 41])
    """
    if mode not in _MODES:
        raise DataworthError(f"mode must be one of {', '.join(_MODES)}; got {mode!r}.")
    if attack not in _ATTACKS:
        raise DataworthError(f"attack must be one of {', '.join(_ATTACKS)}; got {attack!r}.")
    n, d = train.n_samples, train.n_features
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise DataworthError(f"k must be a positive whole number; got {k!r}.")
    if mode == "modify" and k > n:
        raise DataworthError(f"k={k} is more than the {n} training rows.")
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 0:
        raise DataworthError(f"steps must be a whole number >= 0; got {steps!r}.")
    b = _check_budget(budget, d)
    lo, hi = _check_bounds(bounds, train)
    X_t, y_t = _as_xy(target, "target")
    if X_t.shape[1] != d:
        raise DataworthError(f"target has {X_t.shape[1]} features; train has {d}.")
    model = _model_or_default(train, model)
    if mode == "add" and not (hasattr(model, "predict_proba") and is_categorical(train.y)):
        raise DataworthError("mode='add' relabels the copies: it needs a classifier and labels.")
    rng = np.random.default_rng(random_state)
    k = int(k)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = _fit_influence(model, train.X, train.y)
        X, y = train.X, train.y
        v = _target_direction(fitted, X_t, y_t)
        labels = y
        up = np.zeros(n)
        if mode == "add":
            labels, up = _flipped_labels(fitted, X, y, v)
        if attack == "influence":
            lower, upper = _box(X, b, lo, hi, np.arange(n))
            gain = _gain(_pert(fitted, X, labels, v), X, lower, upper) + up
            gain = np.where(np.isfinite(gain), gain, -np.inf)
            # stable: ties go to the earlier row after a seeded shuffle
            perm = rng.permutation(n)
            chosen = perm[np.argsort(-gain[perm], kind="stable")[:k]]
        else:
            chosen = rng.choice(n, size=k, replace=False)
        chosen = np.sort(chosen).astype(np.intp)
        x0 = X[chosen]
        lower, upper = _box(x0, b, lo, hi, chosen)

        if mode == "modify":
            X_all = X.copy()
            y_all = y.copy()
            rows = chosen
        else:
            X_all = np.vstack([X, x0])
            y_all = np.concatenate([y, labels[chosen]])
            rows = np.arange(n, n + k, dtype=np.intp)

        if attack == "random":
            signs = rng.choice(np.array([-1.0, 1.0]), size=x0.shape)
            X_all[rows] = np.clip(x0 + signs * b, lower, upper)
        elif steps > 0:
            alpha = 2.5 * b / steps if step_size is None else float(step_size)
            if np.any(np.asarray(alpha) < 0) or not np.all(np.isfinite(alpha)):
                raise DataworthError(f"step_size must be finite and >= 0; got {step_size!r}.")
            best_loss, best_x = -np.inf, X_all[rows].copy()
            for _ in range(int(steps)):
                fitted = _fit_influence(model, X_all, y_all)
                loss = _loss_of(fitted, X_t, y_t)
                if loss > best_loss:
                    best_loss, best_x = loss, X_all[rows].copy()
                G = _pert(fitted, X_all[rows], y_all[rows], _target_direction(fitted, X_t, y_t))
                X_all[rows] = np.clip(X_all[rows] + alpha * np.sign(G), lower, upper)
            loss = _loss_of(_fit_influence(model, X_all, y_all), X_t, y_t)
            if loss < best_loss:
                X_all[rows] = best_x

    if mode == "modify":
        return train.replace(X=X_all), rows
    return _append(train, X_all, y_all, chosen), rows


def _append(train: Dataset, X_all: _F64, y_all: NDArray[Any], sources: NDArray[np.intp]) -> Dataset:
    n, k = train.n_samples, sources.size
    groups = None if train.groups is None else np.concatenate([train.groups, train.groups[sources]])
    labels = (
        np.arange(n + k)
        if train.row_labels.dtype.kind in "iu"
        else np.concatenate([train.row_labels.astype(str), [f"poison{i}" for i in range(k)]])
    )
    return train.replace(X=X_all, y=y_all, groups=groups, row_labels=labels)


# ---------------------------------------------------------------------------------- study
