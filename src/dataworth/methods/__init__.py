"""The registry of valuation methods: one module per method, one entry here.

Classes are imported on first use, so that listing methods imports none of them.

Examples
--------
>>> "tmc-shapley" in METHODS
True
>>> get_method("knn-shapley").name
'knn-shapley'
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

from dataworth.errors import DataworthError
from dataworth.registry import Entry

if TYPE_CHECKING:
    from dataworth.base import Valuation

__all__ = ["METHODS", "RUN_CONTROL", "STOPPING", "get_method", "parameters_of"]

#: Parameters that say how to run a method, not what it computes (workers, progress bar,
#: checkpointing): left out of a result's ``params``, of what a checkpoint must match, and of
#: the parameters a command describes.
RUN_CONTROL: tuple[str, ...] = ("n_jobs", "progress", "checkpoint", "resume")

#: Parameters that say when a Monte Carlo run stops, not what it estimates: a checkpoint of the
#: same run may be resumed with other values of these.
STOPPING: tuple[str, ...] = ("budget", "stop")

#: method name -> where it lives, its summary and reference (listing imports nothing)
METHODS: dict[str, Entry] = {
    "loo": Entry(
        "loo:LeaveOneOut",
        "Leave-one-out: the drop in score when a single point is removed (exact).",
        "Cook 1977; Koh & Liang 2017 (as the baseline influence is compared with)",
    ),
    "exact-shapley": Entry(
        "exact:ExactShapley",
        "Exact Shapley values by enumerating all subsets (at most 20 points or groups).",
        "Shapley 1953; Ghorbani & Zou 2019, Data Shapley",
    ),
    "shapley": Entry(
        "shapley:Shapley",
        (
            "Shapley values with the most efficient estimator (--estimator to choose); the"
            " budget counts utility evaluations."
        ),
        "Witter et al. 2025; Kolpaczki et al. 2024; Musco & Witter 2025",
    ),
    "permutation-shapley": Entry(
        "semivalue:PermutationShapley",
        "Shapley values by Monte Carlo permutation sampling.",
        "Castro et al. 2009; Ghorbani & Zou 2019, Data Shapley",
    ),
    "tmc-shapley": Entry(
        "semivalue:TMCShapley",
        "Truncated Monte Carlo Shapley: permutations cut short once the score saturates.",
        ("Ghorbani & Zou 2019, Data Shapley: equitable valuation of data for machine learning"),
    ),
    "beta-shapley": Entry(
        "semivalue:BetaShapley",
        ("Beta(alpha, beta) Shapley: a semivalue weighting small coalitions more (default 16, 1)."),
        ("Kwon & Zou 2022, Beta Shapley: a unified and noise-reduced data valuation framework"),
    ),
    "banzhaf": Entry(
        "banzhaf:MSRBanzhaf",
        "Data Banzhaf values by maximum sample reuse (every subset updates every point).",
        "Wang & Jia 2023, Data Banzhaf: a robust data valuation framework",
    ),
    "least-core": Entry(
        "least_core:LeastCore",
        ("Least core: the stable allocation needing the least subsidy (exact or Monte Carlo)."),
        "Yan & Procaccia 2021, If you like Shapley then you will love the core",
    ),
    "class-wise-shapley": Entry(
        "classwise:ClasswiseShapley",
        (
            "Class-wise Shapley: Shapley within each class, utility a(c) * exp(a(-c)), "
            "random out-of-class contexts."
        ),
        (
            "Schoch, Xu & Ji 2022, CS-Shapley: class-wise Shapley values for data "
            "valuation in classification"
        ),
    ),
    "knn-shapley": Entry(
        "knn_shapley:KNNShapley",
        ("Exact Shapley values of the K-nearest-neighbour utility in closed form; no training."),
        ("Jia et al. 2019, Efficient task-specific data valuation for nearest neighbor algorithms"),
    ),
    "data-oob": Entry(
        "data_oob:DataOOB",
        "Out-of-bag score of each point over models fitted on bootstrap samples.",
        ("Kwon & Zou 2023, Data-OOB: out-of-bag estimate as a simple and efficient data value"),
    ),
    "influence": Entry(
        "influence:Influence",
        "Influence functions: first-order change in valuation loss without each point.",
        "Koh & Liang 2017, Understanding black-box predictions via influence functions",
    ),
    "lava": Entry(
        "lava:LAVA",
        (
            "Minus the calibrated gradient of a label-aware optimal-transport distance to "
            "the valuation set; no model trained (needs POT)."
        ),
        ("Just et al. 2023, LAVA: Data valuation without pre-specified learning algorithms"),
    ),
    "cgs": Entry(
        "cgs:CGS",
        (
            "Complexity-gap score: the drop of the two-layer ReLU NTK complexity y^T H^-1 "
            "y when a row is removed; training rows only, no model."
        ),
        "Nohyun, Choi & Chung 2023, Data valuation without training of a model",
    ),
}


def get_method(name: str) -> type[Valuation]:
    """The valuation class registered under ``name``."""
    if name not in METHODS:
        raise DataworthError(
            f"unknown method {name!r}; choose one of: {', '.join(METHODS)} "
            "(run `dataworth methods` for descriptions)."
        )
    cls: type[Valuation] = METHODS[name].load("dataworth.methods")
    return cls


def parameters_of(cls: type) -> set[str]:
    """Names of the constructor parameters of a valuation class."""
    return set(inspect.signature(cls).parameters)
