"""Explaining a data-repair tool with Shapley values (issue 18, part 2): ``dataworth.apps.repairs``,
``dataworth.apps.repair_effects`` and ``dataworth repairs``, on hand-built tables whose answers
are known."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from cli_runner import run_cli
from dataworth.apps.repair_effects import repair_effects, repair_groups
from dataworth.apps.repairs import (
    EXACT_PLAYERS,
    RepairGame,
    ToolRuns,
    explain_repair,
    explain_repairs,
    group_players,
    list_repairs,
    make_tool,
)
from dataworth.errors import DataworthError
from dataworth.testing.games import exact_semivalue_bruteforce, shapley_weight

nan = np.nan


class ClipTo:
    """An outlier fixer: every value outside [low, high] is clipped to the nearer bound."""

    def __init__(self, low: float = -1.0, high: float = 1.0) -> None:
        self.low, self.high = low, high

    def fit_transform(self, X: Any) -> Any:
        return np.clip(X, self.low, self.high)


class NeedsData:
    """A tool that fails on a table without a single value, as some cleaners do."""

    def fit_transform(self, X: Any) -> Any:
        if np.isnan(X).all():
            raise ValueError("nothing to learn from")
        return np.where(np.isnan(X), np.nanmax(X), X)


class CountingMean:
    """A mean imputer that counts its runs over all copies (the game fits a fresh copy)."""

    runs = 0

    def fit_transform(self, X: Any) -> Any:
        CountingMean.runs += 1
        empty = np.isnan(X).all(axis=0)  # an all-missing column: 0, as scikit-learn's fill
        means = np.nanmean(np.where(empty, 0.0, X), axis=0)
        return np.where(np.isnan(X), means, X)


# The KNN table: row 0 misses `a`; rows 1 and 2 are the only rows that hold `a` (the donors, so
# with n_neighbors=2 they are the neighbours whatever is masked); rows 3 and 4 miss `a` too and
# can never be neighbours. The repair of (0, a) is the mean of the neighbours: (10 + 20) / 2.
KNN_TABLE = np.array(
    [
        [nan, 0.0],
        [10.0, 0.1],
        [20.0, 0.3],
        [nan, 5.0],
        [nan, -3.0],
    ]
)


def knn() -> Any:
    return make_tool("knn-imputer", {"n_neighbors": 2})


# ------------------------------------------------------------------------------ listing, tools
def test_list_repairs_finds_every_changed_cell_in_row_major_order() -> None:
    raw = np.array([[1.0, nan, 3.0], [nan, nan, 6.0]])
    repaired = np.array([[1.0, 2.0, 3.0], [4.0, nan, 0.0]])
    found = list_repairs(raw, repaired)
    assert found.rows.tolist() == [0, 1, 1]
    assert found.columns.tolist() == [1, 0, 2]
    np.testing.assert_array_equal(found.before, [nan, nan, 6.0])
    np.testing.assert_array_equal(found.after, [2.0, 4.0, 0.0])
    assert len(list_repairs(raw, raw)) == 0  # a missing cell left missing is no change
    assert len(list_repairs([[1.0]], [[1.0 + 1e-15]])) == 0  # text round-trip noise
    with pytest.raises(DataworthError, match="same shape"):
        list_repairs(raw, repaired[:1])


def test_make_tool_builds_named_and_dotted_tools_and_refuses_others() -> None:
    assert type(make_tool("simple-imputer")).__name__ == "SimpleImputer"
    assert make_tool("simple-imputer").keep_empty_features is True
    assert make_tool("simple-imputer", {"keep_empty_features": False}).keep_empty_features is False
    assert make_tool("iterative-imputer", random_state=3).random_state == 3
    assert isinstance(make_tool(f"{__name__}.ClipTo", {"high": 2.0}), ClipTo)
    with pytest.raises(DataworthError, match="unknown repair tool 'nope'"):
        make_tool("nope")
    with pytest.raises(DataworthError, match="not a repair tool class"):
        make_tool("os.system")
    with pytest.raises(DataworthError, match="cannot import"):
        make_tool("no_such_package.Tool")
    with pytest.raises(DataworthError, match="invalid parameters"):
        make_tool("knn-imputer", {"n_neighbors": 0})


def test_players_group_the_non_missing_cells() -> None:
    present = ~np.isnan(KNN_TABLE)
    rows = group_players(present, "row")
    assert rows.rows.tolist() == [0, 1, 2, 3, 4] and (rows.columns == -1).all()
    columns = group_players(present, "column")
    assert columns.columns.tolist() == [0, 1]
    cells = group_players(present, "cell")
    assert cells.n_players == int(present.sum())
    assert (cells.cell_player[~present] == -1).all()


# ------------------------------------------------------------------------------ the KNN imputer
def test_a_knn_repair_is_explained_by_exactly_its_neighbours() -> None:
    ex = explain_repair(KNN_TABLE, 0, 0, knn(), by="row")
    assert ex.repaired_value == pytest.approx(15.0) and ex.empty_value == 0.0
    # the game on the neighbours: u(1) = 10, u(2) = 20, u(1, 2) = 15, u() = 0
    np.testing.assert_allclose(ex.by_group(5), [0.0, 2.5, 12.5, 0.0, 0.0], atol=1e-12)

    cells = explain_repair(KNN_TABLE, 0, 0, knn(), by="cell")
    table = cells.by_cell(KNN_TABLE.shape)
    np.testing.assert_array_equal(table[3:], 0.0)  # non-neighbour rows: exactly 0
    assert np.abs(table[1:3]).sum() > 0
    assert table.sum() == pytest.approx(15.0)


def test_the_enumeration_is_the_shapley_value_of_the_game() -> None:
    present = ~np.isnan(KNN_TABLE)
    runs = ToolRuns(
        knn(), KNN_TABLE, group_players(present, "cell"), (np.array([0]), np.array([0]))
    )
    game = RepairGame(runs, 0)
    brute = exact_semivalue_bruteforce(game, shapley_weight)
    ex = explain_repair(KNN_TABLE, 0, 0, knn(), by="cell")
    np.testing.assert_allclose(ex.result.values, brute, atol=1e-9)
    assert runs.n_runs == 2**game.n_players  # each coalition run once


# ------------------------------------------------------------------------------ the mean imputer
def _mean_game_shapley(x: np.ndarray, empty: float) -> np.ndarray:
    """Shapley values of u(S) = mean(x_S), u() = empty: by linearity over coalition sizes,
    phi_j = ((x_j - empty) + (H_m - 1)(x_j - mean of the others)) / m for m players."""
    m = x.size
    harmonic = sum(1.0 / k for k in range(1, m + 1))
    others = (x.sum() - x) / (m - 1)
    return ((x - empty) + (harmonic - 1.0) * (x - others)) / m


def test_a_mean_repair_spreads_evenly_over_equal_cells_of_its_column() -> None:
    raw = np.array([[nan, 1.0], [4.0, 2.0], [4.0, 3.0], [4.0, 5.0], [4.0, 8.0]])
    ex = explain_repair(raw, 0, 0, make_tool("simple-imputer"), by="cell")
    table = ex.by_cell(raw.shape)
    np.testing.assert_allclose(table[1:, 0], 1.0, atol=1e-12)  # n - 1 = 4 players share 4
    np.testing.assert_array_equal(table[:, 1], 0.0)  # the other column plays no part
    by_column = explain_repair(raw, 0, 0, make_tool("simple-imputer"), by="column")
    np.testing.assert_allclose(by_column.by_group(2), [4.0, 0.0], atol=1e-12)


def test_a_mean_repair_of_distinct_cells_has_the_closed_form() -> None:
    x = np.array([1.0, 2.0, 4.0, 8.0, 16.0, -3.0])
    raw = np.column_stack([np.r_[nan, x], np.arange(7.0)])
    ex = explain_repair(raw, 0, 0, make_tool("simple-imputer"), by="row")
    assert ex.empty_value == 0.0  # an all-missing column: scikit-learn's empty-feature fill
    np.testing.assert_allclose(ex.by_group(7)[1:], _mean_game_shapley(x, 0.0), atol=1e-12)
    assert ex.by_group(7)[0] == 0.0


# ------------------------------------------------------------------------------ efficiency
def test_sampled_values_add_up_to_the_repair_minus_the_empty_coalition() -> None:
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(EXACT_PLAYERS + 4, 3))
    raw[0, 1] = raw[5, 2] = nan
    [first, second] = explain_repairs(raw, [(0, 1), (5, 2)], knn(), by="row", budget=340, seed=1)
    for ex in (first, second):
        assert ex.result.method == "shapley"  # more players than the exact limit
        assert ex.result.values.sum() == pytest.approx(ex.repaired_value - ex.empty_value)
    again = explain_repair(raw, 5, 2, knn(), by="row", budget=340, seed=1)
    np.testing.assert_allclose(again.result.values, second.result.values)  # the seed decides


def test_every_repaired_cell_is_explained_from_the_same_tool_runs() -> None:
    rng = np.random.default_rng(1)
    raw = rng.normal(size=(EXACT_PLAYERS + 8, 2))
    raw[[0, 3, 7], 0] = nan
    cells = [(0, 0), (3, 0), (7, 0)]
    CountingMean.runs = 0
    [first] = explain_repairs(raw, cells[:1], CountingMean(), by="row", budget=300)
    alone = CountingMean.runs
    CountingMean.runs = 0
    explained = explain_repairs(raw, cells, CountingMean(), by="row", budget=300)
    assert CountingMean.runs == alone <= 300
    np.testing.assert_allclose(explained[0].result.values, first.result.values)
    for ex in explained:
        assert ex.result.values.sum() == pytest.approx(ex.repaired_value - ex.empty_value)


def test_a_tool_that_cannot_repair_the_empty_coalition_gets_the_fallback() -> None:
    raw = np.array([[nan, 1.0], [2.0, 1.0], [6.0, 0.0]])
    ex = explain_repair(raw, 0, 0, NeedsData(), by="row", fallback=-1.0)
    assert ex.repaired_value == 6.0 and ex.empty_value == -1.0 and ex.fallbacks >= 1
    assert ex.result.values.sum() == pytest.approx(7.0)
    dropped = make_tool("knn-imputer", {"keep_empty_features": False})  # drops an empty column
    ex = explain_repair(raw, 0, 0, dropped, by="column", fallback=0.5)
    assert ex.empty_value == 0.5 and ex.result.values.sum() == pytest.approx(4.0 - 0.5)


def test_an_outlier_repair_is_explained_by_the_cell_itself() -> None:
    raw = np.array([[0.5, 9.0], [0.2, -0.3], [-0.4, 0.1]])
    found = list_repairs(raw, ClipTo().fit_transform(raw))
    assert (found.rows.tolist(), found.columns.tolist(), found.after.tolist()) == ([0], [1], [1.0])
    ex = explain_repair(raw, 0, 1, ClipTo(), by="cell")
    table = ex.by_cell(raw.shape)
    assert table[0, 1] == pytest.approx(1.0) and np.abs(np.delete(table.ravel(), 1)).max() == 0


def test_cells_outside_the_table_are_refused() -> None:
    with pytest.raises(DataworthError, match="outside the table"):
        explain_repair(KNN_TABLE, 5, 0, knn())


# ------------------------------------------------------------------------------ effects on a model
def _effect_data() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = 3.0 * X[:, 0] + X[:, 1]
    raw = X.copy()
    raw[:8, 0] = nan
    good = X.copy()
    bad = X.copy()
    bad[:8, 0] = -X[:8, 0] * 2  # wrong repairs
    Xv = rng.normal(size=(30, 2))
    return raw, good, bad, y, Xv, 3.0 * Xv[:, 0] + Xv[:, 1]


def test_true_repairs_help_and_wrong_ones_hurt() -> None:
    raw, good, bad, y, Xv, yv = _effect_data()
    helped = repair_effects(raw, good, y, Xv, yv, LinearRegression(), by="column")
    assert helped.columns.tolist() == [0] and helped.rows.tolist() == [-1]
    assert helped.result.values[0] > 0 and helped.repaired_score == pytest.approx(1.0)
    hurt = repair_effects(raw, bad, y, Xv, yv, LinearRegression(), by="row")
    assert hurt.rows.tolist() == list(range(8))
    assert hurt.result.values.sum() == pytest.approx(hurt.repaired_score - hurt.raw_score)
    assert hurt.repaired_score < hurt.raw_score and (hurt.result.values < 0).sum() >= 6


def test_repair_groups_are_in_row_major_order() -> None:
    found = list_repairs([[nan, 1.0], [nan, nan]], [[2.0, 1.0], [2.0, 3.0]])
    player, rows, columns = repair_groups(found, "cell")
    assert player.tolist() == [0, 1, 2] and rows.tolist() == [0, 1, 1]
    assert columns.tolist() == [0, 0, 1]
    with pytest.raises(DataworthError, match="by must be"):
        repair_groups(found, "diagonal")


def test_an_unrepaired_table_has_no_effect_to_value() -> None:
    raw, _, _, y, Xv, yv = _effect_data()
    with pytest.raises(DataworthError, match="changed no cell"):
        repair_effects(raw, raw, y, Xv, yv, LinearRegression())


# ------------------------------------------------------------------------------ the command
def _write(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows([["" if isinstance(v, float) and np.isnan(v) else v for v in r]
                          for r in rows])  # fmt: skip
    return path


def _read(path: Path) -> list[list[str]]:
    with path.open(newline="") as fh:
        return list(csv.reader(fh))


@pytest.fixture
def knn_csv(tmp_path: Path) -> Path:
    rows = [[*r, i % 2] for i, r in enumerate(KNN_TABLE.tolist())]
    return _write(tmp_path / "raw.csv", ["a", "b", "y"], rows)


KNN_ARGS = ["--target", "y", "--tool", "knn-imputer", "--tool-params", '{"n_neighbors": 2}']


def test_cli_lists_every_changed_cell(capsys, tmp_path, knn_csv) -> None:
    out = tmp_path / "repairs.csv"
    result = run_cli(capsys, "repairs", knn_csv, *KNN_ARGS, "--out", out)
    assert result.code == 0, result.err
    lines = _read(out)
    assert lines[0] == ["row", "column", "before", "after"]
    assert lines[1:] == [["0", "a", "", "15.0"], ["3", "a", "", "15.0"], ["4", "a", "", "15.0"]]
    assert "changed 3 of 10 cells" in result.out


def test_cli_explains_a_cell_by_row_column_and_cell(capsys, tmp_path, knn_csv) -> None:
    out = tmp_path / "why.csv"
    base = ["repairs", knn_csv, *KNN_ARGS, "--out", out, "--cell", "0,a"]
    assert run_cli(capsys, *base).code == 0
    lines = _read(out)
    assert lines[0] == ["row", "value"] and [r[0] for r in lines[1:]] == ["0", "1", "2", "3", "4"]
    np.testing.assert_allclose([float(r[1]) for r in lines[1:]], [0, 2.5, 12.5, 0, 0], atol=1e-9)

    assert run_cli(capsys, *base, "--by", "column").code == 0
    lines = _read(out)
    assert lines[0] == ["column", "value"] and [r[0] for r in lines[1:]] == ["a", "b"]

    result = run_cli(capsys, *base, "--by", "cell")
    assert result.code == 0 and "add up to 15" in result.out
    lines = _read(out)
    assert lines[0] == ["row", "column", "value"] and len(lines) == 1 + KNN_TABLE.size
    assert sum(float(r[2]) for r in lines[1:]) == pytest.approx(15.0)


def test_cli_explains_every_repaired_cell(capsys, tmp_path, knn_csv) -> None:
    out, every = tmp_path / "repairs.csv", tmp_path / "every.csv"
    result = run_cli(capsys, "repairs", knn_csv, *KNN_ARGS, "--out", out,
                     "--explanations", every, "--by", "column")  # fmt: skip
    assert result.code == 0, result.err
    lines = _read(every)
    assert lines[0] == ["row", "column", "input_column", "value"]
    assert [r[:3] for r in lines[1:3]] == [["0", "a", "a"], ["0", "a", "b"]]
    assert len(lines) == 1 + 3 * 2


def test_cli_values_repairs_by_their_effect(capsys, tmp_path) -> None:
    raw, _, bad, y, Xv, yv = _effect_data()
    src = _write(tmp_path / "raw.csv", ["a", "b", "y"], np.column_stack([raw, y]).tolist())
    fixed = _write(tmp_path / "fixed.csv", ["b", "a"], bad[:, ::-1].tolist())  # any order
    valid = _write(tmp_path / "valid.csv", ["a", "b", "y"], np.column_stack([Xv, yv]).tolist())
    out = tmp_path / "effects.csv"
    result = run_cli(capsys, "repairs", src, "--target", "y", "--repaired", fixed, "--effect",
                     "--by", "cell", "--valid", valid, "--out", out)  # fmt: skip
    assert result.code == 0, result.err
    lines = _read(out)
    assert lines[0] == ["row", "column", "value"] and len(lines) == 1 + 8
    assert [r[:2] for r in lines[1:3]] == [["0", "a"], ["1", "a"]]
    assert "repairs that hurt (negative value)" in result.out
    assert "column's mean over the raw training rows" in result.err

    result = run_cli(capsys, "repairs", src, "--target", "y", "--repaired", fixed, "--effect",
                     "--out", out, "--model", "ridge")  # fmt: skip
    assert result.code == 0, result.err
    assert _read(out)[0] == ["column", "value"] and "of the 32 complete rows" in result.err


def test_cli_writes_column_names_spreadsheet_safe(capsys, tmp_path) -> None:
    src = _write(tmp_path / "raw.csv", ["=cmd", "b", "y"], [[nan, 1, 0], [2, 1, 1], [4, 0, 0]])
    out = tmp_path / "repairs.csv"
    assert run_cli(capsys, "repairs", src, "--target", "y", "--tool", "simple-imputer",
                   "--out", out).code == 0  # fmt: skip
    assert _read(out)[1] == ["0", "'=cmd", "", "3.0"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--tool", "no-such-tool"], "unknown repair tool 'no-such-tool'"),
        (["--tool", "knn-imputer", "--cell", "1,a"], "is not a repaired cell"),
        (["--tool", "knn-imputer", "--cell", "7,a"], "out of range"),
        (["--tool", "knn-imputer", "--cell", "0,zz"], "not a feature column"),
        (["--tool", "knn-imputer", "--cell", "a"], "must be ROW,COLUMN"),
        ([], "give --tool"),
        (["--repaired", "SHORT", "--cell", "0,a"], "re-runs the tool"),
        (["--repaired", "SHORT"], "must have the shape of"),
        (["--tool", "knn-imputer", "--tool-params", "[1]"], "must be a JSON object"),
        (["--tool", "knn-imputer", "--effect", "--cell", "0,a"], "choose one"),
    ],
)
def test_cli_bad_input_is_one_error_line(capsys, tmp_path, knn_csv, extra, message) -> None:
    short = _write(tmp_path / "short.csv", ["a", "b"], [[1, 2]])
    args = [short if a == "SHORT" else a for a in extra]
    result = run_cli(capsys, "repairs", knn_csv, "--target", "y", *args,
                     "--out", tmp_path / "o.csv")  # fmt: skip
    assert result.code == 2 and len(result.err_lines) == 1, result.err
    assert result.err_lines[0].startswith("error: ") and message in result.err_lines[0]
    assert not (tmp_path / "o.csv").exists()


def test_cli_refuses_a_missing_target_and_text_features(capsys, tmp_path, knn_csv) -> None:
    result = run_cli(capsys, "repairs", knn_csv, "--target", "label", "--tool", "knn-imputer",
                     "--out", tmp_path / "o.csv")  # fmt: skip
    assert result.code == 2 and result.err_lines == [
        f"error: target column 'label' not found in {knn_csv}; available columns: 'a', 'b', 'y'."
    ]
    text = _write(tmp_path / "text.csv", ["a", "k", "y"], [[1, "x", 0], [nan, "z", 1]])
    result = run_cli(capsys, "repairs", text, "--target", "y", "--tool", "simple-imputer",
                     "--out", tmp_path / "o.csv")  # fmt: skip
    assert result.code == 2 and "'k'" in result.err and "not numeric" in result.err
    result = run_cli(capsys, "repairs", text, "--target", "y", "--tool", "simple-imputer",
                     "--drop", "k", "--out", tmp_path / "o.csv")  # fmt: skip
    assert result.code == 0, result.err


def test_cli_effect_needs_a_complete_row_or_a_validation_file(capsys, tmp_path) -> None:
    src = _write(tmp_path / "raw.csv", ["a", "b", "y"], [[nan, 1, 0], [2, nan, 1], [nan, 0, 0]])
    result = run_cli(capsys, "repairs", src, "--target", "y", "--tool", "simple-imputer",
                     "--effect", "--out", tmp_path / "o.csv")  # fmt: skip
    assert result.code == 2 and len(result.err_lines) == 1
    assert "every row" in result.err and "give --valid" in result.err


def test_cli_says_how_far_to_trust_sampled_values(capsys, tmp_path) -> None:
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(EXACT_PLAYERS + 4, 3))
    raw[0, 1] = nan
    src = _write(
        tmp_path / "raw.csv", ["a", "b", "c", "y"], np.column_stack([raw, raw[:, 0]]).tolist()
    )
    result = run_cli(capsys, "repairs", src, "--target", "y", "--tool", "knn-imputer",
                     "--cell", "0,b", "--budget", "340", "--out", tmp_path / "o.csv")  # fmt: skip
    assert result.code == 0, result.err
    assert "sampled: permutation, budget 340, seed 0" in result.out
    assert "note: sampled values:" in result.err and "Spearman" in result.err
