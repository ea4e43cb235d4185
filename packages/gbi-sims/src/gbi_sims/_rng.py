"""Counter-based random numbers for the simulator kernels.

Every simulated row owns an independent stream, keyed by ``(key, row)`` where
``key`` is a 64-bit integer drawn once from the user's seed and ``row`` is the
row's global index in the batch. A row's numbers therefore depend only on the
seed and its index: not on the thread that runs it, the chunk it lands in, or
the executor that ships it. The generator is SplitMix64 (Steele, Lea & Flood,
"Fast splittable pseudorandom number generators", OOPSLA 2014): the row's
starting state is a mix of the key and the row index, and each draw advances
the state by the golden-ratio increment and mixes it.

Kernels thread the state explicitly: ``state, u = uniform(state)``.
"""

from __future__ import annotations

import math

import numpy as np

from gbi_sims._jit import jit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_ROW_STRIDE = np.uint64(0xD1B54A32D192ED03)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_TWO_M53 = 1.0 / 9007199254740992.0  # 2**-53


@jit
def mix64(z: np.uint64) -> np.uint64:
    """SplitMix64 finalizer: a bijective 64-bit mixing function."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@jit
def row_state(key: np.uint64, row: np.int64) -> np.uint64:
    """The starting state of the stream for global row index ``row``."""
    return mix64(key ^ (np.uint64(row) * _ROW_STRIDE + _GOLDEN))


@jit
def next_u64(state: np.uint64) -> tuple[np.uint64, np.uint64]:
    state = state + _GOLDEN
    return state, mix64(state)


@jit
def uniform(state: np.uint64) -> tuple[np.uint64, float]:
    """A double in the open interval (0, 1)."""
    state, z = next_u64(state)
    return state, (float(z >> _S11) + 0.5) * _TWO_M53


@jit
def normal(state: np.uint64) -> tuple[np.uint64, float]:
    """A standard normal draw (Box–Muller, one of the pair)."""
    state, u1 = uniform(state)
    state, u2 = uniform(state)
    return state, math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@jit
def normal_pair(state: np.uint64) -> tuple[np.uint64, float, float]:
    """Two independent standard normal draws (Box–Muller, both of the pair)."""
    state, u1 = uniform(state)
    state, u2 = uniform(state)
    r = math.sqrt(-2.0 * math.log(u1))
    return state, r * math.cos(2.0 * math.pi * u2), r * math.sin(2.0 * math.pi * u2)


def make_key(seed: int | np.random.Generator) -> np.uint64:
    """Derive the 64-bit stream key from a user seed or Generator.

    An int seed maps to a key through numpy's ``SeedSequence`` (so nearby
    seeds give unrelated streams); a Generator contributes one draw.
    """
    if isinstance(seed, np.random.Generator):
        return np.uint64(seed.integers(0, 2**64, dtype=np.uint64, endpoint=False))
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(
            f"seed must be an int or a numpy.random.Generator, got {type(seed).__name__}"
        )
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}")
    return np.uint64(np.random.SeedSequence(int(seed)).generate_state(1, dtype=np.uint64)[0])
