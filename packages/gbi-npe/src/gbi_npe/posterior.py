"""The amortized power posterior q(theta | x, beta): numpy in, numpy out.

One forward pass per call, vectorized over observations: no simulator, no
MCMC, no Python loop over observations.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ._validation import as_beta, as_count, as_matrix
from .estimator import DEFAULT_CHUNK_ROWS, ConditionalDensityEstimator

# Relative slack when comparing beta with the trained range (float round-off).
_RANGE_SLACK = 1e-9


class ExtrapolationWarning(UserWarning):
    """A beta outside the trained range was used with ``extrapolate=True``."""


def torch_generator(seed: int | np.random.Generator) -> torch.Generator:
    """A CPU ``torch.Generator`` from an int seed or a numpy Generator (one draw from it)."""
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(0, 2**63 - 1))
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(
            f"seed must be a non-negative int or a numpy.random.Generator, got {seed!r}"
        )
    return torch.Generator().manual_seed(int(seed))


class Posterior:
    """Sampling and density evaluation of a trained beta-conditioned estimator.

    Args:
        estimator: a beta-conditioned estimator trained by ``fit`` (it stays
            where it is, CPU or GPU; results come back as float64 numpy).
        chunk_rows: at most this many (observation, sample) rows go through
            the network at once; results do not depend on it.

    Example:
        >>> # posterior = Posterior(npe)        # after fit(npe, theta, x, beta, ...)
        >>> # posterior.sample(1000, x_obs, 0.5, seed=0).shape  -> (1000, theta_dim)
    """

    def __init__(
        self, estimator: ConditionalDensityEstimator, *, chunk_rows: int = DEFAULT_CHUNK_ROWS
    ) -> None:
        if not isinstance(estimator, ConditionalDensityEstimator):
            raise ValueError(
                f"Posterior needs a ConditionalDensityEstimator, got {type(estimator).__name__}"
            )
        if not estimator.beta_conditioned:
            raise ValueError("Posterior needs a beta-conditioned estimator (make_npe)")
        if not estimator.is_fitted or estimator.beta_range is None:
            raise ValueError("the estimator has not been trained: call fit(...) first")
        self.estimator = estimator
        self.chunk_rows = as_count("chunk_rows", chunk_rows)

    # -- facts -------------------------------------------------------------------------
    @property
    def theta_dim(self) -> int:
        return self.estimator.spec.inputs_features

    @property
    def x_dim(self) -> int:
        return self.estimator.spec.x_features

    @property
    def beta_range(self) -> tuple[float, float]:
        """(beta_min, beta_max) the estimator was trained on."""
        bounds = self.estimator.beta_range
        assert bounds is not None
        return bounds

    @property
    def low(self) -> np.ndarray | None:
        """Prior box lower corner (theta_dim,), or ``None``."""
        low = self.estimator.spec.low
        return None if low is None else np.asarray(low)

    @property
    def high(self) -> np.ndarray | None:
        """Prior box upper corner (theta_dim,), or ``None``."""
        high = self.estimator.spec.high
        return None if high is None else np.asarray(high)

    # -- input checks ----------------------------------------------------------------------
    def _check_range(self, beta: np.ndarray, extrapolate: bool) -> None:
        low, high = self.beta_range
        outside = (beta < low * (1 - _RANGE_SLACK)) | (beta > high * (1 + _RANGE_SLACK))
        if not outside.any():
            return
        values = np.unique(beta[outside])[:5].tolist()
        message = f"beta {values} outside the trained range [{low:g}, {high:g}]"
        if not extrapolate:
            raise ValueError(
                f"{message}; pass extrapolate=True to evaluate the network there anyway"
            )
        warnings.warn(
            f"extrapolating: {message}; the estimate there is untested",
            ExtrapolationWarning,
            stacklevel=3,
        )

    def _observations(self, x: Any, beta: Any, extrapolate: bool) -> tuple[np.ndarray, bool]:
        """Context rows (m, x_dim + 1) and whether a single observation was given."""
        x_rows = as_matrix("x", x, self.x_dim, allow_vector=True)
        single = np.ndim(x) == 1
        beta_arr = np.asarray(beta, dtype=np.float64)
        if beta_arr.ndim == 0:
            beta_rows = as_beta(beta_arr, x_rows.shape[0])
        elif single:
            beta_rows = as_beta(beta_arr)
            x_rows = np.repeat(x_rows, beta_rows.size, axis=0)
            single = False
        else:
            beta_rows = as_beta(beta_arr, x_rows.shape[0])
        self._check_range(beta_rows, extrapolate)
        return np.c_[x_rows, beta_rows], single

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, dtype=torch.float64, device=self.estimator.device)

    # -- sampling and densities --------------------------------------------------------------
    def sample_and_log_prob(
        self,
        n: int,
        x: Any,
        beta: Any,
        seed: int | np.random.Generator,
        *,
        extrapolate: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Like ``sample``, also returning log q of each draw ((n,) or (m, n))."""
        return self._sample(n, x, beta, seed, extrapolate, with_log_prob=True)

    def sample(
        self,
        n: int,
        x: Any,
        beta: Any,
        seed: int | np.random.Generator,
        *,
        extrapolate: bool = False,
    ) -> np.ndarray:
        """Draw from q(theta | x, beta) for one or many observations in one pass.

        Args:
            n: samples per observation, > 0.
            x: one observation (x_dim,) or m observations (m, x_dim).
            beta: a scalar, or one temperature per observation (m,). With a
                single x and k temperatures, x is used for each of them.
            seed: int or ``numpy.random.Generator``; the same seed gives the
                same draws whatever the chunking.
            extrapolate: allow beta outside ``beta_range`` (with a warning).

        Returns:
            float64 array (n, theta_dim) for one observation and scalar beta,
            else (m, n, theta_dim); inside the prior box when there is one.

        Raises:
            ValueError: bad n, wrong x shape, NaN in x, beta <= 0, or beta
                outside the trained range without ``extrapolate``.
        """
        return self._sample(n, x, beta, seed, extrapolate, with_log_prob=False)[0]

    def _sample(
        self, n: Any, x: Any, beta: Any, seed: Any, extrapolate: bool, with_log_prob: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        n = as_count("n", n)
        context, single = self._observations(x, beta, extrapolate)
        generator = torch_generator(seed)
        estimator = self.estimator
        with _evaluating(estimator), torch.inference_mode():
            theta, log_q = estimator.sample_and_log_prob(
                n,
                self._tensor(context),
                generator,
                with_log_prob=with_log_prob,
                chunk_rows=self.chunk_rows,
            )
        theta_np = theta.cpu().numpy()
        log_q_np = log_q.cpu().numpy() if log_q is not None else np.empty((0,))
        if single:
            return theta_np[0], (log_q_np[0] if log_q is not None else log_q_np)
        return theta_np, log_q_np

    def log_prob(self, theta: Any, x: Any, beta: Any, *, extrapolate: bool = False) -> np.ndarray:
        """log q(theta | x, beta), including the Jacobian of the box transform.

        Args:
            theta: shape (n, theta_dim) or (theta_dim,).
            x: one observation (x_dim,) for every row, or one per row (n, x_dim).
            beta: a scalar or one per row (n,).
            extrapolate: allow beta outside ``beta_range`` (with a warning).

        Returns:
            float64 array (n,); ``-inf`` for theta outside the prior box.
        """
        theta_rows = as_matrix("theta", theta, self.theta_dim, allow_vector=True)
        n = theta_rows.shape[0]
        x_rows = as_matrix("x", x, self.x_dim, allow_vector=True)
        if x_rows.shape[0] == 1:
            x_rows = np.repeat(x_rows, n, axis=0)
        elif x_rows.shape[0] != n:
            raise ValueError(
                f"x must have shape ({self.x_dim},) or ({n}, {self.x_dim}) to match theta, "
                f"got {np.shape(x)}"
            )
        beta_rows = as_beta(beta, n)
        self._check_range(beta_rows, extrapolate)
        estimator = self.estimator
        with _evaluating(estimator), torch.inference_mode():
            out = [
                estimator.log_prob(
                    self._tensor(theta_rows[i : i + self.chunk_rows]),
                    self._tensor(np.c_[x_rows, beta_rows][i : i + self.chunk_rows]),
                )
                for i in range(0, n, self.chunk_rows)
            ]
        return torch.cat(out).cpu().numpy()

    # -- persistence -------------------------------------------------------------------------
    def save(self, path: str | Path, *, metadata: dict[str, Any] | None = None) -> Path:
        """Save the estimator (see ``gbi_npe.save_estimator``)."""
        from .io import save_estimator

        return save_estimator(self.estimator, path, metadata=metadata)

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        embedding_net: nn.Module | None = None,
        device: str = "cpu",
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
    ) -> Posterior:
        """Load a saved estimator as a Posterior (see ``gbi_npe.load_estimator``)."""
        from .io import load_estimator

        estimator = load_estimator(path, embedding_net=embedding_net, device=device)
        return cls(estimator, chunk_rows=chunk_rows)


@contextlib.contextmanager
def _evaluating(module: nn.Module) -> Iterator[None]:
    """``module`` in eval mode for the block, its mode restored after. A module
    already in eval mode is left alone: toggling walks every submodule, which a
    network with temperature pieces has hundreds of."""
    if not module.training:
        yield
        return
    module.eval()
    try:
        yield
    finally:
        module.train()
