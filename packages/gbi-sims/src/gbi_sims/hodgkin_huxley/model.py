"""The hodgkin_huxley task: Pospischil et al. (2008) single compartment, 8 parameters.

As used by Goncalves et al. (2020) and Gao et al. (2023) (paper App. E; the
binding facts are in DESIGN.md)::

    theta = (g_Na, g_K, g_leak, g_M, tau_max, -V_T, noise, -E_leak)
    C dV/dt = g_Na m^3 h (E_Na - V) + (g_K n^4 + g_M p) (E_K - V)
              + g_leak (E_leak - V) + I(t) + noise * white noise

with C = 1 uF/cm^2, E_Na = 53 mV, E_K = -107 mV, V_T = -theta_6,
E_leak = -theta_8, the Na/K rate functions shifted by V_T, and the M-current
gate p with p_inf = 1 / (1 + exp(-(V + 35) / 10)) and
tau_p = tau_max / (3.3 exp(0.05 (V + 35)) + exp(-0.05 (V + 35))). Exponential
Euler with step dt for V and every gate; the noise enters V_inf as
noise * N(0, 1) / sqrt(dt) at each step (``gbi_sims._kernels.hodgkin_huxley``).
x is the 7 summary statistics of ``statistics.py``. There is no tractable
likelihood: ``log_likelihood`` raises ``NotImplementedError``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from gbi_sims._kernels import hodgkin_huxley as _k
from gbi_sims._registry import register_task
from gbi_sims._rng import make_key
from gbi_sims._task import Observation, Seed, Task
from gbi_sims._validation import check_count
from gbi_sims.hodgkin_huxley.protocol import Protocol, synthetic_protocol
from gbi_sims.hodgkin_huxley.recordings import ALLEN_CELL_IDS, Recording, load_recording
from gbi_sims.hodgkin_huxley.statistics import STATISTIC_NAMES
from gbi_sims.prior import BoxUniform

THETA_NAMES: tuple[str, ...] = (
    "g_Na",
    "g_K",
    "g_leak",
    "g_M",
    "tau_max",
    "-V_T",
    "noise",
    "-E_leak",
)
#: the prior box (mS/cm^2 for conductances, ms for tau_max, mV for -V_T and -E_leak, uA/cm^2 noise)
PRIOR_LOW: tuple[float, ...] = (0.5, 1e-4, 1e-4, 1e-4, 50.0, 40.0, 1e-4, 35.0)
PRIOR_HIGH: tuple[float, ...] = (80.0, 15.0, 0.6, 0.6, 3000.0, 90.0, 0.15, 100.0)
#: the documented ground truth of the synthetic checks (observation 0 of the synthetic task)
TRUE_THETA: tuple[float, ...] = (50.0, 5.0, 0.1, 0.07, 600.0, 60.0, 0.1, 70.0)
#: synthetic observations keep prior draws whose spike count c has low < c < high
SPIKE_COUNT_RANGE: tuple[int, int] = (5, 40)
#: prior draws are simulated in blocks of this size when looking for observations
_DRAW_BLOCK = 64
_MAX_DRAW_BLOCKS = 64


class HodgkinHuxley(Task):
    """The Hodgkin–Huxley task on one current-clamp protocol.

    Args:
        protocol: what drives the model; default ``synthetic_protocol()``.
        recordings: real recordings whose statistics are the first
            observations (theta unknown: NaN). Each recording's statistics use
            its own t_on / t_off, whatever the protocol.
        n_synthetic_observations: how many simulated observations follow the
            recordings. Without recordings the first is the ground truth
            ``TRUE_THETA``; the others are prior draws kept when
            5 < spike count < 40.

    Observations (``observation(i)``, fixed and reproducible):
        - ``0 .. len(recordings) - 1``: the recordings, in the given order.
        - without recordings, next: ``TRUE_THETA``, x =
          ``task.simulate(TRUE_THETA[None], seed=observation_seed)[0]``.
        - then the accepted prior draws, in draw order: candidate j is row j
          of the prior samples of ``numpy.random.default_rng(observation_seed + 1)``
          taken 64 at a time with ``prior.sample(64, rng)``, simulated with the
          stream of ``seed = observation_seed + 2`` as row j; it is kept when all
          statistics are finite and 5 < spike count < 40.

    Example:
        >>> task = HodgkinHuxley()
        >>> theta = np.array([TRUE_THETA])
        >>> x = task.simulate(theta, seed=0)
        >>> x.shape, task.simulate_traces(theta, seed=0).shape
        ((1, 7), (1, 12001))
    """

    name = "hodgkin_huxley"
    theta_names = THETA_NAMES
    x_dim = len(STATISTIC_NAMES)
    x_names = STATISTIC_NAMES
    #: rows per chunk (memory: the per-thread trace buffers, not the chunk, grow with T)
    default_chunk_size = 512

    def __init__(
        self,
        protocol: Protocol | None = None,
        *,
        recordings: Sequence[Recording] = (),
        n_synthetic_observations: int = 10,
    ) -> None:
        if protocol is None:
            protocol = synthetic_protocol()
        if not isinstance(protocol, Protocol):
            raise ValueError(f"protocol must be a Protocol, got {type(protocol).__name__}")
        recordings = tuple(recordings)
        for rec in recordings:
            if not isinstance(rec, Recording):
                raise ValueError(f"recordings must be Recording objects, got {type(rec).__name__}")
        n_synthetic = check_count(n_synthetic_observations, what="n_synthetic_observations")
        self.prior = BoxUniform(PRIOR_LOW, PRIOR_HIGH)
        self.protocol = protocol
        self.recordings = recordings
        self.n_synthetic_observations = n_synthetic
        self.n_observations = len(recordings) + n_synthetic
        self._windows = protocol.windows
        self._synthetic: list[Observation] | None = None

    @classmethod
    def from_recording(cls, recording: Recording) -> HodgkinHuxley:
        """The task on a recording's own protocol; observation 0 is its statistics.

        Observations 1..10 are simulated on that protocol (prior draws kept
        when 5 < spike count < 40).

        Example (any recording: voltage, current, dt, soma area, junction potential):
            >>> arrays = load_recording(518290966)  # or your own arrays
            >>> rec = Recording(
            ...     voltage_mV=arrays.voltage_mV, current_uA=arrays.current_uA, dt_ms=0.02,
            ...     t_on_ms=205.0, t_off_ms=1204.98, soma_area_cm2=0.0234 / 126,
            ...     junction_potential_mV=-14.0, name="my cell",
            ... )
            >>> task = HodgkinHuxley.from_recording(rec)
            >>> task.n_observations, float(task.observation(0).x[0])  # 12 spikes
            (11, 12.0)
        """
        if not isinstance(recording, Recording):
            raise ValueError(f"recording must be a Recording, got {type(recording).__name__}")
        return cls(recording.protocol(), recordings=(recording,))

    @classmethod
    def allen_shared(cls) -> HodgkinHuxley:
        """The paper's setup (Gao et al. 2023): one model, ten real observations.

        The protocol of cell 518290966 sweep 57; observations 0..9 are the
        statistics of the ten shipped recordings (``ALLEN_CELL_IDS`` order, each
        with its own t_on / t_off), observations 10..19 prior draws simulated on
        the shared protocol and kept when 5 < spike count < 40.
        """
        recordings = tuple(load_recording(cell) for cell in ALLEN_CELL_IDS)
        return cls(recordings[0].protocol(), recordings=recordings)

    # -- simulation --------------------------------------------------------

    def _check_theta_domain(self, theta: np.ndarray) -> None:
        self._require_inside_prior(theta)

    def _simulate_into(
        self, theta: np.ndarray, key: np.uint64, row_offset: int, out: np.ndarray
    ) -> None:
        n_rest, w0, w1 = self._windows
        p = self.protocol
        workers = max(1, min(theta.shape[0], numba.get_num_threads()))
        buffers = np.empty((workers, p.n_samples), dtype=np.float64)
        _k.simulate_statistics(
            theta, p.current, p.dt, p.v0, n_rest, w0, w1, key, row_offset, buffers, out
        )

    def simulate_traces(self, theta: np.ndarray, seed: Seed) -> np.ndarray:
        """Voltage traces for posterior-predictive plots.

        The same kernel and random streams as ``simulate``: for the same theta
        and seed, ``summary_statistics(traces, p.dt, p.t_on, p.t_off)`` equals
        ``simulate(theta, seed)`` row for row (``p = task.protocol``).

        Args:
            theta: shape (n, 8), inside the prior box.
            seed: int or ``numpy.random.Generator``, as for ``simulate``.

        Returns:
            shape (n, T) float64, in mV at ``task.protocol.time``; a diverged
            row is NaN from the first non-finite sample on.
        """
        theta = self.check_theta(theta)
        p = self.protocol
        out = np.empty((theta.shape[0], p.n_samples), dtype=np.float64)
        _k.simulate_traces(theta, p.current, p.dt, p.v0, make_key(seed), 0, out)
        return out

    # -- observations ------------------------------------------------------

    def observation(self, i: int) -> Observation:
        """Fixed observation ``i`` (0 <= i < n_observations); see the class docstring."""
        i = self.check_observation_index(i)
        if i < len(self.recordings):
            rec = self.recordings[i]
            return Observation(
                index=i,
                theta=np.full(self.theta_dim, np.nan),
                x=rec.statistics(),
                description=(
                    f"{self.name} observation {i}: {rec.name}, the statistics of the recorded "
                    f"voltage shifted by {rec.junction_potential_mV:g} mV (its own t_on="
                    f"{rec.t_on_ms:g} ms, t_off={rec.t_off_ms:g} ms); theta unknown (NaN)"
                ),
            )
        if self._synthetic is None:
            self._synthetic = self._make_synthetic_observations()
        return self._synthetic[i - len(self.recordings)]

    def _make_synthetic_observations(self) -> list[Observation]:
        first = len(self.recordings)
        found: list[Observation] = []
        if not self.recordings and self.n_synthetic_observations > 0:
            theta = np.array([TRUE_THETA])
            x = self.simulate_rows(theta, make_key(self.observation_seed), row_offset=0, warn=False)
            found.append(
                Observation(
                    index=first,
                    theta=theta[0],
                    x=x[0],
                    description=(
                        f"{self.name} observation {first} on protocol {self.protocol.name!r}: "
                        f"the ground truth TRUE_THETA, x = simulate(TRUE_THETA[None], "
                        f"seed={self.observation_seed})[0]"
                    ),
                )
            )
        low, high = SPIKE_COUNT_RANGE
        rng = np.random.default_rng(self.observation_seed + 1)
        key = make_key(self.observation_seed + 2)
        for block in range(_MAX_DRAW_BLOCKS):
            if len(found) >= self.n_synthetic_observations:
                break
            thetas = self.prior.sample(_DRAW_BLOCK, seed=rng)
            xs = self.simulate_rows(thetas, key, row_offset=block * _DRAW_BLOCK, warn=False)
            keep = np.all(np.isfinite(xs), axis=1) & (xs[:, 0] > low) & (xs[:, 0] < high)
            for j in np.flatnonzero(keep):
                if len(found) >= self.n_synthetic_observations:
                    break
                row = block * _DRAW_BLOCK + int(j)
                index = first + len(found)
                found.append(
                    Observation(
                        index=index,
                        theta=thetas[j].copy(),
                        x=xs[j].copy(),
                        description=(
                            f"{self.name} observation {index} on protocol "
                            f"{self.protocol.name!r}: prior draw {row} of "
                            f"default_rng({self.observation_seed + 1}) (blocks of {_DRAW_BLOCK}), "
                            f"simulated with seed {self.observation_seed + 2} as row {row}; "
                            f"kept because {low} < spike count < {high}"
                        ),
                    )
                )
        if len(found) < self.n_synthetic_observations:
            raise ValueError(
                f"protocol {self.protocol.name!r} gave only {len(found)} prior draws with "
                f"{low} < spike count < {high} in {_MAX_DRAW_BLOCKS * _DRAW_BLOCK} simulations; "
                f"{self.n_synthetic_observations} synthetic observations were asked for"
            )
        return found

    def __repr__(self) -> str:
        return (
            f"HodgkinHuxley(protocol={self.protocol.name!r}, n_samples={self.protocol.n_samples}, "
            f"recordings={len(self.recordings)}, n_observations={self.n_observations})"
        )


@register_task("hodgkin_huxley")
def make_hodgkin_huxley(recording: int | str | None = None) -> HodgkinHuxley:
    """Build the hodgkin_huxley task (``get_task("hodgkin_huxley", ...)``).

    Args:
        recording: ``None`` (default) for the synthetic protocol; an Allen cell
            id from ``ALLEN_CELL_IDS`` for that recording's protocol with its
            statistics as observation 0; ``"all"`` for the paper's shared-protocol
            setup (``HodgkinHuxley.allen_shared()``).

    Example:
        >>> from gbi_sims import get_task
        >>> get_task("hodgkin_huxley", recording=518290966).observation(0).x.shape
        (7,)
    """
    if recording is None:
        return HodgkinHuxley()
    if isinstance(recording, str):
        if recording == "all":
            return HodgkinHuxley.allen_shared()
        raise ValueError(
            f"recording must be None, 'all' or a cell id in {list(ALLEN_CELL_IDS)}; "
            f"got {recording!r}"
        )
    return HodgkinHuxley.from_recording(load_recording(recording))
