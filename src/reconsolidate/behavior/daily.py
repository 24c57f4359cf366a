"""Daily life: cue exposures -> craving (memory model) -> drinking decision and amount -> learning.

One call of :func:`live_day` simulates one day for a chunk of patients (vectorised, no
per-patient loop):

1. each cue class ``c`` is met at least once with probability ``1 - exp(-rate_c)`` (weekday or
   weekend rate of that patient);
2. the day's craving is the noisy-or of the exposed cues' conditioned responses from the
   population memory model, with a background term ``b``:
   ``kappa = 1 - (1 - b) prod_c (1 - CR_c E_c)``;
3. the patient drinks with probability
   ``sigmoid(alpha_i + beta (1 - skill_i) kappa + gamma (H_i - H_ref_i) - M_i)`` where ``M_i`` is
   the motivation state (log-odds against drinking: quit-day, therapy and non-specific ketamine
   lifts, and the post-enrolment drift of participants recruited by screening), ``skill_i`` the
   coping skill of relapse-prevention therapy and ``H_i`` the drinking habit: the exponentially
   weighted share of recent drinking days (time constant ``habit_time_constant_days``), which
   starts at, and at baseline fluctuates around, the
   patient's usual share ``H_ref_i``. A spell of drinking less therefore lowers later drinking
   (two stable states, as in Grasman et al. 2016), which carries a treatment effect beyond the
   weeks in which daily drinking re-teaches a weakened cue memory;
4. the amount is the patient's usual drinks per drinking day times
   ``(kappa / kappa_ref_i)^elasticity x min(1, H_i / (0.5 H_ref_i))^elasticity_H x
   exp(-rate M_i)`` with log-normal day-to-day noise: less craving, a habit fallen below half
   its usual level (tolerance lost in abstinence) and motivation each make a drinking day
   smaller;
5. learning: every exposed cue is a rewarded exposure when the patient drank that day; on a day
   without drinking a share ``extinction_opportunity_fraction`` of the exposures (those at
   which a drink was an option; none in inpatient detoxification) are unrewarded ones
   (extinction) and the others leave the memory as it was
   (:func:`reconsolidate.memory.population.expose`); a drinking day without any cue is an
   unsignalled reward (:func:`~reconsolidate.memory.population.us_alone`); a drinking day
   also costs part of the motivation lifts (abstinence-violation effect) and, from a treatment
   seeker's quit day on, adds ``lapse_recommitment_logit`` to the quit lift (a lapse renews the
   resolve: a negative feedback of drinking on motivation); the habit moves towards today's
   drinking (1) or abstinence (0).

The intercept ``alpha_i`` is calibrated per patient (:func:`calibrate_intercept`) so that, with the
given cue responses and no motivation lift, the expected drinking days per week equal the
patient's covariate exactly (expectation over all 2^C exposure patterns, weekdays and weekends).
The trial engine passes each cue's response averaged over a burn-in round
(:func:`reconsolidate.trial.engine.simulate_chunk`).

:func:`live_day` is the readable reference, one vectorised day at a time; the trial engine runs
the same model through the fused kernel :func:`reconsolidate.behavior.days.live_days`, which is
tested against it day by day.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, fields

import numba
import numpy as np
from scipy.special import expit, ndtri

from reconsolidate.behavior.params import AMOUNT_HABIT_THRESHOLD_FRACTION, BehaviorParams
from reconsolidate.memory import population as mem
from reconsolidate.memory.params import MemoryParams
from reconsolidate.memory.population import _exp_poly_wide
from reconsolidate.population.cues import exposure_probability
from reconsolidate.population.sample import Patients

__all__ = [
    "DAILY_DRAWS",
    "BehaviorState",
    "calibrate_intercept",
    "day_craving",
    "drinking_probability_target",
    "live_day",
]

WEEKDAYS_PER_WEEK = 5
WEEKEND_DAYS_PER_WEEK = 2


def DAILY_DRAWS(n_cues: int) -> int:
    """Uniform draws per patient and day: one per cue class, the decision, the amount."""
    return n_cues + 2


@dataclass
class BehaviorState:
    """Per-patient behavioural state (struct-of-arrays, shape (n,)).

    Attributes
    ----------
    alpha_logit
        Calibrated intercept of the drinking decision (log-odds).
    craving_ref
        Expected craving on a drinking day at baseline (scales the amount).
    quit_lift_logit, therapy_lift_logit, ketamine_lift_logit, ketamine_lasting_lift_logit
        Motivation lifts (log-odds against drinking), each with its own half-life (the
        non-specific ketamine lift has a part that fades in weeks and one that lasts months).
    coping_skill
        Relapse-prevention coping skill in [0, 1).
    habit, habit_ref
        Drinking habit (exponentially weighted share of drinking days, in [0, 1]) and its
        baseline value (the patient's usual share of drinking days).
    regression_logit, regression_target_logit
        Post-enrolment drift of participants recruited by screening (regression to the mean,
        assessment reactivity; log-odds against drinking) and the level it approaches with
        ``recruitment_regression_half_life_days`` (0 until enrolment). Part of the motivation,
        but not lost on drinking days.
    recommitment_logit
        What each drinking day adds to the quit lift (log-odds; ``lapse_recommitment_logit``
        from the quit day on, 0 before it and for patients who do not seek treatment).
    """

    alpha_logit: np.ndarray
    craving_ref: np.ndarray
    quit_lift_logit: np.ndarray
    therapy_lift_logit: np.ndarray
    ketamine_lift_logit: np.ndarray
    ketamine_lasting_lift_logit: np.ndarray
    coping_skill: np.ndarray
    habit: np.ndarray
    habit_ref: np.ndarray
    regression_logit: np.ndarray
    regression_target_logit: np.ndarray
    recommitment_logit: np.ndarray

    @classmethod
    def start(
        cls, alpha_logit: np.ndarray, craving_ref: np.ndarray, habit_ref: np.ndarray
    ) -> BehaviorState:
        """State before the study: no motivation lift or skill, habit at its baseline."""
        z = np.zeros_like(alpha_logit)
        return cls(alpha_logit, craving_ref, z.copy(), z.copy(), z.copy(), z.copy(), z.copy(),
                   np.array(habit_ref, dtype=np.float64), np.array(habit_ref, dtype=np.float64),
                   z.copy(), z.copy(), z.copy())

    @property
    def motivation_logit(self) -> np.ndarray:
        """Total motivation (log-odds against drinking)."""
        return (self.quit_lift_logit + self.therapy_lift_logit + self.ketamine_lift_logit
                + self.ketamine_lasting_lift_logit + self.regression_logit)

    def decay(
        self, params: BehaviorParams, skill_half_life_days: np.ndarray, dt_days: float
    ) -> None:
        """Let ``dt_days`` pass: every lift decays with its half-life, in place."""
        ln2 = np.log(2.0)
        self.quit_lift_logit *= np.exp(-ln2 * dt_days / params.quit_motivation_half_life_days)
        self.therapy_lift_logit *= np.exp(
            -ln2 * dt_days / params.therapy_motivation_half_life_days
        )
        self.ketamine_lift_logit *= np.exp(
            -ln2 * dt_days / params.ketamine_motivation_half_life_days
        )
        self.ketamine_lasting_lift_logit *= np.exp(
            -ln2 * dt_days / params.ketamine_lasting_half_life_days
        )
        self.coping_skill *= np.exp(-ln2 * dt_days / skill_half_life_days)
        keep = np.exp(-ln2 * dt_days / params.recruitment_regression_half_life_days)
        self.regression_logit[:] = (self.regression_target_logit
                                    + (self.regression_logit - self.regression_target_logit) * keep)

    def copy(self) -> BehaviorState:
        return BehaviorState(**{f.name: getattr(self, f.name).copy() for f in fields(self)})


def day_craving(cr: np.ndarray, exposed: np.ndarray, background: float) -> np.ndarray:
    """Craving of the day in [0, 1]: noisy-or of the exposed cues' responses and a background.

    Parameters
    ----------
    cr
        (n, n_cues) conditioned response per cue in [0, 1].
    exposed
        (n, n_cues) bool, cue met today.
    background
        Craving without cues, in [0, 1).
    """
    keep = np.where(exposed, 1.0 - cr, 1.0).prod(axis=1)
    return 1.0 - (1.0 - background) * keep


def drinking_probability_target(patients: Patients, params: BehaviorParams) -> np.ndarray:
    """Usual share of drinking days (drinking days per week / 7), clipped to
    ``drinking_probability_bounds``: the target of :func:`calibrate_intercept` and the
    baseline of the habit."""
    lo, hi = params.drinking_probability_bounds
    return np.clip(patients.drinking_days_per_week / 7.0, lo, hi)


def calibrate_intercept(
    patients: Patients,
    cr: np.ndarray,
    params: BehaviorParams,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-patient intercept so that expected drinking days per week match the covariate.

    The expectation is exact over every exposure pattern (2^C of them) on weekdays and weekend
    days, with the memory responses ``cr`` held fixed, no motivation lift and the habit at its
    baseline. The expected drinking probability rises monotonically with the intercept and lies
    between its values at the least and the most craving pattern, which brackets the root;
    safeguarded Newton iterations (bisection where a step would leave the bracket) run for each
    patient until its own residual is below 1e-13 (a patient's result never depends on which
    other patients share the call). Compiled; ``tests/behavior`` checks it against a numpy
    implementation and against Monte Carlo.

    Parameters
    ----------
    patients
        The patients (exposure rates and drinking days per week).
    cr
        (n, n_cues) conditioned responses at the start.
    params
        Behaviour parameters.

    Returns
    -------
    alpha_logit, craving_ref
        (n,) intercepts and the expected craving on a drinking day.
    """
    n, n_cues = cr.shape
    patterns = np.array(list(itertools.product((0.0, 1.0), repeat=n_cues)))  # (P, C)
    alpha = np.empty(n)
    craving_ref = np.empty(n)
    _intercept_kernel(
        np.ascontiguousarray(cr, dtype=np.float64),
        np.ascontiguousarray(exposure_probability(patients.rate_weekday_per_day)),
        np.ascontiguousarray(exposure_probability(patients.rate_weekend_per_day)),
        drinking_probability_target(patients, params),
        patterns,
        WEEKDAYS_PER_WEEK / 7.0,
        WEEKEND_DAYS_PER_WEEK / 7.0,
        params.background_craving,
        params.craving_weight_logit,
        alpha,
        craving_ref,
    )
    return alpha, craving_ref


@numba.njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def _intercept_kernel(cr, q_weekday, q_weekend, target, patterns, share_weekday, share_weekend,
                      background, beta, alpha_out, craving_ref_out):
    # Loops run over the exposure patterns (innermost, branch-free, the logistic by the
    # polynomial exp of the memory model) so that they vectorise: 2^C patterns x ~6 Newton
    # iterations of exp per patient were most of the time of this kernel.
    n, cc = cr.shape
    n_pat = patterns.shape[0]
    kappa = np.empty(n_pat)
    w = np.empty(n_pat)
    keep = np.empty(n_pat)
    p_wd = np.empty(n_pat)
    p_we = np.empty(n_pat)
    for i in range(n):
        keep[:] = 1.0
        p_wd[:] = 1.0
        p_we[:] = 1.0
        for c in range(cc):
            crc = cr[i, c]
            qd = q_weekday[i, c]
            qe = q_weekend[i, c]
            for k in range(n_pat):
                on = patterns[k, c] > 0.5
                keep[k] *= 1.0 - crc if on else 1.0
                p_wd[k] *= qd if on else 1.0 - qd
                p_we[k] *= qe if on else 1.0 - qe
        mean_kappa = 0.0
        for k in range(n_pat):
            kappa[k] = 1.0 - (1.0 - background) * keep[k]
            # The craving of a pattern is the same on any day; only its probability differs
            # between weekdays and weekend days.
            w[k] = share_weekday * p_wd[k] + share_weekend * p_we[k]
            mean_kappa += w[k] * kappa[k]
        kmin = kappa[0]  # (no infinities as start values: fastmath assumes there are none)
        kmax = kappa[0]
        for k in range(1, n_pat):
            kmin = min(kmin, kappa[k])
            kmax = max(kmax, kappa[k])
        lt = math.log(target[i] / (1.0 - target[i]))
        a = lt - beta * mean_kappa
        lo = lt - beta * kmax
        hi = lt - beta * kmin
        for _ in range(200):
            f = -target[i]
            df = 0.0
            for k in range(n_pat):
                p = 1.0 / (1.0 + _exp_poly_wide(-(a + beta * kappa[k])))
                f += w[k] * p
                df += w[k] * p * (1.0 - p)
            if f > 0.0:
                hi = a
            else:
                lo = a
            if abs(f) < 1e-13 or hi - lo < 1e-12 * (1.0 + abs(a)):
                break
            # where the probability saturates (df ~ 0) a plain Newton step can leave the
            # bracket by orders of magnitude: bisect instead
            step = a - f / max(df, 1e-300)
            a = step if lo <= step <= hi else 0.5 * (lo + hi)
        num = 0.0
        den = 0.0
        for k in range(n_pat):
            p = 1.0 / (1.0 + _exp_poly_wide(-(a + beta * kappa[k])))
            num += w[k] * p * kappa[k]
            den += w[k] * p
        alpha_out[i] = a
        craving_ref_out[i] = num / den


def live_day(
    memory: mem.PopulationState,
    state: BehaviorState,
    patients: Patients,
    params: BehaviorParams,
    memory_params: MemoryParams,
    u: np.ndarray,
    *,
    weekend: bool,
    forced_abstinent: np.ndarray | None = None,
) -> np.ndarray:
    """The events of one day, in place: cue exposure, craving, the drinking decision and
    amount, memory learning, the abstinence-violation loss and the habit update.

    It does not let the day pass: the memory clock is not advanced, and the motivation lifts,
    the coping skill and the post-enrolment drift (:meth:`BehaviorState.decay`) do not move. A
    caller that simulates consecutive days must do both after each call, as the compiled kernel
    (:func:`reconsolidate.behavior.days.live_days`) does::

        drinks = live_day(memory, state, patients, params, memory_params, u, weekend=...)
        mem.advance(memory, 24.0)  # 24 h pass for the memories
        state.decay(params, skill_half_life_days, 1.0)  # 1 day for lifts, skill and drift

    Events that happen at a time of day (treatment sessions, therapy, the quit day) come before
    this call, on the same day (``trial/engine.py``).

    Parameters
    ----------
    memory
        Population memory state (n, n_cues), updated in place.
    state
        Behavioural state, updated in place (abstinence-violation losses).
    patients
        Covariates and exposure rates.
    params, memory_params
        Behaviour and memory parameters.
    u
        (n, n_cues + 2) uniforms in (0, 1) of this day (:data:`DAILY_DRAWS`).
    weekend
        Whether the day is a Saturday or Sunday.
    forced_abstinent
        (n,) bool: patients who cannot drink today (e.g. inpatient detoxification); no drink
        being an option, none of their exposures is an extinction trial.

    Returns
    -------
    ndarray, shape (n,)
        US standard drinks drunk today (0 on abstinent days).
    """
    n_cues = memory.shape[1]
    prob = patients.exposure_prob_weekend if weekend else patients.exposure_prob_weekday
    exposed = u[:, :n_cues] < prob
    cr = mem.response(memory, memory_params)
    kappa = day_craving(cr, exposed, params.background_craving)
    motivation = state.motivation_logit
    coupling = params.craving_weight_logit * (1.0 - state.coping_skill)
    habit = params.habit_weight_logit * (state.habit - state.habit_ref)
    p_drink = expit(state.alpha_logit + coupling * kappa + habit - motivation)
    drink = u[:, n_cues] < p_drink
    if forced_abstinent is not None:
        drink &= ~forced_abstinent

    sigma = np.sqrt(np.log1p(params.amount_cv**2))
    z = ndtri(u[:, n_cues + 1])
    # a patient without any craving at calibration (no background, no cue ever met) drinks
    # their usual amount: 0/0 gave NaN drinks, scored as abstinent days
    ref = state.craving_ref
    ratio = np.divide(kappa, ref, out=np.ones_like(kappa), where=ref > 0.0)
    # tolerance lost with the habit: a lapse after weeks without drinking is smaller (a usual
    # habit of 0, allowed by drinking_probability_bounds = (0, ...), keeps the usual amount:
    # 0/0 gave NaN drinks)
    threshold = AMOUNT_HABIT_THRESHOLD_FRACTION * state.habit_ref
    tolerance = np.minimum(
        np.divide(state.habit, threshold, out=np.ones_like(threshold), where=threshold > 0.0),
        1.0)
    amount = (
        patients.drinks_per_drinking_day
        * ratio ** params.amount_craving_elasticity
        * tolerance ** params.amount_habit_elasticity
        * np.exp(-params.amount_motivation_reduction_per_logit * np.maximum(motivation, 0.0))
        * np.exp(sigma * z - sigma**2 / 2)
    )
    amount = np.clip(amount, params.min_drinks_per_drinking_day, params.max_drinks_per_day)
    drinks = np.where(drink, amount, 0.0)

    # Learning: exposed cues are rewarded on drinking days; on other days an exposure is an
    # extinction trial only where drinking was an option (extinction_opportunity_fraction of
    # them, decided by the exposure's own uniform: given u < prob, u / prob is uniform), which
    # it never is in detoxification.
    share = params.extinction_opportunity_fraction
    if forced_abstinent is not None:
        share = np.where(forced_abstinent, 0.0, share)[:, None]
    learn = exposed & (drink[:, None] | (u[:, :n_cues] < prob * share))
    if learn.any():
        mem.expose(memory, learn, drink, memory_params)
    no_cue_drink = drink & ~exposed.any(axis=1)
    if no_cue_drink.any():
        mem.us_alone(memory, no_cue_drink)

    # Abstinence-violation effect: a drinking day erodes the motivation lifts; coping skill
    # (relapse prevention) protects.
    loss = np.where(drink, params.abstinence_violation_fraction * (1.0 - state.coping_skill), 0.0)
    state.quit_lift_logit *= 1.0 - loss
    state.therapy_lift_logit *= 1.0 - loss
    state.ketamine_lift_logit *= 1.0 - loss
    state.ketamine_lasting_lift_logit *= 1.0 - loss
    # a lapse also renews a treatment seeker's resolve (after the loss: none of it is lost today)
    state.quit_lift_logit += np.where(drink, state.recommitment_logit, 0.0)
    state.habit += (drink - state.habit) * -np.expm1(-1.0 / params.habit_time_constant_days)
    return drinks
