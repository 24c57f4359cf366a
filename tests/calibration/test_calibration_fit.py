"""Refining a fit: the search box around a start fit, the start as first trial, CMA-ES."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pytest

from reconsolidate.calibration import load_fitted, load_targets
from reconsolidate.calibration.defaults import FITTED_PATH
from reconsolidate.calibration.fit import calibrate, search_box, write_calibration
from reconsolidate.cli import main
from reconsolidate.exceptions import InputError

IDS = ["dakwar2020_ketamine_pda_21d", "dakwar2020_midazolam_pda_21d"]
SMALL = dict(budget=6, seed=3, batch_size=2, patients_per_arm=12, target_ids=IDS)


def _start() -> dict[str, float]:
    return load_fitted(FITTED_PATH)["parameters"]


def test_search_box_declared_bounds_without_start() -> None:
    lt = load_targets()
    assert search_box(lt, None, 1.0) == {p.name: (p.low, p.high) for p in lt.parameters}


def test_search_box_is_centred_on_the_start_and_shifted_inside_the_bounds() -> None:
    lt = load_targets()
    start = _start()
    box = search_box(lt, start, 0.1)
    for p in lt.parameters:
        lo, hi = box[p.name]
        assert p.low <= lo <= start[p.name] <= hi <= p.high
        f = math.log if p.log else float
        full = f(p.high) - f(p.low)
        assert f(hi) - f(lo) == pytest.approx(0.2 * full, rel=1e-9)  # same width everywhere
        if f(p.low) + 0.1 * full <= f(start[p.name]) <= f(p.high) - 0.1 * full:
            assert f(start[p.name]) - f(lo) == pytest.approx(0.1 * full, rel=1e-9)
    # a start at a bound: the box keeps its width and lies on that side
    p = lt.parameters[0]
    edge = search_box(lt, {**start, p.name: p.low}, 0.25)[p.name]
    f = math.log if p.log else float
    assert edge[0] == p.low
    assert f(edge[1]) - f(edge[0]) == pytest.approx(0.5 * (f(p.high) - f(p.low)), rel=1e-9)
    # radius >= 0.5: the declared bounds
    assert search_box(lt, start, 0.5) == search_box(lt, None, 1.0)


@pytest.mark.parametrize(
    ("start", "radius", "message"),
    [(None, 0.0, "must be in (0, 1]"), (None, 1.5, "must be in (0, 1]"),
     ("drop", 0.1, "no value for"), ("outside", 0.1, "outside its declared bounds")],
)
def test_search_box_errors(start: str | None, radius: float, message: str) -> None:
    lt = load_targets()
    values = _start()
    name = lt.parameters[0].name
    if start == "drop":
        values.pop(name)
    elif start == "outside":
        values[name] = lt.parameters[0].high * 10.0
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        search_box(lt, values if start else None, radius)


@pytest.mark.parametrize("sampler", ["tpe", "cmaes"])
def test_refinement_starts_at_the_start_fit_and_stays_in_its_box(sampler: str) -> None:
    if sampler == "cmaes":
        pytest.importorskip("cmaes")
    res = calibrate(**SMALL, sampler=sampler, start=FITTED_PATH, radius=0.1)
    start = _start()
    box = search_box(load_targets(), start, 0.1)
    assert res.history[0]["params"] == {k: start[k] for k in box}
    for h in res.history:
        assert all(box[k][0] <= v <= box[k][1] for k, v in h["params"].items())
    assert res.best_loss <= res.history[0]["loss"]
    assert len({tuple(h["params"].values()) for h in res.history}) == len(res.history)
    again = calibrate(**SMALL, sampler=sampler, start=FITTED_PATH, radius=0.1)
    assert [h["params"] for h in again.history] == [h["params"] for h in res.history]
    assert res.settings["start"]["sha256"] and res.settings["start"]["radius"] == 0.1


def test_refinement_provenance_names_its_start(tmp_path: Path) -> None:
    res = calibrate(**{**SMALL, "budget": 2}, start=FITTED_PATH, radius=0.05)
    write_calibration(res, tmp_path / "out", command="reconsolidate calibrate --start X")
    prov = load_fitted(tmp_path / "out" / "fitted.toml")["provenance"]
    shipped = load_fitted(FITTED_PATH)["provenance"]
    assert prov["start_command"] == shipped["command"]
    assert prov["start_git_commit"] == shipped["git_commit"]
    assert prov["radius"] == 0.05 and len(prov["start_sha256"]) == 64
    # the start itself is kept next to the fit (the file it names is often then replaced)
    assert prov["start_copy"] == "start.toml"
    copy = (tmp_path / "out" / "start.toml").read_bytes()
    assert copy == FITTED_PATH.read_bytes()
    assert hashlib.sha256(copy).hexdigest() == prov["start_sha256"]


def test_calibrate_cli_rejects_bad_refinement_options(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    out = str(tmp_path / "x")
    assert main(["calibrate", "--out", out, "--radius", "0.2"]) == 2
    assert "only with --start" in capsys.readouterr().err
    assert main(["calibrate", "--out", out, "--sampler", "grid"]) == 2
    assert "must be one of tpe, cmaes" in capsys.readouterr().err
    assert main(["calibrate", "--out", out, "--start", str(tmp_path / "none.toml")]) == 2
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cmaes_starts_from_the_start_fit_with_a_population_of_whole_batches(
    tmp_path: Path,
) -> None:
    """CMA-ES's mean starts at the start's values even where the box was shifted off-centre
    (the first generation's samples gather around the start), and its population is a multiple
    of the batch size (a generation is told once popsize of its trials are complete)."""
    pytest.importorskip("cmaes")
    lt = load_targets()
    start = _start()
    # put four parameters close to a declared bound, so that their boxes are shifted
    for k, p in enumerate(lt.parameters[:4]):
        f, inv = (math.log, math.exp) if p.log else (float, float)
        lo_b, hi_b = f(p.low), f(p.high)
        start[p.name] = inv(lo_b + 0.01 * (hi_b - lo_b)) if k % 2 else inv(
            hi_b - 0.01 * (hi_b - lo_b))
        start[p.name] = min(max(start[p.name], p.low), p.high)
    text = FITTED_PATH.read_text(encoding="utf-8").split("[parameters]")[0]
    start_file = tmp_path / "start.toml"
    start_file.write_text(text + "[parameters]\n" + "".join(
        f'"{k}" = {v!r}\n' for k, v in start.items()), encoding="utf-8")
    res = calibrate(**{**SMALL, "budget": 8 + 16, "batch_size": 8}, sampler="cmaes",
                    start=start_file, radius=0.1)
    assert "popsize=16" in res.settings["sampler"] and "x0=start" in res.settings["sampler"]
    box = search_box(lt, start, 0.1)
    # batch 1: the start and 7 uniform draws (optuna's CMA-ES learns the search space from a
    # completed trial); batches 2-3: CMA-ES's first generation
    first_gen = [h["params"] for h in res.history[8:24]]
    shifted = 0
    for p in lt.parameters:
        f = math.log if p.log else float
        lo, hi = (f(v) for v in box[p.name])
        rel_start = (f(start[p.name]) - lo) / (hi - lo)
        if abs(rel_start - 0.5) < 0.3:
            continue  # start near the box centre: both would pass
        shifted += 1
        rel_mean = (sum(f(x[p.name]) for x in first_gen) / len(first_gen) - lo) / (hi - lo)
        # samples cut at the box edge pull the mean inwards, but it stays on the start's side
        assert abs(rel_mean - rel_start) < abs(rel_mean - 0.5), p.name
    assert shifted >= 4


def test_start_file_with_parameters_that_are_not_calibrated_is_rejected(tmp_path: Path) -> None:
    text = FITTED_PATH.read_text(encoding="utf-8")
    bad = tmp_path / "fitted.toml"
    bad.write_text(text.replace("[parameters]", '[parameters]\n"memory.learning_rate" = 0.3'),
                   encoding="utf-8")
    with pytest.raises(InputError, match=r"--start .*memory.learning_rate are not calibrated"):
        calibrate(**SMALL, start=bad, radius=0.1)
    short = tmp_path / "short.toml"
    name = load_targets().parameters[0].name
    short.write_text("\n".join(line for line in text.splitlines()
                               if not line.startswith(f'"{name}"')), encoding="utf-8")
    with pytest.raises(InputError, match=rf"--start .*short.toml: no value for {name}"):
        calibrate(**SMALL, start=short, radius=0.1)


def test_calibrate_cli_records_the_refinement_in_the_command(tmp_path: Path) -> None:
    out = tmp_path / "refined"
    args = ["calibrate", "--out", str(out), "--budget", "1", "--seed", "2", "--batch-size", "1",
            "--patients-per-arm", "4", "--start", str(FITTED_PATH), "--radius", "0.05",
            "--json", "-"]
    assert main(args) == 0
    prov = load_fitted(out / "fitted.toml")["provenance"]
    assert f"--start {FITTED_PATH} --radius 0.05" in prov["command"]
    assert prov["radius"] == 0.05
    # the single trial is the start itself
    assert load_fitted(out / "fitted.toml")["parameters"] == _start()


def test_a_subset_of_targets_names_the_parameters_it_leaves_unconstrained() -> None:
    """Dakwar's arms receive MET, not alcohol education: calibrating to its targets alone
    leaves therapy.education.* unconstrained, which the result says (the whole file, whose
    COMBINE scenario has education, constrains it: no refusal)."""
    from reconsolidate.calibration.fit import _refuse_parameters_set_by_scenarios
    from reconsolidate.calibration.targets import load_targets

    lt = load_targets()
    assert _refuse_parameters_set_by_scenarios(lt, ["dakwar2020"]) == [
        "therapy.education.motivation_logit_per_session"]
    assert _refuse_parameters_set_by_scenarios(lt, ["combine", "dakwar2020"]) == []
