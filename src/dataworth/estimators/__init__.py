"""Semivalue estimators: how samples of coalitions become values, one module each.

A *semivalue* (:mod:`dataworth.estimators.semivalues`) is its weight function; an *estimator*
(this registry) chooses which coalitions to score and turns their utilities into values and
standard errors, for any semivalue it supports. The engine only runs the rounds.

Examples
--------
>>> "regression-msr" in ESTIMATORS
True
>>> get_estimator("msr").name
'msr'
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from dataworth.errors import DataworthError

__all__ = ["ESTIMATORS", "get_estimator"]

#: estimator name -> "module:Class" under dataworth.estimators
ESTIMATORS: dict[str, str] = {
    "permutation": "permutation:Permutation",
    "msr": "msr:SizeMSR",
    "regression-msr": "regression_msr:RegressionMSR",
    "stratified-svarm": "stratified_svarm:StratifiedSVARM",
    "stratified": "stratified:Stratified",
    "kernel-shap": "kernel_shap:KernelSHAP",
    "unbiased-kernel-shap": "unbiased_kernel_shap:UnbiasedKernelSHAP",
    "leverage-shap": "leverage_shap:LeverageSHAP",
}


def get_estimator(name: str) -> Any:
    """The estimator class registered under ``name``."""
    if name not in ESTIMATORS:
        raise DataworthError(
            f"unknown estimator {name!r}; choose one of: {', '.join(ESTIMATORS)} "
            "(run `dataworth methods` for descriptions)."
        )
    module, cls = ESTIMATORS[name].split(":")
    return getattr(import_module(f"dataworth.estimators.{module}"), cls)
