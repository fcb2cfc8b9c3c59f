"""Loading a large CSV file: ``dataworth.data.read_table`` next to ``pandas.read_csv``.

Usage::

    python benchmarks/csv_load.py [--rows 300000] [--csv /tmp/dataworth_csv_load.csv]
                                  [--repeats 3] [--out benchmarks/csv_load.json]

The script writes a CSV file of ``--rows`` rows (outside the repository): 20 float features
(standard normal, seed 0, written as Python's ``repr``: 17 significant digits at most) and an
integer label (0/1), about 118 MB for 300,000 rows. It then reads that file with each reader,
each read in a fresh subprocess (``sys.executable``), so that the peak resident memory of the
read is its own: the child imports its libraries, records its peak resident set size so far
(``VmHWM`` in ``/proc/self/status``: the baseline), reads the file once, and reports the wall time
of the read (``time.perf_counter``) and its peak minus the baseline ("extra" memory). The readers
take turns, ``--repeats`` rounds of one read each, so that a busy machine slows every reader
alike; a reader's time is its best round, its memory its largest extra.

Readers:

* ``dataworth.data.read_table``: what every dataworth command uses to read a CSV file;
* ``pandas.read_csv``: with its defaults (the reference of the 2x goal);
* ``pyarrow.csv.read_csv``: with its defaults, when pyarrow is installed;
* ``dataworth, csv module``: ``dataworth.data._read_csv_exact``, the reader ``read_table`` used
  before (and still uses where pandas is not installed or a file is malformed).

A last child checks that ``read_table`` and ``pandas.read_csv`` return the same numbers. The
results go to ``--out`` (JSON) and to the markdown table next to it (``.md``), rendered from the
JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
N_FEATURES = 20
SEED = 0


def _dataworth() -> Callable[[Path], Any]:
    import pandas  # noqa: F401  (read_table imports it on first use: not part of the read)

    from dataworth.data import read_table

    return read_table


def _pandas() -> Callable[[Path], Any]:
    import pandas

    return pandas.read_csv


def _pyarrow() -> Callable[[Path], Any]:
    import pyarrow.csv

    return pyarrow.csv.read_csv


def _csv_module() -> Callable[[Path], Any]:
    from dataworth.data import _read_csv_exact

    return lambda path: _read_csv_exact(path, set(), ",")


#: name shown -> a function that imports a reader and returns it (a function of the path).
READERS: dict[str, Callable[[], Callable[[Path], Any]]] = {
    "dataworth read_table": _dataworth,
    "pandas.read_csv": _pandas,
    "pyarrow.csv.read_csv": _pyarrow,
    "dataworth, csv module": _csv_module,
}
REFERENCE = "pandas.read_csv"


def write_csv(path: Path, rows: int) -> None:
    """The benchmark file: ``rows`` rows of 20 standard-normal features and a 0/1 label."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    header = ",".join([f"f{j}" for j in range(N_FEATURES)] + ["label"])
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(header + "\n")
        for start in range(0, rows, 10_000):
            n = min(10_000, rows - start)
            X = rng.normal(size=(n, N_FEATURES)).tolist()
            y = rng.integers(0, 2, size=n).tolist()
            fh.writelines(
                ",".join(map(repr, x)) + f",{label}\n" for x, label in zip(X, y, strict=True)
            )


def _peak_mib() -> float:
    """This process's peak resident set size in MiB (``VmHWM``)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        line = next(ln for ln in fh if ln.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def child(reader: str, path: Path) -> dict[str, Any]:
    """Read ``path`` once with ``reader`` in this process: seconds and extra peak memory."""
    read = READERS[reader]()
    baseline = _peak_mib()
    start = time.perf_counter()
    result = read(path)
    seconds = time.perf_counter() - start
    peak = _peak_mib()
    del result
    return {"seconds": seconds, "baseline_mib": baseline, "extra_mib": max(0.0, peak - baseline)}


def check(path: Path) -> dict[str, Any]:
    """Whether ``read_table`` returns exactly the columns and numbers of ``pandas.read_csv``."""
    import numpy as np
    import pandas as pd

    from dataworth.data import read_table

    ours = read_table(path)
    frame = pd.read_csv(path)
    same_names = list(ours) == [str(c) for c in frame.columns]
    same_values = same_names and all(
        np.array_equal(ours[str(c)], frame[c].to_numpy(dtype=np.float64)) for c in frame.columns
    )
    return {"same_column_names": same_names, "same_values": bool(same_values)}


def _in_child(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{' '.join(args)}: exit {proc.returncode}: {' / '.join(tail)}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def run(rows: int, csv_path: Path, repeats: int) -> dict[str, Any]:
    """Write the file, time every reader ``repeats`` times in turn, and check the numbers."""
    load_start = os.getloadavg()[0]
    write_csv(csv_path, rows)
    readers = [r for r in READERS if r != "pyarrow.csv.read_csv" or _version("pyarrow")]
    runs: dict[str, list[dict[str, Any]]] = {r: [] for r in readers}
    for _ in range(repeats):
        for reader in readers:
            runs[reader].append(_in_child(["--child", reader, str(csv_path)]))
    results = {
        reader: {
            "seconds": [r["seconds"] for r in measured],
            "best_seconds": min(r["seconds"] for r in measured),
            "extra_mib": [r["extra_mib"] for r in measured],
            "peak_extra_mib": max(r["extra_mib"] for r in measured),
            "baseline_mib": [r["baseline_mib"] for r in measured],
        }
        for reader, measured in runs.items()
    }
    reference = results[REFERENCE]
    for result in results.values():
        result["time_ratio_to_pandas"] = result["best_seconds"] / reference["best_seconds"]
        result["memory_ratio_to_pandas"] = result["peak_extra_mib"] / reference["peak_extra_mib"]
    return {
        "command": "python benchmarks/csv_load.py" + (f" --rows {rows}" if rows != 300_000 else ""),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "versions": {p: _version(p) for p in ("dataworth", "numpy", "pandas", "pyarrow")},
        "load_average_start_end": [load_start, os.getloadavg()[0]],
        "file": {
            "rows": rows,
            "columns": N_FEATURES + 1,
            "bytes": csv_path.stat().st_size,
            "content": f"{N_FEATURES} standard-normal float features (repr), a 0/1 label; "
            f"seed {SEED}",
        },
        "repeats": repeats,
        "readers": results,
        "check": _in_child(["--check", str(csv_path)]),
    }


def write_markdown(path: Path, report: dict[str, Any]) -> None:
    """The table of ``report`` (as :func:`run` returns it) as markdown."""
    f = report["file"]
    v = report["versions"]
    load = report["load_average_start_end"]
    same = report["check"]["same_column_names"] and report["check"]["same_values"]
    check_line = (
        "read_table returns the same column names and the same float64 numbers as "
        f"pandas.read_csv: {'yes' if same else 'NO'}"
    )
    lines = [
        "# Loading a CSV file: dataworth next to pandas",
        "",
        f"Command: `{report['command']}`  ",
        f"Date: {report['date']}; machine: {report['platform']}, {report['cpu_count']} CPUs "
        f"(shared with other jobs), Python {report['python']}; dataworth {v['dataworth']}, "
        f"numpy {v['numpy']}, pandas {v['pandas']}, pyarrow {v['pyarrow']}; load average "
        f"(1 min) at start / end: {load[0]:.2f} / {load[1]:.2f}",
        "",
        f"File: {f['rows']:,} rows x {f['columns']} columns, {f['bytes'] / 1e6:.0f} MB "
        f"({f['content']}). Each read runs in a fresh subprocess; the readers take turns, "
        f"{report['repeats']} rounds. Seconds: the best round's wall time. Extra MiB: the "
        "largest rise of the process's peak resident memory (VmHWM) during the read. Ratios "
        "are to pandas.read_csv with its defaults (which reads with several threads).",
        "",
        "| reader | best seconds | seconds per round | extra MiB | time / pandas "
        "| memory / pandas |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for name, r in report["readers"].items():
        rounds = ", ".join(f"{s:.2f}" for s in r["seconds"])
        lines.append(
            f"| {name} | {r['best_seconds']:.2f} | {rounds} | {r['peak_extra_mib']:.0f} "
            f"| {r['time_ratio_to_pandas']:.2f} | {r['memory_ratio_to_pandas']:.2f} |"
        )
    lines += [
        "",
        check_line + ".",
        "",
        "The goal (issue 16): read_table within 2x of pandas.read_csv in time and in memory. "
        "read_table checks the file's bytes first (that the csv module would read it as pandas "
        "does), then has pandas parse it; 'dataworth, csv module' is the reader it used before, "
        "which still reads the files that fail that check, and every file where pandas is not "
        "installed.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--csv", type=Path, default=Path("/tmp/dataworth_csv_load.csv"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "csv_load.json")
    parser.add_argument("--child", nargs=2, metavar=("READER", "CSV"), help=argparse.SUPPRESS)
    parser.add_argument("--check", type=Path, metavar="CSV", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]))))
        return
    if args.check:
        print(json.dumps(check(args.check)))
        return
    report = run(args.rows, args.csv, args.repeats)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    write_markdown(args.out.with_suffix(".md"), report)
    print(args.out.with_suffix(".md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
