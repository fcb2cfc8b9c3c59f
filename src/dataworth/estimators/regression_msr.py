"""Regression-adjusted maximum sample reuse (after Witter et al. 2025).

A pilot of paired coalitions, drawn from the semivalue's size distribution, fits a cheap
surrogate ``g(T) = h(|T|) + beta . 1_T`` by weighted ridge regression (``h`` piecewise linear in
the size: the learning curve; ``beta``: one additive effect per player). The semivalue of ``g``
is known in closed form (:meth:`~dataworth.estimators.msr.Surrogate.values`); the rest of the
budget estimates the semivalue of the residual ``u - g`` without bias by maximum sample reuse
(:mod:`dataworth.estimators.msr`). The outer sizes that sampling would cover at least once
over are enumerated first (the border, :func:`~dataworth.estimators.msr.border_sizes`); they
enter exactly and feed the fit. From ``4 n`` pilot pairs on, the pilot's pairs also enter the
estimate by cross-fitting: each half is valued with the surrogate fitted on the other half. No
sample is ever valued with a surrogate fitted on it, so the estimate is unbiased whatever the
fit, and its standard error is that of a mean of independent samples; a good surrogate makes
it small. Fitting costs one SVD of the pilot's design
(``O(m p^2)`` for ``m`` pilot coalitions and ``p = n + 24`` features), far less than the fits
it replaces.

With ``surrogate="linear+trees"`` (the default) a gradient-boosted tree ensemble on the
coalition indicators and the size is then fitted to the linear surrogate's residuals
(interactions between points); a tree's semivalue is exact too, summed over its leaves in
closed form (:mod:`dataworth.estimators.tree_surrogate`). The fit's time is in the metadata.

Examples
--------
>>> from dataworth.testing.games import AdditiveGame
>>> from dataworth.estimators.semivalues import Semivalue
>>> plan = RegressionMSR().plan(
...     AdditiveGame([1.0, 2.0, 3.0]), Semivalue.shapley(), budget=400, random_state=0, n_jobs=1
... )
>>> plan.job.surrogate.values(Semivalue.shapley()).round(2).tolist()  # additive: fitted
[1.0, 2.0, 3.0]
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import joblib
import numpy as np
from numpy.typing import NDArray

from dataworth.engine.moments import Moments
from dataworth.engine.runner import run_tasks
from dataworth.errors import DataworthError
from dataworth.estimators.msr import (
    Surrogate,
    border_coalitions,
    border_sizes,
    ends,
    evaluate_known,
    paired_job,
)
from dataworth.estimators.plan import Plan
from dataworth.estimators.semivalues import Semivalue
from dataworth.estimators.sizes import SizeSampler, coefficients
from dataworth.estimators.tree_surrogate import SURROGATES, fit_tree_surrogate

__all__ = ["RegressionMSR", "fit_surrogate", "size_basis"]

#: The pilot's pairs also enter the estimate (cross-fitted) from this many per player on.
REUSE_PILOT_PAIRS = 4

#: Most knots of the piecewise-linear size effect ``h``.
MAX_KNOTS = 24


def size_basis(n: int) -> NDArray[np.float64]:
    """``(n + 1) x K`` hat functions of the coalition size on ``K = min(n + 1, 24)`` knots."""
    k = min(n + 1, MAX_KNOTS)
    knots = np.unique(np.round(np.linspace(0, n, k)))
    sizes = np.arange(n + 1, dtype=np.float64)
    return np.column_stack([np.interp(sizes, knots, e) for e in np.eye(knots.size)])


def _evaluate(utility: Any, masks: NDArray[np.bool_]) -> NDArray[np.float64]:
    return np.asarray(utility.evaluate_many(masks), dtype=np.float64)


def fit_surrogate(
    masks: NDArray[np.bool_], u: NDArray[np.float64], weights: NDArray[np.float64]
) -> tuple[Surrogate, dict[str, Any]]:
    """Weighted ridge regression of ``u`` on ``[1_T, hat(|T|)]``, the ridge chosen by
    generalised cross-validation; returns the surrogate and a summary of the fit.

    The design is rank deficient by one (``sum_i 1_T = |T|`` is linear in the size), which the
    ridge resolves; the surrogate's semivalue does not depend on that direction.
    """
    m, n = masks.shape
    B = size_basis(n)
    X = np.hstack([masks.astype(np.float64), B[masks.sum(axis=1)]])
    sw = np.sqrt(weights / weights.mean())
    Xw, yw = X * sw[:, None], u * sw
    U, s, Vt = np.linalg.svd(Xw, full_matrices=False)
    Uty = U.T @ yw
    outside = float(yw @ yw - Uty @ Uty)  # the part of y no column can reach
    best: tuple[float, float] | None = None
    top = float(s[0] ** 2) if s.size else 1.0
    for lam in top * np.logspace(-10, 0, 41):
        shrink = s**2 / (s**2 + lam)
        rss = float(((1 - shrink) * Uty) @ ((1 - shrink) * Uty)) + max(outside, 0.0)
        dof = float(shrink.sum())
        if dof >= m:
            continue
        gcv = rss / m / (1 - dof / m) ** 2
        if best is None or gcv < best[0]:
            best = (gcv, lam)
    lam = best[1] if best is not None else top
    theta = Vt.T @ (s / (s**2 + lam) * Uty)
    fitted = X @ theta
    r2 = 1.0 - float(((u - fitted) ** 2 * weights).sum()) / max(
        float(((u - np.average(u, weights=weights)) ** 2 * weights).sum()), 1e-300
    )
    surrogate = Surrogate(B @ theta[n:], theta[:n])
    return surrogate, {"pilot_rows": int(m), "ridge": float(lam), "weighted_r2": round(r2, 6)}


class RegressionMSR:
    """Regression-adjusted MSR: a fitted surrogate's exact semivalue plus an unbiased
    correction from paired coalitions (see the module).

    Parameters
    ----------
    pilot_fraction : float, default=0.5
        Share of the budget spent on the pilot that fits the surrogate. Without a budget (a
        time limit or a standard-error target) the pilot is ``4 n`` evaluations.
    surrogate : {"linear", "trees", "linear+trees"}, default="linear+trees"
        ``"linear"``: size effect plus one effect per point; ``"trees"``: a gradient-boosted
        tree ensemble on the coalition indicators (interactions); ``"linear+trees"``: the trees
        fitted to the linear surrogate's residuals. Every tree's semivalue is exact
        (:mod:`dataworth.estimators.tree_surrogate`).
    """

    name: ClassVar[str] = "regression-msr"

    def __init__(self, pilot_fraction: float = 0.5, surrogate: str = "linear+trees") -> None:
        if not 0.0 <= pilot_fraction < 1.0:
            raise DataworthError(f"pilot_fraction must be in [0, 1); got {pilot_fraction!r}.")
        if surrogate not in SURROGATES:
            raise DataworthError(
                f"surrogate must be one of {', '.join(SURROGATES)}; got {surrogate!r}."
            )
        self.pilot_fraction = float(pilot_fraction)
        self.surrogate = surrogate

    def _pilot_pairs(self, n: int, budget: int | None) -> int:
        if budget is None:
            return 2 * n
        spare = int(budget) - 2 - 2 * 2  # the two ends, and at least two samples after
        return max(0, min(int(self.pilot_fraction * budget) // 2, spare // 2))

    def plan(
        self,
        utility: Any,
        semivalue: Semivalue,
        *,
        budget: int | None,
        random_state: int | None,
        n_jobs: int | None,
    ) -> Plan:
        n = utility.n_players
        u_empty, u_full = ends(utility)
        border = border_coalitions(n, border_sizes(semivalue, n, budget))  # scored exactly
        known = (border, evaluate_known(utility, border))
        spent = 2 + border.shape[0]
        pairs = self._pilot_pairs(n, None if budget is None else budget - border.shape[0])
        if pairs < 2:
            job = paired_job(semivalue, n, u_empty, u_full, Surrogate.zero(n), known)
            metadata: dict[str, Any] = {"surrogate": "none (budget too small)"}
            return Plan(job, 2, spent, metadata=metadata)
        rng = np.random.default_rng(np.random.SeedSequence(random_state).spawn(1)[0])
        k = int(np.minimum(border.sum(axis=1), n - border.sum(axis=1)).max()) if spent > 2 else 0
        sampler = SizeSampler.for_semivalue(semivalue, n, smallest=k + 1)
        T = sampler.draw(rng, pairs)
        ends_masks = np.array([np.zeros(n, bool), np.ones(n, bool)])
        masks = np.concatenate([T, ~T, ends_masks, border])
        blocks = [masks[i : min(i + 256, 2 * pairs)] for i in range(0, 2 * pairs, 256)]
        parts = run_tasks(_evaluate, blocks, n_jobs=n_jobs, progress=False, desc="pilot",
                          extra=(utility,))  # fmt: skip
        u = np.concatenate([*parts, [u_empty, u_full], known[1]])
        a_in, a_out = coefficients(semivalue, sampler)
        sizes = masks.sum(axis=1)
        weights = sizes * a_in[sizes] ** 2 + (n - sizes) * a_out[sizes] ** 2
        # the ends and the border enter exactly: fitted as well as the heaviest sampled size
        weights[2 * pairs :] = weights[: 2 * pairs].max()
        start = time.perf_counter()
        g, fit, key = self._fit_surrogate(masks, u, weights)
        job = paired_job(semivalue, n, u_empty, u_full, g, known)
        # cross-fitting: each half of the pilot's pairs is valued by the surrogate fitted on
        # the other half (and the exact coalitions), so the pilot's evaluations also count
        # in the unbiased estimate, not only in the surrogate. Below 4 n pairs a half fits
        # too poor a surrogate: its vectors would add more variance than they remove.
        initial = None
        if pairs >= REUSE_PILOT_PAIRS * n:
            initial = self._cross_fitted(semivalue, T, masks, u, weights, known, u_empty, u_full)
        fit["fit_seconds"] = round(time.perf_counter() - start, 4)
        identity = joblib.hash((self.surrogate, key))
        metadata = {
            "surrogate": fit,
            "exact_coalitions": int(border.shape[0]),
            "pilot_pairs_reused": 0 if initial is None else pairs,
        }
        return Plan(
            job, 2, spent + 2 * pairs, identity=identity, metadata=metadata, initial=initial
        )

    def _cross_fitted(
        self,
        semivalue: Semivalue,
        T: NDArray[np.bool_],
        masks: NDArray[np.bool_],
        u: NDArray[np.float64],
        weights: NDArray[np.float64],
        known: tuple[NDArray[np.bool_], NDArray[np.float64]],
        u_empty: float,
        u_full: float,
    ) -> tuple[dict[str, Moments], int]:
        """The pilot pairs' value vectors, each half with the surrogate of the other half."""
        pairs, n = T.shape
        vectors = []
        for half in (0, 1):
            held = np.flatnonzero(np.arange(pairs) % 2 == half)
            kept = np.flatnonzero(np.arange(pairs) % 2 != half)
            rows = np.concatenate([kept, pairs + kept, np.arange(2 * pairs, u.size)])
            g_half = self._fit_surrogate(masks[rows], u[rows], weights[rows])[0]
            job_half = paired_job(semivalue, n, u_empty, u_full, g_half, known)
            vectors.append(job_half.vectors(T[held], np.concatenate([u[held], u[pairs + held]])))
        return {"marginal": Moments.from_samples(np.concatenate(vectors))}, pairs

    def _fit_surrogate(
        self, masks: NDArray[np.bool_], u: NDArray[np.float64], weights: NDArray[np.float64]
    ) -> tuple[Any, dict[str, Any], tuple[Any, ...]]:
        """The surrogate of kind ``self.surrogate``, a summary of its fit and its key."""
        n = masks.shape[1]
        fit: dict[str, Any]
        if self.surrogate == "trees":
            linear, fit = Surrogate.zero(n), {}
        else:
            linear, fit = fit_surrogate(masks, u, weights)
        fit = {"kind": self.surrogate, **fit}
        g: Any = linear
        key: tuple[Any, ...] = (linear.h, linear.beta)
        if self.surrogate != "linear":
            g, trees = fit_tree_surrogate(masks, u, weights, linear=linear, random_state=0)
            fit["trees"] = trees
            key = g.key()
        return g, fit, key
