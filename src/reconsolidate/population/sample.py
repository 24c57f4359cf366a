"""Sampling virtual patients: covariates and cue environments as struct-of-arrays.

Patient ``i``'s covariates come from counter-based streams at index ``i`` (named
``population.covariates`` and ``population.cues``), so the same index gives the same person in
every arm (common random numbers) and for any chunking of the cohort.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any

import numpy as np

from reconsolidate._random import PatientStream
from reconsolidate.exceptions import InputError
from reconsolidate.population.cohorts import UK_UNITS_PER_US_DRINK, Cohort
from reconsolidate.population.cues import CUE_CLASSES, CueEnvironment, exposure_probability
from reconsolidate.population.distributions import range_problem

__all__ = [
    "COVARIATE_RANGES",
    "MAX_DSM5_CRITERIA",
    "MAX_WEIGHT_KG",
    "Patients",
    "cohort_range_problem",
    "sample_patients",
    "severity_scale",
]

#: DSM-5 alcohol use disorder has 11 criteria (2-3 met: mild, 4-5: moderate, >= 6: severe):
#: American Psychiatric Association, Diagnostic and Statistical Manual of Mental Disorders,
#: 5th ed. (DSM-5), 2013, doi:10.1176/appi.books.9780890425596 [mem: DOI not in the notes].
MAX_DSM5_CRITERIA = 11

#: Largest body weight (kg) the pharmacology accepts (``pharmacology.simulate``: 0 < weight <= 400).
MAX_WEIGHT_KG = 400.0

#: Allowed range of each bounded cohort covariate: ``(low, high, low excluded, what)``. A cohort
#: distribution must stay inside it (bounds truncate by inversion); values are not clipped.
COVARIATE_RANGES: dict[str, tuple[float, float, bool, str]] = {
    "weight_kg_male": (0.0, MAX_WEIGHT_KG, True, "body weight (kg)"),
    "weight_kg_female": (0.0, MAX_WEIGHT_KG, True, "body weight (kg)"),
    "drinks_per_drinking_day": (0.0, math.inf, True, "US drinks per drinking day"),
    "drinking_days_per_week": (0.0, 7.0, False, "drinking days per week"),
    "dsm5_criteria": (0.0, float(MAX_DSM5_CRITERIA), False,
                      f"the count of DSM-5 AUD criteria (of {MAX_DSM5_CRITERIA})"),
}

# Order of the draws in the ``population.covariates`` stream; appending keeps old draws stable.
_COV = (
    "sex",
    "age",
    "weight",
    "dpdd",
    "ddpw",
    "dsm5",
    "seeking",
    "abstinent",
)


def cohort_range_problem(cohort: Any, where: str = "cohort") -> str | None:
    """The first covariate distribution of ``cohort`` outside its allowed range, as a message.

    Parameters
    ----------
    cohort
        A :class:`~reconsolidate.population.cohorts.Cohort` or ``CohortSpec`` (fields left
        ``None`` come from a preset and are not checked here).
    where
        Dotted path of the cohort table, the prefix of the message (``"arms[1].cohort"``).

    Returns
    -------
    str | None
        ``"cohort.drinking_days_per_week = {...}: gives 8; drinking days per week must lie in
        [0, 7]"``, or None when every covariate is inside :data:`COVARIATE_RANGES`.
    """
    for name, (low, high, low_open, what) in COVARIATE_RANGES.items():
        dist = getattr(cohort, name, None)
        if dist is None:
            continue
        problem = range_problem(dist, low, high, low_open=low_open, what=what)
        if problem is not None:
            return f"{where}.{name} = {dist.model_dump()!r}: {problem}"
    return None


def severity_scale(aud_severity: np.ndarray) -> np.ndarray:
    """Multiplier of cue acquisition strength by AUD severity in [0, 1].

    ASSUMPTION (no source; calibrate): cue-alcohol associations are stronger in more severe AUD
    (cue reactivity grows with dependence); a linear scale from 0.7 (no criteria) to 1.3 (all 11).
    """
    return 0.7 + 0.6 * np.asarray(aud_severity)


@dataclass
class Patients:
    """Virtual patients as struct-of-arrays; every array has length n (first axis).

    Attributes
    ----------
    index
        Patient index within the arm (the key of every per-patient random stream).
    is_female, age_years, weight_kg
        Demographics.
    drinks_per_drinking_day, drinking_days_per_week
        Usual drinking before the study (US standard drinks; days per week).
    dsm5_criteria, aud_severity
        DSM-5 AUD criteria met (integer-valued float) and severity = criteria / 11.
    treatment_seeking, abstinent_at_entry
        Booleans.
    motivation_z
        Standard normal per patient: how strongly this patient responds to motivational
        lifts (quit attempt, therapy), see ``BehaviorParams.motivation_cv``.
    acquisition_strength
        (n, n_cues) initial cue-alcohol association strength in [0, 1].
    rate_weekday_per_day, rate_weekend_per_day
        (n, n_cues) expected cue exposures per day.
    """

    index: np.ndarray
    is_female: np.ndarray
    age_years: np.ndarray
    weight_kg: np.ndarray
    drinks_per_drinking_day: np.ndarray
    drinking_days_per_week: np.ndarray
    dsm5_criteria: np.ndarray
    aud_severity: np.ndarray
    treatment_seeking: np.ndarray
    abstinent_at_entry: np.ndarray
    motivation_z: np.ndarray
    acquisition_strength: np.ndarray
    rate_weekday_per_day: np.ndarray
    rate_weekend_per_day: np.ndarray

    @property
    def n(self) -> int:
        return int(self.index.shape[0])

    @cached_property
    def exposure_prob_weekday(self) -> np.ndarray:
        """(n, n_cues) probability of meeting each cue at least once on a weekday."""
        return exposure_probability(self.rate_weekday_per_day)

    @cached_property
    def exposure_prob_weekend(self) -> np.ndarray:
        """(n, n_cues) probability of meeting each cue at least once on a weekend day."""
        return exposure_probability(self.rate_weekend_per_day)

    @property
    def baseline_drinks_per_week(self) -> np.ndarray:
        """Usual US standard drinks per week before the study."""
        return self.drinks_per_drinking_day * self.drinking_days_per_week

    @property
    def baseline_uk_units_per_week(self) -> np.ndarray:
        """Usual UK units (8 g ethanol) per week before the study."""
        return self.baseline_drinks_per_week * UK_UNITS_PER_US_DRINK

    def columns(self) -> dict[str, np.ndarray]:
        """One-dimensional covariate columns (for the patients table)."""
        out = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name).ndim == 1
        }
        out["baseline_drinks_per_week"] = self.baseline_drinks_per_week
        out["baseline_uk_units_per_week"] = self.baseline_uk_units_per_week
        for c, name in enumerate(CUE_CLASSES):
            out[f"acquisition_strength_{name}"] = self.acquisition_strength[:, c]
        return out


def sample_patients(
    cohort: Cohort,
    environment: CueEnvironment,
    seed: int,
    start: int,
    stop: int,
    *,
    replicate: int = 0,
) -> Patients:
    """Sample patients ``start .. stop-1`` of a cohort.

    Parameters
    ----------
    cohort
        Complete covariate distributions.
    environment
        Cue exposure rates and relative acquisition strengths.
    seed
        Trial seed.
    start, stop
        Patient indices (within an arm; the same index is the same person in every arm).
    replicate
        Replicate number: a different replicate is an independent cohort.

    Returns
    -------
    Patients
        Struct-of-arrays of ``stop - start`` patients.
    """
    problem = cohort_range_problem(cohort)
    if problem is not None:
        raise InputError(problem)
    n_cues = len(CUE_CLASSES)
    u = PatientStream(seed, "population.covariates", len(_COV), replicate).uniform(start, stop)
    col = {name: u[:, j] for j, name in enumerate(_COV)}
    is_female = col["sex"] < cohort.female_fraction
    weight = np.where(
        is_female,
        cohort.weight_kg_female.ppf(col["weight"]),
        cohort.weight_kg_male.ppf(col["weight"]),
    )
    # the ranges are validated above (cohort_range_problem); the clips only absorb rounding
    dsm5 = np.clip(np.rint(cohort.dsm5_criteria.ppf(col["dsm5"])), 0, MAX_DSM5_CRITERIA)
    severity = dsm5 / MAX_DSM5_CRITERIA
    ddpw = np.clip(cohort.drinking_days_per_week.ppf(col["ddpw"]), 0.0, 7.0)

    z = PatientStream(seed, "population.cues", 2 * n_cues, replicate).normal(start, stop)
    # Log-normal between-patient variation with mean-one multipliers.
    s_cue = np.sqrt(np.log1p(cohort.cue_strength_cv**2))
    s_rate = np.sqrt(np.log1p(cohort.exposure_rate_cv**2))
    strength_mult = np.exp(s_cue * z[:, :n_cues] - s_cue**2 / 2)
    rate_mult = np.exp(s_rate * z[:, n_cues:] - s_rate**2 / 2)
    strength = np.clip(
        environment.strengths[None, :] * severity_scale(severity)[:, None] * strength_mult,
        0.0,
        0.99,
    )
    # its own stream, so that adding it left every other covariate's draws unchanged
    motivation_z = PatientStream(seed, "population.motivation", 1, replicate).normal(start, stop)
    return Patients(
        index=np.arange(start, stop, dtype=np.int64),
        is_female=is_female,
        age_years=cohort.age_years.ppf(col["age"]),
        weight_kg=weight,
        drinks_per_drinking_day=np.maximum(cohort.drinks_per_drinking_day.ppf(col["dpdd"]), 0.5),
        drinking_days_per_week=ddpw,
        dsm5_criteria=dsm5,
        aud_severity=severity,
        treatment_seeking=col["seeking"] < cohort.treatment_seeking_fraction,
        abstinent_at_entry=col["abstinent"] < cohort.abstinent_at_entry_fraction,
        motivation_z=motivation_z[:, 0],
        acquisition_strength=strength,
        rate_weekday_per_day=environment.weekday_rates[None, :] * rate_mult,
        rate_weekend_per_day=environment.weekend_rates[None, :] * rate_mult,
    )
