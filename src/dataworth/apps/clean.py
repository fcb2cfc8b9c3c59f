"""Repairing corrupt data: what to remove, what to show an expert, which labels to fix first.

The workflow (``dataworth clean`` on the command line) on a training set, a valuation set and a
held-out test split:

1. value the training rows with several methods (:func:`dataworth.api.value_many`, by the
   caller: the applications take values; :data:`DEFAULT_METHOD_PARAMS` are ``dataworth clean``'s
   fast settings);
2. :func:`~dataworth.apps.removal.removal_curves` on the held-out split and a cut chosen on the
   valuation set (:func:`~dataworth.apps.removal.suggest_cut`; the valuation score at the cut is
   optimistic, the held-out one is not);
3. :func:`review_list`: the lowest- and highest-valued rows, with features, given label and the
   model's out-of-fold prediction, for a domain expert;
4. :func:`labels_to_fix`: for each misclassified valuation point, the training rows whose
   influence most raises its loss, aggregated into one priority list;
5. with known corruption, :func:`detection_auroc`; and
   :func:`dataworth.experiments.noisy_valuation_comparison` shows what a noisy valuation set does
   to methods that trust it (data-oob does not use it).

Examples
--------
>>> from dataworth.datasets import load_dataset, flip_labels
>>> data = load_dataset("breast_cancer")
>>> data = data.replace(X=(data.X - data.X.mean(0)) / data.X.std(0))  # standardised
>>> rest, test = data.split(0.3, random_state=0)
>>> train, valid = rest.split(0.3, random_state=0)
>>> noisy, flipped = flip_labels(train, 0.1, random_state=0)
>>> from dataworth.api import value_many
>>> values = value_many(["knn-shapley"], noisy, valid)
>>> detection_auroc(values["knn-shapley"], flipped) > 0.8
True
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import clone, is_classifier
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from dataworth.apps.removal import (
    CUT_WARNING,
    DEFAULT_FRACTIONS,
    CutSuggestion,
    RemovalCurves,
    n_removed,
    removal_curves,
    suggest_cut,
)
from dataworth.data import Dataset, is_categorical
from dataworth.errors import DataworthError
from dataworth.jsonable import plain
from dataworth.ranking import as_values, corrupted_mask, detection_auroc, removal_order
from dataworth.result import ValuationResult

__all__ = [
    "CUT_WARNING",
    "DEFAULT_FRACTIONS",
    "DEFAULT_METHOD_PARAMS",
    "CutSuggestion",
    "LabelsToFix",
    "RemovalCurves",
    "ReviewList",
    "detection_auroc",
    "detection_recall",
    "labels_to_fix",
    "out_of_fold_predictions",
    "records_frame",
    "removal_curves",
    "residual_tolerance",
    "review_list",
    "suggest_cut",
]

_F64 = NDArray[np.float64]

#: ``dataworth clean``'s fast settings for a method whose parameters are not given (seconds on a
#: few hundred rows); the experiments use them too.
DEFAULT_METHOD_PARAMS: dict[str, dict[str, Any]] = {
    "knn-shapley": {"k": 5},
    "data-oob": {"budget": 100},
    "tmc-shapley": {"budget": 20},
    "permutation-shapley": {"budget": 20},
    "beta-shapley": {"budget": 20},
    "banzhaf": {"budget": 500},
    "class-wise-shapley": {"budget": 20},
}


def records_frame(records: list[dict[str, Any]], columns: list[str] | None = None) -> Any:
    """``records`` as a pandas DataFrame (``to_frame`` of the results here; needs pandas)."""
    try:
        import pandas as pd
    except ImportError:
        raise DataworthError('to_frame needs pandas: pip install "dataworth[pandas]"') from None
    return pd.DataFrame.from_records(records, columns=columns)


# ---------------------------------------------------------------------------------- detection
def detection_recall(values: ValuationResult | Any, corrupted: Any, fraction: float = 0.1) -> float:
    """Share of the corrupted rows among the lowest-valued ``fraction`` of rows (recall at k).

    Examples
    --------
    >>> detection_recall([0.3, -0.2, 0.1, 0.5, 0.0], [1, 4], fraction=0.2)
    0.5
    """
    v = as_values(values)
    mask = corrupted_mask(corrupted, v.size)
    if not 0 <= fraction <= 1:
        raise DataworthError(f"fraction must lie in [0, 1]; got {fraction}.")
    if not mask.any():
        raise DataworthError("detection_recall needs at least one corrupted row.")
    flagged = removal_order(v)[: n_removed(fraction, v.size)]
    return float(mask[flagged].sum() / mask.sum())


# ---------------------------------------------------------------------------------- review
@dataclass(frozen=True, eq=False)
class ReviewList:
    """The lowest- and highest-valued rows, for a domain expert to look at.

    Attributes
    ----------
    positions : ndarray of int
        Training positions: the lowest-valued first (lowest first), then the highest (highest
        first).
    side : ndarray of str
        ``"lowest"`` or ``"highest"`` per entry.
    row_labels, values, given, predicted : ndarray
        Row label, value, the label in the data and the model's out-of-fold prediction.
    features : ndarray of shape (len, n_features)
        The rows' features (as given to :func:`review_list`).
    feature_names : tuple of str
    prediction : str
        How ``predicted`` was made (``"5-fold out-of-fold"`` or ``"in-sample"``).
    differs : ndarray of bool
        Whether the given label disagrees with the prediction: ``given != predicted`` for class
        labels; for a real-valued target, ``|given - predicted|`` above ``differs_tol``.
    differs_tol : float or None
        For a real-valued target: twice the root mean square of the out-of-fold residuals over
        every training row (a residual that large is unusual); None for class labels.
    """

    positions: NDArray[np.intp]
    side: NDArray[np.str_]
    row_labels: NDArray[Any]
    values: _F64
    given: NDArray[Any]
    predicted: NDArray[Any]
    features: _F64
    feature_names: tuple[str, ...]
    prediction: str
    differs: NDArray[np.bool_] = field(default_factory=lambda: np.empty(0, dtype=bool))
    differs_tol: float | None = None

    def __post_init__(self) -> None:
        if self.differs.size != self.positions.size:
            object.__setattr__(self, "differs", _differs(self.given, self.predicted, None))

    def __len__(self) -> int:
        return int(self.positions.size)

    def records(self) -> list[dict[str, Any]]:
        """One dict per entry: side, row, value, given, predicted, differs, then the features."""
        out = []
        for i in range(len(self)):
            rec: dict[str, Any] = {
                "side": str(self.side[i]),
                "row": plain(self.row_labels[i]),
                "value": float(self.values[i]),
                "given": plain(self.given[i]),
                "predicted": plain(self.predicted[i]),
                "differs": bool(self.differs[i]),
            }
            names, row = self.feature_names, self.features[i]
            rec.update((name, float(x)) for name, x in zip(names, row, strict=True))
            out.append(rec)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "prediction": self.prediction,
            "differs_tol": self.differs_tol,
            "rows": self.records(),
        }

    def to_frame(self) -> Any:
        """A pandas DataFrame of :meth:`records` (needs pandas)."""
        return records_frame(
            self.records(),
            ["side", "row", "value", "given", "predicted", "differs", *self.feature_names],
        )


def _differs(given: NDArray[Any], predicted: NDArray[Any], tol: float | None) -> NDArray[np.bool_]:
    """``given != predicted`` (class labels, ``tol`` None) or ``|given - predicted| > tol``."""
    if tol is None:
        return np.asarray(given != predicted, dtype=bool).reshape(np.shape(given))
    residual = np.abs(np.asarray(given, dtype=np.float64) - np.asarray(predicted, np.float64))
    return np.asarray(residual > tol, dtype=bool)


def residual_tolerance(y: NDArray[Any], predicted: NDArray[Any]) -> float:
    """Twice the root mean square residual ``y - predicted``: larger residuals are unusual.

    Examples
    --------
    >>> residual_tolerance(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))  # 2 sqrt(1/3)
    1.1547005383792515
    """
    r = np.asarray(y, dtype=np.float64) - np.asarray(predicted, dtype=np.float64)
    return float(2.0 * np.sqrt(np.mean(r**2))) if r.size else 0.0


def out_of_fold_predictions(
    model: Any, ds: Dataset, cv: int = 5, random_state: int | None = None
) -> tuple[NDArray[Any], str]:
    """Each row's prediction by a model fitted without it, and how it was made.

    ``cv``-fold cross-validation (stratified for classifiers, folds capped by the smallest
    class); in-sample when fewer than 2 folds are possible. Returns ``(predictions, how)`` with
    ``how`` like ``"5-fold out-of-fold"`` or ``"in-sample"``.
    """
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict

    classifier = is_classifier(model)
    folds = cv
    if classifier:
        _, counts = np.unique(ds.y, return_counts=True)
        folds = min(cv, int(counts.min()))
    folds = min(folds, ds.n_samples)
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        if folds < 2:
            return np.asarray(clone(model).fit(ds.X, ds.y).predict(ds.X)), "in-sample"
        splitter = (
            StratifiedKFold(folds, shuffle=True, random_state=random_state)
            if classifier
            else KFold(folds, shuffle=True, random_state=random_state)
        )
        pred = cross_val_predict(clone(model), ds.X, ds.y, cv=splitter)
    return np.asarray(pred), f"{folds}-fold out-of-fold"


def review_list(
    values: ValuationResult | Any,
    train: Dataset,
    model: Any = None,
    k: int = 10,
    *,
    features: Any = None,
    cv: int = 5,
    random_state: int | None = None,
    predictions: tuple[Any, str] | None = None,
) -> ReviewList:
    """The ``k`` lowest- and ``k`` highest-valued rows with features, given and predicted label.

    The prediction is out-of-fold (``cv``-fold cross-validation, stratified for classifiers), so
    a row's own, possibly wrong, label does not vote for itself; a low-valued row whose given
    label disagrees with the prediction is a likely label error.

    Parameters
    ----------
    values : ValuationResult or array of shape (n,)
    train : Dataset
    model : estimator, optional
        Defaults to logistic regression for class labels, linear regression otherwise.
    k : int, default=10
        Rows on each side (fewer when ``2 k > n``; a row is listed once).
    features : array of shape (n, n_features), optional
        Features to show (e.g. before standardisation); default ``train.X``.
    cv : int, default=5
        Folds for the out-of-fold prediction (capped by the smallest class; in-sample below 2).
    random_state : int, optional
        Seed of the folds.
    predictions : (array of shape (n,), str), optional
        Predictions of every training row and how they were made (as returned by
        :func:`out_of_fold_predictions`), instead of computing them.

    A row is marked ``differs`` when its given label is not the predicted one; for a
    real-valued target, when its residual exceeds twice the root mean square residual over all
    rows (:func:`residual_tolerance`), since predictions of a real value are never exact.

    Examples
    --------
    >>> from dataworth.datasets import load_dataset
    >>> ds = load_dataset("iris")
    >>> v = ds.X[:, 0]  # any score per row
    >>> r = review_list(v, ds, k=2, random_state=0)
    >>> r.side.tolist(), r.values.tolist()
    (['lowest', 'lowest', 'highest', 'highest'], [4.3, 4.4, 7.9, 7.7])
    """
    from dataworth.models import default_model

    v = as_values(values, n=train.n_samples)
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise DataworthError(f"k must be a positive whole number; got {k!r}.")
    if not isinstance(cv, (int, np.integer)) or cv < 1:
        raise DataworthError(f"cv must be a positive whole number; got {cv!r}.")
    shown = train.X if features is None else np.asarray(features, dtype=np.float64)
    if shown.shape != train.X.shape:
        raise DataworthError(f"features must have shape {train.X.shape}; got {shown.shape}.")
    model = default_model(train.y, random_state=random_state) if model is None else model
    low = removal_order(v)[: min(int(k), v.size)]
    listed = set(low.tolist())
    high = [i for i in removal_order(v, lowest_first=False)[: int(k)].tolist() if i not in listed]
    positions = np.concatenate([low, np.asarray(high, dtype=np.intp)]).astype(np.intp)
    side = np.array(["lowest"] * low.size + ["highest"] * len(high))
    if predictions is None:
        predicted, how = out_of_fold_predictions(model, train, cv, random_state)
    else:
        predicted, how = np.asarray(predictions[0]), str(predictions[1])
        if predicted.shape != (train.n_samples,):
            raise DataworthError(
                f"predictions must have one entry per training row ({train.n_samples}); "
                f"got shape {predicted.shape}."
            )
    tol = None if is_categorical(train.y) else residual_tolerance(train.y, predicted)
    return ReviewList(
        positions=positions,
        side=side,
        row_labels=train.row_labels[positions],
        values=v[positions],
        given=train.y[positions],
        predicted=predicted[positions],
        features=shown[positions],
        feature_names=train.feature_names,
        prediction=how,
        differs=_differs(train.y[positions], predicted[positions], tol),
        differs_tol=tol,
    )


# ---------------------------------------------------------------------------------- influence
@dataclass(frozen=True, eq=False)
class LabelsToFix:
    """Training rows to check first: most responsible for the misclassified valuation points.

    Priority of training row ``i``: ``score_i = sum_j max(0, I(z_i, loss_j))`` over the
    misclassified valuation points ``j``, where ``I(z, loss_j) = -grad L_j^T H^-1 grad L(z)``
    (Koh & Liang 2017) is positive when up-weighting ``z`` raises ``j``'s loss; removing ``z``
    lowers it by about ``I / n``. ``votes_i`` counts the misclassified points for which row ``i``
    is among their ``per_point`` most harmful rows. Rows are listed by score (highest first; ties
    in position order); rows that harm no misclassified point are not listed.

    Attributes
    ----------
    positions : ndarray of int
        Training positions in priority order.
    row_labels, scores, share, votes, given, predicted : ndarray
        Row label, summed harmful influence, its share of the total, votes, the label in the
        data and the model's prediction (see ``prediction``).
    misclassified : ndarray
        Row labels of the misclassified valuation points.
    n_valid : int
    per_point : int
    """

    positions: NDArray[np.intp]
    row_labels: NDArray[Any]
    scores: _F64
    share: _F64
    votes: NDArray[np.int64]
    given: NDArray[Any]
    predicted: NDArray[Any]
    misclassified: NDArray[Any]
    n_valid: int
    per_point: int
    prediction: str = "in-sample"
    rule: str = (
        "score = sum over misclassified valuation points of max(0, influence on their loss); "
        "votes = misclassified points for which the row is among their per_point most harmful"
    )

    def __len__(self) -> int:
        return int(self.positions.size)

    def records(self) -> list[dict[str, Any]]:
        """One dict per row: row, score, share, votes, given, predicted."""
        return [
            {
                "row": plain(self.row_labels[i]),
                "score": float(self.scores[i]),
                "share": float(self.share[i]),
                "votes": int(self.votes[i]),
                "given": plain(self.given[i]),
                "predicted": plain(self.predicted[i]),
            }
            for i in range(len(self))
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "rule": self.rule,
            "prediction": self.prediction,
            "n_valid": self.n_valid,
            "misclassified": [plain(x) for x in self.misclassified],
            "per_point": self.per_point,
            "rows": self.records(),
        }

    def to_frame(self) -> Any:
        """A pandas DataFrame of :meth:`records` (needs pandas)."""
        return records_frame(
            self.records(), ["row", "score", "share", "votes", "given", "predicted"]
        )


def labels_to_fix(
    train: Dataset,
    valid: Dataset,
    model: Any = None,
    *,
    top: int | None = None,
    per_point: int = 10,
    damping: float = 0.0,
    predictions: tuple[Any, str] | None = None,
) -> LabelsToFix:
    """Training rows most responsible (by influence) for the misclassified valuation points.

    The model (scikit-learn ``LogisticRegression``, the default) is fitted on ``train``; for
    every valuation point it misclassifies, the influence of every training row on that point's
    loss comes from :func:`dataworth.influence.influence_matrix` with the exact Hessian
    (:class:`~dataworth.influence.LinearInfluence`). The aggregation rule is in
    :class:`LabelsToFix`.

    Parameters
    ----------
    train, valid : Dataset
        Class labels.
    model : LogisticRegression, optional
        Default: logistic regression (max_iter=1000).
    top : int, optional
        Keep only the first ``top`` rows.
    per_point : int, default=10
        Most harmful rows per misclassified point that get a vote.
    damping : float, default=0.0
        Added to the Hessian diagonal.
    predictions : (array of shape (n,), str), optional
        The ``predicted`` column and how it was made, e.g. from
        :func:`out_of_fold_predictions` (so it matches :func:`review_list`); default: the fitted
        model's in-sample prediction.

    Examples
    --------
    >>> import numpy as np
    >>> from dataworth.data import Dataset
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(80, 2)); y = (X[:, 0] > 0).astype(int)
    >>> y[:4] = 1 - y[:4]  # four flipped labels
    >>> valid = Dataset.from_arrays(rng.normal(size=(40, 2)), [0] * 40)  # hard valuation set
    >>> fix = labels_to_fix(Dataset.from_arrays(X, y), valid, top=8)
    >>> len(fix) <= 8 and bool(fix.scores[0] >= fix.scores[-1])
    True
    """
    from dataworth.influence import LinearInfluence, influence_matrix
    from dataworth.models import default_model

    if not is_categorical(train.y):
        raise DataworthError(
            "labels_to_fix looks for misclassified valuation points: it needs class labels; "
            f"target {train.target_name!r} is real-valued."
        )
    if train.n_features != valid.n_features:
        raise DataworthError(
            f"train has {train.n_features} features but valid has {valid.n_features}."
        )
    if top is not None and (not isinstance(top, (int, np.integer)) or top < 1):
        raise DataworthError(f"top must be a positive whole number; got {top!r}.")
    if not isinstance(per_point, (int, np.integer)) or per_point < 1:
        raise DataworthError(f"per_point must be a positive whole number; got {per_point!r}.")
    model = default_model(train.y) if model is None else model
    infl = LinearInfluence(model, train.X, train.y, damping=damping)
    fitted = infl.model_
    wrong = np.flatnonzero(fitted.predict(valid.X) != valid.y)
    n = train.n_samples
    scores = np.zeros(n)
    votes = np.zeros(n, dtype=np.int64)
    if wrong.size:
        known = np.isin(valid.y[wrong], infl.classes_)
        wrong = wrong[known]  # a class never seen in training has no loss gradient
    if wrong.size:
        matrix = influence_matrix(infl, valid.X[wrong], valid.y[wrong])  # (n, m)
        harm = np.maximum(matrix, 0.0)
        scores = harm.sum(axis=1)
        m = min(int(per_point), n)
        top_rows = np.argsort(-matrix, axis=0, kind="stable")[:m]  # (m, n_wrong)
        positive = np.take_along_axis(matrix, top_rows, axis=0) > 0
        np.add.at(votes, top_rows[positive], 1)
    order = np.argsort(-scores, kind="stable")
    order = order[scores[order] > 0]
    if top is not None:
        order = order[: int(top)]
    total = float(scores.sum())
    if predictions is None:
        how = "in-sample"
        predicted = fitted.predict(train.X[order]) if order.size else train.y[:0]
    else:
        pred_all, how = np.asarray(predictions[0]), str(predictions[1])
        if pred_all.shape != (n,):
            raise DataworthError(
                f"predictions must have one entry per training row ({n}); got {pred_all.shape}."
            )
        predicted = pred_all[order]
    return LabelsToFix(
        positions=order.astype(np.intp),
        row_labels=train.row_labels[order],
        scores=scores[order],
        share=scores[order] / total if total > 0 else np.zeros(order.size),
        votes=votes[order],
        given=train.y[order],
        predicted=np.asarray(predicted),
        misclassified=valid.row_labels[wrong],
        n_valid=valid.n_samples,
        per_point=int(per_point),
        prediction=how,
    )
