"""Tree-ensemble surrogates whose semivalue is known in closed form.

A regression tree on the coalition indicators ``z = 1_T`` (and, optionally, the size ``|T|``)
is a sum of leaf games: the leaf reached by the path ``z_j = 1`` for ``j`` in ``P``, ``z_j = 0``
for ``j`` in ``Q`` and ``lo <= |T| <= hi`` with value ``c`` is the game
``v(S) = c 1[P subset of S, S disjoint from Q, lo <= |S| <= hi]``. With ``p = |P|``,
``q = |Q|``, ``m = n - p - q`` and the semivalue weights ``w(k)`` (``phi_i = sum_{S not
containing i} w(|S|) (v(S + i) - v(S))``), its value is

* ``i`` in ``P``: ``c sum_k w(k) C(m, k - p + 1) 1[lo <= k + 1 <= hi]``;
* ``i`` in ``Q``: ``-c sum_k w(k) C(m, k - p) 1[lo <= k <= hi]``;
* any other ``i``: ``c sum_k w(k) C(m - 1, k - p) (1[lo <= k + 1 <= hi] - 1[lo <= k <= hi])``
  (zero without a size condition).

For Shapley without a size condition this is ``c (p - 1)! q! / (p + q)!`` and
``-c p! (q - 1)! / (p + q)!``. The sums run in log space, vectorised over leaves; a gradient
boosting model is its initial constant plus the learning rate times its trees, a forest the
mean of its trees.

Examples
--------
>>> import numpy as np
>>> from dataworth.estimators.semivalues import Semivalue
>>> # one leaf: c = 6 when players 0 and 1 are in and player 2 is out (n = 3)
>>> leaves = LeafTable.from_paths(3, [([0, 1], [2], 0, 3, 6.0)])
>>> leaves.values(Semivalue.shapley()).round(6).tolist()  # 6 (1! 1! / 3!), ..., -6 (2! 0! / 3!)
[1.0, 1.0, -2.0]
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.special import gammaln, logsumexp

from dataworth.errors import DataworthError
from dataworth.estimators.msr import Surrogate
from dataworth.estimators.semivalues import Semivalue

__all__ = [
    "SURROGATES",
    "LeafTable",
    "TreeSurrogate",
    "fit_tree_surrogate",
    "leaves_of_model",
]

#: The surrogate kinds of :class:`~dataworth.estimators.regression_msr.RegressionMSR`.
SURROGATES = ("linear", "trees", "linear+trees")

#: A path: (P, Q, lo, hi, value).
Path = tuple[Sequence[int], Sequence[int], int, int, float]


def _log_comb(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """``log C(a, b)``, ``-inf`` where ``b < 0``, ``b > a`` or ``a < 0``."""
    ok = (b >= 0) & (b <= a) & (a >= 0)
    a_, b_ = np.where(ok, a, 0.0), np.where(ok, b, 0.0)
    out = gammaln(a_ + 1) - gammaln(b_ + 1) - gammaln(a_ - b_ + 1)
    return np.where(ok, out, -np.inf)


def _masked_sum(log_terms: NDArray[np.float64], mask: NDArray[np.bool_]) -> NDArray[np.float64]:
    """``sum_k exp(log_terms)`` over ``mask``, per row."""
    masked = np.where(mask, log_terms, -np.inf)
    return np.exp(logsumexp(masked, axis=1))


@dataclass(frozen=True)
class LeafTable:
    """Leaves as sparse ``P`` and ``Q`` indicator matrices (``L x n``), size bounds and values,
    plus a constant."""

    P: sp.csr_matrix
    Q: sp.csr_matrix
    lo: NDArray[np.int64]
    hi: NDArray[np.int64]
    c: NDArray[np.float64]
    const: float = 0.0

    @property
    def n(self) -> int:
        return int(self.P.shape[1])

    @classmethod
    def from_paths(cls, n: int, paths: Iterable[Path], const: float = 0.0) -> LeafTable:
        """Leaves from ``(P, Q, lo, hi, value)``; an empty or contradictory one is dropped."""
        rows_p: list[int] = []
        cols_p: list[int] = []
        rows_q: list[int] = []
        cols_q: list[int] = []
        lo: list[int] = []
        hi: list[int] = []
        c: list[float] = []
        for P, Q, a, b, value in paths:
            sP, sQ = set(int(j) for j in P), set(int(j) for j in Q)
            a, b = max(int(a), len(sP)), min(int(b), n - len(sQ))
            if sP & sQ or a > b or value == 0.0:
                continue  # no coalition reaches it, or it adds nothing
            row = len(c)
            rows_p += [row] * len(sP)
            cols_p += sorted(sP)
            rows_q += [row] * len(sQ)
            cols_q += sorted(sQ)
            lo.append(a)
            hi.append(b)
            c.append(float(value))
        L = len(c)

        def matrix(rows: list[int], cols: list[int]) -> sp.csr_matrix:
            data = np.ones(len(rows), dtype=np.float64)
            return sp.csr_matrix((data, (rows, cols)), shape=(L, n))

        return cls(
            matrix(rows_p, cols_p),
            matrix(rows_q, cols_q),
            np.asarray(lo, dtype=np.int64),
            np.asarray(hi, dtype=np.int64),
            np.asarray(c, dtype=np.float64),
            float(const),
        )

    def __call__(self, masks: NDArray[np.bool_]) -> NDArray[np.float64]:
        """The leaves' sum at each coalition (rows of ``masks``)."""
        Z = np.asarray(masks, dtype=np.float64).T  # n x m
        out = np.full(Z.shape[1], self.const)
        if self.c.size == 0:
            return out
        sizes = Z.sum(axis=0)
        p = np.asarray(self.P.sum(axis=1)).ravel()
        hit_p = np.asarray(self.P @ Z)  # L x m: how many of P are in
        hit_q = np.asarray(self.Q @ Z)
        ok = (hit_p == p[:, None]) & (hit_q == 0)
        ok &= (sizes[None, :] >= self.lo[:, None]) & (sizes[None, :] <= self.hi[:, None])
        out += self.c @ ok
        return out

    def values(self, semivalue: Semivalue) -> NDArray[np.float64]:
        """The exact semivalue of the sum of leaves (the constant adds nothing)."""
        n = self.n
        if self.c.size == 0:
            return np.zeros(n)
        lw = semivalue.log_weights(n)
        p = np.asarray(self.P.sum(axis=1)).ravel()[:, None]
        q = np.asarray(self.Q.sum(axis=1)).ravel()[:, None]
        m = n - p - q
        k = np.arange(n, dtype=np.float64)[None, :]
        lo, hi = self.lo[:, None], self.hi[:, None]
        up = (lo <= k + 1) & (k + 1 <= hi)  # |S + i| within bounds
        here = (lo <= k) & (k <= hi)  # |S| within bounds
        a_in = _masked_sum(lw + _log_comb(m, k - p + 1), up)
        a_out = _masked_sum(lw + _log_comb(m, k - p), here)
        a_other = _masked_sum(lw + _log_comb(m - 1, k - p), up) - _masked_sum(
            lw + _log_comb(m - 1, k - p), here
        )
        c = self.c
        values = np.full(n, float(c @ a_other))
        values += self.P.T @ (c * (a_in - a_other))
        values -= self.Q.T @ (c * (a_out + a_other))
        return np.asarray(values, dtype=np.float64)

    def key(self) -> tuple[Any, ...]:
        """Everything that defines the table (for hashing)."""
        return (
            self.P.indptr, self.P.indices, self.Q.indptr, self.Q.indices,
            self.lo, self.hi, self.c, self.const,
        )  # fmt: skip


def _tree_paths(tree: Any, n: int, scale: float) -> list[Path]:
    """The leaves of a fitted sklearn tree on ``[z_1..z_n]`` or ``[z_1..z_n, |T|]``."""
    t = tree.tree_
    left, right = t.children_left, t.children_right
    feature, threshold, value = t.feature, t.threshold, t.value.reshape(t.node_count, -1)[:, 0]
    paths: list[Path] = []
    stack: list[tuple[int, frozenset[int], frozenset[int], int, int]] = [
        (0, frozenset(), frozenset(), 0, n)
    ]
    while stack:
        node, P, Q, lo, hi = stack.pop()
        if left[node] == right[node]:  # a leaf
            paths.append((sorted(P), sorted(Q), lo, hi, scale * float(value[node])))
            continue
        j, thr = int(feature[node]), float(threshold[node])
        if j == n:  # the size: |T| <= thr goes left
            cut = int(np.floor(thr))
            stack.append((int(left[node]), P, Q, lo, min(hi, cut)))
            stack.append((int(right[node]), P, Q, max(lo, cut + 1), hi))
        elif j > n or j < 0:
            raise DataworthError(f"tree splits on feature {j}; expected at most {n}.")
        elif thr < 0.0:  # every coalition goes right
            stack.append((int(right[node]), P, Q, lo, hi))
        elif thr >= 1.0:  # every coalition goes left
            stack.append((int(left[node]), P, Q, lo, hi))
        else:  # z_j = 0 left, z_j = 1 right
            stack.append((int(left[node]), P, Q | {j}, lo, hi))
            stack.append((int(right[node]), P | {j}, Q, lo, hi))
    return paths


def leaves_of_model(model: Any, n: int) -> LeafTable:
    """The leaf table of a fitted sklearn tree, forest or (squared-error) gradient boosting
    regressor on the features ``[1_T]`` or ``[1_T, |T|]``."""
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.tree import DecisionTreeRegressor

    paths: list[Path] = []
    if isinstance(model, DecisionTreeRegressor):
        paths = _tree_paths(model, n, 1.0)
        const = 0.0
    elif isinstance(model, GradientBoostingRegressor):
        x0 = np.zeros((1, int(model.n_features_in_)))
        trees = np.asarray(model.estimators_).ravel()
        rate = float(model.learning_rate)
        # the initial constant: the prediction less the trees' share (no private API)
        const = float(model.predict(x0)[0]) - rate * sum(float(t.predict(x0)[0]) for t in trees)
        for tree in trees:
            paths += _tree_paths(tree, n, rate)
    elif hasattr(model, "estimators_"):  # a forest: the mean of its trees
        forest = list(model.estimators_)
        for tree in forest:
            paths += _tree_paths(tree, n, 1.0 / len(forest))
        const = 0.0
    else:
        raise DataworthError(f"cannot read the trees of {type(model).__name__}.")
    return LeafTable.from_paths(n, paths, const)


@dataclass(frozen=True)
class TreeSurrogate:
    """``g = linear + trees``: a :class:`~dataworth.estimators.msr.Surrogate` plus a leaf table;
    callable on boolean masks and with an exact :meth:`values`, like the linear one."""

    linear: Surrogate
    leaves: LeafTable

    def __call__(self, masks: NDArray[np.bool_]) -> NDArray[np.float64]:
        masks = np.asarray(masks, dtype=bool)
        return self.linear(masks) + self.leaves(masks)

    def values(self, semivalue: Semivalue) -> NDArray[np.float64]:
        return self.linear.values(semivalue) + self.leaves.values(semivalue)

    def key(self) -> tuple[Any, ...]:
        return (self.linear.h, self.linear.beta, *self.leaves.key())


#: Most features a split of the default ensemble considers (bounds the fit's cost for large n).
MAX_SPLIT_FEATURES = 64


def default_model(random_state: int | None, n_features: int = 0) -> Any:
    """The tree ensemble that ``regression-msr`` fits: chosen over 100 depth-3 boosted trees,
    extra trees and random forests (depth 6) by the relative error of Shapley estimates on two
    12-player lookup-table games (commit message of the tree surrogate)."""
    from sklearn.ensemble import GradientBoostingRegressor

    return GradientBoostingRegressor(
        n_estimators=300,
        learning_rate=0.05,
        max_depth=4,
        min_samples_leaf=5,
        subsample=0.8,
        max_features=None if n_features <= MAX_SPLIT_FEATURES else MAX_SPLIT_FEATURES,
        random_state=random_state,
    )


def _weighted_r2(u: NDArray[np.float64], fit: NDArray[np.float64], w: NDArray[np.float64]) -> float:
    tot = float(((u - np.average(u, weights=w)) ** 2 * w).sum())
    return 1.0 - float(((u - fit) ** 2 * w).sum()) / max(tot, 1e-300)


def fit_tree_surrogate(
    masks: NDArray[np.bool_],
    u: NDArray[np.float64],
    weights: NDArray[np.float64],
    *,
    linear: Surrogate,
    model: Any = None,
    use_size: bool = True,
    random_state: int | None = 0,
) -> tuple[TreeSurrogate, dict[str, Any]]:
    """Fit a tree ensemble to ``u - linear(masks)`` (features ``1_T``, and ``|T|`` if
    ``use_size``: splits on the size interact points with the learning curve, and measured
    better) with the sample ``weights``; pass ``Surrogate.zero(n)`` as ``linear`` for trees
    alone."""
    start = time.perf_counter()
    n = masks.shape[1]
    X = masks.astype(np.float64)
    if use_size:
        X = np.hstack([X, masks.sum(axis=1, keepdims=True).astype(np.float64)])
    model = default_model(random_state, X.shape[1]) if model is None else model
    residual = u - linear(masks)
    model.fit(X, residual, sample_weight=weights / weights.mean())
    surrogate = TreeSurrogate(linear, leaves_of_model(model, n))
    fitted = surrogate(masks)
    info = {
        "model": type(model).__name__,
        "leaves": int(surrogate.leaves.c.size),
        "weighted_r2": round(_weighted_r2(u, fitted, weights), 6),
        "fit_seconds": round(time.perf_counter() - start, 4),
    }
    return surrogate, info
