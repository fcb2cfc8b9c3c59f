"""knn-shapley at 100,000 training x 10,000 valuation rows: time and peak memory (one core).

Run: ``python benchmarks/knn_large.py`` (about 1.5 minutes on one core, under 1 GiB); writes
``benchmarks/knn_large.json`` (``--out``), which ``benchmarks/tables.py`` renders into the
README. ``--train`` / ``--valid`` set smaller sizes for a quick run (then write elsewhere).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

from sklearn.datasets import make_classification
from threadpoolctl import threadpool_limits

from dataworth import Dataset, get_method, make_utility

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import run_record  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Value the training rows against the valuation rows; print and record seconds and RSS."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=100_000, help="training rows")
    parser.add_argument("--valid", type=int, default=10_000, help="valuation rows")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--out", type=Path, default=HERE / "knn_large.json")
    args = parser.parse_args(argv)
    record = run_record("knn_large.py")
    record["load_average_at_start"] = os.getloadavg()[0]
    X, y = make_classification(
        n_samples=args.train + args.valid, n_features=20, n_informative=10, random_state=0
    )
    train = Dataset.from_arrays(X[: args.train], y[: args.train])
    valid = Dataset.from_arrays(X[args.train :], y[args.train :])
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with threadpool_limits(1):
        started = time.perf_counter()
        utility = make_utility(train, valid, batched=False)
        result = get_method("knn-shapley")(k=args.k).fit(utility).result_
        seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    record.update(
        train_rows=args.train,
        valid_rows=args.valid,
        k=args.k,
        n_features=20,
        seconds=seconds,
        peak_rss_mib=peak,
        baseline_rss_mib=baseline,
        sum_of_values=float(result.values.sum()),
    )
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(
        f"knn-shapley, {args.train:,} training x {args.valid:,} valuation rows, K={args.k}: "
        f"{seconds:.1f} s, peak RSS {peak:.0f} MiB (sum of values {result.values.sum():.6f}); "
        f"wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
