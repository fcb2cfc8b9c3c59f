"""OpenDataVal 1.3.0 (``opendataval.dataval``), on numpy data converted to torch tensors.

OpenDataVal 1.3.0 pins ``torch~=2.1``, ``numpy<1.26``, ``pandas<2`` and more, so it is installed
with ``pip install --no-deps`` and a hand-picked set of dependencies (see ``setup.sh``).
Importing ``opendataval.dataval`` imports its image-dataset module, which imports
``torchvision``. The only torchvision wheel pip can get here (PyPI's) is built against CUDA
torch and fails against the CPU ``torch==2.13.0`` wheel (``RuntimeError: operator
torchvision::nms does not exist``), so no torchvision is installed and, when ``import
torchvision`` fails, :func:`_stub_torchvision` puts an empty stand-in module in
``sys.modules``. Only the registration of OpenDataVal's image datasets (MNIST, CIFAR, ...)
touches it; no valuation method uses torchvision.

Data are given as OpenDataVal's ``DataFetcher`` gives them: ``float32`` tensors, labels one-hot.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import io
import sys
import time
import types
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from common import SEED, Budgets, RunOutput, Split, package_version
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

NAME = "OpenDataVal"
DISTRIBUTION = "opendataval"

SETTINGS: dict[str, str] = {
    "knn-shapley": "KNNShapley(k_neighbors=5) (default k_neighbors=10); float32 torch.cdist",
    "tmc-shapley": (
        "DataShapley(TMCSampler(mc_epochs=permutations, min_cardinality=0)) (defaults: "
        "GrTMCSampler with Gelman-Rubin stopping, min_cardinality=5); its truncation: stop "
        "a permutation after 10 consecutive marginals of |delta| < 1e-8 x running sum"
    ),
    "beta-shapley": (
        "BetaShapley(TMCSampler(mc_epochs=permutations, min_cardinality=0), alpha=16, beta=1) "
        "(default alpha=4); marginals come from the truncated TMC sampler (no other sampler)"
    ),
    "banzhaf": "DataBanzhaf(num_models=subsets) (MSR)",
    "data-oob": (
        "DataOob(num_models=bags, proportion=1.0), "
        "ClassifierSkLearnWrapper(DecisionTreeClassifier(random_state=0))"
    ),
    "loo": "LeaveOneOut()",
}

UNSUPPORTED: dict[str, str] = {
    "permutation-shapley": (
        "OpenDataVal 1.3.0 has no untruncated permutation sampler: MonteCarloSampler, "
        "TMCSampler and GrTMCSampler all cut a permutation after 10 consecutive "
        "(near-)zero marginals"
    ),
}

UTILITY_NOTE = (
    "u(empty) = accuracy of predicting class 0; a single-class subset is fitted by "
    "DummyClassifier(most_frequent) but its one-column probabilities read as class 0, so a "
    "subset of only class-1 rows predicts class 0 (checked); metric: argmax accuracy on "
    "one-hot labels"
)


def _stub_torchvision() -> None:
    """Make ``import torchvision`` succeed with empty modules (only names are imported)."""
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    root = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    datasets = types.ModuleType("torchvision.datasets")
    for cls in ("CIFAR10", "CIFAR100", "MNIST", "STL10", "SVHN", "FashionMNIST", "VisionDataset"):
        setattr(datasets, cls, type(cls, (), {}))
    for module in (root, transforms, functional, datasets):
        module.__spec__ = importlib.machinery.ModuleSpec(module.__name__, None)
    root.transforms = transforms  # type: ignore[attr-defined]
    root.datasets = datasets  # type: ignore[attr-defined]
    transforms.functional = functional  # type: ignore[attr-defined]
    sys.modules.update(
        {
            "torchvision": root,
            "torchvision.transforms": transforms,
            "torchvision.transforms.functional": functional,
            "torchvision.datasets": datasets,
        }
    )


_STUBBED = False


def _import() -> None:
    """Import ``opendataval.dataval``, with the torchvision stand-in when needed."""
    global _STUBBED
    try:
        import torchvision  # noqa: F401
    except Exception:
        _stub_torchvision()
        _STUBBED = True
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import opendataval.dataval  # noqa: F401


def version() -> str | None:
    """Installed OpenDataVal version."""
    return package_version(DISTRIBUTION)


def unavailable_reason() -> str | None:
    """None when ``opendataval.dataval`` imports, else the error."""
    try:
        _import()
    except Exception as exc:
        return f"import opendataval.dataval failed: {type(exc).__name__}: {exc}"
    return None


def import_note() -> str:
    """How the import was done, for the report."""
    return "torchvision replaced by an empty stand-in module" if _STUBBED else ""


def supports(task: str) -> str | None:
    """None when OpenDataVal has the method, else why not."""
    if task in UNSUPPORTED:
        return UNSUPPORTED[task]
    return None if task in SETTINGS else f"OpenDataVal has no {task}"


def _counting(func: Callable[..., float], box: list[int]) -> Callable[..., float]:
    def wrapped(*args: Any, **kwargs: Any) -> float:
        box[0] += 1
        return func(*args, **kwargs)

    return wrapped


def run(task: str, split: Split, budgets: Budgets, n_jobs: int, *, seed: int = SEED) -> RunOutput:
    """Value ``split`` with OpenDataVal (single process; it has no ``n_jobs``)."""
    if n_jobs != 1:
        raise ValueError("OpenDataVal runs in one process only")
    _import()
    import torch
    from opendataval.dataval import (
        BetaShapley,
        DataBanzhaf,
        DataOob,
        DataShapley,
        KNNShapley,
        LeaveOneOut,
        TMCSampler,
    )
    from opendataval.metrics import accuracy
    from opendataval.model import ClassifierSkLearnWrapper

    torch.set_num_threads(1)
    budget = budgets.of(task)
    rng = np.random.RandomState(seed)
    n_classes = split.n_classes
    evaluations: int | None = None
    samples: int | None = budget
    sink = io.StringIO()  # OpenDataVal prints tqdm bars and messages
    with (
        contextlib.redirect_stderr(sink),
        contextlib.redirect_stdout(sink),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        eye = np.eye(n_classes, dtype=np.float32)
        x_train = torch.tensor(split.X_train, dtype=torch.float32)
        y_train = torch.tensor(eye[split.y_train])
        x_valid = torch.tensor(split.X_valid, dtype=torch.float32)
        y_valid = torch.tensor(eye[split.y_valid])
        evaluator: Any
        if task == "knn-shapley":
            evaluator = KNNShapley(k_neighbors=5, random_state=rng)
            evaluator.input_data(x_train, y_train, x_valid, y_valid)
        else:
            if task == "data-oob":
                model = ClassifierSkLearnWrapper(DecisionTreeClassifier, n_classes, random_state=0)
            else:
                model = ClassifierSkLearnWrapper(LogisticRegression, n_classes, max_iter=1000)
            if task in ("tmc-shapley", "beta-shapley"):
                assert budget is not None
                sampler = TMCSampler(
                    mc_epochs=budget, min_cardinality=0, cache_name=None, random_state=rng
                )
                if task == "tmc-shapley":
                    evaluator = DataShapley(sampler=sampler)
                else:
                    evaluator = BetaShapley(sampler=sampler, alpha=16, beta=1)
            elif task == "banzhaf":
                evaluator = DataBanzhaf(num_models=budget, random_state=rng)
            elif task == "data-oob":
                evaluator = DataOob(num_models=budget, random_state=rng)
            elif task == "loo":
                evaluator = LeaveOneOut(random_state=rng)
                samples = None
            else:
                raise ValueError(f"unsupported task {task}")
            evaluator.input_model(model).input_metric(accuracy)
            evaluator.input_data(x_train, y_train, x_valid, y_valid)
            if task in ("tmc-shapley", "beta-shapley"):
                box = [0]
                evaluator.sampler.set_evaluator(_counting(evaluator._evaluate_model, box))
        evaluator.train_data_values()
        values = np.asarray(evaluator.evaluate_data_values(), dtype=np.float64)
        seconds = time.perf_counter() - start
    if task in ("tmc-shapley", "beta-shapley"):
        evaluations = box[0]
    note = "" if task in ("knn-shapley", "data-oob") else UTILITY_NOTE
    return RunOutput(
        values=values,
        seconds=seconds,
        samples=samples if task != "knn-shapley" else None,
        evaluations=evaluations,
        settings=SETTINGS[task],
        note=note,
    )
