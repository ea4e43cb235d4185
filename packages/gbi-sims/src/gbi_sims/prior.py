"""Box-uniform priors."""

from __future__ import annotations

import numpy as np

from gbi_sims._validation import as_batch, check_count


class BoxUniform:
    """The uniform distribution on the box ``[low_1, high_1] x ... x [low_d, high_d]``.

    Args:
        low: lower corner, shape (d,).
        high: upper corner, shape (d,), strictly above ``low``.

    Example:
        >>> prior = BoxUniform([-1.0, -1.0], [1.0, 1.0])
        >>> prior.sample(3, seed=0).shape
        (3, 2)
        >>> float(prior.log_prob(np.zeros((1, 2)))[0])  # log(1/4)
        -1.3862943611198906
    """

    def __init__(self, low: np.ndarray | list[float], high: np.ndarray | list[float]) -> None:
        low_arr = np.atleast_1d(np.asarray(low, dtype=np.float64)).copy()
        high_arr = np.atleast_1d(np.asarray(high, dtype=np.float64)).copy()
        if low_arr.ndim != 1 or low_arr.shape != high_arr.shape:
            raise ValueError(
                f"low and high must be 1-D of one shape, got {low_arr.shape} and {high_arr.shape}"
            )
        if not (np.all(np.isfinite(low_arr)) and np.all(np.isfinite(high_arr))):
            raise ValueError("low and high must be finite")
        if not np.all(high_arr > low_arr):
            raise ValueError(f"high must exceed low in every coordinate: {low_arr} vs {high_arr}")
        low_arr.flags.writeable = False
        high_arr.flags.writeable = False
        self.low = low_arr
        self.high = high_arr
        self._log_volume = float(np.sum(np.log(high_arr - low_arr)))

    @property
    def dim(self) -> int:
        return self.low.shape[0]

    def sample(self, n: int, seed: int | np.random.Generator) -> np.ndarray:
        """Draw ``n`` points, shape (n, d), float64."""
        n = check_count(n)
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        return self.low + (self.high - self.low) * rng.random((n, self.dim))

    def contains(self, theta: np.ndarray) -> np.ndarray:
        """Whether each row of ``theta`` (n, d) lies in the closed box; shape (n,), bool."""
        theta = as_batch(
            theta, self.dim, what="theta", task="the prior", allow_empty=True, check_finite=False
        )
        return np.all((theta >= self.low) & (theta <= self.high), axis=1)

    def log_prob(self, theta: np.ndarray) -> np.ndarray:
        """Log density of each row of ``theta`` (n, d): ``-log volume`` inside, ``-inf`` outside."""
        inside = self.contains(theta)
        return np.where(inside, -self._log_volume, -np.inf)

    def __repr__(self) -> str:
        return f"BoxUniform(low={self.low.tolist()}, high={self.high.tolist()})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, BoxUniform)
            and np.array_equal(self.low, other.low)
            and np.array_equal(self.high, other.high)
        )

    def __hash__(self) -> int:
        return hash((self.low.tobytes(), self.high.tobytes()))
