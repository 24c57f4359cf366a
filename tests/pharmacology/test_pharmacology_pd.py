"""Pharmacodynamics: NMDA occupancy, psychedelic intensity, occupancy integrals, exposure."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconsolidate.exceptions import InputError
from reconsolidate.pharmacology import (
    Regimen,
    nmda_exposure,
    nmda_occupancy,
    occupancy_integral,
    psychedelic_intensity,
    simulate,
)


def test_worked_example_from_notes() -> None:
    # notes section 4.4 [D]: 100/200/350 ng/mL -> 0.31/0.47/0.61 (fu 0.53), 0.43/0.60/0.72 (0.88)
    c = np.array([100.0, 200.0, 350.0])
    np.testing.assert_allclose(nmda_occupancy(c), [0.31, 0.47, 0.61], atol=0.005)
    np.testing.assert_allclose(nmda_occupancy(c, fu=0.88), [0.43, 0.60, 0.72], atol=0.005)


def test_occupancy_hand_computed() -> None:
    # 237.73 ng/mL total, fu 1: 1 uM racemate -> S 0.5 uM / 0.3 + R 0.5 uM / 1.4
    load = 0.5 / 0.3 + 0.5 / 1.4
    assert nmda_occupancy(np.array([237.73]), fu=1.0)[0] == pytest.approx(load / (1 + load))
    s_only = nmda_occupancy(np.array([237.73]), fu=1.0, analyte="S-ketamine")[0]
    assert s_only == pytest.approx((1 / 0.3) / (1 + 1 / 0.3))


def test_occupancy_monotone_in_concentration_and_bounded() -> None:
    c = np.geomspace(1e-3, 1e7, 400)
    occ = nmda_occupancy(c)
    assert np.all(np.diff(occ) > 0)
    assert occ[0] > 0 and occ[-1] < 1 and occ[-1] > 0.9999


@settings(max_examples=20, deadline=None)
@given(dose=st.floats(0.05, 1.5), factor=st.floats(1.05, 3.0))  # <= 4.5 mg/kg
def test_occupancy_rises_with_dose(dose: float, factor: float) -> None:
    t = np.array([5.0, 20.0, 40.0, 90.0])
    lo = simulate("domino", Regimen(infusion=[{"start_min": 0, "duration_min": 40,
                                               "dose_mg_per_kg": dose}]), 70.0, t)
    hi = simulate("domino", Regimen(infusion=[{"start_min": 0, "duration_min": 40,
                                               "dose_mg_per_kg": dose * factor}]),
                  70.0, t)
    assert np.all(hi.nmda_occupancy > lo.nmda_occupancy)


def test_occupancy_saturates_with_dose() -> None:
    """Equal dose steps (0.5 -> 2.5 -> 4.5 mg/kg over 40 min, up to the largest plausible
    dose): the second gains far less occupancy than the first (one-site binding)."""
    doses = [0.5, 2.5, 4.5]
    peaks = []
    for d in doses:
        r = Regimen(infusion=[{"start_min": 0, "duration_min": 40, "dose_mg_per_kg": d}])
        peaks.append(simulate("domino", r, 70.0, np.array([40.0])).nmda_occupancy[0, 0])
    gain_low = peaks[1] - peaks[0]
    gain_high = peaks[2] - peaks[1]
    assert peaks[2] > 0.85 and gain_high < gain_low / 3


def test_psychedelic_intensity_linear() -> None:
    c = np.array([0.0, 50.0, 100.0, 200.0])
    np.testing.assert_allclose(psychedelic_intensity(c), [0, 0.25, 0.5, 1.0])


def test_psychedelic_intensity_saturates_at_its_ceiling() -> None:
    c = np.array([-5.0, 300.0, 400.0, 1000.0, 1e6])
    np.testing.assert_allclose(psychedelic_intensity(c), [0, 1.5, 2.0, 2.0, 2.0])
    np.testing.assert_allclose(psychedelic_intensity(c, ceiling=1.0), [0, 1, 1, 1, 1])
    with pytest.raises(InputError, match="ceiling"):
        psychedelic_intensity(c, ceiling=0.0)


def test_psychedelic_intensity_reads_the_effect_site_not_the_bolus_plasma_spike() -> None:
    """A 0.1 mg/kg bolus: the three-compartment plasma peak (dose / V1, at the bolus) is a
    momentary spike far above Bowdle's range, which nobody feels; the effect site, which
    lags the plasma (ke0), peaks well below it and sets the intensity."""
    r = Regimen(bolus=[{"time_min": 0, "dose_mg_per_kg": 0.1}])
    e = nmda_exposure(r, 70.0, window_start_min=0, window_stop_min=120, resolution_min=0.1)
    assert e.peak_plasma_ng_ml[0] > 1000.0
    assert e.peak_effect_site_ng_ml[0] < 0.3 * e.peak_plasma_ng_ml[0]
    assert e.psychedelic_intensity_peak[0] == pytest.approx(
        e.peak_effect_site_ng_ml[0] / 200.0)
    assert e.psychedelic_intensity_peak[0] < 2.0


def test_occupancy_integral_exact_for_piecewise_linear() -> None:
    t = np.array([0.0, 1.0, 3.0, 4.0])
    y = np.array([[0.0, 1.0, 1.0, 0.0], [0.2, 0.2, 0.2, 0.2]])
    # window [0.5, 3.5]: first curve 0.5*(0.5+1)/2... computed by hand
    got = occupancy_integral(t, y, 0.5, 3.5)
    first = 0.5 * (0.5 + 1.0) / 2 + 2.0 + 0.5 * (1.0 + 0.5) / 2
    np.testing.assert_allclose(got, [first, 0.2 * 3.0])
    np.testing.assert_allclose(occupancy_integral(t, y[1], 1.0, 1.0), [0.0])
    with pytest.raises(InputError, match="window"):
        occupancy_integral(t, y, -1.0, 2.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.01, 5.0), min_size=1, max_size=12),
    st.integers(0, 2**32 - 1),
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
)
def test_occupancy_integral_matches_the_interpolant(steps, seed, u0, u1) -> None:
    """Oracle: the trapezoid over the window's own breakpoints (the window edges and the
    samples inside it), each value from np.interp: exact for a piecewise-linear function."""
    t = np.concatenate([[0.0], np.cumsum(steps)])
    y = np.random.default_rng(seed).uniform(0, 1, (3, t.size))
    start, stop = sorted((u0 * t[-1], u1 * t[-1]))
    xs = np.unique(np.concatenate([[start, stop], t[(t > start) & (t < stop)]]))
    want = [float(np.sum(0.5 * (np.interp(xs[1:], t, r) + np.interp(xs[:-1], t, r))
                         * np.diff(xs))) for r in y]
    np.testing.assert_allclose(occupancy_integral(t, y, start, stop), want, rtol=1e-12,
                               atol=1e-14)


def test_nmda_exposure_window_and_shapes() -> None:
    r = Regimen(infusion=[{"start_min": 0, "duration_min": 40, "dose_mg_per_kg": 0.8}])
    w = np.array([60.0, 70.0, 90.0])
    e = nmda_exposure(r, w, window_start_min=-30, window_stop_min=240)
    for arr in (e.occupancy_integral_min, e.mean_occupancy, e.peak_occupancy,
                e.peak_plasma_ng_ml, e.peak_effect_site_ng_ml, e.psychedelic_intensity_peak,
                e.dose_mg):
        assert arr.shape == (3,)
    np.testing.assert_allclose(e.dose_mg, 0.8 * w)
    # linear weight scaling (Domino, mg/kg): identical concentrations for any weight
    np.testing.assert_allclose(e.occupancy_integral_min, e.occupancy_integral_min[0])
    assert e.peak_plasma_ng_ml[0] == pytest.approx(385, rel=0.01)  # end of infusion, golden
    # the effect site lags a little (ke0 0.65/min): its peak just after the infusion ends
    assert 370 < e.peak_effect_site_ng_ml[0] < e.peak_plasma_ng_ml[0]
    assert e.psychedelic_intensity_peak[0] == pytest.approx(e.peak_effect_site_ng_ml[0] / 200)
    # a window entirely before the drug sees nothing; one hours later sees little
    before = nmda_exposure(r, 70.0, window_start_min=-60, window_stop_min=0)
    assert before.occupancy_integral_min[0] == 0.0
    late = nmda_exposure(r, 70.0, window_start_min=600, window_stop_min=870)
    assert late.occupancy_integral_min[0] < 0.1 * e.occupancy_integral_min[0]
    # the fine-resolution integral agrees with the default one
    fine = nmda_exposure(r, 70.0, window_start_min=-30, window_stop_min=240, resolution_min=0.05)
    assert fine.occupancy_integral_min[0] == pytest.approx(e.occupancy_integral_min[0], rel=2e-3)
    with pytest.raises(InputError):
        nmda_exposure(r, 70.0, window_start_min=10, window_stop_min=5)
