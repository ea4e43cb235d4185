"""Mixture density network: a conditional mixture of full-covariance Gaussians.

    q(y | h) = sum_k pi_k(h) N(y; mu_k(h), L_k(h) L_k(h)^T)

with ``L_k`` lower triangular, diagonal ``softplus(.) + min_scale``. The
parameters come from one MLP applied to ``h``; for sampling they are computed
once per observation, not once per sample.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .config import MDNConfig
from .context import MLP

_LOG_2PI = math.log(2.0 * math.pi)


class MixtureDensityNetwork(nn.Module):
    """Mixture of ``K`` full-covariance Gaussians, parameters from an MLP of ``h``.

    Args:
        features: dimension ``d`` of ``y``.
        context_features: dimension ``e`` of the network features ``h``.
        config: number of components and network sizes.
    """

    def __init__(self, features: int, context_features: int, config: MDNConfig) -> None:
        super().__init__()
        d, k = features, config.num_components
        self.features = features
        self.context_features = context_features
        self.num_components = k
        self.min_scale = config.min_scale
        # Noise: d standard normals for the Gaussian draw, one more turned into
        # a uniform for the component choice.
        self.noise_features = d + 1
        self._n_tril = d * (d - 1) // 2
        self.net = MLP(
            context_features,
            k + k * d + k * d + k * self._n_tril,
            config.hidden_features,
            config.num_hidden_layers,
        )
        rows, cols = torch.tril_indices(d, d, offset=-1)
        self.register_buffer("_tril_rows", rows, persistent=False)
        self.register_buffer("_tril_cols", cols, persistent=False)

    def parameters_of(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mixture parameters for each row of ``h``.

        Args:
            h: shape (b, e).

        Returns:
            ``log_pi`` (b, K), ``mu`` (b, K, d), ``scale_tril`` (b, K, d, d).
        """
        b, d, k = h.shape[0], self.features, self.num_components
        out = self.net(h)
        logits, rest = out[:, :k], out[:, k:]
        mu = rest[:, : k * d].reshape(b, k, d)
        raw_diag = rest[:, k * d : 2 * k * d].reshape(b, k, d)
        off = rest[:, 2 * k * d :].reshape(b, k, self._n_tril)
        # softplus(0.5413) = 1: a zero network output means unit scale.
        scale_tril = torch.diag_embed(F.softplus(raw_diag + 0.5413) + self.min_scale)
        if self._n_tril:
            scale_tril = scale_tril.index_put(
                (
                    torch.arange(b, device=h.device)[:, None, None],
                    torch.arange(k, device=h.device)[None, :, None],
                    self._tril_rows[None, None, :],
                    self._tril_cols[None, None, :],
                ),
                off,
            )
        return torch.log_softmax(logits, dim=-1), mu, scale_tril

    @staticmethod
    def _component_log_prob(
        y: torch.Tensor, mu: torch.Tensor, scale_tril: torch.Tensor
    ) -> torch.Tensor:
        """log N(y; mu_k, L_k L_k^T): y (..., d), mu (..., K, d), L (..., K, d, d) -> (..., K)."""
        diff = (y.unsqueeze(-2) - mu).unsqueeze(-1)
        white = torch.linalg.solve_triangular(scale_tril, diff, upper=False).squeeze(-1)
        log_det = torch.log(torch.diagonal(scale_tril, dim1=-2, dim2=-1)).sum(dim=-1)
        return -0.5 * (white * white).sum(dim=-1) - log_det - 0.5 * y.shape[-1] * _LOG_2PI

    def log_prob(self, y: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """log q(y | h): y (b, d), h (b, e) -> (b,)."""
        log_pi, mu, scale_tril = self.parameters_of(h)
        return torch.logsumexp(log_pi + self._component_log_prob(y, mu, scale_tril), dim=-1)

    def sample_from_noise(
        self, noise: torch.Tensor, h: torch.Tensor, with_log_prob: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Turn standard-normal noise into mixture draws.

        Args:
            noise: shape (m, n, d + 1): d normals and one normal for the component.
            h: network features, one row per observation, shape (m, e).
            with_log_prob: also return log q(y | h).

        Returns:
            ``y`` (m, n, d) and, if asked, log q (m, n) (else ``None``).
        """
        m, n, _ = noise.shape
        d, k = self.features, self.num_components
        log_pi, mu, scale_tril = self.parameters_of(h)  # (m, K), (m, K, d), (m, K, d, d)
        u = torch.special.ndtr(noise[..., d])  # (m, n), uniform
        cdf = torch.cumsum(torch.exp(log_pi), dim=-1)  # (m, K)
        component = torch.searchsorted(cdf.contiguous(), u.contiguous()).clamp(max=k - 1)
        mu_c = torch.gather(mu, 1, component[..., None].expand(m, n, d))
        tril_c = torch.gather(scale_tril, 1, component[..., None, None].expand(m, n, d, d))
        y = mu_c + (tril_c @ noise[..., :d, None]).squeeze(-1)
        if not with_log_prob:
            return y, None
        log_q = torch.logsumexp(
            log_pi[:, None, :] + self._component_log_prob(y, mu[:, None], scale_tril[:, None]),
            dim=-1,
        )
        return y, log_q
