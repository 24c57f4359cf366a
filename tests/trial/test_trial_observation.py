"""The observation model: recall error grows with the interval, missed visits, dropout, EtG."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from reconsolidate.trial.observation import NEVER, ObservationModel, observe


def _obs(model: ObservationModel, drinks: np.ndarray, visits, first_day=-10, female=None):
    n = drinks.shape[0]
    return observe(
        model,
        drinks,
        np.zeros(n, bool) if female is None else female,
        first_day=first_day,
        baseline_visit_day=0,
        visit_days=visits,
        heavy_drinks_men=5.0,
        heavy_drinks_women=4.0,
        seed=1,
        patient_start=0,
    )


def test_perfect_reporter_reports_the_truth() -> None:
    m = ObservationModel(
        underreport_per_day=0, recall_cv_base=0, recall_cv_per_day=0, forget_prob_per_day=0,
        missed_visit_prob=0, dropout_hazard_per_day=0,
    )
    rng = np.random.default_rng(0)
    drinks = np.where(rng.random((50, 40)) < 0.5, rng.integers(1, 12, (50, 40)), 0).astype(float)
    o = _obs(m, drinks, [7, 14, 30])
    assert np.array_equal(o.drinks_reported, drinks)
    assert np.all(o.dropout_day == NEVER)
    assert np.all(o.visits_completed == 3)


def test_underreporting_grows_with_recall_interval() -> None:
    """Wennberg & Bohman 1998: ~1.5%/day less reported further back (here: visit spacing)."""
    m = ObservationModel(missed_visit_prob=0, dropout_hazard_per_day=0, forget_prob_per_day=0)
    drinks = np.full((4000, 40), 8.0)
    short = _obs(m, drinks, list(range(1, 31)), first_day=-10)  # daily visits: lag 1
    long = _obs(m, drinks, [28], first_day=-10)  # one visit: lags 1..28
    fu = slice(10, 38)
    r_short = np.nanmean(short.drinks_reported[:, fu])
    r_long = np.nanmean(long.drinks_reported[:, fu])
    assert r_short == pytest.approx(8.0 * np.exp(-0.015), rel=0.03)
    assert r_long < r_short - 1.0
    # the oldest days of the long recall are the most under-reported
    assert np.nanmean(long.drinks_reported[:, 10]) < np.nanmean(long.drinks_reported[:, 36])


def test_missed_visits_lengthen_recall_and_dropout_leaves_missing_days() -> None:
    m = ObservationModel(missed_visit_prob=0.5, dropout_hazard_per_day=0.02)
    drinks = np.full((3000, 70), 2.0)
    o = _obs(m, drinks, [14, 28, 42, 60])
    assert 0 < o.visits_completed.mean() < 4
    dropped = o.dropout_day < 60
    assert dropped.any()
    # nothing is reported for days after a patient's last completed visit
    rep = o.drinks_reported
    for i in np.flatnonzero(dropped)[:50]:
        col = o.dropout_day[i] + 10
        assert np.all(np.isnan(rep[i, col:]))
    # baseline days are always reported (baseline interview is never missed)
    assert not np.isnan(rep[:, :10]).any()


def test_dropout_hazard_rises_with_heavy_drinking() -> None:
    m = ObservationModel(missed_visit_prob=0)
    light = _obs(m, np.full((4000, 300), 1.0), [300], first_day=-10)
    heavy = _obs(m, np.full((4000, 300), 9.0), [300], first_day=-10)
    assert (heavy.dropout_day < NEVER).mean() > 1.5 * (light.dropout_day < NEVER).mean()


def test_etg_detects_recent_drinking_only() -> None:
    m = ObservationModel(etg=True, etg_sensitivity=1.0, missed_visit_prob=0,
                         dropout_hazard_per_day=0)
    drinks = np.zeros((2, 30))
    drinks[0, 10 + 12] = 4.0  # patient 0 drinks on study day 12, 2 days before the day-14 visit
    drinks[1, 10 + 3] = 4.0  # patient 1 drinks on day 3, 11 days before it
    o = _obs(m, drinks, [14])
    assert o.etg_positive[0, 10 + 14] == 1.0
    assert o.etg_positive[1, 10 + 14] == 0.0
    assert np.isnan(o.etg_positive[:, 10 + 13]).all()


def test_observation_is_keyed_by_patient_index() -> None:
    m = ObservationModel()
    drinks = np.random.default_rng(2).integers(0, 9, (30, 60)).astype(float)
    whole = _obs(m, drinks, [14, 28, 42])
    part = observe(m, drinks[10:], np.zeros(20, bool), first_day=-10, baseline_visit_day=0,
                   visit_days=[14, 28, 42], heavy_drinks_men=5, heavy_drinks_women=4,
                   seed=1, patient_start=10)
    assert np.array_equal(whole.drinks_reported[10:], part.drinks_reported, equal_nan=True)


@settings(max_examples=40, deadline=None)
@given(
    drinks=arrays(np.float64, (6, 30), elements=st.sampled_from([0.0, 1.0, 2.5, 6.0, 14.0])),
    miss=st.floats(0, 1),
    hazard=st.floats(0, 0.2),
    visits=st.lists(st.integers(1, 21), min_size=0, max_size=5, unique=True),
)
def test_reports_are_missing_or_whole_nonnegative_and_zero_when_abstinent(
    drinks, miss, hazard, visits
) -> None:
    m = ObservationModel(missed_visit_prob=miss, dropout_hazard_per_day=hazard)
    o = _obs(m, drinks, sorted(visits))
    r = o.drinks_reported
    seen = ~np.isnan(r)
    assert np.all(r[seen] >= 0) and np.all(r[seen] == np.rint(r[seen]))
    assert np.all(r[seen & (drinks == 0)] == 0)  # abstinent days are never reported as drinking
    assert seen[:, :10].all()  # the baseline interview is always completed
