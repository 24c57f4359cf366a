"""Profiles fed into the trial engine: cue environment, targeted vs generic retrieval."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from reconsolidate.cli import main
from reconsolidate.exceptions import InputError
from reconsolidate.memory import population as mem
from reconsolidate.triggers import TriggerModel, build_diary, read_ema
from reconsolidate.triggers.targeting import (
    _acquisition_for_response,
    compare_retrieval,
    profile_environment,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "ema"


@pytest.fixture(scope="module")
def fitted():
    d = read_ema(EXAMPLES / "diary.csv", mapping=EXAMPLES / "mapping.toml")
    return d, TriggerModel().fit(d)


def test_acquisition_inversion_reproduces_the_response() -> None:
    """Inverted under the memory the simulated arms run (the calibrated read-out, whose
    threshold and noise differ from the code defaults: under those the same strengths give
    other responses)."""
    from reconsolidate.calibration.defaults import calibrated_memory_params
    from reconsolidate.memory.params import MemoryParams

    mp = calibrated_memory_params()
    target = np.array([0.0, 0.05, 0.3, 0.6, 0.9, 0.98])
    acq = _acquisition_for_response(target)
    got = mem.response(mem.new_state(acq[None, :], mp), mp)[0]
    floor, ceiling = mem.response(mem.new_state(np.array([[0.0, 0.99]]), mp), mp)[0]
    inside = (target > floor) & (target < ceiling)
    assert inside[2:5].all()
    np.testing.assert_allclose(got[inside], target[inside], atol=1e-6)
    # below the response of a zero-strength memory (its floor) the strength is 0; above that
    # of the strongest memory (0.99) it is 0.99
    low, high = target <= floor, target >= ceiling
    assert (acq[low] < 1e-9).all() and got[low] == pytest.approx(floor)
    assert acq[high] == pytest.approx(0.99) and got[high] == pytest.approx(ceiling)
    if mp != MemoryParams():  # a calibrated package: the defaults would miss the targets
        default = mem.response(mem.new_state(acq[None, :]))[0]
        assert np.abs(default[2:5] - target[2:5]).max() > 0.01


def test_environment_rates_are_the_share_of_days_with_the_cue() -> None:
    # 4 weekdays (Mon 2025-03-03 .. Thu), pub met on 2 of them -> rate -ln(1 - 1/2)
    rows = []
    for k, day in enumerate(["03", "04", "05", "06"]):
        for h, tag in ((9, "stress"), (18, "pub_bar" if k < 2 else "home_evening")):
            rows.append((f"2025-03-{day}T{h:02d}:00", tag))
    cols = {
        "participant_id": ["a"] * len(rows) + ["b"] * len(rows),
        "timestamp": [r[0] for r in rows] * 2,
        "tags": [r[1] for r in rows] * 2,
        "craving": list(range(len(rows))) * 2,
        "drinks": [0] * (2 * len(rows)),
    }
    d = build_diary(cols)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prof = TriggerModel(fit_drinking=False).fit(d)
    env = profile_environment(prof, d, "a")
    assert env["rate_weekday_per_day"]["pub_bar"] == pytest.approx(np.log(2.0))
    assert env["rate_weekday_per_day"]["home_evening"] == pytest.approx(np.log(2.0))
    assert env["rate_weekday_per_day"]["stress"] == pytest.approx(-np.log(0.05))  # capped
    assert env["rate_weekend_per_day"] == {}


def test_identical_arms_give_identical_outcomes_and_targeting_is_reported(fitted) -> None:
    """Common random numbers: with the generic set equal to the targeted set the two arms
    are the same trial, so every endpoint difference is exactly zero."""
    d, prof = fitted
    pid = "P00003"
    i = prof.index_of(pid)
    targeted = tuple(prof.cues[j] for j in prof.rank[i] if prof.recommended[i, j])
    same = compare_retrieval(
        prof, d, [pid], patients_per_arm=20, follow_up_days=20, generic_cues=targeted
    )["participants"][pid]
    assert all(v == 0.0 for v in same["difference_targeted_minus_generic"].values())
    diff = compare_retrieval(prof, d, [pid], patients_per_arm=20, follow_up_days=20)
    r = diff["participants"][pid]
    assert r["targeted_cues"] == list(targeted)
    assert r["generic_cues"] == ["glasses_sound", "beer_sight"]
    assert r["arms"]["targeted"]["n"] == r["arms"]["generic"]["n"] == 20
    if set(targeted) | {"glasses_sound", "beer_sight"} not in (set(targeted),
                                                              {"glasses_sound", "beer_sight"}):
        assert set(r["combined_cues"]) == set(targeted) | {"glasses_sound", "beer_sight"}
        assert r["arms"]["combined"]["n"] == 20
    else:
        assert "combined" not in r["arms"]
    coh = diff["cohort_difference_targeted_minus_generic"]
    assert coh["n_participants"] == 1
    d_pda = r["difference_targeted_minus_generic"]["percent_days_abstinent"]
    assert coh["percent_days_abstinent"]["mean"] == pytest.approx(d_pda)
    with pytest.raises(InputError, match="generic cue 'beer'"):
        compare_retrieval(prof, d, [pid], generic_cues=("beer",))


def test_simulate_needs_simulator_cue_names(tmp_path: Path) -> None:
    d = read_ema(EXAMPLES / "diary.csv")  # no mapping: tags are the cues
    prof = TriggerModel().fit(d)
    with pytest.raises(InputError, match="--simulate needs cue classes named as the simulator"):
        profile_environment(prof, d, "P00000")


def test_cli_simulate_json_and_out_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sim"
    argv = [
        "triggers", str(EXAMPLES / "diary.csv"), "--mapping", str(EXAMPLES / "mapping.toml"),
        "--participant", "P00001", "--simulate", "--patients-per-arm", "15",
        "--follow-up-days", "15", "--json", "-", "--out", str(out),
    ]
    assert main(argv) == 0
    res = json.loads(capsys.readouterr().out)
    sim = res["simulation"]["participants"]["P00001"]
    assert set(sim["arms"]) == {"targeted", "generic"}
    assert (out / "report.md").read_text().startswith("# Targeted vs generic")
    assert json.loads((out / "comparison.json").read_text())["participants"]["P00001"] == sim
    assert (out / "runs" / "P00001" / "outcomes.parquet").exists()
    assert main(["triggers", str(EXAMPLES / "diary.csv"), "--out", str(tmp_path / "x")]) == 2
    assert "--out is only used with --simulate" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::reconsolidate.exceptions.DomainWarning")  # one person
def test_exposure_rates_use_each_entry_local_weekday(tmp_path: Path) -> None:
    """Entries with an offset are ordered in UTC but counted on their own local calendar day:
    a pub visit on Friday 21:00 in New York (-05:00) is a Friday (a weekday), not Saturday
    02:00 UTC (review, session 12: the rates came out weekday 0, weekend 0.69)."""
    import datetime as dt

    rows = ["participant_id,timestamp,craving,drinks,tags"]
    start = dt.date(2025, 3, 3)  # a Monday
    for k in range(28):
        day = start + dt.timedelta(days=k)
        pub = day.weekday() == 4  # Friday
        for hour in (9, 21):
            tag = "pub_bar" if (pub and hour == 21) else "home_evening"
            craving = 80 if tag == "pub_bar" else 20 + (k % 5)
            rows.append(f"ny,{day.isoformat()}T{hour:02d}:00-05:00,{craving},0,{tag}")
    path = tmp_path / "ny.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    d = read_ema(path)
    # the entry of Friday 21:00 -05:00 is Saturday 02:00 UTC, but Friday locally
    fri = d.time_s[d.exposure[:, d.cues.index("pub_bar")]]
    assert np.all((fri // 86400 + 3) % 7 == 5)  # Saturday in UTC
    assert np.all((d.calendar_day()[d.exposure[:, d.cues.index("pub_bar")]] + 3) % 7 == 4)
    env = profile_environment(TriggerModel().fit(d), d, "ny")
    q = 1.0 / 5.0  # met on 1 of 5 weekdays
    assert env["rate_weekday_per_day"]["pub_bar"] == pytest.approx(-np.log1p(-q))
    assert env["rate_weekend_per_day"]["pub_bar"] == 0.0
