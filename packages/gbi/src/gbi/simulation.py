"""The base simulation set, simulated in chunks that survive interruption."""

from __future__ import annotations

import sys
import time
from concurrent.futures import Executor, as_completed
from dataclasses import dataclass

import numpy as np

from gbi._threads import torch_threads_kept
from gbi.problem import Problem
from gbi.rundir import RunDirectory


def derive_seed(seed: int, stream: str) -> int:
    """An independent 63-bit seed for one named stream of a run (``"prior"``, ``"npe"``, ...)."""
    words = [int(seed)] + [ord(c) for c in stream]
    return int(
        np.random.SeedSequence(words).generate_state(2, dtype=np.uint32).view(np.uint64)[0]
        >> np.uint64(1)
    )


@dataclass(frozen=True)
class BaseSet:
    """Simulated pairs of the base joint prior(theta) p(x | theta).

    Attributes:
        theta: shape (n_kept, d), float64.
        x: shape (n_kept, x_dim), float64, all finite.
        n_requested: simulations asked for.
        n_dropped: rows dropped because x was not finite (failed simulations).
        n_reused: rows loaded from finished chunks of an earlier run.
        seconds: wall time spent simulating in this call.
    """

    theta: np.ndarray
    x: np.ndarray
    n_requested: int
    n_dropped: int
    n_reused: int
    seconds: float


def _chunk_name(index: int) -> str:
    return f"simulations/chunk_{index:05d}.npz"


@torch_threads_kept()
def simulate_base_set(
    problem: Problem,
    n: int,
    seed: int,
    run: RunDirectory | None = None,
    *,
    chunk_size: int = 10_000,
    executor: Executor | None = None,
    progress: bool | None = None,
) -> BaseSet:
    """Draw ``n`` prior samples and simulate them chunk by chunk.

    Each finished chunk is written atomically to ``run`` before the next result
    is awaited, so a killed run resumes without redoing finished chunks; a chunk
    on disk is checked against the parameters it should hold.

    Args:
        problem: the prior and simulator.
        n: number of simulations (> 0).
        seed: the run's seed.
        run: where chunks live; ``None`` keeps everything in memory.
        chunk_size: rows per chunk (part of the run's configuration).
        executor: a ``concurrent.futures.Executor`` (process pool, Dask, Ray) to
            spread chunks over; ``None`` runs them here.
        progress: progress bar (``None``: when stderr is a terminal).
    """
    if not isinstance(n, (int, np.integer)) or n <= 0:
        raise ValueError(f"the number of simulations must be a positive int, got {n!r}")
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    theta = problem.prior.sample(int(n), seed=derive_seed(seed, "prior"))
    sim_seed = derive_seed(seed, "simulate")
    starts = list(range(0, int(n), chunk_size))
    blocks: dict[int, np.ndarray] = {}
    n_reused = 0
    if run is not None:
        for index, start in enumerate(starts):
            name = _chunk_name(index)
            if run.has(name):
                stored = run.load_npz(name)
                expected = theta[start : start + chunk_size]
                if stored["theta"].shape != expected.shape or not np.array_equal(
                    stored["theta"], expected
                ):
                    raise ValueError(
                        f"{run.file(name)} does not hold the parameters this run draws; "
                        "the run directory is corrupt or from another version: use a new folder"
                    )
                blocks[index] = stored["x"]
                n_reused += expected.shape[0]
    todo = [i for i in range(len(starts)) if i not in blocks]
    if progress is None:
        progress = len(todo) > 1 and sys.stderr.isatty()
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=int(n), initial=n_reused, desc=f"simulate {problem.name}", unit="sim")

    def finish(index: int, x: np.ndarray) -> None:
        blocks[index] = x
        if run is not None:
            start = starts[index]
            run.save_npz(
                _chunk_name(index), theta=theta[start : start + chunk_size], x=x, start=start
            )
        if bar is not None:
            bar.update(x.shape[0])

    t0 = time.perf_counter()
    try:
        if executor is None:
            for index in todo:
                start = starts[index]
                finish(
                    index,
                    problem.simulate_chunk(
                        theta[start : start + chunk_size], sim_seed, index, start
                    ),
                )
        else:
            futures = {
                executor.submit(
                    problem.simulate_chunk,
                    theta[starts[i] : starts[i] + chunk_size],
                    sim_seed,
                    i,
                    starts[i],
                ): i
                for i in todo
            }
            for future in as_completed(futures):
                finish(futures[future], np.asarray(future.result(), dtype=np.float64))
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t0
    x_all = np.concatenate([blocks[i] for i in range(len(starts))], axis=0)
    finite = np.all(np.isfinite(x_all), axis=1)
    return BaseSet(
        theta=theta[finite],
        x=x_all[finite],
        n_requested=int(n),
        n_dropped=int((~finite).sum()),
        n_reused=n_reused,
        seconds=seconds,
    )
