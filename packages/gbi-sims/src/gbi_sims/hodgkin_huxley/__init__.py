"""hodgkin_huxley: the single-compartment neuron model of Pospischil et al. (2008).

Eight parameters ``theta = (g_Na, g_K, g_leak, g_M, tau_max, -V_T, noise,
-E_leak)``, seven summary statistics of the voltage trace, no tractable
likelihood. Two kinds of protocol: the synthetic step (default) and the real
current of an Allen Cell Types recording (ten ship with the package).

Example:
    >>> from gbi_sims import get_task
    >>> task = get_task("hodgkin_huxley")
    >>> obs = task.observation(0)
    >>> obs.theta.tolist() == list(TRUE_THETA), obs.x.shape
    (True, (7,))
    >>> shared = get_task("hodgkin_huxley", recording="all")  # the paper's setup
    >>> shared.protocol.name, shared.n_observations
    ('cell 518290966 sweep 57', 20)
"""

from __future__ import annotations

from gbi_sims.hodgkin_huxley.model import (
    PRIOR_HIGH,
    PRIOR_LOW,
    SPIKE_COUNT_RANGE,
    THETA_NAMES,
    TRUE_THETA,
    HodgkinHuxley,
    make_hodgkin_huxley,
)
from gbi_sims.hodgkin_huxley.protocol import SYNTHETIC_AMPLITUDE, Protocol, synthetic_protocol
from gbi_sims.hodgkin_huxley.recordings import (
    ALLEN_CELL_IDS,
    JUNCTION_POTENTIAL_MV,
    SOMA_AREA_CM2,
    Recording,
    load_recording,
)
from gbi_sims.hodgkin_huxley.statistics import STATISTIC_NAMES, sample_windows, summary_statistics

__all__ = [
    "ALLEN_CELL_IDS",
    "JUNCTION_POTENTIAL_MV",
    "PRIOR_HIGH",
    "PRIOR_LOW",
    "SOMA_AREA_CM2",
    "SPIKE_COUNT_RANGE",
    "STATISTIC_NAMES",
    "SYNTHETIC_AMPLITUDE",
    "THETA_NAMES",
    "TRUE_THETA",
    "HodgkinHuxley",
    "Protocol",
    "Recording",
    "load_recording",
    "make_hodgkin_huxley",
    "sample_windows",
    "summary_statistics",
    "synthetic_protocol",
]
