"""The shipped calibrated defaults: provenance, bounds, and how they overlay a spec."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import pytest

from reconsolidate.calibration import (
    FITTED_PATH,
    apply_calibrated_defaults,
    calibrated_parameters,
    calibration_provenance,
    load_fitted,
    load_targets,
    render_fitted_toml,
)
from reconsolidate.calibration import defaults as defaults_mod
from reconsolidate.exceptions import InputError


def test_calibration_shipped_fitted_file_has_provenance_and_is_in_bounds() -> None:
    assert FITTED_PATH.is_file(), "the package ships calibration/fitted.toml"
    prov = calibration_provenance()
    for key in ("command", "seed", "budget", "date_utc", "version", "git_commit",
                "targets_sha256", "loss", "n_targets", "n_targets_passed"):
        assert key in prov, key
    assert prov["command"].startswith("reconsolidate calibrate")
    assert f"--seed {prov['seed']}" in prov["command"]
    assert f"--budget {prov['budget']}" in prov["command"]
    params = calibrated_parameters()
    free = {p.name: p for p in load_targets().parameters}
    assert set(params) == set(free)
    for name, v in params.items():
        assert free[name].low <= v <= free[name].high, name


def test_calibration_defaults_overlay_only_unset_fields() -> None:
    from reconsolidate.trial import load_trial_spec

    params = calibrated_parameters()
    spec = load_trial_spec(load_targets().scenario_path("dakwar2020"))
    out = apply_calibrated_defaults(spec)
    for name, v in params.items():
        group, *rest = name.split(".")
        if group == "behavior":
            assert getattr(out.behavior, rest[0]) == pytest.approx(v)
        elif group == "memory":
            assert out.memory[rest[0]] == pytest.approx(v)
        elif group == "therapy":
            assert getattr(out.therapies[rest[0]], rest[1]) == pytest.approx(v)
    name = next(n for n in params if n.startswith("behavior."))
    field = name.split(".")[1]
    explicit = spec.model_validate({**spec.model_dump(), "behavior": {field: 0.5}})
    assert getattr(apply_calibrated_defaults(explicit).behavior, field) == 0.5


def test_calibration_fitted_file_roundtrip_and_errors(tmp_path: Path) -> None:
    text = render_fitted_toml({"command": 'reconsolidate calibrate --out "a b"', "seed": 1},
                              {"memory.cr_threshold": 0.123456789012345})
    p = tmp_path / "f.toml"
    p.write_text(text, encoding="utf-8")
    d = load_fitted(p)
    assert d["parameters"] == {"memory.cr_threshold": 0.123456789012345}  # full precision
    assert d["provenance"]["command"] == 'reconsolidate calibrate --out "a b"'
    assert tomllib.loads(text)["provenance"]["seed"] == 1
    p.write_text('[parameters]\n"memory.cr_threshold" = "x"\n', encoding="utf-8")
    with pytest.raises(InputError, match="must be a finite number"):
        load_fitted(p)
    with pytest.raises(InputError, match="not found"):
        load_fitted(tmp_path / "missing.toml")


def test_calibration_uncalibrated_package_changes_nothing(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    from reconsolidate.trial import load_trial_spec

    monkeypatch.setattr(defaults_mod, "FITTED_PATH", tmp_path / "none.toml")
    defaults_mod._shipped.cache_clear()
    try:
        assert calibrated_parameters() == {}
        assert calibration_provenance() == {"status": "uncalibrated"}
        spec = load_trial_spec(load_targets().scenario_path("dakwar2020"))
        assert apply_calibrated_defaults(spec) is spec
    finally:
        defaults_mod._shipped.cache_clear()


def test_shipped_fit_reproduces_at_this_commit() -> None:
    """`validate` with the shipped defaults gives the loss and pass count the calibration
    recorded: the fit was made against these targets and nothing in the simulation has changed
    since (a model change without a refit fails here). The tolerance allows for `fastmath`
    kernels compiled for another CPU."""
    from reconsolidate.calibration.predict import loss
    from reconsolidate.calibration.validate import validate

    prov = calibration_provenance()
    lt = load_targets()
    assert prov["targets_sha256"] == lt.sha256, "fitted against another targets file: refit"
    assert prov["lab_sha256"] == lt.lab_sha256, "a [lab] paradigm or regimen changed: refit"
    assert prov["scenarios_sha256"] == lt.scenarios_sha256, "a scenario changed: refit"
    out = validate()
    pred = [math.nan if r["predicted"] is None else r["predicted"] for r in out["targets"]]
    assert out["n_targets"] == prov["n_targets"]
    # the loss the fit minimised: the targets' plus the failed laboratory checks' penalty
    total = loss(lt.targets, pred) + out["lab"]["penalty"]
    assert total == pytest.approx(prov["loss"], rel=1e-3, abs=1e-6)
    assert out["n_passed"] == prov["n_targets_passed"]
    assert out["lab"]["n_passed"] == prov.get("lab_checks_passed", 0)


def test_apply_parameters_rounds_integers_and_names_a_value_the_model_refuses() -> None:
    """A sampler's float for an integer memory field is rounded (it was refused with a
    traceback); a value outside the model's own range names the field (review, session 12)."""
    import numpy as np

    from reconsolidate.calibration.defaults import apply_parameters
    from reconsolidate.trial.spec import load_trial_spec

    spec = load_trial_spec(load_targets().scenario_path("dakwar2020"))
    assert apply_parameters(spec, {"memory.max_causes": np.float64(19.6)}).memory == {
        "max_causes": 20}
    with pytest.raises(InputError, match=r"'therapies\.met\.motivation_logit_per_session' = "
                                         r"30\.0: must be less than or equal to 10"):
        apply_parameters(spec, {"therapy.met.motivation_logit_per_session": 30.0})


def test_calibrated_behavior_and_memory_params_are_the_engines() -> None:
    """Code outside the trial engine (synthetic diaries, paradigms) gets the same daily life
    and memory as a trial: every shipped behavior.* and memory.* value, code defaults elsewhere,
    exactly the parameters the engine resolves for a spec that sets none of them."""
    import dataclasses

    from reconsolidate.calibration.defaults import (
        calibrated_behavior_params,
        calibrated_memory_params,
    )
    from reconsolidate.trial import load_trial_spec
    from reconsolidate.trial.engine import make_plan

    fitted = calibrated_parameters()
    bp, mp = calibrated_behavior_params(), calibrated_memory_params()
    behavior = {k.removeprefix("behavior."): v for k, v in fitted.items()
                if k.startswith("behavior.")}
    assert behavior, "the shipped fit calibrates behaviour parameters"
    for name, value in behavior.items():
        assert getattr(bp, name) == value, name
    path = load_targets().scenario_path("das2019")
    plan = make_plan(load_trial_spec(path), path.parent)
    assert plan.spec.behavior == bp
    assert dataclasses.asdict(plan.memory_params) == dataclasses.asdict(mp)
