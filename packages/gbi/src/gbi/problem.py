"""What gbi infers: a box prior and a simulator, built in or the user's own."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import gbi_sims

SimulatorFn = Callable[..., np.ndarray]


@dataclass(frozen=True)
class Problem:
    """A box-uniform prior and a simulator.

    Args:
        low: lower corner of the prior box, shape (d,).
        high: upper corner, shape (d,).
        simulator: ``simulator(theta, rng) -> x`` with theta (n, d) float64, ``rng``
            a ``numpy.random.Generator`` to draw all randomness from, and x (n, x_dim).
            A function of theta alone is accepted too (then it owns its randomness
            and runs are reproducible only if it is deterministic).
        name: a short name for reports and run directories.
        theta_names: parameter names, default ``theta_1 ... theta_d``.
        x_stencil: optional layout of x for a stencil embedding of the posterior
            network, ``{"grid": shape of x reshaped row-major, "offsets": cells one
            local term of the likelihood reads, relative to its anchor,
            "cyclic": which grid axes wrap}`` (see ``gbi_npe.EmbeddingConfig``).
            Built-in tasks bring their own (lorenz96 has one).

    Example:
        >>> def simulator(theta, rng):
        ...     return theta + 0.1 * rng.standard_normal(theta.shape)
        >>> problem = Problem(low=[-1, -1], high=[1, 1], simulator=simulator, name="shift")
        >>> problem.simulate_chunk(np.zeros((3, 2)), seed=0, chunk_index=0, row_offset=0).shape
        (3, 2)
    """

    low: np.ndarray
    high: np.ndarray
    simulator: SimulatorFn | None = None
    name: str = "custom"
    theta_names: tuple[str, ...] = ()
    task: Any = field(default=None, repr=False)
    x_stencil: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        prior = gbi_sims.BoxUniform(self.low, self.high)
        object.__setattr__(self, "low", prior.low)
        object.__setattr__(self, "high", prior.high)
        if self.task is None and not callable(self.simulator):
            raise ValueError("simulator must be a callable simulator(theta, rng) -> x")
        if not self.theta_names:
            names = tuple(f"theta_{i + 1}" for i in range(prior.dim))
            object.__setattr__(self, "theta_names", names)
        elif len(self.theta_names) != prior.dim:
            raise ValueError(
                f"theta_names has {len(self.theta_names)} names for {prior.dim} parameters"
            )
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("name must be a non-empty string")
        if self.x_stencil is not None:  # a malformed stencil fails here, not at training
            object.__setattr__(self, "x_stencil", _checked_stencil(self.x_stencil))

    def stencil_embedding(
        self, hidden_features: int | None = None, output_features: int | None = None
    ):
        """The ``gbi_npe.EmbeddingConfig`` of a stencil embedding over this problem's x.

        ``hidden_features`` / ``output_features``: the networks' widths (None:
        ``gbi_npe.EmbeddingConfig``'s defaults).

        Raises:
            ValueError: the problem declares no ``x_stencil``.
        """
        import gbi_npe

        if self.x_stencil is None:
            raise ValueError(
                f"a stencil embedding needs the problem's x layout, but {self.name} declares "
                "no x_stencil (gbi.Problem(..., x_stencil={'grid': ..., 'offsets': ...}))"
            )
        widths = {"hidden_features": hidden_features, "output_features": output_features}
        return gbi_npe.EmbeddingConfig(
            kind="stencil",
            **{name: value for name, value in widths.items() if value is not None},
            **self.x_stencil,
        )

    @property
    def prior(self) -> gbi_sims.BoxUniform:
        return gbi_sims.BoxUniform(self.low, self.high)

    @property
    def theta_dim(self) -> int:
        return self.low.shape[0]

    @property
    def builtin(self) -> bool:
        return self.task is not None

    def simulate_chunk(
        self, theta: np.ndarray, seed: int, chunk_index: int, row_offset: int
    ) -> np.ndarray:
        """Simulate one chunk of a base set, reproducibly.

        Built-in tasks use their per-row streams (the chunk equals rows
        ``row_offset...`` of one big ``task.simulate(theta_all, seed)``); a user
        simulator gets a Generator seeded by ``(seed, chunk_index)``.

        Returns:
            x, shape (n, x_dim), float64; failed rows may be non-finite.
        """
        if self.task is not None:
            theta = self.task.check_theta(theta)
            return self.task.simulate_rows(
                theta, gbi_sims.make_key(seed), row_offset=row_offset, progress=False, warn=False
            )
        rng = np.random.default_rng([int(seed), int(chunk_index)])
        if _takes_rng(self.simulator):
            x = self.simulator(theta, rng)
        else:
            x = self.simulator(theta)
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[0] != theta.shape[0]:
            raise ValueError(
                f"simulator of {self.name} must return shape (n, x_dim) for theta of shape "
                f"{theta.shape}, got {x.shape}"
            )
        return x

    def log_likelihood(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Exact log-likelihood where the built-in task has one."""
        if self.task is None or not self.task.has_likelihood:
            raise NotImplementedError(f"{self.name} has no tractable likelihood")
        return self.task.log_likelihood(theta, x)


def _takes_rng(fn: Callable[..., Any]) -> bool:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return True
    positional = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in positional)


def make_problem(problem: str | Problem | gbi_sims.Task, **task_options: Any) -> Problem:
    """Turn a built-in task name, a gbi-sims task or a ``Problem`` into a ``Problem``.

    Raises:
        ValueError: an unknown task name or an unsupported object.
    """
    if isinstance(problem, Problem):
        return problem
    if isinstance(problem, str):
        problem = gbi_sims.get_task(problem, **task_options)
    if isinstance(problem, gbi_sims.Task):
        return Problem(
            low=problem.prior.low,
            high=problem.prior.high,
            name=problem.name,
            theta_names=tuple(problem.theta_names),
            task=problem,
            x_stencil=problem.x_stencil,
        )
    raise ValueError(
        "problem must be a built-in task name "
        f"({', '.join(gbi_sims.list_tasks())}), a gbi_sims task, or gbi.Problem(low, high, "
        f"simulator); got {type(problem).__name__}"
    )


def _checked_stencil(stencil: Any) -> dict[str, tuple]:
    """A problem's ``x_stencil``, checked, as ``{"grid", "offsets", "cyclic"}`` tuples."""
    import gbi_npe

    if not isinstance(stencil, Mapping) or not {"grid", "offsets"} <= set(stencil):
        raise ValueError(
            "x_stencil must be a dict with keys 'grid', 'offsets' and optionally 'cyclic', "
            f"got {stencil!r}"
        )
    unknown = set(stencil) - {"grid", "offsets", "cyclic"}
    if unknown:
        raise ValueError(f"x_stencil has unknown keys {sorted(unknown)}")
    grid, offsets, cyclic = gbi_npe.stencil_layout(
        stencil["grid"], stencil["offsets"], stencil.get("cyclic", ())
    )
    return {"grid": grid, "offsets": offsets, "cyclic": cyclic}
