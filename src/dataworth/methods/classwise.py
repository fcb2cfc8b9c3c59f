"""Class-wise Shapley (Schoch, Xu & Ji 2022): Shapley values within each class, in context.

A training point ``i`` of class ``c`` is valued in the game played among the class-``c`` rows
``D_c``, given a random out-of-class context ``S_-c`` (a uniformly random subset of the training
rows of the other classes). The utility of ``T`` (a subset of ``D_c``) in context ``S_-c`` is

    u_c(T | S_-c) = a_c * exp(a_-c)

for the model trained on ``T + S_-c``, where ``a_c`` is its accuracy on the valuation rows of
class ``c`` and ``a_-c`` its accuracy on the other valuation rows. The value of ``i`` is the
Shapley value of ``i`` in that game, averaged over the ``2^|D_-c|`` contexts:

    phi_i = E_{S_-c} [ Shapley_i( T -> u_c(T | S_-c) ) ].

Monte Carlo: one sample draws, for every class ``c``, one context (each out-of-class row in
with probability 1/2) and one uniform permutation of ``D_c``; every point gets one marginal
``u_c(prefix + i | S_-c) - u_c(prefix | S_-c)`` per sample. The mean is unbiased.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from dataworth.base import MonteCarloValuation
from dataworth.engine.moments import Estimate, Moments, State
from dataworth.engine.runner import ROUND_SIZE, MonteCarloJob
from dataworth.engine.stopping import Stopping
from dataworth.errors import DataworthError, UtilityError
from dataworth.estimators.reducers import reduce_state

__all__ = ["ClasswiseShapley"]

#: Samples per round (between stopping checks and checkpoints) and per parallel task; fixed, so
#: the values never depend on ``n_jobs``.
CHUNK_SIZE = 2

#: One class's share of a sample: (out-of-class context rows, permutation of the class's rows).
ClassDraw = tuple[NDArray[np.intp], NDArray[np.intp]]


class _ClassGame:
    """The per-class utility ``a_c * exp(a_-c)`` of models trained on training rows.

    Conventions (as :class:`~dataworth.utility.ModelUtility`): no rows scores the utility's
    ``default_score`` (for the whole product); rows that all carry one label are predicted as
    that constant label, without a fit; a k-nearest-neighbours model on fewer rows than k uses
    them all (``ModelUtility.model_for``); a failed fit raises, or scores ``default_score`` and is
    counted when the utility has ``catch_errors=True``.
    """

    def __init__(self, utility: Any, classes: NDArray[Any]) -> None:
        self.utility = utility
        self.X, self.y = utility.train.X, utility.train.y
        self.Xv, self.yv = utility.valid.X, utility.valid.y
        self.in_class = [np.asarray(self.yv == c) for c in classes]

    def predict(self, rows: NDArray[np.intp]) -> NDArray[Any] | None:
        """Predictions on the valuation rows of the model trained on ``rows`` (None: failed)."""
        y = self.y[rows]
        if (y == y[0]).all():
            return np.full(self.yv.shape[0], y[0], dtype=self.y.dtype)
        u = self.utility
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model = u.model_for(rows.size) if hasattr(u, "model_for") else clone(u.model)
                fitted = model.fit(self.X[rows], y)
                return np.asarray(fitted.predict(self.Xv))
        except Exception as exc:
            if u.catch_errors:
                u.n_failures += 1
                return None
            raise UtilityError(
                f"{type(u.model).__name__} failed on a subset of {rows.size} rows: "
                f"{type(exc).__name__}: {exc}. Fix the model settings, or opt in to scoring "
                "failures as default_score (catch_errors=True, --catch-errors)."
            ) from exc

    def __call__(self, c: int, rows: NDArray[np.intp]) -> float:
        """``u_c`` of the model trained on ``rows`` (training row positions)."""
        if rows.size == 0:
            return float(self.utility.default_score)
        pred = self.predict(np.sort(rows))
        if pred is None:
            return float(self.utility.default_score)
        inside = self.in_class[c]
        correct = pred == self.yv
        return float(np.mean(correct[inside]) * np.exp(np.mean(correct[~inside])))

    def prefixes(
        self,
        c: int,
        context: NDArray[np.intp],
        order: NDArray[np.intp],
    ) -> NDArray[np.float64]:
        """``u_c(order[:k] | context)`` for ``k = 0..len(order)``."""
        return np.array(
            [self(c, np.concatenate([context, order[:k]])) for k in range(order.size + 1)]
        )


@dataclass
class _ClasswiseJob:
    """Monte Carlo job: draw contexts and permutations in the driver, score them in workers."""

    classes: NDArray[Any]
    rows_by_class: list[NDArray[np.intp]]
    others_by_class: list[NDArray[np.intp]]
    estimator: str = "mean"
    state_keys: tuple[str, ...] = ("marginal",)
    chunk_size: int = CHUNK_SIZE

    def estimate(self, state: State) -> Estimate:
        return reduce_state(self.estimator, state)

    def draw(self, rng: np.random.Generator, size: int, n_players: int) -> list[list[ClassDraw]]:
        samples = []
        for _ in range(size):
            per_class = []
            for rows, others in zip(self.rows_by_class, self.others_by_class, strict=True):
                context = others[rng.random(others.size) < 0.5]
                per_class.append((context, rng.permutation(rows)))
            samples.append(per_class)
        return samples

    def process(self, utility: Any, samples: Sequence[list[ClassDraw]]) -> State:
        game = _ClassGame(utility, self.classes)
        marginals = np.empty((len(samples), int(utility.n_players)))
        for j, sample in enumerate(samples):
            for c, (context, order) in enumerate(sample):
                marginals[j, order] = np.diff(game.prefixes(c, context, order))
        return {"marginal": Moments.from_samples(marginals)}


class ClasswiseShapley(MonteCarloValuation):
    """Class-wise Shapley values of training rows for a classifier (Monte Carlo).

    Each point is valued by the Shapley value of the game among the rows of its own class, with
    utility ``a_c * exp(a_-c)`` (accuracy on the valuation rows of its class, times the
    exponential of the accuracy on the other valuation rows), averaged over uniformly random
    out-of-class contexts. See the module docstring for the exact definition.

    Parameters
    ----------
    budget : int or None, default=100
        Number of samples. One sample draws, for every class, one out-of-class context and one
        permutation of the class's rows, and costs ``n + n_classes`` model fits; every point gets
        one marginal per sample.
    stop, random_state, n_jobs, progress, checkpoint, resume
        As for every Monte Carlo method (see :class:`~dataworth.base.MonteCarloValuation`).

    Notes
    -----
    * The utility must be a :class:`~dataworth.utility.ModelUtility` with a classifier and
      row players (not groups). Its ``scoring`` is not used: the per-class utility is built from
      accuracies. Its ``default_score`` is the utility of an empty training set (the whole
      product), and ``catch_errors`` applies as usual. Every training class must appear in the
      valuation set.
    * Training subsets with a single label are predicted as that constant label (no fit).
    * Values are **not normalised**: they are the raw class-wise Shapley values, which do not
      sum to ``u(N)`` (the paper's optional rescaling by class is not applied), and ``a_c``,
      ``a_-c`` are plain accuracies, not rescaled by the class shares.
    * ``stderr`` is the standard error of the mean marginal; ``counts`` the number of samples.
    """

    name: ClassVar[str] = "class-wise-shapley"

    _scoring_note: str | None = None

    def __init__(
        self,
        budget: int | None = 100,
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

    def _job(self, utility: Any) -> MonteCarloJob:
        if not all(hasattr(utility, a) for a in ("model", "train", "valid", "is_classifier")):
            raise DataworthError(
                "class-wise Shapley needs a ModelUtility (a classifier trained on rows): it "
                "retrains the model to score per-class accuracies."
            )
        if getattr(utility, "by_group", False):
            raise DataworthError(
                "class-wise Shapley values rows, not groups: a group can mix classes. Value "
                "rows (drop --group, or by_group=False), or use another method for groups."
            )
        if not utility.is_classifier:
            raise DataworthError(
                "class-wise Shapley is for classification: the model "
                f"{type(utility.model).__name__} is not a classifier."
            )
        y, yv = utility.train.y, utility.valid.y
        classes = np.unique(y)
        if classes.size < 2:
            raise DataworthError(
                "class-wise Shapley needs at least two classes in the training data; got "
                f"{classes.size}."
            )
        missing = [c for c in classes if not np.any(yv == c)]
        if missing:
            raise DataworthError(
                f"class(es) {', '.join(map(str, missing))} of the training data have no rows in "
                "the valuation set, so their in-class accuracy is undefined; use a valuation "
                "set with every class (e.g. a stratified split)."
            )
        self._scoring_note = None
        if getattr(utility, "scoring_name", "accuracy") != "accuracy":
            self._scoring_note = (
                f"the utility's scoring ({utility.scoring_name!r}) is not used: class-wise "
                "Shapley scores a(c) * exp(a(-c)) with per-class accuracies."
            )
        rows = [np.flatnonzero(y == c).astype(np.intp) for c in classes]
        others = [np.flatnonzero(y != c).astype(np.intp) for c in classes]
        return _ClasswiseJob(classes=classes, rows_by_class=rows, others_by_class=others)

    def _notes(self) -> list[str]:
        notes = ["values are not normalised (they do not sum to u(N))."]
        if self._scoring_note:
            notes.append(self._scoring_note)
        return notes
