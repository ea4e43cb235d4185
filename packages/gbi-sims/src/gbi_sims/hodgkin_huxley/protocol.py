"""Current-clamp protocols: what drives the model and where the statistics look."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gbi_sims.hodgkin_huxley.statistics import sample_windows

#: the synthetic step: 5e-4 uA through a soma of radius 70 um, as a density (~3.25 uA/cm^2)
SYNTHETIC_AMPLITUDE = 5e-4 / (math.pi * (70e-4) ** 2)


@dataclass(frozen=True, eq=False)
class Protocol:
    """A current-clamp protocol for the single-compartment model.

    The simulated trace has T = ``current.size`` samples, sample k at
    t_k = k ``dt``; sample 0 is ``v0`` and ``current[k]`` drives the step from
    sample k to k + 1. The statistics see the samples before ``t_on`` as rest
    and those strictly inside (``t_on``, ``t_off``) as the stimulus window.

    Attributes:
        current: injected current density in uA/cm^2, shape (T,), float64
            (stored read-only).
        dt: integration and sampling step in ms.
        v0: initial membrane potential in mV (gates start at steady state for it).
        t_on: stimulus start in ms (for the statistics).
        t_off: stimulus end in ms (for the statistics).
        name: a label, e.g. ``"synthetic"`` or ``"cell 518290966 sweep 57"``.

    Example:
        >>> p = synthetic_protocol()
        >>> p.n_samples, p.duration, round(float(p.current.max()), 3)
        (12001, 120.0, 3.248)
    """

    current: np.ndarray
    dt: float
    v0: float
    t_on: float
    t_off: float
    name: str = "custom"

    def __post_init__(self) -> None:
        current = np.array(self.current, dtype=np.float64)  # a private copy
        if current.ndim != 1 or current.size < 3:
            raise ValueError(
                f"current must be a 1-D array of at least 3 samples (uA/cm^2), got shape "
                f"{current.shape}"
            )
        if not np.all(np.isfinite(current)):
            raise ValueError("current must be finite everywhere")
        current.flags.writeable = False
        for field_name in ("dt", "v0", "t_on", "t_off"):
            value = getattr(self, field_name)
            if isinstance(value, (bool, np.bool_)) or not np.isscalar(value):
                raise ValueError(f"{field_name} must be a real number, got {value!r}")
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"{field_name} must be finite, got {value}")
            object.__setattr__(self, field_name, value)
        if self.dt <= 0:
            raise ValueError(f"dt must be > 0 ms, got {self.dt}")
        object.__setattr__(self, "current", current)
        sample_windows(current.size, self.dt, self.t_on, self.t_off)  # validates the windows

    @property
    def n_samples(self) -> int:
        """T, the number of samples of a simulated trace (including sample 0)."""
        return int(self.current.size)

    @property
    def duration(self) -> float:
        """(T - 1) dt, in ms."""
        return (self.n_samples - 1) * self.dt

    @property
    def time(self) -> np.ndarray:
        """Sample times k dt in ms, shape (T,)."""
        return np.arange(self.n_samples) * self.dt

    @property
    def windows(self) -> tuple[int, int, int]:
        """(n_rest, w0, w1): rest samples [0, n_rest), stimulus samples [w0, w1)."""
        return sample_windows(self.n_samples, self.dt, self.t_on, self.t_off)

    def __repr__(self) -> str:
        return (
            f"Protocol(name={self.name!r}, n_samples={self.n_samples}, dt={self.dt}, "
            f"v0={self.v0}, t_on={self.t_on}, t_off={self.t_off})"
        )


def synthetic_protocol(
    *,
    duration: float = 120.0,
    dt: float = 0.01,
    v0: float = -70.0,
    t_on: float = 10.0,
    t_off: float = 110.0,
    amplitude: float = SYNTHETIC_AMPLITUDE,
) -> Protocol:
    """The synthetic step protocol (defaults: the one of DESIGN.md).

    120 ms at dt = 0.01 ms (12001 samples), V_0 = -70 mV, and a step of
    5e-4 / (pi (70e-4)^2) ~ 3.25 uA/cm^2 on samples round(t_on/dt) <= k <
    round(t_off/dt), i.e. from 10 ms to 110 ms.

    Args:
        duration: ms; T = round(duration / dt) + 1 samples.
        dt: ms.
        v0: initial voltage in mV.
        t_on: step start in ms.
        t_off: step end in ms.
        amplitude: step height in uA/cm^2.
    """
    n_samples = round(duration / dt) + 1
    current = np.zeros(n_samples)
    current[round(t_on / dt) : round(t_off / dt)] = amplitude
    return Protocol(current=current, dt=dt, v0=v0, t_on=t_on, t_off=t_off, name="synthetic")
