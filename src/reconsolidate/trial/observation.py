"""What a trial observes, kept apart from what the patients truly drank.

- **Timeline Followback (TLFB)** reports at assessment visits: each completed visit covers the days
  since the last completed visit (at most ``max_recall_days`` back). A day recalled ``lag`` days
  later is under-reported by a factor ``exp(-underreport_per_day * min(lag, 28))``: Wennberg &
  Bohman 1998 found reported consumption falling ~1.5% per day further back over a 28-day window
  [P] (clinical-evidence.md §6); beyond 28 days the factor is held (ASSUMPTION: no data). Recall
  noise (log-normal, CV growing with the lag) and the chance of forgetting a drinking day altogether
  are ASSUMPTIONs (TLFB test-retest r ~ 0.87, Sobell 1986 [P], bounds the noise). Reports are
  whole drinks (heaping), at least 1 on a remembered drinking day.
- **Missed assessments**: each follow-up visit is missed with probability ``missed_visit_prob``;
  its days are then recalled at the next completed visit, with a longer recall interval.
- **Dropout** with a daily hazard that rises with heavy drinking over the past week:
  ``h = base * exp(log_hazard_ratio_heavy_week * heavy_days_last_7 / 7)``. After dropout no visit is
  completed; days not covered by a completed visit are missing (NaN).
- **EtG biomarker** (optional): a urine test at each completed visit is positive when the patient
  drank in the preceding ``etg_window_days`` with probability ``etg_sensitivity`` (ASSUMPTION: the
  ~80 h detection window commonly quoted for urine EtG at a 500 ng/mL cut-off; no source in the
  notes). Dakwar 2020 confirmed TLFB abstinence with urine EtG [P].

All random numbers are per patient and keyed by patient index (common random numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import Field

from reconsolidate._config import StrictModel
from reconsolidate._random import PatientStream

__all__ = ["Observation", "ObservationModel", "observe"]

# Wennberg P, Bohman M (1998): reported consumption falls ~1.5 %/day further back in a 28-day
# TLFB window [P] (clinical-evidence.md section 6).
_WENNBERG_UNDERREPORT_PER_DAY = 0.015
_WENNBERG_WINDOW_DAYS = 28


class ObservationModel(StrictModel):
    """Parameters of the observation model (TOML table ``[observation]``)."""

    max_recall_days: int = Field(
        90, ge=1, le=730, description="longest TLFB recall interval, days (TLFB covers 7 d - 24 mo)"
    )
    underreport_per_day: float = Field(
        _WENNBERG_UNDERREPORT_PER_DAY,
        ge=0,
        le=0.2,
        description="fractional under-reporting per day of recall lag (Wennberg & Bohman 1998 [P])",
    )
    underreport_max_lag_days: int = Field(
        _WENNBERG_WINDOW_DAYS, ge=0, description="lag beyond which under-reporting stops growing"
    )
    recall_cv_base: float = Field(
        0.1, ge=0, le=2, description="ASSUMPTION: recall noise CV at lag 0"
    )
    recall_cv_per_day: float = Field(
        0.005, ge=0, le=0.1, description="ASSUMPTION: growth of recall noise CV per day of lag"
    )
    forget_prob_per_day: float = Field(
        0.002,
        ge=0,
        le=0.05,
        description="ASSUMPTION: chance per day of lag that a drinking day is reported as 0",
    )
    missed_visit_prob: float = Field(
        0.1, ge=0, le=1, description="ASSUMPTION: probability that a follow-up visit is missed"
    )
    dropout_hazard_per_day: float = Field(
        0.0008,
        ge=0,
        le=1,
        description="ASSUMPTION: daily dropout hazard without heavy drinking (~20% in 270 d)",
    )
    dropout_log_hazard_ratio_heavy_week: float = Field(
        1.4,
        ge=0,
        le=10,
        description="ASSUMPTION: log hazard ratio of dropout for a week of daily heavy drinking",
    )
    etg: bool = Field(False, description="urine ethyl glucuronide test at every completed visit")
    etg_window_days: int = Field(3, ge=1, le=7, description="ASSUMPTION: EtG detection window")
    etg_sensitivity: float = Field(0.9, ge=0, le=1, description="ASSUMPTION: EtG sensitivity")


@dataclass
class Observation:
    """Observed data of a chunk of patients.

    Attributes
    ----------
    drinks_reported
        (n, n_days) TLFB report, NaN where no completed visit covers the day.
    etg_positive
        (n, n_days) 1.0/0.0 on days with a completed visit and an EtG test, NaN otherwise
        (all NaN when the biomarker is off).
    dropout_day
        (n,) study day of dropout (the patient completes no visit from that day on); the int32
        maximum for patients who never drop out.
    visits_completed
        (n,) number of completed follow-up visits.
    """

    drinks_reported: np.ndarray
    etg_positive: np.ndarray
    dropout_day: np.ndarray
    visits_completed: np.ndarray


NEVER = np.iinfo(np.int32).max


def _dropout_day(
    model: ObservationModel,
    heavy: np.ndarray,
    first_day: int,
    start_day: int,
    u: np.ndarray,
) -> np.ndarray:
    """First study day >= ``start_day`` on which the patient drops out (NEVER if none)."""
    n, d = heavy.shape
    csum = np.concatenate([np.zeros((n, 1)), np.cumsum(heavy, axis=1)], axis=1)
    lo = np.maximum(np.arange(d) - 7, 0)
    heavy_last7 = csum[:, np.arange(d)] - csum[:, lo]  # heavy days among the 7 before day j
    hazard = model.dropout_hazard_per_day * np.exp(
        model.dropout_log_hazard_ratio_heavy_week * heavy_last7 / 7.0
    )
    event = u < -np.expm1(-hazard)
    j0 = start_day - first_day
    event[:, : max(j0, 0)] = False
    any_event = event.any(axis=1)
    first = np.argmax(event, axis=1) + first_day
    return np.where(any_event, first, NEVER).astype(np.int64)


def observe(
    model: ObservationModel,
    drinks_true: np.ndarray,
    is_female: np.ndarray,
    *,
    first_day: int,
    baseline_visit_day: int,
    visit_days: list[int] | tuple[int, ...],
    heavy_drinks_men: float,
    heavy_drinks_women: float,
    seed: int,
    patient_start: int,
    replicate: int = 0,
) -> Observation:
    """Apply the observation model to true daily drinking.

    Parameters
    ----------
    model
        Observation parameters.
    drinks_true
        (n, n_days) true US standard drinks per day; column j is study day ``first_day + j``.
    is_female
        (n,) sex, for the heavy-day threshold of the dropout hazard.
    first_day
        Study day of column 0 (negative: baseline).
    baseline_visit_day
        Study day of the baseline TLFB interview (never missed; covers the days before it).
    visit_days
        Study days of the follow-up TLFB visits, increasing, after ``baseline_visit_day``.
    heavy_drinks_men, heavy_drinks_women
        Heavy-drinking-day thresholds (US standard drinks).
    seed, patient_start, replicate
        Random-stream keys: patient indices are ``patient_start + arange(n)``.

    Returns
    -------
    Observation
    """
    n, n_days = drinks_true.shape
    last_day = first_day + n_days - 1
    visits = [int(v) for v in visit_days if baseline_visit_day < v <= last_day + 1]
    stop = patient_start + n
    heavy = drinks_true >= np.where(is_female, heavy_drinks_women, heavy_drinks_men)[:, None]

    u_drop = PatientStream(seed, "observation.dropout", n_days, replicate).uniform(
        patient_start, stop
    )
    dropout = _dropout_day(model, heavy, first_day, baseline_visit_day + 1, u_drop)

    n_visits = len(visits)
    u_miss = PatientStream(seed, "observation.visits", max(2 * n_visits, 1), replicate).uniform(
        patient_start, stop
    )
    z_recall = PatientStream(seed, "observation.recall", n_days, replicate).normal(
        patient_start, stop
    )
    u_forget = PatientStream(seed, "observation.forget", n_days, replicate).uniform(
        patient_start, stop
    )

    reported = np.full((n, n_days), np.nan)
    etg = np.full((n, n_days), np.nan)
    day_of_col = np.arange(n_days) + first_day
    completed = np.zeros(n, dtype=np.int64)

    # The baseline interview (always completed) and then each follow-up visit in turn; every
    # completed visit reports the days since the previous completed one (or max_recall_days).
    last_completed = np.full(n, baseline_visit_day - model.max_recall_days - 1, dtype=np.int64)
    schedule = [(baseline_visit_day, None), *((v, k) for k, v in enumerate(visits))]
    for visit_day, k in schedule:
        if k is None:
            done = np.ones(n, dtype=bool)
        else:
            done = (u_miss[:, k] >= model.missed_visit_prob) & (dropout > visit_day)
            completed += done
        if not done.any():
            continue
        cover_from = np.maximum(last_completed + 1, visit_day - model.max_recall_days)
        cols = slice(
            max(int(cover_from[done].min()) - first_day, 0),
            min(visit_day - first_day, n_days),
        )
        if cols.start < cols.stop:
            days = day_of_col[cols]
            covered = done[:, None] & (days[None, :] >= cover_from[:, None])
            lag = (visit_day - days).astype(np.float64)[None, :]
            true = drinks_true[:, cols]
            shrink = np.exp(
                -model.underreport_per_day * np.minimum(lag, model.underreport_max_lag_days)
            )
            cv = model.recall_cv_base + model.recall_cv_per_day * lag
            sigma = np.sqrt(np.log1p(cv**2))
            noisy = true * shrink * np.exp(sigma * z_recall[:, cols] - sigma**2 / 2)
            remembered = u_forget[:, cols] >= np.minimum(model.forget_prob_per_day * lag, 1.0)
            value = np.where(
                (true > 0) & remembered, np.maximum(np.rint(noisy), 1.0), 0.0
            )
            reported[:, cols] = np.where(covered, value, reported[:, cols])
        if model.etg and k is not None and 0 <= visit_day - first_day <= n_days:
            w0 = max(visit_day - model.etg_window_days - first_day, 0)
            w1 = min(visit_day - first_day, n_days)
            drank = (drinks_true[:, w0:w1] > 0).any(axis=1) if w1 > w0 else np.zeros(n, bool)
            positive = drank & (u_miss[:, n_visits + k] < model.etg_sensitivity)
            col = min(visit_day - first_day, n_days - 1)
            etg[:, col] = np.where(done, positive.astype(np.float64), etg[:, col])
        last_completed = np.where(done, visit_day - 1, last_completed)

    return Observation(
        drinks_reported=reported,
        etg_positive=etg,
        dropout_day=dropout,
        visits_completed=completed,
    )
