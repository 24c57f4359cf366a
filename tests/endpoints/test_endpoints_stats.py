"""Statistics equal direct lifelines / statsmodels / scipy calls; literature golden values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from lifelines import CoxPHFitter, KaplanMeierFitter
from scipy import stats

from reconsolidate.endpoints import (
    GRAMS_ETHANOL_PER_US_STANDARD_DRINK,
    MAX_ABS_LOG_ODDS_RATIO,
    MIN_GEE_CLUSTERS_PER_ARM,
    MissingDataHandling,
    abstinence_matrix,
    compare_arms,
    compute_endpoints,
    cox_hazard_ratio,
    gee_daily_abstinence,
    hedges_g,
    kaplan_meier,
    mean_difference,
    risk_difference,
    summarize_arms,
)


def _survival_data(seed: int = 3, n: int = 80):
    rng = np.random.default_rng(seed)
    treated = rng.random(n) < 0.5
    t_event = np.ceil(rng.exponential(np.where(treated, 30.0, 15.0)))
    t_cens = rng.integers(10, 60, n)
    dur = np.minimum(t_event, t_cens).astype(float)
    ev = t_event <= t_cens
    return dur, ev, treated


def test_kaplan_meier_equals_lifelines() -> None:
    dur, ev, _ = _survival_data()
    km = kaplan_meier(dur, ev)
    ref = KaplanMeierFitter().fit(dur, ev)
    sf = ref.survival_function_.iloc[:, 0]
    np.testing.assert_allclose(km.survival_at(sf.index.values), sf.values, rtol=1e-12)
    assert km.median_days == ref.median_survival_time_


def test_kaplan_meier_median_not_reached_and_nan_dropped() -> None:
    km = kaplan_meier([5.0, 7.0, 7.0, np.nan], [True, False, False, True])
    assert math.isinf(km.median_days)
    ref = KaplanMeierFitter().fit([5.0, 7.0, 7.0], [True, False, False])
    assert math.isinf(ref.median_survival_time_)


def test_cox_equals_lifelines() -> None:
    dur, ev, treated = _survival_data()
    r = cox_hazard_ratio(dur, ev, treated)
    df = pd.DataFrame({"duration": dur, "event": ev.astype(int), "treated": treated.astype(float)})
    cph = CoxPHFitter().fit(df, duration_col="duration", event_col="event")
    assert r["hazard_ratio"] == pytest.approx(float(cph.hazard_ratios_["treated"]), rel=1e-9)
    ci = cph.confidence_intervals_.loc["treated"]
    assert r["ci_low"] == pytest.approx(math.exp(ci.iloc[0]), rel=1e-6)
    assert r["ci_high"] == pytest.approx(math.exp(ci.iloc[1]), rel=1e-6)
    assert r["p_value"] == pytest.approx(float(cph.summary.loc["treated", "p"]), rel=1e-9)
    assert r["hazard_ratio"] < 1  # treated relapse rate is half


def test_cox_not_estimable_without_events() -> None:
    r = cox_hazard_ratio([5.0, 6.0], [False, False], [True, False])
    assert r["hazard_ratio"] is None and "not estimable" in r["note"]


def _abstinence_panel(seed: int = 11, n: int = 40, d: int = 21):
    rng = np.random.default_rng(seed)
    treated = np.arange(n) % 2 == 0
    frailty = rng.normal(0, 1, n)
    logit = 0.3 + 0.8 * treated + frailty
    p = 1 / (1 + np.exp(-logit))
    a = (rng.random((n, d)) < p[:, None]).astype(float)
    a[rng.random((n, d)) < 0.1] = np.nan
    return a, treated


@pytest.mark.parametrize("cov", ["exchangeable", "ar1"])
def test_gee_equals_statsmodels(cov: str) -> None:
    a, treated = _abstinence_panel()
    r = gee_daily_abstinence(a, treated, cov_struct=cov)
    ii, jj = np.nonzero(~np.isnan(a))
    df = pd.DataFrame({"abstinent": a[ii, jj], "treated": treated[ii].astype(float),
                       "pid": ii, "day": jj.astype(float)})
    cs = sm.cov_struct.Exchangeable() if cov == "exchangeable" else \
        sm.cov_struct.Autoregressive(grid=True)
    res = sm.GEE.from_formula("abstinent ~ treated", groups="pid", data=df, time=df["day"],
                              family=sm.families.Binomial(), cov_struct=cs).fit()
    assert r["odds_ratio"] == pytest.approx(math.exp(res.params["treated"]), rel=1e-6)
    lo, hi = res.conf_int().loc["treated"]
    assert r["ci_low"] == pytest.approx(math.exp(lo), rel=1e-6)
    assert r["ci_high"] == pytest.approx(math.exp(hi), rel=1e-6)
    assert r["p_value"] == pytest.approx(float(res.pvalues["treated"]), rel=1e-6)
    assert r["odds_ratio"] > 1
    assert r["n_days"] == int((~np.isnan(a[treated])).sum())
    assert r["n_days_reference"] == int((~np.isnan(a[~treated])).sum())
    assert r["n"] == r["n_reference"] == 20
    assert "note" not in r


def test_gee_skips_large_and_constant() -> None:
    a, treated = _abstinence_panel()
    assert gee_daily_abstinence(a, treated, max_rows=10)["odds_ratio"] is None
    assert gee_daily_abstinence(np.ones((4, 3)), [True, False, True, False])["odds_ratio"] is None


def _with_mean_sd(mean: float, sd: float, n: int, seed: int) -> np.ndarray:
    z = np.random.default_rng(seed).normal(size=n)
    z = (z - z.mean()) / z.std(ddof=1)
    return mean + sd * z


def test_hedges_g_borenstein_example() -> None:
    # Borenstein et al. 2009, Introduction to Meta-Analysis, section 4 worked example:
    # means 103 vs 100, SD 5.5 vs 4.5, n 50 per group -> d = 0.5970, J = 0.9923, g = 0.5924,
    # V(g) = 0.0411.
    a = _with_mean_sd(103.0, 5.5, 50, 1)
    b = _with_mean_sd(100.0, 4.5, 50, 2)
    r = hedges_g(a, b)
    assert r["hedges_g"] == pytest.approx(0.5924, abs=5e-4)
    se = (r["g_ci_high"] - r["g_ci_low"]) / (2 * 1.959964)
    assert se**2 == pytest.approx(0.0411, abs=5e-4)


def test_mean_difference_equals_scipy_welch() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(60, 20, 30), rng.normal(50, 25, 45)
    r = mean_difference(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert r["difference"] == pytest.approx(a.mean() - b.mean())
    assert r["ci_low"] == pytest.approx(ci.low) and r["ci_high"] == pytest.approx(ci.high)
    assert r["p_value"] == pytest.approx(ref.pvalue)


@pytest.mark.parametrize(("a", "b"), [([100.0, 100.0], [100.0, 100.0]),
                                    ([7.0, 7.0, 7.0], [3.5, 3.5]),
                                    # equal floats whose sample variance is 3e-31, not 0:
                                    # gave p = 8e-33 and g = 7e15 (review, session 12)
                                    ([100 / 29] * 3, [0.0] * 3)])
def test_mean_difference_without_variance_is_not_estimable(a, b) -> None:
    """Both arms constant: the SE is 0, so no CI or p exists; the bare difference used to be
    reported (JSON 0.0 with null CI and p and no note; the table showed "0.00 (- to -)")."""
    r = mean_difference(np.array(a), np.array(b))
    assert r["difference"] is None and r["ci_low"] is None and r["ci_high"] is None
    assert r["p_value"] is None and r["hedges_g"] is None
    assert r["note"] == "not estimable: no variance in either arm"
    assert (r["n"], r["n_reference"]) == (len(a), len(b))
    # one arm varying is enough for Welch's SE: (3, 5) vs (4, 4): difference 0, SE 1, p 1
    ok = mean_difference(np.array([3.0, 5.0]), np.array([4.0, 4.0]))
    assert ok["difference"] == 0.0 and ok["p_value"] == pytest.approx(1.0)
    assert "note" not in ok


def test_risk_difference_newcombe_example() -> None:
    # Newcombe 1998 Stat Med 17:873, example (a): 56/70 vs 48/80, method 10 -> 0.0524 to 0.3339
    a = np.r_[np.ones(56), np.zeros(14)]
    b = np.r_[np.ones(48), np.zeros(32)]
    r = risk_difference(a, b)
    assert r["difference"] == pytest.approx(20.0)
    assert r["ci_low"] == pytest.approx(5.24, abs=0.01)
    assert r["ci_high"] == pytest.approx(33.39, abs=0.01)
    assert r["p_value"] == pytest.approx(stats.fisher_exact([[56, 14], [48, 32]])[1])


def test_summary_and_comparisons_on_simulated_arms() -> None:
    rng = np.random.default_rng(7)
    n, d = 60, 28
    arm = np.where(np.arange(n) % 2 == 0, "ketamine", "midazolam")
    p = np.where(arm == "ketamine", 0.2, 0.5)
    drinks = np.where(rng.random((n, d)) < p[:, None], rng.poisson(5, (n, d)), 0).astype(float)
    drinks[rng.random((n, d)) < 0.05] = np.nan
    fem = rng.random(n) < 0.4
    h = MissingDataHandling("itt", "heavy")
    ep = compute_endpoints(drinks, fem, handling=h)
    s = summarize_arms(ep, arm)
    assert set(s) == {"ketamine", "midazolam"}
    k = arm == "ketamine"
    assert s["ketamine"]["n"] == int(k.sum())
    assert s["ketamine"]["percent_days_abstinent"] == pytest.approx(
        ep.percent_days_abstinent[k].mean())
    km = KaplanMeierFitter().fit(ep.days_to_first_heavy_day[k], ep.first_heavy_day_observed[k])
    assert s["ketamine"]["median_days_to_first_heavy_day"] == km.median_survival_time_
    comps = compare_arms(ep, arm, reference="midazolam",
                         abstinent_days=abstinence_matrix(drinks, fem, h))
    by = {c["endpoint"]: c for c in comps}
    assert by["percent_days_abstinent"]["difference"] > 0
    assert by["time_to_first_heavy_day"]["hazard_ratio"] < 1
    assert by["daily_abstinence"]["odds_ratio"] > 1
    with pytest.raises(Exception, match="not found"):
        compare_arms(ep, arm, reference="placebo")
    # an arm with nobody scored (responders-only, all incomplete): median not estimable
    drinks[arm == "ketamine", 0] = np.nan
    ro = compute_endpoints(drinks, fem, handling=MissingDataHandling("responders_only"))
    s_ro = summarize_arms(ro, arm)
    assert s_ro["ketamine"]["n_scored"] == 0
    assert s_ro["ketamine"]["median_days_to_first_heavy_day"] is None
    assert s_ro["ketamine"]["median_days_to_first_heavy_day_reached"] is None
    assert s_ro["midazolam"]["median_days_to_first_heavy_day_reached"] in (True, False)


def test_summary_baseline_who_levels_bound_the_reduction_responders() -> None:
    """The baseline WHO-level distribution per arm is the ceiling of the responders: nobody at
    the low level reduces by one level, nobody below high by two. Men at 20, 50, 80 and 150 g
    a day at baseline (levels 0-3), women at 10, 30, 50 and 90 g (levels 0-3), then abstinent:
    each reduces by exactly their baseline level."""
    n, d = 8, 28
    fem = np.arange(n) >= 4
    grams = np.array([20.0, 50.0, 80.0, 150.0, 10.0, 30.0, 50.0, 90.0])
    base_per_week = grams * 7.0 / GRAMS_ETHANOL_PER_US_STANDARD_DRINK
    drinks = np.zeros((n, d))
    drinks[[1, 5], :] = np.nan  # a missing participant at each sex's medium level (exclude)
    # a third man, at the low level, reported 5 of 28 days: scored (included) under "exclude",
    # but too few days for the WHO responders, so out of their ceiling's denominator too
    grams = np.append(grams, 20.0)
    base_per_week = np.append(base_per_week, 20.0 * 7.0 / GRAMS_ETHANOL_PER_US_STANDARD_DRINK)
    fem = np.append(fem, False)
    drinks = np.vstack([drinks, np.r_[np.zeros(5), np.full(d - 5, np.nan)]])
    n += 1
    ep = compute_endpoints(drinks, fem, handling=MissingDataHandling("itt", "exclude"),
                           baseline_drinks_per_week=base_per_week)
    assert ep.included[-1] and np.isnan(ep.who_reduction_1_level[-1])
    s = summarize_arms(ep, np.array(["a"] * n))["a"]
    assert s["n_baseline_who_risk_level"] == s["n_who_reduction_1_level"] == 6
    assert s["baseline_who_risk_level_percent"] == pytest.approx(
        {"low": 100 / 3, "medium": 0.0, "high": 100 / 3, "very_high": 100 / 3})
    lv = s["baseline_who_risk_level_percent"]
    assert s["percent_who_reduction_1_level"] == pytest.approx(100 - lv["low"])
    assert s["percent_who_reduction_2_levels"] == pytest.approx(lv["high"] + lv["very_high"])


def test_gee_not_estimable_under_separation() -> None:
    """An arm abstinent on every counted day gave an odds ratio of ~1e12 with p = 0: now
    None with the reason, as the Cox model does."""
    a, treated = _abstinence_panel()
    a[treated] = np.where(np.isnan(a[treated]), np.nan, 1.0)
    r = gee_daily_abstinence(a, treated)
    assert r["odds_ratio"] is None and r["ci_low"] is None and r["ci_high"] is None
    assert r["p_value"] is None
    assert r["note"].startswith("not estimable: separation: 100% of the compared arm's")
    a[~treated] = np.where(np.isnan(a[~treated]), np.nan, 0.0)  # and none in the reference
    r = gee_daily_abstinence(a, treated)
    assert r["odds_ratio"] is None and "0% of the reference arm's" in r["note"]


@pytest.mark.parametrize("per_arm", [1, 2, MIN_GEE_CLUSTERS_PER_ARM - 1])
def test_gee_not_estimable_with_too_few_participants(per_arm: int) -> None:
    """One participant per arm gave OR 0.67 with a zero-width CI and p = 0 (the sandwich SE
    needs many clusters)."""
    a, treated = _abstinence_panel()
    keep = np.r_[np.flatnonzero(treated)[:per_arm], np.flatnonzero(~treated)[:20]]
    r = gee_daily_abstinence(a[keep], treated[keep])
    assert r["odds_ratio"] is None and r["p_value"] is None
    assert (f"participants with counted days: {per_arm} in the compared arm; the robust "
            f"(sandwich) SE needs at least {MIN_GEE_CLUSTERS_PER_ARM} per arm") in r["note"]
    assert r["n"] == per_arm and r["n_reference"] == 20
    # participants with no counted day are not clusters
    b = a.copy()
    b[np.flatnonzero(treated)[per_arm:]] = np.nan
    assert gee_daily_abstinence(b, treated)["odds_ratio"] is None
    full = gee_daily_abstinence(a, treated)
    assert full["odds_ratio"] is not None and full["n"] >= MIN_GEE_CLUSTERS_PER_ARM


def test_gee_not_estimable_absurd_estimate_or_no_convergence(monkeypatch) -> None:
    n, d = 20, 1000
    treated = np.arange(n) % 2 == 0
    a = np.where(treated[:, None], 1.0, 0.0) * np.ones((n, d))
    a[0, 0], a[1, 0] = 0.0, 1.0  # 1 of 10,000 days differs in each arm: not separated
    r = gee_daily_abstinence(a, treated)
    assert r["odds_ratio"] is None
    assert f"|log odds ratio| = 18.4 > {MAX_ABS_LOG_ODDS_RATIO:g}" in r["note"]

    panel, tr = _abstinence_panel()
    assert gee_daily_abstinence(panel, tr)["odds_ratio"] is not None
    fit = sm.GEE.fit

    def not_converged(self, *args, **kwargs):
        res = fit(self, *args, **kwargs)
        res.converged = False
        return res

    monkeypatch.setattr(sm.GEE, "fit", not_converged)
    r = gee_daily_abstinence(panel, tr)
    assert r["odds_ratio"] is None and r["note"] == "not estimable: the GEE fit did not converge"
    monkeypatch.setattr(sm.GEE, "fit", lambda self, *a, **k: None)  # statsmodels' failure mode
    r = gee_daily_abstinence(panel, tr)
    assert r["odds_ratio"] is None and "fit failed" in r["note"]


def test_comparison_counts_are_denominators_with_separate_events() -> None:
    """Every comparison reports n / n_reference as participants contributing; event counts
    are separate keys (the Cox model used to report n for both arms together)."""
    dur, ev, treated = _survival_data()
    r = cox_hazard_ratio(dur, ev, treated)
    assert (r["n"], r["n_reference"]) == (int(treated.sum()), int((~treated).sum()))
    assert (r["events"], r["events_reference"]) == (int(ev[treated].sum()),
                                                   int(ev[~treated].sum()))
    rd = risk_difference([1.0, 0.0, np.nan, 1.0], [0.0, 0.0, 1.0])
    assert (rd["n"], rd["n_reference"], rd["events"], rd["events_reference"]) == (3, 3, 2, 1)
