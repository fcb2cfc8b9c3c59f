"""Why did a data-repair tool change a cell? Shapley values of the input cells behind a repair.

A repair tool (an imputer, an outlier fixer, a rule-based cleaner) changes cells of a table, and
its users cannot see why. Following Deutch, Frost, Gilad & Sheffer (CIKM 2021, "Explaining
data repairs with Shapley values"), the repaired value of one cell is explained by a
cooperative game over the input cells:

* the **players** are groups of the table's non-missing cells: its rows, its columns, or the
  single cells (a missing cell holds nothing and is no player; a row or column without a
  non-missing cell is a null player, valued 0);
* the **value of a coalition** is the repaired value of the target cell when only the cells of
  the coalition are kept, every other cell is masked as missing (NaN), and the tool is run
  again on the masked table (a fresh copy of it each time, fitted on the masked table);
* the **empty coalition** masks every cell. Tools that cannot produce the target cell then
  (or on any other masked table) get the documented ``fallback`` value: when the tool
  raises, returns a table of another shape, or returns a missing or infinite value at the
  target cell, the coalition is worth ``fallback`` (default 0.0, what scikit-learn's imputers
  give an all-missing column with ``keep_empty_features=True``). Tools with a
  ``keep_empty_features`` parameter get it set to True unless the user sets it, so that a column
  masked entirely keeps its place in the output.

By efficiency, the values add up to the repaired value (the grand coalition: the raw table)
minus the empty coalition's value. Few players (at most :data:`EXACT_PLAYERS`) are valued
exactly by enumeration; more with the library's Shapley estimators (``estimator``, default
permutation sampling, whose every permutation adds up exactly, so efficiency holds for the
estimate too), ``budget`` counting tool runs. Every repaired cell of a table is explained from
the same coalitions: each masked table is run once and read at every target cell.

Examples
--------
>>> import numpy as np
>>> raw = np.array([[np.nan, 1.0], [2.0, 1.0], [4.0, 0.0]])
>>> repairs = list_repairs(raw, make_tool("simple-imputer").fit_transform(raw))
>>> repairs.rows.tolist(), repairs.columns.tolist(), repairs.after.tolist()
([0], [0], [3.0])
>>> ex = explain_repair(raw, 0, 0, make_tool("simple-imputer"), by="row")
>>> ex.result.values.round(6).tolist(), ex.repaired_value, ex.empty_value
([0.0, 0.5, 2.5], 3.0, 0.0)
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import Any

import joblib
import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import clone

from dataworth.errors import DataworthError
from dataworth.methods.exact import ExactShapley
from dataworth.methods.shapley import Shapley
from dataworth.models import check_params
from dataworth.result import ValuationResult
from dataworth.utility.base import UtilityBase

__all__ = [
    "EXACT_PLAYERS",
    "GROUPINGS",
    "TOOLS",
    "Explanation",
    "Players",
    "RepairGame",
    "Repairs",
    "ToolRuns",
    "explain_repair",
    "explain_repairs",
    "group_players",
    "list_repairs",
    "make_tool",
    "run_tool",
    "shapley_values",
]

#: Repair tools by name: scikit-learn's imputers (any other transformer by dotted path).
TOOLS: dict[str, str] = {
    "simple-imputer": "sklearn.impute.SimpleImputer",
    "knn-imputer": "sklearn.impute.KNNImputer",
    "iterative-imputer": "sklearn.impute.IterativeImputer",
}

#: How the input cells are grouped into players.
GROUPINGS = ("row", "column", "cell")

#: Games of at most this many players are valued exactly (2^n tool runs); larger ones sampled.
EXACT_PLAYERS = 12


def make_tool(
    name: str, params: dict[str, Any] | None = None, *, random_state: int | None = None
) -> Any:
    """A repair tool: a name of :data:`TOOLS` or a dotted path to a class with ``fit_transform``.

    A dotted path imports its module, which runs that module's code: name only modules you
    trust. ``random_state`` is passed to tools that take one (unless ``params`` sets it);
    ``keep_empty_features`` is set to True where the tool has it (unless ``params`` sets it), so
    that a column masked entirely keeps its place in the output.

    Raises
    ------
    DataworthError
        For an unknown name, a path that names no class with ``fit_transform``, or invalid
        parameters.

    Examples
    --------
    >>> make_tool("knn-imputer", {"n_neighbors": 2})
    KNNImputer(keep_empty_features=True, n_neighbors=2)
    """
    params = dict(params or {})
    path = TOOLS.get(name, name)
    if name not in TOOLS and "." not in name:
        raise DataworthError(
            f"unknown repair tool {name!r}; choose one of: {', '.join(TOOLS)}, or give a dotted "
            "class path with fit_transform, such as sklearn.impute.KNNImputer."
        )
    if path == TOOLS["iterative-imputer"]:
        import_module("sklearn.experimental.enable_iterative_imputer")
    module, _, cls = path.rpartition(".")
    try:
        factory = getattr(import_module(module), cls)
    except (ImportError, AttributeError):
        raise DataworthError(
            f"cannot import repair tool {name!r}; check the dotted path (e.g. "
            "sklearn.impute.KNNImputer) and that its package is installed."
        ) from None
    if not (isinstance(factory, type) and callable(getattr(factory, "fit_transform", None))):
        raise DataworthError(
            f"{name!r} is not a repair tool class (a class with fit_transform, such as "
            "sklearn.impute.KNNImputer); it was not called."
        )
    try:
        tool = factory(**params)
    except TypeError as exc:
        raise DataworthError(f"invalid parameters for repair tool {name!r}: {exc}") from None
    defaults = {"random_state": random_state, "keep_empty_features": True}
    settable: dict[str, Any] = getattr(tool, "get_params", dict)()
    for key, value in defaults.items():
        if value is not None and key in settable and key not in params:
            tool.set_params(**{key: value})
    check_params(tool)
    return tool


def run_tool(tool: Any, X: NDArray[np.float64]) -> NDArray[np.float64]:
    """The table ``X`` repaired by a fresh copy of ``tool`` (``fit_transform``), as floats.

    Raises
    ------
    DataworthError
        When the tool fails or returns a table of another shape.
    """
    try:
        out = np.asarray(_fresh(tool).fit_transform(X.copy()), dtype=np.float64)
    except Exception as exc:
        raise DataworthError(
            f"the repair tool {type(tool).__name__} failed on the table: {type(exc).__name__}: "
            f"{' '.join(str(exc).split())}"
        ) from None
    if out.shape != X.shape:
        raise DataworthError(
            f"the repair tool {type(tool).__name__} returned a table of shape {out.shape} for "
            f"one of shape {X.shape}; a repair tool must keep every row and column."
        )
    return out


def _fresh(tool: Any) -> Any:
    """An unfitted copy of ``tool`` (scikit-learn's ``clone`` where it applies)."""
    try:
        return clone(tool)
    except TypeError:  # not scikit-learn-like: a copy of the object as given
        return copy.deepcopy(tool)


# ---------------------------------------------------------------------------------- listing
@dataclass(frozen=True)
class Repairs:
    """The cells a repair changed, in row-major order: 0-based ``rows`` and ``columns``, the
    value ``before`` (NaN: missing) and ``after`` (NaN: the tool left or made it missing)."""

    rows: NDArray[np.intp]
    columns: NDArray[np.intp]
    before: NDArray[np.float64]
    after: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.rows.size)


def list_repairs(raw: ArrayLike, repaired: ArrayLike, *, rtol: float = 1e-12) -> Repairs:
    """Every cell whose value differs between ``raw`` and ``repaired`` (two tables of the same
    shape, missing cells NaN); two missing cells are equal, and numbers within ``rtol`` of each
    other (relative) are equal, so that a table written to text and read back is unchanged.

    Raises
    ------
    DataworthError
        When the tables differ in shape.

    Examples
    --------
    >>> r = list_repairs([[1.0, np.nan], [3.0, 4.0]], [[1.0, 2.0], [3.0, 5.0]])
    >>> r.rows.tolist(), r.columns.tolist(), r.before.tolist(), r.after.tolist()
    ([0, 1], [1, 1], [nan, 4.0], [2.0, 5.0])
    """
    before = np.asarray(raw, dtype=np.float64)
    after = np.asarray(repaired, dtype=np.float64)
    if before.ndim != 2 or before.shape != after.shape:
        raise DataworthError(
            f"the raw and repaired tables must have the same shape; got {before.shape} and "
            f"{after.shape}."
        )
    both_missing = np.isnan(before) & np.isnan(after)
    with np.errstate(invalid="ignore"):
        same = np.isclose(before, after, rtol=rtol, atol=0.0) | both_missing
    rows, columns = np.nonzero(~same)
    return Repairs(
        rows.astype(np.intp), columns.astype(np.intp), before[rows, columns], after[rows, columns]
    )


# ---------------------------------------------------------------------------------- players
@dataclass(frozen=True)
class Players:
    """Groups of input cells: player ``k`` holds the non-missing cells with ``cell_player ==
    k``; ``rows[k]`` and ``columns[k]`` name it (-1 where the grouping has no such part: a row
    player has no column)."""

    by: str
    cell_player: NDArray[np.intp]
    rows: NDArray[np.intp]
    columns: NDArray[np.intp]

    @property
    def n_players(self) -> int:
        return int(self.rows.size)

    def names(self, feature_names: Sequence[str]) -> NDArray[Any]:
        """Player labels: row numbers, column names, or ``ROW:COLUMN`` for cells."""
        if self.by == "row":
            return self.rows.copy()
        if self.by == "column":
            return np.array([feature_names[c] for c in self.columns], dtype=object)
        return np.array(
            [f"{r}:{feature_names[c]}" for r, c in zip(self.rows, self.columns, strict=True)],
            dtype=object,
        )


def group_players(present: NDArray[np.bool_], by: str) -> Players:
    """The players of the game over a table whose non-missing cells are ``present``: every row,
    every column (those with at least one non-missing cell) or every non-missing cell.

    Examples
    --------
    >>> p = group_players(np.array([[True, False], [False, False]]), "row")
    >>> p.rows.tolist(), p.cell_player.tolist()
    ([0], [[0, -1], [-1, -1]])
    """
    if by not in GROUPINGS:
        raise DataworthError(f"by must be one of {', '.join(GROUPINGS)}; got {by!r}.")
    n, d = present.shape
    row_of, col_of = np.indices((n, d))
    key = {"row": row_of, "column": col_of, "cell": row_of * d + col_of}[by]
    groups, inverse = np.unique(key[present], return_inverse=True)
    cell_player = np.full((n, d), -1, dtype=np.intp)
    cell_player[present] = inverse
    rows = {"row": groups, "column": np.full(groups.size, -1), "cell": groups // d}[by]
    columns = {"row": np.full(groups.size, -1), "column": groups, "cell": groups % d}[by]
    return Players(by, cell_player, rows.astype(np.intp), columns.astype(np.intp))


# ---------------------------------------------------------------------------------- the game
class ToolRuns:
    """The tool's output at the target cells for coalitions of players, each masked table run
    once (a cache shared by the games of every target cell).

    A run that fails, returns another shape, or a missing or infinite value at a target cell
    gives ``fallback`` there; ``fallbacks[t]`` counts the coalitions in which target ``t`` fell
    back.
    """

    def __init__(
        self,
        tool: Any,
        raw: NDArray[np.float64],
        players: Players,
        targets: tuple[NDArray[np.intp], NDArray[np.intp]],
        fallback: float = 0.0,
    ) -> None:
        self.tool = tool
        self.raw = raw
        self.players = players
        self.targets = targets
        self.fallback = float(fallback)
        self.fallbacks = np.zeros(targets[0].size, dtype=np.int64)
        self._cache: dict[bytes, NDArray[np.float64]] = {}

    def __call__(self, mask: NDArray[np.bool_]) -> NDArray[np.float64]:
        """The target cells' repaired values when only the players in ``mask`` are kept."""
        key = np.packbits(mask).tobytes()
        if key not in self._cache:
            self._cache[key] = self._run(mask)
        return self._cache[key]

    @property
    def n_runs(self) -> int:
        """Masked tables run so far."""
        return len(self._cache)

    def masked(self, mask: NDArray[np.bool_]) -> NDArray[np.float64]:
        """The raw table with every cell outside the players of ``mask`` missing."""
        keep = np.append(mask, False)[self.players.cell_player]  # cell_player -1: the False
        return np.where(keep, self.raw, np.nan)

    def _run(self, mask: NDArray[np.bool_]) -> NDArray[np.float64]:
        X = self.masked(mask)
        out = np.full(self.targets[0].size, np.nan)
        try:
            with warnings.catch_warnings():  # masked tables are artificial: their warnings too
                warnings.simplefilter("ignore")
                table = np.asarray(_fresh(self.tool).fit_transform(X), dtype=np.float64)
            if table.shape == X.shape:
                out = table[self.targets]
        except Exception:  # documented: a coalition the tool cannot repair is worth fallback
            pass
        bad = ~np.isfinite(out)
        self.fallbacks += bad
        out[bad] = self.fallback
        return out


class RepairGame(UtilityBase):
    """The repaired value of target cell ``target`` (an index into ``runs.targets``) as a game
    over the players of ``runs``.

    Examples
    --------
    >>> raw = np.array([[np.nan, 1.0], [2.0, 1.0], [4.0, 0.0]])
    >>> runs = ToolRuns(make_tool("simple-imputer"), raw, group_players(~np.isnan(raw), "row"),
    ...                 (np.array([0]), np.array([0])))
    >>> game = RepairGame(runs, 0)
    >>> game([]), game([1]), game([1, 2])
    (0.0, 2.0, 3.0)
    """

    def __init__(self, runs: ToolRuns, target: int, feature_names: Sequence[str] = ()) -> None:
        self.runs = runs
        self.target = int(target)
        names = list(feature_names) or [f"x{j}" for j in range(runs.raw.shape[1])]
        self.n_players = runs.players.n_players
        self.player_names = runs.players.names(names)

    def __call__(self, subset: ArrayLike) -> float:
        return float(self.runs(self.mask_of(subset))[self.target])

    def fingerprint_parts(self) -> dict[str, str]:
        """Hashes of the table, the tool, the grouping and the target cell (not the cache)."""
        runs = self.runs
        cell = (int(runs.targets[0][self.target]), int(runs.targets[1][self.target]))
        return {
            "data": str(joblib.hash(runs.raw)),
            "tool": str(joblib.hash(repr(runs.tool))),
            "utility": str(joblib.hash((runs.players.by, cell, runs.fallback))),
        }


def shapley_values(
    game: UtilityBase,
    *,
    budget: int | None = None,
    seed: int = 0,
    estimator: str = "permutation",
) -> ValuationResult:
    """Shapley values of ``game``: exact for at most :data:`EXACT_PLAYERS` players, else the
    ``shapley`` method with ``estimator`` and ``budget`` utility evaluations (default 2,000)
    drawn with ``seed``.

    Examples
    --------
    >>> from dataworth.testing.games import AdditiveGame
    >>> shapley_values(AdditiveGame([1.0, 2.0])).values.round(12).tolist()
    [1.0, 2.0]
    """
    if game.n_players <= EXACT_PLAYERS:
        return ExactShapley(progress=False).fit(game).result_
    method = Shapley(budget=budget or 2000, estimator=estimator, random_state=seed, progress=False)
    return method.fit(game).result_


# ---------------------------------------------------------------------------------- explain
@dataclass(frozen=True)
class Explanation:
    """Why the tool repaired cell (``row``, ``column``) as it did.

    ``result`` holds one Shapley value per player of ``players`` (its labels: row numbers,
    column names or ``ROW:COLUMN``); they add up to ``repaired_value - empty_value``, the tool's
    output at the cell on the raw table and on the table with every cell masked. ``fallbacks``
    counts the coalitions valued ``fallback`` because the tool could not repair the cell there.
    """

    row: int
    column: int
    players: Players
    result: ValuationResult
    repaired_value: float
    empty_value: float
    fallbacks: int

    def by_group(self, n_groups: int) -> NDArray[np.float64]:
        """The values spread over every row (or column) of the table, 0 for groups without a
        non-missing cell; for cells, use :meth:`by_cell`."""
        if self.players.by == "cell":
            raise DataworthError("cell players are spread over the table by by_cell, not by_group.")
        parts = self.players.rows if self.players.by == "row" else self.players.columns
        out = np.zeros(n_groups)
        out[parts] = self.result.values
        return out

    def by_cell(self, shape: tuple[int, int]) -> NDArray[np.float64]:
        """The values as a table of ``shape`` (cell grouping only), 0 for missing cells."""
        if self.players.by != "cell":
            raise DataworthError(f"{self.players.by} players are spread by by_group, not by_cell.")
        out = np.zeros(shape)
        out[self.players.rows, self.players.columns] = self.result.values
        return out


def explain_repairs(
    raw: ArrayLike,
    cells: Sequence[tuple[int, int]],
    tool: Any,
    *,
    by: str = "row",
    feature_names: Sequence[str] = (),
    budget: int | None = None,
    seed: int = 0,
    estimator: str = "permutation",
    fallback: float = 0.0,
) -> list[Explanation]:
    """Explain the tool's repair of each of ``cells`` (0-based row, column) of the table ``raw``
    (missing cells NaN) by Shapley values of its input cells grouped ``by`` row, column or cell.

    Parameters
    ----------
    raw : array-like of shape (n_rows, n_columns)
        The table the tool repairs: its feature columns only, never the target.
    cells : sequence of (int, int)
        The target cells.
    tool : object
        A repair tool with ``fit_transform`` (:func:`make_tool`); a fresh copy is fitted on
        every masked table.
    by : {"row", "column", "cell"}, default="row"
        How the input cells are grouped into players.
    feature_names : sequence of str, optional
        Column names for the player labels (default ``x0, x1, ...``).
    budget : int, optional
        Tool runs per target cell when the players are more than :data:`EXACT_PLAYERS` (default
        2,000); coalitions shared between target cells are run once.
    seed : int, default=0
        Seed of the sampled coalitions (the same for every target cell).
    estimator : str, default="permutation"
        Shapley estimator of :data:`dataworth.estimators.ESTIMATORS` for large games.
    fallback : float, default=0.0
        The value of a coalition whose masked table the tool cannot repair at the cell.

    Returns
    -------
    list of Explanation
        One per cell, in the order given.

    Examples
    --------
    >>> raw = np.array([[np.nan, 0.0], [10.0, 0.1], [20.0, 0.2], [np.nan, 5.0]])
    >>> [ex] = explain_repairs(raw, [(0, 0)], make_tool("knn-imputer", {"n_neighbors": 2}))
    >>> ex.by_group(4).round(6).tolist()
    [0.0, 2.5, 12.5, 0.0]
    """
    table = _table(raw)
    rows, columns = _targets(table, cells)
    players = group_players(~np.isnan(table), by)
    runs = ToolRuns(tool, table, players, (rows, columns), fallback)
    full = runs(np.ones(players.n_players, dtype=bool))
    empty = runs(np.zeros(players.n_players, dtype=bool))
    explanations = []
    for t in range(rows.size):
        game = RepairGame(runs, t, feature_names)
        result = shapley_values(game, budget=budget, seed=seed, estimator=estimator)
        explanations.append(
            Explanation(
                int(rows[t]), int(columns[t]), players, result, float(full[t]), float(empty[t]),
                int(runs.fallbacks[t]),
            )
        )  # fmt: skip
    return explanations


def explain_repair(raw: ArrayLike, row: int, column: int, tool: Any, **options: Any) -> Explanation:
    """:func:`explain_repairs` for the one cell (``row``, ``column``); ``options`` as there.

    Examples
    --------
    >>> raw = np.array([[np.nan, 1.0], [2.0, 1.0], [4.0, 0.0]])
    >>> ex = explain_repair(raw, 0, 0, make_tool("simple-imputer"), by="column")
    >>> ex.by_group(2).round(6).tolist()
    [3.0, 0.0]
    """
    return explain_repairs(raw, [(row, column)], tool, **options)[0]


def _table(raw: ArrayLike) -> NDArray[np.float64]:
    table = np.asarray(raw, dtype=np.float64)
    if table.ndim != 2 or 0 in table.shape:
        raise DataworthError(f"the table must be 2-D with rows and columns; got {table.shape}.")
    if np.isinf(table).any():
        row, col = map(int, np.argwhere(np.isinf(table))[0])
        raise DataworthError(f"the table has an infinite value at row {row}, column {col}.")
    return table


def _targets(
    table: NDArray[np.float64], cells: Sequence[tuple[int, int]]
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """The target cells as row and column arrays, each checked to lie in the table."""
    n, d = table.shape
    for row, column in cells:
        if not (0 <= row < n and 0 <= column < d):
            raise DataworthError(
                f"cell ({row}, {column}) is outside the table of {n} rows and {d} columns "
                "(0-based)."
            )
    if not cells:
        raise DataworthError("no cell to explain.")
    rows, columns = zip(*cells, strict=True)
    return np.asarray(rows, dtype=np.intp), np.asarray(columns, dtype=np.intp)
