"""Fused daily-life kernel: many days of cue exposure -> craving -> drinking -> learning at once.

:func:`live_days` runs the model of :func:`reconsolidate.behavior.daily.live_day` (see that module
for the model) over a run of consecutive study days for a chunk of patients, in one compiled
loop: patient-outer, day-inner, so that a patient's memory (one (patient, cue) pair per cue class,
13 fields each) and behavioural state stay in L1 cache for the whole run. Every random number is
made where it is used, from the counter-based stream ``behavior.day``
(:class:`reconsolidate._random.CounterStream`): draw ``c`` (cue ``c`` met today), ``C`` (the
drinking decision) and ``C + 1`` (the amount) of patient ``i`` on day ``d``, exactly the numbers
``CounterStream(seed, "behavior.day", replicate).uniform(index, d, C + 2)`` gives to
:func:`~reconsolidate.behavior.daily.live_day`. The two are compared day by day in
``tests/behavior/test_behavior_days.py``.

The per-pair memory arithmetic (prior, feature likelihood, EM, assignment, lability) is the
population memory model's own (:mod:`reconsolidate.memory.population`), inlined.

Optionally the kernel records, at the start of chosen days, each patient's mean conditioned
response over the cue classes (cue reactivity, 0-1) and mean acquisition weight (the stored
cue-alcohol association, 0-1): the memory trajectory of the trial report. It can also add up each
cue's conditioned response at the start of chosen days (``DayPlan.accumulate``, ``cr_sum_out``):
the trial engine calibrates the drinking intercept on that time average (see
:func:`reconsolidate.trial.engine.simulate_chunk`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from reconsolidate._random import (
    MAX_DRAWS_PER_DAY,
    CounterStream,
    counter_uniform,
    normal_quantile,
    patient_day_counter,
)
from reconsolidate.behavior.daily import BehaviorState
from reconsolidate.behavior.params import BehaviorParams
from reconsolidate.exceptions import InputError
from reconsolidate.memory import population as mem
from reconsolidate.memory.params import MemoryParams
from reconsolidate.memory.population import (
    _EXP_POLY_MAX_ABS,
    _assign,
    _em_step,
    _exp_table,
    _lik_fast,
    _pair_priors,
    _pow_neg,
)
from reconsolidate.population.sample import Patients

__all__ = ["DAY_STREAM", "DayPlan", "live_days"]

#: Name of the counter-based stream of the daily draws.
DAY_STREAM = "behavior.day"

_LN2 = math.log(2.0)


@dataclass
class DayPlan:
    """A run of consecutive study days and what the kernel must do on each.

    Attributes
    ----------
    days
        (D,) int64 study days, consecutive.
    weekend
        (D,) bool, Saturday or Sunday.
    detox
        (D,) bool: patients abstinent at entry cannot drink (inpatient detoxification).
    record_col
        (D,) int64 column of the drinks output for the day, -1 = not recorded.
    snapshot_col
        (D,) int64 column of the memory snapshot taken at the start of the day, -1 = none.
    accumulate
        (D,) bool: add each cue's conditioned response at the start of the day to the
        ``cr_sum_out`` of :func:`live_days`; None = no day.
    """

    days: np.ndarray
    weekend: np.ndarray
    detox: np.ndarray
    record_col: np.ndarray
    snapshot_col: np.ndarray
    accumulate: np.ndarray | None = None


def live_days(
    memory: mem.PopulationState,
    state: BehaviorState,
    patients: Patients,
    params: BehaviorParams,
    memory_params: MemoryParams,
    stream: CounterStream,
    plan: DayPlan,
    skill_half_life_days: np.ndarray,
    drinks_out: np.ndarray,
    snapshot_out: tuple[np.ndarray, np.ndarray] | None = None,
    cr_sum_out: np.ndarray | None = None,
) -> None:
    """Simulate the days of ``plan`` for every patient, updating the states in place.

    Parameters
    ----------
    memory
        Population memory state (n, n_cues); daily life happens in context 0.
    state
        Behavioural state (motivation lifts, coping skill, habit), updated in place.
    patients
        Covariates and exposure probabilities.
    params, memory_params
        Behaviour and memory parameters.
    stream
        The ``behavior.day`` counter stream of this trial and replicate.
    plan
        The days to simulate and what to record.
    skill_half_life_days
        (n,) half-life of the coping skill (the arm's therapy), days.
    drinks_out
        (n, n_recorded) float64: US standard drinks of each recorded day are written here.
    snapshot_out
        ``(cue_reactivity, acquisition_weight)``, each (n, n_snapshots), written on the days
        whose ``snapshot_col`` >= 0.
    cr_sum_out
        (n, n_cues) float64: on the days ``plan.accumulate`` marks, each cue's conditioned
        response at the start of the day is added here (required when any day is marked).
    """
    n = patients.n
    if n == 0 or plan.days.size == 0:
        return
    bp, mp = params, memory_params
    n_cues = memory.shape[1]
    if n_cues + 2 > MAX_DRAWS_PER_DAY:
        # each day draws one number per cue class, the decision and the amount; more would run
        # into the next day's numbers
        raise InputError(f"{n_cues} cue classes: the daily kernel allows at most "
                         f"{MAX_DRAWS_PER_DAY - 2}")
    if 0.5 / mp.us_variance > _EXP_POLY_MAX_ABS:
        # the kernel's polynomial exp is accurate only there (memory.population.expose switches
        # to its reference kernel instead; daily life has no such fallback)
        raise InputError(f"memory.us_variance = {mp.us_variance}: the daily-life kernel needs "
                         f">= {0.5 / _EXP_POLY_MAX_ABS}")
    s = memory
    if snapshot_out is None:
        snap_cr = snap_w = np.empty((n, 0))
    else:
        snap_cr, snap_w = snapshot_out
    accumulate = (np.zeros(plan.days.size, dtype=np.bool_) if plan.accumulate is None
                  else plan.accumulate.astype(np.bool_))
    if accumulate.any():
        if cr_sum_out is None or cr_sum_out.shape != (n, n_cues):
            raise ValueError("plan.accumulate marks days: pass cr_sum_out of shape (n, n_cues)")
        cr_sum = cr_sum_out
    else:
        cr_sum = np.empty((n, 0))
    sigma = math.sqrt(math.log1p(bp.amount_cv**2))
    behavior = np.array([
        bp.background_craving,
        bp.craving_weight_logit,
        bp.amount_craving_elasticity,
        sigma,
        bp.amount_motivation_reduction_per_logit,
        bp.min_drinks_per_drinking_day,
        bp.max_drinks_per_day,
        bp.abstinence_violation_fraction,
        # per-day decay factors of the lifts, as BehaviorState.decay computes them
        float(np.exp(-_LN2 * 1.0 / bp.quit_motivation_half_life_days)),
        float(np.exp(-_LN2 * 1.0 / bp.therapy_motivation_half_life_days)),
        float(np.exp(-_LN2 * 1.0 / bp.ketamine_motivation_half_life_days)),
        bp.habit_weight_logit,
        float(-np.expm1(-1.0 / bp.habit_time_constant_days)),
        float(np.exp(-_LN2 * 1.0 / bp.ketamine_lasting_half_life_days)),
        float(np.exp(-_LN2 * 1.0 / bp.recruitment_regression_half_life_days)),
    ])
    p = mp
    memory_consts = np.array([
        p.new_cause_concentration_per_h, p.kernel_offset_h, p.kernel_exponent,
        p.feature_variance, 0.5 * (1.0 + p.n_context_features), p.learning_rate,
        p.us_variance, float(p.max_em_iterations), p.destabilization_pe_threshold,
        p.lability_tau_min / 60.0, p.lability_prior_boost_per_h, p.cr_threshold, p.cr_noise,
    ])
    skill_decay = np.exp(-_LN2 * 1.0 / np.asarray(skill_half_life_days, dtype=np.float64))
    _days_kernel(
        plan.days.astype(np.int64), plan.weekend.astype(np.bool_), plan.detox.astype(np.bool_),
        plan.record_col.astype(np.int64), plan.snapshot_col.astype(np.int64), accumulate,
        stream.key, patients.index.astype(np.int64),
        np.ascontiguousarray(patients.exposure_prob_weekday),
        np.ascontiguousarray(patients.exposure_prob_weekend),
        state.alpha_logit, state.craving_ref, patients.drinks_per_drinking_day,
        patients.abstinent_at_entry.astype(np.bool_),
        state.quit_lift_logit, state.therapy_lift_logit, state.ketamine_lift_logit,
        state.ketamine_lasting_lift_logit, state.coping_skill, state.habit, state.habit_ref,
        state.regression_logit, state.regression_target_logit, skill_decay,
        s.time_h, s.w0, s.n0, s.tmean0_h, s.tlast0_h, s.ctx0, s.lab0,
        s.w1, s.n1, s.tmean1_h, s.tlast1_h, s.ctx1, s.lab1, s.lab_time_h,
        behavior, memory_consts, *_exp_table(mp),
        drinks_out, snap_cr, snap_w, cr_sum,
    )


@numba.njit(cache=True, fastmath=True, error_model="numpy", boundscheck=False)
def _days_kernel(days, weekend, detox, record_col, snapshot_col, accumulate, key, pidx, prob_wd,
                 prob_we,
                 alpha, craving_ref, dpdd, abstinent_at_entry, quit_l, therapy_l, ketamine_l,
                 lasting_l, skill, habit, habit_ref, regression_l, regression_tgt, skill_decay,
                 time_h, w0, n0, tm0, tl0, c0, lab0, w1, n1, tm1, tl1, c1, lab1, labt,
                 behavior, memory_consts, tab, lo, inv, drinks_out, snap_cr, snap_w, cr_sum):
    n, cc = w0.shape
    n_days = days.size
    nmax = tab.size - 1
    # behaviour constants (order: live_days)
    background = behavior[0]
    beta = behavior[1]
    elasticity = behavior[2]
    sigma = behavior[3]
    motivation_rate = behavior[4]
    min_drinks = behavior[5]
    max_drinks = behavior[6]
    violation = behavior[7]
    decay_quit = behavior[8]
    decay_therapy = behavior[9]
    decay_ketamine = behavior[10]
    habit_weight = behavior[11]
    habit_rate = behavior[12]
    decay_lasting = behavior[13]
    decay_regression = behavior[14]
    # memory constants (order: live_days)
    alpha_c = memory_consts[0]
    off = memory_consts[1]
    g = memory_consts[2]
    sx = memory_consts[3]
    half_d = memory_consts[4]
    eta = memory_consts[5]
    hsr = 0.5 / memory_consts[6]
    n_iter = int(memory_consts[7])
    pe_thr = memory_consts[8]
    tau_h = memory_consts[9]
    inv_tau = 1.0 / tau_h
    three_tau = 3.0 * tau_h
    boost = memory_consts[10]
    theta = memory_consts[11]
    cr_scale = 1.0 / (memory_consts[12] * math.sqrt(2.0))
    q_new = alpha_c * math.exp(-1.0 / (1.0 + sx)) * _pow_neg(1.0 + sx, half_d)
    ctx = 0.0  # daily life happens in the home context
    draw_decision = cc
    draw_amount = cc + 1
    exposed = np.zeros(cc, np.bool_)
    q0s = np.zeros(cc)
    q1s = np.zeros(cc)
    crs = np.zeros(cc)
    for i in range(n):
        t = time_h[i]
        quit = quit_l[i]
        ther = therapy_l[i]
        ket = ketamine_l[i]
        lasting = lasting_l[i]
        sk = skill[i]
        hab = habit[i]
        href = habit_ref[i]
        reg = regression_l[i]
        reg_tgt = regression_tgt[i]
        for d in range(n_days):
            day = days[d]
            col = snapshot_col[d]
            read_all = col >= 0 or accumulate[d]
            if read_all:
                # every cue's posterior and response at the start of the day; the exposures
                # below reuse them (same state, same time: the same numbers)
                cr_tot = 0.0
                w_tot = 0.0
                for c in range(cc):
                    q0, q1 = _pair_posterior(
                        n0[i, c], tm0[i, c], tl0[i, c], c0[i, c] == ctx, lab0[i, c], labt[i, c],
                        n1[i, c], tm1[i, c], tl1[i, c], c1[i, c] == ctx, t, off, g, boost,
                        inv_tau, sx, half_d, tab, lo, inv, nmax)
                    cr_c = _conditioned_response(q0, q1, w0[i, c], w1[i, c], theta, cr_scale)
                    q0s[c] = q0
                    q1s[c] = q1
                    crs[c] = cr_c
                    if accumulate[d]:
                        cr_sum[i, c] += cr_c
                    cr_tot += cr_c
                    w_tot += w0[i, c]
                if col >= 0:
                    snap_cr[i, col] = cr_tot / cc
                    snap_w[i, col] = w_tot / cc
            # 1-2. cue exposures and the day's craving (noisy-or over the exposed cues)
            keep = 1.0
            any_exposed = False
            for c in range(cc):
                prob = prob_we[i, c] if weekend[d] else prob_wd[i, c]
                e = counter_uniform(key, patient_day_counter(pidx[i], day, c)) < prob
                exposed[c] = e
                if e:
                    any_exposed = True
                    if not read_all:
                        q0, q1 = _pair_posterior(
                            n0[i, c], tm0[i, c], tl0[i, c], c0[i, c] == ctx, lab0[i, c],
                            labt[i, c], n1[i, c], tm1[i, c], tl1[i, c], c1[i, c] == ctx, t, off,
                            g, boost, inv_tau, sx, half_d, tab, lo, inv, nmax)
                        q0s[c] = q0
                        q1s[c] = q1
                        crs[c] = _conditioned_response(q0, q1, w0[i, c], w1[i, c], theta,
                                                       cr_scale)
                    keep *= 1.0 - crs[c]
            kappa = 1.0 - (1.0 - background) * keep
            # 3. the drinking decision
            motivation = quit + ther + ket + lasting + reg
            x = (alpha[i] + beta * (1.0 - sk) * kappa + habit_weight * (hab - href)
                 - motivation)
            p_drink = 1.0 / (1.0 + math.exp(-x))
            drink = counter_uniform(key, patient_day_counter(pidx[i], day, draw_decision)) < p_drink
            if detox[d] and abstinent_at_entry[i]:
                drink = False
            # 4. the amount
            drinks = 0.0
            if drink:
                z = normal_quantile(
                    counter_uniform(key, patient_day_counter(pidx[i], day, draw_amount)))
                drinks = (dpdd[i] * (kappa / craving_ref[i]) ** elasticity
                          * math.exp(-motivation_rate * max(motivation, 0.0))
                          * math.exp(sigma * z - 0.5 * sigma * sigma))
                drinks = min(max(drinks, min_drinks), max_drinks)
            rc = record_col[d]
            if rc >= 0:
                drinks_out[i, rc] = drinks
            # 5. learning: exposed cues rewarded on a drinking day, extinguished otherwise
            r = 1.0 if drink else 0.0
            for c in range(cc):
                if not exposed[c]:
                    continue
                a0 = w0[i, c]
                a1 = w1[i, c]
                rs = 1.0 / (q0s[c] + q1s[c] + q_new)
                q0 = q0s[c] * rs
                q1 = q1s[c] * rs
                qn = q_new * rs
                qs = q0 + q1
                pe = r - ((q0 * a0 + q1 * a1) / qs if qs > 0.0 else 0.0)
                an = 0.0
                p0 = q0
                p1 = q1
                pn = qn
                for _ in range(n_iter):
                    a0, a1, an, p0, p1, pn = _em_step(r, q0, q1, qn, a0, a1, an, hsr, eta)
                (w0[i, c], n0[i, c], tm0[i, c], tl0[i, c], c0[i, c], lab0[i, c],
                 w1[i, c], n1[i, c], tm1[i, c], tl1[i, c], c1[i, c], lab1[i, c]) = _assign(
                    n0[i, c], tm0[i, c], tl0[i, c], c0[i, c], n1[i, c], tm1[i, c], tl1[i, c],
                    c1[i, c], w1[i, c], t, ctx, 1.0, p0, p1, pn, a0, a1, an, pe, pe_thr,
                    three_tau)
                labt[i, c] = t
            if drink and not any_exposed:
                # unsignalled alcohol refreshes the recency of each reward-predicting cause
                for c in range(cc):
                    k0 = n0[i, c]
                    if k0 > 0.0 and w0[i, c] >= w1[i, c]:
                        tm0[i, c] = (tm0[i, c] * k0 + t) / (k0 + 1.0)
                        tl0[i, c] = t
                        n0[i, c] = k0 + 1.0
            if drink:
                # abstinence-violation effect, softened by coping skill
                keep_lift = 1.0 - violation * (1.0 - sk)
                quit *= keep_lift
                ther *= keep_lift
                ket *= keep_lift
                lasting *= keep_lift
            hab += (r - hab) * habit_rate
            # 24 h pass
            t += 24.0
            quit *= decay_quit
            ther *= decay_therapy
            ket *= decay_ketamine
            lasting *= decay_lasting
            reg = reg_tgt + (reg - reg_tgt) * decay_regression
            sk *= skill_decay[i]
        time_h[i] = t
        quit_l[i] = quit
        therapy_l[i] = ther
        ketamine_l[i] = ket
        lasting_l[i] = lasting
        skill[i] = sk
        habit[i] = hab
        regression_l[i] = reg


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def _pair_posterior(k0, tm0, tl0, same0, l0, labt, k1, tm1, tl1, same1, t, off, g, boost,
                    inv_tau, sx, half_d, tab, lo, inv, nmax):
    """Unnormalised posterior weights (prior x feature likelihood) of the acquisition and
    extinction causes of one pair at time ``t``; scalars in, so that no state array passes
    through an inlined call (that costs a reference-count round trip per array)."""
    q0, q1 = _pair_priors(k0, tm0, tl0, l0, labt, k1, tm1, tl1, t, off, g, boost, inv_tau)
    if k0 > 0.0:
        q0 *= _lik_fast(k0, same0, sx, half_d, tab, lo, inv, nmax)
    if k1 > 0.0:
        q1 *= _lik_fast(k1, same1, sx, half_d, tab, lo, inv, nmax)
    return q0, q1


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def _conditioned_response(q0, q1, w0, w1, theta, cr_scale):
    """``Phi((V - theta) / lambda)`` with ``V`` the posterior-weighted prediction of the
    existing causes (as ``population.response``); ``cr_scale = 1 / (lambda sqrt 2)``."""
    qs = q0 + q1
    v = (q0 * w0 + q1 * w1) / qs if qs > 0.0 else 0.0
    return 0.5 * math.erfc(-(v - theta) * cr_scale)
