"""Command line ``reconsolidate pk``: JSON, table, plot, and one-line errors with exit 2."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reconsolidate.cli import main

DAK = "examples/regimens/dakwar2020.toml"


def test_json_exact_golden_values(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["pk", "--model", "domino", "--weight-kg", "70", "--regimen", DAK,
                 "--at", "2,10,30,52,60,120", "--json", "-"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["time_min"] == [2, 10, 30, 52, 60, 120]
    for got, want in zip(out["plasma_ng_ml"], [559, 205, 228, 253, 96, 52], strict=True):
        assert abs(got / want - 1) < 0.01
    assert len(out["effect_site_ng_ml"]) == 6 and len(out["nmda_occupancy"]) == 6
    assert all(0 <= v <= 1 for v in out["nmda_occupancy"])


def test_readme_command_table_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "pk.png"
    code = main(["pk", "--model", "domino", "--weight-kg", "70", "--regimen", DAK,
                 "--plot", str(png)])
    assert code == 0
    text = capsys.readouterr().out
    assert "Peak plasma 558.6 ng/mL (reached at 2 min)" in text
    assert "occupancy" in text.lower()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_list_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pk", "--list-models", "--json", "-"]) == 0
    names = [m["name"] for m in json.loads(capsys.readouterr().out)["models"]]
    assert {"domino", "clements250", "hijazi", "herd", "kamp"} <= set(names)


def _write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "r.toml"
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["--weight-kg", "-70"], "--weight-kg"),
        (["--weight-kg", "abc"], "--weight-kg"),
        (["--model", "propofol"], "allowed: clements250"),
        (["--at", "2,x"], "--at"),
        (["--at", "-5"], "--at"),
        (["--at", "1e9"], "from 0 to 10080"),  # not a 75 GiB allocation
        (["--weight-kg", "500"], "--weight-kg = '500'"),
        (["--age-years", "-1"], "--age-years = '-1'"),
        (["--sex", "X"], "--sex"),
        (["--plot", "out.txt"], "--plot"),
        (["--regimen", "missing.toml"], "file not found"),
    ],
)
def test_bad_arguments_exit_2_one_line(args: list[str], expect: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    base = {"--model": "domino", "--weight-kg": "70", "--regimen": DAK}
    for k, v in zip(args[::2], args[1::2], strict=True):
        base[k] = v
    argv = ["pk", *[x for kv in base.items() for x in kv]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and expect in err


def test_missing_weight(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pk", "--model", "domino", "--regimen", DAK]) == 2
    assert "--weight-kg is required" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("toml", "expect"),
    [
        ("[[infusion]]\nstart_min = 0\nduration_min = 10\ndose = 0.5\n", "unknown key 'dose'"),
        ("[[infusion]]\nstart_min = 0\nduration_min = 10\ndose_mg_per_kg = 0.5\n"
         "[[infusion]]\nstart_min = 5\nduration_min = 10\ndose_mg_per_kg = 0.5\n", "overlap"),
        ("[[infusion]]\nstart_min = -1\nduration_min = 10\ndose_mg_per_kg = 0.5\n",
         "start_min"),
        ("[[infusion]]\nstart_min = 0\nduration_min = 1\nrate_mg_per_kg_per_min = 2\n",
         "pump maximum"),
        ("[[infusion]]\nstart_min = 0\nduration_min = 1\nrate_mg_per_min = 100\n",
         "pump maximum"),
        ("colour = 'red'\n[[bolus]]\ntime_min = 0\ndose_mg = 5\n", "unknown key 'colour'"),
        ("[[bolus]]\ntime_min = 3\ndose_mg = 5\n", "must start at 0"),
    ],
)
def test_bad_regimen_files_exit_2(tmp_path: Path, toml: str, expect: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, toml)
    assert main(["pk", "--model", "domino", "--weight-kg", "70", "--regimen", path]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and expect in err, err


def test_subprocess_json() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "reconsolidate", "pk", "--model", "kamp", "--weight-kg", "80",
         "--regimen", "examples/regimens/tci-plasma-350.toml", "--at", "5,20", "--json", "-"],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert all(abs(v / 350 - 1) < 0.02 for v in out["plasma_ng_ml"])
    bad = subprocess.run(
        [sys.executable, "-m", "reconsolidate", "pk", "--model", "nope", "--weight-kg", "80",
         "--regimen", DAK], capture_output=True, text=True, check=False,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


@pytest.mark.parametrize(
    ("toml", "expect"),
    [
        ("[[bolus]]\ntime_min = 0\ndose_mg_per_kg = 35\n",
         r"field 'bolus\[0\]\.dose_mg_per_kg' = 35: implausible ketamine dose; allowed: "
         r"\(0, 4\.5\] mg/kg per bolus \(ASSUMPTION: the top of the ketamine label's IV "
         r"induction range"),
        ("[[bolus]]\ntime_min = 0\ndose_mg = 5000\n",
         r"field 'bolus\[0\]\.dose_mg' = 5000: implausible ketamine dose; allowed: \(0, 540\] mg"),
        ("[[infusion]]\nstart_min = 0\nduration_min = 40\ndose_mg_per_kg = 25\n",
         r"infusion\[0\]: dose_mg_per_kg = 25: an implausible ketamine dose for a 40-min step; "
         r"allowed: at most 4\.5 mg/kg \(the larger of 4\.5 mg/kg and 4\.5 mg/kg per hour"),
        # a long step may give 4.5 mg/kg per hour: 10 h at 5 mg/kg/h is 50 > 45 mg/kg
        ("[[infusion]]\nstart_min = 0\nduration_min = 600\nrate_mg_per_kg_per_h = 5\n",
         r"infusion\[0\]: rate_mg_per_kg_per_h = 5 for duration_min = 600 gives 50 mg/kg: an "
         r"implausible ketamine dose for a 600-min step; allowed: at most 45 mg/kg"),
        ("[[infusion]]\nstart_min = 0\nduration_min = 60\nrate_mg_per_min = 10\n",
         r"infusion\[0\]: rate_mg_per_min = 10 .* gives 600 mg.*at most 540 mg"),
        ("[[tci]]\nstart_min = 0\nduration_min = 30\ntarget = 'effect_site'\n"
         "target_ng_ml = 5000\n",
         r"field 'tci\[0\]\.target_ng_ml' = 5000: implausible ketamine concentration; allowed: "
         r"\(0, 3000\] ng/mL"),
    ],
)
def test_implausible_doses_exit_2_naming_field_and_range(
    tmp_path: Path, toml: str, expect: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, toml)
    assert main(["pk", "--model", "domino", "--weight-kg", "70", "--regimen", path]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err, err
    assert re.search(expect, err), err


@pytest.mark.parametrize(
    "toml",
    [
        "[[bolus]]\ntime_min = 0\ndose_mg_per_kg = 4.5\n",  # the label's top induction dose
        # a day of ICU sedation at 2 mg/kg/h (48 mg/kg; the Hijazi model's population)
        "[[infusion]]\nstart_min = 0\nduration_min = 1440\nrate_mg_per_kg_per_h = 2\n",
        "[[tci]]\nstart_min = 0\nduration_min = 30\ntarget = 'plasma'\ntarget_ng_ml = 3000\n",
    ],
)
def test_doses_at_the_limits_are_accepted(tmp_path: Path, toml: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, toml)
    assert main(["pk", "--model", "domino", "--weight-kg", "70", "--regimen", path,
                 "--at", "5", "--json", "-"]) == 0, capsys.readouterr().err


@pytest.mark.parametrize(
    ("toml", "expect"),
    [
        # ten 4.5 mg/kg boluses a minute apart: each plausible, together 45 mg/kg in an hour
        ("".join(f"[[bolus]]\ntime_min = {i}\ndose_mg_per_kg = 4.5\n" for i in range(10)),
         r"45 mg/kg within the hour from 0 min \(boluses and infusions together\): an "
         r"implausible ketamine dose; allowed: at most 4\.5 mg/kg in any 60 minutes"),
        # 35 mg/kg split into eight 6-min steps (each under the per-step limit)
        ("".join(f"[[infusion]]\nstart_min = {6 * i}\nduration_min = 6\ndose_mg_per_kg = 4.375\n"
                 for i in range(8)),
         r"35 mg/kg within the hour from 0 min"),
        # a bolus and an infusion that together exceed the limit within the first hour
        ("[[bolus]]\ntime_min = 0\ndose_mg = 300\n[[infusion]]\nstart_min = 0\n"
         "duration_min = 30\ndose_mg = 300\n",
         r"600 mg within the hour from 0 min .*at most 540 mg in any 60 minutes"),
    ],
)
def test_a_dose_split_into_parts_is_caught_as_a_whole(
    tmp_path: Path, toml: str, expect: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, toml)
    assert main(["pk", "--model", "domino", "--weight-kg", "70", "--regimen", path,
                 "--at", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err, err
    assert re.search(expect, err), err


def test_boluses_hours_apart_are_each_an_hour_of_their_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two 4 mg/kg boluses 61 min apart never share a 60-min window: accepted."""
    path = _write(tmp_path, "[[bolus]]\ntime_min = 0\ndose_mg_per_kg = 4\n"
                            "[[bolus]]\ntime_min = 61\ndose_mg_per_kg = 4\n")
    assert main(["pk", "--model", "domino", "--weight-kg", "70", "--regimen", path,
                 "--at", "5", "--json", "-"]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("option", ["--plot", "--json"])
def test_output_file_in_a_missing_directory_exits_2_and_creates_nothing(
        tmp_path: Path, option: str, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "no" / "such" / ("pk.png" if option == "--plot" else "pk.json")
    code = main(["pk", "--model", "domino", "--weight-kg", "70", "--regimen", DAK,
                 option, str(target)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {option} '{target}': directory {target.parent} does not exist"]
    assert not (tmp_path / "no").exists()


def test_output_file_the_system_refuses_is_one_line_naming_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An OSError about a named file (here: no write permission) is the user's input: one line,
    exit 2, naming the file asked for (not the hidden temporary file of the atomic write)."""
    import os

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):  # root ignores permissions: use a path no one can write
            target = Path("/proc/pk.json")
        else:
            target = ro / "pk.json"
        code = main(["pk", "--model", "domino", "--weight-kg", "70", "--regimen", DAK,
                     "--json", str(target)])
    finally:
        ro.chmod(0o755)
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: '{target}': "), err


def test_peaks_are_timed_when_first_reached_and_give_the_intensity(
        capsys: pytest.CaptureFixture[str]) -> None:
    """A TCI plateau's peak is timed when first reached (not at a later rounding excess); the
    effect-site peak and the psychedelic intensity the trial engine uses are reported."""
    from reconsolidate.pharmacology.pd import psychedelic_intensity

    code = main(["pk", "--model", "domino", "--weight-kg", "70", "--regimen",
                 "examples/regimens/das2019.toml", "--json", "-"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["peak_plasma_ng_ml"] == pytest.approx(350.0, rel=1e-3)
    assert out["peak_plasma_time_min"] < 1.0  # the first 10-s update reaches the target
    assert out["peak_effect_site_ng_ml"] == pytest.approx(350.0, rel=1e-3)
    assert 5.0 < out["peak_effect_site_time_min"] < 20.0  # ke0 0.65/min: ~4.6 half-times
    assert out["psychedelic_intensity"] == pytest.approx(
        float(psychedelic_intensity(np.array([out["peak_effect_site_ng_ml"]]))[0]))


@pytest.mark.parametrize(("model", "expect"), [
    ("hornik", "was developed in children"),
    ("flint", "not racemic ketamine"),
])
def test_models_outside_their_population_warn(model: str, expect: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pk", "--model", model, "--weight-kg", "70", "--regimen", DAK,
                 "--at", "52", "--json", "-"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert any(expect in w for w in out["warnings"]), out["warnings"]
    # an adult model with an adult patient: no such warning
    assert main(["pk", "--model", "kamp", "--weight-kg", "70", "--regimen", DAK,
                 "--at", "52", "--json", "-"]) == 0
    assert not [w for w in json.loads(capsys.readouterr().out)["warnings"] if expect in w]
