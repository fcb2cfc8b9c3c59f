"""Whole-process benchmark: each library timed as a fresh process, start-up included (issue 16).

Usage::

    python benchmarks/whole_process.py [--quick] [--tasks knn-shapley ...] [--n-jobs 1 2]
        [--repeats 3] [--cell-seconds 240] [--out benchmarks/whole_process.md]
    python benchmarks/run.py --whole-process [the same options]
    python benchmarks/whole_process.py --render benchmarks/whole_process.json   # JSON -> md

``run.py`` times the valuation inside one warm process; this script times what a user waits
for: a cold interpreter that imports the library, reads two CSV files, values the training
rows and writes the values. The parent writes the data as CSV files (under ``--data-dir``)
and, for every run, measures the wall time of one child process with ``time.perf_counter``
around ``subprocess.run``:

* dataworth: its real command line, ``dataworth value TRAIN.csv --target y --valid VALID.csv
  --method M ... --seed 0 --n-jobs J --verbose --no-progress --out OUT.csv``; ``--verbose``
  prints where the time went (imports, load, set-up, valuation, writing), parsed from standard
  error.
* pyDVL and OpenDataVal: ``peer_process.py`` run by the benchmark environment's Python, which
  imports the peer, reads the same CSV files with pandas, values them through the adapters of
  ``run.py`` (``lib_pydvl.run``, ``lib_opendataval.run``: the same settings) and prints its own
  breakdown (imports, benchmark harness, load, valuation, writing).

Every child gets ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and ``MKL_NUM_THREADS`` = 1 (and,
as in ``run.py``, ``OPENBLAS_CORETYPE`` where numpy's OpenBLAS would fall back to its generic
kernel), the same for every library. Tasks (the targets of issue 16, pyDVL's wall time over
dataworth's): permutation-shapley, 30 permutations, breast_cancer 200 / 100 rows,
LogisticRegression(max_iter=1000), at least 10x; knn-shapley, K=5, 20,000 x 2,000 rows of
``make_classification`` (20 features, 10 informative, seed 0), at least 10x; data-oob, 500
decision trees, digits 1,000 / 400 rows (``common.digits_split``; ``run.py``'s data-oob task uses
breast_cancer instead), at least 2x. ``--quick``: 3 permutations, 2,000 x 200 rows, 50 trees,
one run each (about a minute). Each (task, n_jobs, library) runs up to ``--repeats`` times,
the libraries taking turns, while its runs so far took less than ``--cell-seconds``; the best
run is reported. ``--snapshot`` runs dataworth as committed at HEAD (``src/`` exported with
``git archive``, first on the dataworth processes' ``PYTHONPATH``) instead of the editable
install's working tree, which other work in the same checkout may be changing. Results:
markdown (``--out``) rendered from the JSON record next to it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from common import Split, breast_cancer_split, digits_split, spearman
from numpy.typing import NDArray
from peer_process import MARKER

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BENCH_BIN = ROOT / ".venv-bench" / "bin"
LIBRARIES = ("dataworth", "pydvl", "opendataval")
LABELS = {"dataworth": "dataworth", "pydvl": "pyDVL", "opendataval": "OpenDataVal"}
#: Thread limits of every child process, whatever the library.
THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
#: The issue's bound on dataworth's n_jobs=2 wall time relative to n_jobs=1.
NJOBS_BOUND = 1.10
PROBE = """
import json, sys
sys.path.insert(0, {here!r})
from common import package_version
from run import openblas_coretype
names = ["dataworth", "pydvl", "opendataval", "numpy", "scipy", "scikit-learn", "pandas",
         "joblib", "torch"]
print(json.dumps({{"python": sys.version.split()[0],
                  "versions": {{n: package_version(n) for n in names}},
                  "coretype": openblas_coretype({mode!r})}}))
"""
TIME_LINE = re.compile(r"^time: (?P<laps>.*); (?P<total>[0-9.]+) s in all$", re.MULTILINE)


def knn_split(n_train: int, n_valid: int) -> Split:
    """``make_classification``: 20 features, 10 informative, 2 classes, seed 0; train first."""
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=n_train + n_valid, n_features=20, n_informative=10, random_state=0
    )
    return Split(
        name=f"make_classification-{n_train}",
        X_train=X[:n_train],
        y_train=y[:n_train].astype(np.int64),
        X_valid=X[n_train:],
        y_valid=y[n_train:].astype(np.int64),
        description=(
            f"make_classification(n_samples={n_train + n_valid:,}, n_features=20, "
            f"n_informative=10, random_state=0): first {n_train:,} rows training, last "
            f"{n_valid:,} valuation"
        ),
    )


@dataclass(frozen=True)
class Task:
    """One whole-process task: a method on CSV files, with the issue's target."""

    name: str  # dataworth method and adapter task (a key of common.TASKS)
    target: float  # required pyDVL / dataworth wall-time ratio
    split: Callable[[bool], Split]  # quick -> data
    budget: Callable[[bool], int | None]  # quick -> permutations / bags (None: exact)
    options: tuple[str, ...]  # `dataworth value` options of the method (without --budget)
    model: str


TASKS: dict[str, Task] = {
    "permutation-shapley": Task(
        "permutation-shapley",
        10.0,
        lambda quick: breast_cancer_split(),
        lambda quick: 3 if quick else 30,
        ("--method", "permutation-shapley", "--model", "logistic-regression"),
        "LogisticRegression(max_iter=1000)",
    ),
    "knn-shapley": Task(
        "knn-shapley",
        10.0,
        lambda quick: knn_split(2_000, 200) if quick else knn_split(20_000, 2_000),
        lambda quick: None,
        ("--method", "knn-shapley", "--model", "knn", "--k", "5"),
        "KNN, K=5",
    ),
    "data-oob": Task(
        "data-oob",
        2.0,
        lambda quick: digits_split(),
        lambda quick: 50 if quick else 500,
        ("--method", "data-oob", "--model", "decision-tree"),
        "DecisionTreeClassifier(random_state=0)",
    ),
}


@dataclass
class Run:
    """One child process: its wall time and its own breakdown."""

    wall: float
    laps: dict[str, float]
    in_all: float | None
    error: str | None = None


@dataclass
class Cell:
    """Every run of one library on one task at one n_jobs."""

    task: str
    library: str
    n_jobs: int
    status: str = "ok"  # "ok", "failed", "n/a"
    note: str = ""
    runs: list[Run] = field(default_factory=list)
    #: peers: Spearman correlation of their values with dataworth's at the same n_jobs
    spearman_vs_dataworth: float | None = None
    #: dataworth at n_jobs > 1: largest absolute difference from its values at n_jobs=1
    max_abs_diff_vs_n_jobs_1: float | None = None
    #: values of the first run (seeded: every run gives the same); not written to the JSON
    values: NDArray[np.float64] | None = field(default=None, repr=False)

    def record(self) -> dict[str, Any]:
        """The cell as JSON-ready data, without its values."""
        return {k: v for k, v in asdict(self).items() if k != "values"}


def write_csv(split: Split, directory: Path) -> tuple[Path, Path]:
    """Write the split as ``<name>_train.csv`` / ``<name>_valid.csv`` (features x0.., label y)."""
    paths = []
    for part in ("train", "valid"):
        X, y = getattr(split, f"X_{part}"), getattr(split, f"y_{part}")
        frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
        frame["y"] = y
        path = directory / f"{split.name}_{part}.csv"
        frame.to_csv(path, index=False, float_format="%.17g")  # round-trips float64 exactly
        paths.append(path)
    return paths[0], paths[1]


def parse_time_line(stderr: str) -> tuple[dict[str, float], float] | None:
    """The laps and total of dataworth's ``--verbose`` line ``time: imports 1.37 s, ...``."""
    match = TIME_LINE.search(stderr)
    if match is None:
        return None
    laps = {}
    for part in match["laps"].split(", "):
        name, seconds, _unit = part.rsplit(" ", 2)
        laps[name] = float(seconds)
    return laps, float(match["total"])


def run_child(
    cmd: list[str], env: dict[str, str], timeout: float, parse: Callable[[str, str], Any]
) -> Run:
    """Run ``cmd`` cold and time it; ``parse(stdout, stderr)`` gives (laps, in_all) or None."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Run(time.perf_counter() - start, {}, None, f"timed out after {timeout:.0f} s")
    wall = time.perf_counter() - start
    parsed = parse(proc.stdout, proc.stderr) if proc.returncode == 0 else None
    if parsed is None:
        tail = " / ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        return Run(wall, {}, None, f"exit status {proc.returncode}: {tail}")
    laps, in_all = parsed
    return Run(wall, laps, in_all)


def _dataworth_times(_stdout: str, stderr: str) -> tuple[dict[str, float], float] | None:
    return parse_time_line(stderr)


def _peer_times(stdout: str, _stderr: str) -> tuple[dict[str, float], float] | None:
    lines = [line for line in stdout.splitlines() if line.startswith(MARKER)]
    if not lines:
        return None
    record = json.loads(lines[-1][len(MARKER) :])
    return record["laps"], record["in_all"]


def command(
    library: str,
    task: Task,
    paths: tuple[Path, Path],
    budget: int | None,
    n_jobs: int,
    out: Path,
    bins: dict[str, Path],
) -> list[str]:
    """The command line of one run."""
    train, valid = str(paths[0]), str(paths[1])
    if library == "dataworth":
        extra = ["--budget", str(budget)] if budget is not None else []
        return [
            str(bins["dataworth"]),
            "value",
            train,
            "--target",
            "y",
            "--valid",
            valid,
            *task.options,
            *extra,
            "--seed",
            "0",
            "--n-jobs",
            str(n_jobs),
            "--verbose",
            "--no-progress",
            "--out",
            str(out),
        ]
    return [
        str(bins["python"]),
        str(HERE / "peer_process.py"),
        library,
        task.name,
        train,
        valid,
        "--target",
        "y",
        "--budget",
        str(budget if budget is not None else 1),
        "--n-jobs",
        str(n_jobs),
        "--seed",
        "0",
        "--out",
        str(out),
    ]


def peer_support(library: str, task: str, n_jobs: int) -> str | None:
    """None when the peer runs ``task`` at ``n_jobs``, else why not (from its adapter)."""
    if library == "dataworth":
        return None
    if library == "opendataval" and n_jobs != 1:
        return "OpenDataVal has no parallel mode"
    if library == "opendataval":
        import lib_opendataval

        return lib_opendataval.supports(task)
    import lib_pydvl

    return lib_pydvl.supports(task)


def read_values(path: Path) -> NDArray[np.float64]:
    """Values in training-row order from an ``index,value[,...]`` CSV."""
    frame = pd.read_csv(path).sort_values("index")
    return frame["value"].to_numpy(dtype=np.float64)


def compare(cells: list[Cell]) -> None:
    """Fill in the peers' Spearman with dataworth and dataworth's differences across n_jobs."""
    dataworth = {c.n_jobs: c for c in cells if c.library == "dataworth" and c.values is not None}
    for cell in cells:
        if cell.values is None:
            continue
        base = dataworth.get(cell.n_jobs)
        if cell.library != "dataworth" and base is not None and base.values is not None:
            rho = spearman(base.values, cell.values)
            cell.spearman_vs_dataworth = None if np.isnan(rho) else rho
        one = dataworth.get(1)
        if cell.library == "dataworth" and cell.n_jobs != 1 and one is not None:
            assert one.values is not None
            cell.max_abs_diff_vs_n_jobs_1 = float(np.max(np.abs(cell.values - one.values)))


def measure(
    task: Task,
    quick: bool,
    n_jobs_list: list[int],
    libraries: list[str],
    args: argparse.Namespace,
    envs: dict[str, dict[str, str]],
    bins: dict[str, Path],
) -> tuple[list[Cell], dict[str, Any]]:
    """Every run of one task; the libraries take turns, so load spikes hit all of them."""
    split = task.split(quick)
    paths = write_csv(split, args.data_dir)
    budget = task.budget(quick)
    info = {
        "data": split.description,
        "n_train": split.n_train,
        "n_valid": int(split.X_valid.shape[0]),
        "budget": budget,
        "model": task.model,
        "target": task.target,
        "files": [str(p) for p in paths],
    }
    cells: list[Cell] = []
    for n_jobs in n_jobs_list:
        row = [Cell(task.name, lib, n_jobs) for lib in libraries]
        for cell in row:
            reason = peer_support(cell.library, task.name, n_jobs)
            if reason is not None:
                cell.status, cell.note = "n/a", reason
        for attempt in range(args.repeats):
            for cell in row:
                spent = sum(r.wall for r in cell.runs)
                if cell.status != "ok" or (attempt > 0 and spent >= args.cell_seconds):
                    continue
                out = args.data_dir / f"values-{task.name}-{cell.library}-{n_jobs}.csv"
                out.unlink(missing_ok=True)
                cmd = command(cell.library, task, paths, budget, n_jobs, out, bins)
                parse = _dataworth_times if cell.library == "dataworth" else _peer_times
                run = run_child(cmd, envs[cell.library], args.timeout, parse)
                cell.runs.append(run)
                shown = f"{run.wall:.2f} s" if run.error is None else run.error
                print(f"  {task.name} n_jobs={n_jobs} {cell.library:<12} {shown}", flush=True)
                if run.error is not None:
                    cell.status, cell.note = "failed", run.error
                elif cell.values is None:
                    cell.values = read_values(out)
        cells.extend(row)
    compare(cells)
    return cells, info


def probe(python: Path, mode: str, env: dict[str, str]) -> dict[str, Any]:
    """Versions in the children's environment and the OPENBLAS_CORETYPE ``run.py`` would set."""
    code = PROBE.format(here=str(HERE), mode=mode)
    proc = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _git(*cmd: str) -> str:
    proc = subprocess.run(["git", *cmd], capture_output=True, text=True, cwd=ROOT, check=True)
    return proc.stdout.rstrip("\n")  # porcelain lines start with a space


def export_head(directory: Path, python: Path) -> tuple[Path, str]:
    """``src/`` as committed at HEAD (``git archive``) under ``directory``; path and commit.

    The files are byte-compiled by ``python`` (the children's interpreter), so that no timed
    run pays for compiling them, as none does for the installed peers.
    """
    commit = _git("rev-parse", "HEAD").strip()
    dest = directory / f"src-{commit[:12]}"
    if not dest.exists():
        archive = subprocess.run(
            ["git", "archive", "--format=tar", commit, "src"],
            capture_output=True,
            cwd=ROOT,
            check=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(dest, filter="data")
        subprocess.run([str(python), "-m", "compileall", "-q", str(dest)], check=True)
    return dest / "src", commit


def git_state(snapshot: str | None) -> dict[str, Any]:
    """Which dataworth ran: the ``snapshot`` commit, or HEAD and the changed files of ``src/``."""
    if snapshot is not None:
        return {"head": snapshot, "snapshot": True, "src_changes": []}
    return {
        "head": _git("rev-parse", "HEAD").strip(),
        "snapshot": False,
        "src_changes": _git("status", "--porcelain", "--", "src").splitlines(),
    }


# --------------------------------------------------------------------------- rendering


def best(cell: dict[str, Any]) -> dict[str, Any] | None:
    """The fastest successful run of a cell (None when there is none)."""
    ok = [r for r in cell["runs"] if r["error"] is None]
    return min(ok, key=lambda r: r["wall"]) if ok and cell["status"] == "ok" else None


def _find(cells: list[dict[str, Any]], task: str, lib: str, n_jobs: int) -> dict[str, Any] | None:
    return next(
        (c for c in cells if (c["task"], c["library"], c["n_jobs"]) == (task, lib, n_jobs)), None
    )


def _wall(cell: dict[str, Any] | None) -> float | None:
    run = best(cell) if cell is not None else None
    return None if run is None else float(run["wall"])


def _seconds(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return "-"
    if cell["status"] != "ok":
        return cell["status"]
    wall = _wall(cell)
    return f"{wall:.2f} ({len(cell['runs'])})" if wall is not None else "-"


def _ratio(num: float | None, den: float | None) -> float | None:
    return None if num is None or den is None or den == 0 else num / den


def _x(ratio: float | None, digits: int = 1) -> str:
    return "-" if ratio is None else f"{ratio:.{digits}f}x"


def _rho(peer: dict[str, Any] | None) -> str:
    rho = None if peer is None else peer["spearman_vs_dataworth"]
    return "-" if rho is None else f"{rho:.3f}"


def summary(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Per task and n_jobs: best walls, ratios, and whether the target is met."""
    cells = record["cells"]
    rows = []
    for task, info in record["tasks"].items():
        for n_jobs in record["n_jobs"]:
            dw = _find(cells, task, "dataworth", n_jobs)
            ratio = _ratio(_wall(_find(cells, task, "pydvl", n_jobs)), _wall(dw))
            rows.append(
                {
                    "task": task,
                    "n_jobs": n_jobs,
                    "pydvl_ratio": ratio,
                    "target": info["target"],
                    "met": None if ratio is None else ratio >= info["target"],
                    "opendataval_ratio": _ratio(
                        _wall(_find(cells, task, "opendataval", n_jobs)), _wall(dw)
                    ),
                }
            )
    return rows


def _summary_table(record: dict[str, Any]) -> list[str]:
    cells = record["cells"]
    head = [
        "task",
        "n_jobs",
        "dataworth s",
        "pyDVL s",
        "pyDVL / dataworth",
        "target",
        "met",
        "OpenDataVal s",
        "OpenDataVal / dataworth",
        "ρ dataworth, pyDVL",
        "ρ dataworth, OpenDataVal",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in summary(record):
        task, n_jobs = row["task"], row["n_jobs"]
        dw, py, odv = (_find(cells, task, lib, n_jobs) for lib in LIBRARIES)
        met = {None: "-", True: "yes", False: "**no**"}[row["met"]]
        cols = [
            task,
            str(n_jobs),
            _seconds(dw),
            _seconds(py),
            _x(row["pydvl_ratio"]),
            f">= {row['target']:g}x",
            met,
            _seconds(odv),
            _x(row["opendataval_ratio"]),
            _rho(py),
            _rho(odv),
        ]
        lines.append("| " + " | ".join(cols) + " |")
    return lines


def _njobs_table(record: dict[str, Any]) -> list[str]:
    cells = record["cells"]
    if not {1, 2} <= set(record["n_jobs"]):
        return ["(needs n_jobs 1 and 2)"]
    head = [
        "task",
        "dataworth n_jobs=1 s",
        "n_jobs=2 s",
        "n_jobs 2 / 1 (best)",
        "n_jobs 2 / 1 (medians)",
        f"<= {NJOBS_BOUND:.2f}",
        "max abs diff of values",
        "pyDVL n_jobs 2 / 1",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for task in record["tasks"]:
        one, two = (_find(cells, task, "dataworth", j) for j in (1, 2))
        ratio = _ratio(_wall(two), _wall(one))
        medians = [
            statistics.median(r["wall"] for r in c["runs"] if r["error"] is None)
            if c is not None and best(c) is not None
            else None
            for c in (one, two)
        ]
        gap = None if two is None else two["max_abs_diff_vs_n_jobs_1"]
        diff = "-" if gap is None else f"{gap:.2g}"
        pyr = _ratio(_wall(_find(cells, task, "pydvl", 2)), _wall(_find(cells, task, "pydvl", 1)))
        ok = "-" if ratio is None else ("yes" if ratio <= NJOBS_BOUND else "**no**")
        cols = [
            task,
            _seconds(one),
            _seconds(two),
            _x(ratio, 2),
            _x(_ratio(medians[1], medians[0]), 2),
            ok,
            diff,
            _x(pyr, 2),
        ]
        lines.append("| " + " | ".join(cols) + " |")
    return lines


def _breakdown_table(record: dict[str, Any]) -> list[str]:
    laps = ["imports", "harness", "load", "set-up", "valuation", "writing"]
    head = ["task", "n_jobs", "library", "wall s", "start-up + exit", *laps, "runs (wall s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cell in record["cells"]:
        run = best(cell)
        if run is None:
            continue
        startup = "-" if run["in_all"] is None else f"{run['wall'] - run['in_all']:.2f}"
        cols = [
            cell["task"],
            str(cell["n_jobs"]),
            LABELS[cell["library"]],
            f"{run['wall']:.2f}",
            startup,
            *(f"{run['laps'][k]:.2f}" if k in run["laps"] else "-" for k in laps),
            ", ".join(f"{r['wall']:.2f}" for r in cell["runs"]),
        ]
        lines.append("| " + " | ".join(cols) + " |")
    return lines


def render(record: dict[str, Any]) -> str:
    """The markdown report of a JSON record."""
    env = record["environment"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    rows = summary(record)
    missed = [r for r in rows if r["met"] is False]
    met_line = (
        "every pyDVL target is met"
        if not missed
        else "missed: "
        + "; ".join(
            f"{r['task']} at n_jobs={r['n_jobs']} ({_x(r['pydvl_ratio'])}, target {r['target']:g}x)"
            for r in missed
        )
    )
    skipped = [
        f"{LABELS[c['library']]} {c['task']} n_jobs={c['n_jobs']}: {c['status']} ({c['note']})"
        for c in record["cells"]
        if c["status"] != "ok"
    ]
    git = record["git"]
    lines = [
        f"# Whole-process timing ({record['mode']} run)",
        "",
        "Each library timed as a whole process from a cold start (a fresh interpreter per run, "
        "its imports, reading the CSV files, the valuation and writing the values), rendered "
        "from `whole_process.json` by `benchmarks/whole_process.py`.",
        "",
        f"Command: `{record['command']}`  ",
        f"Date: {record['date']}; {record['total_seconds']:.0f} s in all; machine "
        f"{record['machine']}; load average (1 min) at start / end "
        f"{record['load_average'][0]:.2f} / {record['load_average'][1]:.2f} (shared machine: "
        "single timings are noisy)  ",
        f"Children: Python {env['python']}; {versions}  ",
        "Thread limits in every child: "
        + ", ".join(f"{k}={v}" for k, v in record["thread_env"].items())
        + f"; OPENBLAS_CORETYPE={env['openblas_coretype'] or 'not set'}  ",
        (
            f"dataworth source: `src/` as committed at {git['head'][:12]} (`--snapshot`: "
            "exported with `git archive`, first on the dataworth processes' PYTHONPATH)"
            if git["snapshot"]
            else f"dataworth source: the working tree at HEAD {git['head'][:12]}"
            + (
                f", with uncommitted changes in {len(git['src_changes'])} file(s) of src/ "
                "(other work in progress in the same checkout; listed in the JSON)"
                if git["src_changes"]
                else ", clean"
            )
        ),
        "",
        "Tasks:",
        "",
    ]
    for task, info in record["tasks"].items():
        budget = "exact" if info["budget"] is None else f"budget {info['budget']}"
        lines.append(
            f"* **{task}**: {info['data']}; {info['n_train']:,} training x {info['n_valid']:,} "
            f"valuation rows; {info['model']}; {budget}; target pyDVL / dataworth >= "
            f"{info['target']:g}x"
        )
    lines += [
        "",
        "## Summary",
        "",
        "Seconds are the best wall time of the runs (their number in parentheses; up to "
        f"{record['repeats']} per library, fewer when the runs so far took "
        f"{record['cell_seconds']:g} s or more), including interpreter start-up and exit. "
        "Ratio = peer / dataworth at the same n_jobs. ρ = Spearman correlation of the values "
        "(a sanity check: knn-shapley is exact in every library, so ρ should be 1; "
        "permutation-shapley with tens of permutations is mostly Monte Carlo noise at 200 "
        "points, so a low ρ is expected there; see `results.md` for agreement with long "
        "references).",
        "",
        *_summary_table(record),
        "",
        f"Targets: {met_line}."
        + (
            " The targets are for the full budgets: a quick run only shows that every process "
            "runs, and its times are mostly start-up."
            if record["mode"] == "quick"
            else ""
        ),
        "",
        "## dataworth: n_jobs=2 against n_jobs=1",
        "",
        f"Issue 16 requires n_jobs=2 never to be more than {100 * (NJOBS_BOUND - 1):.0f}% slower "
        "than n_jobs=1 (whole process). Max abs diff: between the values of the two runs "
        "(dataworth's values do not depend on n_jobs).",
        "",
        *_njobs_table(record),
        "",
        "## Where the time went (best run of each)",
        "",
        "dataworth: the laps of its `--verbose` line (`imports` counts from the start of the "
        "command module; `start-up + exit` = wall - its total: the interpreter, the imports "
        "before that module, and exit). Peers: laps measured by `peer_process.py` from its "
        "first statement (`imports`: numpy, pandas, scikit-learn and the peer; `harness`: the "
        "benchmark's `common.py` and adapter, which a user script would not import; "
        "`valuation`: the adapter's `run`, i.e. wrapping the arrays in the library's objects and "
        "valuing).",
        "",
        *_breakdown_table(record),
        "",
    ]
    if skipped:
        lines += ["## Not run", "", *[f"* {s}" for s in skipped], ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Write the data, run every child, and write the JSON record and its markdown."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small budgets, one run each")
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--libraries", nargs="+", choices=LIBRARIES, default=list(LIBRARIES))
    parser.add_argument("--n-jobs", nargs="+", type=int, default=[1, 2])
    parser.add_argument(
        "--repeats", type=int, default=None, help="runs per cell (default 3; --quick 1)"
    )
    parser.add_argument(
        "--cell-seconds",
        type=float,
        default=240.0,
        help="no further repeat of a library once its runs of a cell took this long",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per child")
    parser.add_argument("--python", type=Path, default=BENCH_BIN / "python", help="peers' Python")
    parser.add_argument("--dataworth", type=Path, default=BENCH_BIN / "dataworth")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "dataworth-whole-process",
        help="where the CSV files and values go",
    )
    parser.add_argument(
        "--openblas-coretype",
        default="auto",
        help="as in run.py: 'auto', 'keep' or a kernel name, the same for every child",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="markdown (JSON next to it); default benchmarks/whole_process.md, with --quick "
        "whole_process-quick.md in --data-dir",
    )
    parser.add_argument(
        "--snapshot",
        action="store_true",
        help="run dataworth as committed at HEAD (src/ exported with git archive into "
        "--data-dir, first on its PYTHONPATH), not the working tree other work may be changing",
    )
    parser.add_argument("--render", type=Path, help="only re-render this JSON to markdown")
    args = parser.parse_args(argv)
    if args.render:
        args.render.with_suffix(".md").write_text(render(json.loads(args.render.read_text())))
        return 0
    if "dataworth" not in args.libraries:
        parser.error("dataworth must be among --libraries (ratios are relative to it)")
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    out: Path = args.out or (
        args.data_dir / "whole_process-quick.md" if args.quick else HERE / "whole_process.md"
    )
    env = {**os.environ, **THREAD_ENV}
    env.setdefault("PYTHONWARNINGS", "ignore::FutureWarning")  # pyDeprecate, also in workers
    found = probe(args.python, args.openblas_coretype, env)
    if found["coretype"]:
        env["OPENBLAS_CORETYPE"] = found["coretype"]
    bins = {"python": args.python, "dataworth": args.dataworth}
    envs = {lib: env for lib in LIBRARIES}
    snapshot = None
    if args.snapshot:
        src, snapshot = export_head(args.data_dir, args.python)
        path = os.pathsep.join(p for p in (str(src), env.get("PYTHONPATH")) if p)
        envs["dataworth"] = {**env, "PYTHONPATH": path}
    begin = time.perf_counter()
    load_start = os.getloadavg()[0]
    cells: list[Cell] = []
    tasks: dict[str, Any] = {}
    for name in args.tasks:
        print(f"== {name}", flush=True)
        task_cells, tasks[name] = measure(
            TASKS[name], args.quick, args.n_jobs, args.libraries, args, envs, bins
        )
        cells.extend(task_cells)
    record = {
        "mode": "quick" if args.quick else "full",
        "command": " ".join(
            ["python benchmarks/whole_process.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "total_seconds": time.perf_counter() - begin,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores (shared)",
        "load_average": [load_start, os.getloadavg()[0]],
        "environment": {
            "python": found["python"],
            "versions": found["versions"],
            "openblas_coretype": env.get("OPENBLAS_CORETYPE"),
        },
        "thread_env": THREAD_ENV,
        "git": git_state(snapshot),
        "n_jobs": args.n_jobs,
        "repeats": args.repeats,
        "cell_seconds": args.cell_seconds,
        "tasks": tasks,
        "cells": [c.record() for c in cells],
    }
    record["summary"] = summary(record)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    out.write_text(render(record))
    print("\n".join(_summary_table(record)))
    print(f"markdown: {out}; JSON: {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
