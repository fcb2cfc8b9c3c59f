"""A run killed at random moments (SIGKILL, SIGTERM, SIGINT) and resumed ends with exactly the
values of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

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
