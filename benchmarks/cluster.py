"""Throughput of a valuation on loky, a local Ray instance and a local Dask cluster (1, 2 workers).

Usage::

    python benchmarks/cluster.py [--quick] [--out benchmarks/cluster.md]

Needs ``pip install "dataworth[ray]" "dataworth[dask]"``. For each backend and worker count the
script starts the engine as ``dataworth value --backend`` does (``on_cluster_backend``: Ray:
``ray.init(num_cpus=W)``; Dask: ``LocalCluster(n_workers=W, threads_per_worker=1)`` without
Dask's ``MALLOC_TRIM_THRESHOLD_``), runs each workload once
to warm the workers up (imports), then twice measured (the faster run is kept: the machine is
shared) with ``n_jobs=W`` under
``joblib.parallel_config(backend=...)``, and reports wall seconds (``time.perf_counter``),
samples (bags or permutations) per second, how often the utility was pickled in the driver
during the run (the "once per run" claim: loky pickles it per task and memory-maps its large
arrays once; Ray and Dask get it once), and whether the values equal the loky run with the same
seed bit for bit.

With one worker joblib runs every task in the calling process, whatever the backend
(``n_jobs=1`` is sequential in joblib), so the 1-worker rows are the sequential baseline.

Workloads (``make_classification``, 20 features, 10 informative, 2 classes, seed 0; batched
logistic regression on numpy; 1,000 valuation rows):

* data-oob, 2,000 training rows, 2,048 bootstrap bags (32 rounds of 64, 4 tasks per round);
* tmc-shapley, 300 training rows, 64 permutations (8 rounds of 8, one task per permutation);
* tmc-shapley, 100 training rows, 32 permutations, one scikit-learn fit per subset
  (``batched=False``): long tasks (a permutation is ~100 fits), where a worker's start-up and
  transfer costs matter least.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from joblib import parallel_config
from sklearn.datasets import make_classification

from dataworth.api import make_utility
from dataworth.data import Dataset
from dataworth.engine.cluster import on_cluster_backend
from dataworth.methods import get_method

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import tables  # noqa: E402

SEED = 0


@dataclass(frozen=True)
class Workload:
    method: str
    n_train: int
    budget: int
    what: str
    batched: bool = True


FULL = (
    Workload("data-oob", 2000, 2048, "bags"),
    Workload("tmc-shapley", 300, 64, "permutations"),
    Workload("tmc-shapley", 100, 32, "permutations", batched=False),
)
QUICK = (
    Workload("data-oob", 2000, 256, "bags"),
    Workload("tmc-shapley", 300, 16, "permutations"),
    Workload("tmc-shapley", 100, 4, "permutations", batched=False),
)


@dataclass
class Row:
    backend: str
    workers: int
    method: str
    n_train: int
    samples: int
    what: str
    fits: str
    start_seconds: float
    seconds: float
    per_second: float
    driver_pickles: int
    utility_mib: float
    same_as_loky: bool | None


def _data(n_train: int) -> tuple[Dataset, Dataset]:
    X, y = make_classification(
        n_samples=n_train + 1000, n_features=20, n_informative=10, random_state=SEED
    )
    full = Dataset.from_arrays(X, y)
    return full.take(np.arange(n_train)), full.take(np.arange(n_train, n_train + 1000))


@contextmanager
def _engine(backend: str, workers: int) -> Iterator[None]:
    """Start the engine as ``dataworth value --backend`` does (``on_cluster_backend``)."""
    if backend == "loky":
        with parallel_config(backend="loky"):
            yield
    else:
        with on_cluster_backend(backend, None, workers):
            yield


def _counting(cls: type) -> tuple[list[int], Callable[[], None]]:
    calls: list[int] = []
    original = cls.__getstate__

    def counting(self: Any) -> Any:
        calls.append(1)
        return original(self)

    cls.__getstate__ = counting  # type: ignore[method-assign]
    return calls, lambda: setattr(cls, "__getstate__", original)


def _run(work: Workload, budget: int, workers: int) -> tuple[float, np.ndarray, int]:
    train, valid = _data(work.n_train)
    utility = make_utility(train, valid, device="numpy", batched=None if work.batched else False)
    calls, restore = _counting(type(utility))
    try:
        est = get_method(work.method)(budget=budget, random_state=SEED, n_jobs=workers)
        started = time.perf_counter()
        values = est.fit(utility).result_.values
        seconds = time.perf_counter() - started
    finally:
        restore()
    return seconds, values, len(calls)


def _utility_mib(work: Workload) -> float:
    import cloudpickle

    batched = None if work.batched else False
    utility = make_utility(*_data(work.n_train), device="numpy", batched=batched)
    return len(cloudpickle.dumps(utility)) / 2**20


def measure(workloads: tuple[Workload, ...]) -> list[Row]:
    rows: list[Row] = []
    reference: dict[tuple[str, int, int], np.ndarray] = {}
    for backend in ("loky", "ray", "dask"):
        for workers in (1, 2):
            print(f"{backend}, {workers} worker(s) ...", file=sys.stderr, flush=True)
            started = time.perf_counter()
            with _engine(backend, workers):
                start_seconds = time.perf_counter() - started
                for work in workloads:
                    with warnings.catch_warnings():  # warm-up (imports); few bags: NaN warning
                        warnings.simplefilter("ignore")
                        _run(work, max(2, work.budget // 16), workers)
                    seconds, values, pickles = min(
                        (_run(work, work.budget, workers) for _ in range(2)), key=lambda r: r[0]
                    )
                    key = (work.method, work.n_train, workers)
                    if backend == "loky":
                        reference[key] = values
                    same = bool(np.array_equal(values, reference[key], equal_nan=True))
                    rows.append(
                        Row(
                            backend,
                            workers,
                            work.method,
                            work.n_train,
                            work.budget,
                            work.what,
                            "batched" if work.batched else "one at a time",
                            round(start_seconds, 2),
                            round(seconds, 3),
                            round(work.budget / seconds, 2),
                            pickles,
                            round(_utility_mib(work), 3),
                            None if backend == "loky" else same,
                        )
                    )
                    print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def write(rows: list[Row], out: Path, command: str, load: tuple[float, float]) -> None:
    env = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": (
            f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        ),
        "versions": {n: _version(n) for n in ("dataworth", "joblib", "ray", "dask", "distributed")},
        "load_average_1min_start_end": load,
    }
    json_path = out.with_suffix(".json")
    json_path.write_text(
        json.dumps({"command": command, **env, "rows": [asdict(r) for r in rows]}, indent=2) + "\n"
    )
    record = json.loads(json_path.read_text())
    lines = [
        "# dataworth on loky, Ray and Dask: throughput vs workers",
        "",
        f"Command: `{command}`  ",
        f"Date: {env['date']}; machine: {env['machine']}  ",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()) + "  ",
        f"Load average (1 min) at start / end: {load[0]:.2f} / {load[1]:.2f} (the machine is "
        "shared: figures on a busy machine are noisy; compare rows of one run only)",
        "",
        "Data: `make_classification` (20 features, 10 informative, 2 classes, seed 0), 1,000 "
        "valuation rows, logistic regression (batched on numpy, or one scikit-learn fit per "
        "subset: 'fits'). Each engine is started once per "
        "worker count ('start s'), every workload runs once to warm the workers up, then twice "
        "measured (the faster run kept). 'driver pickles': how often the utility was pickled "
        "in this process during the run (loky: once per task, its arrays > 1 MB memory-mapped "
        "once; Ray/Dask: once per run, then each task unpickles its own copy on the worker). "
        "With 1 worker joblib runs the tasks in the calling process for every backend "
        "(`n_jobs=1` is sequential). Ray's joblib backend starts a new pool of actors for "
        "every run (part of 'seconds'); loky and Dask reuse their workers.",
        "",
        tables.block("cluster", record),
    ]
    out.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller budgets")
    parser.add_argument("--out", default=str(HERE / "cluster.md"))
    args = parser.parse_args()
    command = "python benchmarks/cluster.py" + (" --quick" if args.quick else "")
    if args.out != str(HERE / "cluster.md"):
        command += f" --out {args.out}"
    start_load = os.getloadavg()[0]
    rows = measure(QUICK if args.quick else FULL)
    write(rows, Path(args.out), command, (start_load, os.getloadavg()[0]))
    print(f"wrote {args.out} and its .json twin", file=sys.stderr)


if __name__ == "__main__":
    main()
