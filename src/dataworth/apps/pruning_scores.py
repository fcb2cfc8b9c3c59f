"""Pruning scores beyond values: the difficulty metrics of Sorscher et al. (2022).

Sorscher, Geirhos, Shekhar, Ganguli & Morcos, *Beyond neural scaling laws: beating power law
scaling via data pruning* (NeurIPS 2022), rank the training examples by difficulty and keep the
**easiest** ones when data is scarce, the **hardest** when it is plentiful. Every score here is
oriented the same way: **higher = harder** (more informative, or more likely mislabelled).

- :func:`el2n_scores`: EL2N (Paul, Ganguli & Dziugaite 2021), ``||p(x_i) - e_{y_i}||_2``, the
  norm of the error vector of the softmax output, after a few epochs, averaged over seeds.
- :func:`grand_scores`: GraNd (same paper), the norm of the per-example loss gradient with
  respect to all weights, after a few epochs, averaged over seeds.
- :func:`forgetting_scores`: forgetting events (Toneva et al. 2019), how often an example that
  was classified correctly after one epoch is misclassified after the next; examples never
  learned rank above all others (:func:`count_forgetting`).
- :func:`prototype_scores`: self-supervised prototypes (Sorscher et al. 2022), k-means on
  embeddings, then the distance to the nearest centroid (far = atypical = hard). No label used.
- :func:`keep_order` keeps the hardest or the easiest fraction; :func:`prune_by_score` scores
  and keeps in one call and returns sorted positions, like :func:`dataworth.apps.prune.prune`.

The training-dynamics scores (EL2N, GraNd, forgetting) train a small network from scratch for
``epochs`` passes over the rows, once per seed. The default ``backend="sklearn"`` is a
scikit-learn ``MLPClassifier`` (ReLU, Adam, one hidden layer of 64 by default;
``hidden_layer_sizes=()`` is softmax regression) trained epoch by epoch with ``partial_fit``;
it needs nothing beyond scikit-learn, and its per-example gradients have a closed form
(:func:`mlp_grad_norms`). ``backend="torch"`` trains the same architecture in PyTorch
(``pip install "dataworth[torch]"``, optionally on a GPU) and takes per-example gradients with
``torch.func``. Features are standardised (training-row mean and standard deviation) before
training unless ``standardize=False``.

Examples
--------
>>> import numpy as np
>>> from dataworth.datasets import load_dataset
>>> iris = load_dataset("iris")
>>> scores = el2n_scores(iris.X, iris.y, n_seeds=2, random_state=0)
>>> scores.shape, bool((scores >= 0).all())
((150,), True)
>>> keep_order([0.1, 0.9, 0.5, 0.3], 0.5, mode="hard").tolist()
[1, 2]
>>> prune_by_score("prototype", iris.X, iris.y, 0.2, mode="easy", random_state=0).size
30
"""

from __future__ import annotations

import inspect
import itertools
import warnings
from collections.abc import Callable, Sequence
from numbers import Integral, Real
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dataworth.apps.prune import class_quotas, n_to_keep
from dataworth.data import is_categorical
from dataworth.engine.runner import check_n_jobs
from dataworth.errors import DataworthError
from dataworth.params import Constraint, InstanceOf, Interval, Options, validate_params
from dataworth.ranking import as_values

__all__ = [
    "BACKENDS",
    "METRICS",
    "MODES",
    "count_forgetting",
    "el2n_scores",
    "error_norms",
    "forgetting_scores",
    "grand_scores",
    "keep_order",
    "mlp_grad_norms",
    "prototype_scores",
    "prune_by_score",
    "pruning_scores",
]

#: The pruning metrics of :func:`pruning_scores`, every one oriented higher = harder.
METRICS: tuple[str, ...] = ("el2n", "grand", "forgetting", "prototype")
#: What :func:`keep_order` keeps: the highest scores (``"hard"``) or the lowest (``"easy"``).
MODES: tuple[str, ...] = ("hard", "easy")
#: Who trains the network of the training-dynamics scores.
BACKENDS: tuple[str, ...] = ("sklearn", "torch")

_TORCH_MISSING = 'backend="torch" needs PyTorch: pip install "dataworth[torch]" (or use "sklearn").'
#: Rows per block when per-example gradients are taken with torch.func.
_GRAD_CHUNK = 1024

_F64 = NDArray[np.float64]
_INT = NDArray[np.intp]

_TRAINING: dict[str, list[Constraint]] = {
    "epochs": [Interval(Integral, 1, None)],
    "n_seeds": [Interval(Integral, 1, None)],
    "batch_size": [Interval(Integral, 1, None)],
    "learning_rate": [Interval(Real, 0, None, closed="neither")],
    "backend": [Options(BACKENDS)],
    "device": [InstanceOf(str, "a device name such as 'cpu' or 'cuda'")],
    "standardize": [Options((True, False))],
    "random_state": [Interval(Integral, 0, None), None],
}


# ------------------------------------------------------------------------------- input checks
def _check_features(X: Any, what: str = "X") -> _F64:
    try:
        Xa = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataworthError(f"{what} must be numeric features (a 2-D array).") from None
    if Xa.ndim != 2:
        raise DataworthError(f"{what} must be a 2-D array of features; got shape {Xa.shape}.")
    if Xa.shape[0] < 2:
        raise DataworthError(f"{what} must have at least 2 rows; got {Xa.shape[0]}.")
    if not np.isfinite(Xa).all():
        raise DataworthError(f"{what} contains NaN or infinite values.")
    return Xa


def _class_codes(y: ArrayLike, n: int) -> _INT:
    """Class codes ``0..K-1`` of class labels, one per row."""
    labels = np.asarray(y)
    if labels.shape != (n,):
        raise DataworthError(f"y must have one label per row ({n}); got shape {labels.shape}.")
    if not is_categorical(labels):
        raise DataworthError(
            "y must hold class labels (integers, strings or booleans); these scores are for "
            f"classification, and got {labels.dtype} values."
        )
    return np.unique(labels, return_inverse=True)[1].astype(np.intp)


def _check_labels(y: ArrayLike, n: int) -> tuple[_INT, int]:
    """Class codes and the number of classes ``K`` (at least 2)."""
    codes = _class_codes(y, n)
    n_classes = int(codes.max()) + 1
    if n_classes < 2:
        raise DataworthError("y holds a single class; the scores need at least 2.")
    return codes, n_classes


def _check_hidden(hidden: Any) -> tuple[int, ...]:
    sizes = (hidden,) if isinstance(hidden, Integral) else hidden
    ok = isinstance(sizes, Sequence) and all(h in Interval(Integral, 1, None) for h in sizes)
    if not ok:
        raise DataworthError(
            f"hidden_layer_sizes must be a tuple of positive whole numbers; got {hidden!r}."
        )
    return tuple(int(h) for h in sizes)


def _standardised(X: _F64) -> _F64:
    std = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)


def _seeds(random_state: int | None, n_seeds: int) -> list[int]:
    return [int(s) for s in np.random.default_rng(random_state).integers(2**31 - 1, size=n_seeds)]


# ------------------------------------------------------------------------------- pure pieces
def error_norms(proba: ArrayLike, codes: ArrayLike) -> _F64:
    """EL2N of each row: the L2 norm of ``proba - one_hot(codes)``.

    Parameters
    ----------
    proba : array-like of shape (n, K)
        Predicted class probabilities.
    codes : array-like of int, shape (n,)
        The class of each row, as a column of ``proba``.

    Examples
    --------
    >>> error_norms([[0.9, 0.1], [0.9, 0.1]], [0, 1]).round(4).tolist()
    [0.1414, 1.2728]
    """
    P = np.asarray(proba, dtype=np.float64)
    c = np.asarray(codes, dtype=np.intp)
    E = P.copy()
    E[np.arange(c.size), c] -= 1.0
    return np.sqrt(np.einsum("ij,ij->i", E, E))


def count_forgetting(correct: ArrayLike) -> _F64:
    """Forgetting counts from per-epoch correctness (Toneva et al. 2019).

    A forgetting event is a row classified correctly after epoch ``t`` and wrongly after epoch
    ``t + 1``. A row never classified correctly (never learned) gets ``T // 2 + 1`` for ``T``
    epochs, one more than any learned row can reach (at most ``T // 2`` events), so it ranks as
    the hardest, as in the paper.

    Parameters
    ----------
    correct : array-like of bool, shape (T, n)
        Whether each row was classified correctly after each epoch.

    Examples
    --------
    >>> correct = [[1, 0, 0, 1], [0, 0, 1, 1], [1, 0, 0, 1], [0, 0, 1, 1]]
    >>> count_forgetting(np.array(correct, dtype=bool)).tolist()
    [2.0, 3.0, 1.0, 0.0]
    """
    C = np.asarray(correct)
    if C.ndim != 2 or C.dtype != bool:
        raise DataworthError(
            f"correct must be a 2-D boolean array (epochs x rows); got {C.dtype} {C.shape}."
        )
    events = np.count_nonzero(C[:-1] & ~C[1:], axis=0).astype(np.float64)
    return np.where(C.any(axis=0), events, float(C.shape[0] // 2 + 1))


def mlp_grad_norms(
    coefs: Sequence[ArrayLike], intercepts: Sequence[ArrayLike], X: ArrayLike, codes: ArrayLike
) -> _F64:
    """Per-example norm of the log-loss gradient of a ReLU network, in closed form.

    The network is that of scikit-learn's ``MLPClassifier``: ``a_0 = x``,
    ``a_l = relu(a_{l-1} W_l + b_l)``, output ``softmax(a_{L-1} W_L + b_L)`` (or, with a single
    output unit, the logistic sigmoid for two classes). Backpropagation gives the output error
    ``delta_L = p - target`` and ``delta_{l-1} = (delta_l W_l^T) * 1[a_{l-1} > 0]``; the
    gradient of row ``i``'s loss with respect to ``(W_l, b_l)`` is ``(a_{l-1} delta_l^T,
    delta_l)``, whose squared norm is ``(||a_{l-1}||^2 + 1) ||delta_l||^2``. The result is the
    square root of the sum over layers, for every row at once. Any weight penalty is left out:
    this is the gradient of the example's own loss.

    Parameters
    ----------
    coefs, intercepts : sequences of arrays
        ``W_l`` of shape (in, out) and ``b_l`` of shape (out,), as ``MLPClassifier.coefs_`` and
        ``intercepts_``.
    X : array-like of shape (n, d)
    codes : array-like of int, shape (n,)
        The class of each row (0 or 1 with a single output unit).

    Examples
    --------
    A logistic regression with zero weights predicts 1/2, so the gradient of row ``i`` is
    ``(1/2 - y_i) [x_i, 1]``:

    >>> mlp_grad_norms([np.zeros((2, 1))], [np.zeros(1)], [[3.0, 4.0]], [1]).tolist()
    [2.5495097567963922]
    """
    acts = [np.asarray(X, dtype=np.float64)]
    for W, b in zip(coefs[:-1], intercepts[:-1], strict=True):
        acts.append(np.maximum(acts[-1] @ np.asarray(W) + np.asarray(b), 0.0))
    z = acts[-1] @ np.asarray(coefs[-1]) + np.asarray(intercepts[-1])
    c = np.asarray(codes, dtype=np.intp)
    if z.shape[1] == 1:
        from scipy.special import expit

        delta = expit(z) - c[:, None]
    else:
        from scipy.special import softmax

        delta = softmax(z, axis=1)
        delta[np.arange(c.size), c] -= 1.0
    squared = np.zeros(c.size)
    for layer in range(len(acts) - 1, -1, -1):
        a = acts[layer]
        squared += (np.einsum("ij,ij->i", a, a) + 1.0) * np.einsum("ij,ij->i", delta, delta)
        if layer:
            delta = (delta @ np.asarray(coefs[layer]).T) * (a > 0)
    return np.sqrt(squared)


# ------------------------------------------------------------------------------- trainers
class _Trainer(Protocol):
    """A network trained one epoch at a time on fixed rows."""

    def epoch(self) -> None: ...
    def proba(self) -> _F64: ...
    def grad_norms(self) -> _F64: ...


class _SklearnTrainer:
    """``MLPClassifier`` trained with ``partial_fit`` (one call = one shuffled epoch)."""

    def __init__(
        self, X: _F64, codes: _INT, n_classes: int, hidden: tuple[int, ...], seed: int,
        batch_size: int, learning_rate: float,
    ) -> None:  # fmt: skip
        from sklearn.neural_network import MLPClassifier

        self.X, self.codes, self.classes = X, codes, np.arange(n_classes)
        self.model = MLPClassifier(
            hidden_layer_sizes=hidden,
            activation="relu",
            solver="adam",
            batch_size=min(batch_size, X.shape[0]),
            learning_rate_init=learning_rate,
            random_state=seed,
        )

    def epoch(self) -> None:
        self.model.partial_fit(self.X, self.codes, classes=self.classes)

    def proba(self) -> _F64:
        return np.asarray(self.model.predict_proba(self.X), dtype=np.float64)

    def grad_norms(self) -> _F64:
        return mlp_grad_norms(self.model.coefs_, self.model.intercepts_, self.X, self.codes)


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise DataworthError(_TORCH_MISSING) from None
    return torch


class _TorchTrainer:
    """The same ReLU network in PyTorch (softmax output, also for two classes), with Adam."""

    def __init__(
        self, X: _F64, codes: _INT, n_classes: int, hidden: tuple[int, ...], seed: int,
        batch_size: int, learning_rate: float, device: str,
    ) -> None:  # fmt: skip
        torch = self.torch = _torch()
        try:
            self.device = torch.device(device)
            widths = [X.shape[1], *hidden, n_classes]
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                layers: list[Any] = []
                for fan_in, fan_out in itertools.pairwise(widths):
                    layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
                self.net = torch.nn.Sequential(*layers[:-1]).to(self.device)
            self.X = torch.as_tensor(X, dtype=torch.float32, device=self.device)
            self.y = torch.as_tensor(codes, dtype=torch.long, device=self.device)
        except (RuntimeError, AssertionError) as exc:
            raise DataworthError(f"device {device!r} is not usable: {exc}") from None
        self.generator = torch.Generator().manual_seed(seed)
        self.batch_size = batch_size
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=learning_rate)

    def epoch(self) -> None:
        F = self.torch.nn.functional
        perm = self.torch.randperm(self.X.shape[0], generator=self.generator).to(self.device)
        for batch in perm.split(self.batch_size):  # mini-batches, not rows
            self.optimizer.zero_grad()
            F.cross_entropy(self.net(self.X[batch]), self.y[batch]).backward()
            self.optimizer.step()

    def proba(self) -> _F64:
        with self.torch.no_grad():
            P = self.torch.softmax(self.net(self.X), dim=1)
        return P.double().cpu().numpy()

    def grad_norms(self) -> _F64:
        from torch.func import functional_call, grad, vmap

        F = self.torch.nn.functional
        params = {k: v.detach() for k, v in self.net.named_parameters()}

        def loss(p: dict[str, Any], x: Any, t: Any) -> Any:
            return F.cross_entropy(functional_call(self.net, p, (x[None],)), t[None])

        per_example = vmap(grad(loss), in_dims=(None, 0, 0))
        norms = []
        for rows in self.torch.arange(self.X.shape[0]).split(_GRAD_CHUNK):  # blocks of rows
            g = per_example(params, self.X[rows], self.y[rows])
            norms.append(sum(v.flatten(1).pow(2).sum(1) for v in g.values()).sqrt())
        return self.torch.cat(norms).double().cpu().numpy()


def _trainer(X: _F64, codes: _INT, n_classes: int, seed: int, setup: dict[str, Any]) -> _Trainer:
    common = (X, codes, n_classes, setup["hidden"], seed, setup["batch_size"], setup["lr"])
    if setup["backend"] == "torch":
        return _TorchTrainer(*common, setup["device"])
    return _SklearnTrainer(*common)


def _one_seed(
    metric: str, X: _F64, codes: _INT, n_classes: int, seed: int, setup: dict[str, Any]
) -> _F64:
    """One seed's scores: train ``epochs`` epochs, then read the metric off the network."""
    from sklearn.exceptions import ConvergenceWarning

    trainer = _trainer(X, codes, n_classes, seed, setup)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if metric == "forgetting":
            correct = np.empty((setup["epochs"], codes.size), dtype=bool)
            for t in range(setup["epochs"]):
                trainer.epoch()
                correct[t] = trainer.proba().argmax(axis=1) == codes
            return count_forgetting(correct)
        for _ in range(setup["epochs"]):
            trainer.epoch()
    return error_norms(trainer.proba(), codes) if metric == "el2n" else trainer.grad_norms()


def _dynamics_scores(metric: str, X: ArrayLike, y: ArrayLike, **settings: Any) -> _F64:
    """Mean over ``n_seeds`` training runs of one training-dynamics metric."""
    validate_params(metric, settings, _TRAINING)
    check_n_jobs(settings["n_jobs"])
    Xa = _check_features(X)
    codes, n_classes = _check_labels(y, Xa.shape[0])
    setup = {
        "hidden": _check_hidden(settings["hidden_layer_sizes"]),
        "batch_size": int(settings["batch_size"]),
        "lr": float(settings["learning_rate"]),
        "backend": settings["backend"],
        "device": settings["device"],
        "epochs": int(settings["epochs"]),
    }
    if setup["backend"] == "torch":
        _torch()
    if settings["standardize"]:
        Xa = _standardised(Xa)
    seeds = _seeds(settings["random_state"], int(settings["n_seeds"]))
    n_jobs = settings["n_jobs"]
    if n_jobs is None or n_jobs == 1 or len(seeds) == 1:
        runs = [_one_seed(metric, Xa, codes, n_classes, s, setup) for s in seeds]
    else:
        from joblib import Parallel, delayed

        runs = Parallel(n_jobs=n_jobs)(
            delayed(_one_seed)(metric, Xa, codes, n_classes, s, setup) for s in seeds
        )
    return np.mean(runs, axis=0)


# ------------------------------------------------------------------------------- public scores
def el2n_scores(
    X: ArrayLike,
    y: ArrayLike,
    *,
    epochs: int = 5,
    n_seeds: int = 5,
    hidden_layer_sizes: int | tuple[int, ...] = (64,),
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    backend: str = "sklearn",
    device: str = "cpu",
    standardize: bool = True,
    random_state: int | None = None,
    n_jobs: int | None = None,
) -> _F64:
    """EL2N scores (Paul et al. 2021): the error-vector norm early in training, higher = harder.

    For each of ``n_seeds`` seeds a fresh network is trained for ``epochs`` epochs on all rows;
    row ``i`` scores ``||p(x_i) - e_{y_i}||_2`` (:func:`error_norms`), from 0 (confidently
    right) to ``sqrt(2)`` (confidently wrong). The scores are the mean over seeds. Easy,
    typical rows score near 0; ambiguous, atypical and mislabelled rows score high.

    Parameters
    ----------
    X : array-like of shape (n, d)
        Numeric features (embeddings for text: :func:`dataworth.apps.embed.embed_texts`).
    y : array-like of shape (n,)
        Class labels (at least two classes).
    epochs : int, default=5
        Epochs of training before scoring (early in training, as the paper prescribes).
    n_seeds : int, default=5
        Independent training runs averaged.
    hidden_layer_sizes : int or tuple of int, default=(64,)
        Hidden ReLU layers; ``()`` is softmax (multinomial logistic) regression.
    batch_size : int, default=64
    learning_rate : float, default=1e-3
        Adam's step size.
    backend : {"sklearn", "torch"}, default="sklearn"
        ``MLPClassifier.partial_fit`` or a PyTorch network (see the module docstring).
    device : str, default="cpu"
        For ``backend="torch"``: ``"cpu"``, ``"cuda"``, ...
    standardize : bool, default=True
        Standardise the features before training.
    random_state : int, optional
        Seeds every run (the runs differ from one another).
    n_jobs : int, optional
        Seeds trained in parallel (joblib processes; negative counts back from the number of
        cores, -1: all).

    Returns
    -------
    ndarray of shape (n,)

    Examples
    --------
    Softmax regression on one feature, where row 2 is a 1 among the 0s:

    >>> X = np.array([[0.0], [0.1], [0.2], [1.0], [1.1], [1.2]])
    >>> s = el2n_scores(X, [0, 0, 1, 1, 1, 1], hidden_layer_sizes=(), learning_rate=0.05,
    ...                 epochs=20, n_seeds=2, random_state=0)
    >>> int(np.argmax(s))
    2
    """
    return _dynamics_scores(
        "el2n", X, y, epochs=epochs, n_seeds=n_seeds, hidden_layer_sizes=hidden_layer_sizes,
        batch_size=batch_size, learning_rate=learning_rate, backend=backend, device=device,
        standardize=standardize, random_state=random_state, n_jobs=n_jobs,
    )  # fmt: skip


def grand_scores(
    X: ArrayLike,
    y: ArrayLike,
    *,
    epochs: int = 1,
    n_seeds: int = 5,
    hidden_layer_sizes: int | tuple[int, ...] = (64,),
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    backend: str = "sklearn",
    device: str = "cpu",
    standardize: bool = True,
    random_state: int | None = None,
    n_jobs: int | None = None,
) -> _F64:
    """GraNd scores (Paul et al. 2021): the per-example gradient norm early on, higher = harder.

    For each seed a fresh network is trained for ``epochs`` epochs; row ``i`` scores the norm of
    the gradient of its own log-loss with respect to every weight and bias, ``||grad_w
    loss(x_i, y_i)||_2``; the scores are the mean over seeds. The paper scores at
    initialisation; with ``partial_fit`` the earliest point is after one epoch, the default. The
    gradients are exact: in closed form for ``backend="sklearn"`` (:func:`mlp_grad_norms`), with
    ``torch.func.vmap(grad(...))`` for ``backend="torch"``; never a loop over rows.

    Parameters
    ----------
    X, y, n_seeds, hidden_layer_sizes, batch_size, learning_rate, backend, device, standardize,
    random_state, n_jobs
        As in :func:`el2n_scores`.
    epochs : int, default=1
        Epochs of training before scoring.

    Returns
    -------
    ndarray of shape (n,)

    Examples
    --------
    >>> X = np.array([[0.0], [0.1], [0.2], [1.0], [1.1], [1.2]])
    >>> s = grand_scores(X, [0, 0, 1, 1, 1, 1], epochs=20, n_seeds=2, random_state=0)
    >>> s.shape, bool((s > 0).all())
    ((6,), True)
    """
    return _dynamics_scores(
        "grand", X, y, epochs=epochs, n_seeds=n_seeds, hidden_layer_sizes=hidden_layer_sizes,
        batch_size=batch_size, learning_rate=learning_rate, backend=backend, device=device,
        standardize=standardize, random_state=random_state, n_jobs=n_jobs,
    )  # fmt: skip


def forgetting_scores(
    X: ArrayLike,
    y: ArrayLike,
    *,
    epochs: int = 20,
    n_seeds: int = 3,
    hidden_layer_sizes: int | tuple[int, ...] = (64,),
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    backend: str = "sklearn",
    device: str = "cpu",
    standardize: bool = True,
    random_state: int | None = None,
    n_jobs: int | None = None,
) -> _F64:
    """Forgetting scores (Toneva et al. 2019): how often a learned row is forgotten.

    For each seed a fresh network is trained for ``epochs`` epochs and, after every epoch, each
    row is checked for being classified correctly; :func:`count_forgetting` counts the
    correct-then-wrong transitions, and rows never classified correctly get ``epochs // 2 + 1``
    (more than any learned row can have), so they rank as the hardest. The scores are the mean
    over seeds. Toneva et al. check each example when its mini-batch is presented; here every
    row is checked on the network at the end of each epoch, so that one check costs one
    vectorised prediction. Rows learned once and never forgotten (the "unforgettable" ones)
    score 0, and many rows tie: :func:`keep_order` breaks ties at random.

    Parameters
    ----------
    X, y, n_seeds, hidden_layer_sizes, batch_size, learning_rate, backend, device, standardize,
    random_state, n_jobs
        As in :func:`el2n_scores`.
    epochs : int, default=20
        Epochs of training, each followed by one check of every row.

    Returns
    -------
    ndarray of shape (n,)

    Examples
    --------
    >>> X = np.array([[0.0], [0.1], [0.2], [1.0], [1.1], [1.2]])
    >>> forgetting_scores(X, [0, 0, 0, 1, 1, 1], epochs=4, n_seeds=1, random_state=0).shape
    (6,)
    """
    return _dynamics_scores(
        "forgetting", X, y, epochs=epochs, n_seeds=n_seeds, hidden_layer_sizes=hidden_layer_sizes,
        batch_size=batch_size, learning_rate=learning_rate, backend=backend, device=device,
        standardize=standardize, random_state=random_state, n_jobs=n_jobs,
    )  # fmt: skip


def _is_texts(inputs: Any) -> bool:
    if isinstance(inputs, (str, bytes)):
        return False
    try:
        arr = np.asarray(inputs)
    except (TypeError, ValueError):
        return False
    return arr.ndim == 1 and arr.dtype.kind in "UO"


def _embeddings(inputs: Any, embed: Callable[[Any], Any] | None) -> _F64:
    """The features to cluster: ``embed(inputs)``, MiniLM embeddings of texts, or ``inputs``."""
    if embed is not None:
        return _check_features(embed(inputs), "the embeddings")
    if _is_texts(inputs):
        from dataworth.apps.embed import embed_texts

        return _check_features(embed_texts(list(inputs)), "the embeddings")
    return _check_features(inputs)


def prototype_scores(
    X: Any,
    y: ArrayLike | None = None,
    *,
    n_clusters: int | None = None,
    embed: Callable[[Any], Any] | None = None,
    n_init: int = 10,
    random_state: int | None = None,
) -> _F64:
    """Self-supervised prototype scores (Sorscher et al. 2022): distance to the nearest centroid.

    k-means (``n_clusters`` centroids, ``n_init`` restarts) is fitted on the embeddings, and
    each row scores its Euclidean distance to the nearest centroid: far from every prototype =
    atypical = hard. No label is used (the metric is self-supervised); ``y`` only sets the
    default number of clusters. The embeddings are ``embed(X)`` when ``embed`` is given; the
    MiniLM sentence embeddings of :mod:`dataworth.apps.embed` when ``X`` is a sequence of texts
    (``pip install "dataworth[embed]"``; an error says so when it is missing); otherwise the
    features themselves, as given (standardise them first if their scales differ). The paper
    uses a self-supervised image model's embeddings and cosine distance; for unit-length
    embeddings (MiniLM's) the Euclidean distance ranks almost the same way.

    Parameters
    ----------
    X : array-like of shape (n, d), or a sequence of n texts
    y : array-like of shape (n,), optional
        Class labels; by default there are as many clusters as classes.
    n_clusters : int, optional
        Number of prototypes (required when ``y`` is not given).
    embed : callable, optional
        A feature function mapping ``X`` to a 2-D array.
    n_init : int, default=10
        k-means restarts (the best is kept).
    random_state : int, optional

    Returns
    -------
    ndarray of shape (n,)

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 3.0]])
    >>> prototype_scores(X, n_clusters=2, random_state=0).tolist()
    [0.5, 0.5, 1.5, 1.5]
    """
    validate_params(
        "prototype",
        {"n_clusters": n_clusters, "n_init": n_init, "random_state": random_state},
        {
            "n_clusters": [Interval(Integral, 1, None), None],
            "n_init": [Interval(Integral, 1, None)],
            "random_state": _TRAINING["random_state"],
        },
    )
    E = _embeddings(X, embed)
    n = E.shape[0]
    if n_clusters is None:
        if y is None:
            raise DataworthError("give n_clusters, or y to use one cluster per class.")
        n_clusters = _check_labels(y, n)[1]
    if n_clusters > n:
        raise DataworthError(f"n_clusters ({n_clusters}) cannot exceed the rows ({n}).")
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=int(n_clusters), n_init=int(n_init), random_state=random_state)
    return np.asarray(km.fit(E).transform(E).min(axis=1), dtype=np.float64)


# ------------------------------------------------------------------------------- keeping
def keep_order(
    scores: ArrayLike,
    keep: float,
    mode: str = "hard",
    *,
    y: ArrayLike | None = None,
    random_state: int | np.random.Generator | None = None,
) -> _INT:
    """The rows to keep, in order: the hardest (highest score) or the easiest first.

    ``round(keep * n)`` rows are kept (halves up, at least one). Equal scores are ordered at
    random (``random_state``), so ties, such as the many forgetting counts of 0, do not favour
    low row numbers. With class labels ``y`` the rows are kept class by class, each class
    getting a quota in proportion to its size (at least one row each when the total allows;
    :func:`dataworth.apps.prune.class_quotas`), so that keeping only easy or only hard rows
    cannot empty a class.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Higher = harder (every score of this module); NaN is refused.
    keep : float in (0, 1]
        Fraction of the rows to keep.
    mode : {"hard", "easy"}, default="hard"
        Keep the highest scores (plenty of data) or the lowest (little data).
    y : array-like of shape (n,), optional
        Class labels: keep per class, with class quotas.
    random_state : int or Generator, optional
        For the order among ties.

    Returns
    -------
    ndarray of int
        Positions of the kept rows, most preferred first (``np.sort`` them for row order).

    Examples
    --------
    >>> keep_order([0.2, 0.9, 0.1, 0.5], 0.5, mode="easy").tolist()
    [2, 0]
    >>> keep_order([0.2, 0.9, 0.1, 0.5], 0.5, mode="easy", y=[0, 0, 1, 1]).tolist()
    [2, 0]
    >>> keep_order([0.2, 0.9, 0.1, 0.5], 0.5, mode="hard", y=[0, 0, 1, 1]).tolist()
    [1, 3]
    """
    s = as_values(scores)
    if s.size == 0:
        raise DataworthError("scores is empty; there is nothing to keep.")
    if np.isnan(s).any():
        raise DataworthError(f"scores contain {int(np.isnan(s).sum())} NaN values.")
    validate_params("keep_order", {"mode": mode}, {"mode": [Options(MODES)]})
    n_keep = n_to_keep(s.size, keep)
    perm = np.random.default_rng(random_state).permutation(s.size)
    key = -s[perm] if mode == "hard" else s[perm]
    order = perm[np.argsort(key, kind="stable")].astype(np.intp)
    if y is None:
        return order[:n_keep]
    codes = _class_codes(y, s.size)
    counts = np.bincount(codes)
    quotas = class_quotas(counts, n_keep)
    by_class = order[np.argsort(codes[order], kind="stable")]  # classes, preferred first in each
    rank = np.arange(s.size) - (np.cumsum(counts) - counts)[codes[by_class]]
    chosen = np.zeros(s.size, dtype=bool)
    chosen[by_class[rank < quotas[codes[by_class]]]] = True
    return order[chosen[order]]


_SCORERS: dict[str, Callable[..., _F64]] = {
    "el2n": el2n_scores,
    "grand": grand_scores,
    "forgetting": forgetting_scores,
    "prototype": prototype_scores,
}


def pruning_scores(
    metric: str,
    X: Any,
    y: ArrayLike | None,
    *,
    random_state: int | None = None,
    n_jobs: int | None = None,
    **params: Any,
) -> _F64:
    """Scores of one metric by name (higher = harder); ``params`` go to its function.

    Parameters
    ----------
    metric : {"el2n", "grand", "forgetting", "prototype"}
    X, y
        Features (texts too for ``"prototype"``) and class labels.
    random_state : int, optional
    n_jobs : int, optional
        Used by the metrics that take it (the training-dynamics ones).
    **params
        The metric's own parameters (``epochs``, ``n_seeds``, ``n_clusters``, ...).

    Examples
    --------
    >>> from dataworth.datasets import load_dataset
    >>> iris = load_dataset("iris")
    >>> pruning_scores("prototype", iris.X, iris.y, random_state=0).shape
    (150,)
    """
    if metric not in _SCORERS:
        raise DataworthError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}.")
    scorer = _SCORERS[metric]
    accepted = set(inspect.signature(scorer).parameters) - {"X", "y"}
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise DataworthError(
            f"{metric} does not take parameter(s) {', '.join(unknown)}; it takes: "
            f"{', '.join(sorted(accepted))}."
        )
    if "n_jobs" in accepted:
        params["n_jobs"] = n_jobs
    return scorer(X, y, random_state=random_state, **params)


def prune_by_score(
    metric: str,
    X: Any,
    y: ArrayLike | None,
    keep: float,
    *,
    mode: str = "hard",
    stratify: bool = False,
    random_state: int | None = None,
    n_jobs: int | None = None,
    **params: Any,
) -> _INT:
    """Score the rows with ``metric`` and keep the hardest or easiest ``keep`` fraction.

    :func:`pruning_scores` followed by :func:`keep_order`, both with ``random_state``. Bad
    settings are refused before any training.

    Parameters
    ----------
    metric : {"el2n", "grand", "forgetting", "prototype"}
    X, y
        Features (texts too for ``"prototype"``) and class labels.
    keep : float in (0, 1]
        Fraction of the rows to keep (rounded half up, at least one row).
    mode : {"hard", "easy"}, default="hard"
        Keep the hardest rows (plenty of data) or the easiest (little data).
    stratify : bool, default=False
        Keep class by class, with class quotas (see :func:`keep_order`); needs ``y``.
    random_state, n_jobs, **params
        As in :func:`pruning_scores`.

    Returns
    -------
    ndarray of int
        Sorted positions of the kept rows (as :func:`dataworth.apps.prune.prune` returns).

    Examples
    --------
    >>> X = np.array([[0.0], [0.1], [5.0], [0.2]])
    >>> prune_by_score("prototype", X, None, 0.5, mode="easy", n_clusters=1).tolist()
    [1, 3]
    """
    validate_params(
        "prune_by_score",
        {"mode": mode, "stratify": stratify},
        {"mode": [Options(MODES)], "stratify": [Options((True, False))]},
    )
    n_to_keep(1, keep)  # refuse a bad fraction before any training
    if stratify and y is None:
        raise DataworthError("stratify=True keeps rows class by class: give the labels y.")
    scores = pruning_scores(metric, X, y, random_state=random_state, n_jobs=n_jobs, **params)
    by_class = y if stratify else None
    return np.sort(keep_order(scores, keep, mode, y=by_class, random_state=random_state))
