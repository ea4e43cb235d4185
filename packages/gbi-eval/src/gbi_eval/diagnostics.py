"""Convergence diagnostics of MCMC runs, and the result type every sampler returns.

Split R-hat and bulk ESS are arviz's implementations (rank-normalized split
R-hat and bulk effective sample size of Vehtari et al. 2021), computed per
parameter over a chains array of shape (n_chains, n_draws, d).

A run is flagged with a ``ConvergenceWarning`` when any parameter has
R-hat > 1.01 or bulk ESS < n / 10 (``n`` the number of draws asked for).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: R-hat above this flags a run.
RHAT_THRESHOLD = 1.01
#: bulk ESS below this fraction of the requested draws flags a run.
ESS_FRACTION = 0.1


class ConvergenceWarning(UserWarning):
    """An MCMC run whose R-hat or ESS says its draws may not represent the target."""


@dataclass(frozen=True)
class MCMCDiagnostics:
    """Diagnostics of one MCMC run (after burn-in).

    Attributes:
        method: ``"rwmh"`` or ``"parallel_tempering"``.
        n_chains: chains the diagnostics were computed over (for parallel
            tempering: the independent ladders' target-temperature chains).
        n_draws: kept draws per chain.
        n_target: draws the caller asked for (the ESS threshold is n_target / 10).
        acceptance_rate: mean Metropolis–Hastings acceptance probability after
            burn-in (for parallel tempering: of the target-temperature rung).
        acceptance_per_chain: shape (n_chains,).
        rhat: rank-normalized split R-hat per parameter, shape (d,).
        ess_bulk: bulk effective sample size per parameter, shape (d,).
        swap_rates: parallel tempering only: acceptance rate of swaps between
            rungs r and r + 1 (hot to cold), shape (n_rungs - 1,).
        rung_acceptance: parallel tempering only: local-move acceptance rate per
            rung, shape (n_rungs,).
        betas: parallel tempering only: the ladder, hot to cold, shape (n_rungs,).
        notes: how the diagnostics were computed where it is not the default
            (e.g. two_moons' chains folded onto one side of the symmetry).
    """

    method: str
    n_chains: int
    n_draws: int
    n_target: int
    acceptance_rate: float
    acceptance_per_chain: np.ndarray
    rhat: np.ndarray
    ess_bulk: np.ndarray
    swap_rates: np.ndarray | None = None
    rung_acceptance: np.ndarray | None = None
    betas: np.ndarray | None = None
    notes: str = ""

    @property
    def problems(self) -> tuple[str, ...]:
        """Human-readable reasons the run is flagged; empty when it passes."""
        out = []
        bad_rhat = ~(self.rhat <= RHAT_THRESHOLD)  # NaN R-hat counts as bad
        if np.any(bad_rhat):
            out.append(
                f"R-hat > {RHAT_THRESHOLD} for parameter(s) {np.flatnonzero(bad_rhat).tolist()}"
                f" (max {np.nanmax(self.rhat) if np.any(np.isfinite(self.rhat)) else np.nan:.4f})"
            )
        threshold = ESS_FRACTION * self.n_target
        bad_ess = ~(self.ess_bulk >= threshold)
        if np.any(bad_ess):
            out.append(
                f"bulk ESS < n/10 = {threshold:.0f} for parameter(s) "
                f"{np.flatnonzero(bad_ess).tolist()} (min {np.nanmin(self.ess_bulk):.0f})"
            )
        return tuple(out)

    @property
    def converged(self) -> bool:
        """True when R-hat <= 1.01 and bulk ESS >= n / 10 for every parameter."""
        return not self.problems

    def summary(self) -> dict[str, Any]:
        """A JSON-able dict of the diagnostics."""
        out: dict[str, Any] = {
            "method": self.method,
            "n_chains": self.n_chains,
            "n_draws": self.n_draws,
            "acceptance_rate": self.acceptance_rate,
            "rhat_max": float(np.max(self.rhat)),
            "ess_bulk_min": float(np.min(self.ess_bulk)),
            "converged": self.converged,
        }
        if self.swap_rates is not None:
            out["swap_rate_min"] = float(np.min(self.swap_rates))
            out["swap_rate_mean"] = float(np.mean(self.swap_rates))
        return out


@dataclass(frozen=True)
class RejectionDiagnostics:
    """Diagnostics of a rejection sampler (its draws are exact and independent).

    Attributes:
        n_proposals: proposals drawn from the envelope.
        n_accepted: proposals accepted (>= the draws returned).
        acceptance_rate: n_accepted / n_proposals.
    """

    n_proposals: int
    n_accepted: int
    acceptance_rate: float
    method: str = "rejection"

    @property
    def converged(self) -> bool:
        """Always True: rejection draws are exact."""
        return True

    def summary(self) -> dict[str, Any]:
        """A JSON-able dict of the diagnostics."""
        return {
            "method": self.method,
            "n_proposals": self.n_proposals,
            "acceptance_rate": self.acceptance_rate,
            "converged": True,
        }


@dataclass(frozen=True)
class SamplingResult:
    """Draws from a target together with the sampler's diagnostics.

    Attributes:
        samples: shape (n, d), shuffled across chains so any prefix is a fair subsample.
        diagnostics: ``MCMCDiagnostics`` or ``RejectionDiagnostics``.
        chains: MCMC only: the kept draws by chain, shape (n_chains, n_draws, d)
            (for parallel tempering: the target-temperature rung of each ladder).
    """

    samples: np.ndarray
    diagnostics: MCMCDiagnostics | RejectionDiagnostics
    chains: np.ndarray | None = field(default=None, repr=False)


def _arviz() -> Any:
    with warnings.catch_warnings():
        # arviz 0.x announces its 1.0 refactor with a FutureWarning on import.
        warnings.simplefilter("ignore", FutureWarning)
        import arviz

    return arviz


def rhat_and_ess(chains: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank-normalized split R-hat and bulk ESS per parameter (arviz).

    Args:
        chains: shape (n_chains, n_draws, d), n_draws >= 4.

    Returns:
        ``(rhat, ess_bulk)``, each of shape (d,). A parameter that never moves
        gets R-hat NaN and ESS NaN (arviz's convention), which counts as failing.
        arviz needs two chains for R-hat: a single chain is cut into its two
        halves first (so its R-hat compares four quarters).
    """
    chains = np.asarray(chains, dtype=np.float64)
    if chains.ndim != 3 or chains.shape[1] < 4:
        raise ValueError(f"chains must have shape (n_chains, n_draws >= 4, d), got {chains.shape}")
    az = _arviz()
    d = chains.shape[2]
    for_rhat = chains
    if chains.shape[0] == 1:
        half = chains.shape[1] // 2
        for_rhat = np.stack([chains[0, :half], chains[0, half : 2 * half]])
    rhat = np.empty(d)
    ess = np.empty(d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant chains: NaN, reported
        for j in range(d):
            rhat[j] = float(az.rhat(for_rhat[:, :, j], method="rank"))
            ess[j] = float(az.ess(chains[:, :, j], method="bulk"))
    return rhat, ess


def mcmc_diagnostics(
    chains: np.ndarray,
    acceptance_per_chain: np.ndarray,
    *,
    n_target: int,
    method: str,
    swap_rates: np.ndarray | None = None,
    rung_acceptance: np.ndarray | None = None,
    betas: np.ndarray | None = None,
    notes: str = "",
    warn: bool = True,
) -> MCMCDiagnostics:
    """Diagnose kept MCMC draws and warn (``ConvergenceWarning``) when they fail.

    Args:
        chains: kept draws, shape (n_chains, n_draws, d).
        acceptance_per_chain: mean acceptance probability per chain, shape (n_chains,).
        n_target: draws asked for; ESS below n_target / 10 is flagged.
        method: the sampler's name, stored in the diagnostics.
        swap_rates: parallel tempering swap acceptance per adjacent pair.
        rung_acceptance: parallel tempering local acceptance per rung.
        betas: parallel tempering ladder.
        notes: stored as is.
        warn: emit a ``ConvergenceWarning`` when R-hat > 1.01 or ESS < n_target / 10.

    Returns:
        The ``MCMCDiagnostics``.
    """
    rhat, ess = rhat_and_ess(chains)
    acceptance_per_chain = np.asarray(acceptance_per_chain, dtype=np.float64)
    diag = MCMCDiagnostics(
        method=method,
        n_chains=int(chains.shape[0]),
        n_draws=int(chains.shape[1]),
        n_target=int(n_target),
        acceptance_rate=float(np.mean(acceptance_per_chain)),
        acceptance_per_chain=acceptance_per_chain,
        rhat=rhat,
        ess_bulk=ess,
        swap_rates=swap_rates,
        rung_acceptance=rung_acceptance,
        betas=betas,
        notes=notes,
    )
    if warn and diag.problems:
        warnings.warn(
            f"{method}: {'; '.join(diag.problems)}. Run longer chains (more burn-in, "
            "thinning or iterations) before trusting these draws.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return diag
