"""The ``dataworth`` command line: output files, every method, groups, user errors, checkpoints.

Most commands run in-process through :func:`dataworth.cli.main` (fast); a few run as a real
subprocess to prove that no traceback reaches the terminal. Data are tiny CSV files cut from
scikit-learn's bundled iris data, so the whole module runs in well under a minute.
"""

from __future__ import annotations

import csv
import itertools
import math
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from cli_runner import Outcome, run_cli, run_subprocess
from dataworth.data import Dataset
from dataworth.estimators import ESTIMATORS
from dataworth.methods import METHODS
from dataworth.result import ValuationResult

HEADER_ROWS = "index,value,stderr,count"
HEADER_GROUPS = "group,value,stderr,count"
TARGET = "label"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

#: Extra arguments that make each method run quickly on ~30 rows (exact-shapley: own tests).
METHOD_ARGS: dict[str, list[str]] = {
    "loo": [],
    "shapley": ["--budget", "200"],
    "permutation-shapley": ["--budget", "3"],
    "tmc-shapley": ["--budget", "3"],
    "beta-shapley": ["--budget", "3"],
    "banzhaf": ["--budget", "16"],
    "least-core": ["--budget", "100"],
    "class-wise-shapley": ["--budget", "3"],
    "knn-shapley": ["--k", "3"],
    "data-oob": ["--budget", "64"],
    "influence": [],  # closed form for logistic (multinomial on iris), linear and ridge
    "lava": [],
    "cgs": [],
}


# ------------------------------------------------------------------------------------ helpers



def read_out(path: Path) -> tuple[str, list[list[str]]]:
    """Header line and data rows of an OUT.csv file."""
    lines = path.read_text().splitlines()
    assert lines, f"{path} is empty"
    return lines[0], list(csv.reader(lines[1:]))


def assert_ok(res: Outcome) -> None:
    assert res.code == 0, f"exit {res.code}; stderr:\n{res.err}"
    assert "Traceback" not in res.err


def assert_user_error(res: Outcome, *needles: str) -> str:
    """Exit 2, one ``error:`` line (the last one; anything before it is a note), no traceback."""
    assert "Traceback" not in res.err + res.out, res.err
    assert res.code == 2, f"exit {res.code}; stderr:\n{res.err}"
    lines = res.err_lines
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, f"expected one error line, got:\n{res.err}"
    assert lines[-1] == errors[0], f"the error line is not the last line:\n{res.err}"
    assert all(line.startswith("note:") for line in lines[:-1]), res.err
    message = errors[0]
    assert len(message) > len("error: ") + 10
    for needle in needles:
        assert needle.lower() in message.lower(), f"{needle!r} not in {message!r}"
    return message


def write_frame(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


# ------------------------------------------------------------------------------------- data
@dataclass
class Files:
    root: Path
    iris40: Path  # 40 rows, 3 classes (valued without --valid: a split is taken)
    train30: Path  # 30 rows, valued with --valid valid20
    valid20: Path
    other30: Path  # same columns as train30, different rows (a different dataset)
    tiny7: Path  # 7 rows, 3 classes, for exact-shapley (with --valid valid20)
    rows21: Path  # 21 rows: one more player than exact-shapley enumerates
    groups40: Path  # iris40 plus a "source" column of 4 data sources
    groups_valid20: Path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    root = tmp_path_factory.mktemp("cli-data")
    iris = load_iris()
    frame = pd.DataFrame(iris.data, columns=FEATURES)
    frame[TARGET] = iris.target
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)

    def classes_ok(part: pd.DataFrame) -> bool:
        return part[TARGET].nunique() == 3

    # the parts used for training must hold every class
    assert classes_ok(frame.iloc[:7]) and classes_ok(frame.iloc[:30])
    sources = np.array(["north", "south", "east", "west"])[np.arange(40) % 4]
    groups = frame.iloc[:40].copy()
    groups.insert(0, "source", sources)
    groups_valid = frame.iloc[100:120].copy()
    groups_valid.insert(0, "source", "north")
    return Files(
        root=root,
        iris40=write_frame(frame.iloc[:40], root / "iris40.csv"),
        train30=write_frame(frame.iloc[:30], root / "train30.csv"),
        valid20=write_frame(frame.iloc[100:120], root / "valid20.csv"),
        other30=write_frame(frame.iloc[60:90], root / "other30.csv"),
        tiny7=write_frame(frame.iloc[:7], root / "tiny7.csv"),
        rows21=write_frame(frame.iloc[:21], root / "rows21.csv"),
        groups40=write_frame(groups, root / "groups40.csv"),
        groups_valid20=write_frame(groups_valid, root / "groups_valid20.csv"),
    )


def test_method_table_covers_registry() -> None:
    """Every registered method is exercised by the tests below (a new one must be added)."""
    assert set(METHOD_ARGS) | {"exact-shapley"} == set(METHODS)


# ------------------------------------------------------------------------ 1. every method runs
def _check_rows(path: Path, expected_index: list[int], method: str) -> None:
    header, rows = read_out(path)
    assert header == HEADER_ROWS
    assert [int(r[0]) for r in rows] == expected_index
    for r in rows:
        assert len(r) == 4
        value, _stderr, count = float(r[1]), float(r[2]), int(r[3])
        assert math.isfinite(value), f"{method}: non-finite value in row {r}"
        assert count >= 0


@pytest.mark.parametrize("method", sorted(METHOD_ARGS))
def test_every_method_with_valid_file(method, files, tmp_path, capsys) -> None:
    out = tmp_path / "values.csv"
    res = run_cli(
        capsys,
        "value", files.train30, "--target", TARGET, "--method", method,
        "--valid", files.valid20, "--out", out, "--seed", 1, *METHOD_ARGS[method],
    )  # fmt: skip
    assert_ok(res)
    _check_rows(out, list(range(30)), method)


@pytest.mark.parametrize("method", sorted(METHOD_ARGS))
def test_every_method_with_split(method, files, tmp_path, capsys) -> None:
    """Without --valid, 20% is split off with the seed; only the other rows are valued."""
    out = tmp_path / "values.csv"
    res = run_cli(
        capsys,
        "value", files.iris40, "--target", TARGET, "--method", method,
        "--out", out, "--seed", 3, *METHOD_ARGS[method],
    )  # fmt: skip
    assert_ok(res)
    train, valid = Dataset.from_file(files.iris40, TARGET).split(0.2, random_state=3)
    expected = train.row_labels.tolist()
    held_out = set(valid.row_labels.tolist())
    assert len(expected) == 40 - math.ceil(0.2 * 40)
    assert expected == sorted(expected) and not held_out & set(expected)
    assert set(expected) | held_out == set(range(40))
    _check_rows(out, expected, method)


def test_split_depends_on_seed(files, tmp_path, capsys) -> None:
    labels = []
    for seed in (0, 1):
        out = tmp_path / f"v{seed}.csv"
        res = run_cli(
            capsys, "value", files.iris40, "--target", TARGET, "--method", "knn-shapley",
            "--seed", seed, "--out", out,
        )  # fmt: skip
        assert_ok(res)
        labels.append([int(r[0]) for r in read_out(out)[1]])
    assert len(labels[0]) == len(labels[1]) == 32
    assert labels[0] != labels[1]


def test_values_go_to_stdout_without_out(files, capsys) -> None:
    res = run_cli(
        capsys, "value", files.train30, "--target", TARGET, "--valid", files.valid20,
        "--method", "knn-shapley",
    )  # fmt: skip
    assert_ok(res)
    lines = res.out.splitlines()
    assert lines[0] == HEADER_ROWS
    assert [int(line.split(",")[0]) for line in lines[1:]] == list(range(30))


def test_parquet_input(files, tmp_path, capsys) -> None:
    parquet = tmp_path / "train.parquet"
    pd.read_csv(files.train30).to_parquet(parquet)
    out_pq, out_csv = tmp_path / "pq.csv", tmp_path / "csv.csv"
    for train, out in ((parquet, out_pq), (files.train30, out_csv)):
        res = run_cli(
            capsys, "value", train, "--target", TARGET, "--valid", files.valid20,
            "--method", "loo", "--out", out,
        )  # fmt: skip
        assert_ok(res)
    assert out_pq.read_bytes() == out_csv.read_bytes()


def _independent_exact_shapley(train: pd.DataFrame, valid: pd.DataFrame) -> np.ndarray:
    """Shapley values by enumerating every subset; utility = accuracy on the valid rows."""
    X, y = train[FEATURES].to_numpy(float), train[TARGET].to_numpy()
    Xv, yv = valid[FEATURES].to_numpy(float), valid[TARGET].to_numpy()
    n = len(y)

    def utility(subset: tuple[int, ...]) -> float:
        if not subset:
            return 0.0  # --default-score
        labels = y[list(subset)]
        if (labels == labels[0]).all():
            return float(np.mean(yv == labels[0]))  # constant predictor, no fit
        model = LogisticRegression(max_iter=1000).fit(X[list(subset)], labels)
        return float(np.mean(model.predict(Xv) == yv))

    u = {s: utility(s) for k in range(n + 1) for s in itertools.combinations(range(n), k)}
    phi = np.zeros(n)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for k in range(n):
            weight = math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n)
            for s in itertools.combinations(others, k):
                phi[i] += weight * (u[tuple(sorted((*s, i)))] - u[s])
    return phi


def test_exact_shapley_matches_enumeration(files, tmp_path, capsys) -> None:
    out = tmp_path / "exact.csv"
    res = run_cli(
        capsys, "value", files.tiny7, "--target", TARGET, "--valid", files.valid20,
        "--method", "exact-shapley", "--out", out,
    )  # fmt: skip
    assert_ok(res)
    header, rows = read_out(out)
    assert header == HEADER_ROWS
    assert [int(r[0]) for r in rows] == list(range(7))
    got = np.array([float(r[1]) for r in rows])
    expected = _independent_exact_shapley(pd.read_csv(files.tiny7), pd.read_csv(files.valid20))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert np.all(np.array([float(r[2]) for r in rows]) == 0.0)  # exact: no standard error


def test_exact_shapley_is_batched_by_default_and_records_the_sklearn_difference(
    files, tmp_path, capsys
) -> None:
    # issue 15, item 10: without --batch the exact methods train in batches and record the
    # largest utility difference from scikit-learn's own fits; --no-batch is scikit-learn's
    expected = _independent_exact_shapley(pd.read_csv(files.tiny7), pd.read_csv(files.valid20))
    saved = {}
    for flag in ([], ["--no-batch"]):
        path = tmp_path / f"r{len(flag)}.npz"
        res = run_cli(
            capsys, "value", files.tiny7, "--target", TARGET, "--valid", files.valid20,
            "--method", "exact-shapley", "--save-result", path, *flag,
        )  # fmt: skip
        assert_ok(res)
        saved[bool(flag)] = ValuationResult.load(path)
    batched, one_by_one = saved[False], saved[True]
    diff = batched.metadata["batched_vs_sklearn_max_diff"]
    assert batched.metadata["batched_vs_sklearn_subsets"] >= 2 and 0.0 <= diff <= 1.0
    assert "batched_vs_sklearn_max_diff" not in one_by_one.metadata
    np.testing.assert_allclose(one_by_one.values, expected, rtol=0, atol=1e-12)
    # batched logistic regression is solved to the optimum, lbfgs stops at tol=1e-4: a few
    # subsets may differ by one valuation prediction (1/20 in utility), so the values agree to
    # a few such flips weighted by their Shapley weights, not to rounding
    np.testing.assert_allclose(batched.values, expected, rtol=0, atol=0.02)


# ----------------------------------------------------------------------------------- 2. groups
GROUP_METHOD_ARGS = {
    "tmc-shapley": ["--budget", "3"],
    "permutation-shapley": ["--budget", "3"],
    "knn-shapley": [],
    "data-oob": ["--budget", "32"],
    "exact-shapley": [],  # 4 groups: 16 subsets, although the file has 40 rows
}


@pytest.mark.parametrize("method", sorted(GROUP_METHOD_ARGS))
def test_group_output(method, files, tmp_path, capsys) -> None:
    out = tmp_path / "groups.csv"
    res = run_cli(
        capsys, "value", files.groups40, "--target", TARGET, "--group", "source",
        "--valid", files.groups_valid20, "--method", method, "--out", out,
        *GROUP_METHOD_ARGS[method],
    )  # fmt: skip
    assert_ok(res)
    header, rows = read_out(out)
    assert header == HEADER_GROUPS
    labels = [r[0] for r in rows]
    assert sorted(labels) == ["east", "north", "south", "west"]
    assert all(math.isfinite(float(r[1])) for r in rows)


def test_group_valuation_file_without_the_group_column(files, tmp_path, capsys) -> None:
    """The valuation set is not valued, so its file needs no group column; the values equal
    those with a group column in the valuation file."""
    plain = tmp_path / "valid-no-group.csv"
    pd.read_csv(files.groups_valid20).drop(columns="source").to_csv(plain, index=False)
    outs = []
    for valid in (files.groups_valid20, plain):
        out = tmp_path / f"g{len(outs)}.csv"
        res = run_cli(capsys, "value", files.groups40, "--target", TARGET, "--group", "source",
                     "--valid", valid, "--method", "exact-shapley", "--out", out)  # fmt: skip
        assert_ok(res)
        outs.append(out.read_text())
    assert outs[0] == outs[1]


def test_group_output_with_split(files, tmp_path, capsys) -> None:
    out = tmp_path / "groups.csv"
    res = run_cli(
        capsys, "value", files.groups40, "--target", TARGET, "--group", "source",
        "--method", "tmc-shapley", "--budget", 2, "--out", out,
    )  # fmt: skip
    assert_ok(res)
    header, rows = read_out(out)
    assert header == HEADER_GROUPS
    train, _ = Dataset.from_file(files.groups40, TARGET, group="source").split(0.2, random_state=0)
    assert sorted(r[0] for r in rows) == sorted(set(train.groups.tolist()))


def test_knn_group_values_sum_row_values(files, tmp_path, capsys) -> None:
    """knn-shapley aggregates a group as the sum of its rows' values (documented)."""
    by_group, by_row = tmp_path / "g.csv", tmp_path / "r.csv"
    common = [
        "--target", TARGET, "--valid", files.groups_valid20, "--method", "knn-shapley",
    ]  # fmt: skip
    assert_ok(run_cli(capsys, "value", files.groups40, *common, "--group", "source",
                     "--out", by_group))  # fmt: skip
    # the same rows without the source column, valued row by row
    rows_file = write_frame(
        pd.read_csv(files.groups40).drop(columns="source"), tmp_path / "r_in.csv"
    )
    valid_file = write_frame(
        pd.read_csv(files.groups_valid20).drop(columns="source"), tmp_path / "v_in.csv"
    )
    common[3] = str(valid_file)
    assert_ok(run_cli(capsys, "value", rows_file, *common, "--out", by_row))
    sources = pd.read_csv(files.groups40)["source"].to_numpy()
    row_values = np.array([float(r[1]) for r in read_out(by_row)[1]])
    for label, value, *_ in read_out(by_group)[1]:
        assert float(value) == pytest.approx(row_values[sources == label].sum(), abs=1e-12)


# ------------------------------------------------------------------------------ 3. bad input
def _bad_files(root: Path, files: Files) -> dict[str, Path]:
    base = pd.read_csv(files.train30)
    out: dict[str, Path] = {}
    out["empty"] = root / "empty.csv"
    out["empty"].write_text("")
    out["header_only"] = root / "header_only.csv"
    out["header_only"].write_text(",".join(base.columns) + "\n")
    strings = base.astype(object)
    strings.loc[4, "sepal_width"] = "wide"
    out["strings"] = write_frame(strings, root / "strings.csv")
    nan = base.copy()
    nan.loc[5, "petal_length"] = np.nan
    out["nan"] = write_frame(nan, root / "nan.csv")
    inf = base.copy()
    inf.loc[6, "petal_width"] = np.inf
    out["inf"] = write_frame(inf, root / "inf.csv")
    one_class = base.copy()
    one_class[TARGET] = 1
    out["one_class"] = write_frame(one_class, root / "one_class.csv")
    out["other_columns"] = write_frame(
        base.rename(columns={"sepal_width": "sepal_w"}), root / "other_columns.csv"
    )
    out["fewer_columns"] = write_frame(base.drop(columns="petal_width"), root / "fewer.csv")
    real_target = base.copy()
    real_target[TARGET] = real_target[TARGET] + 0.5
    out["real_target"] = write_frame(real_target, root / "real_target.csv")
    return out


#: id -> (arguments after TRAIN-independent "value", words the message must contain).
#: ``{x}`` placeholders are filled from the bad files, the good files and tmp_path.
BAD_CASES: dict[str, tuple[list[str], list[str]]] = {
    "missing-file": (["{tmp}/nope.csv", "--target", TARGET], ["nope.csv"]),
    "missing-valid-file": (
        ["{train30}", "--target", TARGET, "--valid", "{tmp}/nope.csv"],
        ["nope.csv"],
    ),
    "unknown-target": (["{train30}", "--target", "species"], ["species", "available columns"]),
    "unknown-group": (["{train30}", "--target", TARGET, "--group", "source"], ["source"]),
    "unknown-method": (
        ["{train30}", "--target", TARGET, "--method", "shapley-magic"],
        ["shapley-magic", "dataworth methods"],
    ),
    "unknown-model": (
        ["{train30}", "--target", TARGET, "--model", "svm-magic", "--budget", "1"],
        ["svm-magic", "logistic-regression"],
    ),
    "unknown-dotted-model": (
        ["{train30}", "--target", TARGET, "--model", "sklearn.nothing.Here", "--budget", "1"],
        ["sklearn.nothing.Here"],
    ),
    "unknown-model-param": (
        ["{train30}", "--target", TARGET, "--model-params", '{"speed": 3}', "--budget", "1"],
        ["speed"],
    ),
    "unknown-scoring": (
        ["{train30}", "--target", TARGET, "--scoring", "goodness", "--budget", "1"],
        ["goodness", "accuracy"],
    ),
    "model-params-bad-json": (
        ["{train30}", "--target", TARGET, "--model-params", "{C: 1"],
        ["--model-params", "JSON"],
    ),
    "model-params-not-object": (
        ["{train30}", "--target", TARGET, "--model-params", "[1, 2]"],
        ["--model-params", "object"],
    ),
    "valid-renamed-column": (
        ["{train30}", "--target", TARGET, "--valid", "{other_columns}", "--budget", "1"],
        ["same columns", "sepal_w"],
    ),
    "valid-fewer-columns": (
        ["{train30}", "--target", TARGET, "--valid", "{fewer_columns}", "--budget", "1"],
        ["same columns", "petal_width"],
    ),
    "k-zero": (
        ["{train30}", "--target", TARGET, "--method", "knn-shapley", "--k", "0"],
        ["--k", "0"],
    ),
    "budget-zero": (["{train30}", "--target", TARGET, "--budget", "0"], ["--budget", "0"]),
    "budget-negative": (["{train30}", "--target", TARGET, "--budget", "-5"], ["--budget", "-5"]),
    "budget-not-a-number": (["{train30}", "--target", TARGET, "--budget", "many"], ["--budget"]),
    "missing-target-option": (["{train30}"], ["--target"]),
    "empty-file": (["{empty}", "--target", TARGET], ["empty"]),
    "header-only-file": (["{header_only}", "--target", TARGET], ["no data rows"]),
    "strings-in-feature": (
        ["{strings}", "--target", TARGET, "--budget", "1"],
        ["sepal_width", "not numeric"],
    ),
    "nan-feature": (
        ["{nan}", "--target", TARGET, "--impute", "refuse", "--budget", "1"],
        ["petal_length", "missing"],
    ),
    "infinite-feature": (
        ["{inf}", "--target", TARGET, "--budget", "1"],
        ["petal_width", "infinite"],
    ),
    "one-class-target": (
        ["{one_class}", "--target", TARGET, "--budget", "1"],
        ["single class", "two classes"],
    ),
    "one-class-in-training": (
        ["{one_class}", "--target", TARGET, "--valid", "{valid20}", "--budget", "1"],
        ["single class", "two classes"],
    ),
    "real-target-with-classifier": (
        ["{real_target}", "--target", TARGET, "--model", "logistic-regression", "--budget", "1"],
        ["non-integer", "regression"],
    ),
    "knn-shapley-on-regression": (
        ["{real_target}", "--target", TARGET, "--method", "knn-shapley"],
        ["class labels"],
    ),
    "exact-shapley-too-many-rows": (
        ["{rows21}", "--target", TARGET, "--valid", "{valid20}", "--method", "exact-shapley"],
        ["20", "21", "--group"],
    ),
    "exact-shapley-too-many-rows-split": (
        ["{train30}", "--target", TARGET, "--method", "exact-shapley"],
        ["20", "24"],
    ),
    "valid-fraction-out-of-range": (
        ["{train30}", "--target", TARGET, "--valid-fraction", "1.5"],
        ["1.5"],
    ),
    "n-jobs-zero": (["{train30}", "--target", TARGET, "--n-jobs", "0"], ["--n-jobs"]),
    "negative-time-limit": (
        ["{train30}", "--target", TARGET, "--time-limit", "-1"],
        ["time limit"],
    ),
    "negative-stderr-below": (
        ["{train30}", "--target", TARGET, "--stderr-below", "-1"],
        ["stderr"],
    ),
    "checkpoint-and-resume-differ": (
        ["{train30}", "--target", TARGET, "--checkpoint", "{tmp}/a.npz", "--resume", "{tmp}/b.npz"],
        ["--checkpoint", "--resume"],
    ),
    "checkpoint-is-directory": (
        ["{train30}", "--target", TARGET, "--budget", "1", "--checkpoint", "{tmp}"],
        ["directory"],
    ),
    "resume-from-non-checkpoint": (
        ["{train30}", "--target", TARGET, "--budget", "1", "--resume", "{valid20}"],
        ["checkpoint"],
    ),
    "resume-from-the-input": (
        ["{train30}", "--target", TARGET, "--budget", "1", "--resume", "{train30}"],
        ["--resume", "input"],
    ),
    "out-under-a-file": (
        ["{train30}", "--target", TARGET, "--method", "loo", "--out", "{train30}/values.csv"],
        ["cannot write"],
    ),
    "train-is-directory": (["{tmp}", "--target", TARGET], ["directory"]),
}


def _fill(args: list[str], names: dict[str, Path]) -> list[str]:
    """Replace ``{name}`` placeholders (only known names, so JSON braces stay as they are)."""
    pattern = re.compile(r"\{(" + "|".join(map(re.escape, names)) + r")\}")
    return [pattern.sub(lambda m: str(names[m.group(1)]), a) for a in args]


@pytest.fixture
def names(files, tmp_path) -> dict[str, Path]:
    bad = _bad_files(tmp_path, files)
    return {
        "tmp": tmp_path,
        "train30": files.train30,
        "valid20": files.valid20,
        "rows21": files.rows21,
        **bad,
    }


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_is_one_error_line(case, names, capsys) -> None:
    args, needles = BAD_CASES[case]
    res = run_cli(capsys, "value", *_fill(args, names))
    assert_user_error(res, *needles)
    assert res.out == ""


@pytest.mark.parametrize(
    "case",
    sorted(BAD_CASES),
)
def test_bad_input_stderr_is_exactly_one_line(case, names, capsys) -> None:
    """The strict reading of the contract: standard error is the error line and nothing else."""
    args, _ = BAD_CASES[case]
    res = run_cli(capsys, "value", *_fill(args, names))
    assert res.code == 2
    assert len(res.err_lines) == 1, res.err
    assert res.err_lines[0].startswith("error:")


def test_single_class_message_shows_plain_label(names, capsys) -> None:
    args, _ = BAD_CASES["one-class-in-training"]
    message = assert_user_error(run_cli(capsys, "value", *_fill(args, names)))
    assert "np.int64" not in message and "(1)" in message


def test_least_core_without_budget_samples_and_says_so(files, capsys) -> None:
    res = run_cli(
        capsys, "value", files.train30, "--target", TARGET, "--valid", files.valid20,
        "--method", "least-core",
    )  # fmt: skip
    assert res.code == 0
    assert "sampled 1000 coalitions" in res.err and "--budget" in res.err


def test_unwritable_save_result_is_one_error_line(files, capsys) -> None:
    res = run_cli(
        capsys, "value", files.train30, "--target", TARGET, "--valid", files.valid20,
        "--method", "loo", "--save-result", f"{files.train30}/result.npz",
    )  # fmt: skip
    assert_user_error(res)


def _differing(message: str) -> set[str]:
    match = re.search(r"its (.+?) differ", message)
    assert match, message
    return {part.strip() for part in match.group(1).split(",")}


def test_resume_refuses_other_method_or_dataset(files, tmp_path, capsys) -> None:
    ck = tmp_path / "run.ckpt"
    base = ["--target", TARGET, "--valid", files.valid20, "--seed", 0, "--budget", 4]
    res = run_cli(capsys, "value", files.train30, *base, "--method", "tmc-shapley",
                 "--checkpoint", ck, "--out", tmp_path / "a.csv")  # fmt: skip
    assert_ok(res)
    assert ck.is_file()
    before = ck.read_bytes()

    res = run_cli(capsys, "value", files.train30, *base, "--method", "permutation-shapley",
                 "--resume", ck, "--out", tmp_path / "b.csv")  # fmt: skip
    assert _differing(assert_user_error(res, "checkpoint")) == {"method"}

    res = run_cli(capsys, "value", files.other30, *base, "--method", "tmc-shapley",
                 "--resume", ck, "--out", tmp_path / "c.csv")  # fmt: skip
    assert _differing(assert_user_error(res, "checkpoint")) == {"data"}

    res = run_cli(capsys, "value", files.train30, *base, "--method", "tmc-shapley",
                 "--model", "knn", "--resume", ck, "--out", tmp_path / "d.csv")  # fmt: skip
    assert "model" in _differing(assert_user_error(res, "checkpoint"))

    assert ck.read_bytes() == before  # a refused resume leaves the checkpoint alone
    assert not (tmp_path / "b.csv").exists() and not (tmp_path / "c.csv").exists()


# -------------------------------------------------------------------- 4. checkpoint and resume
@pytest.mark.parametrize(
    ("method", "half", "full"),
    [("tmc-shapley", 4, 8), ("banzhaf", 64, 128), ("data-oob", 32, 64)],
)
def test_resume_equals_uninterrupted_run(method, half, full, files, tmp_path, capsys) -> None:
    ck = tmp_path / "run.ckpt"
    common = ["--target", TARGET, "--valid", files.valid20, "--method", method, "--seed", 7]
    assert_ok(run_cli(capsys, "value", files.train30, *common, "--budget", half,
                     "--checkpoint", ck, "--out", tmp_path / "half.csv"))  # fmt: skip
    res = run_cli(capsys, "value", files.train30, *common, "--budget", full,
                 "--resume", ck, "--out", tmp_path / "resumed.csv")  # fmt: skip
    assert_ok(res)
    assert_ok(run_cli(capsys, "value", files.train30, *common, "--budget", full,
                     "--out", tmp_path / "fresh.csv"))  # fmt: skip
    resumed = (tmp_path / "resumed.csv").read_bytes()
    assert resumed == (tmp_path / "fresh.csv").read_bytes()
    assert resumed != (tmp_path / "half.csv").read_bytes()


def test_resume_without_checkpoint_starts_afresh(files, tmp_path, capsys) -> None:
    ck = tmp_path / "new.ckpt"
    common = ["--target", TARGET, "--valid", files.valid20, "--method", "tmc-shapley",
              "--budget", 3, "--seed", 2]  # fmt: skip
    res = run_cli(capsys, "value", files.train30, *common, "--resume", ck,
                 "--out", tmp_path / "a.csv")  # fmt: skip
    assert_ok(res)
    assert any(line.startswith("note:") and "checkpoint" in line for line in res.err_lines)
    assert ck.is_file()
    assert_ok(run_cli(capsys, "value", files.train30, *common, "--out", tmp_path / "b.csv"))
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


# ---------------------------------------------------------------------------------- 5. n_jobs
@pytest.mark.parametrize(("method", "budget"), [("tmc-shapley", 8), ("banzhaf", 64)])
def test_n_jobs_gives_identical_output(method, budget, files, tmp_path, capsys) -> None:
    outputs = []
    for n_jobs in (1, 2):
        out = tmp_path / f"jobs{n_jobs}.csv"
        res = run_cli(
            capsys, "value", files.train30, "--target", TARGET, "--valid", files.valid20,
            "--method", method, "--budget", budget, "--seed", 11, "--n-jobs", n_jobs,
            "--out", out,
        )  # fmt: skip
        assert_ok(res)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


# -------------------------------------------------------------------------- 6. listing, help
def test_methods_lists_every_method_with_reference(capsys) -> None:
    res = run_cli(capsys, "methods")
    assert_ok(res)
    lines = [line for line in res.out.splitlines() if line.strip()]
    assert len(lines) == len(METHODS) + 1 + len(ESTIMATORS)  # the estimators under a heading
    for name in [*METHODS, *ESTIMATORS]:
        mine = [line for line in lines if line.split()[0] == name]
        assert len(mine) == 1, f"{name} not listed exactly once"
        ref = re.search(r"\[(.+)\]\s*$", mine[0])
        assert ref and re.search(r"\b(19|20)\d\d\b", ref.group(1)), mine[0]


@pytest.mark.parametrize("args", [["--help"], ["value", "--help"], ["methods", "--help"]])
def test_help_exits_zero(args, capsys) -> None:
    res = run_cli(capsys, *args)
    assert res.code == 0
    assert "Usage" in res.out


def test_value_help_lists_contract_options(capsys) -> None:
    res = run_cli(capsys, "value", "--help")
    for option in (
        "--target", "--method", "--out", "--valid", "--valid-fraction", "--model",
        "--model-params", "--scoring", "--k", "--budget", "--stderr-below", "--time-limit",
        "--seed", "--n-jobs", "--group", "--default-score", "--checkpoint", "--resume",
    ):  # fmt: skip
        assert option in res.out, option


def test_models_lists_contract_names(capsys) -> None:
    res = run_cli(capsys, "models")
    assert_ok(res)
    for name in ("logistic-regression", "knn", "decision-tree", "random-forest",
                 "gaussian-nb", "ridge", "linear-regression"):  # fmt: skip
        assert name in res.out


# ------------------------------------------------------------------ 7. stopping rules, notes
def test_time_limit_stops_early(files, tmp_path, capsys) -> None:
    out = tmp_path / "v.csv"
    started = time.monotonic()
    res = run_cli(
        capsys, "value", files.train30, "--target", TARGET, "--valid", files.valid20,
        "--method", "tmc-shapley", "--budget", 100000, "--time-limit", 0.5, "--out", out,
    )  # fmt: skip
    assert_ok(res)
    assert time.monotonic() - started < 30
    counts = [int(r[3]) for r in read_out(out)[1]]
    assert 0 < max(counts) < 100000
    samples = re.search(r"(\d+) samples", res.err)
    assert samples and 0 < int(samples.group(1)) < 100000


def test_stderr_below_stops_early(files, tmp_path, capsys) -> None:
    out = tmp_path / "v.csv"
    res = run_cli(
        capsys, "value", files.train30, "--target", TARGET, "--valid", files.valid20,
        "--method", "tmc-shapley", "--budget", 100000, "--stderr-below", 0.5,
        "--time-limit", 60, "--out", out,
    )  # fmt: skip
    assert_ok(res)
    rows = read_out(out)[1]
    assert 0 < max(int(r[3]) for r in rows) < 1000
    assert all(float(r[2]) < 0.5 for r in rows if math.isfinite(float(r[2])))


@pytest.mark.parametrize(
    ("method", "extra", "flag"),
    [
        ("loo", ["--k", "3"], "--k"),
        ("knn-shapley", ["--budget", "10"], "--budget"),
        ("loo", ["--time-limit", "5"], "--time-limit"),
        ("knn-shapley", ["--checkpoint", "{tmp}/x.ckpt"], "--checkpoint"),
    ],
)
def test_inapplicable_parameter_is_a_note(method, extra, flag, files, tmp_path, capsys) -> None:
    train = files.tiny7 if method == "exact-shapley" else files.train30
    extra = [e.format(tmp=tmp_path) for e in extra]
    out = tmp_path / "v.csv"
    res = run_cli(
        capsys, "value", train, "--target", TARGET, "--valid", files.valid20,
        "--method", method, "--out", out, *extra,
    )  # fmt: skip
    assert_ok(res)
    notes = [line for line in res.err_lines if line.startswith("note:") and flag in line]
    assert notes, res.err
    assert read_out(out)[0] == HEADER_ROWS


def test_default_score_is_the_empty_set_score(files, tmp_path, capsys) -> None:
    """exact Shapley values sum to u(N) - u(empty): --default-score shifts the total."""
    sums = []
    for default in (0.0, 0.25):
        out = tmp_path / f"d{default}.csv"
        res = run_cli(
            capsys, "value", files.tiny7, "--target", TARGET, "--valid", files.valid20,
            "--method", "exact-shapley", "--default-score", default, "--out", out,
        )  # fmt: skip
        assert_ok(res)
        sums.append(sum(float(r[1]) for r in read_out(out)[1]))
    assert sums[0] - sums[1] == pytest.approx(0.25, abs=1e-9)


# ------------------------------------------------------------------- real processes, no traces
SUBPROCESS_CASES = [
    "missing-file",
    "unknown-method",
    "nan-feature",
    "exact-shapley-too-many-rows",
]


def test_subprocess_errors_have_no_traceback(names, tmp_path) -> None:
    for case in SUBPROCESS_CASES:
        args, needles = BAD_CASES[case]
        res = run_subprocess("value", *_fill(args, names), cwd=tmp_path)
        assert_user_error(res, *needles)


def test_subprocess_success_and_help(files, tmp_path) -> None:
    out = tmp_path / "v.csv"
    res = run_subprocess(
        "value", files.train30, "--target", TARGET, "--valid", files.valid20,
        "--method", "knn-shapley", "--out", out, cwd=tmp_path,
    )  # fmt: skip
    assert_ok(res)
    assert read_out(out)[0] == HEADER_ROWS
    res = run_subprocess("--help", cwd=tmp_path)
    assert res.code == 0 and "value" in res.out


@pytest.mark.skipif(shutil.which("dataworth") is None, reason="console script not installed")
def test_console_script(files, tmp_path) -> None:
    exe = shutil.which("dataworth")
    assert exe is not None
    proc = subprocess.run(
        [exe, "value", str(files.train30), "--target", "no-such-column"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_user_error(Outcome(proc.returncode, proc.stdout, proc.stderr), "no-such-column")
    proc = subprocess.run([exe, "methods"], capture_output=True, text=True, timeout=120)
    listed = [line for line in proc.stdout.splitlines() if line.strip()]
    assert proc.returncode == 0 and len(listed) == len(METHODS) + 1 + len(ESTIMATORS)


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--n-jobs", "0"], "--n-jobs"), (["--out-dir", "{train30}/sub"], "not a directory")],
)
def test_demo_bad_input_is_one_error_line(args, needle, names, capsys) -> None:
    res = run_cli(capsys, "demo", *_fill(args, names))
    assert_user_error(res, needle)


# ------------------------------------------------------------------ estimators, --rank-stable
@pytest.mark.parametrize("estimator", ["regression-msr", "stratified-svarm", "kernel-shap"])
def test_shapley_estimators_from_the_cli_keep_the_budget(estimator, files, capsys) -> None:
    out = files.train30.parent / f"shapley-{estimator}.csv"
    saved = files.train30.parent / f"shapley-{estimator}.npz"
    res = run_cli(
        capsys, "value", files.train30, "--target", TARGET, "--valid", files.valid20,
        "--method", "shapley", "--estimator", estimator, "--budget", 400, "--seed", 1,
        "--out", out, "--save-result", saved,
    )  # fmt: skip
    assert_ok(res)
    _check_rows(out, list(range(30)), "shapley")
    from dataworth.result import ValuationResult

    result = ValuationResult.load(saved)
    assert result.params["estimator"] == estimator
    assert result.metadata["n_evaluations"] <= 400


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--method", "shapley", "--estimator", "nope"], "unknown estimator"),
        (["--method", "banzhaf", "--estimator", "kernel-shap"], "shapley values only"),
        (["--method", "shapley", "--budget", "3"], "at least"),
        (["--method", "shapley", "--rank-stable", "0"], "--rank-stable"),
        (["--method", "shapley", "--rank-stable", "1.5"], "--rank-stable"),
    ],
)
def test_bad_estimator_or_rank_rule_is_one_error_line(args, needle, files, capsys) -> None:
    res = run_cli(
        capsys, "value", files.train30, "--target", TARGET, "--valid", files.valid20, *args
    )
    assert_user_error(res, needle)


def test_rank_stable_stops_a_run_and_says_so(files, capsys) -> None:
    saved = files.train30.parent / "rank.npz"
    res = run_cli(
        capsys, "value", files.train30, "--target", TARGET, "--valid", files.valid20,
        "--method", "shapley", "--estimator", "msr", "--rank-stable", 0.5,
        "--budget", 100000, "--seed", 2, "--save-result", saved,
    )  # fmt: skip
    assert_ok(res)
    from dataworth.result import ValuationResult

    meta = ValuationResult.load(saved).metadata
    assert "RankStable(0.5" in meta["stopped_by"]
    assert meta["n_evaluations"] < 100000  # stopped by the rule, not the budget
