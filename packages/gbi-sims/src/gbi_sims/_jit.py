"""The one jit policy of gbi-sims: every kernel is compiled through these."""

from __future__ import annotations

import functools

import numba

#: Scalar / serial kernels.
jit = functools.partial(numba.njit, cache=True, nogil=True, error_model="numpy")
#: Batch kernels: a ``numba.prange`` loop over rows.
parallel_jit = functools.partial(
    numba.njit, cache=True, nogil=True, parallel=True, error_model="numpy"
)
