"""Daily cue -> craving -> drinking: calibration oracle, learning direction, motivation, therapy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import expit, logit

from reconsolidate._random import PatientStream
from reconsolidate.behavior import (
    THERAPY_PRESETS,
    BehaviorParams,
    BehaviorState,
    TherapySpec,
    calibrate_intercept,
    day_craving,
    drinking_probability_target,
    live_day,
    resolve_therapy,
)
from reconsolidate.exceptions import InputError
from reconsolidate.memory import population as mem
from reconsolidate.memory.params import MemoryParams
from reconsolidate.population import CueEnvironment, get_cohort, sample_patients
from reconsolidate.population.cues import exposure_probability
from reconsolidate.population.sample import Patients

MP = MemoryParams()
BP = BehaviorParams()
#: every per-(patient, cue) field of the population memory state
STATE_FIELDS = mem._CUE_FIELDS


def _setup(n: int = 4000, seed: int = 5, cohort: str = "das2019"):
    p = sample_patients(get_cohort(cohort), CueEnvironment(), seed, 0, n)
    m = mem.new_state(p.acquisition_strength, MP)
    a, k = calibrate_intercept(p, mem.response(m, MP), BP)
    return p, m, BehaviorState.start(a, k, drinking_probability_target(p, BP))


def test_calibration_matches_monte_carlo_oracle() -> None:
    """The exact expectation over exposure patterns agrees with brute-force simulation."""
    p, m, st_ = _setup(300)
    cr = mem.response(m, MP)
    target = np.clip(p.drinking_days_per_week / 7, *BP.drinking_probability_bounds)
    # Monte Carlo over 10,000 simulated days per patient without learning
    rng = np.random.default_rng(0)
    hits = np.zeros(p.n)
    n_days = 10_000
    for d in range(n_days // 100):
        weekend = (d % 7) >= 5
        rates = p.rate_weekend_per_day if weekend else p.rate_weekday_per_day
        for _ in range(100):
            exposed = rng.random(cr.shape) < -np.expm1(-rates)
            kappa = day_craving(cr, exposed, BP.background_craving)
            prob = 1 / (1 + np.exp(-(st_.alpha_logit + BP.craving_weight_logit * kappa)))
            hits += rng.random(p.n) < prob
    # weekday/weekend shares of the loop are 5/7 and 2/7, as in the calibration
    assert np.abs(hits / n_days - target).max() < 0.03


@settings(max_examples=60, deadline=None)
@given(
    cr=arrays(np.float64, (5, 6), elements=st.floats(0, 1)),
    exposed=arrays(np.bool_, (5, 6)),
    b=st.floats(0, 0.99),
)
def test_day_craving_is_a_bounded_monotone_noisy_or(cr, exposed, b) -> None:
    k = day_craving(cr, exposed, b)
    assert np.all((k >= b - 1e-12) & (k <= 1 + 1e-12))
    more = day_craving(np.minimum(cr + 0.1, 1.0), exposed, b)
    assert np.all(more >= k - 1e-12)
    none = day_craving(cr, np.zeros_like(exposed), b)
    assert np.allclose(none, b)


def _run(p, m, s, days: int, bp: BehaviorParams = BP, **kw) -> np.ndarray:
    out = []
    for d in range(days):
        u = PatientStream(9, "test.day", 8, d).uniform(0, p.n)
        out.append(live_day(m, s, p, bp, MP, u, weekend=(d % 7) >= 5, **kw))
        mem.advance(m, 24.0)
        s.decay(BP, np.full(p.n, 180.0), 1.0)
    return np.array(out).T


def test_baseline_drinking_reproduces_covariates() -> None:
    p, m, s = _setup(4000)
    drinks = _run(p, m, s, 14)
    days_per_week = (drinks > 0).mean() * 7
    assert days_per_week == pytest.approx(p.drinking_days_per_week.mean(), abs=0.4)
    per_drinking_day = drinks[drinks > 0].mean()
    assert per_drinking_day == pytest.approx(p.drinks_per_drinking_day.mean(), rel=0.2)


def _dry(s: BehaviorState) -> BehaviorState:
    """A copy of the state with a motivation no one drinks against: dry days on which a drink
    was an option (unlike forced abstinence, detoxification)."""
    s = s.copy()
    s.quit_lift_logit[:] = 60.0
    return s


def test_abstinence_extinguishes_and_drinking_reinforces_cue_memories() -> None:
    p, m, s = _setup(2000)
    m_abst = m.copy()
    before = mem.response(m, MP).mean()
    _run(p, m, s.copy(), 30)
    assert (_run(p, m_abst, _dry(s), 30) == 0).all()
    drinking_cr = mem.response(m, MP).mean()
    abstinent_cr = mem.response(m_abst, MP).mean()
    assert abstinent_cr < drinking_cr - 0.05
    assert drinking_cr > 0.5 * before


@pytest.mark.parametrize("share", [0.0, 0.25, 1.0])
def test_a_dry_days_exposures_are_extinction_trials_at_the_opportunity_share(share) -> None:
    # a dry day for everyone: the exposures that count as extinction trials are the
    # (patient, cue) pairs whose trial count moved; given an exposure (u < p), u < share x p
    # picks a share of them, the rest leave the memory untouched
    p, m, s = _setup(4000)
    before = m.copy()
    u = PatientStream(9, "test.day", 8, 0).uniform(0, p.n)
    bp = BehaviorParams(extinction_opportunity_fraction=share)
    assert (live_day(m, _dry(s), p, bp, MP, u, weekend=False) == 0).all()
    exposed = u[:, :6] < p.exposure_prob_weekday
    learned = (m.n0 + m.n1) > (before.n0 + before.n1)
    assert not (learned & ~exposed).any()
    untouched = ~learned
    for f in STATE_FIELDS:
        assert np.array_equal(getattr(m, f)[untouched], getattr(before, f)[untouched]), f
    if share == 0.0:
        assert not learned.any()
    else:
        k, n = int(learned.sum()), int(exposed.sum())
        # binomial: within 4 standard deviations of the share
        assert abs(k - share * n) <= 4 * np.sqrt(n * share * (1 - share)) + 1e-9
        assert learned[exposed].any()
        assert m.w0[learned].sum() + m.w1[learned].sum() < (
            before.w0[learned].sum() + before.w1[learned].sum())


def test_no_extinction_trial_in_detoxification() -> None:
    """Forced abstinence (inpatient detoxification): no drink was an option, so no exposure is
    an extinction trial whatever the share; the memory is untouched, the habit moves as on any
    dry day, and the patients not in detoxification are unaffected."""
    p, m, s = _setup(3000)
    u = PatientStream(9, "test.day", 8, 0).uniform(0, p.n)
    bp = BehaviorParams(extinction_opportunity_fraction=1.0)
    forced = np.arange(p.n) % 2 == 0
    m_forced, s_forced = m.copy(), s.copy()
    live_day(m_forced, s_forced, p, bp, MP, u, weekend=False, forced_abstinent=forced)
    m_free, s_free = m.copy(), s.copy()
    live_day(m_free, s_free, p, bp, MP, u, weekend=False)
    dry = _dry(s)
    m_dry = m.copy()
    live_day(m_dry, dry, p, bp, MP, u, weekend=False)
    for f in STATE_FIELDS:
        got = getattr(m_forced, f)
        assert np.array_equal(got[forced], getattr(m, f)[forced]), f
        assert np.array_equal(got[~forced], getattr(m_free, f)[~forced]), f
    # on a free dry day the same exposures do teach (share 1): the detox rule is what held it
    assert ((m_dry.n0 + m_dry.n1) > (m.n0 + m.n1))[forced].any()
    assert np.array_equal(s_forced.habit[forced], dry.habit[forced])


def test_the_opportunity_share_changes_neither_draws_nor_drinking_days() -> None:
    # the share decides from the exposure's own uniform, after the day's decision: the same day
    # gives the same drinks whatever the share, and a day on which everyone drinks teaches the
    # memory the same (every exposed cue is reinforced)
    p, m, s = _setup(3000)
    u = PatientStream(9, "test.day", 8, 0).uniform(0, p.n)
    states = {}
    for share in (0.0, 0.4, 1.0):
        mm, ss = m.copy(), s.copy()
        drinks = live_day(mm, ss, p, BehaviorParams(extinction_opportunity_fraction=share), MP,
                          u, weekend=False)
        states[share] = (drinks, mm)
    d0, m0 = states[0.0]
    assert 0.0 < (d0 > 0).mean() < 1.0
    for share in (0.4, 1.0):
        assert np.array_equal(states[share][0], d0)
    # where the patient drank, the memory is the same at every share; elsewhere it is not
    drank = d0 > 0
    m1 = states[1.0][1]
    for f in STATE_FIELDS:
        assert np.array_equal(getattr(m0, f)[drank], getattr(m1, f)[drank]), f
    assert not np.array_equal(m0.n1[~drank] + m0.n0[~drank], m1.n1[~drank] + m1.n0[~drank])


def test_motivation_lowers_drinking_and_amount() -> None:
    p, m, s = _setup(3000)
    s2 = s.copy()
    s2.quit_lift_logit += 3.0
    base = _run(p, m.copy(), s, 7)
    motivated = _run(p, m.copy(), s2, 7)
    assert (motivated > 0).mean() < 0.6 * (base > 0).mean()
    assert motivated[motivated > 0].mean() < base[base > 0].mean()


@pytest.mark.parametrize("elasticity", [0.0, 0.5, 1.5])
def test_a_lapse_after_a_spell_without_drinking_is_smaller(elasticity: float) -> None:
    """Tolerance lost with the habit: below half the usual habit a drinking day is smaller by
    (habit / (0.5 usual))^elasticity; at or above half, and with elasticity 0, it is not."""
    # habit weight 0: the habit moves only the amount, so the same patients drink on the day
    bp = BehaviorParams(amount_habit_elasticity=elasticity, habit_weight_logit=0.0)
    p, m, s = _setup(3000)
    u = PatientStream(9, "test.day", 8, 0).uniform(0, p.n)

    def one_day(habit_share: float) -> np.ndarray:
        s2 = s.copy()
        s2.habit = habit_share * s2.habit_ref
        return live_day(m.copy(), s2, p, bp, MP, u, weekend=False)

    usual, at_half, low = one_day(1.0), one_day(0.5), one_day(0.1)
    assert np.array_equal(usual > 0, low > 0) and (usual > 0).sum() > 500
    np.testing.assert_array_equal(at_half, usual)
    # compare where neither day is clipped at the minimum or maximum amount
    free = (low > bp.min_drinks_per_drinking_day) & (usual < bp.max_drinks_per_day)
    assert free.sum() > 300
    np.testing.assert_allclose(low[free] / usual[free], 0.2**elasticity, rtol=1e-12)


def test_a_lapse_renews_a_treatment_seekers_resolve() -> None:
    """A drinking day adds the patient's recommitment to the quit lift, after the day's
    abstinence-violation loss; a dry day adds nothing."""
    bp = BehaviorParams(abstinence_violation_fraction=0.2)
    p, m, s = _setup(3000)
    s.quit_lift_logit[:] = 1.0
    s.coping_skill[:] = 0.25
    s.recommitment_logit[:] = np.where(np.arange(p.n) % 2 == 0, 0.3, 0.0)
    s0 = s.copy()
    u = PatientStream(9, "test.day", 8, 0).uniform(0, p.n)
    drinks = live_day(m, s, p, bp, MP, u, weekend=False)
    drank = drinks > 0
    assert 500 < drank.sum() < p.n - 500
    kept = s0.quit_lift_logit * (1.0 - 0.2 * (1.0 - 0.25))
    np.testing.assert_allclose(s.quit_lift_logit[drank],
                               (kept + s0.recommitment_logit)[drank], rtol=1e-15)
    np.testing.assert_array_equal(s.quit_lift_logit[~drank], s0.quit_lift_logit[~drank])
    # the other lifts only lose
    np.testing.assert_allclose(s.therapy_lift_logit[drank],
                               (s0.therapy_lift_logit * (1.0 - 0.2 * 0.75))[drank], rtol=1e-15)


def test_coping_skill_weakens_the_craving_coupling() -> None:
    p, m, s = _setup(3000)
    s2 = s.copy()
    s2.coping_skill[:] = 0.5
    assert (_run(p, m.copy(), s2, 7) > 0).mean() < (_run(p, m.copy(), s, 7) > 0).mean()


def test_same_random_numbers_give_same_day() -> None:
    p, m, s = _setup(500)
    a = _run(p, m.copy(), s.copy(), 5)
    b = _run(p, m.copy(), s.copy(), 5)
    assert np.array_equal(a, b)


def test_therapy_presets_and_overrides() -> None:
    assert set(THERAPY_PRESETS) == {"none", "met", "mbrp", "education"}
    met = THERAPY_PRESETS["met"]
    assert len(met.session_days) == 5  # 5-week MET course (Dakwar 2020)
    assert len(THERAPY_PRESETS["mbrp"].session_days) == 7  # 7 MBRP sessions (KARE design)
    edu = THERAPY_PRESETS["education"]
    assert edu.motivation_logit_per_session < met.motivation_logit_per_session
    t = resolve_therapy(TherapySpec(preset="mbrp", session_days=[3, 1]), "custom")
    assert t.session_days == (1, 3) and t.name == "custom"
    assert t.coping_skill_max == THERAPY_PRESETS["mbrp"].coping_skill_max
    with pytest.raises(InputError, match="valid presets"):
        resolve_therapy("hypnosis")


def test_calibration_does_not_depend_on_the_chunk() -> None:
    p, m, _ = _setup(300)
    cr = mem.response(m, MP)
    a, k = calibrate_intercept(p, cr, BP)
    from reconsolidate.population import sample_patients as sp

    q = sp(get_cohort("das2019"), CueEnvironment(), 5, 100, 137)
    a2, k2 = calibrate_intercept(q, cr[100:137], BP)
    assert np.array_equal(a[100:137], a2) and np.array_equal(k[100:137], k2)


def test_calibration_converges_when_drinking_probability_saturates() -> None:
    """Regression: cue responses all near 1 and a target near the upper bound once sent a plain
    Newton step to alpha = -2e10 (craving_ref 0/0) under the shipped calibrated craving weight.
    The bracketed iteration must hit the target."""
    bp = BehaviorParams(craving_weight_logit=9.271484602402213)  # calibration/fitted.toml
    p, _, _ = _setup(8)
    cr = np.tile([0.96580228, 0.87262936, 0.85599481, 0.99808788, 0.99243124, 0.86179636], (8, 1))
    cr[1:] = np.linspace(0.0, 0.999, 7)[:, None]
    p.drinking_days_per_week[:] = 6.92988735
    p.rate_weekday_per_day[0] = [0.57082294, 0.19678864, 0.08268667, 0.30152018, 0.46976863,
                                 0.63840099]
    p.rate_weekend_per_day[0] = [0.28541147, 0.47229275, 0.41343335, 0.60304036, 0.5480634,
                                 0.3192005]
    with np.errstate(all="raise"):
        a, k = calibrate_intercept(p, cr, bp)
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(k))
    # the expected drinking probability equals the (clipped) target for every patient
    target = np.clip(p.drinking_days_per_week / 7, *bp.drinking_probability_bounds)
    rng = np.random.default_rng(1)
    hits = np.zeros(p.n)
    n_days = 7 * 3000
    for d in range(n_days):
        rates = p.rate_weekend_per_day if (d % 7) >= 5 else p.rate_weekday_per_day
        exposed = rng.random(cr.shape) < -np.expm1(-rates)
        kappa = day_craving(cr, exposed, bp.background_craving)
        hits += rng.random(p.n) < 1 / (1 + np.exp(-(a + bp.craving_weight_logit * kappa)))
    assert np.abs(hits / n_days - target).max() < 0.01


# ----------------------------------------------------------------------------- intercept oracle
def _calibrate_intercept_numpy(
    patients: Patients,
    cr: np.ndarray,
    params: BehaviorParams,
    *,
    iterations: int = 40,
) -> tuple[np.ndarray, np.ndarray]:
    """Numpy implementation (fixed iteration count over the whole chunk): the oracle of the
    compiled :func:`calibrate_intercept`."""
    n_cues = cr.shape[1]
    target = drinking_probability_target(patients, params)
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
        (patients.rate_weekday_per_day, 5.0 / 7.0),
        (patients.rate_weekend_per_day, 2.0 / 7.0),
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


@pytest.mark.parametrize("cohort", ["das2019", "dakwar2020", "combine"])
def test_compiled_intercept_matches_numpy_oracle(cohort: str) -> None:
    p, m, _ = _setup(500, cohort=cohort)
    cr = mem.response(m, MP)
    cr[:50] = np.linspace(0.0, 0.999, 50)[:, None]  # include saturating patients
    for bp in (BP, BehaviorParams(craving_weight_logit=9.27, background_craving=0.3)):
        a, k = calibrate_intercept(p, cr, bp)
        a0, k0 = _calibrate_intercept_numpy(p, cr, bp)
        assert np.allclose(a, a0, rtol=1e-9, atol=1e-9)
        assert np.allclose(k, k0, rtol=1e-9, atol=1e-12)
