"""Eigenvalue-corrected Kronecker-factored curvature (EK-FAC) for PyTorch models of Linear layers.

EK-FAC (George et al. 2018; used for influence functions by Grosse et al. 2023) approximates the
curvature of the training objective

    J(theta) = (1/n) * sum_i loss_i(theta) + 0.5 * weight_decay * ||theta||^2

by a block-diagonal matrix with one block per ``torch.nn.Linear`` layer; cross-layer blocks are
ignored. For a layer with input ``a`` (a trailing 1 appended when the bias is trained) and
pseudo-gradient ``g`` with respect to its output, the per-sample weight gradient is ``g a^T``.
K-FAC approximates the layer's block by ``S (x) A`` with ``A = E[a a^T]`` and ``S = E[g g^T]``;
EK-FAC keeps the eigenbases ``Q_A`` and ``Q_S`` of those factors and replaces the Kronecker
eigenvalues by the exact second moments of the gradients in that basis,

    Lambda = E[(Q_S^T g a^T Q_A)^2]   (elementwise square),

which for a layer used once per sample is the mean outer product of ``(Q_S^T g)^2`` and
``(Q_A^T a)^2``, computed from the two vectors without forming per-sample gradients. The block
is then ``(Q_S (x) Q_A) diag(Lambda) (Q_S (x) Q_A)^T`` and adding ``(weight_decay + damping) * I``
is exact in that basis, so ``V @ H^-1`` for a layer's ``(out, in + 1)`` slice ``V_l`` of a row
of ``V`` is

    Q_S [(Q_S^T V_l Q_A) / (Lambda + weight_decay + damping)] Q_A^T.

What is approximated
--------------------
The curvature is the generalised Gauss-Newton matrix (GGN) ``(1/n) sum_i J_i^T H_i J_i`` of the
loss (``J_i`` the Jacobian of the network output, ``H_i`` the Hessian of ``loss_i`` in the output),
not the full Hessian: the terms with second derivatives of the network are dropped, so it is
positive semi-definite even away from a minimum. With ``fisher="true"`` the pseudo-gradients are
``g = J^T l_k`` for the columns ``l_k`` of a square root of ``H_i`` (``H_i = sum_k l_k l_k^T``),
the GGN in exact expectation instead of a Monte Carlo estimate with labels sampled from the model:
for cross-entropy on logits this is the true Fisher (``l_k = sqrt(p_k) (e_k - p)``; one backward
pass per class but one, per block of rows), for a squared error (the output Hessian a multiple of
``I``) the Fisher of a Gaussian likelihood with the matching variance. ``H_i`` is found by
differentiating the loss twice in the output, so any ``loss_fn`` works whose rows are independent.
With ``fisher="empirical"`` ``g`` is the gradient of the loss at the given labels (the empirical
Fisher, biased towards rows that are fitted badly).

Damping: ``Lambda`` has zeros wherever the GGN is singular (dead ReLU units, the logit-shift
direction of a softmax, fewer rows than inputs); ``weight_decay`` and ``damping`` are added to
every eigenvalue, and ``fit`` raises a :class:`~dataworth.errors.DataworthError` when the smallest
of ``Lambda + weight_decay + damping`` is at rounding level (``eps * max(Lambda)``) or below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dataworth.errors import DataworthError

__all__ = ["EKFACLayer", "EKFACSolver"]

_FISHERS = ("true", "empirical")


@dataclass
class EKFACLayer:
    """The fitted curvature of one ``torch.nn.Linear`` layer.

    Attributes
    ----------
    name : str
        The layer's name in ``model.named_modules()``.
    weight : tuple of int or None
        ``(start, stop)`` of the weight in the flat parameter vector, or ``None`` when frozen.
    bias : tuple of int or None
        ``(start, stop)`` of the bias in the flat parameter vector, or ``None``.
    in_features, out_features : int
        The layer's shape.
    Q_A : Tensor of shape (d, d)
        Eigenbasis of ``A = E[a a^T]``, ``d = in_features + (bias trained)``.
    Q_S : Tensor of shape (out_features, out_features)
        Eigenbasis of ``S = E[g g^T]``.
    eigenvalues : Tensor of shape (out_features, d)
        The corrected eigenvalues ``Lambda = E[(Q_S^T g a^T Q_A)^2]``.
    """

    name: str
    weight: tuple[int, int] | None
    bias: tuple[int, int] | None
    in_features: int
    out_features: int
    Q_A: Tensor | None = None
    Q_S: Tensor | None = None
    eigenvalues: Tensor | None = None

    @property
    def n_columns(self) -> int:
        """Columns of the layer's ``(out, d)`` parameter matrix (bias last)."""
        return (self.in_features if self.weight is not None else 0) + (self.bias is not None)


class EKFACSolver:
    """``V @ H^-1`` with the EK-FAC approximation of the curvature of a torch MLP.

    Every trainable parameter of the model must belong to a ``torch.nn.Linear`` layer (any
    nesting, any activations between them) whose first input dimension is the sample dimension.
    See the module docstring for the approximation: block-diagonal across layers, Gauss-Newton
    (Fisher) rather than the full Hessian, ``weight_decay + damping`` added to every eigenvalue.

    Parameters
    ----------
    n_samples : int, optional
        Training rows used to estimate the factors, drawn without replacement with
        ``random_state`` (default: all rows; a number above ``n_train`` means all rows).
    fisher : {"true", "empirical"}, default="true"
        ``"true"``: the Gauss-Newton matrix in exact expectation over the model's predictive
        distribution (one backward pass per non-zero eigenvalue of the loss's Hessian in the
        output, e.g. ``n_classes - 1`` for cross-entropy); ``"empirical"``: outer products of the
        gradients at the given labels (one backward pass).
    random_state : int, numpy Generator or None, default=None
        Seed for the subsample of ``n_samples`` rows.
    block_size : int, default=512
        Rows per forward/backward pass.

    Attributes
    ----------
    layers_ : list of EKFACLayer
        The fitted factors, one entry per Linear layer with trainable parameters.
    rows_ : ndarray of int
        The training rows the factors were estimated on.
    shift_ : float
        ``weight_decay + damping`` added to every eigenvalue.
    n_params_ : int
        Length of the flat parameter vector.

    Notes
    -----
    ``fit`` makes two passes over the rows (factors, then corrected eigenvalues) and one
    eigendecomposition of each factor; memory is ``sum(out^2 + d^2 + out * d)`` over the layers.
    ``solve`` costs ``O(m * sum(out * d * (out + d)))`` for ``m`` rows, without forming any
    ``p x p`` matrix.

    Examples
    --------
    A linear regression (one Linear layer, squared error) is exactly Kronecker-factored, so the
    solve matches the explicit inverse Hessian:

    >>> import torch
    >>> from dataworth.influence.ekfac import EKFACSolver
    >>> from dataworth.influence.torch_model import TorchInfluence
    >>> g = torch.Generator().manual_seed(0)
    >>> X = torch.randn(50, 3, generator=g, dtype=torch.float64)
    >>> y = X.sum(1, keepdim=True)
    >>> model = torch.nn.Linear(3, 1).double()
    >>> influence = TorchInfluence(model, X, y, loss="mse", solver=EKFACSolver(), damping=1e-3)
    >>> V = torch.randn(2, 4, generator=g, dtype=torch.float64)
    >>> torch.allclose(influence.solve(V), V @ torch.linalg.inv(influence.hessian()))
    True
    """

    def __init__(
        self,
        n_samples: int | None = None,
        fisher: str = "true",
        random_state: int | np.random.Generator | None = None,
        block_size: int = 512,
    ) -> None:
        self.n_samples = n_samples
        self.fisher = fisher
        self.random_state = random_state
        self.block_size = block_size

    def __repr__(self) -> str:
        return (
            f"EKFACSolver(n_samples={self.n_samples!r}, fisher={self.fisher!r}, "
            f"random_state={self.random_state!r}, block_size={self.block_size!r})"
        )

    # ------------------------------------------------------------------ fitting

    def _validate(self) -> None:
        if self.fisher not in _FISHERS:
            raise DataworthError(f"fisher must be 'true' or 'empirical'; got {self.fisher!r}.")
        for name in ("n_samples", "block_size"):
            value = getattr(self, name)
            if name == "n_samples" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise DataworthError(f"{name} must be a positive whole number; got {value!r}.")

    def fit(self, influence: Any) -> EKFACSolver:
        """Estimate the factors and corrected eigenvalues on the training rows of ``influence``.

        Parameters
        ----------
        influence : TorchInfluence
            Any object with ``model`` (a ``torch.nn.Module``), ``X`` and ``y`` (training tensors
            on the model's device), ``loss_fn(output, target)`` (per-sample losses, each depending
            only on its own row), ``weight_decay``, ``damping``, ``n_train`` and ``n_params``.

        Returns
        -------
        EKFACSolver
            ``self``, fitted.
        """
        self._validate()
        model: nn.Module = influence.model
        layers = _find_layers(model)
        n_params = sum(int(p.numel()) for _, p in model.named_parameters() if p.requires_grad)
        if n_params != int(influence.n_params):
            raise DataworthError(
                f"the model has {n_params} trainable parameters but the influence model reports "
                f"{influence.n_params}."
            )
        names = getattr(influence, "param_names", None)
        trainable = [name for name, p in model.named_parameters() if p.requires_grad]
        if names is not None and list(names) != trainable:
            raise DataworthError(
                "the influence model's param_names do not match the model's trainable parameters "
                f"in named_parameters() order: {list(names)} vs {trainable}."
            )
        n_train = int(influence.n_train)
        if n_train < 1:
            raise DataworthError("EK-FAC needs at least one training row.")
        if self.n_samples is None or self.n_samples >= n_train:
            rows = np.arange(n_train, dtype=np.intp)
        else:
            rng = np.random.default_rng(self.random_state)
            rows = np.sort(rng.choice(n_train, size=int(self.n_samples), replace=False))
        self.n_params_ = n_params
        self.rows_ = rows
        self.shift_ = float(influence.weight_decay) + float(influence.damping)
        self.layers_ = layers

        X, y = influence.X, influence.y
        loss_fn = influence.loss_fn
        dtype = next(p for _, p in model.named_parameters() if p.requires_grad).dtype
        device = next(p for _, p in model.named_parameters() if p.requires_grad).device
        n = float(rows.size)

        # Pass 1: the Kronecker factors A = E[a a^T] and S = E[g g^T].
        A = [torch.zeros(L.n_columns, L.n_columns, dtype=dtype, device=device) for L in layers]
        S = [
            torch.zeros(L.out_features, L.out_features, dtype=dtype, device=device) for L in layers
        ]

        def factors(j: int, a: Tensor, grads: list[Tensor]) -> None:
            A[j] += torch.einsum("btd,bte->de", a, a)
            for g in grads:
                S[j] += torch.einsum("bto,btp->op", g, g)

        self._passes(model, X, y, loss_fn, rows, layers, factors)
        for j, layer in enumerate(layers):
            layer.Q_A = torch.linalg.eigh(_symmetric(A[j] / n))[1]
            layer.Q_S = torch.linalg.eigh(_symmetric(S[j] / n))[1]

        # Pass 2: the corrected eigenvalues E[(Q_S^T g a^T Q_A)^2].
        lam = [torch.zeros(L.out_features, L.n_columns, dtype=dtype, device=device) for L in layers]

        def eigenvalues(j: int, a: Tensor, grads: list[Tensor]) -> None:
            Q_A, Q_S = layers[j].Q_A, layers[j].Q_S
            assert Q_A is not None and Q_S is not None
            aq = a @ Q_A
            if a.shape[1] == 1:  # one use per sample: the square of an outer product
                if grads:
                    gq2 = torch.stack([(g[:, 0] @ Q_S) ** 2 for g in grads]).sum(0)
                    lam[j] += gq2.T @ aq[:, 0] ** 2
            else:
                for g in grads:
                    per_sample = torch.einsum("bto,btd->bod", g @ Q_S, aq)
                    lam[j] += (per_sample**2).sum(0)

        self._passes(model, X, y, loss_fn, rows, layers, eigenvalues)
        smallest, largest = float("inf"), 0.0
        for j, layer in enumerate(layers):
            layer.eigenvalues = lam[j] / n
            if layer.eigenvalues.numel():
                smallest = min(smallest, float(layer.eigenvalues.min()))
                largest = max(largest, float(layer.eigenvalues.max()))
        # Eigenvalues at rounding level (e.g. the logit-shift direction of a softmax) are zeros.
        if not smallest + self.shift_ > torch.finfo(dtype).eps * largest:
            raise DataworthError(
                "the EK-FAC curvature is singular (its smallest eigenvalue is "
                f"{smallest:.3g} of {largest:.3g}, weight_decay + damping = {self.shift_:.3g}); "
                "set damping > 0 on the influence model."
            )
        return self

    def _passes(
        self,
        model: nn.Module,
        X: Any,
        y: Any,
        loss_fn: Callable[[Tensor, Tensor], Tensor],
        rows: np.ndarray,
        layers: list[EKFACLayer],
        update: Callable[[int, Tensor, list[Tensor]], None],
    ) -> None:
        """One pass over ``rows`` in blocks, calling ``update(layer, a, [g_k])``.

        ``a`` has shape ``(b, t, d)`` (``t`` uses of the layer per sample) and each ``g_k`` shape
        ``(b, t, out)``.
        """
        modules = dict(model.named_modules())
        inputs: list[list[Tensor]] = [[] for _ in layers]
        outputs: list[list[Tensor]] = [[] for _ in layers]

        def recorder(j: int) -> Callable[..., Tensor]:
            def hook(
                module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Tensor
            ) -> Tensor:
                inputs[j].append((args[0] if args else kwargs["input"]).detach())
                outputs[j].append(output)
                # Later in-place operations (ReLU(inplace=True)) change the copy, not ``output``.
                return output.clone()

            return hook

        handles = [
            modules[L.name].register_forward_hook(recorder(j), with_kwargs=True)
            for j, L in enumerate(layers)
        ]
        device = X.device if isinstance(X, Tensor) else None
        try:
            for start in range(0, rows.size, int(self.block_size)):
                idx = torch.as_tensor(rows[start : start + int(self.block_size)], device=device)
                xb, yb = X[idx], y[idx]
                b = int(idx.numel())
                for lst in (*inputs, *outputs):
                    lst.clear()
                with torch.enable_grad():
                    out = model(xb)
                    if not isinstance(out, Tensor):
                        raise DataworthError(
                            "EK-FAC needs a model that returns one tensor; got "
                            f"{type(out).__name__}."
                        )
                    pseudo = self._output_gradients(out, yb, loss_fn)
                    acts: list[Tensor] = []
                    flat_outputs: list[Tensor] = []
                    for j, L in enumerate(layers):
                        if not inputs[j]:
                            raise DataworthError(
                                f"layer {L.name!r} ({type(modules[L.name]).__name__}) was not "
                                "called in the forward pass; EK-FAC needs each trainable Linear "
                                "layer to be called as a module."
                            )
                        acts.append(_augmented(L, inputs[j], b))
                        flat_outputs.extend(outputs[j])
                    grads_per_layer: list[list[Tensor]] = [[] for _ in layers]
                    for k, g_out in enumerate(pseudo):
                        grads = torch.autograd.grad(
                            out,
                            flat_outputs,
                            grad_outputs=g_out,
                            retain_graph=k + 1 < len(pseudo),
                            allow_unused=True,
                        )
                        pos = 0
                        for j, L in enumerate(layers):
                            parts = []
                            for o, gr in zip(
                                outputs[j], grads[pos : pos + len(outputs[j])], strict=True
                            ):
                                gr = torch.zeros_like(o) if gr is None else gr
                                parts.append(gr.reshape(b, -1, L.out_features))
                            pos += len(outputs[j])
                            grads_per_layer[j].append(torch.cat(parts, 1).detach())
                for j in range(len(layers)):
                    update(j, acts[j], grads_per_layer[j])
        finally:
            for h in handles:
                h.remove()
            for lst in (*inputs, *outputs):
                lst.clear()

    def _output_gradients(
        self, out: Tensor, target: Any, loss_fn: Callable[[Tensor, Tensor], Tensor]
    ) -> list[Tensor]:
        """Pseudo-gradients of the loss with respect to the model output, each shaped as ``out``.

        Empirical: the gradient at the labels. True: the columns ``l_k`` of a square root of each
        row's output Hessian ``H_i = sum_k l_k l_k^T``, so that ``sum_k (J^T l_k)(J^T l_k)^T`` is
        the row's Gauss-Newton matrix; negative curvature of the loss (if any) is dropped.
        """
        b = out.shape[0]
        leaf = out.detach().requires_grad_(True)
        losses = loss_fn(leaf, target)
        if not isinstance(losses, Tensor) or losses.shape != (b,):
            shape = tuple(losses.shape) if isinstance(losses, Tensor) else type(losses).__name__
            raise DataworthError(
                f"loss_fn must return one loss per row, shape ({b},); got {shape}."
            )
        if not losses.requires_grad:
            return []
        if self.fisher == "empirical":
            (grad,) = torch.autograd.grad(losses.sum(), leaf)
            return [grad.detach()]
        (grad,) = torch.autograd.grad(losses.sum(), leaf, create_graph=True)
        flat = grad.reshape(b, -1)
        c = flat.shape[1]
        hess = torch.zeros(b, c, c, dtype=out.dtype, device=out.device)
        if flat.requires_grad:
            for i in range(c):
                (row,) = torch.autograd.grad(
                    flat[:, i].sum(), leaf, retain_graph=i + 1 < c, allow_unused=True
                )
                if row is not None:
                    hess[:, i, :] = row.reshape(b, c)
        evals, evecs = torch.linalg.eigh(_symmetric(hess))
        evals = evals.clamp(min=0)
        top = float(evals.max()) if evals.numel() else 0.0
        roots = evecs * evals.sqrt()[:, None, :]
        tol = top * c * torch.finfo(out.dtype).eps
        return [
            roots[:, :, k].reshape(out.shape).detach()
            for k in range(c)
            if float(evals[:, k].max()) > tol
        ]

    # ------------------------------------------------------------------ solving

    def solve(self, V: Any) -> Any:
        """``V @ H^-1`` with the EK-FAC curvature, for each row of ``V`` (shape ``(m, p)``).

        Parameters
        ----------
        V : Tensor or ndarray of shape (m, p) or (p,)
            Rows in the flat parameter order.

        Returns
        -------
        Tensor or ndarray
            Same type, shape, dtype and device as ``V``.
        """
        if not hasattr(self, "layers_"):
            raise DataworthError("EKFACSolver is not fitted; call fit(influence) first.")
        as_numpy = not isinstance(V, Tensor)
        layer0 = self.layers_[0]
        assert layer0.Q_A is not None
        T = torch.as_tensor(np.asarray(V), device=layer0.Q_A.device) if as_numpy else V
        one_row = T.ndim == 1
        M = T[None, :] if one_row else T
        if M.ndim != 2 or M.shape[1] != self.n_params_:
            raise DataworthError(f"V must have shape (m, {self.n_params_}); got {tuple(T.shape)}.")
        work = M.to(device=layer0.Q_A.device, dtype=layer0.Q_A.dtype)
        m = work.shape[0]
        result = torch.empty_like(work)
        for L in self.layers_:
            assert L.Q_A is not None and L.Q_S is not None and L.eigenvalues is not None
            parts = []
            if L.weight is not None:
                parts.append(work[:, L.weight[0] : L.weight[1]].reshape(m, L.out_features, -1))
            if L.bias is not None:
                parts.append(work[:, L.bias[0] : L.bias[1]].reshape(m, L.out_features, 1))
            block = torch.cat(parts, 2)
            rotated = L.Q_S.T @ block @ L.Q_A
            back = L.Q_S @ (rotated / (L.eigenvalues + self.shift_)) @ L.Q_A.T
            if L.weight is not None:
                result[:, L.weight[0] : L.weight[1]] = back[:, :, : L.in_features].reshape(m, -1)
            if L.bias is not None:
                result[:, L.bias[0] : L.bias[1]] = back[:, :, -1]
        result = result.to(dtype=M.dtype, device=M.device)
        if one_row:
            result = result[0]
        if as_numpy:
            return result.cpu().numpy()
        return result


def _symmetric(M: Tensor) -> Tensor:
    return 0.5 * (M + M.transpose(-1, -2))


def _augmented(layer: EKFACLayer, calls: list[Tensor], b: int) -> Tensor:
    """The layer's inputs as ``(b, t, d)``: all uses per sample, a 1 appended for the bias."""
    parts = []
    for x in calls:
        if x.ndim < 1 or x.shape[0] != b or x.shape[-1] != layer.in_features:
            raise DataworthError(
                f"layer {layer.name!r} got an input of shape {tuple(x.shape)}; EK-FAC needs "
                f"(n_rows, ..., {layer.in_features}) with the rows of X first ({b} in this block)."
            )
        x = x.reshape(b, -1, layer.in_features)
        cols = [x] if layer.weight is not None else []
        if layer.bias is not None:
            cols.append(torch.ones(*x.shape[:2], 1, dtype=x.dtype, device=x.device))
        parts.append(torch.cat(cols, 2))
    return torch.cat(parts, 1)


def _find_layers(model: nn.Module) -> list[EKFACLayer]:
    """The Linear layers holding the trainable parameters, with their flat offsets."""
    owners: dict[int, list[tuple[str, nn.Module, str]]] = {}
    for mod_name, module in model.named_modules(remove_duplicate=False):
        for p_name, p in module.named_parameters(recurse=False):
            entry = (mod_name, module, p_name)
            if entry[0] not in [o[0] for o in owners.get(id(p), [])]:
                owners.setdefault(id(p), []).append(entry)
    layers: dict[str, EKFACLayer] = {}
    offset = 0
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        found = owners.get(id(p), [])
        distinct = {id(o[1]) for o in found}
        if len(distinct) != 1:
            where = ", ".join(sorted(o[0] or "<model>" for o in found))
            raise DataworthError(
                f"parameter {name!r} is shared by several modules ({where}); EK-FAC needs each "
                "trainable parameter to belong to one torch.nn.Linear layer."
            )
        mod_name, module, p_name = found[0]
        if not isinstance(module, nn.Linear) or p_name not in ("weight", "bias"):
            raise DataworthError(
                f"EK-FAC supports only torch.nn.Linear layers; trainable parameter {name!r} "
                f"belongs to {mod_name or 'the model itself'!r} ({type(module).__name__}). "
                "Freeze it (requires_grad=False) or use another solver."
            )
        span = (offset, offset + int(p.numel()))
        offset = span[1]
        layer = layers.get(mod_name)
        if layer is None:
            layer = layers[mod_name] = EKFACLayer(
                name=mod_name,
                weight=None,
                bias=None,
                in_features=int(module.in_features),
                out_features=int(module.out_features),
            )
        if p_name == "weight":
            layer.weight = span
        else:
            layer.bias = span
    if not layers:
        raise DataworthError("the model has no trainable parameters.")
    return list(layers.values())
