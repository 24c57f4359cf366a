"""Calibration of the free parameters to published trials, and validation of the defaults.

Public API:

- :func:`load_targets` -> the shipped (or a given) targets file, validated;
- :func:`simulate_scenarios`, :func:`predict_targets`, :func:`loss`, :func:`evaluate`;
- :func:`calibrate` (optuna TPE, ask/tell in fixed batches; locally or on a Dask cluster, the
  same result for the same seed);
- :func:`validate` -> predicted vs published for every target;
- :func:`calibrated_parameters`, :func:`calibration_provenance`, :func:`apply_calibrated_defaults`
  (the package defaults are the shipped ``fitted.toml``).
"""

from reconsolidate.calibration.defaults import (
    FITTED_PATH,
    apply_calibrated_defaults,
    apply_parameters,
    calibrated_parameters,
    calibration_provenance,
    load_fitted,
    render_fitted_toml,
)
from reconsolidate.calibration.predict import (
    ArmData,
    code_default,
    evaluate,
    loss,
    predict_targets,
    simulate_scenarios,
)
from reconsolidate.calibration.targets import (
    DEFAULT_TARGETS_PATH,
    FreeParameter,
    Scenario,
    Target,
    TargetSet,
    load_targets,
)

__all__ = [
    "DEFAULT_TARGETS_PATH",
    "FITTED_PATH",
    "ArmData",
    "FreeParameter",
    "Scenario",
    "Target",
    "TargetSet",
    "apply_calibrated_defaults",
    "apply_parameters",
    "calibrate",
    "calibrated_parameters",
    "calibration_provenance",
    "code_default",
    "evaluate",
    "load_fitted",
    "load_targets",
    "loss",
    "predict_targets",
    "render_fitted_toml",
    "simulate_scenarios",
    "validate",
]


def __getattr__(name: str):  # lazy: optuna/dask are imported only when calibrating
    if name == "calibrate":
        from reconsolidate.calibration.fit import calibrate

        return calibrate
    if name == "validate":
        from reconsolidate.calibration.validate import validate

        return validate
    raise AttributeError(name)
