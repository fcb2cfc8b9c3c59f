"""One peer library values CSV files in a fresh process (the child of ``whole_process.py``).

Usage (in the benchmark environment)::

    .venv-bench/bin/python benchmarks/peer_process.py pydvl permutation-shapley \
        TRAIN.csv VALID.csv --target y --budget 30 --n-jobs 1 --seed 0 --out OUT.csv

It does what a user's script would do: import the library, read the two CSV files with pandas,
value the training rows through the benchmark's adapter (``lib_pydvl.run`` or
``lib_opendataval.run``, with the settings documented there) and write ``index,value`` to
``--out``. Its last line on standard output is ``PEER_TIMES {json}``: the seconds spent on
imports (numpy, pandas, scikit-learn and the peer library), the benchmark harness (importing
``common.py`` and the adapter, which no user script would need), loading, valuation and writing,
measured with ``time.perf_counter`` from the first statement of this file.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
ADAPTERS = {"pydvl": "lib_pydvl", "opendataval": "lib_opendataval"}
#: The line prefix whole_process.py looks for.
MARKER = "PEER_TIMES "


def main(argv: list[str] | None = None) -> int:
    """Import, load, value and write, then print the timings as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("library", choices=list(ADAPTERS))
    parser.add_argument("task", help="a task of common.TASKS, e.g. knn-shapley")
    parser.add_argument("train", type=Path)
    parser.add_argument("valid", type=Path)
    parser.add_argument("--target", required=True, help="label column (integer class codes)")
    parser.add_argument("--budget", type=int, default=1, help="permutations, subsets or bags")
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="output CSV: index,value")
    args = parser.parse_args(argv)
    laps: dict[str, float] = {}
    last = STARTED

    def lap(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        laps[name] = laps.get(name, 0.0) + now - last
        last = now

    import numpy as np
    import pandas as pd
    import sklearn.ensemble
    import sklearn.linear_model
    import sklearn.neighbors
    import sklearn.tree  # noqa: F401  (the models the adapters build)

    if args.library == "pydvl":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pyDeprecate's FutureWarnings at import
            import pydvl.valuation  # noqa: F401
    lap("imports")
    sys.path.insert(0, str(HERE))
    adapter = importlib.import_module(ADAPTERS[args.library])
    from common import Budgets, Split

    lap("harness")
    if args.library == "opendataval":
        adapter._import()  # opendataval.dataval, with the torchvision stand-in if needed
        lap("imports")

    def arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
        frame = pd.read_csv(path)
        X = frame.drop(columns=[args.target]).to_numpy(dtype=np.float64)
        return np.ascontiguousarray(X), frame[args.target].to_numpy(dtype=np.int64)

    X_train, y_train = arrays(args.train)
    X_valid, y_valid = arrays(args.valid)
    split = Split(
        name=args.train.stem,
        X_train=X_train,
        y_train=y_train,
        X_valid=X_valid,
        y_valid=y_valid,
        description=f"{args.train} / {args.valid}",
    )
    lap("load")
    budgets = Budgets(
        permutations=args.budget, subsets=args.budget, bags=args.budget, reference_factor=1
    )
    out = adapter.run(args.task, split, budgets, args.n_jobs, seed=args.seed)
    lap("valuation")
    assert out.values is not None
    pd.DataFrame({"index": np.arange(split.n_train), "value": out.values}).to_csv(
        args.out, index=False, float_format="%.17g"
    )
    lap("writing")
    record = {
        "laps": laps,
        "in_all": last - STARTED,
        "adapter_seconds": out.seconds,
        "samples": out.samples,
        "settings": out.settings,
        "version": adapter.version(),
    }
    print(MARKER + json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
