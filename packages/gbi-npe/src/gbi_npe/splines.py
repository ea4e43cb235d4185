"""Monotone rational-quadratic splines with linear tails, evaluated without masks.

The spline of Durkan et al. (2019, "Neural Spline Flows", eqs. 4-6 and their
Appendix A for the inverse) maps ``[-B, B]`` onto itself through ``K`` bins
whose widths, heights and inner knot derivatives come from unconstrained
network outputs; outside ``[-B, B]`` it is the identity (derivative 1 at the
boundary knots, so the map is C1).

Every element is evaluated on its input clamped into ``[-B, B]`` and the
identity is selected afterwards with ``torch.where``. The usual implementation
splits the batch with boolean masks (gather, scatter and a copy per call);
this one runs the same arithmetic in a fixed, small number of whole-tensor
operations, which is what a training step of a small flow on a CPU is made of.
The clamped values keep every branch finite, so the unselected branch passes
zero (never NaN) gradients.

Internally the bin axis comes first, so that the work over the K bins
(softmax, cumulative sum, the bin search and the pick) runs along a leading
axis, vectorized over the contiguous batch: PyTorch's CPU kernels treat a
short trailing axis one row at a time. On a (5000, 84, 8) batch with one
thread the softmax takes ~57 ms along the last axis and ~5 ms along the first,
and the whole spline 3.1x less time this way forward (349 against 113 ms),
2.3x less forward and backward.
``packed_rational_quadratic_spline`` takes a conditioner's output as it comes,
(..., 3K - 1), and makes that layout in one copy.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

#: Smallest bin width, bin height and knot derivative (as fractions of the box).
MIN_BIN_WIDTH = 1e-3
MIN_BIN_HEIGHT = 1e-3
MIN_DERIVATIVE = 1e-3


def _knots(logits: torch.Tensor, minimum: float, bound: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Bin sizes and left knots in ``[-bound, bound]`` from (K, ...) logits.

    Returns ``(sizes (K, ...), knots (K + 1, ...))`` with the end knots exactly
    at ``-bound`` and ``bound``.
    """
    k = logits.shape[0]
    fractions = minimum + (1.0 - minimum * k) * torch.softmax(logits, dim=0)
    inner = 2.0 * bound * torch.cumsum(fractions[:-1], dim=0) - bound
    end = inner.new_full((1, *inner.shape[1:]), bound)
    knots = torch.cat([-end, inner, end], dim=0)
    return knots[1:] - knots[:-1], knots


def _check_bins(k: int, heights: int, derivatives: int) -> None:
    if heights != k or derivatives != k - 1:
        raise ValueError(
            f"expected K widths, K heights and K - 1 derivatives, got "
            f"{k}, {heights} and {derivatives}"
        )
    if MIN_BIN_WIDTH * k > 1.0 or MIN_BIN_HEIGHT * k > 1.0:
        raise ValueError(f"{k} bins cannot all be {MIN_BIN_WIDTH} of the box wide")


def rational_quadratic_spline(
    inputs: torch.Tensor,
    width_logits: torch.Tensor,
    height_logits: torch.Tensor,
    derivative_logits: torch.Tensor,
    *,
    bound: float,
    inverse: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The spline (or its inverse) applied elementwise.

    Args:
        inputs: shape (...,).
        width_logits: shape (..., K), unconstrained bin widths.
        height_logits: shape (..., K), unconstrained bin heights.
        derivative_logits: shape (..., K - 1), unconstrained derivatives at
            the inner knots (the two end knots have derivative 1).
        bound: the spline acts on ``[-bound, bound]``; the identity elsewhere.
        inverse: apply the inverse map.

    Returns:
        ``(outputs (...,), log_abs_det (...,))``: the map's value and the log of
        its absolute derivative at ``inputs`` (for ``inverse``, of the inverse
        map), 0 outside the box.
    """
    _check_bins(width_logits.shape[-1], height_logits.shape[-1], derivative_logits.shape[-1])
    first = (
        t.movedim(-1, 0).contiguous() for t in (width_logits, height_logits, derivative_logits)
    )
    return _spline(inputs, *first, bound=bound, inverse=inverse)


def packed_rational_quadratic_spline(
    inputs: torch.Tensor,
    params: torch.Tensor,
    *,
    num_bins: int,
    bound: float,
    inverse: bool = False,
    logit_scale: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``rational_quadratic_spline`` on one conditioner output per element.

    Args:
        inputs: shape (...,).
        params: shape (..., 3K - 1): K width logits, K height logits and
            K - 1 derivative logits, in that order.
        num_bins: K.
        bound: the spline acts on ``[-bound, bound]``; the identity elsewhere.
        inverse: apply the inverse map.
        logit_scale: multiplies the width and height logits (not the
            derivatives') before the softmax.

    Returns:
        ``(outputs (...,), log_abs_det (...,))``, those of
        ``rational_quadratic_spline(inputs, logit_scale * params[..., :K],
        logit_scale * params[..., K:2K], params[..., 2K:])``.
    """
    k = num_bins
    if params.shape[-1] != 3 * k - 1:
        raise ValueError(
            f"expected 3K - 1 = {3 * k - 1} parameters per element, got {params.shape[-1]}"
        )
    if params.shape[:-1] != inputs.shape:
        raise ValueError(
            f"params must be inputs' shape {tuple(inputs.shape)} plus (3K - 1,), "
            f"got {tuple(params.shape)}"
        )
    _check_bins(k, k, k - 1)
    first = params.movedim(-1, 0).contiguous()  # one copy; every slice below is contiguous
    return _spline(
        inputs,
        first[:k] * logit_scale,
        first[k : 2 * k] * logit_scale,
        first[2 * k :],
        bound=bound,
        inverse=inverse,
    )


def _spline(
    inputs: torch.Tensor,
    width_logits: torch.Tensor,
    height_logits: torch.Tensor,
    derivative_logits: torch.Tensor,
    *,
    bound: float,
    inverse: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The spline on logits with the bin axis first: (K, ...), (K, ...), (K - 1, ...)."""
    inside = (inputs >= -bound) & (inputs <= bound)
    clamped = inputs.clamp(-bound, bound)
    widths, x_knots = _knots(width_logits, MIN_BIN_WIDTH, bound)
    heights, y_knots = _knots(height_logits, MIN_BIN_HEIGHT, bound)
    one = derivative_logits.new_ones((1, *derivative_logits.shape[1:]))
    derivatives = torch.cat([one, MIN_DERIVATIVE + F.softplus(derivative_logits), one], dim=0)

    # the bin of each element: how many inner knots lie at or below it
    search = y_knots if inverse else x_knots
    index = (clamped.unsqueeze(0) >= search[1:-1]).sum(dim=0, keepdim=True)

    def pick(per_bin: torch.Tensor) -> torch.Tensor:
        """The value of each element's bin, (K, ...) -> (...)."""
        return per_bin.gather(0, index).squeeze(0)

    x0, width, y0, height = pick(x_knots[:-1]), pick(widths), pick(y_knots[:-1]), pick(heights)
    d0, d1 = pick(derivatives[:-1]), pick(derivatives[1:])
    slope = height / width
    curvature = d0 + d1 - 2.0 * slope

    if inverse:
        offset = clamped - y0
        a = offset * curvature + height * (slope - d0)
        b = height * d0 - offset * curvature
        c = -slope * offset
        discriminant = (b * b - 4.0 * a * c).clamp_min(0.0)  # >= 0 in exact arithmetic
        t = (2.0 * c) / (-b - torch.sqrt(discriminant))
    else:
        t = (clamped - x0) / width
    t_one_minus_t = t * (1.0 - t)
    denominator = slope + curvature * t_one_minus_t
    if inverse:
        outputs = x0 + t * width
    else:
        outputs = y0 + height * (slope * t * t + d0 * t_one_minus_t) / denominator
    numerator = slope * slope * (d1 * t * t + 2.0 * slope * t_one_minus_t + d0 * (1.0 - t) ** 2)
    log_det = torch.log(numerator) - 2.0 * torch.log(denominator)
    if inverse:
        log_det = -log_det
    return torch.where(inside, outputs, inputs), torch.where(inside, log_det, 0.0)
