"""The round loop: draw in the driver, evaluate in parallel, merge in order, stop, checkpoint.

Each round the driver draws a fixed number of samples from one ``numpy`` generator, cuts them into
chunks of a fixed size, and hands the chunks to ``joblib.Parallel``; every task returns compact
per-player moments, which the driver merges in submission order. Because neither the draws nor
the chunking depend on ``n_jobs`` or the joblib backend (loky, threads, Dask, Ray), the values are
identical for any of them with the same seed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from dataworth.engine.checkpoint import Checkpoint, Saved
from dataworth.engine.moments import Moments, State, estimate, merge_states
from dataworth.engine.stopping import Status, Stopping
from dataworth.errors import DataworthError

__all__ = [
    "MonteCarloJob",
    "RunOutput",
    "check_n_jobs",
    "counting_failures",
    "run_monte_carlo",
    "run_tasks",
]


class MonteCarloJob(Protocol):
    """A Monte Carlo estimator as the runner sees it.

    ``draw`` runs in the driver; ``process`` runs in a worker and must be a pure function of its
    arguments (the utility it receives is a copy).
    """

    estimator: str
    state_keys: tuple[str, ...]
    round_size: int
    chunk_size: int

    def draw(self, rng: np.random.Generator, size: int, n_players: int) -> list[Any]: ...

    def process(self, utility: Any, samples: Sequence[Any]) -> State: ...


@dataclass
class RunOutput:
    """Statistics of a finished run."""

    state: State
    n_updates: int
    n_failures: int
    seconds: float
    resumed_from: int


def _process_chunk(job: MonteCarloJob, utility: Any, samples: Sequence[Any]) -> tuple[State, int]:
    before = getattr(utility, "n_failures", 0)
    with threadpool_limits(limits=1):
        state = job.process(utility, samples)
    return state, getattr(utility, "n_failures", 0) - before


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


def check_n_jobs(n_jobs: int | None) -> None:
    """Refuse an ``n_jobs`` joblib cannot use, with a message saying what it must be."""
    if n_jobs is None:
        return
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0:
        raise DataworthError(
            f"n_jobs must be a positive whole number, or negative to count back from the number "
            f"of cores (-1: all); got {n_jobs!r}."
        )


def _call_limited(fn: Any, *args: Any) -> Any:
    with threadpool_limits(limits=1):
        return fn(*args)


def run_tasks(
    fn: Any,
    chunks: Sequence[Any],
    *,
    n_jobs: int | None,
    progress: bool,
    desc: str,
    extra: tuple[Any, ...] = (),
) -> list[Any]:
    """Run ``fn(*extra, chunk)`` for each chunk through joblib, results in submission order."""
    check_n_jobs(n_jobs)
    out: list[Any] = []
    bar = tqdm(total=len(chunks), desc=desc, disable=not progress, leave=False)
    with Parallel(n_jobs=n_jobs, return_as="generator") as parallel:
        for res in parallel(delayed(_call_limited)(fn, *extra, c) for c in chunks):
            out.append(res)
            bar.update(1)
    bar.close()
    return out


def run_monte_carlo(
    job: MonteCarloJob,
    utility: Any,
    n_players: int,
    *,
    stop: Stopping,
    random_state: int | None,
    n_jobs: int | None = 1,
    checkpoint: Checkpoint | None = None,
    resume: bool = False,
    progress: bool = False,
    desc: str = "valuing",
) -> RunOutput:
    """Run ``job`` in rounds until ``stop`` says so; return the merged statistics."""
    check_n_jobs(n_jobs)
    rng = np.random.default_rng(random_state)
    state: State = {k: Moments.zeros(n_players) for k in job.state_keys}
    n_updates = n_failures = 0
    if checkpoint is not None:
        checkpoint.check_writable()
        if resume and checkpoint.exists():
            saved = checkpoint.load()
            state, n_updates, n_failures = saved.state, saved.n_updates, saved.n_failures
            rng.bit_generator.state = saved.rng_state
    resumed_from = n_updates
    stop.reset()
    started = time.monotonic()
    bar = tqdm(
        total=100,
        desc=desc,
        disable=not progress,
        unit="%",
        bar_format=("{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}] {postfix}"),
    )

    def status() -> Status:
        values, stderr, counts = estimate(job.estimator, state)
        return Status(n_updates, values, stderr, counts, started=started)

    with Parallel(n_jobs=n_jobs, return_as="list") as parallel:
        current = status()
        while not (n_updates > 0 and stop.check(current)):
            cap = stop.max_remaining(current)
            size = job.round_size if cap is None else min(job.round_size, cap)
            if size <= 0:
                break
            samples = job.draw(rng, size, n_players)
            chunks = [
                samples[i : i + job.chunk_size] for i in range(0, len(samples), job.chunk_size)
            ]
            parts = parallel(delayed(_process_chunk)(job, utility, c) for c in chunks)
            for part, failed in parts:
                state = merge_states(state, part)
                n_failures += failed
            n_updates += size
            if checkpoint is not None:
                checkpoint.save(Saved(state, dict(rng.bit_generator.state), n_updates, n_failures))
            current = status()
            bar.n = round(100 * stop.completion(current))
            bar.set_postfix_str(f"{n_updates} samples", refresh=False)
            bar.refresh()
    bar.close()
    return RunOutput(state, n_updates, n_failures, time.monotonic() - started, resumed_from)
