"""Batched L2 logistic regression on torch tensors: the numpy solver's twin for a GPU.

The same problems, solved the same way, as :mod:`dataworth.utility.batched.logistic` (read its
docstring for the objective): scikit-learn's ``0.5 * ||W||^2 + C * sum_i w_i * loss_i`` with the
intercept unpenalised; each subset fitted on the classes present in it (two present classes: a
binary model whose positive class is the larger code, with ``C`` times ``binary_c_factor``; three
or more: a multinomial with absent classes masked out); damped Newton steps with an Armijo
backtracking line search from the best of three starts (the fit on all rows of the subset's
classes, the intercept-only model, a blend), each subset stopping at the same gradient tolerance
or floating-point limit. Here every array lives on one ``torch.device`` (float64 by default):
weighted Gram matrices come from one matrix product against precomputed products of feature pairs
(a batched ``matmul`` when those would be too large), the stacked Newton systems are solved with
``torch.linalg.solve_ex`` (a pseudo-inverse for the rare singular ones), and converged subsets are
frozen (dropped from the working set) while the others iterate. Numpy arrays are converted at the
boundary only: weights go in, class codes come out.

Settings are validated by the numpy module (the same :class:`Unsupported` cases), and with float64
the fits agree with the numpy trainer's to rounding, so predictions differ only at exact decision
ties. ``dtype=torch.float32`` (faster on most GPUs) stops at float32's limit instead: the optimum
to about 1e-5 relative, which moves a few more predictions that lie close to a boundary.

Torch is optional: this module imports it only inside functions, so importing it (or dataworth)
never loads torch.

Examples
--------
>>> import numpy as np
>>> from sklearn.linear_model import LogisticRegression
>>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
>>> trainer = make_torch_trainer(LogisticRegression(C=10.0), X, np.array([0, 0, 1, 1]), 2,
...                              "cpu")  # doctest: +SKIP
>>> trainer.fit_predict(np.array([[1.0, 1, 1, 1], [1, 0, 0, 1]]), X).tolist()  # doctest: +SKIP
[[0, 0, 1, 1], [0, 0, 1, 1]]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from dataworth.utility.batched.logistic import LogisticFit, _settings

if TYPE_CHECKING:
    import torch

__all__ = ["TorchLogisticTrainer", "make_torch_trainer"]

#: Working memory aimed at per block of subsets (CPU, GPU), and the cap for feature products.
_BLOCK_BYTES_CPU = 64 * 2**20
_BLOCK_BYTES_GPU = 2**30
_PAIR_BYTES = 256 * 2**20

_F64 = NDArray[np.float64]
_Cache = tuple["torch.Tensor", ...]


def make_torch_trainer(
    model: Any,
    X: NDArray[np.float64],
    y: NDArray[Any],
    n_classes: int,
    device: str | torch.device = "cpu",
    *,
    dtype: str | torch.dtype = "float64",
) -> TorchLogisticTrainer:
    """A :class:`TorchLogisticTrainer` for a scikit-learn ``LogisticRegression``, or Unsupported.

    As :func:`dataworth.utility.batched.logistic.make_trainer` (same settings, same
    :class:`~dataworth.utility.batched.Unsupported` cases), on ``device`` (``"cpu"``,
    ``"cuda"``, ``"cuda:1"``, a ``torch.device``) in ``dtype`` (``"float64"`` or
    ``"float32"``).
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    settings = _settings(model, X.shape[1], n_classes)
    return TorchLogisticTrainer(X, y, n_classes, device=device, dtype=dtype, **settings)


# ---------------------------------------------------------------------------------- algebra
class _Gram:
    """Weighted Gram matrices ``A^T diag(s) A`` for many weight vectors ``s`` at once."""

    def __init__(self, A: torch.Tensor, tri: NDArray[np.intp] | None = None) -> None:
        import torch

        self.A = A
        n, p = A.shape
        iu, ju = np.triu_indices(p)
        self.n_tri = iu.size
        if tri is None:
            full = np.empty((p, p), dtype=np.intp)
            full[iu, ju] = np.arange(self.n_tri)
            full[ju, iu] = np.arange(self.n_tri)
            tri = full.ravel()
        self.tri_np = tri  # (j, m) -> position of the pair in the upper triangle
        self.tri = torch.as_tensor(tri, device=A.device)
        self.iu = torch.as_tensor(iu, device=A.device)
        self.ju = torch.as_tensor(ju, device=A.device)
        # Products of feature pairs (upper triangle): one GEMM then gives all Gram matrices.
        self.pairs: torch.Tensor | None = None
        if n * self.n_tri * A.element_size() <= _PAIR_BYTES:
            self.pairs = (A[:, self.iu] * A[:, self.ju]).contiguous()

    def take(self, rows: torch.Tensor) -> _Gram:
        """The same for a subset of the rows of ``A``."""
        out = _Gram.__new__(_Gram)
        out.A = self.A[rows].contiguous()
        out.n_tri, out.tri_np, out.tri, out.iu, out.ju = (
            self.n_tri, self.tri_np, self.tri, self.iu, self.ju,
        )  # fmt: skip
        out.pairs = None if self.pairs is None else self.pairs[rows].contiguous()
        return out

    def upper(self, S: torch.Tensor) -> torch.Tensor:
        """``S`` (M, n) -> upper triangles (M, p (p + 1) / 2) of the Gram matrices."""
        if self.pairs is not None:
            return S @ self.pairs
        G = (S[:, None, :] * self.A.T[None]) @ self.A  # batched matmul, (M, p, p)
        return G[:, self.iu, self.ju]

    def __call__(self, S: torch.Tensor) -> torch.Tensor:
        """``S`` (M, n) -> (M, p, p) Gram matrices."""
        p = self.A.shape[1]
        return self.upper(S).index_select(1, self.tri).reshape(-1, p, p)


def _solve(H: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Solve the stacked systems ``H s = g`` (pseudo-inverse for the rare singular ones)."""
    import torch

    step, info = torch.linalg.solve_ex(H, g[:, :, None])
    step = step[:, :, 0]
    singular = torch.nonzero(info).ravel()
    if singular.numel():
        fixed = torch.linalg.pinv(H[singular]) @ g[singular][:, :, None]
        step[singular] = fixed[:, :, 0]
    return step


class _Problem:
    """One batched convex problem: objective, gradient and Hessian for some of its rows.

    ``rows`` (an index tensor) pick rows of the batch; ``theta`` holds their parameters, (a, p).
    """

    C: float
    sw: torch.Tensor  # (B,) weight sums

    def value(self, theta: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, _Cache]:
        """Objective (a,) and a cache for :meth:`grad` and :meth:`hess`."""
        raise NotImplementedError

    def grad(self, theta: torch.Tensor, cache: _Cache, rows: torch.Tensor) -> torch.Tensor:
        """Gradient (a, p) at ``theta`` from :meth:`value`'s cache."""
        raise NotImplementedError

    def hess(self, theta: torch.Tensor, cache: _Cache, rows: torch.Tensor) -> torch.Tensor:
        """Hessian (a, p, p) at ``theta`` from :meth:`value`'s cache (positive definite)."""
        raise NotImplementedError


def _take(cache: _Cache, keep: torch.Tensor) -> _Cache:
    return tuple(c[keep] for c in cache)


def _put(cache: _Cache, where: torch.Tensor, new: _Cache) -> None:
    for c, v in zip(cache, new, strict=True):
        c[where] = v


def _newton(
    problem: _Problem, starts: list[torch.Tensor], *, tol: float, max_iter: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Damped Newton on all rows from the best (lowest objective) of ``starts``, each (B, p).

    Returns ``(theta, n_iter, converged)``; the stopping rules are those of the numpy solver
    (:func:`dataworth.utility.batched.logistic._newton`). Rows that stop are frozen: they leave
    the working set, whose size is the only quantity read back from the device (a few times per
    iteration).
    """
    import torch

    theta = starts[0].clone()
    B, dev = theta.shape[0], theta.device
    n_iter = torch.zeros(B, dtype=torch.int64, device=dev)
    converged = torch.zeros(B, dtype=torch.bool, device=dev)
    rows = torch.arange(B, device=dev)
    f, cache = problem.value(theta, rows)
    for other in starts[1:]:
        f2, cache2 = problem.value(other, rows)
        better = f2 < f
        theta = torch.where(better[:, None], other, theta)
        f = torch.where(better, f2, f)
        cache = tuple(
            torch.where(better.view(-1, *([1] * (c.dim() - 1))), c2, c)
            for c, c2 in zip(cache, cache2, strict=True)
        )
    eps = torch.finfo(theta.dtype).eps
    for _ in range(max_iter + 1):
        th = theta[rows]
        g = problem.grad(th, cache, rows)
        gmax = g.abs().amax(dim=1)
        scale = torch.minimum(problem.C * problem.sw[rows], th.abs().amax(dim=1).clamp(min=1.0))
        done = gmax <= tol * scale
        converged[rows] = done
        go = ~done & (n_iter[rows] < max_iter)
        n_go = int(go.sum())
        if n_go < rows.numel():
            rows, th, g, gmax, f = rows[go], th[go], g[go], gmax[go], f[go]
            cache = _take(cache, go)
        if n_go == 0:
            break
        n_iter[rows] += 1
        step = _solve(problem.hess(th, cache, rows), -g)
        slope = (g * step).sum(dim=1)
        t = torch.ones_like(slope)
        f_new, cache_new = problem.value(th + step, rows)
        ok = f_new <= f + 1e-4 * slope
        # Near the optimum the change of the objective can be below its rounding error: there,
        # the full Newton step is kept if it halves the gradient, else the row stops (see the
        # numpy solver).
        noise = (f_new - f).abs() <= 1e3 * eps * f.abs()
        stop = torch.zeros_like(ok)
        at = torch.nonzero(noise).ravel()
        if at.numel():
            g_new = problem.grad(th[at] + step[at], _take(cache_new, at), rows[at])
            halved = g_new.abs().amax(dim=1) <= 0.5 * gmax[at]
            ok[at], stop[at] = halved, ~halved
        for _ls in range(30):
            bad = torch.nonzero(~ok & ~stop).ravel()
            if bad.numel() == 0:
                break
            t[bad] *= 0.5
            f_bad, cache_bad = problem.value(th[bad] + t[bad, None] * step[bad], rows[bad])
            f_new[bad] = f_bad
            _put(cache_new, bad, cache_bad)
            ok[bad] = f_bad <= f[bad] + 1e-4 * t[bad] * slope[bad]
        theta[rows] = torch.where(ok[:, None], th + t[:, None] * step, th)
        # A row whose line search failed is at the floating-point limit: it stops where it is.
        rows, f, cache = rows[ok], f_new[ok], _take(cache_new, ok)
        if rows.numel() == 0:
            break
    return theta, n_iter, converged


class _Binary(_Problem):
    """Binary logistic loss; ``target`` (B, n) is 1 for the positive class, else 0."""

    def __init__(
        self, gram: _Gram, W: torch.Tensor, target: torch.Tensor, C: float, pen: torch.Tensor
    ) -> None:
        import torch

        self.gram, self.W, self.C, self.pen = gram, W, C, pen
        self.sign = 1.0 - 2.0 * target  # loss = softplus(sign * z), computed without cancelling
        self.sw = W.sum(dim=1)
        # float32: exp(-|z|) kept above float32's smallest normal number (exp(-87) = 1.6e-38), as
        # subnormal numbers are slow on CPUs; float64 keeps the numpy solver's values exactly.
        self.floor = -87.0 if W.dtype == torch.float32 else -np.inf

    def value(self, theta: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, _Cache]:
        z = theta @ self.gram.A.T
        e = (-z.abs()).clamp(min=self.floor).exp()
        loss = (self.sign[rows] * z).clamp(min=0.0) + e.log1p()
        f = 0.5 * (theta**2) @ self.pen + self.C * (self.W[rows] * loss).sum(dim=1)
        return f, (z, e)

    def grad(self, theta: torch.Tensor, cache: _Cache, rows: torch.Tensor) -> torch.Tensor:
        z, e = cache
        # d loss / dz = sign * sigmoid(sign * z), computed without cancelling
        sign = self.sign[rows]
        r = sign * e.masked_fill(sign * z >= 0.0, 1.0) / (1.0 + e)
        return self.pen * theta + self.C * ((self.W[rows] * r) @ self.gram.A)

    def hess(self, theta: torch.Tensor, cache: _Cache, rows: torch.Tensor) -> torch.Tensor:
        e = cache[1]
        H = self.gram(self.C * self.W[rows] * (e / (1.0 + e) ** 2))  # sigma (1 - sigma)
        H.diagonal(dim1=1, dim2=2).add_(self.pen)
        return H


class _Multinomial(_Problem):
    """Multinomial loss over the present classes (``present`` (B, K)); ``theta`` is (K, p)."""

    def __init__(
        self,
        gram: _Gram,
        W: torch.Tensor,
        y: torch.Tensor,
        present: torch.Tensor,
        C: float,
        pen: torch.Tensor,
        fit_intercept: bool,
    ) -> None:
        import torch

        self.gram, self.W, self.y, self.present, self.C = gram, W, y, present, C
        dev, dtype = W.device, W.dtype
        self.K = K = present.shape[1]
        self.d1 = d1 = gram.A.shape[1]
        self.sw = W.sum(dim=1)
        n = y.numel()
        self.onehot = torch.zeros((K, n), dtype=dtype, device=dev)
        self.onehot[y, torch.arange(n, device=dev)] = 1.0
        self.offlabel = 1.0 - self.onehot
        self.pen_full = pen.repeat(K)
        self.fit_intercept = fit_intercept
        pk, pl = np.triu_indices(K)
        self.pk = torch.as_tensor(pk, device=dev)
        self.pl = torch.as_tensor(pl, device=dev)
        self.diag = torch.as_tensor(np.flatnonzero(pk == pl), device=dev)
        # Flat position in (pair of classes, pair of features) of each Hessian entry.
        pair = np.empty((K, K), dtype=np.intp)
        pair[pk, pl] = pair[pl, pk] = np.arange(pk.size)
        tri = gram.tri_np.reshape(d1, d1)
        layout = (pair[:, None, :, None] * gram.n_tri + tri[None, :, None, :]).ravel()
        self.layout = torch.as_tensor(layout, device=dev)  # order (k, j, l, m)
        self.icpt = torch.arange(K, device=dev) * d1 + d1 - 1

    def value(self, theta: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, _Cache]:
        a, K, n = rows.numel(), self.K, self.y.numel()
        Z = (theta.reshape(a * K, self.d1) @ self.gram.A.T).reshape(a, K, n)
        Zy = Z.gather(1, self.y.expand(a, 1, n))[:, 0]
        Z = Z.masked_fill(~self.present[rows][:, :, None], -np.inf)
        top = Z.amax(dim=1)
        E = (Z - top[:, None, :]).exp()
        # logsumexp(Z) - Z_y = (top - Z_y) + log1p(rest), rest = the sum of exp(Z_k - top) over
        # all but one top class, summed without cancelling (for precise objectives at large C)
        below = E < 1.0
        rest = (E * below).sum(dim=1) + ((~below).sum(dim=1) - 1)
        loss = (top - Zy) + rest.log1p()
        E /= (1.0 + rest)[:, None, :]
        f = 0.5 * (theta**2) @ self.pen_full + self.C * (self.W[rows] * loss).sum(dim=1)
        return f, (E,)

    def grad(self, theta: torch.Tensor, cache: _Cache, rows: torch.Tensor) -> torch.Tensor:
        (P,) = cache
        a, K = rows.numel(), self.K
        # P - onehot, with P_y - 1 computed as minus the sum of the other P_k (no cancelling)
        R = P * self.offlabel
        R -= self.onehot * R.sum(dim=1)[:, None, :]
        R *= self.W[rows][:, None, :]
        return self.pen_full * theta + self.C * (R.reshape(a * K, -1) @ self.gram.A).reshape(a, -1)

    def hess(self, theta: torch.Tensor, cache: _Cache, rows: torch.Tensor) -> torch.Tensor:
        (P,) = cache
        a, p = rows.numel(), self.K * self.d1
        # Blocks (k, l), k <= l: sum_i w_i (P_ik [k == l] - P_ik P_il) x_i x_i^T, each symmetric;
        # one GEMM gives their upper triangles, one gather lays them out as the full Hessian.
        S = -P[:, self.pk] * P[:, self.pl]
        S[:, self.diag] += P
        S *= self.C * self.W[rows][:, None, :]
        G = self.gram.upper(S.reshape(a * self.pk.numel(), -1)).reshape(a, -1)
        H = G.index_select(1, self.layout).reshape(a, p, p)
        H.diagonal(dim1=1, dim2=2).add_(self.pen_full)
        if self.fit_intercept:
            # Absent classes: unit curvature on their (unpenalised) intercepts, so they stay at
            # 0; present classes: u u^T along their common intercept shift (see the numpy solver).
            present = self.present[rows].to(H.dtype)
            icpt = self.icpt
            H[:, icpt, icpt] += 1.0 - present
            u = present / present.sum(dim=1, keepdim=True).sqrt()
            H[:, icpt[:, None], icpt[None, :]] += u[:, :, None] * u[:, None, :]
        return H


# ---------------------------------------------------------------------------------- trainer
def _as_dtype(dtype: str | torch.dtype) -> torch.dtype:
    import torch

    names = {"float64": torch.float64, "float32": torch.float32}
    out = dtype if isinstance(dtype, torch.dtype) else names.get(str(dtype))
    if out not in (torch.float64, torch.float32):
        raise ValueError(f"dtype must be float64 or float32; got {dtype!r}")
    assert out is not None
    return out


class TorchLogisticTrainer:
    """Fits scikit-learn's L2 logistic regression on many weighted subsets at once, with torch.

    Parameters
    ----------
    X, y, n_classes, C, fit_intercept, binary_c_factor, max_iter
        As for :class:`dataworth.utility.batched.logistic.LogisticTrainer`.
    tol : float or None, default=None
        Gradient tolerance (as the numpy trainer's); None: 1e-10 in float64, 1e-5 in float32.
    device : str or torch.device, default="cpu"
        Where the tensors live and the work runs (``"cuda"``, ``"cuda:1"``, ...).
    dtype : {"float64", "float32"} or torch.dtype, default="float64"
    block_bytes : int or None, default=None
        Working memory aimed at per block of subsets; None: 64 MiB on the CPU, 1 GiB on a GPU.

    The device arrays are built on first use and not pickled (a trainer sent to another process
    rebuilds them there).
    """

    def __init__(
        self,
        X: NDArray[np.float64],
        y: NDArray[Any],
        n_classes: int,
        *,
        C: float = 1.0,
        fit_intercept: bool = True,
        binary_c_factor: float = 1.0,
        tol: float | None = None,
        max_iter: int = 100,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype = "float64",
        block_bytes: int | None = None,
    ) -> None:
        import torch

        self.X = np.ascontiguousarray(X, dtype=np.float64)
        self.n_features = self.X.shape[1]
        self.y = np.asarray(y, dtype=np.intp)
        self.n_classes = int(n_classes)
        self.C = float(C)
        self.fit_intercept = bool(fit_intercept)
        self.binary_c_factor = float(binary_c_factor)
        self.max_iter = int(max_iter)
        self.device = torch.device(device)
        self.dtype = _as_dtype(dtype)
        if tol is None:
            tol = 1e-10 if self.dtype == torch.float64 else 1e-5
        self.tol = float(tol)
        if block_bytes is None:
            block_bytes = _BLOCK_BYTES_CPU if self.device.type == "cpu" else _BLOCK_BYTES_GPU
        self.block_bytes = int(block_bytes)
        self._K = max(self.n_classes, 2)
        self._onehot = np.zeros((self.y.size, self._K))
        self._onehot[np.arange(self.y.size), self.y] = 1.0
        self._tensors: dict[str, Any] | None = None
        self._warm: dict[bytes, torch.Tensor] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_tensors"], state["_warm"] = None, {}
        return state

    # ------------------------------------------------------------------ public
    def fit_predict(
        self, weights: NDArray[np.float64], X_eval: NDArray[np.float64]
    ) -> NDArray[np.intp]:
        """Fit one model per row of ``weights`` (B, n_train); class codes (B, m) on ``X_eval``."""
        import torch

        W = self._check(weights)
        Xe = np.asarray(X_eval, dtype=np.float64)
        Xe_t = torch.tensor(Xe, dtype=self.dtype, device=self.device)
        pred = np.empty((W.shape[0], Xe.shape[0]), dtype=np.intp)
        for idx, present, is_binary, (theta, _, _) in self._blocks(W):
            codes = self._predict(theta, present, is_binary, Xe_t)
            pred[idx] = codes.cpu().numpy()
        return pred

    def fit(self, weights: NDArray[np.float64]) -> LogisticFit:
        """Fit one model per row of ``weights``; the models as numpy arrays (see LogisticFit)."""
        W = self._check(weights)
        B, K, d = W.shape[0], self._K, self.n_features
        coef = np.zeros((B, K, d))
        intercept = np.zeros((B, K))
        n_iter = np.zeros(B, dtype=np.int64)
        converged = np.zeros(B, dtype=bool)
        present_all = (W @ self._onehot) > 0
        for idx, present, is_binary, (theta, it, conv) in self._blocks(W):
            th = theta.cpu().numpy().astype(np.float64)
            n_iter[idx], converged[idx] = it.cpu().numpy(), conv.cpu().numpy()
            if is_binary:
                hi = K - 1 - np.argmax(present[:, ::-1], axis=1)
                coef[idx, hi] = th[:, :d]
                if self.fit_intercept:
                    intercept[idx, hi] = th[:, d]
                continue
            th3 = th.reshape(idx.size, K, -1)
            coef[idx] = th3[:, :, :d]
            if self.fit_intercept:
                intercept[idx] = _centred(th3[:, :, d], present)
        binary = present_all.sum(axis=1) == 2
        return LogisticFit(coef, intercept, present_all, binary, n_iter, converged)

    # ------------------------------------------------------------------ internals
    def _check(self, weights: NDArray[np.float64]) -> _F64:
        W = np.asarray(weights, dtype=np.float64)
        if W.ndim != 2 or W.shape[1] != self.y.size:
            raise ValueError(f"weights must have shape (B, {self.y.size}); got {W.shape}")
        return W

    def _data(self) -> dict[str, Any]:
        """The training data on the device (built on first use)."""
        import torch

        if self._tensors is None:
            A = self.X
            if self.fit_intercept:
                A = np.hstack([A, np.ones((A.shape[0], 1))])
            A_t = torch.tensor(A, dtype=self.dtype, device=self.device)
            pen = torch.ones(A.shape[1], dtype=self.dtype, device=self.device)
            if self.fit_intercept:
                pen[-1] = 0.0
            self._tensors = {
                "gram": _Gram(A_t),
                "y": torch.tensor(self.y, dtype=torch.int64, device=self.device),
                "pen": pen,
            }
        return self._tensors

    def _blocks(self, W: _F64) -> Any:
        """Yield ``(idx, present, is_binary, (theta, n_iter, converged))`` block by block."""
        counts = W @ self._onehot
        present = counts > 0
        n_present = present.sum(axis=1)
        if (n_present < 2).any():
            raise ValueError("every row of weights needs positive weight on two classes")
        binary = n_present == 2
        for is_binary in (True, False):
            sel = np.flatnonzero(binary == is_binary)
            size = max(1, self.block_bytes // self._bytes_per_row(is_binary))
            for start in range(0, sel.size, size):
                idx = sel[start : start + size]
                out = self._fit_block(W[idx], present[idx], counts[idx], is_binary)
                yield idx, present[idx], is_binary, out

    def _bytes_per_row(self, is_binary: bool) -> int:
        n, K, d1 = self.y.size, self._K, self.n_features + int(self.fit_intercept)
        tri, size = d1 * (d1 + 1) // 2, 8 if self.dtype.itemsize == 8 else 4
        if is_binary:
            return size * (10 * n + tri + 4 * d1 * d1)
        npair = K * (K + 1) // 2
        return size * (10 * K * n + npair * (n + tri + 2 * d1 * d1) + 4 * (K * d1) ** 2)

    def _hi_lo(self, present: NDArray[np.bool_]) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        hi = self._K - 1 - np.argmax(present[:, ::-1], axis=1)
        lo = np.argmax(present, axis=1)
        return (torch.as_tensor(hi, device=self.device), torch.as_tensor(lo, device=self.device))

    def _predict(
        self, theta: torch.Tensor, present: NDArray[np.bool_], is_binary: bool, Xe: torch.Tensor
    ) -> torch.Tensor:
        """Class codes (a, m): the argmax of the decision function over the present classes."""
        import torch

        d = self.n_features
        if is_binary:  # ``hi`` exactly when the binary decision is positive
            hi, lo = self._hi_lo(present)
            z = theta[:, :d] @ Xe.T
            if self.fit_intercept:
                z += theta[:, d : d + 1]
            return torch.where(z > 0.0, hi[:, None], lo[:, None])
        a, K = theta.shape[0], self._K
        th3 = theta.reshape(a, K, -1)
        scores = th3[:, :, :d] @ Xe.T  # (a, K, m)
        pres = torch.as_tensor(present, device=self.device)
        if self.fit_intercept:
            scores += _centred(th3[:, :, d], pres)[:, :, None]
        scores.masked_fill_(~pres[:, :, None], -np.inf)
        return scores.argmax(dim=1)  # the smallest code on ties, as numpy and scikit-learn

    def _problem(self, W: _F64, present: NDArray[np.bool_], is_binary: bool) -> _Problem:
        """The batched problem for weights ``W`` (restricted to the rows in use)."""
        import torch

        data = self._data()
        gram, y = data["gram"], data["y"]
        used = np.flatnonzero(W.any(axis=0))
        if used.size < 0.8 * W.shape[1]:  # drop rows with zero weight everywhere in the block
            used_t = torch.as_tensor(used, device=self.device)
            gram, y, W = gram.take(used_t), y[used_t], W[:, used]
        W_t = torch.tensor(W, dtype=self.dtype, device=self.device)
        if is_binary:
            hi, _ = self._hi_lo(present)
            target = (y[None, :] == hi[:, None]).to(self.dtype)
            return _Binary(gram, W_t, target, self.C * self.binary_c_factor, data["pen"])
        pres = torch.as_tensor(present, device=self.device)
        return _Multinomial(gram, W_t, y, pres, self.C, data["pen"], self.fit_intercept)

    def _cold_start(
        self, present: NDArray[np.bool_], counts: _F64, is_binary: bool
    ) -> torch.Tensor:
        """Coefficients 0 and the intercepts that are optimal for them."""
        import torch

        B, K, d1 = present.shape[0], self._K, self.n_features + int(self.fit_intercept)
        opts: dict[str, Any] = {"dtype": self.dtype, "device": self.device}
        if is_binary:
            theta = torch.zeros((B, d1), **opts)
            if self.fit_intercept:
                rows = np.arange(B)
                hi = K - 1 - np.argmax(present[:, ::-1], axis=1)
                lo = np.argmax(present, axis=1)
                b = np.log(counts[rows, hi] / counts[rows, lo])
                theta[:, -1] = torch.as_tensor(b, **opts)
            return theta
        theta3 = torch.zeros((B, K, d1), **opts)
        if self.fit_intercept:
            logc = np.log(np.where(present, counts, 1.0))
            logc -= (logc.sum(axis=1) / present.sum(axis=1))[:, None]
            theta3[:, :, -1] = torch.as_tensor(logc * present, **opts)
        return theta3.reshape(B, K * d1)

    def _warm_start(self, present: NDArray[np.bool_], is_binary: bool) -> torch.Tensor:
        """The fit on all training rows of each row's present classes (computed once each)."""
        import torch

        patterns, inverse = np.unique(present, axis=0, return_inverse=True)
        keys = [bytes(np.packbits(pat)) for pat in patterns]
        missing = [i for i, key in enumerate(keys) if key not in self._warm]
        if missing:
            pats = patterns[missing]
            W = pats[:, self.y].astype(np.float64)
            counts = W @ self._onehot
            problem = self._problem(W, pats, is_binary)
            start = self._cold_start(pats, counts, is_binary)
            theta, _, _ = _newton(problem, [start], tol=self.tol, max_iter=self.max_iter)
            if len(self._warm) + len(missing) > 4096:
                self._warm.clear()
            for i, th in zip(missing, theta, strict=True):
                self._warm[keys[i]] = th
        stacked = torch.stack([self._warm[key] for key in keys])
        return stacked[torch.as_tensor(inverse.ravel(), device=self.device)]

    def _fit_block(
        self, W: _F64, present: NDArray[np.bool_], counts: _F64, is_binary: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Solutions (rows, p), Newton iterations and convergence flags for one block."""
        import torch

        problem = self._problem(W, present, is_binary)
        warm = self._warm_start(present, is_binary)
        cold = self._cold_start(present, counts, is_binary)
        # Starts: the fit on all rows, the intercept-only model and a blend by subset size.
        share = torch.sqrt((problem.sw / W.shape[1]).clamp(max=1.0))[:, None]
        starts = [warm, cold, share * warm + (1.0 - share) * cold]
        return _newton(problem, starts, tol=self.tol, max_iter=self.max_iter)


def _centred(b: Any, present: Any) -> Any:
    """Intercepts ``b`` (a, K) centred over the present classes, 0 for absent ones (numpy or
    torch, as the numpy trainer stores them)."""
    b = b * present
    b = b - (b.sum(1) / present.sum(1))[:, None]
    return b * present
