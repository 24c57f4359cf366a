"""The package's calibrated default parameters: a shipped file with its provenance.

``calibration/fitted.toml`` is written by ``reconsolidate calibrate`` (``DIR/fitted.toml``) and
copied into the package to make it the default. It holds ``[provenance]`` (the command that
reproduces it, seed, budget, date, package version, git commit, SHA-256 of the targets file,
loss) and ``[parameters]`` (dotted names, e.g. ``"behavior.craving_weight_logit" = 4.2``).

:func:`apply_calibrated_defaults` overlays these values on a trial spec wherever the spec does
not set the parameter itself, so explicit values in a spec always win.

The trial engine applies them at the top of ``reconsolidate.trial.engine.make_plan`` (unless
``calibrated=False``, ``--uncalibrated``) and stores :func:`calibration_provenance` in
``metadata.json`` under ``"calibration"``. Code that runs the daily-life or memory model outside
the trial engine (the synthetic diaries of ``reconsolidate simulate-diary``, the paradigms) takes
the same values from :func:`calibrated_behavior_params` and :func:`calibrated_memory_params`.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reconsolidate._config import format_validation_error, read_toml
from reconsolidate.exceptions import InputError

__all__ = [
    "FITTED_PATH",
    "apply_calibrated_defaults",
    "apply_parameters",
    "calibrated_behavior_params",
    "calibrated_memory_params",
    "calibrated_parameters",
    "calibration_provenance",
    "load_fitted",
    "memory_values",
    "render_fitted_toml",
]

FITTED_PATH = Path(__file__).with_name("fitted.toml")


def load_fitted(path: str | Path | None = None) -> dict[str, Any]:
    """Read a fitted-parameter file: ``{"provenance": {...}, "parameters": {name: value}}``.

    A missing default file gives empty parameters and ``provenance = {"status": "uncalibrated"}``.
    """
    p = Path(path) if path is not None else FITTED_PATH
    if not p.is_file():
        if path is not None:
            raise InputError(f"fitted parameter file {p} not found")
        return {"provenance": {"status": "uncalibrated"}, "parameters": {}}
    data = read_toml(p)
    params = data.get("parameters", {})
    prov = data.get("provenance", {})
    if not isinstance(params, dict) or not isinstance(prov, dict):
        raise InputError(f"{p}: needs tables [provenance] and [parameters]")
    for k, v in params.items():
        if not isinstance(v, int | float) or not math.isfinite(float(v)):
            raise InputError(f"{p}: parameters.{k} = {v!r}: must be a finite number")
    return {"provenance": prov, "parameters": {k: float(v) for k, v in params.items()}}


@lru_cache(maxsize=1)
def _shipped() -> tuple[tuple[tuple[str, float], ...], tuple[tuple[str, Any], ...]]:
    d = load_fitted(None)
    return tuple(sorted(d["parameters"].items())), tuple(sorted(d["provenance"].items()))


def calibrated_parameters() -> dict[str, float]:
    """The shipped calibrated parameter values (empty when the package is uncalibrated)."""
    return dict(_shipped()[0])


def _group_values(params: dict[str, float], group: str) -> dict[str, float]:
    """The ``GROUP.*`` entries of a dotted parameter set, by field name."""
    prefix = f"{group}."
    return {k.removeprefix(prefix): v for k, v in params.items() if k.startswith(prefix)}


def memory_values(params: dict[str, float]) -> dict[str, float]:
    """The ``memory.*`` entries of a dotted parameter set, by MemoryParams field name."""
    return _group_values(params, "memory")


def calibrated_memory_params() -> Any:
    """:class:`~reconsolidate.memory.params.MemoryParams` with the shipped calibrated
    ``memory.*`` values (the memory the trial engine uses), the code defaults elsewhere."""
    import dataclasses

    from reconsolidate.memory.params import MemoryParams

    return dataclasses.replace(MemoryParams(), **memory_values(calibrated_parameters()))


def calibrated_behavior_params() -> Any:
    """:class:`~reconsolidate.behavior.params.BehaviorParams` with the shipped calibrated
    ``behavior.*`` values (the daily life the trial engine runs), the code defaults elsewhere."""
    from reconsolidate.behavior.params import BehaviorParams

    return BehaviorParams(**_group_values(calibrated_parameters(), "behavior"))


def calibration_provenance() -> dict[str, Any]:
    """Provenance of the shipped calibrated parameters (command, seed, budget, date, version)."""
    return dict(_shipped()[1])


def _split(name: str) -> tuple[str, str | None, str]:
    parts = name.split(".")
    if parts[0] == "therapy" and len(parts) == 3:
        return "therapy", parts[1], parts[2]
    if parts[0] in ("behavior", "memory", "cohort") and len(parts) == 2:
        return parts[0], None, parts[1]
    raise InputError(
        f"parameter {name!r}: use behavior.X, memory.X, cohort.X or therapy.PRESET.X"
    )


def apply_parameters(spec: Any, params: dict[str, float], *, only_unset: bool = False,
                     skipped: list[str] | None = None) -> Any:
    """A copy of the trial spec with parameter values set (dotted names).

    Parameters
    ----------
    spec
        A :class:`reconsolidate.trial.TrialSpec`.
    params
        ``{"behavior.X": v, "memory.X": v, "therapy.PRESET.X": v, "cohort.X": v}``.
    only_unset
        Leave every parameter the spec sets explicitly untouched (used for calibrated defaults).
    skipped
        If given, the names left untouched because the spec sets them are appended to it.

    Unknown names raise InputError listing the valid ones.
    """
    from reconsolidate.behavior.params import BehaviorParams
    from reconsolidate.behavior.therapy import THERAPY_PRESETS, Therapy, TherapySpec
    from reconsolidate.memory.params import MemoryParams
    from reconsolidate.population.cohorts import Cohort

    behavior = spec.behavior.model_dump()
    memory = dict(spec.memory)
    therapies = {k: v.model_dump(exclude_none=True) for k, v in spec.therapies.items()}
    cohort = spec.cohort.model_dump(exclude_none=True)
    for name, value in params.items():
        group, preset, field = _split(name)
        if group == "behavior":
            if field not in BehaviorParams.model_fields:
                raise InputError(f"unknown behavior parameter {field!r}; valid: "
                                 f"{', '.join(BehaviorParams.model_fields)}")
            if only_unset and field in spec.behavior.model_fields_set:
                _note(skipped, name)
                continue
            behavior[field] = value
        elif group == "memory":
            if field not in MemoryParams.__dataclass_fields__:
                raise InputError(f"unknown memory parameter {field!r}; valid: "
                                 f"{', '.join(MemoryParams.__dataclass_fields__)}")
            if only_unset and field in spec.memory:
                _note(skipped, name)
                continue
            kind = MemoryParams.__dataclass_fields__[field].type
            memory[field] = round(value) if kind in (int, "int") else value
        elif group == "therapy":
            if preset not in THERAPY_PRESETS:
                raise InputError(f"unknown therapy preset {preset!r}; valid: "
                                 f"{', '.join(THERAPY_PRESETS)}")
            if field not in Therapy.model_fields or field in ("name", "description"):
                raise InputError(f"unknown therapy parameter {field!r}; valid: "
                                 f"{', '.join(TherapySpec.model_fields)}")
            # A therapy table named after the preset overrides the preset for every arm using it.
            cur = therapies.get(preset, {"preset": preset})
            if cur.get("preset", "none") != preset:
                continue  # the spec defines its own therapy under that name: not ours to change
            if only_unset and field in cur:
                _note(skipped, name)
                continue
            therapies[preset] = {**cur, field: value}
        else:
            if field not in Cohort.model_fields or field == "source":
                raise InputError(f"unknown cohort parameter {field!r}; valid: "
                                 f"{', '.join(Cohort.model_fields)}")
            if only_unset and field in cohort:
                _note(skipped, name)
                continue
            cohort[field] = value
    try:
        return spec.model_validate(
            {
                **spec.model_dump(exclude={"behavior", "memory", "therapies", "cohort"}),
                "behavior": behavior,
                "memory": memory,
                "therapies": therapies,
                "cohort": cohort,
            }
        )
    except ValidationError as exc:
        # a parameter range wider than the model allows: say which value broke which field
        raise InputError(
            "a parameter value does not fit the model: "
            + format_validation_error(exc, model=type(spec))
            + " (narrow the parameter's [low, high] in the targets file)") from None


def _note(skipped: list[str] | None, name: str) -> None:
    if skipped is not None:
        skipped.append(name)


def apply_calibrated_defaults(spec: Any) -> Any:
    """The spec with the shipped calibrated values wherever the spec does not set a parameter."""
    params = calibrated_parameters()
    if not params:
        return spec
    return apply_parameters(spec, params, only_unset=True)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(float(v)) if isinstance(v, float) else str(v)
    s = str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return f'"{s}"'


def render_fitted_toml(provenance: dict[str, Any], parameters: dict[str, float]) -> str:
    """The text of a fitted-parameter file (stable key order, floats in full precision)."""
    lines = [
        "# Calibrated parameters of reconsolidate (written by `reconsolidate calibrate`).",
        "# Copy to src/reconsolidate/calibration/fitted.toml to make them the package defaults;",
        "# `provenance.command` reproduces the file exactly (same seed -> same result, local or",
        "# on a Dask cluster).",
        "",
        "[provenance]",
    ]
    for k in sorted(provenance):
        lines.append(f"{k} = {_toml_value(provenance[k])}")
    lines += ["", "[parameters]"]
    for k in sorted(parameters):
        lines.append(f'"{k}" = {float(parameters[k])!r}')
    return "\n".join(lines) + "\n"
