"""Trial spec validation: arms, factorial designs, repeated sessions, visit schedules."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconsolidate.exceptions import InputError
from reconsolidate.trial import TrialSpec, load_trial_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "trials"

BASE = {
    "name": "t",
    "follow_up_days": 56,
    "cohort": {"preset": "kare2022"},
    "protocols": {
        "ket3": {
            "sessions": [
                {"day": d, "retrieval": "none", "drug": "ketamine",
                 "regimen": {"infusion": [{"start_min": 0, "duration_min": 40,
                                           "dose_mg_per_kg": 0.8}]}}
                for d in (0, 7, 14)
            ]
        },
        "sal3": {"sessions": [{"day": d, "retrieval": "none", "drug": "saline"}
                              for d in (0, 7, 14)]},
    },
}


def test_examples_validate() -> None:
    for f in sorted(EXAMPLES.glob("*.toml")):
        spec = load_trial_spec(f)
        assert spec.all_arms()


def test_factorial_two_by_two_with_repeated_sessions() -> None:
    spec = TrialSpec.model_validate(
        {**BASE, "factorial": {"protocols": ["ket3", "sal3"], "therapies": ["mbrp", "education"]}}
    )
    names = [a.name for a in spec.all_arms()]
    assert names == ["ket3+mbrp", "ket3+education", "sal3+mbrp", "sal3+education"]
    assert [s.day for s in spec.protocols["ket3"].sessions] == [0, 7, 14]


def test_visit_schedule_defaults_to_every_14_days_ending_at_follow_up() -> None:
    spec = TrialSpec.model_validate({**BASE, "arms": [{"name": "a", "protocol": "sal3"}]})
    assert spec.visit_days() == [14, 28, 42, 56]


@pytest.mark.parametrize(
    ("patch", "msg"),
    [
        ({"arms": []}, "at least one arm"),
        ({"cohort": None, "arms": [{"name": "a", "protocol": "sal3"}]}, "has no cohort"),
        ({"arms": [{"name": "a", "protocol": "nope"}]}, "unknown protocol"),
        ({"arms": [{"name": "a", "protocol": "sal3"}, {"name": "a", "protocol": "sal3"}]},
         "unique"),
        ({"arms": [{"name": "a", "protocol": "sal3"}], "memory": {"bogus": 1.0}},
         "unknown memory parameter"),
        ({"arms": [{"name": "a", "protocol": "sal3"}],
          "protocols": {"sal3": {"sessions": [{"day": 0, "retrieval": "none",
                                                "drug": "ketamine"}]}}}, "regimen"),
        ({"arms": [{"name": "a", "protocol": "sal3"}],
          "protocols": {"sal3": {"sessions": [
              {"day": 0, "retrieval": "alcohol_prediction_error", "drug": "saline",
               "retrieval_cues": ["casino"]}]}}}, "unknown cue class"),
        # nothing may act inside the unobserved burn-in (its rounds would absorb the effect)
        ({"arms": [{"name": "a", "protocol": "sal3"}],
          "protocols": {"sal3": {"sessions": [{"day": -29, "retrieval": "none",
                                                "drug": "saline"}]}}},
         r"protocols\.sal3\.sessions\.0\.day = -29: must lie in the observed days \[-28, 55\]"),
        ({"arms": [{"name": "a", "protocol": "sal3"}],
          "protocols": {"sal3": {"sessions": [{"day": 56, "retrieval": "none",
                                                "drug": "saline"}]}}}, "observed days"),
        ({"arms": [{"name": "a", "protocol": "sal3"}],
          "protocols": {"sal3": {"sessions": [{"day": 0, "retrieval": "none", "drug": "saline"}],
                                 "lab_days": [-40, 7]}}},
         r"lab_days = \[-40, 7\]: day -40 must lie"),
        ({"arms": [{"name": "a", "protocol": "sal3"}], "quit_day": 0, "detox_days": 30},
         "the detox would start on day -30, inside the unobserved burn-in"),
        ({"arms": [{"name": "a", "protocol": "sal3"}], "quit_day": -40},
         "quit_day = -40: inside the unobserved burn-in"),
        ({"arms": [{"name": "a", "protocol": "sal3", "therapy": "early"}],
          "therapies": {"early": {"preset": "met", "session_days": [-35, 0]}}},
         r"therapy 'early' has sessions on days \[-35\]"),
        ({"arms": [{"name": "a", "protocol": "ket3"}],
          "protocols": {"ket3": {"sessions": [{"day": 0, "retrieval": "none", "drug": "ketamine",
                                                "regimen": "r.toml", "pk_model": "foo"}]}}},
         r"pk_model = 'foo': unknown PK model; allowed: .*domino"),
        # a PK setting on a placebo session would be silently ignored
        ({"arms": [{"name": "a", "protocol": "sal3"}],
          "protocols": {"sal3": {"sessions": [{"day": 0, "retrieval": "none", "drug": "saline",
                                                "pk_model": "clements250"}]}}},
         "pk_model: only a ketamine session takes these, not a saline session"),
    ],
)
def test_invalid_specs(patch: dict, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        TrialSpec.model_validate({**BASE, **patch})


def test_load_reports_field_path(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text('name = "x"\nfollow_up_days = 10\n[cohort]\npreset = "das2019"\n'
                 '[protocols.p]\nsessions = [{ day = 0, retrieval = "nope", drug = "saline" }]\n'
                 '[[arms]]\nname = "a"\nprotocol = "p"\n')
    with pytest.raises(InputError, match=r"protocols\.p\.sessions\[0\]\.retrieval"):
        load_trial_spec(f)


def test_unknown_cohort_preset_names_the_field(tmp_path: Path) -> None:
    from reconsolidate.trial import make_plan

    spec = TrialSpec.model_validate({**BASE, "cohort": {"preset": "das2018"},
                                     "arms": [{"name": "a", "protocol": "sal3"}]})
    with pytest.raises(InputError, match=r"cohort\.preset = 'das2018': unknown cohort preset; "
                                         r"allowed: .*das2019"):
        make_plan(spec, tmp_path, 4, calibrated=False)


def test_per_arm_cohorts_without_a_trial_cohort() -> None:
    data = {k: v for k, v in BASE.items() if k != "cohort"}
    spec = TrialSpec.model_validate({**data, "arms": [
        {"name": "young", "protocol": "sal3", "cohort": {"preset": "das2019"}},
        {"name": "old", "protocol": "sal3", "cohort": {"preset": "dakwar2020"}},
    ]})
    from reconsolidate.trial import make_plan

    plan = make_plan(spec, ".", 10, calibrated=False)
    assert plan.arms[0].cohort.age_years != plan.arms[1].cohort.age_years


def test_make_plan_applies_calibrated_defaults_unless_disabled(monkeypatch) -> None:
    import reconsolidate.calibration.defaults as cal
    from reconsolidate.trial import make_plan

    fitted = {"behavior.craving_weight_logit": 5.5}
    monkeypatch.setattr(cal, "calibrated_parameters", lambda: fitted)
    spec = TrialSpec.model_validate({**BASE, "arms": [{"name": "a", "protocol": "sal3"}]})
    assert make_plan(spec, ".", 5).spec.behavior.craving_weight_logit == 5.5
    assert make_plan(spec, ".", 5, calibrated=False).spec.behavior.craving_weight_logit == 4.0
    explicit = TrialSpec.model_validate(
        {**BASE, "arms": [{"name": "a", "protocol": "sal3"}],
         "behavior": {"craving_weight_logit": 3.0}}
    )
    assert make_plan(explicit, ".", 5).spec.behavior.craving_weight_logit == 3.0
