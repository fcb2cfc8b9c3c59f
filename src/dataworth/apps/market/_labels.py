"""Label bookkeeping shared by the market modules: labels as integer codes, values in
provider order."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dataworth.errors import DataworthError
from dataworth.result import ValuationResult

__all__ = ["align_to_providers", "encode_labels"]


def encode_labels(a: NDArray[Any]) -> tuple[NDArray[Any], NDArray[np.intp]]:
    """The sorted distinct labels of ``a`` and each entry's position among them."""
    names, codes = np.unique(np.asarray(a), return_inverse=True)
    return names, codes.astype(np.intp).reshape(-1)


def align_to_providers(
    values: ValuationResult | ArrayLike, names: NDArray[Any]
) -> NDArray[np.float64]:
    """Values in the order of ``names`` (by label for a group result, else as given)."""
    if isinstance(values, ValuationResult):
        v = np.asarray(values.values, dtype=np.float64)
        if values.kind == "group":
            labels = values.labels.tolist()
            if sorted(map(str, labels)) != sorted(map(str, names.tolist())) or len(labels) != len(
                names
            ):
                raise DataworthError(
                    "the result's groups do not match the providers of the data; value the same "
                    "dataset by group."
                )
            pos = {str(lab): i for i, lab in enumerate(labels)}
            v = v[[pos[str(p)] for p in names.tolist()]]
    else:
        v = np.asarray(values, dtype=np.float64)
    if v.shape != names.shape:
        raise DataworthError(
            f"got {v.size} values for {names.size} providers; give one value per provider, in "
            "sorted provider order."
        )
    return v
