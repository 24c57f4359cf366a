"""Reference LC-RW model: basic behaviour of the latent-cause inference and the NMDA gates."""

from __future__ import annotations

import numpy as np
import pytest

from reconsolidate.memory.params import MemoryParams
from reconsolidate.memory.reference import ReferenceModel

P = MemoryParams()
X = np.array([1.0, 1.0, 0.0])  # cue, context A, context B


def _acquire(m: ReferenceModel, n: int = 8) -> float:
    t = 0.0
    for k in range(n):
        m.trial(X, 1.0, t, gap_to_next_min=2.0 if k < n - 1 else None)
        t += 2 / 60
    return t


def test_acquisition_raises_response_and_uses_one_cause():
    m = ReferenceModel(3, P, n_cues=1)
    r0 = m.response(X, 0.0)
    t = _acquire(m)
    assert m.n_causes == 1
    assert m.response(X, t) > 0.9 > 0.1 > r0


def test_extinction_creates_a_new_cause_and_spontaneous_recovery():
    m = ReferenceModel(3, P, n_cues=1)
    t = _acquire(m) + 24.0
    for _ in range(18):
        m.trial(X, 0.0, t, gap_to_next_min=2.0)
        t += 2 / 60
    assert m.n_causes == 2
    early, late = m.response(X, t + 24), m.response(X, t + 24 * 29)
    assert late > early + 0.05  # the extinction memory loses its hold with time


def test_contexts_carry_no_reward_weight():
    m = ReferenceModel(3, P, n_cues=1)
    _acquire(m)
    assert np.all(m.w[: m.n_causes, 1:] == 0.0)


def test_prediction_error_gates_destabilisation_and_occupancy_blocks_it():
    for reward, occ, labile in [(0.0, 0.0, True), (1.0, 0.0, False), (0.0, 0.9, False)]:
        m = ReferenceModel(3, P, n_cues=1)
        t = _acquire(m) + 24.0
        m.trial(X, reward, t, occupancy=occ)
        assert bool(m.lability[0] > 0.1) == labile, (reward, occ)


def test_drug_damage_only_when_labile_and_only_retrieved_cue():
    m = ReferenceModel(4, P, n_cues=2)  # cues a, b; contexts A, B
    xa, xb = np.array([1.0, 0, 1, 0]), np.array([0, 1.0, 1, 0])
    t = 0.0
    for k in range(16):
        m.trial(xa if k % 2 == 0 else xb, 1.0, t, gap_to_next_min=2.0 if k < 15 else None)
        t += 2 / 60
    t += 24
    m.trial(xa, 0.0, t)
    w_before = m.w[: m.n_causes].copy()
    d = m.drug(30.0)
    assert d.max() > 0.3
    assert np.all(m.w[: m.n_causes, 1] == w_before[:, 1])  # cue b untouched
    assert np.all(m.w[: m.n_causes, 0] <= w_before[:, 0])


def test_time_order_enforced():
    m = ReferenceModel(3, P, n_cues=1)
    m.trial(X, 1.0, 5.0)
    with pytest.raises(ValueError):
        m.trial(X, 1.0, 4.0)
