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

from typing import TYPE_CHECKING, Any

from dataworth.errors import DataworthError
from dataworth.registry import Entry

if TYPE_CHECKING:
    from dataworth.estimators.plan import Plan
    from dataworth.estimators.semivalues import Semivalue

__all__ = ["ESTIMATORS", "get_estimator", "plan_semivalue"]

#: estimator name -> where it lives, its summary and reference (listing imports nothing)
ESTIMATORS: dict[str, Entry] = {
    "permutation": Entry(
        "permutation:Permutation",
        "uniform permutations, n + 1 evaluations each (the classic estimator)",
        "Castro et al. 2009; Ghorbani & Zou 2019",
    ),
    "msr": Entry(
        "msr:SizeMSR",
        (
            "unbiased maximum sample reuse: paired coalitions drawn by size, each updates "
            "every point"
        ),
        "Wang & Jia 2023; Witter et al. 2025 (MSR for any semivalue)",
    ),
    "regression-msr": Entry(
        "regression_msr:RegressionMSR",
        (
            "a surrogate (size effect + one effect per point + boosted trees) fitted on a "
            "pilot, corrected without bias by maximum sample reuse on its residuals"
        ),
        ("Witter et al. 2025, Regression-adjusted Monte Carlo estimators for Shapley values"),
    ),
    "stratified-svarm": Entry(
        "stratified_svarm:StratifiedSVARM",
        (
            "strata by point and coalition size, no marginal contributions: every "
            "coalition scored updates every point; sizes 0, 1, n-1, n exact"
        ),
        (
            "Kolpaczki, Bengs, Muschalik & Hüllermeier 2024, Approximating the Shapley "
            "value without marginal contributions (AAAI)"
        ),
    ),
    "stratified": Entry(
        "stratified:Stratified",
        (
            "marginals stratified by point and coalition size, allocated to sizes by their"
            " pilot-estimated spread (Neyman); ends exact"
        ),
        "Maleki et al. 2013; Castro et al. 2017 (stratified sampling)",
    ),
    "kernel-shap": Entry(
        "kernel_shap:KernelSHAP",
        (
            "Kernel SHAP: constrained weighted least squares on paired coalitions drawn "
            "from the Shapley kernel (consistent, slightly biased; state O(n^2))"
        ),
        "Lundberg & Lee 2017; Covert & Lee 2021 (paired sampling)",
        semivalues=frozenset({"shapley"}),
    ),
    "unbiased-kernel-shap": Entry(
        "unbiased_kernel_shap:UnbiasedKernelSHAP",
        (
            "unbiased Kernel SHAP: the regression with the exact Gram matrix, paired "
            "coalitions from the Shapley kernel (unbiased, honest standard errors)"
        ),
        "Covert & Lee 2021, Improving KernelSHAP",
        semivalues=frozenset({"shapley"}),
    ),
    "leverage-shap": Entry(
        "leverage_shap:LeverageSHAP",
        (
            "Leverage SHAP: Kernel SHAP's regression on paired coalitions drawn by "
            "leverage score (uniform sizes), reweighted by the kernel (state O(n^2))"
        ),
        "Musco & Witter 2025, Provably accurate Shapley value estimation",
        semivalues=frozenset({"shapley"}),
    ),
}


def get_estimator(name: str) -> Any:
    """The estimator class registered under ``name``."""
    if name not in ESTIMATORS:
        raise DataworthError(
            f"unknown estimator {name!r}; choose one of: {', '.join(ESTIMATORS)} "
            "(run `dataworth methods` for descriptions)."
        )
    return ESTIMATORS[name].load("dataworth.estimators")


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
    supported = ESTIMATORS[estimator].semivalues
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
