"""knn-shapley at 100,000 training x 10,000 valuation rows: time and peak memory (one core).

Run: ``python benchmarks/knn_large.py`` (about 1.5 minutes on one core, under 1 GiB).
"""

from __future__ import annotations

import resource
import time

from sklearn.datasets import make_classification
from threadpoolctl import threadpool_limits

from dataworth import Dataset, get_method, make_utility


def main() -> None:
    """Value 100,000 rows against 10,000 valuation rows and print seconds and peak RSS."""
    X, y = make_classification(
        n_samples=110_000, n_features=20, n_informative=10, random_state=0
    )
    train = Dataset.from_arrays(X[:100_000], y[:100_000])
    valid = Dataset.from_arrays(X[100_000:], y[100_000:])
    with threadpool_limits(1):
        started = time.perf_counter()
        utility = make_utility(train, valid, batched=False)
        result = get_method("knn-shapley")(k=5).fit(utility).result_
        seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"knn-shapley, 100,000 training x 10,000 valuation rows, K=5: {seconds:.1f} s, "
        f"peak RSS {peak:.0f} MiB (sum of values {result.values.sum():.6f})"
    )


if __name__ == "__main__":
    main()
