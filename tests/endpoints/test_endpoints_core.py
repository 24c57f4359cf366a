"""Per-participant endpoints: hand-computed fixtures, numba == numpy oracle, invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reconsolidate.endpoints import (
    MissingDataHandling,
    compute_endpoints,
    heavy_threshold_drinks,
    percent_days_abstinent,
    who_risk_level,
)
from reconsolidate.exceptions import InputError

NAN = np.nan
# 7-day window. P0 man with a missing day; P1 woman with two missing days; P2 man who never
# drinks; P3 woman who drinks heavily (8 drinks) every day.
DRINKS = np.array([
    [0, 6, NAN, 2, 0, 5, 0],
    [4, 0, 0, 3, NAN, NAN, 1],
    [0, 0, 0, 0, 0, 0, 0],
    [8, 8, 8, 8, 8, 8, 8],
], dtype=float)
FEMALE = np.array([False, True, False, True])
BASELINE = np.array([35.0, 14.0, 0.0, 70.0])  # US drinks/week


def _ep(handling, **kw):
    kw.setdefault("abstinent_last_days", 3)
    return compute_endpoints(DRINKS, FEMALE, handling=handling, baseline_drinks_per_week=BASELINE,
                             **kw)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_hand_computed_observed_days(backend: str) -> None:
    ep = _ep(MissingDataHandling("itt", "exclude"), backend=backend)
    # P0: counted 6 days, 3 drinking (6, 2, 5), 2 heavy (>= 5); 13 drinks
    # P1: counted 5 days, 3 drinking (4, 3, 1), 1 heavy (>= 4 for women); 8 drinks
    np.testing.assert_allclose(ep.n_days_counted, [6, 5, 7, 7])
    np.testing.assert_allclose(ep.percent_days_abstinent, [50.0, 40.0, 100.0, 0.0])
    np.testing.assert_allclose(ep.percent_drinking_days, [50.0, 60.0, 0.0, 100.0])
    np.testing.assert_allclose(ep.percent_heavy_drinking_days, [100 / 3, 20.0, 0.0, 100.0])
    np.testing.assert_allclose(ep.drinks_per_drinking_day, [13 / 3, 8 / 3, NAN, 8.0])
    np.testing.assert_allclose(ep.drinks_per_week, [7 * 13 / 6, 7 * 8 / 5, 0.0, 56.0])
    # grams/day: 14*13/6 = 30.3 (man: low), 14*8/5 = 22.4 (woman: medium), 0, 112 (very high)
    np.testing.assert_allclose(ep.grams_per_day, [14 * 13 / 6, 14 * 8 / 5, 0.0, 112.0])
    np.testing.assert_array_equal(ep.who_risk_level, [0, 1, 0, 3])
    # baseline 35/wk -> 70 g/d (man: high, > 60), 14 -> 28 g/d (woman medium), 0, 140 g/d
    np.testing.assert_array_equal(ep.baseline_who_risk_level, [2, 1, 0, 3])
    np.testing.assert_array_equal(ep.who_level_reduction, [2, 0, 0, 0])
    np.testing.assert_array_equal(ep.who_reduction_1_level, [1, 0, 0, 0])
    np.testing.assert_array_equal(ep.who_reduction_2_levels, [1, 0, 0, 0])
    np.testing.assert_allclose(ep.change_drinks_per_week, [7 * 13 / 6 - 35, 11.2 - 14, 0, -14])
    # time to event: event on window day j -> j + 1; never: censored at last counted day + 1
    np.testing.assert_array_equal(ep.days_to_first_drink, [2, 1, 7, 1])
    np.testing.assert_array_equal(ep.first_drink_observed, [True, True, False, True])
    np.testing.assert_array_equal(ep.days_to_first_heavy_day, [2, 1, 7, 1])
    np.testing.assert_array_equal(ep.first_heavy_day_observed, [True, True, False, True])
    np.testing.assert_array_equal(ep.no_heavy_drinking_days, [0, 0, 1, 0])
    # last 3 days: P0 drinks on day 5; P1 only day 6 observed (1 drink): 1 of 3 days counted is
    # below the default minimum of 2 (half of K rounded up), so P1 is not assessable
    assert ep.settings["abstinent_last_min_days"] == 2
    np.testing.assert_array_equal(ep.abstinent_last_days, [0, NAN, 1, 0])
    np.testing.assert_array_equal(ep.n_days_missing, [1, 2, 0, 0])
    assert ep.included.all()


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_hand_computed_missing_as_heavy(backend: str) -> None:
    """A missing day is classified as a heavy drinking day, but no amount is invented for it:
    the amount endpoints are those of the observed days. They used to add the heavy threshold
    (5 drinks men, 4 women) per missing day: P0 4.5 drinks/drinking day and 18 drinks/week,
    P1 3.2 and 16."""
    ep = _ep(MissingDataHandling("itt", "heavy"), backend=backend)
    # classification over all 7 days, a missing day heavy:
    # P0: 3 observed drinking days (6, 2, 5) + day 2 -> 4 drinking, 3 heavy of 7
    # P1: 3 observed drinking days (4, 3, 1) + days 4, 5 -> 5 drinking, 3 heavy of 7
    np.testing.assert_allclose(ep.n_days_counted, [7, 7, 7, 7])
    np.testing.assert_allclose(ep.percent_days_abstinent, [300 / 7, 200 / 7, 100, 0])
    np.testing.assert_allclose(ep.percent_heavy_drinking_days, [300 / 7, 300 / 7, 0, 100])
    np.testing.assert_array_equal(ep.abstinent_last_days, [0, 0, 1, 0])
    np.testing.assert_array_equal(ep.days_to_first_heavy_day, [2, 1, 7, 1])
    # amounts over the observed days: P0 13 drinks on 6 days (3 drinking), P1 8 on 5 (3)
    np.testing.assert_allclose(ep.total_drinks, [13.0, 8.0, 0.0, 56.0])
    np.testing.assert_allclose(ep.drinks_per_drinking_day, [13 / 3, 8 / 3, NAN, 8.0])
    np.testing.assert_allclose(ep.drinks_per_week, [7 * 13 / 6, 7 * 8 / 5, 0.0, 56.0])
    np.testing.assert_allclose(ep.grams_per_day, [14 * 13 / 6, 14 * 8 / 5, 0.0, 112.0])
    np.testing.assert_array_equal(ep.who_risk_level, [0, 1, 0, 3])  # 30.3 g man, 22.4 g woman
    np.testing.assert_allclose(ep.change_drinks_per_week, [7 * 13 / 6 - 35, 11.2 - 14, 0, -14])
    assert ep.settings["amount_basis"].startswith("observed days")


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_all_missing_under_heavy_has_no_amount(backend: str) -> None:
    """A participant with no reported day is 100 % heavy days under "heavy", with no amount at
    all (NaN), not 5 drinks a day (35/week, 70 g/day, WHO "high")."""
    x = np.array([[NAN, NAN, NAN], [0.0, 3.0, NAN]])
    ep = compute_endpoints(x, [False, True], handling=MissingDataHandling("itt", "heavy"),
                           baseline_drinks_per_week=[35.0, 7.0], backend=backend)
    np.testing.assert_allclose(ep.percent_heavy_drinking_days, [100.0, 100 / 3])
    np.testing.assert_array_equal(ep.days_to_first_heavy_day, [1, 3])
    np.testing.assert_array_equal(ep.no_heavy_drinking_days, [0, 0])
    assert np.isnan(ep.drinks_per_week[0]) and np.isnan(ep.grams_per_day[0])
    assert np.isnan(ep.who_risk_level[0]) and np.isnan(ep.change_drinks_per_week[0])
    assert np.isnan(ep.total_drinks[0])
    # ... and, as in PSNHDD, a non-responder on the WHO-level reduction (missing = failure)
    assert ep.who_reduction_1_level[0] == 0.0 and ep.who_reduction_2_levels[0] == 0.0
    # P1: 3 drinks over 2 observed days -> 10.5/week, 3 per drinking day, 21 g/day
    np.testing.assert_allclose(ep.drinks_per_week[1], 10.5)
    np.testing.assert_allclose(ep.drinks_per_drinking_day[1], 3.0)
    np.testing.assert_allclose(ep.grams_per_day[1], 21.0)
    np.testing.assert_allclose(ep.change_drinks_per_week[1], 3.5)


def test_missing_as_abstinent_and_fixed_amount() -> None:
    ep = _ep(MissingDataHandling("itt", "abstinent"))
    np.testing.assert_allclose(ep.percent_days_abstinent, [400 / 7, 400 / 7, 100, 0])
    ep2 = _ep(MissingDataHandling("itt", 2.0))
    np.testing.assert_allclose(ep2.drinks_per_week, [15.0, 12.0, 0.0, 56.0])


def test_responders_only_excludes_incomplete() -> None:
    ep = _ep(MissingDataHandling("responders_only"))
    np.testing.assert_array_equal(ep.included, [False, False, True, True])
    assert np.isnan(ep.percent_days_abstinent[:2]).all()
    assert np.isnan(ep.days_to_first_heavy_day[:2]).all()
    np.testing.assert_allclose(ep.percent_days_abstinent[2:], [100, 0])


def test_grace_period() -> None:
    # P0 heavy on days 1 and 5: responder only if the grace period covers day 5
    for grace, expected in [(0, 0), (2, 0), (5, 0), (6, 1)]:
        ep = _ep(MissingDataHandling("itt", "exclude"), grace_days=grace)
        assert ep.no_heavy_drinking_days[0] == expected, grace
    # P1 (woman) heavy only on day 0
    ep = _ep(MissingDataHandling("itt", "exclude"), grace_days=1)
    assert ep.no_heavy_drinking_days[1] == 1


def test_time_to_event_censoring_and_dropout() -> None:
    x = np.array([[NAN, 0, 0, 0], [0, 0, NAN, NAN], [0, 0, 0, 5]], dtype=float)
    fem = np.zeros(3, bool)
    ex = compute_endpoints(x, fem, handling=MissingDataHandling("itt", "exclude"))
    np.testing.assert_array_equal(ex.days_to_first_heavy_day, [4, 2, 4])
    np.testing.assert_array_equal(ex.first_heavy_day_observed, [False, False, True])
    hv = compute_endpoints(x, fem, handling=MissingDataHandling("itt", "heavy"))
    # missing = heavy: the missing first day / the dropout is the event ("relapse or dropout")
    np.testing.assert_array_equal(hv.days_to_first_heavy_day, [1, 3, 4])
    np.testing.assert_array_equal(hv.first_heavy_day_observed, [True, True, True])


def test_configurable_thresholds_and_all_missing_row() -> None:
    x = np.array([[4.0, 4.0], [NAN, NAN]])
    ep = compute_endpoints(x, [False, False], handling=MissingDataHandling("itt", "exclude"),
                           heavy_drinks_men=4.0)
    assert ep.percent_heavy_drinking_days[0] == 100.0
    assert not ep.included[1] and np.isnan(ep.percent_days_abstinent[1])
    np.testing.assert_array_equal(heavy_threshold_drinks([True, False]), [4.0, 5.0])


def test_who_levels_boundaries() -> None:
    g = np.array([0, 20, 20.5, 40, 40.5, 60, 60.5, 100, 100.5, NAN])
    men = who_risk_level(g, np.zeros(g.size, bool))
    women = who_risk_level(g, np.ones(g.size, bool))
    np.testing.assert_array_equal(men, [0, 0, 0, 0, 1, 1, 2, 2, 3, NAN])
    np.testing.assert_array_equal(women, [0, 0, 1, 1, 2, 2, 3, 3, 3, NAN])


@pytest.mark.parametrize("bad", [
    dict(grace_days=7), dict(grace_days=-1), dict(abstinent_last_days=0),
    dict(heavy_drinks_men=0.0), dict(backend="cuda"),
])
def test_invalid_arguments(bad: dict) -> None:
    with pytest.raises(InputError):
        compute_endpoints(DRINKS, FEMALE, **bad)


def test_invalid_values_and_shapes() -> None:
    with pytest.raises(InputError, match="negative"):
        compute_endpoints(np.array([[1.0, -1.0]]), [False])
    with pytest.raises(InputError, match="is_female"):
        compute_endpoints(DRINKS, [True])
    with pytest.raises(InputError, match="missing_days"):
        MissingDataHandling("itt", "sometimes")
    with pytest.raises(InputError, match="missing_days"):
        MissingDataHandling("itt", True)
    with pytest.raises(InputError, match="no sex"):
        compute_endpoints(DRINKS, FEMALE, sex_known=[True, False, True, True])


def test_float32_matches_float64() -> None:
    a = compute_endpoints(DRINKS.astype(np.float32), FEMALE)
    b = compute_endpoints(DRINKS, FEMALE)
    for k, v in a.arrays().items():
        np.testing.assert_allclose(v, b.arrays()[k], rtol=1e-6, err_msg=k)


# -------------------------------------------------------------------------------------------
# properties

_cells = st.one_of(st.just(np.nan), st.sampled_from([0.0, 0.5, 1.0, 3.0, 4.0, 5.0, 12.0]),
                   st.floats(0, 40, allow_nan=False))
_handlings = st.sampled_from([
    MissingDataHandling("itt", "heavy"), MissingDataHandling("itt", "exclude"),
    MissingDataHandling("itt", "abstinent"), MissingDataHandling("itt", 1.5),
    MissingDataHandling("responders_only"),
])


@st.composite
def _diaries(draw):
    n = draw(st.integers(1, 12))
    d = draw(st.integers(1, 30))
    x = draw(hnp.arrays(np.float64, (n, d), elements=_cells))
    fem = draw(hnp.arrays(np.bool_, (n,)))
    grace = draw(st.integers(0, d - 1))
    k = draw(st.integers(1, 40))
    return x, fem, grace, k


@settings(max_examples=60, deadline=None)
@given(data=_diaries(), handling=_handlings)
def test_numba_kernel_equals_numpy_oracle(data, handling) -> None:
    x, fem, grace, k = data
    base = np.linspace(0, 60, x.shape[0])
    kw = dict(handling=handling, grace_days=grace, abstinent_last_days=k,
              baseline_drinks_per_week=base)
    a = compute_endpoints(x, fem, backend="numba", **kw)
    b = compute_endpoints(x, fem, backend="numpy", **kw)
    for name, v in a.arrays().items():
        np.testing.assert_allclose(v, b.arrays()[name], rtol=1e-12, atol=1e-9, err_msg=name)


@settings(max_examples=40, deadline=None)
@given(data=_diaries(), handling=_handlings)
def test_pda_plus_drinking_days_is_100(data, handling) -> None:
    x, fem, _grace, _k = data
    ep = compute_endpoints(x, fem, handling=handling)
    s = ep.percent_days_abstinent + ep.percent_drinking_days
    np.testing.assert_allclose(s[ep.included], 100.0)
    assert np.all(ep.percent_heavy_drinking_days[ep.included]
                  <= ep.percent_drinking_days[ep.included] + 1e-12)


@settings(max_examples=40, deadline=None)
@given(data=_diaries(), handling=_handlings, seed=st.integers(0, 2**31))
def test_participant_order_does_not_matter(data, handling, seed) -> None:
    x, fem, grace, _k = data
    perm = np.random.default_rng(seed).permutation(x.shape[0])
    a = compute_endpoints(x, fem, handling=handling, grace_days=grace)
    b = compute_endpoints(x[perm], fem[perm], handling=handling, grace_days=grace)
    for name, v in a.arrays().items():
        np.testing.assert_array_equal(v[perm], b.arrays()[name], err_msg=name)


@pytest.mark.parametrize("n", [1, 63, 200])
def test_parallel_kernel_equals_serial(n: int) -> None:
    rng = np.random.default_rng(n)
    x = np.where(rng.random((n, 40)) < 0.4, rng.poisson(4.0, (n, 40)), 0).astype(float)
    x[rng.random(x.shape) < 0.1] = np.nan
    fem = rng.random(n) < 0.5
    for h in (MissingDataHandling("itt", "heavy"), MissingDataHandling("itt", "exclude")):
        a = compute_endpoints(x, fem, handling=h, grace_days=5, parallel=True)
        b = compute_endpoints(x, fem, handling=h, grace_days=5, parallel=False)
        for name, v in a.arrays().items():
            np.testing.assert_array_equal(v, b.arrays()[name], err_msg=name)


def test_wrappers_equal_fused_result() -> None:
    h = MissingDataHandling("itt", "exclude")
    np.testing.assert_array_equal(percent_days_abstinent(DRINKS, FEMALE, handling=h),
                                  _ep(h).percent_days_abstinent)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_abstinent_last_days_needs_enough_counted_days(backend: str) -> None:
    """Under "exclude", a participant with 2 of the last 28 days reported (both dry) was
    counted as abstinent over the last 28 days: now not assessable (NaN, out of the
    denominator) below half of K, configurable; filled missing days are counted days."""
    k = 28
    x = np.zeros((4, 40))
    x[0, -k:-2] = NAN  # 2 dry days of 28 observed: not assessable
    x[1, -k:-14] = NAN  # 14 dry days of 28: exactly half, assessable and abstinent
    x[2, -k:-15] = NAN  # 15 days, drinks on one: not abstinent
    x[2, -1] = 2.0
    x[3, -k:] = NAN  # nothing observed in the last 28 days (dropout)
    fem = np.zeros(4, bool)
    ex = MissingDataHandling("itt", "exclude")
    ep = compute_endpoints(x, fem, handling=ex, abstinent_last_days=k, backend=backend)
    assert ep.settings["abstinent_last_min_days"] == 14
    np.testing.assert_array_equal(ep.abstinent_last_days, [NAN, 1, 0, NAN])
    assert ep.included.all()  # still scored on the other endpoints
    lax = compute_endpoints(x, fem, handling=ex, abstinent_last_days=k,
                            abstinent_last_min_days=1, backend=backend)
    np.testing.assert_array_equal(lax.abstinent_last_days, [1, 1, 0, NAN])
    strict = compute_endpoints(x, fem, handling=ex, abstinent_last_days=k,
                               abstinent_last_min_days=15, backend=backend)
    np.testing.assert_array_equal(strict.abstinent_last_days, [NAN, NAN, 0, NAN])
    # a missing day filled by the handling is a counted day: everyone is classified
    hv = compute_endpoints(x, fem, handling=MissingDataHandling("itt", "heavy"),
                           abstinent_last_days=k, backend=backend)
    np.testing.assert_array_equal(hv.abstinent_last_days, [0, 0, 0, 0])
    ab = compute_endpoints(x, fem, handling=MissingDataHandling("itt", "abstinent"),
                           abstinent_last_days=k, backend=backend)
    np.testing.assert_array_equal(ab.abstinent_last_days, [1, 1, 0, 1])
    # K clipped to a shorter window: the default minimum follows the clipped K
    short = compute_endpoints(x[:, :5], fem, handling=ex, abstinent_last_days=k)
    assert short.settings["abstinent_last_days"] == 5
    assert short.settings["abstinent_last_min_days"] == 3


@pytest.mark.parametrize("bad", [0, -1, 29, 2.5, True, "14"])
def test_abstinent_last_min_days_invalid(bad) -> None:
    with pytest.raises(InputError, match=r"abstinent_last_min_days = .*must be an integer in "
                                         r"\[1, 28\]"):
        compute_endpoints(np.zeros((2, 40)), [False, True], abstinent_last_days=28,
                          abstinent_last_min_days=bad)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_who_responders_need_amounts_on_half_the_window(backend: str) -> None:
    """A participant who reports one dry day and drops out is not a two-level WHO responder
    (0 drinks/week on one observed day): under "heavy" a non-responder (missing = failure, as
    PSNHDD), under "exclude" not assessable; with amounts on half the window they are scored."""
    d = 28
    x = np.full((3, d), np.nan)
    x[0, 0] = 0.0  # one dry day, then dropout
    x[1, :14] = 0.0  # 14 of 28 days reported, all dry: enough
    x[2, :] = 2.0  # complete, 14 drinks/week
    base = [56.0, 56.0, 56.0]  # 112 g/day: WHO "very high" (3) for men
    fem = [False, False, False]
    heavy = compute_endpoints(x, fem, handling=MissingDataHandling("itt", "heavy"),
                              baseline_drinks_per_week=base, backend=backend)
    assert heavy.drinks_per_week[0] == 0.0  # amounts stay over the observed days
    np.testing.assert_array_equal(heavy.who_reduction_2_levels, [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(heavy.no_heavy_drinking_days, [0.0, 0.0, 1.0])
    assert heavy.settings["who_reduction_min_amount_days"] == 14
    excl = compute_endpoints(x, fem, handling=MissingDataHandling("itt", "exclude"),
                             baseline_drinks_per_week=base, backend=backend)
    np.testing.assert_array_equal(excl.who_reduction_1_level, [np.nan, 1.0, 1.0])
    filled = compute_endpoints(x, fem, handling=MissingDataHandling("itt", "abstinent"),
                               baseline_drinks_per_week=base, backend=backend)
    np.testing.assert_array_equal(filled.who_reduction_2_levels, [1.0, 1.0, 1.0])
