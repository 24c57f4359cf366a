"""Dose-response of post-retrieval NMDA blockade, and the reconsolidation window.

More occupancy in the window after retrieval weakens the memory more, up to a plateau; the
same occupancy given outside the window (6 h or more after retrieval) does nothing.
"""

from __future__ import annotations

import numpy as np
import pytest

from reconsolidate.memory import population as pop
from reconsolidate.memory.params import MemoryParams
from reconsolidate.memory.reference import ReferenceModel
from reconsolidate.memory.window import window_weighted_occupancy_min
from reconsolidate.pharmacology import Infusion, Regimen, simulate

# one context, as in the reference runs below (the population model's feature count must match)
P = MemoryParams(n_context_features=1)
DOSES_MG_PER_KG = np.array([0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0])


def _occupancy(dose_mg_per_kg: float, times_min: np.ndarray) -> np.ndarray:
    if dose_mg_per_kg == 0:
        return np.zeros_like(times_min)
    reg = Regimen(name="test", infusion=[Infusion(start_min=0, duration_min=40,
                                                  dose_mg_per_kg=float(dose_mg_per_kg))])
    return simulate("domino", reg, 70.0, times_min).nmda_occupancy[0]


def _trained_retrieved(n: int) -> pop.PopulationState:
    s = pop.new_state(np.zeros((n, 1)), P, acquisition_trials=0)
    for k in range(8):  # 2 min apart; the last trial is followed by a day (maximal EM)
        pop.expose(s, np.ones((n, 1), bool), True, P, gap_to_next_min=2 if k < 7 else None)
        pop.advance(s, 2 / 60)
    pop.advance(s, 24)
    pop.retrieve(s, np.ones((n, 1), bool), True, 0.0, P)
    return s


@pytest.fixture(scope="module")
def weighted_by_dose():
    """Window-weighted occupancy for each dose, infusion starting at the retrieval or 6 h later."""
    t = np.arange(0.0, 12 * 60.0 + 1, 1.0)
    now = np.array([window_weighted_occupancy_min(t, _occupancy(d, t), 0.0, P.lability_tau_min)[0]
                    for d in DOSES_MG_PER_KG])
    t6 = t + 360.0  # the same infusion 6 h after retrieval
    late = np.array([window_weighted_occupancy_min(t6, _occupancy(d, t), 0.0, P.lability_tau_min)[0]
                     for d in DOSES_MG_PER_KG])
    return now, late


def test_population_dose_response_monotone_with_plateau(weighted_by_dose):
    now, late = weighted_by_dose
    assert np.all(np.diff(now) > 0)  # more drug, more occupancy in the window
    s = _trained_retrieved(len(DOSES_MG_PER_KG))
    pop.restabilise_weighted(s, now, P)
    pop.advance(s, 24)
    resp = pop.response(s, P)[:, 0]
    assert np.all(np.diff(resp) <= 1e-12)  # non-increasing in dose
    assert resp[-1] < 0.6 * resp[0]  # a real effect at the top
    # plateau: the last doubling (2 -> 4 mg/kg) changes the response far less than the first
    # effective step (0 -> 0.25 mg/kg)
    assert abs(resp[-1] - resp[-2]) < 0.1 * abs(resp[0] - resp[3])
    # the same infusions 6 h after retrieval do nothing (within 1% of no drug)
    s2 = _trained_retrieved(len(DOSES_MG_PER_KG))
    pop.restabilise_weighted(s2, late, P)
    pop.advance(s2, 24)
    assert np.allclose(pop.response(s2, P)[:, 0], resp[0], atol=0.01)


def test_reference_dose_response_matches_population(weighted_by_dose):
    now, _ = weighted_by_dose
    out = []
    for iw in now:
        m = ReferenceModel(2, P, n_cues=1)
        x = np.array([1.0, 1.0])
        t = 0.0
        for k in range(8):
            m.trial(x, 1.0, t, gap_to_next_min=2 if k < 7 else None)
            t += 2 / 60
        t += 24
        m.trial(x, 0.0, t)
        m.drug(iw)
        out.append(m.response(x, t + 24))
    out = np.array(out)
    assert np.all(np.diff(out) <= 1e-12)
    s = _trained_retrieved(len(now))
    pop.restabilise_weighted(s, now, P)
    pop.advance(s, 24)
    np.testing.assert_allclose(out, pop.response(s, P)[:, 0], atol=0.03)


def test_restabilise_window_timing_api():
    """restabilise(): the same plain integral has ~no effect when the window starts 6 h later."""
    s = _trained_retrieved(3)
    integ = np.array([0.0, 20.0, 20.0])
    early = _trained_retrieved(3)
    pop.restabilise(early, integ, window_start_min=0.0, window_stop_min=60.0, params=P)
    pop.restabilise(s, integ, window_start_min=np.array([0.0, 360.0, 420.0]),
                    window_stop_min=np.array([60.0, 420.0, 480.0]), params=P)
    pop.advance(early, 24)
    pop.advance(s, 24)
    r_early, r_late = pop.response(early, P)[:, 0], pop.response(s, P)[:, 0]
    assert r_early[1] < 0.6 * r_early[0]
    assert abs(r_late[1] - r_late[0]) < 0.01 and abs(r_late[2] - r_late[0]) < 0.01


def test_no_retrieval_no_effect_at_any_dose(weighted_by_dose):
    now, _ = weighted_by_dose
    s = pop.new_state(np.zeros((len(now), 1)), P, acquisition_trials=0)
    for _ in range(8):
        pop.expose(s, np.ones((len(now), 1), bool), True, P, gap_to_next_min=2)
        pop.advance(s, 2 / 60)
    pop.advance(s, 24)  # no retrieval: acquisition lability has long decayed
    before = pop.response(s, P)[:, 0]
    pop.restabilise_weighted(s, now, P)
    np.testing.assert_allclose(pop.response(s, P)[:, 0], before, atol=1e-3)
