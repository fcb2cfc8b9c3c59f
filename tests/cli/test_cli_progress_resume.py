"""Issue 15, through the CLI: progress bars in the workflow commands (``--quiet`` silences
them), checkpoints of the exact methods and class-wise Shapley, and lava's note that it uses no
model."""

from __future__ import annotations

import sys

import pandas as pd
import pytest
from sklearn.datasets import load_iris
from test_cli import FEATURES, TARGET, assert_ok, write_frame

from cli_runner import run_cli


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("progress-data")
    data = load_iris()
    frame = pd.DataFrame(data.data, columns=FEATURES)
    frame[TARGET] = data.target
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    return {
        "train": str(write_frame(frame.iloc[:40], root / "train.csv")),
        "valid": str(write_frame(frame.iloc[100:130], root / "valid.csv")),
        "small": str(write_frame(frame.iloc[:12], root / "small.csv")),
    }


def _terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)


WORKFLOWS = [
    ("explain", ["--method", "knn-shapley", "--bootstrap", "2"], "bootstrap"),
    ("prune", ["--method", "tmc-shapley", "--budget", "2", "--keep", "0.8"], "tmc-shapley"),
    ("debug", ["--method", "tmc-shapley", "--budget", "2", "--class", "0"], "tmc-shapley"),
    ("clean", ["--methods", "knn-shapley"], "removal curves"),  # report shares these curves
]


@pytest.mark.parametrize(("command", "args", "bar"), WORKFLOWS)
def test_workflow_shows_progress_on_a_terminal_and_quiet_silences_it(
    command, args, bar, iris, monkeypatch, capsys
) -> None:
    base = [command, iris["train"], "--target", TARGET, "--valid", iris["valid"], *args]
    _terminal(monkeypatch)
    shown = run_cli(capsys, *base)
    assert_ok(shown)
    assert f"{bar}:" in shown.err
    quiet = run_cli(capsys, *base, "--quiet")
    assert_ok(quiet)
    assert f"{bar}:" not in quiet.err and "it/s" not in quiet.err


@pytest.mark.parametrize(
    "command", ["clean", "prune", "explain", "select", "debug", "market", "report"]
)
def test_every_workflow_takes_quiet(command, capsys) -> None:
    res = run_cli(capsys, command, "--help")
    assert_ok(res)
    assert "--quiet" in res.out


def test_no_bar_when_not_a_terminal(iris, capsys) -> None:
    res = run_cli(
        capsys, "explain", iris["train"], "--target", TARGET, "--valid", iris["valid"],
        "--method", "knn-shapley", "--bootstrap", "2",
    )  # fmt: skip
    assert_ok(res)
    assert "bootstrap:" not in res.err


def test_lava_says_it_ignores_the_model(iris, capsys) -> None:
    pytest.importorskip("ot")
    res = run_cli(
        capsys, "value", iris["train"], "--target", TARGET, "--valid", iris["valid"],
        "--method", "lava", "--model", "knn",
    )  # fmt: skip
    assert_ok(res)
    assert "note: lava uses only the features and labels" in res.err
    assert "the model and the scoring are not used" in res.err


def test_class_wise_shapley_checkpoint_and_resume(iris, tmp_path, capsys) -> None:
    ckpt = tmp_path / "cw.ckpt"
    common = [
        "value", iris["train"], "--target", TARGET, "--valid", iris["valid"],
        "--method", "class-wise-shapley", "--seed", "3",
    ]  # fmt: skip
    half = run_cli(capsys, *common, "--budget", "2", "--checkpoint", ckpt)
    assert_ok(half)
    assert ckpt.is_file()
    resumed = run_cli(capsys, *common, "--budget", "4", "--resume", ckpt)
    assert_ok(resumed)
    assert "came from the checkpoint" in resumed.err
    fresh = run_cli(capsys, *common, "--budget", "4")
    assert_ok(fresh)
    assert resumed.out == fresh.out
