"""Ketamine pharmacology: infusion regimen -> plasma / effect-site ketamine -> NMDA occupancy.

Public API (each documented in its module; docs/pharmacology.md is the guide):

- :func:`list_models`, :func:`get_model` -- published PK models with provenance;
- :class:`Regimen`, :func:`load_regimen` -- boluses, infusions, plasma / effect-site TCI;
- :func:`simulate` -> :class:`PKResult` -- exact, vectorised over patients, optional
  between-subject variability drawn per patient from ``PatientStream(seed, "pk.eta", ...)``;
- :func:`occupancy_integral`, :func:`exp_weighted_occupancy_integral` (e.g. lability-weighted),
  :func:`nmda_exposure` -> :class:`NMDAExposure` (optionally with the weighted integral);
- :func:`nmda_occupancy`, :func:`psychedelic_intensity` -- the PD functions;
- :func:`macro_constants` -- the STANPUMP macro-constant solution (cross-check);
- :func:`ke0_from_tpeak`.
"""

from reconsolidate.exceptions import DomainWarning, ExtrapolationWarning
from reconsolidate.pharmacology.macro import macro_constants, simulate_macro
from reconsolidate.pharmacology.models import (
    PARAMETER_NAMES,
    PKModel,
    get_model,
    ke0_from_tpeak,
    list_models,
)
from reconsolidate.pharmacology.pd import (
    exp_weighted_occupancy_integral,
    nmda_occupancy,
    occupancy_integral,
    psychedelic_intensity,
)
from reconsolidate.pharmacology.regimen import Bolus, Infusion, Regimen, TCIPhase, load_regimen
from reconsolidate.pharmacology.simulate import NMDAExposure, PKResult, nmda_exposure, simulate

__all__ = [
    "PARAMETER_NAMES",
    "Bolus",
    "DomainWarning",
    "ExtrapolationWarning",
    "Infusion",
    "NMDAExposure",
    "PKModel",
    "PKResult",
    "Regimen",
    "TCIPhase",
    "exp_weighted_occupancy_integral",
    "get_model",
    "ke0_from_tpeak",
    "list_models",
    "load_regimen",
    "macro_constants",
    "nmda_exposure",
    "nmda_occupancy",
    "occupancy_integral",
    "psychedelic_intensity",
    "simulate",
    "simulate_macro",
]
