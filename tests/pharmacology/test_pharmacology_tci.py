"""Target-controlled infusion: plasma (Jacobs / Bailey-Shafer) and effect site (Shafer-Gregg)."""

from __future__ import annotations

import numpy as np
import pytest

from reconsolidate.pharmacology import Regimen, load_regimen, simulate
from reconsolidate.pharmacology.dosing import build_schedule
from reconsolidate.pharmacology.models import get_model

TARGET = 350.0
FINE = np.round(np.arange(0.0, 60.0 + 1e-9, 1.0 / 60.0), 10)  # every second for 1 h


def _tci(site: str, target: float = TARGET, **kw: float) -> Regimen:
    return Regimen(tci=[{"start_min": 0, "duration_min": 60, "target": site,
                         "target_ng_ml": target}], **kw)


@pytest.mark.parametrize("model", ["domino", "hijazi", "clements250"])
def test_plasma_tci_reaches_target_after_first_interval_and_holds(model: str) -> None:
    # Hijazi's and Clements' large V1 need > 0.75 mg/kg/min in the first 10 s: raise the pump
    # limit so that it does not bind (the limit itself is tested below)
    reg = _tci("plasma", max_rate_mg_per_kg_per_min=0.75 if model == "domino" else 5.0)
    res = simulate(model, reg, 70.0, FINE)
    cp = res.plasma_ng_ml[0]
    first = reg.update_interval_min
    after = FINE >= first - 1e-9
    assert abs(cp[np.argmin(np.abs(FINE - first))] / TARGET - 1) < 0.02
    assert np.all(np.abs(cp[after] / TARGET - 1) < 0.02)
    # no overshoot at any second (tolerance: floating point only)
    assert cp.max() <= TARGET * (1 + 1e-6)


def test_plasma_tci_example_file_and_multiple_targets() -> None:
    reg = load_regimen("examples/regimens/tci-plasma-350.toml")
    res = simulate("domino", reg, 80.0, np.array([1.0, 15.0, 29.9]))
    np.testing.assert_allclose(res.plasma_ng_ml[0], TARGET, rtol=0.02)
    steps = Regimen(tci=[
        {"start_min": 0, "duration_min": 30, "target": "plasma", "target_ng_ml": 100},
        {"start_min": 30, "duration_min": 30, "target": "plasma", "target_ng_ml": 200},
        {"start_min": 60, "duration_min": 30, "target": "plasma", "target_ng_ml": 150},
    ])
    res = simulate("domino", steps, 70.0, np.array([20.0, 50.0, 85.0]))
    # stepping down lets the concentration fall by elimination first (rate 0)
    np.testing.assert_allclose(res.plasma_ng_ml[0], [100, 200, 150], rtol=0.02)


@pytest.mark.parametrize("model", ["domino", "kamp", "hijazi"])
def test_effect_site_tci_reaches_target_without_overshoot(model: str) -> None:
    reg = _tci("effect_site")
    res = simulate(model, reg, 70.0, FINE)
    ce = res.effect_site_ng_ml[0]
    assert ce.max() <= TARGET * (1 + 1e-3)  # look-ahead grid of 1/8 update interval
    reached = np.nonzero(ce >= 0.98 * TARGET)[0]
    assert reached.size
    t_reach = FINE[reached[0]]
    assert t_reach < 5.0
    assert np.all(np.abs(ce[FINE >= t_reach] / TARGET - 1) < 0.02)
    # effect-site targeting overshoots in plasma to drive the effect site (expected)
    assert res.plasma_ng_ml[0].max() > TARGET


@pytest.mark.parametrize("site", ["plasma", "effect_site"])
def test_max_pump_rate_respected(site: str) -> None:
    # Kamp's V1 (25 L) needs 0.75 mg/kg/min to reach 350 ng/mL in 10 s: the limit binds
    for limit in (0.75, 0.2):
        reg = _tci(site, max_rate_mg_per_kg_per_min=limit)
        s = build_schedule(reg, get_model("kamp"), np.array([70.0]), 2.79)
        assert s.rates_mg_per_min.max() <= limit * 70.0 * (1 + 1e-12)
        assert s.rates_mg_per_min.max() == pytest.approx(limit * 70.0)
        assert s.rates_mg_per_min.min() >= 0.0


def test_rate_limited_plasma_tci_still_converges_without_overshoot() -> None:
    reg = _tci("plasma", max_rate_mg_per_kg_per_min=0.2)
    res = simulate("kamp", reg, 70.0, FINE)
    cp = res.plasma_ng_ml[0]
    assert cp.max() <= TARGET * (1 + 1e-6)
    assert abs(cp[FINE == 30.0][0] / TARGET - 1) < 0.02


def test_tci_pump_runs_typical_model_patient_varies() -> None:
    reg = _tci("plasma")
    t = np.array([30.0])
    typ = simulate("domino", reg, np.full(200, 70.0), t)
    pop = simulate("domino", reg, np.full(200, 70.0), t, variability=True, seed=5)
    assert np.allclose(typ.plasma_ng_ml, TARGET, rtol=1e-3)
    cv = pop.plasma_ng_ml.std() / pop.plasma_ng_ml.mean()
    assert cv > 0.1  # the patients' own PK differs from the pump's model
    # same rates for everybody of the same weight
    assert np.allclose(pop.dose_mg, pop.dose_mg[0])


def test_pump_model_differs_from_simulated_model() -> None:
    reg = Regimen(tci=[{"start_min": 0, "duration_min": 60, "target": "plasma",
                        "target_ng_ml": 200}], pump_model="domino")
    res = simulate("kamp", reg, 70.0, np.array([45.0]))
    assert abs(res.plasma_ng_ml[0, 0] / 200 - 1) > 0.02  # mismatched model misses the target


def test_bolus_before_tci_is_accounted_for() -> None:
    reg = Regimen(bolus=[{"time_min": 0, "dose_mg_per_kg": 0.2}],
                  tci=[{"start_min": 5, "duration_min": 30, "target": "plasma",
                        "target_ng_ml": 150}])
    res = simulate("domino", reg, 70.0, np.array([4.0, 20.0, 34.0]))
    np.testing.assert_allclose(res.plasma_ng_ml[0, 1:], 150, rtol=0.02)
