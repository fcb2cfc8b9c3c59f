"""Attacks as robustness studies: removing a trigger-set watermark with data values.

A model owner can watermark a model by training it on a *trigger set*: out-of-distribution
inputs with random labels that the model memorises (Adi et al. 2018). Only a model trained on
them labels them right, so the owner can later prove a deployed model is theirs. Jia et al.
(CVPR 2021) show that data values remove such a watermark: trigger points contribute nothing to
the accuracy on clean data, so they sit at the bottom of the ranking, and dropping the
lowest-valued points and retraining makes the trigger accuracy fall to chance while the clean
accuracy holds.

* :func:`add_trigger_set` appends a trigger set to a training set and returns the ground truth;
* :func:`watermark_removal` measures, from values computed by the caller, how well each method's
  low values flag the trigger points (AUROC) and what removing the lowest-valued fraction does
  to the trigger and clean accuracy.

The whole study (values, then the measurement) is
:func:`dataworth.experiments.watermark_study`; the poisoning attack lives in
:mod:`dataworth.apps.poison` (its public names are re-exported here) and its study in
:func:`dataworth.experiments.poisoning_study`.

Examples
--------
>>> from sklearn.neighbors import KNeighborsClassifier
>>> from dataworth import value
>>> from dataworth.datasets import load_dataset
>>> digits = load_dataset("digits")
>>> rest, test = digits.split(0.3, random_state=0)
>>> train, valid = rest.split(0.3, random_state=0)
>>> marked, triggers, trigger_set = add_trigger_set(train, 30, random_state=0)
>>> values = {"knn-shapley": value("knn-shapley", marked, valid)}
>>> study = watermark_removal(values, marked, test, triggers, KNeighborsClassifier(1),
...                           fractions=(0.0, 0.05), random_state=0)
>>> float(study.trigger_accuracy["knn-shapley"][0])  # memorised
1.0
>>> bool(study.trigger_accuracy["knn-shapley"][1] < 0.3)  # removed: near chance (0.1)
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dataworth.apps.poison import craft_poison, perturbation_influence, target_loss
from dataworth.data import Dataset, is_categorical
from dataworth.errors import DataworthError
from dataworth.ranking import as_values, detection_auroc, removal_order
from dataworth.result import ValuationResult
from dataworth.utility.model import fit_and_score

__all__ = [
    "DEFAULT_WATERMARK_FRACTIONS",
    "WatermarkStudy",
    "add_trigger_set",
    "craft_poison",
    "perturbation_influence",
    "target_loss",
    "watermark_removal",
]

_F64 = NDArray[np.float64]

#: Fractions of the (watermarked) training rows removed, lowest-valued first.
DEFAULT_WATERMARK_FRACTIONS: tuple[float, ...] = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2)

_PATTERNS = ("noise", "patch")


# ---------------------------------------------------------------------------------- trigger set
def _is_whole(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def add_trigger_set(
    dataset: Dataset,
    n: int,
    random_state: int | None = None,
    *,
    pattern: str | Any = "noise",
    patch_fraction: float = 0.1,
) -> tuple[Dataset, NDArray[np.intp], Dataset]:
    """Append a trigger set of ``n`` points with random labels (Adi et al. 2018).

    Parameters
    ----------
    dataset : Dataset
        Training data with class labels.
    n : int
        Number of trigger points.
    random_state : int, optional
    pattern : {"noise", "patch"} or array of shape (n, n_features), default="noise"
        ``"noise"``: every feature drawn uniformly within its range in ``dataset`` (abstract
        patterns, far from the data), label drawn uniformly from the classes. ``"patch"``:
        copies of random rows with one fixed, randomly chosen set of ``patch_fraction`` of the
        (non-constant) features set to their maximum (a stamp), labelled with a random *other*
        class than the copied row. An array: your own trigger inputs, labels drawn uniformly.
    patch_fraction : float, default=0.1
        Share of the features the patch covers (at least one).

    Returns
    -------
    (Dataset, ndarray of int, Dataset)
        The training set with the trigger points appended at the end (row labels ``N..N+n-1``,
        or ``"trigger<i>"`` for non-integer labels; a new group when the data has groups),
        their positions in it, and the trigger set alone (what the owner keeps to verify the
        watermark).

    Examples
    --------
    >>> from dataworth.datasets import load_dataset
    >>> iris = load_dataset("iris")
    >>> marked, idx, trig = add_trigger_set(iris, 5, random_state=0)
    >>> marked.n_samples, idx.tolist(), trig.n_samples
    (155, [150, 151, 152, 153, 154], 5)
    """
    if not is_categorical(dataset.y):
        raise DataworthError(
            f"a trigger set has random class labels: target {dataset.target_name!r} must hold "
            "class labels."
        )
    classes = np.unique(dataset.y)
    if classes.size < 2:
        raise DataworthError("a trigger set needs at least two classes in the target.")
    if not _is_whole(n) or n < 1:
        raise DataworthError(f"n must be a positive whole number; got {n!r}.")
    n = int(n)
    rng = np.random.default_rng(random_state)
    X = dataset.X
    N, d = X.shape
    lo, hi = X.min(axis=0), X.max(axis=0)
    K = classes.size
    if isinstance(pattern, str):
        if pattern == "noise":
            X_new = rng.uniform(lo, hi, size=(n, d))
            y_new = classes[rng.integers(K, size=n)]
        elif pattern == "patch":
            if not 0 < patch_fraction <= 1:
                raise DataworthError(f"patch_fraction must lie in (0, 1]; got {patch_fraction}.")
            varying = np.flatnonzero(hi > lo)
            if varying.size == 0:
                raise DataworthError("every feature is constant; a patch cannot be stamped.")
            m = max(1, int(round(patch_fraction * varying.size)))
            feats = rng.choice(varying, size=m, replace=False)
            src = rng.choice(N, size=n, replace=n > N)
            X_new = X[src].copy()
            X_new[:, feats] = hi[feats]
            codes = np.searchsorted(classes, dataset.y[src])
            y_new = classes[(codes + rng.integers(1, K, size=n)) % K]
        else:
            raise DataworthError(
                f"pattern must be one of {', '.join(_PATTERNS)} or an array of shape "
                f"({n}, {d}); got {pattern!r}."
            )
    else:
        X_new = np.asarray(pattern, dtype=np.float64)
        if X_new.shape != (n, d):
            raise DataworthError(f"pattern must have shape ({n}, {d}); got {X_new.shape}.")
        y_new = classes[rng.integers(K, size=n)]
    groups = dataset.groups
    if groups is not None:
        new_group: Any = (
            (groups.max() + 1 if groups.size else 0) if groups.dtype.kind in "iuf" else "trigger"
        )
        groups = np.concatenate(
            [groups, np.full(n, new_group, dtype=np.result_type(groups, type(new_group)))]
        )
    labels = (
        np.arange(N + n)
        if dataset.row_labels.dtype.kind in "iu"
        else np.concatenate([dataset.row_labels.astype(str), [f"trigger{i}" for i in range(n)]])
    )
    marked = dataset.replace(
        X=np.vstack([X, X_new]),
        y=np.concatenate([dataset.y, y_new.astype(dataset.y.dtype)]),
        groups=groups,
        row_labels=labels,
    )
    idx = np.arange(N, N + n, dtype=np.intp)
    return marked, idx, marked.take(idx)


# ---------------------------------------------------------------------------------- study
@dataclass(frozen=True, eq=False)
class WatermarkStudy:
    """Detection and removal of a trigger set by each method's low values.

    Attributes
    ----------
    fractions : ndarray
        Fractions of the training rows removed, lowest-valued first.
    auroc : dict of str to float
        Area under the ROC curve of ``-value`` as a detector of the trigger points.
    trigger_accuracy, test_accuracy, recall : dict of str to ndarray
        Per method and fraction: accuracy of the retrained model on the trigger set and on the
        held-out test set, and the share of the trigger points removed.
    random_trigger_accuracy, random_test_accuracy : ndarray
        The same after removing as many rows at random (mean over draws).
    trigger_accuracy_without, test_accuracy_without : float
        The model trained without any trigger point: the trigger accuracy a model that never
        saw the watermark reaches (the real chance level), and its clean accuracy.
    chance : float
        ``1 / n_classes``.
    n_train, n_trigger : int
    seconds : dict of str to float
        Wall time of each method (NaN for values given by the caller).
    """

    fractions: _F64
    auroc: dict[str, float]
    trigger_accuracy: dict[str, _F64]
    test_accuracy: dict[str, _F64]
    recall: dict[str, _F64]
    random_trigger_accuracy: _F64
    random_test_accuracy: _F64
    trigger_accuracy_without: float
    test_accuracy_without: float
    chance: float
    n_train: int
    n_trigger: int
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def methods(self) -> list[str]:
        """Method names, in the order they were given."""
        return list(self.auroc)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "n_train": self.n_train,
            "n_trigger": self.n_trigger,
            "chance": self.chance,
            "trigger_accuracy_without": self.trigger_accuracy_without,
            "test_accuracy_without": self.test_accuracy_without,
            "fractions": self.fractions.tolist(),
            "methods": {
                m: {
                    "auroc": self.auroc[m],
                    "seconds": self.seconds.get(m, float("nan")),
                    "trigger_accuracy": self.trigger_accuracy[m].tolist(),
                    "test_accuracy": self.test_accuracy[m].tolist(),
                    "recall": self.recall[m].tolist(),
                }
                for m in self.methods
            },
            "random": {
                "trigger_accuracy": self.random_trigger_accuracy.tolist(),
                "test_accuracy": self.random_test_accuracy.tolist(),
            },
        }

    def table(self) -> str:
        """Plain text: AUROC per method, then trigger / test accuracy after each removal."""
        head = (
            f"trigger set: {self.n_trigger} of {self.n_train} training rows; "
            f"trigger accuracy of a model never trained on it: "
            f"{self.trigger_accuracy_without:.3f} (1/classes = {self.chance:.3f}); "
            f"its test accuracy: {self.test_accuracy_without:.3f}"
        )
        width = max(15, *(len(m) for m in self.methods))
        lines = [head, "", f"{'method':<{width}} {'AUROC':>6}"]
        lines += [f"{m:<{width}} {self.auroc[m]:>6.3f}" for m in self.methods]
        lines.append("")
        lines.append("trigger accuracy / test accuracy after removing the lowest-valued rows")
        cols = " ".join(f"{f:>11.0%}" for f in self.fractions)
        lines.append(f"{'removed':<{width}} {cols}")
        rows = [(m, self.trigger_accuracy[m], self.test_accuracy[m]) for m in self.methods]
        rows.append(("random", self.random_trigger_accuracy, self.random_test_accuracy))
        for m, trig, acc in rows:
            cells = " ".join(f"{t:>5.2f}/{a:<5.3f}" for t, a in zip(trig, acc, strict=True))
            lines.append(f"{m:<{width}} {cells}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _check_fractions(fractions: Sequence[float], n: int) -> _F64:
    from dataworth.apps.removal import n_removed

    f = np.asarray(fractions, dtype=np.float64)
    if f.ndim != 1 or f.size == 0 or not np.all(np.isfinite(f)):
        raise DataworthError(f"fractions must be a non-empty list of numbers; got {fractions!r}.")
    if f.min() < 0 or f.max() >= 1 or np.any(np.diff(f) <= 0):
        raise DataworthError("fractions must be strictly increasing and lie in [0, 1).")
    if n_removed(float(f.max()), n) >= n:
        raise DataworthError(f"removing {f.max():g} of {n} rows leaves none to train on.")
    return f


def _check_indices(indices: Any, n: int) -> NDArray[np.intp]:
    idx = np.asarray(indices)
    if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
        raise DataworthError("trigger_indices must be a non-empty array of row positions.")
    if idx.min() < 0 or idx.max() >= n or np.unique(idx).size != idx.size:
        raise DataworthError(f"trigger_indices must be distinct positions in [0, {n}).")
    return np.sort(idx).astype(np.intp)


def watermark_removal(
    values: Mapping[str, ValuationResult | Any],
    train: Dataset,
    test: Dataset,
    trigger_indices: Any,
    model: Any = None,
    *,
    fractions: Sequence[float] = DEFAULT_WATERMARK_FRACTIONS,
    n_random: int = 3,
    random_state: int | None = None,
    seconds: Mapping[str, float] | None = None,
) -> WatermarkStudy:
    """How well low values flag a trigger set, and whether removing them removes the watermark.

    For every entry of ``values``: the AUROC of ``-value`` as a detector of the trigger points;
    then, for each fraction, the lowest-valued rows are removed (ties in row order, NaN last),
    the model is retrained, and its accuracy on the trigger set (the watermark) and on the
    held-out ``test`` set is measured, next to removing as many rows at random. Jia et al. (CVPR
    2021): a good method drives the trigger accuracy to chance at a small fraction while the
    test accuracy holds. :func:`dataworth.experiments.watermark_study` values and measures in
    one call.

    Parameters
    ----------
    values : dict of str to ValuationResult or array
        Values of the rows of ``train``, per method (computed any way).
    train : Dataset
        Training rows including the trigger set (from :func:`add_trigger_set`).
    test : Dataset
        Clean held-out rows, for the clean accuracy.
    trigger_indices : array of int
        Positions of the trigger points in ``train``.
    model : estimator, optional
        The watermarked model, retrained after every removal. It should memorise its training
        data (1-nearest neighbour, a random forest, a wide network); default:
        ``KNeighborsClassifier(n_neighbors=1)``.
    fractions : sequence of float
        Increasing fractions in [0, 1) of the rows to remove.
    n_random : int, default=3
        Draws of the random-removal reference.
    random_state : int, optional
    seconds : dict of str to float, optional
        Wall time of each method, reported as given (NaN when missing).
    """
    from sklearn.neighbors import KNeighborsClassifier

    from dataworth.apps.removal import n_removed

    n = train.n_samples
    trig = _check_indices(trigger_indices, n)
    fracs = _check_fractions(fractions, n)
    if not is_categorical(train.y):
        raise DataworthError("watermark_removal needs class labels.")
    if test.n_features != train.n_features:
        raise DataworthError(f"test has {test.n_features} features; train has {train.n_features}.")
    if not values:
        raise DataworthError("values is empty; give at least one method's values.")
    model = KNeighborsClassifier(n_neighbors=1) if model is None else model
    named = dict(values)
    timing = {str(k): float((seconds or {}).get(str(k), np.nan)) for k in named}
    trigger_set = train.take(trig)
    evals = [trigger_set, test]
    is_trigger = np.zeros(n, dtype=bool)
    is_trigger[trig] = True
    cuts = [n_removed(float(f), n) for f in fracs]
    auroc: dict[str, float] = {}
    trig_acc: dict[str, _F64] = {}
    test_acc: dict[str, _F64] = {}
    recall: dict[str, _F64] = {}
    for name, vals in named.items():
        v = as_values(vals, n=n)
        order = removal_order(v)
        auroc[str(name)] = detection_auroc(v, trig)
        scores_ = np.array([fit_and_score(model, train, np.sort(order[c:]), evals) for c in cuts])
        trig_acc[str(name)] = scores_[:, 0]
        test_acc[str(name)] = scores_[:, 1]
        recall[str(name)] = np.array([is_trigger[order[:c]].sum() / trig.size for c in cuts])
    rng = np.random.default_rng(random_state)
    draws = np.array(
        [
            [fit_and_score(model, train, np.sort(rng.permutation(n)[c:]), evals) for c in cuts]
            for _ in range(max(1, int(n_random)))
        ]
    )
    without = fit_and_score(model, train, np.flatnonzero(~is_trigger), evals)
    return WatermarkStudy(
        fractions=fracs,
        auroc=auroc,
        trigger_accuracy=trig_acc,
        test_accuracy=test_acc,
        recall=recall,
        random_trigger_accuracy=draws[:, :, 0].mean(axis=0),
        random_test_accuracy=draws[:, :, 1].mean(axis=0),
        trigger_accuracy_without=without[0],
        test_accuracy_without=without[1],
        chance=1.0 / np.unique(train.y).size,
        n_train=n,
        n_trigger=int(trig.size),
        seconds=timing,
    )
