"""Optional ``torch.compile`` of a training loss, with a fallback to eager mode.

A training step of these small networks is hundreds of small tensor
operations (the coupling layers' splines, the residual conditioners, their
gradients); on a CPU most of its time goes to launching them, not to
arithmetic. ``torch.compile`` (TorchInductor) fuses them into a few generated
kernels: a two-moons NPE step (batch 256, one core) takes 4.4-6.6 ms compiled
against 11-12 ms eager, and 150 epochs 57 s against 103 s. The price is the
compilation on the first call: about 50 s for that network on a 2-core CPU
(minutes on a loaded one), kept in TorchInductor's on-disk cache
(``TORCHINDUCTOR_CACHE_DIR``), so a later process training the same network
shapes loads it in about a second.

Compiled code computes the same functions with other floating-point
operation orders: results agree with eager mode to float32 round-off, not bit
for bit. Where torch cannot compile (no C++ compiler, an unsupported platform
or operation) the first call warns and the training goes on eagerly.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch


class CompileFallbackWarning(RuntimeWarning):
    """``torch.compile`` failed on the first call; the training continues eagerly."""


class Compiled:
    """``fn`` compiled with ``torch.compile`` for its first batch size, else ``fn``.

    Only calls with the first call's number of rows (the leading dimension of
    the first argument) run compiled; others run ``fn`` eagerly. A training
    compiles its full batches once and runs an epoch's last, smaller batch
    eagerly (one step in dozens), rather than paying a second compilation
    for it: each compiled shape costs about 50 s on a 2-core CPU the first
    time (a two-moons NPE step: 6 ms compiled against 12 ms eager, one core).
    On a CPU the graph is compiled into one C++ function (TorchInductor's
    ``cpp_wrapper``), which calls its kernels without a Python layer between
    them (a quarter off a step).

    Args:
        fn: a function of tensors (e.g. a module's bound ``log_prob``).
        what: names ``fn`` in the fallback warning.
        device: where ``fn`` runs.
    """

    def __init__(self, fn: Callable[..., Any], what: str, device: torch.device) -> None:
        self.eager = fn
        self.what = what
        options = {"cpp_wrapper": True} if device.type == "cpu" else None
        self._compiled: Callable[..., Any] | None = torch.compile(
            fn, dynamic=False, options=options
        )
        self._rows: int | None = None

    @property
    def active(self) -> bool:
        """False once compilation has failed and calls run eagerly."""
        return self._compiled is not None

    def __call__(self, first: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if self._compiled is None or (self._rows is not None and first.shape[0] != self._rows):
            return self.eager(first, *args, **kwargs)
        if self._rows is not None:
            return self._compiled(first, *args, **kwargs)
        try:
            out = self._compiled(first, *args, **kwargs)
        except Exception as error:  # any compile failure: no compiler, an unsupported op
            # An error of fn itself recurs in the eager call below and is raised there.
            self._compiled = None
            out = self.eager(first, *args, **kwargs)
            reason = str(error).strip().splitlines()
            warnings.warn(
                f"torch.compile could not compile {self.what} "
                f"({type(error).__name__}: {reason[0] if reason else ''}); "
                "training without it (compile=False)",
                CompileFallbackWarning,
                stacklevel=2,
            )
            return out
        self._rows = first.shape[0]
        return out


def maybe_compiled(
    fn: Callable[..., Any], enabled: bool, what: str, device: torch.device
) -> Callable[..., Any]:
    """``Compiled(fn, what, device)`` if ``enabled``, else ``fn`` itself."""
    return Compiled(fn, what, device) if enabled else fn
