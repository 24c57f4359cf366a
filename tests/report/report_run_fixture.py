"""A small simulated run directory for the report tests (Das 2019 design, 8 weeks, 30/arm)."""

from __future__ import annotations

from pathlib import Path

from reconsolidate._config import read_toml
from reconsolidate.calibration import load_targets


def make_run(tmp: Path, patients_per_arm: int = 30, replicates: int = 1) -> Path:
    """Run the Das 2019 calibration scenario shortened to 8 weeks; returns the run directory.

    The ketamine regimen is inlined in the spec so the run directory is self-describing;
    ``replicates`` sets the spec's ``replicates`` (independent replicate trials).
    """
    from reconsolidate.trial import load_trial_spec, make_plan, run_trial

    lt = load_targets()
    path = lt.scenario_path("das2019")
    spec = load_trial_spec(path)
    data = spec.model_dump(mode="json")
    for prot in data["protocols"].values():
        for s in prot["sessions"]:
            if isinstance(s.get("regimen"), str):
                s["regimen"] = read_toml(path.parent / s["regimen"])
    data["follow_up_days"] = 56
    data["replicates"] = replicates
    data["assessment"]["visit_days"] = [7, 28, 56]
    spec = type(spec).model_validate(data)
    out = tmp / "run"
    run_trial(make_plan(spec, path.parent, patients_per_arm), out_dir=out,
              spec_text=path.read_text(encoding="utf-8"))
    return out
