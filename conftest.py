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
