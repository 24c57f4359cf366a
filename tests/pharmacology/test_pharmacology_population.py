"""Population variability: reproducible, chunk-independent draws; covariates; domain warnings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from reconsolidate.exceptions import DomainWarning, ExtrapolationWarning
from reconsolidate.pharmacology import Regimen, get_model, nmda_exposure, simulate
from reconsolidate.pharmacology.models import FEMALE_CLEARANCE_FACTOR

DAKWAR = Regimen(infusion=[
    {"start_min": 0, "duration_min": 2, "dose_mg_per_kg": 0.11},
    {"start_min": 2, "duration_min": 50, "dose_mg_per_kg": 0.60},
])
T = np.array([2.0, 30.0, 52.0, 120.0])


def test_draws_reproducible_and_chunk_independent() -> None:
    w = np.linspace(55, 95, 40)
    whole = simulate("domino", DAKWAR, w, T, variability=True, seed=11)
    again = simulate("domino", DAKWAR, w, T, variability=True, seed=11)
    assert np.array_equal(whole.plasma_ng_ml, again.plasma_ng_ml)
    parts = [simulate("domino", DAKWAR, w[a:b], T, variability=True, seed=11, patient_offset=a)
             for a, b in ((0, 7), (7, 25), (25, 40))]
    assert np.array_equal(whole.plasma_ng_ml, np.concatenate([p.plasma_ng_ml for p in parts]))
    other = simulate("domino", DAKWAR, w, T, variability=True, seed=12)
    assert not np.allclose(whole.plasma_ng_ml, other.plasma_ng_ml)


@pytest.mark.parametrize("model", ["domino", "flint"])
def test_patient_result_independent_of_block_mates(model: str) -> None:
    """The kernel runs up to 64 patients per block, one per SIMD lane: a patient's values must
    be bit-identical alone, in a partial block and at any lane position."""
    w = np.linspace(15.0, 110.0, 150)
    reg = Regimen(
        infusion=[{"start_min": 0, "duration_min": 2, "dose_mg_per_kg": 0.11},
                  {"start_min": 2, "duration_min": 50, "dose_mg_per_kg": 0.60}],
        bolus=[{"time_min": 75.5, "dose_mg_per_kg": 0.2}],
    )
    t = np.unique(np.concatenate([np.arange(0.0, 181.0, 1.0), [0.37, 52.5, 100.01]]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        whole = simulate(model, reg, w, t, variability=True, seed=5, sex="F")
        for a, b in ((0, 1), (1, 70), (70, 149), (149, 150)):
            part = simulate(model, reg, w[a:b], t, variability=True, seed=5, sex="F",
                            patient_offset=a)
            for name in ("plasma_ng_ml", "effect_site_ng_ml", "nmda_occupancy"):
                assert np.array_equal(getattr(whole, name)[a:b], getattr(part, name)), (a, name)


def test_exposure_chunk_independent() -> None:
    w = np.full(10, 75.0)
    e = nmda_exposure(DAKWAR, w, window_start_min=0, window_stop_min=180, variability=True,
                      seed=4)
    e2 = nmda_exposure(DAKWAR, w[6:], window_start_min=0, window_stop_min=180,
                       variability=True, seed=4, patient_offset=6)
    assert np.array_equal(e.occupancy_integral_min[6:], e2.occupancy_integral_min)


@pytest.mark.parametrize("model", ["domino", "herd"])
def test_parameter_cvs_match_model(model: str) -> None:
    m = get_model(model)
    n = 20000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        res = simulate(m, DAKWAR, np.full(n, 40.0), np.array([10.0]), variability=True, seed=3)
    for name, cv in m.bsv_cv.items():
        logp = np.log(res.parameters[name])
        omega = np.sqrt(np.log1p(cv**2))
        assert logp.std() == pytest.approx(omega, rel=0.03), name
    typ = m.individual_parameters(np.array([40.0]))
    # log-normal: the median equals the typical value
    assert np.median(res.parameters["cl_l_per_min"]) == pytest.approx(
        typ["cl_l_per_min"][0], rel=0.02)


def test_sex_covariate_on_clearance() -> None:
    m = get_model("domino")
    p_f = m.individual_parameters(np.array([70.0]), female=np.array([True]))
    p_m = m.individual_parameters(np.array([70.0]), female=np.array([False]))
    assert p_f["cl_l_per_min"][0] == pytest.approx(p_m["cl_l_per_min"][0] * FEMALE_CLEARANCE_FACTOR)
    assert p_f["v1_l"][0] == p_m["v1_l"][0]
    res = simulate("domino", DAKWAR, [70.0, 70.0], np.array([120.0]), sex=["F", "M"])
    assert res.plasma_ng_ml[0, 0] < res.plasma_ng_ml[1, 0]


def test_deduplicated_typical_patients_equal_individual_solution() -> None:
    w = np.array([70.0, 60.0, 70.0, 60.0])
    res = simulate("herd", DAKWAR, w, T, age_years=10)
    single = simulate("herd", DAKWAR, 60.0, T, age_years=10)
    assert np.array_equal(res.plasma_ng_ml[1], single.plasma_ng_ml[0])
    assert np.array_equal(res.plasma_ng_ml[0], res.plasma_ng_ml[2])


def test_allometric_weight_scaling() -> None:
    m = get_model("herd")
    p = m.individual_parameters(np.array([35.0, 70.0]))
    assert p["cl_l_per_min"][0] / p["cl_l_per_min"][1] == pytest.approx(0.5**0.75)
    assert p["v1_l"][0] / p["v1_l"][1] == pytest.approx(0.5)


def test_extrapolation_warnings() -> None:
    assert issubclass(ExtrapolationWarning, DomainWarning)
    with pytest.warns(ExtrapolationWarning, match="weight_kg"):
        simulate("herd", DAKWAR, 90.0, T)  # Herd: 10.8-74.8 kg
    with pytest.warns(ExtrapolationWarning, match="age_years"):
        simulate("herd", DAKWAR, 30.0, T, age_years=40)
    with pytest.warns(ExtrapolationWarning, match="dose"):
        big = Regimen(infusion=[{"start_min": 0, "duration_min": 10, "dose_mg_per_kg": 3.0}])
        simulate("herd", big, 30.0, T, age_years=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExtrapolationWarning)
        simulate("domino", DAKWAR, 70.0, T, age_years=40)  # inside: no warning
