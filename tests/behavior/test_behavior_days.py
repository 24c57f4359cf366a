"""The fused daily-life kernel against the numpy reference, day by day and over months."""

from __future__ import annotations

import numpy as np
import pytest

from reconsolidate._random import CounterStream
from reconsolidate.behavior import (
    BehaviorParams,
    BehaviorState,
    calibrate_intercept,
    drinking_probability_target,
    live_day,
)
from reconsolidate.behavior.days import DAY_STREAM, DayPlan, live_days
from reconsolidate.memory import population as mem
from reconsolidate.memory.params import MemoryParams
from reconsolidate.population import CueEnvironment, get_cohort, sample_patients

MP = MemoryParams()


def _start(n: int, cohort: str, bp: BehaviorParams, start: int = 0, mp: MemoryParams = MP):
    p = sample_patients(get_cohort(cohort), CueEnvironment(), 11, start, start + n)
    m = mem.new_state(p.acquisition_strength, mp)
    a, k = calibrate_intercept(p, mem.response(m, mp), bp)
    st = BehaviorState.start(a, k, drinking_probability_target(p, bp))
    # some motivation and skill, so that every term of the decision is exercised
    # (a function of the patient index, so that a chunk of the same patients is the same)
    st.quit_lift_logit[:] = 0.3 * (p.index % 11)
    st.therapy_lift_logit[:] = 0.5
    st.ketamine_lift_logit[:] = 0.1 * (p.index % 5)
    st.ketamine_lasting_lift_logit[:] = 0.05 * (p.index % 7)
    st.coping_skill[:] = 0.04 * (p.index % 11)
    st.regression_logit[:] = 0.1 * (p.index % 3)
    st.regression_target_logit[:] = 0.4 * (p.index % 4)
    st.recommitment_logit[:] = 0.02 * (p.index % 4)
    return p, m, st


def _plan(days: np.ndarray, detox_until: int | None = None, snapshot_every: int = 0,
          accumulate_until: int | None = None) -> DayPlan:
    snap = np.full(days.size, -1)
    if snapshot_every:
        hit = days % snapshot_every == 0
        snap[hit] = np.arange(hit.sum())
    return DayPlan(
        days=days,
        weekend=(days % 7) >= 5,
        detox=np.zeros(days.size, bool) if detox_until is None else days < detox_until,
        record_col=np.arange(days.size),
        snapshot_col=snap,
        accumulate=None if accumulate_until is None else days < accumulate_until,
    )


def _reference(p, m, st, bp, plan: DayPlan, stream: CounterStream, skill_hl: np.ndarray,
               mp: MemoryParams = MP):
    """The same days with the numpy reference :func:`live_day`, one day at a time."""
    n, c = p.n, m.shape[1]
    drinks = np.zeros((p.n, plan.days.size))
    snaps = np.full((n, max(plan.snapshot_col.max() + 1, 0)), np.nan)
    snaps_w = np.full_like(snaps, np.nan)
    cr_sum = np.zeros((n, c))
    for j, d in enumerate(plan.days):
        if plan.accumulate is not None and plan.accumulate[j]:
            cr_sum += mem.response(m, mp)
        if plan.snapshot_col[j] >= 0:
            snaps[:, plan.snapshot_col[j]] = mem.response(m, mp).mean(axis=1)
            snaps_w[:, plan.snapshot_col[j]] = m.w0.mean(axis=1)
        u = stream.uniform(p.index, int(d), c + 2)
        forced = p.abstinent_at_entry if plan.detox[j] else None
        drinks[:, j] = live_day(m, st, p, bp, mp, u, weekend=bool(plan.weekend[j]),
                                forced_abstinent=forced)
        mem.advance(m, 24.0)
        st.decay(bp, skill_hl, 1.0)
    return drinks, snaps, snaps_w, cr_sum


@pytest.mark.parametrize(
    ("cohort", "bp", "mp"),
    [
        ("das2019", BehaviorParams(), MP),
        ("combine", BehaviorParams(habit_weight_logit=6.0, habit_time_constant_days=10.0), MP),
        ("dakwar2020", BehaviorParams(craving_weight_logit=9.0, amount_craving_elasticity=1.5),
         MP),
        # no background craving and no elasticity: a drinking day without a cue has craving 0
        # and the amount (0 / ref)^0 = 1 (an exp(0 log 0) form gave NaN)
        ("das2019", BehaviorParams(background_craving=0.0, amount_craving_elasticity=0.0), MP),
        # a kernel exponent other than 1 and three contexts: the kernel's general posterior
        # loop (memory.population._general_shape), compiled only for such parameters
        ("das2019", BehaviorParams(), MemoryParams(kernel_exponent=0.8)),
        ("das2019", BehaviorParams(), MemoryParams(n_context_features=3)),
        # a consolidation window longer than a day (30 tau = 30 h): daily exposures are 24 h
        # apart, so only such a window changes the daily-life course (drinks, weights and
        # lability then differ from the default's); both implementations must use it
        ("das2019", BehaviorParams(), MemoryParams(consolidation_window_tau_multiple=30.0)),
        # part or none of a dry day's exposures are extinction trials: both implementations
        # take the same exposures from the same uniforms
        ("das2019", BehaviorParams(extinction_opportunity_fraction=0.3), MP),
        ("combine", BehaviorParams(extinction_opportunity_fraction=0.0), MP),
        # many dry days, detoxification and read-all (snapshot, accumulate) days at a mid share
        ("combine", BehaviorParams(extinction_opportunity_fraction=0.5), MP),
        # a habit that falls below half its usual level within the detoxification week, so
        # that the lapses after it are smaller (amount_habit_elasticity) in both
        ("combine", BehaviorParams(habit_time_constant_days=3.0, amount_habit_elasticity=1.5),
         MP),
    ],
)
def test_kernel_matches_numpy_reference(cohort: str, bp: BehaviorParams,
                                        mp: MemoryParams) -> None:
    n = 600
    p, m, st = _start(n, cohort, bp, mp=mp)
    m2, st2 = m.copy(), st.copy()
    stream = CounterStream(3, DAY_STREAM, 0)
    plan = _plan(np.arange(-12, 60), detox_until=-5, snapshot_every=7, accumulate_until=20)
    skill_hl = np.full(n, 90.0)
    ref, ref_snap, ref_snap_w, ref_cr_sum = _reference(p, m, st, bp, plan, stream, skill_hl,
                                                       mp)
    out = np.zeros_like(ref)
    snap = (np.zeros_like(ref_snap), np.zeros_like(ref_snap))
    cr_sum = np.zeros_like(ref_cr_sum)
    live_days(m2, st2, p, bp, mp, stream, plan, skill_hl, out, snap, cr_sum)
    # same decisions; amounts and states to rounding (the kernel's arithmetic order differs)
    assert np.array_equal(out > 0, ref > 0)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=0)
    for f in ("w0", "n0", "tmean0_h", "tlast0_h", "lab0", "w1", "n1", "tmean1_h", "tlast1_h",
              "lab1", "lab_time_h", "time_h"):
        np.testing.assert_allclose(getattr(m2, f), getattr(m, f), rtol=1e-12, atol=1e-14,
                                   err_msg=f)
    for f in ("quit_lift_logit", "therapy_lift_logit", "ketamine_lift_logit",
              "ketamine_lasting_lift_logit", "coping_skill", "habit", "regression_logit"):
        np.testing.assert_allclose(getattr(st2, f), getattr(st, f), rtol=1e-12, atol=1e-14,
                                   err_msg=f)
    np.testing.assert_allclose(snap[0], ref_snap, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(snap[1], ref_snap_w, rtol=1e-12, atol=1e-14)
    # the per-cue responses added up over the marked days (the burn-in rounds' average)
    assert ref_cr_sum.max() > 1.0
    np.testing.assert_allclose(cr_sum, ref_cr_sum, rtol=1e-12, atol=1e-12)
    # detoxification: abstinent-at-entry patients did not drink on the detox days
    detox_cols = np.flatnonzero(plan.detox)
    assert np.all(out[np.ix_(p.abstinent_at_entry, detox_cols)] == 0)


def test_kernel_does_not_depend_on_chunking_or_splitting_the_days() -> None:
    bp = BehaviorParams()
    p, m, st = _start(90, "das2019", bp)
    stream = CounterStream(5, DAY_STREAM, 1)
    days = np.arange(-20, 40)
    whole = np.zeros((90, days.size))
    m1, st1 = m.copy(), st.copy()
    live_days(m1, st1, p, bp, MP, stream, _plan(days), np.full(90, 90.0), whole)
    # the same patients as a separate chunk (indices 30..89), the days in two runs
    q, mq, sq = _start(60, "das2019", bp, start=30)
    part = np.zeros((60, days.size))
    plan_a, plan_b = _plan(days[:25]), _plan(days[25:])
    plan_b.record_col = plan_b.record_col + 25
    live_days(mq, sq, q, bp, MP, stream, plan_a, np.full(60, 90.0), part)
    live_days(mq, sq, q, bp, MP, stream, plan_b, np.full(60, 90.0), part)
    assert np.array_equal(whole[30:], part)
    assert np.array_equal(m1.w0[30:], mq.w0) and np.array_equal(st1.habit[30:], sq.habit)


def test_a_usual_habit_of_zero_keeps_the_usual_amount_in_both_implementations() -> None:
    """drinking_probability_bounds may start at 0, so a patient's usual habit can be 0: the
    tolerance factor is then 1 (0/0 gave NaN drinks, silently scored as abstinent days)."""
    bp = BehaviorParams(amount_habit_elasticity=0.86)
    n = 40
    p, m, st = _start(n, "das2019", bp)
    st.habit_ref[:10] = 0.0
    st.habit[:10] = 0.0
    m2, st2 = m.copy(), st.copy()
    stream = CounterStream(4, DAY_STREAM, 0)
    plan = _plan(np.arange(0, 14))
    ref = _reference(p, m, st, bp, plan, stream, np.full(n, 90.0))[0]
    out = np.zeros_like(ref)
    live_days(m2, st2, p, bp, MP, stream, plan, np.full(n, 90.0), out)
    assert np.isfinite(ref).all() and np.isfinite(out).all()
    assert (ref[:10] > 0).any()
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=0)


def test_accumulating_needs_somewhere_to_add() -> None:
    bp = BehaviorParams()
    p, m, st = _start(10, "das2019", bp)
    plan = _plan(np.arange(0, 3), accumulate_until=2)
    with pytest.raises(ValueError, match="cr_sum_out"):
        live_days(m, st, p, bp, MP, CounterStream(1, DAY_STREAM), plan, np.full(10, 90.0),
                  np.zeros((10, 3)))


def test_habit_follows_drinking_and_sustains_a_reduction() -> None:
    """A week of forced abstinence lowers the habit and, with a habit weight, later drinking."""
    n = 3000
    days = np.arange(0, 60)
    rates = {}
    for weight in (0.0, 6.0):
        bp = BehaviorParams(habit_weight_logit=weight)
        p, m, st = _start(n, "das2019", bp)
        st.quit_lift_logit[:] = 0.0
        st.therapy_lift_logit[:] = 0.0
        p.abstinent_at_entry[:] = True
        out = np.zeros((n, days.size))
        live_days(m, st, p, bp, MP, CounterStream(1, DAY_STREAM), _plan(days, detox_until=14),
                  np.full(n, 90.0), out)
        after = (out[:, 14:28] > 0).mean()
        rates[weight] = after
        assert np.all(st.habit >= 0) and np.all(st.habit <= 1)
    assert rates[6.0] < rates[0.0] - 0.05


def test_kernel_refuses_what_it_cannot_simulate() -> None:
    """Too many cue classes would reuse the next day's random numbers; a small US variance
    leaves the range of the kernel's polynomial exp (both are named, not silently wrong)."""
    from reconsolidate.exceptions import InputError

    bp = BehaviorParams()
    p, m, st = _start(4, "das2019", bp)
    plan = _plan(np.arange(0, 3))
    out = np.zeros((4, 3))
    with pytest.raises(InputError, match=r"us_variance = 0\.05"):
        live_days(m, st, p, bp, MemoryParams(us_variance=0.05), CounterStream(1, DAY_STREAM),
                  plan, np.full(4, 90.0), out)
    wide = mem.new_state(np.full((4, 15), 0.5), MP)
    with pytest.raises(InputError, match="15 cue classes"):
        live_days(wide, st, p, bp, MP, CounterStream(1, DAY_STREAM), plan, np.full(4, 90.0),
                  out)
