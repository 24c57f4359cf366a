"""`reconsolidate trial`: JSON summary, run directory, schema, one-line errors, subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
    assert (out / "spec.toml").read_text() == small_spec.read_text()
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
