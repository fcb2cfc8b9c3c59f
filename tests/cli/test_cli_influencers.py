"""``dataworth influencers``: the listed rows really raise / lower the test row's loss on refit."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from cli_runner import run_cli
from dataworth.datasets import load_dataset


def _write(path: Path, X: np.ndarray, y: np.ndarray, names: list[str]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*names, "label"])
        writer.writerows([*map(float, x), int(t)] for x, t in zip(X, y, strict=True))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    ds = load_dataset("breast_cancer")
    idx = np.random.default_rng(0).permutation(ds.n_samples)
    X = np.asarray(ds.X, dtype=float)[idx][:, :6]  # six features keep the test small
    y = np.asarray(ds.y)[idx]
    y_train = y[:150].copy()
    y_train[[3, 17, 60]] = 1 - y_train[[3, 17, 60]]  # flipped labels
    root = tmp_path_factory.mktemp("influencers")
    names = [f"f{j}" for j in range(6)]
    _write(root / "train.csv", X[:150], y_train, names)
    _write(root / "test.csv", X[150:200], y[150:200], names)
    return root / "train.csv", root / "test.csv", X, y_train



def test_listed_rows_move_the_loss_as_claimed(files, capsys, tmp_path):
    train, test, X, y_train = files
    code, out, err = run_cli(
        capsys,
        "influencers",
        train,
        "--target",
        "label",
        "--test",
        test,
        "--row",
        4,
        "--top",
        3,
        "--json",
        tmp_path / "inf.json",
    )
    assert code == 0, err
    assert "most RAISE" in out and "most LOWER" in out
    report = json.loads((tmp_path / "inf.json").read_text())
    raise_rows = [r["row"] for r in report["raise_loss"]]
    lower_rows = [r["row"] for r in report["lower_loss"]]
    assert len(raise_rows) == 3 and len(lower_rows) == 3
    for row in raise_rows + lower_rows:
        assert f"\n{row:>3}  " in out or f"\n{row}  " in out

    def test_loss(keep: np.ndarray) -> float:
        model = LogisticRegression(max_iter=10000, tol=1e-10).fit(X[:150][keep], y_train[keep])
        return float(log_loss([y_label], model.predict_proba(X[154:155]), labels=[0, 1]))

    y_label = int(report["test_label"])
    everything = np.arange(150)
    base = test_loss(everything)
    # Removing the row that most raises the loss lowers it, and vice versa (real refits).
    assert test_loss(np.delete(everything, raise_rows[0])) < base
    assert test_loss(np.delete(everything, lower_rows[0])) > base
    influence = np.array(report["influence"])
    assert influence[raise_rows[0]] == influence.max()
    assert influence[lower_rows[0]] == influence.min()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--row", "500"], "out of range"),
        (["--row", "0", "--model", "knn"], "does not support"),
        (["--row", "0", "--top", "0"], "--top"),
        (["--row", "0", "--damping", "-1"], "damping"),
        (["--row", "0", "--model-params", "{bad"], "JSON"),
    ],
)
def test_bad_input_is_one_line(files, capsys, args, message):
    train, test, _, _ = files
    code, _, err = run_cli(capsys, "influencers", train, "--target", "label", "--test", test, *args)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], err
