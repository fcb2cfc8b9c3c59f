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
from typing import TYPE_CHECKING, Any

from dataworth.errors import DataworthError

if TYPE_CHECKING:
    from dataworth.estimators.plan import Plan
    from dataworth.estimators.semivalues import Semivalue

__all__ = ["ESTIMATORS", "get_estimator", "plan_semivalue"]

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


def plan_semivalue(
    estimator: str,
    utility: Any,
    semivalue: Semivalue,
    *,
    budget: int | None,
    random_state: int | None,
    n_jobs: int | None,
) -> Plan:
    """The plan of the estimator named ``estimator`` for ``semivalue`` on ``utility``.

    Refuses an estimator that does not support the semivalue; a game of one player is valued
    exactly by one permutation (there is no coalition size to sample).
    """
    cls = get_estimator(estimator)
    supported = cls.semivalues
    if supported is not None and semivalue.name not in supported:
        raise DataworthError(
            f"estimator {estimator!r} estimates {', '.join(sorted(supported))} values only, "
            f"not {semivalue}."
        )
    if utility.n_players < 2:
        cls = get_estimator("permutation")
    plan: Plan = cls().plan(
        utility, semivalue, budget=budget, random_state=random_state, n_jobs=n_jobs
    )
    return plan
