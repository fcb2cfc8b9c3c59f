"""Worked example of ``dataworth repairs`` on scikit-learn's diabetes data (``docs/repairs.md``).

Usage::

    python benchmarks/repairs.py [--budget 5000] [--out benchmarks/repairs.md]

The diabetes data (442 rows, 10 standardised features, a real-valued target) is split with
``np.random.default_rng(0)`` into 100 validation rows (``valid.csv``, nothing removed) and 342
training rows, whose table loses cells in two ways (the same generator):

* **MCAR**: every feature cell is removed with probability 0.1;
* **MNAR**: the largest 30% of ``bmi`` and of ``s5`` (values above their 70th percentile) are
  removed, so that what is missing is not like what is left.

Every figure comes from running the command (``python -m dataworth.cli repairs``, one thread
per BLAS pool) on the CSV files written here; the truth (the cells before removal) is known, so
the repairs can be scored:

1. listing, per scenario and tool (simple-imputer: the column mean; knn-imputer: 5 neighbours;
   iterative-imputer: chained regressions, ``random_state`` 0): cells changed, root mean squared
   error of the repaired cells against the truth, and their mean signed error (bias);
2. why the KNN imputer repaired cell (row 0, ``bmi``) of MNAR as it did: Shapley values of the
   input columns (exact, 2^10 tool runs) and of the input rows (permutation sampling, ``budget``
   tool runs), with the row's 5 neighbours among the donors (``nan_euclidean`` distance, as the
   imputer finds them);
3. the effect of the repairs on a linear regression's R^2 on the validation rows
   (``--valid valid.csv``), repairs grouped by column (exact), per scenario and tool, with the
   true values as a fourth "tool" (``--repaired truth.csv``); and repair by repair (cells,
   permutation sampling, ``budget`` model fits) for the KNN repairs of MNAR.

Writes ``benchmarks/repairs.json`` (with each command's printed output) and its tables as
Markdown (``--out``), rendered by ``benchmarks/tables.py`` (families ``repairs.*``), which also
renders them in ``docs/repairs.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.metrics.pairwise import nan_euclidean_distances

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import tables  # noqa: E402
from common import record_lines, run_record  # noqa: E402

TOOLS = ("simple-imputer", "knn-imputer", "iterative-imputer")
MNAR_COLUMNS = ("bmi", "s5")
N_VALID = 100
CELL = (0, "bmi")
#: The two scores of an --effect summary line (as printed: 4 significant digits).
SCORES = re.compile(r"raw column means\) (\S+); with every repair (\S+)\.")
SINGLE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


# ------------------------------------------------------------------------------ data
def diabetes_tables() -> tuple[
    np.ndarray, np.ndarray, list[str], dict[str, np.ndarray], np.ndarray
]:
    """The truth of the training rows, their target, the feature names, the two tables with
    cells removed, and the held-out validation rows (features and target, nothing removed)."""
    data = load_diabetes()
    names = list(data.feature_names)
    rng = np.random.default_rng(0)
    order = rng.permutation(data.data.shape[0])
    valid, train = np.sort(order[:N_VALID]), np.sort(order[N_VALID:])
    X, y = data.data[train], data.target[train]
    mcar = np.where(rng.random(X.shape) < 0.1, np.nan, X)
    mnar = X.copy()
    for name in MNAR_COLUMNS:
        j = names.index(name)
        mnar[X[:, j] > np.quantile(X[:, j], 0.7), j] = np.nan
    held_out = np.column_stack([data.data[valid], data.target[valid]])
    return X, y, names, {"MCAR": mcar, "MNAR": mnar}, held_out


def write_csv(path: Path, X: np.ndarray, y: np.ndarray, names: list[str]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow([*names, "target"])
        for row, target in zip(X.tolist(), y.tolist(), strict=True):
            writer.writerow(["" if np.isnan(v) else repr(v) for v in row] + [repr(target)])
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


# ------------------------------------------------------------------------------ runs
def dataworth(*args: object, cwd: Path) -> tuple[str, float]:
    """Run ``dataworth repairs ARGS`` (one BLAS thread); its standard output and error, and
    seconds."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "dataworth.cli", "repairs", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **SINGLE_THREAD},
        check=False,
    )
    seconds = time.perf_counter() - started
    if proc.returncode:
        raise RuntimeError(f"dataworth repairs {' '.join(map(str, args))} failed: {proc.stderr}")
    return proc.stdout + proc.stderr, seconds


def listing(work: Path, truth: np.ndarray, names: list[str], scenario: str) -> list[dict[str, Any]]:
    rows = []
    for tool in TOOLS:
        out = work / f"{scenario}-{tool}.csv"
        _, seconds = dataworth(
            f"{scenario}.csv", "--target", "target", "--tool", tool, "--out", out.name, cwd=work
        )
        found = read_csv(out)
        after = np.array([float(r["after"]) for r in found])
        true = np.array([truth[int(r["row"]), names.index(r["column"])] for r in found])
        rows.append(
            {
                "scenario": scenario,
                "tool": tool,
                "changed": len(found),
                "rmse": float(np.sqrt(np.mean((after - true) ** 2))),
                "bias": float(np.mean(after - true)),
                "seconds": seconds,
            }
        )
    return rows


def explanation(work: Path, raw: np.ndarray, names: list[str], budget: int) -> dict[str, Any]:
    row, column = CELL
    j = names.index(column)
    donors = np.flatnonzero(~np.isnan(raw[:, j]))
    distances = nan_euclidean_distances(raw[[row]], raw[donors])[0]
    neighbours = donors[np.argsort(distances, kind="stable")[:5]]
    cell = f"{row},{column}"
    base = ["MNAR.csv", "--target", "target", "--tool", "knn-imputer", "--cell", cell]
    by_column, col_seconds = dataworth(
        *base, "--by", "column", "--out", "why-columns.csv", cwd=work
    )
    by_row, row_seconds = dataworth(
        *base, "--by", "row", "--budget", budget, "--out", "why-rows.csv", cwd=work
    )
    columns = {r["column"]: float(r["value"]) for r in read_csv(work / "why-columns.csv")}
    rows = np.array([float(r["value"]) for r in read_csv(work / "why-rows.csv")])
    order = np.argsort(-np.abs(rows), kind="stable")
    rank = {int(r): k + 1 for k, r in enumerate(order)}
    return {
        "cell": {"row": row, "column": column},
        "n_rows": int(raw.shape[0]),
        "neighbours": neighbours.tolist(),
        "neighbour_mean": float(raw[neighbours, j].mean()),
        "by_column": columns,
        "by_column_output": by_column,
        "by_column_seconds": col_seconds,
        "by_row_top": [{"row": int(r), "value": float(rows[r])} for r in order[:10]],
        "by_row_neighbours": [
            {"row": int(r), "value": float(rows[r]), "rank": rank[int(r)]} for r in neighbours
        ],
        "by_row_sum": float(rows.sum()),
        "by_row_output": by_row,
        "by_row_seconds": row_seconds,
        "budget": budget,
    }


def effects(work: Path, scenario: str) -> list[dict[str, Any]]:
    runs = [(tool, ["--tool", tool]) for tool in TOOLS]
    runs.append(("truth", ["--repaired", "truth.csv"]))
    out = []
    for name, source in runs:
        printed, seconds = dataworth(
            f"{scenario}.csv",
            "--target",
            "target",
            *source,
            "--effect",
            "--valid",
            "valid.csv",
            "--task",
            "regression",
            "--out",
            "effect.csv",
            cwd=work,
        )
        values = {r["column"]: float(r["value"]) for r in read_csv(work / "effect.csv")}
        scores = SCORES.search(printed)
        assert scores is not None, printed
        out.append(
            {
                "scenario": scenario,
                "tool": name,
                "values": values,
                "raw_score": float(scores.group(1)),
                "repaired_score": float(scores.group(2)),
                "output": printed,
                "seconds": seconds,
            }
        )
    return out


def cell_effects(work: Path, budget: int) -> dict[str, Any]:
    printed, seconds = dataworth(
        "MNAR.csv",
        "--target",
        "target",
        "--tool",
        "knn-imputer",
        "--effect",
        "--valid",
        "valid.csv",
        "--by",
        "cell",
        "--task",
        "regression",
        "--budget",
        budget,
        "--out",
        "effect-cells.csv",
        cwd=work,
    )
    values = np.array([float(r["value"]) for r in read_csv(work / "effect-cells.csv")])
    return {
        "repairs": int(values.size),
        "negative": int((values < 0).sum()),
        "sum": float(values.sum()),
        "budget": budget,
        "output": printed,
        "seconds": seconds,
    }


# ------------------------------------------------------------------------------ report
def render(result: dict[str, Any]) -> str:
    ex, cells = result["explanation"], result["cell_effects"]
    lines = [
        "# `dataworth repairs` on diabetes: measured",
        "",
        *record_lines(result["record"]),
        "",
        "## Repairs against the truth",
        "",
        tables.block("repairs.accuracy", result),
        "",
        f"## Why knn-imputer repaired (row {ex['cell']['row']}, {ex['cell']['column']}) of MNAR",
        "",
        "By column (exact):",
        "",
        tables.block("repairs.columns", result),
        "",
        f"By row (permutation sampling, budget {ex['budget']}): the 5 neighbours "
        f"{ex['neighbours']} (mean {ex['neighbour_mean']:.5f}) and their rank by |value| "
        f"among {ex['n_rows']} rows:",
        "",
        tables.block("repairs.neighbours", result),
        "",
        "## Effect of the repairs on linear regression R^2 (100 held-out rows)",
        "",
        tables.block("repairs.effects", result),
        "",
        f"KNN repairs of MNAR one by one (permutation sampling, budget {cells['budget']}): "
        f"{cells['negative']} of {cells['repairs']} have a negative value; the values add up "
        f"to {cells['sum']:+.4f}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=HERE / "repairs.md")
    args = parser.parse_args()
    started = time.perf_counter()
    truth, y, names, scenarios, held_out = diabetes_tables()
    with TemporaryDirectory() as folder:
        work = Path(folder)
        write_csv(work / "truth.csv", truth, y, names)
        write_csv(work / "valid.csv", held_out[:, :-1], held_out[:, -1], names)
        for scenario, raw in scenarios.items():
            write_csv(work / f"{scenario}.csv", raw, y, names)
        result: dict[str, Any] = {
            "record": run_record("repairs.py"),
            "listing": [r for s in scenarios for r in listing(work, truth, names, s)],
            "explanation": explanation(work, scenarios["MNAR"], names, args.budget),
            "effects": [r for s in scenarios for r in effects(work, s)],
            "cell_effects": cell_effects(work, args.budget),
        }
    result["record"]["seconds"] = time.perf_counter() - started
    (HERE / "repairs.json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.write_text(render(result))
    print(render(result))


if __name__ == "__main__":
    main()
