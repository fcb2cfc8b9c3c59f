"""Workers only where they pay, and rounds sized by ``round_size``, never by ``n_jobs``
(issue 16, part 2)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dataworth.engine import runner
from dataworth.errors import DataworthError
from dataworth.methods import get_method
from dataworth.testing.games import AirportGame


def test_workers_pay_only_for_enough_work(monkeypatch) -> None:
    monkeypatch.setattr(runner, "_POOL_USED", {})
    workers = runner._Workers(None, n_jobs=2)
    assert workers.n == 2
    start = runner.WORKER_START_SECONDS
    assert not workers.pay(0.5 * start, 100)  # saves at most half of it: less than the start
    assert workers.pay(4 * start, 100)
    assert not workers.pay(1e6, 1)  # one task: nothing to share
    assert not runner._Workers(None, n_jobs=1).pay(1e6, 100)
    # a pool this process started a moment ago costs nothing to start again
    monkeypatch.setitem(runner._POOL_USED, ("LokyBackend", 2), __import__("time").monotonic())
    assert workers.pay(0.5 * start, 100)


def _pickles(monkeypatch: pytest.MonkeyPatch, cls: type) -> list[int]:
    calls: list[int] = []
    original = cls.__reduce_ex__

    def counting(self: Any, protocol: Any) -> Any:
        calls.append(1)
        return original(self, protocol)

    monkeypatch.setattr(cls, "__reduce_ex__", counting)
    return calls


def test_a_small_run_stays_in_this_process_with_the_same_values(monkeypatch) -> None:
    monkeypatch.setattr(runner, "_POOL_USED", {})
    game = AirportGame(np.arange(1.0, 9.0))
    alone = get_method("permutation-shapley")(budget=40, random_state=3).fit(game).result_
    shipped = _pickles(monkeypatch, AirportGame)
    two = get_method("permutation-shapley")(budget=40, random_state=3, n_jobs=2).fit(game).result_
    assert shipped == []  # microseconds of work: no pool was started, nothing was sent
    np.testing.assert_array_equal(two.values, alone.values)


@pytest.mark.parametrize("round_size", [1, 3, 64])
def test_values_depend_on_round_size_not_on_workers(monkeypatch, round_size) -> None:
    monkeypatch.setattr(runner, "WORKER_START_SECONDS", 0.0)
    monkeypatch.setattr(runner, "TASK_SECONDS", 0.0)  # every round on the workers
    game = AirportGame(np.arange(1.0, 7.0))
    cls = get_method("banzhaf")
    one = cls(budget=300, random_state=1, round_size=round_size).fit(game).result_
    two = cls(budget=300, random_state=1, round_size=round_size, n_jobs=2).fit(game).result_
    np.testing.assert_array_equal(one.values, two.values)
    np.testing.assert_array_equal(one.stderr, two.stderr)
    assert one.params["round_size"] == round_size


def test_round_size_is_checked() -> None:
    game = AirportGame(np.arange(1.0, 4.0))
    for bad in (0, -2, 1.5, True):
        with pytest.raises(DataworthError, match="round_size must be a positive whole number"):
            get_method("permutation-shapley")(budget=4, round_size=bad).fit(game)


def test_cli_round_size_reaches_the_method(tmp_path) -> None:
    from dataworth.cli import main

    rng = np.random.default_rng(0)
    rows = ["a,b,y"] + [f"{rng.normal():.4f},{rng.normal():.4f},{i % 2}" for i in range(24)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    main([
        "value", str(tmp_path / "t.csv"), "--target", "y", "--method", "permutation-shapley",
        "--budget", "6", "--round-size", "2", "--save-result", str(tmp_path / "r.npz"),
        "--out", str(tmp_path / "v.csv"),
    ])  # fmt: skip
    from dataworth.result import ValuationResult

    assert ValuationResult.load(tmp_path / "r.npz").params["round_size"] == 2


def test_cli_method_params_reach_any_parameter_and_are_checked(tmp_path, capsys) -> None:
    from dataworth.cli import main
    from dataworth.result import ValuationResult

    rng = np.random.default_rng(1)
    rows = ["a,b,y"] + [f"{rng.normal():.4f},{rng.normal():.4f},{i % 2}" for i in range(24)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    base = ["value", str(tmp_path / "t.csv"), "--target", "y", "--method", "permutation-shapley",
            "--out", str(tmp_path / "v.csv")]  # fmt: skip
    main([*base, "--method-params", '{"budget": 5, "antithetic": true}', "--budget", "4",
          "--save-result", str(tmp_path / "r.npz")])  # fmt: skip
    params = ValuationResult.load(tmp_path / "r.npz").params
    assert params["antithetic"] is True and params["budget"] == 4  # the flag wins
    for text, message in [
        ('{"bogus": 1}', "has no parameter 'bogus'"),
        ('{"round_size": 0}', "round_size must be a positive whole number"),
        ("[1]", "must be a JSON object"),
        ("{", "is not valid JSON"),
    ]:
        with pytest.raises(SystemExit) as info:
            main([*base, "--method-params", text])
        assert info.value.code == 2
        assert message in capsys.readouterr().err


def test_knn_shapley_runs_in_threads_and_leaves_blas_as_it_was(iris_split) -> None:
    """On the local backend knn-shapley's chunks run in threads (no worker processes to start);
    the values equal the sequential run's, and the process-wide BLAS limits are restored."""
    from threadpoolctl import threadpool_info

    from dataworth.api import make_utility

    before = [pool["num_threads"] for pool in threadpool_info()]
    utility = make_utility(*iris_split, batched=False)
    cls = get_method("knn-shapley")
    one = cls(k=3, chunk_size=4).fit(utility).result_
    with runner.threads_if_local():
        from joblib.parallel import get_active_backend

        assert type(get_active_backend()[0]).__name__ == "ThreadingBackend"
    two = cls(k=3, chunk_size=4, n_jobs=2).fit(utility).result_
    np.testing.assert_array_equal(one.values, two.values)
    assert [pool["num_threads"] for pool in threadpool_info()] == before
