"""The same valuation on a real local Ray instance and a real Dask ``LocalCluster``.

With the same seed the values must equal the local loky run bit for bit (tmc-shapley, data-oob,
knn-shapley; through the API and through ``dataworth value --backend ... [--address ...]``),
and the utility must be pickled once per run in the driver (sent to the workers once), not once
per task; locally, loky must memory-map the utility's large arrays. The cluster tests are
skipped, with the reason, when ``ray`` or ``dask[distributed]`` is not installed
(``pip install "dataworth[ray]" "dataworth[dask]"``); the error tests need neither.
"""

from __future__ import annotations

import csv
import logging
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from joblib import parallel_config

from dataworth.api import make_utility
from dataworth.cli import main
from dataworth.data import Dataset
from dataworth.datasets import load_dataset
from dataworth.engine.cluster import on_cluster_backend
from dataworth.errors import DataworthError
from dataworth.methods import get_method

#: (method, budget): several rounds and many tasks each, so "once per run" is a real claim.
RUNS = [("tmc-shapley", 24), ("data-oob", 96)]
SEED = 7


@pytest.fixture(scope="module", autouse=True)
def workers_always_pay() -> Iterator[None]:
    """These runs are small: without this, the runner would keep them in this process."""
    from dataworth.engine import runner

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "WORKER_START_SECONDS", 0.0)
        mp.setattr(runner, "TASK_SECONDS", 0.0)
        yield


@pytest.fixture(scope="module")
def data() -> tuple[Dataset, Dataset]:
    full = load_dataset("iris")
    return full.split(0.3, random_state=0)


def _fit(method: str, budget: int, data: tuple[Dataset, Dataset]) -> tuple[np.ndarray, Any]:
    utility = make_utility(*data, device="numpy")
    est = get_method(method)(budget=budget, random_state=SEED, n_jobs=2)
    return est.fit(utility).result_.values, utility


@pytest.fixture(scope="module")
def loky_values(data: tuple[Dataset, Dataset]) -> dict[str, np.ndarray]:
    return {method: _fit(method, budget, data)[0] for method, budget in RUNS}


def _count_driver_pickles(monkeypatch: pytest.MonkeyPatch, cls: type) -> list[int]:
    """Count how often instances of ``cls`` are pickled in this process (workers unpickle)."""
    calls: list[int] = []
    original = cls.__getstate__

    def counting(self: Any) -> Any:
        calls.append(1)
        return original(self)

    monkeypatch.setattr(cls, "__getstate__", counting)
    return calls


def _check_run(method: str, budget: int, data, loky_values, monkeypatch) -> None:
    cls = type(make_utility(*data, device="numpy"))
    calls = _count_driver_pickles(monkeypatch, cls)
    values, _ = _fit(method, budget, data)
    np.testing.assert_array_equal(values, loky_values[method])
    assert len(calls) == 1, f"the utility was pickled {len(calls)} times, not once per run"


# --------------------------------------------------------------------------------------- loky
def _sees_memmap(utility: Any, chunk: Any) -> bool:
    return isinstance(utility.train.X, np.memmap)


def test_loky_memory_maps_large_arrays_once() -> None:
    """Locally, joblib memory-maps the utility's arrays over 1 MB instead of copying them."""
    from dataworth.engine.runner import run_tasks

    rng = np.random.default_rng(0)
    big = Dataset.from_arrays(rng.normal(size=(20_000, 8)), rng.integers(0, 2, 20_000))
    valid = Dataset.from_arrays(rng.normal(size=(50, 8)), rng.integers(0, 2, 50))
    utility = make_utility(big, valid, batched=False)
    seen = run_tasks(_sees_memmap, [0, 1, 2, 3], n_jobs=2, progress=False, desc="",
                     extra=(utility,))  # fmt: skip
    assert seen == [False, True, True, True]  # the first, timed, runs in this process


# ---------------------------------------------------------------------------------------- Ray
@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    ray = pytest.importorskip("ray", reason='Ray is not installed: pip install "dataworth[ray]"')
    from ray.util.joblib import register_ray

    if ray.is_initialized():
        pytest.skip("a Ray instance is already running in this process")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=100 * 1024**2,
        log_to_driver=False,
        logging_level=logging.ERROR,
    )
    register_ray()
    try:
        yield ray
    finally:
        ray.shutdown()


def test_ray_matches_loky_and_ships_once(ray_local, data, loky_values, monkeypatch) -> None:
    # data-oob on Ray runs in test_cli_ray_matches_loky (each Ray run starts new actors: slow)
    with parallel_config(backend="ray"):
        _check_run("tmc-shapley", 24, data, loky_values, monkeypatch)


def test_ray_runs_tasks_without_streaming(ray_local, data) -> None:
    """knn-shapley goes through ``run_tasks``; Ray's joblib backend cannot stream results."""
    utility = make_utility(*data)
    alone = get_method("knn-shapley")(k=3, chunk_size=8).fit(utility).result_.values
    with parallel_config(backend="ray"):
        on_ray = get_method("knn-shapley")(k=3, chunk_size=8, n_jobs=2).fit(utility).result_
    np.testing.assert_array_equal(on_ray.values, alone)


# --------------------------------------------------------------------------------------- Dask
@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    distributed = pytest.importorskip(
        "distributed", reason='Dask distributed is not installed: pip install "dataworth[dask]"'
    )
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.mark.parametrize(("method", "budget"), RUNS)
def test_dask_matches_loky_and_ships_once(
    dask_client, data, loky_values, monkeypatch, method, budget
) -> None:
    with parallel_config(backend="dask", client=dask_client):
        _check_run(method, budget, data, loky_values, monkeypatch)


def _environment() -> tuple[str | None, str | None]:
    import os

    return os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("OMP_NUM_THREADS")


def test_on_cluster_backend_starts_a_local_dask_cluster(data, loky_values, monkeypatch) -> None:
    """The API's context manager: a local cluster of 2 workers for the block, then closed."""
    pytest.importorskip("distributed", reason='pip install "dataworth[dask]"')
    import os

    from joblib.parallel import get_active_backend

    # what an earlier Dask cluster leaves in this process's environment (workers inherit it)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")

    with on_cluster_backend("dask", n_jobs=2):
        backend = get_active_backend()[0]
        assert type(backend).__name__ == "DaskDistributedBackend"
        # Dask's 64 KiB malloc trim threshold halves the batched fits' speed: not set here
        env = backend.client.run(_environment)
        assert {v for v, _ in env.values()} == {None} and {t for _, t in env.values()} == {"1"}
        values, _ = _fit("data-oob", 96, data)
    np.testing.assert_array_equal(values, loky_values["data-oob"])
    assert type(get_active_backend()[0]).__name__ != "DaskDistributedBackend"
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536"  # restored after the block


def test_on_cluster_backend_refuses_an_unknown_backend() -> None:
    with (
        pytest.raises(DataworthError, match="backend must be 'ray' or 'dask'"),
        on_cluster_backend("spark"),
    ):
        pass


# ------------------------------------------------------------------------------ time limits
@pytest.mark.parametrize("engine", ["ray", "dask"])
def test_timed_run_on_a_cluster_equals_the_run_with_its_budget(request, data, engine) -> None:
    """With a time limit the chunks go out in waves of one per worker (Ray's backend cannot
    stream results), and a run stopped between waves has the values (up to rounding) of the
    local run whose budget is the number of samples it included."""
    from dataworth.engine.stopping import MaxTime

    if engine == "ray":
        request.getfixturevalue("ray_local")
        config: dict[str, Any] = {"backend": "ray"}
    else:
        config = {"backend": "dask", "client": request.getfixturevalue("dask_client")}
    utility = make_utility(*data, device="numpy")
    method = get_method("tmc-shapley")
    with parallel_config(**config):
        timed = method(budget=None, stop=MaxTime(2.0), random_state=SEED, n_jobs=2)
        result = timed.fit(utility).result_
    k = result.metadata["n_updates"]
    alone = method(budget=k, random_state=SEED).fit(utility).result_
    # the chunks differ (cut from a measured time), so the merges round differently
    np.testing.assert_allclose(result.values, alone.values, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(result.stderr, alone.stderr, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def iris_csv(tmp_path_factory) -> str:
    full = load_dataset("iris")
    path = tmp_path_factory.mktemp("cluster") / "iris.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*full.feature_names, "label"])
        writer.writerows([*x, y] for x, y in zip(full.X.tolist(), full.y.tolist(), strict=True))
    return str(path)


def _cli_values(capsys, *args: str) -> str:
    main(["value", *args])
    return capsys.readouterr().out


def test_cli_dask_address_matches_loky(iris_csv, dask_client, capsys) -> None:
    common = [iris_csv, "--target", "label", "--method", "data-oob", "--budget", "64"]
    loky = _cli_values(capsys, *common, "--n-jobs", "2")
    address = dask_client.scheduler.address
    assert _cli_values(capsys, *common, "--backend", "dask", "--address", address) == loky


def test_cli_ray_matches_loky(iris_csv, ray_local, capsys) -> None:
    common = [iris_csv, "--target", "label", "--method", "data-oob", "--budget", "64"]
    loky = _cli_values(capsys, *common, "--n-jobs", "2")
    assert _cli_values(capsys, *common, "--backend", "ray", "--n-jobs", "2") == loky


def test_cli_clean_on_dask_matches_loky(iris_csv, dask_client, capsys) -> None:
    """Commands that value data inside (clean, prune, explain, debug, market) take --backend
    and --address too, and print what they print locally (timings aside)."""
    import re

    common = [iris_csv, "--target", "label", "--methods", "data-oob", "--budget", "64"]

    def untimed(*args: str) -> str:
        main(["clean", *common, *args])
        return re.sub(r"[0-9.]+ s\b", "", capsys.readouterr().out)

    loky = untimed("--n-jobs", "2")
    assert untimed("--backend", "dask", "--address", dask_client.scheduler.address) == loky


# ------------------------------------------------------------------- errors (no extras needed)
def _error(capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as info:
        main(["value", *args])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize(("backend", "module"), [("ray", "ray"), ("dask", "distributed")])
def test_missing_extra_names_the_install_command(
    iris_csv, capsys, monkeypatch, backend, module
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    line = _error(capsys, iris_csv, "--target", "label", "--backend", backend, "--budget", "2")
    assert line == (
        f'error: --backend {backend} needs the {backend} extra: pip install "dataworth[{backend}]"'
    )


def test_address_errors(iris_csv, capsys) -> None:
    base = [iris_csv, "--target", "label", "--budget", "2"]
    assert "--address needs --backend ray" in _error(capsys, *base, "--address", "h:1")
    assert "must look like HOST:PORT" in _error(
        capsys, *base, "--backend", "dask", "--address", "nowhere"
    )
    assert "cannot reach the Dask cluster at tcp://127.0.0.1:9" in _error(
        capsys, *base, "--backend", "dask", "--address", "tcp://127.0.0.1:9"
    )
