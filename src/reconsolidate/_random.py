"""Named, counter-based random streams: one seed, the same numbers however the work is split.

A virtual patient's random numbers depend only on (trial seed, stream name, extra keys, patient
index, draw index), never on which chunk or worker simulated that patient, nor on which arms
exist. This gives bit-identical results for any chunking or worker count and common random
numbers across arms (arms that share a patient index share that patient's random numbers), as
starsim does with its named distributions.

The generator is Philox-4x64 (counter-based): the counter of patient ``i`` starts at
``i * blocks_per_patient``, so any slice of patients can be generated on its own.
"""

from __future__ import annotations

import zlib

import numpy as np
from scipy.special import ndtri

__all__ = ["PatientStream", "stream_key"]

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
