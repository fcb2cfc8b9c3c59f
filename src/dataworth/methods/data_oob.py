"""Data-OOB: the out-of-bag score of each training point over bootstrap models (Kwon & Zou 2023).

Fit ``B`` models on bootstrap samples of the training players; the value of a player is the mean,
over the models for which it is out of bag, of ``T = 1[prediction correct]`` (classification) or
``T = -(y - f(x))**2`` (regression). Players never out of bag get NaN and a warning.

Whatever the model, the values equal those of a loop of ``clone(model).fit(X[rows], y[rows])``
over the bags (``rows``: the bag's training rows, in row order, repeated by multiplicity). Two
things make scikit-learn decision trees cheaper without changing a value:

* Bootstrap counts as sample weights. A ``DecisionTreeClassifier`` or ``ExtraTreeClassifier``
  is fitted on all training rows with each row's count as ``sample_weight`` (rows out of bag
  weigh 0, and scikit-learn leaves them out of the tree) instead of on copied rows, when that
  builds the same tree (:func:`counts_are_weights`): the split search of the gini and entropy
  criteria only sums weights, and integer sums are exact in any order, so every impurity, and
  hence every split, threshold and tie between splits, is the same; the feature order a fit
  draws from its ``random_state`` does not depend on the rows. Only the rules that count rows
  (``min_samples_split``, ``min_samples_leaf``), class weights (computed from the rows) and
  ``monotonic_cst`` could see a difference, so those must be at their defaults, and missing
  values (whose side is chosen by row counts) must be absent. Otherwise, and for regression
  trees (whose sums of ``y`` would be added in another order), the rows are copied.
* Threads. Tree fitting releases the GIL, so with ``n_jobs > 1`` and a local joblib backend
  (loky, the default) the bags of a chunk are fitted by ``n_jobs`` threads of this process
  instead of worker processes: nothing to start and no data to send. Each bag still gets its
  own ``clone(model)`` and its results are merged in bag order, so the values are the same for
  any ``n_jobs``.
"""

from __future__ import annotations

import functools
import numbers
import sys
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from joblib import effective_n_jobs
from joblib.parallel import get_active_backend
from numpy.typing import NDArray
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from dataworth.base import MonteCarloValuation
from dataworth.engine.moments import Estimate, Moments, State
from dataworth.engine.runner import ROUND_SIZE, check_n_jobs
from dataworth.engine.stopping import Stopping
from dataworth.errors import DataworthError, UtilityError
from dataworth.estimators.reducers import reduce_state
from dataworth.result import ValuationResult

__all__ = ["DataOOB", "OOBJob", "counts_are_weights"]

Scores = tuple[NDArray[np.float64], NDArray[np.bool_]]

#: joblib backends whose workers run on this machine: with them, tree fits run in threads here.
_LOCAL_BACKENDS = frozenset(
    {"LokyBackend", "MultiprocessingBackend", "ThreadingBackend", "SequentialBackend"}
)

#: Tree criteria whose split search only sums sample weights (classification).
_WEIGHT_CRITERIA = frozenset({"gini", "entropy", "log_loss"})


def _sklearn_tree() -> Any:
    """``sklearn.tree`` when it is imported, else None (then no model is a scikit-learn tree:
    an instance's class module, and so its package, is imported); not importing it here saves
    its start-up time for other models."""
    return sys.modules.get("sklearn.tree")


def _is_tree(model: Any) -> bool:
    """Whether ``model`` is a scikit-learn decision tree (its fit releases the GIL)."""
    tree = _sklearn_tree()
    return tree is not None and isinstance(model, tree.BaseDecisionTree)


def _is_int(value: Any, expected: int) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value == expected


def counts_are_weights(model: Any, X: NDArray[np.float64]) -> bool:
    """Whether fitting ``model`` on all rows of ``X`` with bootstrap counts as ``sample_weight``
    builds the same tree as fitting it on the rows copied by their counts.

    True for a scikit-learn ``DecisionTreeClassifier`` or ``ExtraTreeClassifier`` (exactly those
    classes, not subclasses) with criterion gini, entropy or log_loss, ``min_samples_split=2``,
    ``min_samples_leaf=1``, ``min_weight_fraction_leaf=0``, no ``class_weight`` or
    ``monotonic_cst``, and no missing value in ``X`` (see the module notes for why).

    Examples
    --------
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> X = np.zeros((4, 2))
    >>> counts_are_weights(DecisionTreeClassifier(max_depth=3, random_state=0), X)
    True
    >>> counts_are_weights(DecisionTreeClassifier(min_samples_leaf=5), X)
    False
    """
    tree = _sklearn_tree()
    if tree is None or type(model) not in (tree.DecisionTreeClassifier, tree.ExtraTreeClassifier):
        return False
    params = model.get_params()
    return bool(
        params["criterion"] in _WEIGHT_CRITERIA
        and _is_int(params["min_samples_split"], 2)
        and _is_int(params["min_samples_leaf"], 1)
        and params["min_weight_fraction_leaf"] == 0
        and params["class_weight"] is None
        and params.get("monotonic_cst") is None
        and not np.isnan(X).any()
    )


def _tree_threads(utility: Any, n_jobs: int | None) -> int:
    """How many threads fit the bags: ``n_jobs`` resolved when the model is a scikit-learn tree
    and joblib's active backend is local, else 1 (the engine's workers do the work)."""
    if n_jobs == 1 or hasattr(utility, "trainer") or not _is_tree(getattr(utility, "model", None)):
        return 1
    check_n_jobs(n_jobs)
    backend, _ = get_active_backend()
    if type(backend).__name__ not in _LOCAL_BACKENDS:
        return 1
    return max(1, int(effective_n_jobs(n_jobs)))


def _bag_counts(utility: Any, bag: NDArray[np.intp]) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
    """How many times each training row is in a bag, and the out-of-bag mask of the players.

    ``bag`` holds player ids drawn with replacement (rows, or groups when ``by_group``); a row
    counts as many times as its player was drawn, and a player is out of bag when not drawn.
    """
    drawn = np.bincount(bag, minlength=int(utility.n_players))
    return drawn[np.asarray(utility.player_of_row)], drawn == 0


@dataclass
class OOBJob:
    """The Monte Carlo job of Data-OOB: one sample is one bootstrap bag of player ids.

    ``draw`` makes each bag with one ``rng.integers(0, n_players, size=n_players)`` call, so a run
    with seed ``s`` and budget ``B`` uses the bags
    ``[np.random.default_rng(s).integers(0, n, size=n) for _ in range(B)]`` (one generator).
    ``threads`` threads fit the bags of a chunk (scikit-learn trees only, see the module notes).
    """

    estimator: str = "mean"
    state_keys: tuple[str, ...] = ("marginal",)
    chunk_size: int = 16
    threads: int = 1

    def estimate(self, state: State) -> Estimate:
        return reduce_state(self.estimator, state)

    def draw(self, rng: np.random.Generator, size: int, n_players: int) -> list[Any]:
        """``size`` bootstrap bags of ``n_players`` player ids drawn with replacement."""
        return [rng.integers(0, n_players, size=n_players) for _ in range(size)]

    def process(self, utility: Any, samples: Sequence[Any]) -> State:
        """Fit one model per bag, score its out-of-bag players, return their moments."""
        n_players = int(utility.n_players)
        bags = [np.asarray(bag, dtype=np.intp) for bag in samples]
        T = np.zeros((len(bags), n_players))
        oob = np.zeros((len(bags), n_players), dtype=bool)
        # here, not in the threads: the warning filters are the process's
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            scored = _score_bags(utility, bags, self.threads)
        for b, scores in enumerate(scored):
            if scores is None:
                utility.n_failures += 1
            else:
                T[b], oob[b] = scores
        return {"marginal": Moments.from_samples(T, mask=oob)}


def _score_bags(utility: Any, bags: list[NDArray[np.intp]], threads: int) -> list[Scores | None]:
    """:func:`_oob_scores` of each bag, in bag order (None for a failed fit that is counted)."""
    if hasattr(utility, "trainer"):
        fitted = _batched_predictions(utility, bags)
        return [_oob_scores(utility, bag, pred) for bag, pred in zip(bags, fitted, strict=True)]
    model = utility.model
    if _is_tree(model):
        # a clone per bag (threads share nothing), fitted with weights where they are the rows
        X = utility.train.X
        X32 = np.asarray(X, dtype=np.float32) if counts_are_weights(model, X) else None
        score = functools.partial(_oob_scores, utility, weighted_X=X32)
        if threads > 1:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                return list(pool.map(score, bags))
        return [score(bag) for bag in bags]
    # one clone per chunk, refitted on each bag (a fit starts afresh unless warm_start)
    estimator = None if getattr(model, "warm_start", False) else clone(model)
    return [_oob_scores(utility, bag, estimator=estimator) for bag in bags]


def _batched_predictions(utility: Any, bags: list[NDArray[np.intp]]) -> NDArray[Any]:
    """Predictions on every training row of the models of all bags, trained in one batch.

    Used with a :class:`~dataworth.utility.batched.BatchedUtility`: bootstrap multiplicities are
    sample weights, which equals fitting on the repeated rows. Bags with a single class are
    left to the constant predictor (their rows here are placeholders).
    """
    weights = np.stack([_bag_counts(utility, bag)[0] for bag in bags]).astype(np.float64)
    y = utility.train.y
    pred: NDArray[Any]
    if utility.is_classifier:
        todo = utility.classes_present(weights).sum(axis=1) > 1
        pred = np.full((len(bags), y.shape[0]), y[0], dtype=y.dtype)
    else:
        todo = np.ones(len(bags), dtype=bool)
        pred = np.zeros((len(bags), y.shape[0]))
    if todo.any():
        out = utility.trainer.fit_predict(weights[todo], utility.train.X)
        pred[todo] = utility.classes[out] if utility.is_classifier else out
    return pred


def _oob_scores(
    utility: Any,
    bag: NDArray[np.intp],
    fitted: NDArray[Any] | None = None,
    *,
    estimator: Any = None,
    weighted_X: NDArray[np.float32] | None = None,
) -> Scores | None:
    """Per-player out-of-bag score of the model fitted on one bag, and the out-of-bag mask.

    ``fitted`` holds that model's predictions on all training rows when they were computed in
    a batch. Otherwise ``estimator`` (default: a fresh ``clone(utility.model)``) is fitted on
    the bag's rows; or, given ``weighted_X`` (only where :func:`counts_are_weights`: the
    training features as float32, which is what a scikit-learn tree makes of them), on all
    rows with the bag's counts as sample weights, skipping the tree's input checks
    (``check_input=False``, as scikit-learn's forests do). Returns None when the fit failed and
    the utility opted in to counting failures (the caller counts it).
    """
    n_players = int(utility.n_players)
    train = utility.train
    counts, out = _bag_counts(utility, bag)
    player_of_row = np.asarray(utility.player_of_row)
    oob_rows = np.flatnonzero(counts == 0)
    scores = np.zeros(n_players)
    if oob_rows.size == 0:
        return scores, out
    y_in, y_oob = train.y[counts > 0], train.y[oob_rows]
    if utility.is_classifier and (y_in == y_in[0]).all():
        pred = np.full(oob_rows.shape[0], y_in[0])  # constant predictor, as in the utility
    elif fitted is not None:
        pred = fitted[oob_rows]
    else:
        model = clone(utility.model) if estimator is None else estimator
        try:
            if weighted_X is not None:
                weights = counts.astype(np.float64)
                model.fit(weighted_X, train.y, sample_weight=weights, check_input=False)
                pred = np.asarray(model.predict(weighted_X[oob_rows], check_input=False))
            else:
                rows = np.repeat(np.arange(counts.shape[0]), counts)
                model.fit(train.X[rows], train.y[rows])
                pred = np.asarray(model.predict(train.X[oob_rows]))
        except Exception as exc:
            if getattr(utility, "catch_errors", False):
                return None
            raise UtilityError(
                f"{type(utility.model).__name__} failed on a bootstrap sample of "
                f"{int(counts.sum())} rows: {type(exc).__name__}: {exc}. Fix the model settings, "
                "or opt in to skipping failed bags (catch_errors=True, --catch-errors)."
            ) from exc
    if utility.is_classifier:
        t = (pred == y_oob).astype(np.float64)
    else:
        t = -((np.asarray(y_oob, dtype=np.float64) - pred.astype(np.float64)) ** 2)
    players = player_of_row[oob_rows]
    sums = np.bincount(players, weights=t, minlength=n_players)
    sizes = np.bincount(players, minlength=n_players)
    np.divide(sums, sizes, out=scores, where=sizes > 0)  # mean over the rows of each player
    return scores, out


class DataOOB(MonteCarloValuation):
    """Data-OOB values: each point's out-of-bag score over bootstrap models.

    ``budget`` bootstrap bags are drawn; on each, ``clone(utility.model)`` is fitted and predicts
    the training points left out of the bag. The value of a point is the mean of
    ``T = 1[prediction correct]`` (classifiers) or ``T = -(y - f(x))**2`` (regressors) over the
    bags it was out of, and its ``stderr`` the standard error of that mean. Only the training
    data is used: the valuation set and the utility's ``scoring`` play no part. A bag whose
    labels are all one class predicts that class without fitting (as the utility does).

    scikit-learn decision trees are fitted with the bootstrap counts as sample weights where
    that builds the same trees as copied rows, and with ``n_jobs`` threads (see the module
    notes): the values stay those of one ``clone(model).fit`` on each bag's rows.

    With ``by_group=True`` a bag draws ``n_groups`` group ids with replacement and trains on all
    rows of the drawn groups (with multiplicity); a group is out of bag when not drawn, and its
    ``T`` is the mean of ``T`` over its rows.

    A point that is never out of bag gets NaN (not 0), a warning, and is counted in
    ``metadata["n_never_oob"]``; raise ``budget`` to fix it (each point is out of a bag with
    probability about 0.37).

    Parameters
    ----------
    budget : int or None, default=200
        Number of bootstrap bags (models fitted).
    stop : Stopping, optional
        Extra stopping rule, combined with the budget by ``|``.
    random_state : int, optional
        Seed; with the same seed the values are identical for any ``n_jobs``.
    n_jobs : int or None, default=1
        Parallel workers (joblib; ``-1`` for all cores). With a scikit-learn decision tree as
        model and a local backend (loky, the default), threads of this process.
    progress : bool or None, default=None
        Show a progress bar; ``None``: when interactive (a terminal or a notebook).
    checkpoint : str or Path, optional
        Write an atomic checkpoint after every round of bags.
    resume : bool, default=False
        Continue from ``checkpoint`` if it exists.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from dataworth.datasets import load_dataset
    >>> from dataworth.utility import ModelUtility
    >>> train, valid = load_dataset("iris").split(0.3, random_state=0)
    >>> u = ModelUtility(LogisticRegression(max_iter=500), train, valid)
    >>> res = DataOOB(budget=64, random_state=0).fit(u).result_
    >>> len(res) == u.n_players, bool(((res.values >= 0) & (res.values <= 1)).all())
    (True, True)
    """

    name: ClassVar[str] = "data-oob"
    #: Out-of-bag scores (accuracy in [0, 1], minus a squared error for regression) have no
    #: value meaning "neither helps nor hurts": they rank rows only.
    baseline: ClassVar[float | None] = None
    #: Threads fitting the bags of a chunk (set by ``_fit`` on the copy that runs them).
    _threads: int = 1

    def __init__(
        self,
        budget: int | None = 200,
        *,
        stop: Stopping | None = None,
        random_state: int | None = None,
        n_jobs: int | None = 1,
        round_size: int = ROUND_SIZE,
        progress: bool | None = None,
        checkpoint: str | Path | None = None,
        resume: bool = False,
    ) -> None:
        self.budget = budget
        self.stop = stop
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.round_size = round_size
        self.progress = progress
        self.checkpoint = checkpoint
        self.resume = resume

    def _job(self, utility: Any) -> OOBJob:
        budget = self.budget
        if budget is not None and (
            not isinstance(budget, (int, np.integer)) or isinstance(budget, bool) or budget < 1
        ):
            raise DataworthError(
                f"budget (the number of bootstrap bags) must be a positive whole number or "
                f"None; got {budget!r}."
            )
        if not all(hasattr(utility, a) for a in ("train", "model", "player_of_row")):
            raise DataworthError(
                "data-oob needs a model utility with training data (a ModelUtility); "
                f"got {type(utility).__name__}."
            )
        return OOBJob(threads=self._threads)

    def _notes(self) -> list[str]:
        return [
            "values are out-of-bag scores on the training data; the valuation set and the "
            "scoring are not used",
        ]

    def _fit(self, utility: Any) -> ValuationResult:
        run = self
        threads = _tree_threads(utility, self.n_jobs)
        if threads > 1:
            # the run's workers are threads fitting the bags of each chunk (OOBJob.threads):
            # the engine runs the chunks here, with no worker processes to start or feed
            run = type(self)(**{**self.get_params(), "n_jobs": 1})
            run._threads = threads
        result = super(DataOOB, run)._fit(utility)
        n_never = int(np.isnan(result.values).sum())
        if n_never:
            what = "groups" if result.kind == "group" else "points"
            warnings.warn(
                f"data-oob: {n_never} of {len(result)} {what} were never out of bag in "
                f"{result.metadata.get('n_updates')} bootstrap bags; their value is NaN. "
                "Raise the budget.",
                stacklevel=3,
            )
        return replace(result, metadata={**result.metadata, "n_never_oob": n_never})
