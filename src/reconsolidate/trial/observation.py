"""What a trial observes, kept apart from what the patients truly drank.

- **Timeline Followback (TLFB)** reports at assessment visits: each completed visit covers the days
  since the last completed visit (at most ``max_recall_days`` back). A day recalled ``lag`` days
  later is under-reported by a factor ``exp(-underreport_per_day * min(lag, 14))``: Wennberg &
  Bohman 1998 found reported consumption falling ~1.5% per day further back over a 28-day window
  [P] (clinical-evidence.md §6). That is a gradient of reported drinking within one recall, not a
  comparison with true drinking, and the authors found it possibly non-linear and recommend
  timelines of 14 days or less [abs]; beyond 14 days the factor is held at 0.81 (ASSUMPTION, no
  study gives recall against truth 30-90 days back; consistent with a bias that builds within the
  first two weeks and then levels off: Buu et al. 2014 Subst Use Misuse 49:1259, PMID 24601785,
  recall beyond ~2 weeks gives a stable typical pattern [abs]; Tonigan, Miller & Brown 1997 J
  Stud Alcohol 58:358, no decay in consistency at the distal points of the 90-day Form 90 [abs]).
  Until session 16 it was held from 28 days, at 0.657: a baseline recalled 12-40 days later
  then read at two thirds of the truth against 0.9 for follow-up weeks recalled within 14 days,
  so follow-up drinking looked about a third higher against baseline than it was (32% with the
  forgotten drinking days, 36% without), in every change
  from baseline and every WHO risk-level shift. Recall
  noise (log-normal, CV growing with the lag) and the chance of forgetting a drinking day altogether
  are ASSUMPTIONs. On top of the per-day noise, every TLFB interview has its own recall factor
  (log-normal, mean 1, CV ``recall_session_cv``) shared by all the days it covers: a person who
  overestimates one day of a recall tends to overestimate the others (ASSUMPTION, derived: the CV
  is the value at which two independent recalls of the same 28 days give the test-retest
  correlation of reported drinks Sobell 1986 found, r ~ 0.87 [P], in the Das 2019 cohort;
  ``python tools/tlfb_test_retest.py``; with per-day noise alone the correlation was 0.98).
  Reports are whole drinks (heaping), at least 1 on a remembered drinking day.
- **Missed assessments**: each follow-up visit is missed with probability ``missed_visit_prob``;
  its days are then recalled at the next completed visit, with a longer recall interval.
- **Dropout** with a daily hazard that rises with heavy drinking over the past week:
  ``h = base * exp(log_hazard_ratio_heavy_week * heavy_days_last_7 / 7)``. After dropout no visit is
  completed; days not covered by a completed visit are missing (NaN).
- **EtG biomarker** (optional): a urine test at each completed visit is positive when the patient
  drank in the preceding ``etg_window_days`` with probability ``etg_sensitivity`` (both
  ASSUMPTIONs, 3 days and 0.9: the project's literature notes give no source for EtG's detection
  window, cut-off or sensitivity). Dakwar 2020 (Am J Psychiatry 177:125,
  doi:10.1176/appi.ajp.2019.19070684) confirmed TLFB abstinence with urine EtG [P].
  What this can and cannot catch: a test sees only the ``etg_window_days`` before its visit, and
  the days just before a visit are recalled with the shortest lag, so they are rarely forgotten
  in the report. With visits weeks apart, "confirmed abstinence in the last K days" therefore
  differs from self-reported abstinence only when a drinking day within the window before the
  final visit was forgotten (probability ``forget_prob_per_day`` x lag, a few in a thousand):
  the two percentages are equal or nearly so. Deliberate denial of drinking (social
  desirability), which the biomarker exists to catch in real trials, is NOT modelled; visits
  closer together (``visit_every_days`` of a few days) let the test cover more of the window.

All random numbers are per patient and keyed by patient index (common random numbers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from pydantic import Field

from reconsolidate._config import StrictModel
from reconsolidate._random import (
    CounterStream,
    counter_uniform,
    normal_quantile,
    patient_day_counter,
)

__all__ = ["Observation", "ObservationModel", "observe", "tlfb_test_retest_r"]

# Wennberg P, Bohman M (1998) German J Psychiatry 2:62: reported consumption falls ~1.5 %/day
# further back in a 28-day TLFB window [P] (clinical-evidence.md section 6).
_WENNBERG_UNDERREPORT_PER_DAY = 0.015
# ASSUMPTION: the lag beyond which under-reporting stops growing, the 14 days within which the
# same authors recommend timelines (module docstring: why not their 28-day window).
_UNDERREPORT_PLATEAU_DAYS = 14
# ASSUMPTION (derived, tools/tlfb_test_retest.py): CV of the per-interview recall factor at which
# two independent 28-day recalls of the Das 2019 cohort's drinking correlate as TLFB test-retest
# does, r ~ 0.87 (Sobell 1986 [P], clinical-evidence.md section 6).
RECALL_SESSION_CV = 0.13


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
        _UNDERREPORT_PLATEAU_DAYS,
        ge=0,
        description="ASSUMPTION: lag (days) beyond which under-reporting stops growing (14: "
        "Wennberg & Bohman 1998 recommend timelines of at most 14 days; before session 16, 28)",
    )
    recall_cv_base: float = Field(
        0.1, ge=0, le=2, description="ASSUMPTION: recall noise CV at lag 0"
    )
    recall_cv_per_day: float = Field(
        0.005, ge=0, le=0.1, description="ASSUMPTION: growth of recall noise CV per day of lag"
    )
    recall_session_cv: float = Field(
        RECALL_SESSION_CV,
        ge=0,
        le=2,
        description="ASSUMPTION (derived from TLFB test-retest r ~ 0.87, Sobell 1986 [P]): CV of "
        "the recall factor shared by all the days one TLFB interview covers",
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
    etg_window_days: int = Field(
        3, ge=1, le=7, description="ASSUMPTION (unsourced): EtG detection window, days"
    )
    etg_sensitivity: float = Field(
        0.9, ge=0, le=1, description="ASSUMPTION (unsourced): EtG sensitivity, probability"
    )


@dataclass
class Observation:
    """Observed data of a chunk of patients.

    Attributes
    ----------
    drinks_reported
        (n, n_days) TLFB report, NaN where no completed visit covers the day.
    etg_positive
        (n, n_days) EtG result 1.0/0.0 of each completed visit's test, filed under the last
        day the test covers (the day before the visit; it covers that day and the
        ``etg_window_days - 1`` before it), NaN on other days (all NaN when the biomarker is
        off).
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

#: Counter-based stream of the observation model and the per-day draws taken from it
#: (:class:`reconsolidate._random.CounterStream`; draw j of patient i on study day d).
OBSERVATION_STREAM = "observation"
DRAW_DROPOUT = 0  # dropout on day d
DRAW_RECALL = 1  # recall noise (a normal by inversion) of day d
DRAW_FORGET = 2  # forgetting day d
DRAW_MISSED = 3  # the visit on day d is missed
DRAW_ETG = 4  # the EtG test at the visit on day d detects recent drinking
DRAW_SESSION = 5  # the recall factor of the TLFB interview on day d


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

    Compiled, one patient at a time; every random number is made where it is used from the
    counter stream ``observation`` (so only covered drinking days cost a recall draw).
    ``tests/trial/test_trial_observation.py`` checks it against a numpy implementation.

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
    visits = np.array(
        [int(v) for v in visit_days if baseline_visit_day < v <= last_day + 1], dtype=np.int64
    )
    out = Observation(
        drinks_reported=np.full((n, n_days), np.nan),
        etg_positive=np.full((n, n_days), np.nan),
        dropout_day=np.empty(n, dtype=np.int64),
        visits_completed=np.zeros(n, dtype=np.int64),
    )
    m = model
    _observe_kernel(
        np.ascontiguousarray(drinks_true, dtype=np.float64),
        np.where(is_female, heavy_drinks_women, heavy_drinks_men).astype(np.float64),
        CounterStream(seed, OBSERVATION_STREAM, replicate).key,
        np.arange(patient_start, patient_start + n, dtype=np.int64),
        int(first_day), int(baseline_visit_day), visits,
        np.array([m.dropout_hazard_per_day, m.dropout_log_hazard_ratio_heavy_week,
                  m.missed_visit_prob, m.underreport_per_day, float(m.underreport_max_lag_days),
                  m.recall_cv_base, m.recall_cv_per_day, m.forget_prob_per_day,
                  m.etg_sensitivity, m.recall_session_cv]),
        int(m.max_recall_days), bool(m.etg), int(m.etg_window_days),
        out.drinks_reported, out.etg_positive, out.dropout_day, out.visits_completed,
    )
    return out


@numba.njit(cache=True, nogil=True)
def _observe_kernel(drinks, heavy_threshold, key, pidx, first_day, baseline_visit_day, visits,
                    par, max_recall_days, etg_on, etg_window_days,
                    reported, etg, dropout_out, completed_out):
    n, n_days = drinks.shape
    hazard0, log_hr_heavy_week, p_missed = par[0], par[1], par[2]
    underreport, max_lag, cv_base, cv_per_day = par[3], par[4], par[5], par[6]
    forget_per_day, etg_sensitivity = par[7], par[8]
    cv_session = par[9]
    sigma_session = math.sqrt(math.log1p(cv_session * cv_session))
    n_visits = visits.size
    never = np.iinfo(np.int32).max
    # Tables of the per-day transcendental terms, which depend only on small integers: the
    # dropout probability by heavy days in the past week (0-7) and the recall terms by lag
    # (0..max_recall_days days); the same expressions as before, evaluated once.
    p_drop = np.empty(8)
    for hv in range(8):
        p_drop[hv] = -math.expm1(-(hazard0 * math.exp(log_hr_heavy_week * float(hv) / 7.0)))
    n_lags = max_recall_days + 2
    shrink_of = np.empty(n_lags)
    sigma_of = np.empty(n_lags)
    for lag_i in range(n_lags):
        lag = float(lag_i)
        shrink_of[lag_i] = math.exp(-underreport * min(lag, max_lag))
        cv = cv_base + cv_per_day * lag
        sigma_of[lag_i] = math.sqrt(math.log1p(cv * cv))
    for i in range(n):
        pid = pidx[i]
        # dropout: daily hazard rising with the heavy days among the 7 days before
        dropout = never
        heavy7 = 0.0
        for j in range(n_days):
            day = first_day + j
            if j >= 8 and drinks[i, j - 8] >= heavy_threshold[i]:
                heavy7 -= 1.0
            if j >= 1 and drinks[i, j - 1] >= heavy_threshold[i]:
                heavy7 += 1.0
            if day > baseline_visit_day:
                u = counter_uniform(key, patient_day_counter(pid, day, DRAW_DROPOUT))
                if u < p_drop[int(heavy7)]:
                    dropout = day
                    break
        dropout_out[i] = dropout
        # the baseline interview (always completed), then each follow-up visit in turn; every
        # completed visit reports the days since the previous completed one (at most
        # max_recall_days back)
        last_completed = baseline_visit_day - max_recall_days - 1
        done_visits = 0
        for k in range(-1, n_visits):
            visit_day = baseline_visit_day if k < 0 else visits[k]
            if k >= 0:
                u = counter_uniform(key, patient_day_counter(pid, visit_day, DRAW_MISSED))
                if u < p_missed or dropout <= visit_day:
                    continue
                done_visits += 1
            cover_from = max(last_completed + 1, visit_day - max_recall_days)
            session = 1.0
            if sigma_session > 0.0:
                zs = normal_quantile(
                    counter_uniform(key, patient_day_counter(pid, visit_day, DRAW_SESSION)))
                session = math.exp(sigma_session * zs - 0.5 * sigma_session * sigma_session)
            for day in range(max(cover_from, first_day), min(visit_day, first_day + n_days)):
                j = day - first_day
                true = drinks[i, j]
                value = 0.0
                if true > 0.0:
                    lag_i = visit_day - day
                    lag = float(lag_i)
                    u = counter_uniform(key, patient_day_counter(pid, day, DRAW_FORGET))
                    if u >= min(forget_per_day * lag, 1.0):
                        shrink = shrink_of[lag_i]
                        sigma = sigma_of[lag_i]
                        z = normal_quantile(
                            counter_uniform(key, patient_day_counter(pid, day, DRAW_RECALL)))
                        noisy = (true * shrink * session
                                 * math.exp(sigma * z - 0.5 * sigma * sigma))
                        value = max(np.rint(noisy), 1.0)
                reported[i, j] = value
            if etg_on and k >= 0 and 1 <= visit_day - first_day <= n_days:
                # the test covers days [visit - window, visit); it is filed under the last
                # of them, so that its column says which days it can see
                w0 = max(visit_day - etg_window_days - first_day, 0)
                w1 = visit_day - first_day
                drank = False
                for j in range(w0, w1):
                    if drinks[i, j] > 0.0:
                        drank = True
                u = counter_uniform(key, patient_day_counter(pid, visit_day, DRAW_ETG))
                positive = drank and u < etg_sensitivity
                etg[i, w1 - 1] = 1.0 if positive else 0.0
            last_completed = visit_day - 1
        completed_out[i] = done_visits


def tlfb_test_retest_r(
    model: ObservationModel,
    drinks_true: np.ndarray,
    is_female: np.ndarray,
    *,
    first_day: int,
    days: int,
    seed: int = 1,
) -> float:
    """Test-retest correlation of TLFB totals that ``model`` implies for these people.

    Two independent interviews on day 0 (the observation streams of replicates 0 and 1) recall
    the ``days`` days before it; the result is the Pearson correlation, across people, of the
    two reported totals: what Sobell et al. 1986 measured (r ~ 0.87 in college drinkers [P]).
    Missed visits and dropout are switched off (both interviews take place).

    Parameters
    ----------
    model
        Observation parameters (its ``max_recall_days`` is replaced by ``days``).
    drinks_true
        (n, n_days) true US standard drinks per day; column j is study day ``first_day + j``,
        and the columns must cover days ``-days .. -1``.
    is_female
        (n,) sex (for the observation model's heavy-day threshold; no effect here).
    first_day
        Study day of column 0 (<= ``-days``).
    days
        Recall interval, days.
    seed
        Observation stream seed.

    Returns
    -------
    float
        Pearson r of the two reported totals.
    """
    if not -first_day >= days >= 1 or first_day + drinks_true.shape[1] < 0:
        raise ValueError(f"days = {days}: need 1 <= days <= -first_day ({-first_day}) and "
                         "columns up to day -1")
    m = model.model_copy(update={"max_recall_days": days, "missed_visit_prob": 0.0,
                                 "dropout_hazard_per_day": 0.0})
    cols = slice(-first_day - days, -first_day)
    totals = []
    for rep in (0, 1):
        o = observe(m, drinks_true, is_female, first_day=first_day, baseline_visit_day=0,
                    visit_days=[], heavy_drinks_men=5.0, heavy_drinks_women=4.0, seed=seed,
                    patient_start=0, replicate=rep)
        totals.append(o.drinks_reported[:, cols].sum(axis=1))
    return float(np.corrcoef(totals[0], totals[1])[0, 1])
