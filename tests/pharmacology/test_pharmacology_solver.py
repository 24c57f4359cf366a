"""Exact solver vs the solve_ivp oracle (hypothesis), and solver edge cases."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconsolidate.exceptions import ExtrapolationWarning
from reconsolidate.pharmacology import Regimen, get_model, list_models, simulate
from reconsolidate.pharmacology.dosing import build_schedule
from reconsolidate.pharmacology.oracle import propagate_ode
from reconsolidate.pharmacology.simulate import draw_eta
from reconsolidate.pharmacology.solver import Schedule, propagate, system_matrices


@st.composite
def regimens(draw: st.DrawFn) -> Regimen:
    n_inf = draw(st.integers(0, 3))
    t = 0.0
    infusions = []
    for i in range(n_inf):
        gap = 0.0 if i == 0 else draw(st.floats(0.0, 30.0))
        rate = draw(st.floats(0.001, 0.7))
        # at most 4.5 mg/kg per step of up to an hour (regimen.MAX_DOSE_MG_PER_KG)
        dur = draw(st.floats(0.5, min(60.0, 4.5 / rate)))
        infusions.append({"start_min": t + gap, "duration_min": dur,
                          "rate_mg_per_kg_per_min": rate})
        t += gap + dur
    boluses = [{"time_min": draw(st.floats(0.0, 120.0)), "dose_mg_per_kg": draw(st.floats(0.01, 1))}
               for _ in range(draw(st.integers(0 if n_inf else 1, 2)))]
    if not infusions:
        boluses[0]["time_min"] = 0.0
    # a regimen may give at most 4.5 mg/kg within any hour (regimen.MAX_DOSE_MG_PER_KG): scale
    # the drawn amounts down to at most 4.4 mg/kg in all
    total = (sum(x["rate_mg_per_kg_per_min"] * x["duration_min"] for x in infusions)
             + sum(b["dose_mg_per_kg"] for b in boluses))
    scale = min(1.0, 4.4 / total)
    for x in infusions:
        x["rate_mg_per_kg_per_min"] *= scale
    for b in boluses:
        b["dose_mg_per_kg"] *= scale
    return Regimen(infusion=infusions, bolus=boluses)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    regimen=regimens(),
    model=st.sampled_from(list_models()),
    ke0=st.floats(0.05, 5.0),
    seed=st.integers(0, 1000),
    times=st.lists(st.floats(0.0, 240.0), min_size=1, max_size=8),
)
def test_exact_solver_matches_ode_oracle(regimen: Regimen, model: str, ke0: float, seed: int,
                                         times: list[float]) -> None:
    m = get_model(model)
    w = np.array([55.0, 70.0, 95.0])
    params = m.individual_parameters(w, female=np.array([True, False, True]),
                                     eta=draw_eta(m, seed, 0, 3))
    a, b, obs = system_matrices(m, params, np.full(3, ke0))
    sched = build_schedule(regimen, m, w, ke0)
    # The requested times plus a fixed 2.5-min grid: the grid gives each curve its real scale,
    # so the relative-error floor below is meaningful even for times like 1e-109 min.
    t = np.unique(np.concatenate([np.array(times), np.linspace(0.0, 240.0, 97)]))
    fast = propagate(a, b, obs, sched, t)
    # Radau (implicit, order 5): LSODA can stall indefinitely inside its Fortran loop on some
    # generated schedules (seen in CI-like runs); Radau is slower but always terminates.
    slow = propagate_ode(a, b, obs, sched, t, method="Radau", rtol=1e-10, atol=1e-12)
    scale = np.abs(slow).max(axis=2, keepdims=True)  # per patient and output
    # 1e-6 relative to the value, with a floor of 1e-9 of the curve's scale where it is ~0
    err = np.abs(fast - slow) / np.maximum(np.abs(slow), 1e-3 * scale + 1e-300)
    assert np.all(err < 1e-6), float(err.max())


def test_radau_oracle_agrees_on_dakwar() -> None:
    m = get_model("domino")
    r = Regimen(infusion=[{"start_min": 0, "duration_min": 2, "dose_mg_per_kg": 0.11},
                          {"start_min": 2, "duration_min": 50, "dose_mg_per_kg": 0.60}])
    w = np.array([70.0])
    a, b, obs = system_matrices(m, m.individual_parameters(w), np.array([0.652]))
    s = build_schedule(r, m, w, 0.652)
    t = np.arange(0.0, 361.0, 7.0)
    fast = propagate(a, b, obs, s, t)
    slow = propagate_ode(a, b, obs, s, t, method="Radau", rtol=1e-10, atol=1e-16)
    np.testing.assert_allclose(fast[:, :, 1:], slow[:, :, 1:], rtol=1e-6)


def test_times_before_zero_unsorted_and_duplicated() -> None:
    r = Regimen(bolus=[{"time_min": 0, "dose_mg": 20}])
    t = np.array([30.0, -5.0, 0.0, 30.0, 10.0])
    res = simulate("domino", r, 70.0, t)
    cp = res.plasma_ng_ml[0]
    assert cp[1] == 0.0
    assert cp[0] == cp[3]
    # bolus at time 0 counts at t = 0 (right-continuous): Cp(0) = dose / V1
    assert cp[2] == np.float64(20.0 / 4.41 * 1000.0) or abs(cp[2] / (20 / 4.41 * 1000) - 1) < 1e-12
    assert cp[4] > cp[0] > 0


def test_ke0_equal_to_an_exponent_is_not_singular() -> None:
    m = get_model("domino")
    mc = m.micro_constants(70.0)
    from reconsolidate.pharmacology import macro_constants

    lam = macro_constants(**mc)["lambda_per_min"]
    r = Regimen(infusion=[{"start_min": 0, "duration_min": 10, "dose_mg_per_kg": 0.5}])
    res = simulate("domino", r, 70.0, np.array([5.0, 10.0, 30.0]), ke0_per_min=float(lam[1]))
    near = simulate("domino", r, 70.0, np.array([5.0, 10.0, 30.0]),
                    ke0_per_min=float(lam[1]) * (1 + 1e-7))
    assert np.all(np.isfinite(res.effect_site_ng_ml))
    np.testing.assert_allclose(res.effect_site_ng_ml, near.effect_site_ng_ml, rtol=1e-5)


def test_schedule_with_gap_and_mixed_absolute_doses() -> None:
    r = Regimen(
        infusion=[{"start_min": 0, "duration_min": 10, "dose_mg": 20.0},
                  {"start_min": 30, "duration_min": 10, "rate_mg_per_kg_per_h": 6.0}],
        bolus=[{"time_min": 20, "dose_mg_per_kg": 0.1}],
    )
    w = np.array([50.0, 100.0])
    s = build_schedule(r, get_model("domino"), w, 0.652)
    # 20 mg + 0.1 mg/kg bolus + 6 mg/kg/h for 10 min (1 mg/kg)
    np.testing.assert_allclose(s.total_dose_mg(), [20 + 5 + 50, 20 + 10 + 100])
    assert isinstance(s, Schedule)
    res = simulate("domino", r, w, np.array([25.0]))
    # the 100-kg patient got more drug in mg/kg for the bolus but the same absolute first dose
    assert res.plasma_ng_ml.shape == (2, 1)


def test_metabolite_model_produces_norketamine() -> None:
    r = Regimen(infusion=[{"start_min": 0, "duration_min": 60, "rate_mg_per_kg_per_h": 1.0}])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        res = simulate("flint", r, 20.0, np.array([0.0, 30.0, 60.0, 120.0]))
    assert res.norketamine_plasma_ng_ml is not None
    assert res.norketamine_plasma_ng_ml[0, 0] == 0.0
    assert np.all(res.norketamine_plasma_ng_ml[0, 1:] > 0)
    # occupancy includes the metabolite: higher than from the parent alone
    from reconsolidate.pharmacology import nmda_occupancy

    parent_only = nmda_occupancy(res.effect_site_ng_ml, analyte="S-ketamine")
    assert np.all(res.nmda_occupancy[0, 1:] > parent_only[0, 1:])


def test_oracle_and_solver_agree_on_subnormal_gap_between_boluses() -> None:
    """Regression (found by hypothesis): a bolus 5e-324 min after another once made the Radau
    oracle return NaN; both paths must treat the pair as back-to-back doses."""
    m = get_model("clements250")
    w = np.array([55.0, 70.0, 95.0])
    params = m.individual_parameters(w, female=np.array([True, False, True]),
                                     eta=draw_eta(m, 0, 0, 3))
    a, b, obs = system_matrices(m, params, np.full(3, 1.0))
    r = Regimen(bolus=[{"time_min": 0.0, "dose_mg_per_kg": 1.0},
                       {"time_min": 5e-324, "dose_mg_per_kg": 1.0}])
    sched = build_schedule(r, m, w, 1.0)
    t = np.linspace(0.0, 240.0, 97)
    fast = propagate(a, b, obs, sched, t)
    slow = propagate_ode(a, b, obs, sched, t, method="Radau", rtol=1e-10, atol=1e-12)
    assert np.all(np.isfinite(slow))
    np.testing.assert_allclose(fast[:, :, 1:], slow[:, :, 1:], rtol=1e-6)
    # both doses are in: twice the single-bolus curve after t = 0
    single = propagate(a, b, obs, build_schedule(
        Regimen(bolus=[{"time_min": 0.0, "dose_mg_per_kg": 1.0}]), m, w, 1.0), t)
    np.testing.assert_allclose(fast[:, :, 1:], 2 * single[:, :, 1:], rtol=1e-9)


def test_propagate_rejects_observation_rows_mixing_states() -> None:
    m = get_model("domino")
    w = np.array([70.0])
    a, b, obs = system_matrices(m, m.individual_parameters(w), np.array([0.652]))
    sched = build_schedule(Regimen(bolus=[{"time_min": 0, "dose_mg": 20}]), m, w, 0.652)
    mixed = obs.copy()
    mixed[0, 1, 0] = 0.5  # effect site + part of the central amount
    with pytest.raises(ValueError, match="select one state"):
        propagate(a, b, mixed, sched, np.array([1.0]))


def test_expm_augmented_matches_scipy_and_is_independent_of_batch() -> None:
    """The compiled batched exponential of TCI planning against scipy.linalg.expm."""
    from scipy.linalg import expm

    from reconsolidate.pharmacology.solver import expm_augmented

    rng = np.random.default_rng(3)
    k, n = 150, 4
    a = -np.abs(rng.random((k, n, n))) * rng.choice([0.01, 0.3, 3.0], (k, 1, 1))
    top = np.concatenate([a, rng.random((k, n, 1))], axis=2) * rng.choice([0.1, 10.0], (k, 1, 1))
    e = expm_augmented(top)
    full = np.zeros((k, n + 1, n + 1))
    full[:, :n, :] = top
    ref = expm(full)[:, :n, :]
    np.testing.assert_allclose(e, ref, rtol=1e-11, atol=1e-14)
    # a matrix's exponential does not depend on its batch mates (lanes are independent)
    assert np.array_equal(expm_augmented(top[70:71]), e[70:71])


@pytest.mark.parametrize("n_pat", [1, 63, 64, 65, 200])
def test_propagate_is_the_same_for_any_thread_count_and_batch(n_pat: int) -> None:
    """Blocks of 64 patients run on numba's thread count of Python threads: a patient's
    concentrations are bit-identical on one thread, on two, and alone in a batch of one."""
    import numba

    m = get_model("domino")
    w = np.linspace(50.0, 110.0, n_pat)
    params = m.individual_parameters(w, female=np.arange(n_pat) % 2 == 0,
                                     eta=draw_eta(m, 11, 0, n_pat))
    ke0 = np.full(n_pat, 0.4)
    a, b, obs = system_matrices(m, params, ke0)
    reg = Regimen(infusion=[{"start_min": 0.0, "duration_min": 40.0,
                             "rate_mg_per_kg_per_min": 0.0178}],
                  bolus=[{"time_min": 0.0, "dose_mg_per_kg": 0.1}])
    sched = build_schedule(reg, m, w, ke0)
    t = np.linspace(0.0, 120.0, 25)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = propagate(a, b, obs, sched, t)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = propagate(a, b, obs, sched, t)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(one, two)
    p = n_pat - 1
    alone = propagate(a[p:], b, obs[p:], build_schedule(reg, m, w[p:], ke0[p:]), t)
    assert np.array_equal(alone[0], one[p]) and np.all(one[:, :, 1:] > 0.0)
