"""The observation model: recall error grows with the interval, missed visits, dropout, EtG."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import ndtri

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
        missed_visit_prob=0, dropout_hazard_per_day=0, recall_session_cv=0,
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
    # the day-14 visit's test covers days 11-13 and is filed under day 13
    assert o.etg_positive[0, 10 + 13] == 1.0
    assert o.etg_positive[1, 10 + 13] == 0.0
    assert np.isnan(o.etg_positive[:, 10 + 14]).all()
    assert np.isnan(o.etg_positive[:, 10 + 12]).all()
    # a visit on the day after the last observed day: its test is on the last day
    o = _obs(m, drinks, [20])
    assert o.etg_positive[0, -1] == 0.0 and np.isnan(o.etg_positive[0, :-1]).all()


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


# ----------------------------------------------------------------------------- numpy oracle
def _observe_numpy(model, drinks_true, is_female, *, first_day, baseline_visit_day, visit_days,
                   heavy_drinks_men, heavy_drinks_women, seed, patient_start, replicate=0):
    """Vectorised numpy implementation of the observation model (the compiled one's oracle),
    reading the same counter-stream numbers."""
    from reconsolidate._random import CounterStream
    from reconsolidate.trial import observation as ob

    n, n_days = drinks_true.shape
    last_day = first_day + n_days - 1
    visits = [int(v) for v in visit_days if baseline_visit_day < v <= last_day + 1]
    pid = np.arange(patient_start, patient_start + n)
    stream = CounterStream(seed, ob.OBSERVATION_STREAM, replicate)
    day_of_col = np.arange(n_days) + first_day
    draws = np.stack([stream.uniform(pid, int(d), 6) for d in day_of_col], axis=1)  # (n, D, 6)
    heavy = drinks_true >= np.where(is_female, heavy_drinks_women, heavy_drinks_men)[:, None]
    csum = np.concatenate([np.zeros((n, 1)), np.cumsum(heavy, axis=1)], axis=1)
    lo = np.maximum(np.arange(n_days) - 7, 0)
    heavy_last7 = csum[:, np.arange(n_days)] - csum[:, lo]
    hazard = model.dropout_hazard_per_day * np.exp(
        model.dropout_log_hazard_ratio_heavy_week * heavy_last7 / 7.0)
    event = draws[:, :, ob.DRAW_DROPOUT] < -np.expm1(-hazard)
    event[:, : max(baseline_visit_day + 1 - first_day, 0)] = False
    dropout = np.where(event.any(axis=1), np.argmax(event, axis=1) + first_day, ob.NEVER)

    def visit_draw(day: int, j: int) -> np.ndarray:
        return stream.uniform(pid, day, 6)[:, j]

    reported = np.full((n, n_days), np.nan)
    etg = np.full((n, n_days), np.nan)
    completed = np.zeros(n, dtype=np.int64)
    z_recall = ndtri(draws[:, :, ob.DRAW_RECALL])
    u_forget = draws[:, :, ob.DRAW_FORGET]
    last_completed = np.full(n, baseline_visit_day - model.max_recall_days - 1)
    for k, visit_day in [(None, baseline_visit_day), *enumerate(visits)]:
        if k is None:
            done = np.ones(n, dtype=bool)
        else:
            done = (visit_draw(visit_day, ob.DRAW_MISSED) >= model.missed_visit_prob) & (
                dropout > visit_day)
            completed += done
        cover_from = np.maximum(last_completed + 1, visit_day - model.max_recall_days)
        cols = day_of_col < visit_day
        covered = done[:, None] & cols[None, :] & (day_of_col[None, :] >= cover_from[:, None])
        lag = (visit_day - day_of_col).astype(np.float64)[None, :]
        shrink = np.exp(
            -model.underreport_per_day * np.minimum(lag, model.underreport_max_lag_days))
        cv = model.recall_cv_base + model.recall_cv_per_day * lag
        sigma = np.sqrt(np.log1p(cv**2))
        s_sess = np.sqrt(np.log1p(model.recall_session_cv**2))
        session = np.exp(s_sess * ndtri(visit_draw(visit_day, ob.DRAW_SESSION)) - s_sess**2 / 2)
        with np.errstate(over="ignore", invalid="ignore"):
            noisy = (drinks_true * shrink * session[:, None]
                     * np.exp(sigma * z_recall - sigma**2 / 2))
        remembered = u_forget >= np.minimum(model.forget_prob_per_day * lag, 1.0)
        value = np.where((drinks_true > 0) & remembered, np.maximum(np.rint(noisy), 1.0), 0.0)
        reported = np.where(covered, value, reported)
        if model.etg and k is not None and 1 <= visit_day - first_day <= n_days:
            # covers [visit - window, visit), filed under its last day
            w0 = max(visit_day - model.etg_window_days - first_day, 0)
            w1 = visit_day - first_day
            drank = (drinks_true[:, w0:w1] > 0).any(axis=1)
            positive = drank & (visit_draw(visit_day, ob.DRAW_ETG) < model.etg_sensitivity)
            etg[:, w1 - 1] = np.where(done, positive.astype(np.float64), etg[:, w1 - 1])
        last_completed = np.where(done, visit_day - 1, last_completed)
    return reported, etg, dropout, completed


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    etg=st.booleans(),
    miss=st.sampled_from([0.0, 0.1, 0.5]),
    hazard=st.sampled_from([0.0, 0.002, 0.05]),
    visits=st.lists(st.integers(1, 45), min_size=0, max_size=6, unique=True),
    first_day=st.integers(-20, -1),
    max_recall=st.sampled_from([7, 30, 90]),
    session_cv=st.sampled_from([0.0, 0.3]),
)
def test_compiled_observation_matches_numpy_oracle(seed, etg, miss, hazard, visits, first_day,
                                                   max_recall, session_cv) -> None:
    rng = np.random.default_rng(seed)
    n, d = 25, 40 - first_day
    drinks = np.where(rng.random((n, d)) < 0.6, rng.gamma(2.0, 3.0, (n, d)), 0.0)
    female = rng.random(n) < 0.4
    m = ObservationModel(etg=etg, missed_visit_prob=miss, dropout_hazard_per_day=hazard,
                         max_recall_days=max_recall, recall_session_cv=session_cv)
    kw = dict(first_day=first_day, baseline_visit_day=0, visit_days=sorted(visits),
              heavy_drinks_men=5.0, heavy_drinks_women=4.0, seed=seed % 1000, patient_start=7)
    o = observe(m, drinks, female, **kw)
    rep, etg_pos, dropout, completed = _observe_numpy(m, drinks, female, **kw)
    assert np.array_equal(o.dropout_day, dropout)
    assert np.array_equal(o.visits_completed, completed)
    assert np.array_equal(o.etg_positive, etg_pos, equal_nan=True)
    assert np.allclose(o.drinks_reported, rep, equal_nan=True, rtol=0, atol=0)


def test_one_recall_factor_per_interview() -> None:
    """Without per-day noise, every day one interview covers is scaled by the same factor, and
    the factors of different interviews (and patients) differ."""
    m = ObservationModel(underreport_per_day=0, recall_cv_base=0, recall_cv_per_day=0,
                         forget_prob_per_day=0, missed_visit_prob=0, dropout_hazard_per_day=0,
                         recall_session_cv=0.3)
    drinks = np.full((200, 40), 1000.0)  # large, so whole-drink rounding hardly matters
    o = _obs(m, drinks, [14, 30])
    ratio = o.drinks_reported / drinks
    for lo, hi in [(0, 10), (10, 24), (24, 40)]:  # baseline (days -10..-1), 0..13, 14..29
        block = ratio[:, lo:hi]
        assert np.allclose(block, block[:, :1], atol=1.5e-3)
    per_interview = ratio[:, [0, 10, 24]]
    assert np.std(np.log(per_interview)) == pytest.approx(np.sqrt(np.log1p(0.3**2)), rel=0.1)
    assert np.mean(per_interview) == pytest.approx(1.0, abs=0.03)  # mean-one factor
    assert abs(np.corrcoef(per_interview[:, 0], per_interview[:, 1])[0, 1]) < 0.2


def test_default_recall_reproduces_tlfb_test_retest_reliability() -> None:
    """Sobell 1986 [P]: TLFB test-retest r ~ 0.87. The default recall_session_cv is derived so
    that two independent 28-day recalls of the Das 2019 cohort correlate so
    (tools/tlfb_test_retest.py); per-day noise alone gave ~0.98."""
    from pathlib import Path

    from reconsolidate.trial.engine import make_plan, simulate_chunk
    from reconsolidate.trial.observation import tlfb_test_retest_r
    from reconsolidate.trial.spec import load_trial_spec

    path = Path(__file__).resolve().parents[2] / "examples" / "trials" / "das2019.toml"
    spec = load_trial_spec(path)
    r = simulate_chunk(make_plan(spec, spec_dir=path.parent), 0, 0, 0, 3000)
    kw = dict(first_day=-spec.baseline_days, days=28)
    rr = tlfb_test_retest_r(ObservationModel(), r.drinks_true, r.patients.is_female, **kw)
    assert rr == pytest.approx(0.87, abs=0.02)
    no_session = ObservationModel(recall_session_cv=0.0)
    assert tlfb_test_retest_r(no_session, r.drinks_true, r.patients.is_female, **kw) > 0.95
    with pytest.raises(ValueError, match="days = 40"):
        tlfb_test_retest_r(ObservationModel(), r.drinks_true, r.patients.is_female,
                           first_day=-spec.baseline_days, days=40)
