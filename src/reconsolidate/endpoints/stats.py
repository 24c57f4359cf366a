"""Statistics for drinking endpoints: survival, GEE of daily abstinence, arm differences.

- Kaplan-Meier (own numpy estimator, checked against lifelines) and Cox proportional hazards
  (lifelines ``CoxPHFitter``, Efron ties) for time to first heavy drinking day.
- Logistic GEE of daily abstinence over a window (statsmodels; exchangeable or AR(1) working
  correlation). Dakwar et al. 2020 (Am J Psychiatry 177:125; clinical-evidence.md section 2 [P])
  analysed daily abstinence over the 21 days after infusion with a longitudinal logistic
  mixed-effects model; the GEE gives the population-averaged odds ratio for the same question.
- Between-arm mean differences (Welch 95% CI), Hedges' g with its approximate 95% CI (Hedges &
  Olkin 1985; Borenstein et al. 2009 "Introduction to Meta-Analysis" eqs 4.18-4.20, 4.22-4.24),
  and risk differences with the Newcombe (1998, Stat Med 17:873, method 10) hybrid-score CI.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtri

from reconsolidate.exceptions import InputError

__all__ = [
    "MAX_ABS_LOG_ODDS_RATIO",
    "MIN_GEE_CLUSTERS_PER_ARM",
    "KaplanMeier",
    "cox_hazard_ratio",
    "gee_daily_abstinence",
    "hedges_g",
    "kaplan_meier",
    "mean_difference",
    "risk_difference",
]

_Z975 = float(ndtri(0.975))

#: Fewest participants (GEE clusters) with a counted day per arm for the GEE odds ratio. The
#: robust (sandwich) variance is a large-sample approximation in the number of clusters: with
#: few clusters it underestimates the variance and the Wald test rejects too often (Mancl &
#: DeRouen 2001, Biometrics 57:126, report this below about 40 clusters in all and propose a
#: correction; Li & Redden 2015, Stat Med 34:281, study corrections down to 10 clusters)
#: [mem: citations from memory, not checked against the papers]. With 1 or 2 participants per
#: arm the sandwich SE is near 0 and p near 0 (seen: OR 0.67 with p = 0 for one per arm).
#: ASSUMPTION: 10 per arm (20 in all) as the floor below which no odds ratio is reported; between
#: 10 and 20 per arm read the CI as optimistic.
MIN_GEE_CLUSTERS_PER_ARM = 10
#: Largest ``|log odds ratio|`` reported (odds ratio within about 1/22,000 .. 22,000). A logistic
#: coefficient beyond +-10 is the usual sign of (quasi-)separation: the fit runs towards
#: infinity and stops where its tolerance is met (seen: 6e14 with one arm abstinent on every
#: day), not an effect of daily abstinence between two arms.
MAX_ABS_LOG_ODDS_RATIO = 10.0


def _scipy_stats():
    """scipy.stats, imported on first use: it takes ~0.4 s to import, which every trial worker
    process would pay at start-up (the trial engine imports this package for its endpoints but
    uses none of these tests)."""
    from scipy import stats

    return stats


@dataclass(frozen=True)
class KaplanMeier:
    """Kaplan-Meier estimate: survival just after each distinct event time.

    Attributes
    ----------
    time_days
        Distinct event times, days (shape ``(K,)``).
    survival
        S(t) at those times.
    n_at_risk, n_events
        Risk-set sizes and event counts at those times.
    median_days
        First time with S(t) <= 0.5 (lifelines' convention); ``inf`` when not reached.
    """

    time_days: NDArray[np.float64]
    survival: NDArray[np.float64]
    n_at_risk: NDArray[np.int64]
    n_events: NDArray[np.int64]
    median_days: float

    def survival_at(self, t_days: ArrayLike) -> NDArray[np.float64]:
        """S(t) as a right-continuous step function at the given times (days)."""
        t = np.asarray(t_days, dtype=np.float64)
        idx = np.searchsorted(self.time_days, t, side="right") - 1
        s = np.concatenate([[1.0], self.survival])
        return s[idx + 1]


def _clean_survival(durations: ArrayLike, events: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(durations, dtype=np.float64).reshape(-1)
    e = np.asarray(events, dtype=bool).reshape(-1)
    if t.shape != e.shape:
        raise InputError(f"durations {t.shape} and events {e.shape} differ in shape")
    ok = ~np.isnan(t)
    t, e = t[ok], e[ok]
    if np.any(t < 0):
        raise InputError("durations must be >= 0 days")
    return t, e


def kaplan_meier(durations_days: ArrayLike, events: ArrayLike) -> KaplanMeier:
    """Kaplan-Meier survival curve; ``NaN`` durations (participants not scored) are dropped.

    Parameters
    ----------
    durations_days
        Time to event or censoring, days, shape ``(N,)``.
    events
        True where the event was observed, shape ``(N,)``.
    """
    t, e = _clean_survival(durations_days, events)
    if t.size == 0:
        empty = np.zeros(0)
        return KaplanMeier(empty, empty, empty.astype(np.int64), empty.astype(np.int64), math.nan)
    times = np.unique(t[e])
    # at risk at time u: durations >= u; events at u: event & duration == u
    ts = np.sort(t)
    at_risk = (t.size - np.searchsorted(ts, times, side="left")).astype(np.int64)
    te = np.sort(t[e])
    d = (np.searchsorted(te, times, side="right") - np.searchsorted(te, times, side="left"))
    surv = np.cumprod(1.0 - d / at_risk)
    below = np.flatnonzero(surv <= 0.5)
    median = float(times[below[0]]) if below.size else math.inf
    return KaplanMeier(times, surv, at_risk, d.astype(np.int64), median)


def cox_hazard_ratio(
    durations_days: ArrayLike,
    events: ArrayLike,
    treated: ArrayLike,
) -> dict:
    """Cox proportional-hazards ratio of ``treated`` vs not (lifelines, Efron ties).

    Returns a dict with ``hazard_ratio``, ``ci_low``, ``ci_high`` (95%, Wald on log scale),
    ``p_value``; ``n`` / ``n_reference`` participants (non-``NaN`` durations) in the treated /
    other group and ``events`` / ``events_reference`` their observed events; the four estimates
    are ``None`` when the model cannot be fitted (no events, one group empty, failed fit or
    separation), with the reason in ``note`` (``"not estimable: ..."``).
    """
    import pandas as pd
    from lifelines import CoxPHFitter

    t = np.asarray(durations_days, dtype=np.float64).reshape(-1)
    e = np.asarray(events, dtype=bool).reshape(-1)
    g = np.asarray(treated, dtype=bool).reshape(-1)
    ok = ~np.isnan(t)
    t, e, g = t[ok], e[ok], g[ok]
    out = {"hazard_ratio": None, "ci_low": None, "ci_high": None, "p_value": None,
           "n": int(g.sum()), "n_reference": int((~g).sum()), "events": int(e[g].sum()),
           "events_reference": int(e[~g].sum()), "method": "Cox PH (lifelines, Efron ties)"}
    if e.sum() == 0 or g.all() or (~g).all():
        out["note"] = "not estimable: no events or an empty arm"
        return out
    df = pd.DataFrame({"duration": np.maximum(t, 1e-9), "event": e.astype(int),
                       "treated": g.astype(float)})
    cph = CoxPHFitter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cph.fit(df, duration_col="duration", event_col="event")
    except Exception as exc:  # lifelines raises ConvergenceError and numerical errors
        out["note"] = f"not estimable: {type(exc).__name__}: {exc}".splitlines()[0]
        return out
    coef = float(cph.params_["treated"])
    se = float(cph.standard_errors_["treated"])
    if not (np.isfinite(coef) and np.isfinite(se) and abs(coef) + _Z975 * se < 700):
        out["note"] = "not estimable: no finite hazard ratio (separation: events in one arm only?)"
        return out
    out.update(
        hazard_ratio=math.exp(coef), ci_low=math.exp(coef - _Z975 * se),
        # lifelines' Wald p (its summary's "p"), without building the summary table (a third
        # of the fit's time): 2 P(Z > |coef / se|)
        ci_high=math.exp(coef + _Z975 * se), p_value=math.erfc(abs(coef / se) / math.sqrt(2.0)),
    )
    return out


def _gee_design_problems(y: np.ndarray, x: np.ndarray, ii: np.ndarray) -> list[str]:
    """Why the GEE odds ratio of this design cannot be trusted (empty list: it can be fitted).

    ``y`` daily abstinence (1/0) per counted participant-day, ``x`` 1.0 for the compared arm,
    ``ii`` the participant (cluster) of each day.
    """
    reasons: list[str] = []
    few = []
    for flag, name in ((1.0, "compared arm"), (0.0, "reference arm")):
        sel = x == flag
        k = int(np.unique(ii[sel]).size)
        if k < MIN_GEE_CLUSTERS_PER_ARM:
            few.append(f"{k} in the {name}")
        if sel.any():
            share = float(y[sel].mean())
            if share in (0.0, 1.0):
                reasons.append(
                    f"separation: {100 * share:.0f}% of the {name}'s {int(sel.sum())} counted "
                    "days are abstinent, so the odds ratio is 0 or infinite")
    if few:
        reasons.insert(0, f"participants with counted days: {' and '.join(few)}; the robust "
                          f"(sandwich) SE needs at least {MIN_GEE_CLUSTERS_PER_ARM} per arm")
    return reasons


def gee_daily_abstinence(
    abstinent: ArrayLike,
    treated: ArrayLike,
    *,
    cov_struct: Literal["exchangeable", "ar1"] = "exchangeable",
    max_rows: int = 2_000_000,
) -> dict:
    """Logistic GEE of daily abstinence on arm: the odds ratio of an abstinent day, treated vs not.

    Parameters
    ----------
    abstinent
        Shape ``(N, D)``: 1.0 abstinent day, 0.0 drinking day, ``NaN`` not counted (those cells
        are left out, i.e. valid under missing completely at random for GEE).
    treated
        Shape ``(N,)`` bool: the compared arm (True) vs the reference arm (False).
    cov_struct
        Working correlation within participant: ``"exchangeable"`` or ``"ar1"`` (over day index).
    max_rows
        Participant-days above which the model is skipped (GEE is not a hot-path method).

    Returns
    -------
    dict
        ``odds_ratio``, ``ci_low``, ``ci_high`` (95%, robust sandwich SE), ``p_value``;
        ``n`` / ``n_reference`` participants (clusters) with at least one counted day in the
        compared / reference arm; ``n_days`` / ``n_days_reference`` counted participant-days;
        ``cov_struct``, ``method``. When the odds ratio is not estimable the four estimates are
        ``None`` and ``note`` says why (``"not estimable: ..."``, as :func:`cox_hazard_ratio`):
        an arm with fewer than :data:`MIN_GEE_CLUSTERS_PER_ARM` participants, (quasi-)complete
        separation (an arm with 0% or 100% abstinent days), a failed or non-converged fit, or a
        non-finite estimate or one with ``|log OR| >`` :data:`MAX_ABS_LOG_ODDS_RATIO`.
    """
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    a = np.asarray(abstinent, dtype=np.float64)
    g = np.asarray(treated, dtype=bool).reshape(-1)
    if a.ndim != 2 or a.shape[0] != g.shape[0]:
        raise InputError(f"abstinent {a.shape} and treated {g.shape} do not match")
    if cov_struct not in ("exchangeable", "ar1"):
        raise InputError(f"cov_struct = {cov_struct!r}: allowed 'exchangeable' or 'ar1'")
    out = {"odds_ratio": None, "ci_low": None, "ci_high": None, "p_value": None,
           "cov_struct": cov_struct, "method": "logistic GEE (statsmodels), robust SE"}
    ii, jj = np.nonzero(~np.isnan(a))
    y = a[ii, jj]
    x = g[ii].astype(np.float64)
    out["n"] = int(np.unique(ii[x == 1.0]).size)
    out["n_reference"] = int(np.unique(ii[x == 0.0]).size)
    out["n_days"] = int((x == 1.0).sum())
    out["n_days_reference"] = int((x == 0.0).sum())
    if y.size > max_rows:
        out["note"] = f"skipped: {y.size} participant-days > max_rows={max_rows}"
        return out
    reasons = _gee_design_problems(y, x, ii)
    if reasons:
        out["note"] = "not estimable: " + "; ".join(reasons)
        return out
    exog = np.column_stack([np.ones_like(x), x])
    # AR(1) on the grid of each participant's OBSERVED days: a run of missing days counts as
    # one step. Only the working correlation is approximate (the robust SE keeps inference
    # valid); grid=False, which uses the day differences, took 35 s instead of 0.14 s for
    # 300 participants x 270 days (statsmodels forms every within-participant pair).
    cs = sm.cov_struct.Exchangeable() if cov_struct == "exchangeable" else \
        sm.cov_struct.Autoregressive(grid=True)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = sm.GEE(y, exog, groups=ii, time=jj.astype(np.float64),
                           family=sm.families.Binomial(), cov_struct=cs)
            res = model.fit()
    except Exception as exc:  # statsmodels raises LinAlgError / PerfectSeparation etc.
        out["note"] = f"not estimable: {type(exc).__name__}: {exc}".splitlines()[0]
        return out
    if res is None:  # statsmodels warns "Unable to estimate GEE parameters." and returns None
        out["note"] = "not estimable: the GEE fit failed (singular estimating equations)"
        return out
    if not getattr(res, "converged", True) or any(
            issubclass(w.category, ConvergenceWarning) for w in caught):
        out["note"] = "not estimable: the GEE fit did not converge"
        return out
    b, se = float(res.params[1]), float(res.bse[1])
    if not (np.isfinite(b) and np.isfinite(se) and se > 0):
        out["note"] = "not estimable: non-finite estimate or standard error"
        return out
    if abs(b) > MAX_ABS_LOG_ODDS_RATIO:
        out["note"] = (f"not estimable: |log odds ratio| = {abs(b):.1f} > "
                       f"{MAX_ABS_LOG_ODDS_RATIO:g} (odds ratio {math.exp(b):.3g}): "
                       "quasi-separation, the estimate is not meaningful")
        return out
    out.update(odds_ratio=math.exp(b), ci_low=math.exp(b - _Z975 * se),
               ci_high=math.exp(b + _Z975 * se), p_value=float(res.pvalues[1]))
    return out


def _finite(a: ArrayLike) -> np.ndarray:
    x = np.asarray(a, dtype=np.float64).reshape(-1)
    return x[~np.isnan(x)]


def _no_spread(x: np.ndarray) -> bool:
    """True when every value is the same up to rounding (relative 1e-12): the sample variance
    of equal floats computed along different paths is ~1e-31, not 0, and would give a standard
    error of 1e-16 (p = 1e-33, g = 7e15)."""
    return bool(np.ptp(x) <= 1e-12 * max(1.0, float(np.max(np.abs(x)))))


def hedges_g(a: ArrayLike, b: ArrayLike) -> dict:
    """Hedges' g of ``a`` minus ``b`` (bias-corrected standardized mean difference) and 95% CI.

    ``g = J * (mean_a - mean_b) / s_pooled`` with ``J = 1 - 3 / (4 (n_a + n_b) - 9)`` and
    ``Var(g) = J^2 ((n_a + n_b) / (n_a n_b) + d^2 / (2 (n_a + n_b)))`` (Borenstein et al. 2009,
    eqs 4.18-4.24). ``NaN`` values are dropped. ``None`` when not estimable.
    """
    x, y = _finite(a), _finite(b)
    na, nb = x.size, y.size
    out = {"hedges_g": None, "g_ci_low": None, "g_ci_high": None}
    if na < 2 or nb < 2:
        return out
    sp2 = ((na - 1) * x.var(ddof=1) + (nb - 1) * y.var(ddof=1)) / (na + nb - 2)
    if not sp2 > 0 or (_no_spread(x) and _no_spread(y)):
        return out
    d = (x.mean() - y.mean()) / math.sqrt(sp2)
    j = 1.0 - 3.0 / (4.0 * (na + nb) - 9.0)
    g = j * d
    se = j * math.sqrt((na + nb) / (na * nb) + d * d / (2.0 * (na + nb)))
    out.update(hedges_g=g, g_ci_low=g - _Z975 * se, g_ci_high=g + _Z975 * se)
    return out


def mean_difference(a: ArrayLike, b: ArrayLike) -> dict:
    """Difference of means ``a - b`` with Welch's 95% CI and two-sided p, plus Hedges' g.

    ``NaN`` values are dropped. Not estimable (difference, CI, p and g ``None``, the reason in
    ``note``) with fewer than 2 values in an arm, or when neither arm varies (every value the
    same within each arm: the standard error is 0, so there is no CI, p or g).
    """
    x, y = _finite(a), _finite(b)
    out = {"difference": None, "ci_low": None, "ci_high": None, "p_value": None,
           "n": int(x.size), "n_reference": int(y.size), "method": "Welch t"}
    if x.size < 2 or y.size < 2:
        out["note"] = "not estimable: fewer than 2 participants in an arm"
        out.update(hedges_g(x, y))
        return out
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se = math.sqrt(va + vb)
    if not se > 0 or (_no_spread(x) and _no_spread(y)):
        # a bare difference without CI or p would read as an estimate (it showed as
        # "0.00 (- to -)")
        out["note"] = "not estimable: no variance in either arm"
        out.update(hedges_g(x, y))
        return out
    out["difference"] = float(x.mean() - y.mean())
    df = (va + vb) ** 2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1))
    st = _scipy_stats()
    q = float(st.t.ppf(0.975, df))
    out.update(ci_low=out["difference"] - q * se, ci_high=out["difference"] + q * se,
               p_value=float(2 * st.t.sf(abs(out["difference"]) / se, df)))
    out.update(hedges_g(x, y))
    return out


def _wilson(k: int, n: int) -> tuple[float, float]:
    p = k / n
    z2 = _Z975**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = _Z975 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return centre - half, centre + half


def risk_difference(a: ArrayLike, b: ArrayLike) -> dict:
    """Difference of proportions (percentage points) of binary ``a`` minus ``b``, Newcombe 95% CI.

    ``a`` and ``b`` hold 1.0 / 0.0 / ``NaN`` (NaN dropped). The p-value is Fisher's exact test
    (two-sided) on the 2 x 2 table. ``n`` / ``n_reference`` are the participants with a value
    (the denominators), ``events`` / ``events_reference`` those with 1.0.
    """
    x, y = _finite(a), _finite(b)
    out = {"difference": None, "ci_low": None, "ci_high": None, "p_value": None,
           "n": int(x.size), "n_reference": int(y.size), "events": int(x.sum()),
           "events_reference": int(y.sum()),
           "method": "Newcombe hybrid score CI (percentage points), Fisher exact p"}
    if x.size == 0 or y.size == 0:
        out["note"] = "not estimable: an arm has no scored participant"
        return out
    k1, k2 = int(x.sum()), int(y.sum())
    p1, p2 = k1 / x.size, k2 / y.size
    l1, u1 = _wilson(k1, x.size)
    l2, u2 = _wilson(k2, y.size)
    diff = p1 - p2
    lo = diff - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = diff + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    p_exact = float(_scipy_stats().fisher_exact([[k1, x.size - k1], [k2, y.size - k2]])[1])
    out.update(difference=100 * diff, ci_low=100 * lo, ci_high=100 * hi, p_value=p_exact)
    return out

