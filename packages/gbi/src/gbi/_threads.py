"""Keep torch's thread count across numba's parallel code.

numba's OpenMP threading layer sets the process's OpenMP thread count to its
own (``NUMBA_NUM_THREADS``, by default every core) the first time it runs
parallel code, and torch, unless a thread count was set through
``torch.set_num_threads``, follows it: a process started with
``OMP_NUM_THREADS=1`` trains on every core after its first simulation. With
the cores busy with other work, that oversubscription made the demo's
training four times slower (two_moons: 2.6 s per epoch against 0.6 s).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def torch_threads_kept() -> Iterator[None]:
    """Run a block (simulations, reference samplers) and restore torch's thread count after."""
    torch = sys.modules.get("torch")
    if torch is None:  # nothing to keep: torch reads the count when it is imported
        yield
        return
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
