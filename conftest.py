"""Doctest collection: the PyTorch modules are skipped when torch is not installed."""

import importlib.util

collect_ignore: list[str] = []
if importlib.util.find_spec("torch") is None:
    collect_ignore += [
        "src/dataworth/influence/torch_model.py",
        "src/dataworth/influence/solvers.py",
        "src/dataworth/influence/ekfac.py",
        "src/dataworth/influence/tracin.py",
    ]

# One BLAS/OpenMP thread for the in-process tests: the fits here are tiny, and two threads on a
# busy two-core machine make them many times slower (oversubscription), never faster.
from threadpoolctl import threadpool_limits  # noqa: E402

_ONE_THREAD = threadpool_limits(1)
