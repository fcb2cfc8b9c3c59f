"""The contract every influence back end meets, and the block-wise computations built on it.

An *influence model* is a trained model seen through its training objective

    J(theta) = (1/n) * sum_i loss_i(theta) + reg(theta),

with ``H`` the Hessian of ``J`` at the trained parameters (plus explicit ``damping * I``). It
gives per-row gradients and products with ``H^-1``; nothing else. The influence of training row
``z`` on a test quantity ``f`` (Koh & Liang 2017; ``docs/conventions.md``) is

    I(z, f) = - grad f^T H^-1 grad loss_z,

positive when up-weighting ``z`` raises ``f`` (for a loss: ``z`` hurts). Removing ``z`` changes
``f`` by about ``-I(z, f) / n``. Values follow the library's convention: ``value = -I`` on the
valuation loss, so helpful rows are positive.

The functions here never hold more than one block of the training x test matrix in memory unless
asked to return it, and can stream it to a ``.npy`` file on disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from dataworth.errors import DataworthError
from dataworth.memory import check_memory
from dataworth.result import ValuationResult

__all__ = [
    "InfluenceModel",
    "influence_matrix",
    "influence_on_parameters",
    "influence_values",
    "self_influence",
]

_F64 = NDArray[np.float64]


@runtime_checkable
class InfluenceModel(Protocol):
    """A trained model, its training rows and an inverse-Hessian solver.

    Arrays (``Array``) are whatever the back end computes in: numpy arrays for the closed forms,
    torch tensors (on the model's device) for PyTorch models. Parameters are one flat vector of
    length ``n_params`` (for torch: ``named_parameters()`` order, each flattened row-major).

    Attributes
    ----------
    n_train : int
        Number of training rows.
    n_params : int
        Number of parameters.
    """

    n_train: int
    n_params: int

    def train_gradients(self, rows: NDArray[np.intp]) -> Any:
        """Gradients of the training losses ``loss_i`` of ``rows`` at theta, shape ``(k, p)``."""
        ...

    def test_gradients(self, X: Any, y: Any, target: str = "loss") -> Any:
        """Gradients of a test quantity per row of ``(X, y)``, shape ``(m, p)``.

        ``target`` is ``"loss"`` (the row's loss) or ``"prediction"`` (the model's output for the
        row: the decision function / logit of the row's label for classifiers, the predicted value
        for regression).
        """
        ...

    def solve(self, V: Any) -> Any:
        """``V @ H^-1`` for the rows of ``V`` (shape ``(m, p)``); ``H`` includes the damping."""
        ...

    def to_numpy(self, a: Any) -> _F64:
        """A back-end array as a float64 numpy array (on the host)."""
        ...


def _rows(model: InfluenceModel, rows: Any) -> NDArray[np.intp]:
    if rows is None:
        return np.arange(model.n_train, dtype=np.intp)
    out = np.asarray(rows)
    if out.ndim != 1 or (out.size and not np.issubdtype(out.dtype, np.integer)):
        raise DataworthError("rows must be a one-dimensional array of row indices.")
    if out.size and (out.min() < -model.n_train or out.max() >= model.n_train):
        raise DataworthError(
            f"rows must lie in [0, {model.n_train}); got {out.min()}..{out.max()}."
        )
    return np.asarray(out % max(model.n_train, 1), dtype=np.intp)


def _check_block(block_size: int) -> int:
    if not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise DataworthError(f"block_size must be a positive whole number; got {block_size!r}.")
    return int(block_size)


def influence_matrix(
    model: InfluenceModel,
    X_test: Any,
    y_test: Any,
    *,
    target: str = "loss",
    rows: Any = None,
    block_size: int = 1024,
    out: str | Path | None = None,
) -> _F64:
    """Influence ``I(z_i, f_j)`` of training rows on the test quantity of each test row.

    Computed block by block: the test gradients are multiplied by ``H^-1`` once per block of
    ``block_size`` test rows, then the training gradients stream through in blocks of
    ``block_size`` rows. With ``out`` the matrix is written to that ``.npy`` file block by block
    (opened with ``numpy.load(out, mmap_mode="r")`` it never has to fit in memory) and returned
    as a read-only memory map.

    Parameters
    ----------
    model : InfluenceModel
        A closed-form or PyTorch influence model.
    X_test, y_test : array-like
        Test rows.
    target : {"loss", "prediction"}, default="loss"
        The test quantity.
    rows : array of int, optional
        Training rows to include (default: all), in that order.
    block_size : int, default=1024
        Rows per block.
    out : path, optional
        Stream the matrix to this ``.npy`` file.

    Returns
    -------
    ndarray of shape (n_rows, n_test)
        ``I[i, j] = -grad f_j^T H^-1 grad loss_i``; positive means up-weighting training row ``i``
        raises test quantity ``j``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from dataworth.influence import LinearInfluence, influence_matrix
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(30, 2)); y = X @ [1.0, -1.0]
    >>> model = LinearInfluence(Ridge(alpha=1.0), X, y)
    >>> influence_matrix(model, X[:4], y[:4]).shape
    (30, 4)
    """
    block = _check_block(block_size)
    train_rows = _rows(model, rows)
    n_test = len(y_test)
    shape = (train_rows.size, n_test)
    matrix: _F64
    if out is not None:
        path = Path(out)
        if path.suffix != ".npy":
            raise DataworthError(f"out must be a .npy file; got {str(out)!r}.")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            matrix = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=shape)
        except OSError as exc:
            raise DataworthError(f"cannot write {out}: {exc.strerror or exc}") from None
    else:
        check_memory(
            8.0 * shape[0] * shape[1],
            f"the {shape[0]} x {shape[1]} influence matrix (training x test rows)",
            "pass out='file.npy' to stream it to disk, or fewer test rows at a time.",
        )
        matrix = np.empty(shape, dtype=np.float64)
    X_arr = X_test
    for t0 in range(0, n_test, block):
        t1 = min(t0 + block, n_test)
        solved = model.solve(
            model.test_gradients(_slice(X_arr, t0, t1), _slice(y_test, t0, t1), target)
        )
        for r0 in range(0, train_rows.size, block):
            r1 = min(r0 + block, train_rows.size)
            grads = model.train_gradients(train_rows[r0:r1])
            matrix[r0:r1, t0:t1] = -model.to_numpy(grads @ solved.T)
    if out is not None:
        if isinstance(matrix, np.memmap):
            matrix.flush()
        del matrix
        loaded: _F64 = np.load(Path(out), mmap_mode="r")
        return loaded
    return matrix


def _slice(a: Any, start: int, stop: int) -> Any:
    if hasattr(a, "iloc"):
        return a.iloc[start:stop]
    return a[start:stop]


def influence_values(
    model: InfluenceModel,
    X_valid: Any,
    y_valid: Any,
    *,
    target: str = "loss",
    rows: Any = None,
    block_size: int = 1024,
) -> ValuationResult:
    """Value of each training row: ``-I(z_i, mean valuation loss)`` (helpful rows positive).

    The influence is linear in the test gradient, so the mean over the valuation rows is taken
    before the single ``H^-1`` product: one solve whatever the size of the valuation set.
    Removing row ``i`` raises the mean valuation loss by about ``value_i / n`` (first order).
    The values are deterministic (``stderr`` 0).

    Returns
    -------
    ValuationResult
        One value per training row (labels: the row indices), method ``"influence"``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from dataworth.influence import LinearInfluence, influence_values
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(30, 2)); y = X @ [1.0, -1.0]
    >>> y_clean = y.copy()
    >>> y[0] += 10.0  # a corrupted target
    >>> model = LinearInfluence(Ridge(alpha=1.0), X, y)
    >>> int(np.argmin(influence_values(model, X, y_clean).values))  # the most harmful row
    0
    """
    block = _check_block(block_size)
    train_rows = _rows(model, rows)
    n_valid = len(y_valid)
    if n_valid == 0:
        raise DataworthError("the valuation set is empty.")
    total: Any = None
    for t0 in range(0, n_valid, block):
        t1 = min(t0 + block, n_valid)
        g = model.test_gradients(_slice(X_valid, t0, t1), _slice(y_valid, t0, t1), target)
        part = g.sum(0)
        total = part if total is None else total + part
    solved = model.solve((total / n_valid)[None, :])
    values = np.empty(train_rows.size, dtype=np.float64)
    for r0 in range(0, train_rows.size, block):
        r1 = min(r0 + block, train_rows.size)
        values[r0:r1] = model.to_numpy(model.train_gradients(train_rows[r0:r1]) @ solved.T)[:, 0]
    return ValuationResult(
        values=values,
        stderr=np.zeros(values.size),
        counts=np.ones(values.size, dtype=np.int64),
        labels=train_rows,
        method="influence",
        params={"target": target},
        metadata={
            "model": type(model).__name__,
            "n_valid": int(n_valid),
            "approximation": getattr(
                model, "approximation", "first-order influence (Koh & Liang 2017)"
            ),
            "scale": "value = -I(z, mean valuation loss); removing z raises it by ~value/n",
        },
    )


def self_influence(model: InfluenceModel, *, rows: Any = None, block_size: int = 256) -> _F64:
    """Self-influence ``grad loss_i^T H^-1 grad loss_i`` of each training row: an outlier score.

    Rows the model can fit only by bending around them (mislabeled or atypical points) score
    high. Costs one ``H^-1`` product per row (cheap for the direct, Arnoldi and EK-FAC solvers).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from dataworth.influence import LinearInfluence, self_influence
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(30, 2)); y = X @ [1.0, -1.0]
    >>> y[3] += 10.0
    >>> int(np.argmax(self_influence(LinearInfluence(Ridge(alpha=1.0), X, y))))
    3
    """
    block = _check_block(block_size)
    train_rows = _rows(model, rows)
    out = np.empty(train_rows.size, dtype=np.float64)
    for r0 in range(0, train_rows.size, block):
        r1 = min(r0 + block, train_rows.size)
        grads = model.train_gradients(train_rows[r0:r1])
        out[r0:r1] = model.to_numpy((model.solve(grads) * grads).sum(1))
    return out


def influence_on_parameters(model: InfluenceModel, *, rows: Any = None) -> _F64:
    """``d theta / d eps_i = -H^-1 grad loss_i`` for each training row, shape ``(n_rows, p)``.

    Removing row ``i`` moves the parameters by about ``+H^-1 grad loss_i / n``; column ``j`` is
    the influence on coefficient ``j`` (the test quantity ``f = theta_j``).
    """
    train_rows = _rows(model, rows)
    check_memory(
        3 * 8.0 * train_rows.size * model.n_params,  # gradients, solved, and the result
        f"the {train_rows.size} x {model.n_params} matrix of parameter influences (rows x "
        "parameters), 3 copies at once",
        "pass fewer rows at a time (rows=...).",
    )
    return -model.to_numpy(model.solve(model.train_gradients(train_rows)))
