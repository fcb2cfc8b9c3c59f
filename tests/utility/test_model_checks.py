"""Checks made before any work: the model, its parameters and the scorer (issue 13, items 3,
4, 10, 16), and the rule for NaN values after a valuation.

Each test runs ``dataworth`` in-process (:func:`dataworth.cli.main`) on small CSV files cut from
scikit-learn's bundled breast-cancer data (two classes), or calls the library directly.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

from cli_runner import Outcome, run_cli
from dataworth import api, make_utility
from dataworth.data import Dataset
from dataworth.errors import DataworthError
from dataworth.methods.classwise import _ClassGame
from dataworth.models import make_model
from dataworth.result import ValuationResult
from dataworth.utility.batched import BatchedUtility, Unsupported
from dataworth.utility.model import ModelUtility

TARGET = "label"


# ------------------------------------------------------------------------------------ helpers



def user_error(res: Outcome, *needles: str) -> str:
    """Exit 2 with one ``error:`` line holding every needle; return that line."""
    assert "Traceback" not in res.err, res.err
    assert res.code == 2, f"exit {res.code}; stderr:\n{res.err}"
    errors = [line for line in res.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.err
    for needle in needles:
        assert needle.lower() in errors[0].lower(), f"{needle!r} not in {errors[0]!r}"
    return errors[0]


def ok(res: Outcome) -> None:
    assert res.code == 0, f"exit {res.code}; stderr:\n{res.err}"


@dataclass
class Files:
    train: Path  # 40 rows, two classes
    valid: Path  # 30 rows, two classes
    valid_one_class: Path  # 20 rows, all of class 1
    reg_train: Path  # 30 rows, a real-valued target
    reg_valid1: Path  # 1 row


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    root = tmp_path_factory.mktemp("model-checks")
    data = load_breast_cancer()
    frame = pd.DataFrame(data.data[:, :4], columns=[f"x{j}" for j in range(4)])
    frame[TARGET] = data.target
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    ones = frame[frame[TARGET] == 1]
    reg = frame.drop(columns=[TARGET]).rename(columns={"x3": TARGET})

    def write(part: pd.DataFrame, name: str) -> Path:
        part.to_csv(root / name, index=False)
        return root / name

    return Files(
        train=write(frame.iloc[:40], "train.csv"),
        valid=write(frame.iloc[100:130], "valid.csv"),
        valid_one_class=write(ones.iloc[-20:], "valid1.csv"),
        reg_train=write(reg.iloc[:30], "reg_train.csv"),
        reg_valid1=write(reg.iloc[200:201], "reg_valid1.csv"),
    )


def dataset(path: Path) -> Dataset:
    frame = pd.read_csv(path)
    return Dataset(X=frame.drop(columns=[TARGET]).to_numpy(float), y=frame[TARGET].to_numpy())


def value_args(files: Files, *extra: object, valid: Path | None = None) -> list[object]:
    return [
        "value", files.train, "--target", TARGET, "--valid", valid or files.valid,
        "--method", "tmc-shapley", "--budget", "2", *extra,
    ]  # fmt: skip


# ----------------------------------------------- item 3: a scorer undefined on the valuation set
@pytest.mark.parametrize("scoring", ["roc_auc", "average_precision", "neg_log_loss"])
@pytest.mark.parametrize("batch", [None, "--no-batch"])
def test_scorer_needing_two_classes_refused_on_one_class_valuation_set(
    scoring, batch, files, capsys
) -> None:
    """Before: roc_auc gave every value nan and exit 0 (average_precision: every value 0)."""
    args = value_args(files, "--scoring", scoring, valid=files.valid_one_class)
    if batch:
        args.append(batch)
    user_error(run_cli(capsys, *args), scoring, "valuation", "class")


def test_undefined_scorer_refused_by_other_commands(files, capsys) -> None:
    """The check lives in the utility, so every command that values refuses the same way."""
    res = run_cli(
        capsys, "clean", files.train, "--target", TARGET, "--valid", files.valid_one_class,
        "--scoring", "roc_auc", "--methods", "tmc-shapley", "--budget", "2",
    )  # fmt: skip
    user_error(res, "roc_auc", "class")


def test_r2_on_one_valuation_row_refused(files, capsys) -> None:
    res = run_cli(
        capsys, "value", files.reg_train, "--target", TARGET, "--valid", files.reg_valid1,
        "--method", "tmc-shapley", "--budget", "2",
    )  # fmt: skip
    user_error(res, "r2", "valuation")


def test_defined_scorer_still_runs(files, capsys) -> None:
    ok(run_cli(capsys, *value_args(files, "--scoring", "roc_auc", "--no-batch")))


def test_undefined_scorer_refused_in_library(files) -> None:
    train, one_class = dataset(files.train), dataset(files.valid_one_class)
    with pytest.raises(DataworthError, match="roc_auc"):
        ModelUtility(LogisticRegression(), train, one_class, scoring="roc_auc")


def test_callable_scorer_is_not_probed(files) -> None:
    """A custom scorer may need a fitted model of the user's type: no dummy is scored."""

    def needs_coef(model, X, y):
        return float(np.sum(model.coef_))

    train, valid = dataset(files.train), dataset(files.valid)
    u = ModelUtility(LogisticRegression(max_iter=1000), train, valid, scoring=needs_coef)
    assert math.isfinite(u(np.arange(10)))


# --------------------------------------------------------------------- item 3: the NaN rule
def _result(values: list[float], metadata: dict | None = None) -> ValuationResult:
    n = len(values)
    return ValuationResult(
        np.array(values), np.zeros(n), np.ones(n, int), method="test", metadata=metadata or {}
    )


def test_all_nan_values_are_an_error() -> None:
    with pytest.raises(DataworthError, match="every value is NaN"):
        api.check_values(_result([math.nan, math.nan, math.nan]))


def test_some_nan_values_are_counted_in_a_warning() -> None:
    with pytest.warns(UserWarning, match="1 of 3 values are NaN"):
        api.check_values(_result([1.0, math.nan, 0.5]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        api.check_values(_result([1.0, 2.0, 0.5]))
        # data-oob says itself which points were never out of bag: no second note
        api.check_values(_result([1.0, math.nan, 0.5], {"n_never_oob": 1}))


def test_all_nan_run_exits_with_an_error(files, capsys) -> None:
    """A scorer that is NaN on every subset (a callable: not probed up front) fails the run."""

    def nan_scorer(model, X, y):
        return math.nan

    train, valid = dataset(files.train), dataset(files.valid)
    with pytest.raises(DataworthError, match="every value is NaN"):
        api.value("tmc-shapley", train, valid, scoring=nan_scorer, budget=2, random_state=0)


def test_all_nan_run_is_an_error_through_the_cli(files, capsys, monkeypatch) -> None:
    monkeypatch.setattr(ModelUtility, "_score", lambda self, fitted: math.nan)
    res = run_cli(capsys, *value_args(files, "--no-batch"))
    user_error(res, "every value is NaN", "tmc-shapley")


def test_partly_nan_run_counts_them_in_a_warning(files) -> None:
    """LOO with a scorer that is NaN without training row 0: only row 0's value is NaN."""
    train, valid = dataset(files.train), dataset(files.valid)

    def nan_without_row0(model, X, y):
        if not (model._fit_X == train.X[0]).all(axis=1).any():
            return math.nan
        return float(np.mean(model.predict(X) == y))

    with pytest.warns(UserWarning, match=rf"1 of {train.n_samples} values are NaN"):
        r = api.value("loo", train, valid, model=KNeighborsClassifier(3), scoring=nan_without_row0)
    assert np.isnan(r.values[0]) and np.isfinite(r.values[1:]).all()


def test_partly_nan_run_says_how_many_through_the_cli(files, capsys) -> None:
    """data-oob with too few bags: some points never out of bag get NaN and one note says so."""
    res = run_cli(
        capsys, "value", files.train, "--target", TARGET, "--valid", files.valid,
        "--method", "data-oob", "--budget", "2",
    )  # fmt: skip
    ok(res)
    notes = [line for line in res.err.splitlines() if "nan" in line.lower()]
    assert len(notes) == 1 and notes[0].startswith("note:"), res.err


# ------------------------------------------------------ item 4: model parameters, batched or not
@pytest.mark.parametrize("batch", ["--batch", "--no-batch", None])
def test_invalid_model_parameter_refused_on_every_path(batch, files, capsys) -> None:
    """Before: max_iter 2.5 was accepted batched and refused only with --no-batch."""
    args = value_args(files, "--model-params", '{"max_iter": 2.5}')
    if batch:
        args.append(batch)
    user_error(run_cli(capsys, *args), "max_iter", "2.5")


def test_invalid_parameter_refused_by_the_library(files) -> None:
    train, valid = dataset(files.train), dataset(files.valid)
    for batched in (True, False, None):
        with pytest.raises(DataworthError, match="max_iter"):
            make_utility(train, valid, model=LogisticRegression(max_iter=2.5), batched=batched)
    with pytest.raises(DataworthError, match="C"):
        make_utility(train, valid, model=LogisticRegression(C=-1.0), batched=True)


@pytest.mark.parametrize(
    "params",
    [{"max_iter": 0}, {"max_iter": 5}, {"tol": 1.0}],
)
def test_early_stopping_logistic_is_not_batched(params, files) -> None:
    """Before: max_iter 0 was silently solved to the optimum by the batched path."""
    train, valid = dataset(files.train), dataset(files.valid)
    model = LogisticRegression(**params)
    with pytest.raises(Unsupported, match=next(iter(params))):
        BatchedUtility(model, train, valid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        u = make_utility(train, valid, model=model)
    assert type(u) is ModelUtility
    with pytest.raises(DataworthError, match="batched training is not available"):
        make_utility(train, valid, model=model, batched=True)


def test_max_iter_zero_matches_one_fit_at_a_time(files, capsys, tmp_path) -> None:
    """The default (batched when possible) now gives the values of --no-batch."""
    outs = []
    for flag in ([], ["--no-batch"]):
        out = tmp_path / f"v{len(outs)}.csv"
        ok(run_cli(capsys, *value_args(files, "--model-params", '{"max_iter": 0}', "--out", out,
                                      *flag)))  # fmt: skip
        outs.append(pd.read_csv(out)["value"].to_numpy())
    np.testing.assert_allclose(outs[0], outs[1])


def test_default_logistic_settings_still_batched(files) -> None:
    train, valid = dataset(files.train), dataset(files.valid)
    for model in (LogisticRegression(), LogisticRegression(max_iter=1000, tol=1e-6)):
        assert isinstance(make_utility(train, valid, model=model), BatchedUtility)


def test_ridge_early_stopping_is_not_batched(files) -> None:
    reg = pd.read_csv(files.reg_train)
    train = Dataset(X=reg.drop(columns=[TARGET]).to_numpy(float), y=reg[TARGET].to_numpy(float))
    assert isinstance(make_utility(train, train, model=Ridge()), BatchedUtility)
    for model in (Ridge(solver="sag", max_iter=3), Ridge(solver="lsqr", tol=0.5)):
        with pytest.raises(Unsupported):
            BatchedUtility(model, train, train)


# ---------------------------------------------------------- item 10: --model with a dotted path
def test_dotted_path_to_a_function_is_not_called(files, capsys, tmp_path) -> None:
    """Before: os.system ran the command, then reported 'not an estimator'."""
    marker = tmp_path / "ran"
    res = run_cli(
        capsys, *value_args(files, "--model", "os.system", "--model-params",
                            f'{{"command": "touch {marker}"}}'),
    )  # fmt: skip
    user_error(res, "os.system", "not an estimator class")
    assert not marker.exists()


@pytest.mark.parametrize("name", ["os.path", "subprocess.Popen", "builtins.dict"])
def test_dotted_path_that_is_not_an_estimator_class(name) -> None:
    with pytest.raises(DataworthError, match="not an estimator class"):
        make_model(name, {"args": ["true"]})


def test_dotted_path_to_an_estimator_class_works() -> None:
    model = make_model("sklearn.svm.SVC", {"C": 2.0})
    assert type(model).__name__ == "SVC" and model.C == 2.0


def test_make_model_validates_parameters() -> None:
    with pytest.raises(DataworthError, match="max_iter"):
        make_model("logistic-regression", {"max_iter": 2.5})
    with pytest.raises(DataworthError, match="n_neighbors"):
        make_model("knn", {"n_neighbors": 0})


# ------------------------------------------------ item 16: knn on subsets smaller than k
@pytest.mark.parametrize(
    "method",
    ["permutation-shapley", "tmc-shapley", "beta-shapley", "banzhaf", "class-wise-shapley", "loo"],
)
def test_knn_runs_without_catch_errors(method, files, capsys) -> None:
    """Before: 'Expected n_neighbors <= n_samples_fit' on the first prefixes."""
    res = run_cli(
        capsys, "value", files.train, "--target", TARGET, "--valid", files.valid,
        "--method", method, "--model", "knn", "--budget", "4",
    )  # fmt: skip
    ok(res)
    assert "failed fit" not in res.err


def test_knn_small_subset_uses_every_row(files) -> None:
    """A subset of fewer rows than n_neighbors is scored as KNN over all its rows."""
    train, valid = dataset(files.train), dataset(files.valid)
    u = ModelUtility(KNeighborsClassifier(n_neighbors=5), train, valid)
    rows = np.flatnonzero(train.y == 0)[:2].tolist() + np.flatnonzero(train.y == 1)[:1].tolist()
    ref = KNeighborsClassifier(n_neighbors=3).fit(train.X[rows], train.y[rows])
    assert u(rows) == pytest.approx(np.mean(ref.predict(valid.X) == valid.y))
    assert u.n_failures == 0
    game = _ClassGame(u, np.unique(train.y))  # class-wise Shapley's game follows the same rule
    np.testing.assert_array_equal(game.predict(np.array(rows)), ref.predict(valid.X))
    reg = Dataset(X=train.X, y=train.X[:, 0])
    ur = ModelUtility(KNeighborsRegressor(n_neighbors=5), reg, Dataset(X=valid.X, y=valid.X[:, 0]))
    assert math.isfinite(ur([0, 1]))


def test_model_help_says_a_dotted_path_runs_code(capsys) -> None:
    for args in (["value", "--help"], ["models"]):
        res = run_cli(capsys, *args)
        ok(res)
        assert "runs that module's code" in " ".join(res.out.split())
