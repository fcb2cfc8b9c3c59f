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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dataworth.engine.moments import State
from dataworth.errors import CheckpointError, DataworthError
from dataworth.fileio import atomic_savez
from dataworth.npzfile import (
    NotAnArchive,
    array_field,
    checked_moments,
    header_count,
    header_field,
    read_header,
    read_npz,
)

__all__ = ["Checkpoint", "Saved"]

_FORMAT = "dataworth.checkpoint/1"


@dataclass
class Saved:
    """What a checkpoint holds."""

    state: State
    rng_state: dict[str, Any]
    n_updates: int
    n_failures: int
    #: The statistics of the run's two halves of the samples and how many samples they hold
    #: together (None in a checkpoint written before halves were kept).
    halves: tuple[State, State] | None = None
    n_halved: int = 0


class Checkpoint:
    """A checkpoint file for one run, identified by ``identity`` (name -> content hash).

    Parameters
    ----------
    path : str or Path
        Where the checkpoint lives.
    identity : dict of str
        What the run is: e.g. ``{"data": ..., "model": ..., "method": ...}``. A checkpoint whose
        identity differs is refused with a message naming the differing parts.
    parameters : dict, optional
        The run's parameters as JSON values (e.g. ``{"method": "tmc-shapley",
        "random_state": 3}``), recorded readably so that a refusal can say which one differs
        and how (``random_state 3 in the checkpoint, 4 in this run``). The identity alone
        decides whether a checkpoint is accepted.
    """

    def __init__(
        self,
        path: str | Path,
        identity: dict[str, str],
        parameters: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.identity = dict(identity)
        self.parameters = None if parameters is None else json.loads(json.dumps(parameters))

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
            "n_players": _n_players(saved.state),
            "state_keys": sorted(saved.state),
        }
        if self.parameters is not None:
            header["parameters"] = self.parameters
        if saved.halves is not None:
            header["n_halved"] = saved.n_halved
        arrays: dict[str, Any] = {"header": np.array(json.dumps(header))}
        parts = [("", saved.state)]
        if saved.halves is not None:
            parts += [(f"half{h}.", saved.halves[h]) for h in (0, 1)]
        for prefix, state in parts:
            for key, mom in state.items():
                arrays[f"{prefix}{key}.count"] = mom.count
                arrays[f"{prefix}{key}.mean"] = mom.mean
                arrays[f"{prefix}{key}.m2"] = mom.m2
        try:
            atomic_savez(self.path, arrays)
        except OSError as exc:
            raise CheckpointError(f"cannot write checkpoint {self.path}: {exc}") from None

    def load(self, n_players: int | None = None, state_keys: Sequence[str] | None = None) -> Saved:
        """Read and verify the checkpoint; refuse one from a different run or a damaged one.

        Parameters
        ----------
        n_players : int, optional
            The run's number of players: every array must have this length.
        state_keys : sequence of str, optional
            The run's statistics (``MonteCarloJob.state_keys``): the checkpoint must hold these.

        Raises
        ------
        CheckpointError
            One line naming the file: missing, not a readable dataworth checkpoint, from a
            different run (naming what differs), or damaged (naming the field that is wrong:
            a header entry of the wrong type, an array of the wrong shape or type, a count below
            0, a non-finite mean, an RNG state numpy refuses, ...).
        """
        try:
            arrays = read_npz(self.path)
        except FileNotFoundError:
            raise CheckpointError(f"no checkpoint at {self.path} to resume from.") from None
        except OSError as exc:
            raise CheckpointError(
                f"cannot read checkpoint {self.path}: {exc.strerror or exc}."
            ) from None
        except NotAnArchive:
            raise CheckpointError(not_a_checkpoint(self.path)) from None
        except DataworthError as exc:
            raise CheckpointError(
                f"cannot read checkpoint {self.path}: damaged or not a dataworth checkpoint "
                f"({exc}); delete it to start afresh."
            ) from None
        try:
            header = read_header(arrays, _FORMAT)
            if header is not None:
                self._check_identity(header_field(header, "identity", dict), header)
                return _saved_from_arrays(header, arrays, n_players, state_keys)
        except CheckpointError:
            raise
        except DataworthError as exc:
            raise CheckpointError(
                f"checkpoint {self.path} is damaged: {exc}; delete it to start over."
            ) from None
        raise CheckpointError(f"{self.path} is not a dataworth checkpoint.")

    def _check_identity(self, theirs: dict[str, Any], header: dict[str, Any]) -> None:
        differ = sorted(
            k for k in set(theirs) | set(self.identity) if theirs.get(k) != self.identity.get(k)
        )
        if differ:
            how = _parameter_differences(header.get("parameters"), self.parameters)
            raise CheckpointError(
                f"checkpoint {self.path} belongs to a different run: its {', '.join(differ)} "
                f"differ(s) from this one{f' ({how})' if how else ''}. Resume with the same "
                "settings, or start a new checkpoint."
            )


def _parameter_differences(theirs: Any, mine: dict[str, Any] | None) -> str:
    """``random_state 3 in the checkpoint, 4 in this run; ...``: the recorded parameters that
    differ (empty when either side recorded none)."""
    if not isinstance(theirs, dict) or mine is None:
        return ""
    missing = object()
    parts = []
    for name in sorted(set(theirs) | set(mine)):
        a, b = theirs.get(name, missing), mine.get(name, missing)
        if a != b:
            shown = ["not set" if v is missing else json.dumps(v)[:60] for v in (a, b)]
            parts.append(f"{name} {shown[0]} in the checkpoint, {shown[1]} in this run")
    return "; ".join(parts)


def not_a_checkpoint(path: Path) -> str:
    """The message for a ``--resume`` file that is no archive (likely another file by mistake):
    never advice to delete it."""
    return (
        f"{path} is not a dataworth checkpoint (not an npz archive); give --resume the file a "
        "run wrote with --checkpoint."
    )


def _n_players(state: State) -> int:
    return next(iter(state.values())).count.shape[0] if state else 0


def _saved_from_arrays(
    header: dict[str, Any],
    arrays: dict[str, NDArray[Any]],
    n_players: int | None,
    state_keys: Sequence[str] | None,
) -> Saved:
    """What a checkpoint's verified header and arrays hold (see :meth:`Checkpoint.load`).

    Raises
    ------
    DataworthError
        Naming the first field that :meth:`Checkpoint.save` could not have written.
    """
    n_updates = header_count(header, "n_updates")
    n_failures = header_count(header, "n_failures")
    n = header_count(header, "n_players") if "n_players" in header else n_players
    if n_players is not None and n != n_players:
        raise DataworthError(f"'n_players' is {n}, but this run has {n_players} players")
    keys = header_field(header, "state_keys", list)
    if not keys or not all(isinstance(k, str) for k in keys) or len(set(keys)) < len(keys):
        raise DataworthError("'state_keys' is not a non-empty list of distinct names")
    if state_keys is not None and sorted(keys) != sorted(state_keys):
        raise DataworthError(
            f"'state_keys' is {sorted(keys)}, but this run keeps {sorted(state_keys)}"
        )
    if n is None:  # a checkpoint written before n_players was recorded
        n = array_field(arrays, f"{keys[0]}.count", "iu").shape[0]
    state = {k: checked_moments(arrays, k, n) for k in keys}
    for k, mom in state.items():
        if n and int(mom.count.max()) > n_updates:
            raise DataworthError(
                f"'{k}.count' holds {int(mom.count.max())} samples, more than "
                f"'n_updates' ({n_updates})"
            )
    halves = None
    n_halved = 0
    if "n_halved" in header:
        n_halved = header_count(header, "n_halved")
        if n_halved > n_updates:
            raise DataworthError(f"'n_halved' ({n_halved}) is more than 'n_updates' ({n_updates})")
        h0, h1 = ({k: checked_moments(arrays, f"half{h}.{k}", n) for k in keys} for h in (0, 1))
        halves = (h0, h1)
    return Saved(state, _checked_rng_state(header), n_updates, n_failures, halves, n_halved)


def _checked_rng_state(header: dict[str, Any]) -> dict[str, Any]:
    """The header's ``rng_state``, refused unless :func:`numpy.random.default_rng`'s bit
    generator takes it back unchanged (so that restoring it in the run cannot fail)."""
    rng_state: dict[str, Any] = header_field(header, "rng_state", dict)
    bit_generator = np.random.default_rng().bit_generator
    restored = None
    try:
        bit_generator.state = rng_state
        restored = bit_generator.state
    except (TypeError, ValueError, KeyError, IndexError, OverflowError, AttributeError):
        pass
    if restored is None or restored != rng_state:
        raise DataworthError(
            f"'rng_state' is not a state of numpy's {type(bit_generator).__name__} generator"
        )
    return rng_state
