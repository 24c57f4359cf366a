"""``calibrate --out DIR`` writes a self-contained DIR: ``validate DIR/targets.toml`` works."""

from __future__ import annotations

import hashlib
import json
import shutil
import tomllib
from pathlib import Path

import pytest

from reconsolidate.calibration import load_fitted, load_targets
from reconsolidate.calibration.fit import (
    _render_toml,
    bundle_targets,
    calibrate,
    write_calibration,
)
from reconsolidate.calibration.validate import validate
from reconsolidate.cli import main
from reconsolidate.exceptions import InputError

TARGET = "dakwar2020_ketamine_pda_21d"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def again_sha(targets: Path) -> str:
    return load_targets(targets).scenarios_sha256


def test_calibrate_out_dir_targets_file_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The shipped targets through the CLI: DIR/targets.toml is byte-identical to the shipped
    file, its scenarios are copied next to it, and ``validate`` reads it from anywhere (the
    directory is moved first: nothing points back to the package)."""
    out = tmp_path / "cal"
    assert main(["calibrate", "--out", str(out), "--budget", "1", "--batch-size", "1",
                 "--patients-per-arm", "2", "--json", "-"]) == 0
    capsys.readouterr()
    shipped = load_targets()
    moved = tmp_path / "elsewhere" / "cal"
    moved.parent.mkdir()
    out.rename(moved)
    copy = moved / "targets.toml"
    assert copy.read_bytes() == shipped.path.read_bytes()
    for name in shipped.scenarios:
        rel = shipped.scenarios[name].spec
        assert (moved / rel).read_bytes() == shipped.scenario_path(name).read_bytes()
    assert (moved / "scenarios" / "regimens" / "das2019.toml").is_file()

    assert main(["validate", str(copy), "--patients-per-arm", "4", "--target", TARGET,
                 "--json", "-"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert [t["id"] for t in res["targets"]] == [TARGET]
    # provenance: the fit's targets_sha256 is the hash of the shipped file and of the copy
    prov = load_fitted(moved / "fitted.toml")["provenance"]
    assert prov["targets_sha256"] == shipped.sha256 == _sha(copy) == res["targets_sha256"]
    # the laboratory constraints are recorded per trial and in the provenance
    assert prov["lab_checks"] == 34 and "lab_penalty" in prov and "target_loss" in prov
    assert prov["lab_sha256"] == shipped.lab_sha256 == res["lab_sha256"] is not None
    assert prov["scenarios_sha256"] == shipped.scenarios_sha256 == res["scenarios_sha256"]
    assert again_sha(moved / "targets.toml") == shipped.scenarios_sha256  # the copies hash alike
    head, row = (moved / "history.csv").read_text(encoding="utf-8").splitlines()[:2]
    assert head.startswith("number,batch,loss,target_loss,lab_penalty,lab_passed,")
    cells = row.split(",")
    assert float(cells[2]) == pytest.approx(float(cells[3]) + float(cells[4]))
    summary = json.loads((moved / "summary.json").read_text(encoding="utf-8"))
    tc = summary["targets_copy"]
    assert tc["identical_to_fitted"] is True and tc["scenarios_outside"] == {}
    assert tc["files_sha256"]["scenarios/das2019.toml"] == _sha(moved / "scenarios/das2019.toml")
    # the copy is itself a valid targets file to calibrate from (same hash, same bundle)
    again = load_targets(copy)
    assert again.sha256 == shipped.sha256
    assert bundle_targets(again)[1] == bundle_targets(shipped)[1]


def test_calibrate_out_dir_with_a_scenario_outside_the_targets_folder(tmp_path: Path) -> None:
    """A scenario the targets file names by an absolute path cannot be copied at its relative
    place: DIR/targets.toml names it absolutely (and says so), fitted.toml keeps the hash of
    the file the fit read, and ``validate`` reads the rewritten file."""
    shipped = load_targets()
    text = shipped.path.read_text(encoding="utf-8")
    pkg = shipped.base / "scenarios"
    user = tmp_path / "mine"
    shutil.copytree(pkg, user / "scenarios")
    # dakwar2020 by absolute path into the package; the others relative (copied)
    text = text.replace('spec = "scenarios/dakwar2020.toml"',
                        f'spec = {json.dumps(str(pkg / "dakwar2020.toml"))}')
    tpath = user / "targets.toml"
    tpath.write_text(text, encoding="utf-8")
    res = calibrate(tpath, budget=1, seed=1, batch_size=1, patients_per_arm=4,
                    target_ids=[TARGET])
    out = tmp_path / "out"
    write_calibration(res, out, command="reconsolidate calibrate test")
    copy = out / "targets.toml"
    written = copy.read_text(encoding="utf-8")
    assert written.startswith("# Written by `reconsolidate calibrate`")
    assert _sha(tpath) in written and "dakwar2020" in written.splitlines()[2]
    data = tomllib.loads(written)
    original = tomllib.loads(text)
    assert data["scenarios"]["dakwar2020"]["spec"] == str((pkg / "dakwar2020.toml").resolve())
    data["scenarios"]["dakwar2020"]["spec"] = original["scenarios"]["dakwar2020"]["spec"]
    assert data == original  # nothing else changed
    assert not (out / "scenarios" / "dakwar2020.toml").exists()
    assert (out / "scenarios" / "das2019.toml").is_file()
    prov = load_fitted(out / "fitted.toml")["provenance"]
    assert prov["targets_sha256"] == _sha(tpath) != _sha(copy)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["targets_copy"]["identical_to_fitted"] is False
    assert summary["targets_copy"]["sha256"] == _sha(copy)
    assert list(summary["targets_copy"]["scenarios_outside"]) == ["dakwar2020"]
    v = validate(copy, target_ids=[TARGET], patients_per_arm=4)
    assert v["n_targets"] == 1 and v["targets"][0]["predicted"] is not None


def test_write_calibration_refuses_a_targets_file_changed_since_the_fit(tmp_path: Path) -> None:
    shipped = load_targets()
    user = tmp_path / "mine"
    shutil.copytree(shipped.base / "scenarios", user / "scenarios")
    tpath = user / "targets.toml"
    tpath.write_bytes(shipped.path.read_bytes())
    res = calibrate(tpath, budget=1, seed=1, batch_size=1, patients_per_arm=4,
                    target_ids=[TARGET])
    tpath.write_text(tpath.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    with pytest.raises(InputError, match="changed since the calibration read it"):
        write_calibration(res, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_toml_writer_round_trips_the_shipped_targets_and_specs() -> None:
    shipped = load_targets()
    for path in [shipped.path, *(shipped.scenario_path(n) for n in shipped.scenarios)]:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        assert tomllib.loads(_render_toml(data)) == data


def test_json_file_for_validate_and_calibrate(tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    """`--json FILE` writes the JSON object there and still prints the table (as trial, pk and
    paradigm do); a file in a missing directory is one error line, exit 2, before the work."""
    v = tmp_path / "v.json"
    assert main(["validate", "--target", TARGET, "--patients-per-arm", "4",
                 "--json", str(v)]) == 0
    out = capsys.readouterr().out
    assert "calibration targets" in out
    # the table says on how many patients each prediction rests
    scenario = json.loads(v.read_text())["targets"][0]["scenario"]
    assert f"simulated patients per arm: {scenario} 4 " in out
    assert [t["id"] for t in json.loads(v.read_text())["targets"]] == [TARGET]
    c = tmp_path / "c.json"
    assert main(["calibrate", "--out", str(tmp_path / "cal"), "--budget", "1", "--batch-size",
                 "1", "--patients-per-arm", "2", "--json", str(c)]) == 0
    assert "best loss" in capsys.readouterr().out
    assert json.loads(c.read_text())["out_dir"] == str(tmp_path / "cal")
    for cmd in (["validate"], ["calibrate", "--out", str(tmp_path / "cal2"), "--budget", "1"]):
        assert main([*cmd, "--json", str(tmp_path / "nodir" / "x.json")]) == 2
        assert "directory" in capsys.readouterr().err
    assert not (tmp_path / "cal2").exists()


def test_out_dir_is_checked_before_the_fit(tmp_path: Path, capsys) -> None:
    """A --out holding the user's own files is refused before the first trial, not after the
    whole calibration (review, session 12)."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep\n")
    assert main(["calibrate", "--out", str(mine), "--budget", "4", "--batch-size", "2"]) == 2
    err = capsys.readouterr().err
    assert "never replaced" in err and "batch" not in err
    assert (mine / "notes.txt").read_text() == "keep\n"
    # a file where a directory is needed: refused up front too
    (tmp_path / "f").write_text("x")
    assert main(["calibrate", "--out", str(tmp_path / "f" / "cal"), "--budget", "4"]) == 2
    assert "cannot create it" in capsys.readouterr().err


def test_validate_compares_with_the_recorded_loss_only_for_the_fitted_files(
        tmp_path: Path, capsys) -> None:
    """`validate` printed the shipped fit's recorded loss beside the loss of any targets file;
    for a file other than the one fitted it now says the recorded loss does not apply."""
    shipped = load_targets()
    user = tmp_path / "mine"
    shutil.copytree(shipped.base / "scenarios", user / "scenarios")
    (user / "targets.toml").write_bytes(shipped.path.read_bytes() + b"\n# my edit\n")
    assert main(["validate", str(user / "targets.toml"), "--patients-per-arm", "8"]) == 0
    out = capsys.readouterr().out
    assert "its recorded loss does not apply" in out and "the fit recorded" not in out


def test_evaluate_refuses_a_targets_file_edited_since_the_calibration_read_it(
        tmp_path: Path) -> None:
    """Workers cached the targets by path: a long-lived Dask worker kept scoring the old file
    after an edit. The cache is keyed by content, and the calibration's hash is checked."""
    from reconsolidate.calibration.predict import evaluate

    shipped = load_targets()
    user = tmp_path / "mine"
    shutil.copytree(shipped.base / "scenarios", user / "scenarios")
    tpath = user / "targets.toml"
    tpath.write_bytes(shipped.path.read_bytes())
    sha = _sha(tpath)
    first = evaluate({}, str(tpath), (TARGET,), 4, sha)
    text = tpath.read_text(encoding="utf-8")
    tpath.write_text(text.replace('id = "' + TARGET + '"', 'id = "' + TARGET + '_x"', 1),
                     encoding="utf-8")
    with pytest.raises(InputError, match="changed since the calibration read it"):
        evaluate({}, str(tpath), (TARGET,), 4, sha)
    # without a recorded hash the edited file is read afresh (not the cached old one)
    with pytest.raises(InputError, match="unknown target id"):
        evaluate({}, str(tpath), (TARGET,), 4)
    assert first["predicted"]


def _with_parameter(tmp_path: Path, name: str, low: float, high: float) -> Path:
    """A copy of the shipped targets (and scenarios) with one more free parameter."""
    shipped = load_targets()
    user = tmp_path / "mine"
    shutil.copytree(shipped.base / "scenarios", user / "scenarios")
    tpath = user / "targets.toml"
    tpath.write_text(shipped.path.read_text(encoding="utf-8") + (
        f'\n[[parameters]]\nname = "{name}"\nlow = {low}\nhigh = {high}\nwhy = "test"\n'),
        encoding="utf-8")
    return tpath


def test_a_parameter_a_scenario_sets_itself_cannot_be_freed(tmp_path: Path) -> None:
    """Freeing cohort.treatment_seeking_fraction, which the untreated scenario sets to 0: the
    fit overrode it but the installed fit would not (recorded loss 62.0, installed 54.1);
    refused before the first trial, naming parameter and scenario."""
    tpath = _with_parameter(tmp_path, "cohort.treatment_seeking_fraction", 0.0, 1.0)
    with pytest.raises(InputError, match=r"cohort\.treatment_seeking_fraction: scenario "
                                         r"'untreated' .* sets it itself"):
        calibrate(tpath, budget=1, seed=1, batch_size=1, patients_per_arm=4)


def test_a_therapy_no_target_scenario_simulates_cannot_be_freed(tmp_path: Path) -> None:
    """therapy.mbrp.*: no scenario of the shipped targets gives mindfulness-based relapse
    prevention, so nothing constrains it; the fit would have written wherever the sampler left
    it as calibrated. Refused before the first trial, naming the therapies that are simulated."""
    tpath = _with_parameter(tmp_path, "therapy.mbrp.motivation_logit_per_session", 0.0, 0.5)
    with pytest.raises(InputError, match=r"therapy\.mbrp\.motivation_logit_per_session: no arm "
                                         r"of its targets' scenarios .* receives the 'mbrp' "
                                         r"therapy.*allowed: .*education, met"):
        calibrate(tpath, budget=1, seed=1, batch_size=1, patients_per_arm=4)


def test_a_misspelled_parameter_is_refused_before_the_fit(tmp_path: Path) -> None:
    """behavior.craving_weight_logi (a typo) surfaced only at the first evaluation."""
    shipped = load_targets()
    user = tmp_path / "mine"
    shutil.copytree(shipped.base / "scenarios", user / "scenarios")
    tpath = user / "targets.toml"
    tpath.write_text(shipped.path.read_text(encoding="utf-8").replace(
        'name = "behavior.craving_weight_logit"', 'name = "behavior.craving_weight_logi"', 1),
        encoding="utf-8")
    with pytest.raises(InputError, match=r"\[\[parameters\]\]: unknown behavior parameter "
                                         r"'craving_weight_logi'"):
        calibrate(tpath, budget=1, seed=1, batch_size=1, patients_per_arm=4)


def test_scenarios_hash_covers_specs_and_their_regimens(tmp_path: Path) -> None:
    """scenarios_sha256 changes when a scenario spec or a regimen it names changes (a fit's
    simulations read them; only the targets file was hashed), and not otherwise."""
    shipped = load_targets()
    user = tmp_path / "mine"
    shutil.copytree(shipped.base / "scenarios", user / "scenarios")
    (user / "targets.toml").write_bytes(shipped.path.read_bytes())
    assert load_targets(user / "targets.toml").scenarios_sha256 == shipped.scenarios_sha256
    reg = user / "scenarios" / "regimens" / "das2019.toml"
    reg.write_bytes(reg.read_bytes() + b"\n# edited\n")
    edited = load_targets(user / "targets.toml").scenarios_sha256
    assert edited != shipped.scenarios_sha256
    spec = user / "scenarios" / "das2019.toml"
    spec.write_bytes(spec.read_bytes() + b"\n# edited\n")
    assert load_targets(user / "targets.toml").scenarios_sha256 not in (
        edited, shipped.scenarios_sha256)
