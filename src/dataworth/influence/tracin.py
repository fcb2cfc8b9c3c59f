"""TracIn (Pruthi et al. 2020): influence traced through training checkpoints.

TracInCP scores a training row ``z`` against a test row ``z'`` by the learning-rate weighted
agreement of their loss gradients at checkpoints ``theta_k`` saved during training:

    TracIn(z, z') = sum_k lr_k * grad loss(z'; theta_k) . grad loss(z; theta_k).

A gradient-descent step on ``z`` at checkpoint ``k`` lowers the loss of ``z'`` by about
``lr_k * grad loss(z') . grad loss(z)``, so a **positive score marks a proponent** (training on
``z`` helped ``z'``) and a negative one an opponent. No Hessian is involved.

:class:`TracIn` meets :class:`dataworth.influence.base.InfluenceModel`: its "gradients" are the
concatenation over checkpoints of ``sqrt(lr_k) * grad loss(.; theta_k)`` (length
``K * n_params``) and ``solve`` is the identity, so the block-wise functions of
:mod:`dataworth.influence.base` apply unchanged:

- :func:`~dataworth.influence.base.influence_values` returns ``TracIn(z_i, mean valuation
  loss)``: positive = proponent = helpful, the library's value convention;
- :func:`~dataworth.influence.base.influence_matrix` returns ``-TracIn(z_i, z'_j)`` (the matrix
  is ``I = -g_test . g_train`` with ``H = I``: Koh & Liang's sign, positive = harmful);
- :func:`~dataworth.influence.base.self_influence` returns TracInCP self-influence
  ``sum_k lr_k ||grad loss(z_i; theta_k)||^2``, a mislabel / outlier score.

Examples
--------
>>> import copy, torch
>>> from dataworth.influence.base import influence_values, self_influence
>>> _ = torch.manual_seed(0)
>>> X = torch.randn(16, 2, dtype=torch.float64); y = (X[:, 0] > 0).long()
>>> model = torch.nn.Linear(2, 2).double()
>>> opt = torch.optim.SGD(model.parameters(), lr=0.5)
>>> checkpoints = []
>>> for epoch in range(2):
...     opt.zero_grad()
...     torch.nn.functional.cross_entropy(model(X), y).backward()
...     opt.step()
...     checkpoints.append(copy.deepcopy(model.state_dict()))
>>> tracin = TracIn(model, checkpoints, X, y, learning_rates=0.5)
>>> tracin.n_params  # two checkpoints of 6 parameters
12
>>> influence_values(tracin, X[:4], y[:4]).values.shape
(16,)
>>> bool((self_influence(tracin) >= 0).all())
True
"""

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        'dataworth.influence.tracin needs PyTorch: pip install "dataworth[torch]"', name="torch"
    ) from exc

from dataworth.errors import DataworthError
from dataworth.influence.torch_model import LossFn, TorchInfluence

__all__ = ["TracIn"]

_F64 = NDArray[np.float64]
_State = dict[str, torch.Tensor]


class TracIn:
    """TracInCP influence of training rows, from checkpoints saved during training.

    Parameters
    ----------
    model : torch.nn.Module
        The network (its architecture: its own parameter values are not used unless it is
        also one of the checkpoints). Put in evaluation mode.
    checkpoints : sequence of state dicts, modules or paths
        The parameters at checkpoints ``k = 1..K``: ``model.state_dict()`` copies (e.g.
        ``copy.deepcopy(model.state_dict())``), modules of the same architecture, or files
        written by ``torch.save(state_dict)`` (loaded with ``weights_only=True``). Each must
        hold every trainable parameter of ``model``; buffers (batch-norm statistics) it holds
        are used, the model's own otherwise.
    X, y : array-like or torch.Tensor
        The training rows, as for :class:`~dataworth.influence.torch_model.TorchInfluence`.
    loss : {"cross-entropy", "mse"} or callable, default="cross-entropy"
        The per-sample training loss (see ``TorchInfluence``).
    learning_rates : float or sequence of float, default=1.0
        The learning rate ``lr_k`` in effect at each checkpoint (one number for all).
    block_size : int, default=1024
        Rows per block of per-sample gradients.

    Attributes
    ----------
    n_train : int
        Number of training rows.
    n_params : int
        ``n_checkpoints * p``: the length of the concatenated gradients.
    n_checkpoints : int
    learning_rates : ndarray of float, shape (n_checkpoints,)
    influence : TorchInfluence
        Does the per-sample gradients (its solver is never used).

    Notes
    -----
    ``solve`` is the identity, so with a single checkpoint and ``lr = 1``
    ``influence_matrix`` is ``-g_train . g_test``: the "gradient dot product" baseline.
    ``target="prediction"`` gives TracIn on the model's output (the logit of the label).

    Examples
    --------
    >>> import torch
    >>> from dataworth.influence.base import influence_matrix
    >>> model = torch.nn.Linear(1, 1, bias=False).double()
    >>> X = torch.tensor([[1.0], [2.0]], dtype=torch.float64); y = torch.zeros(2)
    >>> ckpt = {"weight": torch.tensor([[1.0]], dtype=torch.float64)}
    >>> tracin = TracIn(model, [ckpt], X, y, loss="mse", learning_rates=0.1)
    >>> influence_matrix(tracin, X, y).round(6).tolist()  # -0.1 * (2 w x^2) (2 w x'^2)
    [[-0.4, -1.6], [-1.6, -6.4]]
    """

    #: Read by :func:`dataworth.influence.influence_values` for the result's metadata.
    approximation = (
        "TracInCP: sum over checkpoints of lr_k * grad L(test) . grad L(z) (Pruthi et al. 2020)"
    )

    def __init__(
        self,
        model: torch.nn.Module,
        checkpoints: Sequence[Any],
        X: Any,
        y: Any,
        *,
        loss: str | LossFn = "cross-entropy",
        learning_rates: float | Sequence[float] = 1.0,
        block_size: int = 1024,
    ) -> None:
        self.influence = TorchInfluence(model, X, y, loss=loss, block_size=block_size)
        self.model = self.influence.model
        if isinstance(checkpoints, (Mapping, torch.nn.Module, str, os.PathLike)) or not (
            isinstance(checkpoints, Sequence) and len(checkpoints) > 0
        ):
            raise DataworthError(
                "checkpoints must be a non-empty list of state dicts, modules or paths (one "
                "per checkpoint)."
            )
        self._states = [self._state(c, k) for k, c in enumerate(checkpoints)]
        self.n_checkpoints = len(self._states)
        self.learning_rates = self._learning_rates(learning_rates, self.n_checkpoints)
        self._weights = [math.sqrt(float(lr)) for lr in self.learning_rates]
        self.n_train = self.influence.n_train
        self.n_params = self.n_checkpoints * self.influence.n_params

    @staticmethod
    def _learning_rates(learning_rates: Any, k: int) -> NDArray[np.float64]:
        try:
            lrs = np.asarray(learning_rates, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataworthError(
                f"learning_rates must be a number or one number per checkpoint; got "
                f"{learning_rates!r}."
            ) from None
        if lrs.ndim == 0:
            lrs = np.full(k, float(lrs))
        if lrs.shape != (k,):
            raise DataworthError(
                f"learning_rates must be a number or one number per checkpoint ({k}); got "
                f"{lrs.size} numbers."
            )
        if not np.all(np.isfinite(lrs)) or np.any(lrs < 0):
            raise DataworthError(f"learning_rates must be finite and >= 0; got {lrs.tolist()}.")
        return lrs

    def _state(self, checkpoint: Any, k: int) -> tuple[_State, _State]:
        """The trainable parameters and the other state (buffers) of one checkpoint."""
        inf = self.influence
        if isinstance(checkpoint, (str, os.PathLike)):
            try:
                checkpoint = torch.load(checkpoint, map_location=inf.device, weights_only=True)
            except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
                raise DataworthError(f"cannot load checkpoint {k} ({checkpoint}): {exc}") from None
        if isinstance(checkpoint, torch.nn.Module):
            checkpoint = checkpoint.state_dict()
        if not isinstance(checkpoint, Mapping):
            raise DataworthError(
                f"checkpoint {k} must be a state dict, a module or a path; got "
                f"{type(checkpoint).__name__}."
            )
        params: _State = {}
        for name, shape in zip(inf.param_names, inf.param_shapes, strict=True):
            if name not in checkpoint:
                raise DataworthError(
                    f"checkpoint {k} has no parameter {name!r}; it must be a state dict of the "
                    "same model (keys like model.state_dict())."
                )
            value = checkpoint[name]
            if not isinstance(value, torch.Tensor) or value.shape != shape:
                got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value)
                raise DataworthError(
                    f"checkpoint {k}: parameter {name!r} must be a tensor of shape "
                    f"{tuple(shape)}; got {got}."
                )
            params[name] = value.detach().to(device=inf.device, dtype=inf.dtype)
        extras: _State = {}
        trainable = set(inf.param_names)
        for name, current in self.model.state_dict().items():
            if name in trainable or name not in checkpoint:
                continue
            value = checkpoint[name]
            if isinstance(value, torch.Tensor) and value.shape == current.shape:
                extras[name] = value.detach().to(device=current.device, dtype=current.dtype)
        return params, extras

    def _concat(self, per_checkpoint: Any) -> torch.Tensor:
        parts = [
            w * per_checkpoint(params, extras)
            for w, (params, extras) in zip(self._weights, self._states, strict=True)
        ]
        return torch.cat(parts, dim=1)

    def train_gradients(self, rows: Any) -> torch.Tensor:
        """``[sqrt(lr_k) * grad loss_i(theta_k)]_k`` for ``rows``, shape ``(len(rows), K*p)``."""
        inf = self.influence
        idx = inf._row_index(rows)
        Xr, yr = inf.X[idx], inf.y[idx]
        return self._concat(lambda p, b: inf._gradients(Xr, yr, "loss", p, b))

    def test_gradients(self, X: Any, y: Any, target: str = "loss") -> torch.Tensor:
        """As :meth:`train_gradients`, for the loss (or prediction) of each row of ``(X, y)``."""
        inf = self.influence
        return self._concat(lambda p, b: inf._checked_gradients(X, y, target, p, b))

    def solve(self, V: Any) -> torch.Tensor:
        """The identity (TracIn uses no Hessian): ``V`` as a tensor of shape ``(m, K*p)``."""
        t = V.detach() if isinstance(V, torch.Tensor) else torch.as_tensor(np.asarray(V))
        t = t.to(device=self.influence.device, dtype=self.influence.dtype)
        if t.ndim != 2 or t.shape[1] != self.n_params:
            raise DataworthError(f"V must have shape (m, {self.n_params}); got {tuple(t.shape)}.")
        return t

    def to_numpy(self, a: Any) -> _F64:
        """A tensor (or array) as a float64 numpy array on the host."""
        return self.influence.to_numpy(a)

    def __repr__(self) -> str:
        return (
            f"TracIn({type(self.model).__name__}, n_checkpoints={self.n_checkpoints}, "
            f"n_train={self.n_train}, n_params={self.n_params})"
        )
