"""The round loop: draw in the driver, evaluate in parallel, merge in order, stop, checkpoint.

Each round the driver draws ``round_size`` chunks of the job's ``chunk_size`` samples from one
``numpy`` generator (fewer when the budget ends first) and hands the chunks to
``joblib.Parallel``; every task returns compact per-player moments, which the driver merges in
draw order. Because neither the draws nor the chunking depend on ``n_jobs`` or the joblib
backend (loky, threads, Dask, Ray), the values are identical for any of them with the same
seed; the default :data:`ROUND_SIZE` keeps 64 workers busy.

Workers are used only where they pay (:class:`_Workers`): the first chunk runs in the driver
and is timed, and a round goes to the workers only when the time they would save, projected
over the work still ahead, exceeds what starting them (:data:`WORKER_START_SECONDS`, once per
process and pool) and sending tasks (:data:`TASK_SECONDS` each) costs. A small run therefore
never pays for a pool, and since a task computes the same thing wherever it runs, the choice
never changes the values.

The utility (and its data) goes to the workers once per run, not once per task: on a Ray or Dask
backend (``joblib.parallel_config(backend="ray" | "dask")``) it is pickled once and put in Ray's
object store, or scattered to every Dask worker, and each task unpickles its own copy there;
with loky, joblib memory-maps its large arrays once (into a shared temporary folder).

With a time limit (a rule whose :meth:`~dataworth.engine.stopping.Stopping.seconds_left` is
not None, such as :class:`~dataworth.engine.stopping.MaxTime`) the clock is also checked inside
a round, at chunk boundaries: the chunks go to the workers in waves of one chunk per worker,
and no wave starts once the limit is reached, so a run overruns its limit by at most one chunk
(the wave under way). The first sample is evaluated alone and timed, and chunks are cut so
that one takes at most ``CHUNK_SHARE`` of the limit. The values are then those of a run whose
budget is the number of samples included (a prefix of the draws, merged in draw order), up to
rounding, since the chunks, cut from a measured time, differ from that run's; the
chunking never depends on ``n_jobs`` or the backend, only on the measured time, and the
generator of a round cut short is rewound to just after the included draws, so a resumed run
continues as if that round had drawn only them.

Loky workers exit as soon as the driver process is gone, even when it was killed with
``SIGKILL`` (see :func:`parallel`).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import pickle
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from numbers import Integral
from typing import Any, Protocol

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs, parallel_config
from joblib.parallel import get_active_backend
from numpy.typing import NDArray
from threadpoolctl import ThreadpoolController
from tqdm.auto import tqdm

from dataworth.engine.checkpoint import Checkpoint, Saved
from dataworth.engine.moments import Estimate, Moments, State, merge_states
from dataworth.engine.stopping import Status, Stopping
from dataworth.errors import DataworthError
from dataworth.params import Constraint, Interval, validate_params
from dataworth.progress import show_progress

try:  # a dependency of joblib >= 1.6; vendored by older versions
    import cloudpickle
except ImportError:  # pragma: no cover
    from joblib.externals import cloudpickle  # type: ignore[no-redef,unused-ignore]

__all__ = [
    "CHUNK_SHARE",
    "ROUND_SIZE",
    "TASK_SECONDS",
    "WORKER_START_SECONDS",
    "MonteCarloJob",
    "RunOutput",
    "check_n_jobs",
    "counting_failures",
    "one_blas_thread",
    "parallel",
    "run_monte_carlo",
    "run_tasks",
    "shipped",
    "threads_if_local",
]


class MonteCarloJob(Protocol):
    """A Monte Carlo estimator as the runner sees it.

    ``draw`` runs in the driver; ``process`` runs in a worker and must be a pure function of its
    arguments (the utility it receives is a copy); ``estimate`` turns the merged statistics into
    values, and ``estimator`` names that reduction (:data:`dataworth.estimators.reducers.REDUCERS`)
    so that saved results can be merged. The runner knows nothing else of the method.
    """

    estimator: str
    state_keys: tuple[str, ...]
    chunk_size: int  # samples per task

    def draw(self, rng: np.random.Generator, size: int, n_players: int) -> list[Any]: ...

    def process(self, utility: Any, samples: Sequence[Any]) -> State: ...

    def estimate(self, state: State) -> Estimate:
        """Values, standard errors and counts from the merged state."""
        ...


@dataclass
class RunOutput:
    """Statistics of a finished run.

    ``halves`` are the statistics of two independent halves of the samples (pairs of
    consecutive samples alternate), ``n_halved`` the samples they hold together (the run's,
    less an estimator's pilot, and less those of a resumed checkpoint written before halves
    were saved); ``ended_by`` the rules of ``stop`` that were met when the run ended (empty when
    it ran out of samples to draw otherwise), and ``final`` the last status the rules saw.
    """

    state: State
    n_updates: int
    n_failures: int
    seconds: float
    resumed_from: int
    halves: tuple[State, State] | None = None
    n_halved: int = 0
    ended_by: list[Stopping] = field(default_factory=list)
    final: Status | None = None


class _Blob:
    """An object pickled once in the driver; every task unpickles its own copy from it."""

    def __init__(self, obj: Any) -> None:
        self.data = cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)

    def open(self) -> Any:
        return pickle.loads(self.data)


class _RayRef:
    """A :class:`_Blob` in Ray's object store: fetched once per node, unpickled per task."""

    def __init__(self, ref: Any) -> None:
        self.ref = ref

    def open(self) -> Any:
        import ray

        return ray.get(self.ref).open()


def _open(handle: Any) -> Any:
    """In a worker: the shipped object (a fresh copy), or ``handle`` itself when not shipped.

    On Dask the scheduler has already replaced the future by the :class:`_Blob` it holds.
    """
    return handle.open() if isinstance(handle, (_Blob, _RayRef)) else handle


def _cluster_backend(n_jobs: int | None) -> tuple[str, Any] | None:
    """``("ray" | "dask", backend)`` when tasks will run on such a joblib backend, else None."""
    backend, default_n_jobs = get_active_backend()
    kind = {"RayBackend": "ray", "DaskDistributedBackend": "dask"}.get(type(backend).__name__)
    if kind is None:
        return None
    if effective_n_jobs(default_n_jobs if n_jobs is None else n_jobs) == 1:
        return None  # joblib runs the tasks in this process
    return kind, backend


@contextmanager
def shipped(obj: Any, n_jobs: int | None) -> Iterator[Any]:
    """What to pass to the tasks of one run in place of ``obj``, sent to the workers once.

    On a Ray backend ``obj`` is pickled once and put in the object store; on a Dask backend it is
    pickled once and scattered to every worker. Each task then unpickles its own copy (so tasks
    never share mutable state, as with loky). With any other backend ``obj`` itself is passed,
    and joblib memory-maps its large arrays once per ``Parallel`` context. Workers turn the
    handle back into the object with ``_open``.

    Examples
    --------
    >>> import numpy as np
    >>> with shipped(np.arange(3), n_jobs=1) as handle:  # no cluster: the object itself
    ...     _open(handle).tolist()
    [0, 1, 2]
    """
    cluster = _cluster_backend(n_jobs)
    if cluster is None:
        yield obj
        return
    kind, backend = cluster
    blob = _Blob(obj)
    if kind == "ray":
        import ray

        yield _RayRef(ray.put(blob))
        return
    future = backend.client.scatter(blob, broadcast=True, hash=False)
    try:
        yield future
    finally:
        future.release()


@functools.cache
def _controller() -> ThreadpoolController:
    """One per process: finding the loaded libraries takes milliseconds, more than a small task."""
    return ThreadpoolController()


#: Set while :func:`threads_if_local` holds the BLAS limit for the threads it runs.
_DRIVER_LIMITS_THREADS = threading.Event()


def one_blas_thread() -> Any:
    """A context limiting BLAS/OpenMP thread pools to one thread (no oversubscription).

    threadpoolctl's limits are process-wide, so threads must not set and restore them one over
    another: in the threads of :func:`threads_if_local` this does nothing, the block having set
    the limit once around them.
    """
    in_worker_thread = threading.current_thread() is not threading.main_thread()
    if _DRIVER_LIMITS_THREADS.is_set() and in_worker_thread:
        return contextlib.nullcontext()
    return _controller().limit(limits=1)


@contextmanager
def threads_if_local() -> Iterator[None]:
    """Run the block's joblib work in threads of this process where it would otherwise start
    local worker processes (loky): for tasks that release the GIL (numpy sorts, BLAS), threads
    cost no start-up and no copy of the data. BLAS is limited to one thread for the block.
    Cluster backends (Ray, Dask) and an explicit threading backend are left as they are.

    Examples
    --------
    >>> with threads_if_local():
    ...     type(get_active_backend()[0]).__name__
    'ThreadingBackend'
    """
    backend, _ = get_active_backend()
    if type(backend).__name__ not in ("LokyBackend", "MultiprocessingBackend"):
        yield
        return
    with parallel_config(backend="threading"), one_blas_thread():
        _DRIVER_LIMITS_THREADS.set()
        try:
            yield
        finally:
            _DRIVER_LIMITS_THREADS.clear()


#: How often a loky worker looks whether its driver is still there (seconds).
_WATCH_PERIOD = 0.2


def _exit_with_driver(driver: int) -> None:
    """Loky worker initializer: end this worker as soon as the process ``driver`` is gone.

    A daemon thread compares the parent's pid with ``driver`` every ``_WATCH_PERIOD`` seconds;
    once the driver has died (even by ``SIGKILL``) the worker is re-parented and exits at once,
    closing the pipes it inherited (standard error among them). Linux's
    ``prctl(PR_SET_PDEATHSIG)`` is not used: it fires when the *thread* that started the worker
    ends, and loky also starts workers from short-lived threads. Not on Windows, where the
    parent's pid never changes.
    """
    if os.name != "posix":  # pragma: no cover
        return

    def watch() -> None:
        while os.getppid() == driver:
            time.sleep(_WATCH_PERIOD)
        os._exit(1)

    threading.Thread(target=watch, name="dataworth-exit-with-driver", daemon=True).start()


def parallel(n_jobs: int | None, **kwargs: Any) -> Parallel:
    """``joblib.Parallel(n_jobs, **kwargs)`` on the active backend; loky workers die with us.

    On loky (joblib's default backend) the workers get :func:`_exit_with_driver` as
    initializer, unless the active configuration already names an initializer of its own; the
    configuration's other loky parameters are kept. Other backends are used as they are.

    Examples
    --------
    >>> parallel(2)(delayed(abs)(x) for x in (-1, -2))
    [1, 2]
    """
    backend, _ = get_active_backend()
    if type(backend).__name__ != "LokyBackend" or "initializer" in backend.backend_kwargs:
        return Parallel(n_jobs=n_jobs, **kwargs)
    watched = type(backend)(
        nesting_level=backend.nesting_level,
        inner_max_num_threads=backend.inner_max_num_threads,
        **{**backend.backend_kwargs, "initializer": _exit_with_driver, "initargs": (os.getpid(),)},
    )
    return Parallel(n_jobs=n_jobs, backend=watched, **kwargs)


def _half_ids(start: int, size: int) -> NDArray[np.int64]:
    """Which half samples ``start .. start + size - 1`` of a run belong to: pairs of
    consecutive samples alternate (so that antithetic pairs stay together)."""
    return (np.arange(start, start + size) // 2) % 2


def _process_chunk(
    job: MonteCarloJob, utility: Any, item: tuple[Sequence[Any], NDArray[np.int64] | None]
) -> tuple[list[tuple[int, State]], int, float]:
    """``job.process`` on one chunk ``(samples, halves)``: the states, the failed fits and the
    seconds it took.

    Without ``halves`` one state, tagged -1; with them, one state per half present, tagged
    with the half.
    """
    samples, halves = item
    utility = _open(utility)
    before = getattr(utility, "n_failures", 0)
    started = time.perf_counter()
    with one_blas_thread():
        if halves is None:
            parts = [(-1, job.process(utility, samples))]
        else:
            parts = [
                (h, job.process(utility, [samples[int(i)] for i in np.flatnonzero(halves == h)]))
                for h in (0, 1)
                if np.any(halves == h)
            ]
    seconds = time.perf_counter() - started
    return parts, getattr(utility, "n_failures", 0) - before, seconds


def counting_failures(fn: Any) -> Any:
    """Wrap ``fn(utility, *args)`` to return ``(result, failed fits during the call)``.

    Workers get copies of the utility, so failures must travel back with the results.
    """

    def wrapped(utility: Any, *args: Any) -> tuple[Any, int]:
        before = getattr(utility, "n_failures", 0)
        out = fn(utility, *args)
        return out, getattr(utility, "n_failures", 0) - before

    wrapped.__name__ = getattr(fn, "__name__", "task")
    return wrapped


def check_n_jobs(n_jobs: int | None, name: str = "n_jobs") -> None:
    """Refuse an ``n_jobs`` joblib cannot use, with a message saying what it must be; ``name`` is
    what the message calls it (``--n-jobs`` on the command line). None (joblib's default) passes.

    Examples
    --------
    >>> check_n_jobs(-2), check_n_jobs(None)
    (None, None)
    >>> check_n_jobs(0, "--n-jobs")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    dataworth.errors.DataworthError: --n-jobs must be a positive whole number, or negative ...
    """
    if n_jobs is None:
        return
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0:
        raise DataworthError(
            f"{name} must be a positive whole number, or negative to count back from the number "
            f"of cores (-1: all); got {n_jobs!r}."
        )


def _call_limited(fn: Any, extra: Any, chunk: Any) -> Any:
    with one_blas_thread():
        return fn(*_open(extra), chunk)


def run_tasks(
    fn: Any,
    chunks: Sequence[Any],
    *,
    n_jobs: int | None,
    progress: bool | None,
    desc: str,
    extra: tuple[Any, ...] = (),
    checkpoint: Any = None,
    resume: bool = False,
) -> list[Any]:
    """Run ``fn(*extra, chunk)`` for each chunk through joblib, results in submission order.

    ``extra`` goes to the workers once (see :func:`shipped`), not with every chunk. The first
    chunk runs in this process and is timed; the others go to the workers only when that pays
    (:class:`_Workers`). With a :class:`~dataworth.engine.task_checkpoint.TaskCheckpoint`
    (results ``(array, failures)``), finished chunks are saved as they come (at most every
    ``TASK_SAVE_SECONDS``, and at the end); with ``resume`` the chunks it holds are not run again.
    """
    check_n_jobs(n_jobs)
    done: dict[int, Any] = {}
    if checkpoint is not None and resume and checkpoint.exists():
        done = checkpoint.load()
    todo = [i for i in range(len(chunks)) if i not in done]
    bar = tqdm(total=len(todo), desc=desc, disable=not show_progress(progress), leave=False)
    saved_at = time.monotonic()
    task = functools.partial(_call_limited, fn)
    with _Workers(tuple(extra), n_jobs) as workers:
        started = time.perf_counter()
        first = list(workers.run(task, [chunks[i] for i in todo[:1]], on_workers=False))
        seconds = (time.perf_counter() - started) * max(len(todo) - 1, 0)
        rest = workers.run(
            task,
            [chunks[i] for i in todo[1:]],
            on_workers=workers.pay(seconds, len(todo) - 1),
        )
        for i, res in zip(todo, itertools.chain(first, rest), strict=True):
            done[i] = res
            bar.update(1)
            if checkpoint is not None and time.monotonic() - saved_at >= TASK_SAVE_SECONDS:
                checkpoint.save(done)  # what a killed run keeps
                saved_at = time.monotonic()
    bar.close()
    if checkpoint is not None:
        checkpoint.save(done)
    return [done[i] for i in range(len(chunks))]


#: A task checkpoint is rewritten at most this often (seconds), and once at the end.
TASK_SAVE_SECONDS = 5.0


#: With a time limit, chunks are cut so that one takes at most this share of it (measured).
CHUNK_SHARE = 0.05

#: Tasks (chunks) per round of a Monte Carlo run, unless the method's ``round_size`` says
#: otherwise: enough to keep 64 workers busy. The values depend on it (through the draws'
#: grouping and the merge order), never on the number of workers.
ROUND_SIZE = 64

_ROUND_SIZE_CONSTRAINT: dict[str, list[Constraint]] = {"round_size": [Interval(Integral, 1, None)]}

#: What starting a local worker pool (loky) is estimated to cost, in seconds: processes that
#: import numpy, scikit-learn and dataworth and unpickle the utility. Paid once per process
#: while the pool lives (loky keeps idle workers for 300 s).
WORKER_START_SECONDS = 1.0

#: What sending one task to a worker and its result back is estimated to cost, in seconds.
TASK_SECONDS = 0.002

#: A local pool used less than this many seconds ago is still running (loky's idle timeout is
#: 300 s).
_WARM_FOR = 250.0

#: When this process last used a local pool of each kind and size (monotonic seconds).
_POOL_USED: dict[tuple[str, int], float] = {}


class _Workers:
    """The workers of one run, started on first use and used only where they pay.

    ``obj`` (the utility, or a task's extra arguments) is shipped to them once (:func:`shipped`)
    when the first task goes out. :meth:`pay` weighs the time workers would save against what
    they cost: starting a local pool (:data:`WORKER_START_SECONDS`, unless this process already
    runs one of that size) and sending each task (:data:`TASK_SECONDS`). Threads and clusters
    (Ray, Dask) have nothing to start. A task computes the same thing wherever it runs, so the
    choice never changes results.
    """

    def __init__(self, obj: Any, n_jobs: int | None, **parallel_kwargs: Any) -> None:
        self.obj = obj
        self.n_jobs = n_jobs
        self.n = effective_n_jobs(n_jobs)
        backend, _ = get_active_backend()
        self._kind = type(backend).__name__
        self._local = self._kind in ("LokyBackend", "MultiprocessingBackend")
        # Ray's joblib backend (a multiprocessing pool) cannot stream results
        self._return_as = "generator" if backend.supports_return_generator else "list"
        self._kwargs = parallel_kwargs
        self._stack = ExitStack()
        self._pool: Parallel | None = None
        self._handle: Any = None

    def __enter__(self) -> _Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None and self._local:
            _POOL_USED[(self._kind, self.n)] = time.monotonic()
        self._stack.close()

    def _started(self) -> bool:
        if self._pool is not None or not self._local:
            return True
        last = _POOL_USED.get((self._kind, self.n))
        return last is not None and time.monotonic() - last < _WARM_FOR

    def pay(self, seconds: float, n_tasks: int) -> bool:
        """Whether ``n_tasks`` tasks holding ``seconds`` of work (as measured in one process)
        finish sooner on the workers than in this process."""
        if self.n <= 1 or n_tasks <= 1:
            return False
        saved = seconds * (1.0 - 1.0 / min(self.n, n_tasks))
        cost = TASK_SECONDS * n_tasks + (0.0 if self._started() else WORKER_START_SECONDS)
        return saved > cost

    def run(
        self, task: Callable[[Any, Any], Any], items: Iterable[Any], *, on_workers: bool
    ) -> Iterator[Any]:
        """``task(obj, item)`` for each item, results in order: on the workers or here."""
        if not on_workers:
            return (task(self.obj, item) for item in items)
        if self._pool is None:
            self._handle = self._stack.enter_context(shipped(self.obj, self.n_jobs))
            self._pool = self._stack.enter_context(
                parallel(self.n_jobs, return_as=self._return_as, **self._kwargs)
            )
        return iter(self._pool(delayed(task)(self._handle, item) for item in items))


Chunk = tuple[int, Sequence[Any]]  # the run's index of its first sample, and the samples
ChunkResult = tuple[list[tuple[int, State]], int, float]


@dataclass
class _Totals:
    """The statistics merged so far, in draw order; with ``halves``, those of each half too
    (which hold ``n_halved`` samples together); and the seconds the samples took to process."""

    state: State
    n_updates: int
    n_failures: int
    halves: list[State] | None = None
    n_halved: int = 0
    n_timed: int = 0
    seconds: float = 0.0

    def add(self, result: ChunkResult, n_samples: int) -> None:
        parts, failed, seconds = result
        for half, part in parts:
            self.state = merge_states(self.state, part)
            if self.halves is not None and half >= 0:
                self.halves[half] = merge_states(self.halves[half], part)
        self.n_failures += failed
        self.n_updates += n_samples
        if self.halves is not None:
            self.n_halved += n_samples
        self.n_timed += n_samples
        self.seconds += seconds

    def seconds_for(self, n_samples: int) -> float:
        """The measured seconds that ``n_samples`` more samples take in one process."""
        return self.seconds / max(self.n_timed, 1) * n_samples


def _cut(samples: Sequence[Any], size: int, start: int) -> list[Chunk]:
    return [(start + i, samples[i : i + size]) for i in range(0, len(samples), size)]


def _timed_chunk_size(job: MonteCarloJob, seconds_per_sample: float, limit: float) -> int:
    """The largest chunk (at most ``job.chunk_size``) taking about ``CHUNK_SHARE * limit``."""
    fits = CHUNK_SHARE * limit / max(seconds_per_sample, 1e-9)
    return int(max(1, min(job.chunk_size, fits)))


def _run_chunks(
    evaluate: Callable[[Sequence[Chunk]], Iterator[ChunkResult]],
    chunks: Sequence[Chunk],
    totals: _Totals,
    *,
    wave: int,
    deadline: float | None,
) -> int:
    """Evaluate ``chunks`` in order, ``wave`` at a time, until ``deadline``; samples included.

    Results are merged as they arrive (in order). No wave starts after the deadline (once
    something was included), so the last wave, which runs one chunk per worker, is the only
    overrun.
    """
    included = 0
    for start in range(0, len(chunks), wave):
        if deadline is not None and totals.n_updates > 0 and time.monotonic() >= deadline:
            break
        batch = chunks[start : start + wave]
        for (_, samples), result in zip(batch, evaluate(batch), strict=True):
            totals.add(result, len(samples))
            included += len(samples)
    return included


def run_monte_carlo(
    job: MonteCarloJob,
    utility: Any,
    n_players: int,
    *,
    stop: Stopping,
    random_state: int | None,
    n_jobs: int | None = 1,
    round_size: int = ROUND_SIZE,
    checkpoint: Checkpoint | None = None,
    resume: bool = False,
    progress: bool | None = None,
    desc: str = "valuing",
    started: float | None = None,
    initial: tuple[State, int] | None = None,
) -> RunOutput:
    """Run ``job`` in rounds of ``round_size`` chunks until ``stop`` says so; return the merged
    statistics.

    ``initial`` (a state and its number of samples) starts the run, unless it resumes from a
    checkpoint, which already holds them. With a time limit in ``stop`` the clock is also
    checked inside rounds, between waves of one chunk per worker (see the module docstring):
    the run overruns the limit by at most one chunk, and the values equal (up to rounding)
    those of a run with the budget of the samples it included.
    """
    check_n_jobs(n_jobs)
    validate_params("run_monte_carlo", {"round_size": round_size}, _ROUND_SIZE_CONSTRAINT)
    rng = np.random.default_rng(random_state)

    def zeros() -> State:
        return {k: Moments.zeros(n_players) for k in job.state_keys}

    # samples scored before the run (an estimator's pilot), unless a checkpoint holds them
    totals = _Totals(zeros(), 0, 0) if initial is None else _Totals(dict(initial[0]), initial[1], 0)
    resumed_from = 0
    # two halves always (for the split-half reliability of the result, and for RankStable):
    # the values are the same with or without a rule that reads them
    kept: list[State] = [zeros(), zeros()]
    n_halved = 0
    if checkpoint is not None:
        # room for the new checkpoint next to the previous one (written, then renamed): the
        # statistics of the run and of its two halves
        checkpoint.check_writable(nbytes=2 * 3 * 24 * n_players * len(job.state_keys) + 65536)
        if resume and checkpoint.exists():
            saved = checkpoint.load(n_players, job.state_keys)
            totals = _Totals(saved.state, saved.n_updates, saved.n_failures)
            rng.bit_generator.state = saved.rng_state
            resumed_from = saved.n_updates
            if saved.halves is not None:  # else (an older checkpoint): the samples drawn since
                kept, n_halved = list(saved.halves), saved.n_halved
    totals.halves, totals.n_halved = kept, n_halved
    stop.reset()
    if started is None:  # the clock of time limits: from here, or from the caller's start
        started = time.monotonic()
    bar = tqdm(
        total=100,
        desc=desc,
        disable=not show_progress(progress),
        unit="%",
        bar_format=("{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}] {postfix}"),
    )

    def status() -> Status:
        values, stderr, counts = job.estimate(totals.state)
        halves = None
        if stop.needs_halves:  # the final halves' values are the caller's to estimate
            halves = (job.estimate(kept[0])[0], job.estimate(kept[1])[0])
        return Status(totals.n_updates, values, stderr, counts, started=started, halves=halves)

    current = status()
    timed = stop.seconds_left(current) is not None
    task = functools.partial(_process_chunk, job)
    # timed: one task per chunk, so that a wave is one chunk per worker (no auto-batching)
    with _Workers(utility, n_jobs, batch_size=1 if timed else "auto") as workers:

        def evaluate(chunks: Sequence[Chunk], on_workers: bool) -> Iterator[ChunkResult]:
            items = [(c, _half_ids(i, len(c))) for i, c in chunks]
            return workers.run(task, items, on_workers=on_workers)

        chunk_size = None if timed else job.chunk_size  # timed: from the first sample's time
        per_round = round_size * job.chunk_size
        while not (totals.n_updates > 0 and stop.check(current)):
            cap = stop.max_remaining(current)
            size = per_round if cap is None else min(per_round, cap)
            if size <= 0:
                break
            left = stop.seconds_left(current)
            deadline = None if left is None else time.monotonic() + left
            before = dict(rng.bit_generator.state)
            samples = job.draw(rng, size, n_players)
            first = totals.n_updates
            included = 0
            if totals.n_timed == 0:  # the first chunk (timed: sample) runs here and is timed
                head = min(size, 1 if timed else job.chunk_size)
                totals.add(next(evaluate([(first, samples[:head])], False)), head)
                included = head
                if timed:
                    chunk_size = _timed_chunk_size(job, totals.seconds, left or 0.0)
            assert chunk_size is not None
            chunks = _cut(samples[included:], chunk_size, first + included)
            # the work ahead: the rest of the budget or of the time, else at least as much as
            # the run has done (a run that went on this long may well go on as long again)
            bounds = [b for b in (None if cap is None else totals.seconds_for(cap - included),
                                  left) if b is not None]  # fmt: skip
            ahead = min(bounds) if bounds else max(totals.seconds_for(size), totals.seconds)
            on_workers = workers.pay(ahead, len(chunks))
            included += _run_chunks(
                functools.partial(evaluate, on_workers=on_workers),
                chunks,
                totals,
                wave=(workers.n if on_workers else 1) if timed else max(1, len(chunks)),
                deadline=deadline,
            )
            if included < size:  # cut short: draw again only what was included
                rng.bit_generator.state = before
                job.draw(rng, included, n_players)
            if checkpoint is not None:
                checkpoint.save(
                    Saved(
                        totals.state,
                        dict(rng.bit_generator.state),
                        totals.n_updates,
                        totals.n_failures,
                        halves=(kept[0], kept[1]),
                        n_halved=totals.n_halved,
                    )
                )
            current = status()
            bar.n = round(100 * stop.completion(current))
            bar.set_postfix_str(f"{totals.n_updates} samples", refresh=False)
            bar.refresh()
    bar.close()
    return RunOutput(
        totals.state,
        totals.n_updates,
        totals.n_failures,
        time.monotonic() - started,
        resumed_from,
        halves=(kept[0], kept[1]),
        n_halved=totals.n_halved,
        ended_by=[rule for rule in stop.leaves() if rule.met(current)],
        final=current,
    )
