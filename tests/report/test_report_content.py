"""Report content: sections, inline figures, no external resource, calibration status, CLI."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from report_run_fixture import make_run

from reconsolidate.cli import main
from reconsolidate.report import build_report, write_report


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("content"), patients_per_arm=20)


def _imgs(text: str) -> list[str]:
    return re.findall(r'<img alt="[^"]*" src="([^"]+)"', text)


def test_report_is_self_contained_with_every_section(run_dir: Path) -> None:
    text = build_report(run_dir)
    for h in ("Protocol and cohort", "Pharmacokinetics and NMDA occupancy",
              "Memory strength over time by arm", "Weekly drinking by arm",
              "Time to first heavy drinking day", "Endpoints", "Between-arm effects",
              "Calibration status of the parameters used"):
        assert h in text, h
    srcs = _imgs(text)
    assert len(srcs) == 4  # PK (one ketamine regimen), memory, weekly, KM
    for s in srcs:
        assert s.startswith("data:image/png;base64,")
        png = base64.b64decode(s.split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    # nothing is fetched: no src/href to http(s), no script, no external stylesheet
    assert not re.search(r'(src|href)="(https?:)?//', text)
    assert "<script" not in text and "<link" not in text
    for arm in ("RET+KET", "NoRET+KET", "RET+PBO"):
        assert arm in text
    assert "reference arm: RET+PBO" in text
    assert "hazard ratio" in text
    assert "Cue-alcohol memories by arm, from memory.parquet" in text
    # the run's model-domain notes (metadata.json "warnings") are shown with the PK section
    assert "Model domain: psychedelic intensity: effect-site peak above Bowdle 1998" in text


def test_report_memory_figure_is_built_from_the_table(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The memory figure shows, per arm and study day, the patients' mean and mean +- 1.96 SE."""
    from reconsolidate.report import figures

    seen: dict = {}
    draw = figures.memory_figure

    def spy(days: dict, panels: list) -> str:
        seen.update(days=days, panels=panels)
        return draw(days, panels)

    monkeypatch.setattr(figures, "memory_figure", spy)
    text = build_report(run_dir)
    assert "no memory.parquet" not in text
    t = pq.read_table(run_dir / "memory.parquet")
    arm = t.column("arm").to_numpy(zero_copy_only=False)
    day = t.column("study_day").to_numpy()
    assert list(seen["days"]) == list(dict.fromkeys(arm))  # every arm, in the spec's order
    assert list(seen["days"])[:3] == ["RET+KET", "NoRET+KET", "RET+PBO"]
    assert [label for label, _ in seen["panels"]] == [
        "cue reactivity (0-1)", "acquisition weight (0-1)"]
    for (_, series), col in zip(seen["panels"], ("cue_reactivity", "acquisition_weight"),
                                strict=True):
        v = t.column(col).to_numpy()
        for a, (mean, low, high) in series.items():
            days = np.unique(day[arm == a])
            assert np.array_equal(seen["days"][a], days)
            x = [v[(arm == a) & (day == d)] for d in days]
            want = np.array([xi.mean() for xi in x])
            half = np.array([1.96 * xi.std(ddof=1) / np.sqrt(xi.size) for xi in x])
            np.testing.assert_allclose(mean, want, rtol=1e-12)
            np.testing.assert_allclose(high - mean, half, rtol=1e-9)
            np.testing.assert_allclose(mean - low, half, rtol=1e-9)
    m = {a: s[0] for a, s in seen["panels"][0][1].items()}
    after = seen["days"]["RET+KET"] > 0
    assert np.all(m["RET+KET"][after] < m["RET+PBO"][after])


def test_report_without_memory_table_still_renders(run_dir: Path, tmp_path: Path) -> None:
    """A run directory from before memory.parquet: the section says so, nothing crashes."""
    import shutil

    rd = tmp_path / "old-run"
    shutil.copytree(run_dir, rd)
    (rd / "memory.parquet").unlink()
    text = build_report(rd)
    assert "Memory strength over time by arm" in text
    assert "This run directory has no memory.parquet" in text
    assert len(_imgs(text)) == 3  # PK, weekly, KM


def test_report_rejects_a_memory_table_without_its_columns(run_dir: Path, tmp_path: Path) -> None:
    import shutil

    from reconsolidate.exceptions import InputError

    rd = tmp_path / "bad-run"
    shutil.copytree(run_dir, rd)
    pq.write_table(pa.table({"arm": ["RET+KET"], "study_day": pa.array([0], pa.int32())}),
                   rd / "memory.parquet")
    with pytest.raises(InputError, match=r"lacks column\(s\) cue_reactivity, acquisition_weight"):
        build_report(rd)


def test_report_calibration_status_follows_the_fitted_file(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconsolidate.calibration import defaults

    fitted = tmp_path / "fitted.toml"
    fitted.write_text(defaults.render_fitted_toml(
        {"command": "reconsolidate calibrate --out X --seed 5", "seed": 5, "budget": 9,
         "status": "calibrated", "date_utc": "2026-01-01T00:00:00Z", "version": "t",
         "git_commit": "abc", "n_targets": 3, "n_targets_passed": 2},
        {"behavior.craving_weight_logit": 123.0}), encoding="utf-8")
    monkeypatch.setattr(defaults, "FITTED_PATH", fitted)
    defaults._shipped.cache_clear()
    try:
        text = build_report(run_dir)
    finally:
        defaults._shipped.cache_clear()
    assert "reconsolidate calibrate --out X --seed 5" in text
    row = text.split("<code>behavior.craving_weight_logit</code>")[1].split("</tr>")[0]
    assert "123.0000" in row  # the calibrated value
    assert "code default (not calibrated)" in row  # ... which this run did not use


def test_report_cli_writes_file_and_rejects_bad_dirs(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "report.html").is_file()
    assert "report written to" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "not found" in capsys.readouterr().err
    (tmp_path / "pk.png").write_bytes(b"")
    assert main(["report", str(tmp_path / "pk.png")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "no metadata.json" in capsys.readouterr().err
    r = subprocess.run([sys.executable, "-m", "reconsolidate", "report", str(run_dir)],
                       capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stderr
    assert write_report(run_dir).read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


@pytest.fixture(scope="module")
def two_replicate_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("replicates"), patients_per_arm=12, replicates=2)


_ROW = re.compile(
    r'<tr><td>([^<]*)</td><td class="num">(\d+)</td><td>([^<]*)</td><td>([^<]*)</td>'
    r'<td class="num">([^<]*)</td><td class="num">([^<]*)</td><td class="num">([^<]*)</td>')


def test_report_compares_arms_within_each_replicate_as_analyze_does(
    two_replicate_run: Path,
) -> None:
    """A run of 2 replicates: one comparison table row per (replicate, endpoint, arm), each
    equal to `reconsolidate analyze RUN_DIR --replicate R`; no comparison on pooled replicates
    (analyze refuses that), and the report says how replicates are treated."""
    import html as _html

    from reconsolidate.cli.analyze import run_analysis
    from reconsolidate.exceptions import InputError
    from reconsolidate.report.build import _COMPARISONS, _fmt, _fmt_p

    text = build_report(two_replicate_run)
    assert "This run holds 2 replicate trials" in text
    assert "never computed on the pooled replicates" in text
    assert "Between-arm effects (reference arm: RET+PBO), within each replicate" in text
    assert "Across the 2 replicates" in text
    table = text.split("Between-arm effects", 1)[1].split("</table>", 1)[0]
    rows = [tuple(_html.unescape(x) for x in m) for m in _ROW.findall(table)]
    label_key = {label: key for key, label in _COMPARISONS}
    got: dict[tuple[int, str, str], tuple[str, str, str, str]] = {}
    for label, rep, arm, ref, est, ci, p in rows:
        key = label_key[re.sub(r"last \d+ days", "last K days", label)]
        assert ref == "RET+PBO"
        got[(int(rep), key, arm)] = (est, ci, p, ref)
    assert len(got) == len(rows)
    assert {r for r, _, _ in got} == {0, 1}
    with pytest.raises(InputError, match="replicates are separate trials and are not pooled"):
        run_analysis(two_replicate_run)
    for rep in (0, 1):
        res, _ = run_analysis(two_replicate_run, replicate=rep)
        want = {}
        for c in res["comparisons"]:
            if c["endpoint"] not in label_key.values():
                continue
            hr = c["kind"] == "hazard_ratio"
            d = 2 if hr else 1
            est = c.get("hazard_ratio") if hr else c.get("difference")
            ci = (f"[{_fmt(c.get('ci_low'), d)}, {_fmt(c.get('ci_high'), d)}]"
                  if c.get("ci_low") is not None else "-")
            want[(rep, c["endpoint"], c["arm"])] = (_fmt(est, d), ci, _fmt_p(c.get("p_value")),
                                                    c["reference"])
        assert want
        assert {k: v for k, v in got.items() if k[0] == rep} == want


def test_report_of_a_single_replicate_run_has_no_replicate_column(run_dir: Path) -> None:
    text = build_report(run_dir)
    assert "replicate trials" not in text and "Across the" not in text
    assert "<th>replicate</th>" not in text


def _status_rows(text: str) -> dict[str, str]:
    import html as _html

    section = text.split('id="calibration"', 1)[1]
    return {k: _html.unescape(v) for k, v in re.findall(
        r"<tr><td><code>([^<]+)</code></td>.*?<td[^>]*>([^<]*)</td><td>", section, flags=re.S)}


def test_report_calibration_summary_counts_used_and_unused_parameters(
    run_dir: Path, tmp_path: Path
) -> None:
    """Parameters of a module no arm simulates (a therapy preset) are counted as not used by
    the run, not as uncalibrated parameters of it; the counts add up to the table."""
    import json
    import shutil

    text = build_report(run_dir)
    assert "free parameters of this run have their calibrated value" not in text
    status = _status_rows(text)
    n = len(status)
    unused = sorted(k for k, v in status.items() if v.startswith("not used by this run"))
    assert unused == ["therapy.education.motivation_logit_per_session",
                      "therapy.met.motivation_logit_per_session"]
    assert status["therapy.met.motivation_logit_per_session"] == (
        "not used by this run: no arm receives the met therapy (no arm has an adjunct therapy)")
    n_cal = sum(v == "calibrated" for v in status.values())
    n_def = sum(v == "code default (not calibrated)" for v in status.values())
    n_spec = sum(v == "set by the spec" for v in status.values())
    assert n_cal + n_def + n_spec + len(unused) == n
    assert (f"Of the {n} free parameters, {n - 2} are used by this run: {n_cal} at their "
            f"calibrated value, {n_def} at their code default (not calibrated: an ASSUMPTION) "
            f"and {n_spec} at a value the trial spec sets. 2 are not used by this run (the met "
            "therapy, the education therapy: no arm simulates them); their calibration status "
            "does not matter here.") in text

    # one arm receives MET at its calibrated value: that parameter becomes used and calibrated
    from reconsolidate.calibration.defaults import load_fitted

    met = load_fitted(None)["parameters"]["therapy.met.motivation_logit_per_session"]
    rd = tmp_path / "met-run"
    shutil.copytree(run_dir, rd)
    meta = json.loads((rd / "metadata.json").read_text(encoding="utf-8"))
    meta["arms"]["RET+KET"]["therapy"].update(name="met", motivation_logit_per_session=met)
    (rd / "metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    text = build_report(rd)
    status = _status_rows(text)
    assert status["therapy.met.motivation_logit_per_session"] == "calibrated"
    assert status["therapy.education.motivation_logit_per_session"] == (
        "not used by this run: no arm receives the education therapy (the arms' therapies: met)")
    assert (f"Of the {n} free parameters, {n - 1} are used by this run: {n_cal + 1} at their "
            "calibrated value") in text
    assert ("1 is not used by this run (the education therapy: no arm simulates it); its "
            "calibration status does not matter here.") in text


def test_a_comparison_that_cannot_be_estimated_shows_why(monkeypatch: pytest.MonkeyPatch) -> None:
    """The between-arm table shows the reason (endpoints' ``note``) instead of a bare dash."""
    import reconsolidate.endpoints as endpoints
    from reconsolidate.report import build

    def fake(ep, labels, reference):
        return [{"endpoint": "time_to_first_heavy_day", "kind": "hazard_ratio", "arm": "a",
                 "reference": "b", "hazard_ratio": None, "ci_low": None, "ci_high": None,
                 "p_value": None, "note": "not estimable: no events or an empty arm"},
                {"endpoint": "percent_days_abstinent", "kind": "difference", "arm": "a",
                 "reference": "b", "difference": 3.0, "ci_low": 1.0, "ci_high": 5.0,
                 "p_value": 0.01}]

    monkeypatch.setattr(endpoints, "compare_arms", fake)
    rows = {r["key"]: r for r in build._comparison_rows(None, np.array(["a", "b"]), "b", 14)}
    assert rows["time_to_first_heavy_day"]["estimate"] == "not estimable: no events or an empty arm"
    assert rows["percent_days_abstinent"]["estimate"] == "3.0"


def test_a_run_whose_spec_names_regimen_files_still_gets_its_pk_figure(tmp_path: Path) -> None:
    """The example spec names its regimen by a path relative to itself, which the run
    directory does not hold: the run stores the resolved regimen in metadata.json and the
    report draws from it (it used to say "No arm of this trial receives ketamine")."""
    from reconsolidate.trial import load_trial_spec, make_plan, run_trial

    examples = Path(__file__).resolve().parents[2] / "examples" / "trials"
    spec = load_trial_spec(examples / "das2019.toml")
    data = spec.model_dump(mode="json")
    data.update(follow_up_days=28, assessment={"baseline_visit_day": 0, "visit_days": [7, 28]})
    spec = type(spec).model_validate(data)
    out = tmp_path / "run"
    run_trial(make_plan(spec, examples, 10), out_dir=out)
    text = build_report(out)
    assert '<img alt="PK and NMDA occupancy: RET+KET' in text
    assert "No arm of this trial receives ketamine" not in text
    assert "could not be drawn" not in text


def test_weekly_means_from_duckdb_match_a_pandas_oracle(run_dir: Path) -> None:
    """The weekly drinking figure is aggregated in duckdb straight from drinking.parquet (a
    full-size run does not fit pandas); oracle: the same statistics in pandas."""
    from reconsolidate.report import build

    patients = pq.read_table(run_dir / "patients.parquet").to_pandas()
    arms = sorted(patients["arm"].unique())
    weeks, series = build._weekly_means(run_dir / "drinking.parquet", patients, arms)
    df = pq.read_table(run_dir / "drinking.parquet",
                       columns=["patient_id", "study_day", "drinks_reported"]).to_pandas()
    df["arm"] = df["patient_id"].map(dict(zip(patients["patient_id"], patients["arm"],
                                              strict=True)))
    df["week"] = np.floor_divide(df["study_day"].to_numpy(), 7)
    per = (df.groupby(["arm", "patient_id", "week"])["drinks_reported"].mean().mul(7.0)
           .rename("dpw").reset_index())
    want_weeks = np.sort(per["week"].unique())
    np.testing.assert_array_equal(weeks, want_weeks)
    assert want_weeks.min() < 0  # the baseline weeks are there
    for arm in arms:
        g = per[per["arm"] == arm].groupby("week")["dpw"]
        st = g.agg(["mean", "std", "count"]).reindex(want_weeks)
        q = g.quantile([0.25, 0.75]).unstack().reindex(want_weeks)
        se = st["std"] / np.sqrt(st["count"].clip(lower=1))
        got = series[arm]
        np.testing.assert_allclose(got["mean"], st["mean"], rtol=1e-12, equal_nan=True)
        np.testing.assert_allclose(got["ci_high"], st["mean"] + 1.96 * se, rtol=1e-10,
                                   equal_nan=True)
        np.testing.assert_allclose(got["q25"], q[0.25], rtol=1e-12, equal_nan=True)
        np.testing.assert_allclose(got["q75"], q[0.75], rtol=1e-12, equal_nan=True)


def test_report_states_denominators_dropout_and_pairing(run_dir: Path) -> None:
    """The endpoint table shows n, n scored and dropout, each responder share with its count
    and denominator, and a single-replicate run with shared patients says its tests ignore the
    pairing (review: the report's p-values were shown without it)."""
    import html as _html
    import json as _json

    import pandas as pd

    text = _html.unescape(build_report(run_dir))
    table = text.split('<h2 id="endpoints">', 1)[1].split("</table>", 1)[0]
    for label in ("n randomised", "n scored (a counted follow-up day)",
                  "dropped out before the end, %"):
        assert label in table, label
    meta = _json.loads((run_dir / "metadata.json").read_text())
    out = pd.read_parquet(run_dir / "outcomes.parquet")
    for arm, s in meta["summary"].items():
        sel = out[out["arm"] == arm]
        k = int((sel["abstinent_last_days"] == 1.0).sum())
        den = int(sel["abstinent_last_days"].notna().sum())
        assert f"({k}/{den})" in table, (arm, k, den)
        assert f"{100.0 * sel['dropped_out'].mean():.1f}" in table
        assert str(s["n"]) in table
    assert 'id="paired-arms"' in text
    assert "Fisher's exact p-value" in text and "below 1 = fewer first heavy days" in text
    assert 'id="reference-guessed"' not in text  # RET+PBO is named as a control


def test_report_across_replicates_counts_significance_by_direction() -> None:
    from reconsolidate.report.build import _across_replicates

    rows = [{"endpoint": "PDA", "key": "percent_days_abstinent", "arm": "KET",
             "reference": "PBO", "value": v, "p_value": p, "digits": 1}
            for v, p in [(10.0, 0.01), (-12.0, 0.001), (8.0, 0.03), (-9.0, 0.02), (5.0, 0.2)]]
    (r,) = _across_replicates(rows, 5)
    assert r["significant"].startswith("2 of 5 (")  # more abstinence: in the arm's favour
    assert r["against"] == "2"
    hr = [{"endpoint": "HR", "key": "time_to_first_heavy_day", "arm": "KET",
           "reference": "PBO", "value": v, "p_value": 0.01, "digits": 2} for v in (0.5, 1.6)]
    (r,) = _across_replicates(hr, 2)
    assert r["significant"].startswith("1 of 2") and r["against"] == "1"


def test_report_warns_when_the_reference_arm_is_a_guess(run_dir: Path, tmp_path: Path) -> None:
    import json as _json
    import shutil

    import pandas as pd

    d = tmp_path / "renamed"
    shutil.copytree(run_dir, d)
    names = {"RET+KET": "alpha", "NoRET+KET": "beta", "RET+PBO": "gamma",
             "assessment-only": "delta"}
    meta = _json.loads((d / "metadata.json").read_text())
    meta["arms"] = {names[a]: v for a, v in meta["arms"].items()}
    (d / "metadata.json").write_text(_json.dumps(meta))
    for f in ("patients.parquet", "outcomes.parquet"):
        t = pd.read_parquet(d / f)
        t["arm"] = t["arm"].map(names)
        t.to_parquet(d / f)
    m = pd.read_parquet(d / "memory.parquet")
    m["arm"] = m["arm"].map(names)
    m.to_parquet(d / "memory.parquet")
    text = build_report(d)
    assert 'id="reference-guessed"' in text and "reference arm: alpha" in text


@pytest.mark.parametrize(("name", "content", "message"), [
    ("metadata.json", b"[1, 2]", "expected a JSON object, found list"),
    ("metadata.json", b"{}", "lacks the run's 'arms' or 'resolved_parameters.spec'"),
    ("metadata.json", b"\xff\xfe{", "invalid JSON"),
    ("spec.toml", b"\xff\xfe\x00name", "not UTF-8 text"),
    ("drinking.parquet", b"PAR1", "cannot read"),
])
def test_report_refuses_damaged_files_in_one_line(run_dir: Path, tmp_path: Path, capsys,
                                                  name: str, content: bytes,
                                                  message: str) -> None:
    import shutil

    d = tmp_path / "damaged"
    shutil.copytree(run_dir, d)
    (d / name).write_bytes(content)
    assert main(["report", str(d)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err, err


def test_km_figure_runs_to_the_last_follow_up_with_censoring_marks(monkeypatch) -> None:
    """Each curve continues flat from its last event to its longest follow-up, censored times
    are marked, and the numbers at risk are the patients followed at least that long."""
    from reconsolidate.endpoints import kaplan_meier
    from reconsolidate.report import figures

    drawn: dict[str, list] = {"step": [], "plot": [], "annotate": []}
    import matplotlib.axes

    for what in drawn:
        orig = getattr(matplotlib.axes.Axes, what)

        def spy(self, *a, _orig=orig, _what=what, **k):
            drawn[_what].append((a, k))
            return _orig(self, *a, **k)

        monkeypatch.setattr(matplotlib.axes.Axes, what, spy)
    dur = np.array([1.0, 2.0, 5.0, 30.0, 30.0, np.nan])
    ev = np.array([True, True, False, False, False, False])
    figures.km_figure({"A": (kaplan_meier(dur, ev), dur, ev)}, xlabel="days", end_days=30.0)
    tt, ss = drawn["step"][0][0][:2]
    assert tt[-1] == 30.0 and ss[-1] == ss[-2]  # flat to the last follow-up
    ((cx, cy),) = [a[:2] for a, k in drawn["plot"] if k.get("marker") == "|"]
    np.testing.assert_array_equal(cx, [5.0, 30.0])
    np.testing.assert_allclose(cy, [0.6, 0.6])  # S after the two events: 4/5 x 3/4
    at_risk = {k["xy"][0]: a[0] for a, k in drawn["annotate"] if a[0] != "at risk"}
    assert at_risk[0.0] == "5" and at_risk[30.0] == "2"
