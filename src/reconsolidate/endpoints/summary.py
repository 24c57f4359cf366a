"""Per-arm summaries and between-arm comparisons of :class:`ParticipantEndpoints`."""

from __future__ import annotations

import math
from collections.abc import Collection

import numpy as np
from numpy.typing import ArrayLike

from reconsolidate.endpoints.core import (
    WHO_LEVEL_NAMES,
    MissingDataHandling,
    ParticipantEndpoints,
)
from reconsolidate.endpoints.stats import (
    cox_hazard_ratio,
    gee_daily_abstinence,
    kaplan_meier,
    mean_difference,
    risk_difference,
)
from reconsolidate.exceptions import InputError

__all__ = [
    "BENEFIT_DIRECTION",
    "BINARY_ENDPOINTS",
    "COMPARISON_ENDPOINTS",
    "COMPARISON_LABELS",
    "CONTINUOUS_ENDPOINTS",
    "HIGHER_IS_BETTER",
    "REPORTED_COMPARISONS",
    "abstinence_matrix",
    "compare_arms",
    "comparison_estimate",
    "favours_arm",
    "summarize_arms",
]

#: Continuous per-participant endpoints summarised by mean / SD / median and compared by Welch
#: difference and Hedges' g.
CONTINUOUS_ENDPOINTS = (
    "percent_days_abstinent",
    "percent_drinking_days",
    "percent_heavy_drinking_days",
    "drinks_per_drinking_day",
    "drinks_per_week",
    "change_drinks_per_week",
    "grams_per_day",
)
#: Binary responder endpoints summarised as percent of scored participants.
BINARY_ENDPOINTS = (
    "no_heavy_drinking_days",
    "abstinent_last_days",
    "who_reduction_1_level",
    "who_reduction_2_levels",
)

#: The endpoints :func:`compare_arms` compares (without the optional daily-abstinence GEE), in
#: its order: the continuous ones, the binary ones as ``percent_<name>``, and the time to the
#: first heavy drinking day (Cox hazard ratio).
COMPARISON_ENDPOINTS = (
    *CONTINUOUS_ENDPOINTS,
    *(f"percent_{name}" for name in BINARY_ENDPOINTS),
    "time_to_first_heavy_day",
)

#: What each compared endpoint's estimate is, for tables ("K" = the last-days span, days).
COMPARISON_LABELS = {
    "percent_days_abstinent": "% days abstinent (difference, points)",
    "percent_drinking_days": "% drinking days (difference, points)",
    "percent_heavy_drinking_days": "% heavy drinking days (difference, points)",
    "drinks_per_drinking_day": "drinks per drinking day (difference)",
    "drinks_per_week": "drinks per week (difference)",
    "change_drinks_per_week": "change in drinks/week (difference)",
    "grams_per_day": "g ethanol per day (difference)",
    "percent_no_heavy_drinking_days": "% no heavy drinking day (risk difference, points)",
    "percent_abstinent_last_days": "% abstinent last K days (risk difference, points)",
    "percent_who_reduction_1_level": "% WHO risk level down >= 1 (risk difference, points)",
    "percent_who_reduction_2_levels": "% WHO risk level down >= 2 (risk difference, points)",
    "time_to_first_heavy_day": "time to first heavy day (hazard ratio)",
}

#: Per-participant endpoints on which a higher value is the better outcome (more abstinence,
#: more responders, a later first drink); on the other drinking measures a lower value is. The
#: one table of the direction of benefit: :data:`BENEFIT_DIRECTION` and the calibration's
#: targets derive theirs from it.
HIGHER_IS_BETTER: frozenset[str] = frozenset({
    "percent_days_abstinent", "no_heavy_drinking_days", "abstinent_last_days",
    "who_reduction_1_level", "who_reduction_2_levels", "days_to_first_heavy_day",
    "days_to_first_drink",
})


def _benefit_sign(comparison: str) -> int:
    if comparison == "time_to_first_heavy_day":
        # a later first heavy day is better, so a hazard ratio below 1 is
        return -1 if "days_to_first_heavy_day" in HIGHER_IS_BETTER else 1
    binary = comparison.removeprefix("percent_")
    name = binary if binary in BINARY_ENDPOINTS else comparison
    return 1 if name in HIGHER_IS_BETTER else -1


#: Which way each compared endpoint's estimate favours the arm over the reference: +1 when a
#: larger difference does (more abstinence, more responders), -1 when a smaller one does (less
#: drinking; for the hazard ratio of a first heavy day, a ratio below 1).
BENEFIT_DIRECTION: dict[str, int] = {c: _benefit_sign(c) for c in COMPARISON_ENDPOINTS}


def comparison_estimate(c: dict) -> float | None:
    """The estimate of one :func:`compare_arms` result: its hazard ratio, or its difference."""
    return c.get("hazard_ratio") if c["kind"] == "hazard_ratio" else c.get("difference")


def favours_arm(endpoint: str, estimate: float) -> bool:
    """Whether a comparison's estimate (difference, or hazard ratio) favours the arm over the
    reference (:data:`BENEFIT_DIRECTION`; no difference favours neither)."""
    centred = math.log(estimate) if endpoint == "time_to_first_heavy_day" else estimate
    return BENEFIT_DIRECTION[endpoint] * centred > 0


#: The comparisons a trial's report shows (and ``reconsolidate power`` estimates by default).
REPORTED_COMPARISONS = (
    "percent_days_abstinent",
    "percent_heavy_drinking_days",
    "drinks_per_week",
    "change_drinks_per_week",
    "percent_no_heavy_drinking_days",
    "percent_abstinent_last_days",
    "time_to_first_heavy_day",
)


def _num(v: float) -> float | None:
    """JSON-safe float: NaN/inf -> None."""
    v = float(v)
    return v if math.isfinite(v) else None


def _arm_labels(arm: ArrayLike, n: int) -> np.ndarray:
    a = np.asarray(arm).astype(str).reshape(-1)
    if a.shape != (n,):
        raise InputError(f"arm labels: expected shape ({n},), got {a.shape}")
    return a


def summarize_arms(endpoints: ParticipantEndpoints, arm: ArrayLike) -> dict[str, dict]:
    """Per-arm summary of every endpoint.

    Returns ``{arm: {...}}``, JSON-safe (None for NaN). Counts follow one convention: ``n`` is
    the number randomised, ``n_scored`` the number included under the missing-data handling,
    and every ``n_<endpoint>`` the number of participants contributing to that endpoint (its
    denominator: a defined value); ``events_<endpoint>`` counts participants with the outcome
    (value 1 of a binary endpoint, an observed event of a time-to-event one). Per arm:

    - each continuous endpoint ``X``: its mean as ``X``, ``X_sd``, ``X_median`` and ``n_X``;
    - each binary endpoint ``X``: ``percent_X`` (% of ``n_X``), ``n_X`` and ``events_X``;
      ``not_assessable_abstinent_last_days``: scored participants with too few counted days in
      the last K days (left out of ``n_abstinent_last_days``);
    - time to first heavy day / drink: ``n_time_to_first_X``, ``events_time_to_first_X``,
      the Kaplan-Meier median ``median_days_to_first_X`` (``None`` = not reached or nothing to
      estimate) and ``median_days_to_first_X_reached``; ``percent_any_heavy_day_km`` (KM
      1 - S at the end of the window);
    - ``n_who_risk_level`` and ``who_risk_level_percent`` (distribution over those);
      ``n_baseline_who_risk_level`` and ``baseline_who_risk_level_percent``, the same at
      baseline over the WHO responders' denominator (``n_who_reduction_1_level``): their
      ceiling, since a participant at the low level cannot reduce by one level nor one at the
      medium level by two.
    """
    labels = _arm_labels(arm, endpoints.n)
    out: dict[str, dict] = {}
    for a in sorted(np.unique(labels).tolist()):
        m = labels == a
        ep = endpoints.subset(m)
        s: dict = {"n": int(m.sum()), "n_scored": int(ep.included.sum())}
        for name in CONTINUOUS_ENDPOINTS:
            v = getattr(ep, name)
            v = v[~np.isnan(v)]
            s[name] = _num(v.mean()) if v.size else None
            s[f"{name}_sd"] = _num(v.std(ddof=1)) if v.size > 1 else None
            s[f"{name}_median"] = _num(np.median(v)) if v.size else None
            s[f"n_{name}"] = int(v.size)
        for name in BINARY_ENDPOINTS:
            v = getattr(ep, name)
            v = v[~np.isnan(v)]
            s[f"percent_{name}"] = _num(100.0 * v.mean()) if v.size else None
            s[f"n_{name}"] = int(v.size)
            s[f"events_{name}"] = int((v == 1.0).sum())
        s["not_assessable_abstinent_last_days"] = int(
            (ep.included & np.isnan(ep.abstinent_last_days)).sum())
        for what in ("heavy_day", "drink"):
            t = ep.days_to_first_heavy_day if what == "heavy_day" else ep.days_to_first_drink
            e = ep.first_heavy_day_observed if what == "heavy_day" else ep.first_drink_observed
            km = kaplan_meier(t, e)
            s[f"median_days_to_first_{what}"] = _num(km.median_days)
            # None: nothing to estimate (no scored participant); False: median not reached
            s[f"median_days_to_first_{what}_reached"] = (
                bool(np.isfinite(km.median_days)) if km.time_days.size or e[ep.included].size
                else None)
            s[f"n_time_to_first_{what}"] = int((ep.included & ~np.isnan(t)).sum())
            s[f"events_time_to_first_{what}"] = int(e[ep.included].sum())
        km = kaplan_meier(ep.days_to_first_heavy_day, ep.first_heavy_day_observed)
        s["percent_any_heavy_day_km"] = (
            _num(100.0 * (1.0 - km.survival_at(endpoints.n_days_window)))
            if ep.included.any() else None
        )
        # the baseline levels over the WHO responders' own denominator (scored on the
        # reduction: under "exclude" a participant with amounts on too few days is not)
        scored_reduction = ~np.isnan(ep.who_reduction_1_level)
        for key, level in (("who_risk_level", ep.who_risk_level),
                           ("baseline_who_risk_level",
                            np.where(scored_reduction, ep.baseline_who_risk_level, np.nan))):
            lv = level[~np.isnan(level)]
            s[f"n_{key}"] = int(lv.size)
            s[f"{key}_percent"] = {
                name: (_num(100.0 * np.mean(lv == i)) if lv.size else None)
                for i, name in enumerate(WHO_LEVEL_NAMES)
            }
        out[a] = s
    return out


def abstinence_matrix(
    drinks_per_day: ArrayLike,
    is_female: ArrayLike,
    handling: MissingDataHandling,
    *,
    heavy_drinks_men: float = 5.0,
    heavy_drinks_women: float = 4.0,
) -> np.ndarray:
    """Daily abstinence (1.0 / 0.0 / NaN not counted) after the missing-data handling.

    Under responders-only, participants with a missing day are all ``NaN``; under ITT with
    ``missing_days="exclude"`` missing days stay ``NaN``; otherwise they are filled as the
    handling says (heavy or a positive amount = drinking day, ``abstinent`` / 0 = abstinent).
    """
    x = np.asarray(drinks_per_day, dtype=np.float64)
    miss = np.isnan(x)
    out = np.where(miss, np.nan, (x == 0).astype(np.float64))
    if handling.population == "responders_only":
        out[miss.any(axis=1)] = np.nan
        return out
    m = handling.missing_days
    if m == "exclude":
        return out
    if m == "heavy":
        return np.where(miss, 0.0, out)  # a heavy day is a drinking day: not abstinent
    fill_abst = 1.0 if (m == "abstinent" or float(m) == 0.0) else 0.0
    return np.where(miss, fill_abst, out)


def compare_arms(
    endpoints: ParticipantEndpoints,
    arm: ArrayLike,
    *,
    reference: str | None = None,
    abstinent_days: np.ndarray | None = None,
    gee_cov_struct: str = "exchangeable",
    gee_max_rows: int = 2_000_000,
    only: Collection[str] | None = None,
) -> list[dict]:
    """Between-arm comparisons of every endpoint, each arm vs ``reference``.

    Parameters
    ----------
    endpoints
        Per-participant endpoints.
    arm
        Arm label per participant, shape ``(N,)``.
    reference
        The control arm (default: the first arm label in sorted order); unknown -> InputError
        listing the arms.
    abstinent_days
        Optional ``(N, D)`` daily abstinence matrix (:func:`abstinence_matrix`) for the logistic
        GEE of daily abstinence.
    gee_cov_struct
        ``"exchangeable"`` or ``"ar1"``.
    gee_max_rows
        Skip the GEE above this many participant-days.
    only
        The endpoints to compare (names of :data:`COMPARISON_ENDPOINTS`, plus
        ``daily_abstinence`` with ``abstinent_days``); None = every one. Unknown names ->
        InputError listing the allowed ones. (The Cox fit is most of the time: leaving
        ``time_to_first_heavy_day`` out makes the call about ten times faster.)

    Returns
    -------
    list of dict
        One dict per (arm, endpoint) with ``endpoint``, ``arm``, ``reference``, ``kind``
        (``mean_difference``, ``risk_difference``, ``hazard_ratio``, ``odds_ratio``) and its
        estimate, 95% CI, p-value and (continuous) Hedges' g with 95% CI; ``n`` /
        ``n_reference`` participants contributing in the arm / the reference arm (plus
        ``events`` / ``events_reference`` for binary and time-to-event endpoints, ``n_days`` /
        ``n_days_reference`` for the GEE). A comparison that is not estimable has ``None``
        estimate, CI and p and the reason in ``note`` (``"not estimable: ..."``). JSON-safe.
    """
    allowed = (*COMPARISON_ENDPOINTS, "daily_abstinence")
    if only is not None:
        unknown = sorted(set(only) - set(allowed))
        if unknown:
            raise InputError(f"endpoint {unknown[0]!r} cannot be compared; allowed: "
                             f"{', '.join(allowed)}")
    want = set(allowed if only is None else only)
    labels = _arm_labels(arm, endpoints.n)
    arms = sorted(np.unique(labels).tolist())
    if reference is None:
        reference = arms[0] if arms else None
    if reference not in arms:
        raise InputError(f"reference arm {reference!r} not found; arms are {arms}")
    ref = labels == reference
    inc = endpoints.included
    result: list[dict] = []
    for a in arms:
        if a == reference:
            continue
        cur = labels == a
        base = {"arm": a, "reference": reference}
        for name in CONTINUOUS_ENDPOINTS:
            if name not in want:
                continue
            v = getattr(endpoints, name)
            r = mean_difference(v[cur], v[ref])
            result.append({"endpoint": name, **base, "kind": "mean_difference",
                           **{k: (_num(x) if isinstance(x, float) else x) for k, x in r.items()}})
        for name in BINARY_ENDPOINTS:
            if f"percent_{name}" not in want:
                continue
            v = getattr(endpoints, name)
            r = risk_difference(v[cur], v[ref])
            result.append({"endpoint": f"percent_{name}", **base, "kind": "risk_difference", **r})
        if "time_to_first_heavy_day" in want:
            both = (cur | ref) & inc
            r = cox_hazard_ratio(endpoints.days_to_first_heavy_day[both],
                                 endpoints.first_heavy_day_observed[both], cur[both])
            result.append({"endpoint": "time_to_first_heavy_day", **base, "kind": "hazard_ratio",
                           **r})
        if abstinent_days is not None and "daily_abstinence" in want:
            sel = cur | ref
            r = gee_daily_abstinence(abstinent_days[sel], cur[sel], cov_struct=gee_cov_struct,
                                     max_rows=gee_max_rows)
            result.append({"endpoint": "daily_abstinence", **base, "kind": "odds_ratio", **r})
    return result
