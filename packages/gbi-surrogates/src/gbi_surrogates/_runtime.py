"""Running networks: seeded construction, tensors on a device, chunked evaluation."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch

from gbi_surrogates._from_npe import TrainConfig
from gbi_surrogates._inputs import as_chunk_size, evaluation_pairs

#: rows evaluated at once by ``score`` (and the bound of ``rows_per_call``).
DEFAULT_CHUNK_SIZE = 65_536


def rows_per_call(x_features: int) -> int:
    """Rows per network call for a likelihood or ratio of ``x_features``-dim x.

    ``2**15 // x_features``, between 128 and 4096. A network's working memory
    per row grows with the x it reads (a spline per x feature in an NLE, a
    shared network per site in a stencil embedding); beyond the CPU caches a
    call is memory-bound. Measured on lorenz96's 168 features, one thread,
    100k rows: the NLE takes 0.07 ms per row at 256 rows per call against
    0.16 at 5000, the NRE 0.04 at 128 against 0.34 at 65536; with 2 features,
    4096 rows per call is as fast as any. Results do not depend on it beyond
    float32 rounding.
    """
    return int(np.clip(2**15 // max(int(x_features), 1), 128, 4096))


def chunk_rows(chunk_size: int | None, x_features: int) -> int:
    """A caller's ``chunk_size`` checked, or ``rows_per_call(x_features)`` for None."""
    return rows_per_call(x_features) if chunk_size is None else as_chunk_size(chunk_size)


ModuleT = TypeVar("ModuleT", bound=torch.nn.Module)


def build_seeded(factory: Callable[[], ModuleT], seed: int) -> ModuleT:
    """``factory()`` with its weights initialized from ``seed``.

    Uses a forked torch RNG, so the global random state is left untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


def check_train_config(config: TrainConfig | None) -> TrainConfig:
    """``config`` or the default ``TrainConfig()``; anything else is a ValueError."""
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise ValueError(f"train_config must be a gbi_npe TrainConfig, got {type(config).__name__}")
    return config


def as_tensor(array: np.ndarray, device: torch.device, dtype=torch.float64) -> torch.Tensor:
    """A tensor copy of ``array`` on ``device`` (read-only or broadcast views are fine)."""
    return torch.as_tensor(np.array(array, dtype=np.float64, order="C"), dtype=dtype, device=device)


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of the module's first parameter or buffer (CPU if it has none)."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


@torch.no_grad()
def evaluate_chunked(
    fn: Callable[[slice], torch.Tensor], n: int, chunk_size: int, trailing: tuple[int, ...] = ()
) -> np.ndarray:
    """Concatenate ``fn(rows)`` over row slices of at most ``chunk_size``, as float64 numpy.

    Args:
        fn: maps a slice of rows to a tensor (rows, *trailing).
        n: total rows.
        chunk_size: rows per call.
        trailing: trailing shape of each row's result.

    Returns:
        shape (n, *trailing), float64.
    """
    out = np.empty((n, *trailing), dtype=np.float64)
    for start in range(0, n, chunk_size):
        rows = slice(start, min(n, start + chunk_size))
        out[rows] = fn(rows).to(torch.float64).cpu().numpy()
    return out


def evaluate_pairs(
    module: torch.nn.Module,
    call: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    theta: np.ndarray,
    x: np.ndarray,
    dims: tuple[int, int],
    chunk_size: int | None,
) -> np.ndarray:
    """``call(theta_rows, x_rows)`` over (theta, x) pairs, in chunks, in ``module``'s eval mode.

    Args:
        module: the network ``call`` runs (put in eval mode; its device is used).
        call: maps float64 tensors (rows, d_theta) and (rows, d_x) on that
            device to a tensor (rows,).
        theta: shape (n, d_theta) or (d_theta,).
        x: shape (n, d_x) or (d_x,); one row of either is broadcast against
            the other's n.
        dims: ``(d_theta, d_x)`` the module expects.
        chunk_size: rows per call (``None``: ``rows_per_call(d_x)``).

    Returns:
        shape (n,), float64.

    Raises:
        ValueError: wrong dimensions, non-finite values, mismatched rows.
    """
    theta_a, x_a = evaluation_pairs(theta, x, *dims)
    chunk_size = chunk_rows(chunk_size, dims[1])
    device = module_device(module)
    module.eval()
    return evaluate_chunked(
        lambda rows: call(as_tensor(theta_a[rows], device), as_tensor(x_a[rows], device)),
        theta_a.shape[0],
        chunk_size,
    )
