"""Data-OOB with 500 decision trees on digits: ``dataworth value`` next to pyDVL, whole processes.

Usage::

    python benchmarks/data_oob_trees.py [--bags 500] [--repeats 5] [--render] [--json PATH]

The data are :func:`common.digits_split` (1,000 training / 400 valuation rows of digits, 64
integer pixel features, seed 0), written once as ``train.csv`` and ``valid.csv`` (columns
``p0`` .. ``p63``, ``label``) to a temporary folder. Every configuration is a whole process,
started afresh for each run and timed from outside (``time.perf_counter`` around
``subprocess.run``): interpreter start, imports, reading the CSV, the valuation, writing the
values.

* ``dataworth --n-jobs J`` (J = 1, 2): ``dataworth value train.csv --target label --valid
  valid.csv --method data-oob --model decision-tree --budget 500 --seed 0 --n-jobs J
  --no-progress --verbose --out values.csv``. The command line gives the model the seed, so
  every bag's model is ``DecisionTreeClassifier(random_state=0)``; ``--verbose`` says where the
  time went (imports, load, set-up, valuation, writing), and ``start`` is what the interpreter
  took before that (wall time less the command's own total).
* ``pyDVL n_jobs=J``: the benchmark environment's interpreter (``.venv-bench``, pyDVL 0.10.0)
  runs :data:`PYDVL_CHILD`: read ``train.csv`` with pandas, fit ``BaggingClassifier(
  DecisionTreeClassifier(), n_estimators=500, max_samples=1.0, bootstrap=True, random_state=0,
  n_jobs=J)`` and run ``DataOOBValuation`` on it, as ``benchmarks/lib_pydvl.py`` does; its
  laps are imports, load, bagging fit, valuation (and saving the values).

Every child has BLAS and OpenMP limited to one thread by environment (:data:`THREAD_LIMITS`, as
``whole_process.py`` does; trees use neither). Each configuration runs once untimed (warm-up:
the operating system's file cache, and the bytecode of every module, which both interpreters
cache under one ``PYTHONPYCACHEPREFIX`` in the temporary folder, as an installed package has
it), then ``--repeats`` times, the
configurations interleaved so that a change in the machine's load hits them alike; the tables
give the median and the best run, and the one-minute load average seen before each run.

Values: ``reference`` is a straightforward loop in this process over dataworth's bags (``bag =
rng.integers(0, 1000, size=1000)`` from ``np.random.default_rng(0)``, one call per bag):
``clone(DecisionTreeClassifier(random_state=0)).fit(X[rows], y[rows])`` on the bag's rows
copied by their counts, and each row's mean out-of-bag accuracy. dataworth must equal it (the
largest absolute difference, and the rows differing by more than 1e-12); pyDVL draws other bags
and gives each tree another seed, so with it the Spearman correlation says how alike the values
rank, not whether they are equal.

Results: ``data_oob_trees.json`` (every number; ``--json`` for another path) and the Markdown
next to it, ``data_oob_trees.md`` (rendered from the JSON by :func:`render`; ``--render``
rewrites it without running anything).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from common import digits_split, run_record, spearman
from numpy.typing import NDArray
from sklearn.base import clone
from sklearn.tree import DecisionTreeClassifier

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT_JSON = HERE / "data_oob_trees.json"
SEED = 0
#: The interpreter of the benchmark environment, where pyDVL is installed (``setup.sh``).
BENCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
#: The target of issue 16: dataworth at least this many times faster than pyDVL.
TARGET_RATIO = 2.0
#: BLAS/OpenMP threads of every child, as in ``whole_process.py`` (trees use neither).
THREAD_LIMITS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

#: What the pyDVL process runs: ``argv`` = train.csv, values.npy, bags, n_jobs, seed; it prints
#: its laps (seconds) and versions as one JSON line.
PYDVL_CHILD = """\
import json, sys, time, warnings
t0 = time.perf_counter()
warnings.simplefilter("ignore")  # pyDeprecate's FutureWarnings at import
from importlib.metadata import version
import numpy as np
import pandas as pd
from pydvl.valuation import DataOOBValuation, Dataset
from sklearn.ensemble import BaggingClassifier
from sklearn.tree import DecisionTreeClassifier
t1 = time.perf_counter()
train, out, bags, n_jobs, seed = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
frame = pd.read_csv(train)
X = frame.drop(columns="label").to_numpy(dtype=np.float64)
y = frame["label"].to_numpy()
t2 = time.perf_counter()
bagging = BaggingClassifier(
    DecisionTreeClassifier(), n_estimators=bags, max_samples=1.0, bootstrap=True,
    random_state=seed, n_jobs=n_jobs,
).fit(X, y)
t3 = time.perf_counter()
result = DataOOBValuation(bagging).fit(Dataset(X, y)).result
values = np.full(len(y), np.nan)
values[np.asarray(result.indices)] = result.values
t4 = time.perf_counter()
np.save(out, values)
t5 = time.perf_counter()
print(json.dumps({
    "laps": {"imports": t1 - t0, "load": t2 - t1, "bagging fit": t3 - t2,
             "valuation": t4 - t3, "writing": t5 - t4},
    "versions": {"pydvl": version("pydvl"), "scikit-learn": version("scikit-learn")},
}))
"""

#: ``--verbose``'s line: ``time: imports 1.18 s, load 0.06 s, ...; 1.44 s in all``.
VERBOSE = re.compile(r"^time: (?P<laps>.*); (?P<total>[0-9.]+) s in all$", re.MULTILINE)


@dataclass(frozen=True)
class Config:
    """One measured process: a library at an ``n_jobs``."""

    library: str  # "dataworth" or "pyDVL"
    n_jobs: int

    @property
    def name(self) -> str:
        """The row label: the command-line option or the library's setting."""
        if self.library == "dataworth":
            return f"dataworth --n-jobs {self.n_jobs}"
        return f"pyDVL n_jobs={self.n_jobs}"


CONFIGS = [Config("dataworth", 1), Config("dataworth", 2), Config("pyDVL", 1), Config("pyDVL", 2)]


def write_data(folder: Path) -> tuple[Path, Path]:
    """``train.csv`` and ``valid.csv`` of the digits split (integer pixels, ``label``)."""
    split = digits_split(SEED)
    paths = []
    for name, X, y in (
        ("train", split.X_train, split.y_train),
        ("valid", split.X_valid, split.y_valid),
    ):
        path = folder / f"{name}.csv"
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow([*(f"p{j}" for j in range(X.shape[1])), "label"])
            writer.writerows([*map(int, row), int(label)] for row, label in zip(X, y, strict=True))
        paths.append(path)
    return paths[0], paths[1]


def command(config: Config, folder: Path, bags: int) -> tuple[list[str], Path]:
    """The process's command line and the file it writes its values to."""
    train, valid = folder / "train.csv", folder / "valid.csv"
    if config.library == "dataworth":
        out = folder / f"dataworth-{config.n_jobs}.csv"
        exe = Path(sys.executable).with_name("dataworth")
        return [
            str(exe), "value", str(train), "--target", "label", "--valid", str(valid),
            "--method", "data-oob", "--model", "decision-tree", "--budget", str(bags),
            "--seed", str(SEED), "--n-jobs", str(config.n_jobs), "--no-progress", "--verbose",
            "--out", str(out),
        ], out  # fmt: skip
    out = folder / f"pydvl-{config.n_jobs}.npy"
    return [
        str(BENCH_PYTHON), "-c", PYDVL_CHILD, str(train), str(out), str(bags),
        str(config.n_jobs), str(SEED),
    ], out  # fmt: skip


def run_once(config: Config, folder: Path, bags: int, env: dict[str, str]) -> dict[str, Any]:
    """Run one process; its wall time, laps, load average before it and (pyDVL) versions."""
    args, _ = command(config, folder, bags)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{config.name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    run: dict[str, Any] = {"seconds": wall, "load": load}
    if config.library == "dataworth":
        found = VERBOSE.search(proc.stderr)
        if found is None:
            raise RuntimeError(f"no --verbose line in:\n{proc.stderr[-3000:]}")
        laps = {"start": wall - float(found["total"])}
        for part in found["laps"].split(", "):
            name, seconds, _ = part.rsplit(" ", 2)
            laps[name] = float(seconds)
        run["laps"] = laps
    else:
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        run["laps"] = {"start": wall - sum(report["laps"].values()), **report["laps"]}
        run["versions"] = report["versions"]
    return run


def read_values(config: Config, folder: Path, bags: int) -> NDArray[np.float64]:
    """The values a configuration's last run wrote, in training-row order."""
    _, out = command(config, folder, bags)
    if config.library == "pyDVL":
        return np.asarray(np.load(out), dtype=np.float64)
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return np.array([float(r["value"]) for r in rows])


def reference_values(bags: int) -> tuple[NDArray[np.float64], float]:
    """The per-bag loop on dataworth's bags (see the module notes), and its seconds."""
    split = digits_split(SEED)
    X, y = split.X_train, split.y_train
    n = len(y)
    model = DecisionTreeClassifier(random_state=SEED)
    rng = np.random.default_rng(SEED)
    total, count = np.zeros(n), np.zeros(n)
    start = time.perf_counter()
    for _ in range(bags):
        counts = np.bincount(rng.integers(0, n, size=n), minlength=n)
        rows = np.repeat(np.arange(n), counts)
        out = np.flatnonzero(counts == 0)
        pred = clone(model).fit(X[rows], y[rows]).predict(X[out])
        total[out] += pred == y[out]
        count[out] += 1
    seconds = time.perf_counter() - start
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan), seconds


def agreement(values: NDArray[np.float64], reference: NDArray[np.float64]) -> dict[str, Any]:
    """How far ``values`` are from ``reference``: largest difference, rows apart, Spearman (of
    the values rounded to 12 decimals, so that a difference in the last bit of two means does
    not break a tie of ranks)."""
    both = np.isfinite(values) & np.isfinite(reference)
    diff = np.abs(values[both] - reference[both])
    return {
        "max_abs_diff": float(diff.max()) if diff.size else None,
        "rows_differing": int((diff > 1e-12).sum()),
        "nan_mismatch": int((np.isnan(values) != np.isnan(reference)).sum()),
        "spearman": spearman(np.round(values, 12), np.round(reference, 12)),
    }


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and best wall time of a configuration's runs, and its median laps."""
    seconds = [r["seconds"] for r in runs]
    laps = {k: statistics.median(r["laps"][k] for r in runs) for k in runs[0]["laps"]}
    return {
        "median": statistics.median(seconds),
        "best": min(seconds),
        "laps": laps,
        "load": [r["load"] for r in runs],
    }


def measure(bags: int, repeats: int) -> dict[str, Any]:
    """Run every configuration and compare the values; the JSON record."""
    if not BENCH_PYTHON.exists():
        raise SystemExit(f"{BENCH_PYTHON} is missing: build it with benchmarks/setup.sh")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="data-oob-trees-") as tmp:
        folder = Path(tmp)
        write_data(folder)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(THREAD_LIMITS, PYTHONPYCACHEPREFIX=str(folder / "pycache"))
        versions: dict[str, str] = {}
        for config in CONFIGS:  # warm-up, untimed
            versions.update(run_once(config, folder, bags, env).get("versions", {}))
        runs: dict[str, list[dict[str, Any]]] = {c.name: [] for c in CONFIGS}
        for _ in range(repeats):
            for config in CONFIGS:
                runs[config.name].append(run_once(config, folder, bags, env))
        values = {c.name: read_values(c, folder, bags) for c in CONFIGS}
    reference, reference_seconds = reference_values(bags)
    timings = {name: summary(r) for name, r in runs.items()}
    for config in CONFIGS:
        t = timings[config.name]
        for stat in ("best", "median"):
            peer_1 = timings[Config("pyDVL", 1).name][stat]
            peer_same = timings[Config("pyDVL", config.n_jobs).name][stat]
            t[f"pydvl_1_over_this_{stat}"] = peer_1 / t[stat]
            t[f"pydvl_same_n_jobs_over_this_{stat}"] = peer_same / t[stat]
    dw = [c.name for c in CONFIGS if c.library == "dataworth"]
    pydvl = [c.name for c in CONFIGS if c.library == "pyDVL"]
    return {
        **run_record("data_oob_trees.py"),
        "seconds": time.perf_counter() - started,
        "pydvl_versions": versions,
        "bags": bags,
        "repeats": repeats,
        "seed": SEED,
        "data": digits_split(SEED).description,
        "target_ratio": TARGET_RATIO,
        "thread_limits": THREAD_LIMITS,
        "commands": {c.name: _shown(command(c, Path("DATA"), bags)[0]) for c in CONFIGS},
        "runs": runs,
        "timings": timings,
        "reference_loop_seconds": reference_seconds,
        "values": {
            **{f"{name} vs reference": agreement(values[name], reference) for name in dw},
            f"{dw[0]} vs {pydvl[0]}": {"spearman": spearman(values[dw[0]], values[pydvl[0]])},
            f"reference vs {pydvl[0]}": {"spearman": spearman(reference, values[pydvl[0]])},
        },
        "identical": {
            "dataworth n_jobs 1 and 2": bool(
                np.array_equal(values[dw[0]], values[dw[1]], equal_nan=True)
            ),
            "pyDVL n_jobs 1 and 2": bool(
                np.array_equal(values[pydvl[0]], values[pydvl[1]], equal_nan=True)
            ),
        },
    }


def _shown(args: list[str]) -> str:
    """A command line for the record: the interpreters and the child script by name only."""
    shown = [Path(args[0]).name, *args[1:]]
    if PYDVL_CHILD in shown:
        shown[shown.index(PYDVL_CHILD)] = "PYDVL_CHILD"
    return " ".join(shown)


def render(result: dict[str, Any]) -> str:
    """The Markdown report of a :func:`measure` record."""
    timings = result["timings"]
    versions = ", ".join(f"{k} {v}" for k, v in result["versions"].items())
    lines = [
        f"# Data-OOB, {result['bags']} decision trees on digits: whole processes",
        "",
        f"Command: `{result['command']}`  ",
        f"Date: {result['date']}; {result['machine']}; Python {result['python']}; {versions}; "
        f"{result['seconds']:.0f} s. Children: "
        + ", ".join(f"{k}={v}" for k, v in result["thread_limits"].items())
        + ".",
        "",
        f"Data: {result['data']}. pyDVL {result['pydvl_versions'].get('pydvl')} with "
        f"scikit-learn {result['pydvl_versions'].get('scikit-learn')} (benchmark environment). "
        f"Each process started afresh, {result['repeats']} timed runs each after an untimed "
        "warm-up, interleaved; see `data_oob_trees.py` for the commands and what is timed.",
        "",
        "Ratios: pyDVL's wall time over this process's, of the best runs (medians in "
        "parentheses); the best run is the one a busy machine disturbed least.",
        "",
        "| process | best s | median s | pyDVL n_jobs=1 / this | pyDVL same n_jobs / this "
        "| load average before each run |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, t in timings.items():
        load = ", ".join(f"{x:.1f}" for x in t["load"])
        lines.append(
            f"| {name} | {t['best']:.2f} | {t['median']:.2f} "
            f"| {t['pydvl_1_over_this_best']:.2f}x ({t['pydvl_1_over_this_median']:.2f}x) "
            f"| {t['pydvl_same_n_jobs_over_this_best']:.2f}x "
            f"({t['pydvl_same_n_jobs_over_this_median']:.2f}x) | {load} |"
        )
    lines += ["", "Where the time went (median seconds of each lap):", ""]
    for name, t in timings.items():
        laps = ", ".join(f"{k} {v:.2f}" for k, v in t["laps"].items())
        lines.append(f"* {name}: {laps}")
    best = max(
        (t["pydvl_1_over_this_best"], name)
        for name, t in timings.items()
        if name.startswith("dataworth")
    )
    met = "met" if best[0] >= result["target_ratio"] else "not met"
    one = timings[Config("dataworth", 1).name]["laps"]
    fixed = sum(v for k, v in one.items() if k != "valuation")
    allowed = timings[Config("pyDVL", 1).name]["best"] / result["target_ratio"] - fixed
    per_bag = 1000 * one["valuation"] / result["bags"]
    lines += [
        "",
        f"Target ({result['target_ratio']:g}x pyDVL's wall time at n_jobs=1, best runs): "
        f"{met}; the best dataworth process ({best[1]}) is {best[0]:.2f}x. At --n-jobs 1 "
        f"dataworth spends {fixed:.2f} s outside the valuation (median laps; mostly the "
        f"interpreter and importing scikit-learn, which pyDVL pays too) and {per_bag:.1f} ms "
        f"per bag in it, most of it in scikit-learn's tree fits. {result['target_ratio']:g}x "
        f"would leave {max(allowed, 0):.2f} s for the valuation, "
        f"{1000 * max(allowed, 0) / result['bags']:.1f} ms per tree.",
        "",
        "Values (`reference`: one scikit-learn fit per bag on dataworth's bags, copied rows, "
        f"{result['reference_loop_seconds']:.1f} s in this process):",
        "",
        "| comparison | largest difference | rows differing (> 1e-12) | NaN mismatches "
        "| Spearman |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, a in result["values"].items():
        diff = a.get("max_abs_diff")
        lines.append(
            f"| {name} | {'' if diff is None else f'{diff:.1e}'} | {a.get('rows_differing', '')} "
            f"| {a.get('nan_mismatch', '')} | {a['spearman']:.4f} |"
        )
    lines += [
        "",
        *(
            f"Values of {name}: {'identical' if same else 'different'}."
            for name, same in result["identical"].items()
        ),
        "",
        "Commands (DATA: the temporary folder of the CSV files):",
        "",
        *(f"* {name}: `{cmd}`" for name, cmd in result["commands"].items()),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bags", type=int, default=500, help="bootstrap bags (trees)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per process")
    parser.add_argument("--render", action="store_true", help="only rewrite the Markdown")
    parser.add_argument("--json", type=Path, default=OUT_JSON, help="the JSON record")
    args = parser.parse_args()
    if args.render:
        result = json.loads(args.json.read_text())
    else:
        result = measure(args.bags, args.repeats)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    markdown = render(result)
    args.json.with_suffix(".md").write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    main()
