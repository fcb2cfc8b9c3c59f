"""dataworth: what each training sample (or data source) is worth to a model.

Examples
--------
>>> import dataworth
>>> from dataworth.datasets import load_dataset
>>> train, valid = load_dataset("wine").split(0.3, random_state=0)
>>> result = dataworth.value("knn-shapley", train, valid, k=3)
>>> result.bottom(3).shape
(3,)
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below, imported on first use (a bare import stays fast)
    from dataworth.api import make_utility, value
    from dataworth.data import Dataset
    from dataworth.engine.cluster import on_cluster_backend
    from dataworth.engine.stopping import MaxTime, MaxUpdates, RankStable, StderrBelow
    from dataworth.errors import DataworthError
    from dataworth.methods import METHODS, get_method
    from dataworth.result import ValuationResult
    from dataworth.utility import ModelUtility

#: public name -> the module that defines it; importing scikit-learn, scipy and pandas is
#: deferred until a name that needs them is used.
_LAZY = {
    "make_utility": "dataworth.api",
    "value": "dataworth.api",
    "Dataset": "dataworth.data",
    "on_cluster_backend": "dataworth.engine.cluster",
    "MaxTime": "dataworth.engine.stopping",
    "MaxUpdates": "dataworth.engine.stopping",
    "RankStable": "dataworth.engine.stopping",
    "StderrBelow": "dataworth.engine.stopping",
    "DataworthError": "dataworth.errors",
    "METHODS": "dataworth.methods",
    "get_method": "dataworth.methods",
    "ValuationResult": "dataworth.result",
    "ModelUtility": "dataworth.utility",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        obj = getattr(import_module(_LAZY[name]), name)
        globals()[name] = obj  # later lookups skip this function
        return obj
    raise AttributeError(f"module 'dataworth' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "METHODS",
    "Dataset",
    "DataworthError",
    "MaxTime",
    "MaxUpdates",
    "ModelUtility",
    "RankStable",
    "StderrBelow",
    "ValuationResult",
    "get_method",
    "make_utility",
    "on_cluster_backend",
    "value",
]

__version__ = "0.1.0"
