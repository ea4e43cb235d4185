"""Spread a simulation batch over any ``concurrent.futures.Executor``.

Works with a local ``ProcessPoolExecutor``, the executor of a Dask
``distributed.Client`` (``client.get_executor()``), Ray's
``ray.util.concurrent.futures`` executor, or anything with ``submit``. Every
chunk carries its global row offset and the stream key derived once from the
seed, so the result equals ``task.simulate(theta, seed)`` bit for bit.
"""

from __future__ import annotations

import sys
from concurrent.futures import Executor

import numpy as np

from gbi_sims._rng import make_key
from gbi_sims._task import Seed, Task, warn_failed
from gbi_sims._validation import check_chunk_size


def _run_chunk(task: Task, theta: np.ndarray, key: np.uint64, row_offset: int) -> np.ndarray:
    return task.simulate_rows(theta, key, row_offset=row_offset, progress=False, warn=False)


def simulate_distributed(
    task: Task,
    theta: np.ndarray,
    seed: Seed,
    executor: Executor,
    *,
    chunk_size: int | None = None,
    progress: bool | None = None,
) -> np.ndarray:
    """Simulate ``theta`` in chunks on ``executor``; same numbers as ``task.simulate``.

    Args:
        task: a gbi-sims task (it is pickled to the workers).
        theta: shape (n, theta_dim).
        seed: int or Generator, exactly as for ``task.simulate``.
        executor: any ``concurrent.futures.Executor``-like object with ``submit``.
        chunk_size: rows per submitted chunk (default: ``task.default_chunk_size``).
        progress: progress bar over finished chunks (``None``: when stderr is a terminal).

    Returns:
        x, shape (n, x_dim), float64; failed rows are NaN (a ``SimulationWarning``
        gives their count).

    Example:
        >>> from concurrent.futures import ThreadPoolExecutor
        >>> from gbi_sims import get_task
        >>> task = get_task("slcp")
        >>> theta = task.prior.sample(1000, seed=0)
        >>> with ThreadPoolExecutor(2) as pool:
        ...     x = simulate_distributed(task, theta, 1, pool, chunk_size=300)
        >>> bool(np.array_equal(x, task.simulate(theta, 1)))
        True
    """
    if not hasattr(executor, "submit"):
        raise TypeError(f"executor must have a submit method, got {type(executor).__name__}")
    theta = task.check_theta(theta)
    key = make_key(seed)
    n = theta.shape[0]
    chunk = check_chunk_size(chunk_size, task.default_chunk_size)
    starts = list(range(0, n, chunk))
    futures = [executor.submit(_run_chunk, task, theta[s : s + chunk], key, s) for s in starts]
    if progress is None:
        progress = len(starts) > 1 and sys.stderr.isatty()
    out = np.empty((n, task.x_dim), dtype=np.float64)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc=f"simulate {task.name} (distributed)", unit="sim")
    try:
        for start, future in zip(starts, futures, strict=True):
            block = np.asarray(future.result())
            out[start : start + block.shape[0]] = block
            if bar is not None:
                bar.update(block.shape[0])
    finally:
        if bar is not None:
            bar.close()
    warn_failed(task.name, out, stacklevel=3)
    return out
