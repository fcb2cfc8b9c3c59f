"""Approximate Maximum Influence Perturbation: can dropping a little data change a conclusion?

Broderick, Giordano & Meager, "An automatic finite-sample robustness metric: when can dropping a
little data make a big difference?" For a weighted estimator ``theta(w)`` and a quantity ``phi``
of it (a coefficient, or an edge of its confidence interval), ``psi_n = d phi / d w_n`` at
``w = 1``; dropping a set ``S`` changes ``phi`` by about ``-sum_{n in S} psi_n``. The rows that
push ``phi`` hardest towards a target, taken in order until the predicted change crosses it, are
an approximately minimal set whose removal changes the conclusion.

Targets (``change``), for a coefficient ``beta`` with standard error ``se`` and
``z = Phi^-1(1 - alpha / 2)`` (the normal critical value, as in the paper):

* ``"sign"``: the refitted ``beta`` has the opposite sign (strictly) of the original.
* ``"significance"``: the refitted confidence interval ``beta +- z se`` covers 0 (the original
  must exclude 0). Tracked through the interval edge nearer 0, whose influence includes the
  change of the standard error.
* ``"opposite-significance"``: the refitted interval excludes 0 on the other side (significant
  with the opposite sign). Tracked through the far edge.
* a number ``DELTA``: the refitted ``beta`` moves by at least ``|DELTA|`` in the direction of its
  sign (``beta_refit - beta >= DELTA`` for ``DELTA > 0``, ``<= DELTA`` for ``DELTA < 0``).

Modes (how the set is chosen; every mode's set is then verified by an exact refit):

* ``"first-order"``: rank rows by their first-order effect ``-psi_n`` towards the target and take
  them until the linear prediction crosses the target (the paper's AMIP).
* ``"newton"``: rank by the leverage-corrected effect ``-psi_n / (1 - h_n)`` (exact single-row
  leave-one-out for the OLS coefficient) and size the set with a one-Newton-step refit of each
  candidate prefix (exact for OLS, by the Woodbury update, and for 2SLS, which is closed-form;
  one Newton step from the full fit for logit). Prefix sizes are probed by doubling and bisection.
* ``"greedy"``: drop the row with the largest current effect, refit, re-rank, repeat (Huang et
  al. 2024: refitting unmasks rows whose effect only shows once others are gone). With
  ``refit_every=b`` it drops ``b`` rows between refits (the last batch is cut to the number the
  first-order prediction still needs); the default is 1 when at most 100 rows may be dropped and
  ``ceil(max_drop / 100)`` otherwise.

Verification: the chosen set is refitted exactly. If the refit misses the target, the set is
extended along the same ranking (sizes probed by doubling, then bisection, each one refitted)
until a refit achieves it, or the result reports failure. ``achieved`` is only ever ``True`` for a
set whose refit achieves the target, and ``indices`` is always the set that was refitted.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.stats
from numpy.typing import ArrayLike, NDArray

from dataworth.apps.robustness.estimators import (
    OLS,
    EstimationError,
    Estimator,
    Fit,
    Logit,
    TwoSLS,
)
from dataworth.errors import DataworthError
from dataworth.jsonable import json_ready

__all__ = [
    "CHANGES",
    "MODELS",
    "MODES",
    "RobustnessResult",
    "amip",
    "make_estimator",
    "parse_change",
]

_F64 = NDArray[np.float64]

MODELS = ("ols", "logit", "2sls")
MODES = ("first-order", "greedy", "newton")
CHANGES = ("sign", "significance", "opposite-significance")

#: Default largest share of rows that may be dropped. Beyond 10% one is no longer asking whether
#: "a little" data matters; raise it to measure larger sets.
DEFAULT_MAX_FRACTION = 0.1


# ------------------------------------------------------------------------------------ result
@dataclass(frozen=True)
class RobustnessResult:
    """The outcome of :func:`amip`: a drop set and what happens when it is removed.

    Attributes
    ----------
    coef : str
        Name of the coefficient.
    model, se, mode : str
        Estimator, standard-error convention, and how the set was chosen.
    change : str
        ``"sign"``, ``"significance"``, ``"opposite-significance"`` or ``"delta"``.
    delta : float or None
        The requested move for ``change="delta"``.
    target : str
        The target in words.
    alpha : float
        Level of the confidence intervals (``z = Phi^-1(1 - alpha / 2)``).
    n_samples : int
        Rows in the data.
    max_fraction : float
        Largest share of rows that could be dropped.
    indices : tuple of int
        0-based positions (into the rows as given) of the rows to drop, in the order chosen.
    original_estimate, original_se : float
        Full-data coefficient and standard error.
    predicted_estimate, predicted_se : float
        The mode's approximation for the data without ``indices`` (first order; one Newton step;
        for greedy, the first-order prediction made before its last refit).
    refit_estimate, refit_se : float
        Exact refit without ``indices`` (NaN when the model cannot be fitted without them).
    predicted_achieved : bool
        Whether the prediction reaches the target.
    achieved : bool
        Whether the refit reaches the target. Never ``True`` on a prediction alone.
    n_refits : int
        Exact refits made (verification, extension, greedy steps).
    message : str
        How the set was found, or why the target was not reached.
    """

    coef: str
    model: str
    se: str
    mode: str
    change: str
    delta: float | None
    target: str
    alpha: float
    n_samples: int
    max_fraction: float
    indices: tuple[int, ...]
    original_estimate: float
    original_se: float
    predicted_estimate: float
    predicted_se: float
    refit_estimate: float
    refit_se: float
    predicted_achieved: bool
    achieved: bool
    n_refits: int
    message: str

    @property
    def n_dropped(self) -> int:
        """Number of rows in the drop set."""
        return len(self.indices)

    @property
    def fraction_dropped(self) -> float:
        """Share of rows in the drop set."""
        return self.n_dropped / self.n_samples

    @property
    def z(self) -> float:
        """Normal critical value of the confidence intervals."""
        return float(scipy.stats.norm.ppf(1.0 - self.alpha / 2.0))

    def _ci(self, estimate: float, se: float) -> tuple[float, float]:
        return (estimate - self.z * se, estimate + self.z * se)

    @property
    def original_ci(self) -> tuple[float, float]:
        """Full-data confidence interval."""
        return self._ci(self.original_estimate, self.original_se)

    @property
    def predicted_ci(self) -> tuple[float, float]:
        """Predicted confidence interval without the drop set."""
        return self._ci(self.predicted_estimate, self.predicted_se)

    @property
    def refit_ci(self) -> tuple[float, float]:
        """Refitted confidence interval without the drop set."""
        return self._ci(self.refit_estimate, self.refit_se)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (NaN becomes ``None``) with counts and intervals added."""
        out: dict[str, Any] = asdict(self)
        out["indices"] = list(self.indices)
        out["n_dropped"] = self.n_dropped
        out["fraction_dropped"] = self.fraction_dropped
        out["original_ci"] = list(self.original_ci)
        out["predicted_ci"] = list(self.predicted_ci)
        out["refit_ci"] = list(self.refit_ci)
        return json_ready(out)


# ------------------------------------------------------------------------------------ target
def parse_change(change: str | float) -> tuple[str, float | None]:
    """Return ``(kind, delta)`` for a ``change`` argument.

    Examples
    --------
    >>> parse_change("sign"), parse_change("-0.5"), parse_change(2)
    (('sign', None), ('delta', -0.5), ('delta', 2.0))
    """
    if isinstance(change, str):
        text = change.strip().lower()
        if text in CHANGES:
            return text, None
        try:
            delta = float(text)
        except ValueError:
            delta = math.nan
    elif isinstance(change, numbers.Real) and not isinstance(change, bool):
        delta = float(change)
    else:
        delta = math.nan
    if not math.isfinite(delta) or delta == 0.0:
        raise DataworthError(
            "change must be 'sign', 'significance', 'opposite-significance' or a non-zero number "
            f"(the signed move of the coefficient); got {change!r}."
        )
    return "delta", delta


@dataclass(frozen=True)
class _Target:
    """What to reach, tracked through ``phi = beta + edge * z * se``, moving in ``direction``."""

    kind: str
    delta: float | None
    beta0: float
    z: float
    edge: int
    direction: int

    @classmethod
    def build(
        cls, kind: str, delta: float | None, beta0: float, se0: float, z: float, name: str
    ) -> _Target:
        if kind == "delta":
            assert delta is not None
            return cls(kind, delta, beta0, z, 0, 1 if delta > 0 else -1)
        if beta0 == 0.0:
            raise DataworthError(f"the estimate of {name!r} is exactly 0; its sign is undefined.")
        s0 = 1 if beta0 > 0 else -1
        if kind == "sign":
            return cls(kind, None, beta0, z, 0, -s0)
        if kind == "significance":
            if abs(beta0) <= z * se0:
                raise DataworthError(
                    f"{name!r} is not significant on the full data ({beta0:.4g} +- "
                    f"{z:.3g} * {se0:.4g} covers 0), so there is no significance to lose; try "
                    "the change 'sign' or a number."
                )
            return cls(kind, None, beta0, z, -s0, -s0)
        return cls(kind, None, beta0, z, s0, -s0)

    def achieved(self, beta: Any, se: Any) -> Any:
        """Whether ``(beta, se)`` reaches the target (vectorised)."""
        beta = np.asarray(beta, dtype=np.float64)
        se = np.asarray(se, dtype=np.float64)
        s0 = -self.direction
        if self.kind == "sign":
            out = s0 * beta < 0
        elif self.kind == "significance":
            out = (beta - self.z * se <= 0) & (beta + self.z * se >= 0)
        elif self.kind == "opposite-significance":
            out = -s0 * beta - self.z * se > 0
        else:
            assert self.delta is not None
            out = self.direction * (beta - self.beta0) >= abs(self.delta)
        out = out & np.isfinite(beta) & np.isfinite(se)
        return bool(out) if out.ndim == 0 else out

    def describe(self, name: str, alpha: float) -> str:
        sign = "positive" if self.beta0 > 0 else "negative"
        opposite = "negative" if self.beta0 > 0 else "positive"
        if self.kind == "sign":
            return f"flip the sign of {name} (now {sign})"
        if self.kind == "significance":
            return f"make {name} not significant at alpha={alpha:g} (CI covers 0)"
        if self.kind == "opposite-significance":
            return f"make {name} significantly {opposite} at alpha={alpha:g}"
        assert self.delta is not None
        return f"move {name} by {self.delta:+.6g} (to {self.beta0 + self.delta:.6g} or beyond)"


# ------------------------------------------------------------------------------------ estimator
def _resolve_columns(
    spec: Sequence[int | str] | None, names: Sequence[str], what: str
) -> list[int]:
    out: list[int] = []
    for item in spec or ():
        if isinstance(item, str):
            if item not in names:
                raise DataworthError(
                    f"{what} {item!r} is not a column; columns: {', '.join(map(repr, names))}."
                )
            out.append(list(names).index(item))
        elif isinstance(item, numbers.Integral) and 0 <= int(item) < len(names):
            out.append(int(item))
        else:
            raise DataworthError(f"{what} {item!r} is not a column index below {len(names)}.")
    if len(set(out)) != len(out):
        raise DataworthError(f"{what} lists a column twice.")
    return out


def make_estimator(
    X: ArrayLike,
    y: ArrayLike,
    *,
    model: str = "ols",
    se: str = "classical",
    instruments: ArrayLike | None = None,
    endog: Sequence[int | str] | None = None,
    feature_names: Sequence[str] | None = None,
    instrument_names: Sequence[str] | None = None,
) -> Estimator:
    """Build the weighted estimator that :func:`amip` uses (arguments as there).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.column_stack([np.ones(4), [0.0, 1.0, 2.0, 3.0]])
    >>> make_estimator(X, [0.1, 0.9, 2.1, 2.9]).fit().coef.round(2).tolist()
    [0.06, 0.96]
    """
    if model not in MODELS:
        raise DataworthError(f"model must be one of {', '.join(map(repr, MODELS))}; got {model!r}.")
    Xa = np.asarray(X, dtype=np.float64)
    if Xa.ndim == 1:
        Xa = Xa.reshape(-1, 1)
    names = (
        tuple(str(c) for c in feature_names)
        if feature_names is not None
        else tuple(f"x{j}" for j in range(Xa.shape[1] if Xa.ndim == 2 else 0))
    )
    if len(set(names)) != len(names):
        raise DataworthError("feature_names has a name twice.")
    if model != "2sls":
        if instruments is not None or endog:
            raise DataworthError("instruments and endog apply only to model='2sls'.")
        cls = OLS if model == "ols" else Logit
        return cls(Xa, y, cov_type=se, names=names)
    if instruments is None or not endog:
        raise DataworthError(
            "model='2sls' needs endog (the endogenous columns of X) and instruments (the excluded "
            "instruments)."
        )
    endo = _resolve_columns(endog, names, "endogenous regressor")
    W = np.asarray(instruments, dtype=np.float64)
    if W.ndim == 1:
        W = W.reshape(-1, 1)
    if W.ndim != 2 or W.shape[0] != Xa.shape[0]:
        raise DataworthError(
            f"instruments must have one row per row of X ({Xa.shape[0]}); got shape {W.shape}."
        )
    if W.shape[1] < len(endo):
        raise DataworthError(
            f"2SLS is under-identified: {W.shape[1]} excluded instrument(s) for {len(endo)} "
            "endogenous regressor(s); give at least as many instruments."
        )
    wnames = (
        tuple(str(c) for c in instrument_names)
        if instrument_names is not None
        else tuple(f"instrument{k}" for k in range(W.shape[1]))
    )
    if len(wnames) != W.shape[1]:
        raise DataworthError("instrument_names must name every instrument column.")
    exog = [k for k in range(Xa.shape[1]) if k not in endo]
    Z = np.column_stack([Xa[:, exog], W])
    znames = tuple(names[k] for k in exog) + wnames
    return TwoSLS(Xa, y, Z, cov_type=se, names=names, instrument_names=znames)


# ------------------------------------------------------------------------------------ search
def _ranking(benefit: _F64) -> NDArray[np.intp]:
    """Rows with a positive benefit, largest first; ties in index order."""
    order = np.argsort(-benefit, kind="stable")
    return order[benefit[order] > 0]


def _gallop(pred: Callable[[int], bool], lo: int, kmax: int) -> int | None:
    """A ``k`` in ``(lo, kmax]`` with ``pred(k)`` and ``not pred(k - 1)`` (or ``k - 1 == lo``),
    found by trying ``lo + 1, lo + 2, lo + 4, ...`` and bisecting; ``None`` when ``pred`` fails at
    every size tried, ``kmax`` included. ``pred(lo)`` is taken to be false."""
    if kmax <= lo:
        return None
    step = 1
    low = lo
    while True:
        k = min(lo + step, kmax)
        if pred(k):
            high = k
            break
        if k == kmax:
            return None
        low = k
        step *= 2
    while high - low > 1:
        mid = (low + high) // 2
        if pred(mid):
            high = mid
        else:
            low = mid
    return high


@dataclass
class _Outcome:
    indices: NDArray[np.intp]
    predicted: tuple[float, float]
    refit: tuple[float, float]
    achieved: bool
    message: str


class _Refitter:
    """Exact refits without prefixes of a ranking, cached and counted."""

    def __init__(self, est: Estimator, j: int, target: _Target, order: NDArray[np.intp]) -> None:
        self.est, self.j, self.target, self.order = est, j, target, order
        self.cache: dict[int, tuple[float, float]] = {}
        self.errors: dict[int, str] = {}

    @property
    def n_refits(self) -> int:
        return len(self.cache)

    def __call__(self, k: int) -> tuple[float, float]:
        if k not in self.cache:
            try:
                fit = self.est.refit_without(self.order[:k])
                self.cache[k] = (float(fit.coef[self.j]), float(fit.se[self.j]))
            except EstimationError as exc:
                self.cache[k] = (math.nan, math.nan)
                self.errors[k] = str(exc)
        return self.cache[k]

    def ok(self, k: int) -> bool:
        return bool(self.target.achieved(*self(k)))


def _settle(
    refit: _Refitter,
    k_pred: int | None,
    kmax: int,
    predict: Callable[[int], tuple[float, float]],
    mode: str,
) -> _Outcome:
    """Verify the predicted prefix by refitting; extend along the ranking if it misses."""
    order = refit.order
    if kmax == 0:
        return _Outcome(
            order[:0],
            predict(0),
            refit(0),
            False,
            "no row moves the estimate towards the target; it cannot be reached by dropping rows."
            if order.size == 0
            else "max_fraction allows no row to be dropped (fewer than 1 row, or too few rows "
            "would be left for the coefficients).",
        )
    if k_pred is not None and refit.ok(k_pred):
        return _Outcome(
            order[:k_pred],
            predict(k_pred),
            refit(k_pred),
            True,
            f"{mode} set of {k_pred} row(s) verified by refitting.",
        )
    if k_pred is None:
        k = _gallop(refit.ok, 0, kmax) if refit.ok(kmax) else None
        first = f"the {mode} prediction does not reach the target within {kmax} row(s)"
    else:
        k = _gallop(refit.ok, k_pred, kmax)
        first = f"the {mode} set of {k_pred} row(s) misses the target on refit"
    if k is not None:
        return _Outcome(
            order[:k],
            predict(k),
            refit(k),
            True,
            f"{first}; found {k} row(s) along the same ranking by refitting.",
        )
    failed = refit.errors.get(kmax, "")
    return _Outcome(
        order[:kmax],
        predict(kmax),
        refit(kmax),
        False,
        f"{first}; refits at {refit.n_refits} prefix size(s) of the ranking, up to {kmax} "
        "row(s) (the maximum), do not reach it" + (f" ({failed})" if failed else "") + ".",
    )


def _first_order(
    est: Estimator, fit0: Fit, j: int, target: _Target, kmax: int, newton: bool
) -> tuple[_Outcome, int]:
    psi_b, psi_s = est.influence(fit0, j)
    psi_phi = psi_b + target.edge * target.z * psi_s
    benefit = -target.direction * psi_phi
    beta0, se0 = float(fit0.coef[j]), float(fit0.se[j])
    if newton:
        h = est.leverage(fit0)
        with np.errstate(divide="ignore", invalid="ignore"):
            benefit = np.where(h < 1.0 - 1e-8, benefit / (1.0 - h), -np.inf)
    order = _ranking(benefit)
    kmax = min(kmax, order.size)
    refit = _Refitter(est, j, target, order)
    predict: Callable[[int], tuple[float, float]]
    if not newton:
        pb = beta0 - np.cumsum(psi_b[order[:kmax]])
        ps = np.maximum(se0 - np.cumsum(psi_s[order[:kmax]]), 0.0)
        hits = np.flatnonzero(target.achieved(pb, ps)) if kmax else np.empty(0, dtype=np.intp)
        k_pred = int(hits[0]) + 1 if hits.size else None

        def predict(k: int) -> tuple[float, float]:
            return (beta0, se0) if k == 0 else (float(pb[k - 1]), float(ps[k - 1]))

        outcome = _settle(refit, k_pred, kmax, predict, "first-order")
    else:
        cache: dict[int, tuple[float, float]] = {0: (beta0, se0)}

        def predict(k: int) -> tuple[float, float]:
            if k not in cache:
                try:
                    coef, se = est.one_step(fit0, order[:k])
                    cache[k] = (float(coef[j]), float(se[j]))
                except EstimationError:
                    cache[k] = (math.nan, math.nan)
            return cache[k]

        k_pred = _gallop(lambda k: bool(target.achieved(*predict(k))), 0, kmax)
        outcome = _settle(refit, k_pred, kmax, predict, "one-Newton-step")
    return outcome, refit.n_refits


def _greedy(
    est: Estimator, fit0: Fit, j: int, target: _Target, kmax: int, refit_every: int
) -> tuple[_Outcome, int]:
    kept = np.arange(est.n)
    dropped: list[int] = []
    fit = fit0
    sub = est
    n_refits = 0
    current = (float(fit0.coef[j]), float(fit0.se[j]))
    predicted = current
    while True:
        if target.achieved(*current):
            return _Outcome(
                np.asarray(dropped, dtype=np.intp),
                predicted,
                current,
                True,
                f"greedy set of {len(dropped)} row(s) found with {n_refits} refit(s).",
            ), n_refits
        room = kmax - len(dropped)
        if room <= 0:
            msg = f"greedy refitting does not reach the target within {kmax} row(s) (the maximum)."
            return _Outcome(
                np.asarray(dropped, dtype=np.intp), predicted, current, False, msg
            ), n_refits
        psi_b, psi_s = sub.influence(fit, j)
        benefit = -target.direction * (psi_b + target.edge * target.z * psi_s)
        order = _ranking(benefit)
        if order.size == 0:
            msg = (
                f"after dropping {len(dropped)} row(s) no remaining row moves the estimate "
                "towards the target."
            )
            return _Outcome(
                np.asarray(dropped, dtype=np.intp), predicted, current, False, msg
            ), n_refits
        take = min(refit_every, room, order.size)
        pb = current[0] - np.cumsum(psi_b[order[:take]])
        ps = np.maximum(current[1] - np.cumsum(psi_s[order[:take]]), 0.0)
        hits = np.flatnonzero(target.achieved(pb, ps))
        if hits.size:
            take = int(hits[0]) + 1
        predicted = (float(pb[take - 1]), float(ps[take - 1]))
        chosen = kept[order[:take]]
        trial = np.setdiff1d(kept, chosen, assume_unique=True)
        n_refits += 1
        try:
            sub_new = est.take(trial)
            fit_new = sub_new.fit()
        except EstimationError as exc:
            msg = (
                f"greedy stopped after {len(dropped)} row(s): the model cannot be refitted once "
                f"{take} more are dropped ({exc})."
            )
            return _Outcome(
                np.asarray(dropped, dtype=np.intp), predicted, current, False, msg
            ), n_refits
        dropped.extend(int(i) for i in chosen)
        kept, sub, fit = trial, sub_new, fit_new
        current = (float(fit.coef[j]), float(fit.se[j]))


# ------------------------------------------------------------------------------------ public
def amip(
    X: ArrayLike,
    y: ArrayLike,
    coef: int | str,
    change: str | float,
    *,
    model: str = "ols",
    se: str = "classical",
    alpha: float = 0.05,
    mode: str = "first-order",
    instruments: ArrayLike | None = None,
    endog: Sequence[int | str] | None = None,
    max_fraction: float = DEFAULT_MAX_FRACTION,
    feature_names: Sequence[str] | None = None,
    instrument_names: Sequence[str] | None = None,
    refit_every: int | None = None,
) -> RobustnessResult:
    """Find a small set of rows whose removal changes a regression conclusion (AMIP).

    Parameters
    ----------
    X : array-like of shape (n, p)
        Regressors. No intercept is added: include a column of ones
        (:func:`~dataworth.apps.robustness.add_intercept`) if you want one.
    y : array-like of shape (n,)
        Outcome (0/1 for ``model="logit"``).
    coef : int or str
        The coefficient: a column index of ``X`` or a name from ``feature_names``.
    change : {"sign", "significance", "opposite-significance"} or float
        The target (see the module notes); a number is the signed move of the coefficient.
    model : {"ols", "logit", "2sls"}, default="ols"
    se : {"classical", "hc0", "hc1"}, default="classical"
        Standard errors: ``classical`` (statsmodels' default) or heteroskedasticity-robust
        ``hc0``/``hc1`` (OLS and 2SLS; ``hc1`` is Stata's ``robust``). Logit: ``classical`` only.
    alpha : float, default=0.05
        Confidence level ``1 - alpha`` of the intervals for significance targets.
    mode : {"first-order", "greedy", "newton"}, default="first-order"
    instruments : array-like of shape (n, m), optional
        ``model="2sls"``: the excluded instruments (the exogenous columns of ``X`` are added as
        their own instruments).
    endog : sequence of int or str, optional
        ``model="2sls"``: the endogenous columns of ``X``.
    max_fraction : float, default=0.1
        Largest share of rows that may be dropped (at most ``n - p - 1`` rows in any case).
    feature_names, instrument_names : sequence of str, optional
        Names used in messages and for ``coef``; default ``x0, x1, ...``.
    refit_every : int, optional
        ``mode="greedy"``: rows dropped between refits (see the module notes).

    Returns
    -------
    RobustnessResult
        The drop set (0-based ``indices`` into the rows of ``X``), predicted and refitted
        estimate and standard error, and ``achieved`` (from the refit, never the prediction).

    Raises
    ------
    DataworthError
        Bad arguments, a coefficient that is exactly 0 (sign targets) or not significant
        (``"significance"``), a singular design, or a fit with no finite estimate.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=200)
    >>> y = 0.15 * x + rng.normal(size=200)
    >>> X = np.column_stack([np.ones(200), x])
    >>> res = amip(X, y, "x", "sign", feature_names=["const", "x"])
    >>> res.achieved, res.n_dropped < 20
    (True, True)
    >>> drop = np.asarray(res.indices)
    >>> keep = np.setdiff1d(np.arange(200), drop)
    >>> beta = np.linalg.lstsq(X[keep], y[keep], rcond=None)[0]
    >>> bool(np.sign(beta[1]) == -np.sign(res.original_estimate))
    True
    """
    kind, delta = parse_change(change)
    if mode not in MODES:
        raise DataworthError(f"mode must be one of {', '.join(map(repr, MODES))}; got {mode!r}.")
    if not (isinstance(alpha, numbers.Real) and 0.0 < float(alpha) < 1.0):
        raise DataworthError(f"alpha must be strictly between 0 and 1; got {alpha!r}.")
    if not (isinstance(max_fraction, numbers.Real) and 0.0 < float(max_fraction) < 1.0):
        raise DataworthError(
            f"max_fraction must be strictly between 0 and 1; got {max_fraction!r}."
        )
    if refit_every is not None and not (
        isinstance(refit_every, numbers.Integral) and refit_every >= 1
    ):
        raise DataworthError(f"refit_every must be a positive whole number; got {refit_every!r}.")
    est = make_estimator(
        X,
        y,
        model=model,
        se=se,
        instruments=instruments,
        endog=endog,
        feature_names=feature_names,
        instrument_names=instrument_names,
    )
    j = _resolve_columns([coef], est.names, "coef")[0]
    name = est.names[j]
    fit0 = est.fit()
    beta0, se0 = float(fit0.coef[j]), float(fit0.se[j])
    z = float(scipy.stats.norm.ppf(1.0 - float(alpha) / 2.0))
    target = _Target.build(kind, delta, beta0, se0, z, name)
    kmax = min(int(math.floor(float(max_fraction) * est.n)), est.n - est.p - 1)
    if mode == "greedy":
        every = refit_every or (1 if kmax <= 100 else math.ceil(kmax / 100))
        outcome, n_refits = _greedy(est, fit0, j, target, kmax, int(every))
    else:
        outcome, n_refits = _first_order(est, fit0, j, target, kmax, newton=mode == "newton")
    return RobustnessResult(
        coef=name,
        model=model,
        se=se,
        mode=mode,
        change=kind,
        delta=delta,
        target=target.describe(name, float(alpha)),
        alpha=float(alpha),
        n_samples=est.n,
        max_fraction=float(max_fraction),
        indices=tuple(int(i) for i in outcome.indices),
        original_estimate=beta0,
        original_se=se0,
        predicted_estimate=outcome.predicted[0],
        predicted_se=outcome.predicted[1],
        refit_estimate=outcome.refit[0],
        refit_se=outcome.refit[1],
        predicted_achieved=bool(target.achieved(*outcome.predicted)),
        achieved=outcome.achieved,
        n_refits=n_refits,
        message=outcome.message,
    )
