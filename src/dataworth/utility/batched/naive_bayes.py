"""Batched ``GaussianNB``: per-subset class moments in closed form, predictions by argmax.

For every row ``w`` of ``weights`` (0/1 for a subset, counts for a bootstrap bag; counts mean
repeated rows) and every class ``k`` present in it (``sum_{y_i = k} w_i > 0``):

* ``count[k] = sum_{y_i = k} w_i``, ``prior[k] = count[k] / sum_i w_i``;
* ``theta[k] = sum_{y_i = k} w_i x_i / count[k]``;
* ``var[k] = sum_{y_i = k} w_i (x_i - theta[k])^2 / count[k] + epsilon``, with
  ``epsilon = var_smoothing * max_j var_w(x_j)``, the largest weighted variance of a feature
  over the whole subset (scikit-learn's ``var_smoothing * np.var(X, axis=0).max()`` on the rows
  it is given).

Classes absent from a subset are never predicted: scikit-learn only knows the classes it saw.

Moments are computed two-pass (deviations from each subset's own class means), like
scikit-learn. Predictions take the argmax of the joint log-likelihood
``log prior[k] - 0.5 sum_j log(2 pi var[k, j]) - 0.5 sum_j (x_j - theta[k, j])^2 / var[k, j]``:
first through matrix products (fast, with a generous rounding-error bound), then, only where
that bound cannot certify the winner (near-ties, zero variances), term by term as scikit-learn
does. Everything is vectorized over subsets and classes (arrays of shape (B, K, d)); subsets
are only processed in blocks (of similar sizes) to bound the size of temporaries.

Note on bootstrap weights: a count-weighted fit here equals scikit-learn's fit on the repeated
rows. It differs slightly from ``GaussianNB().fit(X, y, sample_weight=w)``, whose ``epsilon``
uses the *unweighted* variance of all rows passed (zero-weight rows included).

Examples
--------
>>> import numpy as np
>>> from sklearn.naive_bayes import GaussianNB
>>> from sklearn.datasets import load_iris
>>> X, y = load_iris(return_X_y=True)
>>> trainer = make_trainer(GaussianNB(), X, y, 3)
>>> masks = np.zeros((2, 150))
>>> masks[0, ::2] = 1
>>> masks[1, :100] = 1  # classes 0 and 1 only
>>> pred = trainer.fit_predict(masks, X)
>>> ref = GaussianNB().fit(X[::2], y[::2]).predict(X)
>>> bool((pred[0] == ref).all()), np.unique(pred[1]).tolist()
(True, [0, 1])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dataworth.utility.batched import Unsupported
from dataworth.utility.batched.linear import (
    as_matrix,
    blocks,
    check_eval,
    check_weights,
    compact_blocks,
)

__all__ = ["GaussianNBFit", "GaussianNBTrainer", "make_trainer"]


@dataclass(frozen=True)
class GaussianNBFit:
    """Parameters of B Gaussian naive Bayes fits over K classes and d features.

    Attributes
    ----------
    theta : ndarray of shape (B, K, d)
        Class means (0 for absent classes).
    var : ndarray of shape (B, K, d)
        Class variances, ``epsilon`` included (``epsilon`` for absent classes).
    log_prior : ndarray of shape (B, K)
        Log of the class priors; ``-inf`` for absent classes.
    epsilon : ndarray of shape (B,)
        Variance smoothing added to every variance of the fit.
    """

    theta: NDArray[np.float64]
    var: NDArray[np.float64]
    log_prior: NDArray[np.float64]
    epsilon: NDArray[np.float64]

    @property
    def present(self) -> NDArray[np.bool_]:
        """Classes with positive weight in each fit, shape (B, K)."""
        return np.asarray(np.isfinite(self.log_prior))


class GaussianNBTrainer:
    """Batched ``GaussianNB(var_smoothing=...)`` fits on weighted subsets of ``(X, y)``.

    Parameters
    ----------
    X : ndarray of shape (n_train, d)
    y : ndarray of shape (n_train,)
        Class codes ``0..n_classes-1``.
    n_classes : int
    var_smoothing : float, default=1e-9
        Positive share of the largest feature variance added to every variance.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [4.0], [6.0]])
    >>> fit = GaussianNBTrainer(X, [0, 0, 1, 1], 2, var_smoothing=0.0).fit(np.ones((1, 4)))
    >>> fit.theta[0, :, 0].tolist(), fit.var[0, :, 0].tolist(), np.exp(fit.log_prior).tolist()
    ([0.5, 5.0], [0.25, 1.0], [[0.5, 0.5]])
    """

    def __init__(
        self, X: ArrayLike, y: ArrayLike, n_classes: int, var_smoothing: float = 1e-9
    ) -> None:
        self.X = as_matrix(X)
        codes = np.asarray(y)
        if codes.ndim != 1 or codes.shape[0] != self.X.shape[0]:
            raise ValueError(f"y must be 1-D with {self.X.shape[0]} class codes.")
        if codes.dtype.kind not in "iubf" or (
            codes.dtype.kind == "f" and not np.all(codes == np.round(codes))
        ):
            raise ValueError("y must hold integer class codes 0..n_classes-1.")
        self.y = codes.astype(np.intp)
        self.n_classes = int(n_classes)
        if self.n_classes < 1 or (self.y.size and (self.y.min() < 0 or self.y.max() >= n_classes)):
            raise ValueError(f"class codes must lie in 0..{self.n_classes - 1}.")
        if not (np.isfinite(var_smoothing) and var_smoothing >= 0):
            raise ValueError(f"var_smoothing must be non-negative; got {var_smoothing!r}.")
        self.var_smoothing = float(var_smoothing)
        # class means of the whole training set: the reference point of the fast likelihoods
        counts = np.bincount(self.y, minlength=self.n_classes).astype(np.float64)
        sums = np.zeros((self.n_classes, self.X.shape[1]))
        np.add.at(sums, self.y, self.X)
        overall = self.X.mean(axis=0) if self.X.shape[0] else np.zeros(self.X.shape[1])
        self._ref = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], overall)

    def fit(self, weights: ArrayLike) -> GaussianNBFit:
        """Class means, variances and log-priors of one fit per row of ``weights``."""
        W = check_weights(weights, self.X.shape[0])
        B, d, K = W.shape[0], self.X.shape[1], self.n_classes
        theta = np.zeros((B, K, d))
        var = np.zeros((B, K, d))
        count = np.zeros((B, K))
        epsilon = np.zeros(B)
        for blk, idx, w in compact_blocks(W, 3 * d + 2 * K):
            Xb = self.X[idx]  # (b, r, d): the subset's rows, then zero-weight padding
            yb = self.y[idx]  # (b, r)
            member = (yb[:, :, None] == np.arange(K)).astype(np.float64)  # (b, r, K)
            onehot = member * w[:, :, None]
            cnt = onehot.sum(axis=1)  # (b, K)
            safe = np.where(cnt > 0, cnt, 1.0)[:, :, None]
            ohT = onehot.transpose(0, 2, 1)
            mean = (ohT @ Xb) / safe  # (b, K, d)
            dev = Xb - member @ mean  # two-pass: x minus its own class mean (an exact product)
            var_k = (ohT @ (dev * dev)) / safe
            theta[blk], var[blk], count[blk] = mean, var_k, cnt
            # epsilon from the subset's overall variance, by the law of total variance (a sum
            # of non-negative terms: as accurate as a second pass over the rows)
            N = cnt.sum(axis=1)[:, None]
            mu = (cnt[:, :, None] * mean).sum(axis=1) / N
            spread = var_k + (mean - mu[:, None, :]) ** 2
            total_var = (cnt[:, :, None] * spread).sum(axis=1) / N
            epsilon[blk] = self.var_smoothing * total_var.max(axis=1)
        var += epsilon[:, None, None]
        with np.errstate(divide="ignore"):
            log_prior = np.log(count / count.sum(axis=1, keepdims=True))
        log_prior[count <= 0] = -np.inf
        return GaussianNBFit(theta=theta, var=var, log_prior=log_prior, epsilon=epsilon)

    @staticmethod
    def joint_log_likelihood(fit: GaussianNBFit, X_eval: NDArray[np.float64]) -> NDArray[Any]:
        """``log P(k) + log P(x | k)`` for every fit, class and row: shape (B, K, m).

        Computed term by term as scikit-learn does (``log prior - 0.5 * sum(log(2 pi var)) -
        0.5 * sum((x - theta)^2 / var)``); ``-inf`` for absent classes.
        """
        B, K, d = fit.theta.shape
        m = X_eval.shape[0]
        out = np.empty((B, K, m))
        with np.errstate(divide="ignore", invalid="ignore"):
            norm = -0.5 * np.log(2.0 * np.pi * fit.var).sum(axis=2)  # (B, K)
            for blk in blocks(B, 2 * K * m * d):
                diff = X_eval[None, None, :, :] - fit.theta[blk, :, None, :]
                quad = (diff * diff / fit.var[blk, :, None, :]).sum(axis=3)
                out[blk] = fit.log_prior[blk, :, None] + (norm[blk, :, None] - 0.5 * quad)
        out[~fit.present] = -np.inf
        return out

    def _fast_argmax(
        self, fit: GaussianNBFit, X_eval: NDArray[np.float64]
    ) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
        """Best present class (B, m) by matrix products, and whether that answer is certain.

        ``sum_j (x_j - theta_j)^2 / v_j`` is expanded around the class means ``c`` of the whole
        training set (``a = x - c``, ``delta = theta - c``) as ``sum a^2/v - 2 sum a delta/v +
        sum delta^2/v``; each sum is a matrix product. The expansion can cancel, so each joint
        log-likelihood comes with a bound ``err`` (generous: ``64 (d + 8) eps`` times the
        magnitudes involved) on its distance from the exact value, and so from scikit-learn's
        term-by-term value. The answer is certain where the best class beats the runner-up by
        more than their two bounds (not at ties, nor where a zero variance makes ``nan``).
        """
        B, K, d = fit.theta.shape
        m = X_eval.shape[0]
        unit = 64.0 * (d + 8) * np.finfo(np.float64).eps
        best = np.zeros((B, m), dtype=np.intp)
        sure = np.zeros((B, m), dtype=bool)
        a = X_eval[None, :, :] - self._ref[:, None, :]  # (K, m, d)
        a2 = a * a
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            logs = np.log(2.0 * np.pi * fit.var)
            norm = -0.5 * logs.sum(axis=2)  # (B, K)
            scale = np.abs(logs).sum(axis=2) + np.abs(fit.log_prior)  # (B, K)
            inv = 1.0 / fit.var  # (B, K, d)
            delta = fit.theta - self._ref[None, :, :]
            t3 = (delta * delta * inv).sum(axis=2)  # (B, K)
            present = fit.present
            for blk in blocks(B, 8 * m):
                b = inv[blk].shape[0]
                top = np.full((b, m), -np.inf)
                top_err = np.zeros((b, m))
                run = np.full((b, m), -np.inf)
                run_err = np.zeros((b, m))
                arg = np.zeros((b, m), dtype=np.intp)
                broken = np.zeros((b, m), dtype=bool)
                for k in range(K):
                    t1 = inv[blk, k, :] @ a2[k].T  # (b, m)
                    t2 = (delta[blk, k, :] * inv[blk, k, :]) @ a[k].T
                    t3k = t3[blk, k, None]
                    jll = fit.log_prior[blk, k, None] + (
                        norm[blk, k, None] - 0.5 * (t1 - 2.0 * t2 + t3k)
                    )
                    err = unit * (0.5 * (np.sqrt(t1) + np.sqrt(t3k)) ** 2 + scale[blk, k, None])
                    jll[~present[blk, k]] = -np.inf
                    broken |= np.isnan(jll) | np.isnan(err)
                    better = jll > top
                    second = ~better & (jll > run)
                    run = np.where(better, top, np.where(second, jll, run))
                    run_err = np.where(better, top_err, np.where(second, err, run_err))
                    top = np.where(better, jll, top)
                    top_err = np.where(better, err, top_err)
                    arg[better] = k
                best[blk] = arg
                sure[blk] = ~broken & ((top - run) > (top_err + run_err))
        return best, sure

    def predict(self, fit: GaussianNBFit, X_eval: NDArray[np.float64]) -> NDArray[np.intp]:
        """Class codes (B, m): argmax of the joint log-likelihood over each fit's present classes.

        The argmax comes from :meth:`_fast_argmax`; wherever it is not certain (near-ties, zero
        variances) the likelihoods are recomputed term by term, as scikit-learn does, and the
        argmax taken again, so the answer is scikit-learn's except at ties to rounding.
        """
        best, sure = self._fast_argmax(fit, X_eval)
        bi, mi = np.nonzero(~sure)
        if bi.size:
            K, d = fit.theta.shape[1:]
            redo = np.empty(bi.size, dtype=np.intp)
            for blk in blocks(bi.size, 2 * K * d):
                sub = GaussianNBFit(
                    theta=fit.theta[bi[blk]],
                    var=fit.var[bi[blk]],
                    log_prior=fit.log_prior[bi[blk]],
                    epsilon=fit.epsilon[bi[blk]],
                )
                exact = self._pairwise_jll(sub, X_eval[mi[blk]])  # (p, K)
                redo[blk] = np.argmax(exact, axis=1)
            best[bi, mi] = redo
        return best

    @staticmethod
    def _pairwise_jll(fit: GaussianNBFit, X_rows: NDArray[np.float64]) -> NDArray[np.float64]:
        """Term-by-term joint log-likelihoods of row ``p`` of ``X_rows`` under fit ``p``: (P, K)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            norm = -0.5 * np.log(2.0 * np.pi * fit.var).sum(axis=2)
            diff = X_rows[:, None, :] - fit.theta
            quad = (diff * diff / fit.var).sum(axis=2)
            out = fit.log_prior + (norm - 0.5 * quad)
        out[~fit.present] = -np.inf
        return np.asarray(out, dtype=np.float64)

    def fit_predict(
        self, weights: NDArray[np.float64], X_eval: NDArray[np.float64]
    ) -> NDArray[Any]:
        """Predicted class codes (B, m) on ``X_eval``, among each fit's present classes."""
        Xe = check_eval(X_eval, self.X.shape[1])
        return self.predict(self.fit(weights), Xe)


def make_trainer(model: Any, X: ArrayLike, y: ArrayLike, n_classes: int) -> GaussianNBTrainer:
    """A :class:`GaussianNBTrainer` for a scikit-learn ``GaussianNB``, or Unsupported.

    Unsupported: given ``priors`` (scikit-learn refuses them on subsets missing a class, as
    they must match the classes seen), and ``var_smoothing`` that is not a positive number (with no
    smoothing, subsets with a constant feature in a class divide by zero, and scikit-learn's
    answer is a pattern of ``nan`` s).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.naive_bayes import GaussianNB
    >>> make_trainer(GaussianNB(priors=[0.5, 0.5]), np.zeros((2, 1)), np.array([0, 1]), 2)
    Traceback (most recent call last):
    ...
    dataworth.utility.batched.Unsupported: GaussianNB with fixed priors is not batched
    """
    params = model.get_params(deep=False)
    if params.get("priors") is not None:
        raise Unsupported("GaussianNB with fixed priors is not batched")
    vs = params.get("var_smoothing", 1e-9)
    try:
        vs = float(vs)
    except (TypeError, ValueError):
        raise Unsupported(f"GaussianNB var_smoothing {vs!r} is not a number") from None
    if not (np.isfinite(vs) and vs > 0):
        raise Unsupported(
            f"GaussianNB(var_smoothing={vs!r}) is not batched: without a positive smoothing, "
            "zero variances make scikit-learn's likelihoods nan"
        )
    return GaussianNBTrainer(X, y, n_classes, var_smoothing=vs)
