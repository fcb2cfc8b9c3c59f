"""Connecting joblib to a Ray or Dask cluster for a block of work.

The runner (:mod:`dataworth.engine.runner`) works with whatever joblib backend is active; this
module only starts or joins a cluster and makes it the active backend. Using
``joblib.parallel_config`` directly works just as well (see ``docs/cluster.md``).
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from dataworth.errors import DataworthError

__all__ = ["on_cluster_backend"]


def _missing_extra(backend: str) -> DataworthError:
    return DataworthError(
        f'--backend {backend} needs the {backend} extra: pip install "dataworth[{backend}]"'
    )


@contextmanager
def on_cluster_backend(
    backend: str, address: str | None = None, n_jobs: int = -1
) -> Iterator[None]:
    """Run joblib's work inside the block on a Ray or Dask cluster, then disconnect.

    Parameters
    ----------
    backend : {"ray", "dask"}
    address : str, optional
        The cluster: for Ray ``"auto"``, ``"ray://HEAD:10001"`` or ``"HEAD:6379"``; for Dask
        ``"tcp://SCHEDULER:8786"``. Without it a local cluster of ``n_jobs`` workers is started
        for the block and shut down after it. An address where nothing listens is refused
        within seconds.
    n_jobs : int, default=-1
        Workers of a local cluster (-1: one per core); ignored with ``address``.

    Raises
    ------
    DataworthError
        When the back end's extra is not installed or the cluster cannot be reached.

    Examples
    --------
    >>> with on_cluster_backend("spark"):
    ...     pass
    Traceback (most recent call last):
    dataworth.errors.DataworthError: backend must be 'ray' or 'dask'; got 'spark'.

    On a running Dask cluster (``train``, ``valid``: datasets):

    >>> import dataworth
    >>> with on_cluster_backend("dask", "tcp://SCHEDULER:8786"):  # doctest: +SKIP
    ...     result = dataworth.value("tmc-shapley", train, valid, n_jobs=-1, random_state=0)
    """
    if backend not in ("ray", "dask"):
        raise DataworthError(f"backend must be 'ray' or 'dask'; got {backend!r}.")
    workers = n_jobs if n_jobs > 0 else None  # None: one per core
    with (_on_ray if backend == "ray" else _on_dask)(address, workers):
        yield


@contextmanager
def _on_ray(address: str | None, workers: int | None) -> Iterator[None]:
    """Join Ray at ``address`` (or start it locally) unless already joined; Ray's joblib backend."""
    from joblib import parallel_config

    try:
        import ray
        from ray.util.joblib import register_ray
    except ImportError:
        raise _missing_extra("ray") from None
    started = not ray.is_initialized()
    if started:
        _check_reachable("Ray", address)
        try:
            ray.init(
                address=address,
                num_cpus=workers if address is None else None,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
            )
        except Exception as exc:  # connection errors come in many types
            where = f"at {address}" if address else "locally"
            raise DataworthError(f"cannot start Ray {where}: {_first_line(exc)}") from None
    register_ray()
    try:
        with parallel_config(backend="ray"):
            yield
    finally:
        if started:
            ray.shutdown()


@contextmanager
def _on_dask(address: str | None, workers: int | None) -> Iterator[None]:
    """A Dask client of the scheduler at ``address`` (or of a local cluster); joblib's backend."""
    from joblib import parallel_config

    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise _missing_extra("dask") from None
    _check_reachable("Dask", address)
    cluster = None
    try:
        if address is None:
            with (
                warnings.catch_warnings(),
                _without_dask_trim_threshold(),  # reads Dask's value: before the next line
                dask.config.set({_SPAWN_ENV: _worker_environ()}),
            ):
                # the scheduler's HTTP server moves to a free port when 8787 is taken: harmless
                warnings.filterwarnings("ignore", message="Port .* is already in use")
                cluster = LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
        client = Client(cluster if cluster is not None else address, timeout="30s")
    except Exception as exc:  # connection errors come in many types
        if cluster is not None:
            cluster.close()
        where = f"at {address}" if address else "locally"
        raise DataworthError(f"cannot start Dask {where}: {_first_line(exc)}") from None
    try:
        with parallel_config(backend="dask", client=client):
            yield
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


_SPAWN_ENV = "distributed.nanny.pre-spawn-environ"


def _worker_environ() -> dict[str, object]:
    """Dask's worker environment without ``MALLOC_TRIM_THRESHOLD_``.

    Dask sets it to 64 KiB so that workers hand freed memory back to the system at once; the
    batched fits allocate and free megabytes per Newton step, and with it a task took about
    twice as long (50 ms instead of 25 for 16 data-oob bags of 2,000 rows).
    """
    import dask

    environ = dict(dask.config.get(_SPAWN_ENV, default={}) or {})
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    return environ


@contextmanager
def _without_dask_trim_threshold() -> Iterator[None]:
    """Hide the trim threshold an earlier Dask cluster left in this process's environment.

    Dask's nannies write their ``pre-spawn-environ`` into ``os.environ`` of the process that
    starts them, so every later worker would inherit it; a value of the user's own is kept.
    """
    import dask

    name = "MALLOC_TRIM_THRESHOLD_"
    dask_value = (dask.config.get(_SPAWN_ENV, default={}) or {}).get(name)
    value = os.environ.get(name)
    if value is None or dask_value is None or value != str(dask_value):
        yield
        return
    del os.environ[name]
    try:
        yield
    finally:
        os.environ[name] = value


def _check_reachable(what: str, address: str | None, timeout: float = 10.0) -> None:
    """Fail in seconds, not minutes, when nothing listens at ``[scheme://]host:port``."""
    if address is None or address == "auto":
        return
    host, _, port = address.rpartition("://")[2].rpartition(":")
    if not host or not port.isdigit():
        raise DataworthError(
            f"--address must look like HOST:PORT or SCHEME://HOST:PORT; got {address!r}."
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise DataworthError(
            f"cannot reach the {what} cluster at {address}: {exc.strerror or exc}."
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
