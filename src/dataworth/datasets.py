"""Bundled demo datasets and corruption helpers that return the ground truth they touched.

The demo sets come from the data files that ship inside scikit-learn; nothing is downloaded.

Examples
--------
>>> from dataworth.datasets import load_dataset, flip_labels
>>> ds = load_dataset("iris")
>>> noisy, flipped = flip_labels(ds, fraction=0.1, random_state=0)
>>> int((noisy.y[flipped] != ds.y[flipped]).all())
1
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dataworth.data import Dataset
from dataworth.errors import DataworthError

__all__ = ["DATASETS", "add_feature_noise", "duplicate_rows", "flip_labels", "load_dataset"]


def _loader(name: str) -> Callable[[], Any]:
    from sklearn import datasets as skd

    return {
        "breast_cancer": skd.load_breast_cancer,
        "digits": skd.load_digits,
        "wine": skd.load_wine,
        "iris": skd.load_iris,
        "diabetes": skd.load_diabetes,
    }[name]


#: Names of the bundled datasets and what they are.
DATASETS: dict[str, str] = {
    "breast_cancer": "569 tumours, 30 features, binary diagnosis (classification)",
    "digits": "1797 8x8 handwritten digits, 64 pixel features, 10 classes (classification)",
    "wine": "178 wines, 13 chemical features, 3 cultivars (classification)",
    "iris": "150 flowers, 4 features, 3 species (classification)",
    "diabetes": "442 patients, 10 features, disease progression (regression)",
}


def load_dataset(name: str) -> Dataset:
    """Load a bundled dataset by name (see :data:`DATASETS`)."""
    key = name.replace("-", "_").lower()
    if key not in DATASETS:
        raise DataworthError(
            f"unknown dataset {name!r}; choose one of: {', '.join(sorted(DATASETS))}."
        )
    bunch = _loader(key)()
    names = [str(n) for n in getattr(bunch, "feature_names", [])] or None
    return Dataset.from_arrays(bunch.data, bunch.target, feature_names=names, target_name="target")


def _check_fraction(fraction: float) -> None:
    if not 0.0 <= fraction <= 1.0:
        raise DataworthError(f"fraction must be between 0 and 1; got {fraction}.")


def _pick(n: int, fraction: float, rng: np.random.Generator) -> NDArray[np.intp]:
    _check_fraction(fraction)
    k = int(round(fraction * n))
    return np.sort(rng.choice(n, size=k, replace=False)).astype(np.intp)


def flip_labels(
    ds: Dataset, fraction: float = 0.1, *, random_state: int | None = None
) -> tuple[Dataset, NDArray[np.intp]]:
    """Change the label of a random ``fraction`` of rows to a different class.

    Returns
    -------
    (Dataset, ndarray)
        The corrupted copy and the sorted positions of the flipped rows.
    """
    rng = np.random.default_rng(random_state)
    classes = np.unique(ds.y)
    if classes.size < 2:
        raise DataworthError("flip_labels needs at least two classes in the target.")
    idx = _pick(ds.n_samples, fraction, rng)
    y = ds.y.copy()
    codes = np.searchsorted(classes, y[idx])
    shift = rng.integers(1, classes.size, size=idx.size)
    y[idx] = classes[(codes + shift) % classes.size]
    return ds.replace(y=y), idx


def add_feature_noise(
    ds: Dataset, fraction: float = 0.1, *, scale: float = 1.0, random_state: int | None = None
) -> tuple[Dataset, NDArray[np.intp]]:
    """Add Gaussian noise (``scale`` times each feature's std) to a random ``fraction`` of rows."""
    rng = np.random.default_rng(random_state)
    idx = _pick(ds.n_samples, fraction, rng)
    X = ds.X.copy()
    std = X.std(axis=0)
    X[idx] += rng.normal(size=(idx.size, ds.n_features)) * scale * np.where(std > 0, std, 1.0)
    return ds.replace(X=X), idx


def duplicate_rows(
    ds: Dataset, fraction: float = 0.1, *, random_state: int | None = None
) -> tuple[Dataset, NDArray[np.intp]]:
    """Append copies of a random ``fraction`` of rows at the end.

    Returns the enlarged dataset and the positions of the appended copies. Row labels of the
    copies are new positions (``n .. n+k-1``) so they stay unique.
    """
    rng = np.random.default_rng(random_state)
    idx = _pick(ds.n_samples, fraction, rng)
    n = ds.n_samples
    groups = None if ds.groups is None else np.concatenate([ds.groups, ds.groups[idx]])
    labels = (
        np.arange(n + idx.size)
        if ds.row_labels.dtype.kind in "iu"
        else np.concatenate([ds.row_labels.astype(str), np.array([f"dup{i}" for i in idx])])
    )
    out = ds.replace(
        X=np.vstack([ds.X, ds.X[idx]]),
        y=np.concatenate([ds.y, ds.y[idx]]),
        groups=groups,
        row_labels=labels,
    )
    return out, np.arange(n, n + idx.size, dtype=np.intp)
