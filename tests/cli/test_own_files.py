"""A data scientist's own files (issue 15, items 5-8): choosing columns, an id column, text and
missing features, semicolon and tab separators, ``--task``; each through the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from test_cli import assert_ok, assert_user_error, read_out

from cli_runner import run_cli

TARGET = "species"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """40 iris rows of two classes, shuffled, with a text column and an increasing id."""
    iris = load_iris(as_frame=True)
    df = iris.frame.rename(columns={"target": TARGET})
    df = df[df[TARGET] < 2].sample(40, random_state=0).reset_index(drop=True)
    df.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width", TARGET]
    df.insert(0, "patient_id", np.arange(1001, 1041))
    df["site"] = np.where(np.arange(40) % 3 == 0, "north", "south")
    return df


def _write(df: pd.DataFrame, path: Path, sep: str = ",") -> Path:
    df.to_csv(path, index=False, sep=sep)
    return path


def _values(path: Path) -> tuple[str, list[list[str]]]:
    return read_out(path)


# ------------------------------------------------------------------ 7: separators
@pytest.mark.parametrize("sep", [";", "\t"])
def test_semicolon_and_tab_files_are_read(sep, frame, tmp_path, capsys) -> None:
    plain = _write(frame.drop(columns=["site"]), tmp_path / "plain.csv")
    other = _write(frame.drop(columns=["site"]), tmp_path / "other.csv", sep=sep)
    outs = []
    for src in (plain, other):
        out = tmp_path / f"{src.stem}_values.csv"
        res = run_cli(capsys, "value", src, "--target", TARGET, "--method", "loo", "--out", out)
        assert_ok(res)
        outs.append(out.read_text())
    assert outs[0] == outs[1]


def test_semicolon_with_decimal_commas(frame, tmp_path, capsys) -> None:
    df = frame.drop(columns=["site"])
    text = df.to_csv(index=False, sep=";").replace(".", ",")
    (tmp_path / "eu.csv").write_text(text)
    res = run_cli(capsys, "value", tmp_path / "eu.csv", "--target", TARGET, "--method", "loo",
                 "--drop", "patient_id")  # fmt: skip
    assert_ok(res)
    assert "not numeric" not in res.err


def test_sep_option_and_wrong_sep(frame, tmp_path, capsys) -> None:
    path = _write(frame.drop(columns=["site"]), tmp_path / "pipe.csv", sep="|")
    res = run_cli(capsys, "value", path, "--target", TARGET, "--method", "loo", "--sep", "|")
    assert_ok(res)
    res = run_cli(capsys, "value", path, "--target", TARGET, "--sep", "ab")
    assert_user_error(res, "--sep")


# ------------------------------------------------------------------ 5: columns and ids
def test_id_column_names_rows_and_is_not_a_feature(frame, tmp_path, capsys) -> None:
    path = _write(frame.drop(columns=["site"]), tmp_path / "ids.csv")
    out = tmp_path / "v.csv"
    res = run_cli(capsys, "value", path, "--target", TARGET, "--method", "loo", "--id",
                 "patient_id", "--out", out)  # fmt: skip
    assert_ok(res)
    header, rows = _values(out)
    assert header.startswith("index,")
    assert all(1001 <= int(r[0]) <= 1040 for r in rows)
    assert "looks like an identifier" not in res.err
    # the same values as without the column at all
    bare = _write(frame.drop(columns=["site", "patient_id"]), tmp_path / "bare.csv")
    out2 = tmp_path / "v2.csv"
    assert_ok(run_cli(capsys, "value", bare, "--target", TARGET, "--method", "loo", "--out", out2))
    assert [r[1] for r in rows] == [r[1] for r in _values(out2)[1]]


def test_identifier_feature_is_warned_about(frame, tmp_path, capsys) -> None:
    path = _write(frame.drop(columns=["site"]), tmp_path / "ids.csv")
    res = run_cli(capsys, "value", path, "--target", TARGET, "--method", "loo")
    assert_ok(res)
    notes = [line for line in res.err_lines if "looks like an identifier" in line]
    assert len(notes) == 1 and notes[0].startswith("note:") and "patient_id" in notes[0]
    assert "--id patient_id" in notes[0]


def test_features_and_drop_choose_the_same_columns(frame, tmp_path, capsys) -> None:
    path = _write(frame, tmp_path / "all.csv")
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    keep = "sepal_length,petal_length"
    assert_ok(run_cli(capsys, "value", path, "--target", TARGET, "--method", "loo",
                     "--features", keep, "--out", a))  # fmt: skip
    assert_ok(run_cli(capsys, "value", path, "--target", TARGET, "--method", "loo",
                     "--drop", "patient_id,sepal_width,petal_width,site", "--out", b))  # fmt: skip
    assert a.read_text() == b.read_text()


@pytest.mark.parametrize(
    "args",
    [
        ["--features", "sepal_length,nope,also_not"],
        ["--drop", "nope"],
        ["--id", "nope"],
    ],
)
def test_unknown_columns_are_one_error_line(args, frame, tmp_path, capsys) -> None:
    path = _write(frame, tmp_path / "all.csv")
    res = run_cli(capsys, "value", path, "--target", TARGET, *args)
    message = assert_user_error(res, "'nope'", "available columns")
    if "also_not" in args[1]:
        assert "'also_not'" in message


def test_features_naming_the_target_is_refused(frame, tmp_path, capsys) -> None:
    path = _write(frame, tmp_path / "all.csv")
    res = run_cli(capsys, "value", path, "--target", TARGET, "--features", f"sepal_length,{TARGET}")
    assert_user_error(res, TARGET, "cannot be a feature")


# ------------------------------------------------------------------ 6: text and blanks
def _holes(frame: pd.DataFrame) -> pd.DataFrame:
    df = frame.drop(columns=["patient_id"]).astype(object)
    df.loc[[2, 9, 17], "sepal_width"] = ""
    df.loc[[5], "site"] = ""
    return df


def test_text_column_and_blanks_just_work(frame, tmp_path, capsys) -> None:
    path = _write(_holes(frame), tmp_path / "holes.csv")
    out = tmp_path / "v.csv"
    res = run_cli(
        capsys, "value", path, "--target", TARGET, "--method", "knn-shapley", "--out", out
    )
    assert_ok(res)
    assert len(_values(out)[1]) == 32
    assert any("'site'" in line and "one-hot" in line for line in res.err_lines)
    assert any("missing values" in line and "'sepal_width'" in line for line in res.err_lines)


@pytest.mark.parametrize("encode", ["onehot", "ordinal"])
def test_encodings_run_the_batched_path(encode, frame, tmp_path, capsys) -> None:
    path = _write(_holes(frame), tmp_path / "holes.csv")
    res = run_cli(capsys, "value", path, "--target", TARGET, "--method", "tmc-shapley",
                 "--budget", "3", "--encode", encode, "--batch")  # fmt: skip
    assert_ok(res)


def test_refuse_keeps_the_old_errors(frame, tmp_path, capsys) -> None:
    path = _write(_holes(frame), tmp_path / "holes.csv")
    res = run_cli(capsys, "value", path, "--target", TARGET, "--encode", "refuse")
    assert_user_error(res, "site", "not numeric", "--encode")
    res = run_cli(capsys, "value", path, "--target", TARGET, "--impute", "refuse")
    assert_user_error(res, "missing", "--impute")


def test_preprocessing_is_fitted_on_training_rows_only(frame, tmp_path, capsys) -> None:
    df = frame.drop(columns=["patient_id"])
    train, valid = df.iloc[:30].copy(), df.iloc[30:].copy().astype(object)
    valid.loc[valid.index[0], "site"] = "east"  # a category training never saw
    valid.loc[valid.index[1], "petal_width"] = ""
    res = run_cli(capsys, "value", _write(train, tmp_path / "tr.csv"), "--target", TARGET,
                 "--valid", _write(valid, tmp_path / "va.csv"), "--method", "loo")  # fmt: skip
    assert_ok(res)
    assert any("not seen in the training rows" in line for line in res.err_lines)


def test_other_commands_take_the_options(frame, tmp_path, capsys) -> None:
    df = _holes(frame)
    train = _write(df.iloc[:30], tmp_path / "tr.csv", sep=";")
    test = _write(df.iloc[30:], tmp_path / "te.csv", sep=";")
    res = run_cli(capsys, "debug", train, "--target", TARGET, "--test", test, "--row", "0")
    assert_ok(res)
    res = run_cli(capsys, "influencers", train, "--target", TARGET, "--test", test, "--row", "0")
    assert_ok(res)


# ------------------------------------------------------------------ 8: --task
def test_task_regression_on_a_zero_one_float_target(frame, tmp_path, capsys) -> None:
    df = frame.drop(columns=["site", "patient_id"]).copy()
    df[TARGET] = df[TARGET].astype(float)  # written 0.0 / 1.0
    path = _write(df, tmp_path / "float01.csv")
    assert "0.0" in path.read_text()
    res = run_cli(capsys, "value", path, "--target", TARGET, "--method", "loo",
                 "--task", "regression", "--model", "logistic-regression")  # fmt: skip
    assert_user_error(res)
    res = run_cli(capsys, "value", path, "--target", TARGET, "--method", "loo",
                 "--task", "regression", "--scoring", "r2")  # fmt: skip
    assert_ok(res)
    res = run_cli(capsys, "value", path, "--target", TARGET, "--method", "knn-shapley",
                 "--task", "regression")  # fmt: skip
    assert_user_error(res, "class labels")
    res = run_cli(capsys, "value", path, "--target", TARGET, "--method", "knn-shapley",
                 "--task", "classification")  # fmt: skip
    assert_ok(res)


def test_task_classification_refuses_fractions(frame, tmp_path, capsys) -> None:
    df = frame.drop(columns=["site", "patient_id"]).copy()
    df[TARGET] = df[TARGET] + 0.5
    path = _write(df, tmp_path / "half.csv")
    res = run_cli(capsys, "value", path, "--target", TARGET, "--task", "classification")
    assert_user_error(res, "--task classification", "0.5")


def test_many_whole_numbers_note_names_the_model(frame, tmp_path, capsys) -> None:
    df = frame.drop(columns=["site", "patient_id"]).copy()
    df[TARGET] = np.arange(40) % 25
    path = _write(df, tmp_path / "counts.csv")
    res = run_cli(capsys, "value", path, "--target", TARGET, "--method", "loo",
                 "--model", "linear-regression", "--scoring", "r2")  # fmt: skip
    note = next(line for line in res.err_lines if "distinct values" in line)
    assert "default model" not in note and "--model linear-regression" in note
    res = run_cli(capsys, "value", path, "--target", TARGET, "--method", "loo",
                 "--task", "regression")  # fmt: skip
    assert_ok(res)
    assert not any("distinct values" in line for line in res.err_lines)


def test_clean_fits_the_encoding_on_its_training_rows_only(tmp_path, capsys) -> None:
    """clean splits TRAIN into training, valuation and test rows itself: a category that
    occurs only in the rows split off is unseen by the encoder (fitted on training rows)."""
    from sklearn.datasets import load_breast_cancer

    from dataworth.data import Dataset

    d = load_breast_cancer(as_frame=True).frame.iloc[:120]
    y = d["target"].to_numpy()

    def kept(labels: np.ndarray, fraction: float) -> np.ndarray:
        ds = Dataset.from_columns({"z": np.zeros(labels.size), "t": labels}, "t")
        return np.asarray(ds.split(fraction, random_state=0)[0].row_labels)

    rows = kept(y, 0.2)  # clean's defaults: test 0.2, then valuation 0.2 of the whole
    rows = rows[kept(y[rows], 0.2 * y.size / rows.size)]
    region = np.array(["a", "b"] * 60, dtype=object)
    region[np.setdiff1d(np.arange(y.size), rows)[:3]] = "rare"
    path = _write(d.assign(region=region), tmp_path / "r.csv")
    res = run_cli(capsys, "clean", path, "--target", "target", "--methods", "knn-shapley",
                 "--quiet")  # fmt: skip
    assert_ok(res)
    assert "(2 categories)" in res.err and "not seen in the training rows" in res.err
