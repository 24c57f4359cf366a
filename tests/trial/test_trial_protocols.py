"""Protocol boundary conditions through the whole engine (lab urge after one session)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reconsolidate.memory import population as pop
from reconsolidate.pharmacology import simulate
from reconsolidate.trial import TrialSpec, engine, make_plan, simulate_chunk

REG = str(Path(__file__).resolve().parents[2] / "examples" / "regimens" / "dakwar2020.toml")
DAS_REG = str(Path(__file__).resolve().parents[2] / "examples" / "regimens" / "das2019.toml")


def _session(**kw) -> dict:
    return {"day": 0, "drug": "ketamine", "regimen": REG, **kw}


def _spec(sessions: dict[str, dict], **extra) -> TrialSpec:
    return TrialSpec.model_validate({
        "name": "p", "seed": 3, "baseline_days": 7, "burn_in_days": 7, "follow_up_days": 8,
        "cohort": {"preset": "das2019"},
        "protocols": {k: {"sessions": [v], "lab_days": [-1, 7]} for k, v in sessions.items()},
        "arms": [{"name": k, "protocol": k} for k in sessions],
        **extra,
    })


@pytest.fixture(scope="module")
def urge() -> dict[str, float]:
    spec = _spec({
        "pe_now": _session(retrieval="alcohol_prediction_error", delay_min=0),
        "pe_6h": _session(retrieval="alcohol_prediction_error", delay_min=360),
        "pe_during": _session(retrieval="alcohol_prediction_error", delay_min=-30),
        "no_pe": _session(retrieval="alcohol_as_expected", delay_min=0),
        "saline": {"day": 0, "drug": "saline", "retrieval": "alcohol_prediction_error"},
    })
    plan = make_plan(spec, ".", 300, calibrated=False)
    out = {}
    for a in plan.arms:
        r = simulate_chunk(plan, a.index, 0, 0, 300)
        out[a.name] = float(np.mean(r.outcomes["urge_change"]))
    return out


def test_ketamine_right_after_prediction_error_retrieval_lowers_urge(urge) -> None:
    assert urge["pe_now"] < urge["saline"] - 3.0


def test_ketamine_six_hours_later_does_nothing(urge) -> None:
    """Outside the reconsolidation window (Nader 2000; Xue 2012): no more weakening than
    ketamine after a retrieval that did not destabilise the memory (both keep ketamine's
    non-specific motivation lift, which lowers drinking and so the cues' strength a little,
    hence not the saline arm)."""
    assert abs(urge["pe_6h"] - urge["no_pe"]) < 1.5
    assert urge["pe_6h"] > urge["pe_now"] + 10.0


def test_ketamine_during_retrieval_blocks_destabilisation(urge) -> None:
    """NMDA blockade at retrieval prevents destabilisation (Ben Mamou 2006)."""
    assert urge["pe_during"] > urge["pe_now"] + 2.0


def test_no_prediction_error_no_weakening(urge) -> None:
    """Retrieval without prediction error does not destabilise (Sevenster 2013)."""
    assert urge["no_pe"] > urge["pe_now"] + 2.0


def test_replicates_are_independent_cohorts() -> None:
    spec = _spec({"s": {"day": 0, "drug": "saline", "retrieval": "none"}}, replicates=2)
    plan = make_plan(spec, ".", 20, calibrated=False)
    r0 = simulate_chunk(plan, 0, 0, 0, 20)
    r1 = simulate_chunk(plan, 0, 1, 0, 20)
    assert not np.array_equal(r0.patients.age_years, r1.patients.age_years)


def _capture_restabilisation(monkeypatch: pytest.MonkeyPatch) -> list[np.ndarray]:
    """Record the weighted occupancy integral every restabilisation gets (also through
    ``restabilise``, which calls ``restabilise_weighted``)."""
    got: list[np.ndarray] = []
    original = pop.restabilise_weighted

    def spy(state, weighted_occupancy_min, params=None, **kw):
        got.append(np.array(weighted_occupancy_min, dtype=np.float64, copy=True))
        return original(state, weighted_occupancy_min, params, **kw)

    monkeypatch.setattr(pop, "restabilise_weighted", spy)
    return got


def _das_sessions(delays: list[float]) -> dict[str, dict]:
    return {f"d{d:g}": _session(regimen=DAS_REG, retrieval="alcohol_prediction_error",
                                delay_min=d) for d in delays}


@pytest.mark.parametrize("delay_min", [0.0, 20.0, -30.0])
def test_restabilisation_gets_the_exact_lability_weighted_integral(
    monkeypatch: pytest.MonkeyPatch, delay_min: float
) -> None:
    """The memory gets int occ(t) exp(-(t - t_ret)/tau) dt over the window, t_ret = the end of
    retrieval, from each patient's own PK (with variability): compared with Simpson's rule on a
    0.05-min grid of the pharmacology engine's occupancy (converged to ~1e-6). The engine's
    closed form is exact for the piecewise-linear interpolant of its samples (every minute, at
    each dose change and at 12 offsets up to 7 min after it), which cut the chords of the
    occupancy's steep rise in the first minutes of the TCI: within 0.05% (bound 0.2%; with
    1-min samples alone it was ~0.2% low). The former shortcut (plain integral x the window's
    mean weight) is ~2x low."""
    from scipy.integrate import simpson

    got = _capture_restabilisation(monkeypatch)
    plan = make_plan(_spec(_das_sessions([delay_min])), ".", 5, calibrated=False)
    r = simulate_chunk(plan, 0, 0, 0, 5)
    assert len(got) == 1
    s = plan.arms[0].protocol.sessions[0]
    assert s.pk_variability
    p = r.patients
    t = np.linspace(-delay_min, -delay_min + engine.RESTABILISATION_WINDOW_MIN, 7201)
    occ = simulate(s.pk_model, plan.arms[0].regimens[0], p.weight_kg, t,
                   sex=np.where(p.is_female, "F", "M"), age_years=p.age_years,
                   variability=True, seed=plan.spec.seed, patient_offset=int(p.index[0]),
                   ).nmda_occupancy
    tau = plan.memory_params.lability_tau_min
    oracle = simpson(occ * np.exp(-(t + delay_min) / tau), x=t, axis=1)
    assert np.ptp(oracle) > 0.1 * oracle.mean()  # the patients differ: per-patient PK
    np.testing.assert_allclose(got[0], oracle, rtol=2e-3)


def test_the_chunk_records_the_weighted_integral_the_memory_got(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``patients.parquet``'s weighted column is the dose the memory received, summed over the
    sessions (here two), and the plain column the unweighted integral over the same windows:
    larger, since the weight is < 1 after retrieval; for a drug 2 h late (weight at most
    exp(-2) over the occupancy) the weighted integral is at most exp(-2) of the plain one."""
    got = _capture_restabilisation(monkeypatch)
    sessions = {"two": [_session(regimen=DAS_REG, retrieval="alcohol_prediction_error",
                                 delay_min=0.0),
                        {**_session(regimen=DAS_REG, retrieval="alcohol_prediction_error",
                                    delay_min=0.0), "day": 2}],
                "late": [_session(regimen=DAS_REG, retrieval="alcohol_prediction_error",
                                  delay_min=120.0)]}
    spec = TrialSpec.model_validate({
        "name": "p", "seed": 3, "baseline_days": 7, "burn_in_days": 7, "follow_up_days": 8,
        "cohort": {"preset": "das2019"},
        "protocols": {k: {"sessions": v} for k, v in sessions.items()},
        "arms": [{"name": k, "protocol": k} for k in sessions],
    })
    plan = make_plan(spec, ".", 6, calibrated=False)
    r = simulate_chunk(plan, 0, 0, 0, 6)
    assert len(got) == 2
    np.testing.assert_array_equal(r.restabilisation_weighted_occupancy_min, got[0] + got[1])
    assert np.all(r.restabilisation_occupancy_min > 2.0 * r.restabilisation_weighted_occupancy_min)
    late = simulate_chunk(plan, 1, 0, 0, 6)
    assert np.all(late.restabilisation_occupancy_min > 10.0)
    assert np.all(late.restabilisation_weighted_occupancy_min
                  <= np.exp(-2.0) * late.restabilisation_occupancy_min)
    assert np.all(late.restabilisation_weighted_occupancy_min > 0.0)


def test_restabilisation_hardly_depends_on_the_window_beyond_four_tau(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the exact weighting, 4, 6 or 12 lability time constants (tau = 60 min) of window
    give the same drug effect: the weight left after 4 tau is exp(-4) = 2% and the occupancy
    of a 30-min TCI is long past its peak, so the integrals differ by < 1% (the slowest of 200
    patients: 0.85% between 240 and 720 min) (with the mean-weight shortcut the integral was
    ~1/window length: 13.6 / 10.6 / 5.9 occupancy x min at 70 kg)."""
    got = _capture_restabilisation(monkeypatch)
    plan = make_plan(_spec(_das_sessions([0.0])), ".", 200, calibrated=False)
    assert plan.memory_params.lability_tau_min == 60.0
    integral, urge = {}, {}
    for window in (240.0, 360.0, 720.0):
        monkeypatch.setattr(engine, "RESTABILISATION_WINDOW_MIN", window)
        got.clear()
        r = simulate_chunk(plan, 0, 0, 0, 200)
        integral[window] = got[0]
        urge[window] = r.outcomes["urge_change"]
    np.testing.assert_allclose(integral[240.0], integral[720.0], rtol=1.5e-2)
    np.testing.assert_allclose(integral[360.0], integral[720.0], rtol=2e-3)
    assert np.all(integral[240.0] <= integral[360.0]) and np.all(integral[360.0] <= integral[720.0])
    assert abs(np.mean(urge[240.0]) - np.mean(urge[720.0])) < 0.2
    assert abs(np.mean(urge[360.0]) - np.mean(urge[720.0])) < 0.02


def test_the_psychedelic_experience_comes_with_the_drug_whenever_it_is_given() -> None:
    """The non-specific pathway reads the effect-site peak of the whole regimen, whether the
    drug follows retrieval at once, 6 h later (outside the restabilisation window) or runs
    during it: the same patients (same PK draws) get the same intensity; it is Bowdle's
    Ce / 200 ng/mL, capped at 2, of a fine-grid oracle of the pharmacology engine."""
    from reconsolidate.pharmacology.pd import psychedelic_intensity

    spec = _spec({f"d{d:g}": _session(retrieval="alcohol_prediction_error", delay_min=d)
                  for d in (0.0, 360.0, -30.0)})
    plan = make_plan(spec, ".", 8, calibrated=False)
    got = [simulate_chunk(plan, a.index, 0, 0, 8).psychedelic_intensity_peak for a in plan.arms]
    assert np.all(got[0] > 0.5)
    np.testing.assert_allclose(got[1], got[0], rtol=1e-9)
    np.testing.assert_allclose(got[2], got[0], rtol=1e-9)
    r = simulate_chunk(plan, 0, 0, 0, 8)
    p = r.patients
    t = np.arange(0.0, 120.0, 0.02)
    ce = simulate("domino", plan.arms[0].regimens[0], p.weight_kg, t,
                  sex=np.where(p.is_female, "F", "M"), age_years=p.age_years,
                  variability=True, seed=plan.spec.seed, patient_offset=0).effect_site_ng_ml
    # the engine samples every minute, at every dose change and just after it (where an
    # effect-site peak falls): its peak is within 0.2% (1-min samples alone: up to 5% low)
    np.testing.assert_allclose(got[0], psychedelic_intensity(ce.max(axis=1)), rtol=2e-3)


def test_a_paediatric_pk_model_in_an_adult_trial_is_reported_not_silenced() -> None:
    """Herd 2007 was fitted on children (10.8-74.8 kg, 1-14 y, 1-1.5 mg/kg): adults given the
    Dakwar regimen with it are outside its validated range, and the chunk says so (the run
    writes these counts into metadata.json and prints them)."""
    spec = _spec({"herd": _session(retrieval="alcohol_prediction_error", pk_model="herd"),
                  "domino": _session(retrieval="alcohol_prediction_error")})
    plan = make_plan(spec, ".", 10, calibrated=False)
    herd = engine.domain_warnings(simulate_chunk(plan, 0, 0, 0, 10).domain_counts)
    assert any("PK model 'herd': age_years outside its validated range 1-14" in w
               and w.endswith("10 of 10 ketamine patient-sessions") for w in herd)
    assert any("PK model 'herd': total dose mg/kg" in w for w in herd)
    domino = engine.domain_warnings(simulate_chunk(plan, 1, 0, 0, 10).domain_counts)
    assert not any(w.startswith("PK model") for w in domino)
