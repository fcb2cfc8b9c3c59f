"""Model debugging with data values: what helps or hurts one class, and one wrong prediction.

Two workflows from TransferLab, "Applications of data valuation", section 2.1:

* **One class at a time.** :func:`class_debug` reads values of the training rows computed against
  the valuation rows of one class ``c`` only (:func:`class_valuation_set`), so a row's value is its
  contribution to the model's accuracy on class ``c`` (its recall). Rows with the highest values
  help class ``c``, rows with negative values hurt it. Among the ``top`` most valuable rows (value >
  0), two kinds are flagged as possible **confounders**: rows *labelled* with another class (the
  paper's case: a row of class ``d`` should not be what makes ``c`` right; the model may be using a
  feature the two share, such as a background or a data source), and rows labelled ``c`` whose
  features point to another class (confident learning on cross-validated probabilities: mislabelled
  copies of other classes' rows raise the recall of ``c`` by dragging the boundary into the other
  class, so they rank among the most valuable rows for ``c``). Banzhaf values (``"banzhaf"``) bring
  such rows to the top more reliably than TMC or KNN Shapley in our checks; KNN-Shapley never gives
  a row labelled with another class a positive value (by its closed form), so with it only the
  second kind can appear.
* **One wrong prediction.** :func:`explain_misclassified` lists the training rows with the
  largest influence on the loss of one test row (Koh & Liang 2017, exact Hessian for
  scikit-learn's linear and logistic regression, through :mod:`dataworth.influence`), with their
  labels and features, so they can be inspected. :func:`misclassified_rows` finds the candidates.

Results hold :class:`RowTable` objects: named columns of equal length (position, row label,
value or influence, label, the checks, the data source when the dataset has groups, then the
features), with ``to_records()`` and ``to_frame()`` (pandas).

Examples
--------
>>> from dataworth.datasets import load_dataset
>>> train, test = load_dataset("iris").split(0.3, random_state=1)
>>> misclassified_rows(train, test).tolist()
[31]
>>> ex = explain_misclassified(train, test, 31, top=3)
>>> ex.misclassified, len(ex.harmful), ex.harmful.names[:4]
(True, 3, ['position', 'row', 'influence', 'label'])
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import clone, is_classifier

from dataworth.data import Dataset, is_categorical
from dataworth.errors import DataworthError
from dataworth.jsonable import json_ready, plain
from dataworth.ranking import as_values
from dataworth.result import ValuationResult

__all__ = [
    "ClassDebugResult",
    "MisclassifiedExplanation",
    "RowTable",
    "class_debug",
    "class_valuation_set",
    "explain_misclassified",
    "misclassified_rows",
]


# ------------------------------------------------------------------------------ tables
@dataclass(frozen=True)
class RowTable:
    """Named columns of equal length: a small, dependency-free data frame.

    Examples
    --------
    >>> import numpy as np
    >>> t = RowTable({"row": np.array([3, 1]), "value": np.array([0.5, -0.2])})
    >>> len(t), t["row"].tolist(), t.to_records()[1]
    (2, [3, 1], {'row': 1, 'value': -0.2})
    """

    columns: dict[str, NDArray[Any]]

    def __post_init__(self) -> None:
        lengths = {len(c) for c in self.columns.values()}
        if len(lengths) > 1:
            raise DataworthError("every column of a RowTable must have the same length.")

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def __getitem__(self, name: str) -> NDArray[Any]:
        return self.columns[name]

    @property
    def names(self) -> list[str]:
        """Column names, in order."""
        return list(self.columns)

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per row, with plain Python values (JSON-ready except for NaN)."""
        cols = {k: np.asarray(v).tolist() for k, v in self.columns.items()}
        return [{k: cols[k][i] for k in cols} for i in range(len(self))]

    def to_frame(self) -> Any:
        """A pandas DataFrame (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise DataworthError('to_frame needs pandas: pip install "dataworth[pandas]"') from None
        return pd.DataFrame(self.columns)


def _row_table(
    data: Dataset,
    positions: NDArray[np.intp],
    score_name: str,
    scores: NDArray[np.float64],
    extra: dict[str, NDArray[Any]] | None = None,
) -> RowTable:
    cols: dict[str, NDArray[Any]] = {
        "position": positions.astype(np.int64),
        "row": data.row_labels[positions],
        score_name: scores[positions],
        "label": data.y[positions],
    }
    for name, col in (extra or {}).items():
        cols[name] = col[positions]
    if data.groups is not None:
        cols["group"] = data.groups[positions]
    for j, name in enumerate(data.feature_names):
        key = name if name not in cols else f"feature:{name}"
        cols[key] = data.X[positions, j]
    return RowTable(cols)


# ------------------------------------------------------------------------------ class debug
@dataclass(frozen=True)
class ClassDebugResult:
    """The answer of :func:`class_debug`.

    Attributes
    ----------
    cls : label
        The class the valuation set was restricted to.
    method : str
    values : ValuationResult
        Every training row's value against the valuation rows of ``cls``.
    n_valid : int
        Valuation rows of ``cls``.
    recall : float
        Accuracy of ``model`` (fitted on all training rows) on those rows.
    helpers : RowTable
        The ``top`` most valuable rows with a positive value, highest first.
    hurters : RowTable
        The ``top`` least valuable rows with a negative value, lowest first.
    confounders : RowTable
        The rows of ``helpers`` that are labelled with another class or that the
        cross-validated model assigns to another class, with a ``reason`` column.
    looks_like : ndarray
        The class each training row's features point to, by confident learning on
        cross-validated probabilities (see :func:`class_debug`); empty when it could not be
        computed (see ``notes``).
    p_label : ndarray of float
        Cross-validated probability of each row's own label (NaN without ``predict_proba``).
    other_share_top, other_share_all : float
        Share of rows labelled with another class among ``helpers``, and among all rows.
    notes : tuple of str
    """

    cls: Any
    method: str
    values: ValuationResult = field(repr=False)
    n_valid: int
    recall: float
    helpers: RowTable = field(repr=False)
    hurters: RowTable = field(repr=False)
    confounders: RowTable = field(repr=False)
    looks_like: NDArray[Any] = field(repr=False)
    p_label: NDArray[np.float64] = field(repr=False)
    other_share_top: float
    other_share_all: float
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""

        return {
            "class": plain(self.cls),
            "method": self.method,
            "n_valid": self.n_valid,
            "recall": self.recall,
            "helpers": json_ready(self.helpers.to_records()),
            "hurters": json_ready(self.hurters.to_records()),
            "confounders": json_ready(self.confounders.to_records()),
            "other_share_top": self.other_share_top,
            "other_share_all": self.other_share_all,
            "values": json_ready(self.values.values),
            "notes": list(self.notes),
        }


def _match_class(y: NDArray[Any], cls: Any, name: str) -> tuple[NDArray[np.bool_], Any]:
    """Rows of ``y`` equal to ``cls`` (compared as text when the types differ) and the label."""
    y = np.asarray(y)
    hit: NDArray[np.bool_] = np.zeros(y.shape[0], dtype=bool)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hit = np.asarray(y == cls, dtype=bool).reshape(-1)
    except (TypeError, ValueError):
        pass
    if hit.shape != y.shape or not hit.any():
        hit = np.asarray(y.astype(str) == str(cls), dtype=bool)
    if not hit.any():
        shown = ", ".join(map(str, np.unique(y)[:20].tolist()))
        raise DataworthError(
            f"class {cls!r} does not occur in the {name} labels; they are: {shown}."
        )
    return hit, y[np.flatnonzero(hit)[0]]


def _label_check(
    model: Any, train: Dataset, random_state: int | None
) -> tuple[NDArray[Any], NDArray[np.float64], str]:
    """For each training row: the class its features point to, and its label's probability.

    Confident learning (Northcutt, Jiang & Chuang 2021): with cross-validated probabilities
    ``p`` (each row predicted by a model fitted without its fold) and per-class thresholds
    ``t_j`` = mean of ``p_j`` over the rows labelled ``j``, a row labelled ``c`` *looks like*
    class ``j != c`` when ``p_j >= t_j`` (the most probable such ``j``); otherwise it looks like
    its label. The class thresholds make the check fair to rare classes. A model without
    ``predict_proba`` falls back to the cross-validated prediction. Returns empty arrays and a
    reason when a class is too small to cross-validate.
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    classes, codes, counts = np.unique(train.y, return_inverse=True, return_counts=True)
    codes = codes.reshape(-1)
    n_splits = int(min(5, counts.min()))
    if n_splits < 2:
        return (
            np.empty(0, dtype=train.y.dtype),
            np.empty(0),
            (
                "a class has a single training row, so labels cannot be checked by "
                "cross-validation; only rows labelled with another class are flagged."
            ),
        )
    cv = StratifiedKFold(n_splits, shuffle=True, random_state=random_state)
    n = train.n_samples
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not hasattr(model, "predict_proba"):
            pred = cross_val_predict(clone(model), train.X, train.y, cv=cv)
            return (
                np.asarray(pred),
                np.full(n, np.nan),
                (
                    f"{type(model).__name__} has no predict_proba; rows are checked against its "
                    "cross-validated prediction instead of by confident learning."
                ),
            )
        proba = cross_val_predict(clone(model), train.X, train.y, cv=cv, method="predict_proba")
    proba = np.asarray(proba, dtype=np.float64)
    thresholds = np.array([proba[codes == j, j].mean() for j in range(classes.size)])
    rows = np.arange(n)
    candidate = proba >= thresholds
    candidate[rows, codes] = False
    masked = np.where(candidate, proba, -np.inf)
    best = masked.argmax(axis=1)
    looks = np.where(candidate.any(axis=1), best, codes)
    return classes[looks], proba[rows, codes], ""


def class_valuation_set(valid: Dataset, cls: Any) -> Dataset:
    """The valuation rows of class ``cls`` (matched as in :func:`class_debug`): the set to value
    the training rows against before :func:`class_debug`.

    Examples
    --------
    >>> from dataworth.datasets import load_dataset
    >>> _, valid = load_dataset("iris").split(0.3, random_state=0)
    >>> class_valuation_set(valid, "2").n_samples
    15
    """
    if not isinstance(valid, Dataset):
        raise DataworthError("valid must be a Dataset.")
    if not is_categorical(valid.y):
        raise DataworthError(
            f"class_debug needs class labels; target {valid.target_name!r} holds real values."
        )
    in_class, _ = _match_class(valid.y, cls, "valuation")
    return valid.take(np.flatnonzero(in_class))


def class_debug(
    values: ValuationResult | ArrayLike,
    train: Dataset,
    valid: Dataset,
    cls: Any,
    model: Any = None,
    *,
    top: int = 10,
    random_state: int | None = None,
) -> ClassDebugResult:
    """Which training rows help or hurt one class, and which of the helpers look suspicious.

    Parameters
    ----------
    values : ValuationResult or array of shape (n_train,)
        The values of the training rows against the valuation rows of class ``cls`` only
        (:func:`class_valuation_set`), so that a row's value is its contribution to the
        accuracy on that class; e.g. ``dataworth.value("banzhaf", train,
        class_valuation_set(valid, cls))``.
    train, valid : Dataset
        Training rows (valued) and valuation rows (those of class ``cls`` give the recall).
    cls : label
        The class to debug; matched against the labels, as text when the types differ
        (``"1"`` finds the integer label 1).
    model : classifier, optional
        The model for the cross-validated check and the recall (default: logistic regression).
    top : int, default=10
        Rows listed as helpers and hurters; confounders are looked for among the helpers. A
        helper is flagged when it is labelled with another class, or labelled ``cls`` while
        its features point to another class ``j``: its cross-validated probability of ``j``
        (from ``model`` fitted without its fold) is at least the mean probability of ``j``
        over the rows labelled ``j`` (confident learning, Northcutt et al. 2021; without
        ``predict_proba``: the cross-validated prediction is ``j``).
    random_state : int, optional
        Seed for the cross-validation folds.

    Returns
    -------
    ClassDebugResult

    Examples
    --------
    >>> from dataworth import value
    >>> from dataworth.datasets import load_dataset
    >>> train, valid = load_dataset("iris").split(0.3, random_state=0)
    >>> values = value("knn-shapley", train, class_valuation_set(valid, 2), k=5)
    >>> res = class_debug(values, train, valid, 2, top=5)
    >>> res.n_valid, len(res.helpers), res.helpers["label"].tolist()
    (15, 5, [2, 2, 2, 2, 2])
    """
    from dataworth.models import default_model

    if not isinstance(train, Dataset) or not isinstance(valid, Dataset):
        raise DataworthError("train and valid must be Dataset objects.")
    if not is_categorical(train.y):
        raise DataworthError(
            f"class_debug needs class labels; target {train.target_name!r} holds real values."
        )
    if not isinstance(top, (int, np.integer)) or top < 1:
        raise DataworthError(f"top must be a positive whole number; got {top!r}.")
    in_class, label = _match_class(valid.y, cls, "valuation")
    notes: list[str] = []
    train_hit = np.asarray(train.y == label, dtype=bool).reshape(-1)
    if not train_hit.any():
        notes.append(f"no training row is labelled {label!r}.")
    model = default_model(train.y, random_state=random_state) if model is None else model
    if not is_classifier(model):
        raise DataworthError(f"class_debug needs a classifier; got {type(model).__name__}.")
    valid_c = valid.take(np.flatnonzero(in_class))
    if isinstance(values, ValuationResult):
        if values.kind != "row" or len(values) != train.n_samples:
            raise DataworthError("class_debug needs one value per training row.")
        result = values
    else:
        result = ValuationResult(as_values(values, n=train.n_samples), labels=train.row_labels)
    v = np.asarray(result.values, dtype=np.float64)

    fitted = clone(model).fit(train.X, train.y)
    recall = float(np.mean(fitted.predict(valid_c.X) == label))
    looks_like, p_label, why = _label_check(model, train, random_state)
    if why:
        notes.append(why)

    order = result.top(len(result))  # highest first, NaN last, ties by position
    k = int(min(top, len(result)))
    helpers = np.asarray([i for i in order[:k] if v[i] > 0], dtype=np.intp)
    low = result.bottom(len(result))
    hurters = np.asarray([i for i in low[:k] if v[i] < 0], dtype=np.intp)

    other = ~train_hit
    looks_other = (
        (looks_like != train.y) & train_hit if looks_like.size else np.zeros(train.n_samples, bool)
    )
    flagged = np.asarray([i for i in helpers if other[i] or looks_other[i]], dtype=np.intp)
    reasons = np.empty(train.n_samples, dtype=object)
    reasons[:] = ""
    for i in flagged:
        if other[i]:
            reasons[i] = f"labelled {plain(train.y[i])!r}, not {plain(label)!r}"
        else:
            p = "" if np.isnan(p_label[i]) else f"; P(label) = {p_label[i]:.2f}"
            reasons[i] = (
                f"labelled {plain(label)!r} but looks like {plain(looks_like[i])!r} "
                f"(cross-validated{p})"
            )
    extra: dict[str, NDArray[Any]] = {}
    if looks_like.size:
        extra["looks_like"] = looks_like
        extra["p_label"] = p_label
    conf_extra = {**extra, "reason": reasons}
    return ClassDebugResult(
        cls=label,
        method=result.method,
        values=result,
        n_valid=valid_c.n_samples,
        recall=recall,
        helpers=_row_table(train, helpers, "value", v, extra),
        hurters=_row_table(train, hurters, "value", v, extra),
        confounders=_row_table(train, flagged, "value", v, conf_extra),
        looks_like=looks_like,
        p_label=p_label,
        other_share_top=float(np.mean(other[helpers])) if helpers.size else math.nan,
        other_share_all=float(np.mean(other)),
        notes=tuple(notes) + tuple(result.metadata.get("notes", [])),
    )


# ------------------------------------------------------------------------------ one point
@dataclass(frozen=True)
class MisclassifiedExplanation:
    """The answer of :func:`explain_misclassified`.

    Attributes
    ----------
    row : int
        Position of the test row.
    label, predicted : label or float
        Its true label and the model's prediction.
    misclassified : bool or None
        ``predicted != label``; ``None`` for regression (look at ``error``).
    error : float
        For regression, ``predicted - label``; NaN for classification.
    test_features : dict
        Feature name -> value of the test row.
    harmful : RowTable
        Training rows whose up-weighting most *raises* the test row's loss (largest influence
        first): removing them would most lower it.
    helpful : RowTable
        Training rows whose up-weighting most lowers it (most negative influence first).
    influence : ndarray of shape (n_train,)
        ``I(z_i, test loss) = -grad L(test)^T H^-1 grad L(z_i)`` for every training row; removing
        row ``i`` changes the loss by about ``-influence[i] / n``.
    model : str
        Class name of the fitted model.
    """

    row: int
    label: Any
    predicted: Any
    misclassified: bool | None
    error: float
    test_features: dict[str, float]
    harmful: RowTable = field(repr=False)
    helpful: RowTable = field(repr=False)
    influence: NDArray[np.float64] = field(repr=False)
    model: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "row": self.row,
            "label": plain(self.label),
            "predicted": plain(self.predicted),
            "misclassified": self.misclassified,
            "error": json_ready(self.error),
            "test_features": self.test_features,
            "harmful": self.harmful.to_records(),
            "helpful": self.helpful.to_records(),
            "model": self.model,
        }


def _influence_model(model: Any, train: Dataset, damping: float) -> Any:
    from dataworth.influence import LinearInfluence
    from dataworth.models import default_model

    model = default_model(train.y) if model is None else model
    return LinearInfluence(model, train.X, train.y, damping=damping)


def misclassified_rows(train: Dataset, test: Dataset, model: Any = None) -> NDArray[np.intp]:
    """Positions of the test rows that ``model`` (fitted on ``train``) gets wrong.

    Examples
    --------
    >>> import numpy as np
    >>> train = Dataset.from_arrays([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    >>> test = Dataset.from_arrays([[0.2], [2.8], [0.1]], [0, 0, 1])
    >>> misclassified_rows(train, test).tolist()
    [1, 2]
    """
    from dataworth.models import check_target, default_model

    if not is_categorical(train.y):
        raise DataworthError(
            f"misclassified_rows needs class labels; target {train.target_name!r} holds real "
            "values."
        )
    model = default_model(train.y) if model is None else model
    check_target(model, train)
    fitted = clone(model).fit(train.X, train.y)
    return np.flatnonzero(fitted.predict(test.X) != test.y).astype(np.intp)


def explain_misclassified(
    train: Dataset,
    test: Dataset,
    row: int,
    model: Any = None,
    top: int = 5,
    *,
    damping: float = 0.0,
) -> MisclassifiedExplanation:
    """The training rows most influential for one test row's loss, with their features.

    Uses :class:`dataworth.influence.LinearInfluence` (exact Hessian) and
    :func:`dataworth.influence.influence_matrix`; see ``dataworth influencers`` for the same
    listing on the command line.

    Parameters
    ----------
    train, test : Dataset
    row : int
        Position of the test row (negative counts from the end).
    model : estimator, optional
        scikit-learn ``LogisticRegression`` (default for labels), ``LinearRegression`` or
        ``Ridge``.
    top : int, default=5
        Rows listed on each side.
    damping : float, default=0.0
        Added to the Hessian diagonal.

    Returns
    -------
    MisclassifiedExplanation
        Works for a correctly classified row as well (``misclassified`` is then ``False``).
    """
    from dataworth.influence import influence_matrix

    if not isinstance(train, Dataset) or not isinstance(test, Dataset):
        raise DataworthError("train and test must be Dataset objects.")
    if test.feature_names != train.feature_names:
        raise DataworthError("test must have the same feature columns as train.")
    if not isinstance(row, (int, np.integer)) or not -test.n_samples <= row < test.n_samples:
        raise DataworthError(
            f"row must be a whole number in [-{test.n_samples}, {test.n_samples}); got {row!r}."
        )
    if not isinstance(top, (int, np.integer)) or top < 1:
        raise DataworthError(f"top must be a positive whole number; got {top!r}.")
    row = int(row) % test.n_samples
    inf = _influence_model(model, train, damping)
    x, y = test.X[row : row + 1], test.y[row : row + 1]
    scores = np.asarray(influence_matrix(inf, x, y)[:, 0], dtype=np.float64)
    order = np.argsort(scores, kind="stable")
    k = int(min(top, train.n_samples))
    fitted = inf.model_
    predicted = fitted.predict(x)[0]
    train_pred = np.asarray(fitted.predict(train.X))
    extra = {"loss_change_if_removed": -scores / train.n_samples, "predicted": train_pred}
    classification = is_categorical(train.y) and is_classifier(fitted)
    error = math.nan if classification else float(predicted - test.y[row])
    return MisclassifiedExplanation(
        row=row,
        label=plain(test.y[row]),
        predicted=plain(predicted),
        misclassified=bool(predicted != test.y[row]) if classification else None,
        error=error,
        test_features={n: float(test.X[row, j]) for j, n in enumerate(test.feature_names)},
        harmful=_row_table(train, order[::-1][:k], "influence", scores, extra),
        helpful=_row_table(train, order[:k], "influence", scores, extra),
        influence=scores,
        model=type(fitted).__name__,
    )
