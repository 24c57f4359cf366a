"""Strict configuration models: no conversion between types, one-line messages saying what is
allowed (``reconsolidate._config``)."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest
from pydantic import Field, ValidationError

import reconsolidate
from reconsolidate._config import StrictModel, format_validation_error, load_toml_model
from reconsolidate.exceptions import InputError


class _Step(StrictModel):
    start_min: float
    n_doses: int = 1


class _Plan(StrictModel):
    days: int
    scale: float = 1.0
    on: bool = True
    label: str = "x"
    window_days: tuple[int, int] | None = None
    bounds: tuple[float, float] = (0.0, 1.0)
    steps: list[_Step] = Field(default_factory=list)


@pytest.mark.parametrize(
    ("toml", "msg"),
    [
        ('days = "120"', "field 'days' = '120': must be an integer"),
        ("days = 7.0", "field 'days' = 7.0: must be an integer"),
        ("days = true", "field 'days' = True: must be an integer"),
        ('days = 1\nscale = "5"', "field 'scale' = '5': must be a number"),
        ("days = 1\nscale = false", "field 'scale' = False: must be a number"),
        ("days = 1\non = 1", "field 'on' = 1: must be true or false"),
        ('days = 1\non = "yes"', "field 'on' = 'yes': must be true or false"),
        ("days = 1\nlabel = 3", "field 'label' = 3: must be a string"),
        ('days = 1\nwindow_days = [1, "2"]', "field 'window_days[1]' = '2': must be an integer"),
        ("days = 1\nwindow_days = [1, 2.5]", "field 'window_days[1]' = 2.5: must be an integer"),
        ('days = 1\n[[steps]]\nstart_min = "0"',
         "field 'steps[0].start_min' = '0': must be a number"),
        ("days = 1\n[[steps]]\nstart_min = 0\nn_doses = 2.0",
         "field 'steps[0].n_doses' = 2.0: must be an integer"),
    ],
)
def test_values_are_not_converted_between_types(tmp_path: Path, toml: str, msg: str) -> None:
    """pydantic's lax mode read "120" as 120 and 7.0 as 7: a spec with the wrong types ran."""
    f = tmp_path / "c.toml"
    f.write_text(toml + "\n")
    with pytest.raises(InputError) as info:
        load_toml_model(f, _Plan)
    assert str(info.value) == f"{f}: {msg}"


def test_integers_for_numbers_and_arrays_for_tuples_stay_valid(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("days = 3\nscale = 2\nwindow_days = [-5, -1]\nbounds = [0, 0.5]\n"
                 "[[steps]]\nstart_min = 10\n")
    plan = load_toml_model(f, _Plan)
    assert plan.scale == 2.0 and isinstance(plan.scale, float)
    assert plan.window_days == (-5, -1) and plan.bounds == (0.0, 0.5)
    assert all(isinstance(b, float) for b in plan.bounds)
    assert isinstance(plan.steps[0].start_min, float)
    # and a dumped model validates again (tuples, floats)
    assert _Plan.model_validate(plan.model_dump()) == plan


def test_constraint_messages_say_what_is_allowed() -> None:
    class _C(StrictModel):
        rate_per_day: float = Field(gt=0)
        mode: str = Field("a", pattern="^[ab]$")

    with pytest.raises(ValidationError) as info:
        _C.model_validate({"rate_per_day": 0})
    assert format_validation_error(info.value, model=_C) == (
        "field 'rate_per_day' = 0: must be greater than 0")
    # a table inside a larger file: its path in front of every field
    assert format_validation_error(info.value, model=_C, root="a.b[0].c") == (
        "field 'a.b[0].c.rate_per_day' = 0: must be greater than 0")


def _strict_models() -> list[type[StrictModel]]:
    for m in pkgutil.walk_packages(reconsolidate.__path__, "reconsolidate."):
        if not m.name.endswith("__main__"):
            importlib.import_module(m.name)
    out, todo = [], list(StrictModel.__subclasses__())
    while todo:
        c = todo.pop()
        out.append(c)
        todo.extend(c.__subclasses__())
    return [c for c in out if c.__module__.startswith("reconsolidate.")]


def test_every_configuration_model_of_the_package_is_strict() -> None:
    """Trial specs, regimens, paradigms, calibration targets, trigger mappings, diary options:
    each model inherits strict mode (a subclass could switch it off)."""
    models = _strict_models()
    assert {"TrialSpec", "Regimen", "Paradigm", "TargetSet", "CueMapping"} <= {
        c.__name__ for c in models}
    loose = [c.__qualname__ for c in models if c.model_config.get("strict") is not True]
    assert loose == []


def test_numpy_scalars_are_the_numbers_they_stand_for() -> None:
    """The Python API takes numbers computed with numpy: np.int64 for an integer field,
    np.float64 for a number, np.bool_ for a boolean (strict mode alone refused them); a
    string is still refused."""
    import tomllib

    import numpy as np

    from reconsolidate.trial.spec import TrialSpec

    root = Path(__file__).resolve().parents[1]
    d = tomllib.loads((root / "examples" / "trials" / "placebo-natural-history.toml").read_text())
    d.update(patients_per_arm=np.int64(100), seed=np.int64(3), shared_patients=np.bool_(False))
    spec = TrialSpec.model_validate(d)
    assert spec.patients_per_arm == 100 and type(spec.patients_per_arm) is int
    assert spec.shared_patients is False
    d["patients_per_arm"] = "100"
    with pytest.raises(Exception, match="patients_per_arm"):
        TrialSpec.model_validate(d)


def test_pattern_length_tag_and_finite_messages_say_what_is_allowed() -> None:
    """pydantic's raw texts ('String should match pattern', 'List should have at least 1 item
    after validation', 'Input tag ... found using ...') and NaN checked only against bounds
    ('nan: must be <= 1440') are worded as what is allowed (trial-design review)."""
    from typing import Annotated, Literal

    class _A(StrictModel):
        dist: Literal["a"] = "a"

    class _B(StrictModel):
        dist: Literal["b"] = "b"

    class _M(StrictModel):
        name: str = Field("x", pattern=r"^[a-z]+$")
        items: list[int] = Field(default_factory=lambda: [1], min_length=1)
        d: Annotated[_A | _B, Field(discriminator="dist")] = _A()
        delay: float = Field(0.0, le=1440)

    def msg(data: dict) -> str:
        with pytest.raises(ValidationError) as exc:
            _M.model_validate(data)
        return format_validation_error(exc.value, model=_M)

    assert msg({"name": "A!"}) == "field 'name' = 'A!': must match the pattern ^[a-z]+$"
    assert msg({"items": []}) == "field 'items' = []: must have at least 1 item"
    assert msg({"d": {"dist": "c"}}).endswith("dist = 'c' is not known; allowed: 'a', 'b'")
    assert msg({"delay": float("nan")}) == "field 'delay' = nan: must be a finite number"
    assert msg({"delay": float("inf")}) == "field 'delay' = inf: must be a finite number"
