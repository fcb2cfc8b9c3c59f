"""Influence functions for a trained PyTorch model (Koh & Liang 2017).

:class:`TorchInfluence` sees a trained ``torch.nn.Module`` through its training objective

    J(theta) = (1/n) * sum_i loss_i(theta) + 0.5 * weight_decay * ||theta||^2,

with ``theta`` all parameters that require gradients (in ``named_parameters()`` order, each
flattened row-major, concatenated) and ``H`` the Hessian of ``J`` at the trained parameters plus
``damping * I``. It meets :class:`dataworth.influence.base.InfluenceModel`, so
:func:`~dataworth.influence.base.influence_matrix`,
:func:`~dataworth.influence.base.influence_values` and
:func:`~dataworth.influence.base.self_influence` work with it unchanged.

Everything is computed with :mod:`torch.func`: per-sample gradients with
``vmap(grad(loss))``, Hessian-vector products forward-over-reverse (``jvp`` of ``grad``), both in
blocks of ``block_size`` training rows so that memory stays bounded. Products with ``H^-1``
come from a solver (:mod:`dataworth.influence.solvers`): ``"direct"`` (explicit Hessian; small
models), ``"cg"``, ``"lissa"``, ``"arnoldi"`` or ``"ekfac"``.

The model's own parameters are never modified and gradients never accumulate in ``.grad``; the
model is put in evaluation mode (dropout off, batch-norm statistics frozen). Device and dtype
follow the model's parameters.

Examples
--------
>>> import torch
>>> from dataworth.influence.base import influence_values
>>> from dataworth.influence.torch_model import TorchInfluence
>>> _ = torch.manual_seed(0)
>>> X = torch.randn(20, 3, dtype=torch.float64)
>>> y = (X[:, 0] > 0).long()
>>> model = torch.nn.Linear(3, 2).double()
>>> influence = TorchInfluence(model, X, y, weight_decay=0.1)
>>> influence.n_params
8
>>> influence_values(influence, X[:5], y[:5]).values.shape
(20,)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

try:
    import torch
    from torch.func import functional_call, grad, jvp, vmap
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        'dataworth.influence.torch_model needs PyTorch: pip install "dataworth[torch]"',
        name="torch",
    ) from exc

from dataworth.errors import DataworthError
from dataworth.memory import check_memory, format_bytes
from dataworth.registry import Entry

__all__ = ["LOSSES", "SOLVERS", "TorchInfluence", "get_solver"]

_F64 = NDArray[np.float64]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: Built-in per-sample losses (names accepted by ``loss=``).
LOSSES = ("cross-entropy", "mse")
#: The solver registry: name (accepted by ``solver=``) -> where the class lives in
#: ``dataworth.influence``, its summary and reference. Solvers are imported on first use by name,
#: so this module imports none of them (they import it, for its type, only when type-checking).
SOLVERS: dict[str, Entry] = {
    "direct": Entry(
        "solvers:DirectSolver",
        "The explicit Hessian, factorised once: exact, the reference (small models).",
        "Koh & Liang 2017",
    ),
    "cg": Entry(
        "solvers:CGSolver",
        "Conjugate gradient on Hessian-vector products, exact to rtol for a positive definite H.",
        "Hestenes & Stiefel 1952; Koh & Liang 2017",
    ),
    "lissa": Entry(
        "solvers:LiSSASolver",
        "LiSSA: a stochastic, truncated Neumann series for the inverse Hessian.",
        "Agarwal, Bullins & Hazan 2017",
    ),
    "arnoldi": Entry(
        "solvers:ArnoldiSolver",
        "Low-rank inverse from the top eigenpairs of the Hessian (Arnoldi iteration).",
        "Schioppa et al. 2022",
    ),
    "ekfac": Entry(
        "ekfac:EKFACSolver",
        "EK-FAC: eigenvalue-corrected Kronecker-factored Gauss-Newton curvature of Linear layers.",
        "George et al. 2018; Grosse et al. 2023",
    ),
}


def get_solver(name: str) -> type:
    """The solver class registered as ``name`` in :data:`SOLVERS`, imported on first use.

    Examples
    --------
    >>> get_solver("cg").__name__
    'CGSolver'
    """
    if name not in SOLVERS:
        raise DataworthError(
            f"unknown solver {name!r}; choose one of {', '.join(repr(n) for n in SOLVERS)}."
        )
    cls: type = SOLVERS[name].load("dataworth.influence")
    return cls


#: Hessian-vector products: at most about this many (row, vector) pairs are pushed through the
#: model at once (rows of a training block times vectors in one vmapped chunk).
_HVP_WORK = 2**16


def cross_entropy_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy of logits ``output`` (b, C) against labels (b,) or probabilities.

    Examples
    --------
    >>> import torch
    >>> cross_entropy_loss(torch.zeros(2, 4), torch.tensor([0, 3])).tolist()  # log(4)
    [1.3862943649291992, 1.3862943649291992]
    """
    return torch.nn.functional.cross_entropy(output, target, reduction="none")


def mse_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample squared error, averaged over the outputs of a row: ``mean_k (out_k - y_k)^2``.

    The mean over rows is then ``torch.nn.functional.mse_loss`` with its default reduction.

    Examples
    --------
    >>> import torch
    >>> mse_loss(torch.tensor([[1.0], [3.0]]), torch.tensor([0.0, 1.0])).tolist()
    [1.0, 4.0]
    """
    b = output.shape[0]
    out, t = output.reshape(b, -1), target.reshape(b, -1)
    if out.shape != t.shape:
        raise DataworthError(
            f"loss='mse' needs one target per model output: the model gives {out.shape[1]} "
            f"output(s) per row, the targets {t.shape[1]}."
        )
    diff = out - t.to(output.dtype)
    return (diff * diff).mean(1)


def _check_nonnegative(name: str, value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise DataworthError(f"{name} must be a finite number >= 0; got {value!r}.") from None
    if not math.isfinite(out) or out < 0:
        raise DataworthError(f"{name} must be a finite number >= 0; got {value!r}.")
    return out


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DataworthError(f"{name} must be a positive whole number; got {value!r}.")
    return int(value)


def _n_rows(a: Any, name: str) -> int:
    try:
        return len(a)
    except TypeError:
        raise DataworthError(f"{name} must be an array with one entry per row.") from None


class TorchInfluence:
    """A trained ``torch.nn.Module``, its training rows and an inverse-Hessian solver.

    Parameters
    ----------
    model : torch.nn.Module
        The trained model; ``model(X)`` returns the outputs for a batch of rows (logits for
        classification). Its trainable parameters (``requires_grad``) are ``theta``. It is put
        in evaluation mode and never modified.
    X, y : array-like or torch.Tensor
        The training rows and targets the model was trained on, moved to the model's device.
        Floating-point inputs are cast to the parameters' dtype (integer inputs, e.g. token ids,
        are kept as integers).
    loss : {"cross-entropy", "mse"} or callable, default="cross-entropy"
        The per-sample training loss: ``"cross-entropy"`` of logits against class labels
        (``y`` integer labels ``0..C-1``, or a ``(n, C)`` array of class probabilities);
        ``"mse"``: the squared error averaged over a row's outputs; or a callable
        ``loss(output, target)`` returning one loss per row (shape ``(b,)``). The objective is
        the mean over rows, as in ``torch.nn.functional.cross_entropy`` / ``mse_loss``.
    solver : {"direct", "cg", "lissa", "arnoldi", "ekfac"} or solver object, default="direct"
        How ``V @ H^-1`` is computed. A name makes a solver with default settings
        (:class:`~dataworth.influence.solvers.DirectSolver`,
        :class:`~dataworth.influence.solvers.CGSolver`,
        :class:`~dataworth.influence.solvers.LiSSASolver`,
        :class:`~dataworth.influence.solvers.ArnoldiSolver`,
        :class:`~dataworth.influence.ekfac.EKFACSolver`); an object with ``fit(influence)``
        and ``solve(V)`` is used as given. It is fitted once, on the first :meth:`solve`.
    weight_decay : float, default=0.0
        The L2 term ``0.5 * weight_decay * ||theta||^2`` of the training objective (over all
        trainable parameters): ``torch.optim.SGD(weight_decay=...)`` on the mean loss.
    damping : float, default=0.0
        Added to the diagonal of ``H`` (Koh & Liang's damping): regularises a singular or
        indefinite Hessian.
    block_size : int, default=1024
        Training rows per block for gradients and Hessian-vector products (bounds memory).

    Attributes
    ----------
    model, X, y, loss_fn, weight_decay, damping, block_size
        As given (``X``, ``y`` as tensors on the device; ``loss_fn`` the per-sample loss).
    n_train : int
        Number of training rows.
    n_params : int
        Number of trainable parameters (length of ``theta``).
    device : torch.device
    dtype : torch.dtype
    param_names : list of str
        Trainable parameter names, in ``named_parameters()`` order.
    param_shapes : list of torch.Size
        Their shapes.
    solver : object
        The inverse-Hessian solver (fitted on the first :meth:`solve`, or by
        :meth:`fit_solver`).

    Notes
    -----
    ``theta`` is read from the model's parameters (detached views, not copies): do not train
    the model further while using this object, or build a new one afterwards (a fitted solver
    would be stale). Per-sample losses must depend on their own row only (no batch
    statistics), which evaluation mode ensures for batch norm. The regulariser is not part of
    ``loss_i``: ``train_gradients`` are gradients of the per-sample loss alone, as in Koh &
    Liang's up-weighting of one row.

    Examples
    --------
    >>> import torch
    >>> from dataworth.influence.base import self_influence
    >>> _ = torch.manual_seed(0)
    >>> X = torch.randn(30, 2, dtype=torch.float64)
    >>> y = X @ torch.tensor([1.0, -1.0], dtype=torch.float64)
    >>> model = torch.nn.Linear(2, 1).double()
    >>> influence = TorchInfluence(model, X, y, loss="mse", solver="cg", weight_decay=0.01)
    >>> influence.param_names
    ['weight', 'bias']
    >>> self_influence(influence).shape
    (30,)
    """

    def __init__(
        self,
        model: torch.nn.Module,
        X: Any,
        y: Any,
        *,
        loss: str | LossFn = "cross-entropy",
        solver: Any = "direct",
        weight_decay: float = 0.0,
        damping: float = 0.0,
        block_size: int = 1024,
    ) -> None:
        if not isinstance(model, torch.nn.Module):
            raise DataworthError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
        self.weight_decay = _check_nonnegative("weight_decay", weight_decay)
        self.damping = _check_nonnegative("damping", damping)
        self.block_size = _check_positive_int("block_size", block_size)
        self.loss = loss
        self.loss_fn, self._classifier = self._loss_function(loss)

        named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
        if not named:
            raise DataworthError(
                "model has no trainable parameters (none with requires_grad=True)."
            )
        model.eval()
        self.model = model
        self.param_names: list[str] = [name for name, _ in named]
        self.param_shapes: list[torch.Size] = [p.shape for _, p in named]
        self._numels = [int(p.numel()) for _, p in named]
        self.n_params = int(sum(self._numels))
        self.device: torch.device = named[0][1].device
        self.dtype: torch.dtype = named[0][1].dtype
        if not self.dtype.is_floating_point:
            raise DataworthError(f"model parameters must be floating point; got {self.dtype}.")
        self._params: dict[str, torch.Tensor] = {name: p.detach() for name, p in named}

        self.X = self._inputs(X, "X")
        self.y = self._targets(y, "y")
        self.n_train = int(self.X.shape[0])
        if self.n_train == 0:
            raise DataworthError("X has no rows.")
        if int(self.y.shape[0]) != self.n_train:
            raise DataworthError(
                f"X and y must have the same number of rows; got {self.n_train} and "
                f"{int(self.y.shape[0])}."
            )
        self._probe(self.X[:2], self.y[:2], "the training rows")
        self._check_labels(self.y, "the training rows")

        self.solver = self._make_solver(solver)
        self._solver_fitted = False

    # ------------------------------------------------------------------------ set-up
    @staticmethod
    def _loss_function(loss: Any) -> tuple[LossFn, bool | None]:
        """The per-sample loss, and whether targets are class labels (None: decided by dtype)."""
        if isinstance(loss, str):
            if loss == "cross-entropy":
                return cross_entropy_loss, True
            if loss == "mse":
                return mse_loss, False
            raise DataworthError(
                f"loss must be one of {', '.join(repr(n) for n in LOSSES)} or a callable "
                f"loss(output, target) -> per-row losses; got {loss!r}."
            )
        if callable(loss):
            return loss, None
        raise DataworthError(
            f"loss must be one of {', '.join(repr(n) for n in LOSSES)} or a callable; "
            f"got {type(loss).__name__}."
        )

    def _make_solver(self, solver: Any) -> Any:
        if isinstance(solver, str):
            if solver in SOLVERS:
                return get_solver(solver)()
            raise DataworthError(
                f"solver must be one of {', '.join(repr(n) for n in SOLVERS)} or an object "
                f"with fit(influence) and solve(V); got {solver!r}."
            )
        if callable(getattr(solver, "fit", None)) and callable(getattr(solver, "solve", None)):
            return solver
        raise DataworthError(
            f"solver must be one of {', '.join(repr(n) for n in SOLVERS)} or an object with "
            f"fit(influence) and solve(V); got {type(solver).__name__}."
        )

    def _inputs(self, X: Any, name: str) -> torch.Tensor:
        _n_rows(X, name)
        if isinstance(X, torch.Tensor):
            t = X.detach()
        else:
            arr = np.asarray(X)
            if arr.dtype == object or not (
                np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_
            ):
                raise DataworthError(f"{name} must be numeric; got an array of {arr.dtype}.")
            t = torch.as_tensor(arr)
        if t.ndim == 0:
            raise DataworthError(f"{name} must have one entry per row; got a scalar.")
        if t.is_floating_point():
            if not bool(torch.isfinite(t).all()):
                raise DataworthError(f"{name} contains NaN or infinite values.")
            return t.to(device=self.device, dtype=self.dtype)
        return t.to(device=self.device)

    def _targets(self, y: Any, name: str) -> torch.Tensor:
        t = self._inputs(y, name)
        if t.dtype == torch.bool:
            t = t.long()
        if self._classifier is True:
            if t.is_floating_point():
                if t.ndim == 1:
                    if not bool((t == t.round()).all()):
                        raise DataworthError(
                            f"{name} must hold integer class labels for loss='cross-entropy'."
                        )
                    return t.long()
                return t  # class probabilities, (n, C)
            if t.ndim != 1:
                raise DataworthError(
                    f"{name} must be one class label per row for loss='cross-entropy'; got "
                    f"shape {tuple(t.shape)}."
                )
            t = t.long()
            if t.numel() and int(t.min()) < 0:
                raise DataworthError(f"{name} has negative class labels; labels are 0..C-1.")
            return t
        if self._classifier is False:
            return t.to(self.dtype)
        return t.long() if not t.is_floating_point() else t

    def _probe(self, X: torch.Tensor, y: torch.Tensor, what: str) -> torch.Tensor:
        """Run the model and loss on a few rows: clear errors for shape and label problems."""
        try:
            with torch.no_grad():
                out = self.model(X)
        except Exception as exc:
            raise DataworthError(f"the model failed on {what}: {exc}") from None
        if not isinstance(out, torch.Tensor):
            raise DataworthError(f"model(X) must return a tensor; got {type(out).__name__}.")
        if out.ndim == 0 or out.shape[0] != X.shape[0]:
            raise DataworthError(
                f"model(X) must return one output per row; got shape {tuple(out.shape)} "
                f"for {X.shape[0]} rows."
            )
        if self._classifier is True:
            if out.ndim != 2:
                raise DataworthError(
                    "loss='cross-entropy' needs logits of shape (rows, classes); the model "
                    f"returned shape {tuple(out.shape)}."
                )
            self._n_classes = int(out.shape[1])
        self._check_labels(y, what)
        try:
            with torch.no_grad():
                losses = self.loss_fn(out, y)
        except DataworthError:
            raise
        except Exception as exc:
            raise DataworthError(f"the loss failed on {what}: {exc}") from None
        if not isinstance(losses, torch.Tensor) or tuple(losses.shape) != (X.shape[0],):
            shape = tuple(losses.shape) if isinstance(losses, torch.Tensor) else type(losses)
            raise DataworthError(
                f"loss(output, target) must return one loss per row, shape ({X.shape[0]},); "
                f"got {shape}."
            )
        return out

    def _check_labels(self, y: torch.Tensor, what: str) -> None:
        if self._classifier is True and y.ndim == 1 and y.numel():
            n_classes = getattr(self, "_n_classes", None)
            if n_classes is not None and int(y.max()) >= n_classes:
                raise DataworthError(
                    f"class labels of {what} must lie in 0..{n_classes - 1} (the model has "
                    f"{n_classes} outputs); got {int(y.max())}."
                )

    # ------------------------------------------------------------------------ flat vectors
    def flat_params(self) -> torch.Tensor:
        """The trained parameters ``theta`` as one flat vector (a copy), shape ``(n_params,)``."""
        return torch.cat([p.reshape(-1) for p in self._params.values()]).clone()

    def _flatten(self, tensors: Mapping[str, torch.Tensor], batch: int) -> torch.Tensor:
        """Concatenate a dict of per-parameter tensors with a leading batch dimension."""
        return torch.cat([tensors[n].reshape(batch, -1) for n in self.param_names], dim=1)

    def _unflatten(self, V: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split rows of ``V`` (m, p) into a dict of (m, *shape) tensors."""
        parts = torch.split(V, self._numels, dim=1)
        return {
            n: part.reshape(V.shape[0], *shape)
            for n, part, shape in zip(self.param_names, parts, self.param_shapes, strict=True)
        }

    def _as_matrix(self, V: Any, name: str = "V") -> torch.Tensor:
        """``V`` as a (m, n_params) tensor on the device, in the parameters' dtype."""
        t = V.detach() if isinstance(V, torch.Tensor) else torch.as_tensor(np.asarray(V))
        t = t.to(device=self.device, dtype=self.dtype)
        if t.ndim != 2 or t.shape[1] != self.n_params:
            raise DataworthError(
                f"{name} must have shape (m, {self.n_params}); got {tuple(t.shape)}."
            )
        return t

    # ------------------------------------------------------------------------ per-sample terms
    def _output(
        self, params: Mapping[str, torch.Tensor], buffers: Mapping[str, torch.Tensor], x: Any
    ) -> torch.Tensor:
        out: torch.Tensor = functional_call(self.model, {**params, **buffers}, (x,))
        return out

    def _sample_loss(
        self,
        params: Mapping[str, torch.Tensor],
        buffers: Mapping[str, torch.Tensor],
        x: torch.Tensor,
        t: torch.Tensor,
    ) -> torch.Tensor:
        out = self._output(params, buffers, x.unsqueeze(0))
        return self.loss_fn(out, t.unsqueeze(0)).sum()

    def _sample_prediction(
        self,
        params: Mapping[str, torch.Tensor],
        buffers: Mapping[str, torch.Tensor],
        x: torch.Tensor,
        t: torch.Tensor,
    ) -> torch.Tensor:
        out = self._output(params, buffers, x.unsqueeze(0)).reshape(-1)
        if self._prediction_is_label(out.shape[0]):
            return out.gather(0, t.reshape(1).long()).sum()
        return out.sum()

    def _prediction_is_label(self, n_outputs: int) -> bool:
        """Whether ``target="prediction"`` picks the label's output (else the single output)."""
        if self._classifier is True:
            return True
        return self._classifier is None and not self.y.is_floating_point() and n_outputs > 1

    def _gradients(
        self,
        X: torch.Tensor,
        y: torch.Tensor,
        target: str = "loss",
        params: Mapping[str, torch.Tensor] | None = None,
        buffers: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Per-sample gradients (rows, n_params) of the loss or prediction at ``params``."""
        params = self._params if params is None else params
        buffers = {} if buffers is None else buffers
        fn = self._sample_loss if target == "loss" else self._sample_prediction
        per_sample = vmap(grad(fn), in_dims=(None, None, 0, 0))
        n = int(X.shape[0])
        out = torch.empty((n, self.n_params), device=self.device, dtype=self.dtype)
        with torch.no_grad():
            for start in range(0, n, self.block_size):
                stop = min(start + self.block_size, n)
                g = per_sample(params, buffers, X[start:stop], y[start:stop])
                out[start:stop] = self._flatten(g, stop - start)
        return out

    def _row_index(self, rows: Any) -> torch.Tensor:
        idx = np.asarray(rows)
        if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
            raise DataworthError("rows must be a one-dimensional array of row indices.")
        if idx.size and (idx.min() < -self.n_train or idx.max() >= self.n_train):
            raise DataworthError(
                f"rows must lie in [0, {self.n_train}); got {idx.min()}..{idx.max()}."
            )
        return torch.as_tensor(idx.astype(np.int64) % self.n_train, device=self.device)

    def train_gradients(self, rows: Any) -> torch.Tensor:
        """Gradients of the training losses ``loss_i`` of ``rows``, shape ``(len(rows), p)``.

        Only the per-sample loss: the weight-decay term belongs to the objective, not to a row.

        Examples
        --------
        >>> import numpy as np, torch
        >>> model = torch.nn.Linear(2, 2).double()
        >>> X = torch.ones(4, 2, dtype=torch.float64); y = torch.tensor([0, 1, 0, 1])
        >>> TorchInfluence(model, X, y).train_gradients(np.array([0, 3])).shape
        torch.Size([2, 6])
        """
        idx = self._row_index(rows)
        return self._gradients(self.X[idx], self.y[idx])

    def test_gradients(self, X: Any, y: Any, target: str = "loss") -> torch.Tensor:
        """Gradients of a test quantity for each row of ``(X, y)``, shape ``(m, p)``.

        ``target="loss"``: the row's loss. ``target="prediction"``: the model's output for the
        row: the logit of the row's label for a classifier (cross-entropy, or a callable loss
        with integer targets and several outputs), the output value for a single-output model.

        Examples
        --------
        >>> import torch
        >>> model = torch.nn.Linear(2, 3).double()
        >>> X = torch.ones(4, 2, dtype=torch.float64); y = torch.tensor([0, 1, 2, 1])
        >>> influence = TorchInfluence(model, X, y)
        >>> influence.test_gradients(X[:1], y[:1], "prediction")[0, :3].tolist()  # d logit_0
        [1.0, 1.0, 0.0]
        """
        return self._checked_gradients(X, y, target)

    def _checked_gradients(
        self,
        X: Any,
        y: Any,
        target: str,
        params: Mapping[str, torch.Tensor] | None = None,
        buffers: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """:meth:`test_gradients` at given parameters (validated user rows)."""
        if target not in ("loss", "prediction"):
            raise DataworthError(f"target must be 'loss' or 'prediction'; got {target!r}.")
        Xt = self._inputs(X, "X")
        yt = self._targets(y, "y")
        if int(Xt.shape[0]) != int(yt.shape[0]):
            raise DataworthError(
                f"X and y must have the same number of rows; got {int(Xt.shape[0])} and "
                f"{int(yt.shape[0])}."
            )
        if Xt.shape[0] == 0:
            return torch.zeros((0, self.n_params), device=self.device, dtype=self.dtype)
        self._check_labels(yt, "the test rows")
        out = self._probe(Xt[:2], yt[:2], "the test rows")
        if target == "prediction":
            n_out = int(out[:1].reshape(1, -1).shape[1])
            if not self._prediction_is_label(n_out) and n_out != 1:
                raise DataworthError(
                    f"target='prediction' needs a classifier or a single-output model; this "
                    f"model has {n_out} outputs per row and no class labels."
                )
            if self._prediction_is_label(n_out) and yt.ndim != 1:
                raise DataworthError(
                    "target='prediction' needs one class label per row, not probabilities."
                )
        return self._gradients(Xt, yt, target, params, buffers)

    # ------------------------------------------------------------------------ curvature
    def _block_loss_sum(
        self, params: Mapping[str, torch.Tensor], X: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor:
        return self.loss_fn(self._output(params, {}, X), y).sum()

    def hvp(self, V: Any, rows: Any = None) -> torch.Tensor:
        """Rows of ``V`` times ``H``: ``V @ H`` for ``V`` of shape ``(m, p)``.

        ``H`` is the Hessian of the mean loss over ``rows`` (default: all training rows) plus
        ``(weight_decay + damping) * I``; with a subset of rows it is the minibatch Hessian
        used by stochastic solvers. Forward-over-reverse (``jvp`` of ``grad``), vmapped over
        the rows of ``V`` and accumulated over blocks of ``block_size`` training rows.

        Examples
        --------
        >>> import torch
        >>> model = torch.nn.Linear(1, 1, bias=False).double()
        >>> X = torch.tensor([[1.0], [2.0]], dtype=torch.float64); y = torch.zeros(2)
        >>> inf = TorchInfluence(model, X, y, loss="mse", weight_decay=0.5)
        >>> inf.hvp(torch.ones(1, 1, dtype=torch.float64)).item()  # (2*1 + 2*4)/2 + 0.5
        5.5
        """
        V = self._as_matrix(V)
        idx = (
            torch.arange(self.n_train, device=self.device)
            if rows is None
            else self._row_index(rows)
        )
        n_rows = int(idx.shape[0])
        if n_rows == 0:
            raise DataworthError("rows must not be empty.")
        m = int(V.shape[0])
        total = torch.zeros_like(V)
        params = self._params
        with torch.no_grad():
            for start in range(0, n_rows, self.block_size):
                block = idx[start : start + self.block_size]
                Xb, yb = self.X[block], self.y[block]

                def grad_fn(p: dict[str, torch.Tensor], Xb: Any = Xb, yb: Any = yb) -> Any:
                    return grad(self._block_loss_sum)(p, Xb, yb)

                def one(tangent: dict[str, torch.Tensor], grad_fn: Any = grad_fn) -> Any:
                    return jvp(grad_fn, (params,), (tangent,))[1]

                chunk = max(1, _HVP_WORK // int(block.shape[0]))
                for v0 in range(0, m, chunk):
                    v1 = min(v0 + chunk, m)
                    hv = vmap(one)(self._unflatten(V[v0:v1]))
                    total[v0:v1] += self._flatten(hv, v1 - v0)
        return total / n_rows + (self.weight_decay + self.damping) * V

    def hessian(self) -> torch.Tensor:
        """The explicit ``(p, p)`` Hessian ``H`` (with weight decay and damping), symmetrised.

        Costs ``p`` Hessian-vector products: for small models (or as a reference).

        Examples
        --------
        >>> import torch
        >>> model = torch.nn.Linear(1, 1).double()
        >>> X = torch.tensor([[1.0], [3.0]], dtype=torch.float64); y = torch.zeros(2)
        >>> TorchInfluence(model, X, y, loss="mse").hessian().tolist()  # 2 * mean [x, 1][x, 1]^T
        [[10.0, 4.0], [4.0, 2.0]]
        """
        p = self.n_params
        size = p * p * torch.finfo(self.dtype).bits / 8
        free = None
        if self.device.type == "cuda":
            free = int(torch.cuda.mem_get_info(self.device)[0])
        check_memory(
            3 * size,  # H, H.T + H, and the factor (or eigenvectors) of the solver
            f"the explicit {p} x {p} Hessian ({p} parameters) of {format_bytes(size)}, 3 copies "
            f"at once, on {self.device}",
            "use an iterative solver instead of solver='direct': CGSolver, ArnoldiSolver, "
            "LiSSASolver or EKFACSolver.",
            available=free,
        )
        H = torch.empty((p, p), device=self.device, dtype=self.dtype)
        step = 1024
        for start in range(0, p, step):
            stop = min(start + step, p)
            eye = torch.zeros((stop - start, p), device=self.device, dtype=self.dtype)
            eye[:, start:stop] = torch.eye(stop - start, device=self.device, dtype=self.dtype)
            H[start:stop] = self.hvp(eye)
        return (H + H.T) / 2

    # ------------------------------------------------------------------------ inverse
    def fit_solver(self) -> TorchInfluence:
        """Fit the solver now (it is otherwise fitted on the first :meth:`solve`)."""
        self.solver.fit(self)
        self._solver_fitted = True
        return self

    def solve(self, V: Any) -> torch.Tensor:
        """``V @ H^-1`` for the rows of ``V`` (shape ``(m, p)``; a vector gives a vector).

        Examples
        --------
        >>> import torch
        >>> model = torch.nn.Linear(1, 1, bias=False).double()
        >>> X = torch.tensor([[1.0], [2.0]], dtype=torch.float64); y = torch.zeros(2)
        >>> inf = TorchInfluence(model, X, y, loss="mse", damping=0.5)
        >>> inf.solve(torch.tensor([[11.0]], dtype=torch.float64)).item()  # 11 / (5 + 0.5)
        2.0
        """
        vector = isinstance(V, (torch.Tensor, np.ndarray)) and V.ndim == 1
        M = self._as_matrix(V[None, :] if vector else V)
        if not self._solver_fitted:
            self.fit_solver()
        out: torch.Tensor = self.solver.solve(M)
        return out[0] if vector else out

    def to_numpy(self, a: Any) -> _F64:
        """A tensor (or array) as a float64 numpy array on the host."""
        if isinstance(a, torch.Tensor):
            return np.asarray(a.detach().cpu().to(torch.float64).numpy(), dtype=np.float64)
        return np.asarray(a, dtype=np.float64)

    def __repr__(self) -> str:
        loss = self.loss if isinstance(self.loss, str) else getattr(self.loss, "__name__", "?")
        return (
            f"TorchInfluence({type(self.model).__name__}, n_train={self.n_train}, "
            f"n_params={self.n_params}, loss={loss!r}, solver={type(self.solver).__name__}, "
            f"weight_decay={self.weight_decay}, damping={self.damping})"
        )
