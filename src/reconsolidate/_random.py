"""Named, counter-based random streams: one seed, the same numbers however the work is split.

A virtual patient's random numbers depend only on (trial seed, stream name, extra keys, patient
index, draw index), never on which chunk or worker simulated that patient, nor on which arms
exist. This gives bit-identical results for any chunking or worker count and common random
numbers across arms (arms that share a patient index share that patient's random numbers), as
starsim does with its named distributions.

Two generators:

- :class:`PatientStream`: Philox-4x64 (counter-based): the counter of patient ``i`` starts at
  ``i * blocks_per_patient``, so any slice of patients can be generated on its own. Used for
  draws made once per patient (covariates, PK variability).
- :class:`CounterStream`: SplitMix64 read at an explicit counter, for the hot daily loop, where
  numpy's Philox (~15 ns per number through ``random_raw``) would cost more than the simulation.
  Its numba kernel :func:`counter_uniform` is called inside compiled loops, so a number is made
  where it is used (and only if it is used), and its numpy twin gives the same bits.
"""

from __future__ import annotations

import zlib

import numba
import numpy as np
from scipy.special import ndtri

__all__ = [
    "CounterStream",
    "PatientStream",
    "counter_uniform",
    "patient_day_counter",
    "stream_key",
]

_TWO_POW_M53 = 2.0**-53


def stream_key(seed: int, name: str, *keys: int) -> np.ndarray:
    """Return the 2 x uint64 Philox key of stream ``name`` (with optional integer sub-keys)."""
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    spawn = (zlib.crc32(name.encode("utf-8")), *(int(k) for k in keys))
    return np.random.SeedSequence(entropy=int(seed), spawn_key=spawn).generate_state(2, np.uint64)


class PatientStream:
    """Per-patient random numbers addressable by patient index.

    Parameters
    ----------
    seed
        Trial (or run) seed, a non-negative integer.
    name
        Stream name, e.g. ``"pk.eta"`` or ``"behavior.cues"``; different names give independent
        streams.
    draws_per_patient
        How many numbers each patient gets from this stream.
    keys
        Extra integer keys (e.g. the simulated day) that select an independent sub-stream.

    Examples
    --------
    >>> s = PatientStream(1, "demo", draws_per_patient=3)
    >>> bool(np.array_equal(s.uniform(0, 10)[4:], s.uniform(4, 10)))
    True
    """

    def __init__(self, seed: int, name: str, draws_per_patient: int, *keys: int) -> None:
        if draws_per_patient < 1:
            raise ValueError(f"draws_per_patient must be >= 1, got {draws_per_patient}")
        self.seed = int(seed)
        self.name = name
        self.draws_per_patient = int(draws_per_patient)
        self.keys = tuple(int(k) for k in keys)
        self._key = stream_key(self.seed, name, *self.keys)
        self._blocks = -(-self.draws_per_patient // 4)  # Philox yields 4 x uint64 per counter

    def _raw(self, start: int, stop: int) -> np.ndarray:
        if not 0 <= start <= stop:
            raise ValueError(f"need 0 <= start <= stop, got {start}, {stop}")
        n = stop - start
        counter = np.zeros(4, dtype=np.uint64)
        counter[0] = np.uint64(start * self._blocks)
        bg = np.random.Philox(key=self._key, counter=counter)
        raw = bg.random_raw(n * self._blocks * 4).reshape(n, self._blocks * 4)
        return raw[:, : self.draws_per_patient]

    def uniform(self, start: int, stop: int) -> np.ndarray:
        """Uniforms in the open interval (0, 1), shape ``(stop - start, draws_per_patient)``."""
        raw = self._raw(start, stop)
        return ((raw >> np.uint64(11)).astype(np.float64) + 0.5) * _TWO_POW_M53

    def normal(self, start: int, stop: int) -> np.ndarray:
        """Standard normals by inversion, shape ``(stop - start, draws_per_patient)``."""
        return ndtri(self.uniform(start, stop))


# ----------------------------------------------------------------------------- SplitMix64
# SplitMix64 (Steele, Lea & Flood 2014, "Fast splittable pseudorandom number generators",
# OOPSLA, doi:10.1145/2714064.2660195; constants of Vigna's splitmix64.c, the finaliser
# "Mix13" of Stafford 2011): output k of a stream is mix(key + (k + 1) * gamma). It passes
# BigCrush (ibid.). Reading it at counter k, rather than stepping it, makes it counter-based:
# every number is addressed by (key, counter), so any patient, day or draw can be made on its
# own, in any order, bit-identically.
_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_ONE = np.uint64(1)

#: Counter layout of :func:`patient_day_counter`: ``((patient << 24) | (day + 2^23)) << 4 | j``.
_DAY_BITS = 24
_DRAW_BITS = 4
_DAY_OFFSET = 1 << (_DAY_BITS - 1)
MAX_DRAWS_PER_DAY = 1 << _DRAW_BITS
MAX_ABS_DAY = _DAY_OFFSET - 1
MAX_PATIENT_INDEX = (1 << (64 - _DAY_BITS - _DRAW_BITS)) - 1


@numba.njit(cache=True, inline="always")
def counter_uniform(key: np.uint64, counter: np.uint64) -> float:
    """Uniform in (0, 1) of stream ``key`` at ``counter`` (numba; 53-bit resolution)."""
    z = key + (counter + _ONE) * _GAMMA
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    z = z ^ (z >> _S31)
    return (float(z >> _S11) + 0.5) * _TWO_POW_M53


@numba.njit(cache=True, inline="always")
def patient_day_counter(patient: np.int64, day: np.int64, draw: np.int64) -> np.uint64:
    """Counter of draw ``draw`` (< 16) of patient ``patient`` on study day ``day`` (numba)."""
    return (
        ((np.uint64(patient) << np.uint64(_DAY_BITS)) | np.uint64(day + _DAY_OFFSET))
        << np.uint64(_DRAW_BITS)
    ) | np.uint64(draw)


class CounterStream:
    """Counter-addressed uniforms for per-patient, per-day draws (SplitMix64 at a counter).

    Parameters
    ----------
    seed
        Trial seed (non-negative).
    name
        Stream name; different names give independent streams.
    keys
        Extra integer keys (e.g. the replicate).

    Notes
    -----
    Draw ``j`` (0..15) of patient ``i`` (0..2^36-1) on day ``d`` (|d| < 2^23) sits at counter
    ``((i << 24) | (d + 2^23)) << 4 | j`` of the stream, so every (patient, day, draw) has its
    own number, whatever the chunking or the order of evaluation. Compiled kernels read the
    same numbers with ``counter_uniform(stream.key, patient_day_counter(i, d, j))``.

    Examples
    --------
    >>> s = CounterStream(1, "demo")
    >>> u = s.uniform(np.arange(5), day=-3, draws=2)
    >>> u.shape, bool(np.array_equal(u[2:], s.uniform(np.arange(2, 5), day=-3, draws=2)))
    ((5, 2), True)
    """

    def __init__(self, seed: int, name: str, *keys: int) -> None:
        self.seed = int(seed)
        self.name = name
        self.keys = tuple(int(k) for k in keys)
        self.key = stream_key(self.seed, name, *self.keys)[0]

    def uniform(self, patients: np.ndarray, day: int, draws: int) -> np.ndarray:
        """Uniforms of ``patients`` (indices) on study ``day``, shape ``(len(patients), draws)``."""
        p = np.asarray(patients, dtype=np.int64)
        if not 1 <= draws <= MAX_DRAWS_PER_DAY:
            raise ValueError(f"draws must be in 1..{MAX_DRAWS_PER_DAY}, got {draws}")
        if abs(int(day)) > MAX_ABS_DAY:
            raise ValueError(f"day must satisfy |day| <= {MAX_ABS_DAY}, got {day}")
        if p.size and (p.min() < 0 or p.max() > MAX_PATIENT_INDEX):
            raise ValueError(f"patient indices must lie in 0..{MAX_PATIENT_INDEX}")
        base = (p.astype(np.uint64) << np.uint64(_DAY_BITS)) | np.uint64(int(day) + _DAY_OFFSET)
        counter = (base[:, None] << np.uint64(_DRAW_BITS)) | np.arange(draws, dtype=np.uint64)
        with np.errstate(over="ignore"):  # uint64 arithmetic wraps by design
            z = self.key + (counter + _ONE) * _GAMMA
            z = (z ^ (z >> _S30)) * _MIX1
            z = (z ^ (z >> _S27)) * _MIX2
            z = z ^ (z >> _S31)
        return ((z >> _S11).astype(np.float64) + 0.5) * _TWO_POW_M53


@numba.njit(cache=True, inline="always")
def _poly7(x: float, c0: float, c1: float, c2: float, c3: float, c4: float, c5: float,
           c6: float, c7: float) -> float:
    return ((((((c7 * x + c6) * x + c5) * x + c4) * x + c3) * x + c2) * x + c1) * x + c0


@numba.njit(cache=True)
def normal_quantile(p: float) -> float:
    """Standard normal quantile (numba), for normals by inversion inside compiled loops.

    Wichura 1988, Algorithm AS 241 (PPND16), Appl Stat 37:477, doi:10.2307/2347330: relative
    error about 1e-16 for 0 < p < 1 (tests compare with ``scipy.special.ndtri``).
    """
    q = p - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        num = _poly7(r, 3.387132872796366608, 133.14166789178437745, 1971.5909503065514427,
                     13731.693765509461125, 45921.953931549871457, 67265.770927008700853,
                     33430.575583588128105, 2509.0809287301226727)
        den = _poly7(r, 1.0, 42.313330701600911252, 687.1870074920579083,
                     5394.1960214247511077, 21213.794301586595867, 39307.89580009271061,
                     28729.085735721942674, 5226.495278852545925)
        return q * num / den
    r = p if q < 0.0 else 1.0 - p
    r = np.sqrt(-np.log(r))
    if r <= 5.0:
        r -= 1.6
        num = _poly7(r, 1.42343711074968357734, 4.6303378461565452959, 5.7694972214606914055,
                     3.64784832476320460504, 1.27045825245236838258, 0.24178072517745061177,
                     0.0227238449892691845833, 7.7454501427834140764e-4)
        den = _poly7(r, 1.0, 2.05319162663775882187, 1.6763848301838038494,
                     0.68976733498510000455, 0.14810397642748007459, 0.0151986665636164571966,
                     5.475938084995344946e-4, 1.05075007164441684324e-9)
    else:
        r -= 5.0
        num = _poly7(r, 6.6579046435011037772, 5.4637849111641143699, 1.7848265399172913358,
                     0.29656057182850489123, 0.026532189526576123093, 0.0012426609473880784386,
                     2.71155556874348757815e-5, 2.01033439929228813265e-7)
        den = _poly7(r, 1.0, 0.59983220655588793769, 0.13692988092273580531,
                     0.0148753612908506148525, 7.868691311456132591e-4,
                     1.8463183175100546818e-5, 1.4215117583164458887e-7,
                     2.04426310338993978564e-15)
    x = num / den
    return -x if q < 0.0 else x
