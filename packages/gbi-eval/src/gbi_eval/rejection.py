"""Exact rejection sampling from an envelope.

To draw from a density f ∝ g(theta) * a(theta) where g is a proposal
(``Envelope``) one can sample and 0 <= a(theta) <= 1: draw theta ~ g and keep
it with probability a(theta). Accepted draws are i.i.d. from f; the
acceptance rate is ∫ g a. ``rejection_sample`` does this in vectorized
batches with ``log_accept_fn(theta) = log a(theta)``.

``rejection`` is the box special case: the power posterior
exp(beta * l(theta)) on a box from the uniform envelope, given an upper bound
``log_likelihood_max`` >= sup l, with a(theta) = exp(beta * (l(theta) - l_max)).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
from scipy import special, stats

from gbi_eval._validation import (
    Seed,
    as_rng,
    check_beta,
    check_box,
    check_positive_int,
    evaluate_log_likelihood,
)
from gbi_eval.diagnostics import RejectionDiagnostics, SamplingResult
from gbi_eval.mcmc import LogLikelihoodFn


class Envelope(Protocol):
    """A proposal distribution that can be sampled."""

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` points, shape (n, d)."""
        ...


class UniformBox:
    """The uniform distribution on the box [low, high].

    Args:
        low: shape (d,).
        high: shape (d,), above ``low``.
    """

    def __init__(self, low: np.ndarray, high: np.ndarray) -> None:
        self.low, self.high = check_box(low, high)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.low + (self.high - self.low) * rng.random((n, self.low.shape[0]))


class TruncatedIsotropicGaussianMixture:
    """A mixture of isotropic Gaussians restricted to a box (and renormalized).

    g(theta) ∝ 1{theta in box} * sum_k w_k N(theta; mu_k, s_k^2 I).
    Sampling picks component k with probability ∝ w_k Z_k, where Z_k is the
    component's mass inside the box, and draws it truncated to the box
    coordinate by coordinate (``scipy.stats.truncnorm``), so no draw is
    wasted outside the box.

    Args:
        weights: unnormalized component weights, shape (k,), >= 0, not all 0.
        means: shape (k, d).
        stds: shape (k,), > 0.
        low: shape (d,).
        high: shape (d,).
    """

    def __init__(
        self,
        weights: np.ndarray,
        means: np.ndarray,
        stds: np.ndarray,
        low: np.ndarray,
        high: np.ndarray,
    ) -> None:
        self.low, self.high = check_box(low, high)
        self.means = np.atleast_2d(np.asarray(means, dtype=np.float64))
        self.stds = np.asarray(stds, dtype=np.float64).reshape(-1)
        weights = np.asarray(weights, dtype=np.float64).reshape(-1)
        k, d = self.means.shape
        if d != self.low.shape[0] or self.stds.shape != (k,) or weights.shape != (k,):
            raise ValueError(
                f"need means (k, {self.low.shape[0]}), stds (k,), weights (k,); got "
                f"{self.means.shape}, {self.stds.shape}, {weights.shape}"
            )
        if not (np.all(self.stds > 0) and np.all(weights >= 0) and np.any(weights > 0)):
            raise ValueError("stds must be > 0 and weights >= 0, not all zero")
        self.a = (self.low - self.means) / self.stds[:, None]  # (k, d) standardized bounds
        self.b = (self.high - self.means) / self.stds[:, None]
        log_mass = np.sum(_log_normal_interval(self.a, self.b), axis=1)  # log Z_k
        with np.errstate(divide="ignore"):
            log_w = np.log(weights) + log_mass
        self.component_probs = np.exp(log_w - special.logsumexp(log_w))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        component = rng.choice(self.component_probs.shape[0], size=n, p=self.component_probs)
        a, b = self.a[component], self.b[component]
        z = stats.truncnorm.rvs(a, b, size=a.shape, random_state=rng)
        return self.means[component] + self.stds[component, None] * z


def _log_normal_interval(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log(Phi(b) - Phi(a)) for a < b, accurate in both tails."""
    # Work in the lower tail: for a > 0, Phi(b) - Phi(a) = Phi(-a) - Phi(-b).
    flip = a > 0
    lo = np.where(flip, -b, a)
    hi = np.where(flip, -a, b)
    log_hi = special.log_ndtr(hi)
    return log_hi + np.log1p(-np.exp(special.log_ndtr(lo) - log_hi))


def rejection_sample(
    envelope: Envelope,
    log_accept_fn: Callable[[np.ndarray], np.ndarray],
    n: int,
    seed: Seed,
    *,
    batch_size: int | None = None,
    max_proposals: int = 100_000_000,
) -> SamplingResult:
    """Exact i.i.d. draws from f ∝ g * exp(log_accept_fn) by rejection.

    Args:
        envelope: the proposal g (``sample(n, rng) -> (n, d)``).
        log_accept_fn: theta (m, d) -> log acceptance probability (m,), <= 0
            (``-inf`` to reject). A value above 0 means the envelope does not
            dominate the target and raises.
        n: draws to return, > 0.
        seed: int or ``numpy.random.Generator``.
        batch_size: proposals per batch; default grows with the observed
            acceptance rate so that few batches are needed.
        max_proposals: give up (RuntimeError) after this many proposals.

    Returns:
        ``SamplingResult`` with ``samples`` (n, d) and ``RejectionDiagnostics``.

    Raises:
        RuntimeError: ``log_accept_fn`` exceeded 0 (not an envelope), or
            ``max_proposals`` was reached.
    """
    n = check_positive_int(n)
    rng = as_rng(seed)
    kept: list[np.ndarray] = []
    n_kept = n_proposals = n_accepted = 0
    size = batch_size if batch_size is not None else max(1024, 2 * n)
    while n_kept < n:
        if n_proposals >= max_proposals:
            raise RuntimeError(
                f"rejection sampling stopped after {n_proposals} proposals with "
                f"{n_accepted} accepted (rate {n_accepted / n_proposals:.2e}); the envelope is "
                "too loose for this target"
            )
        theta = envelope.sample(size, rng)
        log_accept = evaluate_log_likelihood(log_accept_fn, theta)
        worst = float(np.max(log_accept))
        if worst > 1e-9:
            raise RuntimeError(
                f"log acceptance probability {worst:.3g} > 0 at theta = "
                f"{theta[int(np.argmax(log_accept))].tolist()}: the envelope does not dominate "
                "the target"
            )
        accept = np.log(rng.random(size)) < log_accept
        n_proposals += size
        n_accepted += int(accept.sum())
        kept.append(theta[accept])
        n_kept += kept[-1].shape[0]
        if batch_size is None:  # aim the next batch at what is still missing, with margin
            rate = max(n_accepted, 1) / n_proposals
            size = int(min(max(1.2 * (n - n_kept) / rate, 1024), 4_000_000))
    samples = np.concatenate(kept)[:n]
    diagnostics = RejectionDiagnostics(n_proposals, n_accepted, n_accepted / n_proposals)
    return SamplingResult(samples, diagnostics)


def rejection(
    log_likelihood_fn: LogLikelihoodFn,
    low: np.ndarray,
    high: np.ndarray,
    beta: float,
    n: int,
    seed: Seed,
    *,
    log_likelihood_max: float,
    max_proposals: int = 100_000_000,
) -> SamplingResult:
    """Exact draws from the power posterior on a box by rejection from the prior.

    Target p_beta(theta) ∝ 1{theta in box} exp(beta l(theta)); envelope the
    uniform prior; acceptance probability exp(beta (l(theta) - l_max)) <= 1
    because l_max >= sup l. Efficient when the posterior fills a good part of
    the box; the acceptance rate is E_prior[exp(beta (l - l_max))].

    Args:
        log_likelihood_fn: theta (m, d) -> (m,).
        low: lower box corner, shape (d,).
        high: upper box corner, shape (d,).
        beta: inverse temperature, > 0.
        n: draws, > 0.
        seed: int or ``numpy.random.Generator``.
        log_likelihood_max: an upper bound on the log-likelihood over the box.
        max_proposals: see ``rejection_sample``.

    Returns:
        ``SamplingResult`` with ``samples`` (n, d) and ``RejectionDiagnostics``.

    Example:
        >>> loglik = lambda theta: -0.5 * np.sum(theta**2, axis=1)
        >>> result = rejection(loglik, -np.ones(2), np.ones(2), 1.0, 100, seed=0,
        ...                    log_likelihood_max=0.0)
        >>> result.samples.shape
        (100, 2)
    """
    low, high = check_box(low, high)
    beta = check_beta(beta)
    log_likelihood_max = float(log_likelihood_max)
    if not np.isfinite(log_likelihood_max):
        raise ValueError(f"log_likelihood_max must be finite, got {log_likelihood_max}")

    def log_accept(theta: np.ndarray) -> np.ndarray:
        return beta * (evaluate_log_likelihood(log_likelihood_fn, theta) - log_likelihood_max)

    return rejection_sample(UniformBox(low, high), log_accept, n, seed, max_proposals=max_proposals)
