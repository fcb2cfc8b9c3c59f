"""Transfer pruning (Schoch, Mishra & Ji 2023): embed, value with a cheap proxy, prune.

:func:`transfer_prune` runs the whole workflow: a feature function embeds the raw inputs, the
valuation rows are split into a part that values and a part that scores the removal curve, the
proxy values the training rows (optionally on small random subsets whose values are averaged,
the paper's cheap sampling chains) and :func:`dataworth.apps.prune.prune_by_curve` estimates the
removal index from the proxy's held-out removal curve and returns the rows to keep.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dataworth.api import value
from dataworth.apps.prune import TransferPruneResult, prune_by_curve
from dataworth.data import Dataset, is_categorical
from dataworth.errors import DataworthError
from dataworth.methods import get_method
from dataworth.models import default_model
from dataworth.result import ValuationResult

__all__ = ["transfer_prune"]


def _embed(embed: Callable[[Any], Any] | None, inputs: Any, what: str) -> NDArray[np.float64]:
    out = inputs if embed is None else embed(inputs)
    try:
        E = np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataworthError(
            f"{what} must be numeric features, or give embed= a feature function that maps "
            "them to a 2-D array."
        ) from None
    if E.ndim != 2:
        raise DataworthError(f"the features of {what} must be a 2-D array; got shape {E.shape}.")
    return E


def _stratified_chunks(
    y: NDArray[Any], size: int, rng: np.random.Generator
) -> list[NDArray[np.intp]]:
    """A random partition of the rows into chunks of about ``size``, each class dealt evenly."""
    n = y.size
    n_chunks = max(1, math.ceil(n / size))
    perm = rng.permutation(n)
    if is_categorical(y):
        _, codes = np.unique(y, return_inverse=True)
        perm = perm[np.argsort(codes[perm], kind="stable")]
    chunk_of = np.arange(n) % n_chunks
    return [np.sort(perm[chunk_of == c]).astype(np.intp) for c in range(n_chunks)]


def _value_on_subsets(
    method: str,
    train: Dataset,
    valid: Dataset,
    model: Any,
    subset_size: int | None,
    n_repeats: int,
    random_state: int | None,
    params: dict[str, Any],
) -> ValuationResult:
    """Values from ``method`` on the whole set, or averaged over random subsets (TS-DShapley)."""
    n = train.n_samples
    if subset_size is None or subset_size >= n:
        return value(method, train, valid, model=model, random_state=random_state, **params)
    rng = np.random.default_rng(random_state)
    total = np.zeros(n)
    total_sq = np.zeros(n)
    count = np.zeros(n, dtype=np.int64)
    for _ in range(n_repeats):
        for chunk in _stratified_chunks(train.y, subset_size, rng):
            seed = int(rng.integers(2**31 - 1))
            part = value(method, train.take(chunk), valid, model=model, random_state=seed, **params)
            total[chunk] += part.values
            total_sq[chunk] += part.values**2
            count[chunk] += 1
    mean = total / count
    if n_repeats > 1:
        var = np.maximum(total_sq / count - mean**2, 0.0) * count / (count - 1)
        stderr = np.sqrt(var / count)
    else:
        stderr = np.full(n, np.nan)
    return ValuationResult(
        values=mean,
        stderr=stderr,
        counts=count,
        labels=train.row_labels,
        method=method,
        params={"subset_size": subset_size, "n_repeats": n_repeats, **params},
        metadata={"aggregation": "mean over random class-stratified subsets (TS-DShapley)"},
    )


def transfer_prune(
    train_inputs: Any,
    y_train: ArrayLike,
    valid_inputs: Any,
    y_valid: ArrayLike,
    *,
    embed: Callable[[Any], Any] | None = None,
    method: str = "knn-shapley",
    proxy: Any = None,
    subset_size: int | None = None,
    n_repeats: int = 1,
    max_remove: float = 0.5,
    step: float = 0.05,
    tolerance: float = 0.0,
    curve_fraction: float = 0.5,
    zero_tol: float | None = None,
    duplicate_tol: float | None = None,
    random_state: int | None = None,
    method_params: dict[str, Any] | None = None,
    baseline: float | str | None = "auto",
) -> TransferPruneResult:
    """Schoch, Mishra & Ji (2023): value with a proxy on embeddings, prune, keep the rest.

    1. ``embed`` maps the raw inputs (texts, images, rows) to features.
    2. The valuation rows are split (stratified, ``random_state``) into a part that values the
       training rows and a part, ``curve_fraction`` of them, held out for the removal curve.
    3. ``method`` values the training rows with the ``proxy`` model on the embeddings; with
       ``subset_size``, on a random class-stratified partition into subsets of that size,
       repeated ``n_repeats`` times, the values averaged (the paper's cheap sampling chains).
    4. The removal curve: remove the lowest-valued ``0, step, .., max_remove`` of the rows,
       refit the proxy, score on the held-out part. The removal index is the largest fraction
       scoring within ``tolerance`` of the curve's best
       (:func:`~dataworth.apps.prune.estimate_removal_index`).
    5. The lowest-valued rows up to that index are removed; train the target model on
       ``result.kept``.

    Steps 4 and 5 are :func:`dataworth.apps.prune.prune_by_curve`, which takes values computed
    any way.

    Parameters
    ----------
    train_inputs, valid_inputs
        Anything ``embed`` accepts; with ``embed=None``, numeric 2-D features.
    y_train, y_valid : array-like
        Labels.
    embed : callable, optional
        The feature function, e.g. :func:`dataworth.apps.embed.minilm_embedder`.
    method : str, default="knn-shapley"
        A registered valuation method.
    proxy : estimator, optional
        The cheap model (default: logistic regression); also used for the removal curve.
    subset_size, n_repeats
        Value on random subsets of this size, ``n_repeats`` partitions (default: all rows).
    max_remove, step : float
        The removal fractions tried.
    tolerance : float, default=0.0
        Score slack when choosing the removal index.
    curve_fraction : float, default=0.5
        Share of the valuation rows held out for the removal curve.
    zero_tol, duplicate_tol
        See :func:`~dataworth.apps.prune.classify_rows`.
    random_state : int, optional
    method_params : dict, optional
        The method's own parameters (``k``, ``budget``, ...).
    baseline : float, None or "auto", default="auto"
        For ``result.classes`` (see :func:`~dataworth.apps.prune.classify_rows`); ``"auto"``:
        the method's own.

    Examples
    --------
    >>> from dataworth.datasets import load_dataset
    >>> train, valid = load_dataset("iris").split(0.4, random_state=0)
    >>> res = transfer_prune(train.X, train.y, valid.X, valid.y, max_remove=0.2, step=0.1,
    ...                      random_state=0, method_params={"k": 3})
    >>> res.fractions.tolist()
    [0.0, 0.1, 0.2]
    >>> res.kept.size + res.removed.size == train.n_samples
    True
    """
    if not (0.0 <= max_remove < 1.0):
        raise DataworthError(f"max_remove must be in [0, 1); got {max_remove}.")
    if not (0.0 < step <= 1.0):
        raise DataworthError(f"step must be in (0, 1]; got {step}.")
    if subset_size is not None and not (isinstance(subset_size, int) and subset_size >= 2):
        raise DataworthError(f"subset_size must be a whole number >= 2; got {subset_size!r}.")
    if not (isinstance(n_repeats, int) and n_repeats >= 1):
        raise DataworthError(f"n_repeats must be a positive whole number; got {n_repeats!r}.")
    if isinstance(baseline, str):
        if baseline != "auto":
            raise DataworthError(f"baseline must be a number, None or 'auto'; got {baseline!r}.")
        used: float | None = get_method(method).baseline
    else:
        used = baseline
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    E_train = _embed(embed, train_inputs, "train_inputs")
    E_valid = _embed(embed, valid_inputs, "valid_inputs")
    timings["embed_s"] = time.perf_counter() - t0
    if E_train.shape[1] != E_valid.shape[1]:
        raise DataworthError(
            f"training features have {E_train.shape[1]} columns but valuation features have "
            f"{E_valid.shape[1]}."
        )
    train = Dataset.from_arrays(E_train, np.asarray(y_train))
    valid_all = Dataset.from_arrays(E_valid, np.asarray(y_valid))
    valid, held_out = valid_all.split(curve_fraction, random_state=random_state)
    model = default_model(train.y, random_state=random_state) if proxy is None else proxy

    t0 = time.perf_counter()
    result = _value_on_subsets(
        method, train, valid, model, subset_size, n_repeats, random_state, dict(method_params or {})
    )
    timings["value_s"] = time.perf_counter() - t0
    pruned = prune_by_curve(
        result,
        train,
        held_out,
        model,
        max_remove=max_remove,
        step=step,
        tolerance=tolerance,
        zero_tol=zero_tol,
        duplicate_tol=duplicate_tol,
        baseline=used,
    )
    timings["curve_s"] = pruned.metadata["curve_s"]
    return replace(
        pruned,
        metadata={
            "method": method,
            "proxy": type(model).__name__,
            "subset_size": subset_size,
            "n_repeats": n_repeats,
            "n_valuation_rows": valid.n_samples,
            "n_curve_rows": held_out.n_samples,
            **timings,
        },
    )
