"""Virtual patients: covariates, cohort presets with sources, and cue environments.

Public API: :class:`Cohort`, :class:`CohortSpec`, :func:`get_cohort`, :func:`list_cohorts`,
:func:`resolve_cohort`, :class:`CueEnvironment`, :data:`CUE_CLASSES`, :class:`Patients`,
:func:`sample_patients`.
"""

from reconsolidate.population.cohorts import (
    COHORT_PRESETS,
    TLFB_BASELINE_REMEMBERED_DAY_FRACTION,
    TLFB_BASELINE_REPORTED_FRACTION,
    UK_UNITS_PER_US_DRINK,
    Cohort,
    CohortSpec,
    get_cohort,
    list_cohorts,
    resolve_cohort,
)
from reconsolidate.population.cues import CUE_CLASSES, CUE_LABELS, CueEnvironment, cue_mask
from reconsolidate.population.distributions import Distribution, Fixed, LogNormal, Normal, Uniform
from reconsolidate.population.sample import Patients, sample_patients

__all__ = [
    "COHORT_PRESETS",
    "CUE_CLASSES",
    "CUE_LABELS",
    "TLFB_BASELINE_REMEMBERED_DAY_FRACTION",
    "TLFB_BASELINE_REPORTED_FRACTION",
    "UK_UNITS_PER_US_DRINK",
    "Cohort",
    "CohortSpec",
    "CueEnvironment",
    "Distribution",
    "Fixed",
    "LogNormal",
    "Normal",
    "Patients",
    "Uniform",
    "cue_mask",
    "get_cohort",
    "list_cohorts",
    "resolve_cohort",
    "sample_patients",
]
