"""Influence functions: closed forms for scikit-learn linear models, PyTorch models via torch.func.

Build an influence model (:class:`LinearInfluence` for scikit-learn's linear and logistic
regression, :class:`TorchInfluence` with a direct, conjugate-gradient, LiSSA, Arnoldi or EK-FAC
inverse-Hessian solver for a trained ``torch.nn.Module``, :class:`TracIn` from training
checkpoints), then ask it block-wise for what you need: :func:`influence_matrix` (training x test,
optionally streamed to disk), :func:`influence_values` (one value per training row),
:func:`self_influence` (an outlier score) or :func:`influence_on_parameters`.

The PyTorch names are imported on first use, so ``import dataworth.influence`` never needs torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from dataworth.influence.base import (
    InfluenceModel,
    influence_matrix,
    influence_on_parameters,
    influence_values,
    self_influence,
)
from dataworth.influence.linear import LinearInfluence

__all__ = [
    "ArnoldiSolver",
    "CGSolver",
    "DirectSolver",
    "EKFACSolver",
    "InfluenceModel",
    "LiSSASolver",
    "LinearInfluence",
    "TorchInfluence",
    "TracIn",
    "influence_matrix",
    "influence_on_parameters",
    "influence_values",
    "self_influence",
]

_LAZY = {
    "TorchInfluence": "dataworth.influence.torch_model",
    "DirectSolver": "dataworth.influence.solvers",
    "CGSolver": "dataworth.influence.solvers",
    "LiSSASolver": "dataworth.influence.solvers",
    "ArnoldiSolver": "dataworth.influence.solvers",
    "EKFACSolver": "dataworth.influence.ekfac",
    "TracIn": "dataworth.influence.tracin",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        try:
            module = importlib.import_module(_LAZY[name])
        except ImportError as exc:
            if exc.name == "torch":
                from dataworth.errors import DataworthError

                raise DataworthError(
                    f'{name} needs PyTorch: pip install "dataworth[torch]".'
                ) from None
            raise
        return getattr(module, name)
    raise AttributeError(f"module 'dataworth.influence' has no attribute {name!r}")
