"""Data-OOB: the out-of-bag score of each training point over bootstrap models (Kwon & Zou 2023).

Fit ``B`` models on bootstrap samples of the training players; the value of a player is the mean,
over the models for which it is out of bag, of ``T = 1[prediction correct]`` (classification) or
``T = -(y - f(x))**2`` (regression). Players never out of bag get NaN and a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from dataworth.base import MonteCarloValuation
from dataworth.engine.moments import Estimate, Moments, State
from dataworth.engine.stopping import Stopping
from dataworth.errors import DataworthError, UtilityError
from dataworth.estimators.reducers import reduce_state
from dataworth.result import ValuationResult

__all__ = ["DataOOB", "OOBJob"]


def _bag_rows(utility: Any, bag: NDArray[np.intp]) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
    """Training rows of a bag (in row order, repeated by multiplicity) and the out-of-bag mask.

    ``bag`` holds player ids drawn with replacement (rows, or groups when ``by_group``); a row
    appears as many times as its player was drawn, and a player is out of bag when not drawn.
    """
    n_players = int(utility.n_players)
    drawn = np.bincount(bag, minlength=n_players)
    player_of_row = np.asarray(utility.player_of_row)
    rows = np.repeat(np.arange(player_of_row.shape[0]), drawn[player_of_row])
    return rows, drawn == 0


@dataclass
class OOBJob:
    """The Monte Carlo job of Data-OOB: one sample is one bootstrap bag of player ids.

    ``draw`` makes each bag with one ``rng.integers(0, n_players, size=n_players)`` call, so a run
    with seed ``s`` and budget ``B`` uses the bags
    ``[np.random.default_rng(s).integers(0, n, size=n) for _ in range(B)]`` (one generator).
    """

    estimator: str = "mean"
    state_keys: tuple[str, ...] = ("marginal",)
    round_size: int = 64
    chunk_size: int = 16

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
        fitted = _batched_predictions(utility, bags) if hasattr(utility, "trainer") else None
        # one clone per chunk, refitted on each bag (a fit starts afresh unless warm_start)
        reusable = not getattr(utility.model, "warm_start", False)
        estimator = clone(utility.model) if reusable else None
        for b, bag in enumerate(bags):
            scores = _oob_scores(
                utility, bag, None if fitted is None else fitted[b], estimator=estimator
            )
            if scores is not None:
                T[b], oob[b] = scores
        return {"marginal": Moments.from_samples(T, mask=oob)}


def _batched_predictions(utility: Any, bags: list[NDArray[np.intp]]) -> NDArray[Any]:
    """Predictions on every training row of the models of all bags, trained in one batch.

    Used with a :class:`~dataworth.utility.batched.BatchedUtility`: bootstrap multiplicities are
    sample weights, which equals fitting on the repeated rows. Bags with a single class are
    left to the constant predictor (their rows here are placeholders).
    """
    player_of_row = np.asarray(utility.player_of_row)
    counts = np.stack([np.bincount(bag, minlength=utility.n_players) for bag in bags])
    weights = counts[:, player_of_row].astype(np.float64)
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
) -> tuple[NDArray[np.float64], NDArray[np.bool_]] | None:
    """Per-player out-of-bag score of the model fitted on one bag, and the out-of-bag mask.

    ``fitted`` holds that model's predictions on all training rows when they were computed in
    a batch. Returns None when the fit failed and the utility opted in to counting failures.
    """
    n_players = int(utility.n_players)
    train = utility.train
    rows, out = _bag_rows(utility, bag)
    player_of_row = np.asarray(utility.player_of_row)
    oob_rows = np.flatnonzero(out[player_of_row])
    scores = np.zeros(n_players)
    if oob_rows.size == 0:
        return scores, out
    y_bag = train.y[rows]
    X_oob, y_oob = train.X[oob_rows], train.y[oob_rows]
    if utility.is_classifier and (y_bag == y_bag[0]).all():
        pred = np.full(oob_rows.shape[0], y_bag[0])  # constant predictor, as in the utility
    elif fitted is not None:
        pred = fitted[oob_rows]
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model = (clone(utility.model) if estimator is None else estimator).fit(
                    train.X[rows], y_bag
                )
                pred = np.asarray(model.predict(X_oob))
        except Exception as exc:
            if getattr(utility, "catch_errors", False):
                utility.n_failures += 1
                return None
            raise UtilityError(
                f"{type(utility.model).__name__} failed on a bootstrap sample of {rows.size} "
                f"rows: {type(exc).__name__}: {exc}. Fix the model settings, or opt in to "
                "skipping failed bags (catch_errors=True, --catch-errors)."
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
        Parallel workers (joblib; ``-1`` for all cores).
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

    def __init__(
        self,
        budget: int | None = 200,
        *,
        stop: Stopping | None = None,
        random_state: int | None = None,
        n_jobs: int | None = 1,
        progress: bool | None = None,
        checkpoint: str | Path | None = None,
        resume: bool = False,
    ) -> None:
        self.budget = budget
        self.stop = stop
        self.random_state = random_state
        self.n_jobs = n_jobs
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
        return OOBJob()

    def _notes(self) -> list[str]:
        return [
            "values are out-of-bag scores on the training data; the valuation set and the "
            "scoring are not used",
        ]

    def _fit(self, utility: Any) -> ValuationResult:
        result = super()._fit(utility)
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
