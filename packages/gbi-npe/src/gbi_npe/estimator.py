"""Conditional density estimators: the generic contract and the NPE case.

``ConditionalDensityEstimator`` is a density of ``inputs`` given ``context``:

    log_prob(inputs (b, d), context (b, c)) -> (b,)
    sample(n, context (m, c), generator)    -> (m, n, d)

It is assembled from three parts: an ``InputTransform`` (optional box logit
and standardization), a ``ContextEncoder`` (standardization, embedding, beta
features) and a core density (``SplineFlow`` or ``MixtureDensityNetwork``)
picked by the type of the density config (``CORE_BUILDERS``).

The NPE case (``make_npe``) is the same object with inputs = theta and
context = ``[x, beta]``; the generic case (``make_conditional_estimator``)
serves e.g. an NLE (inputs = x, context = theta). Tensors in and out are
float64; the networks run in float32.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from .config import (
    DensityConfig,
    EmbeddingConfig,
    EstimatorSpec,
    MDNConfig,
    SplineFlowConfig,
)
from .context import ContextEncoder, custom_output_features
from .flows import SplineFlow
from .mdn import MixtureDensityNetwork
from .transforms import (
    InputTransform,
    feature_stats,
    shared_feature_stats,
    standardization_stats,
)

CoreBuilder = Callable[[int, int, DensityConfig], nn.Module]

#: density config type -> constructor ``(features, context_features, config) -> core``.
CORE_BUILDERS: dict[type, CoreBuilder] = {
    SplineFlowConfig: SplineFlow,
    MDNConfig: MixtureDensityNetwork,
}

#: rows pushed through the network at once when sampling.
DEFAULT_CHUNK_ROWS = 1 << 18


class ConditionalDensityEstimator(nn.Module):
    """q(inputs | context), with fixed transforms around a learned core.

    Build it with ``make_npe`` or ``make_conditional_estimator`` (or directly
    from an ``EstimatorSpec``); train it with ``gbi_npe.fit`` /
    ``gbi_npe.fit_conditional``, which also set the standardization.

    Args:
        spec: dimensions, density, embedding, beta features, box.
        embedding_net: the user module when ``spec.embedding.kind == "custom"``.

    Attributes:
        spec: the ``EstimatorSpec`` (saved in file headers).
        input_transform: box logit + standardization of the inputs.
        context_encoder: raw context -> network features.
        core: the learned density of standardized inputs.
    """

    def __init__(self, spec: EstimatorSpec, embedding_net: nn.Module | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.input_transform = InputTransform(spec.inputs_features, spec.low, spec.high)
        self.context_encoder = ContextEncoder(spec, embedding_net)
        builder = CORE_BUILDERS[type(spec.density)]
        self.core = builder(
            spec.inputs_features, self.context_encoder.output_features, spec.density
        )
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self.register_buffer("beta_bounds", torch.full((2,), math.nan, dtype=torch.float64))

    # -- facts -------------------------------------------------------------------------
    @property
    def inputs_features(self) -> int:
        return self.spec.inputs_features

    @property
    def context_features(self) -> int:
        return self.spec.context_features

    @property
    def beta_conditioned(self) -> bool:
        return self.spec.beta_conditioned

    @property
    def is_fitted(self) -> bool:
        """True once the standardization has been set (by a first ``fit``)."""
        return bool(self.fitted)

    @property
    def beta_range(self) -> tuple[float, float] | None:
        """(beta_min, beta_max) seen in training, or ``None`` (not trained / not beta)."""
        low, high = (float(v) for v in self.beta_bounds)
        if math.isnan(low):
            return None
        return low, high

    @property
    def device(self) -> torch.device:
        return self.beta_bounds.device

    # -- standardization -----------------------------------------------------------------
    @torch.no_grad()
    def set_standardization(
        self,
        inputs: np.ndarray,
        context: np.ndarray,
        weights: np.ndarray | None = None,
        beta_sample: np.ndarray | None = None,
    ) -> None:
        """Set the standardization from (weighted) training data and mark as fitted.

        Args:
            inputs: shape (N, d), inside the box if there is one.
            context: shape (N, x_features): the ``x`` part of the context only.
            weights: shape (N,), non-negative (normalized here), or ``None``.
            beta_sample: temperatures representative of training (k,), for the
                beta-feature statistics; required iff beta-conditioned.
        """
        device = self.device
        unbounded = self.input_transform.unbounded(
            torch.as_tensor(inputs, dtype=torch.float64, device=device)
        )
        # Heavy-tailed features (a simulator that sometimes blows up) are
        # standardized robustly and compressed in their tails (``feature_stats``).
        self.input_transform.standardize.set(*feature_stats(unbounded.cpu().numpy(), weights))
        # A stencil embedding reads x as one quantity on a grid: one shared scale.
        x_stats = shared_feature_stats if self.spec.embedding.kind == "stencil" else feature_stats
        self.context_encoder.x_standardize.set(*x_stats(context, weights))
        encoder = self.context_encoder
        if encoder.beta_standardize is not None:
            if beta_sample is None:
                raise ValueError("a beta-conditioned estimator needs beta_sample")
            features = encoder.raw_beta_features(torch.as_tensor(beta_sample, dtype=torch.float64))
            encoder.beta_standardize.set(*standardization_stats(features.numpy()))
        self.fitted.fill_(True)

    @torch.no_grad()
    def record_beta_range(self, low: float, high: float) -> None:
        """Widen the recorded training range of beta to include [low, high]."""
        current = self.beta_range
        if current is not None:
            low, high = min(low, current[0]), max(high, current[1])
        self.beta_bounds.copy_(torch.tensor([low, high], dtype=torch.float64))

    # -- densities -----------------------------------------------------------------------
    def log_prob(self, inputs: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """log q(inputs | context), including the Jacobian of the fixed transforms.

        Args:
            inputs: shape (b, d).
            context: shape (b, c) (for NPE: ``[x, beta]``).

        Returns:
            shape (b,), float64; ``-inf`` for inputs outside the box.
        """
        return self._log_prob_features(inputs, self.context_encoder(context))

    def log_prob_at_betas(
        self, inputs: torch.Tensor, x: torch.Tensor, betas: torch.Tensor
    ) -> torch.Tensor:
        """log q(inputs | x, beta_g) for every temperature of a grid, x embedded once.

        Equal to ``log_prob`` with the context ``[x, beta_g]`` for each g, but
        the embedding of x (the costly part for a stencil) runs once.

        Args:
            inputs: shape (b, d).
            x: shape (b, x_features).
            betas: shape (G,), positive.

        Returns:
            shape (G, b), float64.
        """
        if not self.beta_conditioned:
            raise ValueError("log_prob_at_betas needs a beta-conditioned estimator")
        h_x = self.context_encoder.embed_x(x)
        rows = []
        for beta in betas:
            beta_col = torch.full((x.shape[0],), float(beta), dtype=torch.float64, device=x.device)
            rows.append(
                self._log_prob_features(inputs, self.context_encoder.with_beta(h_x, beta_col))
            )
        return torch.stack(rows)

    def _log_prob_features(self, inputs: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        inside = self.input_transform.in_support(inputs)
        safe = inputs.to(torch.float64)
        if not bool(inside.all()) and self.input_transform.box is not None:
            centre = 0.5 * (self.input_transform.box.low + self.input_transform.box.high)
            safe = torch.where(inside[:, None], safe, centre)
        y, log_det = self.input_transform(safe)
        log_q = self.core.log_prob(y.to(torch.float32), h).to(torch.float64) + log_det
        return torch.where(inside, log_q, torch.full_like(log_q, -math.inf))

    def _draw_noise(self, m: int, n: int, generator: torch.Generator | None) -> torch.Tensor:
        # Drawn on the CPU, all at once: the same seed gives the same base draws on
        # any device and for any chunk size.
        noise = torch.randn(
            (m, n, self.core.noise_features), generator=generator, dtype=torch.float32
        )
        return noise.to(self.device)

    def sample_and_log_prob(
        self,
        n: int,
        context: torch.Tensor,
        generator: torch.Generator | None = None,
        *,
        with_log_prob: bool = True,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Draw ``n`` inputs for each context row, with their log density.

        Args:
            n: samples per context row.
            context: shape (m, c).
            generator: a CPU ``torch.Generator`` (the randomness); ``None`` uses
                torch's global generator.
            with_log_prob: compute log q of the draws (free for flows).
            chunk_rows: at most this many rows go through the network at once;
                results do not depend on it.

        Returns:
            ``inputs`` (m, n, d) float64, inside the box; log q (m, n) float64
            or ``None``.
        """
        m, d = context.shape[0], self.inputs_features
        noise = self._draw_noise(m, n, generator)
        h = self.context_encoder(context)
        out = torch.empty((m, n, d), dtype=torch.float64, device=self.device)
        log_q = (
            torch.empty((m, n), dtype=torch.float64, device=self.device) if with_log_prob else None
        )
        for (i0, i1), (j0, j1) in _blocks(m, n, chunk_rows):
            y, lq = self.core.sample_from_noise(noise[i0:i1, j0:j1], h[i0:i1], with_log_prob)
            inputs, log_det = self.input_transform.inverse(y.reshape(-1, d))
            out[i0:i1, j0:j1] = inputs.reshape(i1 - i0, j1 - j0, d)
            if log_q is not None and lq is not None:
                log_q[i0:i1, j0:j1] = lq.to(torch.float64) + log_det.reshape(i1 - i0, j1 - j0)
        return out, log_q

    def sample(
        self,
        n: int,
        context: torch.Tensor,
        generator: torch.Generator | None = None,
        *,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
    ) -> torch.Tensor:
        """Draw ``n`` inputs for each context row: context (m, c) -> (m, n, d) float64."""
        return self.sample_and_log_prob(
            n, context, generator, with_log_prob=False, chunk_rows=chunk_rows
        )[0]


def _blocks(m: int, n: int, chunk_rows: int):
    """(observation slice, sample slice) pairs covering an (m, n) grid in chunks."""
    chunk_rows = max(1, int(chunk_rows))
    if n >= chunk_rows:
        for i in range(m):
            for j in range(0, n, chunk_rows):
                yield (i, i + 1), (j, min(n, j + chunk_rows))
    else:
        per = max(1, chunk_rows // n)
        for i in range(0, m, per):
            yield (i, min(m, i + per)), (0, n)


def build_estimator(
    spec: EstimatorSpec, embedding_net: nn.Module | None = None, *, seed: int = 0
) -> ConditionalDensityEstimator:
    """Build an estimator from its spec, with weights initialized from ``seed``.

    The initialization uses a forked torch RNG, so global random state is left
    untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ConditionalDensityEstimator(spec, embedding_net)


def _embedding_config(
    embedding: EmbeddingConfig | nn.Module, x_features: int
) -> tuple[EmbeddingConfig, nn.Module | None]:
    if isinstance(embedding, nn.Module):
        features = custom_output_features(embedding, x_features)
        name = f"{type(embedding).__module__}.{type(embedding).__qualname__}"
        return EmbeddingConfig(kind="custom", output_features=features, module_name=name), embedding
    if not isinstance(embedding, EmbeddingConfig):
        raise ValueError(
            f"embedding must be an EmbeddingConfig or a torch.nn.Module, got {type(embedding)}"
        )
    if embedding.kind == "custom":
        raise ValueError("for a custom embedding, pass the torch.nn.Module itself as embedding=")
    return embedding, None


def _box(
    low: np.ndarray | None, high: np.ndarray | None
) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    if low is None and high is None:
        return None, None
    if low is None or high is None:
        raise ValueError("low and high must be given together (a box prior) or both omitted")
    low_a = np.atleast_1d(np.asarray(low, dtype=np.float64))
    high_a = np.atleast_1d(np.asarray(high, dtype=np.float64))
    return tuple(low_a.tolist()), tuple(high_a.tolist())


def make_npe(
    theta_dim: int,
    x_dim: int,
    *,
    density: DensityConfig | None = None,
    embedding: EmbeddingConfig | nn.Module | None = None,
    beta_features: tuple[str, ...] = ("log_beta", "beta"),
    low: np.ndarray | None = None,
    high: np.ndarray | None = None,
    seed: int = 0,
) -> ConditionalDensityEstimator:
    """A beta-conditioned posterior estimator q(theta | x, beta).

    Args:
        theta_dim: dimension of theta.
        x_dim: dimension of x.
        density: ``SplineFlowConfig()`` (default) or ``MDNConfig()``.
        embedding: ``EmbeddingConfig()`` (identity, default), an MLP config, or a
            ``torch.nn.Module`` mapping (b, x_dim) float32 to (b, e). A custom
            module is trained with the rest; its weights are saved, its code is
            not: pass it again (freshly built) to ``load_estimator``.
        beta_features: features of beta fed to the network.
        low: box prior lower corner, shape (theta_dim,) (``None``: unbounded).
        high: box prior upper corner, shape (theta_dim,).
        seed: weight initialization seed.

    Example:
        >>> npe = make_npe(2, 3, low=[-1, -1], high=[1, 1])
        >>> npe.context_features  # x and beta
        4
    """
    embedding_config, module = _embedding_config(embedding or EmbeddingConfig(), x_dim)
    box_low, box_high = _box(low, high)
    spec = EstimatorSpec(
        inputs_features=theta_dim,
        context_features=x_dim + 1,
        density=density or SplineFlowConfig(),
        embedding=embedding_config,
        beta_features=tuple(beta_features),
        low=box_low,
        high=box_high,
    )
    if not spec.beta_features:
        raise ValueError("make_npe needs at least one beta feature (e.g. ('log_beta',))")
    return build_estimator(spec, module, seed=seed)


def make_conditional_estimator(
    inputs_dim: int,
    context_dim: int,
    *,
    density: DensityConfig | None = None,
    embedding: EmbeddingConfig | nn.Module | None = None,
    low: np.ndarray | None = None,
    high: np.ndarray | None = None,
    seed: int = 0,
) -> ConditionalDensityEstimator:
    """A generic estimator q(inputs | context), e.g. an NLE q(x | theta).

    Inputs without a box (``low = high = None``) are modelled on R^d with no
    bijection. Arguments as in ``make_npe``; the embedding applies to the
    whole context.
    """
    embedding_config, module = _embedding_config(embedding or EmbeddingConfig(), context_dim)
    box_low, box_high = _box(low, high)
    spec = EstimatorSpec(
        inputs_features=inputs_dim,
        context_features=context_dim,
        density=density or SplineFlowConfig(),
        embedding=embedding_config,
        low=box_low,
        high=box_high,
    )
    return build_estimator(spec, module, seed=seed)
