"""Atomic checkpoints of a Monte Carlo run: statistics, RNG state and progress.

A checkpoint is written after every round with write-to-temporary, fsync and rename, so a run
killed at any moment (also ``kill -9``) leaves either the previous or the new checkpoint, never a
torn one. Resuming restores the statistics and the random generator, so the finished run equals an
uninterrupted one with the same seed. A checkpoint records what it belongs to (data, model,
utility settings, method and seed) and is refused, naming what differs, for any other run.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dataworth.engine.moments import Moments, State
from dataworth.errors import CheckpointError
from dataworth.result import atomic_savez

__all__ = ["Checkpoint", "Saved"]

_FORMAT = "dataworth.checkpoint/1"


@dataclass
class Saved:
    """What a checkpoint holds."""

    state: State
    rng_state: dict[str, Any]
    n_updates: int
    n_failures: int


class Checkpoint:
    """A checkpoint file for one run, identified by ``identity`` (name -> content hash).

    Parameters
    ----------
    path : str or Path
        Where the checkpoint lives.
    identity : dict of str
        What the run is: e.g. ``{"data": ..., "model": ..., "method": ...}``. A checkpoint whose
        identity differs is refused with a message naming the differing parts.
    """

    def __init__(self, path: str | Path, identity: dict[str, str]) -> None:
        self.path = Path(path)
        self.identity = dict(identity)

    def check_writable(self, nbytes: int = 65536) -> None:
        """Fail now, not after an hour, if the checkpoint cannot be written.

        Writes (and removes) a probe file of ``nbytes`` next to the checkpoint, so a read-only
        or full location is refused before any work is done.
        """
        parent = self.path.parent
        if self.path.is_dir():
            raise CheckpointError(f"checkpoint path {self.path} is a directory; give a file name.")
        tmp = None
        try:
            parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".dataworth-probe.", dir=parent)
            with os.fdopen(fd, "wb") as fh:
                remaining = max(int(nbytes), 1)
                block = b"\0" * min(remaining, 1 << 20)
                while remaining > 0:
                    fh.write(block[:remaining])
                    remaining -= len(block)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise CheckpointError(
                f"cannot write a checkpoint in {parent}: {exc.strerror or exc}; "
                "choose a writable location with free space."
            ) from None
        finally:  # never leave the probe behind, also in a full directory
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)

    def exists(self) -> bool:
        return self.path.is_file()

    def save(self, saved: Saved) -> None:
        """Write atomically."""
        header = {
            "format": _FORMAT,
            "identity": self.identity,
            "rng_state": saved.rng_state,
            "n_updates": saved.n_updates,
            "n_failures": saved.n_failures,
            "state_keys": sorted(saved.state),
        }
        arrays: dict[str, Any] = {"header": np.array(json.dumps(header))}
        for key, mom in saved.state.items():
            arrays[f"{key}.count"] = mom.count
            arrays[f"{key}.mean"] = mom.mean
            arrays[f"{key}.m2"] = mom.m2
        try:
            atomic_savez(self.path, arrays)
        except OSError as exc:
            raise CheckpointError(f"cannot write checkpoint {self.path}: {exc}") from None

    def load(self) -> Saved:
        """Read and verify the checkpoint; refuse one from a different run."""
        try:
            with np.load(self.path, allow_pickle=False) as data:
                header = json.loads(str(data["header"]))
                if header.get("format") != _FORMAT:
                    raise CheckpointError(f"{self.path} is not a dataworth checkpoint.")
                state = {
                    k: Moments(data[f"{k}.count"], data[f"{k}.mean"], data[f"{k}.m2"])
                    for k in header["state_keys"]
                }
                theirs = header["identity"]
                saved = Saved(
                    state, header["rng_state"], int(header["n_updates"]), int(header["n_failures"])
                )
        except FileNotFoundError:
            raise CheckpointError(f"no checkpoint at {self.path} to resume from.") from None
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            if isinstance(exc, CheckpointError):
                raise
            raise CheckpointError(
                f"cannot read checkpoint {self.path}: damaged or not a dataworth checkpoint "
                f"({type(exc).__name__}); delete it to start afresh."
            ) from None
        differ = sorted(
            k for k in set(theirs) | set(self.identity) if theirs.get(k) != self.identity.get(k)
        )
        if differ:
            raise CheckpointError(
                f"checkpoint {self.path} belongs to a different run: its {', '.join(differ)} "
                "differ(s) from this one. Resume with the same settings, or start a new checkpoint."
            )
        return saved
