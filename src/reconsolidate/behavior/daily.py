"""Daily life: cue exposures -> craving (memory model) -> drinking decision and amount -> learning.

One call of :func:`live_day` simulates one day for a chunk of patients (vectorised, no
per-patient loop):

1. each cue class ``c`` is met at least once with probability ``1 - exp(-rate_c)`` (weekday or
   weekend rate of that patient);
2. the day's craving is the noisy-or of the exposed cues' conditioned responses from the
   population memory model, with a background term ``b``:
   ``kappa = 1 - (1 - b) prod_c (1 - CR_c E_c)``;
3. the patient drinks with probability
   ``sigmoid(alpha_i + beta (1 - skill_i) kappa - M_i)`` where ``M_i`` is the motivation state
   (log-odds against drinking: quit-day, therapy and non-specific ketamine lifts) and ``skill_i``
   the coping skill of relapse-prevention therapy;
4. the amount is the patient's usual drinks per drinking day times
   ``(kappa / kappa_ref_i)^elasticity x exp(-rate M_i)`` with log-normal day-to-day noise;
5. learning: every exposed cue is a rewarded exposure when the patient drank that day and an
   unrewarded one (extinction) when not (:func:`reconsolidate.memory.population.expose`); a drinking
   day without any cue is an unsignalled reward (:func:`~reconsolidate.memory.population.us_alone`);
   a drinking day also costs part of the motivation lifts (abstinence-violation effect).

The intercept ``alpha_i`` is calibrated per patient (:func:`calibrate_intercept`) so that, with the
memory as it is at the start and no motivation lift, the expected drinking days per week equal the
patient's covariate exactly (expectation over all 2^C exposure patterns, weekdays and weekends).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, fields

import numpy as np
from scipy.special import expit, logit, ndtri

from reconsolidate.behavior.params import BehaviorParams
from reconsolidate.memory import population as mem
from reconsolidate.memory.params import MemoryParams
from reconsolidate.population.cues import exposure_probability
from reconsolidate.population.sample import Patients

__all__ = [
    "DAILY_DRAWS",
    "BehaviorState",
    "calibrate_intercept",
    "day_craving",
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
    quit_lift_logit, therapy_lift_logit, ketamine_lift_logit
        Motivation lifts (log-odds against drinking), each with its own half-life.
    coping_skill
        Relapse-prevention coping skill in [0, 1).
    """

    alpha_logit: np.ndarray
    craving_ref: np.ndarray
    quit_lift_logit: np.ndarray
    therapy_lift_logit: np.ndarray
    ketamine_lift_logit: np.ndarray
    coping_skill: np.ndarray

    @property
    def motivation_logit(self) -> np.ndarray:
        """Total motivation (log-odds against drinking)."""
        return self.quit_lift_logit + self.therapy_lift_logit + self.ketamine_lift_logit

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
        self.coping_skill *= np.exp(-ln2 * dt_days / skill_half_life_days)

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


def calibrate_intercept(
    patients: Patients,
    cr: np.ndarray,
    params: BehaviorParams,
    *,
    iterations: int = 40,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-patient intercept so that expected drinking days per week match the covariate.

    The expectation is exact over every exposure pattern (2^C of them) on weekdays and weekend
    days, with the memory responses ``cr`` held fixed and no motivation lift. Safeguarded Newton
    iterations (bisection inside a bracket where a step would leave it) on the monotone expected
    probability.

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
    n_cues = cr.shape[1]
    lo, hi = params.drinking_probability_bounds
    target = np.clip(patients.drinking_days_per_week / 7.0, lo, hi)
    patterns = np.array(list(itertools.product((0.0, 1.0), repeat=n_cues)))  # (P, C)
    tiny = 1e-300  # log(0) guard: a response of exactly 1 keeps the product at 0

    def _pattern_sum(x: np.ndarray, pat: np.ndarray) -> np.ndarray:
        # sum_c x[:, c] * pat[:, c] -> (n, P), accumulated cue by cue in a fixed order (not a
        # BLAS matmul, whose blocking may depend on n: results must not depend on chunking).
        acc = np.zeros((x.shape[0], pat.shape[0]))
        for c in range(pat.shape[1]):
            acc += x[:, c : c + 1] * pat[None, :, c]
        return acc

    keep = np.exp(_pattern_sum(np.log(np.maximum(1.0 - cr, tiny)), patterns))
    kappa1 = 1.0 - (1.0 - params.background_craving) * keep
    # The craving of a pattern is the same on any day; only its probability differs between
    # weekdays and weekend days, so the two weightings add up over the same P patterns.
    kappa = kappa1
    w = np.zeros_like(kappa1)
    for rates, share in (
        (patients.rate_weekday_per_day, WEEKDAYS_PER_WEEK / 7.0),
        (patients.rate_weekend_per_day, WEEKEND_DAYS_PER_WEEK / 7.0),
    ):
        q = exposure_probability(rates)  # (n, C)
        # probability of each pattern: prod over cues of q^e (1 - q)^(1 - e)  -> (n, P)
        logp = _pattern_sum(np.log(np.maximum(q, tiny)), patterns) + _pattern_sum(
            np.log1p(-q), 1.0 - patterns
        )
        w += share * np.exp(logp)
    beta = params.craving_weight_logit
    alpha = logit(target) - beta * (w * kappa).sum(axis=1)
    # E_w[expit(alpha + beta * kappa)] rises monotonically in alpha and lies between
    # expit(alpha + beta * min kappa) and expit(alpha + beta * max kappa), so the root is bracketed:
    bound_a = logit(target) - beta * kappa.max(axis=1)
    bound_b = logit(target) - beta * kappa.min(axis=1)
    lo, hi = np.minimum(bound_a, bound_b), np.maximum(bound_a, bound_b)
    for _ in range(iterations):
        p = expit(alpha[:, None] + beta * kappa)
        f = (w * p).sum(axis=1) - target
        df = (w * p * (1.0 - p)).sum(axis=1)
        hi = np.where(f > 0, alpha, hi)
        lo = np.where(f > 0, lo, alpha)
        # Safeguarded Newton: where the probability saturates (df ~ 0) a plain Newton step can
        # leave the bracket by orders of magnitude; bisect instead. A fixed number of
        # iterations, never a chunk-wide stopping rule: each patient's result must not depend
        # on which other patients share the chunk.
        step = alpha - f / np.maximum(df, 1e-300)
        inside = (step >= lo) & (step <= hi)
        alpha = np.where(inside, step, 0.5 * (lo + hi))
    p = expit(alpha[:, None] + beta * kappa)
    craving_ref = (w * p * kappa).sum(axis=1) / (w * p).sum(axis=1)
    return alpha, craving_ref


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
    """Simulate one day of cue exposure, craving, drinking and learning, in place.

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
        (n,) bool: patients who cannot drink today (e.g. inpatient detoxification).

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
    p_drink = expit(state.alpha_logit + coupling * kappa - motivation)
    drink = u[:, n_cues] < p_drink
    if forced_abstinent is not None:
        drink &= ~forced_abstinent

    sigma = np.sqrt(np.log1p(params.amount_cv**2))
    z = ndtri(u[:, n_cues + 1])
    amount = (
        patients.drinks_per_drinking_day
        * (kappa / state.craving_ref) ** params.amount_craving_elasticity
        * np.exp(-params.amount_motivation_reduction_per_logit * np.maximum(motivation, 0.0))
        * np.exp(sigma * z - sigma**2 / 2)
    )
    amount = np.clip(amount, params.min_drinks_per_drinking_day, params.max_drinks_per_day)
    drinks = np.where(drink, amount, 0.0)

    # Learning: exposed cues are rewarded on drinking days and extinguished otherwise.
    if exposed.any():
        mem.expose(memory, exposed, drink, memory_params)
    no_cue_drink = drink & ~exposed.any(axis=1)
    if no_cue_drink.any():
        mem.us_alone(memory, no_cue_drink)

    # Abstinence-violation effect: a drinking day erodes the motivation lifts; coping skill
    # (relapse prevention) protects.
    loss = np.where(drink, params.abstinence_violation_fraction * (1.0 - state.coping_skill), 0.0)
    state.quit_lift_logit *= 1.0 - loss
    state.therapy_lift_logit *= 1.0 - loss
    state.ketamine_lift_logit *= 1.0 - loss
    return drinks
