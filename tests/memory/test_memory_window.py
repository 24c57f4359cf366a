"""Window-weighted occupancy integral: closed form against numerical quadrature (the oracle)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad

from reconsolidate.memory.params import MemoryParams
from reconsolidate.memory.window import (
    damage_fraction,
    window_mean_weight,
    window_weighted_occupancy_min,
)


def _oracle(t, occ, t0, tau):
    f = lambda x: np.interp(x, t, occ) * np.exp(-(x - t0) / tau)  # noqa: E731
    a = max(t0, t[0])
    if a >= t[-1]:
        return 0.0
    pts = [p for p in t if a < p < t[-1]]
    return quad(f, a, t[-1], points=pts or None, limit=500)[0]


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 12),
    seed=st.integers(0, 10_000),
    t0=st.floats(-30.0, 200.0),
    tau=st.floats(5.0, 300.0),
)
def test_closed_form_matches_quadrature(n, seed, t0, tau):
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.uniform(0.5, 40.0, n))
    occ = rng.uniform(0.0, 1.0, n)
    got = window_weighted_occupancy_min(t, occ, t0, tau)[0]
    assert np.isclose(got, _oracle(t, occ, t0, tau), rtol=1e-7, atol=1e-9)
    # invariants: non-negative and at most the plain integral after t0
    keep = t >= t0
    tt = np.concatenate([[max(t0, t[0])], t[keep]]) if t0 < t[-1] else t[-1:]
    plain = np.trapezoid(np.interp(tt, t, occ), tt)
    assert -1e-12 <= got <= plain + 1e-9
    # a very long lability time constant gives the plain integral (no cancellation)
    assert np.isclose(window_weighted_occupancy_min(t, occ, t0, 1e12)[0], plain,
                      rtol=1e-6, atol=1e-9)


def test_constant_occupancy_and_mean_weight_agree():
    t = np.linspace(30.0, 90.0, 61)
    occ = np.full_like(t, 0.4)
    tau = 60.0
    exact = window_weighted_occupancy_min(t, occ, 0.0, tau)[0]
    via_mean = 0.4 * 60.0 * window_mean_weight(30.0, 90.0, tau)
    assert np.isclose(exact, via_mean, rtol=1e-12)
    # closed form: 0.4 tau (e^-0.5 - e^-1.5)
    assert np.isclose(exact, 0.4 * tau * (np.exp(-0.5) - np.exp(-1.5)), rtol=1e-12)


def test_window_six_hours_late_is_negligible():
    assert window_mean_weight(360.0, 420.0, 60.0) < 0.003 * window_mean_weight(0.0, 60.0, 60.0)
    assert window_mean_weight(-60.0, -1.0, 60.0) == 0.0  # entirely before retrieval


def test_damage_is_saturating_and_bounded():
    p = MemoryParams()
    iw = np.array([0.0, 1.0, 5.0, 20.0, 1e6])
    d = damage_fraction(iw, 1.0, p)
    assert d[0] == 0.0 and np.all(np.diff(d) > 0)
    assert np.isclose(d[-1], p.restabilization_damage_max)
    assert np.isclose(d[2], p.restabilization_damage_max * (1 - np.exp(-1.0)))
    assert np.all(damage_fraction(iw, 0.0, p) == 0.0)  # no lability, no damage
