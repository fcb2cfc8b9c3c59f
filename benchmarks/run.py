"""Benchmark dataworth against pyDVL and OpenDataVal: same data, split, budget, one process.

Usage (in the benchmark environment built by ``benchmarks/setup.sh``)::

    .venv-bench/bin/python benchmarks/run.py [--quick] [--tasks knn-shapley loo ...]
        [--n-jobs 1 2] [--out benchmarks/results.md]
    .venv-bench/bin/python benchmarks/run.py --whole-process [options of whole_process.py]

``--whole-process`` hands every other argument to ``whole_process.py`` instead: each library
timed as a whole process from a cold start (dataworth's command line, the peers through
``peer_process.py``), start-up, loading and writing included; see that module.

For every task it prints and records the wall time of each library (``time.perf_counter``
around data wrapping + valuation; one run per library and task), the time ratio
peer / dataworth, and the Spearman correlation of each library's values with a reference:
the exact values where a closed form exists (knn-shapley, loo), otherwise a long dataworth
run of the same method with ``reference_factor`` times the budget and another seed.
BLAS/OpenMP pools are limited to one thread for everyone (threadpoolctl), torch to one thread.
The table is written as markdown (``--out``) and JSON (same name, ``.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import json
import math
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import tables
from common import (
    FULL,
    QUICK,
    REFERENCE_SEED,
    SEED,
    TASKS,
    Budgets,
    RunOutput,
    environment,
    exact_knn_shapley,
    exact_loo,
    limit_threads,
    spearman,
    split_for,
)
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression

HERE = Path(__file__).resolve().parent
LIBRARY_MODULES = {
    "dataworth": "lib_dataworth",
    "pydvl": "lib_pydvl",
    "opendataval": "lib_opendataval",
}


@dataclass
class Row:
    """One library on one task at one n_jobs."""

    task: str
    library: str
    version: str | None
    n_jobs: int
    status: str  # "ok", "n/a" (method missing), "unavailable", "failed", "skipped"
    seconds: float | None = None
    ratio: float | None = None  # seconds / dataworth seconds (same task, same n_jobs)
    spearman: float | None = None
    max_abs_diff: float | None = None
    samples: int | None = None
    evaluations: int | None = None
    settings: str = ""
    note: str = ""
    error: str | None = None


@dataclass
class Reference:
    """The values a task's rows are compared with."""

    task: str
    kind: str
    values: NDArray[np.float64]
    seconds: float
    description: str
    extra: dict[str, Any] = field(default_factory=dict)


def _load(name: str) -> ModuleType:
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    return importlib.import_module(LIBRARY_MODULES[name])


def _warm_worker() -> int:
    """Import the parallel libraries in a worker process (so no timed run pays for it)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import dataworth.methods  # noqa: F401

        with contextlib.suppress(Exception):
            import pydvl.valuation  # noqa: F401
    return os.getpid()


def warm_pool(n_jobs: int) -> None:
    """Start joblib's reusable loky pool of ``n_jobs`` workers and import the libraries there.

    dataworth and pyDVL both run their ``n_jobs > 1`` work on this pool; without the warm-up
    the first library to use it would also pay for starting the workers.
    """
    from joblib import Parallel, delayed

    Parallel(n_jobs=n_jobs)(delayed(_warm_worker)() for _ in range(2 * n_jobs))


def compute_reference(task: str, budgets: Budgets, jobs: int) -> Reference:
    """Exact values (knn-shapley, loo) or a long dataworth run (other methods)."""
    split = split_for(task)
    start = time.perf_counter()
    extra: dict[str, Any] = {}
    if task == "knn-shapley":
        values = exact_knn_shapley(split, k=5)
        desc = "exact closed form (independent numpy implementation in common.py), K=5"
    elif task == "loo":
        values = exact_loo(split, LogisticRegression(max_iter=1000))
        desc = "exact: 201 scikit-learn fits of LogisticRegression(max_iter=1000), accuracy"
    else:
        # Two halves with different seeds, merged exactly with ValuationResult's `+`; the
        # Spearman correlation of the halves says how reproducible the reference's ranks are.
        dataworth = _load("dataworth")
        total = budgets.of(task, reference=True)
        assert total is not None
        halves = [
            dataworth.run(task, split, budgets, jobs, seed=REFERENCE_SEED + h, budget=total // 2)
            for h in (0, 1)
        ]
        merged = halves[0].raw + halves[1].raw
        values = np.asarray(merged.values, dtype=np.float64)
        extra["split_half_spearman"] = spearman(halves[0].values, halves[1].values)
        kind = TASKS[task].budget_kind
        desc = (
            f"dataworth {task}, {2 * (total // 2):,} {kind} ({budgets.reference_factor}x the "
            f"budget): two runs of {total // 2:,} (seeds {REFERENCE_SEED}, {REFERENCE_SEED + 1}, "
            f"n_jobs={jobs}) merged with `+`; ρ between the halves "
            f"{extra['split_half_spearman']:.3f}"
        )
    return Reference(
        task=task,
        kind=TASKS[task].reference,
        values=np.asarray(values, dtype=np.float64),
        seconds=time.perf_counter() - start,
        description=desc,
        extra=extra,
    )


def _fmt(x: float | None, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}f}"


def _fmt_seconds(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def run_library(
    name: str,
    module: ModuleType,
    task: str,
    budgets: Budgets,
    n_jobs: int,
    unavailable: str | None,
    reference: Reference,
) -> Row:
    """Run one library on one task; failures become rows, never silent skips."""
    version = module.version()
    label = module.NAME
    if unavailable is not None:
        return Row(task, label, version, n_jobs, "unavailable", error=unavailable)
    reason = module.supports(task)
    if reason is not None:
        return Row(task, label, version, n_jobs, "n/a", error=reason)
    skip = getattr(module, "skip_reason", None)
    reason = skip(task, n_jobs, budgets) if skip is not None else None
    if reason is not None:
        return Row(task, label, version, n_jobs, "skipped", error=reason)
    split = split_for(task)
    try:
        out: RunOutput = module.run(task, split, budgets, n_jobs, seed=SEED)
    except Exception as exc:
        tb = traceback.format_exc(limit=-3).strip().splitlines()
        return Row(
            task,
            label,
            version,
            n_jobs,
            "failed",
            error=f"{type(exc).__name__}: {exc} | {' / '.join(tb[-3:])}",
        )
    diff = None
    if out.values is not None:
        ok = np.isfinite(out.values)
        diff = float(np.max(np.abs(out.values[ok] - reference.values[ok]))) if ok.any() else None
    return Row(
        task,
        label,
        version,
        n_jobs,
        "ok",
        seconds=out.seconds,
        spearman=spearman(out.values, reference.values),
        max_abs_diff=diff,
        samples=out.samples,
        evaluations=out.evaluations,
        settings=out.settings,
        note=out.note,
    )


def write_markdown(path: Path, record: dict[str, Any], labels: list[str]) -> None:
    """The results as markdown, its tables rendered from ``record`` (the JSON) by
    ``tables.py``: summary, details, references, environment."""
    budgets = Budgets(**record["budgets"])
    env = record["environment"]
    stem = "results-quick" if record["mode"] == "quick" else "results"
    lines = [
        f"# Benchmark results ({record['mode']} run)",
        "",
        f"Command: `{record['command']}`  ",
        f"Date: {record['date']}; total wall time {record['total_seconds']:.0f} s  ",
        f"Machine: {env['platform']}, {env['cpu_count']} CPUs, Python {env['python']}; "
        "load average (1 min) at start / end: "
        + " / ".join(f"{la[0]:.2f}" for la in record["load_average"].values())
        + "  ",
        "Versions: "
        + ", ".join(f"{lab} {record['versions'].get(lab) or 'not installed'}" for lab in labels)
        + "; "
        + ", ".join(f"{k} {v}" for k, v in env["packages"].items() if v),
        "",
        "Threads: BLAS/OpenMP pools limited to 1 thread with threadpoolctl for every library "
        "(torch.set_num_threads(1) for OpenDataVal); `n_jobs` is each library's own process "
        "parallelism (joblib for dataworth and pyDVL; OpenDataVal has none, so it has only "
        "n_jobs=1 rows).  ",
        "Timing: `time.perf_counter` from wrapping the numpy arrays in the library's data "
        "objects to having the values, one run per library and task (imports excluded).  ",
        "Agreement: Spearman ρ of the values with the task's reference (below). With 200 "
        "points the standard error of ρ is about 0.07, so differences below ~0.15 between "
        "libraries are noise; for Monte Carlo tasks the References table gives the ρ between "
        "the two halves of the reference (how reproducible its own ranks are), and the "
        "dataworth row shows what an implementation of the same estimator gets at this budget.",
        "",
        "Budgets (the same for every library): "
        + "; ".join(
            f"{t}: {budgets.describe(t, 1000 if t == 'knn-shapley' else 200)}"
            for t in record["tasks"]
        ),
        "",
        "## Summary",
        "",
        tables.block(f"{stem}.summary", record),
        "",
        "## Details",
        "",
        tables.block(f"{stem}.details", record),
        "",
        "## References",
        "",
        tables.block(f"{stem}.references", record),
        "",
    ]
    if record.get("import_notes"):
        lines += ["## Notes", ""] + [f"* {n}" for n in record["import_notes"]] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_jsonable(v) for v in x]
    return x


def openblas_coretype(mode: str) -> str | None:
    """The ``OPENBLAS_CORETYPE`` to restart with, or None to keep the process as it is.

    ``mode`` "keep": never; a kernel name: that one; "auto": when numpy's OpenBLAS fell back to
    its generic ``Prescott`` kernel (an OpenBLAS too old to recognise the CPU, as numpy 1.26's
    0.3.23 here) while another OpenBLAS in the process (scipy's) recognised it, the kernel
    that one chose. Nothing changes when ``OPENBLAS_CORETYPE`` is already set.
    """
    if mode == "keep" or "OPENBLAS_CORETYPE" in os.environ:
        return None
    if mode != "auto":
        return mode
    import scipy.linalg  # noqa: F401  (loads scipy's OpenBLAS)
    from threadpoolctl import threadpool_info

    blas = [p for p in threadpool_info() if p.get("internal_api") == "openblas"]
    mine = [p for p in blas if "numpy" in str(p.get("filepath", ""))]
    others = [
        p.get("architecture")
        for p in blas
        if p not in mine and p.get("architecture") not in (None, "", "Prescott")
    ]
    if mine and mine[0].get("architecture") == "Prescott" and others:
        return str(others[0])
    return None


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run every task, print and write the tables."""
    cli = sys.argv[1:] if argv is None else argv
    if "--whole-process" in cli:
        if str(HERE) not in sys.path:
            sys.path.insert(0, str(HERE))
        import whole_process

        return whole_process.main([a for a in cli if a != "--whole-process"])
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="--whole-process [options]: time each library as a whole process from a cold "
        "start instead (benchmarks/whole_process.py; see its --help)",
    )
    parser.add_argument("--quick", action="store_true", help="small budgets (smoke run)")
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument(
        "--libraries", nargs="+", choices=list(LIBRARY_MODULES), default=list(LIBRARY_MODULES)
    )
    parser.add_argument(
        "--n-jobs",
        nargs="+",
        type=int,
        default=None,
        help="n_jobs values to run (default: 1 2; with --quick: 1)",
    )
    parser.add_argument(
        "--reference-jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="n_jobs of the long dataworth reference runs (values do not depend on it)",
    )
    parser.add_argument("--out", type=Path, default=None, help="markdown output")
    parser.add_argument(
        "--openblas-coretype",
        default="auto",
        help="'auto' (default): restart with OPENBLAS_CORETYPE set when numpy's OpenBLAS fell "
        "back to its generic kernel; 'keep': never; or a kernel name (e.g. SkylakeX)",
    )
    args = parser.parse_args(argv)
    coretype = openblas_coretype(args.openblas_coretype)
    # Worker processes (joblib/loky) import pyDVL, whose pyDeprecate prints FutureWarnings.
    os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning")
    if coretype is not None:
        print(f"restarting with OPENBLAS_CORETYPE={coretype} (see --openblas-coretype)")
        sys.stdout.flush()
        env = {**os.environ, "OPENBLAS_CORETYPE": coretype, "DW_BENCH_OPENBLAS_FIXED": "1"}
        os.execve(sys.executable, [sys.executable, str(Path(__file__).resolve()), *cli], env)
    if "dataworth" not in args.libraries:
        parser.error("dataworth must be among --libraries (ratios are relative to it)")
    budgets = QUICK if args.quick else FULL
    if args.n_jobs is None:
        args.n_jobs = [1] if args.quick else [1, 2]
    out: Path = args.out or HERE / ("results-quick.md" if args.quick else "results.md")
    begin = time.perf_counter()
    modules = {name: _load(name) for name in args.libraries}
    unavailable = {name: m.unavailable_reason() for name, m in modules.items()}
    # Only now is every library (and its BLAS/OpenMP runtimes, torch's included) loaded:
    # threadpoolctl limits the pools that exist when it is called.
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    pools = limit_threads(1)
    load_before = os.getloadavg()
    labels = [modules[n].NAME for n in args.libraries]
    versions = {modules[n].NAME: modules[n].version() for n in args.libraries}
    import_notes = []
    for name, reason in unavailable.items():
        if reason is not None:
            print(f"[{modules[name].NAME}] not available: {reason}", flush=True)
            import_notes.append(f"{modules[name].NAME} not available: {reason}")
    if os.environ.get("DW_BENCH_OPENBLAS_FIXED"):
        import_notes.append(
            f"OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} was set by run.py: numpy's "
            "OpenBLAS fell back to its generic Prescott kernel on this CPU while scipy's newer "
            "OpenBLAS chose this one (same setting for every library; --openblas-coretype keep "
            "turns it off)"
        )
    if "opendataval" in modules and unavailable["opendataval"] is None:
        note = modules["opendataval"].import_note()
        if note:
            import_notes.append(f"OpenDataVal: {note} (see lib_opendataval.py, README.md)")

    rows: list[Row] = []
    refs: dict[str, Reference] = {}
    for task in args.tasks:
        print(f"\n== {task}: reference ...", flush=True)
        refs[task] = ref = compute_reference(task, budgets, args.reference_jobs)
        print(f"   {ref.description} ({ref.seconds:.1f} s)", flush=True)
        for jobs in args.n_jobs:
            if jobs != 1:
                warm_pool(jobs)
            task_rows: list[Row] = []
            for name in args.libraries:
                if name == "opendataval" and jobs != 1:
                    continue
                row = run_library(name, modules[name], task, budgets, jobs, unavailable[name], ref)
                task_rows.append(row)
                shown = (
                    f"{_fmt_seconds(row.seconds)} s, ρ={_fmt(row.spearman, 3)}"
                    if row.status == "ok"
                    else f"{row.status}: {row.error}"
                )
                print(f"   n_jobs={jobs} {row.library:<12} {shown}", flush=True)
            base = next(
                (r for r in task_rows if r.library == "dataworth" and r.status == "ok"), None
            )
            for r in task_rows:
                if base is not None and base.seconds and r.status == "ok" and r.seconds:
                    r.ratio = r.seconds / base.seconds
            rows.extend(task_rows)
    total = time.perf_counter() - begin

    meta: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "command": (
            "python benchmarks/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
        ).strip(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "total_seconds": total,
        "environment": environment(),
        "load_average": {"start": load_before, "end": os.getloadavg()},
        "versions": versions,
        "tasks": args.tasks,
        "budgets_obj": budgets,
        "import_notes": import_notes,
    }
    del pools
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        **{k: v for k, v in meta.items() if k != "budgets_obj"},
        "budgets": vars(budgets),
        "seed": SEED,
        "reference_seed": REFERENCE_SEED,
        "references": {
            t: {"description": r.description, "seconds": r.seconds, **r.extra}
            for t, r in refs.items()
        },
        "rows": [vars(r) for r in rows],
    }
    out.with_suffix(".json").write_text(json.dumps(_jsonable(record), indent=2) + "\n")
    record = json.loads(out.with_suffix(".json").read_text())  # the tables render the JSON
    write_markdown(out, record, labels)
    print("\n" + tables.render_table("results.summary", record))
    print(f"\ntotal {total:.0f} s; markdown: {out}; JSON: {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
