"""`reconsolidate trial`: JSON summary, run directory, schema, one-line errors, subprocess."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest

from reconsolidate.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "trials"

SMALL = """
name = "tiny"
seed = 4
patients_per_arm = 30
baseline_days = 14
burn_in_days = 5
follow_up_days = 30

[cohort]
preset = "das2019"

[protocols.ret_ket]
lab_days = [-2, 7]
sessions = [
  {{ day = 0, retrieval = "alcohol_prediction_error", drug = "ketamine", regimen = "{reg}" }},
]

[protocols.ret_pbo]
lab_days = [-2, 7]
sessions = [{{ day = 0, retrieval = "alcohol_prediction_error", drug = "saline" }}]

[factorial]
protocols = ["ret_ket", "ret_pbo"]
therapies = ["none", "mbrp"]
"""


@pytest.fixture()
def small_spec(tmp_path: Path) -> Path:
    reg = (EXAMPLES.parent / "regimens" / "dakwar2020.toml").resolve()
    p = tmp_path / "tiny.toml"
    p.write_text(SMALL.format(reg=reg))
    return p


def test_json_summary_and_run_directory(small_spec: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    code = main(["trial", str(small_spec), "--out", str(out), "--json", "-", "--uncalibrated"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    # a 2 x 2 factorial design gives four arms
    assert set(data["arms"]) == {"ret_ket+none", "ret_ket+mbrp", "ret_pbo+none", "ret_pbo+mbrp"}
    row = data["arms"]["ret_ket+none"]
    for key in ("n", "percent_days_abstinent", "percent_heavy_drinking_days",
                "drinks_per_week_change_pct", "abstinent_last_14_days_pct",
                "median_days_to_first_heavy_day", "urge_change", "liking_change"):
        assert key in row
    assert row["n"] == 30
    assert row["uk_units_per_week"] == pytest.approx(1.75 * row["drinks_per_week"])
    # spec.toml is the spec as run: the original's keys, a header naming the original
    text = (out / "spec.toml").read_text()
    assert f"# Original spec: {small_spec.resolve()}" in text
    assert tomllib.loads(text)["name"] == "tiny" and tomllib.loads(text)["seed"] == 4
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["timings"]["patient_days"] == 4 * 30 * (5 + 14 + 30)
    assert meta["calibration"]["status"].startswith("not applied")
    assert (out / "report.html").is_file()


def test_abstinent_last_key_and_label_follow_the_spec_k(
    small_spec: Path, tmp_path: Path, capsys
) -> None:
    """[analysis] abstinent_last_days = 28 names the summary key, the EtG-confirmed key and the
    table column after 28 days (they said 14 whatever K was), and the value is the 28-day one."""
    import pyarrow.parquet as pq

    small_spec.write_text(small_spec.read_text()
                          + "\n[observation]\netg = true\n\n[analysis]\nabstinent_last_days = 28\n")
    out = tmp_path / "k28"
    assert main(["trial", str(small_spec), "--out", str(out), "--patients-per-arm", "12",
                 "--json", "-", "--no-report"]) == 0
    data = json.loads(capsys.readouterr().out)
    outcomes = pq.read_table(out / "outcomes.parquet").to_pandas()
    for arm, row in data["arms"].items():
        assert "abstinent_last_28_days_pct" in row
        assert "confirmed_abstinent_last_28_days_pct" in row
        assert not [k for k in row if "_14_" in k]
        o = outcomes[outcomes["arm"] == arm]
        assert row["abstinent_last_28_days_pct"] == pytest.approx(
            100.0 * o["abstinent_last_days"].mean())
    assert "abstinent_last_28_days_pct" in json.loads(
        (out / "metadata.json").read_text())["summary"]["ret_ket+none"]
    assert main(["trial", str(small_spec), "--out", str(tmp_path / "t28"), "--no-report",
                 "--patients-per-arm", "12"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "28 d %" in text and "14 d" not in text


def test_overrides_patients_and_seed(small_spec: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "r2"
    assert main(["trial", str(small_spec), "--out", str(out), "--patients-per-arm", "7",
                 "--seed", "9", "--json", "-", "--no-report"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["seed"] == 9 and all(a["n"] == 7 for a in data["arms"].values())


def test_table_output(small_spec: Path, tmp_path: Path, capsys) -> None:
    assert main(["trial", str(small_spec), "--out", str(tmp_path / "t"), "--no-report"]) == 0
    text = capsys.readouterr().out
    assert "PDA %" in text and "ret_pbo+mbrp" in text and "patient-days" in text


def test_table_output_says_how_long_a_first_run_spent_compiling(
    small_spec: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first run compiles the kernels (run_trial's warm-up, ~30 s): the summary line says so,
    apart from the simulation time; a run that found them cached says nothing about it."""
    from reconsolidate.trial import run as run_mod

    real = run_mod.run_trial

    def first_run(*args, **kwargs):
        res = real(*args, **kwargs)
        res.timings["warm_up_seconds"] = 31.4
        return res

    monkeypatch.setattr(run_mod, "run_trial", first_run)
    assert main(["trial", str(small_spec), "--out", str(tmp_path / "t"), "--no-report"]) == 0
    text = " ".join(capsys.readouterr().out.split())  # (the console wraps long lines)
    assert "the compiled kernels took 31 s to prepare first" in text
    monkeypatch.setattr(run_mod, "run_trial", real)
    assert main(["trial", str(small_spec), "--out", str(tmp_path / "u"), "--no-report"]) == 0
    assert "compiled kernels" not in capsys.readouterr().out


def test_schema(capsys) -> None:
    assert main(["trial", "--schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "follow_up_days" in schema["properties"]
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("follow_up_days = 30", "follow_up_days = 30\nfolow_up = 3"), "unknown key 'folow_up'"),
        (("follow_up_days = 30", "follow_up_days = -3"), "follow_up_days"),
        (('preset = "das2019"', 'preset = "nope"'), "das2019"),
        (('"mbrp"]', '"yoga"]'), "unknown therapy 'yoga'"),
        (('drug = "saline"', 'drug = "lsd"'), "drug"),
        (("follow_up_days = 30", "follow_up_days = 30\ndetox_days = 45"),
         "inside the unobserved burn-in"),
    ],
)
def test_invalid_spec_exits_2_with_one_line(
    small_spec: Path, tmp_path: Path, capsys, edit, message
) -> None:
    small_spec.write_text(small_spec.read_text().replace(*edit))
    out = tmp_path / "never"
    assert main(["trial", str(small_spec), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and message in err
    assert "{'name'" not in err  # a spec-level check names its fields, not the whole spec
    assert not out.exists()


def test_missing_regimen_file_is_named(small_spec: Path, capsys) -> None:
    small_spec.write_text(small_spec.read_text().replace("dakwar2020.toml", "missing.toml"))
    assert main(["trial", str(small_spec)]) == 2
    assert "regimen" in capsys.readouterr().err


def test_subprocess_default_out_dir(small_spec: Path, tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "reconsolidate", "trial", str(small_spec), "--json", "-",
         "--no-report"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert (tmp_path / "runs" / "tiny-4" / "outcomes.parquet").is_file()
    assert data["out_dir"] == str(Path("runs") / "tiny-4")


def test_run_directory_spec_reproduces_the_run_by_itself(
    small_spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """RUN_DIR/spec.toml is the spec as run: --patients-per-arm and --seed applied and the
    regimen file (named relative to the original spec) inlined, so that running it from another
    working directory, with the original spec and regimen gone, writes the same tables byte for
    byte; metadata.json's resolved spec shows the values used, not the file's."""
    src = tmp_path / "spec_src"
    (src / "regs").mkdir(parents=True)
    shutil.copy(EXAMPLES.parent / "regimens" / "dakwar2020.toml", src / "regs" / "ket.toml")
    spec = src / "tiny.toml"
    spec.write_text("# a tiny trial for the test\n" + small_spec.read_text().replace(
        str((EXAMPLES.parent / "regimens" / "dakwar2020.toml").resolve()), "regs/ket.toml"))
    assert 'regimen = "regs/ket.toml"' in spec.read_text()
    run1, run2 = tmp_path / "run1", tmp_path / "run2"
    monkeypatch.chdir(src)
    assert main(["trial", "tiny.toml", "--out", str(run1), "--patients-per-arm", "5",
                 "--seed", "17", "--no-report", "--json", "-"]) == 0
    capsys.readouterr()
    text = (run1 / "spec.toml").read_text()
    written = tomllib.loads(text)
    assert written["seed"] == 17 and written["patients_per_arm"] == 5
    assert isinstance(written["protocols"]["ret_ket"]["sessions"][0]["regimen"], dict)
    assert "# a tiny trial for the test" in text  # the original's opening comments are kept
    assert "seed = 17 (--seed)" in text and "regs/ket.toml" in text  # the header says so
    meta = json.loads((run1 / "metadata.json").read_text())
    assert meta["resolved_parameters"]["spec"]["patients_per_arm"] == 5
    assert meta["resolved_parameters"]["spec"]["seed"] == 17 and meta["seed"] == 17

    shutil.rmtree(src)  # the run directory must not need the original files
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["trial", str(run1 / "spec.toml"), "--out", str(run2), "--no-report",
                 "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["seed"] == 17 and all(a["n"] == 5 for a in data["arms"].values())
    for name in ("patients", "drinking", "memory", "outcomes"):
        assert (run2 / f"{name}.parquet").read_bytes() == (run1 / f"{name}.parquet").read_bytes()
    meta2 = json.loads((run2 / "metadata.json").read_text())
    assert meta2["summary"] == meta["summary"]
    # the run directory of the re-run reproduces too (its spec has nothing left to resolve)
    assert tomllib.loads((run2 / "spec.toml").read_text()) == written
    # analyze reads the run directory's spec.toml / metadata as before
    assert main(["analyze", str(run1), "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["arms"]
    # and the report shows the spec as run
    assert main(["report", str(run1)]) == 0
    assert "seed = 17 (--seed)" in (run1 / "report.html").read_text()


@pytest.mark.parametrize(("workers", "group", "delay_s"),
                         [(1, False, 0.0), (2, False, 0.0), (2, True, 0.0), (2, False, 0.5),
                          (2, True, 0.5)])
def test_sigterm_removes_the_partial_run_and_leaves_the_out_dir_as_it_was(
    small_spec: Path, tmp_path: Path, workers: int, group: bool, delay_s: float
) -> None:
    """SIGTERM during a run (e.g. a batch system's time limit) exits 143 with one line on
    stderr, removes the hidden partial run directory and leaves an earlier run in --out alone;
    also when it goes to the whole process group (``group``: it kills the workers too, which
    once left the pool waiting forever for a worker started just after the signal). The spec
    is big enough to run for many seconds; the signal is sent as soon as the partial directory
    appears (after the kernels' warm-up, which may compile them: generous timeout), or
    ``delay_s`` later, while workers send their results: a worker ended in the middle of one
    left half a message in the pool's result pipe, and the run hung (3 of 12 signals at random
    moments)."""
    big = tmp_path / "big.toml"
    big.write_text(small_spec.read_text().replace("follow_up_days = 30", "follow_up_days = 300"))
    out = tmp_path / "out"
    out.mkdir()
    (out / ".reconsolidate-output").write_text("trial run\n")  # an earlier run directory
    (out / "spec.toml").write_text("earlier run\n")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconsolidate", "trial", str(big), "--out", str(out),
         "--patients-per-arm", "20000", "--chunk-size", "200", "--no-report",
         "--no-drinking-table", "--uncalibrated", "--workers", str(workers)],
        # a session of its own: the group signal and a hung run's cleanup reach only the run
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300.0
        while not list(tmp_path.glob(".out.*.partial")):
            assert proc.poll() is None, "the run ended before it could be signalled"
            assert time.monotonic() < deadline, "no partial run directory within 300 s"
            time.sleep(0.02)
        time.sleep(delay_s)
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:  # a hung run: end it and its workers (the test fails)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 143, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "SIGTERM" in lines[0], stderr
    assert str(out) in lines[0]
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert stdout == ""  # no summary table of a run that did not finish


def test_etg_confirmed_equals_reported_when_reports_are_perfect(
    small_spec: Path, tmp_path: Path, capsys
) -> None:
    """With nothing forgotten, no missed visit and a perfectly sensitive test, EtG can only
    confirm what the diary reports: confirmed abstinence over the last 14 days equals reported
    abstinence for every patient. A visit on day 20 tests days 13-19, partly before the final
    14 days (16-29): that test used to count, and disconfirmed patients who drank only on days
    13-15 (Dakwar cohort, where such patients are common)."""
    import pyarrow.parquet as pq

    small_spec.write_text(
        small_spec.read_text().replace('preset = "das2019"', 'preset = "dakwar2020"')
        + "\n[assessment]\nvisit_every_days = 5\n"
        + "\n[observation]\netg = true\netg_sensitivity = 1.0\netg_window_days = 7\n"
        + "forget_prob_per_day = 0.0\nmissed_visit_prob = 0.0\n"
    )
    out = tmp_path / "etg"
    assert main(["trial", str(small_spec), "--out", str(out), "--patients-per-arm", "150",
                 "--no-report", "--uncalibrated"]) == 0
    capsys.readouterr()
    o = pq.read_table(out / "outcomes.parquet").to_pandas()
    rep, conf = o["abstinent_last_days"], o["confirmed_abstinent_last_days"]
    scored = rep.notna()
    assert scored.sum() > 400 and rep[scored].mean() > 0.1
    assert (rep[scored] == conf[scored]).all()
    assert conf[~scored].isna().all()
    d = pq.read_table(out / "drinking.parquet").to_pandas()
    tested = d[d["etg_positive"].notna()]
    # each test is filed under the last day it covers: the day before a visit
    assert set((tested["study_day"] + 1) % 5) == {0}


def test_summary_names_its_denominators(small_spec: Path, tmp_path: Path, capsys) -> None:
    """Each arm's summary says how missing days were handled and over how many patients the
    means are taken; the drinks/week change compares baseline and follow-up on the same
    patients (those with both figures), as outcomes.parquet allows to recompute."""
    import pyarrow.parquet as pq

    out = tmp_path / "den"
    assert main(["trial", str(small_spec), "--out", str(out), "--patients-per-arm", "40",
                 "--json", "-", "--no-report", "--uncalibrated"]) == 0
    data = json.loads(capsys.readouterr().out)
    o = pq.read_table(out / "outcomes.parquet").to_pandas()
    for arm, row in data["arms"].items():
        g = o[o["arm"] == arm]
        assert row["missing_days"] == "exclude"
        assert row["n_scored"] == int(g["drinks_per_week"].notna().sum())
        both = g["drinks_per_week"].notna() & g["baseline_drinks_per_week"].notna()
        base, now = g.loc[both, "baseline_drinks_per_week"], g.loc[both, "drinks_per_week"]
        assert row["drinks_per_week_change_pct"] == pytest.approx(
            100.0 * (now.mean() - base.mean()) / base.mean())


def test_shared_patients_false_gives_each_arm_its_own_patients(
    small_spec: Path, tmp_path: Path, capsys
) -> None:
    """Two identical placebo arms: with shared patients (the default) they are the same people
    and give identical outcomes (a comparison can never be 'significant'); with
    shared_patients = false each arm draws its own patients, so they differ, and an arm's
    results do not depend on the other arms (streams keyed by the arm's name)."""
    import pyarrow.parquet as pq

    twin = small_spec.read_text().split("[factorial]")[0] + (
        '[[arms]]\nname = "pbo_a"\nprotocol = "ret_pbo"\n\n'
        '[[arms]]\nname = "pbo_b"\nprotocol = "ret_pbo"\n'
    )

    def run(text: str, tag: str):
        spec = tmp_path / f"{tag}.toml"
        spec.write_text(text)
        out = tmp_path / tag
        assert main(["trial", str(spec), "--out", str(out), "--patients-per-arm", "40",
                     "--no-report", "--uncalibrated"]) == 0
        capsys.readouterr()
        o = pq.read_table(out / "outcomes.parquet").to_pandas()
        o = o.drop(columns=["patient_id"])
        return {a: g.drop(columns=["arm"]).reset_index(drop=True) for a, g in o.groupby("arm")}

    shared = run(twin, "shared")
    assert shared["pbo_a"].equals(shared["pbo_b"])
    indep = run(twin.replace('name = "tiny"', 'name = "tiny"\nshared_patients = false'), "indep")
    a, b = indep["pbo_a"], indep["pbo_b"]
    assert not np.allclose(a["percent_days_abstinent"].fillna(-1),
                           b["percent_days_abstinent"].fillna(-1))
    # removing arm pbo_b leaves pbo_a as it was
    alone = run(twin.replace('name = "tiny"', 'name = "tiny"\nshared_patients = false')
                .split('[[arms]]\nname = "pbo_b"')[0], "alone")
    assert alone["pbo_a"].equals(a)


def test_table_shows_dropout_denominators_and_missing_day_handling(
    small_spec: Path, tmp_path: Path, capsys
) -> None:
    """The table hid dropout and denominators (an abstinence share beside n = 500 when only
    274 were assessable): it shows n scored, dropout %, the abstinence share with its count
    and denominator, and a line naming the missing-day handling. --json FILE writes the
    summary (the same object as --json -) and still prints the table."""
    out, summary = tmp_path / "tab", tmp_path / "summary.json"
    assert main(["trial", str(small_spec), "--out", str(out), "--patients-per-arm", "40",
                 "--no-report", "--uncalibrated", "--json", str(summary)]) == 0
    raw = capsys.readouterr().out
    text = " ".join(raw.split())
    data = json.loads(summary.read_text())
    assert data["out_dir"] == str(out) and (out / "outcomes.parquet").is_file()
    header = next(ln for ln in raw.splitlines() if "PDA %" in ln)
    columns = [c.strip() for c in header.strip("┃ ").split("┃")]
    assert columns[:4] == ["arm", "n", "n scored", "dropout %"]
    assert "missing days: exclude (available-case" in text
    assert "abstinent/assessable, assessable = at least 7 of the last 14 days reported" in text
    rows = {cells[0]: cells for cells in ([c.strip() for c in ln.strip("│ ").split("│")]
                                          for ln in raw.splitlines() if ln.startswith("│"))}
    for arm, row in data["arms"].items():
        den = row["n_abstinent_last_14_days"]
        pct = row["abstinent_last_14_days_pct"]
        abstinent = round(pct * den / 100)
        assert abstinent == pytest.approx(pct * den / 100, abs=1e-6)  # a count of patients
        cells = rows[arm]
        assert cells[1:4] == [str(row["n"]), str(row["n_scored"]), f"{row['dropout_pct']:.1f}"]
        assert f"{pct:.1f} ({abstinent}/{den})" in cells
        assert den < row["n"]  # dropouts are not assessable: the denominator is not n


def test_json_file_needs_an_existing_directory(small_spec: Path, tmp_path: Path,
                                               capsys) -> None:
    out = tmp_path / "never"
    assert main(["trial", str(small_spec), "--out", str(out),
                 "--json", str(tmp_path / "no" / "such" / "s.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --json ") and "does not exist" in err and "\n" not in err
    assert not out.exists() and not (tmp_path / "no").exists()


def test_rerun_into_the_same_directory_says_it_replaced_the_earlier_run(
    small_spec: Path, tmp_path: Path, capsys
) -> None:
    """The default run directory does not depend on --patients-per-arm: a re-run replaces the
    earlier run (the README's command must stay re-runnable), and says so on stderr."""
    out = tmp_path / "again"
    argv = ["trial", str(small_spec), "--out", str(out), "--no-report", "--json", "-",
            "--uncalibrated"]
    assert main([*argv, "--patients-per-arm", "12"]) == 0
    assert "replaced" not in capsys.readouterr().err
    assert main([*argv, "--patients-per-arm", "14"]) == 0
    cap = capsys.readouterr()
    notes = [ln for ln in cap.err.splitlines() if "replaced" in ln]
    assert notes == [f"note: replaced the earlier run in {out} (give --out DIR to keep runs "
                     "apart)"]
    assert json.loads(cap.out)["arms"]["ret_ket+none"]["n"] == 14  # stdout stays JSON only
    assert json.loads((out / "metadata.json").read_text())["summary"]["ret_ket+none"]["n"] == 14


def test_summary_line_counts_the_copied_patient_days_as_copied(
    small_spec: Path, tmp_path: Path, capsys
) -> None:
    """'N of them shared ..., simulated once' named the patient-days saved (patient_days -
    simulated_patient_days) as if they were the shared days: the line says they were copied."""
    out = tmp_path / "copied"
    assert main(["trial", str(small_spec), "--out", str(out), "--no-report",
                 "--patients-per-arm", "10"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    t = json.loads((out / "metadata.json").read_text())["timings"]
    copied = t["patient_days"] - t["simulated_patient_days"]
    assert copied > 0
    assert (f"{t['patient_days']:,.0f} patient-days ({copied:,.0f} of them copied, not "
            "simulated: "
            "arms alike before randomisation simulate their common days once)") in text


def test_table_caption_and_abstinence_cell_for_every_missing_day_handling() -> None:
    from reconsolidate.cli.trial import _abstinent_cell, _missing_days_caption

    assert _missing_days_caption("heavy", 14, 7).startswith(
        "missing days: heavy (intention-to-treat: a missing day counts as a heavy drinking day")
    assert _missing_days_caption("abstinent", 28, 14).startswith(
        "missing days: abstinent (a missing day counts as abstinent")
    key = "abstinent_last_14_days_pct"
    assert _abstinent_cell({key: 100.0 * 81 / 274, "n_abstinent_last_14_days": 274}, key) == (
        "29.6 (81/274)")
    # no assessable patient: the share is null, the cell a dash
    assert _abstinent_cell({key: None, "n_abstinent_last_14_days": 0}, key) == "-"


def test_true_observed_endpoints_separate_recall_error_from_missing_data(
    small_spec: Path, tmp_path: Path, capsys
) -> None:
    """`true_observed_*` scores the true drinking on the reported diary's days: with nothing
    forgotten, abstinent days are reported exactly (amounts are rounded, never 0 for a
    drinking day), so its percent days abstinent equals the reported one patient by patient,
    while the all-days `true_*` value differs where days are missing."""
    import pyarrow.parquet as pq

    small_spec.write_text(small_spec.read_text()
                          + "\n[observation]\nforget_prob_per_day = 0.0\n"
                          + "dropout_hazard_per_day = 0.01\n")
    out = tmp_path / "obs"
    assert main(["trial", str(small_spec), "--out", str(out), "--patients-per-arm", "60",
                 "--no-report", "--uncalibrated", "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    o = pq.read_table(out / "outcomes.parquet").to_pandas()
    rep, tob = o["percent_days_abstinent"], o["true_observed_percent_days_abstinent"]
    assert rep.notna().sum() > 100
    np.testing.assert_allclose(rep.dropna(), tob[rep.notna()], rtol=0, atol=1e-12)
    assert (o["true_percent_days_abstinent"] - tob).abs().max() > 1.0  # missing days matter
    for row in data["arms"].values():
        assert row["true_observed_percent_days_abstinent"] == pytest.approx(
            row["percent_days_abstinent"], abs=1e-9)


def test_sigterm_whose_exception_is_wrapped_or_dropped_still_ends_the_run() -> None:
    """The handler's exception raised where compiled code calls back into Python surfaces as a
    SystemError (numba's unpickling: the run exited 1 with a traceback), and in a finaliser it
    is dropped (the run went on and exited 0): either way the run ends as a SIGTERM."""
    import contextlib

    from reconsolidate.cli.trial import EXIT_SIGTERM, _sigterm_unwinds, _Terminated

    def signal_swallowed() -> None:
        with contextlib.suppress(BaseException):  # as a finaliser would
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1.0)  # the handler runs here

    # wrapped: any error after the signal is a termination
    with pytest.raises(_Terminated) as exc, _sigterm_unwinds():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1.0)
        except _Terminated as inner:
            raise SystemError("returned a result with an exception set") from inner
    assert exc.value.code == EXIT_SIGTERM and not exc.value.completed
    # dropped: the check between chunks raises it again
    with pytest.raises(_Terminated) as exc, _sigterm_unwinds() as still_running:
        signal_swallowed()
        still_running()
        pytest.fail("the check did not raise")  # pragma: no cover
    assert not exc.value.completed
    # dropped and the run completes without another check: a completed run, said as such
    with pytest.raises(_Terminated) as exc, _sigterm_unwinds():
        signal_swallowed()
    assert exc.value.completed
    # no signal: nothing happens, and the check is silent
    with _sigterm_unwinds() as still_running:
        still_running()


def test_table_title_says_replicates_are_pooled(small_spec: Path, tmp_path: Path, capsys,
                                                monkeypatch) -> None:
    """n in the table is patients x replicates: the title says the replicates are pooled."""
    monkeypatch.setenv("COLUMNS", "400")
    spec = tmp_path / "reps.toml"
    spec.write_text(small_spec.read_text().replace('name = "tiny"',
                                                   'name = "tiny"\nreplicates = 2'))
    assert main(["trial", str(spec), "--patients-per-arm", "4", "--uncalibrated",
                 "--out", str(tmp_path / "r2"), "--no-report"]) == 0
    assert "2 replicate trials pooled (n = patients x replicates" in capsys.readouterr().out
    assert main(["trial", str(small_spec), "--patients-per-arm", "4", "--uncalibrated",
                 "--out", str(tmp_path / "r1"), "--no-report"]) == 0
    assert "replicate trials pooled" not in capsys.readouterr().out
