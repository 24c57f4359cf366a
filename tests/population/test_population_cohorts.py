"""Cohort presets against their sources, explicit distributions, and chunk-invariant sampling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconsolidate.exceptions import InputError
from reconsolidate.population import (
    CUE_CLASSES,
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
    # ~74 UK units a week [S]
    assert p.baseline_uk_units_per_week.mean() == pytest.approx(74.0, rel=0.06)
    # ~6 drinking days a week before ketamine [S]
    assert p.drinking_days_per_week.mean() == pytest.approx(6.0, abs=0.15)
    assert not p.treatment_seeking.any() and not p.abstinent_at_entry.any()


def test_dakwar2020_preset_matches_published_cohort() -> None:
    p = _sample("dakwar2020")
    assert p.age_years.mean() == pytest.approx(53.0, abs=0.7)  # mean age 53 [P]
    # about 5 drinks a day [P]
    assert (p.baseline_drinks_per_week / 7).mean() == pytest.approx(5.0, rel=0.08)
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


def test_combine_and_kare_are_recently_abstinent_treatment_seekers() -> None:
    for name in ("combine", "kare2022"):
        p = _sample(name, 5000)
        assert p.treatment_seeking.all() and p.abstinent_at_entry.all()
    k = _sample("kare2022")
    assert k.is_female.mean() == pytest.approx(35 / 96, abs=0.01)  # [P]
    assert k.baseline_uk_units_per_week.mean() == pytest.approx(125, rel=0.08)  # [S]


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
