"""Checkpoints: round trip of statistics and RNG, identity checks, writability, corruption."""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from dataworth.engine.checkpoint import Checkpoint, Saved
from dataworth.engine.moments import Moments
from dataworth.errors import CheckpointError, DataworthError

IDENTITY = {"data": "d1", "model": "m1", "utility": "u1", "method": "meth1"}
RNG_STATE = np.random.default_rng(1).bit_generator.state


def _saved(rng_state: Mapping[str, Any]) -> Saved:
    gen = np.random.default_rng(0)
    samples = gen.normal(size=(7, 5))
    mask = gen.random((7, 5)) < 0.6
    return Saved(
        state={
            "in": Moments.from_samples(samples, mask),
            "out": Moments.from_samples(samples, ~mask),
        },
        rng_state=dict(rng_state),
        n_updates=7,
        n_failures=1,
    )


def test_round_trip_state_and_rng(tmp_path) -> None:
    rng = np.random.default_rng(2024)
    rng.random(13)  # advance part way through a run
    saved = _saved(rng.bit_generator.state)
    expected_next = rng.random(100)

    ckpt = Checkpoint(tmp_path / "run.ckpt", IDENTITY)
    assert not ckpt.exists()
    ckpt.save(saved)
    assert ckpt.exists()

    loaded = Checkpoint(tmp_path / "run.ckpt", dict(IDENTITY)).load()
    assert (loaded.n_updates, loaded.n_failures) == (7, 1)
    assert loaded.state.keys() == saved.state.keys()
    for key in saved.state:
        for part in ("count", "mean", "m2"):
            np.testing.assert_array_equal(
                getattr(loaded.state[key], part), getattr(saved.state[key], part)
            )
    resumed = np.random.default_rng()
    resumed.bit_generator.state = loaded.rng_state
    np.testing.assert_array_equal(resumed.random(100), expected_next)


def test_overwrite_is_atomic_and_leaves_no_temp_files(tmp_path) -> None:
    ckpt = Checkpoint(tmp_path / "run.ckpt", IDENTITY)
    first = _saved(np.random.default_rng(1).bit_generator.state)
    ckpt.save(first)
    second = Saved(first.state, first.rng_state, n_updates=99, n_failures=0)
    ckpt.save(second)
    assert ckpt.load().n_updates == 99
    assert [p.name for p in tmp_path.iterdir()] == ["run.ckpt"]


def _differing(message: str) -> list[str]:
    found = re.search(r"its (.*) differ", message)
    assert found, message
    return [part.strip() for part in found.group(1).split(",")]


def test_identity_mismatch_names_the_key(tmp_path) -> None:
    path = tmp_path / "run.ckpt"
    Checkpoint(path, IDENTITY).save(_saved(RNG_STATE))
    with pytest.raises(CheckpointError) as info:
        Checkpoint(path, {**IDENTITY, "model": "m2"}).load()
    assert _differing(str(info.value)) == ["model"]


def test_identity_mismatch_names_every_key(tmp_path) -> None:
    path = tmp_path / "run.ckpt"
    Checkpoint(path, IDENTITY).save(_saved(RNG_STATE))
    other = {k: v for k, v in IDENTITY.items() if k != "utility"}
    other.update(data="d2", seed="s")
    with pytest.raises(CheckpointError) as info:
        Checkpoint(path, other).load()
    assert _differing(str(info.value)) == ["data", "seed", "utility"]


def test_load_missing_checkpoint(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint"):
        Checkpoint(tmp_path / "absent.ckpt", IDENTITY).load()


def test_check_writable_ok(tmp_path) -> None:
    ckpt = Checkpoint(tmp_path / "new" / "deeper" / "run.ckpt", IDENTITY)
    ckpt.check_writable()
    assert (tmp_path / "new" / "deeper").is_dir()
    assert list((tmp_path / "new" / "deeper").iterdir()) == []  # probe removed


def test_check_writable_read_only_directory(tmp_path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running with privileges that ignore directory permissions (root)")
        with pytest.raises(CheckpointError, match="cannot write"):
            Checkpoint(ro / "run.ckpt", IDENTITY).check_writable()
    finally:
        ro.chmod(0o700)


def test_check_writable_parent_is_a_file(tmp_path) -> None:
    blocker = tmp_path / "plain.txt"
    blocker.write_text("not a directory")
    with pytest.raises(CheckpointError, match="cannot write"):
        Checkpoint(blocker / "run.ckpt", IDENTITY).check_writable()
    with pytest.raises(CheckpointError):
        Checkpoint(blocker / "run.ckpt", IDENTITY).save(_saved(RNG_STATE))


def test_check_writable_directory_path(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="directory"):
        Checkpoint(tmp_path, IDENTITY).check_writable()


def test_checkpoint_error_is_a_dataworth_error() -> None:
    assert issubclass(CheckpointError, DataworthError)


def test_garbage_file(tmp_path) -> None:
    path = tmp_path / "run.ckpt"
    path.write_bytes(b"this is not a checkpoint at all")
    with pytest.raises(CheckpointError):
        Checkpoint(path, IDENTITY).load()


def test_other_npz_file(tmp_path) -> None:
    path = tmp_path / "run.npz"
    np.savez(path, header=np.array('{"format": "something else"}'))
    with pytest.raises(CheckpointError, match="not a dataworth checkpoint"):
        Checkpoint(path, IDENTITY).load()
    np.savez(path, values=np.zeros(3))
    with pytest.raises(CheckpointError):
        Checkpoint(path, IDENTITY).load()
    np.savez(path, header=np.array("{not json"))
    with pytest.raises(CheckpointError):
        Checkpoint(path, IDENTITY).load()


@pytest.mark.parametrize("damage", ["truncate", "empty", "flip-byte"])
def test_damaged_checkpoint(tmp_path, damage) -> None:
    path = tmp_path / "run.ckpt"
    ckpt = Checkpoint(path, IDENTITY)
    ckpt.save(_saved(RNG_STATE))
    raw = path.read_bytes()
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "empty":
        raw = b""
    else:
        raw = raw[:200] + bytes([raw[200] ^ 0xFF]) + raw[201:]
    path.write_bytes(raw)
    with pytest.raises(CheckpointError):
        ckpt.load()


# ------------------------------------------------- a full disk: refused at start, never torn
def _no_space(*_args: Any, **_kwargs: Any) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_location_is_refused_at_start_before_any_work(tmp_path, monkeypatch) -> None:
    from dataworth.methods import get_method
    from dataworth.testing import AirportGame

    calls: list[int] = []

    class CountingAirport(AirportGame):
        def __call__(self, subset: Any) -> float:
            calls.append(1)
            return super().__call__(subset)

    monkeypatch.setattr(os, "fsync", _no_space)  # every write on this "disk" ends in ENOSPC
    method = get_method("permutation-shapley")(
        budget=8, random_state=0, checkpoint=tmp_path / "run.ckpt"
    )
    with pytest.raises(CheckpointError, match="No space left on device") as info:
        method.fit(CountingAirport(np.arange(1.0, 7.0)))
    assert "free space" in str(info.value)
    assert calls == []  # refused before the first utility evaluation
    assert list(tmp_path.iterdir()) == []  # the probe file is not left behind


def test_probe_is_at_least_twice_the_checkpoint(tmp_path, monkeypatch) -> None:
    """The start-up probe reserves room for the new checkpoint next to the previous one."""
    from dataworth.methods import get_method
    from dataworth.testing import AirportGame

    probed: list[int] = []
    original = Checkpoint.check_writable

    def spy(self: Checkpoint, nbytes: int = 65536) -> None:
        probed.append(nbytes)
        original(self, nbytes)

    monkeypatch.setattr(Checkpoint, "check_writable", spy)
    path = tmp_path / "run.ckpt"
    get_method("permutation-shapley")(budget=8, random_state=0, checkpoint=path).fit(
        AirportGame(np.arange(1.0, 3001.0))
    )
    assert len(probed) == 1
    assert probed[0] >= 2 * path.stat().st_size


def test_disk_full_mid_run_keeps_the_previous_checkpoint(tmp_path, monkeypatch) -> None:
    path = tmp_path / "run.ckpt"
    ckpt = Checkpoint(path, IDENTITY)
    ckpt.save(_saved(RNG_STATE))
    before = path.read_bytes()
    monkeypatch.setattr(os, "fsync", _no_space)
    with pytest.raises(CheckpointError, match="cannot write checkpoint"):
        other = np.random.default_rng(2).bit_generator.state
        ckpt.save(Saved(_saved(RNG_STATE).state, other, n_updates=99, n_failures=0))
    monkeypatch.undo()
    assert path.read_bytes() == before  # the old checkpoint is intact and still loads
    assert ckpt.load().n_updates == 7
    assert [p.name for p in tmp_path.iterdir()] == ["run.ckpt"]  # no temporary file left
