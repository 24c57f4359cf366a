"""Fused daily-life kernel: many days of cue exposure -> craving -> drinking -> learning at once.

:func:`live_days` runs the model of :func:`reconsolidate.behavior.daily.live_day` (see that module
for the model) over a run of consecutive study days for a chunk of patients, in one compiled
loop: blocks of 128 patients, day by day within a block, so that a block's memory and
behavioural state stay in cache for the whole run. Every random number is made
where it is used, from the counter-based stream ``behavior.day``
(:class:`reconsolidate._random.CounterStream`): draw ``c`` (cue ``c`` met today), ``C`` (the
drinking decision) and ``C + 1`` (the amount) of patient ``i`` on day ``d``, exactly the numbers
``CounterStream(seed, "behavior.day", replicate).uniform(index, d, C + 2)`` gives to
:func:`~reconsolidate.behavior.daily.live_day`. The two are compared day by day in
``tests/behavior/test_behavior_days.py``.

Each day of a block, batch by batch (as many whole patients as fill the lane buffer of the
population memory model): the exposed pairs (every pair on days that read all cues) are gathered
into the lanes, their posteriors and read-outs computed in one vectorised pass
(:func:`reconsolidate.memory.population._lane_posterior`), each patient's craving, drinking
decision and amount follow, and the exposed pairs then learn in the lanes (EM and assignment,
rewarded on a drinking day) and are scattered back: the population memory model's own
arithmetic, the same passes as :func:`reconsolidate.memory.population.expose`.

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
from reconsolidate.behavior.params import AMOUNT_HABIT_THRESHOLD_FRACTION, BehaviorParams
from reconsolidate.exceptions import InputError
from reconsolidate.memory import population as mem
from reconsolidate.memory.params import MemoryParams
from reconsolidate.memory.population import (
    _EXP_POLY_MAX_ABS,
    _F_N0,
    _F_TL0,
    _F_TM0,
    _F_W0,
    _F_W1,
    _L_CR,
    _L_CTX,
    _L_FREE,
    _L_MASK,
    _L_R,
    _L_ROWS,
    _L_T,
    _L_W0,
    _LANE_PAIRS,
    _N_STATE_ROWS,
    _general_shape,
    _lane_cr,
    _lane_posterior,
    _lane_scatter,
    _lane_update,
    _lanes_padded,
    _new_cause_terms,
)
from reconsolidate.population.sample import Patients

__all__ = ["DAY_STREAM", "DayPlan", "live_days"]

#: Name of the counter-based stream of the daily draws.
DAY_STREAM = "behavior.day"

_LN2 = math.log(2.0)

#: Patients per block of the daily kernel: their memory state (13 x 8 B per pair, 80 KB with
#: 6 cue classes) stays in the L2 cache for the whole run of days.
_BLOCK_PATIENTS = 128


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
        bp.extinction_opportunity_fraction,
        bp.amount_habit_elasticity,
        1.0 / AMOUNT_HABIT_THRESHOLD_FRACTION,
    ])
    p = mp
    memory_consts = np.array([
        p.new_cause_concentration_per_h, p.kernel_offset_h, p.kernel_exponent,
        p.feature_variance, 0.5 * (1.0 + p.n_context_features), p.learning_rate,
        p.us_variance, float(p.max_em_iterations), p.destabilization_pe_threshold,
        p.lability_tau_min / 60.0, p.lability_prior_boost_per_h, p.cr_threshold, p.cr_noise,
        p.consolidation_window_tau_multiple,
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
        state.recommitment_logit, s.time_h, mem._block_of(s), behavior, memory_consts,
        drinks_out, snap_cr, snap_w, cr_sum, _general_shape(mp),
    )


@numba.njit(cache=True, nogil=True, fastmath=True, error_model="numpy", boundscheck=False)
def _days_kernel(days, weekend, detox, record_col, snapshot_col, accumulate, key, pidx, prob_wd,
                 prob_we,
                 alpha, craving_ref, dpdd, abstinent_at_entry, quit_l, therapy_l, ketamine_l,
                 lasting_l, skill, habit, habit_ref, regression_l, regression_tgt, skill_decay,
                 recommit, time_h, blk, behavior, memory_consts, drinks_out, snap_cr, snap_w,
                 cr_sum, general):
    n = time_h.size
    cc = prob_wd.shape[1]
    n_days = days.size
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
    opportunity = behavior[15]
    habit_elasticity = behavior[16]
    inv_habit_threshold = behavior[17]
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
    # hours a cause counts as still consolidating (as memory.population._consolidating_h)
    consolidating_h = memory_consts[13] * tau_h
    boost = memory_consts[10]
    theta = memory_consts[11]
    cr_scale = 1.0 / (memory_consts[12] * math.sqrt(2.0))
    f_new, x_new = _new_cause_terms(alpha_c, sx, half_d)
    ctx = 0.0  # daily life happens in the home context
    draw_decision = cc
    draw_amount = cc + 1
    n_draws = cc + 2
    # patients per block: their memory state (624 B each with 6 cue classes) stays in the L2
    # cache for the whole run; each day they pass through the lane buffer in batches of whole
    # patients, as many as their exposed pairs fill (see _BLOCK_PATIENTS)
    per_block = _BLOCK_PATIENTS
    b = np.zeros(_L_ROWS * _LANE_PAIRS)
    idx = np.empty(_LANE_PAIRS, np.int64)  # pair (flat index into blk) of each lane
    first_lane = np.empty(per_block + 1, np.int64)  # lanes of block patient q: [first, next)
    t_loc = np.empty(per_block)
    t_day = np.empty(per_block)  # each block patient's clock at the start of the day
    cue_free_drink = np.zeros(per_block, np.bool_)
    u_day = np.empty(per_block * n_draws)  # the block's uniforms of the day, (patient, draw)
    exposed = np.zeros(per_block * cc, np.bool_)  # the block's cue exposures of the day
    n_lanes = np.empty(per_block, np.int64)  # lanes each block patient needs today
    for i0 in range(0, n, per_block):
        nb = min(per_block, n - i0)
        for q in range(nb):
            t_loc[q] = time_h[i0 + q]
        for d in range(n_days):
            day = days[d]
            col = snapshot_col[d]
            read_all = col >= 0 or accumulate[d]
            # 0. the block's draws of the day (cues, decision, amount) and exposures first, in
            # branch-free loops that vectorise: drawn inside the branchy loops below they cost
            # ~25 ns more per patient-day (the hash's latency sits on every exposure branch)
            for q in range(nb):
                pi = pidx[i0 + q]
                for j in range(n_draws):
                    u_day[q * n_draws + j] = counter_uniform(key, patient_day_counter(pi, day, j))
            wkend = weekend[d]
            for q in range(nb):
                ne = 0
                for c in range(cc):
                    prob = prob_we[i0 + q, c] if wkend else prob_wd[i0 + q, c]
                    e = u_day[q * n_draws + c] < prob
                    exposed[q * cc + c] = e
                    ne += 1 if e else 0
                n_lanes[q] = cc if read_all else ne
            qa = 0
            while qa < nb:
                # the next batch: block patients qa..qb-1, as many as fit into the lanes (a
                # patient's pairs never straddle two batches). Each patient's day is computed
                # alone in its lanes, so the batches change no result (see _LANE_GROUP in
                # memory.population), only how full the lanes run: with 21-patient batches
                # about 40 of the 128 lanes, padded to 64, did work (58 ns per exposure, now
                # about 30)
                qb = qa
                m = 0
                while qb < nb and m + n_lanes[qb] <= _LANE_PAIRS:
                    m += n_lanes[qb]
                    qb += 1
                # 1. cue exposures: gather the exposed pairs (every pair on days that read the
                # memory of all cues) into the lanes; _L_MASK marks the exposed ones
                m = 0
                for q in range(qa, qb):
                    i = i0 + q
                    first_lane[q] = m
                    t_day[q] = t_loc[q]
                    for c in range(cc):
                        e = exposed[q * cc + c]
                        if e or read_all:
                            # (as in memory.population._expose_kernel; the reward, _L_R, is set
                            # after today's drinking decision)
                            idx[m] = i * cc + c
                            b[_L_T + m] = t_loc[q]
                            b[_L_CTX + m] = ctx
                            b[_L_FREE + m] = 1.0
                            b[_L_MASK + m] = 1.0 if e else 0.0
                            m += 1
                first_lane[qb] = m
                # their state, after the scan (as memory.population._expose_kernel: 172 -> 166
                # ns per patient-day)
                for j in range(m):
                    k = idx[j]
                    for f in range(_N_STATE_ROWS):
                        b[f * _LANE_PAIRS + j] = blk[f, k]
                # 2. each pair's posterior and read-out at the start of the day
                if m > 0:
                    lanes = _lanes_padded(m)
                    if general is None:  # pruned by type when compiled (see _lane_posterior)
                        _lane_posterior(b, lanes, off, 1.0, sx, 1.5, f_new, x_new, boost,
                                        inv_tau)
                    else:
                        _lane_posterior(b, lanes, off, g, sx, half_d, f_new, x_new, boost,
                                        inv_tau)
                    _lane_cr(b, lanes, theta, cr_scale)
                for q in range(qa, qb):
                    i = i0 + q
                    # the day's craving: noisy-or over the exposed cues' conditioned responses
                    kp = 1.0
                    any_exposed = False
                    ct = 0.0
                    wt = 0.0
                    for j in range(first_lane[q], first_lane[q + 1]):
                        cr_c = b[_L_CR + j]
                        if b[_L_MASK + j] > 0.0:
                            kp *= 1.0 - cr_c
                            any_exposed = True
                        if read_all:
                            if accumulate[d]:
                                cr_sum[i, idx[j] - i * cc] += cr_c
                            ct += cr_c
                            wt += b[_L_W0 + j]
                    if col >= 0:
                        snap_cr[i, col] = ct / cc
                        snap_w[i, col] = wt / cc
                    kappa = 1.0 - (1.0 - background) * kp
                    # 3. the drinking decision
                    quit = quit_l[i]
                    ther = therapy_l[i]
                    ket = ketamine_l[i]
                    lasting = lasting_l[i]
                    reg = regression_l[i]
                    sk = skill[i]
                    hab = habit[i]
                    motivation = quit + ther + ket + lasting + reg
                    x = (alpha[i] + beta * (1.0 - sk) * kappa
                         + habit_weight * (hab - habit_ref[i])
                         - motivation)
                    p_drink = 1.0 / (1.0 + math.exp(-x))
                    drink = u_day[q * n_draws + draw_decision] < p_drink
                    in_detox = detox[d] and abstinent_at_entry[i]
                    if in_detox:
                        drink = False
                    # 4. the amount
                    drinks = 0.0
                    if drink:
                        z = normal_quantile(u_day[q * n_draws + draw_amount])
                        # (kappa / ref)^elasticity
                        # x min(1, H / (AMOUNT_HABIT_THRESHOLD_FRACTION H_ref))^elasticity_H
                        # x exp(-rate motivation+) exp(sigma z - sigma^2/2);
                        # pow, not exp(elasticity log(...)): kappa = 0 with elasticity 0 is allowed
                        # a patient without any craving at calibration (no background,
                        # no cue ever met) drinks their usual amount: 0/0 gave NaN drinks
                        ref = craving_ref[i]
                        ratio = kappa / ref if ref > 0.0 else 1.0
                        drinks = dpdd[i] * ratio ** elasticity
                        # tolerance lost with the habit (as daily.live_day; a usual habit of 0
                        # keeps the usual amount); the power only below the threshold: at or
                        # above it the factor is exactly 1, and a pow on every drinking day
                        # cost about 10% of the kernel's time
                        href = habit_ref[i]
                        tolerance = hab * inv_habit_threshold / href if href > 0.0 else 1.0
                        if tolerance < 1.0:
                            drinks *= tolerance ** habit_elasticity
                        drinks *= math.exp(sigma * z - 0.5 * sigma * sigma
                                           - motivation_rate * max(motivation, 0.0))
                        drinks = min(max(drinks, min_drinks), max_drinks)
                    rc = record_col[d]
                    if rc >= 0:
                        drinks_out[i, rc] = drinks
                    # 5. learning (below, in the lanes): exposed cues rewarded on a drinking day;
                    # otherwise extinguished where drinking was an option (as daily.live_day:
                    # the exposure's own uniform decides; never in detoxification), left as
                    # they were elsewhere
                    r = 1.0 if drink else 0.0
                    for j in range(first_lane[q], first_lane[q + 1]):
                        b[_L_R + j] = r
                    if not drink:
                        share = 0.0 if in_detox else opportunity
                        for j in range(first_lane[q], first_lane[q + 1]):
                            c = idx[j] - i * cc
                            prob = prob_we[i, c] if wkend else prob_wd[i, c]
                            if u_day[q * n_draws + c] >= prob * share:
                                b[_L_MASK + j] = 0.0
                    cue_free_drink[q] = drink and not any_exposed
                    if drink:
                        # abstinence-violation effect, softened by coping skill
                        keep_lift = 1.0 - violation * (1.0 - sk)
                        quit *= keep_lift
                        ther *= keep_lift
                        ket *= keep_lift
                        lasting *= keep_lift
                        # a lapse renews a treatment seeker's resolve (as daily.live_day)
                        quit += recommit[i]
                    hab += (r - hab) * habit_rate
                    # 24 h pass (the lanes keep this day's time)
                    t_loc[q] += 24.0
                    quit_l[i] = quit * decay_quit
                    therapy_l[i] = ther * decay_therapy
                    ketamine_l[i] = ket * decay_ketamine
                    lasting_l[i] = lasting * decay_lasting
                    regression_l[i] = (regression_tgt[i]
                                       + (reg - regression_tgt[i]) * decay_regression)
                    skill[i] = sk * skill_decay[i]
                    habit[i] = hab
                if m > 0:
                    _lane_update(b, _lanes_padded(m), n_iter, hsr, eta, pe_thr,
                                 consolidating_h)
                    _lane_scatter(b, m, blk, idx)
                # unsignalled alcohol (a drinking day without a cue) refreshes the recency of
                # each reward-predicting cause; none of these patients' pairs was exposed
                for q in range(qa, qb):
                    if cue_free_drink[q]:
                        t = t_day[q]
                        for c in range(cc):
                            k = (i0 + q) * cc + c
                            k0 = blk[_F_N0, k]
                            if k0 > 0.0 and blk[_F_W0, k] >= blk[_F_W1, k]:
                                blk[_F_TM0, k] = (blk[_F_TM0, k] * k0 + t) / (k0 + 1.0)
                                blk[_F_TL0, k] = t
                                blk[_F_N0, k] = k0 + 1.0
                qa = qb
        for q in range(nb):
            time_h[i0 + q] = t_loc[q]
