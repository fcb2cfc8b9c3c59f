"""Checkpoints of chunked exact work: the results of the chunks done so far.

Exact methods (loo, exact-shapley, least-core) cut their subsets into chunks and run them with
:func:`~dataworth.engine.runner.run_tasks`; each chunk's result is ``(utilities, failed fits)``.
A :class:`TaskCheckpoint` keeps the finished chunks' results in one ``.npz`` (arrays plus a JSON
header, no pickle), written atomically, so a killed run resumes with the chunks it lacks and
ends with exactly the values of an uninterrupted run.

Examples
--------
>>> import numpy as np, tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "loo.ckpt"
>>> ckpt = TaskCheckpoint(path, {"utility": "abc"}, n_tasks=3)
>>> ckpt.save({0: (np.array([1.0, 2.0]), 0)})
>>> sorted(ckpt.load())
[0]
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from dataworth.engine.checkpoint import not_a_checkpoint
from dataworth.errors import CheckpointError, DataworthError
from dataworth.fileio import atomic_savez
from dataworth.npzfile import NotAnArchive, read_npz

__all__ = ["TaskCheckpoint"]


_FORMAT = "dataworth-task-checkpoint-1"

Result = tuple[NDArray[np.float64], int]


class TaskCheckpoint:
    """The finished chunks of one run, identified by ``identity`` (name -> content hash).

    Parameters
    ----------
    path : str or Path
        The checkpoint file.
    identity : dict of str
        What makes the run (the utility's fingerprint parts, the method and its parameters);
        a checkpoint whose identity differs is refused, naming what differs.
    n_tasks : int
        Number of chunks of the run.
    """

    def __init__(self, path: str | Path, identity: dict[str, str], n_tasks: int) -> None:
        self.path = Path(path)
        self.identity = dict(identity)
        self.n_tasks = int(n_tasks)

    def exists(self) -> bool:
        return self.path.exists()

    def save(self, done: dict[int, Result]) -> None:
        """Write the results of the chunks in ``done`` (atomically)."""
        header = {
            "format": _FORMAT,
            "identity": self.identity,
            "n_tasks": self.n_tasks,
            "done": sorted(int(i) for i in done),
            "failures": {str(i): int(done[i][1]) for i in done},
        }
        arrays = {f"r{i}": np.asarray(done[i][0], dtype=np.float64) for i in done}
        atomic_savez(self.path, {"header": np.array(json.dumps(header)), **arrays})

    def load(self) -> dict[int, Result]:
        """The finished chunks' results; refuse a checkpoint of another run or a damaged one."""
        try:
            arrays = read_npz(self.path)
        except FileNotFoundError:
            raise CheckpointError(f"no checkpoint at {self.path}.") from None
        except NotAnArchive:
            raise CheckpointError(not_a_checkpoint(self.path)) from None
        except (OSError, DataworthError) as exc:
            raise CheckpointError(f"cannot read checkpoint {self.path}: {exc}.") from None
        try:
            header = json.loads(str(arrays["header"]))
            if not isinstance(header, dict) or header.get("format") != _FORMAT:
                raise ValueError("not a dataworth task checkpoint")
            done = [int(i) for i in header["done"]]
            failures = {int(k): int(v) for k, v in header["failures"].items()}
            results = {i: (np.asarray(arrays[f"r{i}"], np.float64), failures[i]) for i in done}
            identity, n_tasks = header["identity"], int(header["n_tasks"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(
                f"checkpoint {self.path} is damaged ({exc}); delete it to start over."
            ) from None
        differ = sorted(
            k for k in set(identity) | set(self.identity) if identity.get(k) != self.identity.get(k)
        )
        if differ or n_tasks != self.n_tasks or any(not 0 <= i < n_tasks for i in results):
            what = ", ".join(differ) if differ else "number of chunks"
            raise CheckpointError(
                f"checkpoint {self.path} belongs to a different run: its {what} differ(s) from "
                "this one. Resume with the same settings, or start a new checkpoint."
            )
        return results
