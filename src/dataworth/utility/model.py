"""The utility of a subset: score on the valuation set of a model trained on that subset.

Conventions (see ``docs/conventions.md``, "Utility"):

* the empty subset scores ``default_score`` (0.0 unless set);
* for a classifier, a subset whose rows all carry one label ``c`` is scored by the constant
  predictor of ``c`` (for accuracy: the share of valuation rows labelled ``c``); no fit happens;
* a k-nearest-neighbours model (scikit-learn's ``KNeighborsClassifier``/``KNeighborsRegressor``)
  trained on fewer rows than its ``n_neighbors`` uses all of them (``min(k, |S|)`` neighbours,
  as in KNN-Shapley's utility) instead of failing;
* any other fit or scoring error raises :class:`~dataworth.errors.UtilityError`, unless
  ``catch_errors=True``, in which case it scores ``default_score`` and is counted in
  ``n_failures`` (and in the result's metadata).

Before any work, the model's parameters are validated as scikit-learn validates them when
fitting, and a named scorer is refused when it is undefined on the valuation set (``roc_auc`` on a
single class, ``r2`` on one row): it is scored once on a constant predictor, and a NaN or an
error there is a :class:`~dataworth.errors.DataworthError`.

Players are rows, or groups (data sources) when ``by_group=True``; a subset of players is given
as an array of player indices or as a boolean mask over players.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import joblib
import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, ClassifierMixin, clone, is_classifier
from sklearn.dummy import DummyClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import get_scorer, get_scorer_names
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.utils.metaestimators import available_if

from dataworth.data import Dataset
from dataworth.errors import DataworthError, UtilityError
from dataworth.models import check_params
from dataworth.utility.base import UtilityBase

__all__ = [
    "AllClasses",
    "FitAndScore",
    "ModelUtility",
    "fit_and_score",
    "fit_model",
    "resolve_scorer",
    "score_fitted",
]

Scorer = Callable[[Any, NDArray[Any], NDArray[Any]], float]


class AllClasses(ClassifierMixin, BaseEstimator):
    """A fitted classifier seen through the full class list, for probability scorers; it has
    ``predict_proba`` and ``decision_function`` exactly when the fitted model has them."""

    def __init__(self, fitted: Any = None, classes: NDArray[Any] | None = None) -> None:
        self.fitted = fitted
        self.classes = classes

    @property
    def classes_(self) -> NDArray[Any]:
        assert self.classes is not None
        return self.classes

    def predict(self, X: NDArray[Any]) -> NDArray[Any]:
        return np.asarray(self.fitted.predict(X))

    def _expand(self, part: NDArray[np.float64], fill: float) -> NDArray[np.float64]:
        assert self.classes is not None
        out = np.full((part.shape[0], self.classes.size), fill)
        out[:, np.searchsorted(self.classes, self.fitted.classes_)] = part
        return out

    @available_if(lambda self: hasattr(self.fitted, "predict_proba"))
    def predict_proba(self, X: NDArray[Any]) -> NDArray[np.float64]:
        return self._expand(self.fitted.predict_proba(X), 0.0)

    @available_if(lambda self: hasattr(self.fitted, "decision_function"))
    def decision_function(self, X: NDArray[Any]) -> NDArray[np.float64]:
        scores = np.asarray(self.fitted.decision_function(X))
        if scores.ndim == 1:
            scores = np.column_stack([-scores, scores])
        return self._expand(scores, -np.inf)


#: Scorers that are NaN (with a warning only) on fewer than two valuation rows.
_NEED_TWO_ROWS = frozenset({"r2", "explained_variance"})

#: Prefixes of scorers that compare scores across classes: undefined (NaN, an error) or constant
#: whatever the model (average precision) on valuation labels of a single class.
_NEED_TWO_CLASSES = ("roc_auc", "average_precision", "neg_log_loss", "top_k_accuracy")


def resolve_scorer(scoring: str | Scorer | None, classifier: bool) -> tuple[str, Scorer | None]:
    """Return (name, scorer); scorer None means the fast accuracy path."""
    if scoring is None:
        scoring = "accuracy" if classifier else "r2"
    if callable(scoring):
        return getattr(scoring, "__name__", "callable"), scoring
    if scoring == "accuracy":
        return "accuracy", None
    if scoring not in get_scorer_names():
        raise DataworthError(
            f"unknown scoring {scoring!r}; use a scikit-learn scorer name such as 'accuracy', "
            "'neg_log_loss', 'f1_macro', 'r2' or 'neg_mean_squared_error', or a callable "
            "scorer(estimator, X, y)."
        )
    return scoring, get_scorer(scoring)


def score_fitted(
    scorer: Scorer | None, fitted: Any, data: Dataset, classes: NDArray[Any] | None = None
) -> float:
    """The score of a fitted model on ``data``: accuracy when ``scorer`` is None (the fast path
    of :func:`resolve_scorer`), else ``scorer(fitted, X, y)``; a classifier that saw fewer
    classes than ``classes`` is scored through :class:`AllClasses`."""
    if scorer is None:
        return float(np.mean(fitted.predict(data.X) == data.y))
    if classes is not None and not np.array_equal(fitted.classes_, classes):
        fitted = AllClasses(fitted, classes)
    return float(scorer(fitted, data.X, data.y))


def fit_model(model: Any, X: ArrayLike, y: ArrayLike, *, classes: ArrayLike | None = None) -> Any:
    """``clone(model)`` fitted on ``X, y``, scikit-learn's ``ConvergenceWarning`` silenced.

    A classifier shown rows of a single class is not fitted: it is the constant predictor of
    that class (a ``DummyClassifier`` over ``classes``, default that class alone), as the utility
    scores such subsets (``docs/conventions.md``, "Utility").

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> fit_model(LogisticRegression(), [[0.0], [1.0]], [1, 1], classes=[0, 1]).predict([[5.0]])
    array([1])
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if is_classifier(model) and y.size and (y == y[0]).all():
        known = np.unique(y if classes is None else np.asarray(classes))
        return DummyClassifier(strategy="constant", constant=y[0]).fit(
            np.zeros((known.size, X.shape[1] if X.ndim == 2 else 1)), known
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return clone(model).fit(X, y)


class FitAndScore:
    """Fit ``model`` on rows of ``train`` and score it on evaluation sets: one fit, many scores.

    The applications' "retrain without these rows and measure" (removal curves, the defences of
    the attack studies, active learning), under the utility's conventions: the scoring defaults
    to accuracy for classifiers and r2 for regressors (:func:`resolve_scorer`), a single class is
    the constant predictor (:func:`fit_model`), and a classifier that saw fewer classes than
    ``train`` is scored over all of them (:class:`AllClasses`).

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from dataworth.datasets import load_dataset
    >>> train, test = load_dataset("iris").split(0.3, random_state=0)
    >>> fs = FitAndScore(LogisticRegression(max_iter=500), train)
    >>> fs.metric, 0.8 < fs(range(train.n_samples), [test])[0] <= 1.0
    ('accuracy', True)
    """

    def __init__(self, model: Any, train: Dataset, scoring: str | Scorer | None = None) -> None:
        self.model = model
        self.train = train
        self.classifier = bool(is_classifier(model))
        self.metric, self.scorer = resolve_scorer(scoring, self.classifier)
        self.classes = np.unique(train.y) if self.classifier else None
        self._plain_r2 = self.metric == "r2" and not callable(scoring)

    def fit(self, rows: ArrayLike | None = None) -> Any:
        """The model fitted on the training rows ``rows`` (positions; default all)."""
        idx = np.arange(self.train.n_samples) if rows is None else np.asarray(rows, dtype=np.intp)
        if idx.size == 0:
            raise DataworthError("cannot fit on zero rows; keep at least one training row.")
        return fit_model(self.model, self.train.X[idx], self.train.y[idx], classes=self.classes)

    def score(self, fitted: Any, data: Dataset) -> float:
        """The score of ``fitted`` on ``data``."""
        return score_fitted(self.scorer, fitted, data, self.classes)

    def score_resamples(
        self, fitted: Any, data: Dataset, weights: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """The score on each resample of ``data``, given as row weights (bootstrap counts, shape
        ``(n_resamples, n_rows)``): vectorised for accuracy and r2, else one call of the scorer
        per resample (with ``sample_weight``, or the rows repeated when it takes none)."""
        W = np.asarray(weights, dtype=np.float64)
        if self.scorer is None:  # accuracy: the weighted share of correct predictions
            correct = (np.asarray(fitted.predict(data.X)) == data.y).astype(np.float64)
            return np.asarray(W @ correct / W.sum(axis=1), dtype=np.float64)
        if self._plain_r2:  # weighted r2, as sklearn.metrics.r2_score(sample_weight=...)
            y = np.asarray(data.y, dtype=np.float64)
            err = (y - np.asarray(fitted.predict(data.X), dtype=np.float64)) ** 2
            total = W.sum(axis=1)
            mean = W @ y / total
            sst = W @ (y**2) - total * mean**2
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.asarray(1.0 - (W @ err) / sst, dtype=np.float64)
        if self.classes is not None and not np.array_equal(fitted.classes_, self.classes):
            fitted = AllClasses(fitted, self.classes)
        scorer: Any = self.scorer
        out = np.empty(W.shape[0])
        for b in range(W.shape[0]):
            try:
                out[b] = scorer(fitted, data.X, data.y, sample_weight=W[b])
            except TypeError:
                idx = np.repeat(np.arange(W.shape[1]), W[b].astype(np.intp))
                out[b] = scorer(fitted, data.X[idx], data.y[idx])
        return out

    def __call__(self, rows: ArrayLike | None, evals: Sequence[Dataset]) -> list[float]:
        """Fit on ``rows`` once and score on each of ``evals``."""
        fitted = self.fit(rows)
        return [self.score(fitted, data) for data in evals]


def fit_and_score(
    model: Any,
    train: Dataset,
    rows: ArrayLike | None,
    evals: Sequence[Dataset],
    *,
    scoring: str | Scorer | None = None,
) -> list[float]:
    """``model`` fitted on the rows ``rows`` of ``train`` (default all), scored on each of
    ``evals``: :class:`FitAndScore` for one fit.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from dataworth.data import Dataset
    >>> train = Dataset.from_arrays([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    >>> fit_and_score(LogisticRegression(), train, [0, 1], [train])  # one class: constant
    [0.5]
    """
    return FitAndScore(model, train, scoring)(rows, evals)


class _ChoosesTrainer(type):
    """Metaclass of :class:`ModelUtility`: ``ModelUtility(...)`` itself returns a
    :class:`~dataworth.utility.batched.BatchedUtility` (a subclass) when the model and scoring
    allow it and ``batched`` is not False. Subclasses are constructed as written."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls is not ModelUtility or kwargs.get("batched") is False:
            return super().__call__(*args, **kwargs)
        from dataworth.utility.batched import BatchedUtility, Unsupported

        required = kwargs.pop("batched", None)
        try:
            return BatchedUtility(*args, **kwargs)
        except Unsupported as exc:
            if required:
                raise DataworthError(
                    f"batched training is not available: {exc}; "
                    "use one fit at a time (batched=False, --no-batch)."
                ) from None
        kwargs.pop("device", None)
        return super().__call__(*args, batched=False, **kwargs)


class ModelUtility(UtilityBase, metaclass=_ChoosesTrainer):
    """Score on a valuation set of ``model`` trained on a subset of the training players.

    For scikit-learn's ``LogisticRegression`` (L2), ``Ridge``, ``LinearRegression`` and
    ``GaussianNB`` with a scoring computed in batch (accuracy; r2, neg_mean_squared_error,
    neg_mean_absolute_error), ``ModelUtility(...)`` returns a
    :class:`~dataworth.utility.batched.BatchedUtility`, a subclass that trains many subsets at
    once (hundreds of times faster for the Monte Carlo and exact methods); pass
    ``batched=False`` for one scikit-learn fit at a time (scikit-learn's solver bit for bit).

    Parameters
    ----------
    model : estimator
        Any scikit-learn-compatible estimator (cloned for each fit).
    train, valid : Dataset
        Training data (whose rows or groups are valued) and valuation data.
    scoring : str or callable, optional
        A scikit-learn scorer name or ``scorer(estimator, X, y)``; defaults to accuracy for
        classifiers and r2 for regressors.
    default_score : float, default=0.0
        Score of the empty subset (and of failed fits when ``catch_errors``).
    catch_errors : bool, default=False
        Score failed fits ``default_score`` and count them instead of raising.
    by_group : bool, default=False
        Players are the distinct values of ``train.groups`` instead of rows.
    batched : bool or None, default=None
        ``None``: batched when the model and scoring allow it, else one fit at a time.
        ``False``: always one scikit-learn fit at a time. ``True``: batched, or a
        :class:`DataworthError` saying why it is not possible.
    device : str, default="auto"
        Where batched logistic regression trains (see
        :class:`~dataworth.utility.batched.BatchedUtility`); unused one fit at a time.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from dataworth.datasets import load_dataset
    >>> train, valid = load_dataset("iris").split(0.3, random_state=0)
    >>> u = ModelUtility(LogisticRegression(max_iter=500), train, valid)
    >>> type(u).__name__
    'BatchedUtility'
    >>> u([]) == 0.0 and 0.8 < u(range(u.n_players)) <= 1.0
    True
    >>> type(ModelUtility(LogisticRegression(max_iter=500), train, valid, batched=False)).__name__
    'ModelUtility'
    """

    def __init__(
        self,
        model: Any,
        train: Dataset,
        valid: Dataset,
        *,
        scoring: str | Scorer | None = None,
        default_score: float = 0.0,
        catch_errors: bool = False,
        by_group: bool = False,
        batched: bool | None = None,
        device: str = "auto",
    ) -> None:
        # batched and device are read by the metaclass, which chose this class (a direct
        # subclass construction, or batched=False); they are not part of the utility's state
        del batched, device
        if not (hasattr(model, "fit") and hasattr(model, "predict")):
            raise DataworthError(
                f"model must be an estimator with fit and predict; got {type(model).__name__}."
            )
        check_params(model)
        if train.n_features != valid.n_features:
            raise DataworthError(
                f"training data has {train.n_features} features but valuation data has "
                f"{valid.n_features}; they must have the same columns."
            )
        if not np.isfinite(default_score):
            raise DataworthError(f"default_score must be a finite number; got {default_score}.")
        self.model = model
        self.train = train
        self.valid = valid
        self.default_score = float(default_score)
        self.catch_errors = bool(catch_errors)
        self.by_group = bool(by_group)
        self.is_classifier = bool(is_classifier(model))
        self.scoring_name, self._scorer = resolve_scorer(scoring, self.is_classifier)
        self._custom_scorer = callable(scoring)
        if self.scoring_name in _NEED_TWO_ROWS and valid.n_samples < 2:
            raise DataworthError(
                f"scoring {self.scoring_name!r} is undefined on {valid.n_samples} valuation row; "
                "give at least 2 (a larger valuation set, or another scoring)."
            )
        self.n_failures = 0
        if by_group:
            if train.groups is None:
                raise DataworthError("by_group=True needs a dataset with groups (a group column).")
            self.player_names, self.player_of_row = np.unique(train.groups, return_inverse=True)
        else:
            self.player_names = train.row_labels
            self.player_of_row = np.arange(train.n_samples)
        self.n_players = int(self.player_names.shape[0])
        self.classes = np.unique(train.y) if self.is_classifier else None
        if self.is_classifier:
            assert self.classes is not None
            if valid.y.dtype.kind != train.y.dtype.kind and not (
                valid.y.dtype.kind in "iuf" and train.y.dtype.kind in "iuf"
            ):
                raise DataworthError(
                    "training and valuation targets have different types "
                    f"({train.y.dtype} vs {valid.y.dtype}); use the same label encoding."
                )
        self._check_scorer()
        self._constant_scores: dict[Any, float] = {}
        if self.scoring_name.startswith("neg_") and self.default_score == 0.0:
            warnings.warn(
                f"scoring {self.scoring_name!r} is at most 0, so the empty set's default score 0 "
                "beats every model and the first rows added look harmful; set default_score to "
                f"a baseline, e.g. {self._baseline_score(train, valid):.6g} (a constant "
                "predictor: the training class shares or mean).",
                UserWarning,
                stacklevel=2,
            )

    def _dummy_score(self, train: Dataset, valid: Dataset) -> float:
        """The score of a constant predictor fitted on the training rows (a dummy model); the
        scorer's errors propagate."""
        from sklearn.dummy import DummyClassifier, DummyRegressor

        dummy = DummyClassifier(strategy="prior") if self.is_classifier else DummyRegressor()
        fitted = dummy.fit(train.X, train.y)
        scorer = self._scorer
        if scorer is None:
            return float(np.mean(fitted.predict(valid.X) == valid.y))
        if self.is_classifier:
            fitted = AllClasses(fitted, self.classes)
        return float(scorer(fitted, valid.X, valid.y))

    def _baseline_score(self, train: Dataset, valid: Dataset) -> float:
        """:meth:`_dummy_score`, NaN where the scorer fails."""
        try:
            return self._dummy_score(train, valid)
        except ValueError:
            return float("nan")

    def _check_scorer(self) -> None:
        """Refuse a named scorer that is undefined on the valuation set, before any work.

        Scorers that compare classes need two classes among the valuation labels; any other
        named scorer is scored once on a constant predictor (trained on the training rows), and
        an error or a NaN there is refused with the scorer's reason. A callable scorer is not
        probed (it may need a fitted model of the user's type); a run whose values are all NaN
        is refused afterwards (:func:`dataworth.api.check_values`).
        """
        name = self.scoring_name
        if self._scorer is None or self._custom_scorer:
            return
        n_valid = self.valid.n_samples
        if self.is_classifier and name.startswith(_NEED_TWO_CLASSES):
            labels = np.unique(self.valid.y)
            if labels.size < 2:
                raise DataworthError(
                    f"scoring {name!r} is undefined on a valuation set with a single class "
                    f"({labels[0].item()!r} in {self.valid.target_name!r}, {n_valid} rows): it "
                    "compares the model's scores across classes. Give valuation rows of at least "
                    "two classes, or another scoring (e.g. accuracy)."
                )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                score = self._dummy_score(self.train, self.valid)
                reason = "it is NaN"
            except Exception as exc:
                score, reason = float("nan"), f"{type(exc).__name__}: {str(exc).rstrip('.')}"
        if np.isnan(score):
            said = [str(w.message).rstrip(".") for w in caught if str(w.message).strip()]
            if said and reason == "it is NaN":
                reason = f"it is NaN ({' '.join(said[-1].split())})"
            raise DataworthError(
                f"scoring {name!r} is undefined on the valuation set ({n_valid} rows): {reason}. "
                "Give a larger or more varied valuation set, or another scoring."
            )

    # ------------------------------------------------------------------ subsets
    def rows_of(self, subset: ArrayLike) -> NDArray[np.intp]:
        """Training row positions covered by a subset of players."""
        return np.flatnonzero(self.mask_of(subset)[self.player_of_row])

    # ------------------------------------------------------------------ evaluation
    def __call__(self, subset: ArrayLike) -> float:
        """Utility of one subset of players."""
        return self.score_rows(self.rows_of(subset))

    def score_rows(self, rows: NDArray[np.intp]) -> float:
        """Utility of the model trained on the given training rows."""
        if rows.size == 0:
            return self.default_score
        y = self.train.y[rows]
        if self.is_classifier and (y == y[0]).all():
            return self._constant_score(y[0])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                fitted = self.model_for(rows.size).fit(self.train.X[rows], y)
                return self._score(fitted)
        except Exception as exc:
            if self.catch_errors:
                self.n_failures += 1
                return self.default_score
            raise UtilityError(
                f"{type(self.model).__name__} failed on a subset of {rows.size} rows: "
                f"{type(exc).__name__}: {str(exc).rstrip('.')}. Fix the model settings, "
                "or opt in to scoring failures as default_score "
                "(catch_errors=True, --catch-errors)."
            ) from exc

    def model_for(self, n_rows: int) -> Any:
        """A fresh (unfitted) clone of the model, for a training subset of ``n_rows`` rows.

        A k-nearest-neighbours model with ``n_neighbors > n_rows`` gets ``n_neighbors=n_rows``:
        on a subset smaller than k it votes over all the subset's rows (see the module notes).
        """
        model = clone(self.model)
        if isinstance(model, KNeighborsClassifier | KNeighborsRegressor):
            k = model.get_params()["n_neighbors"]
            if isinstance(k, int) and 0 < n_rows < k:
                model.set_params(n_neighbors=n_rows)
        return model

    def _score(self, fitted: Any) -> float:
        return score_fitted(self._scorer, fitted, self.valid, self.classes)

    def _constant_score(self, label: Any) -> float:
        if label not in self._constant_scores:
            if self._scorer is None:
                score = float(np.mean(self.valid.y == label))
            else:
                assert self.classes is not None
                k = self.classes.size
                dummy = DummyClassifier(strategy="constant", constant=label)
                dummy.fit(np.zeros((k, self.train.n_features)), self.classes)
                score = float(self._scorer(dummy, self.valid.X, self.valid.y))
            self._constant_scores[label] = score
        return self._constant_scores[label]

    # ------------------------------------------------------------------ identity
    def fingerprint_parts(self) -> dict[str, str]:
        """Content hashes of the data, the model and the scoring settings."""
        model_id: Any
        try:
            model_id = (type(self.model).__qualname__, self.model.get_params(deep=True))
        except Exception:
            model_id = self.model
        return {
            "data": str(
                joblib.hash(
                    (
                        self.train.X,
                        self.train.y,
                        self.train.groups,
                        self.valid.X,
                        self.valid.y,
                    )
                )
            ),
            "model": str(joblib.hash(model_id)),
            "utility": str(
                joblib.hash(
                    (
                        type(self).__name__,
                        self.scoring_name,
                        self.default_score,
                        self.catch_errors,
                        self.by_group,
                    )
                )
            ),
        }

    def __repr__(self) -> str:
        return (
            f"ModelUtility({type(self.model).__name__}, n_players={self.n_players}, "
            f"scoring={self.scoring_name!r})"
        )
