"""What did a tool's repairs do to a model? Shapley values of repairs on a validation score.

The players are the repairs a tool made in the training rows (:func:`~dataworth.apps.repairs.
list_repairs`), one by one or grouped by row or by column. The value of a coalition is the
validation score of a model trained on the training rows with the coalition's repairs applied
and every other cell left raw:

* a cell that is still missing (its repair is not in the coalition, or the tool left it
  missing) is filled with its column's mean over the raw training rows (0 for a column without
  a raw value), so that every coalition trains on every row;
* the validation rows are used as given, their missing cells filled the same way.

The empty coalition is the raw data (mean-filled); the grand coalition the repaired data. A
repair with a negative value lowered the score: it hurt the model. The score follows the
library's conventions (:func:`dataworth.utility.model.resolve_scorer`: accuracy for
classifiers, r2 for regressors, or any scikit-learn scorer name); values are exact for at most
:data:`~dataworth.apps.repairs.EXACT_PLAYERS` players and sampled beyond.

Examples
--------
>>> import numpy as np
>>> from sklearn.linear_model import LinearRegression
>>> raw = np.array([[0.0], [1.0], [np.nan], [3.0]])
>>> fixed = np.array([[0.0], [1.0], [2.0], [3.0]])
>>> y = np.array([0.0, 1.0, 2.0, 3.0])
>>> fx = repair_effects(raw, fixed, y, fixed, y, LinearRegression(), by="cell")
>>> fx.raw_score < fx.repaired_score == 1.0, fx.result.values.round(6).tolist()
(True, [0.022222])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import joblib
import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import is_classifier

from dataworth.apps.repairs import GROUPINGS, Repairs, list_repairs, shapley_values
from dataworth.data import Dataset
from dataworth.errors import DataworthError
from dataworth.models import check_params
from dataworth.result import ValuationResult
from dataworth.utility.base import UtilityBase
from dataworth.utility.model import fit_model, resolve_scorer, score_fitted

__all__ = ["RepairEffectGame", "RepairEffects", "repair_effects", "repair_groups"]


def repair_groups(
    repairs: Repairs, by: str
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]:
    """The player of each repair when repairs are grouped ``by`` row, column or cell, and each
    player's row and column (-1 where the grouping has no such part), players in row-major
    order.

    Examples
    --------
    >>> r = list_repairs([[np.nan, 1.0], [np.nan, np.nan]], [[2.0, 1.0], [2.0, 3.0]])
    >>> [part.tolist() for part in repair_groups(r, "column")]
    [[0, 0, 1], [-1, -1], [0, 1]]
    """
    if by not in GROUPINGS:
        raise DataworthError(f"by must be one of {', '.join(GROUPINGS)}; got {by!r}.")
    none = np.full(len(repairs), -1, dtype=np.intp)
    rows = none if by == "column" else repairs.rows
    columns = none if by == "row" else repairs.columns
    keys, player = np.unique(np.column_stack([rows, columns]), axis=0, return_inverse=True)
    return player.reshape(-1).astype(np.intp), keys[:, 0], keys[:, 1]


class RepairEffectGame(UtilityBase):
    """A model's validation score when only a coalition of repair groups is applied.

    Parameters
    ----------
    raw, repaired : ndarray of shape (n_rows, n_columns)
        The training rows before and after the repair (missing cells NaN).
    y : ndarray of shape (n_rows,)
        Training target.
    valid_X, valid_y : ndarray
        Validation rows (missing cells are filled with the raw training column means).
    model : estimator
        Cloned and fitted for every coalition (:func:`~dataworth.utility.model.fit_model`).
    repairs : Repairs
        The repairs (from :func:`~dataworth.apps.repairs.list_repairs` on ``raw, repaired``).
    player : ndarray of int
        The player of each repair (:func:`repair_groups`).
    scoring : str, optional
        A scikit-learn scorer name (default accuracy for classifiers, r2 for regressors).
    """

    def __init__(
        self,
        raw: NDArray[np.float64],
        repaired: NDArray[np.float64],
        y: NDArray[Any],
        valid_X: NDArray[np.float64],
        valid_y: NDArray[Any],
        model: Any,
        repairs: Repairs,
        player: NDArray[np.intp],
        scoring: str | None = None,
    ) -> None:
        check_params(model)
        self.raw = raw
        self.repaired = repaired
        self.y = np.asarray(y)
        self.fill = _column_means(raw)
        self.valid = Dataset.from_arrays(_filled(np.asarray(valid_X, dtype=np.float64), self.fill),
                                         valid_y)  # fmt: skip
        self.model = model
        self.repairs = repairs
        self.player = player
        classifier = is_classifier(model)
        self.classes = np.unique(self.y) if classifier else None
        self.scoring_name, self._scorer = resolve_scorer(scoring, classifier)
        self.n_players = int(player.max(initial=-1)) + 1
        self.player_names = np.arange(self.n_players)

    def table(self, subset: ArrayLike) -> NDArray[np.float64]:
        """The training rows with the repairs of ``subset`` applied, the rest raw and filled."""
        applied = self.mask_of(subset)[self.player]
        X = self.raw.copy()
        rows, cols = self.repairs.rows[applied], self.repairs.columns[applied]
        X[rows, cols] = self.repaired[rows, cols]
        return _filled(X, self.fill)

    def __call__(self, subset: ArrayLike) -> float:
        try:
            fitted = fit_model(self.model, self.table(subset), self.y, classes=self.classes)
            return score_fitted(self._scorer, fitted, self.valid, self.classes)
        except Exception as exc:
            raise DataworthError(
                f"{type(self.model).__name__} failed on the partly repaired training rows: "
                f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            ) from None

    def fingerprint_parts(self) -> dict[str, str]:
        """Hashes of the data, the model, the scoring and the grouping."""
        return {
            "data": str(joblib.hash((self.raw, self.repaired, self.y, self.valid.X, self.valid.y))),
            "model": str(joblib.hash(repr(self.model))),
            "utility": str(joblib.hash((self.scoring_name, self.player))),
        }


@dataclass(frozen=True)
class RepairEffects:
    """Shapley values of groups of repairs on a validation score.

    ``rows`` and ``columns`` name each group (-1 where the grouping has no such part), and
    ``result`` holds its value; the values add up to ``repaired_score - raw_score``.
    """

    by: str
    rows: NDArray[np.intp]
    columns: NDArray[np.intp]
    result: ValuationResult
    raw_score: float
    repaired_score: float
    scoring: str


def repair_effects(
    raw: ArrayLike,
    repaired: ArrayLike,
    y: ArrayLike,
    valid_X: ArrayLike,
    valid_y: ArrayLike,
    model: Any,
    *,
    by: str = "column",
    scoring: str | None = None,
    budget: int | None = None,
    seed: int = 0,
    estimator: str = "permutation",
) -> RepairEffects:
    """Value the repairs of ``raw`` into ``repaired`` (the training rows) by their effect on
    ``model``'s score on the validation rows, grouped ``by`` row, column or cell.

    Parameters
    ----------
    raw, repaired : array-like of shape (n_rows, n_columns)
        Training features before and after the repair (missing cells NaN).
    y : array-like of shape (n_rows,)
        Training target.
    valid_X, valid_y : array-like
        Validation rows; missing cells are filled with the raw training column means.
    model : estimator
        Any scikit-learn-compatible estimator.
    by : {"row", "column", "cell"}, default="column"
        Players: the repairs of one row, of one column, or each repair.
    scoring : str, optional
        A scikit-learn scorer name (default accuracy for classifiers, r2 for regressors).
    budget, seed, estimator
        As in :func:`~dataworth.apps.repairs.shapley_values` (used beyond
        :data:`~dataworth.apps.repairs.EXACT_PLAYERS` players).

    Raises
    ------
    DataworthError
        When no cell was repaired, or the shapes do not agree.
    """
    before = np.asarray(raw, dtype=np.float64)
    after = np.asarray(repaired, dtype=np.float64)
    repairs = list_repairs(before, after)
    if len(repairs) == 0:
        raise DataworthError("the repair changed no cell of the training rows: nothing to value.")
    target = np.asarray(y)
    if target.shape != (before.shape[0],):
        raise DataworthError(f"y must have one entry per training row ({before.shape[0]}).")
    player, rows, columns = repair_groups(repairs, by)
    game = RepairEffectGame(
        before, after, target, np.asarray(valid_X, dtype=np.float64), np.asarray(valid_y), model,
        repairs, player, scoring,
    )  # fmt: skip
    everything = np.ones(game.n_players, dtype=bool)
    return RepairEffects(
        by=by,
        rows=rows,
        columns=columns,
        result=shapley_values(game, budget=budget, seed=seed, estimator=estimator),
        raw_score=game(~everything),
        repaired_score=game(everything),
        scoring=game.scoring_name,
    )


def _column_means(X: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each column's mean over its non-missing cells; 0 for a column without one."""
    present = ~np.isnan(X)
    counts = present.sum(axis=0)
    sums = np.where(present, X, 0.0).sum(axis=0)
    return np.divide(sums, counts, out=np.zeros(X.shape[1]), where=counts > 0)


def _filled(X: NDArray[np.float64], fill: NDArray[np.float64]) -> NDArray[np.float64]:
    """``X`` with its missing cells set to ``fill`` of their column."""
    return np.where(np.isnan(X), fill, X)
