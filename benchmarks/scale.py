"""How dataworth's time and memory grow with the number of training rows.

Usage::

    python benchmarks/scale.py [--quick] [--out benchmarks/scale.md] [--timeout 1800]

Each (method, size) runs in a fresh subprocess (``sys.executable``), so that its peak resident
memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is its own. The child generates the data
(``sklearn.datasets.make_classification``, 20 features, 10 informative, 2 classes, seed 0),
records its peak RSS so far (the baseline: interpreter, libraries and data), runs the method
through dataworth's public API (``make_utility`` + ``get_method(...).fit``) with ``n_jobs=1`` and
BLAS limited to one thread, and reports the wall time of the valuation (``time.perf_counter``)
and its peak RSS. "Extra" memory is peak minus baseline: what the valuation itself added.

Settings (stated in the output as well):

* knn-shapley, K=5: 1,000 / 10,000 / 100,000 training rows, 1,000 valuation rows.
* data-oob: GaussianNB, 50 bootstrap bags: 1,000 / 10,000 / 100,000 training rows.
* tmc-shapley: LogisticRegression(max_iter=1000), 2 permutations, tolerance 0.01:
  100 / 1,000 / 5,000 training rows, 1,000 valuation rows. Truncation stops a permutation once
  the score is within 1% of u(N), which on this easy data happens after a few hundred rows, so
  the same sizes are also run without truncation (permutation-shapley, 2 permutations = 2 n
  utility evaluations).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
N_VALID = 1000
N_FEATURES = 20


@dataclass(frozen=True)
class Case:
    """One method at one training size."""

    method: str
    n_train: int
    model: str
    params: dict[str, Any]


def cases(quick: bool) -> list[Case]:
    """The measured grid (``quick``: the two smaller sizes of each method only)."""
    grid = [
        *(
            Case("knn-shapley", n, "KNeighborsClassifier(5)", {"k": 5})
            for n in (1000, 10_000, 100_000)
        ),
        *(
            Case("data-oob", n, "GaussianNB()", {"budget": 50, "random_state": 0})
            for n in (1000, 10_000, 100_000)
        ),
        *(
            Case(
                "tmc-shapley",
                n,
                "LogisticRegression(max_iter=1000)",
                {"budget": 2, "tolerance": 0.01, "random_state": 0},
            )
            for n in (100, 1000, 5000)
        ),
        *(
            Case(
                "permutation-shapley",
                n,
                "LogisticRegression(max_iter=1000)",
                {"budget": 2, "random_state": 0},
            )
            for n in (100, 1000, 5000)
        ),
    ]
    if quick:
        largest = {c.method: max(d.n_train for d in grid if d.method == c.method) for c in grid}
        grid = [c for c in grid if c.n_train != largest[c.method]]
    return grid


def _model(name: str) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier

    return {
        "KNeighborsClassifier(5)": lambda: KNeighborsClassifier(n_neighbors=5),
        "GaussianNB()": GaussianNB,
        "LogisticRegression(max_iter=1000)": lambda: LogisticRegression(max_iter=1000),
    }[name]()


def _max_rss_mib() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(case: Case) -> dict[str, Any]:
    """Run one case in this process and return its measurements."""
    import numpy as np
    from sklearn.datasets import make_classification
    from threadpoolctl import threadpool_info, threadpool_limits

    import dataworth
    from dataworth.methods import get_method

    sys.path.insert(0, str(HERE))
    from lib_dataworth import _count_evaluations

    X, y = make_classification(
        n_samples=case.n_train + N_VALID,
        n_features=N_FEATURES,
        n_informative=10,
        n_redundant=5,
        n_classes=2,
        random_state=0,
    )
    train = dataworth.Dataset.from_arrays(X[: case.n_train], y[: case.n_train])
    valid = dataworth.Dataset.from_arrays(X[case.n_train :], y[case.n_train :])
    model = _model(case.model)
    baseline = _max_rss_mib()
    with threadpool_limits(limits=1):
        start = time.perf_counter()
        utility = dataworth.make_utility(train, valid, model=model)
        utility_seconds = time.perf_counter() - start
        counted = case.method in ("tmc-shapley", "permutation-shapley")
        box = _count_evaluations(utility) if counted else None
        result = get_method(case.method)(**case.params, n_jobs=1).fit(utility).result_
        seconds = time.perf_counter() - start
    peak = _max_rss_mib()
    values = np.asarray(result.values)
    return {
        "method": case.method,
        "n_train": case.n_train,
        "seconds": seconds,
        "utility_seconds": utility_seconds,
        "torch_imported": "torch" in sys.modules,
        "baseline_rss_mib": baseline,
        "peak_rss_mib": peak,
        "extra_rss_mib": max(0.0, peak - baseline),
        "utility": type(utility).__name__,
        "evaluations": box[0] if box is not None else None,
        "n_updates": result.metadata.get("n_updates"),
        "finite_values": int(np.isfinite(values).sum()),
        "blas": [
            f"{p.get('internal_api')} {p.get('version')} {p.get('architecture')}"
            for p in threadpool_info()
            if p.get("user_api") == "blas"
        ],
    }


def run_case(case: Case, timeout: float) -> dict[str, Any]:
    """Run one case in a subprocess; a failure or a timeout is recorded, not raised."""
    payload = json.dumps(
        {"method": case.method, "n_train": case.n_train, "model": case.model, "params": case.params}
    )
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child", payload],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"method": case.method, "n_train": case.n_train, "error": f"timeout {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {
            "method": case.method,
            "n_train": case.n_train,
            "error": f"exit {proc.returncode}: {' / '.join(tail)}",
        }
    out: dict[str, Any] = json.loads(lines[-1])
    out["process_seconds"] = time.perf_counter() - start
    return out


def write_markdown(path: Path, record: dict[str, Any]) -> None:
    """The scaling table as markdown (the table is ``tables.py``'s ``scale``)."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    import tables

    meta = record
    lines = [
        "# dataworth scaling (time and peak memory vs training rows)",
        "",
        f"Command: `{meta['command']}`  ",
        f"Date: {meta['date']}; machine: {meta['platform']}, {meta['cpu_count']} CPUs, "
        f"Python {meta['python']}; dataworth {meta['dataworth']}, numpy {meta['numpy']}  ",
        f"BLAS: {', '.join(meta['blas'])} (limited to 1 thread); n_jobs=1; load average (1 min) "
        f"at start / end: {meta['load_average'][0]:.2f} / {meta['load_average'][1]:.2f}",
        "",
        f"Data: `make_classification` ({N_FEATURES} features, 10 informative, 5 redundant, "
        f"2 classes, seed 0); {N_VALID:,} valuation rows. One subprocess per row; seconds are "
        "the valuation alone (make_utility + fit); peak RSS is the process maximum "
        "(`ru_maxrss`), baseline the maximum before the valuation (interpreter, libraries, data); "
        "'torch loaded': whether the process had imported torch by the end (dataworth's "
        "utility for LogisticRegression imports torch, when installed, to look for a GPU).",
        "",
        tables.block("scale", record),
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Run every case in its own subprocess and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the largest size of each")
    parser.add_argument("--out", type=Path, default=HERE / "scale.md")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per case")
    parser.add_argument("--methods", nargs="+", default=None, help="subset of methods")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(child(Case(**spec))))
        return 0

    import numpy as np
    from threadpoolctl import threadpool_info

    load_start = os.getloadavg()[0]
    rows = []
    for case in cases(args.quick):
        if args.methods and case.method not in args.methods:
            continue
        print(f"{case.method:<12} n_train={case.n_train:>7,} ...", end=" ", flush=True)
        row = run_case(case, args.timeout)
        rows.append(row)
        if "error" in row:
            print(row["error"], flush=True)
        else:
            print(
                f"{row['seconds']:.2f} s, peak RSS {row['peak_rss_mib']:.0f} MiB "
                f"(+{row['extra_rss_mib']:.0f} MiB)",
                flush=True,
            )
    meta = {
        "command": (
            "python benchmarks/scale.py " + " ".join(argv if argv is not None else sys.argv[1:])
        ).strip(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "dataworth": _version("dataworth"),
        "numpy": np.__version__,
        "blas": [
            f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture')})"
            for p in threadpool_info()
            if p.get("user_api") == "blas"
        ],
        "load_average": [load_start, os.getloadavg()[0]],
    }
    json_path = args.out.with_suffix(".json")
    json_path.write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
    write_markdown(args.out, json.loads(json_path.read_text()))
    print(f"markdown: {args.out}; JSON: {args.out.with_suffix('.json')}")
    return 0


def _version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    raise SystemExit(main())
