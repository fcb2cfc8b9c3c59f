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

from dataworth.api import make_utility, value
from dataworth.data import Dataset
from dataworth.engine.cluster import on_cluster_backend
from dataworth.engine.stopping import MaxTime, MaxUpdates, RankStable, StderrBelow
from dataworth.errors import DataworthError
from dataworth.methods import METHODS, get_method
from dataworth.result import ValuationResult
from dataworth.utility import ModelUtility

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
