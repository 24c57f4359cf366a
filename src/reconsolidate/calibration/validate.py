"""Validation: every target predicted with the package default parameters, pass or fail.

A target passes when the prediction lies inside its closed interval (its published CI, or its
stated tolerance). Nothing is loosened here: the intervals are the ones in the targets file.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from reconsolidate.calibration.defaults import calibration_provenance
from reconsolidate.calibration.predict import predict_targets, simulate_scenarios
from reconsolidate.calibration.targets import load_targets

__all__ = ["validate"]


def validate(
    targets: str | Path | None = None,
    *,
    target_ids: list[str] | None = None,
    patients_per_arm: int | None = None,
    params: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Predict every target with the default (calibrated) parameters.

    Parameters
    ----------
    targets
        Targets file (default: the shipped one).
    target_ids
        Only these targets.
    patients_per_arm
        Override the scenario sizes.
    params
        Extra parameter values on top of the defaults (e.g. a fitted set not yet shipped).

    Returns
    -------
    dict
        ``{"targets": [{"id", "source", "published", "predicted", "interval", "passed",
        "arm", "endpoint", "statistic", "window_days", "uncertainty"}], "n_passed", "n_targets",
        "patients_per_arm": {scenario: n}, "calibration": provenance}`` (JSON-safe; predicted
        is None when not computable). ``patients_per_arm`` gives the simulated size of each
        scenario scored: a prediction carries the Monte Carlo error of that size.
    """
    lt = load_targets(targets)
    sel = lt.select(target_ids)
    sims = simulate_scenarios(lt, params or {}, scenarios=sorted({t.scenario for t in sel}),
                              base="calibrated", patients_per_arm=patients_per_arm)
    pred = predict_targets(sel, sims)
    rows = []
    for t, p in zip(sel, pred, strict=True):
        rows.append({
            "id": t.id,
            "source": t.source,
            "published": t.published,
            "predicted": p if math.isfinite(p) else None,
            "interval": [t.interval[0], t.interval[1]],
            "passed": t.passed(p),
            "scenario": t.scenario,
            "arm": (t.arm if t.reference_arm is None else f"{t.arm} vs {t.reference_arm}")
            + (f", share of {t.share_of_arm} vs {t.reference_arm}" if t.share_of_arm else ""),
            "endpoint": t.endpoint,
            "statistic": t.statistic,
            "window_days": list(t.window_days),
            "uncertainty": t.uncertainty,
            # 0: a diagnostic, reported but not fitted (the loss ignores it)
            "weight": t.weight,
        })
    from reconsolidate.calibration.predict import lab_checks, loss

    lab = lab_checks(lt, params or {}, base="calibrated")
    target_loss = loss(sel, pred)
    return {
        "targets": rows,
        "n_passed": sum(r["passed"] for r in rows),
        "n_targets": len(rows),
        # each scored scenario's simulated size (the override, or the targets file's)
        "patients_per_arm": {name: lt.patients_per_arm(name, patients_per_arm)
                             for name in sorted({t.scenario for t in sel})},
        # the targets file's laboratory paradigms ([lab]) with the same memory parameters
        "lab": lab,
        # what a calibration minimises: the targets' loss plus the failed checks' penalty
        "loss": {"targets": target_loss, "lab_penalty": lab["penalty"],
                 "total": target_loss + lab["penalty"]},
        "calibration": calibration_provenance(),
        "targets_sha256": lt.sha256,
        "lab_sha256": lt.lab_sha256,
        "scenarios_sha256": lt.scenarios_sha256,
    }
