"""A run killed at random moments (SIGKILL, SIGTERM, SIGINT) and resumed ends with exactly the
values of an uninterrupted run; its worker processes do not outlive it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from dataworth.methods import get_method
from dataworth.result import ValuationResult
from dataworth.testing import AirportGame

SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from dataworth.methods import get_method
    from dataworth.testing import AirportGame

    class SlowAirport(AirportGame):
        def __call__(self, subset):
            time.sleep(0.001)
            return super().__call__(subset)

    game = SlowAirport(np.arange(1.0, 13.0))
    ckpt, out = sys.argv[1], sys.argv[2]
    method = get_method("permutation-shapley")(
        budget=240, random_state=123, checkpoint=ckpt, resume=True
    )
    method.fit(game).result_.save(out)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_killed_and_resumed_run_equals_uninterrupted(tmp_path, sig) -> None:
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    ckpt, out = tmp_path / "ckpt.npz", tmp_path / "out.npz"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    # the child prints a KeyboardInterrupt traceback on SIGINT; that is expected here
    rng = np.random.default_rng(int(sig))
    kills = 0
    for attempt in range(3):
        proc = subprocess.Popen([sys.executable, str(script), str(ckpt), str(out)], env=env)
        if attempt == 0:  # any moment, start-up included
            time.sleep(float(rng.uniform(0.2, 2.0)))
        else:  # mid-run: once a checkpoint exists, at a random moment within a few rounds
            deadline = time.monotonic() + 60
            while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(float(rng.uniform(0.0, 0.8)))
        if proc.poll() is None:
            proc.send_signal(sig)
            kills += 1
        proc.wait(timeout=60)
    done = subprocess.run(
        [sys.executable, str(script), str(ckpt), str(out)], env=env, timeout=300, check=True
    )
    assert done.returncode == 0
    assert kills >= 1, "the run finished before it could be interrupted; make it slower"
    resumed = ValuationResult.load(out)

    # the same run without interruption (and without the sleep, which changes no value)
    fresh = (
        get_method("permutation-shapley")(budget=240, random_state=123)
        .fit(AirportGame(np.arange(1.0, 13.0)))
        .result_
    )
    np.testing.assert_array_equal(resumed.values, fresh.values)
    np.testing.assert_array_equal(resumed.stderr, fresh.stderr)
    assert resumed.metadata["n_updates"] == 240
    assert resumed.metadata.get("resumed_from", 0) > 0


def test_cli_terminated_killed_and_resumed_writes_the_uninterrupted_values(tmp_path) -> None:
    """``dataworth value --checkpoint``: SIGTERM (exit 143 and a one-line hint to resume), then
    SIGKILL, then ``--resume`` gives the CSV of a run that was never interrupted."""
    from sklearn.datasets import make_classification

    X, y = make_classification(300, 8, random_state=0)
    data = tmp_path / "train.csv"
    header = ",".join([f"x{i}" for i in range(8)] + ["label"])
    np.savetxt(data, np.column_stack([X, y]), delimiter=",", header=header, comments="")
    ckpt = tmp_path / "run.ckpt"
    common = [sys.executable, "-m", "dataworth.cli", "value", str(data), "--target", "label",
              "--method", "permutation-shapley", "--budget", "400", "--seed", "3",
              "--round-size", "2"]  # fmt: skip  (rounds of 8 permutations: many checkpoints)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    rng = np.random.default_rng(11)
    for sig, code in ((signal.SIGTERM, 143), (signal.SIGKILL, -signal.SIGKILL)):
        where = "--checkpoint" if sig == signal.SIGTERM else "--resume"
        proc = subprocess.Popen([*common, where, str(ckpt), "--out", str(tmp_path / "x.csv")],
                                env=env, stderr=subprocess.PIPE, text=True)  # fmt: skip
        deadline = time.monotonic() + 60
        before = ckpt.stat().st_mtime_ns if ckpt.exists() else 0
        while proc.poll() is None and time.monotonic() < deadline:
            if ckpt.exists() and ckpt.stat().st_mtime_ns != before:
                break
            time.sleep(0.01)
        time.sleep(float(rng.uniform(0.0, 0.5)))
        assert proc.poll() is None, "the run finished before it could be interrupted"
        proc.send_signal(sig)
        err = proc.communicate(timeout=60)[1]
        assert proc.returncode == code, err
        if sig == signal.SIGTERM:
            assert err.strip().splitlines() == [
                f"terminated; every finished round is saved in {ckpt}: rerun the command with "
                f"--resume {ckpt} in place of --checkpoint {ckpt} to continue."
            ]
    resumed, fresh = tmp_path / "resumed.csv", tmp_path / "fresh.csv"
    subprocess.run([*common, "--resume", str(ckpt), "--out", str(resumed)], env=env,
                   check=True, timeout=300, capture_output=True)  # fmt: skip
    subprocess.run([*common, "--out", str(fresh)], env=env, check=True, timeout=300,
                   capture_output=True)  # fmt: skip
    assert resumed.read_text() == fresh.read_text()


@pytest.mark.parametrize(
    ("method", "budget", "round_size", "per_round"),
    # a round is round_size tasks of the job's chunk (4 permutations, 32 subsets, 16 bags)
    [("permutation-shapley", 40, 2, 8), ("banzhaf", 512, 4, 128), ("data-oob", 200, 4, 64)],
)
def test_a_checkpoint_follows_every_round(
    tmp_path, monkeypatch, method, budget, round_size, per_round
):
    """A kill at any moment loses at most one round: the checkpoint is rewritten (atomically)
    after every round, with the samples done so far, never less often."""
    from dataworth.engine.checkpoint import Checkpoint, Saved

    saved: list[int] = []
    original = Checkpoint.save

    def recording(self: Checkpoint, state: Saved) -> None:
        saved.append(state.n_updates)
        original(self, state)

    monkeypatch.setattr(Checkpoint, "save", recording)
    if method == "data-oob":  # bags need training data
        from dataworth.api import make_utility
        from dataworth.datasets import load_dataset

        utility = make_utility(*load_dataset("iris").split(0.3, random_state=0))
    else:
        utility = AirportGame(np.arange(1.0, 9.0))
    sized = {} if round_size is None else {"round_size": round_size}
    get_method(method)(budget=budget, random_state=0, checkpoint=tmp_path / "c.npz",
                       **sized).fit(utility)  # fmt: skip
    expected = [min(k * per_round, budget) for k in range(1, -(-budget // per_round) + 1)]
    assert saved == expected


def _children(pid: int) -> list[int]:
    """Pids of the processes whose parent is ``pid`` (from ``/proc``)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and has not exited (a zombie waiting to be reaped has exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _is_worker(pid: int) -> bool:
    try:
        return b"loky" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_workers_exit_when_the_cli_is_killed(tmp_path) -> None:
    """``kill -9`` of ``dataworth value --n-jobs 2``: its worker processes (and every other child)
    exit within seconds, so the standard error pipe they inherited reaches end of file and a
    caller waiting for the output returns (they used to stay for loky's 300 s idle timeout)."""
    from sklearn.datasets import make_classification

    X, y = make_classification(300, 8, random_state=0)
    data = tmp_path / "train.csv"
    header = ",".join([f"x{i}" for i in range(8)] + ["label"])
    np.savetxt(data, np.column_stack([X, y]), delimiter=",", header=header, comments="")
    ckpt = tmp_path / "run.ckpt"
    command = [sys.executable, "-m", "dataworth.cli", "value", str(data), "--target", "label",
               "--method", "permutation-shapley", "--budget", "100000", "--n-jobs", "2",
               "--checkpoint", str(ckpt), "--out", str(tmp_path / "v.csv")]  # fmt: skip
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    children: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            children = _children(proc.pid)
            if ckpt.exists() and sum(_is_worker(c) for c in children) >= 2:
                break  # a round is done: the workers are up and have run tasks
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        assert sum(_is_worker(c) for c in children) >= 2, children
        proc.kill()
        proc.wait(timeout=10)
        gone_by = time.monotonic() + 10
        while any(_running(c) for c in children) and time.monotonic() < gone_by:
            time.sleep(0.05)
        assert not [c for c in children if _running(c)], "children outlived the killed run"
        proc.communicate(timeout=5)  # end of file: no process holds the stderr pipe any more
    finally:
        for child in children:  # what this test started, should it fail
            if _running(child):
                os.kill(child, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
