"""What many test files share: the seed, a split of a bundled dataset, torch on one thread.

The one way to run the ``dataworth`` command in a test is :mod:`cli_runner`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dataworth.data import Dataset
from dataworth.datasets import load_dataset

#: The seed tests use unless they test seeds.
SEED = 0


@pytest.fixture
def seed() -> int:
    """The seed of a test that needs one but does not test seeds."""
    return SEED


@pytest.fixture(scope="session")
def iris_split() -> tuple[Dataset, Dataset]:
    """Iris: 70% training rows and 30% valuation rows (split with seed 0)."""
    return load_dataset("iris").split(0.3, random_state=SEED)


@pytest.fixture(scope="module")
def torch_one_thread() -> Iterator[None]:
    """Torch on one thread for a module's tiny tensors (threads only add overhead there)."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
