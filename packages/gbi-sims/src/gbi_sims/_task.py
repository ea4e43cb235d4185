"""The task contract shared by every simulator in gbi-sims."""

from __future__ import annotations

import abc
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from gbi_sims._rng import make_key
from gbi_sims._validation import as_batch, check_chunk_size, check_count
from gbi_sims.prior import BoxUniform

Seed = int | np.random.Generator


class SimulationWarning(UserWarning):
    """Some simulated rows failed (diverged) and were returned as NaN."""


@dataclass(frozen=True)
class Observation:
    """A fixed, reproducible observation of a task.

    Attributes:
        index: its number, ``task.observation(index)``.
        theta: the parameter that generated it, shape (theta_dim,); NaN where
            unknown (a real recording).
        x: the observation, shape (x_dim,).
        description: how it was made.
    """

    index: int
    theta: np.ndarray
    x: np.ndarray
    description: str = field(default="")


def count_failed(x: np.ndarray) -> int:
    """Number of rows of a simulated batch ``x`` (n, x_dim) with a non-finite entry."""
    x = np.asarray(x)
    return int(np.count_nonzero(~np.all(np.isfinite(x), axis=1)))


def warn_failed(task_name: str, x: np.ndarray, stacklevel: int = 2) -> None:
    """Warn with a ``SimulationWarning`` when rows of ``x`` failed."""
    failed = count_failed(x)
    if failed:
        warnings.warn(
            f"{task_name}: {failed} of {x.shape[0]} simulations failed and are NaN rows "
            "(count them with gbi_sims.count_failed)",
            SimulationWarning,
            stacklevel=stacklevel,
        )


class Task(abc.ABC):
    """A simulator with a box-uniform prior.

    Subclasses set ``name``, ``theta_names``, ``x_dim`` and ``prior`` and
    implement ``_simulate_into``; tasks with a tractable likelihood implement
    ``_log_likelihood``.

    Randomness: ``simulate(theta, seed)`` gives row ``i`` a random stream that
    depends only on ``seed`` and ``i`` (see ``gbi_sims._rng``), so the result is
    the same whatever the thread count, chunk size or executor.
    """

    name: str
    theta_names: tuple[str, ...]
    x_dim: int
    prior: BoxUniform
    #: the layout of x when it is a path or field of local interactions, for
    #: estimators that exploit it (a stencil embedding): ``{"grid": shape of x
    #: reshaped row-major, "offsets": the cells one local term reads, relative
    #: to its anchor, "cyclic": which axes wrap}``; ``None`` when x has no such layout.
    x_stencil: ClassVar[Mapping[str, tuple] | None] = None
    #: rows simulated per chunk; bounds the working memory of one call.
    default_chunk_size: int = 1 << 16
    #: how many fixed observations ``observation(i)`` offers.
    n_observations: int = 10
    #: the seed behind the fixed observations (documented, never changed).
    observation_seed: int = 20_240_601

    @property
    def theta_dim(self) -> int:
        return self.prior.dim

    # -- simulation --------------------------------------------------------

    def simulate(
        self,
        theta: np.ndarray,
        seed: Seed,
        *,
        chunk_size: int | None = None,
        progress: bool | None = None,
    ) -> np.ndarray:
        """Simulate one x per row of ``theta``.

        Args:
            theta: parameters, shape (n, theta_dim), finite.
            seed: an int or a ``numpy.random.Generator`` (one draw is taken).
            chunk_size: rows per chunk (bounds memory; results do not depend on it).
            progress: show a progress bar over chunks; ``None`` shows one when
                there are several chunks and stderr is a terminal.

        Returns:
            x, shape (n, x_dim), float64. Rows whose simulation failed are NaN
            and a ``SimulationWarning`` gives their count.
        """
        theta = self.check_theta(theta)
        return self.simulate_rows(
            theta, make_key(seed), row_offset=0, chunk_size=chunk_size, progress=progress
        )

    def check_theta(self, theta: np.ndarray) -> np.ndarray:
        """Validate a parameter batch: shape (n, theta_dim), finite, non-empty."""
        theta = as_batch(theta, self.theta_dim, what="theta", task=self.name)
        self._check_theta_domain(theta)
        return theta

    def _check_theta_domain(self, theta: np.ndarray) -> None:  # noqa: B027 - optional hook
        """Raise ValueError where the simulator is undefined for some theta."""

    def _require_inside_prior(self, theta: np.ndarray) -> None:
        outside = ~self.prior.contains(theta)
        if np.any(outside):
            row = int(np.flatnonzero(outside)[0])
            raise ValueError(
                f"theta must lie inside the prior box of {self.name} "
                f"(low={self.prior.low.tolist()}, high={self.prior.high.tolist()}); "
                f"{int(outside.sum())} row(s) outside, first at row {row}: {theta[row].tolist()}"
            )

    def simulate_rows(
        self,
        theta: np.ndarray,
        key: np.uint64,
        *,
        row_offset: int,
        chunk_size: int | None = None,
        progress: bool | None = None,
        warn: bool = True,
    ) -> np.ndarray:
        """Simulate validated rows whose global indices start at ``row_offset``.

        The building block of ``simulate`` and of distributed simulation: the
        rows ``theta`` are rows ``row_offset, row_offset + 1, ...`` of a larger
        batch simulated with stream key ``key``.
        """
        n = theta.shape[0]
        chunk = check_chunk_size(chunk_size, self.default_chunk_size)
        out = np.empty((n, self.x_dim), dtype=np.float64)
        starts = range(0, n, chunk)
        if progress is None:
            progress = len(starts) > 1 and sys.stderr.isatty()
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n, desc=f"simulate {self.name}", unit="sim")
        try:
            for start in starts:
                stop = min(start + chunk, n)
                self._simulate_into(theta[start:stop], key, row_offset + start, out[start:stop])
                if bar is not None:
                    bar.update(stop - start)
        finally:
            if bar is not None:
                bar.close()
        if warn:
            warn_failed(self.name, out, stacklevel=4)
        return out

    @abc.abstractmethod
    def _simulate_into(
        self, theta: np.ndarray, key: np.uint64, row_offset: int, out: np.ndarray
    ) -> None:
        """Fill ``out`` (m, x_dim) for the validated rows ``theta`` (m, theta_dim)."""

    # -- likelihood --------------------------------------------------------

    @property
    def has_likelihood(self) -> bool:
        return type(self)._log_likelihood is not Task._log_likelihood

    def log_likelihood(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The exact log p(x | theta).

        Args:
            theta: shape (n, theta_dim).
            x: one observation, shape (x_dim,) or (1, x_dim), evaluated against
                every theta; or a matching batch, shape (n, x_dim).

        Returns:
            shape (n,), float64; ``-inf`` where x is impossible under theta.

        Raises:
            NotImplementedError: the task has no tractable likelihood.
            ValueError: wrong shapes or non-finite input.
        """
        if not self.has_likelihood:
            raise NotImplementedError(
                f"{self.name} has no tractable likelihood; use a neural surrogate "
                "(NLE or NRE) trained on simulations instead"
            )
        theta = as_batch(theta, self.theta_dim, what="theta", task=self.name)
        x_arr = np.asarray(x, dtype=np.float64)
        if x_arr.ndim == 1:
            x_arr = x_arr[None, :]
        if x_arr.ndim != 2 or x_arr.shape[1] != self.x_dim:
            raise ValueError(
                f"x must have shape ({self.x_dim},) or (n, {self.x_dim}) for {self.name}, "
                f"got {np.shape(x)}"
            )
        if x_arr.shape[0] not in (1, theta.shape[0]):
            raise ValueError(
                f"x has {x_arr.shape[0]} rows but theta has {theta.shape[0]}; pass one x "
                "or one per theta"
            )
        x_arr = as_batch(x_arr, self.x_dim, what="x", task=self.name)
        return self._log_likelihood(theta, x_arr)

    def _log_likelihood(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
        """log p(x | theta) for validated theta (n, d) and x (1 or n, x_dim)."""
        raise NotImplementedError

    # -- observations ------------------------------------------------------

    def check_observation_index(self, i: object) -> int:
        """``i`` as an int if this task has observation ``i``, else a ``ValueError``
        naming the valid range (cheap: nothing is simulated)."""
        i = check_count(i, what="observation index")
        if i >= self.n_observations:
            raise ValueError(
                f"{self.name} has {self.n_observations} observations "
                f"(0..{self.n_observations - 1}), got index {i}"
            )
        return i

    def observation(self, i: int) -> Observation:
        """Fixed observation ``i`` (0 <= i < n_observations) with its true theta.

        Observation ``i`` is row ``i`` of a batch: theta is row ``i`` of
        ``prior.sample(n_observations, seed=observation_seed)`` and x is
        simulated for it with seed ``observation_seed + 1``.
        """
        i = self.check_observation_index(i)
        thetas = self._observation_thetas()
        x = self.simulate_rows(
            thetas[i : i + 1], make_key(self.observation_seed + 1), row_offset=i, warn=False
        )
        return Observation(
            index=i,
            theta=thetas[i].copy(),
            x=x[0],
            description=(
                f"{self.name} observation {i}: theta = row {i} of prior.sample("
                f"{self.n_observations}, seed={self.observation_seed}), x simulated with "
                f"seed {self.observation_seed + 1} as row {i}"
            ),
        )

    def _observation_thetas(self) -> np.ndarray:
        return self.prior.sample(self.n_observations, seed=self.observation_seed)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, theta_dim={self.theta_dim}, "
            f"x_dim={self.x_dim})"
        )
