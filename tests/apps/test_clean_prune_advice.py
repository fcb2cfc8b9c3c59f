"""Issue 15, through the CLI: advice of ``clean`` and ``prune`` that must never hurt silently.

- ``clean`` suggests a cut only when it beats no removal on the valuation set by more than its
  noise (paired bootstrap), says when the held-out split disagrees, and writes ``--out`` then
  only with ``--force``;
- ``prune`` splits harmful / near-zero rows around each method's own baseline and refuses the
  split for methods without one (data-oob);
- the small things: ``<- differs`` on a real-valued target, one named prediction in both lists,
  shares with enough digits, notes never cut at a line break.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from cli_runner import run_cli
from dataworth.data import Dataset
from dataworth.datasets import flip_labels, load_dataset


def _write(path: Path, X: np.ndarray, y: np.ndarray, target: str = "label") -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*(f"f{j}" for j in range(X.shape[1])), target])
        for x, t in zip(X, y, strict=True):
            writer.writerow([*(f"{v:.6g}" for v in x), t.item()])
    return path


@pytest.fixture(scope="module")
def cancer(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Breast cancer, 8 features, 10% of the labels flipped."""
    ds = load_dataset("breast_cancer")
    ds = Dataset.from_arrays(ds.X[:, :8], ds.y)
    noisy, flipped = flip_labels(ds, 0.1, random_state=0)
    root = tmp_path_factory.mktemp("advice")
    return {"path": _write(root / "cancer.csv", noisy.X, noisy.y), "flipped": flipped}


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ds = load_dataset("diabetes")
    root = tmp_path_factory.mktemp("diabetes")
    return _write(root / "diabetes.csv", ds.X, ds.y.astype(np.float64) / 7.0, "progression")


# ------------------------------------------------------------------------------ small things
def test_review_list_on_a_real_valued_target_marks_only_large_residuals(
    diabetes, capsys, tmp_path
) -> None:
    report = tmp_path / "r.json"
    code, out, err = run_cli(
        capsys, "clean", diabetes, "--target", "progression", "--budget", "20",
        "--n-random", "1", "--max-fraction", "0.1", "--review", "10", "--json", report,
    )  # fmt: skip
    assert code == 0, err
    review = json.loads(report.read_text())["review"]
    rows = review["rows"]
    assert len(rows) == 20
    tol = review["differs_tol"]
    assert tol > 0
    for r in rows:  # exact comparison marked all 20
        assert r["differs"] == (abs(r["given"] - r["predicted"]) > tol)
    assert out.count("<- differs") == sum(r["differs"] for r in rows) < len(rows)
    assert "differs = |given - predicted| >" in out


def test_both_lists_show_the_same_named_prediction(cancer, capsys, tmp_path) -> None:
    report = tmp_path / "r.json"
    code, out, err = run_cli(
        capsys, "clean", cancer["path"], "--target", "label", "--methods", "knn-shapley",
        "--n-random", "1", "--max-fraction", "0.1", "--review", "40", "--fix", "40",
        "--json", report,
    )  # fmt: skip
    assert code == 0, err
    payload = json.loads(report.read_text())
    review, fix = payload["review"], payload["labels_to_fix"]
    assert fix["prediction"] == review["prediction"] == "5-fold out-of-fold"
    in_review = {r["row"]: r["predicted"] for r in review["rows"]}
    shared = [r for r in fix["rows"] if r["row"] in in_review]
    assert shared, "the two lists share no row; widen them"
    assert all(r["predicted"] == in_review[r["row"]] for r in shared)
    assert "predicted = the model's 5-fold out-of-fold prediction, as in the review list" in out


def test_labels_to_fix_shares_show_enough_digits(capsys, tmp_path) -> None:
    from sklearn.datasets import make_classification

    X, y = make_classification(2500, 6, n_informative=4, flip_y=0.1, random_state=0)
    path = _write(tmp_path / "many.csv", X, y)
    report = tmp_path / "r.json"
    code, out, err = run_cli(
        capsys, "clean", path, "--target", "label", "--methods", "knn-shapley",
        "--n-random", "1", "--max-fraction", "0.1", "--review", "0", "--fix", "2000",
        "--json", report,
    )  # fmt: skip
    assert code == 0, err
    rows = json.loads(report.read_text())["labels_to_fix"]["rows"]
    assert min(r["share"] for r in rows) < 0.0005  # would print as 0.0%
    table = out.split("labels to fix first:")[1]
    shown = [float(x) for x in re.findall(r"\s(\d+\.\d+)%\s", table)]
    assert len(shown) == len(rows)
    for printed, r in zip(shown, rows, strict=True):
        assert printed > 0
        assert printed == pytest.approx(100 * r["share"], rel=0.06)


def test_notes_keep_the_whole_warning_on_one_line(tmp_path, capsys) -> None:
    d = load_dataset("breast_cancer")
    data = _write(tmp_path / "bc.csv", d.X[:150, :10] * 100, d.y[:150])
    values = tmp_path / "v.csv"
    code, _, err = run_cli(
        capsys, "value", data, "--target", "label", "--method", "knn-shapley", "--out", values
    )
    assert code == 0, err
    page = tmp_path / "page.html"
    code, _, err = run_cli(
        capsys, "report", values, "--data", data, "--target", "label",
        "--model-params", '{"max_iter": 2}', "-o", page,
    )  # fmt: skip
    assert code == 0, err
    notes = [line for line in err.splitlines() if "while predicting" in line]
    assert notes, err
    assert not notes[0].rstrip().endswith(":"), notes[0]
    assert "Increase the number of iterations" in notes[0]
    html = page.read_text()
    assert "Increase the number of iterations" in html


# ------------------------------------------------------------------------------ prune baselines
def test_every_method_declares_its_baseline() -> None:
    from dataworth.methods import METHODS, get_method

    rank_only = {"data-oob", "lava", "cgs", "least-core"}
    for name in METHODS:
        expected = None if name in rank_only else 0.0
        assert get_method(name).baseline == expected, name


@pytest.mark.parametrize("keep", ["0.5", "auto"])
def test_prune_refuses_a_harmful_split_for_data_oob(cancer, capsys, keep) -> None:
    code, out, err = run_cli(
        capsys, "prune", cancer["path"], "--target", "label", "--method", "data-oob",
        "--budget", "20", "--keep", keep,
    )  # fmt: skip
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "data-oob has no baseline" in lines[0] and "--strategy highest" in lines[0]
    assert out == ""


def test_prune_ranks_data_oob_rows_without_calling_any_harmful(cancer, capsys, tmp_path) -> None:
    report = tmp_path / "p.json"
    code, out, err = run_cli(
        capsys, "prune", cancer["path"], "--target", "label", "--method", "data-oob",
        "--budget", "20", "--strategy", "highest", "--keep", "0.8", "--json", report,
    )  # fmt: skip
    assert code == 0, err
    assert "harmful / near-zero: not split: data-oob values have no baseline" in out
    assert not re.search(r"^(harmful|useful)\s+\d+", out, re.M)
    assert "removed: 91 other" in out and "useful" not in out
    rows = json.loads(report.read_text())["rows"]
    assert rows["baseline"] is None
    assert rows["counts"]["harmful"] == rows["counts"]["near-zero"] == 0


def test_prune_splits_around_the_given_baseline(cancer, capsys, tmp_path) -> None:
    report = tmp_path / "p.json"
    code, out, err = run_cli(
        capsys, "prune", cancer["path"], "--target", "label", "--method", "data-oob",
        "--budget", "20", "--baseline", "0.5", "--json", report,
    )  # fmt: skip
    assert code == 0, err
    payload = json.loads(report.read_text())
    rows = payload["rows"]
    assert rows["baseline"] == 0.5
    assert "(baseline 0.5)" in out
    # knn-shapley keeps its baseline 0
    code, out, err = run_cli(capsys, "prune", cancer["path"], "--target", "label", "--json", report)
    assert code == 0, err
    assert json.loads(report.read_text())["rows"]["baseline"] == 0.0
    assert re.search(r"^harmful\s+\d+", out, re.M)


# ------------------------------------------------------------------------------ clean's cut
def _blobs(rng: np.random.Generator, n: int, d: float) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 2)) + np.where(y[:, None] == 1, d, -d) * np.array([1.0, 0.3])
    return X, y


def test_clean_suggests_nothing_when_the_best_cut_is_noise(tmp_path, capsys) -> None:
    rng = np.random.default_rng(0)
    path = _write(tmp_path / "noise.csv", rng.normal(size=(400, 5)), rng.integers(0, 2, 400))
    out, report = tmp_path / "clean.csv", tmp_path / "r.json"
    code, text, err = run_cli(
        capsys, "clean", path, "--target", "label", "--review", "0", "--fix", "0",
        "--n-random", "2", "--out", out, "--json", report,
    )  # fmt: skip
    assert code == 0, err
    # before: "remove the 15% lowest-valued rows" (held-out 0.4625 against 0.4875), written
    assert "suggested cut: remove nothing: the best cut on the valuation set" in text
    assert "within its noise" in text and "paired bootstrap over the 80 valuation rows" in text
    cut = json.loads(report.read_text())["cut"]
    assert cut["n_removed"] == 0 and cut["removed_rows"] == []
    sig = cut["significance"]
    assert sig["significant"] is False and sig["gain"] <= sig["noise"]
    assert sig["candidate"]["n_removed"] > 0 and sig["n_boot"] == 1000
    assert out.read_text() == path.read_text()  # nothing removed


def test_clean_writes_a_disputed_cut_only_with_force(tmp_path, capsys) -> None:
    rng = np.random.default_rng(0)
    tr = _write(tmp_path / "tr.csv", *_blobs(rng, 500, 0.5))
    Xv, yv = _blobs(rng, 600, 0.5)  # a valuation set of class 1 only: unlike the test split
    va = _write(tmp_path / "va.csv", Xv[yv == 1][:200], yv[yv == 1][:200])
    te = _write(tmp_path / "te.csv", *_blobs(rng, 300, 0.5))
    out, report = tmp_path / "clean.csv", tmp_path / "r.json"
    args = ["clean", tr, "--valid", va, "--test", te, "--target", "label", "--review", "0",
            "--fix", "0", "--n-random", "2", "--out", out, "--json", report]  # fmt: skip
    code, text, err = run_cli(capsys, *args)
    assert code == 0, err
    cut = json.loads(report.read_text())["cut"]
    assert cut["n_removed"] > 0 and cut["significance"]["significant"] is True
    assert cut["test_score"] < cut["test_baseline"] and cut["held_out_disagrees"] is True
    disagree = [line for line in text.splitlines() if line.startswith("held-out split disagrees")]
    assert len(disagree) == 1
    assert f"not writing {out}" in text and "--force" in text
    assert not out.exists() and cut["out_written"] is False
    code, text, err = run_cli(capsys, *args, "--force")
    assert code == 0, err
    assert f"wrote {out}" in text and "(--force: the held-out split disagrees)" in text
    assert len(out.read_text().splitlines()) == 1 + 500 - cut["n_removed"]


def test_clean_keeps_a_cut_that_beats_its_noise(tmp_path, capsys) -> None:
    rng = np.random.default_rng(0)
    X, y = _blobs(rng, 400, 1.5)
    poison = rng.normal(scale=0.5, size=(120, 2)) + np.array([-1.5, -0.45])  # class 0, label 1
    Xa, ya = np.vstack([X, poison]), np.concatenate([y, np.ones(120, dtype=int)])
    order = rng.permutation(520)
    tr = _write(tmp_path / "tr.csv", Xa[order], ya[order])
    va = _write(tmp_path / "va.csv", *_blobs(rng, 300, 1.5))
    te = _write(tmp_path / "te.csv", *_blobs(rng, 300, 1.5))
    out, report = tmp_path / "clean.csv", tmp_path / "r.json"
    code, text, err = run_cli(
        capsys, "clean", tr, "--valid", va, "--test", te, "--target", "label",
        "--review", "0", "--fix", "0", "--n-random", "2", "--out", out, "--json", report,
    )  # fmt: skip
    assert code == 0, err
    cut = json.loads(report.read_text())["cut"]
    assert cut["n_removed"] > 0 and cut["significance"]["significant"] is True
    assert cut["test_score"] > cut["test_baseline"] and not cut["held_out_disagrees"]
    assert "  why: on the valuation set it gains +" in text and "disagrees" not in text
    assert f"wrote {out}" in text and cut["out_written"] is True
    poisoned = set(np.flatnonzero(order >= 400).tolist())
    assert len(poisoned & set(cut["removed_rows"])) > 100  # the poisoned rows go
