"""``reconsolidate analyze``: diaries and simulated run directories, JSON, --out, errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reconsolidate.cli import main
from reconsolidate.endpoints import MissingDataHandling, compute_endpoints

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DIARY = REPO / "examples" / "diaries" / "diary.csv"
EXAMPLE_PEOPLE = REPO / "examples" / "diaries" / "participants.csv"
FIRST_DAY, LAST_DAY = -14, 27


def _simulated(n: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = np.array([f"sim-{i:04d}" for i in range(n)])
    arm = np.where(np.arange(n) % 2 == 0, "ketamine", "midazolam")
    sex = np.where(rng.random(n) < 0.4, "F", "M")
    days = np.arange(FIRST_DAY, LAST_DAY + 1)
    p = np.where(days[None, :] < 0, 0.8, np.where(arm == "ketamine", 0.25, 0.5)[:, None])
    true = np.where(rng.random((n, days.size)) < p, rng.poisson(5, (n, days.size)), 0)
    true = true.astype(float)
    reported = np.floor(true * 0.8)  # under-reporting: the analysis must use the report
    reported[rng.random(reported.shape) < 0.05] = np.nan
    dropout = rng.integers(10, 40, n)
    reported[days[None, :] >= dropout[:, None]] = np.nan
    return ids, arm, sex, days, true, reported


def _write_run_dir(root: Path, seed: int = 0, replicates: int = 1) -> Path:
    ids, arm, sex, days, true, reported = _simulated(seed=seed)
    run = root / "run"
    run.mkdir()
    (run / "spec.toml").write_text('name = "fixture"\nseed = 1\n')
    (run / "metadata.json").write_text(json.dumps({"version": "0.1.0", "seed": 1,
                                                   "git_commit": "abc"}))
    n = ids.size
    pq.write_table(pa.table({"patient_id": ids, "arm": arm, "sex": sex,
                             "replicate": pa.array(np.arange(n) * replicates // n, pa.int32()),
                             "weight_kg": np.full(n, 75.0), "age_years": np.full(n, 45.0)}),
                   run / "patients.parquet")
    # simulated EtG: tested on study days 7 and 14 only (blank otherwise), positive if drank
    etg = np.full(reported.shape, np.nan)
    tested = np.isin(days, [7, 14])
    etg[:, tested] = (true[:, tested] > 0).astype(float)
    pq.write_table(pa.table({
        "patient_id": np.repeat(ids, days.size),
        "study_day": pa.array(np.tile(days, n), pa.int32()),
        "drinks_true": true.reshape(-1),
        "drinks_reported": reported.reshape(-1),
        "etg_positive": etg.reshape(-1),
    }), run / "drinking.parquet")
    pq.write_table(pa.table({"patient_id": ids}), run / "outcomes.parquet")
    return run


def _write_csv_copy(root: Path, seed: int = 0) -> tuple[Path, Path]:
    ids, arm, sex, days, _, reported = _simulated(seed=seed)
    lines = ["participant_id,study_day,drinks"]
    for i, pid in enumerate(ids):
        for j, d in enumerate(days):
            v = reported[i, j]
            lines.append(f"{pid},{d},{'' if np.isnan(v) else repr(float(v))}")
    diary = root / "diary.csv"
    diary.write_text("\n".join(lines) + "\n")
    people = root / "participants.csv"
    people.write_text("participant_id,sex,arm\n" + "".join(
        f"{pid},{s},{a}\n" for pid, s, a in zip(ids, sex, arm, strict=True)))
    return diary, people


def _json(capsys, argv: list[str]) -> dict:
    code = main([*argv, "--json", "-"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def test_run_dir_scored_with_reported_drinks(tmp_path, capsys) -> None:
    run = _write_run_dir(tmp_path)
    res = _json(capsys, ["analyze", str(run), "--gee", "none"])
    _ids, arm, sex, days, _, reported = _simulated()
    win = reported[:, days >= 0]
    base = 7 * np.nanmean(reported[:, days < 0], axis=1)
    ep = compute_endpoints(win, sex == "F", handling=MissingDataHandling("itt", "heavy"),
                           baseline_drinks_per_week=base)
    for a in ("ketamine", "midazolam"):
        m = arm == a
        s = res["arms"][a]
        assert s["n"] == int(m.sum())
        assert s["percent_days_abstinent"] == pytest.approx(ep.percent_days_abstinent[m].mean())
        assert s["percent_heavy_drinking_days"] == pytest.approx(
            ep.percent_heavy_drinking_days[m].mean())
        assert s["drinks_per_drinking_day"] == pytest.approx(
            np.nanmean(ep.drinks_per_drinking_day[m]))
        assert s["change_drinks_per_week"] == pytest.approx(ep.change_drinks_per_week[m].mean())
        assert "median_days_to_first_heavy_day" in s
    assert res["run_metadata"]["seed"] == 1
    assert {c["kind"] for c in res["comparisons"]} >= {"mean_difference", "hazard_ratio"}


def test_run_dir_biomarkers_and_study_window(tmp_path, capsys) -> None:
    run = _write_run_dir(tmp_path)
    plain = _json(capsys, ["analyze", str(run), "--gee", "none"])
    res = _json(capsys, ["analyze", str(run), "--gee", "none",
                         "--biomarkers", str(run / "drinking.parquet")])
    _, _, _, days, true, reported = _simulated()
    tested = np.isin(days, [7, 14])
    # overridden: EtG positive (drank) but reported 0 on a tested day (missing days stay missing)
    expected = int(((true[:, tested] > 0) & (reported[:, tested] == 0)).sum())
    assert expected > 0
    assert res["provenance"]["n_days_overridden_by_biomarker"] == expected
    assert res["provenance"]["n_biomarker_rows_without_result"] == int((~tested).sum() * 40)
    pda = [res["arms"][a]["percent_days_abstinent"] for a in ("ketamine", "midazolam")]
    pda0 = [plain["arms"][a]["percent_days_abstinent"] for a in ("ketamine", "midazolam")]
    assert sum(pda) < sum(pda0)
    assert main(["analyze", str(run), "--study-window", "0:30"]) == 2
    assert "outside the study window" in capsys.readouterr().err


def test_run_dir_accepts_a_simulated_report_above_the_entry_error_bound(tmp_path,
                                                                          capsys) -> None:
    """The 100-drink bound catches typing errors in real diaries; a simulated run's report is
    machine written (recall noise at a long lag can lift a 40-drink day above 100), so a run
    directory is scored unless the user sets the bound."""
    run = _write_run_dir(tmp_path)
    table = pq.read_table(run / "drinking.parquet").to_pandas()
    table.loc[0, "drinks_reported"] = 140.0
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), run / "drinking.parquet")
    res = _json(capsys, ["analyze", str(run), "--gee", "none"])
    assert res["arms"]["ketamine"]["n"] + res["arms"]["midazolam"]["n"] == 40


def test_run_dir_replicates_are_not_pooled(tmp_path, capsys) -> None:
    run = _write_run_dir(tmp_path, replicates=2)
    assert main(["analyze", str(run)]) == 2
    assert "holds 2 replicates" in capsys.readouterr().err
    res = _json(capsys, ["analyze", str(run), "--replicate", "1", "--gee", "none"])
    assert sum(a["n"] for a in res["arms"].values()) == 20
    assert res["run_metadata"]["replicate"] == 1
    assert main(["analyze", str(run), "--replicate", "7"]) == 2
    assert "available [0, 1]" in capsys.readouterr().err


def test_run_dir_and_csv_diary_give_identical_results(tmp_path, capsys) -> None:
    run = _write_run_dir(tmp_path)
    diary, people = _write_csv_copy(tmp_path)
    args = ["--window", "1:21", "--salt", "same-salt-123"]
    # a run directory compares against its control-named arm as report.html does; a diary
    # against the first arm in sort order unless told
    a = _json(capsys, ["analyze", str(run), *args])
    b = _json(capsys, ["analyze", str(diary), "--participants", str(people), *args,
                       "--reference", "midazolam"])
    assert a["reference_arm"] == "midazolam"
    assert a["arms"] == b["arms"]
    assert a["comparisons"] == b["comparisons"]
    assert a["window"]["n_days"] == 21


def _small_trial_run(tmp_path: Path, capsys) -> tuple[Path, dict]:
    """A small das2019 run (60 patients per arm, 60 follow-up days) whose [analysis] differs
    from every analyze default: missing days excluded, K = 21, 7 grace days, baseline -14..-1."""
    spec = (REPO / "examples" / "trials" / "das2019.toml").read_text()
    regimen = (REPO / "examples" / "regimens" / "das2019.toml").resolve()
    for a, b in (("../regimens/das2019.toml", str(regimen)),
                 ("follow_up_days = 270", "follow_up_days = 60\nburn_in_days = 30"),
                 ("visit_days = [7, 30, 60, 90, 120, 150, 180, 210, 240, 270]",
                  "visit_days = [7, 30, 60]"),
                 ("abstinent_last_days = 14",
                  "abstinent_last_days = 21\ngrace_days = 7\nbaseline_window_days = [-14, -1]")):
        assert a in spec
        spec = spec.replace(a, b)
    path = tmp_path / "das-small.toml"
    path.write_text(spec)
    run = tmp_path / "run"
    trial = _json(capsys, ["trial", str(path), "--patients-per-arm", "60", "--out", str(run),
                           "--no-report", "--uncalibrated"])
    return run, trial


def test_run_dir_scored_with_the_runs_own_analysis_settings(tmp_path, capsys) -> None:
    """`analyze RUN_DIR` reproduces the trial's own summary and outcomes: missing-day handling,
    K, grace days, baseline window and reference arm come from the run (they were analyze's
    diary defaults: heavy, 28, 0, all baseline days, first arm sorted)."""
    run, trial = _small_trial_run(tmp_path, capsys)
    res = _json(capsys, ["analyze", str(run), "--gee", "none"])
    outcomes = pq.read_table(run / "outcomes.parquet").to_pandas()
    assert res["missing_data"] == "itt, missing days = exclude"
    assert res["settings"]["abstinent_last_days"] == 21
    assert res["settings"]["grace_days"] == 7
    assert res["baseline"]["source"] == "diary study days -14..-1"
    assert res["reference_arm"] == "RET+PBO"
    assert res["settings_defaults_from"].startswith("metadata.json")
    for arm, s in res["arms"].items():
        t = trial["arms"][arm]
        assert s["percent_days_abstinent"] == pytest.approx(t["percent_days_abstinent"])
        assert s["percent_heavy_drinking_days"] == pytest.approx(
            t["percent_heavy_drinking_days"])
        assert s["percent_abstinent_last_days"] == pytest.approx(t["abstinent_last_21_days_pct"])
        assert s["percent_no_heavy_drinking_days"] == pytest.approx(
            t["percent_no_heavy_drinking_days"])
        o = outcomes[outcomes["arm"] == arm]
        assert s["change_drinks_per_week"] == pytest.approx(o["change_drinks_per_week"].mean())
    # a flag given explicitly still wins over the run's setting
    heavy = _json(capsys, ["analyze", str(run), "--gee", "none", "--missing", "heavy",
                           "--abstinent-last-days", "28", "--reference", "RET+KET"])
    assert heavy["missing_data"] == "itt, missing days = heavy"
    assert heavy["settings"]["abstinent_last_days"] == 28
    assert heavy["reference_arm"] == "RET+KET"
    assert all(heavy["arms"][a]["percent_days_abstinent"] < res["arms"][a]["percent_days_abstinent"]
               for a in res["arms"])


def test_out_never_replaces_the_run_or_a_users_folder(tmp_path, capsys) -> None:
    """`analyze RUN --out RUN` used to replace the run directory with the analysis (losing the
    simulated trial): an output replaces only an earlier output of its own kind, and a trial
    run of an earlier version (unmarked, only a run's files) is still replaced by a new run."""
    from reconsolidate._io import MARKER

    run, _ = _small_trial_run(tmp_path, capsys)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert main(["analyze", str(run), "--out", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "holds a trial run" in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert main(["analyze", str(run), "--out", str(tmp_path / "an")]) == 0
    assert main(["analyze", str(run), "--out", str(tmp_path / "an")]) == 0  # its own kind
    capsys.readouterr()
    (run / MARKER).unlink()  # as written before outputs were marked
    spec = tmp_path / "das-small.toml"
    assert main(["trial", str(spec), "--patients-per-arm", "20", "--out", str(run),
                 "--no-report", "--uncalibrated", "--json", "-"]) == 0
    assert (run / MARKER).read_text().strip() == "trial run"


def test_run_dir_without_resolved_spec_uses_spec_toml_analysis(tmp_path, capsys) -> None:
    """An older metadata.json without the resolved spec: the [analysis] of spec.toml (a trial
    spec: it has follow_up_days), absent keys at the trial's defaults; a bad value exits 2."""
    run = _write_run_dir(tmp_path)
    (run / "spec.toml").write_text('name = "fixture"\nfollow_up_days = 28\n\n[analysis]\n'
                                   'abstinent_last_days = 10\n')
    res = _json(capsys, ["analyze", str(run), "--gee", "none"])
    assert res["settings_defaults_from"] == "spec.toml [analysis]"
    assert res["missing_data"] == "itt, missing days = exclude"  # AnalysisSpec's default
    assert res["settings"]["abstinent_last_days"] == 10
    (run / "spec.toml").write_text('name = "f"\nfollow_up_days = 28\n[analysis]\n'
                                   'missing_days = "often"\n')
    assert main(["analyze", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert "[analysis] missing_days = 'often'" in err and "\n" not in err


@pytest.mark.parametrize(("window", "message"), [
    ("1:500", "--window '1:500': END 500 is after the diary's last day 27"),
    ("-30:5", "--window '-30:5': START -30 is before the diary's first day -14"),
])
def test_window_past_the_diary_exit_2(window, message, capsys) -> None:
    """A window past the diary's days was scored as if those days were missing (heavy by
    default: PHDD 95.6 % instead of 18.5 % for --window 1:500 on the example)."""
    code = main(["analyze", str(EXAMPLE_DIARY), "--participants", str(EXAMPLE_PEOPLE),
                 f"--window={window}"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and "allowed START:END within -14:27" in err
    assert "\n" not in err and "Traceback" not in err
    assert main(["analyze", str(EXAMPLE_DIARY), "--participants", str(EXAMPLE_PEOPLE),
                 "--window=-14:27", "--json", "-"]) == 0  # the whole diary is allowed


def test_example_diary_table_and_json(capsys) -> None:
    code = main(["analyze", str(EXAMPLE_DIARY), "--participants", str(EXAMPLE_PEOPLE),
                 "--window", "1:21"])
    out = capsys.readouterr().out
    assert code == 0 and "PDA" in out and "ketamine" in out
    res = _json(capsys, ["analyze", str(EXAMPLE_DIARY), "--participants", str(EXAMPLE_PEOPLE),
                         "--responders-only", "--missing", "exclude"])
    for key in ("n", "percent_days_abstinent", "percent_heavy_drinking_days",
                "drinks_per_drinking_day", "median_days_to_first_heavy_day"):
        assert key in res["arms"]["ketamine"]
    assert res["missing_data"].startswith("responders_only")


def test_kaplan_meier_curves_equal_lifelines(tmp_path, capsys) -> None:
    from lifelines import KaplanMeierFitter

    run = _write_run_dir(tmp_path)
    res = _json(capsys, ["analyze", str(run), "--gee", "none"])
    _, arm, sex, days, _, reported = _simulated()
    ep = compute_endpoints(reported[:, days >= 0], sex == "F")
    for a in ("ketamine", "midazolam"):
        m = arm == a
        ref = KaplanMeierFitter().fit(ep.days_to_first_heavy_day[m],
                                      ep.first_heavy_day_observed[m])
        sf = ref.survival_function_.iloc[:, 0]
        sf = sf[sf.index > 0]
        c = res["kaplan_meier"]["time_to_first_heavy_day"][a]
        ev_times = ref.event_table.index[ref.event_table["observed"] > 0].values
        np.testing.assert_allclose(c["time_days"], ev_times)
        np.testing.assert_allclose(c["survival"], sf.loc[ev_times].values)


def test_out_dir_is_pseudonymised(tmp_path, capsys) -> None:
    out = tmp_path / "results"
    code = main(["analyze", str(EXAMPLE_DIARY), "--participants", str(EXAMPLE_PEOPLE),
                 "--out", str(out), "--json", "-"])
    capsys.readouterr()
    assert code == 0
    names = {p.name for p in out.iterdir()}
    assert {"analysis.json", "participants_endpoints.parquet", "participants_endpoints.csv",
            "diary_days.parquet", "arm_summary.parquet", "kaplan_meier.parquet"} <= names
    ids = [line.split(",")[0] for line in EXAMPLE_PEOPLE.read_text().splitlines()[1:]]
    blob = b"".join(p.read_bytes() for p in out.iterdir())
    for pid in ids:
        assert pid.encode() not in blob
    tbl = pq.read_table(out / "participants_endpoints.parquet")
    assert tbl.num_rows == len(ids)
    assert all(p.startswith("P") and len(p) == 17 for p in tbl.column("participant").to_pylist())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial dirs


def test_invalid_input_exit_2_with_file_and_line(tmp_path, capsys) -> None:
    diary = tmp_path / "diary.csv"
    diary.write_text("id,date,amount\nS101,2024-03-04,-2\nS999,2024-03-05,1\nS101,2024-03-06,x\n")
    code = main(["analyze", str(diary), "--participants", str(EXAMPLE_PEOPLE)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{diary}:2: column 'amount' negative" in err
    assert f"{diary}:3: column 'id' diary row for unknown participant 'S999'" in err
    assert f"{diary}:4: column 'amount' 'x' is not a number" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["--window", "5"], ["--window", "9:1"], ["--missing", "often"], ["--gee", "ar2"],
    ["--reference", "placebo"], ["--units", "pints"], ["--heavy-drinks", "5"],
])
def test_bad_options_exit_2(argv, capsys) -> None:
    code = main(["analyze", str(EXAMPLE_DIARY), "--participants", str(EXAMPLE_PEOPLE), *argv])
    assert code == 2
    assert capsys.readouterr().err.startswith("error:")


def test_missing_participants_and_not_a_run_dir(tmp_path, capsys) -> None:
    assert main(["analyze", str(EXAMPLE_DIARY)]) == 2
    assert "--participants" in capsys.readouterr().err
    assert main(["analyze", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_subprocess_entry_point() -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "reconsolidate", "analyze", str(EXAMPLE_DIARY), "--participants",
         str(EXAMPLE_PEOPLE), "--json", "-", "--gee", "none"],
        capture_output=True, text=True, timeout=120, check=False)
    assert ok.returncode == 0, ok.stderr
    assert set(json.loads(ok.stdout)["arms"]) == {"ketamine", "midazolam"}


def test_wrong_file_kind_exit_2(capsys) -> None:
    assert main(["analyze", str(EXAMPLE_PEOPLE), "--participants", str(EXAMPLE_PEOPLE)]) == 2
    assert "no drinks column" in capsys.readouterr().err


def test_gee_not_estimable_reported_in_json_and_table(tmp_path, capsys) -> None:
    """With the ketamine arm abstinent on every reported day, analyze printed a daily-abstinence
    odds ratio of ~6e14 with p = 0: now "not estimable" with the reason, as for the Cox model."""
    ids, arm, sex, days, _, reported = _simulated()
    reported[(arm == "ketamine")[:, None] & (days >= 0)[None, :] & ~np.isnan(reported)] = 0.0
    lines = ["participant_id,study_day,drinks"] + [
        f"{pid},{d},{'' if np.isnan(v) else v}"
        for pid, row in zip(ids, reported, strict=True) for d, v in zip(days, row, strict=True)]
    diary, people = tmp_path / "diary.csv", tmp_path / "participants.csv"
    diary.write_text("\n".join(lines) + "\n")
    people.write_text("participant_id,sex,arm\n" + "".join(
        f"{p},{s},{a}\n" for p, s, a in zip(ids, sex, arm, strict=True)))
    argv = ["analyze", str(diary), "-p", str(people), "--missing", "exclude",
            "--reference", "midazolam", "--window", "1:21"]
    res = _json(capsys, argv)
    by = {c["endpoint"]: c for c in res["comparisons"]}
    gee = by["daily_abstinence"]
    assert gee["odds_ratio"] is None and gee["ci_low"] is None and gee["p_value"] is None
    assert gee["note"].startswith("not estimable: separation: 100% of the compared arm's")
    assert gee["n"] == gee["n_reference"] == 20
    assert by["time_to_first_heavy_day"]["hazard_ratio"] is None  # no heavy day in one arm
    assert by["time_to_first_heavy_day"]["note"].startswith("not estimable")
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "not estimable [" in out
    assert "daily_abstinence (OR): not estimable: separation: 100%" in out
    assert "e+1" not in out  # no absurd odds ratio anywhere


def _documented_keys() -> tuple[set[str], list[re.Pattern]]:
    """Backticked names in docs/endpoints.md, and the `<X>` / `<B>` / `<E>` patterns."""
    from reconsolidate.endpoints import BINARY_ENDPOINTS, CONTINUOUS_ENDPOINTS

    doc = (REPO / "docs" / "endpoints.md").read_text()
    names = set(re.findall(r"`([A-Za-z0-9_<>]+)`", doc))
    subst = {"<X>": CONTINUOUS_ENDPOINTS, "<B>": BINARY_ENDPOINTS, "<E>": ("heavy_day", "drink")}
    for values in subst.values():
        assert all(v in names for v in values), values  # every endpoint named in the docs
    pats = []
    for n in names:
        for ph, values in subst.items():
            if ph in n:
                alt = "|".join(values)
                pats.append(re.compile(re.escape(n).replace(re.escape(ph), f"({alt})") + "$"))
    return names, pats


def _undocumented(keys, names, pats) -> list[str]:
    return [k for k in keys if k not in names and not any(p.match(k) for p in pats)]


def test_json_counts_are_denominators_and_every_key_is_documented(tmp_path, capsys) -> None:
    """`n_<endpoint>` was a denominator for binary endpoints but an event count for the first
    heavy day / drink; under --missing exclude "abstinent in the last K days" was computed on
    completers (and on 1-2 reported days) next to the full n. Now every n_ key is the number of
    participants contributing, events are events_ keys, and the denominator of the last-K-days
    share is the participants with at least half of K days counted."""
    run = _write_run_dir(tmp_path)
    res = _json(capsys, ["analyze", str(run), "--missing", "exclude", "--window", "0:27",
                         "--abstinent-last-days", "14"])
    _, arm, _, days, _, reported = _simulated()
    last = reported[:, (days >= 14) & (days <= 27)]
    counted = (~np.isnan(last)).sum(axis=1)
    scored = (~np.isnan(reported[:, (days >= 0) & (days <= 27)])).any(axis=1)
    assert res["settings"]["abstinent_last_min_days"] == 7
    for a, s in res["arms"].items():
        m = arm == a
        ok = m & scored & (counted >= 7)
        dry = ok & (np.nansum(last, axis=1) == 0)
        assert s["n_abstinent_last_days"] == int(ok.sum())
        assert s["not_assessable_abstinent_last_days"] == int((m & scored & ~ok).sum()) > 0
        assert s["events_abstinent_last_days"] == int(dry.sum())
        assert s["percent_abstinent_last_days"] == pytest.approx(100 * dry.sum() / ok.sum())
        assert "n_first_heavy_day_events" not in s and "n_first_drink_events" not in s
        assert s["n_time_to_first_heavy_day"] == s["n_scored"]
        assert 0 < s["events_time_to_first_heavy_day"] <= s["n_time_to_first_heavy_day"]
        for k, v in s.items():  # every n_<endpoint> is a denominator
            if k.startswith("n_") and k != "n_scored":
                assert v <= s["n_scored"], k
                ev = k.replace("n_", "events_", 1)
                if ev in s:
                    assert s[ev] <= v, k
    for c in res["comparisons"]:
        assert c["n"] <= res["arms"][c["arm"]]["n_scored"]
        assert c["n_reference"] <= res["arms"][c["reference"]]["n_scored"]
    # the table shows the denominator actually used next to the share
    assert main(["analyze", str(run), "--missing", "exclude", "--window", "0:27",
                 "--abstinent-last-days", "14", "--gee", "none"]) == 0
    out = capsys.readouterr().out
    s = res["arms"]["ketamine"]
    assert f"({s['events_abstinent_last_days']}/{s['n_abstinent_last_days']})" in out
    assert "not assessable (< 7 of 14 days counted)" in out
    # every key of the JSON output is documented in docs/endpoints.md
    names, pats = _documented_keys()
    full = _json(capsys, ["analyze", str(run), "--biomarkers", str(run / "drinking.parquet"),
                          "--imputation", "linear"])
    missing = _undocumented(full, names, pats)
    for sect in ("window", "baseline", "settings", "provenance", "run_metadata"):
        missing += _undocumented(full[sect], names, pats)
    for sect in ("files", "imputation", "pseudonymisation"):
        missing += _undocumented(full["provenance"][sect], names, pats)
    for s in full["arms"].values():
        missing += _undocumented(s, names, pats)
        missing += _undocumented(s["who_risk_level_percent"], names, pats)
        missing += _undocumented(s["baseline_who_risk_level_percent"], names, pats)
    for c in full["comparisons"] + res["comparisons"]:
        missing += _undocumented(c, names, pats)
    for curves in full["kaplan_meier"].values():
        missing += _undocumented(full["kaplan_meier"], names, pats)
        for curve in curves.values():
            missing += _undocumented(curve, names, pats)
    assert not sorted(set(missing))


def test_abstinent_last_min_days_option(tmp_path, capsys) -> None:
    run = _write_run_dir(tmp_path)
    base = ["analyze", str(run), "--missing", "exclude", "--window", "0:27", "--gee", "none",
            "--abstinent-last-days", "14"]
    lax = _json(capsys, [*base, "--abstinent-last-min-days", "1"])
    strict = _json(capsys, [*base, "--abstinent-last-min-days", "14"])
    assert lax["settings"]["abstinent_last_min_days"] == 1
    for a in lax["arms"]:
        assert lax["arms"][a]["n_abstinent_last_days"] > strict["arms"][a]["n_abstinent_last_days"]
    assert main([*base, "--abstinent-last-min-days", "15"]) == 2
    err = capsys.readouterr().err.strip()
    # named by the flag typed, not by compute_endpoints' parameter
    assert err.startswith("error: --abstinent-last-min-days 15: must be an integer in [1, 14]")
    assert "\n" not in err


@pytest.mark.parametrize("which", ["diary", "participants", "parquet_diary"])
def test_header_only_input_exit_2_one_line(which, tmp_path, capsys) -> None:
    """A diary with only its header row was scored as a full (invented) analysis: every
    participant missing every day, i.e. heavy drinking under the default handling."""
    diary, people = EXAMPLE_DIARY, EXAMPLE_PEOPLE
    if which == "diary":
        diary = tmp_path / "diary.csv"
        diary.write_text(EXAMPLE_DIARY.read_text().splitlines()[0] + "\n\n")
    elif which == "participants":
        people = tmp_path / "participants.csv"
        people.write_text(EXAMPLE_PEOPLE.read_text().splitlines()[0] + "\n")
    else:
        diary = tmp_path / "diary.parquet"
        pq.write_table(pa.table({"id": pa.array([], pa.string()),
                                 "study_day": pa.array([], pa.int32()),
                                 "drinks": pa.array([], pa.float64())}), diary)
    code = main(["analyze", str(diary), "--participants", str(people), "--json", "-"])
    out = capsys.readouterr()
    assert code == 2 and out.out == ""
    bad = people if which == "participants" else diary
    what = "(only the column names)" if which == "parquet_diary" else "(only a header line)"
    assert out.err.strip() == (
        f"error: {bad}: no data rows {what}; expected one row per "
        f"{'participant' if which == 'participants' else 'participant-day'}")


# --- review findings: hand-built diaries ------------------------------------------------------

HAND_PEOPLE = "participant_id,sex,arm\nA,M,ctl\nB,F,ctl\nC,M,trt\nD,F,trt\n"


def _hand_files(tmp_path: Path, rows: list[str], people: str = HAND_PEOPLE,
                header: str = "participant_id,study_day,drinks") -> tuple[Path, Path]:
    diary, part = tmp_path / "diary.csv", tmp_path / "participants.csv"
    diary.write_text(header + "\n" + "".join(r + "\n" for r in rows))
    part.write_text(people)
    return diary, part


def _err(capsys, argv: list[str]) -> str:
    """The one-line error of a refused command (exit code 2)."""
    code = main(argv)
    out = capsys.readouterr()
    err = out.err.strip()
    assert code == 2 and out.out == "", err
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_diary_without_day_0_gets_no_made_up_heavy_day(tmp_path, capsys) -> None:
    """4 participants, study days 1..28, no drink at all. Day 0 used to be added to the diary
    and the default window 0..28 scored it as a missing (= heavy) day for everyone: PSNHDD 0 %,
    median time to first heavy day 1, PHDD 1/29 = 3.4 %, drinks per drinking day 4.50."""
    diary, people = _hand_files(tmp_path, [f"{p},{d},0" for p in "ABCD" for d in range(1, 29)])
    res = _json(capsys, ["analyze", str(diary), "-p", str(people), "--gee", "none"])
    assert (res["window"]["first_study_day"], res["window"]["last_study_day"]) == (1, 28)
    assert res["window"]["n_days"] == 28
    for s in res["arms"].values():
        assert s["percent_days_abstinent"] == 100.0
        assert s["percent_heavy_drinking_days"] == 0.0
        assert s["percent_no_heavy_drinking_days"] == 100.0
        assert s["events_time_to_first_heavy_day"] == 0
        assert s["median_days_to_first_heavy_day"] is None
        assert s["median_days_to_first_heavy_day_reached"] is False
        assert s["drinks_per_drinking_day"] is None and s["drinks_per_week"] == 0.0
    # day 0 is not in this diary: an explicit window reaching it is refused like any other
    err = _err(capsys, ["analyze", str(diary), "-p", str(people), "--window", "0:28"])
    assert err == ("error: --window '0:28': START 0 is before the diary's first day 1; "
                   "allowed START:END within 1:28")


def test_diary_with_only_negative_days_needs_a_window(tmp_path, capsys) -> None:
    diary, people = _hand_files(tmp_path, [f"{p},{d},1" for p in "ABCD" for d in (-3, -2, -1)])
    err = _err(capsys, ["analyze", str(diary), "-p", str(people)])
    assert "no diary day on or after study day 0 (the diary holds days -3..-1)" in err
    assert "--window START:END within -3:-1" in err
    res = _json(capsys, ["analyze", str(diary), "-p", str(people), "--window=-3:-1",
                         "--gee", "none"])
    assert res["arms"]["ctl"]["drinks_per_week"] == 7.0


def test_missing_heavy_classifies_days_but_invents_no_amounts(tmp_path, capsys) -> None:
    """Under --missing heavy each missing day used to add the heavy threshold as an amount.
    A (man): 6, missing, 0, 2 -> 8 drinks over 3 observed days, 2 drinking days, and the
    missing day a heavy day; B (woman): 0, 0, 0, missing."""
    rows = ["A,0,6", "A,1,", "A,2,0", "A,3,2", "B,0,0", "B,1,0", "B,2,0", "B,3,",
            "C,0,0", "C,1,0", "C,2,0", "C,3,0", "D,0,1", "D,1,1", "D,2,1", "D,3,1"]
    diary, people = _hand_files(tmp_path, rows)
    res = _json(capsys, ["analyze", str(diary), "-p", str(people), "--gee", "none",
                         "--out", str(tmp_path / "out")])
    assert res["settings"]["amount_basis"].startswith("observed days")
    per = pq.read_table(tmp_path / "out" / "participants_endpoints.parquet").to_pandas()
    a, b = per.iloc[0], per.iloc[1]  # participants are in id order (A, B, C, D)
    assert a["sex"] == "M" and b["sex"] == "F"
    # day classification: A heavy on days 0 and 1 (the missing day) of 4; B heavy on day 3
    assert a["percent_heavy_drinking_days"] == 50.0 and a["percent_days_abstinent"] == 25.0
    assert b["percent_heavy_drinking_days"] == 25.0 and b["days_to_first_heavy_day"] == 4.0
    assert b["no_heavy_drinking_days"] == 0.0
    # amounts of the observed days: A 8 drinks / 3 days, 2 drinking days (were 13/4 and 13/3)
    assert a["drinks_per_week"] == pytest.approx(7 * 8 / 3)
    assert a["drinks_per_drinking_day"] == pytest.approx(4.0)
    assert a["grams_per_day"] == pytest.approx(14 * 8 / 3)
    assert a["total_drinks"] == 8.0
    # B: no drink on 3 observed days (was 4 drinks: 7/week, a drinking day of 4)
    assert b["drinks_per_week"] == 0.0 and np.isnan(b["drinks_per_drinking_day"])
    assert res["arms"]["ctl"]["drinks_per_week"] == pytest.approx(7 * 8 / 3 / 2)


def test_diary_default_reference_is_the_control_named_arm(capsys) -> None:
    """The example diary's arms are ketamine and midazolam: the reference was the first in
    sort order ("midazolam vs ketamine"); now the control-named arm, as for run directories."""
    argv = ["analyze", str(EXAMPLE_DIARY), "-p", str(EXAMPLE_PEOPLE), "--window", "1:21"]
    res = _json(capsys, argv)
    assert res["reference_arm"] == "midazolam"
    assert {c["arm"] for c in res["comparisons"]} == {"ketamine"}
    assert {c["reference"] for c in res["comparisons"]} == {"midazolam"}
    assert main(argv) == 0
    assert "ketamine vs midazolam" in capsys.readouterr().out
    # without a control-named arm: the first in sort order, as before
    assert _json(capsys, [*argv, "--reference", "ketamine"])["reference_arm"] == "ketamine"


def test_no_variance_comparison_is_not_estimable_with_a_note(tmp_path, capsys) -> None:
    """Both arms 100 % days abstinent: "0.00 (- to -)" and JSON difference 0.0 with null CI and
    p and no note; now null, with the reason, in JSON and table."""
    diary, people = _hand_files(tmp_path, [f"{p},{d},0" for p in "ABCD" for d in range(1, 29)])
    argv = ["analyze", str(diary), "-p", str(people), "--gee", "none"]
    res = _json(capsys, argv)
    by = {c["endpoint"]: c for c in res["comparisons"]}
    for name in ("percent_days_abstinent", "percent_heavy_drinking_days", "drinks_per_week"):
        c = by[name]
        assert (c["difference"], c["ci_low"], c["ci_high"], c["p_value"]) == (None,) * 4
        assert c["note"] == "not estimable: no variance in either arm"
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "(- to -)" not in out
    assert "percent_days_abstinent (diff): not estimable: no variance in either arm" in out


def test_header_only_diary_said_before_randomisation_dates(tmp_path, capsys) -> None:
    """A header-only diary with a participants file without randomization_date was reported as
    "has calendar dates, so the participants file needs a randomization date column"."""
    diary, people = _hand_files(tmp_path, [])
    err = _err(capsys, ["analyze", str(diary), "-p", str(people)])
    assert err == (f"error: {diary}: no data rows (only a header line); expected one row per "
                   "participant-day")


UK_PEOPLE = "id,sex,arm,randomization_date\nA,M,x,01/03/2024\nB,F,y,01/03/2024\n"


def test_ambiguous_slash_dates_need_the_date_format(tmp_path, capsys) -> None:
    """UK dates 01/03 .. 03/03/2024 with randomisation on 01/03/2024 were read as MM/DD
    (3 January .. 3 March: window 0..60, 58 missing days scored heavy)."""
    rows = ["A,01/03/2024,1", "A,02/03/2024,2", "A,03/03/2024,6",
            "B,01/03/2024,0", "B,02/03/2024,4", "B,03/03/2024,0"]
    diary, people = _hand_files(tmp_path, rows, UK_PEOPLE, header="id,date,amount")
    err = _err(capsys, ["analyze", str(diary), "-p", str(people)])
    assert err.startswith(f"error: {diary}:2: column 'date' '01/03/2024' is ambiguous")
    assert "--date-format '%d/%m/%Y'" in err and "--date-format '%m/%d/%Y'" in err
    res = _json(capsys, ["analyze", str(diary), "-p", str(people), "--gee", "none",
                         "--date-format", "%d/%m/%Y"])
    assert (res["window"]["first_study_day"], res["window"]["last_study_day"]) == (0, 2)
    # A (man): 1, 2, 6 -> 3 drinking days, 1 heavy; B (woman): 0, 4, 0 -> 1 heavy of 3
    assert res["arms"]["x"]["drinks_per_week"] == pytest.approx(21.0)
    assert res["arms"]["x"]["percent_heavy_drinking_days"] == pytest.approx(100 / 3)
    assert res["arms"]["y"]["percent_days_abstinent"] == pytest.approx(200 / 3)
    # a day field > 12 forces MM/DD/YYYY: that error names the flag to use
    diary.write_text("id,date,amount\nA,12/03/2024,1\nA,13/03/2024,2\nB,12/03/2024,0\n")
    err = _err(capsys, ["analyze", str(diary), "-p", str(people)])
    assert err == (f"error: {diary}:3: column 'date' '13/03/2024' is not a date (expected "
                   "MM/DD/YYYY; for DD/MM/YYYY give --date-format '%d/%m/%Y')")


def test_amount_problems_name_value_participant_and_day(tmp_path, capsys) -> None:
    diary, people = _hand_files(tmp_path, ["A,0,1", "B,0,-3", "C,1,150", "D,0,0"])
    assert main(["analyze", str(diary), "-p", str(people)]) == 2
    err = capsys.readouterr().err
    assert (f"{diary}:3: column 'drinks' negative number of drinks: -3 (participant 'B', "
            "study_day 0)") in err
    assert (f"{diary}:4: column 'drinks' implausible: 150 US standard drinks (participant 'C', "
            "study_day 1), more than 100 in a day; check the units (--units") in err
    # in grams: the value as given and in US standard drinks
    diary.write_text("participant_id,study_day,drinks\nA,0,1\nB,0,2100\n")
    err = _err(capsys, ["analyze", str(diary), "-p", str(people), "--units", "grams"])
    assert "implausible: 2100 grams = 150 US standard drinks (participant 'B', study_day 0)" in err


@pytest.mark.parametrize(("word", "message"), [
    ("none", "'none' is ambiguous (zero, or not reported?): write 0 for none, or an empty cell, "
             "NA or . for a missing value"),
    ("nan", "'nan' is not a number of drinks; a missing value is written as an empty cell, NA "
            "or ."),
    ("null", "'null' is not a number of drinks; a missing value"),
    ("missing", "'missing' is not a number of drinks; a missing value"),
])
def test_only_empty_na_and_dot_are_missing_amounts(word, message, tmp_path, capsys) -> None:
    """A TLFB entry "none" was read as a missing day, i.e. a heavy day under the default."""
    rows = ["A,0,1", "B,0,0", "C,0,0", "D,0,0"]
    diary, people = _hand_files(tmp_path, [*rows, f"A,1,{word}"])
    err = _err(capsys, ["analyze", str(diary), "-p", str(people)])
    assert err.startswith(f"error: {diary}:6: column 'drinks' {message}"), err
    # the three missing codes: each a missing day (A has 1 drink on day 0 and 3 missing days)
    diary.write_text("participant_id,study_day,drinks\n" + "".join(
        r + "\n" for r in [*rows, "A,1,", "A,2,NA", "A,3,.", "B,3,0", "C,3,0", "D,3,0"]))
    res = _json(capsys, ["analyze", str(diary), "-p", str(people), "--gee", "none"])
    assert res["provenance"]["n_missing_day_rows"] == 3
    assert res["arms"]["ctl"]["n_percent_days_abstinent"] == 2


@pytest.mark.parametrize(("flag", "message"), [
    (["--grace-days", "50"], "--grace-days 50: must be an integer in [0, 3] days (shorter than "
                             "the 4-day window 0:3)"),
    (["--abstinent-last-days", "0"], "--abstinent-last-days 0: must be an integer >= 1"),
    (["--abstinent-last-min-days", "20"], "--abstinent-last-min-days 20: must be an integer in "
                                          "[1, 4] days (K = 28 days of --abstinent-last-days, "
                                          "clipped to the 4-day window 0:3)"),
    (["--heavy-drinks", "0:4"], "--heavy-drinks '0:4': MEN and WOMEN must be finite numbers of "
                                "US standard drinks > 0"),
    (["--heavy-drinks", "5:nan"], "--heavy-drinks '5:nan': MEN and WOMEN must be finite"),
    (["--missing", "-1"], "--missing '-1': allowed heavy, abstinent, exclude or a finite number "
                          "of US standard drinks >= 0"),
    (["--imputation-value", "-1"], "--imputation-value -1.0: Input should be greater than or "
                                   "equal to 0"),
    (["--max-problems", "0"], "--max-problems 0: Input should be greater than or equal to 1"),
    (["--units", "pints"], "--units 'pints': Input should be"),
    (["--baseline=-100:-50"], "--baseline '-100:-50': START -100 is before the diary's first "
                              "day -2; allowed START:END within -2:3"),
    (["--baseline=-2:9"], "--baseline '-2:9': END 9 is after the diary's last day 3"),
])
def test_bad_flag_values_are_named_by_their_flag(flag, message, tmp_path, capsys) -> None:
    """Messages said `grace_days = 50`, `heavy_drinks_men = 0.0`, ... (compute_endpoints'
    parameters), and a --baseline outside the diary was averaged over no day."""
    diary, people = _hand_files(tmp_path, [f"{p},{d},1" for p in "ABCD" for d in range(-2, 4)])
    err = _err(capsys, ["analyze", str(diary), "-p", str(people), *flag])
    assert err.startswith(f"error: {message}"), err


def test_docs_qualify_reproducing_the_trial_summary() -> None:
    """`analyze RUN_DIR` reproduces the trial's summary only for one replicate: the trial's
    JSON pools several, analyze scores one (--replicate)."""
    doc = (REPO / "docs" / "endpoints.md").read_text()
    paras = [p for p in doc.split("\n\n") if "reproduces" in p and "RUN_DIR" in p]
    assert paras
    for p in paras:
        assert "replicate" in p, p
    assert "replicates = 1" in doc and "pools the replicates" in doc


def test_json_file_in_a_missing_directory_exits_2_before_the_work(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "no" / "result.json"
    code = main(["analyze", str(EXAMPLE_DIARY), "-p", str(EXAMPLE_PEOPLE), "--window", "1:21",
                 "--json", str(target)])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --json '{target}': directory {target.parent} does not exist")
    assert not (tmp_path / "no").exists()


def test_out_csv_reads_back_and_days_without_rows_are_noted(tmp_path, capsys) -> None:
    """The CSVs --out writes are analyze input again (missing values as empty cells, the id
    column named participant); a diary with days without a row says so in a note and in the
    JSON, and --absent-days abstinent reads it as a list of drinking days."""
    out = tmp_path / "out"
    first = _json(capsys, ["analyze", str(EXAMPLE_DIARY), "-p", str(EXAMPLE_PEOPLE),
                           "--gee", "none", "--out", str(out), "--original-ids"])
    text = (out / "diary_days.csv").read_text(encoding="utf-8")
    assert "nan" not in text.lower()
    per = pq.read_table(out / "participants_endpoints.parquet").to_pydict()
    people = tmp_path / "people.csv"
    people.write_text("participant,arm,sex\n" + "".join(
        f"{p},{a},{s}\n" for p, a, s in zip(per["participant"], per["arm"], per["sex"],
                                             strict=True)), encoding="utf-8")
    again = _json(capsys, ["analyze", str(out / "diary_days.csv"), "-p", str(people),
                           "--gee", "none"])
    for arm, s in first["arms"].items():
        for k in ("percent_days_abstinent", "percent_heavy_drinking_days", "drinks_per_week"):
            assert again["arms"][arm][k] == pytest.approx(s[k], nan_ok=True), (arm, k)
    # drinking days only: 2 participants, each listing 2 drinking days among days 0..9
    diary = tmp_path / "sparse.csv"
    diary.write_text("id,study_day,drinks\nA,0,0\nA,3,6\nA,9,2\nB,0,1\nB,5,2\nB,9,0\n",
                     encoding="utf-8")
    ppl = tmp_path / "p.csv"
    ppl.write_text("id,sex,arm\nA,M,x\nB,F,y\n", encoding="utf-8")
    res = _json(capsys, ["analyze", str(diary), "-p", str(ppl), "--gee", "none"])
    assert res["window"]["participant_days_without_row"] == 14
    assert res["arms"]["x"]["percent_heavy_drinking_days"] == pytest.approx(80.0)
    assert "14 of 20 participant-days" in res["notes"][0]
    assert "--absent-days abstinent" in res["notes"][0]
    assert main(["analyze", str(diary), "-p", str(ppl), "--gee", "none"]) == 0
    assert "note: 14 of 20 participant-days of the window (70%)" in capsys.readouterr().out
    res = _json(capsys, ["analyze", str(diary), "-p", str(ppl), "--gee", "none",
                         "--absent-days", "abstinent"])
    assert res["window"]["participant_days_without_row"] == 0 and res["notes"] == []
    assert res["arms"]["x"]["percent_heavy_drinking_days"] == pytest.approx(10.0)
    assert main(["analyze", str(diary), "-p", str(ppl), "--absent-days", "zero"]) == 2
    assert "--absent-days 'zero'" in capsys.readouterr().err
