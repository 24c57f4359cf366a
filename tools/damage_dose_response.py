"""Reconsolidation damage against the ketamine dose, calibrated fit vs code defaults.

Prints the table of docs/calibration.md ("What the fit does to the memory"): for a 40-min
infusion at 75 kg (Domino model, no PK variability), the lability-weighted NMDA occupancy
integral over the 6-h window (``nmda_exposure(..., weight_tau_min=lability_tau_min)``, as the
trial engine computes it) and the damage ``D_max (1 - exp(-L I_w / I_scale))`` of a fully
labile memory (``L`` = 1) with the shipped fit and with the code defaults.

    python tools/damage_dose_response.py
"""

from __future__ import annotations

import math

import numpy as np

from reconsolidate.calibration.defaults import calibrated_memory_params
from reconsolidate.memory.params import MemoryParams
from reconsolidate.pharmacology import nmda_exposure
from reconsolidate.pharmacology.regimen import Regimen

DOSES_MG_PER_KG = (0.02, 0.05, 0.1, 0.2, 0.5, 0.8)
WEIGHT_KG = 75.0
WINDOW_MIN = 360.0  # trial.engine.RESTABILISATION_WINDOW_MIN


def damage(weighted_integral_min: float, p: MemoryParams) -> float:
    """Damage of a fully labile memory for a weighted occupancy integral (occupancy x min)."""
    return p.restabilization_damage_max * (
        1.0 - math.exp(-weighted_integral_min / p.restabilization_occupancy_scale_min))


def main() -> None:
    fit, code = calibrated_memory_params(), MemoryParams()
    print("| dose, mg/kg over 40 min | I_w, occupancy x min | damage, fit (share of max) "
          "| damage, code defaults (share of max) |")
    print("|---|---|---|---|")
    for dose in DOSES_MG_PER_KG:
        reg = Regimen.model_validate({"name": f"{dose} mg/kg", "infusion": [
            {"start_min": 0, "duration_min": 40, "dose_mg_per_kg": dose}]})
        e = nmda_exposure(reg, WEIGHT_KG, window_start_min=0.0, window_stop_min=WINDOW_MIN,
                          weight_tau_min=fit.lability_tau_min)
        iw = float(np.asarray(e.weighted_occupancy_integral_min).ravel()[0])
        d_fit, d_code = damage(iw, fit), damage(iw, code)
        print(f"| {dose:g} | {iw:.2f} | {d_fit:.3f} ({d_fit / fit.restabilization_damage_max:.0%})"
              f" | {d_code:.3f} ({d_code / code.restabilization_damage_max:.0%}) |")


if __name__ == "__main__":
    main()
