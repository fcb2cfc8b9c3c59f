"""Out-of-fold predictions for the review page's prediction column: each row is predicted by a
model that never saw its label."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from dataworth.data import Dataset, is_categorical
from dataworth.errors import DataworthError


def out_of_fold_predictions(
    model: Any,
    data: Dataset,
    *,
    cv: int = 5,
    random_state: int | None = 0,
    n_jobs: int | None = 1,
) -> NDArray[Any]:
    """Each row's prediction by a clone of ``model`` fitted on the other folds, so that a row's
    own label never votes for its prediction (stratified folds for class labels when every class
    has ``cv`` rows, shuffled with ``random_state``).

    Examples
    --------
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> data = Dataset.from_arrays([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]], [0, 0, 1, 1, 1, 1])
    >>> out_of_fold_predictions(KNeighborsClassifier(1), data, cv=3).tolist()
    [0, 0, 0, 1, 1, 1]
    """
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict

    if cv < 2:
        raise DataworthError(f"cv must be at least 2; got {cv}.")
    if data.n_samples < cv:
        raise DataworthError(f"cv={cv} needs at least {cv} rows; the data has {data.n_samples}.")
    splitter: Any = KFold(cv, shuffle=True, random_state=random_state)
    if is_categorical(data.y) and np.unique(data.y, return_counts=True)[1].min() >= cv:
        splitter = StratifiedKFold(cv, shuffle=True, random_state=random_state)
    return np.asarray(cross_val_predict(model, data.X, data.y, cv=splitter, n_jobs=n_jobs))
