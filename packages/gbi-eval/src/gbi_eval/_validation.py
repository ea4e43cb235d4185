"""Input checks shared by the samplers and metrics: clear ValueErrors, never asserts."""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Callable, Iterator

import numpy as np

Seed = int | np.random.Generator
#: ``log_likelihood_fn(theta)``: theta (n, d) -> log-likelihood (n,), ``-inf`` where impossible.
LogLikelihoodFn = Callable[[np.ndarray], np.ndarray]


def as_rng(seed: object) -> np.random.Generator:
    """A ``numpy.random.Generator`` from an int seed or a Generator (used as is)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise ValueError(
            f"seed must be an int or a numpy.random.Generator, got {type(seed).__name__}"
        )
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}")
    return np.random.default_rng(int(seed))


def check_beta(beta: object) -> float:
    """A finite inverse temperature ``beta > 0`` as a float."""
    if isinstance(beta, (bool, np.bool_)) or not isinstance(beta, numbers.Real):
        raise ValueError(f"beta must be a positive real number, got {beta!r}")
    value = float(beta)
    if not np.isfinite(value) or value <= 0.0:
        raise ValueError(f"beta must be a finite number > 0, got {beta!r}")
    return value


def check_positive_int(n: object, *, what: str = "n") -> int:
    """A strictly positive int (``n``, chain counts, iteration counts)."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"{what} must be a positive int, got {n!r}")
    if n <= 0:
        raise ValueError(f"{what} must be a positive int (> 0), got {n}")
    return int(n)


def check_nonnegative_int(n: object, *, what: str) -> int:
    """An int ``>= 0`` (burn-in lengths)."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"{what} must be a non-negative int, got {n!r}")
    if n < 0:
        raise ValueError(f"{what} must be a non-negative int, got {n}")
    return int(n)


def check_probability(p: object, *, what: str) -> float:
    """A number strictly between 0 and 1."""
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real) or not 0.0 < p < 1.0:
        raise ValueError(f"{what} must lie strictly between 0 and 1, got {p!r}")
    return float(p)


def as_samples(values: object, *, what: str, dim: int | None = None) -> np.ndarray:
    """Samples as a C-contiguous float64 array (n, d), n >= 1, every entry finite."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} must be a numeric array, got {type(values).__name__}") from err
    if arr.ndim != 2:
        raise ValueError(f"{what} must have shape (n, d), got {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{what} must hold at least one sample of dimension >= 1, got {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{what} must have shape (n, {dim}), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.all(np.isfinite(arr), axis=1))
        raise ValueError(
            f"{what} has NaN or infinite values in {bad.size} row(s), first at row {bad[0]}"
        )
    return np.ascontiguousarray(arr)


def check_box(low: object, high: object) -> tuple[np.ndarray, np.ndarray]:
    """The corners of a box prior: two finite 1-D float64 arrays with ``high > low``."""
    low_arr = np.atleast_1d(np.asarray(low, dtype=np.float64))
    high_arr = np.atleast_1d(np.asarray(high, dtype=np.float64))
    if low_arr.ndim != 1 or low_arr.shape != high_arr.shape:
        raise ValueError(
            f"low and high must be 1-D arrays of one shape (d,), got {low_arr.shape} and "
            f"{high_arr.shape}"
        )
    if not (np.all(np.isfinite(low_arr)) and np.all(np.isfinite(high_arr))):
        raise ValueError(f"low and high must be finite, got {low_arr} and {high_arr}")
    if not np.all(high_arr > low_arr):
        raise ValueError(f"high must exceed low in every coordinate, got {low_arr} and {high_arr}")
    return low_arr, high_arr


def check_positions(
    positions: object, low: np.ndarray, high: np.ndarray, *, what: str
) -> np.ndarray:
    """Chain positions (c, d) inside the closed box ``[low, high]``."""
    arr = as_samples(positions, what=what, dim=low.shape[0])
    outside = ~np.all((arr >= low) & (arr <= high), axis=1)
    if np.any(outside):
        row = int(np.flatnonzero(outside)[0])
        raise ValueError(
            f"{what} must lie inside the box low={low.tolist()}, high={high.tolist()}; "
            f"{int(outside.sum())} row(s) outside, first at row {row}: {arr[row].tolist()}"
        )
    return arr.copy()


def evaluate_log_likelihood(log_likelihood_fn: object, theta: np.ndarray) -> np.ndarray:
    """Call ``log_likelihood_fn(theta)`` and check it returns (n,) values; NaN becomes -inf.

    A NaN log-likelihood is treated as an impossible point (it is rejected by every
    sampler) rather than propagated into acceptance ratios.
    """
    if not callable(log_likelihood_fn):
        raise ValueError(
            f"log_likelihood_fn must be callable theta (n, d) -> (n,), got "
            f"{type(log_likelihood_fn).__name__}"
        )
    out = np.asarray(log_likelihood_fn(theta), dtype=np.float64)
    if out.shape != (theta.shape[0],):
        raise ValueError(
            f"log_likelihood_fn must return shape ({theta.shape[0]},) for theta of shape "
            f"{theta.shape}, got {out.shape}"
        )
    if np.any(out == np.inf):
        raise ValueError("log_likelihood_fn returned +inf; a log-likelihood must be < +inf")
    return np.where(np.isnan(out), -np.inf, out)


@contextlib.contextmanager
def limit_numba_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``numba.set_num_threads(n)`` (restored after); ``None``: unchanged.

    The samplers call the likelihood once per step on a batch of a few hundred
    chains at most: too small to gain from threads, while launching a
    parallel numba region on every step costs a scheduler time slice when the
    cores are shared. So they run likelihood calls single-threaded by default.
    ``set_num_threads`` only affects the calling thread.
    """
    if n is None:
        yield
        return
    import numba

    n = check_positive_int(n, what="numba_threads")
    previous = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(previous)
