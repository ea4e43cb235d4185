"""Real current-clamp recordings: the ten Allen Cell Types sweeps shipped with gbi-sims.

Data: Allen Institute for Brain Science (2016), Allen Cell Types Database,
http://celltypes.brain-map.org/, as extracted by Gao et al. (2023) (MIT);
see ``data/README.md`` beside this module. Each file holds a 1450 ms window
(72500 samples at 0.02 ms) of the recorded voltage (mV) and the injected
current (uA), with the step's ``t_on_ms`` / ``t_off_ms``.

To drive the single-compartment model, the current is divided by the cell's
soma area (``SOMA_AREA_CM2``) and the liquid junction potential (-14 mV) is
added to the recorded voltage; V_0 is the first shifted sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources

import numpy as np

from gbi_sims.hodgkin_huxley.protocol import Protocol
from gbi_sims.hodgkin_huxley.statistics import summary_statistics

#: liquid junction potential added to the recorded voltage, mV
JUNCTION_POTENTIAL_MV = -14.0

#: cell id -> (sweep number, soma area A_soma in cm^2), as in Gao et al. (2023)
SOMA_AREA_CM2: dict[int, tuple[int, float]] = {
    518290966: (57, 0.0234 / 126),
    509881736: (39, 0.0153 / 184),
    566517779: (46, 0.0195 / 198),
    567399060: (38, 0.0259 / 161),
    569469018: (44, 0.033 / 403),
    532571720: (42, 0.0139 / 127),
    555060623: (34, 0.0294 / 320),
    534524026: (29, 0.027 / 209),
    532355382: (33, 0.0199 / 230),
    526950199: (37, 0.0186 / 218),
}
#: the shipped cells, in the order of the table above; the first one's protocol
#: (518290966, sweep 57) is the shared protocol of the paper's setup
ALLEN_CELL_IDS: tuple[int, ...] = tuple(SOMA_AREA_CM2)


@dataclass(frozen=True, eq=False)
class Recording:
    """A current-clamp recording and what the model needs to reproduce it.

    Attributes:
        voltage_mV: recorded membrane potential in mV, shape (T,), before the
            junction-potential correction (stored as read-only float64).
        current_uA: injected current in uA, shape (T,).
        dt_ms: sampling step in ms.
        t_on_ms: stimulus start in ms, in the recording's own time (sample k at k dt).
        t_off_ms: stimulus end in ms.
        soma_area_cm2: A_soma; current density = current_uA / soma_area_cm2.
        junction_potential_mV: added to the recorded voltage (-14 mV for the
            Allen data).
        name: a label.

    Example:
        >>> rec = load_recording(518290966)
        >>> rec.voltage.shape, rec.dt_ms, rec.t_on_ms
        ((72500,), 0.02, 205.0)
    """

    voltage_mV: np.ndarray
    current_uA: np.ndarray
    dt_ms: float
    t_on_ms: float
    t_off_ms: float
    soma_area_cm2: float
    junction_potential_mV: float = JUNCTION_POTENTIAL_MV
    name: str = "recording"

    def __post_init__(self) -> None:
        voltage = np.array(self.voltage_mV, dtype=np.float64)
        current = np.array(self.current_uA, dtype=np.float64)
        if voltage.ndim != 1 or voltage.shape != current.shape:
            raise ValueError(
                "voltage_mV and current_uA must be 1-D arrays of one length, got shapes "
                f"{voltage.shape} and {current.shape}"
            )
        if not (np.all(np.isfinite(voltage)) and np.all(np.isfinite(current))):
            raise ValueError(f"recording {self.name!r} has non-finite voltage or current samples")
        area = float(self.soma_area_cm2)
        if not (math.isfinite(area) and area > 0):
            raise ValueError(f"soma_area_cm2 must be a positive area in cm^2, got {area}")
        voltage.flags.writeable = False
        current.flags.writeable = False
        object.__setattr__(self, "voltage_mV", voltage)
        object.__setattr__(self, "current_uA", current)
        object.__setattr__(self, "soma_area_cm2", area)
        for field_name in ("dt_ms", "t_on_ms", "t_off_ms", "junction_potential_mV"):
            object.__setattr__(self, field_name, float(getattr(self, field_name)))
        self.protocol()  # validates dt and the windows

    @property
    def voltage(self) -> np.ndarray:
        """The corrected voltage ``voltage_mV + junction_potential_mV``, shape (T,)."""
        return self.voltage_mV + self.junction_potential_mV

    def protocol(self) -> Protocol:
        """The protocol that reproduces this recording in the model.

        Current density ``current_uA / soma_area_cm2`` (uA/cm^2), the recording's
        dt, t_on and t_off, and V_0 = the first corrected voltage sample.
        """
        return Protocol(
            current=self.current_uA / self.soma_area_cm2,
            dt=self.dt_ms,
            v0=float(self.voltage[0]),
            t_on=self.t_on_ms,
            t_off=self.t_off_ms,
            name=self.name,
        )

    def statistics(self) -> np.ndarray:
        """The 7 summary statistics of the corrected voltage, shape (7,)."""
        return summary_statistics(self.voltage, self.dt_ms, self.t_on_ms, self.t_off_ms)

    def __repr__(self) -> str:
        return (
            f"Recording(name={self.name!r}, n_samples={self.voltage_mV.size}, "
            f"dt_ms={self.dt_ms}, t_on_ms={self.t_on_ms}, t_off_ms={self.t_off_ms}, "
            f"soma_area_cm2={self.soma_area_cm2:.4g})"
        )


def load_recording(cell_id: int) -> Recording:
    """Load one of the shipped Allen recordings (``ALLEN_CELL_IDS``).

    Args:
        cell_id: an Allen cell id, e.g. 518290966.

    Returns:
        The recording, with its soma area and the -14 mV junction potential.
    """
    if isinstance(cell_id, (bool, np.bool_)) or not isinstance(cell_id, (int, np.integer)):
        raise ValueError(f"cell_id must be an int, one of {list(ALLEN_CELL_IDS)}; got {cell_id!r}")
    if int(cell_id) not in SOMA_AREA_CM2:
        raise ValueError(
            f"no shipped recording for cell {cell_id}; choose one of {list(ALLEN_CELL_IDS)}"
        )
    cell_id = int(cell_id)
    sweep, area = SOMA_AREA_CM2[cell_id]
    resource = (
        resources.files(__package__).joinpath("data").joinpath(f"cell_{cell_id}_sweep_{sweep}.npz")
    )
    with resource.open("rb") as handle, np.load(handle, allow_pickle=False) as data:
        return Recording(
            voltage_mV=data["voltage_mV"],
            current_uA=data["current_uA"],
            dt_ms=float(data["dt_ms"]),
            t_on_ms=float(data["t_on_ms"]),
            t_off_ms=float(data["t_off_ms"]),
            soma_area_cm2=area,
            name=f"cell {cell_id} sweep {sweep}",
        )
