"""Golden values: published/derived concentrations, stanpumpR macro constants, opentiva ke0."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from reconsolidate.exceptions import ExtrapolationWarning
from reconsolidate.pharmacology import (
    Regimen,
    get_model,
    ke0_from_tpeak,
    load_regimen,
    macro_constants,
    simulate,
    simulate_macro,
)
from reconsolidate.pharmacology.solver import Schedule, propagate, system_matrices

DAKWAR = Regimen(infusion=[
    {"start_min": 0, "duration_min": 2, "dose_mg_per_kg": 0.11},
    {"start_min": 2, "duration_min": 50, "dose_mg_per_kg": 0.60},
])
GRABSKI = Regimen(infusion=[{"start_min": 0, "duration_min": 40, "dose_mg_per_kg": 0.8}])
ZARATE = Regimen(infusion=[{"start_min": 0, "duration_min": 40, "dose_mg_per_kg": 0.5}])
DAKWAR_T = np.array([2, 10, 30, 52, 60, 120.0])
GRABSKI_T = np.array([20, 40, 60, 120.0])

# pharmacology notes section 3.1 (70 kg, exact piecewise-constant solution) [D]
TABLE_3_1 = {
    "domino": ([559, 205, 228, 253, 96, 52], [335, 385, 88, 57], 240),
    "clements250": ([61, 98, 165, 215, 181, 86], [175, 284, 185, 94], 177),
    "hijazi": ([98, 145, 214, 247, 178, 22], [251, 361, 159, 21], 225),
    "herd": ([175, 183, 237, 292, 199, 100], [298, 405, 191, 109], 253),
    "kamp": ([251, 198, 238, 282, 160, 73], [317, 405, 153, 80], 253),
}


def _sim(model: str, regimen: Regimen, t: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)  # Herd is paediatric
        return simulate(model, regimen, 70.0, t).plasma_ng_ml[0]


def test_domino_dakwar_golden_within_1_percent() -> None:
    got = _sim("domino", DAKWAR, DAKWAR_T)
    np.testing.assert_allclose(got, [559, 205, 228, 253, 96, 52], rtol=0.01)


def test_domino_grabski_golden_within_1_percent() -> None:
    got = _sim("domino", GRABSKI, GRABSKI_T)
    np.testing.assert_allclose(got, [335, 385, 88, 57], rtol=0.01)


def test_example_files_reproduce_golden_values() -> None:
    dak = load_regimen("examples/regimens/dakwar2020.toml")
    gra = load_regimen("examples/regimens/grabski2022.toml")
    zar = load_regimen("examples/regimens/zarate-0.5mgkg-40min.toml")
    np.testing.assert_allclose(_sim("domino", dak, DAKWAR_T), [559, 205, 228, 253, 96, 52],
                               rtol=0.01)
    np.testing.assert_allclose(_sim("domino", gra, GRABSKI_T), [335, 385, 88, 57], rtol=0.01)
    np.testing.assert_allclose(_sim("domino", zar, np.array([40.0])), [240], rtol=0.01)


@pytest.mark.parametrize("model", sorted(TABLE_3_1))
def test_all_models_reproduce_notes_table(model: str) -> None:
    dak, gra, zar = TABLE_3_1[model]
    # the table is rounded to whole ng/mL: allow 1% or 0.5 ng/mL
    np.testing.assert_allclose(_sim(model, DAKWAR, DAKWAR_T), dak, rtol=0.01, atol=0.5)
    np.testing.assert_allclose(_sim(model, GRABSKI, GRABSKI_T), gra, rtol=0.01, atol=0.5)
    np.testing.assert_allclose(_sim(model, ZARATE, np.array([40.0])), [zar], rtol=0.01)


def test_stanpumpr_remifentanil_macro_constants_6_significant_digits() -> None:
    # stanpumpR tests/testthat/test-advanceClosedForm0.R (remifentanil set)
    m = macro_constants(v1_l=3.968095, k10=0.5747944, k12=0.3998769, k13=0.01968828,
                        k21=0.2187194, k31=0.0258864, ke0_per_min=0.4410741)
    rt = 5e-6  # 6 significant digits
    np.testing.assert_allclose(m["lambda_per_min"], [1.094682, 0.1193807, 0.02490288], rtol=rt)
    np.testing.assert_allclose(m["c"], [0.2261336, 0.02540114, 0.0004752982], rtol=rt)
    np.testing.assert_allclose(m["c_over_lambda"], [0.2065748, 0.2127743, 0.01908607], rtol=rt)
    np.testing.assert_allclose(m["e"], [-0.1526017, 0.03482752, 0.0005037391], rtol=rt)
    assert m["e4"] == pytest.approx(0.1172705, rel=rt)
    assert m["c"].sum() == pytest.approx(1 / 3.968095, rel=1e-12)


def test_macro_constants_match_expm_eigenvalues() -> None:
    # remifentanil system through the expm-path matrix: same exponents
    from reconsolidate.pharmacology.models import get_model as gm

    model = gm("domino")
    mc = model.micro_constants(70.0)
    mac = macro_constants(ke0_per_min=0.652, **mc)
    a, _, _ = system_matrices(model, model.individual_parameters(np.array([70.0])),
                              np.array([0.652]))
    eig = np.sort(-np.linalg.eigvals(a[0]).real)[::-1]
    np.testing.assert_allclose(np.sort(np.append(mac["lambda_per_min"], 0.652))[::-1], eig,
                               rtol=1e-10)


@pytest.mark.parametrize("model", ["domino", "kamp", "hijazi", "herd"])
def test_macro_recursion_equals_expm_solver(model: str) -> None:
    m = get_model(model)
    ke0 = 0.8
    mac = macro_constants(ke0_per_min=ke0, **m.micro_constants(70.0))
    edges = np.array([0.0, 2.0, 52.0, 60.0])
    rates = np.array([3.85, 0.84, 2.0])
    boluses = [(0.0, 5.0), (55.5, 3.0)]
    t = np.array([0.0, 0.5, 2.0, 7.3, 52.0, 55.5, 60.0, 90.0, 240.0])
    cp_m, ce_m = simulate_macro(mac, ke0, edges, rates, boluses, t)
    a, b, obs = system_matrices(m, m.individual_parameters(np.array([70.0])), np.array([ke0]))
    sch = Schedule(edges, rates[:, None], np.array([0.0, 55.5]), np.array([[5.0], [3.0]]))
    out = propagate(a, b, obs, sch, t)[0]
    np.testing.assert_allclose(out[0], cp_m, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(out[1], ce_m, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize(
    ("model", "ke0"),
    [("domino", 0.652), ("kamp", 2.791), ("hijazi", 4.773), ("clements250", 5.2)],
)
def test_ke0_from_1min_tpeak_matches_opentiva(model: str, ke0: float) -> None:
    # opentiva/ketamine.py: "ke0 from tpeak 1 min" [C]; opentiva prints 2-4 significant digits
    rel = 0.5 * 10.0 ** -(len(str(ke0).replace(".", "").lstrip("0")) - 1) / ke0 * 1.01
    assert ke0_from_tpeak(model, 1.0) == pytest.approx(ke0, rel=rel)
    assert get_model(model).ke0_per_min == pytest.approx(ke0, rel=rel)


def test_domino_derived_volumes_and_clearance() -> None:
    # notes section 2.1 [D]: V1 4.41, V2 10.6, V3 178.2 L, CL 1.93 L/min at 70 kg
    p = get_model("domino").individual_parameters(np.array([70.0]))
    assert p["v1_l"][0] == pytest.approx(4.41, rel=1e-9)
    assert p["v2_l"][0] == pytest.approx(10.6, rel=5e-3)  # 10.57, notes round to 10.6
    assert p["v3_l"][0] == pytest.approx(178.2, rel=2e-3)
    assert p["cl_l_per_min"][0] == pytest.approx(1.93, rel=2e-3)
