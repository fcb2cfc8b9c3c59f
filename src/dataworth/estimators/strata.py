"""The "strata" reduction: semivalues from per-player strata of coalition sizes.

Used by ``stratified-svarm`` and ``stratified``. The state is self-describing, so that results
can be merged with ``+``, saved and loaded like any other:

``"mass"``
    ``mean[l] = C(n-1, l) w(l)`` for ``l = 0..n-1`` (the semivalue's weight of size ``l``;
    indexed by size, not by player; every chunk writes the same numbers, so merging keeps them).
``"exact"``
    ``mean[i]``: the part of ``phi_i`` computed exactly while planning (weighted strata of
    sizes scored in full), the same in every chunk.
``"plus:l"``, ``"minus:l"``, ``"marginal:l"``
    sampled strata: per player, the moments of ``u(S + i)`` (``plus``), ``u(S)`` (``minus``)
    or ``u(S + i) - u(S)`` (``marginal``) over uniform coalitions ``S`` of size ``l`` without
    ``i``. ``phi_i = exact_i + sum_l mass[l] (sum of +mean of plus/marginal strata - mean of
    minus strata)``.

Sparse strata (say so in the result; no NaN ever appears once a sample was processed):

* a stratum with **no sample** for player ``i`` takes the pooled mean of that key over the
  players who have samples; if nobody has, the pooled mean of its partner key (``plus:l`` and
  ``minus:l+1``: the same coalitions, with and without ``i``; ``marginal:l``: the nearest
  sampled size), and if that too is empty the stratum is left out (its pair contributes 0).
  Imputed strata are biased, and count in the standard error as one observation with the
  pooled variance below.
* a stratum with **one sample** uses a pooled variance: the larger of its key's (the spread
  of all its samples, every player's, about their common mean, which includes the spread
  between players) and that of all keys alike (each about its own mean), so it errs on the
  large side; NaN standard errors only where no key anywhere has two samples.

Examples
--------
>>> import numpy as np
>>> from dataworth.engine.moments import Moments
>>> ones = np.ones(2, np.int64)
>>> state = {"mass": Moments(ones, np.array([0.5, 0.5]), np.zeros(2)),
...          "exact": Moments(ones, np.zeros(2), np.zeros(2)),
...          "marginal:1": Moments.from_samples(np.array([[1.0, 2.0], [3.0, 2.0]]))}
>>> reduce_strata(state)[0].tolist()
[1.0, 1.0]
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from dataworth.engine.moments import Estimate, Moments, State

__all__ = ["constant_moments", "reduce_strata", "stratum_keys"]

_KINDS = {"plus": 1.0, "minus": -1.0, "marginal": 1.0}


def constant_moments(values: NDArray[np.float64], count: int) -> Moments:
    """Moments of ``count`` identical rows ``values`` (for the ``mass`` and ``exact`` keys)."""
    n = values.shape[0]
    return Moments(np.full(n, count, np.int64), np.asarray(values, np.float64), np.zeros(n))


def stratum_keys(state: State) -> list[tuple[str, str, int]]:
    """``(key, kind, size)`` of the sampled strata in ``state``."""
    out = []
    for key in state:
        kind, _, size = key.partition(":")
        if kind in _KINDS and size.isdigit():
            out.append((key, kind, int(size)))
    return sorted(out, key=lambda t: (t[2], t[1]))


def _partner(kind: str, size: int, pooled: dict[tuple[str, int], float]) -> float | None:
    if kind == "plus":
        return pooled.get(("minus", size + 1))
    if kind == "minus":
        return pooled.get(("plus", size - 1))
    sizes = sorted((s for k, s in pooled if k == "marginal"), key=lambda s: (abs(s - size), s))
    return pooled[("marginal", sizes[0])] if sizes else None


def reduce_strata(state: State) -> Estimate:
    """Values, standard errors and counts (samples over all strata) from a strata state."""
    mass, exact = state["mass"], state["exact"]
    n = exact.mean.shape[0]
    if int(exact.count.max(initial=0)) == 0:  # nothing processed yet
        return np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, np.int64)
    strata = stratum_keys(state)
    pooled: dict[tuple[str, int], float] = {}
    pooled_var: dict[str, float] = {}
    m2_all, dof_all = 0.0, 0
    for key, kind, size in strata:
        m = state[key]
        total = int(m.count.sum())
        if total:
            centre = float((m.count * m.mean).sum() / total)
            pooled[(kind, size)] = centre
        if total > 1:  # spread of the key's samples about their common mean, all players
            spread = float(m.m2.sum() + (m.count * (m.mean - centre) ** 2).sum())
            pooled_var[key] = spread / (total - 1)
            m2_all, dof_all = m2_all + spread, dof_all + total - 1
    fallback_var = m2_all / dof_all if dof_all else np.nan
    values = exact.mean.copy()
    var = np.zeros(n)
    counts = np.zeros(n, np.int64)
    for key, kind, size in strata:
        m = state[key]
        weight = _KINDS[kind] * float(mass.mean[size])
        fill = pooled.get((kind, size))
        if fill is None:
            fill = _partner(kind, size, pooled)
        if fill is None:
            continue  # nobody sampled these coalitions: the stratum is left out
        values += weight * np.where(m.count > 0, m.mean, fill)
        v_key = float(np.fmax(pooled_var.get(key, fallback_var), fallback_var))
        with np.errstate(invalid="ignore", divide="ignore"):
            v = np.where(m.count > 1, m.m2 / np.maximum(m.count - 1, 1), v_key)
            var += weight**2 * v / np.maximum(m.count, 1)
        counts += m.count
    return values, np.sqrt(var), counts
