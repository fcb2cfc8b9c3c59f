"""The registry of valuation methods: one module per method, one entry here.

Classes are imported lazily so that listing methods stays cheap.

Examples
--------
>>> "tmc-shapley" in METHODS
True
>>> get_method("knn-shapley").name
'knn-shapley'
"""

from __future__ import annotations

import inspect
from importlib import import_module
from typing import TYPE_CHECKING

from dataworth.errors import DataworthError

if TYPE_CHECKING:
    from dataworth.base import Valuation

__all__ = ["METHODS", "get_method", "parameters_of"]

#: method name -> "module:Class" under dataworth.methods
METHODS: dict[str, str] = {
    "loo": "loo:LeaveOneOut",
    "exact-shapley": "exact:ExactShapley",
    "shapley": "shapley:Shapley",
    "permutation-shapley": "semivalue:PermutationShapley",
    "tmc-shapley": "semivalue:TMCShapley",
    "beta-shapley": "semivalue:BetaShapley",
    "banzhaf": "banzhaf:MSRBanzhaf",
    "least-core": "least_core:LeastCore",
    "class-wise-shapley": "classwise:ClasswiseShapley",
    "knn-shapley": "knn_shapley:KNNShapley",
    "data-oob": "data_oob:DataOOB",
    "influence": "influence:Influence",
    "lava": "lava:LAVA",
    "cgs": "cgs:CGS",
}


def get_method(name: str) -> type[Valuation]:
    """The valuation class registered under ``name``."""
    if name not in METHODS:
        raise DataworthError(
            f"unknown method {name!r}; choose one of: {', '.join(METHODS)} "
            "(run `dataworth methods` for descriptions)."
        )
    module, cls = METHODS[name].split(":")
    return getattr(import_module(f"dataworth.methods.{module}"), cls)


def parameters_of(cls: type) -> set[str]:
    """Names of the constructor parameters of a valuation class."""
    return set(inspect.signature(cls).parameters)
