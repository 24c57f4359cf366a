"""Trial spec validation: arms, factorial designs, repeated sessions, visit schedules."""

from __future__ import annotations

import re
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
         r"arms: names must be unique; 'a' appears more than once"),
        ({"arms": [{"name": "a", "protocol": "sal3"}], "memory": {"bogus": 1.0}},
         r"unknown key 'memory\.bogus' \(allowed: "),
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
         r"protocols\.sal3\.sessions\[0\]\.day = -29: must lie in the observed days \[-28, 55\]"),
        # values a session would silently ignore (review, session 12)
        ({"arms": [{"name": "a", "protocol": "sal3"}],
          "protocols": {"sal3": {"sessions": [
              {"day": 0, "retrieval": "alcohol_prediction_error", "drug": "saline",
               "retrieval_cues": []}]}}}, r"retrieval_cues = \[\]: a alcohol_prediction_error"),
        ({"arms": [{"name": "a", "protocol": "sal3"}],
          "protocols": {"sal3": {"sessions": [
              {"day": 0, "retrieval": "none", "drug": "saline", "delay_min": -60}]}}},
         r"delay_min: a session with retrieval = 'none' takes none of these"),
        ({"arms": [{"name": "a", "protocol": "sal3"}],
          "protocols": {"sal3": {"sessions": [
              {"day": 0, "retrieval": "none", "drug": "saline",
               "retrieval_cues": ["pub_bar"]}]}}}, r"retrieval_cues: a session with retrieval"),
        ({"arms": [{"name": "a", "protocol": "sal3", "therapy": "t"}],
          "therapies": {"t": {"preset": "met", "session_days": [0, 7, 100]}}},
         r"therapies\.t\.session_days: days \[100\] lie after the follow-up"),
        ({"arms": [{"name": "a", "protocol": "sal3"}], "memory": {"max_causes": 10.0}},
         r"memory\.max_causes = 10\.0: must be an integer"),
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


# --------------------------------------------------------------------------- contradictions
# Each input below used to be accepted silently (clipped, ignored or contradictory); it must be
# rejected with a message that names the field path, the value and what is allowed.
ARM = {"arms": [{"name": "a", "protocol": "sal3"}]}


def _cohort(**fields: object) -> dict:
    return {"cohort": {"preset": "kare2022", **fields}}


@pytest.mark.parametrize(
    ("patch", "msg"),
    [
        ({"behavior": {"drinking_probability_bounds": [0.9, 0.1]}},
         r"behavior\.drinking_probability_bounds = \[0\.9, 0\.1\]: need 0 < low < high < 1"),
        ({"behavior": {"drinking_probability_bounds": [0.0, 0.9]}},
         r"behavior\.drinking_probability_bounds = \[0, 0\.9\]: need 0 < low"),
        ({"behavior": {"min_drinks_per_drinking_day": 50, "max_drinks_per_day": 40}},
         r"behavior\.min_drinks_per_drinking_day = 50: must be <= "
         r"behavior\.max_drinks_per_day = 40"),
        (_cohort(drinking_days_per_week={"dist": "fixed", "value": 8}),
         r"cohort\.drinking_days_per_week = \{'dist': 'fixed', 'value': 8\.0\}: gives 8; "
         r"drinking days per week must lie in \[0, 7\]"),
        (_cohort(drinking_days_per_week={"dist": "normal", "mean": 6, "sd": 1}),
         r"cohort\.drinking_days_per_week = .*gives values in \[-inf, inf\); drinking days per "
         r"week must lie in \[0, 7\]: set low and high"),
        (_cohort(dsm5_criteria={"dist": "fixed", "value": 15}),
         r"cohort\.dsm5_criteria = .*gives 15; the count of DSM-5 AUD criteria \(of 11\) must "
         r"lie in \[0, 11\]"),
        (_cohort(dsm5_criteria={"dist": "uniform", "low": 2, "high": 12}),
         r"cohort\.dsm5_criteria = .*gives values in \[2, 12\]"),
        (_cohort(drinks_per_drinking_day={"dist": "fixed", "value": 0}),
         r"cohort\.drinks_per_drinking_day = .*gives 0; US drinks per drinking day must lie in "
         r"\(0, inf\)"),
        (_cohort(weight_kg_female={"dist": "fixed", "value": 500}),
         r"cohort\.weight_kg_female = .*gives 500; body weight \(kg\) must lie in \(0, 400\]"),
        ({"cohort": None, "arms": [
            {"name": "a", "protocol": "sal3", "cohort": {"preset": "das2019"}},
            {"name": "b", "protocol": "sal3",
             "cohort": {"preset": "das2019", "dsm5_criteria": {"dist": "fixed", "value": 12}}}]},
         r"arms\[1\]\.cohort\.dsm5_criteria = .*gives 12"),
        ({"assessment": {"visit_days": [14, 60]}},
         r"assessment\.visit_days = \[14, 60\]: day 60 is after the follow-up; visit days must "
         r"lie in \[1, 56\]"),
        ({"assessment": {"visit_days": [14, 56], "visit_every_days": 7}},
         r"assessment\.visit_days = \[14, 56\] and assessment\.visit_every_days = 7: give one "
         r"of them, not both"),
        ({"assessment": {"baseline_visit_day": 20, "visit_days": [14, 56]}},
         r"assessment\.baseline_visit_day = 20: must come before every follow-up visit"),
        ({"assessment": {"baseline_visit_day": -40}},
         r"assessment\.baseline_visit_day = -40: must lie in the observed days \[-28, 55\]"),
        ({"assessment": {"visit_days": [14, 14, 56]}},
         r"assessment\.visit_days = \[14, 14, 56\]: the visit days must be distinct"),
        ({"quit_day": 500},
         r"quit_day = 500: after the simulated period, so it would never happen; must lie in "
         r"the observed days \[-28, 55\]"),
        ({"patients_per_arm": 100, "arms": [{"name": "a", "protocol": "sal3"},
                                            {"name": "b", "protocol": "sal3",
                                             "allocation": 0.01}]},
         r"arms\[1\]\.allocation = 0\.01: arm 'b' would get 1 patient \(round\(100 "
         r"patients_per_arm x 0\.01\)\); need at least 2"),
        ({"patients_per_arm": 1}, r"patients_per_arm"),
        ({"memory": {"lability_tau_min": -1.0}}, r"memory\.lability_tau_min = -1\.0: must be > 0"),
        ({"memory": {"max_causes": 2.5}}, r"memory\.max_causes = 2\.5: must be an integer"),
        ({"memory": {"restabilization_damage_max": 1.5}},
         r"memory\.restabilization_damage_max = 1\.5: must lie in \[0, 1\]"),
        ({"analysis": {"abstinent_last_days": 14, "abstinent_last_min_days": 20}},
         r"(?s)analysis.*abstinent_last_min_days = 20: must be at most abstinent_last_days = 14"),
        # K is clipped to a short follow-up (56 days here): so is the minimum
        ({"follow_up_days": 10, "assessment": {"visit_days": [7, 10]},
          "analysis": {"abstinent_last_days": 14, "abstinent_last_min_days": 12}},
         r"analysis\.abstinent_last_min_days = 12: must be at most the 10 days scored"),
        ({"protocols": {"sal3": {"sessions": [
            {"day": 0, "retrieval": "none", "drug": "ketamine", "regimen": "r.toml",
             "pk_model": "flint"}]}}},
         r"(?s)pk_model = 'flint': an S-ketamine model.*allowed: clements250, domino"),
    ],
)
def test_contradictory_specs_name_the_field(patch: dict, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        TrialSpec.model_validate({**BASE, **ARM, **patch})


def test_arm_sizes_and_override_below_two_patients() -> None:
    spec = TrialSpec.model_validate({**BASE, "patients_per_arm": 100, "arms": [
        {"name": "a", "protocol": "sal3"}, {"name": "b", "protocol": "sal3", "allocation": 0.5}]})
    assert spec.arm_sizes() == {"a": 100, "b": 50}
    assert spec.arm_sizes(4) == {"a": 4, "b": 2}
    with pytest.raises(InputError, match=r"arms\[1\]\.allocation = 0\.5: arm 'b' would get 1 "
                                         r"patient .*need at least 2"):
        spec.arm_sizes(2)


def test_dumped_spec_with_visit_days_validates_again() -> None:
    # the calibrated defaults re-validate model_dump(): explicit visit_days must not come back
    # together with the default visit_every_days
    spec = TrialSpec.model_validate({**BASE, **ARM, "assessment": {"visit_days": [14, 56]}})
    again = TrialSpec.model_validate(spec.model_dump())
    assert again.visit_days() == [14, 56]
    spaced = TrialSpec.model_validate({**BASE, **ARM, "assessment": {"visit_every_days": 28}})
    assert TrialSpec.model_validate(spaced.model_dump()).visit_days() == [28, 56]


def _write_spec(tmp_path: Path, extra: str, cohort: str = "") -> Path:
    f = tmp_path / "s.toml"
    f.write_text('name = "x"\nfollow_up_days = 10\n[cohort]\npreset = "das2019"\n' + cohort
                 + '[protocols.p]\nsessions = [{ day = 0, retrieval = "none", drug = "saline" }]\n'
                 '[[arms]]\nname = "a"\nprotocol = "p"\n' + extra)
    return f


@pytest.mark.parametrize(
    ("extra", "cohort", "msg"),
    [
        ("[memory]\nlability_tau_min = -1\n", "",
         r"s\.toml: memory\.lability_tau_min = -1\.0: must be > 0$"),
        ('[memory]\nlability_tau_min = "long"\n', "",
         r"field 'memory\.lability_tau_min' = 'long'"),
        # the tag of the distribution ('normal') is not part of the path the user wrote
        ("", 'weight_kg_male = { dist = "normal", mean = 80, sd = -1 }\n',
         r"field 'cohort\.weight_kg_male\.sd' = -1: must be greater than or equal to 0"),
        ("", 'weight_kg_male = { dist = "normal", mean = 80, sd = 1, colour = 2 }\n',
         r"unknown key 'cohort\.weight_kg_male\.colour' \(allowed: dist, mean, sd, low, high\)"),
        ("", 'weight_kg_male = { dist = "uniform", low = 90, high = 80 }\n',
         r"cohort\.weight_kg_male: need low <= high"),
        ("[behavior]\ndrinking_probability_bounds = [0.9, 0.1]\n", "",
         r"behavior\.drinking_probability_bounds"),
    ],
)
def test_nested_errors_carry_the_full_path(tmp_path: Path, extra: str, cohort: str,
                                           msg: str) -> None:
    with pytest.raises(InputError, match=msg) as info:
        load_trial_spec(_write_spec(tmp_path, extra, cohort))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("argv", "expect"),
    [
        (["--patients-per-arm", "abc"], r"error: --patients-per-arm = 'abc': must be an integer"),
        (["--patients-per-arm=2.5"], r"error: --patients-per-arm = '2\.5': must be an integer"),
        (["--seed", "x1"], r"error: --seed = 'x1': must be an integer"),
        (["--colour", "red"],
         r"error: No such option: --colour .*\(see 'reconsolidate trial --help'\)"),
    ],
)
def test_bad_cli_values_give_one_line(argv: list[str], expect: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    from reconsolidate.cli import main

    assert main(["trial", str(EXAMPLES / "das2019.toml"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert re.fullmatch(expect, err), err


def test_contradictory_spec_file_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from reconsolidate.cli import main

    path = _write_spec(tmp_path, "[assessment]\nvisit_days = [5, 30]\n")
    assert main(["trial", str(path), "--json", "-"]) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "assessment.visit_days = [5, 30]: day 30 is after the follow-up" in lines[0]


@pytest.mark.parametrize(
    ("regimen", "files", "msg"),
    [
        # an inline regimen: the spec file, then the full path from the spec's root, once
        ('{ bolus = [ { time_min = 0, dose_mg_per_kg = 5 } ] }', {},
         r"^error: \S*s\.toml: field 'protocols\.k\.sessions\[0\]\.regimen\.bolus\[0\]\."
         r"dose_mg_per_kg' = 5: implausible ketamine dose"),
        ('{ bolus = [ { time_min = 0, dose_mg_per_kg = 1 } ], foo = 1 }', {},
         r"^error: \S*s\.toml: unknown key 'protocols\.k\.sessions\[0\]\.regimen\.foo'"),
        # pydantic's own checks are worded as what is allowed, as the spec's other errors
        ('{ infusion = [ { start_min = 0, duration_min = 0, dose_mg_per_kg = 0.5 } ] }', {},
         r"^error: \S*s\.toml: field 'protocols\.k\.sessions\[0\]\.regimen\.infusion\[0\]\."
         r"duration_min' = 0: must be greater than 0$"),
        # a regimen file: the spec file and the session's field, then the file's own problem
        ('"bad.toml"', {"bad.toml": "[[bolus]]\ntime_min = 0\ndose_mg_per_kg = 9\n"},
         r"^error: \S*s\.toml: field 'protocols\.k\.sessions\[0\]\.regimen' = 'bad\.toml': "
         r"\S*bad\.toml: field 'bolus\[0\]\.dose_mg_per_kg' = 9"),
    ],
)
def test_regimen_errors_name_the_session(tmp_path: Path, regimen: str, files: dict,
                                         msg: str, capsys: pytest.CaptureFixture[str]) -> None:
    from reconsolidate.cli import main

    for name, text in files.items():
        (tmp_path / name).write_text(text)
    path = _write_spec(tmp_path, '[protocols.k]\nsessions = [{ day = 0, retrieval = "none", '
                                 f'drug = "ketamine", regimen = {regimen} }}]\n'
                                 '[[arms]]\nname = "b"\nprotocol = "k"\n')
    assert main(["trial", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and re.search(msg, err), err
    assert not (tmp_path / "o").exists()


def test_a_submodel_check_names_its_fields_once(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from reconsolidate.cli import main

    path = _write_spec(tmp_path, "[assessment]\nvisit_days = [5, 10]\nvisit_every_days = 7\n")
    assert main(["trial", str(path), "--json", "-"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("s.toml: assessment.visit_days = [5, 10] and "
                        "assessment.visit_every_days = 7: give one of them, not both "
                        "(visit_every_days only spaces the visits when visit_days is omitted)"), err


@pytest.mark.parametrize("arm", ['[[arms]]\nname = "b"\nprotocol = "k"\n', ""])
def test_missing_regimen_file_names_its_full_path(tmp_path: Path, arm: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A missing regimen file said 'file not found (relative to DIR)' with DIR as typed: the
    message names the file's full resolved path, after the spec file and the session's field;
    also in a protocol no arm uses."""
    from reconsolidate.cli import main

    (tmp_path / "specs").mkdir()
    path = _write_spec(tmp_path / "specs", '[protocols.k]\nsessions = [{ day = 0, retrieval = '
                       '"none", drug = "ketamine", regimen = "../regimens/nope.toml" }]\n' + arm)
    assert main(["trial", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    full = (tmp_path / "regimens" / "nope.toml").resolve()
    assert err == (f"error: {path}: field 'protocols.k.sessions[0].regimen' = "
                   f"'../regimens/nope.toml': file not found: {full} (a regimen file is named "
                   "relative to the spec file's directory)"), err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("good", "bad", "msg"),
    [
        ("follow_up_days = 10", 'follow_up_days = "120"',
         "field 'follow_up_days' = '120': must be an integer"),
        ('name = "x"', 'name = "x"\nseed = "7"', "field 'seed' = '7': must be an integer"),
        ("day = 0,", "day = 7.0,", "field 'protocols.p.sessions[0].day' = 7.0: must be an integer"),
        ('drug = "saline"', 'drug = "saline", retrieval_duration_min = "5"',
         "field 'protocols.p.sessions[0].retrieval_duration_min' = '5': must be a number"),
        ('name = "x"', 'name = "x"\nshared_patients = 1',
         "field 'shared_patients' = 1: must be true or false"),
        ('protocol = "p"\n', 'protocol = "p"\n[analysis]\nbaseline_window_days = [-5, "-1"]\n',
         "field 'analysis.baseline_window_days[1]' = '-1': must be an integer"),
    ],
)
def test_values_of_the_wrong_type_are_refused(tmp_path: Path, good: str, bad: str, msg: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """pydantic's lax mode turned "120" into 120 and 7.0 into day 7, and the run went on with
    exit code 0: the spec models are strict, and the one-line error says what is allowed."""
    from reconsolidate.cli import main

    text = _write_spec(tmp_path, "").read_text()
    assert good in text
    path = tmp_path / "typed.toml"
    path.write_text(text.replace(good, bad, 1))
    assert main(["trial", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {path}: {msg}", err
    assert not (tmp_path / "o").exists()


def test_integers_stay_valid_for_number_fields_and_arrays_for_pairs() -> None:
    """Strictness refuses conversions, not integers for numbers (TOML writes 5 for 5.0) nor
    arrays for the pairs a TOML file can only write as arrays."""
    spec = TrialSpec.model_validate({
        **BASE, "arms": [{"name": "a", "protocol": "sal3", "allocation": 2}],
        "analysis": {"heavy_drinks_men": 6, "baseline_window_days": [-20, -1]},
        # an integer memory field takes a TOML integer (10.0 is refused: test_invalid_specs)
        "memory": {"max_causes": 10, "lability_tau_min": 60},
        "protocols": {**BASE["protocols"], "sal3": {"sessions": [
            {"day": 0, "retrieval": "non_alcohol_control", "drug": "saline", "delay_min": 30,
             "retrieval_duration_min": 5}]}},
    })
    assert spec.arms[0].allocation == 2.0 and isinstance(spec.arms[0].allocation, float)
    assert spec.analysis.heavy_drinks_men == 6.0
    assert spec.analysis.baseline_window_days == (-20, -1)
    assert spec.memory == {"max_causes": 10, "lability_tau_min": 60}
    s = spec.protocols["sal3"].sessions[0]
    assert isinstance(s.delay_min, float) and isinstance(s.retrieval_duration_min, float)


def test_reference_arm_is_an_arm_and_reaches_the_report_and_analyze(tmp_path, capsys) -> None:
    """[analysis] reference_arm: validated against the arm names, and the report and
    `analyze RUN_DIR` compare against it (arms named sal3 were not recognised as the control:
    the report compared everything against the ketamine arm)."""
    import json

    from reconsolidate.cli import main

    with pytest.raises(ValueError, match=r"analysis\.reference_arm = 'x': not an arm"):
        TrialSpec.model_validate({**BASE, "arms": [{"name": "a", "protocol": "sal3"}],
                                  "analysis": {"reference_arm": "x"}})
    # two arms, "a" first in sort order; "b" named as the reference
    path = _write_spec(tmp_path, '[[arms]]\nname = "b"\nprotocol = "p"\n'
                       '[analysis]\nreference_arm = "b"\n')
    out = tmp_path / "run"
    assert main(["trial", str(path), "--out", str(out), "--patients-per-arm", "6",
                 "--uncalibrated"]) == 0
    assert "reference arm: b)" in (out / "report.html").read_text()
    capsys.readouterr()
    assert main(["analyze", str(out), "--json", "-", "--gee", "none"]) == 0
    assert json.loads(capsys.readouterr().out)["reference_arm"] == "b"
