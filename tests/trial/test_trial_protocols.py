"""Protocol boundary conditions through the whole engine (lab urge after one session)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reconsolidate.trial import TrialSpec, make_plan, simulate_chunk

REG = str(Path(__file__).resolve().parents[2] / "examples" / "regimens" / "dakwar2020.toml")


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
    """Outside the reconsolidation window (Nader 2000; Xue 2012)."""
    assert abs(urge["pe_6h"] - urge["saline"]) < 1.5


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
