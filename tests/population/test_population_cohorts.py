"""Cohort presets against their sources, explicit distributions, and chunk-invariant sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconsolidate.exceptions import InputError
from reconsolidate.population import (
    CUE_CLASSES,
    TLFB_BASELINE_REMEMBERED_DAY_FRACTION,
    TLFB_BASELINE_REPORTED_FRACTION,
    UK_UNITS_PER_US_DRINK,
    CohortSpec,
    CueEnvironment,
    Fixed,
    LogNormal,
    Normal,
    Uniform,
    get_cohort,
    list_cohorts,
    resolve_cohort,
    sample_patients,
)
from reconsolidate.population.distributions import range_problem
from reconsolidate.population.sample import cohort_range_problem

N = 40_000


def _sample(name: str, n: int = N, seed: int = 3):
    return sample_patients(get_cohort(name), CueEnvironment(), seed, 0, n)


def test_uk_units_conversion() -> None:
    # 14 g per US drink / 8 g per UK unit (NIAAA; UK definition)
    assert UK_UNITS_PER_US_DRINK == pytest.approx(1.75)


def test_das2019_preset_matches_published_cohort() -> None:
    p = _sample("das2019")
    # 35 women of 90 [S]
    assert p.is_female.mean() == pytest.approx(35 / 90, abs=0.01)
    # mean age ~28 [S]
    assert p.age_years.mean() == pytest.approx(28.0, abs=0.7)
    # ~74 UK units a week [S], as a TLFB reports them: the covariate is the true drinking
    # (tests/trial/test_trial_engine.py checks the simulated TLFB baseline)
    reported = p.baseline_uk_units_per_week.mean() * TLFB_BASELINE_REPORTED_FRACTION
    assert reported == pytest.approx(74.0, rel=0.06)
    # ~6 drinking days a week before ketamine [S], as a TLFB reports them
    reported_days = p.drinking_days_per_week.mean() * TLFB_BASELINE_REMEMBERED_DAY_FRACTION
    assert reported_days == pytest.approx(6.0, abs=0.15)
    assert not p.treatment_seeking.any() and not p.abstinent_at_entry.any()


def test_dakwar2020_preset_matches_published_cohort() -> None:
    p = _sample("dakwar2020")
    assert p.age_years.mean() == pytest.approx(53.0, abs=0.7)  # mean age 53 [P]
    # about 5 drinks a day [P], reported
    reported = (p.baseline_drinks_per_week / 7).mean() * TLFB_BASELINE_REPORTED_FRACTION
    assert reported == pytest.approx(5.0, rel=0.08)
    assert p.treatment_seeking.all()


@pytest.mark.parametrize(("preset", "mean", "sd"), [
    ("dakwar2020", 53.0, 9.8),  # Dakwar 2020 [P]
    ("kare2022", 44.07, 10.59),  # Grabski 2022 (KARE design) [P]
])
def test_age_distribution_has_the_published_mean_and_sd(preset: str, mean: float,
                                                        sd: float) -> None:
    """The truncated normal's own moments (scipy's truncnorm, no sampling) equal the published
    sample mean and SD: its location and scale are solved for them, since truncating a normal
    of that mean and SD to the age range shifts the mean (KARE: 42.82 at 18-60)."""
    from scipy.stats import truncnorm

    a = get_cohort(preset).age_years
    d = truncnorm((a.low - a.mean) / a.sd, (a.high - a.mean) / a.sd, loc=a.mean, scale=a.sd)
    assert d.mean() == pytest.approx(mean, abs=0.01)
    assert d.std() == pytest.approx(sd, abs=0.01)
    u = (np.arange(200_000) + 0.5) / 200_000  # the sampler's inversion on a uniform grid
    assert a.ppf(u).mean() == pytest.approx(mean, abs=0.01)


def test_combine_preset_reports_the_published_baseline_pda() -> None:
    """COMBINE's baseline PDA, 23-30% (midpoint 26.5) [S], is a TLFB report: the preset's true
    drinking days are the reported ones over the share a 28-day recall remembers (the presets'
    convention; daily probability clipped at 0.98, as the intercept calibration does). The
    calibration scenario recalls its baseline 12-40 days later and reads about 28.3%
    (cohorts.py; `combine_baseline_pda` scores that scenario)."""
    p = _sample("combine", 50_000)
    true_share = np.minimum(p.drinking_days_per_week / 7.0, 0.98).mean()
    reported_pda = 100.0 * (1.0 - true_share * TLFB_BASELINE_REMEMBERED_DAY_FRACTION)
    assert reported_pda == pytest.approx(26.5, abs=0.5)


def test_combine_and_kare_are_recently_abstinent_treatment_seekers() -> None:
    for name in ("combine", "kare2022"):
        p = _sample(name, 5000)
        assert p.treatment_seeking.all() and p.abstinent_at_entry.all()
    k = _sample("kare2022")
    assert k.is_female.mean() == pytest.approx(35 / 96, abs=0.01)  # [P]
    reported = k.baseline_uk_units_per_week.mean() * TLFB_BASELINE_REPORTED_FRACTION
    assert reported == pytest.approx(125, rel=0.08)  # [S]


def test_the_tlfb_reported_fraction_follows_the_observation_model() -> None:
    """TLFB_BASELINE_REPORTED_FRACTION is what the observation model's defaults report of a
    28-day baseline recalled at one visit: mean over lags k = 1..28 of the Wennberg factor
    exp(-0.015 k) times the chance of remembering the day, 1 - 0.002 k."""
    from reconsolidate.trial.observation import ObservationModel

    m = ObservationModel()
    k = np.arange(1, 29)
    frac = np.mean(np.exp(-m.underreport_per_day * np.minimum(k, m.underreport_max_lag_days))
                   * (1.0 - m.forget_prob_per_day * k))
    assert frac == pytest.approx(TLFB_BASELINE_REPORTED_FRACTION, abs=5e-5)
    # of the drinking days, those remembered
    assert np.mean(1.0 - m.forget_prob_per_day * k) == pytest.approx(
        TLFB_BASELINE_REMEMBERED_DAY_FRACTION, abs=5e-5)


def test_more_severe_cohorts_have_stronger_cue_memories() -> None:
    das, dak = _sample("das2019", 5000), _sample("dakwar2020", 5000)
    assert dak.aud_severity.mean() > das.aud_severity.mean()
    assert dak.acquisition_strength.mean() > das.acquisition_strength.mean()
    assert np.all((das.acquisition_strength >= 0) & (das.acquisition_strength <= 1))


def test_sampling_is_chunk_invariant_and_keyed_by_patient_index() -> None:
    c, env = get_cohort("das2019"), CueEnvironment()
    whole = sample_patients(c, env, 11, 0, 500)
    a = sample_patients(c, env, 11, 0, 123)
    b = sample_patients(c, env, 11, 123, 500)
    for name, arr in whole.columns().items():
        assert np.array_equal(arr, np.concatenate([a.columns()[name], b.columns()[name]])), name
    other = sample_patients(c, env, 12, 0, 500)
    assert not np.array_equal(whole.age_years, other.age_years)
    rep = sample_patients(c, env, 11, 0, 500, replicate=1)
    assert not np.array_equal(whole.age_years, rep.age_years)


def test_explicit_distributions_and_overrides() -> None:
    spec = CohortSpec(preset="das2019", age_years=Fixed(value=40.0), female_fraction=1.0)
    c = resolve_cohort(spec)
    p = sample_patients(c, CueEnvironment(), 1, 0, 200)
    assert np.all(p.age_years == 40.0) and p.is_female.all()
    # untouched fields keep the preset's values
    assert c.drinks_per_drinking_day == get_cohort("das2019").drinks_per_drinking_day


def test_cohort_without_preset_needs_every_field() -> None:
    with pytest.raises(InputError, match="age_years"):
        resolve_cohort(CohortSpec(female_fraction=0.5))


def test_unknown_preset_lists_valid_ones() -> None:
    with pytest.raises(InputError, match="das2019"):
        get_cohort("nope")
    assert {"das2019", "dakwar2020", "combine"} <= set(list_cohorts())


@settings(max_examples=50, deadline=None)
@given(
    mean=st.floats(-5, 5),
    sd=st.floats(0.01, 3),
    lo=st.floats(-10, -5.5),
    hi=st.floats(5.5, 10),
)
def test_truncated_normal_stays_within_bounds(mean: float, sd: float, lo: float, hi: float) -> None:
    d = Normal(mean=mean, sd=sd, low=lo, high=hi)
    u = np.linspace(1e-9, 1 - 1e-9, 101)
    x = d.ppf(u)
    assert np.all((x >= lo) & (x <= hi))
    assert np.all(np.diff(x) >= 0)


def test_lognormal_median_and_uniform() -> None:
    d = LogNormal(median=7.0, cv=0.4)
    assert d.ppf(np.array([0.5]))[0] == pytest.approx(7.0)
    assert Uniform(low=1, high=3).ppf(np.array([0.25]))[0] == pytest.approx(1.5)


def test_cue_environment_rejects_unknown_cue_and_orders_columns() -> None:
    env = CueEnvironment(rate_weekday_per_day={"pub_bar": 2.0})
    assert env.weekday_rates[CUE_CLASSES.index("pub_bar")] == 2.0
    with pytest.raises(ValueError, match="unknown cue class"):
        CueEnvironment(rate_weekday_per_day={"casino": 1.0})
    with pytest.raises(ValueError, match="acquisition strength"):
        CueEnvironment(acquisition_strength={"pub_bar": 1.5})


@pytest.mark.parametrize(
    ("dist", "low", "high", "low_open", "problem"),
    [
        (Fixed(value=8.0), 0.0, 7.0, False, "gives 8; x must lie in [0, 7]"),
        (Fixed(value=0.0), 0.0, math.inf, True, "gives 0; x must lie in (0, inf)"),
        (Normal(mean=6.0, sd=1.0), 0.0, 7.0, False, "gives values in [-inf, inf); x must lie"),
        (Uniform(low=2.0, high=12.0), 0.0, 11.0, False, "gives values in [2, 12]"),
        (Normal(mean=6.0, sd=1.0, low=3.0, high=7.0), 0.0, 7.0, False, None),
        (Normal(mean=7.0, sd=0.0), 0.0, 7.0, False, None),
        # a log-normal without a lower bound is > 0: fine for a positive quantity
        (LogNormal(median=6.0, cv=0.3), 0.0, math.inf, True, None),
        (LogNormal(median=6.0, cv=0.3, high=500.0), 0.0, 400.0, True, "gives values in (0, 500]"),
    ],
)
def test_range_problem(dist, low: float, high: float, low_open: bool,
                       problem: str | None) -> None:
    got = range_problem(dist, low, high, low_open=low_open, what="x")
    assert got == problem if problem is None else problem in got


def test_sampling_rejects_out_of_range_covariates_instead_of_clipping() -> None:
    cohort = get_cohort("das2019").model_copy(
        update={"drinking_days_per_week": Fixed(value=8.0)})
    assert cohort_range_problem(cohort) == (
        "cohort.drinking_days_per_week = {'dist': 'fixed', 'value': 8.0}: gives 8; drinking "
        "days per week must lie in [0, 7]")
    with pytest.raises(InputError, match=r"cohort\.drinking_days_per_week"):
        sample_patients(cohort, CueEnvironment(), seed=1, start=0, stop=5)
    spec = CohortSpec(preset="das2019", dsm5_criteria=Normal(mean=9.0, sd=2.0, low=0.0,
                                                              high=15.0))
    assert "arms[0].cohort.dsm5_criteria" in cohort_range_problem(spec, "arms[0].cohort")
    for name in list_cohorts():  # every preset is inside the ranges
        assert cohort_range_problem(get_cohort(name)) is None
